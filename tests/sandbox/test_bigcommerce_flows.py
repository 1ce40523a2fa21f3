"""The emulated BigCommerce's app flows (install, token, launch, uninstall, users), the control panel,
webhook delivery and seeding."""

import hashlib
import json
import re
import time
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import responses
from django.conf import settings

from sandbox.bigcommerce import services
from sandbox.bigcommerce.models import (
    AppInstall,
    Customer,
    Hook,
    Order,
    Script,
    Subscriber,
    WebhookDelivery,
)
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.serializers import CATALOG, order_lines
from sandbox.bigcommerce.webhooks import webhook_deliveries_run, webhook_delivery_run

pytestmark = pytest.mark.django_db

PANEL = "/sandbox/bigcommerce/store-demo1234/manage"
TOKEN_URL = "/sandbox/bigcommerce/login/oauth2/token"


@pytest.fixture
def store():
    store = seed_bigcommerce(store_hash="demo1234", name="Acme Outdoor Co.", customers=60, orders=150, seed=3)
    seed_users(store_hash="demo1234")
    return store


def _iframe_src(response) -> str:
    return unescape(re.search(r'<iframe[^>]*src="([^"]+)"', response.content.decode()).group(1))


def _install_via_panel(client) -> dict:
    """Marketplace -> Install -> tick -> Confirm; returns the auth callback's query."""
    assert "Install" in client.get(f"{PANEL}/marketplace/").content.decode()
    page = client.get(f"{PANEL}/marketplace/ortto-bridge/install/").content.decode()
    assert "Ortto Bridge is requesting to update its access to your BigCommerce store" in page
    response = client.post(f"{PANEL}/marketplace/ortto-bridge/install/", {"agree": "1"})
    src = _iframe_src(response)
    assert src.startswith(settings.PUBLIC_URL + "/bigcommerce/auth/?")
    return {key: values[0] for key, values in parse_qs(urlparse(src).query).items()}


def _token_request(**overrides) -> dict:
    return {
        "client_id": settings.BIGCOMMERCE_CLIENT_ID, "client_secret": settings.BIGCOMMERCE_CLIENT_SECRET,
        "grant_type": "authorization_code", "redirect_uri": settings.PUBLIC_URL + "/bigcommerce/auth/",
        **overrides,
    }


def test_install_confirm_and_token_exchange(client, store):
    callback = _install_via_panel(client)
    assert callback["context"] == "stores/demo1234"
    assert callback["scope"] == services.APP_SCOPES
    data = _token_request(code=callback["code"], scope=callback["scope"], context=callback["context"])
    response = client.post(TOKEN_URL, data, content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "scope", "user", "owner", "context", "account_uuid"}
    assert body["user"] == {"id": 1001, "username": "owner@acme.example", "email": "owner@acme.example"}
    assert body["owner"]["id"] == 1001
    assert body["account_uuid"] == callback["account_uuid"]
    # The token now opens the store API.
    api = client.get("/sandbox/bigcommerce/api/stores/demo1234/v2/store", HTTP_X_AUTH_TOKEN=body["access_token"])
    assert api.status_code == 200
    # Single use: the same code a second time is refused.
    again = client.post(TOKEN_URL, data, content_type="application/json")
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_token_endpoint_accepts_form_bodies(client, store):
    install = services.app_install_grant(store=store, user=store.users.get(is_owner=True))
    data = _token_request(code=install.granted_code, scope=services.APP_SCOPES, context="stores/demo1234")
    assert client.post(TOKEN_URL, data).status_code == 200


@pytest.mark.parametrize("override, status", [
    ({"client_secret": "wrong"}, 401),
    ({"redirect_uri": "https://elsewhere.example/auth"}, 400),
    ({"grant_type": "password"}, 400),
    ({"context": "stores/other"}, 400),
    ({"code": "not-the-code"}, 400),
])
def test_token_endpoint_errors(client, store, override, status):
    install = services.app_install_grant(store=store, user=store.users.get(is_owner=True))
    data = _token_request(code=install.granted_code, scope=services.APP_SCOPES, context="stores/demo1234")
    response = client.post(TOKEN_URL, {**data, **override}, content_type="application/json")
    assert response.status_code == status
    assert response.json()["error"]


