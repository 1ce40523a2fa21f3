"""Sync runs: requesting one, executing it page by page, cancelling it.

A run is claimed with one conditional UPDATE (queued → running, or a stalled run, see
SyncRunQuerySet.stalled, → running again), which hands it a fresh `lease`. After every page the
ledger rows, events, counters, checkpoint and heartbeat are committed in ONE transaction that first
checks the lease, so a worker killed mid-page leaves the last committed page as the resume point and a
worker that lost its run to a takeover can never commit over the new owner. Ortto calls happen before
that transaction: a page cut short between them and the commit is sent again on resume, which the
ledger-free paths tolerate (creation merges cannot change an existing person; activities carry a key).
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, PositiveIntegerField, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from stores.bigcommerce import (
    BigCommerceAuthError,
    BigCommerceError,
    BigCommerceRateLimited,
    BigCommerceUnavailable,
    store_client,
)
from stores.models import Store, WebhookEvent
from sync.catalog.journeys import catalog_read_page, catalog_read_start, catalog_step, pending_exists
from sync.connect.selectors import live_connection_get
from sync.consent.writeback import consent_sweep
from sync.db import rows_update
from sync.engine import carts, context, organizations, people
from sync.engine.bigcommerce_pages import CUSTOMERS_SORT, PagePrefetch, carried_refetch, page_fetch, pages_per_unit
from sync.engine.orders import journey, placed
from sync.engine.pauses import SUMMARY_ORTTO_PAUSED, account_pause
from sync.health.failures import failing_records, failures_resolve
from sync.intake.hooks import deliveries_missed_count, webhooks_check, webhooks_register
from sync.models import Connection, OrderLedger, PersonLedger, StagedSubscriber, SyncCursor, SyncEvent, SyncRun
from sync.ortto.client import OrttoAccountBlocked, OrttoAuthError, OrttoRateLimited, OrttoUnavailable
from sync.ortto.schema import (
    ortto_client,
    ortto_schema_ensure,
    schema_activity_id,
    schema_field_ids,
    schema_journey_ready,
)
from sync.queue import enqueue
from sync.run_logging import run_context

logger = logging.getLogger("sync.engine.runs")

RESOURCES = ("subscribers", "customers", "orders")
# Orders also carry the shopper's journey (Ordered product, status changes): sync/engine/orders/journey.py.
PROCESSORS = {"subscribers": people.subscribers_process, "customers": people.customers_process,
              "orders": journey.orders_process}
FULL_KINDS = (SyncRun.Kind.INITIAL, SyncRun.Kind.FULL)
# Ledger rows per committed chunk of an initial run's order aggregates: 40 merges, so that a chunk keeps
# Ortto's synchronous merge slots full (the AIMD limiter, sync/engine/concurrency.py) rather than waiting for
# a round of 10 at a time (BENCHMARKS.md).
AGGREGATES_CHUNK = 4000
# Staged subscribers written per committed chunk after the customers (whole batches of 100).
STAGED_CHUNK = 500
WEBHOOK_EVENTS_PER_RUN = 2000
RETRY_FAILED_LIMIT = 10_000
# BigCommerce's date filters are inclusive and its clock is not ours: re-read the last minute.
CURSOR_OVERLAP = timedelta(seconds=60)
MAX_ATTEMPTS = 6

SUMMARY_BC_REVOKED = "The app's access to the store was revoked; reinstall the app from the BigCommerce control panel."
SUMMARY_ORTTO_REJECTED = (
    "Ortto rejected the connection's API key ({status}). Reconnect the Ortto account from the app page."
)


class LeaseLost(Exception):
    """Another worker owns the run now (stall takeover), or it was cancelled."""


class RunNotPossible(Exception):
    """No live connection for the store: there is nothing to sync into."""


# --- Requesting and cancelling ---------------------------------------------------------------------


def sync_run_request(
    *, store: Store, kind: str, requested_by: str = "", enqueue_run: bool = True
) -> tuple[SyncRun, bool]:
    """Queue a run for the store, or return the active one (created=False): one active run per store,
    guarded by the `one_active_run_per_store` constraint, not by this check. enqueue_run=False leaves
    the run for the caller to execute inline (manage.py sync_store)."""
    active = SyncRun.objects.filter(store=store, status__in=SyncRun.ACTIVE_STATUSES).first()
    if active is not None:
        return active, False
    connection = live_connection_get(store=store)
    if connection is None:
        raise RunNotPossible(f"store {store.store_hash} has no live Ortto connection")
    try:
        with transaction.atomic():
            run = SyncRun.objects.create(store=store, connection=connection, kind=kind,
                                         requested_by=requested_by[:255], status=SyncRun.Status.QUEUED)
    except IntegrityError:
        active = SyncRun.objects.filter(store=store, status__in=SyncRun.ACTIVE_STATUSES).first()
        if active is None:
            raise
        return active, False
    if enqueue_run:
        enqueue("sync.tasks.run_sync", run.pk)
    logger.info("[store=%s run=%s] %s run queued (%s)", store.store_hash, run.pk, kind, requested_by or "-")
    return run, True


def sync_runs_cancel(*, store: Store, reason: str) -> int:
    """Cancel the store's active runs; a worker in the middle of one stops at its next page."""
    return SyncRun.objects.filter(store=store, status__in=SyncRun.ACTIVE_STATUSES).update(
        status=SyncRun.Status.CANCELLED, finished_at=timezone.now(), error_summary=reason[:2000], lease=""
    )


