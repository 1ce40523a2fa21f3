"""The product journeys over real HTTP against the emulated BigCommerce and Ortto (sync/catalog/): Added to
cart from cart line-item webhooks, Waiting on stock -> Restock -> Back in stock, and Viewed product from a
verified Current Customer JWT (and nothing from a forged one). Each exactly once, with the product's links."""

import time

import jwt
import pytest
import requests
from django.conf import settings

from sandbox.bigcommerce import services as bc
from sandbox.bigcommerce.models import Customer, Product, WebhookDelivery
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from sandbox.bigcommerce.webhooks import webhook_deliveries_run
from sandbox.ortto.models import Person, PersonActivity
from sandbox.ortto.seed import seed_ortto_instances
from sync.engine.runs import sync_run_request
from sync.models import CatalogProduct, ProductActivity, StockWait, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

ADDED, VIEWED = "act:cm:added-to-cart", "act:cm:viewed-product"
WAITING, BACK = "act:cm:waiting-on-stock", "act:cm:back-in-stock"


@pytest.fixture
def synced(make_account, make_connection, make_store, sandbox_live, settings, queued_work_runs_inline, monkeypatch):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    monkeypatch.setattr("stores.http.backoff_delay", lambda attempt: 0.01 * attempt)

    def make(store_hash):
        sandbox_store = seed_bigcommerce(store_hash=store_hash, name="Product Outfitters", customers=8, orders=5,
                                         seed=3)
        seed_users(store_hash=store_hash)
        install = app_install_complete(store=sandbox_store)
        seed_ortto_instances()
        store = make_store(store_hash, name="Product Outfitters", access_token=install.access_token)
        connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=1)
        run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
        run.refresh_from_db()
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
        return sandbox_store, store, connection

    return make


def _deliver(sandbox_store, *, again=False):
    if again:  # BigCommerce redelivers the same events
        for delivery in WebhookDelivery.objects.filter(store=sandbox_store):
            delivery.payload = {**delivery.payload, "created_at": delivery.payload["created_at"] + 1}
            delivery.status = WebhookDelivery.Status.PENDING
            delivery.save()
    delivered = webhook_deliveries_run(store=sandbox_store)
    assert all(d.status == "delivered" for d in delivered), [(d.scope, d.status, d.error) for d in delivered]


def _links(activity) -> dict:
    return {name.split(":")[-1]: value for name, value in activity.attributes.items() if name.endswith("-url")}


def _attr(activity, name):
    return next(value for key, value in activity.attributes.items() if key.endswith(":" + name))


def test_the_initial_import_builds_the_mirror(synced):
    _, store, _ = synced("pj0")
    rows = {row.product_id: row for row in CatalogProduct.objects.filter(store=store)}
    assert set(rows) == {111, 112, 113, 114}
    assert rows[113].sale_price == 19.5 and rows[114].inventory_level == 0
    assert rows[111].url.endswith("/store-pj0/storefront/trail-tent-2p/")
    assert rows[111].variants.get().variant_id == 1110


def test_added_to_cart_once_per_cart_and_product(synced):
    sandbox_store, store, _ = synced("pj1")
    cart = bc.cart_add(store=sandbox_store, product_id=111, email="adder@example.com")
    cart = bc.cart_add(store=sandbox_store, product_id=111, quantity=2, cart=cart)  # lineItem/updated
    cart = bc.cart_add(store=sandbox_store, product_id=113, cart=cart)
    bc.cart_add(store=sandbox_store, product_id=112)  # an anonymous shopper: Ortto's own tracking has them
    _deliver(sandbox_store)
    _deliver(sandbox_store, again=True)
    cart = bc.cart_add(store=sandbox_store, product_id=113, cart=cart)  # a later quantity change
    _deliver(sandbox_store)

    added = PersonActivity.objects.filter(activity_id=ADDED).order_by("id")
    assert [(a.person.email, _attr(a, "product-id")) for a in added] == [
        ("adder@example.com", 111), ("adder@example.com", 113)]
    tent = added[0]
    assert _links(tent)["product-url"].endswith("/store-pj1/storefront/trail-tent-2p/")
    assert _links(tent)["image-url"].endswith("/store-pj1/product_images/TENT-2P.svg")
    assert _attr(tent, "price") == 189000 and _attr(tent, "cart-id") == cart.cart_id
    assert Person.objects.get(email="adder@example.com").email_permission is False  # merged under R2 first


