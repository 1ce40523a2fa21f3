"""Write side of the emulated BigCommerce: the app install / launch / uninstall flow, the token
endpoint's logic, store edits (each bumps date_modified and fires webhooks) and scripts / hooks."""

import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from .errors import ApiError
from .models import AppInstall, Cart, Customer, Hook, Order, Product, SandboxStore, SandboxUser, Script, Subscriber
from .serializers import (
    CATALOG,
    CATALOG_SALE,
    CATALOG_STOCK,
    basket_totals,
    catalog_product,
    order_refunded_amount,
    order_tax,
)
from .webhooks import webhook_fire

APP_NAME = "Ortto Bridge"
# Customers modify (store_v2_customers): the bridge writes Ortto unsubscribes back (subscribers, customers);
# products read-only: the catalog mirror (sync/catalog/).
APP_SCOPES = ("store_v2_customers store_v2_orders_read_only store_v2_content store_v2_information_read_only "
              "store_cart_read_only store_v2_products_read_only")
CODE_TTL = timedelta(minutes=10)
MAX_SCRIPTS_PER_APP = 10
NEWSLETTER = "marketing_newsletter"


def account_uuid() -> str:
    """The developer-portal account that registered the app (stable per client id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-bigcommerce-account:{settings.BIGCOMMERCE_CLIENT_ID}"))


def next_bc_id(model, store: SandboxStore) -> int:
    return (model.objects.filter(store=store).aggregate(top=Max("bc_id"))["top"] or 0) + 1


# --- install, token, launch, uninstall ------------------------------------------------------------

def app_install_grant(*, store: SandboxStore, user: SandboxUser) -> AppInstall:
    """The merchant confirmed the scopes: issue a single-use grant code (10 minutes)."""
    install, _ = AppInstall.objects.get_or_create(store=store, client_id=settings.BIGCOMMERCE_CLIENT_ID)
    install.granted_code = secrets.token_hex(8)
    install.code_expires_at = timezone.now() + CODE_TTL
    install.code_used = False
    install.installed_by = user
    install.save(update_fields=["granted_code", "code_expires_at", "code_used", "installed_by"])
    return install


def app_auth_callback_url(*, install: AppInstall) -> str:
    query = urlencode({
        "code": install.granted_code,
        "scope": APP_SCOPES,
        "context": f"stores/{install.store.store_hash}",
        "account_uuid": account_uuid(),
    })
    return f"{settings.PUBLIC_URL}/bigcommerce/auth/?{query}"


class TokenError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def body(self) -> dict:
        return {"error": self.error, "error_description": self.description}


def _user_dict(user: SandboxUser | None) -> dict:
    if user is None:
        return {}
    return {"id": user.bc_id, "username": user.email, "email": user.email}


def token_exchange(*, data: dict) -> dict:
    """POST /oauth2/token: trade a grant code for the store's permanent access token."""
    if data.get("client_id") != settings.BIGCOMMERCE_CLIENT_ID or \
            not secrets.compare_digest(str(data.get("client_secret", "")), settings.BIGCOMMERCE_CLIENT_SECRET):
        raise TokenError(401, "invalid_client", "Invalid client id or client secret.")
    if data.get("grant_type") != "authorization_code":
        raise TokenError(400, "unsupported_grant_type", "grant_type must be authorization_code.")
    if data.get("redirect_uri") != f"{settings.PUBLIC_URL}/bigcommerce/auth/":
        raise TokenError(400, "invalid_grant", "redirect_uri does not match the app's auth callback URL.")
    context = str(data.get("context", ""))
    store_hash = context.removeprefix("stores/")
    if not context.startswith("stores/") or not store_hash:
        raise TokenError(400, "invalid_request", "context must be stores/{store_hash}.")
    code = str(data.get("code", ""))
    with transaction.atomic():
        # The conditional update is what makes the code single-use across concurrent requests.
        used = AppInstall.objects.filter(
            store__store_hash=store_hash, client_id=settings.BIGCOMMERCE_CLIENT_ID, granted_code=code,
            code_used=False, code_expires_at__gt=timezone.now(),
        ).exclude(granted_code="").update(code_used=True)
        if not used:
            raise TokenError(400, "invalid_grant", "The authorization code is invalid, expired or already used.")
        install = AppInstall.objects.select_related("store", "installed_by").get(
            store__store_hash=store_hash, client_id=settings.BIGCOMMERCE_CLIENT_ID
        )
        install.access_token = secrets.token_hex(16)[:31]
        install.scopes = APP_SCOPES
        install.installed = True
        install.installed_at = timezone.now()
        install.uninstalled_at = None
        install.save(update_fields=["access_token", "scopes", "installed", "installed_at", "uninstalled_at"])
    owner = install.store.users.filter(is_owner=True).first()
    return {
        "access_token": install.access_token,
        "scope": install.scopes,
        "user": _user_dict(install.installed_by or owner),
        "owner": _user_dict(owner),
        "context": f"stores/{store_hash}",
        "account_uuid": account_uuid(),
    }