# --- Executing -----------------------------------------------------------------------------------


def _claim(run_id: int) -> SyncRun | None:
    now = timezone.now()
    lease = uuid.uuid4().hex
    claimed = SyncRun.objects.claimable(now).filter(pk=run_id).update(
        status=SyncRun.Status.RUNNING,
        lease=lease,
        heartbeat_at=now,
        started_at=Coalesce("started_at", Value(now, output_field=DateTimeField())),
        # SET expressions see the row as it was: a stalled "running" run is a new attempt.
        attempts=Case(
            When(status=SyncRun.Status.RUNNING, then=F("attempts") + 1),
            When(started_at__isnull=True, then=F("attempts") + 1),
            default=F("attempts"),
            output_field=PositiveIntegerField(),
        ),
    )
    if not claimed:
        return None
    return SyncRun.objects.select_related("store", "connection", "connection__account").get(pk=run_id)


def sync_run_execute(*, run_id: int, sliced: bool = True, on_page=None) -> SyncRun | None:
    """Execute (or resume) a run. Returns the run, or None when another worker owns it.

    sliced: after SYNC_TASK_SLICE_SECONDS the run saves, goes back to "queued" and re-enqueues itself,
    so no django-q2 task nears its timeout. `manage.py sync_store` runs unsliced, inline.
    on_page(run) is called after each committed page (the command's progress bar).
    """
    token = run_context.set(None)
    try:
        return _run_execute(run_id=run_id, sliced=sliced, on_page=on_page)
    finally:
        run_context.reset(token)


def _run_execute(*, run_id: int, sliced: bool, on_page) -> SyncRun | None:
    run = _claim(run_id)
    if run is None:
        return None
    log = context.run_logger(store_hash=run.store.store_hash, run_id=run.pk)
    run_context.set((run.store.store_hash, run.pk))
    if run.attempts > MAX_ATTEMPTS:
        _finish(run, SyncRun.Status.FAILED, f"Stopped after {run.attempts - 1} interrupted attempts.", log=log)
        return run
    log.info("%s run claimed (attempt %d)", run.kind, run.attempts)
    try:
        _execute(run, log=log, sliced=sliced, on_page=on_page)
    except LeaseLost:
        log.info("run is no longer ours (cancelled or taken over); stopping")
    except OrttoAccountBlocked as exc:
        log.warning("Ortto refused access to the account (%s); pausing its connections", exc.status)
        account_pause(account_id=run.connection.account_id, status=exc.status, message=exc.message)
        _finish(run, SyncRun.Status.FAILED, SUMMARY_ORTTO_PAUSED.format(status=f"HTTP {exc.status}"), log=log)
    except OrttoAuthError as exc:
        log.warning("Ortto refused the API key (%s); the connection needs reconnecting", exc.status)
        Connection.objects.filter(pk=run.connection_id).update(
            state=Connection.State.NEEDS_RECONNECT,
            state_reason=f"Ortto rejected the API key (HTTP {exc.status}). Reconnect the Ortto account.",
        )
        _finish(run, SyncRun.Status.FAILED, SUMMARY_ORTTO_REJECTED.format(status=f"HTTP {exc.status}"), log=log)
    except BigCommerceAuthError as exc:
        log.warning("BigCommerce refused the access token (%s)", exc.status)
        _finish(run, SyncRun.Status.FAILED, SUMMARY_BC_REVOKED, log=log)
    except (OrttoRateLimited, OrttoUnavailable, BigCommerceRateLimited, BigCommerceUnavailable) as exc:
        # The clients already retried with backoff: leave the run queued; the maintenance tick resumes
        # it from its checkpoint once the heartbeat is stale.
        _interrupt(run, f"Waiting to retry: {exc}", log=log)
    except Exception as exc:
        log.exception("run interrupted by an unexpected error")
        _interrupt(run, f"Interrupted by an unexpected error: {exc.__class__.__name__}: {exc}", log=log)
        raise
    run.refresh_from_db()
    return run


