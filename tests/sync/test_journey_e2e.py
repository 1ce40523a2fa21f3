"""The shopper's journey over real HTTP against the emulated BigCommerce and Ortto: Ordered product from the
orders pages' own line items, Fulfilled / Cancelled / Refunded order exactly once (webhook, sweep, both,
redelivered, under faults), totals that follow refunds and cancellations, and abandoned / recovered carts."""

from collections import Counter
from decimal import Decimal

import pytest
from django.utils import timezone

from sandbox.bigcommerce import services as bc
from sandbox.bigcommerce.limits import faults_set
from sandbox.bigcommerce.models import Order, WebhookDelivery
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from sandbox.bigcommerce.webhooks import webhook_deliveries_run
from sandbox.ortto.models import Instance, Person, PersonActivity
from sandbox.ortto.seed import seed_ortto_instances
from sandbox.ortto.services import instance_set_faults
from stores.bigcommerce import BigCommerceClient
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import CartLedger, OrderLedger, PersonLedger, SyncRun
from sync.tasks import incremental_tick

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

PLACED, PRODUCT = "act:cm:placed-order", "act:cm:ordered-product"
FULFILLED, CANCELLED, REFUNDED = "act:cm:fulfilled-order", "act:cm:cancelled-order", "act:cm:refunded-order"
ABANDONED, RECOVERED = "act:cm:abandoned-cart", "act:cm:cart-recovered"


def _count(activity_id, **filters) -> int:
    return PersonActivity.objects.filter(activity_id=activity_id, **filters).count()


def _keys(activity_id) -> Counter:
    return Counter(PersonActivity.objects.filter(activity_id=activity_id).values_list("key", flat=True))


@pytest.fixture
def store_synced(make_account, make_connection, make_store, sandbox_live, settings, queued_work_runs_inline,
                 monkeypatch):
    """A seeded store, imported into the emulated Ortto by an initial run; webhooks delivered on demand."""
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    monkeypatch.setattr("stores.http.backoff_delay", lambda attempt: 0.01 * attempt)

    def make(store_hash, *, orders=30, customers=20):
        sandbox_store = seed_bigcommerce(store_hash=store_hash, name="Journey Outfitters", customers=customers,
                                         orders=orders, seed=7)
        seed_users(store_hash=store_hash)
        install = app_install_complete(store=sandbox_store)
        seed_ortto_instances()
        store = make_store(store_hash, name="Journey Outfitters", access_token=install.access_token)
        connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=1)
        run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
        run.refresh_from_db()
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
        return sandbox_store, store, connection

    return make


