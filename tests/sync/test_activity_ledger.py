"""The order ledger decides which activities go out (issue 25): Placed order and Ordered product activities of
an initial import are sent after its last order page, the newest 50 of each per buyer, and a refused one is sent again, once, by the
next run. Ortto and BigCommerce mocked at the HTTP level (tests/sync/doubles.py)."""

import pytest

from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import OrderLedger, SyncEvent, SyncRun
from tests.sync.doubles import order

pytestmark = pytest.mark.django_db


def run_once(store, kind=SyncRun.Kind.INITIAL):
    run, _ = sync_run_request(store=store, kind=kind)
    return sync_run_execute(run_id=run.pk)


def _placed_keys(ortto) -> list[str]:
    return [a["key"] for a in ortto.activities if a["activity_id"] == "act:cm:placed-order"]


def test_a_refused_placed_order_of_the_import_is_sent_again_once_by_the_next_run(env):
    env.ortto.refuse_keys = {"bc:abc123:order:102"}
    first = run_once(env.store)
    assert first.status == SyncRun.Status.PARTIAL and first.failed == 1
    row = OrderLedger.objects.get(connection=env.connection, order_id=102)
    assert row.placed_state == "refused" and row.placed_activity["key"] == "bc:abc123:order:102"
    assert "bc:abc123:order:102" not in _placed_keys(env.ortto)

    env.ortto.refuse_keys = set()
    sweep = run_once(env.store, SyncRun.Kind.INCREMENTAL)
    assert sweep.status == SyncRun.Status.SUCCEEDED, sweep.error_summary
    assert _placed_keys(env.ortto).count("bc:abc123:order:102") == 1
    row.refresh_from_db()
    assert row.placed_state == "" and row.placed_activity is None
    assert SyncEvent.objects.get(run=first, bc_id=102).resolved

    run_once(env.store, SyncRun.Kind.INCREMENTAL)
    assert _placed_keys(env.ortto).count("bc:abc123:order:102") == 1


def test_an_import_keeps_the_newest_fifty_orders_of_a_buyer(env):
    env.bc.orders = [order(1000 + n, "busy@x.io", total="1.00") for n in range(55)]
    run = run_once(env.store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert set(_placed_keys(env.ortto)) == {f"bc:abc123:order:{1000 + n}" for n in range(5, 55)}
    assert set(OrderLedger.objects.filter(summarized=True).values_list("order_id", flat=True)) == \
        {1000 + n for n in range(5)}
    assert run.counters["orders"]["summarized"] == 5 and run.counters["orders"]["created"] == 50


def _lines(order_id: int, count: int) -> dict:
    """An order's line items as `include=consignments.line_items` carries them."""
    return {"shipping": [{"line_items": [
        {"id": order_id * 10 + n, "product_id": 500 + n, "name": f"Item {n}", "sku": f"SKU-{n}", "quantity": 1,
         "price_inc_tax": "1.00"} for n in range(count)]}]}


def test_an_import_keeps_the_ordered_products_of_a_buyer_s_newest_orders(env, monkeypatch):
    """Ortto keeps 50 Ordered product activities per buyer a day: an import, which reads orders oldest first,
    sends the lines of the buyer's newest orders (30 orders of 2 lines: the newest 25), says how many were
    left out, and still costs one call per 100 lines."""
    from sync.ortto.client import OrttoClient

    product_calls = []
    create = OrttoClient.create_activities

    def counting(self, activities, **kwargs):
        if activities and activities[0]["activity_id"] == "act:cm:ordered-product":
            product_calls.append(len(activities))
        return create(self, activities, **kwargs)

    monkeypatch.setattr(OrttoClient, "create_activities", counting)
    env.bc.orders = [{**order(1000 + n, "busy@x.io", total="2.00"), "items_total": 2,
                      "consignments": _lines(1000 + n, 2)} for n in range(30)]
    run = run_once(env.store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary

    keys = {a["key"] for a in env.ortto.activities if a["activity_id"] == "act:cm:ordered-product"}
    assert keys == {f"bc:abc123:order:{1000 + n}:item:{(1000 + n) * 10 + line}"
                    for n in range(5, 30) for line in range(2)}, "the newest 25 orders' lines"
    assert len(_placed_keys(env.ortto)) == 30
    assert SyncEvent.objects.filter(run=run, email="busy@x.io",
                                    message__startswith="10 ordered product(s) not sent").exists()
    assert product_calls == [50]
    rows = OrderLedger.objects.filter(connection=env.connection, email="busy@x.io")
    assert dict(rows.values_list("order_id", "products_sent")) == {
        1000 + n: (2 if n >= 5 else 0) for n in range(30)}
    assert not rows.filter(products_activities__isnull=False).exists()
    assert set(rows.values_list("products_state", flat=True)) == {"sent", ""}


def test_lines_an_import_left_waiting_are_sent_by_the_next_run_newest_first_once(env, monkeypatch):
    """An import that ended before its send step (stopped, say) leaves the Placed orders and lines waiting
    in the ledger: the next run sends them by the same rule, the newest orders' lines, once."""
    env.bc.orders = [{**order(1000 + n, "busy@x.io", total="2.00"), "items_total": 2,
                      "consignments": _lines(1000 + n, 2)} for n in range(30)]
    with monkeypatch.context() as patch:
        patch.setattr("sync.engine.runs._placed_flush", lambda ctx, **kwargs: True)
        run_once(env.store)
    assert OrderLedger.objects.filter(connection=env.connection, products_state="waiting").count() == 30
    assert not [a for a in env.ortto.activities if a["activity_id"] == "act:cm:ordered-product"]

    from sync.ortto.client import OrttoClient

    sent = []
    create = OrttoClient.create_activities

    def counting(self, activities, **kwargs):
        sent.extend(a["key"] for a in activities if a["activity_id"] == "act:cm:ordered-product")
        return create(self, activities, **kwargs)

    monkeypatch.setattr(OrttoClient, "create_activities", counting)
    for _ in range(2):
        sweep = run_once(env.store, SyncRun.Kind.INCREMENTAL)
        assert sweep.status == SyncRun.Status.SUCCEEDED, sweep.error_summary
    keys = sent  # every call's lines: each once, not again by the second run
    assert sorted(keys) == sorted(f"bc:abc123:order:{1000 + n}:item:{(1000 + n) * 10 + line}"
                                  for n in range(5, 30) for line in range(2))
    assert not OrderLedger.objects.filter(connection=env.connection, products_state="waiting").exists()