def test_expired_code_is_refused(client, store):
    install = services.app_install_grant(store=store, user=store.users.get(is_owner=True))
    AppInstall.objects.filter(pk=install.pk).update(code_expires_at="2000-01-01T00:00:00Z")
    data = _token_request(code=install.granted_code, scope=services.APP_SCOPES, context="stores/demo1234")
    assert client.post(TOKEN_URL, data, content_type="application/json").status_code == 400


def test_launch_renders_the_load_callback_with_a_bigcommerce_jwt(client, store):
    services.app_install_complete(store=store)
    apps = client.get(f"{PANEL}/apps/").content.decode()
    assert "Launch" in apps and "Uninstall" in apps
    client.post(f"{PANEL}/switch-user/", {"user_id": 1002})
    response = client.get(f"{PANEL}/app/{settings.BIGCOMMERCE_APP_ID}")
    src = _iframe_src(response)
    assert src.startswith(settings.PUBLIC_URL + "/bigcommerce/load/?signed_payload_jwt=")
    token = parse_qs(urlparse(src).query)["signed_payload_jwt"][0]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, settings.BIGCOMMERCE_CLIENT_SECRET, algorithms=["HS256"],
                        audience=settings.BIGCOMMERCE_CLIENT_ID)
    assert set(claims) == {"aud", "iss", "iat", "nbf", "exp", "jti", "sub", "user", "owner", "url", "channel_id"}
    assert claims["iss"] == "bc" and claims["sub"] == "stores/demo1234"
    assert claims["exp"] - claims["iat"] == 24 * 3600 and claims["nbf"] == claims["iat"]
    assert claims["user"] == {"id": 1002, "email": "staff@acme.example", "locale": "en-US"}
    assert claims["owner"] == {"id": 1001, "email": "owner@acme.example"}
    assert claims["url"] == "/" and claims["channel_id"] is None


@responses.activate
def test_uninstall_revokes_token_removes_scripts_and_hooks_and_calls_the_app(client, store):
    install = services.app_install_complete(store=store)
    services.script_create(store=store, client_id=install.client_id,
                           values={"name": "t", "kind": "src", "src": "https://x/t.js", "auto_uninstall": True})
    services.hook_create(store=store, client_id=install.client_id,
                         values={"scope": "store/order/*", "destination": "https://bridge.example/wh"})
    responses.get(re.compile(re.escape(settings.PUBLIC_URL) + r"/bigcommerce/uninstall/\?signed_payload_jwt=.+"),
                  status=204)
    client.post(f"{PANEL}/apps/uninstall/")
    assert len(responses.calls) == 1
    install.refresh_from_db()
    assert not install.installed and install.access_token == ""
    assert not Script.objects.filter(store=store).exists()
    assert not Hook.objects.filter(store=store).exists()
    api = client.get("/sandbox/bigcommerce/api/stores/demo1234/v2/store", HTTP_X_AUTH_TOKEN="x")
    assert api.status_code == 401


@responses.activate
def test_remove_user_calls_the_app_with_that_users_jwt(client, store):
    services.app_install_complete(store=store)
    responses.get(re.compile(re.escape(settings.PUBLIC_URL) + r"/bigcommerce/remove-user/.*"), status=204)
    client.post(f"{PANEL}/users/1002/remove/")
    token = parse_qs(urlparse(responses.calls[0].request.url).query)["signed_payload_jwt"][0]
    claims = jwt.decode(token, settings.BIGCOMMERCE_CLIENT_SECRET, algorithms=["HS256"],
                        audience=settings.BIGCOMMERCE_CLIENT_ID)
    assert claims["user"]["id"] == 1002
    assert not store.users.filter(bc_id=1002).exists()


def test_staff_user_cannot_install(client, store):
    client.post(f"{PANEL}/switch-user/", {"user_id": 1002})
    response = client.post(f"{PANEL}/marketplace/ortto-bridge/install/", {"agree": "1"}, follow=True)
    assert "Only the store owner" in response.content.decode()
    assert not AppInstall.objects.filter(store=store, granted_code__gt="").exists()