def test_initial_import_sends_ordered_products_at_one_request_per_orders_page(
        make_account, make_connection, make_store, sandbox_live, monkeypatch):
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 20)
    sandbox_store = seed_bigcommerce(store_hash="jrn1", name="Journey One", customers=30, orders=90, seed=4)
    seed_users(store_hash="jrn1")
    install = app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    store = make_store("jrn1", name="Journey One", access_token=install.access_token)
    make_connection(store, make_account(api_key="sbx-default-acmeus-0001"))
    paths = []
    original = BigCommerceClient._request

    def counting(self, method, path, **kwargs):
        paths.append(path)
        return original(self, method, path, **kwargs)

    monkeypatch.setattr(BigCommerceClient, "_request", counting)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL, enqueue_run=False)
    run = sync_run_execute(run_id=run.pk, sliced=False)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary

    # One request per orders page (90 orders, 20 a page: 5 pages) and the count: never one per order.
    assert paths.count("/v2/orders") == 5
    assert not [p for p in paths if p.startswith("/v2/") and "/products" in p
                or p.startswith("/v2/orders/") and p != "/v2/orders/count"]
    # The catalog mirror (sync/catalog/mirror.py) is read once, before the orders: its four products fit a page.
    assert paths.count("/v3/catalog/products") == 1 and paths.index("/v3/catalog/products") < paths.index("/v2/orders")
    placed = Order.objects.filter(store=sandbox_store).exclude(status_id=0)
    assert _count(PLACED) == placed.count()
    # Seeded orders hold one line each: one Ordered product per line, with the line's attributes.
    assert _count(PRODUCT) == placed.count()
    product = PersonActivity.objects.filter(activity_id=PRODUCT).order_by("id").first()
    attributes = product.attributes
    assert {"str:cm:product-name", "int:cm:product-id", "str:cm:sku", "str:cm:variant", "int:cm:quantity",
            "int:cm:price", "str:cm:order-id", "str:cm:currency"} <= set(attributes)
    assert product.key.startswith("bc:jrn1:order:") and ":item:" in product.key
    # ... and the product's storefront link and picture, from the mirror.
    slug = {111: "trail-tent-2p", 112: "day-pack-30l", 113: "titanium-mug", 114: "wool-hiking-socks"}[
        attributes["int:cm:product-id"]]
    links = {name.split(":")[-1]: value for name, value in attributes.items() if name.endswith(("-url"))}
    assert links["product-url"].endswith(f"/sandbox/bigcommerce/store-jrn1/storefront/{slug}/")
    assert links["image-url"].endswith(".svg") and "/store-jrn1/product_images/" in links["image-url"]
    # An import records the orders' statuses without announcing them: old orders are not news.
    assert not PersonActivity.objects.filter(activity_id__in=[FULFILLED, CANCELLED, REFUNDED]).exists()
    # Totals leave out cancelled orders and refunds.
    for row in PersonLedger.objects.filter(order_count__gt=0)[:10]:
        orders = [o for o in placed if o.email.lower() == row.email] if not row.bc_customer_id else \
            list(placed.filter(customer_id=row.bc_customer_id))
        counted = [o for o in orders if o.status_id != 5]
        assert row.order_count == len(counted), row.email
        expected = sum((o.total_inc_tax if o.status_id != 4 else Decimal(0)) for o in counted)
        assert Decimal(row.total_spent) == expected, row.email


def _deliver(sandbox_store, *, again=False):
    if again:  # BigCommerce redelivers: the same events, once more (and once with a new timestamp)
        for delivery in WebhookDelivery.objects.filter(store=sandbox_store):
            delivery.payload = {**delivery.payload, "created_at": delivery.payload["created_at"] + 1}
            delivery.status = WebhookDelivery.Status.PENDING
            delivery.save()
    delivered = webhook_deliveries_run(store=sandbox_store)
    assert all(d.status == "delivered" for d in delivered), [(d.scope, d.status, d.error) for d in delivered]
    return delivered


def _fresh_order(sandbox_store, email):
    order = bc.checkout_order_place(store=sandbox_store, email=email, first_name="Jo", last_name="Buyer",
                                    subscribe=False, line_items=[{"product_id": 112, "variant_id": 1121, "sku": "BAG-30L",
                                                 "name": "Day Pack 30L", "options": [["Size", "M"]], "quantity": 2,
                                                 "price": "50.00"}])
    return order