def app_install_complete(*, store: SandboxStore, user: SandboxUser | None = None) -> AppInstall:
    """Install the app without the browser flow (tests, benchmarks): grant and exchange in one go."""
    user = user or store.users.filter(is_owner=True).first()
    install = app_install_grant(store=store, user=user)
    token_exchange(data={
        "client_id": settings.BIGCOMMERCE_CLIENT_ID, "client_secret": settings.BIGCOMMERCE_CLIENT_SECRET,
        "code": install.granted_code, "scope": APP_SCOPES, "grant_type": "authorization_code",
        "context": f"stores/{store.store_hash}", "redirect_uri": f"{settings.PUBLIC_URL}/bigcommerce/auth/",
    })
    install.refresh_from_db()
    return install


def signed_payload_jwt(*, store: SandboxStore, user: SandboxUser, url: str = "/") -> str:
    """The `signed_payload_jwt` BigCommerce sends to load / uninstall / remove_user callbacks."""
    owner = store.users.filter(is_owner=True).first() or user
    now = int(time.time())
    claims = {
        "aud": settings.BIGCOMMERCE_CLIENT_ID,
        "iss": "bc",
        "iat": now,
        "nbf": now,
        "exp": now + 24 * 3600,
        "jti": str(uuid.uuid4()),
        "sub": f"stores/{store.store_hash}",
        "user": {"id": user.bc_id, "email": user.email, "locale": "en-US"},
        "owner": {"id": owner.bc_id, "email": owner.email},
        "url": url,
        "channel_id": None,
    }
    return jwt.encode(claims, settings.BIGCOMMERCE_CLIENT_SECRET, algorithm="HS256")


def app_load_url(*, store: SandboxStore, user: SandboxUser) -> str:
    query = urlencode({"signed_payload_jwt": signed_payload_jwt(store=store, user=user)})
    return f"{settings.PUBLIC_URL}/bigcommerce/load/?{query}"


def live_install(store: SandboxStore) -> AppInstall | None:
    return AppInstall.objects.filter(
        store=store, client_id=settings.BIGCOMMERCE_CLIENT_ID, installed=True
    ).first()


