"""A full run reads every record BigCommerce reports, or says it did not (issue 17)."""

import threading

import pytest
import requests

from sandbox.bigcommerce.models import Customer, Order, SandboxStore
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from sandbox.ortto.seed import seed_ortto_instances
from stores.bigcommerce import BigCommerceClient
from sync.engine.runs import records_short, sync_run_execute, sync_run_request
from sync.models import OrderLedger, PersonLedger, SyncEvent, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def _connected(store_hash, make_account, make_connection, make_store, *, customers, orders):
    sandbox_store = seed_bigcommerce(store_hash=store_hash, name="Complete", customers=customers, orders=orders,
                                     seed=11)
    seed_users(store_hash=store_hash)
    install = app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    store = make_store(store_hash, name="Complete", access_token=install.access_token)
    connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=1)
    return sandbox_store, store, connection


def test_customers_without_cursor_metadata_are_read_by_page_number(make_account, make_connection, make_store,
                                                                   sandbox_live, monkeypatch):
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 20)
    sandbox_store, store, connection = _connected("nocur1", make_account, make_connection, make_store,
                                                  customers=70, orders=10)
    # The emulator's switch, over its control endpoint: customers pages without meta.cursor_pagination.
    answer = requests.post(f"{sandbox_live}/sandbox/bigcommerce/control/nocur1/faults",
                           json={"customers_cursor_meta": False}, timeout=10)
    assert answer.status_code == 200 and answer.json()["customers_cursor_meta"] is False
    page = BigCommerceClient("nocur1", store.access_token).customers_page(limit=20)
    assert page.next_after is None and page.next_page == 2

    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
    run = sync_run_execute(run_id=run.pk)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    customers = Customer.objects.filter(store=sandbox_store).count()
    assert run.totals["customers"] == customers
    assert run.counters["customers"]["fetched"] == customers
    ids = set(Customer.objects.filter(store=sandbox_store).values_list("bc_id", flat=True))
    synced = set(PersonLedger.objects.filter(connection=connection, bc_customer_id__isnull=False)
                 .values_list("bc_customer_id", flat=True))
    assert synced == ids


def test_a_run_that_reads_fewer_records_than_reported_is_partial_and_says_so(make_account, make_connection,
                                                                           make_store, sandbox_live, monkeypatch):
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 20)
    sandbox_store, store, _ = _connected("short1", make_account, make_connection, make_store, customers=50, orders=10)
    real = BigCommerceClient.customers_page

    def first_page_only(self, **kwargs):  # a paging answer the client cannot follow: it stops after page 1
        page = real(self, **kwargs)
        page.next_after, page.next_page = None, None
        return page

    monkeypatch.setattr(BigCommerceClient, "customers_page", first_page_only)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
    run = sync_run_execute(run_id=run.pk)
    customers = Customer.objects.filter(store=sandbox_store).count()
    assert run.status == SyncRun.Status.PARTIAL
    assert f"customers 20 of {customers}" in run.error_summary
    assert records_short(run) == [("customers", 20, customers)]
    event = SyncEvent.objects.get(run=run, resource="customers", level=SyncEvent.Level.WARNING)
    assert f"reported {customers} customers" in event.message
    assert SandboxStore.objects.filter(store_hash="short1").exists()


