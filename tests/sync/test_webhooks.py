"""Registering the store's hooks, and the webhook run that drains stored deliveries."""

import json
import re
from urllib.parse import urlparse

import pytest
import responses
from django.utils import timezone

from stores.models import WebhookEvent
from sync.engine.runs import sync_run_execute, webhook_run_request
from sync.intake.hooks import SECRET_HEADER, webhooks_register, webhooks_unregister
from sync.models import OrderLedger, SyncRun
from tests.sync.doubles import BC, customer, order

pytestmark = pytest.mark.django_db


def test_register_creates_the_hooks_with_the_secret_header_and_reuses_duplicates(make_account, make_connection,
                                                                                   make_store, settings):
    settings.BIGCOMMERCE_API_URL = BC
    settings.PUBLIC_URL = "https://bridge.example"
    store = make_store("abc123")
    connection = make_connection(store, make_account())
    created = []
    with responses.RequestsMock() as rsps:
        def on_create(request):
            body = json.loads(request.body)
            created.append(body)
            if body["scope"] == "store/order/*":
                return (422, {}, json.dumps({"title": "Hook already exists"}))
            return (200, {}, json.dumps({"data": {"id": len(created), **body}}))

        rsps.add_callback(responses.POST, f"{BC}/stores/abc123/v3/hooks", on_create)
        rsps.get(re.compile(f"{BC}/stores/abc123/v3/hooks.*"), json={
            "data": [{"id": 77, "scope": "store/order/*", "destination": "https://bridge.example/bigcommerce/webhooks/"}],
            "meta": {"pagination": {"total_pages": 1}}})
        ids = webhooks_register(connection)
    store.refresh_from_db()
    assert len(store.webhook_secret) >= 40
    assert [c["scope"] for c in created] == ["store/customer/*", "store/subscriber/*", "store/order/*",
                                             "store/cart/abandoned", "store/cart/converted",
                                             "store/cart/lineItem/created", "store/cart/lineItem/updated",
                                             "store/product/*", "store/sku/*"]
    assert all(c["destination"] == "https://bridge.example/bigcommerce/webhooks/" for c in created)
    assert all(c["headers"] == {SECRET_HEADER: store.webhook_secret} for c in created)
    assert ids == [1, 2, 77, 4, 5, 6, 7, 8, 9] and connection.webhook_ids == [1, 2, 77, 4, 5, 6, 7, 8, 9]

    with responses.RequestsMock() as rsps:
        for hook_id in ids:
            rsps.delete(f"{BC}/stores/abc123/v3/hooks/{hook_id}", status=404 if hook_id == 77 else 200)
        webhooks_unregister(connection)
    assert connection.webhook_ids == []


def _event(store, resource, resource_id, n):
    return WebhookEvent.objects.create(store=store, dedup_key=f"k{n}", scope=f"store/{resource[:-1]}/updated",
                                       resource=resource, resource_id=resource_id, payload={},
                                       bc_created_at=timezone.now())


def test_webhook_run_fetches_the_records_by_id_and_marks_events_processed(env):
    env.bc.customers.append(customer(3, "dee@x.io", "Dee"))
    env.bc.orders.append(order(105, "eve@x.io", opt_in=True, total="1.00"))
    events = [_event(env.store, "customers", 3, 1), _event(env.store, "orders", 105, 2),
              _event(env.store, "customers", 3, 3)]
    run = webhook_run_request(store=env.store)
    done = sync_run_execute(run_id=run.pk)
    assert done.status == SyncRun.Status.SUCCEEDED and done.totals == {"subscribers": 0, "customers": 1, "orders": 1}
    assert any("id%3Ain=3" in url for url in env.bc.requests)
    created = {p["fields"]["str::email"]: p["fields"]["bol::p"]
               for _, people in env.ortto.calls for p in people if "bol::p" in p["fields"]}
    assert created["dee@x.io"] is False and created["eve@x.io"] is True
    assert [a["key"] for a in env.ortto.activities] == ["bc:abc123:order:105"]
    assert OrderLedger.objects.filter(order_id=105).exists()
    assert set(WebhookEvent.objects.filter(pk__in=[e.pk for e in events]).values_list("status", flat=True)) == {"processed"}


def test_a_burst_of_new_orders_is_read_in_one_id_range_request_not_one_per_order(env):
    # v2 has no id:in: ids less than a page apart share one min_id/max_id request; a lone old id is a GET.
    env.bc.orders += [order(2000 + i, f"buyer{i}@x.io", total="1.00") for i in range(30)]
    events = [_event(env.store, "orders", 2000 + i, 100 + i) for i in range(30) if i != 7]
    events.append(_event(env.store, "orders", 102, 200))
    env.bc.requests.clear()
    done = sync_run_execute(run_id=webhook_run_request(store=env.store).pk)
    assert done.status == SyncRun.Status.SUCCEEDED
    reads = [url for url in env.bc.requests if "/v2/orders" in url]
    assert len(reads) == 2
    assert any("min_id=2000" in url and "max_id=2029" in url for url in reads)
    assert any(urlparse(url).path.endswith("/v2/orders/102") for url in reads)
    # Order 2007 lies in the range but had no delivery: it is not synced by this run.
    keys = {a["key"] for a in env.ortto.activities}
    assert keys == {f"bc:abc123:order:{2000 + i}" for i in range(30) if i != 7} | {"bc:abc123:order:102"}
    assert len(events) == 30