@dataclass(frozen=True)
class CallbackResult:
    url: str
    status: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _call_app(path: str, jwt_token: str) -> CallbackResult:
    url = f"{settings.PUBLIC_URL}{path}?{urlencode({'signed_payload_jwt': jwt_token})}"
    try:
        response = requests.get(url, timeout=settings.HTTP_TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        return CallbackResult(url=url, status=None, error=str(exc))
    return CallbackResult(url=url, status=response.status_code,
                          error="" if response.ok else response.text[:300])


def app_uninstall(*, store: SandboxStore, user: SandboxUser) -> CallbackResult:
    """Revoke the token, remove the app's auto-uninstall scripts and its hooks, then tell the app."""
    install = live_install(store)
    if install is not None:
        with transaction.atomic():
            install.installed = False
            install.access_token = ""
            install.uninstalled_at = timezone.now()
            install.save(update_fields=["installed", "access_token", "uninstalled_at"])
            Script.objects.filter(store=store, api_client_id=install.client_id, auto_uninstall=True).delete()
            Hook.objects.filter(store=store, client_id=install.client_id).delete()
    return _call_app("/bigcommerce/uninstall/", signed_payload_jwt(store=store, user=user))


def user_add(*, store: SandboxStore, email: str) -> SandboxUser:
    bc_id = (store.users.aggregate(top=Max("bc_id"))["top"] or 1000) + 1
    return SandboxUser.objects.create(store=store, bc_id=bc_id, email=email.strip().lower(), is_owner=False)


def user_remove(*, store: SandboxStore, user: SandboxUser) -> CallbackResult:
    """Remove a (non-owner) user from the store and send the app its remove_user callback."""
    if user.is_owner:
        raise ValueError("The store owner cannot be removed.")
    token = signed_payload_jwt(store=store, user=user)
    user.delete()
    if live_install(store) is None:
        return CallbackResult(url="", status=None, error="The app is not installed.")
    return _call_app("/bigcommerce/remove-user/", token)


# --- customers, subscribers, orders ---------------------------------------------------------------

def _event_data(kind: str, bc_id: int, **extra) -> dict:
    return {"type": kind, "id": bc_id, **extra}


def subscriber_newsletter_set(
    *, store: SandboxStore, email: str, subscribed: bool, first_name: str = "", last_name: str = "",
    source: str = Subscriber.Source.STOREFRONT, order_id: int | None = None,
) -> Subscriber | None:
    """Tick or untick the newsletter for an email, as the storefront / checkout does.

    An unticked box creates nobody; an existing subscriber keeps its row with empty consents.
    """
    email = email.strip().lower()
    now = timezone.now()
    subscriber = Subscriber.objects.filter(store=store, email=email).first()
    if subscriber is None:
        if not subscribed:
            return None
        subscriber = Subscriber.objects.create(
            store=store, bc_id=next_bc_id(Subscriber, store), email=email, first_name=first_name,
            last_name=last_name, source=source, order_id=order_id, consents=[NEWSLETTER],
            date_created=now, date_modified=now,
        )
        webhook_fire(store=store, scope="store/subscriber/created", data=_event_data("subscriber", subscriber.bc_id))
        return subscriber
    consents = [c for c in subscriber.consents if c != NEWSLETTER] + ([NEWSLETTER] if subscribed else [])
    if sorted(consents) != sorted(subscriber.consents):
        subscriber.consents = consents
        if subscribed and order_id:
            subscriber.source, subscriber.order_id = source, order_id
        subscriber.date_modified = now
        subscriber.save()
        webhook_fire(store=store, scope="store/subscriber/updated", data=_event_data("subscriber", subscriber.bc_id))
    return subscriber


def customer_is_subscribed(customer: Customer) -> bool:
    subscriber = Subscriber.objects.filter(store=customer.store_id, email=customer.email).first()
    return bool(subscriber and NEWSLETTER in subscriber.consents)


def customer_create(*, store: SandboxStore, email: str, first_name: str, last_name: str,
                    newsletter: bool = False, address: dict | None = None) -> Customer:
    email = email.strip().lower()
    if Customer.objects.filter(store=store, email=email).exists():
        raise ValueError(f"A customer with the email {email} already exists.")
    now = timezone.now()
    bc_id = next_bc_id(Customer, store)
    customer = Customer.objects.create(
        store=store, bc_id=bc_id, email=email, first_name=first_name, last_name=last_name,
        addresses=[{"id": bc_id, **address}] if address else [], date_created=now, date_modified=now,
    )
    webhook_fire(store=store, scope="store/customer/created", data=_event_data("customer", bc_id))
    if newsletter:
        subscriber_newsletter_set(store=store, email=email, subscribed=True, first_name=first_name,
                                  last_name=last_name)
    return customer


def customer_update(*, customer: Customer, email: str, first_name: str, last_name: str,
                    newsletter: bool | None = None) -> Customer:
    """Edit from the control panel: bumps date_modified, fires store/customer/updated, and ticking
    or unticking the newsletter box updates the shopper's subscriber record."""
    email = email.strip().lower()
    if Customer.objects.filter(store=customer.store, email=email).exclude(pk=customer.pk).exists():
        raise ValueError(f"A customer with the email {email} already exists.")
    customer.email, customer.first_name, customer.last_name = email, first_name, last_name
    customer.date_modified = timezone.now()
    customer.save()
    webhook_fire(store=customer.store, scope="store/customer/updated", data=_event_data("customer", customer.bc_id))
    if newsletter is not None:
        subscriber_newsletter_set(store=customer.store, email=email, subscribed=newsletter,
                                  first_name=first_name, last_name=last_name)
    return customer


CUSTOMERS_WRITE_SCOPE = "store_v2_customers"
CUSTOMER_PUT_LIMIT = 10  # customers.v3.yml updateCustomers: "Limit of 10 customers per call."
CUSTOMER_PUT_FIELDS = {"email", "first_name", "last_name", "company", "phone", "notes",
                       "accepts_product_review_abandoned_cart_emails"}


def scope_require_customers_write(install) -> None:
    """Writes to customers and subscribers need the Customers *modify* scope (store_v2_customers)."""
    if CUSTOMERS_WRITE_SCOPE not in (install.scopes or "").split():
        raise ApiError(403, "You don't have a required scope to access the endpoint",
                       {"scope": f"{CUSTOMERS_WRITE_SCOPE} is required"})


def customers_update(*, store: SandboxStore, rows) -> list[Customer]:
    """PUT /v3/customers (customers.v3.yml updateCustomers): a list of customer_Put, each with its id; at
    most 10. All or nothing; each changed customer fires store/customer/updated."""
    if not isinstance(rows, list) or not rows:
        raise ApiError(422, "Input is invalid.", {"body": "a non-empty list of customers is required"})
    if len(rows) > CUSTOMER_PUT_LIMIT:
        raise ApiError(413, f"At most {CUSTOMER_PUT_LIMIT} customers per call.")
    found = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("id"), int):
            raise ApiError(422, "Input is invalid.", {f"[{index}].id": "id is required"})
        unknown = set(row) - CUSTOMER_PUT_FIELDS - {"id"}
        if unknown:
            raise ApiError(422, "Input is invalid.", {f"[{index}]": f"not supported: {', '.join(sorted(unknown))}"})
        flag = row.get("accepts_product_review_abandoned_cart_emails")
        if flag is not None and not isinstance(flag, bool):
            raise ApiError(422, "Input is invalid.",
                           {f"[{index}].accepts_product_review_abandoned_cart_emails": "must be a boolean"})
        customer = Customer.objects.filter(store=store, bc_id=row["id"]).first()
        if customer is None:
            raise ApiError(422, "Input is invalid.", {f"[{index}].id": f"customer {row['id']} not found"})
        found[index] = customer
    now = timezone.now()
    with transaction.atomic():
        for index, row in enumerate(rows):
            customer = found[index]
            for field, value in row.items():
                if field != "id":
                    setattr(customer, field, value.strip().lower() if field == "email" else value)
            customer.date_modified = now
            customer.save()
    for customer in found.values():
        webhook_fire(store=store, scope="store/customer/updated", data=_event_data("customer", customer.bc_id))
    return list(found.values())


