"""BigCommerce webhook intake: the middleware, the view and the service that take in deliveries.

Registering the hooks is sync/intake/hooks.py. Deliveries only carry ids. The receiver authenticates them (a per-store secret header the bridge set
when it created the hooks), stores each once (dedup on scope + BigCommerce's payload hash + created_at),
answers at once, and asks for a webhook run; the run fetches the records and pushes them through the
same pipeline as every other sync. The scheduled incremental sweep catches whatever webhooks miss.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone as dt_timezone
from functools import lru_cache

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import F
from django.http import HttpResponse, HttpResponseNotAllowed
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from stores.fields import decrypt
from stores.json_limits import id_in_range, json_depth_within
from stores.models import Store, WebhookEvent
from sync.engine.runs import webhook_run_request
from sync.intake.cursors import intake_cursor
from sync.intake.hooks import SECRET_HEADER, WEBHOOK_PATH
from sync.models import SyncRun
from sync.queue import enqueue

logger = logging.getLogger("sync.intake.webhooks")

# The largest delivery taken in (BigCommerce's are well under 1 KiB: they carry ids only).
MAX_BODY_BYTES = 64 * 1024

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
    # A refund changes the order's refunded amount (webhooks.v3.yml: data.id is the order's id).
    "store/order/refund/created": "orders",
    # Carts carry a UUID, not a number: data.id is the cart's id (and data.token, on abandoned, the
    # abandoned-cart token; data.orderId, on converted, the order). The run reads them from the payload.
    "store/cart/abandoned": "carts",
    "store/cart/converted": "carts",
    # Cart line items (webhooks.v3.yml, store_cart_lineItem_created / _updated): data.id is the line item's
    # UUID and data.cartId the cart's; Added to cart (sync/catalog/journeys.py) reads them from the payload.
    "store/cart/lineItem/created": "cart_items",
    "store/cart/lineItem/updated": "cart_items",
    # The catalog mirror (sync/catalog/mirror.py): data.id is the product's id; a SKU's event names its product
    # in data.sku.product_id or data.inventory.product_id.
    "store/product/created": "products",
    "store/product/updated": "products",
    "store/product/deleted": "products",
    "store/product/inventory/updated": "products",
    "store/product/inventory/order/updated": "products",
    "store/sku/created": "products",
    "store/sku/updated": "products",
    "store/sku/deleted": "products",
    "store/sku/inventory/updated": "products",
    "store/sku/inventory/order/updated": "products",
}
# Carries only the id; the store's setting says what happens (sync/consent/erasure.py customer_deleted_handle).
CUSTOMER_DELETED = "store/customer/deleted"
CART_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


# --- Intake --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookReceipt:
    status_code: int
    outcome: str  # stored | duplicate | ignored | malformed | unauthorized | too_large
    event_id: int | None = None


@dataclass(frozen=True)
class ParsedDelivery:
    store_hash: str
    scope: str  # as stored: control characters dropped, cut to the column's length (the payload keeps it whole)
    resource: str | None
    resource_id: int
    payload: dict
    created_at: datetime
    dedup_key: str

    @property
    def resource_label(self) -> str:
        """The event's `resource` column: the processed resource, else the scope's second part ("store/x/…"
        → "x"), else the scope itself; an unknown scope of any shape is stored as ignored, never a 500."""
        if self.resource:
            return self.resource
        parts = self.scope.split("/")
        return (parts[1] if len(parts) > 1 and parts[1] else self.scope)[:20]


_SCOPE_COLUMN = 100  # WebhookEvent.scope's max_length
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f]")


def delivery_parse(body: bytes) -> ParsedDelivery | None:
    """A delivery's parts, or None when it is not a BigCommerce webhook payload."""
    if not json_depth_within(body) or b"\\u0000" in body:  # PostgreSQL's jsonb cannot store a NUL character
        return None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
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
    resource = PROCESSED_SCOPES.get(scope)
    if resource == "carts":
        # The cart's UUID stays in the payload; resource_id is the order it became (converted), else 0.
        if not isinstance(data["id"], str) or not CART_ID.match(data["id"]):
            return None
        data_id = data.get("orderId") or 0
    elif resource == "cart_items":
        if not all(isinstance(data.get(k), str) and CART_ID.match(data[k]) for k in ("id", "cartId")):
            return None
        data_id = 0
    elif resource == "products" and scope.startswith("store/sku/"):
        named = data.get("sku") if isinstance(data.get("sku"), dict) else data.get("inventory")
        data_id = (named or {}).get("product_id") if isinstance(named, dict) else None
    else:
        data_id = data["id"]
    try:
        resource_id = int(data_id)
    except (TypeError, ValueError):
        return None
    if not id_in_range(resource_id) and not (resource in ("carts", "cart_items") and resource_id == 0):
        return None
    if resource == "customers" and scope.startswith("store/customer/address/"):
        # Address events carry the address id; the customer is in data.address.customer_id.
        try:
            resource_id = int((data.get("address") or {})["customer_id"])
        except (KeyError, TypeError, ValueError):
            resource = None
        if not id_in_range(resource_id):
            return None
    created_raw = payload.get("created_at")
    try:
        created_at = datetime.fromtimestamp(int(created_raw), tz=dt_timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    store_hash = producer[len("stores/"):]
    material = f"{scope}|{payload.get('hash') or ''}|{created_raw}"
    return ParsedDelivery(
        store_hash=store_hash, scope=_UNSTORABLE.sub("", scope)[:_SCOPE_COLUMN], resource=resource, resource_id=resource_id, payload=payload,
        created_at=created_at, dedup_key=hashlib.sha256(material.encode()).hexdigest(),
    )


def webhook_event_receive(*, body: bytes, secret: str | None) -> WebhookReceipt:
    """Authenticate, de-duplicate and store one delivery, then ask for a (coalesced) webhook run.

    An unknown or uninstalled store gets the same 401 as a wrong secret: there is no secret to check
    the delivery against, and a distinct answer would tell a prober which store hashes use the app.

    This is the hottest path of the bridge (BigCommerce can send thousands of deliveries a minute), so
    it speaks SQL directly: one upsert that stores the event or counts the redelivery (no savepoint,
    no IntegrityError round trip), and one indexed EXISTS for new events. The store's id and stored
    secret are remembered per process, but never trusted: the upsert re-checks them against the store
    row in the same statement (see _IntakeSQL.upsert), so an uninstall or a new secret takes effect on
    the very next delivery; a process that knows nothing yet, or is told so, reads the store first.
    """
    if len(body) > MAX_BODY_BYTES:
        return WebhookReceipt(413, "too_large")
    delivery = delivery_parse(body)
    if delivery is None:
        return WebhookReceipt(400, "malformed")
    if not secret:
        return WebhookReceipt(401, "unauthorized")
    digest = hashlib.sha256(secret.encode()).digest()
    status = WebhookEvent.Status.PENDING if delivery.resource else WebhookEvent.Status.IGNORED
    connection = connections[WebhookEvent.objects.db]
    sql = _intake_sql(connection)
    with intake_cursor(connection) as cursor:
        stored = None
        known = _KNOWN_STORES.get(delivery.store_hash) if sql.upsert is not None else None
        if known is not None and hmac.compare_digest(digest, _secret_digest(known[1])):
            stored = _event_store(cursor, connection, sql, known, delivery, status)
        if stored is None:
            _KNOWN_STORES.pop(delivery.store_hash, None)
            cursor.execute(sql.store, (delivery.store_hash, True))
            known = cursor.fetchone()
            if known is None or not known[1] or not hmac.compare_digest(digest, _secret_digest(known[1])):
                return WebhookReceipt(401, "unauthorized")
            stored = _event_store(cursor, connection, sql, known, delivery, status)
            if stored is None:  # uninstalled, or a new secret, between the read and the write
                return WebhookReceipt(401, "unauthorized")
            if len(_KNOWN_STORES) >= 4096:
                _KNOWN_STORES.clear()
            _KNOWN_STORES[delivery.store_hash] = (known[0], known[1])
        store_id = known[0]
        event_id, created = stored
        if not created:
            return WebhookReceipt(200, "duplicate")
        if status == WebhookEvent.Status.IGNORED:
            if delivery.scope == CUSTOMER_DELETED:  # the store's choice: keep (default) or erase in Ortto
                enqueue("sync.tasks.consent_customer_deleted", store_id, event_id)
            return WebhookReceipt(200, "ignored", event_id)
        # Coalescing, cheaply: during a burst a run is already active and absorbs this event (its end
        # drains whatever is still pending, see sync.engine.runs._webhooks_followup), so one indexed EXISTS is
        # all most deliveries cost. It must run after the event is committed (autocommit above): the
        # run's end writes its status and then looks for pending events, this writes the event and then
        # looks for an active run, so at least one of the two sees the other.
        cursor.execute(sql.active_run, (store_id,))
        active = cursor.fetchone() is not None
    if not active:
        webhook_run_request(store=Store.objects.get(pk=store_id))
    return WebhookReceipt(200, "stored", event_id)


# store_hash -> (store id, stored (encrypted) webhook secret) of stores that authenticated in this
# process. Only a hint: every write re-checks both against the store row (authenticated stores only,
# so probes with made-up hashes cannot fill it).
_KNOWN_STORES: dict[str, tuple[int, str]] = {}


def _event_store(cursor, connection, sql: "_IntakeSQL", store: tuple[int, str], delivery: ParsedDelivery,
                 status: str) -> tuple[int | None, bool] | None:
    """(event id, stored?) ; None when the store row no longer is `store`, installed (the write is refused)."""
    if sql.upsert is None:
        return _event_insert_orm(store[0], delivery, status)
    # Outside a transaction (as a web request runs) a failed statement needs no savepoint; inside one
    # (a caller's atomic block), PostgreSQL would otherwise refuse every later statement of it.
    savepoint = transaction.atomic(using=connection.alias) if connection.in_atomic_block else contextlib.nullcontext()
    try:
        with sql.write_lock, savepoint:
            cursor.execute(sql.upsert, sql.values(connection, store, delivery, status))
            # With RETURNING, SQLite commits (autocommit) when the statement is stepped to its end,
            # which fetchone() does: the write lock is released, and the event committed, here.
            event_id, duplicates = cursor.fetchone()
    except IntegrityError:
        # The store_id subquery found no installed store with that id and secret: NULL store_id.
        return None
    return event_id, duplicates == 0  # `duplicates` is 0 only on insert


def _secret_digest(stored: str) -> bytes:
    return _secret_digest_memo(settings.FIELD_ENCRYPTION_KEY, stored)


@lru_cache(maxsize=1024)
def _secret_digest_memo(key: str, stored: str) -> bytes:
    """sha256 of a stored (encrypted) webhook secret's plain value, memoised by the ciphertext.

    Fernet decryption is most of a delivery's CPU otherwise. Keyed by the ciphertext, so a new secret
    (or a cleared one at uninstall) is a new key and is never answered from a stale entry; only the
    digest is kept, not the plain secret.
    """
    del key  # part of the memo key only: decrypt() reads the setting itself
    return hashlib.sha256(decrypt(stored).encode()).digest()


@dataclass(frozen=True)
class _IntakeSQL:
    store: str
    upsert: str | None  # None: the database cannot upsert with RETURNING; fall back to the ORM
    active_run: str
    prep: tuple
    # SQLite has one writer at a time, and a connection that finds the database locked polls for it
    # with sleeps of 1, 2, 5, 10... ms (its busy handler): with 8 threads per process writing, those
    # sleeps made a p99 of 100-270 ms. Threads of one process queue on this lock instead and wake the
    # moment it is free; only the processes still contend on SQLite's own lock.
    write_lock: object

    def values(self, connection, store: tuple[int, str], delivery: ParsedDelivery, status: str) -> tuple:
        # The adapters the fields' get_db_prep_save ends in, called directly: both datetimes are aware
        # (UTC) and the payload a parsed dict, so the fields' other steps had nothing to do.
        payload, _, _ = self.prep
        ops = connection.ops
        return (
            store[0], True, store[1], delivery.dedup_key, delivery.scope, delivery.resource_label,
            delivery.resource_id, ops.adapt_json_value(delivery.payload, payload.encoder),
            ops.adapt_datetimefield_value(delivery.created_at),
            ops.adapt_datetimefield_value(timezone.now()), str(status), 0,
        )


_INTAKE_SQL: dict[str, _IntakeSQL] = {}


def _intake_sql(connection) -> _IntakeSQL:
    """The intake's three statements for this database, built once per alias from the models' metadata."""
    sql = _INTAKE_SQL.get(connection.alias)
    if sql is not None:
        return sql
    qn = connection.ops.quote_name
    store_t, event_t, run_t = (qn(m._meta.db_table) for m in (Store, WebhookEvent, SyncRun))
    f = WebhookEvent._meta.get_field
    columns = [f(name).column for name in ("store", "dedup_key", "scope", "resource", "resource_id", "payload",
                                           "bc_created_at", "received_at", "status", "duplicates")]
    dup = qn(f("duplicates").column)
    # store_id is the store row's own id only while it is installed with the secret this process
    # checked; otherwise NULL, and the NOT NULL constraint refuses the write (IntegrityError).
    store_guard = (f"(SELECT {qn('id')} FROM {store_t} WHERE {qn('id')} = %s AND {qn('is_installed')} = %s "
                   f"AND {qn('webhook_secret')} = %s)")
    upsert = (
        f"INSERT INTO {event_t} ({', '.join(map(qn, columns))}) "
        f"VALUES ({', '.join([store_guard] + ['%s'] * (len(columns) - 1))}) "
        f"ON CONFLICT ({qn(f('store').column)}, {qn(f('dedup_key').column)}) "
        f"DO UPDATE SET {dup} = {event_t}.{dup} + 1 RETURNING {qn(f('id').column)}, {dup}"
    )
    active = ", ".join(f"'{s}'" for s in SyncRun.ACTIVE_STATUSES)
    sql = _IntakeSQL(
        store=f"SELECT {qn('id')}, {qn('webhook_secret')} FROM {store_t} WHERE {qn('store_hash')} = %s "
              f"AND {qn('is_installed')} = %s",
        upsert=upsert if _can_upsert(connection) else None,
        active_run=f"SELECT 1 FROM {run_t} WHERE {qn(SyncRun._meta.get_field('store').column)} = %s "
                   f"AND {qn('status')} IN ({active}) LIMIT 1",
        prep=(f("payload"), f("bc_created_at"), f("received_at")),
        write_lock=threading.Lock() if connection.vendor == "sqlite" else contextlib.nullcontext(),
    )
    _INTAKE_SQL[connection.alias] = sql
    return sql


def _can_upsert(connection) -> bool:
    # PostgreSQL, and SQLite >= 3.35 (RETURNING); both have ON CONFLICT (...) DO UPDATE.
    return connection.vendor in ("postgresql", "sqlite") and connection.features.can_return_columns_from_insert


def _event_insert_orm(store_id: int, delivery: ParsedDelivery, status: str) -> tuple[int | None, bool]:
    """The portable path: insert, and on the unique (store, dedup_key) conflict count a redelivery."""
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                store_id=store_id, dedup_key=delivery.dedup_key, scope=delivery.scope,
                resource=delivery.resource_label, resource_id=delivery.resource_id,
                payload=delivery.payload, bc_created_at=delivery.created_at, status=status,
            )
    except IntegrityError:
        WebhookEvent.objects.filter(store_id=store_id, dedup_key=delivery.dedup_key).update(
            duplicates=F("duplicates") + 1)
        return None, False
    return event.pk, True