def test_status_changes_arrive_once_by_webhook_even_redelivered_and_swept_again(store_synced):
    sandbox_store, store, connection = store_synced("jrn2")
    order = _fresh_order(sandbox_store, "jo.buyer@example.com")
    _deliver(sandbox_store)
    person = Person.objects.get(email="jo.buyer@example.com")
    assert person.email_permission is False  # R2: no opt-in at checkout
    assert person.fields["str::u-ctx"] == f"Did not opt in to the newsletter at checkout in {store.name}"
    assert _count(PLACED, person=person) == 1 and _count(PRODUCT, person=person) == 1
    line = PersonActivity.objects.get(person=person, activity_id=PRODUCT).attributes
    assert line["str:cm:sku"] == "BAG-30L" and line["int:cm:quantity"] == 2 and line["str:cm:variant"] == "Size: M"
    assert line["int:cm:price"] == 54000  # 50.00 + 8 % tax, x1000

    assert OrderLedger.objects.get(connection=connection, order_id=order.bc_id).status_id == 11
    bc.order_ship(order=order)
    bc.order_refund(order=Order.objects.get(pk=order.pk), amount=Decimal("40.00"))
    _deliver(sandbox_store)
    _deliver(sandbox_store, again=True)
    incremental_tick()  # the sweep sees the same changes: nothing new
    assert _count(FULFILLED, person=person) == 1
    refunds = PersonActivity.objects.filter(person=person, activity_id=REFUNDED)
    assert refunds.count() == 1
    assert refunds[0].attributes["int:cm:refund-amount"] == 40000
    assert refunds[0].attributes["str:cm:refund-type"] == "partial"
    ledger = PersonLedger.objects.get(connection=connection, email="jo.buyer@example.com")
    assert ledger.order_count == 1 and Decimal(ledger.total_spent) == Decimal("108.00") - Decimal("40.00")
    assert person.__class__.objects.get(pk=person.pk).fields["int:cm:bigcommerce-total-spent"] == 68000

    # The rest is refunded: a second Refunded order (full now); then cancelled: out of the totals.
    bc.order_refund(order=Order.objects.get(pk=order.pk), amount=Decimal("68.00"))
    _deliver(sandbox_store)
    assert PersonActivity.objects.filter(person=person, activity_id=REFUNDED).count() == 2
    last = PersonActivity.objects.filter(person=person, activity_id=REFUNDED).order_by("-id")[0].attributes
    assert last["str:cm:refund-type"] == "full" and last["int:cm:refunded-total"] == 108000
    bc.order_status_set(order=Order.objects.get(pk=order.pk), status_id=5)
    _deliver(sandbox_store)
    _deliver(sandbox_store, again=True)
    assert _count(CANCELLED, person=person) == 1
    ledger.refresh_from_db()
    assert ledger.order_count == 0 and Decimal(ledger.total_spent) == 0
    # Every activity of the journey went out once per event.
    for activity_id in (PLACED, PRODUCT, FULFILLED, CANCELLED, REFUNDED):
        assert all(n == 1 for n in _keys(activity_id).values()), activity_id


def test_a_lost_webhook_is_caught_by_the_sweep_once(store_synced):
    sandbox_store, store, connection = store_synced("jrn3")
    order = Order.objects.filter(store=sandbox_store, status_id=11).order_by("bc_id").first()
    assert OrderLedger.objects.get(connection=connection, order_id=order.bc_id).status_id == 11
    bc.order_ship(order=order)
    WebhookDelivery.objects.filter(store=sandbox_store, status="pending").delete()  # lost on the way
    incremental_tick()
    assert _count(FULFILLED) == 1
    incremental_tick()
    assert _count(FULFILLED) == 1
    assert OrderLedger.objects.get(connection=connection, order_id=order.bc_id).status_id == 2


def test_each_activity_arrives_once_under_ten_percent_faults(store_synced):
    sandbox_store, store, connection = store_synced("jrn4", orders=40)
    faults_set(store=sandbox_store, error_500_probability=0.1)
    instance_set_faults(Instance.objects.get(name="acme-us"), p500=0.1)
    orders = list(Order.objects.filter(store=sandbox_store, status_id__in=(1, 7, 9, 11), date_shipped=None)
                  .order_by("bc_id")[:4])
    assert len(orders) == 4
    for order in orders[:2]:
        bc.order_ship(order=order)
    bc.order_status_set(order=orders[2], status_id=5)
    bc.order_refund(order=orders[3], amount=Decimal("5.00"))
    new = _fresh_order(sandbox_store, "storm.buyer@example.com")
    for _ in range(3):  # deliveries, redeliveries, then the sweep: whatever order, once each
        _deliver(sandbox_store)
        _deliver(sandbox_store, again=True)
        for run in SyncRun.objects.filter(store=store, status=SyncRun.Status.QUEUED):
            sync_run_execute(run_id=run.pk)
        incremental_tick()
    faults_set(store=sandbox_store, error_500_probability=0)
    instance_set_faults(Instance.objects.get(name="acme-us"), clear=True)
    incremental_tick()
    assert _count(FULFILLED) == 2 and _count(CANCELLED) == 1 and _count(REFUNDED) == 1
    assert _count(PLACED, person__email="storm.buyer@example.com") == 1
    assert _count(PRODUCT, person__email="storm.buyer@example.com") == 1
    assert OrderLedger.objects.get(connection=connection, order_id=new.bc_id)
    for activity_id in (PLACED, PRODUCT, FULFILLED, CANCELLED, REFUNDED):
        assert all(n == 1 for n in _keys(activity_id).values()), activity_id