def subscribers_delete(*, store: SandboxStore, subscribers) -> int:
    """DELETE /v3/customers/subscribers[/{id}]: gone, each firing store/subscriber/deleted."""
    ids = [s.bc_id for s in subscribers]
    Subscriber.objects.filter(store=store, bc_id__in=ids).delete()
    for bc_id in ids:
        webhook_fire(store=store, scope="store/subscriber/deleted", data=_event_data("subscriber", bc_id))
    return len(ids)


def customer_delete(*, customer: Customer) -> None:
    """The control panel's Delete customer (and DELETE /v3/customers?id:in=): fires store/customer/deleted."""
    store, bc_id = customer.store, customer.bc_id
    customer.delete()
    webhook_fire(store=store, scope="store/customer/deleted", data=_event_data("customer", bc_id))


def checkout_order_place(
    *, store: SandboxStore, email: str, first_name: str, last_name: str, subscribe: bool,
    customer: Customer | None = None, items: int = 1, subtotal: Decimal = Decimal("49.00"),
    city: str = "Austin", country: str = "United States", country_iso2: str = "US",
    line_items: list | None = None, cart_id: str = "",
) -> Order:
    """A shopper checks out (as a guest when `customer` is None). The "Subscribe to our newsletter"
    box sets is_email_opt_in and, ticked, subscribes the email with source "order".

    With `line_items` (the checkout page, a cart) the order charges what they add up to at their prices
    (serializers.basket_totals); `items` and `subtotal` describe an order without lines (tests, bulk)."""
    now = timezone.now()
    if customer is not None:
        email, first_name, last_name = customer.email, customer.first_name, customer.last_name
    if line_items:
        totals = basket_totals(line_items)
        items, subtotal = totals["items"], totals["subtotal"]
    subtotal = Decimal(subtotal).quantize(Decimal("0.01"))
    tax = order_tax(subtotal)
    order = Order.objects.create(
        store=store, bc_id=next_bc_id(Order, store), customer_id=customer.bc_id if customer else 0,
        status_id=11, is_email_opt_in=subscribe, items_total=items,
        billing_address={
            "first_name": first_name, "last_name": last_name, "street_1": "1 Checkout Way", "city": city,
            "state": "", "zip": "78701", "country": country, "country_iso2": country_iso2,
            "email": email.strip().lower(),
        },
        subtotal_ex_tax=subtotal, total_tax=tax, total_inc_tax=subtotal + tax,
        currency_code=store.currency_code, date_created=now, date_modified=now,
        line_items=line_items or [], cart_id=cart_id,
    )
    webhook_fire(store=store, scope="store/order/created", data=_event_data("order", order.bc_id))
    if subscribe:
        subscriber_newsletter_set(store=store, email=email, subscribed=True, first_name=first_name,
                                  last_name=last_name, source=Subscriber.Source.ORDER, order_id=order.bc_id)
    return order


