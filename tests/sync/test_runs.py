"""Ticks, the status selector, the foreground command and the schema service."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from stores.models import WebhookEvent
from sync.connect.connections import connection_prepare
from sync.connect.selectors import app_state
from sync.engine.runs import sync_run_request, sync_runs_cancel
from sync.models import Connection, SyncRun
from sync.tasks import incremental_tick, maintenance_tick

pytestmark = pytest.mark.django_db


def test_stalled_is_an_active_run_nobody_reported_on_for_the_stall_time(make_account, make_connection, make_store,
                                                                            settings):
    """The one definition the maintenance tick, a worker's takeover and the admin all use."""
    settings.SYNC_STALL_SECONDS = 120
    now = timezone.now()
    old, fresh = now - timedelta(seconds=121), now - timedelta(seconds=60)
    connection = make_connection(make_store("aaa"), make_account())
    cases = {  # name: (status, created_at, heartbeat_at, stalled?)
        "running, quiet": ("running", old, old, True),
        "running, reporting": ("running", old, fresh, False),
        "queued, task lost": ("queued", old, None, True),
        "queued, waiting for its retry": ("queued", old, old, True),
        "queued just now": ("queued", fresh, None, False),
        "finished long ago": ("succeeded", old, old, False),
    }
    ids = {}
    for name, (status, created_at, heartbeat_at, _) in cases.items():
        store = make_store(name.replace(" ", "").replace(",", "")[:20])
        run = SyncRun.objects.create(store=store, connection=connection, kind="incremental", status=status)
        SyncRun.objects.filter(pk=run.pk).update(created_at=created_at, heartbeat_at=heartbeat_at)
        ids[run.pk] = name
    stalled = {ids[pk] for pk in SyncRun.objects.stalled().values_list("pk", flat=True)}
    assert stalled == {name for name, case in cases.items() if case[3]}
    flagged = {ids[run.pk] for run in SyncRun.objects.with_stalled() if run.is_stalled}
    assert flagged == stalled
    claimable = {ids[pk] for pk in SyncRun.objects.claimable().values_list("pk", flat=True)}
    assert claimable == stalled | {"queued just now"}


def test_incremental_tick_requests_one_run_per_connected_store(make_account, make_connection, make_store,
                                                               django_capture_on_commit_callbacks):
    account = make_account()
    active = make_store("aaa")
    make_connection(active, account)
    make_connection(make_store("bbb"), make_account(name="b"), state=Connection.State.NEEDS_RECONNECT)
    make_connection(make_store("ccc", installed=False), make_account(name="c"))
    with django_capture_on_commit_callbacks() as callbacks:
        assert incremental_tick() == 1
        assert incremental_tick() == 0  # the active run absorbs the second tick
    assert list(SyncRun.objects.values_list("store__store_hash", "kind")) == [("aaa", "incremental")]
    assert len(callbacks) == 1


def test_maintenance_resumes_quiet_runs_and_drains_webhooks(make_account, make_connection, make_store,
                                                            django_capture_on_commit_callbacks):
    stalled_store, waiting_store = make_store("aaa"), make_store("bbb")
    make_connection(stalled_store, make_account())
    make_connection(waiting_store, make_account(name="b"))
    stalled, _ = sync_run_request(store=stalled_store, kind=SyncRun.Kind.INITIAL)
    SyncRun.objects.filter(pk=stalled.pk).update(status="running", heartbeat_at=timezone.now() - timedelta(hours=1))
    WebhookEvent.objects.create(store=waiting_store, dedup_key="k", scope="store/order/created", resource="orders",
                                resource_id=1, payload={}, bc_created_at=timezone.now())
    with django_capture_on_commit_callbacks() as callbacks:
        assert maintenance_tick() == {"resumed": 1, "webhook_runs": 1, "incidents": {"opened": 1, "cleared": 0}}
    assert SyncRun.objects.get(store=waiting_store).kind == SyncRun.Kind.WEBHOOK
    assert len(callbacks) == 3  # the two runs, and the stalled store's alert e-mail (sync/health/incidents.py)


def test_cancel_and_status_for_the_app_page(make_account, make_connection, make_store):
    store = make_store("aaa")
    make_connection(store, make_account(business_name="Acme (US)"))
    assert app_state(store=store)["last_run"] is None
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
    status = app_state(store=store)
    assert status["active_run"]["id"] == run.pk and status["active_run"]["percent"] == 0
    assert status["connection"]["business_name"] == "Acme (US)" and not status["connection"]["needs_reconnect"]
    assert sync_runs_cancel(store=store, reason="The app was uninstalled") == 1
    status = app_state(store=store)
    assert status["active_run"] is None
    assert status["last_run"]["status"] == "cancelled" and status["last_run"]["error_summary"]


def test_sync_store_command_runs_in_the_foreground(env):
    out = StringIO()
    call_command("sync_store", "abc123", "--full", stdout=out, stderr=StringIO())
    text = out.getvalue()
    assert "Succeeded" in text and "orders: fetched 4, created 3" in text
    assert SyncRun.objects.get().kind == SyncRun.Kind.FULL


def test_setup_schedules_is_idempotent():
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=StringIO())
    call_command("setup_schedules", stdout=StringIO())
    assert Schedule.objects.filter(func="sync.tasks.incremental_tick").count() == 1
    assert Schedule.objects.filter(func="sync.tasks.maintenance_tick").count() == 1


def test_connection_prepare_creates_schema_and_webhooks(env):
    connection_prepare(env.connection)
    env.connection.refresh_from_db()
    assert env.connection.schema_ready and env.connection.webhook_ids == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert {hook["scope"] for hook in env.bc.hooks} == {"store/customer/*", "store/subscriber/*", "store/order/*",
                                                         "store/cart/abandoned", "store/cart/converted",
                                                         "store/cart/lineItem/created", "store/cart/lineItem/updated",
                                                         "store/product/*", "store/sku/*"}
    assert env.connection.ortto_schema["activity_id"] == "act:cm:placed-order"
    assert env.connection.ortto_schema["fields"]["total_spent"] == "int:cm:bigcommerce-total-spent"


def test_uninstall_reaches_sync_through_the_store_uninstalled_signal(make_account, make_connection, make_store):
    """stores never imports sync: its uninstall sends store_uninstalled, which SyncConfig.ready() connects."""
    from stores.services import store_uninstall

    store = make_store("aaa")
    connection = make_connection(store, make_account())
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL, enqueue_run=False)
    store_uninstall(store=store)
    run.refresh_from_db()
    connection.refresh_from_db()
    assert run.status == SyncRun.Status.CANCELLED and run.error_summary == "The app was uninstalled"
    assert connection.state == Connection.State.DISCONNECTED and connection.webhook_ids == []