def test_abandoned_and_recovered_carts(store_synced):
    sandbox_store, store, connection = store_synced("jrn5", orders=5)
    # A shopper Ortto has never seen abandons a cart: created unsubscribed first (R2), then the activity.
    cart = bc.cart_add(store=sandbox_store, product_id=111, quantity=1, email="cart.shopper@example.com")
    cart = bc.cart_add(store=sandbox_store, product_id=113, quantity=2, cart=cart)
    bc.cart_abandon(cart=cart)
    # An anonymous cart (no email) and one that is bought before the bridge reads it.
    anonymous = bc.cart_add(store=sandbox_store, product_id=112)
    bc.cart_abandon(cart=anonymous)
    quick = bc.cart_add(store=sandbox_store, product_id=114, email="quick@example.com")
    bc.cart_abandon(cart=quick)
    quick.refresh_from_db()
    quick.status = quick.Status.DELETED  # gone (expired) before the webhook run reads it
    quick.save()
    _deliver(sandbox_store)
    _deliver(sandbox_store, again=True)

    shopper = Person.objects.get(email="cart.shopper@example.com")
    assert shopper.email_permission is False
    # They never reached a checkout: the reason on their profile says what they did.
    assert shopper.fields["str::u-ctx"] == f"Left a cart at {store.name}; did not opt in to the newsletter"
    abandoned = PersonActivity.objects.filter(activity_id=ABANDONED)
    assert abandoned.count() == 1 and abandoned[0].person == shopper
    attributes = abandoned[0].attributes
    assert attributes["int:cm:cart-value"] == 189000 + 2 * 24500
    assert attributes["int:cm:item-count"] == 3 and "Trail Tent 2P" in attributes["str:cm:items"]
    assert attributes["str:cm:currency"] == "USD"
    assert f"token={cart.abandoned_token}" in attributes["str:cm:recovery-url"]
    # The picture and link of the cart's dearest line (the tent), from the catalog mirror.
    links = {name.split(":")[-1]: value for name, value in attributes.items() if name.endswith("-url")}
    assert links["product-url"].endswith("/store-jrn5/storefront/trail-tent-2p/")
    assert links["image-url"].endswith("/store-jrn5/product_images/TENT-2P.svg")
    outcomes = dict(CartLedger.objects.values_list("cart_id", "outcome"))
    assert outcomes == {cart.cart_id: "sent", anonymous.cart_id: "anonymous", quick.cart_id: "expired"}
    webhook_runs = SyncRun.objects.filter(store=store, kind=SyncRun.Kind.WEBHOOK)
    assert sum(r.counters.get("carts", {}).get("skipped", 0) for r in webhook_runs) == 2

    # The shopper comes back through the link and buys: Cart recovered, once.
    assert bc.cart_recover(store=sandbox_store, token=cart.abandoned_token) == cart
    order = bc.cart_checkout(cart=cart)
    _deliver(sandbox_store)
    _deliver(sandbox_store, again=True)
    recovered = PersonActivity.objects.filter(activity_id=RECOVERED)
    assert recovered.count() == 1 and recovered[0].person == shopper
    assert recovered[0].attributes["str:cm:order-id"] == str(order.bc_id)
    assert _count(PRODUCT, person=shopper) == 2  # the converted cart's two lines
    assert CartLedger.objects.get(cart_id=cart.cart_id).order_id == order.bc_id
    assert timezone.now() >= CartLedger.objects.get(cart_id=cart.cart_id).recovered_at


def test_ordered_products_beyond_ortto_s_daily_fifty_are_left_out_and_said(store_synced):
    from sync.models import SyncEvent

    sandbox_store, store, connection = store_synced("jrn6", orders=5)
    lines = [{"product_id": 1000 + n, "variant_id": 0, "sku": f"SKU-{n}", "name": f"Item {n}", "options": [],
              "quantity": 1, "price": "1.00"} for n in range(60)]
    bc.checkout_order_place(store=sandbox_store, email="bulk.buyer@example.com", first_name="Bulk",
                            last_name="Buyer", subscribe=False, items=60, subtotal=Decimal("60.00"), line_items=lines)
    _deliver(sandbox_store)
    assert _count(PRODUCT, person__email="bulk.buyer@example.com") == 50
    assert SyncEvent.objects.filter(email="bulk.buyer@example.com", message__startswith="10 ordered product(s)").exists()


