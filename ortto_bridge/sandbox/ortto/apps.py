from django.apps import AppConfig


class SandboxOrttoConfig(AppConfig):
    name = "ortto_bridge.sandbox.ortto"
    label = "sandbox_ortto"
    verbose_name = "Sandbox: emulated Ortto"