def _execute(run: SyncRun, *, log, sliced: bool, on_page) -> None:
    started = time.monotonic()
    stop = _stop_reason(run)
    if stop:
        _finish(run, *stop, log=log)
        return
    connection = run.connection
    ortto = ortto_client(connection)
    if not connection.schema_ready or not schema_journey_ready(connection):
        ortto_schema_ensure(connection, client=ortto)
    bigcommerce = store_client(run.store)
    if not connection.webhook_ids:
        _webhooks_ensure(connection, log=log)
    elif run.kind == SyncRun.Kind.INCREMENTAL and not run.checkpoint.get("resources"):
        _webhooks_check(connection, client=bigcommerce, log=log)  # once per sweep, in its first slice
    if run.kind == SyncRun.Kind.INCREMENTAL and not run.checkpoint.get("resources"):
        consent_sweep(connection, ortto=ortto, bigcommerce=bigcommerce, log=log)  # sync/consent/writeback.py
    ctx = context.SyncContext(
        run=run, connection=connection, store=run.store, ortto=ortto,
        bigcommerce=bigcommerce,
        log=log, field_ids=schema_field_ids(connection), activity_id=schema_activity_id(connection),
        defer_aggregates=run.kind == SyncRun.Kind.INITIAL,
        defer_placed=run.kind == SyncRun.Kind.INITIAL,
        stage_subscribers=run.kind == SyncRun.Kind.INITIAL,
    )
    if not run.checkpoint.get("resources"):
        _prepare(ctx)
    try:
        _resources_sync(ctx, log=log, sliced=sliced, started=started, on_page=on_page)
    except BaseException:
        ctx.deferred.drain()  # no Ortto call outlives its run
        raise


def _resources_sync(ctx: context.SyncContext, *, log, sliced: bool, started: float, on_page) -> None:
    run = ctx.run
    if not run.checkpoint.get("catalog_done"):
        # The catalog mirror before the orders, so their Ordered product carry links; the product journeys.
        if not _catalog_read(ctx, log=log, sliced=sliced, started=started, on_page=on_page):
            return
        catalog_work, work = catalog_step(ctx)
        if "webhook" in run.checkpoint:  # the products its deliveries named, re-read
            _commit_page(run, "catalog", catalog_work, copy.deepcopy(run.checkpoint), None)
        checkpoint = copy.deepcopy(run.checkpoint)
        checkpoint["catalog_done"] = True
        # Product activities have their own line on the app page; a run that had none adds no empty one.
        _commit_page(run, "product_activities" if any(work.counters.as_dict().values()) else "catalog",
                     work, checkpoint, None)
    for resource in RESOURCES:
        if resource == "orders" and ctx.stage_subscribers and not _staged_flush(
                ctx, log=log, sliced=sliced, started=started, on_page=on_page):
            return
        if run.checkpoint["resources"][resource]["done"]:
            continue
        # BigCommerce pages are fetched ahead by a thread while this one sends the previous ones to
        # Ortto; units of pages_per_unit(bc) pages are processed and committed strictly in order.
        # Records a unit left for the next one (engine: `carry`) travel in memory; the checkpoint keeps
        # their ids, and a resumed run reads them again by id before its next page.
        carried = carried_refetch(ctx, resource, run.checkpoint["resources"][resource].get("carry") or [])
        with PagePrefetch(ctx, resource, run.checkpoint, first=ctx.first_pages.pop(resource, None)) as pages:
            while not run.checkpoint["resources"][resource]["done"]:
                if _stopped_or_sliced(run, log=log, sliced=sliced, started=started, before=lambda: _deferred_settle(ctx)):
                    return
                items, page_total, checkpoint = pages.next_unit(pages_per_unit(ctx.bigcommerce))
                checkpoint = copy.deepcopy(checkpoint)  # the prefetch thread still reads the one it made
                state = checkpoint["resources"][resource]
                processor = PROCESSORS[resource]
                if resource == "subscribers" and ctx.stage_subscribers:
                    processor = people.subscribers_stage
                # One record once per unit, even if a page boundary shifted under the read (the fresher copy).
                batch = list({int(record["id"]): record for record in carried + items}.values())
                may_carry = not state["done"] and "webhook" not in checkpoint
                work = processor(ctx, batch, carry=may_carry) if batch else context.PageWork()
                work.counters.fetched = len(items)
                carried = work.carry
                state["carry"] = [int(record["id"]) for record in carried]
                context.harvest_into(ctx.deferred, work)  # earlier units' calls that have answered
                # Staged subscribers go to Ortto later (_staged_flush): this unit sent none of them.
                staged = resource == "subscribers" and ctx.stage_subscribers
                waiting = {int(record["id"]) for record in carried}
                sent = [] if staged else [rid for rid in (int(record["id"]) for record in batch) if rid not in waiting]
                missed = _missed_deliveries(ctx, resource, items, checkpoint)
                _commit_page(run, resource, work, checkpoint, page_total, sent_ids=sent, missed=missed)
                log.info("%s page: %s", resource, work.counters.as_dict())
                if on_page:
                    on_page(run)

    _deferred_settle(ctx)
    if ctx.defer_placed and not _placed_flush(ctx, log=log, sliced=sliced, started=started, on_page=on_page):
        return
    if not run.checkpoint.get("redo_done"):
        # Activities an earlier run could not confirm (refused, or in flight when its worker died): the
        # ledger says which, and they are sent again once. Nothing to do costs one query per ledger.
        works = [journey.journey_redo(ctx), carts.carts_redo(ctx)]
        emails = journey.placed_waiting_emails(ctx, after="", earlier_runs=True)
        if emails:
            works.append(journey.placed_send(ctx, emails, earlier_runs=True)[0])
        work = context.PageWork()
        for part in works:
            _work_add(work, part)
        checkpoint = copy.deepcopy(run.checkpoint)
        checkpoint["redo_done"] = True
        _commit_page(run, "orders", work, checkpoint, None)
    if "webhook" in run.checkpoint and not run.checkpoint.get("carts_done"):
        # Abandoned and converted carts arrive by webhook only (BigCommerce lists no abandoned carts).
        work = carts.carts_process(ctx, carts.cart_events(run.checkpoint["webhook"]["event_ids"]))
        checkpoint = copy.deepcopy(run.checkpoint)
        checkpoint["carts_done"] = True
        _commit_page(run, "carts", work, checkpoint, None)
    if ctx.defer_aggregates and not _aggregates_flush(ctx, log=log, sliced=sliced, started=started, on_page=on_page):
        return
    organizations.organizations_flush(ctx, check_lease=_check_lease)
    _complete(ctx, log=log)