def test_a_refused_ordered_product_is_reported_before_the_import_ends(store_synced, monkeypatch):
    """Ordered product calls stay in flight while the run commits and goes on (sync.engine.people.DeferredSends);
    what Ortto refused still reaches the run's events before the run is over."""
    from sandbox.ortto import engine as emulated
    from sync.models import SyncEvent

    original = emulated._activity_problem

    def last_placed() -> int:
        return Order.objects.filter(store__store_hash="jrn7").exclude(status_id=0).order_by("-bc_id")[0].bc_id

    def problem(item, definitions, custom_ids):
        if item.get("activity_id") == PRODUCT and item.get("key", "").startswith(f"bc:jrn7:order:{last_placed()}:"):
            return "refused for the test"
        return original(item, definitions, custom_ids)

    monkeypatch.setattr(emulated, "_activity_problem", problem)
    _, store, _ = store_synced("jrn7", orders=30, customers=20)

    run = SyncRun.objects.get(store=store, kind=SyncRun.Kind.INITIAL)
    event = SyncEvent.objects.get(run=run, bc_id=last_placed())
    assert event.message == "Ortto refused the Ordered product activity: refused for the test"
    assert event.created_at <= run.finished_at
    placed = Order.objects.filter(store__store_hash="jrn7").exclude(status_id=0).count()
    assert _count(PRODUCT) == placed - 1 and _count(PLACED) == placed


def test_a_refused_ordered_product_is_sent_again_once_by_the_next_sweep(store_synced, monkeypatch):
    """The ledger records the refused lines; the next run (the scheduled sweep) sends them again, once, and
    marks the refusal resolved; the run after sends nothing more."""
    from sandbox.ortto import engine as emulated
    from sync.models import SyncEvent

    original = emulated._activity_problem
    refusing = {"on": True}

    def last_placed() -> int:
        return Order.objects.filter(store__store_hash="jrn8").exclude(status_id=0).order_by("-bc_id")[0].bc_id

    def problem(item, definitions, custom_ids):
        if (refusing["on"] and item.get("activity_id") == PRODUCT
                and item.get("key", "").startswith(f"bc:jrn8:order:{last_placed()}:")):
            return "refused for the test"
        return original(item, definitions, custom_ids)

    monkeypatch.setattr(emulated, "_activity_problem", problem)
    _, store, connection = store_synced("jrn8", orders=20, customers=10)
    row = OrderLedger.objects.get(connection=connection, order_id=last_placed())
    assert row.products_state == "refused"
    refusal = SyncEvent.objects.get(bc_id=last_placed(), level="error")

    refusing["on"] = False  # Ortto takes it now
    sweep = sync_run_execute(run_id=sync_run_request(store=store, kind=SyncRun.Kind.INCREMENTAL,
                                                     enqueue_run=False)[0].pk, sliced=False)
    assert sweep.status == SyncRun.Status.SUCCEEDED, sweep.error_summary
    placed = Order.objects.filter(store__store_hash="jrn8").exclude(status_id=0).count()
    assert _count(PRODUCT) == placed and max(_keys(PRODUCT).values()) == 1
    row.refresh_from_db()
    assert row.products_state == "sent"
    refusal.refresh_from_db()
    assert refusal.resolved

    again = sync_run_execute(run_id=sync_run_request(store=store, kind=SyncRun.Kind.INCREMENTAL,
                                                     enqueue_run=False)[0].pk, sliced=False)
    assert again.status == SyncRun.Status.SUCCEEDED
    assert _count(PRODUCT) == placed and max(_keys(PRODUCT).values()) == 1


