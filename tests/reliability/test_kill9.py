"""Case 2 — kill -9: a worker dies in the middle of an initial sync. The run is detected as stalled and
resumed (the second time by the other cluster), and afterwards the sandbox Ortto holds every person
exactly once and every order activity exactly once."""

import os
import re
import signal
import time

import pytest
from django.db.models import Count

from sandbox.bigcommerce.models import Customer, Order, Subscriber
from sandbox.ortto.models import Person, PersonActivity
from sync.engine.runs import sync_run_request
from sync.models import OrderLedger, PersonLedger, SyncRun
from tests.reliability.harness import bridge_secrets, full_scale, pg_redis_only, secrets_in, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live, pg_redis_only]

# People = customers + subscriber-only emails + guest buyers. RELIABILITY_FULL=1: 20,000 customers.
CUSTOMERS = 20000 if full_scale() else 3000
ORDERS = 20000 if full_scale() else 2500


def _claims(cluster, run_id):
    """(pid, attempt) of every claim of the run in this cluster's log."""
    pattern = rf"pid=(\d+) INFO sync\.engine \[store=\S+ run={run_id}\] \S+ run claimed \(attempt (\d+)\)"
    return [(int(pid), int(attempt)) for pid, attempt in re.findall(pattern, cluster.output())]


def _holder(cl, run_id, attempt):
    for cluster in cl:
        for pid, seen in _claims(cluster, run_id):
            if seen == attempt:
                return cluster, pid
    return None


def test_kill9_mid_initial_sync_resumes_without_duplicates(connect_fleet, sandbox_live, clusters):
    from django_q.tasks import async_task

    (store,), _ = connect_fleet(count=1, customers=CUSTOMERS, orders=ORDERS, prefix="kill")
    started = time.monotonic()
    both = clusters(2, sandbox_live, SYNC_STALL_SECONDS=6)
    clusters_started = both
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL, requested_by="test")

    def progressed(fraction):
        def check():
            current = SyncRun.objects.get(pk=run.pk)
            return current.status == SyncRun.Status.RUNNING and current.total and current.processed >= fraction * current.total
        return check

    def resumed(attempt):
        def check():
            # The maintenance schedule's job, done every second here (django-q2's scheduler looks every 30 s).
            async_task("sync.tasks.maintenance_tick")
            return _holder(both, run.pk, attempt)
        return check

    # 1. SIGKILL the worker process that is running the sync (its cluster starts a new worker).
    wait_for(progressed(0.15), timeout=120, message="the initial sync to get going")
    cluster, pid = wait_for(lambda: _holder(both, run.pk, 1), timeout=10, message="the first claim")
    before = SyncRun.objects.get(pk=run.pk).processed
    os.kill(pid, signal.SIGKILL)
    holder, _ = wait_for(resumed(2), timeout=60, interval=1, message="the stalled run to be resumed")

    # 2. SIGKILL the whole cluster that resumed it: the other cluster must take over.
    wait_for(progressed(0.5), timeout=120, message="the resumed run to progress")
    holder.kill9()
    survivor, _ = wait_for(resumed(3), timeout=60, interval=1, message="the other cluster to resume the run")
    assert survivor is not holder

    def finished():
        current = SyncRun.objects.get(pk=run.pk)
        return current if not current.is_active else None

    final = wait_for(finished, timeout=300, interval=1, message="the run to finish")
    elapsed = time.monotonic() - started
    assert final.status == SyncRun.Status.SUCCEEDED, final.error_summary
    assert final.attempts == 3

    sandbox = store.store_hash
    emails = {e.lower() for e in Customer.objects.filter(store__store_hash=sandbox).values_list("email", flat=True)}
    emails |= {e.lower() for e in Subscriber.objects.filter(store__store_hash=sandbox).values_list("email", flat=True)}
    people = Person.objects.filter(instance__name="acme-us")
    person_emails = list(people.values_list("email", flat=True))
    assert len(person_emails) == len(set(person_emails))  # nobody twice
    assert emails <= set(person_emails)  # everybody there
    assert set(person_emails) == set(PersonLedger.objects.values_list("email", flat=True))

    placed = Order.objects.filter(store__store_hash=sandbox).exclude(status_id=0).count()
    activities = PersonActivity.objects.filter(activity_id__startswith="act:cm:placed")
    assert activities.count() == placed  # every order activity exactly once
    assert not activities.values("key").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert OrderLedger.objects.count() == placed
    # Case 7, for the worker processes: nothing secret in their output.
    for cluster in clusters_started:
        assert not secrets_in(cluster.output(), bridge_secrets()), cluster.name
    print(f"FIGURE case2: customers={CUSTOMERS} people={len(person_emails)} orders={placed} "
          f"killed_at={before}/{final.total} attempts={final.attempts} seconds={elapsed:.0f}")
