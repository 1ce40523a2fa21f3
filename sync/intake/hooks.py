"""The store's BigCommerce webhooks: registering the bridge's hooks on connect, removing them on disconnect,
putting back the ones BigCommerce deactivated (each sweep), and counting the changes no hook announced.

Each hook carries a per-store secret header that the intake (sync/intake/webhooks.py) checks on every delivery.
"""

import logging
import secrets
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from stores.bigcommerce import BigCommerceClient, BigCommerceRequestError, store_client
from stores.models import WebhookEvent
from sync.engine.mapping import parse_bc_datetime
from sync.models import Connection

logger = logging.getLogger(__name__)

# Where BigCommerce delivers: a contract registered with every store's hooks, so it never changes
# (sync/bigcommerce_urls.py mounts the intake there; a test keeps the two in step).
WEBHOOK_PATH = "/bigcommerce/webhooks/"
SECRET_HEADER = "X-Bridge-Webhook-Secret"
# The resources whose missed deliveries a sweep counts: the ones it reads whose hooks announce every change
# (store/customer/*, store/order/*). A subscriber row also changes with its customer's newsletter choice,
# and BigCommerce does not say which hook announces that, so subscribers are not counted.
MISSED_RESOURCES = ("customers", "orders")
# store/order/* also brings store/order/refund/created ("Fires for all store/order events", webhooks.v3.yml).
# Of the carts' events only the two the journey needs: store/cart/* would deliver every cart edit.
# Cart line items and the catalog feed the product journeys (sync/catalog/): Added to cart, and the mirror
# behind every product link, picture and back-in-stock release.
HOOK_SCOPES = ("store/customer/*", "store/subscriber/*", "store/order/*", "store/cart/abandoned",
               "store/cart/converted", "store/cart/lineItem/created", "store/cart/lineItem/updated",
               "store/product/*", "store/sku/*")


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


def webhooks_check(connection: Connection, *, client: BigCommerceClient) -> int:
    """Look at the store's hooks (one GET /v3/hooks) and put back what is wrong: a deactivated hook is
    re-activated (PUT is_active true), a missing one re-created with the store's secret header (POST).
    Returns how many were put back; the connection remembers when it looked and what it found.

    BigCommerce deactivates a hook whose deliveries keep failing for about 48 h, and one that has not fired
    for 90 days (docs/integrations/webhooks/overview.mdx; shared reference, bigcommerce-api.md §7).
    `client` is the run's own, so these requests share its quota pacing.
    """
    store = connection.store
    destination = webhook_destination()
    ours = {hook.get("scope"): hook for hook in client.list_hooks() if hook.get("destination") == destination}
    healed = 0
    hook_ids = []
    for scope in HOOK_SCOPES:
        hook = ours.get(scope)
        if hook is None:
            hook = client.create_hook(scope=scope, destination=destination,
                                      headers={SECRET_HEADER: store.webhook_secret})
            healed += 1
        elif hook.get("is_active") is False:
            hook = {**hook, **client.update_hook(int(hook["id"]), is_active=True)}
            healed += 1
        if hook.get("id") is not None:
            hook_ids.append(int(hook["id"]))
    now = timezone.now()
    connection.webhooks_checked_at = now
    fields = ["webhooks_checked_at"]
    if healed:
        connection.webhooks_healed_at, connection.webhooks_healed = now, healed
        fields += ["webhooks_healed_at", "webhooks_healed"]
    if hook_ids != connection.webhook_ids:
        connection.webhook_ids = hook_ids
        fields.append("webhook_ids")
    connection.save(update_fields=fields)
    if healed:
        logger.warning("store %s: %d webhook(s) deactivated or missing, put back", store.store_hash, healed)
    return healed


def deliveries_missed_count(*, store, resource: str, records: list[dict], changed_after: datetime,
                            announced_since: datetime) -> int:
    """Of the records a sweep read, those changed after the previous sweep's cursor (`changed_after`) for
    which no webhook delivery arrived since `announced_since` (the cursor less the clock overlap): changes
    the bridge learnt of only by sweeping. One query."""
    if resource not in MISSED_RESOURCES:
        return 0
    changed = set()
    for record in records:
        modified = parse_bc_datetime(record.get("date_modified"))
        if modified is not None and modified > changed_after and record.get("id") is not None:
            changed.add(int(record["id"]))
    if not changed:
        return 0
    announced = set(WebhookEvent.objects.filter(
        store=store, resource=resource, resource_id__in=changed, received_at__gte=announced_since,
    ).values_list("resource_id", flat=True))
    return len(changed - announced)