@pytest.mark.parametrize("reached_ortto", [False, True])
def test_ordered_products_in_flight_when_a_worker_died_are_sent_again_exactly_once(store_synced, reached_ortto):
    """A worker killed while a unit's Ordered product call was in flight leaves its lines "to send" in the
    ledger: whether or not the call reached Ortto, the next run sends them once more with the same keys,
    and Ortto holds each line once."""
    _, store, connection = store_synced("jrn9", orders=20, customers=10)
    row = OrderLedger.objects.filter(connection=connection, products_sent__gt=0).order_by("order_id").first()
    prefix = f"bc:jrn9:order:{row.order_id}:"
    if not reached_ortto:
        PersonActivity.objects.filter(activity_id=PRODUCT, key__startswith=prefix).delete()
    OrderLedger.objects.filter(pk=row.pk).update(products_state="to_send")  # as the killed worker left it

    sweep = sync_run_execute(run_id=sync_run_request(store=store, kind=SyncRun.Kind.INCREMENTAL,
                                                     enqueue_run=False)[0].pk, sliced=False)
    assert sweep.status == SyncRun.Status.SUCCEEDED, sweep.error_summary
    assert PersonActivity.objects.filter(activity_id=PRODUCT, key__startswith=prefix).count() == row.products_sent
    assert max(_keys(PRODUCT).values()) == 1
    row.refresh_from_db()
    assert row.products_state == "sent"


def test_a_refused_abandoned_cart_is_sent_again_once_by_the_next_sweep(store_synced, monkeypatch):
    from sandbox.ortto import engine as emulated
    from sync.models import SyncEvent

    sandbox_store, store, connection = store_synced("jrn10", orders=5)
    original = emulated._activity_problem
    refusing = {"on": True}

    def problem(item, definitions, custom_ids):
        if refusing["on"] and item.get("activity_id") == ABANDONED:
            return "refused for the test"
        return original(item, definitions, custom_ids)

    monkeypatch.setattr(emulated, "_activity_problem", problem)
    cart = bc.cart_add(store=sandbox_store, product_id=111, quantity=1, email="again.shopper@example.com")
    bc.cart_abandon(cart=cart)
    _deliver(sandbox_store)
    assert CartLedger.objects.get(cart_id=cart.cart_id).outcome == "failed"
    assert _count(ABANDONED) == 0
    refusal = SyncEvent.objects.get(resource="carts", level="error")

    refusing["on"] = False
    for _ in range(2):  # the sweep sends it once; the next one has nothing left to send
        sweep = sync_run_execute(run_id=sync_run_request(store=store, kind=SyncRun.Kind.INCREMENTAL,
                                                         enqueue_run=False)[0].pk, sliced=False)
        assert sweep.status == SyncRun.Status.SUCCEEDED, sweep.error_summary
        assert _count(ABANDONED) == 1
    assert CartLedger.objects.get(cart_id=cart.cart_id).outcome == "sent"
    refusal.refresh_from_db()
    assert refusal.resolved


def test_a_refused_cart_recovered_is_sent_again_once_by_the_next_sweep(store_synced, monkeypatch):
    """Ortto refuses Cart recovered: the cart ledger remembers it, the next sweep sends it once (built from
    the ledger, the converted cart being gone), the refusal is resolved, and the sweep after sends nothing."""
    from sandbox.ortto import engine as emulated
    from sync.models import SyncEvent

    sandbox_store, store, connection = store_synced("jrn13", orders=5)
    original = emulated._activity_problem
    refusing = {"on": True}

    def problem(item, definitions, custom_ids):
        if refusing["on"] and item.get("activity_id") == RECOVERED:
            return "refused for the test"
        return original(item, definitions, custom_ids)

    monkeypatch.setattr(emulated, "_activity_problem", problem)
    cart = bc.cart_add(store=sandbox_store, product_id=111, quantity=1, email="back.shopper@example.com")
    bc.cart_abandon(cart=cart)
    _deliver(sandbox_store)
    assert bc.cart_recover(store=sandbox_store, token=cart.abandoned_token) == cart
    order = bc.cart_checkout(cart=cart)
    _deliver(sandbox_store)
    assert _count(RECOVERED) == 0
    assert CartLedger.objects.get(cart_id=cart.cart_id).recovered_at is None
    refusal = SyncEvent.objects.get(resource="carts", level="error")
    assert refusal.message.startswith(f"Cart recovered for cart {cart.cart_id} not sent")

    refusing["on"] = False
    for _ in range(2):  # the sweep sends it once; the next one has nothing left to send
        sweep = sync_run_execute(run_id=sync_run_request(store=store, kind=SyncRun.Kind.INCREMENTAL,
                                                         enqueue_run=False)[0].pk, sliced=False)
        assert sweep.status == SyncRun.Status.SUCCEEDED, sweep.error_summary
        assert _count(RECOVERED) == 1
    recovered = PersonActivity.objects.get(activity_id=RECOVERED)
    assert recovered.person.email == "back.shopper@example.com"
    assert recovered.attributes["str:cm:order-id"] == str(order.bc_id)
    row = CartLedger.objects.get(cart_id=cart.cart_id)
    assert row.recovered_at is not None and row.recovery == ""
    refusal.refresh_from_db()
    assert refusal.resolved