def order_status_set(*, order: Order, status_id: int) -> Order:
    if status_id not in Order.STATUSES:
        raise ValueError(f"Unknown order status {status_id}.")
    previous = order.status_id
    if previous == status_id:
        return order
    order.status_id = status_id
    order.date_modified = timezone.now()
    order.save(update_fields=["status_id", "date_modified"])
    webhook_fire(store=order.store, scope="store/order/updated", data=_event_data("order", order.bc_id))
    webhook_fire(
        store=order.store, scope="store/order/statusUpdated",
        data=_event_data("order", order.bc_id, status={"previous_status_id": previous, "new_status_id": status_id}),
    )
    return order


def order_ship(*, order: Order) -> Order:
    """Ship the whole order (status 2 Shipped), as the control panel's Ship button does."""
    order.date_shipped = timezone.now()
    order.save(update_fields=["date_shipped"])
    return order_status_set(order=order, status_id=2)


def order_refund(*, order: Order, amount: Decimal) -> Order:
    """Refund part or all of the order: the refunded amount grows, the status becomes Partially Refunded (14)
    or Refunded (4), and store/order/refund/created fires (webhooks.v3.yml: data {type order, id, refund
    {refund_id}}) besides the status webhooks."""
    already = order_refunded_amount(order) if order.status_id != 4 else order.total_inc_tax
    amount = min(Decimal(amount).quantize(Decimal("0.01")), order.total_inc_tax - already)
    if amount <= 0:
        raise ValueError("Nothing left to refund on this order.")
    order.refunded_amount = already + amount
    order.date_modified = timezone.now()
    order.save(update_fields=["refunded_amount", "date_modified"])
    refund_id = next_refund_id(order)
    webhook_fire(store=order.store, scope="store/order/refund/created",
                 data=_event_data("order", order.bc_id, refund={"refund_id": refund_id}))
    status_id = 4 if order.refunded_amount >= order.total_inc_tax else 14
    if status_id != order.status_id:
        order_status_set(order=order, status_id=status_id)
    return order


def next_refund_id(order: Order) -> int:
    return order.bc_id * 10 + int(order.refunded_amount * 100) % 10


# --- carts ----------------------------------------------------------------------------------------


