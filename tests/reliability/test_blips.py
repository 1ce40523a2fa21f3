"""Case 4 — database and broker blips: PostgreSQL is restarted, then Redis is shut down (nosave) and
started again, while two clusters run an initial sync. The run fails over to a retry from its last
committed page, never to corrupted cursors; PostgreSQL and Redis are always left running."""

import subprocess
import time
from pathlib import Path

import pytest
from django.db import InterfaceError, OperationalError, connection
from django.db.models import Count

from sandbox.bigcommerce.models import Customer, Order, Subscriber
from sandbox.ortto.models import Person, PersonActivity
from stores.models import Store
from sync.engine.runs import CURSOR_OVERLAP, sync_run_execute, sync_run_request
from sync.models import SyncCursor, SyncRun
from tests.reliability.harness import full_scale, pg_redis_only, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live, pg_redis_only]

CUSTOMERS = 20000 if full_scale() else 3000
ORDERS = 20000 if full_scale() else 2500


def _pg_version() -> str:
    return sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]


def pg_restart():
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "restart"], check=True,
                   capture_output=True, timeout=120)


def pg_ensure_up():
    if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode != 0:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", _pg_version(), "main", "start"],
                       capture_output=True, timeout=120)


def redis_up() -> bool:
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "ping"], capture_output=True).stdout.strip() == b"PONG"


def redis_start():
    if not redis_up():
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "",
                        "--appendonly", "no"], check=True, capture_output=True)
    wait_for(redis_up, timeout=20, message="redis to answer")


def redis_shutdown():
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"], capture_output=True)


@pytest.fixture
def services_restored():
    yield
    pg_ensure_up()
    redis_start()
    wait_for(lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"]).returncode == 0,
             timeout=60, message="postgres to accept connections")
    connection.close()


def _safe(fn):
    """Call fn(); a database or broker error during a blip counts as "not yet"."""
    try:
        return fn()
    except (OperationalError, InterfaceError):
        connection.close()
        return None
    except Exception as exc:  # redis.ConnectionError while Redis is down
        if "redis" in type(exc).__module__ or "Connection" in type(exc).__name__:
            return None
        raise


def test_postgres_and_redis_restarts_during_a_run(connect_fleet, sandbox_live, clusters, services_restored):
    from django_q.tasks import async_task

    (store,), _ = connect_fleet(count=1, customers=CUSTOMERS, orders=ORDERS, prefix="blip")
    both = clusters(2, sandbox_live, SYNC_STALL_SECONDS=6)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL, requested_by="test")

    def state():
        return SyncRun.objects.filter(pk=run.pk).values("status", "processed", "total", "attempts").first()

    def progressed(fraction):
        def check():
            current = _safe(state)
            return current and current["total"] and current["processed"] >= fraction * current["total"]
        return check

    def tick():  # the maintenance schedule's job, every second here
        _safe(lambda: async_task("sync.tasks.maintenance_tick"))

    wait_for(progressed(0.15), timeout=120, message="the sync to get going")
    at_pg = _safe(state)
    pg_restart()
    connection.close()

    def moving_again(after):
        def check():
            tick()
            current = _safe(state)
            return current and current["processed"] > after
        return check

    wait_for(moving_again(at_pg["processed"] + 250), timeout=90, interval=1, message="the run to move after the PG restart")
    wait_for(progressed(0.5), timeout=120, message="the sync to pass half way")
    at_redis = _safe(state)
    redis_shutdown()
    time.sleep(3)
    redis_start()
    wait_for(moving_again(at_redis["processed"] + 250), timeout=90, interval=1,
             message="the run to move after the Redis restart")

    def finished():
        tick()
        current = _safe(state)
        return current if current and current["status"] not in SyncRun.ACTIVE_STATUSES else None

    final = wait_for(finished, timeout=300, interval=1, message="the run to finish")
    assert final["status"] == SyncRun.Status.SUCCEEDED, SyncRun.objects.get(pk=run.pk).error_summary
    assert final["attempts"] >= 2  # at least one blip cost an attempt, and a retry took over

    # Nothing lost, nothing twice.
    sandbox = store.store_hash
    emails = {e.lower() for e in Customer.objects.filter(store__store_hash=sandbox).values_list("email", flat=True)}
    emails |= {e.lower() for e in Subscriber.objects.filter(store__store_hash=sandbox).values_list("email", flat=True)}
    people = list(Person.objects.values_list("email", flat=True))
    assert len(people) == len(set(people)) and emails <= set(people)
    placed = Order.objects.filter(store__store_hash=sandbox).exclude(status_id=0).count()
    activities = PersonActivity.objects.filter(activity_id__startswith="act:cm:placed")
    assert activities.count() == placed
    assert not activities.values("key").annotate(n=Count("id")).filter(n__gt=1).exists()

    # Cursors: each at the newest record the run saw, never beyond what was read.
    cursors = {c.resource: c.modified_since for c in SyncCursor.objects.filter(store=store)}
    newest = {
        "customers": Customer.objects.filter(store__store_hash=sandbox).order_by("-date_modified").first().date_modified,
        "orders": Order.objects.filter(store__store_hash=sandbox).order_by("-date_modified").first().date_modified,
    }
    for resource, moment in newest.items():
        assert cursors[resource] == moment, (resource, cursors[resource], moment)
    # …so the next incremental run only re-reads the overlap window.
    again, _ = sync_run_request(store=Store.objects.get(pk=store.pk), kind=SyncRun.Kind.INCREMENTAL,
                                enqueue_run=False)
    survived = [c.name for c in both if c.alive]
    assert len(survived) == 2, "a qcluster process died in the blips"
    for cluster in both:
        cluster.stop()
    again = sync_run_execute(run_id=again.pk)
    assert again.status == SyncRun.Status.SUCCEEDED and again.people_synced == 0
    assert again.processed < 0.05 * final["total"]
    print(f"FIGURE case4: customers={CUSTOMERS} total={final['total']} pg_restart_at={at_pg['processed']} "
          f"redis_restart_at={at_redis['processed']} attempts={final['attempts']} reread={again.processed} "
          f"overlap={CURSOR_OVERLAP} clusters_alive={survived}")