def test_waiting_on_stock_then_restock_then_back_in_stock(synced, sandbox_live):
    sandbox_store, store, _ = synced("pj2")
    url = f"{sandbox_live}/storefront/pj2/back-in-stock/"
    form = {"email": "Waiter@Example.com", "product_id": "114", "variant_id": "1142", "consent": "1"}
    first = requests.post(url, data=form, timeout=10)
    again = requests.post(url, data={**form, "email": "waiter@example.com"}, timeout=10)
    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    # Bad input: a clear 4xx that changes nothing.
    assert requests.post(url, data={**form, "email": "not-an-email"}, timeout=10).status_code == 400
    assert requests.post(url, data={**form, "consent": ""}, timeout=10).status_code == 400
    assert requests.post(url, data={**form, "product_id": "abc"}, timeout=10).status_code == 400
    assert requests.post(url, data={**form, "product_id": "999"}, timeout=10).status_code == 404
    assert requests.post(url, data={**form, "product_id": "111", "variant_id": "1110"}, timeout=10).status_code == 409
    assert requests.post(f"{sandbox_live}/storefront/nosuch/back-in-stock/", data=form, timeout=10).status_code == 404
    assert requests.get(url, timeout=10).status_code == 405
    assert StockWait.objects.filter(store=store).count() == 1

    waiting = PersonActivity.objects.filter(activity_id=WAITING)
    assert waiting.count() == 1 and waiting[0].person.email == "waiter@example.com"
    assert _links(waiting[0])["product-url"].endswith("/store-pj2/storefront/wool-hiking-socks/")
    assert _attr(waiting[0], "sku") == "SOCK-W" and _attr(waiting[0], "variant") == "Size: L"  # from the mirror
    waiter = Person.objects.get(email="waiter@example.com")
    assert waiter.email_permission is False  # new: merged unsubscribed first (R2), with where they were met
    assert waiter.fields["str::u-ctx"] == ("Asked Product Outfitters to e-mail them once a product is back in stock; "
                                           "did not opt in to the newsletter")
    assert not PersonActivity.objects.filter(activity_id=BACK).exists()

    bc.product_restock(product=Product.objects.get(store=sandbox_store, bc_id=114), quantity=5)  # the Restock button
    _deliver(sandbox_store)
    _deliver(sandbox_store, again=True)
    back = PersonActivity.objects.filter(activity_id=BACK)
    assert back.count() == 1 and back[0].person.email == "waiter@example.com"
    assert _links(back[0])["image-url"].endswith("/store-pj2/product_images/SOCK-W.svg")
    assert StockWait.objects.get(store=store).released_at is not None
    # Released: a sweep and another restock send nothing more.
    sync_run_request(store=store, kind=SyncRun.Kind.INCREMENTAL)
    bc.product_restock(product=Product.objects.get(store=sandbox_store, bc_id=114), quantity=9)
    _deliver(sandbox_store)
    assert PersonActivity.objects.filter(activity_id=BACK).count() == 1


def test_viewed_product_from_a_verified_token_only(synced, sandbox_live):
    sandbox_store, store, _ = synced("pj3")
    customer = Customer.objects.filter(store=sandbox_store).order_by("bc_id").first()
    url = f"{sandbox_live}/storefront/pj3/viewed/"
    token = bc.current_customer_token(store=sandbox_store, customer=customer)
    answers = [requests.post(url, data={"token": token, "product_id": "112"}, timeout=10).status_code
               for _ in range(2)]
    assert answers == [201, 200]

    claims = jwt.decode(token, options={"verify_signature": False})
    forged = [
        jwt.encode(claims, "not-the-client-secret", algorithm="HS256"),  # signed by someone else
        jwt.encode({**claims, "store_hash": "other1"}, settings.BIGCOMMERCE_CLIENT_SECRET, algorithm="HS256"),
        jwt.encode({**claims, "exp": int(time.time()) - 3600}, settings.BIGCOMMERCE_CLIENT_SECRET, algorithm="HS256"),
        jwt.encode({**claims, "aud": "another-app"}, settings.BIGCOMMERCE_CLIENT_SECRET, algorithm="HS256"),
        "not.a.jwt",
    ]
    for bad in forged:
        assert requests.post(url, data={"token": bad, "product_id": "113"}, timeout=10).status_code == 403, bad
    # The e-mail is the token's, never the browser's.
    assert requests.post(url, data={"token": token, "product_id": "113", "email": "someone@else.example"},
                         timeout=10).status_code == 201
    assert requests.post(url, data={"product_id": "113"}, timeout=10).status_code == 400

    viewed = PersonActivity.objects.filter(activity_id=VIEWED).order_by("id")
    assert [(a.person.email, _attr(a, "product-id")) for a in viewed] == [
        (customer.email, 112), (customer.email, 113)]
    assert _links(viewed[0])["product-url"].endswith("/store-pj3/storefront/day-pack-30l/")
    assert not Person.objects.filter(email="someone@else.example").exists()
    assert ProductActivity.objects.filter(store=store, kind="viewed_product").count() == 2