# --- The view and the middleware that hands deliveries to it -----------------------------------


class RefusalLog:
    """One warning per (outcome, client address) per minute, then a count: a flood of wrong-secret posts
    writes a line a minute, not a line a post. Per process (each web process writes its own lines)."""

    WINDOW_SECONDS = 60
    MAX_KEYS = 1024

    def __init__(self):
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], list] = {}  # key -> [window start (monotonic), refusals not logged]

    def note(self, outcome: str, address: str, now: float) -> int | None:
        """None: do not log this refusal; else log it, with the count of refusals left unlogged before it."""
        key = (outcome, address)
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window[0] < self.WINDOW_SECONDS:
                window[1] += 1
                return None
            if window is None and len(self._windows) >= self.MAX_KEYS:
                # Many addresses at once: forget closed windows; if all are open, count under one key.
                self._windows = {k: w for k, w in self._windows.items() if now - w[0] < self.WINDOW_SECONDS}
                if len(self._windows) >= self.MAX_KEYS:
                    key = (outcome, "many addresses")
                    window = self._windows.get(key)
                    if window is not None and now - window[0] < self.WINDOW_SECONDS:
                        window[1] += 1
                        return None
            unlogged = window[1] if window is not None else 0
            self._windows[key] = [now, 0]
            return unlogged