def test_an_import_reads_pages_several_at_a_time_and_imports_every_record(make_account, make_connection,
                                                                          make_store, sandbox_live, monkeypatch,
                                                                          settings):
    """Over real HTTP: the first two orders id ranges answer only when both are in flight at once, and
    customers (answered without cursor metadata) likewise for pages 2 and 3."""
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 20)
    settings.BIGCOMMERCE_READ_CONCURRENCY = 3
    sandbox_store, store, connection = _connected("par1", make_account, make_connection, make_store,
                                                  customers=90, orders=70)
    requests.post(f"{sandbox_live}/sandbox/bigcommerce/control/par1/faults", json={"customers_cursor_meta": False},
                  timeout=10).raise_for_status()
    meet = {"customers": threading.Barrier(2, timeout=10), "orders": threading.Barrier(2, timeout=10)}
    asked = {"customers": [], "orders": []}
    lock = threading.Lock()
    real = {name: getattr(BigCommerceClient, f"{name}_page") for name in meet}

    def meeting(name):
        def page_read(self, **kwargs):
            with lock:
                asked[name].append(kwargs)
                ranges = [k for k in asked[name] if k.get("max_id")]
            if (name == "customers" and kwargs.get("page") in (2, 3)) or (
                    name == "orders" and kwargs.get("max_id") and len(ranges) <= 2):
                meet[name].wait()  # BrokenBarrierError (and a failed run) if read one at a time
            return real[name](self, **kwargs)
        return page_read

    for name in meet:
        monkeypatch.setattr(BigCommerceClient, f"{name}_page", meeting(name))
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
    run = sync_run_execute(run_id=run.pk)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    customers = Customer.objects.filter(store=sandbox_store).count()
    orders = Order.objects.filter(store=sandbox_store).count()
    assert run.counters["customers"]["fetched"] == customers and run.counters["orders"]["fetched"] == orders
    synced = set(PersonLedger.objects.filter(connection=connection, bc_customer_id__isnull=False)
                 .values_list("bc_customer_id", flat=True))
    assert synced == set(Customer.objects.filter(store=sandbox_store).values_list("bc_id", flat=True))
    placed = Order.objects.filter(store=sandbox_store).exclude(status_id=0)  # Incomplete orders are not sent
    assert set(OrderLedger.objects.filter(connection=connection).values_list("order_id", flat=True)) == set(
        placed.values_list("bc_id", flat=True))
    # Customers: every page once, by number. Orders: a first page, disjoint one-page id ranges, then min_id.
    pages = sorted(k.get("page") or 1 for k in asked["customers"])
    assert pages == list(range(1, -(-customers // 20) + 1))
    ranges = sorted((k["min_id"], k["max_id"]) for k in asked["orders"] if k.get("max_id"))
    assert len(ranges) == -(-orders // 20) - 1 and all(high - low == 19 for low, high in ranges)
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))


def test_customers_with_a_cursor_are_read_by_cursor(make_account, make_connection, make_store, sandbox_live,
                                                   monkeypatch):
    """A cursor loses no customer when one is deleted during the read; page numbers would."""
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 20)
    sandbox_store, store, connection = _connected("cur1", make_account, make_connection, make_store,
                                                  customers=70, orders=10)
    asked = []
    real = BigCommerceClient.customers_page

    def page_read(self, **kwargs):
        asked.append(kwargs)
        return real(self, **kwargs)

    monkeypatch.setattr(BigCommerceClient, "customers_page", page_read)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
    run = sync_run_execute(run_id=run.pk)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert [bool(k.get("after")) for k in asked] == [False, True, True, True]
    assert all(k.get("page") is None for k in asked)
    assert run.counters["customers"]["fetched"] == Customer.objects.filter(store=sandbox_store).count()


def test_a_full_read_of_customers_in_date_windows_reaches_every_customer_once(make_account, make_connection,
                                                                            make_store, sandbox_live, monkeypatch,
                                                                            settings):
    """Over real HTTP, the emulator's date filters and cursors: 12 pages of customers read in 3 windows."""
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 20)
    settings.BIGCOMMERCE_READ_CONCURRENCY = 3
    sandbox_store, store, connection = _connected("windows1", make_account, make_connection, make_store,
                                                  customers=235, orders=5)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
    run = sync_run_execute(run_id=run.pk)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    plan = run.checkpoint["resources"]["customers"]["windows"]
    assert len(plan["list"]) == 3 and all(window["done"] for window in plan["list"])
    customers = Customer.objects.filter(store=sandbox_store).count()
    assert run.counters["customers"]["fetched"] == customers
    ids = set(Customer.objects.filter(store=sandbox_store).values_list("bc_id", flat=True))
    synced = set(PersonLedger.objects.filter(connection=connection, bc_customer_id__isnull=False)
                 .values_list("bc_customer_id", flat=True))
    assert synced == ids
