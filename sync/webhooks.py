"""BigCommerce webhooks: registering the bridge's hooks, and taking in deliveries.

Deliveries only carry ids. The receiver authenticates them (a per-store secret header the bridge set
when it created the hooks), stores each once (dedup on scope + BigCommerce's payload hash + created_at),
answers at once, and asks for a webhook run; the run fetches the records and pushes them through the
same pipeline as every other sync. The scheduled incremental sweep catches whatever webhooks miss.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from stores.models import Store, WebhookEvent

from .models import Connection

logger = logging.getLogger("sync.webhooks")

SECRET_HEADER = "X-Bridge-Webhook-Secret"
MAX_BODY_BYTES = 64 * 1024
HOOK_SCOPES = ("store/customer/*", "store/subscriber/*", "store/order/*")

# Scopes whose record the bridge fetches and syncs; every other delivery is stored as ignored.
PROCESSED_SCOPES = {
    "store/customer/created": "customers",
    "store/customer/updated": "customers",
    "store/customer/address/created": "customers",
    "store/customer/address/updated": "customers",
    "store/customer/address/deleted": "customers",
    "store/subscriber/created": "subscribers",
    "store/subscriber/updated": "subscribers",
    "store/order/created": "orders",
    "store/order/updated": "orders",
    "store/order/statusUpdated": "orders",
}


def webhook_destination() -> str:
    return settings.PUBLIC_URL.rstrip("/") + "/bigcommerce/webhooks/"


# --- Registration --------------------------------------------------------------------------------


def _bigcommerce(store: Store):
    from stores.bigcommerce import BigCommerceClient

    return BigCommerceClient(store.store_hash, store.access_token)


def webhooks_register(connection: Connection, *, client=None) -> list[int]:
    """Create the store's hooks (customers, subscribers, orders) and remember their ids.

    Idempotent: BigCommerce allows one hook per (scope, destination) and answers 422 to a second one;
    the existing hook is then found in the list and reused.
    """
    from stores.bigcommerce import BigCommerceRequestError

    store = connection.store
    if not store.webhook_secret:
        store.webhook_secret = secrets.token_urlsafe(32)
        store.save(update_fields=["webhook_secret", "updated_at"])
    client = client or _bigcommerce(store)
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
        client = client or _bigcommerce(connection.store)
        for hook_id in connection.webhook_ids:
            client.delete_hook(hook_id)
    connection.webhook_ids = []
    connection.save(update_fields=["webhook_ids"])


# --- Intake --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookReceipt:
    status_code: int
    outcome: str  # stored | duplicate | ignored | malformed | unauthorized | too_large
    event_id: int | None = None


@dataclass(frozen=True)
class ParsedDelivery:
    store_hash: str
    scope: str
    resource: str | None
    resource_id: int
    payload: dict
    created_at: datetime
    dedup_key: str


def delivery_parse(body: bytes) -> ParsedDelivery | None:
    """A delivery's parts, or None when it is not a BigCommerce webhook payload."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    producer, scope, data = payload.get("producer"), payload.get("scope"), payload.get("data")
    if not (isinstance(producer, str) and producer.startswith("stores/") and len(producer) > len("stores/")):
        return None
    if not isinstance(scope, str) or not scope or not isinstance(data, dict):
        return None
    if not data.get("type") or data.get("id") is None:
        return None
    try:
        resource_id = int(data["id"])
    except (TypeError, ValueError):
        return None
    resource = PROCESSED_SCOPES.get(scope)
    if resource == "customers" and scope.startswith("store/customer/address/"):
        # Address events carry the address id; the customer is in data.address.customer_id.
        try:
            resource_id = int((data.get("address") or {})["customer_id"])
        except (KeyError, TypeError, ValueError):
            resource = None
    created_raw = payload.get("created_at")
    try:
        created_at = datetime.fromtimestamp(int(created_raw), tz=dt_timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    store_hash = producer[len("stores/"):]
    material = f"{scope}|{payload.get('hash') or ''}|{created_raw}"
    return ParsedDelivery(
        store_hash=store_hash, scope=scope, resource=resource, resource_id=resource_id, payload=payload,
        created_at=created_at, dedup_key=hashlib.sha256(material.encode()).hexdigest(),
    )


def webhook_event_receive(*, body: bytes, secret: str | None) -> WebhookReceipt:
    """Authenticate, de-duplicate and store one delivery, then ask for a (coalesced) webhook run.

    An unknown or uninstalled store gets the same 401 as a wrong secret: there is no secret to check
    the delivery against, and a distinct answer would tell a prober which store hashes use the app.
    """
    if len(body) > MAX_BODY_BYTES:
        return WebhookReceipt(413, "too_large")
    delivery = delivery_parse(body)
    if delivery is None:
        return WebhookReceipt(400, "malformed")
    store = (Store.objects.filter(store_hash=delivery.store_hash, is_installed=True)
             .only("pk", "store_hash", "webhook_secret", "is_installed").first())
    if store is None or not store.webhook_secret or not secret:
        return WebhookReceipt(401, "unauthorized")
    if not hmac.compare_digest(secret.encode(), store.webhook_secret.encode()):
        return WebhookReceipt(401, "unauthorized")

    status = WebhookEvent.Status.PENDING if delivery.resource else WebhookEvent.Status.IGNORED
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                store=store, dedup_key=delivery.dedup_key, scope=delivery.scope,
                resource=delivery.resource or delivery.scope.split("/")[1][:20], resource_id=delivery.resource_id,
                payload=delivery.payload, bc_created_at=delivery.created_at, status=status,
            )
    except IntegrityError:
        WebhookEvent.objects.filter(store=store, dedup_key=delivery.dedup_key).update(duplicates=F("duplicates") + 1)
        return WebhookReceipt(200, "duplicate")
    if status == WebhookEvent.Status.IGNORED:
        return WebhookReceipt(200, "ignored", event.pk)
    # Coalescing, cheaply: during a burst a run is already active and absorbs this event (its end
    # drains whatever is still pending), so one indexed EXISTS is all most deliveries cost.
    from .models import SyncRun

    if not SyncRun.objects.filter(store_id=store.pk, status__in=SyncRun.ACTIVE_STATUSES).exists():
        webhook_run_request(store=store)
    return WebhookReceipt(200, "stored", event.pk)


def webhook_run_request(*, store: Store):
    """Ask for a webhook run unless one cannot start (no live connection); an active run absorbs it."""
    from .runs import sync_run_request
    from .models import SyncRun

    if not Connection.objects.filter(store=store, state=Connection.State.ACTIVE).exists():
        return None
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.WEBHOOK, requested_by="webhook")
    return run
