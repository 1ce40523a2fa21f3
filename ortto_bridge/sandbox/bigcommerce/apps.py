from django.apps import AppConfig


class SandboxBigCommerceConfig(AppConfig):
    name = "ortto_bridge.sandbox.bigcommerce"
    label = "sandbox_bigcommerce"
    verbose_name = "Sandbox: emulated BigCommerce"
