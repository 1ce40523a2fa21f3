"""Ortto keeps at most 50 events of one activity per person per 24 h and drops the rest without a word
(docs/ortto-contract.md, "Limits"). The product activities respect it (sync/catalog/journeys.py, over_allowance):
beyond 50, the bridge does not send, and counts them instead. Their counters are a line of their own on the app
page and in the admin, apart from the catalog's products read, and each line adds up. Over real HTTP against the
emulated BigCommerce and Ortto."""

import json
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from requests.adapters import HTTPAdapter

from sandbox.bigcommerce import services as bc
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from sandbox.bigcommerce.webhooks import webhook_deliveries_run
from sandbox.ortto.models import PersonActivity
from sandbox.ortto.seed import seed_ortto_instances
from sync.admin.display import counters_table
from sync.connect.selectors import counter_lines
from sync.engine.runs import sync_run_request, webhook_run_request
from sync.models import ProductActivity, SyncEvent, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

VIEWED, ADDED = "act:cm:viewed-product", "act:cm:added-to-cart"


@pytest.fixture
def synced(make_account, make_connection, make_store, sandbox_live, settings, queued_work_runs_inline, monkeypatch):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    monkeypatch.setattr("stores.http.backoff_delay", lambda attempt: 0.01 * attempt)

    def make(store_hash):
        sandbox_store = seed_bigcommerce(store_hash=store_hash, name="Limit Outfitters", customers=4, orders=2, seed=9)
        seed_users(store_hash=store_hash)
        install = app_install_complete(store=sandbox_store)
        seed_ortto_instances()
        store = make_store(store_hash, name="Limit Outfitters", access_token=install.access_token)
        make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=1)
        run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
        run.refresh_from_db()
        assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
        return sandbox_store, store

    return make


@pytest.fixture
def sent_to_ortto(monkeypatch):
    """Every activity the bridge puts in an activities/create call, by activity id and e-mail."""
    sent = Counter()
    original = HTTPAdapter.send

    def send(adapter, request, **kwargs):
        if request.url.endswith("/v1/activities/create") and request.body:
            for activity in json.loads(request.body).get("activities") or []:
                sent[(activity["activity_id"], activity["fields"]["str::email"])] += 1
        return original(adapter, request, **kwargs)

    monkeypatch.setattr(HTTPAdapter, "send", send)
    return sent


def _views(store, email, count, *, start=0):
    """`count` product views a shopper made (what the storefront endpoint writes), each its own product or day."""
    ProductActivity.objects.bulk_create([ProductActivity(
        store=store, kind=ProductActivity.Kind.VIEWED_PRODUCT, email=email, product_id=111 + (i % 4),
        dedup_key=f"view:7:{111 + (i % 4)}:day{i}") for i in range(start, start + count)])


def _last_run(store) -> SyncRun:
    return SyncRun.objects.filter(store=store).order_by("-id").first()