refusal_log = RefusalLog()


def _refused(request, status: int, outcome: str, size) -> HttpResponse:
    # Never the body or the secret header: only what an operator needs to spot a misconfigured hook or a probe.
    address = request.META.get("REMOTE_ADDR", "-")
    unlogged = refusal_log.note(outcome, address, time.monotonic())
    if unlogged is not None:
        logger.warning("webhook delivery refused: %s (HTTP %d, %s bytes, from %s)%s", outcome, status, size, address,
                       f"; {unlogged} more like it from there in the minute before were not logged" if unlogged else "")
    return HttpResponse(status=status)


_SECRET_META = "HTTP_" + SECRET_HEADER.upper().replace("-", "_")


@csrf_exempt
def webhook_receive(request):
    """Answer BigCommerce at once with an empty body: 200 stored/duplicate/ignored, 4xx refused."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _refused(request, 400, "bad Content-Length", "?")
    if declared > MAX_BODY_BYTES:
        return _refused(request, 413, "too_large", declared)
    # META, not request.headers: that builds a dict of every header on first use, for the one we read.
    receipt = webhook_event_receive(body=request.body, secret=request.META.get(_SECRET_META))
    if receipt.status_code >= 400:
        return _refused(request, receipt.status_code, receipt.outcome, len(request.body))
    return HttpResponse(status=receipt.status_code)


class WebhookIntakeMiddleware:
    """Hands BigCommerce webhook deliveries straight to their view, past what only browser pages need.

    A delivery carries no cookie, session, user or CSRF token, and its view is csrf_exempt; sessions,
    CSRF, auth, messages and URL resolution were a third of a delivery's CPU. It sits after the
    security and X-Frame-Options middleware, so the response headers are the same as before, and it
    still validates the Host header against ALLOWED_HOSTS (400 otherwise) and sets Content-Length, as
    CommonMiddleware did.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info != WEBHOOK_PATH:
            return self.get_response(request)
        request.get_host()  # raises DisallowedHost (answered 400) for a host not in ALLOWED_HOSTS
        response = webhook_receive(request)
        if not response.has_header("Content-Length"):  # as CommonMiddleware sets it (no chunked empty body)
            response.headers["Content-Length"] = str(len(response.content))
        return response