def _catalog_read(ctx: context.SyncContext, *, log, sliced: bool, started: float, on_page) -> bool:
    """The run's catalog read (sync/catalog/journeys.py), one page per commit with the last product id in the
    checkpoint's `catalog`: a resumed run goes on at the next page. True when done."""
    run = ctx.run
    state = run.checkpoint.get("catalog") or catalog_read_start(ctx)
    while not state["done"]:
        if _stopped_or_sliced(run, log=log, sliced=sliced, started=started):
            return False
        work, state = catalog_read_page(ctx, state)
        checkpoint = copy.deepcopy(run.checkpoint)
        checkpoint["catalog"] = state
        _commit_page(run, "catalog", work, checkpoint, None)
        log.info("catalog page: %s", work.counters.as_dict())
        if on_page:
            on_page(run)
    return True


def _deferred_settle(ctx: context.SyncContext) -> None:
    """Wait for the Ortto calls still in flight (context.DeferredSends) and commit what they reported."""
    work = context.PageWork()
    context.harvest_into(ctx.deferred, work, wait=True)
    if work.events or work.commits:
        _commit_page(ctx.run, "orders", work, copy.deepcopy(ctx.run.checkpoint), None)


def _staged_flush(ctx: context.SyncContext, *, log, sliced: bool, started: float, on_page) -> bool:
    """Initial runs, after the customers: write the staged subscribers no customer took along (footer
    sign-ups, guests who ticked the box), in chunks by id, each committed with its position and the
    deletion of its rows. They were counted as read when staged. True when done."""
    run = ctx.run
    while not run.checkpoint.get("staged", {}).get("done"):
        if _stopped_or_sliced(run, log=log, sliced=sliced, started=started):
            return False
        after = run.checkpoint.get("staged", {}).get("after", 0)
        rows = list(StagedSubscriber.objects.filter(run=run, pk__gt=after).order_by("pk")
                    .values_list("pk", "record")[:STAGED_CHUNK])
        work = people.subscribers_process(ctx, [record for _, record in rows]) if rows else context.PageWork()
        work.counters.fetched = 0
        work.unstaged_ids = [pk for pk, _ in rows]
        checkpoint = copy.deepcopy(run.checkpoint)
        checkpoint["staged"] = {"after": rows[-1][0] if rows else after, "done": len(rows) < STAGED_CHUNK}
        _commit_page(run, "subscribers", work, checkpoint, None,
                     sent_ids=[int(record["id"]) for _, record in rows])
        log.info("subscribers without a customer: %s", work.counters.as_dict())
        if on_page:
            on_page(run)
    return True


