"""What one run carries through the engine: its context (SyncContext), the counters and local changes of a
page (PageWork) that runs.py commits with the checkpoint, and the pool the Ortto calls go out on.

send_all sends the independent calls of one step concurrently and returns their answers in order;
DeferredSends leaves calls whose answers no commit waits for in flight while the run goes on."""

from __future__ import annotations

import contextvars
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.conf import settings

from sync.engine import concurrency
from sync.models import SyncEvent

logger = logging.getLogger("sync.engine")


BATCH_SIZE = 100  # Ortto: at most 100 people / activities per call


DEFAULT_ORTTO_CONCURRENCY = 4  # Ortto calls of one planning round in flight at once, at least
MAX_ORTTO_CONCURRENCY = 32


# Synchronous merges keyed by email in flight at once. Ortto warns that many synchronous merges by a
# merge key "can end up hitting a concurrency limit" and start failing, and gives no number
# (https://help.ortto.com/a-257-create-or-update-one-or-more-people-merge): an AIMD limiter per account finds
# it while the run goes (sync/engine/concurrency.py); this is only the ceiling of its probe
# — docs/ortto-contract.md, "Concurrency".
DEFAULT_ORTTO_MERGE_CONCURRENCY = concurrency.DEFAULT_CEILING


class RunLogger(logging.LoggerAdapter):
    """Every sync log line carries the store hash and the run id; never a secret."""

    def process(self, msg, kwargs):
        return f"[store={self.extra.get('store_hash')} run={self.extra.get('run_id')}] {msg}", kwargs


def run_logger(*, store_hash: str, run_id) -> RunLogger:
    return RunLogger(logger, {"store_hash": store_hash, "run_id": run_id})


def chunks(items: list, size: int = BATCH_SIZE):
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class Counters:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    # Orders counted in their buyer's totals without an activity (Ortto's 50 per contact per 24 h).
    summarized: int = 0
    # Records deliberately not sent (carts: no email, or gone before they were read; sync/engine/carts.py).
    skipped: int = 0
    # Incomplete orders (abandoned checkouts, status 0): read, never placed, so never sent.
    incomplete: int = 0

    def as_dict(self):
        counts = dict(fetched=self.fetched, created=self.created, updated=self.updated,
                      unchanged=self.unchanged, failed=self.failed)
        if self.summarized:  # only where it happened: most runs never meet the limit
            counts["summarized"] = self.summarized
        if self.skipped:
            counts["skipped"] = self.skipped
        if self.incomplete:
            counts["incomplete"] = self.incomplete
        return counts


@dataclass
class PageWork:
    """Everything one page changes locally, committed by runs.py in a single transaction."""

    counters: Counters = field(default_factory=Counters)
    ledger_rows: dict = field(default_factory=dict)  # email -> PersonLedger (new or changed)
    order_rows: list = field(default_factory=list)  # OrderLedger (new)
    order_updates: list = field(default_factory=list)  # OrderLedger (changed: status, refunds; sync/engine/orders/journey.py)
    # Further writes of the page (e.g. sync/engine/carts.py's ledger), run inside the page's commit transaction.
    commits: list = field(default_factory=list)
    events: list = field(default_factory=list)  # SyncEvent (unsaved, run set)
    people_synced: int = 0
    # Records left for the next unit so that no Ortto batch goes out part-full mid-resource
    # (runs.py hands them back with the next pages and keeps their ids in the checkpoint).
    carry: list = field(default_factory=list)
    # email -> organizations.Company (None: no company now) of the people this page sent.
    organization_members: dict = field(default_factory=dict)
    # Initial runs: subscriber records to keep for the customers (StagedSubscriber), and the staged
    # rows this unit wrote to Ortto (emails, or ids), which the commit deletes.
    staged: list = field(default_factory=list)
    unstaged_emails: list = field(default_factory=list)
    unstaged_ids: list = field(default_factory=list)
    # email -> PersonLedger whose order totals Ortto still needs (orders_process(push_aggregates=False)).
    aggregates_due: dict = field(default_factory=dict)


@dataclass
class SyncContext:
    run: object
    connection: object
    store: object
    ortto: object
    bigcommerce: object
    log: logging.LoggerAdapter
    field_ids: dict
    activity_id: str
    # Initial runs write the order aggregates once per buyer after the last order page
    # (runs._aggregates_flush) instead of once per buyer per committed unit.
    defer_aggregates: bool = False
    # Initial runs record each order's Placed order activity "to send" and send them after the last order
    # page (commerce.placed_flush), so Ortto's 50 a day per buyer keeps each buyer's newest orders.
    defer_placed: bool = False
    # resource -> (items, total, resource state): first pages read ahead by runs._prepare.
    first_pages: dict = field(default_factory=dict)
    # Initial runs: subscribers are staged, then written with their customer (one merge per person).
    stage_subscribers: bool = False
    # Ortto calls in flight whose answers only become events (DeferredSends).
    deferred: DeferredSends = field(default_factory=lambda: DeferredSends())

    @property
    def store_name(self) -> str:
        return self.store.name or self.store.store_hash


def event(ctx: SyncContext, *, resource, message, email="", bc_id=None, level=SyncEvent.Level.ERROR):
    return SyncEvent(run=ctx.run, resource=resource, email=email[:255], bc_id=bc_id,
                     message=str(message)[:2000], level=level)


