from django.apps import AppConfig


class SandboxMailboxConfig(AppConfig):
    name = "sandbox.mailbox"
    label = "sandbox_mailbox"
    verbose_name = "Sandbox: mailbox"