def _work_add(work: context.PageWork, part: context.PageWork) -> None:
    work.events += part.events
    work.commits += part.commits
    work.ledger_rows.update(part.ledger_rows)
    for key, value in part.counters.as_dict().items():
        setattr(work.counters, key, getattr(work.counters, key) + value)


def _placed_flush(ctx: context.SyncContext, *, log, sliced: bool, started: float, on_page) -> bool:
    """Initial runs, after the last order page: send the Placed order and Ordered product activities recorded
    waiting, each buyer's newest 50 of each (journey.placed_start), in steps of PLACED_CHUNK_BUYERS buyers by
    email, each committed with its position and the chosen activities its part-full last batch leaves for the
    next step (a resumed run goes on from there; a step cut short is sent again with the same keys).

    One step is always in flight while the previous one is committed and the next one is chosen: step k+1's
    activities are on their way before step k's answers are waited for, so Ortto is not idle while this
    thread works on the database (at 300 ms an answer, one step at a time left Ortto idle most of the time —
    BENCHMARKS.md). The checkpoint only moves with a step whose answers are committed. True when done."""
    run = ctx.run
    planned = dict(run.checkpoint.get("placed", {}))  # the position after the last step started
    in_flight = None  # (journey.PlacedStep, the checkpoint position after it)

    def commit(entry):
        if entry is None:
            return
        step, position = entry
        work = step.finish()
        checkpoint = copy.deepcopy(run.checkpoint)
        checkpoint["placed"] = position
        _commit_page(run, "orders", work, checkpoint, None)
        log.info("placed orders: %s", work.counters.as_dict())
        if on_page:
            on_page(run)

    def settle():
        nonlocal in_flight
        entry, in_flight = in_flight, None
        commit(entry)

    try:
        while not run.checkpoint.get("placed", {}).get("done"):
            if _stopped_or_sliced(run, log=log, sliced=sliced, started=started, before=settle):
                return False
            ahead = None
            if not planned.get("done"):
                after = planned.get("after", "")
                emails = journey.placed_waiting_emails(ctx, after=after)
                last = len(emails) < journey.PLACED_CHUNK_BUYERS
                step = journey.placed_start(ctx, emails, carried=planned.get("carry") or [],
                                            carried_products=planned.get("carry_products") or [], last=last)
                planned = {"after": emails[-1] if emails else after, "carry": step.carry,
                           "carry_products": step.carry_products, "done": last}
                ahead = (step, planned)
            previous, in_flight = in_flight, ahead
            commit(previous)
    except BaseException:
        if in_flight is not None:
            in_flight[0].abandon()  # no call outlives the run
        raise
    return True


def _aggregates_flush(ctx: context.SyncContext, *, log, sliced: bool, started: float, on_page) -> bool:
    """Initial runs: after the last order page, write every buyer's order aggregates once, in chunks of
    AGGREGATES_CHUNK ledger rows by id, each chunk committed with its position in the checkpoint (a
    resumed run goes on from there; re-sending a chunk only overwrites the same values). True when done."""
    run = ctx.run
    while not run.checkpoint.get("aggregates", {}).get("done"):
        if _stopped_or_sliced(run, log=log, sliced=sliced, started=started):
            return False
        after = run.checkpoint.get("aggregates", {}).get("after", 0)
        rows = list(PersonLedger.objects.filter(connection=ctx.connection, order_count__gt=0, pk__gt=after)
                    .order_by("pk")[:AGGREGATES_CHUNK])
        work = context.PageWork()
        if rows:
            placed.aggregates_push(ctx, rows, work)
        checkpoint = copy.deepcopy(run.checkpoint)
        checkpoint["aggregates"] = {"after": rows[-1].pk if rows else after, "done": len(rows) < AGGREGATES_CHUNK}
        _commit_page(run, "orders", work, checkpoint, None)
        log.info("order aggregates: %d people", len(rows))
        if on_page:
            on_page(run)
    return True


def _webhooks_ensure(connection: Connection, *, log) -> None:
    """Register the store's webhooks on the first run of a connection. Not fatal: the scheduled sweep
    catches every change a missing webhook would have announced."""
    try:
        webhooks_register(connection)
    except BigCommerceError as exc:
        log.warning("webhook registration failed (%s); relying on the scheduled sweep", exc.status)


def _webhooks_check(connection: Connection, *, client, log) -> None:
    """The sweep's look at the store's hooks: deactivated ones re-activated, missing ones re-created. Not
    fatal: this sweep reads every change anyway, and the next one looks again."""
    try:
        webhooks_check(connection, client=client)
    except BigCommerceError as exc:
        log.warning("webhook check failed (%s); the next sweep looks again", exc.status)