def ortto_concurrency(ctx: SyncContext | None = None) -> int:
    """How many Ortto calls of one step may be in flight at once: at least settings.ORTTO_CONCURRENCY, and as
    many as keep the account at its rate at the answer times seen so far (Little's law,
    OrttoClient.in_flight_wanted), rounded up to a power of two (the pools are shared by size) and at most
    MAX_ORTTO_CONCURRENCY. Over loopback that is the setting; at 300 ms an answer and 60 calls/s it is 32.
    The account's rate gate still paces every call."""
    configured = max(int(getattr(settings, "ORTTO_CONCURRENCY", DEFAULT_ORTTO_CONCURRENCY) or 1), 1)
    client = getattr(ctx, "ortto", None)
    wanted = client.in_flight_wanted() if hasattr(client, "in_flight_wanted") else None
    if not wanted or wanted <= configured:
        return configured
    return min(1 << math.ceil(math.log2(wanted * 1.1)), MAX_ORTTO_CONCURRENCY)


def ortto_merge_concurrency() -> int:
    """The pool for synchronous person merges: the ceiling of the account's AIMD limiter
    (settings.ORTTO_MERGE_CONCURRENCY), which keeps as many in flight as Ortto accepts."""
    return concurrency.ceiling()


_pool_lock = threading.Lock()


_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(size: int) -> ThreadPoolExecutor:
    with _pool_lock:
        pool = _pools.get(size)
        if pool is None:
            pool = _pools[size] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="ortto")
        return pool


def send_all(send, ctx: SyncContext, payloads: list, emails_of=lambda payload: (),
             group_of=lambda payload: None, size: int | None = None) -> list:
    """send(ctx, payload) for every payload, up to ortto_concurrency() at once; results in input order.

    The calls only do HTTP (no database). Payloads go out in waves of consecutive payloads of the same
    group (e.g. a merge's purpose) that name no person twice, so calls of different kinds, and any two
    calls about the same person, reach Ortto in their planned order.
    """
    size = size or ortto_concurrency(ctx)
    if size == 1 or len(payloads) < 2:
        return [send(ctx, payload) for payload in payloads]
    waves: list[list[int]] = []
    wave_group, wave_emails = object(), set()
    for index, payload in enumerate(payloads):
        emails, group = set(emails_of(payload)), group_of(payload)
        if not waves or group != wave_group or wave_emails & emails:
            waves.append([])
            wave_group, wave_emails = group, set()
        waves[-1].append(index)
        wave_emails |= emails
    results: list = [None] * len(payloads)
    pool = _pool(size)
    for wave in waves:
        if len(wave) == 1:
            results[wave[0]] = send(ctx, payloads[wave[0]])
            continue
        futures = [(index, pool.submit(contextvars.copy_context().run, send, ctx, payloads[index])) for index in wave]
        # Let every call of the wave finish before one's error propagates, so no Ortto call outlives the
        # page that made it (a stopped run must not leave requests in flight).
        wait([future for _, future in futures])
        for index, future in futures:
            results[index] = future.result()
    return results


def send_started(send, ctx: SyncContext, payloads: list, size: int | None = None):
    """Start send(ctx, payload) for every payload on the Ortto pool (up to ortto_concurrency() at once) and
    return at once a function that waits for them and returns their results in input order, so that the
    caller can commit earlier work while these calls are in flight. For payloads that need no order among
    themselves (activities: each carries its own key). Every call finishes before one's error propagates,
    and abandoned() waits for them without the results (a run that fails leaves no call in flight)."""
    pool = _pool(size or ortto_concurrency(ctx))
    futures = [pool.submit(contextvars.copy_context().run, send, ctx, payload) for payload in payloads]

    def results() -> list:
        wait(futures)
        return [future.result() for future in futures]

    results.abandoned = lambda: wait(futures)
    return results


class DeferredSends:
    """Ortto calls whose answers no commit waits for (a unit's Ordered product activities: the order
    ledger records the lines "to send" before the call), left in flight while the run commits the unit and
    goes on with the next, so that Ortto is not idle meanwhile.

    `harvest()` turns the answers that have come back into what the next commit writes: events, and
    commits (callables, e.g. the ledger's "sent" / "refused"; `harvest_into` sorts them) (an exception in a
    call, e.g. a revoked key, is raised there, after every other call has finished); the run waits for all
    of them (`harvest(wait=True)`) before it ends, stops or yields, and `drain()` on an error, so no call
    outlives its run. At most `limit` calls are in flight: the oldest is waited for before one more."""

    def __init__(self, limit: int = 16):
        self.limit = limit
        self._pending: list = []  # (future, payload, handle)
        self._events: list = []

    def submit(self, ctx: SyncContext, send, payloads: list, handle) -> None:
        """send(ctx, payload) for each payload on the Ortto pool; handle(payload, results) -> events and
        commits."""
        pool = _pool(ortto_concurrency(ctx))
        for payload in payloads:
            while len(self._pending) >= self.limit:
                self._settle(self._pending.pop(0))
            future = pool.submit(contextvars.copy_context().run, send, ctx, payload)
            self._pending.append((future, payload, handle))

    def _settle(self, entry) -> None:
        future, payload, handle = entry
        try:
            results = future.result()
        except BaseException:
            self.drain()
            raise
        self._events += handle(payload, results)

    def harvest(self, *, wait: bool = False) -> list:
        """The events of the calls answered so far (all of them, waiting, when `wait`)."""
        while self._pending and (wait or self._pending[0][0].done()):
            self._settle(self._pending.pop(0))
        events, self._events = self._events, []
        return events

    def drain(self) -> None:
        """Wait for every call in flight, ignoring their outcome (the run is failing anyway)."""
        pending, self._pending = self._pending, []
        wait([future for future, _, _ in pending])


def harvest_into(deferred: DeferredSends, work: PageWork, *, wait: bool = False) -> None:
    """The deferred calls' outcomes into a unit's work: events, and commits (callables, e.g. the ledger
    recording what Ortto confirmed) run in the unit's transaction."""
    for item in deferred.harvest(wait=wait):
        (work.commits if callable(item) else work.events).append(item)