def test_the_initial_import_keeps_a_buyer_s_newest_fifty_orders_as_activities(
        make_account, make_connection, make_store, sandbox_live, settings, monkeypatch):
    """Ortto keeps 50 Placed order activities per buyer a day; an import reads orders oldest first, yet the
    50 that become activities are the buyer's newest, and the 10 oldest are counted in the totals only. Sent
    after the last order page in steps of a few buyers, they still cost ceil(activities / 100) calls."""
    from sync.models import SyncEvent
    from sync.ortto.client import OrttoClient

    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    monkeypatch.setattr("sync.engine.orders.journey.PLACED_CHUNK_BUYERS", 4)
    placed_calls = []
    create = OrttoClient.create_activities

    def counting(self, activities, **kwargs):
        if activities and activities[0]["activity_id"] == PLACED:
            placed_calls.append(len(activities))
        return create(self, activities, **kwargs)

    monkeypatch.setattr(OrttoClient, "create_activities", counting)
    sandbox_store = seed_bigcommerce(store_hash="jrn11", name="Journey Eleven", customers=20, orders=150, seed=3)
    seed_users(store_hash="jrn11")
    install = app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    heavy = [bc.checkout_order_place(store=sandbox_store, email="heavy.buyer@example.com", first_name="Hea",
                                     last_name="Vy", subscribe=False, subtotal=Decimal("10.00")).bc_id
             for _ in range(60)]
    store = make_store("jrn11", name="Journey Eleven", access_token=install.access_token)
    connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"))
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL, enqueue_run=False)
    run = sync_run_execute(run_id=run.pk, sliced=False)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary

    keys = set(PersonActivity.objects.filter(activity_id=PLACED, person__email="heavy.buyer@example.com")
               .values_list("key", flat=True))
    assert keys == {f"bc:jrn11:order:{order_id}" for order_id in heavy[-50:]}, "the newest 50"
    summarized = set(OrderLedger.objects.filter(connection=connection, email="heavy.buyer@example.com",
                                                summarized=True).values_list("order_id", flat=True))
    assert summarized == set(heavy[:10])
    assert PersonLedger.objects.get(connection=connection, email="heavy.buyer@example.com").order_count == 60
    assert run.counters["orders"]["summarized"] == 10
    assert not OrderLedger.objects.filter(connection=connection).exclude(placed_state="").exists()
    assert SyncEvent.objects.filter(run=run, email="heavy.buyer@example.com",
                                    message__startswith="10 order(s) counted").exists()
    placed = Order.objects.filter(store=sandbox_store).exclude(status_id=0).count()
    assert _count(PLACED) == placed - 10 and max(_keys(PLACED).values()) == 1
    assert sum(placed_calls) == placed - 10 and len(placed_calls) == -(-(placed - 10) // 100), placed_calls


def test_the_initial_import_keeps_the_ordered_products_of_a_buyer_s_newest_orders(
        make_account, make_connection, make_store, sandbox_live, settings, monkeypatch):
    """Ortto keeps 50 Ordered product activities per buyer a day, too: the import keeps the lines of the
    buyer's newest orders (30 orders of 2 lines: the newest 25), not the oldest, sent with the Placed orders
    after the last order page in steps of a few buyers, at ceil(lines / 100) calls; the rest is said."""
    from sync.models import SyncEvent
    from sync.ortto.client import OrttoClient

    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    monkeypatch.setattr("sync.engine.orders.journey.PLACED_CHUNK_BUYERS", 4)
    product_calls = []
    create = OrttoClient.create_activities

    def counting(self, activities, **kwargs):
        if activities and activities[0]["activity_id"] == PRODUCT:
            product_calls.append(len(activities))
        return create(self, activities, **kwargs)

    monkeypatch.setattr(OrttoClient, "create_activities", counting)
    sandbox_store = seed_bigcommerce(store_hash="jrn14", name="Journey Fourteen", customers=20, orders=150, seed=3)
    seed_users(store_hash="jrn14")
    install = app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    lines = [{"product_id": 112, "variant_id": 1121, "sku": "BAG-30L", "name": "Day Pack 30L", "options": [],
              "quantity": 1, "price": "50.00"},
             {"product_id": 113, "variant_id": 0, "sku": "MUG", "name": "Camp Mug", "options": [], "quantity": 1,
              "price": "24.50"}]
    heavy = [bc.checkout_order_place(store=sandbox_store, email="heavy.buyer@example.com", first_name="Hea",
                                     last_name="Vy", subscribe=False, line_items=lines).bc_id for _ in range(30)]
    store = make_store("jrn14", name="Journey Fourteen", access_token=install.access_token)
    connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"))
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL, enqueue_run=False)
    run = sync_run_execute(run_id=run.pk, sliced=False)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary

    orders_with_lines = {int(key.split(":")[3]) for key in PersonActivity.objects.filter(
        activity_id=PRODUCT, person__email="heavy.buyer@example.com").values_list("key", flat=True)}
    assert orders_with_lines == set(heavy[-25:]), "the newest 25 orders' lines"
    assert _count(PRODUCT, person__email="heavy.buyer@example.com") == 50
    assert _count(PLACED, person__email="heavy.buyer@example.com") == 30
    assert SyncEvent.objects.filter(run=run, email="heavy.buyer@example.com",
                                    message__startswith="10 ordered product(s) not sent").exists()
    assert not OrderLedger.objects.filter(connection=connection, products_state="waiting").exists()
    # Every other buyer keeps all their lines (seeded orders hold one line each).
    others = Order.objects.filter(store=sandbox_store).exclude(status_id=0).exclude(
        billing_address__email="heavy.buyer@example.com")
    sent = _count(PRODUCT)
    assert sent == others.count() + 50 and max(_keys(PRODUCT).values()) == 1
    assert sum(product_calls) == sent and len(product_calls) == -(-sent // 100), product_calls


def test_ordered_products_refused_twice_wait_for_resync_failed_records(store_synced, monkeypatch):
    """Refused by the import and again by the next sweep, the lines are not tried on every sweep (each try is a
    refused request counting towards Ortto's IP ban): "Resync failed records" sends them, once."""
    from sandbox.ortto import engine as emulated
    from sandbox.ortto.models import RequestLog

    original = emulated._activity_problem
    refusing = {"on": True}

    def last_placed() -> int:
        return Order.objects.filter(store__store_hash="jrn12").exclude(status_id=0).order_by("-bc_id")[0].bc_id

    def problem(item, definitions, custom_ids):
        if (refusing["on"] and item.get("activity_id") == PRODUCT
                and item.get("key", "").startswith(f"bc:jrn12:order:{last_placed()}:")):
            return "refused for the test"
        return original(item, definitions, custom_ids)

    monkeypatch.setattr(emulated, "_activity_problem", problem)
    _, store, connection = store_synced("jrn12", orders=20, customers=10)

    def run_of(kind):
        run = sync_run_execute(run_id=sync_run_request(store=store, kind=kind, enqueue_run=False)[0].pk,
                               sliced=False)
        assert run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), run.error_summary
        return run

    run_of(SyncRun.Kind.INCREMENTAL)  # tries once more: refused again
    row = OrderLedger.objects.get(connection=connection, order_id=last_placed())
    assert row.products_state == "refused2"
    calls = RequestLog.objects.filter(path="activities/create").count()
    run_of(SyncRun.Kind.INCREMENTAL)
    assert RequestLog.objects.filter(path="activities/create").count() == calls, "not tried on every sweep"

    refusing["on"] = False
    retry = run_of(SyncRun.Kind.RETRY_FAILED)
    assert retry.status == SyncRun.Status.SUCCEEDED
    row.refresh_from_db()
    assert row.products_state == "sent"
    placed = Order.objects.filter(store__store_hash="jrn12").exclude(status_id=0).count()
    assert _count(PRODUCT) == placed and max(_keys(PRODUCT).values()) == 1