def _missed_deliveries(ctx: context.SyncContext, resource: str, items: list[dict], checkpoint: dict) -> int:
    """A sweep's records changed since the previous sweep that no webhook announced (sync/intake/hooks.py)."""
    since = checkpoint.get("since", {}).get(resource)
    if ctx.run.kind != SyncRun.Kind.INCREMENTAL or "webhook" in checkpoint or not since:
        return 0
    announced_since = datetime.fromisoformat(since)  # the previous cursor less CURSOR_OVERLAP
    return deliveries_missed_count(store=ctx.store, resource=resource, records=items,
                                   changed_after=announced_since + CURSOR_OVERLAP, announced_since=announced_since)


def _stopped_or_sliced(run: SyncRun, *, log, sliced: bool, started: float, before=None) -> bool:
    """The guard every loop of a run asks before its next unit: the run was stopped (it is finished now) or
    its slice is used up (it is re-enqueued now). True when the loop must return; `before` settles what the
    loop has in flight first."""
    stop = _stop_reason(run)
    if stop is None and not (sliced and time.monotonic() - started > settings.SYNC_TASK_SLICE_SECONDS):
        return False
    if before is not None:
        before()
    if stop:
        _finish(run, *stop, log=log)
    else:
        _yield_slice(run, log=log)
    return True


def _stop_reason(run: SyncRun) -> tuple[str, str] | None:
    current = SyncRun.objects.filter(pk=run.pk).values_list("status", "lease").first()
    if current is None or current[0] != SyncRun.Status.RUNNING or current[1] != run.lease:
        raise LeaseLost()
    store = Store.objects.filter(pk=run.store_id).values_list("is_installed", flat=True).first()
    if not store:
        return SyncRun.Status.CANCELLED, "The app was uninstalled."
    state = Connection.objects.filter(pk=run.connection_id).values_list("state", flat=True).first()
    if state == Connection.State.DISCONNECTED:
        return SyncRun.Status.CANCELLED, "The Ortto account was disconnected."
    if state == Connection.State.NEEDS_RECONNECT:
        return SyncRun.Status.FAILED, "Ortto no longer accepts this connection's API key. Reconnect the Ortto account."
    if state == Connection.State.PAUSED:
        return SyncRun.Status.FAILED, "Ortto is refusing access to the account; syncing resumes by itself."
    return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _prepare(ctx: context.SyncContext) -> None:
    """First slice of a run: where each resource starts, and the totals for the progress bar."""
    run, bc = ctx.run, ctx.bigcommerce
    now = timezone.now()
    resources = {r: {"done": False, "started_at": None, "max_modified": None, "page": 1, "after": None,
                     "min_id": None, "offset": 0} for r in RESOURCES}
    resources["customers"]["sort"] = CUSTOMERS_SORT
    checkpoint = {"resources": resources, "since": {}}
    totals = {}
    if run.kind == SyncRun.Kind.WEBHOOK:
        events = list(WebhookEvent.objects.filter(store=ctx.store, status=WebhookEvent.Status.PENDING)
                      .order_by("id").values_list("id", "resource", "resource_id")[:WEBHOOK_EVENTS_PER_RUN])
        ids: dict[str, list[int]] = {r: [] for r in RESOURCES}
        for _, resource, resource_id in events:
            if resource in ids and resource_id not in ids[resource]:
                ids[resource].append(resource_id)
        checkpoint["webhook"] = {"event_ids": [e[0] for e in events], "ids": ids}
        totals = {r: len(v) for r, v in ids.items()}
        for resource in RESOURCES:
            resources[resource]["done"] = not ids[resource]
    elif run.kind == SyncRun.Kind.RETRY_FAILED:
        # Re-send only the store's records that are failing now (sync/health/failures.py); they go through the
        # same by-id path as webhook events, and each one that goes through is resolved at its commit.
        failed = list(failing_records(store=ctx.store).filter(bc_id__isnull=False)
                      .values_list("resource", "bc_id")[:RETRY_FAILED_LIMIT])
        ids = {r: [] for r in RESOURCES}
        for resource, bc_id in failed:
            if resource in ids and bc_id not in ids[resource]:
                ids[resource].append(bc_id)
        checkpoint["webhook"] = {"event_ids": [], "ids": ids}
        totals = {r: len(v) for r, v in ids.items()}
        for resource in RESOURCES:
            resources[resource]["done"] = not ids[resource]
    elif run.kind in FULL_KINDS:
        # The progress bar's totals: v3 pages carry them, so the first real page of subscribers and of
        # customers is read now and handed to the run (ctx.first_pages) rather than asked for twice;
        # v2 orders pages carry none, hence the count. A run resumed elsewhere simply reads page 1 again.
        for resource in ("subscribers", "customers"):
            scratch = {"resources": {resource: copy.deepcopy(resources[resource])}, "since": {}}
            items, page_total = page_fetch(ctx, resource, scratch)
            totals[resource] = page_total or 0
            ctx.first_pages[resource] = (items, page_total, scratch["resources"][resource])
            # The cursor must not pass the moment this page was read.
            resources[resource]["started_at"] = scratch["resources"][resource]["started_at"]
        totals["orders"] = bc.orders_count()
        # After the first page, the count's other pages are read several at a time as id ranges.
        resources["orders"]["count"] = totals["orders"]
    else:
        cursors = {c.resource: c.modified_since for c in SyncCursor.objects.filter(store=ctx.store)}
        for resource in RESOURCES:
            since = cursors.get(resource)
            checkpoint["since"][resource] = _iso(since - CURSOR_OVERLAP) if since else None
    with transaction.atomic():
        _check_lease(run, now)
        run.checkpoint = checkpoint
        run.totals = totals
        run.total = sum(totals.values())
        run.counters = {r: context.Counters().as_dict() for r in RESOURCES}
        run.save(update_fields=["checkpoint", "totals", "total", "counters"])


