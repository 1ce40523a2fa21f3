from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "ortto_bridge.sandbox"
    label = "sandbox"
    verbose_name = "Sandbox"
