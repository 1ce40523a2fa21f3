"""The whole pipeline with BigCommerce and Ortto mocked at the HTTP level (`responses`).

A small store (subscribers, customers, orders incl. guests) is synced; the exact Ortto calls are
asserted, then reruns, crashes, throttling and auth failures.
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import Connection, OrderLedger, PersonLedger, SyncCursor, SyncEvent, SyncRun
from tests.sync.doubles import customer, order, subscriber

pytestmark = pytest.mark.django_db

def run_once(store, kind=SyncRun.Kind.INITIAL, **kwargs):
    run, _ = sync_run_request(store=store, kind=kind)
    return sync_run_execute(run_id=run.pk, **kwargs)


def test_initial_sync_sends_exactly_the_calls_the_rules_allow(env):
    run = run_once(env.store)
    ortto = env.ortto

    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    # The connection's first run registers the store's webhooks.
    assert sorted(hook["scope"] for hook in env.bc.hooks) == [
        "store/cart/abandoned", "store/cart/converted", "store/cart/lineItem/created", "store/cart/lineItem/updated",
        "store/customer/*", "store/order/*", "store/product/*", "store/sku/*", "store/subscriber/*"]
    # Schema first (the connection was not schema_ready): 4 fields + Placed order, the journey's six and the
    # product journeys' four activity definitions (409 = exists).
    assert [c[0] for c in ortto.schema_calls] == ["field-list"] + ["field"] * 4 + ["activity"] * 11
    merges = [(strategy, [p["fields"] for p in people]) for strategy, people in ortto.calls]
    assert len(merges) == 4
    # 1. customers, each with their own subscriber record (an initial run reads the subscribers first and
    #    keeps them): one creating merge (Append only) per person, the customer's fields and bol::p from the
    #    subscriber's consent. cat exists in Ortto: the creating merge leaves her permission untouched.
    assert merges[0][0] == 1
    assert [(f["str::email"], f["bol::p"]) for f in merges[0][1]] == [("ann@x.io", True), ("cat@x.io", False)]
    assert merges[0][1][0]["str::s-ctx"] == "Opted in to the newsletter in Acme"
    assert merges[0][1][0]["int:cm:bigcommerce-customer-id"] == 1
    assert merges[0][1][1] == {"str::email": "cat@x.io", "str::first": "Cat", "str::last": "C",
                               "int:cm:bigcommerce-customer-id": 2, "bol::p": False,
                               "str::u-ctx": "Did not opt in to the newsletter at checkout in Acme"}
    # 2. ... then the subscribers no customer took along (bob), after the customers.
    assert [(f["str::email"], f["bol::p"]) for f in merges[1][1]] == [("bob@x.io", False)]
    assert merges[1][1][0]["str::u-ctx"] == "Did not opt in to the newsletter at checkout in Acme"
    # 3. orders: guests first, with the checkout opt-in; ann's order does not create anyone.
    assert [(f["str::email"], f["bol::p"]) for f in merges[2][1]] == [("gus@x.io", True), ("hal@x.io", False)]
    # 4. aggregates, strategy 2, bridge-owned fields only.
    assert merges[3][0] == 2
    assert {f["str::email"]: f["int:cm:bigcommerce-total-spent"] for f in merges[3][1]} == {
        "ann@x.io": 10000, "gus@x.io": 5500, "hal@x.io": 2250}
    assert all("bol::p" not in f for f in merges[3][1])

    assert [a["key"] for a in ortto.activities] == ["bc:abc123:order:101", "bc:abc123:order:102", "bc:abc123:order:103"]
    assert ortto.activities[0]["fields"] == {"str::email": "ann@x.io"}  # ann's account email, not billing
    assert ortto.people["cat@x.io"]["bol::p"] is True
    assert ortto.people["cat@x.io"]["str::first"] == "Catherine"
    assert ortto.people["bob@x.io"]["bol::p"] is False and ortto.people["ann@x.io"]["bol::p"] is True

    ledger = {row.email: row for row in PersonLedger.objects.filter(connection=env.connection)}
    assert set(ledger) == {"ann@x.io", "bob@x.io", "cat@x.io", "gus@x.io", "hal@x.io"}
    assert ledger["cat@x.io"].created_in_ortto is False and ledger["cat@x.io"].sent_permission is None
    assert ledger["gus@x.io"].sent_permission is True and ledger["gus@x.io"].order_count == 1
    assert ledger["ann@x.io"].bc_customer_id == 1 and ledger["ann@x.io"].store_opt_in is True
    assert set(OrderLedger.objects.values_list("order_id", flat=True)) == {101, 102, 103}

    run.refresh_from_db()
    assert run.totals == {"subscribers": 2, "customers": 2, "orders": 4}
    assert run.processed == run.total == 8 and run.progress_percent == 100
    # The incomplete order (an abandoned checkout) is counted as such, not as "unchanged".
    assert run.counters["orders"] == {"fetched": 4, "created": 3, "updated": 0, "unchanged": 0, "failed": 0,
                                      "incomplete": 1}
    assert run.counters["subscribers"] == {"fetched": 2, "created": 1, "updated": 0, "unchanged": 0, "failed": 0}
    assert run.counters["customers"]["created"] == 1  # ann, with her subscriber record; cat existed
    assert not run.staged_subscribers.exists()
    assert SyncCursor.objects.filter(store=env.store).count() == 3


def test_rerun_with_nothing_changed_makes_no_ortto_call(env):
    run_once(env.store)
    calls, activities = len(env.ortto.calls), len(env.ortto.activities)
    incremental = run_once(env.store, kind=SyncRun.Kind.INCREMENTAL)
    full = run_once(env.store, kind=SyncRun.Kind.FULL)
    assert incremental.status == full.status == SyncRun.Status.SUCCEEDED
    assert len(env.ortto.calls) == calls and len(env.ortto.activities) == activities
    assert full.counters["customers"]["unchanged"] == 2 and full.counters["orders"]["unchanged"] == 3
    assert full.counters["orders"]["incomplete"] == 1


def test_incremental_run_reads_from_the_cursor_with_overlap_and_applies_a_new_opt_out(env):
    run_once(env.store)
    cursor = SyncCursor.objects.get(store=env.store, resource="subscribers").modified_since
    later = (timezone.now() + timedelta(minutes=5)).isoformat()
    env.bc.subscribers[0] = subscriber(1, "ann@x.io", [], modified=later)
    env.bc.requests.clear()
    run_once(env.store, kind=SyncRun.Kind.INCREMENTAL)
    first = [u for u in env.bc.requests if "subscribers" in u][0]
    assert "date_modified%3Amin=" + (cursor - timedelta(seconds=60)).strftime("%Y-%m-%dT%H") in first
    strategy, people = env.ortto.calls[-1]
    assert strategy == 2 and people == [{"fields": {"str::email": "ann@x.io", "bol::p": False,
                                                    "str::u-ctx": "Unsubscribed from the newsletter in Acme"}}]
    assert env.ortto.people["ann@x.io"]["bol::p"] is False


def test_overwrite_strategy_probes_then_overwrites_existing_people_without_permission(env):
    Connection.objects.filter(pk=env.connection.pk).update(merge_strategy=2)
    run_once(env.store)
    strategies = [s for s, _ in env.ortto.calls]
    # Customers (with their subscriber records), then the other subscribers: Ignore creates only new people.
    assert strategies[:3] == [3, 2, 3]  # cat existed: overwritten without bol::p
    overwrite = [(s, p) for s, p in env.ortto.calls if s == 2 and p[0]["fields"]["str::email"] == "cat@x.io"]
    assert overwrite and "bol::p" not in overwrite[0][1][0]["fields"]
    assert env.ortto.people["cat@x.io"]["str::first"] == "Cat"
    assert env.ortto.people["cat@x.io"]["bol::p"] is True


def test_resume_after_a_crash_sends_no_person_or_order_twice(env, settings, monkeypatch):
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 1)
    # One record per page, so every unit's batches are part-full and wait for the next unit: each
    # resource sends everything at its last page. The 3rd merge (the guest buyers, at the end of the
    # orders; customers and the other subscribers came first) dies, while the three placed orders the
    # earlier units carried are only in the checkpoint.
    env.ortto.raise_on_call = 3
    run, _ = sync_run_request(store=env.store, kind=SyncRun.Kind.INITIAL)
    with pytest.raises(RuntimeError):
        sync_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.QUEUED and "worker killed" in run.error_summary
    resources = run.checkpoint["resources"]
    assert resources["subscribers"]["done"] and resources["customers"]["done"]
    # 8 records read; the unit that died held the last order (incomplete), so 7 are committed.
    assert resources["orders"]["carry"] == [101, 102, 103] and run.processed == 7
    assert env.ortto.activities == []

    env.bc.requests.clear()
    resumed = sync_run_execute(run_id=run.pk)
    assert resumed.status == SyncRun.Status.SUCCEEDED
    # The carried orders are read again by id (here one GET each: one order per page), then the last
    # order's id range.
    by_id = [url.split("?")[0] for url in env.bc.requests if re.search(r"/v2/orders/\d+(\?|$)", url)]
    assert [url.rsplit("/", 1)[1] for url in by_id] == [
        "101", "102", "103"]
    creating = [p["fields"]["str::email"] for _, people in env.ortto.calls for p in people if "bol::p" in p["fields"]]
    assert len(creating) == len(set(creating))
    keys = [a["key"] for a in env.ortto.activities]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 3
    assert OrderLedger.objects.count() == 3 and resumed.attempts == 2


def test_a_killed_worker_is_taken_over_after_the_stall_time(env, settings):
    run, _ = sync_run_request(store=env.store, kind=SyncRun.Kind.INITIAL)
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.RUNNING, lease="dead",
                                             heartbeat_at=timezone.now())
    assert sync_run_execute(run_id=run.pk) is None  # still fresh: someone else owns it
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=121))
    taken = sync_run_execute(run_id=run.pk)
    assert taken.status == SyncRun.Status.SUCCEEDED and taken.attempts == 1


def test_throttling_and_server_errors_are_retried(env):
    env.ortto.fail_next = [(429, {"error": {"code": "rate-limit", "try-in-seconds": 0}}), (503, {})]
    env.bc.fail_next = [429]
    run = run_once(env.store)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert len(env.ortto.calls) == 4


def test_ortto_401_marks_the_connection_for_reconnect(env):
    env.ortto.fail_next = [(401, {"error": "bad key"})]
    Connection.objects.filter(pk=env.connection.pk).update(schema_ready=True)
    run = run_once(env.store)
    assert run.status == SyncRun.Status.FAILED
    assert "Reconnect the Ortto account" in run.error_summary
    env.connection.refresh_from_db()
    assert env.connection.state == Connection.State.NEEDS_RECONNECT and env.connection.state_reason


def test_bigcommerce_401_fails_the_run_with_reinstall_advice(env):
    env.bc.fail_next = [401]
    run = run_once(env.store)
    assert run.status == SyncRun.Status.FAILED
    assert run.error_summary.startswith("The app's access to the store was revoked; reinstall")


def test_a_refused_record_becomes_an_event_and_the_run_goes_on(env):
    env.bc.subscribers.append(subscriber(3, "not-an-email", []))
    run = run_once(env.store)
    assert run.status == SyncRun.Status.PARTIAL
    event = SyncEvent.objects.get(run=run)
    # Caught before sending: a malformed address costs no refused request (Ortto bans IPs for those).
    assert event.email == "not-an-email" and "not sent to Ortto" in event.message and event.level == "error"
    assert PersonLedger.objects.filter(email="ann@x.io").exists()
    assert not PersonLedger.objects.filter(email="not-an-email").exists()


def test_resync_failed_records_resends_only_those_and_resolves_them(env):
    env.bc.subscribers.append(subscriber(3, "not-an-email", []))
    first = run_once(env.store)
    assert first.status == SyncRun.Status.PARTIAL
    # The merchant fixes the address; support clicks "Resync failed records".
    env.bc.subscribers[-1]["email"] = "dee@x.io"
    env.bc.requests.clear()
    retry = run_once(env.store, kind=SyncRun.Kind.RETRY_FAILED)
    assert retry.status == SyncRun.Status.SUCCEEDED, retry.error_summary
    assert retry.total == 1 and retry.processed == 1
    fetched = [r for r in env.bc.requests if "subscribers" in r]
    assert len(fetched) == 1 and ("id%3Ain=3" in fetched[0] or "id:in=3" in fetched[0])
    assert not [r for r in env.bc.requests if "/v3/customers?" in r or "/v2/orders" in r]
    assert PersonLedger.objects.filter(email="dee@x.io").exists()
    assert SyncEvent.objects.get(run=first).resolved
    # Nothing left to retry.
    again = run_once(env.store, kind=SyncRun.Kind.RETRY_FAILED)
    assert again.total == 0 and again.status == SyncRun.Status.SUCCEEDED


def test_one_active_run_per_store(env):
    first, created = sync_run_request(store=env.store, kind=SyncRun.Kind.INITIAL)
    second, created_again = sync_run_request(store=env.store, kind=SyncRun.Kind.MANUAL)
    assert created and not created_again and first.pk == second.pk
    assert SyncRun.objects.filter(store=env.store).count() == 1


def test_a_cancelled_run_stops_at_the_next_page(env, monkeypatch):
    from sync.engine.runs import sync_runs_cancel

    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 1)
    run, _ = sync_run_request(store=env.store, kind=SyncRun.Kind.INITIAL)
    # After the catalog's page (its own checkpoint), the first page of subscribers.
    sync_run_execute(run_id=run.pk, on_page=lambda r: r.checkpoint.get("catalog_done")
                     and sync_runs_cancel(store=env.store, reason="uninstalled"))
    run.refresh_from_db()
    assert run.status == SyncRun.Status.CANCELLED and run.processed == 1


def test_slices_requeue_the_run(env, settings, django_capture_on_commit_callbacks):
    settings.SYNC_TASK_SLICE_SECONDS = -1
    run, _ = sync_run_request(store=env.store, kind=SyncRun.Kind.INITIAL)
    with django_capture_on_commit_callbacks() as callbacks:
        sync_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.QUEUED and len(callbacks) == 1
    settings.SYNC_TASK_SLICE_SECONDS = 240
    assert sync_run_execute(run_id=run.pk).status == SyncRun.Status.SUCCEEDED


def test_part_full_batches_wait_for_the_next_page_so_a_resource_costs_ceil_n_over_100_calls(env, monkeypatch):
    # 30 records a page: without carrying, each of the 9 pages would cost its own part-full merge.
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 30)
    env.bc.subscribers = [subscriber(i, f"s{i}@x.io", ["marketing_newsletter"] if i % 2 else []) for i in range(1, 251)]
    env.bc.customers = [customer(i, f"s{i}@x.io", f"C{i}") for i in range(1, 131)]  # all already subscribers
    env.bc.orders = [order(1000 + i, f"guest{i}@x.io", total="1.00") for i in range(1, 211)]

    run = run_once(env.store)

    assert run.status == SyncRun.Status.SUCCEEDED and run.processed == 250 + 130 + 210
    by_kind = {}
    for strategy, people in env.ortto.calls:
        first = people[0]["fields"]
        kind = ("people" if first["str::email"].startswith("s")
                else "guests" if "bol::p" in first else "aggregates")
        by_kind.setdefault(kind, []).append(len(people))
    # Each of the 250 people once: the 130 customers with their subscriber records (ceil(130/100) merges),
    # then the 120 other subscribers (ceil(120/100)); ceil(210/100) guest creations, and the order
    # aggregates of the 210 buyers (written once, after the last order page).
    # (Batches go out concurrently, so the calls are compared as a multiset, not in order.)
    assert sorted(by_kind["people"]) == [20, 30, 100, 100]
    assert sum(by_kind["people"]) == 250
    assert sorted(by_kind["guests"]) == sorted(by_kind["aggregates"]) == [10, 100, 100]
    assert len(env.ortto.activities) == 210
    assert PersonLedger.objects.filter(connection=env.connection).count() == 250 + 210
    assert env.ortto.people["s1@x.io"]["bol::p"] is True and env.ortto.people["s2@x.io"]["bol::p"] is False
    # Append only: the customer record adds what the subscriber record did not have.
    assert env.ortto.people["s130@x.io"]["int:cm:bigcommerce-customer-id"] == 130


def test_staged_subscribers_survive_a_crash_and_each_person_is_created_once(env, monkeypatch):
    """Initial runs keep the subscribers in the database until their customer takes them along: a worker
    killed in the customers' merge resumes with them, and every person is created once, with the
    permission the rules give them (R1/R2)."""
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 1)
    env.ortto.raise_on_call = 1  # the first merge is the customers' (ann with her subscriber record)
    run, _ = sync_run_request(store=env.store, kind=SyncRun.Kind.INITIAL)
    with pytest.raises(RuntimeError):
        sync_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.checkpoint["resources"]["subscribers"]["done"]
    assert sorted(run.staged_subscribers.values_list("email", flat=True)) == ["ann@x.io", "bob@x.io"]

    resumed = sync_run_execute(run_id=run.pk)
    assert resumed.status == SyncRun.Status.SUCCEEDED, resumed.error_summary
    creating = [p["fields"]["str::email"] for _, people in env.ortto.calls for p in people if "bol::p" in p["fields"]]
    assert sorted(creating) == ["ann@x.io", "bob@x.io", "cat@x.io", "gus@x.io", "hal@x.io"]
    assert env.ortto.people["ann@x.io"]["bol::p"] is True and env.ortto.people["bob@x.io"]["bol::p"] is False
    assert env.ortto.people["ann@x.io"]["int:cm:bigcommerce-customer-id"] == 1
    assert not resumed.staged_subscribers.exists()
    ann = PersonLedger.objects.get(connection=env.connection, email="ann@x.io")
    assert set(ann.fingerprints) == {"subscriber", "customer"} and ann.store_opt_in is True


def _new_order(order_id, email, total, **kwargs):
    """An order placed now (after the last run's cursor)."""
    from email.utils import format_datetime
    return order(order_id, email, total=total, modified=format_datetime(timezone.now()), **kwargs)


def _incremental_merges(env, before: int) -> list[tuple[int, list[dict]]]:
    return [(strategy, [p["fields"] for p in people]) for strategy, people in env.ortto.calls[before:]]


def test_a_new_buyers_totals_ride_on_the_merge_that_creates_them(env):
    run_once(env.store)
    before = len(env.ortto.calls)
    env.bc.orders += [_new_order(105, "new@x.io", "7.00"), _new_order(106, "new@x.io", "3.00")]
    run = run_once(env.store, kind=SyncRun.Kind.INCREMENTAL)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    merges = _incremental_merges(env, before)
    # One merge for the new guest, carrying their totals; then only the two Placed order activities.
    assert len(merges) == 1 and [f["str::email"] for f in merges[0][1]] == ["new@x.io"]
    person = env.ortto.people["new@x.io"]
    assert person["int:cm:bigcommerce-order-count"] == 2 and person["int:cm:bigcommerce-total-spent"] == 10000
    assert person["bol::p"] is False  # R1: a guest who did not tick the box is not subscribed
    assert {a["key"] for a in env.ortto.activities} >= {"bc:abc123:order:105", "bc:abc123:order:106"}
    row = PersonLedger.objects.get(connection=env.connection, email="new@x.io")
    assert row.order_count == 2 and row.total_spent == 10


def test_a_refused_order_corrects_the_totals_the_creating_merge_carried(env):
    run_once(env.store)
    before = len(env.ortto.calls)
    env.ortto.refuse_keys = {"bc:abc123:order:106"}
    env.bc.orders += [_new_order(105, "new@x.io", "7.00"), _new_order(106, "new@x.io", "3.00")]
    run = run_once(env.store, kind=SyncRun.Kind.INCREMENTAL)
    merges = _incremental_merges(env, before)
    assert len(merges) == 2 and merges[1][0] == 2  # the creating merge, then an overwrite of the totals
    person = env.ortto.people["new@x.io"]
    assert person["int:cm:bigcommerce-order-count"] == 1 and person["int:cm:bigcommerce-total-spent"] == 7000
    assert run.counters["orders"]["failed"] == 1
    assert SyncEvent.objects.filter(run=run, bc_id=106, message__contains="refused").exists()
    assert not OrderLedger.objects.filter(order_id=106).exists()  # the next run tries it again


def test_a_new_buyer_already_in_ortto_gets_the_totals_written_over_older_values(env):
    run_once(env.store)
    env.ortto.people["old@x.io"] = {"str::email": "old@x.io", "bol::p": True,
                                    "int:cm:bigcommerce-order-count": 9, "int:cm:bigcommerce-total-spent": 1}
    before = len(env.ortto.calls)
    env.bc.orders.append(_new_order(105, "old@x.io", "7.00"))
    run_once(env.store, kind=SyncRun.Kind.INCREMENTAL)
    merges = _incremental_merges(env, before)
    # The creating merge (Append only here) leaves Ortto's older totals: they are overwritten after the order.
    assert [strategy for strategy, _ in merges] == [1, 2]
    person = env.ortto.people["old@x.io"]
    assert person["int:cm:bigcommerce-order-count"] == 1 and person["int:cm:bigcommerce-total-spent"] == 7000
    assert person["bol::p"] is True  # an existing person's permission is left alone


def test_an_order_cancelled_before_the_run_saw_it_writes_the_buyers_totals_once(env):
    run_once(env.store)
    before_row = PersonLedger.objects.get(connection=env.connection, email="ann@x.io")
    before = len(env.ortto.calls)
    env.bc.orders.append(_new_order(105, "ann@billing.io", "20.00", customer_id=1, status_id=5))  # Cancelled
    run = run_once(env.store, kind=SyncRun.Kind.INCREMENTAL)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    totals = [fields for strategy, people in _incremental_merges(env, before) for fields in people
              if "int:cm:bigcommerce-order-count" in fields]
    # Placed, then taken out of the totals by its status: one overwrite with the end result, not two.
    assert totals == [{"str::email": "ann@x.io", "int:cm:bigcommerce-order-count": before_row.order_count,
                       "int:cm:bigcommerce-total-spent": 10000,
                       "dtz:cm:bigcommerce-last-order-date": totals[0]["dtz:cm:bigcommerce-last-order-date"]}]
    assert env.ortto.people["ann@x.io"]["int:cm:bigcommerce-total-spent"] == 10000  # the 10.00 order only


def test_a_new_buyer_whose_only_order_is_refused_is_put_back_to_no_orders(env):
    run_once(env.store)
    env.ortto.refuse_keys = {"bc:abc123:order:105"}
    env.bc.orders.append(_new_order(105, "new@x.io", "7.00"))
    run = run_once(env.store, kind=SyncRun.Kind.INCREMENTAL)
    assert run.counters["orders"]["failed"] == 1
    person = env.ortto.people["new@x.io"]
    assert person["int:cm:bigcommerce-order-count"] == 0 and person["int:cm:bigcommerce-total-spent"] == 0
    assert "dtz:cm:bigcommerce-last-order-date" not in person  # the date the creating merge carried is cleared