@responses.activate
def test_customer_edit_fires_webhooks_and_updates_the_subscriber(client, store, settings):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    install = services.app_install_complete(store=store)
    services.hook_create(store=store, client_id=install.client_id,
                         values={"scope": "store/customer/*", "destination": "https://bridge.example/wh",
                                 "headers": {"X-Secret": "abc"}})
    services.hook_create(store=store, client_id=install.client_id,
                         values={"scope": "store/subscriber/created", "destination": "https://bridge.example/wh"})
    receiver = responses.post("https://bridge.example/wh", status=200)
    customer = Customer.objects.filter(store=store).exclude(
        email__in=Subscriber.objects.filter(store=store).values("email")).first()
    before = customer.date_modified
    response = client.post(f"{PANEL}/customers/{customer.bc_id}/edit/", {
        "first_name": "Siobhan", "last_name": "O'Brien", "email": customer.email, "newsletter": "on",
    })
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.date_modified > before and customer.last_name == "O'Brien"
    assert Subscriber.objects.get(store=store, email=customer.email).consents == ["marketing_newsletter"]

    delivered = webhook_deliveries_run(store=store)
    assert [d.status for d in delivered] == ["delivered", "delivered"]
    assert receiver.call_count == 2
    first = responses.calls[0].request
    payload = json.loads(first.body)
    assert payload["scope"] == "store/customer/updated"
    assert payload["data"] == {"type": "customer", "id": customer.bc_id}
    assert payload["producer"] == "stores/demo1234" and payload["store_id"] == str(store.numeric_id)
    assert payload["hash"] == hashlib.sha1(
        json.dumps(payload["data"], sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert first.headers["X-Secret"] == "abc"
    assert json.loads(responses.calls[1].request.body)["scope"] == "store/subscriber/created"


@responses.activate
def test_failed_delivery_is_retried_and_logged(store, settings):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    install = services.app_install_complete(store=store)
    services.hook_create(store=store, client_id=install.client_id,
                         values={"scope": "store/order/statusUpdated", "destination": "https://bridge.example/wh"})
    responses.post("https://bridge.example/wh", status=503)
    responses.post("https://bridge.example/wh", status=200)
    order = Order.objects.filter(store=store).first()
    services.order_status_set(order=order, status_id=5 if order.status_id != 5 else 10)
    delivery = WebhookDelivery.objects.get()
    delivery = webhook_delivery_run(delivery_id=delivery.pk, retry_delays=(0,))
    assert delivery.status == "delivered" and delivery.attempts == 2
    assert delivery.payload["data"]["status"]["new_status_id"] in (5, 10)


def test_guest_checkout_with_newsletter_tick(client, store, settings):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    response = client.post("/sandbox/bigcommerce/store-demo1234/checkout/", {
        "email": "new.shopper@example.org", "first_name": "Zoë", "last_name": "Ng", "quantity_114": 2,
        "subscribe": "on",
    })
    assert "Thank you" in response.content.decode()
    order = Order.objects.filter(store=store).order_by("-bc_id").first()
    assert order.customer_id == 0 and order.is_email_opt_in
    assert order.billing_address["email"] == "new.shopper@example.org"
    subscriber = Subscriber.objects.get(store=store, email="new.shopper@example.org")
    assert subscriber.source == "order" and subscriber.order_id == order.bc_id
    assert subscriber.consents == ["marketing_newsletter"]


def test_customer_checkout_without_tick_creates_no_subscriber(client, store):
    customer = Customer.objects.filter(store=store).exclude(
        email__in=Subscriber.objects.filter(store=store).values("email")).first()
    client.post("/sandbox/bigcommerce/store-demo1234/checkout/", {"customer_email": customer.email,
                                                                  "quantity_111": 1})
    order = Order.objects.filter(store=store).order_by("-bc_id").first()
    assert order.customer_id == customer.bc_id and not order.is_email_opt_in
    assert not Subscriber.objects.filter(store=store, email=customer.email).exists()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_guest_checkout_charges_the_listed_prices_and_shows_the_totals(client, store, settings):
    """Issue 25: a 2-item guest checkout charged 64.80 for a mug listed at 24.50."""
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    page = _text(client.get("/sandbox/bigcommerce/store-demo1234/checkout/").content.decode())
    assert "Titanium Mug $24.50" in page and "Trail Tent 2P $189.00" in page
    response = client.post("/sandbox/bigcommerce/store-demo1234/checkout/", {
        "email": "mug.buyer@example.org", "quantity_111": 0, "quantity_113": 2, "quantity_114": 1})
    order = Order.objects.filter(store=store).order_by("-bc_id").first()
    assert order.billing_address["email"] == "mug.buyer@example.org"
    # 2 × 24.50 + 1 × 18.00 = 67.00; 8 % tax 5.36; free shipping.
    assert (order.subtotal_ex_tax, order.total_tax, order.total_inc_tax) == (67, Decimal("5.36"), Decimal("72.36"))
    assert order.items_total == 3
    receipt = _text(response.content.decode())
    for text in ("2 × Titanium Mug $24.50 each $49.00", "1 × Wool Hiking Socks $18.00 each $18.00",
                 "Subtotal $67.00", "Shipping Free", "Tax (8%) $5.36", "Charged $72.36"):
        assert text in receipt, text
    # The API reports the same lines at the same prices.
    body = client.get(f"/sandbox/bigcommerce/api/stores/demo1234/v2/orders/{order.bc_id}",
                      {"include": "consignments.line_items", "consignment_structure": "object"},
                      HTTP_X_AUTH_TOKEN=services.app_install_complete(store=store).access_token,
                      HTTP_ACCEPT="application/json").json()
    assert body["subtotal_ex_tax"] == "67.0000" and body["total_inc_tax"] == "72.3600"
    products = body["consignments"]["shipping"][0]["line_items"]
    assert [(p["name"], p["price_ex_tax"], p["quantity"]) for p in products] == [
        ("Titanium Mug", "24.5000", 2), ("Wool Hiking Socks", "18.0000", 1)]


def test_checkout_without_a_product_places_nothing(client, store):
    before = Order.objects.filter(store=store).count()
    response = client.post("/sandbox/bigcommerce/store-demo1234/checkout/", {
        "email": "nothing@example.org", "quantity_111": 0})
    assert "Choose at least one product." in unescape(response.content.decode())
    assert Order.objects.filter(store=store).count() == before


def test_the_cart_shows_its_totals_and_checks_out_for_them(client, store, settings):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    url = "/sandbox/bigcommerce/store-demo1234/storefront/"
    client.post(url + "cart/", {"action": "add", "product_id": 111, "quantity": 1, "email": "c@example.org"})
    client.post(url + "cart/", {"action": "add", "product_id": 113, "quantity": 2})
    page = _text(client.get(url).content.decode())
    for text in ("1 × Trail Tent 2P $189.00 each $189.00", "2 × Titanium Mug $24.50 each $49.00",
                 "Subtotal $238.00", "Tax (8%) $19.04", "Total $257.04"):
        assert text in page, text
    placed = client.post(url + "cart/", {"action": "checkout"}, follow=True)
    order = Order.objects.filter(store=store).order_by("-bc_id").first()
    assert order.total_inc_tax == Decimal("257.04") and "$257.04 charged" in unescape(placed.content.decode())


def test_seeded_orders_sell_catalog_products_at_their_listed_prices(store):
    listed = {p["name"]: p["price"] for p in CATALOG}
    for order in Order.objects.filter(store=store)[:40]:
        (line,) = order_lines(order)
        assert Decimal(line["price"]) == listed[line["name"]], order.bc_id
        assert order.subtotal_ex_tax == listed[line["name"]] * line["quantity"]


def test_storefront_renders_enabled_scripts(client, store):
    install = services.app_install_complete(store=store)
    services.script_create(store=store, client_id=install.client_id, values={
        "name": "Ortto tracking", "kind": "script_tag", "html": "<script>window.ortto_marker=1</script>",
        "consent_category": "analytics"})
    services.script_create(store=store, client_id=install.client_id, values={
        "name": "Off", "kind": "src", "src": "https://cdn.example/off.js", "enabled": False})
    page = client.get("/sandbox/bigcommerce/store-demo1234/storefront/").content.decode()
    head = page.split("</head>")[0]
    # Verbatim, with the page's CSP nonce added (the storefront's Content-Security-Policy runs no other inline script).
    nonce = re.search(r"'nonce-([^']+)'", client.get("/sandbox/bigcommerce/store-demo1234/storefront/")
                      ["Content-Security-Policy"])
    assert nonce and re.search(r'<script nonce="[^"]+">window.ortto_marker=1</script>', head)
    assert "Scripts installed on this page" in page and "Ortto tracking" in page
    assert "off.js" not in page


def test_panel_pages_render_and_escape_names(client, store):
    Customer.objects.filter(store=store, bc_id=1).update(first_name="<b>Zoë</b>")
    for path in ("/", "/orders/", "/customers/", "/customers/subscribers/", "/users/", "/settings/api/",
                 "/settings/webhooks/", "/marketplace/", "/apps/"):
        response = client.get(PANEL + path)
        assert response.status_code == 200, path
        assert "Signed in as" in response.content.decode()
    customers = client.get(f"{PANEL}/customers/", {"q": "Zoë"}).content.decode()
    assert "&lt;b&gt;Zoë&lt;/b&gt;" in customers and "<b>Zoë</b>" not in customers
    assert client.get("/sandbox/bigcommerce/").status_code == 200


def test_order_status_change_from_panel(client, store):
    order = Order.objects.filter(store=store).exclude(status_id=2).first()
    client.post(f"{PANEL}/orders/{order.bc_id}/status/", {"status_id": 2})
    order.refresh_from_db()
    assert order.status_id == 2


def test_seeding_is_deterministic_and_idempotent(store):
    def snapshot():
        return (
            list(Customer.objects.filter(store=store).order_by("bc_id").values_list("bc_id", "email")),
            list(Order.objects.filter(store=store).order_by("bc_id").values_list("customer_id", "status_id",
                                                                                  "is_email_opt_in")),
            list(Subscriber.objects.filter(store=store).order_by("bc_id").values_list("email", "consents")),
        )

    first = snapshot()
    seed_bigcommerce(store_hash="demo1234", name="Acme Outdoor Co.", customers=60, orders=150, seed=3)
    assert snapshot() == first


def test_seeding_counts_and_mix():
    store = seed_bigcommerce(store_hash="demo1234", name="Acme Outdoor Co.")
    assert Customer.objects.filter(store=store).count() == 2000
    assert Order.objects.filter(store=store).count() == 5000
    customer_emails = set(Customer.objects.filter(store=store).values_list("email", flat=True))
    subscribers = list(Subscriber.objects.filter(store=store))
    opted_in = [s for s in subscribers if s.email in customer_emails and s.consents == ["marketing_newsletter"]]
    assert 0.30 < len(opted_in) / 2000 < 0.40
    assert {s.source for s in subscribers} == {"order", "storefront"}
    assert any(s.email not in customer_emails and s.consents == [] for s in subscribers)
    guests = Order.objects.filter(store=store, customer_id=0)
    assert 0.20 < guests.count() / 5000 < 0.30
    assert guests.filter(is_email_opt_in=True).exists()
    assert Customer.objects.filter(store=store, last_name="O'Brien").exists()
    assert Customer.objects.filter(store=store, first_name="<b>Zoë</b>").exists()
    modified = list(Customer.objects.filter(store=store).values_list("date_modified", flat=True))
    assert len(set(modified)) == len(modified)
    assert len(set(Order.objects.filter(store=store).values_list("status_id", flat=True))) > 5


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_webhooks_are_delivered_in_the_background_after_commit():
    store = seed_bigcommerce(store_hash="demo1234", name="Acme Outdoor Co.", customers=5, orders=5, seed=3)
    seed_users(store_hash="demo1234")
    install = services.app_install_complete(store=store)
    services.hook_create(store=store, client_id=install.client_id,
                         values={"scope": "store/order/created", "destination": "https://bridge.example/wh"})
    responses.post("https://bridge.example/wh", status=200)
    order = services.checkout_order_place(store=store, email="bg@example.org", first_name="B", last_name="G",
                                          subscribe=False)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not WebhookDelivery.objects.filter(status="delivered").exists():
        time.sleep(0.05)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered"
    assert delivery.payload["data"] == {"type": "order", "id": order.bc_id}


@responses.activate
def test_delete_customer_fires_store_customer_deleted(client, store, settings):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    install = services.app_install_complete(store=store)
    services.hook_create(store=store, client_id=install.client_id,
                         values={"scope": "store/customer/*", "destination": "https://bridge.example/wh"})
    responses.post("https://bridge.example/wh", status=200)
    customer = Customer.objects.filter(store=store).first()
    page = client.get(f"{PANEL}/customers/{customer.bc_id}/edit/").content.decode()
    assert "Delete customer" in page
    assert client.get(f"{PANEL}/customers/{customer.bc_id}/delete/").status_code == 405
    assert client.post(f"{PANEL}/customers/{customer.bc_id}/delete/").status_code == 302
    assert not Customer.objects.filter(pk=customer.pk).exists()
    webhook_deliveries_run(store=store)
    payload = json.loads(responses.calls[0].request.body)
    assert payload["scope"] == "store/customer/deleted" and payload["data"] == {"type": "customer", "id": customer.bc_id}