def test_beyond_50_a_day_per_person_and_activity_nothing_is_sent_and_it_is_counted(synced, sent_to_ortto):
    _, store = synced("lim1")
    _views(store, "fan@example.com", 55)
    _views(store, "calm@example.com", 3, start=100)

    webhook_run_request(store=store)

    run = _last_run(store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert sent_to_ortto[(VIEWED, "fan@example.com")] == 50  # the 5 beyond never left the bridge
    assert sent_to_ortto[(VIEWED, "calm@example.com")] == 3
    fan = ProductActivity.objects.filter(store=store, email="fan@example.com")
    assert fan.filter(state="sent").count() == 50 and fan.filter(state="limited").count() == 5
    assert set(fan.filter(state="limited").values_list("dedup_key", flat=True)) == {
        f"view:7:{111 + (i % 4)}:day{i}" for i in range(50, 55)}  # the oldest 50 went, the newest 5 did not
    assert PersonActivity.objects.filter(activity_id=VIEWED, person__email="fan@example.com").count() == 50
    assert run.counters["product_activities"] == {"fetched": 58, "created": 53, "updated": 0, "unchanged": 0,
                                                  "failed": 0, "summarized": 5}
    note = SyncEvent.objects.get(run=run, email="fan@example.com")
    assert note.level == SyncEvent.Level.INFO and note.message == (
        "5 Viewed product activities not sent: Ortto keeps at most 50 of one activity per person per 24 hours.")
    line = next(line for line in counter_lines(run) if line["resource"] == "product_activities")
    assert line["text"] == ("58 product activities: 53 sent to Ortto, "
                            "5 not sent (Ortto keeps 50 of one activity per person a day)")

    # A later view the same day is over the limit too; the limited ones are never tried again.
    _views(store, "fan@example.com", 1, start=60)
    webhook_run_request(store=store)
    assert sent_to_ortto[(VIEWED, "fan@example.com")] == 50
    assert ProductActivity.objects.filter(store=store, email="fan@example.com", state="limited").count() == 6
    assert _last_run(store).counters["product_activities"]["summarized"] == 1


def test_the_allowance_is_what_was_sent_in_the_24_hours_before(synced, sent_to_ortto):
    _, store = synced("lim2")
    _views(store, "fan@example.com", 50)
    ProductActivity.objects.filter(store=store).update(state="sent", sent_at=timezone.now() - timedelta(hours=23))
    _views(store, "fan@example.com", 2, start=50)
    webhook_run_request(store=store)
    assert sent_to_ortto[(VIEWED, "fan@example.com")] == 0
    assert ProductActivity.objects.filter(store=store, state="limited").count() == 2

    # A day later the 50 no longer count.
    ProductActivity.objects.filter(store=store, state="sent").update(sent_at=timezone.now() - timedelta(hours=25))
    _views(store, "fan@example.com", 2, start=60)
    webhook_run_request(store=store)
    assert sent_to_ortto[(VIEWED, "fan@example.com")] == 2


def test_catalog_and_product_activity_lines_each_add_up(synced, sandbox_live):
    sandbox_store, store = synced("lim3")
    cart = bc.cart_add(store=sandbox_store, product_id=111, email="adder@example.com")
    bc.cart_add(store=sandbox_store, product_id=113, cart=cart)
    bc.cart_add(store=sandbox_store, product_id=112)  # an anonymous shopper: not sent
    bc.product_restock(product=sandbox_store.products.get(bc_id=114), quantity=3)  # store/product/* re-read
    delivered = webhook_deliveries_run(store=sandbox_store)
    assert all(d.status == "delivered" for d in delivered)

    runs = list(SyncRun.objects.filter(store=store, kind=SyncRun.Kind.WEBHOOK))
    assert runs and all(run.status == SyncRun.Status.SUCCEEDED for run in runs)
    assert PersonActivity.objects.filter(activity_id=ADDED).count() == 2
    totals = Counter()
    for run in runs:
        for line in counter_lines(run):
            assert line["total"] == sum(count for count, _ in line["parts"]), line  # each line adds up
            totals[line["resource"]] += line["total"]
            for count, words in line["parts"]:
                totals[(line["resource"], words)] += count
        table = str(counters_table(run))  # the admin's: a row per line
        assert all(f"<th>{line['resource']}</th>" in table for line in counter_lines(run))
    assert totals["catalog"] == totals[("catalog", "kept in the catalog mirror for product links and pictures")] >= 1
    assert totals["product_activities"] == 3
    assert totals[("product_activities", "sent to Ortto")] == 2
    assert totals[("product_activities", "cart lines not sent (shopper unknown or cart gone)")] == 1


def test_abandoned_carts_beyond_50_a_day_are_not_sent_and_are_counted(synced, sent_to_ortto):
    from sync.models import CartLedger, Connection

    sandbox_store, store = synced("lim4")
    connection = Connection.objects.get(store=store)
    CartLedger.objects.bulk_create([CartLedger(
        connection=connection, cart_id=f"earlier-{i}", email="quitter@example.com", outcome="sent",
        abandoned_at=timezone.now() - timedelta(hours=20)) for i in range(50)])
    limited = bc.cart_add(store=sandbox_store, product_id=111, email="quitter@example.com")
    other = bc.cart_add(store=sandbox_store, product_id=113, email="once@example.com")
    for cart in (limited, other):
        bc.cart_abandon(cart=cart)
    assert all(d.status == "delivered" for d in webhook_deliveries_run(store=sandbox_store))

    abandoned = "act:cm:abandoned-cart"
    assert sent_to_ortto[(abandoned, "quitter@example.com")] == 0
    assert sent_to_ortto[(abandoned, "once@example.com")] == 1
    assert CartLedger.objects.get(connection=connection, cart_id=limited.cart_id).outcome == "limited"
    runs = SyncRun.objects.filter(store=store, kind=SyncRun.Kind.WEBHOOK)
    assert sum((run.counters.get("carts") or {}).get("summarized", 0) for run in runs) == 1
    note = SyncEvent.objects.get(run__in=runs, email="quitter@example.com", resource="carts")
    assert note.message == ("1 abandoned cart(s) not sent as Abandoned cart activities: Ortto keeps at most 50 of "
                            "one activity per person per 24 hours.")
    line = next(line for run in runs for line in counter_lines(run)
                if line["resource"] == "carts" and any(count for count, _ in line["parts"]))
    assert line["total"] == sum(count for count, _ in line["parts"])
