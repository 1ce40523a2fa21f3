"""The sandbox: emulated BigCommerce and Ortto, mounted only when SANDBOX is on.

Nothing in `stores/` or `sync/` imports this package; the bridge reaches it over HTTP only,
exactly as it reaches the real APIs.
"""