def cart_add(*, store: SandboxStore, product_id: int, quantity: int = 1, email: str = "",
             customer: Customer | None = None, cart: Cart | None = None) -> Cart:
    """Add a catalog product to the shopper's cart (a new one when there is none or it is gone)."""
    product = catalog_product(product_id)
    if product is None:
        raise ValueError(f"No product {product_id} in the catalog.")
    if cart is None or cart.status not in (Cart.Status.ACTIVE, Cart.Status.ABANDONED):
        cart = Cart(store=store, currency_code=store.currency_code)
    if customer is not None:
        cart.customer_id, cart.email = customer.bc_id, customer.email
    elif email:
        cart.email = email.strip().lower()
    items = list(cart.items)
    line = next((i for i in items if i["product_id"] == product["product_id"]), None)
    if line is None:
        line = {"id": str(uuid.uuid4()), "product_id": product["product_id"],
                "variant_id": product["variant_id"], "sku": product["sku"], "name": product["name"],
                "options": product["options"], "quantity": int(quantity), "price": str(product["price"])}
        items.append(line)
        scope = "store/cart/lineItem/created"
    else:
        line["quantity"] += int(quantity)
        scope = "store/cart/lineItem/updated"
    cart.items = items
    cart.status = Cart.Status.ACTIVE  # any activity makes an abandoned cart active again
    cart.save()
    # webhooks.v3.yml, store_cart_lineItem_created / _updated: data {type cart_line_item, id <line item>, cartId}.
    webhook_fire(store=store, scope=scope, data={"type": "cart_line_item", "id": line["id"], "cartId": cart.cart_id})
    return cart


# --- catalog --------------------------------------------------------------------------------------


def product_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def catalog_ensure(store: SandboxStore) -> None:
    """The store's catalog rows, created from serializers.CATALOG the first time anything reads them."""
    if Product.objects.filter(store=store).exists():
        return
    now = timezone.now()
    Product.objects.bulk_create([Product(
        store=store, bc_id=p["product_id"], variant_id=p["variant_id"], sku=p["sku"], name=p["name"],
        slug=product_slug(p["name"]),
        option_name=p["options"][0][0] if p["options"] else "", option_value=p["options"][0][1] if p["options"] else "",
        price=p["price"], sale_price=CATALOG_SALE.get(p["product_id"], Decimal("0")),
        inventory_level=CATALOG_STOCK.get(p["product_id"], 10), date_modified=now) for p in CATALOG],
        ignore_conflicts=True)


def product_restock(*, product: Product, quantity: int) -> Product:
    """The control panel's Restock: set the variant's stock (an absolute adjustment) and fire what BigCommerce
    fires for it (webhooks.v3.yml: store/product/inventory/updated with data.inventory {product_id, method,
    value}, and store/sku/inventory/updated with the variant)."""
    if quantity < 0:
        raise ValueError("Stock cannot be negative.")
    product.inventory_level = quantity
    product.date_modified = timezone.now()
    product.save(update_fields=["inventory_level", "date_modified"])
    webhook_fire(store=product.store, scope="store/product/inventory/updated", data={
        "type": "product", "id": product.bc_id,
        "inventory": {"product_id": product.bc_id, "method": "absolute", "value": quantity}})
    webhook_fire(store=product.store, scope="store/sku/inventory/updated", data={
        "type": "sku", "id": product.variant_id,
        "inventory": {"product_id": product.bc_id, "method": "absolute", "value": quantity,
                      "variant_id": product.variant_id}})
    return product


def cart_abandon(*, cart: Cart) -> Cart:
    """What BigCommerce does after an hour without activity, now: the cart gets its abandoned-cart token
    and store/cart/abandoned fires (webhooks.v3.yml: data {type cart, id <cart uuid>, token})."""
    if cart.status not in (Cart.Status.ACTIVE, Cart.Status.ABANDONED):
        raise ValueError("This cart is no longer open.")
    cart.status = Cart.Status.ABANDONED
    cart.abandoned_token = cart.abandoned_token or secrets.token_hex(16)
    cart.save(update_fields=["status", "abandoned_token", "updated_time"])
    webhook_fire(store=cart.store, scope="store/cart/abandoned",
                 data={"type": "cart", "id": cart.cart_id, "token": cart.abandoned_token})
    return cart


