"""Case 1 — two clusters, one truth: two `qcluster` processes on PostgreSQL + Redis, 20 connected
sandbox stores on a short schedule. Every store's runs happen, never two at once for one store, and a
tick produces at most one run per store."""

import re
import time
from collections import defaultdict

import pytest

from sync.models import SyncRun
from tests.reliability.harness import bridge_secrets, pg_redis_only, secrets_in, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live, pg_redis_only]

STORES = 20


def _intervals_overlap(runs) -> list:
    clashes = []
    ordered = sorted(runs, key=lambda r: r.started_at)
    for earlier, later in zip(ordered, ordered[1:]):
        if later.started_at < earlier.finished_at:
            clashes.append((earlier.pk, later.pk))
    return clashes


def test_two_clusters_share_twenty_stores(connect_fleet, sandbox_live, clusters):
    from django_q.models import Schedule, Task

    stores, _ = connect_fleet(count=STORES, customers=30, orders=40, prefix="two")
    # A short schedule: every 5 s (django-q2's scheduler itself looks every 30 s per cluster).
    Schedule.objects.create(name="rel: incremental", func="sync.tasks.incremental_tick",
                            schedule_type=Schedule.CRON, cron="* * * * * */5", repeats=-1)
    first, = clusters(1, sandbox_live, SYNC_STALL_SECONDS=120)
    clusters_started = [first]
    time.sleep(12)  # stagger the second cluster's scheduler passes between the first one's
    second, = clusters(1, sandbox_live, SYNC_STALL_SECONDS=120)
    clusters_started.append(second)

    def ticks():
        return list(Task.objects.filter(func="sync.tasks.incremental_tick", success=True))

    def all_done():
        done = SyncRun.objects.filter(status=SyncRun.Status.SUCCEEDED).values("store").distinct().count()
        return len(ticks()) >= 3 and done == STORES and not SyncRun.objects.filter(
            status__in=SyncRun.ACTIVE_STATUSES).exists()

    wait_for(all_done, timeout=150, interval=1, message="3 ticks with every store synced")
    Schedule.objects.filter(name="rel: incremental").delete()
    first.stop()
    second.stop()

    tick_list = ticks()
    runs = list(SyncRun.objects.all())
    by_store = defaultdict(list)
    for run in runs:
        by_store[run.store_id].append(run)
    # Every store's runs happened, and every run finished cleanly.
    assert len(by_store) == STORES
    assert {r.status for r in runs} == {SyncRun.Status.SUCCEEDED}, [(r.pk, r.status, r.error_summary) for r in runs]
    # Never two at once for one store: the runs of a store do not overlap in time.
    for store_id, store_runs in by_store.items():
        assert not _intervals_overlap(store_runs), (store_id, _intervals_overlap(store_runs))
    # A tick produces at most one run per store: per store, no more scheduled runs than ticks, and
    # the ticks' own counts add up to the runs that exist.
    for store_id, store_runs in by_store.items():
        assert len([r for r in store_runs if r.requested_by == "schedule"]) <= len(tick_list)
    assert all(0 <= int(t.result) <= STORES for t in tick_list)
    assert sum(int(t.result) for t in tick_list) == SyncRun.objects.filter(requested_by="schedule").count()
    # Both clusters did sync work, and no run was claimed by two workers (one attempt each).
    claimed = defaultdict(list)
    for cluster in (first, second):
        for run_id in re.findall(r"\[store=\S+ run=(\d+)\] \S+ run claimed", cluster.output()):
            claimed[cluster.name].append(int(run_id))
    assert claimed[first.name] and claimed[second.name], dict(claimed)
    all_claims = claimed[first.name] + claimed[second.name]
    assert sorted(all_claims) == sorted({r.pk for r in runs}), "a run was claimed twice"
    assert max(r.attempts for r in runs) == 1
    # Case 7, for the worker processes: nothing secret in their output.
    for cluster in clusters_started:
        assert not secrets_in(cluster.output(), bridge_secrets()), cluster.name
    print(f"FIGURE case1: stores={STORES} ticks={len(tick_list)} runs={len(runs)} "
          f"claims={ {k: len(v) for k, v in claimed.items()} }")
