"""The storefront's two endpoints (no session, no cookie: the storefront script posts from the store's own
domain):

- `POST /storefront/<store_hash>/back-in-stock/` (email, product_id, variant_id, consent): a shopper asks to be
  told when a sold-out variant is back. One wait per e-mail and variant however often it is sent; a
  "Waiting on stock" activity for the first. Rate-limited per IP and per store.
- `POST /storefront/<store_hash>/viewed/` (token, product_id): a signed-in shopper viewed a product. `token` is
  the Current Customer API's JWT (current_customer.yml), signed with the app's client secret and verified
  here with PyJWT (HS256, audience = the app's client id, the store's hash): the e-mail is the token's, never
  the browser's. One "Viewed product" per shopper, product and UTC day. The script posts only with the
  shopper's analytics consent.

Each accepted request writes a ProductActivity row and asks for a run (sync/catalog/journeys.py sends it).
Bad input is a 4xx that changes nothing.
"""

from __future__ import annotations

import logging

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from stores.models import Store
from sync import throttle
from sync.catalog import mirror
from sync.catalog.preferences import stock_consent_text
from sync.engine.mapping import clean_email, email_is_valid
from sync.engine.runs import webhook_run_request
from sync.models import Connection, ProductActivity, StockWait

logger = logging.getLogger("sync.catalog")

# Per client IP over all stores, and per store over all IPs: a form is a few posts a shopper.
FORM_IP = throttle.Rule("stock-form-ip", limit=10, window_seconds=10 * 60)
FORM_STORE = throttle.Rule("stock-form-store", limit=300, window_seconds=10 * 60)
VIEW_IP = throttle.Rule("product-view-ip", limit=120, window_seconds=10 * 60)
MAX_FIELD = 200


def _answer(status: int, message: str, **extra) -> JsonResponse:
    response = JsonResponse({"ok": status < 400, "message": message, **extra}, status=status)
    # The storefront's script reads the answer from the store's own origin; nothing here is a secret.
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "no-store"
    return response


def _live_store(store_hash: str) -> Store | None:
    store = Store.objects.filter(store_hash=store_hash[:64], is_installed=True).first()
    if store is None or not Connection.objects.filter(store=store, state=Connection.State.ACTIVE).exists():
        return None
    return store


def _positive_int(value, *, allow_zero=False) -> int | None:
    text = str(value or "").strip()
    if not text.isdigit() or len(text) > 18:
        return None
    number = int(text)
    return number if number > 0 or (allow_zero and number == 0) else None


def _limited(request, *rules_subjects) -> bool:
    return any(throttle.throttle_hit(rule=rule, subject=subject) > rule.limit for rule, subject in rules_subjects)


def _run_request(store: Store) -> None:

    try:
        webhook_run_request(store=store)
    except Exception:  # noqa: BLE001 — the row is saved; the next run (sweep) sends it
        logger.warning("store %s: could not ask for a run for a storefront event", store.store_hash, exc_info=True)


@csrf_exempt
@require_POST
def back_in_stock(request, store_hash: str):
    if _limited(request, (FORM_IP, throttle.client_ip(request)), (FORM_STORE, store_hash)):
        return _answer(429, "Too many requests. Try again in a few minutes.")
    store = _live_store(store_hash)
    if store is None:
        return _answer(404, "This store does not use back-in-stock alerts.")
    email = clean_email(request.POST.get("email"))[:MAX_FIELD + 60]
    product_id = _positive_int(request.POST.get("product_id"))
    variant_id = _positive_int(request.POST.get("variant_id") or "0", allow_zero=True)
    if not email_is_valid(email):
        return _answer(400, "Enter a valid e-mail address.")
    if product_id is None or variant_id is None:
        return _answer(400, "The product is missing or not a number.")
    if request.POST.get("consent") not in ("1", "on", "true", "yes"):
        return _answer(400, "Tick the box to be e-mailed when it is back.")
    stock = mirror.variant_in_stock(store, product_id, variant_id)
    if stock is None:
        return _answer(404, "This product is not in the store's catalog.")
    if stock:
        return _answer(409, "This product is in stock: it can be bought now.")
    # The wording the store shows (the app page's setting), not what the browser says it showed.
    consent = stock_consent_text(store)
    try:
        with transaction.atomic():
            wait = StockWait.objects.create(store=store, email=email, product_id=product_id, variant_id=variant_id,
                                            consent_text=consent)
            ProductActivity.objects.create(
                store=store, kind=ProductActivity.Kind.WAITING_ON_STOCK, email=email, product_id=product_id,
                variant_id=variant_id, dedup_key=f"wait:{wait.pk}:waiting", details={})
    except IntegrityError:
        return _answer(200, "You are on the list already: we will e-mail you once when it is back.", created=False)
    _run_request(store)
    return _answer(201, "Thanks! We will e-mail you once when it is back.", created=True)


def verified_customer(token: str, store_hash: str) -> dict | None:
    """The Current Customer JWT's `customer` ({id, email, ...}) when the token is the app's for this store."""
    try:
        claims = jwt.decode(token, settings.BIGCOMMERCE_CLIENT_SECRET, algorithms=["HS256"],
                            audience=settings.BIGCOMMERCE_CLIENT_ID, options={"require": ["exp", "iat", "aud"]},
                            leeway=30)
    except jwt.PyJWTError:
        return None
    customer = claims.get("customer")
    if claims.get("store_hash") != store_hash or claims.get("operation") != "current_customer" \
            or not isinstance(customer, dict):
        return None
    return customer


@csrf_exempt
@require_POST
def product_viewed(request, store_hash: str):
    if _limited(request, (VIEW_IP, throttle.client_ip(request))):
        return _answer(429, "Too many requests.")
    store = _live_store(store_hash)
    if store is None:
        return _answer(404, "Unknown store.")
    product_id = _positive_int(request.POST.get("product_id"))
    token = request.POST.get("token") or ""
    if product_id is None or not token or len(token) > 4096:
        return _answer(400, "A product id and the shopper's token are needed.")
    customer = verified_customer(token, store.store_hash)
    if customer is None:
        return _answer(403, "The shopper's token is not valid.")
    email = clean_email(customer.get("email"))
    customer_id = _positive_int(customer.get("id"))
    if not email_is_valid(email) or customer_id is None:
        return _answer(403, "The shopper's token names no customer.")
    day = timezone.now().date().isoformat()
    _, created = ProductActivity.objects.get_or_create(
        store=store, dedup_key=f"view:{customer_id}:{product_id}:{day}", defaults={
            "kind": ProductActivity.Kind.VIEWED_PRODUCT, "email": email, "product_id": product_id, "details": {}})
    if created:
        _run_request(store)
    return _answer(201 if created else 200, "Noted." if created else "Noted already today.", created=created)