def cart_recover(*, store: SandboxStore, token: str) -> Cart | None:
    """The cart an abandoned-cart link's token names, while it can still be bought."""
    if not token:
        return None
    return Cart.objects.filter(store=store, abandoned_token=token,
                               status__in=(Cart.Status.ACTIVE, Cart.Status.ABANDONED)).first()


def cart_checkout(*, cart: Cart, first_name: str = "Cart", last_name: str = "Shopper",
                  subscribe: bool = False) -> Order:
    """Check the cart out: an order with its lines, the cart gone (converted), store/cart/converted fired
    (webhooks.v3.yml: data {type cart, id, orderId})."""
    if cart.status not in (Cart.Status.ACTIVE, Cart.Status.ABANDONED) or not cart.items:
        raise ValueError("This cart cannot be checked out.")
    if not cart.email:
        raise ValueError("An email address is needed to check out.")
    customer = Customer.objects.filter(store=cart.store, bc_id=cart.customer_id).first() if cart.customer_id else None
    order = checkout_order_place(
        store=cart.store, email=cart.email, first_name=first_name, last_name=last_name, subscribe=subscribe,
        customer=customer, line_items=[{k: i[k] for k in ("product_id", "variant_id", "sku", "name", "options", "quantity", "price")}
                    for i in cart.items], cart_id=cart.cart_id,
    )
    cart.status, cart.order_id = Cart.Status.CONVERTED, order.bc_id
    cart.save(update_fields=["status", "order_id", "updated_time"])
    webhook_fire(store=cart.store, scope="store/cart/converted",
                 data={"type": "cart", "id": cart.cart_id, "orderId": order.bc_id})
    return order


# --- scripts ------------------------------------------------------------------------------------

SCRIPT_CHOICES = {
    "kind": ("src", "script_tag"),
    "load_method": ("default", "async", "defer"),
    "location": ("head", "footer"),
    "visibility": ("storefront", "all_pages", "checkout", "order_confirmation"),
    "consent_category": ("essential", "functional", "analytics", "targeting"),
}
SCRIPT_TAG = re.compile(r"<script\b", re.IGNORECASE)


def _script_validate(values: dict, *, creating: bool) -> dict:
    errors = {}
    if creating and not str(values.get("name") or "").strip():
        errors["name"] = "name is required"
    elif "name" in values and not (1 <= len(str(values["name"])) <= 255):
        errors["name"] = "name must be 1 to 255 characters"
    for field, choices in SCRIPT_CHOICES.items():
        if field in values and values[field] not in choices:
            errors[field] = f"must be one of {', '.join(choices)}"
    for field in ("auto_uninstall", "enabled"):
        if field in values and not isinstance(values[field], bool):
            errors[field] = "must be a boolean"
    hashes = values.get("integrity_hashes")
    if hashes is not None and (not isinstance(hashes, list) or len(hashes) > 5):
        errors["integrity_hashes"] = "must be a list of at most 5 hashes"
    if "channel_id" in values and (not isinstance(values["channel_id"], int) or values["channel_id"] < 1):
        errors["channel_id"] = "must be an integer >= 1"
    if errors:
        raise ApiError(422, "JSON data is missing or invalid", errors)
    return values


def _script_check_kind(script: Script) -> None:
    errors = {}
    if script.kind == "script_tag":
        if len(SCRIPT_TAG.findall(script.html or "")) != 1:
            errors["html"] = "html must contain exactly one <script> tag"
        if script.src:
            errors["src"] = "src is not allowed for kind script_tag"
        if script.load_method != "default":
            errors["load_method"] = "load_method must be default for kind script_tag"
        if len(script.html) > 65536:
            errors["html"] = "html must be at most 65536 characters"
    else:
        if not script.src:
            errors["src"] = "src is required for kind src"
        if script.html:
            errors["html"] = "html is not allowed for kind src"
    if errors:
        raise ApiError(422, "JSON data is missing or invalid", errors)


SCRIPT_FIELDS = ("name", "description", "html", "src", "auto_uninstall", "load_method", "location",
                 "visibility", "kind", "consent_category", "enabled", "channel_id", "integrity_hashes")


