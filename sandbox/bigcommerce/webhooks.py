"""Webhook delivery as BigCommerce does it: a thin payload per event, POSTed to every active hook whose
scope matches, with the hook's own headers.

`webhook_fire` records one WebhookDelivery per matching hook and, after the surrounding transaction
commits, delivers them from a background thread so the edit that caused the event never waits.
Tests call `webhook_deliveries_run()` to deliver whatever is pending, synchronously.
"""

import hashlib
import json
import logging
import threading
import time

import requests
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .models import Hook, SandboxStore, WebhookDelivery

logger = logging.getLogger(__name__)

RETRY_DELAYS_SECONDS = (0.5, 2.0)  # BigCommerce waits minutes; the sandbox keeps the idea, not the wait


def scope_matches(hook_scope: str, event_scope: str) -> bool:
    if hook_scope == event_scope:
        return True
    return hook_scope.endswith("/*") and event_scope.startswith(hook_scope[:-1])


def webhook_payload(*, store: SandboxStore, scope: str, data: dict, created_at: int | None = None) -> dict:
    return {
        "scope": scope,
        "store_id": str(store.numeric_id),
        "data": data,
        "hash": hashlib.sha1(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest(),
        "created_at": created_at if created_at is not None else int(time.time()),
        "producer": f"stores/{store.store_hash}",
    }


def webhook_fire(*, store: SandboxStore, scope: str, data: dict) -> list[WebhookDelivery]:
    """Queue the event for every matching active hook; delivery starts after commit, in a thread."""
    hooks = [h for h in Hook.objects.filter(store=store, is_active=True) if scope_matches(h.scope, scope)]
    if not hooks:
        return []
    payload = webhook_payload(store=store, scope=scope, data=data)
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            hook=hook, store=store, scope=scope, destination=hook.destination,
            headers=hook.headers or {}, payload=payload,
        )
        for hook in hooks
    )
    ids = [d.pk for d in deliveries if d.pk]
    if ids and getattr(settings, "SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC", True):
        transaction.on_commit(lambda: _start_thread(ids))
    return deliveries


def _start_thread(delivery_ids: list[int]) -> None:
    threading.Thread(target=_deliver_in_thread, args=(delivery_ids,), daemon=True,
                     name="sandbox-bc-webhooks").start()


def _deliver_in_thread(delivery_ids: list[int]) -> None:
    try:
        for delivery_id in delivery_ids:
            webhook_delivery_run(delivery_id=delivery_id, retry_delays=RETRY_DELAYS_SECONDS)
    except Exception:  # a background thread has nobody to report to but the log
        logger.exception("sandbox webhook delivery failed")
    finally:
        connection.close()


def webhook_delivery_run(*, delivery_id: int, retry_delays=(), session=None) -> WebhookDelivery:
    """POST one delivery, retrying after each of `retry_delays`; records the outcome on the row."""
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    if delivery.status == WebhookDelivery.Status.DELIVERED:
        return delivery
    http = session or requests
    body = json.dumps(delivery.payload)
    headers = {"Content-Type": "application/json", "User-Agent": "BigCommerce-Sandbox-Webhooks",
               **(delivery.headers or {})}
    for attempt, delay in enumerate([0.0, *retry_delays]):
        if delay:
            time.sleep(delay)
        delivery.attempts += 1
        try:
            response = http.post(delivery.destination, data=body, headers=headers,
                                 timeout=getattr(settings, "HTTP_TIMEOUT_SECONDS", 10))
            delivery.response_status = response.status_code
            delivery.error = "" if response.ok else response.text[:500]
            if response.ok:
                delivery.status = WebhookDelivery.Status.DELIVERED
                delivery.delivered_at = timezone.now()
                break
        except requests.RequestException as exc:
            delivery.response_status = None
            delivery.error = str(exc)[:500]
        delivery.status = WebhookDelivery.Status.FAILED
    delivery.save(update_fields=["attempts", "response_status", "error", "status", "delivered_at"])
    if delivery.status == WebhookDelivery.Status.FAILED and retry_delays and delivery.hook_id:
        # The retries stand for BigCommerce's schedule (60 s up to 24 h, about 48 h in all); when they are
        # used up BigCommerce deactivates the hook (docs/integrations/webhooks/overview.mdx).
        Hook.objects.filter(pk=delivery.hook_id).update(is_active=False, updated_at=timezone.now())
    return delivery


def webhook_deliveries_run(*, store: SandboxStore | None = None, session=None) -> list[WebhookDelivery]:
    """Deliver every pending delivery now, in this thread (tests and management use)."""
    pending = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).order_by("id")
    if store is not None:
        pending = pending.filter(store=store)
    return [webhook_delivery_run(delivery_id=pk, session=session) for pk in pending.values_list("pk", flat=True)]