def _check_lease(run: SyncRun, now) -> None:
    updated = SyncRun.objects.filter(pk=run.pk, lease=run.lease, status=SyncRun.Status.RUNNING).update(
        heartbeat_at=now
    )
    if updated != 1:
        raise LeaseLost()
    run.heartbeat_at = now


def _commit_page(run: SyncRun, resource: str, work: context.PageWork, checkpoint: dict, page_total,
                 *, sent_ids=(), missed: int = 0) -> None:
    """sent_ids: the records of `resource` this unit handed to Ortto (not carried to the next unit); missed: the
    sweep's changes no webhook announced (hooks.deliveries_missed_count)."""
    now = timezone.now()
    with transaction.atomic():
        _check_lease(run, now)
        failures_resolve(store_id=run.store_id, resource=resource, sent_ids=sent_ids, work=work)
        new_rows = [row for row in work.ledger_rows.values() if row.pk is None]
        old_rows = [row for row in work.ledger_rows.values() if row.pk is not None]
        PersonLedger.objects.bulk_create(new_rows)
        rows_update(PersonLedger, old_rows, [
            "ortto_person_id", "bc_customer_id", "fingerprint", "fingerprints", "store_opt_in", "store_opt_in_at",
            "sent_permission", "created_in_ortto", "order_count", "total_spent", "last_order_at", "synced_at",
        ])
        OrderLedger.objects.bulk_create(work.order_rows, ignore_conflicts=True)
        rows_update(OrderLedger, work.order_updates, ["status_id", "fulfilled", "refunded_amount", "counted_total"])
        for commit in work.commits:
            commit()
        SyncEvent.objects.bulk_create(work.events)
        organizations.members_commit(connection=run.connection, members=work.organization_members)
        if work.staged:
            StagedSubscriber.objects.bulk_create(people.staged_subscriber_rows(run, work.staged), batch_size=500)
        if work.unstaged_emails:
            StagedSubscriber.objects.filter(run=run, email__in=work.unstaged_emails).delete()
        if work.unstaged_ids:
            StagedSubscriber.objects.filter(pk__in=work.unstaged_ids).delete()

        counters = run.counters.setdefault(resource, context.Counters().as_dict())
        for key, value in work.counters.as_dict().items():
            counters[key] = counters.get(key, 0) + value
        if page_total is not None and "webhook" not in checkpoint and run.kind not in FULL_KINDS:
            # Incremental runs learn a resource's size from its first page.
            if resource not in run.totals:
                run.totals[resource] = page_total
        run.processed += work.counters.fetched
        run.failed += work.counters.failed
        run.people_synced += work.people_synced
        run.missed_deliveries += missed
        run.total = max(sum(run.totals.values()), run.processed)
        run.checkpoint = checkpoint
        run.save(update_fields=["counters", "totals", "total", "processed", "failed", "people_synced",
                                "missed_deliveries", "checkpoint"])


def _yield_slice(run: SyncRun, *, log) -> None:
    with transaction.atomic():
        updated = SyncRun.objects.filter(pk=run.pk, lease=run.lease, status=SyncRun.Status.RUNNING).update(
            status=SyncRun.Status.QUEUED, lease="", heartbeat_at=timezone.now()
        )
        if updated:
            enqueue("sync.tasks.run_sync", run.pk)
    log.info("slice used up; run re-queued at its checkpoint")