def script_create(*, store: SandboxStore, client_id: str, values: dict) -> Script:
    _script_validate(values, creating=True)
    if Script.objects.filter(store=store, api_client_id=client_id).count() >= MAX_SCRIPTS_PER_APP:
        raise ApiError(422, f"An app may install at most {MAX_SCRIPTS_PER_APP} scripts.",
                       {"scripts": "limit reached"})
    script = Script(store=store, api_client_id=client_id)
    for field in SCRIPT_FIELDS:
        if values.get(field) is not None:
            setattr(script, field, values[field])
    _script_check_kind(script)
    script.save()
    return script


def script_update(*, script: Script, values: dict) -> Script:
    _script_validate(values, creating=False)
    for field in SCRIPT_FIELDS:
        if field in values and values[field] is not None:
            setattr(script, field, values[field])
    _script_check_kind(script)
    script.save()
    return script


# --- hooks --------------------------------------------------------------------------------------

def _hook_validate(values: dict, *, creating: bool) -> None:
    errors = {}
    for field in ("scope", "destination"):
        if creating and not values.get(field):
            errors[field] = "error.path.missing"
    if values.get("scope") and not re.fullmatch(r"store/[A-Za-z/*_]+", str(values["scope"])):
        errors["scope"] = "invalid scope"
    if values.get("destination") and not re.match(r"https?://", str(values["destination"])):
        errors["destination"] = "destination must be an http(s) URL"
    if "is_active" in values and not isinstance(values["is_active"], bool):
        errors["is_active"] = "must be a boolean"
    headers = values.get("headers")
    if headers is not None and not (isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())):
        errors["headers"] = "must be an object of strings"
    if errors:
        raise ApiError(422, "JSON data is missing or invalid", errors)


def _hook_save(hook: Hook) -> Hook:
    duplicate = Hook.objects.filter(store=hook.store, client_id=hook.client_id, scope=hook.scope,
                                    destination=hook.destination).exclude(pk=hook.pk)
    if duplicate.exists():
        raise ApiError(422, "A webhook with this scope and destination already exists.",
                       {"destination": "duplicate"})
    try:
        with transaction.atomic():
            hook.save()
    except IntegrityError:
        raise ApiError(422, "A webhook with this scope and destination already exists.",
                       {"destination": "duplicate"}) from None
    return hook


def hook_create(*, store: SandboxStore, client_id: str, values: dict) -> Hook:
    _hook_validate(values, creating=True)
    # Hook ids are global in BigCommerce, not per store.
    bc_id = (Hook.objects.aggregate(top=Max("bc_id"))["top"] or 22561000) + 1
    hook = Hook(store=store, client_id=client_id, bc_id=bc_id, scope=values["scope"],
                destination=values["destination"], is_active=values.get("is_active", True),
                headers=values.get("headers") or {})
    return _hook_save(hook)


def hook_update(*, hook: Hook, values: dict) -> Hook:
    _hook_validate(values, creating=False)
    for field in ("scope", "destination", "is_active", "headers"):
        if field in values:
            setattr(hook, field, values[field])
    return _hook_save(hook)


def hooks_deactivate(*, store: SandboxStore) -> int:
    """Deactivate every hook of the store, as BigCommerce does to hooks whose deliveries kept failing for
    about 48 h (docs/integrations/webhooks/overview.mdx): they stay registered, is_active false, and fire no
    more until an app re-activates them with PUT is_active true."""
    return Hook.objects.filter(store=store, is_active=True).update(is_active=False, updated_at=timezone.now())


def current_customer_token(*, store: SandboxStore, customer: Customer) -> str:
    """The Current Customer API's JWT (current_customer.yml: the payload it documents), HS256 with the app's
    client secret, valid 15 minutes."""
    now = int(time.time())
    return jwt.encode({
        "customer": {"id": customer.bc_id, "email": customer.email, "group_id": "0"},
        "iss": "bc/apps", "sub": store.store_hash, "iat": now, "exp": now + 900, "version": 1,
        "aud": settings.BIGCOMMERCE_CLIENT_ID, "application_id": settings.BIGCOMMERCE_CLIENT_ID,
        "store_hash": store.store_hash, "operation": "current_customer",
    }, settings.BIGCOMMERCE_CLIENT_SECRET, algorithm="HS256")
