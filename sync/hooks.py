"""The store's BigCommerce webhooks: registering the bridge's hooks on connect, removing them on disconnect.

Each hook carries a per-store secret header that the intake (sync/webhooks.py) checks on every delivery.
"""

import logging
import secrets

from django.conf import settings

from stores.bigcommerce import BigCommerceRequestError, store_client

from .models import Connection

logger = logging.getLogger(__name__)

# Where BigCommerce delivers: a contract registered with every store's hooks, so it never changes
# (sync/bigcommerce_urls.py mounts the intake there; a test keeps the two in step).
WEBHOOK_PATH = "/bigcommerce/webhooks/"
SECRET_HEADER = "X-Bridge-Webhook-Secret"
# store/order/* also brings store/order/refund/created ("Fires for all store/order events", webhooks.v3.yml).
# Of the carts' events only the two the journey needs: store/cart/* would deliver every cart edit.
HOOK_SCOPES = ("store/customer/*", "store/subscriber/*", "store/order/*", "store/cart/abandoned",
               "store/cart/converted")


def webhook_destination() -> str:
    return settings.PUBLIC_URL.rstrip("/") + WEBHOOK_PATH


def webhooks_register(connection: Connection, *, client=None) -> list[int]:
    """Create the store's hooks (customers, subscribers, orders, abandoned and converted carts) and remember their ids.

    Idempotent: BigCommerce allows one hook per (scope, destination) and answers 422 to a second one;
    the existing hook is then found in the list and reused.
    """
    store = connection.store
    if not store.webhook_secret:
        store.webhook_secret = secrets.token_urlsafe(32)
        store.save(update_fields=["webhook_secret", "updated_at"])
    client = client or store_client(store)
    destination = webhook_destination()
    headers = {SECRET_HEADER: store.webhook_secret}
    existing = None
    hook_ids = []
    for scope in HOOK_SCOPES:
        try:
            hook = client.create_hook(scope=scope, destination=destination, headers=headers)
        except BigCommerceRequestError as exc:
            if exc.status not in (409, 422):
                raise
            if existing is None:
                existing = client.list_hooks()
            hook = next((h for h in existing if h.get("scope") == scope and h.get("destination") == destination), None)
            if hook is None:
                raise
        if hook.get("id") is not None:
            hook_ids.append(int(hook["id"]))
    connection.webhook_ids = hook_ids
    connection.save(update_fields=["webhook_ids"])
    logger.info("store %s: %d webhooks registered", store.store_hash, len(hook_ids))
    return hook_ids


def webhooks_unregister(connection: Connection, *, client=None) -> None:
    """Delete the connection's hooks (a hook already gone is fine)."""
    if connection.webhook_ids:
        client = client or store_client(connection.store)
        for hook_id in connection.webhook_ids:
            client.delete_hook(hook_id)
    connection.webhook_ids = []
    connection.save(update_fields=["webhook_ids"])