def _interrupt(run: SyncRun, summary: str, *, log) -> None:
    """Give the run back (queued, at its last committed page) for the maintenance tick to resume."""
    if run.attempts >= MAX_ATTEMPTS:
        _finish(run, SyncRun.Status.FAILED, summary, log=log)
        return
    SyncRun.objects.filter(pk=run.pk, lease=run.lease, status=SyncRun.Status.RUNNING).update(
        status=SyncRun.Status.QUEUED, lease="", heartbeat_at=timezone.now(), error_summary=summary[:2000],
        attempts=F("attempts") + 1,
    )
    log.warning("run interrupted, will resume: %s", summary)


def _complete(ctx: context.SyncContext, *, log) -> None:
    run = ctx.run
    now = timezone.now()
    status = SyncRun.Status.PARTIAL if run.failed else SyncRun.Status.SUCCEEDED
    summary = f"{run.failed} record(s) could not be sent; see the run's events." if run.failed else ""
    shortfalls = records_short(run)
    if shortfalls:
        # Never a success for work not done: fewer records read than BigCommerce reported.
        status = SyncRun.Status.PARTIAL
        summary = " ".join(filter(None, ["Read fewer records than BigCommerce reported: " + "; ".join(
            f"{resource} {read} of {total}" for resource, read, total in shortfalls) + ".", summary]))
    with transaction.atomic():
        _check_lease(run, now)
        for resource, read, total in shortfalls:
            SyncEvent.objects.create(run=run, resource=resource, level=SyncEvent.Level.WARNING, message=(
                f"BigCommerce reported {total} {resource} at the start of the run; the run read {read}. "
                "The missing records were not sent to Ortto; run a full sync again."))
        if "webhook" in run.checkpoint:
            WebhookEvent.objects.filter(pk__in=run.checkpoint["webhook"]["event_ids"]).update(
                status=WebhookEvent.Status.PROCESSED, processed_at=now
            )
        else:
            _cursors_advance(run)
        StagedSubscriber.objects.filter(run=run).delete()
        _finish(run, status, summary, log=log)


def records_short(run: SyncRun) -> list[tuple[str, int, int]]:
    """A full run's resources that read fewer records than BigCommerce reported as their total when the
    run started: (resource, read, total). Reading more is normal (records created while the run read)."""
    if run.kind not in FULL_KINDS or "webhook" in (run.checkpoint or {}):
        return []
    short = []
    for resource in RESOURCES:
        total = (run.totals or {}).get(resource)
        read = ((run.counters or {}).get(resource) or {}).get("fetched", 0)
        if total is not None and read < total:
            short.append((resource, read, total))
    return short


def _cursors_advance(run: SyncRun) -> None:
    """Each cursor moves to min(newest date_modified seen, when the resource's fetch started), so a
    record modified while the run was reading is read again next time rather than lost."""
    existing = {c.resource: c for c in SyncCursor.objects.filter(store=run.store)}
    for resource, state in run.checkpoint["resources"].items():
        if not state.get("started_at"):
            continue
        started = datetime.fromisoformat(state["started_at"])
        seen = datetime.fromisoformat(state["max_modified"]) if state.get("max_modified") else None
        cursor = existing.get(resource)
        if seen is not None:
            new = min(seen, started)
        elif cursor is None or cursor.modified_since is None:
            new = started
        else:
            continue
        SyncCursor.objects.update_or_create(store=run.store, resource=resource, defaults={"modified_since": new})


def _finish(run: SyncRun, status: str, summary: str = "", *, log) -> None:
    now = timezone.now()
    updated = SyncRun.objects.filter(pk=run.pk, lease=run.lease, status=SyncRun.Status.RUNNING).update(
        status=status, finished_at=now, heartbeat_at=now, error_summary=summary[:2000], lease=""
    )
    if not updated:
        return
    run.status, run.finished_at, run.error_summary = status, now, summary
    log.info("run finished: %s %s", status, summary)
    if status != SyncRun.Status.CANCELLED:
        transaction.on_commit(lambda: _webhooks_followup(run.store_id))
    # The run's end is where a 401, a 403, a failure or a flood of failed records shows: sync/health/incidents.py.
    enqueue("sync.tasks.incidents_check", run.store_id)


def _webhooks_followup(store_id: int) -> None:
    """Deliveries that arrived while this run was active were absorbed by it: drain them now."""
    store = Store.objects.filter(pk=store_id, is_installed=True).first()
    if store and (WebhookEvent.objects.filter(store=store, status=WebhookEvent.Status.PENDING).exists()
                  or pending_exists(store)):
        webhook_run_request(store=store)


def webhook_run_request(*, store: Store):
    """Ask for a webhook run unless one cannot start (no live connection); an active run absorbs it."""
    if not Connection.objects.filter(store=store, state=Connection.State.ACTIVE).exists():
        return None
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.WEBHOOK, requested_by="webhook")
    return run
