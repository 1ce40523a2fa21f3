import time

from django.apps import AppConfig
from django.core.signals import request_started

ARRIVED_AT = "sandbox.ortto.arrived_at"


def stamp_arrival(sender, environ=None, **kwargs):
    """Note when a request reached Django, before middleware, the key lookup or any other DB work: the
    throttle counts a request in the second it arrived, not the (later, on a busy box) second it is handled."""
    if environ is not None and environ.get("PATH_INFO", "").startswith("/sandbox/ortto/"):
        environ[ARRIVED_AT] = time.time()


class SandboxOrttoConfig(AppConfig):
    name = "sandbox.ortto"
    label = "sandbox_ortto"
    verbose_name = "Sandbox: emulated Ortto"

    def ready(self):
        request_started.connect(stamp_arrival, dispatch_uid="sandbox_ortto_arrival")
