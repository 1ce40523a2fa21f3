"""The sync engine: batch planning (pure) and page processing (Ortto calls + ledger changes).

Planning follows docs/design.md §3. People the ledger does not know go out in one merge that carries `bol::p`
and its reason, with a strategy that can never change a person who already exists in Ortto:
Append only (1) when the connection uses 1 (a non-empty `bol::p` is never overwritten), Ignore (3)
otherwise. Only Overwrite (2) needs a second call, for the people of that batch Ortto reports as
`merged`, sent without `bol::p`. Known people whose record changed get one merge with the connection's
strategy and no `bol::p`; a permission change (a newer, different choice in the store) is a strategy-2
merge carrying only the email and the permission. Unchanged people cost no call at all.

Page processing makes the Ortto calls outside any database transaction (SQLite would hold its write
lock across HTTP) and returns a `PageWork`: the ledger rows, events and counters that runs.py commits
in one transaction together with the checkpoint.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from . import mapping, organizations
from .batches import send_resolving
from .consent.erasure import created_at as erasure_created_at
from .consent.erasure import erased_filter
from .mapping import PersonInput
from .models import MergeStrategy, OrderLedger, PersonLedger, StagedSubscriber, SyncEvent
from .rules import LedgerState, Permission, latest_signal, permission_decision, signal_to_record

logger = logging.getLogger("sync.engine")

BATCH_SIZE = 100  # Ortto: at most 100 people / activities per call
DEFAULT_ORTTO_CONCURRENCY = 4  # Ortto calls of one planning round in flight at once
# Synchronous merges keyed by email in flight at once. Ortto warns that many synchronous merges by a
# merge key "can end up hitting a concurrency limit" and start failing, and gives no number
# (https://help.ortto.com/a-257-create-or-update-one-or-more-people-merge): two per process keeps a
# page's merges overlapping their round trips while staying well below the other merge traffic
# (activities, which are not merges) — docs/ortto-contract.md, "Concurrency".
DEFAULT_ORTTO_MERGE_CONCURRENCY = 2
OK_PERSON_STATUSES = {"created", "merged", "updated"}
# What a merge under Ignore (3) answers for a person who exists is not in Ortto's public record: "merged" as
# under the other strategies, or "ignored", "unchanged", or only the person id without a status. Each means
# "exists" (docs/ortto-contract.md); none is a refusal, and none is "created".
EXISTING_PERSON_STATUSES = {"merged", "updated", "ignored", "unchanged"}
OK_ACTIVITY_STATUSES = {"ingested", "queued", "created", "merged", "updated"}


class RunLogger(logging.LoggerAdapter):
    """Every sync log line carries the store hash and the run id; never a secret."""

    def process(self, msg, kwargs):
        return f"[store={self.extra.get('store_hash')} run={self.extra.get('run_id')}] {msg}", kwargs


def run_logger(*, store_hash: str, run_id) -> RunLogger:
    return RunLogger(logger, {"store_hash": store_hash, "run_id": run_id})


def chunks(items: list, size: int = BATCH_SIZE):
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- Planning (pure) -----------------------------------------------------------------------------


@dataclass
class KnownPerson:
    """The ledger's memory of one person, as planning needs it."""

    state: LedgerState
    fingerprints: dict = field(default_factory=dict)
    created_in_ortto: bool = False


@dataclass
class PlanItem:
    person: PersonInput
    known: KnownPerson | None
    permission: Permission | None
    update_fields: bool = True

    @property
    def fields_changed(self) -> bool:
        if self.known is None:
            return True
        return self.update_fields and self.known.fingerprints.get(self.person.source) != self.person.fingerprint


@dataclass
class MergeCall:
    purpose: str  # create | overwrite | update | permission | aggregates | repair
    merge_strategy: int
    people: list[dict]
    emails: list[str]


def plan_item(person: PersonInput, known: KnownPerson | None, *, store_name: str, update_fields=True) -> PlanItem:
    decision = permission_decision(
        store_opt_in=person.signal.store_opt_in,
        signal_at=person.signal.signal_at,
        known=known.state if known else None,
        store_name=store_name,
        source=person.source,
    )
    return PlanItem(person=person, known=known, permission=decision, update_fields=update_fields)


def _without_permission(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if k not in mapping.PERMISSION_FIELDS}


def _calls(purpose: str, strategy: int, rows: list[tuple[str, dict]]) -> list[MergeCall]:
    return [
        MergeCall(purpose, strategy, [{"fields": f} for _, f in chunk], [e for e, _ in chunk])
        for chunk in chunks(rows)
    ]


def plan_people(items: list[PlanItem], *, merge_strategy: int) -> list[MergeCall]:
    """The first round of merge calls for a batch of people (see the module docstring)."""
    create_strategy = MergeStrategy.APPEND_ONLY if merge_strategy == MergeStrategy.APPEND_ONLY else MergeStrategy.IGNORE
    creates, updates_by_strategy, permissions = [], {}, []
    for item in items:
        person = item.person
        if item.known is None:
            permission = item.permission or permission_decision(store_opt_in=None, signal_at=None, known=None)
            fields = {**_without_permission(person.fields), **mapping.permission_fields(
                subscribed=permission.subscribed, reason=permission.reason)}
            creates.append((person.email, fields))
            continue
        if item.fields_changed:
            strategy = _update_strategy(merge_strategy, item.known)
            if strategy is not None:
                updates_by_strategy.setdefault(strategy, []).append((person.email, _without_permission(person.fields)))
        if item.permission is not None:
            permissions.append((person.email, {
                "str::email": person.email,
                **mapping.permission_fields(subscribed=item.permission.subscribed, reason=item.permission.reason),
            }))
    calls = _calls("create", create_strategy, creates)
    for strategy, rows in sorted(updates_by_strategy.items()):
        calls += _calls("update", strategy, rows)
    calls += _calls("permission", MergeStrategy.OVERWRITE, permissions)
    return calls


def _update_strategy(merge_strategy: int, known: KnownPerson) -> int | None:
    """Strategy for a changed, known person; None means no call.

    "Import new records only" (3) never updates a person who existed in Ortto before the bridge, and a
    strategy-3 call would change nothing for them. People the bridge itself created are new records
    from the store, so their later data (e.g. the customer record after the subscriber record) is
    appended without overwriting anything.
    """
    if merge_strategy == MergeStrategy.IGNORE:
        return MergeStrategy.APPEND_ONLY if known.created_in_ortto else None
    return merge_strategy


def plan_overwrite_existing(call: MergeCall, results: list[dict], fields_by_email: dict, *, merge_strategy: int):
    """Strategy 2 only: overwrite the people the creating merge found already in Ortto, without bol::p."""
    if merge_strategy != MergeStrategy.OVERWRITE or call.purpose != "create":
        return []
    rows = [
        (email, _without_permission(fields_by_email[email]))
        for email, result in zip(call.emails, results)
        if person_exists(result)
    ]
    return _calls("overwrite", MergeStrategy.OVERWRITE, rows)


def plan_repairs(call: MergeCall, results: list[dict], ledger_states: dict, *, store_name: str) -> list[MergeCall]:
    """A merge without bol::p that *created* someone (deleted in Ortto since the bridge last synced
    them) left that person subscribed by Ortto's default; set the permission a new person gets."""
    if call.purpose in ("create", "permission", "repair"):
        return []
    rows = []
    for email, result in zip(call.emails, results):
        if result.get("status") != "created":
            continue
        state = ledger_states.get(email)
        permission = permission_decision(
            store_opt_in=state.store_opt_in if state else None, signal_at=None, known=None, store_name=store_name
        )
        rows.append((email, {"str::email": email, **mapping.permission_fields(
            subscribed=permission.subscribed, reason=permission.reason)}))
    return _calls("repair", MergeStrategy.OVERWRITE, rows)


def rebatch(calls: list[MergeCall]) -> list[MergeCall]:
    """Follow-up calls of one round (e.g. the overwrites of the people each creating merge found in
    Ortto), regrouped by purpose and strategy into full batches: one call per 100 people of a kind,
    not one part-full call per creating merge."""
    grouped: dict[tuple[str, int], list[tuple[str, dict]]] = {}
    for call in calls:
        grouped.setdefault((call.purpose, call.merge_strategy), []).extend(
            (email, person["fields"]) for email, person in zip(call.emails, call.people))
    return [batch for (purpose, strategy), rows in grouped.items() for batch in _calls(purpose, strategy, rows)]


def fold_people(people: list[PersonInput]) -> list[PersonInput]:
    """One input per email: the last record's fields, the newest explicit signal of all of them."""
    by_email: dict[str, list[PersonInput]] = {}
    for person in people:
        if person.email:
            by_email.setdefault(person.email, []).append(person)
    folded = []
    for email, group in by_email.items():
        last = group[-1]
        if len(group) > 1:
            last = PersonInput(
                email=email, fields=last.fields, source=last.source,
                signal=latest_signal([p.signal for p in group]), bc_id=last.bc_id,
                bc_customer_id=next((p.bc_customer_id for p in reversed(group) if p.bc_customer_id), None),
            )
        folded.append(last)
    return folded


def combined_fingerprint(fingerprints: dict) -> str:
    return hashlib.sha256(json.dumps(fingerprints, sort_keys=True).encode()).hexdigest()


# --- Page processing (HTTP to Ortto; no DB writes) -------------------------------------------------


@dataclass
class Counters:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    # Orders counted in their buyer's totals without an activity (Ortto's 50 per contact per 24 h).
    summarized: int = 0
    # Records deliberately not sent (carts: no email, or gone before they were read; sync/carts.py).
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
    order_updates: list = field(default_factory=list)  # OrderLedger (changed: status, refunds; sync/commerce.py)
    # Further writes of the page (e.g. sync/carts.py's ledger), run inside the page's commit transaction.
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


def _event(ctx: SyncContext, *, resource, message, email="", bc_id=None, level=SyncEvent.Level.ERROR):
    return SyncEvent(run=ctx.run, resource=resource, email=email[:255], bc_id=bc_id,
                     message=str(message)[:2000], level=level)


def person_accepted(result: dict) -> bool:
    """Whether a merge's answer for one person says Ortto has them (created, or existing in any wording)."""
    if result.get("error"):
        return False
    status = result.get("status")
    return status in OK_PERSON_STATUSES or status in EXISTING_PERSON_STATUSES or (not status and bool(result.get("person_id")))


def person_exists(result: dict) -> bool:
    """An accepted answer for a person Ortto already had (not created by this merge)."""
    return person_accepted(result) and result.get("status") != "created"


def _person_error(result: dict) -> str | None:
    if not person_accepted(result):
        status = result.get("status")
        return f"Ortto refused the person ({status or 'error'}): {result.get('error') or 'no detail'}"
    return None


PHONE_FIELD = "phn::phone"


def merge_people_safely(ctx: SyncContext, call: MergeCall) -> list[dict]:
    """Send one merge; one result per person, in order. A refused batch costs a few requests, not one
    per person (sync/batches.py). A person refused only for their phone is sent again without it:
    a phone never costs a person."""
    results = _merge_resolving(ctx, call)
    return _resend_without_phone(ctx, call, results)


MISSING_PERSON = {"status": "error", "error": "missing from Ortto's answer"}
# Ortto may answer an accepted batch of activities without per-item rows; absence is not an error there.
MISSING_ACTIVITY = {"status": "ingested"}


def _merge_resolving(ctx: SyncContext, call: MergeCall) -> list[dict]:
    def send(people):
        return ctx.ortto.merge_people(people, merge_strategy=call.merge_strategy)

    return send_resolving(send, call.people, log=ctx.log, what="merge", missing=MISSING_PERSON)


def _resend_without_phone(ctx: SyncContext, call: MergeCall, results: list[dict]) -> list[dict]:
    refused = [i for i, (person, result) in enumerate(zip(call.people, results))
               if PHONE_FIELD in person.get("fields", {}) and not person_accepted(result)
               and PHONE_FIELD in str(result.get("error") or "")]
    if not refused:
        return results
    ctx.log.info("%d person(s) refused for their phone; sending them without it", len(refused))
    retry = MergeCall(call.purpose, call.merge_strategy,
                      [{**call.people[i], "fields": {k: v for k, v in call.people[i]["fields"].items()
                                                     if k != PHONE_FIELD}} for i in refused],
                      [call.emails[i] for i in refused])
    results = list(results)
    for index, result in zip(refused, _merge_resolving(ctx, retry)):
        if person_accepted(result):
            result = {**result, "warning": f"phone refused by Ortto, sent without it: {results[index].get('error')}"}
        results[index] = result
    return results


def create_activities_safely(ctx: SyncContext, activities: list[dict]) -> list[dict]:
    """Send one batch of activities; a refused batch is resolved like a merge (merge_people_safely)."""
    return send_resolving(ctx.ortto.create_activities, activities, log=ctx.log, what="activities",
                          missing=MISSING_ACTIVITY)


def ortto_concurrency() -> int:
    """How many Ortto calls of one planning round may be in flight at once (settings.ORTTO_CONCURRENCY)."""
    return max(int(getattr(settings, "ORTTO_CONCURRENCY", DEFAULT_ORTTO_CONCURRENCY) or 1), 1)


def ortto_merge_concurrency() -> int:
    """How many synchronous person merges may be in flight at once (settings.ORTTO_MERGE_CONCURRENCY),
    never more than ortto_concurrency()."""
    merges = int(getattr(settings, "ORTTO_MERGE_CONCURRENCY", DEFAULT_ORTTO_MERGE_CONCURRENCY) or 1)
    return max(min(merges, ortto_concurrency()), 1)


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
    size = size or ortto_concurrency()
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
        pool = _pool(ortto_concurrency())
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


def _known(row: PersonLedger | None) -> KnownPerson | None:
    if row is None:
        return None
    return KnownPerson(
        state=LedgerState(row.store_opt_in, row.store_opt_in_at),
        fingerprints=dict(row.fingerprints or {}),
        created_in_ortto=row.created_in_ortto,
    )


def ledger_load(ctx: SyncContext, emails) -> dict[str, PersonLedger]:
    return {row.email: row for row in PersonLedger.objects.filter(connection=ctx.connection, email__in=list(emails))}


@dataclass
class _Outcome:
    ok: bool = True
    status: str = ""  # of the creating merge
    person_id: str = ""
    sent_permission: bool | None = None
    permission_ok: bool = True
    fields_ok: bool = True
    touched: bool = False
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def carry_tail(calls: list[MergeCall]) -> set[str]:
    """The people of each creating or updating class whose last batch would go out part-full: they wait
    for the next unit's people instead, so a resource costs ceil(people / 100) calls per class, not one
    part-full call more per unit."""
    last: dict[tuple[str, int], MergeCall] = {}
    for call in calls:
        if call.purpose in ("create", "update"):
            last[(call.purpose, call.merge_strategy)] = call
    return {email for call in last.values() if len(call.emails) < BATCH_SIZE for email in call.emails}


def people_sync(ctx: SyncContext, resource: str, people: list[PersonInput], work: PageWork, *,
                ledger: dict[str, PersonLedger] | None = None, update_fields: bool = True,
                carry: bool = False) -> dict[str, _Outcome]:
    """Plan and send the merges for a page of people; record outcomes and ledger rows in `work`.

    carry=True (a unit that is not the resource's last): people who would fill only a part of their
    class's last batch are not sent (nothing is recorded for them); their emails are left in
    `work.carry` for the caller to swap for the records they came from.
    """
    now = timezone.now()
    people = fold_people(people)
    ledger = ledger if ledger is not None else ledger_load(ctx, [p.email for p in people])
    items = [
        plan_item(p, _known(ledger.get(p.email)), store_name=ctx.store_name,
                  update_fields=update_fields or ledger.get(p.email) is None)
        for p in people
    ]
    strategy = ctx.connection.merge_strategy
    if carry:
        waiting = carry_tail(plan_people(items, merge_strategy=strategy))
        if waiting:
            items = [item for item in items if item.person.email not in waiting]
            work.carry = sorted(waiting)
    fields_by_email = {item.person.email: item.person.fields for item in items}
    outcomes = {item.person.email: _Outcome() for item in items}
    states = {e: LedgerState(r.store_opt_in, r.store_opt_in_at) for e, r in ledger.items()}

    pending = plan_people(items, merge_strategy=strategy)
    while pending:
        # One round: the planned calls, sent concurrently; their follow-ups form the next round.
        round_calls, pending = pending, []
        round_results = send_all(merge_people_safely, ctx, round_calls, lambda c: c.emails, lambda c: c.purpose,
                                 size=ortto_merge_concurrency())
        for call, results in zip(round_calls, round_results):
            _merge_outcomes(ctx, call, results, outcomes, fields_by_email, states, strategy, pending)
        pending = rebatch(pending)

    for item in items:
        person, outcome = item.person, outcomes[item.person.email]
        for warning in outcome.warnings:
            work.events.append(_event(ctx, resource=resource, email=person.email, bc_id=person.bc_id,
                                      level=SyncEvent.Level.WARNING, message=warning))
        if outcome.errors:
            work.counters.failed += 1
            for error in outcome.errors:
                work.events.append(_event(ctx, resource=resource, email=person.email, bc_id=person.bc_id,
                                          message=error))
            if not outcome.ok:
                continue
        row = ledger.get(person.email) or PersonLedger(connection=ctx.connection, email=person.email,
                                                       synced_at=now, fingerprints={})
        ledger[person.email] = row
        _ledger_apply(row, item, outcome, now=now)
        work.ledger_rows[person.email] = row
        if not outcome.errors:
            if item.known is None and outcome.status == "created":
                work.counters.created += 1
                work.people_synced += 1
            elif outcome.touched:
                work.counters.updated += 1
                work.people_synced += 1
            else:
                work.counters.unchanged += 1
    return outcomes


def _merge_outcomes(ctx, call: MergeCall, results: list[dict], outcomes, fields_by_email, states, strategy,
                    pending: list) -> None:
    """Record one merge call's per-person results; append the follow-up calls it needs to `pending`."""
    for email, result in zip(call.emails, results):
        outcome = outcomes[email]
        outcome.touched = True
        error = _person_error(result)
        if error:
            outcome.errors.append(error)
            if call.purpose in ("create", "permission", "repair"):
                outcome.permission_ok = False
            if call.purpose in ("update", "overwrite"):
                outcome.fields_ok = False
            if call.purpose == "create":
                outcome.ok = False
            continue
        outcome.person_id = result.get("person_id") or outcome.person_id
        if result.get("warning"):
            outcome.warnings.append(result["warning"])
        if call.purpose == "create":
            outcome.status = result.get("status", "")
        if call.purpose in ("permission", "repair"):
            fields = call.people[call.emails.index(email)]["fields"]
            outcome.sent_permission = fields.get("bol::p")
    pending += plan_overwrite_existing(call, results, fields_by_email, merge_strategy=strategy)
    pending += plan_repairs(call, results, states, store_name=ctx.store_name)


def _ledger_apply(row: PersonLedger, item: PlanItem, outcome: _Outcome, *, now: datetime) -> None:
    person = item.person
    if person.bc_customer_id and not row.bc_customer_id:
        row.bc_customer_id = person.bc_customer_id
    if outcome.person_id:
        row.ortto_person_id = outcome.person_id
    if item.fields_changed and outcome.fields_ok:
        row.fingerprints = {**(row.fingerprints or {}), person.source: person.fingerprint}
        row.fingerprint = combined_fingerprint(row.fingerprints)
    if item.known is None:
        # The store's explicit choice, or (store never said) the moment the bridge first synced the
        # person: only a choice made after it may change the permission later (R3/R4).
        if person.signal.store_opt_in is not None:
            row.store_opt_in, row.store_opt_in_at = person.signal.store_opt_in, person.signal.signal_at or now
        else:
            row.store_opt_in, row.store_opt_in_at = None, now
        if outcome.status == "created":
            row.created_in_ortto = True
            row.sent_permission = item.permission.subscribed if item.permission else False
    elif outcome.permission_ok:
        recorded = signal_to_record(store_opt_in=person.signal.store_opt_in, signal_at=person.signal.signal_at,
                                    known=item.known.state)
        if recorded is not None:
            row.store_opt_in, row.store_opt_in_at = recorded.store_opt_in, recorded.store_opt_in_at
    if outcome.sent_permission is not None:
        row.sent_permission = outcome.sent_permission
    if outcome.touched:
        row.synced_at = now


# --- Resources -----------------------------------------------------------------------------------


def subscribers_process(ctx: SyncContext, subscribers: list[dict], *, carry: bool = False) -> PageWork:
    work = PageWork()
    work.counters.fetched = len(subscribers)
    subscribers = _without_erased(ctx, subscribers, work, email_of=lambda s: mapping.clean_email(s.get("email")))
    people = [mapping.subscriber_to_person(s) for s in subscribers]
    _people_process(ctx, "subscribers", subscribers, people, work, carry=carry)
    return work


def subscribers_stage(ctx: SyncContext, subscribers: list[dict], *, carry: bool = False) -> PageWork:
    """Initial runs: keep the subscriber records (StagedSubscriber) for the customers; no Ortto call yet."""
    work = PageWork()
    work.counters.fetched = len(subscribers)
    subscribers = _without_erased(ctx, subscribers, work, email_of=lambda s: mapping.clean_email(s.get("email")))
    work.staged = list(subscribers)
    return work


def staged_subscriber_rows(run, subscribers: list[dict]) -> list[StagedSubscriber]:
    return [StagedSubscriber(run=run, email=mapping.clean_email(s.get("email")), bc_id=s.get("id"), record=s)
            for s in subscribers]


def customers_process(ctx: SyncContext, customers: list[dict], *, carry: bool = False) -> PageWork:
    work = PageWork()
    work.counters.fetched = len(customers)
    customers = _without_erased(ctx, customers, work, email_of=lambda c: mapping.clean_email(c.get("email")))
    people = [mapping.customer_to_person(c, field_ids=ctx.field_ids) for c in customers]
    staged = []
    if ctx.stage_subscribers:
        # The customers' own subscriber records, staged by this run: one merge per person, with the
        # subscriber's opt-in and the customer's fields (fold_people keeps the last record's fields).
        emails = [p.email for p in people if mapping.email_is_valid(p.email)]
        staged = list(StagedSubscriber.objects.filter(run=ctx.run, email__in=emails).order_by("pk")
                      .values_list("email", "record"))
    subscriber_people = [mapping.subscriber_to_person(record) for _, record in staged]
    _people_process(ctx, "customers", [record for _, record in staged] + customers, subscriber_people + people,
                    work, carry=carry)
    if staged:
        own = {id(record) for record in customers}  # carry customers only; their staged rows stay staged
        work.carry = [record for record in work.carry if id(record) in own]
        waiting = {mapping.clean_email(record.get("email")) for record in work.carry}
        work.unstaged_emails = sorted({email for email, _ in staged if email in work.ledger_rows
                                       and email not in waiting})
        sent = set(work.unstaged_emails)
        for person in subscriber_people:
            row = work.ledger_rows.get(person.email)
            if person.email in sent and row is not None and (row.fingerprints or {}).get("customer"):
                # The subscriber record went out folded into this merge: an unchanged re-read costs nothing.
                row.fingerprints = {**row.fingerprints, "subscriber": person.fingerprint}
                row.fingerprint = combined_fingerprint(row.fingerprints)
    work.organization_members = organizations.customer_members(customers, work.ledger_rows)
    return work


def _without_erased(ctx: SyncContext, records: list[dict], work: PageWork, *, email_of) -> list[dict]:
    """Records of people erased on request are not synced until they come back (sync/consent/erasure.py)."""
    kept, left_out = erased_filter(ctx.store, records, email_of=email_of, created_of=erasure_created_at)
    work.counters.skipped += left_out
    return kept


def _people_process(ctx, resource, records: list[dict], people: list[PersonInput], work: PageWork, *, carry: bool):
    _count_missing_email(ctx, resource, people, work)
    people_sync(ctx, resource, [p for p in people if mapping.email_is_valid(p.email)], work, carry=carry)
    if work.carry:
        waiting = set(work.carry)
        work.carry = [record for record, person in zip(records, people) if person.email in waiting]


def _count_missing_email(ctx, resource, people, work):
    for person in people:
        if not person.email:
            work.counters.failed += 1
            work.events.append(_event(ctx, resource=resource, bc_id=person.bc_id, level=SyncEvent.Level.WARNING,
                                      message="No email address: not sent to Ortto."))
        elif not mapping.email_is_valid(person.email):
            work.counters.failed += 1
            # An error, not a warning: the merchant can fix the address, and "Resync failed records" retries it.
            work.events.append(_event(ctx, resource=resource, bc_id=person.bc_id, email=person.email,
                                      message="Not a valid email address: not sent to Ortto."))


def orders_process(ctx: SyncContext, orders: list[dict], *, carry: bool = False,
                   push_aggregates: bool = True) -> PageWork:
    """Orders: first the people (guests and anyone the ledger does not know), then the activities,
    then the customer aggregates — so an activity never creates a person with Ortto's defaults.

    carry=True: the orders that would put part-full batches mid-resource (of new buyers, then of
    activities) wait for the next unit (`work.carry`). push_aggregates=False: the ledger rows whose
    totals Ortto still needs are left in `work.aggregates_due` for the caller to write (sync.commerce
    writes them once, with the totals its status changes move)."""
    work = PageWork()
    work.counters.fetched = len(orders)
    orders = _without_erased(ctx, orders, work, email_of=mapping.order_email)
    connection = ctx.connection
    placed = [o for o in orders if mapping.order_is_placed(o)]
    work.counters.incomplete += len(orders) - len(placed)
    sent_ids = set(OrderLedger.objects.filter(connection=connection, order_id__in=[o["id"] for o in placed])
                   .values_list("order_id", flat=True))
    todo = [o for o in placed if o["id"] not in sent_ids]
    work.counters.unchanged += len(placed) - len(todo)
    if not todo:
        return work

    # A registered customer's activity goes to the person the bridge synced for that customer.
    customer_ids = {int(o["customer_id"]) for o in todo if o.get("customer_id")}
    emails_by_customer = dict(PersonLedger.objects.filter(connection=connection, bc_customer_id__in=customer_ids)
                              .values_list("bc_customer_id", "email"))
    person_by_order, email_by_order = {}, {}
    for order in todo:
        person = mapping.order_to_person(order)
        email = emails_by_customer.get(person.bc_customer_id) or person.email
        if not mapping.email_is_valid(email):
            work.counters.failed += 1
            work.events.append(_event(ctx, resource="orders", bc_id=order["id"], email=email or "",
                                      level=SyncEvent.Level.ERROR if email else SyncEvent.Level.WARNING,
                                      message="Order without a valid email address: not sent to Ortto."))
            continue
        if email != person.email:
            person = PersonInput(email=email, fields={**person.fields, "str::email": email}, source="order",
                                 signal=person.signal, bc_id=person.bc_id, bc_customer_id=person.bc_customer_id)
        person_by_order[order["id"]] = person
        email_by_order[order["id"]] = email
    todo = [o for o in todo if o["id"] in email_by_order]

    ledger = ledger_load(ctx, set(email_by_order.values()))
    if carry:
        waiting = orders_to_carry(todo, email_by_order, ledger)
        work.carry = [o for o in todo if o["id"] in waiting]
        todo = [o for o in todo if o["id"] not in waiting]
        if not todo:
            return work
    folded = {} if ctx.defer_aggregates else totals_fold(ctx, todo, email_by_order, ledger, person_by_order)
    people = [person_by_order[o["id"]] for o in todo]
    person_work = PageWork()
    outcomes = people_sync(ctx, "orders", people, person_work, ledger=ledger, update_fields=False)
    work.events += person_work.events
    work.ledger_rows.update(person_work.ledger_rows)
    work.people_synced += person_work.people_synced
    presence_ensure(ctx, list(dict.fromkeys(email_by_order[o["id"]] for o in todo)), outcomes, ledger, work)

    now = timezone.now()
    allowance = {} if ctx.defer_placed else activity_allowance(ctx, set(email_by_order.values()), now=now)
    activities, sendable, summarized, deferred = [], [], [], []
    for order in todo:
        email = email_by_order.get(order["id"])
        if email is None:
            continue
        if not outcomes[email].ok:
            work.counters.failed += 1
            work.events.append(_event(ctx, resource="orders", bc_id=order["id"], email=email,
                                      message="Order not sent: its person could not be created in Ortto."))
            continue
        activity = mapping.order_activity(order=order, email=email, store_hash=ctx.store.store_hash,
                                          store_name=ctx.store.name, activity_id=ctx.activity_id)
        if ctx.defer_placed:
            deferred.append((order, activity))
            continue
        if allowance[email] <= 0:
            summarized.append(order)
            continue
        allowance[email] -= 1
        activities.append(activity)
        sendable.append(order)

    changed_emails = []

    def count_in_totals(order, email):
        row = ledger[email]
        _count_order(row, order)
        work.ledger_rows[email] = row
        if email not in changed_emails:
            changed_emails.append(email)

    order_batches, activity_batches = list(chunks(sendable)), list(chunks(activities))
    batch_results = send_all(create_activities_safely, ctx, activity_batches)
    for batch_orders, results in zip(order_batches, batch_results):
        for order, result in zip(batch_orders, results):
            email = email_by_order[order["id"]]
            if result.get("error") or result.get("status") not in OK_ACTIVITY_STATUSES:
                work.counters.failed += 1
                work.events.append(_event(ctx, resource="orders", bc_id=order["id"], email=email,
                                          message=f"Ortto refused the Placed order activity: {result.get('error') or result.get('status')}"))
                continue
            work.counters.created += 1
            work.order_rows.append(OrderLedger(connection=connection, order_id=order["id"], email=email, sent_at=now))
            count_in_totals(order, email)
    for order, activity in deferred:
        # Counted in the totals now; which of a buyer's orders get their activity is decided once every
        # order is read (the newest 50), and the run's counters say so then.
        email = email_by_order[order["id"]]
        work.order_rows.append(OrderLedger(connection=connection, order_id=order["id"], email=email, sent_at=now,
                                           placed_state=OrderLedger.Placed.TO_SEND, placed_activity=activity))
        count_in_totals(order, email)
    for order in summarized:
        # Beyond Ortto's 50 events per activity per contact per 24 h the activity would be dropped
        # silently: the order counts in the person's totals (order count, total spent, last order)
        # instead, and the run's counters say how many were summarized.
        email = email_by_order[order["id"]]
        work.counters.summarized += 1
        work.order_rows.append(OrderLedger(connection=connection, order_id=order["id"], email=email, sent_at=now,
                                           summarized=True))
        count_in_totals(order, email)
    summarized_by_email: dict[str, int] = {}
    for order in summarized:
        summarized_by_email[email_by_order[order["id"]]] = summarized_by_email.get(email_by_order[order["id"]], 0) + 1
    for email, count in summarized_by_email.items():
        work.events.append(summarized_event(ctx, email, count))

    work.organization_members = organizations.guest_order_members(
        sendable + summarized + [order for order, _ in deferred], work.ledger_rows)
    if not ctx.defer_aggregates:
        # Aggregates are bridge-owned fields: overwrite them (strategy 2), once per unit per person, except
        # for new buyers whose creating merge already carried exactly these totals (totals_fold).
        written = {email for email, fields in folded.items()
                   if outcomes[email].status == "created" and fields == _aggregates_of(ctx, ledger[email])}
        # A folded buyer whose orders were all refused counts nothing this unit, yet the merge carried
        # their totals: the overwrite puts Ortto back to what the ledger recorded.
        stale = [email for email in folded if email not in written and email not in changed_emails
                 and email in ledger and outcomes[email].ok]
        due = [ledger[email] for email in changed_emails + stale if email not in written]
        if push_aggregates:
            aggregates_push(ctx, due, work)
        else:
            work.aggregates_due = {row.email: row for row in due}
    return work


def _count_order(row: PersonLedger, order: dict) -> None:
    """One more order in a person's totals (order count, total spent, last order date)."""
    row.order_count = int(row.order_count or 0) + 1
    row.total_spent = Decimal(row.total_spent or 0) + mapping.order_total(order)
    placed_at = mapping.parse_bc_datetime(order.get("date_created"))
    if placed_at and (row.last_order_at is None or placed_at > row.last_order_at):
        row.last_order_at = placed_at


def _aggregates_of(ctx: SyncContext, row: PersonLedger, *, clear_missing: bool = False) -> dict:
    return mapping.aggregate_fields(email=row.email, order_count=row.order_count, total_spent=row.total_spent,
                                    last_order_at=row.last_order_at, field_ids=ctx.field_ids,
                                    clear_missing=clear_missing)


def totals_fold(ctx: SyncContext, todo: list[dict], email_by_order: dict, ledger: dict,
                person_by_order: dict) -> dict[str, dict]:
    """Runs other than the initial import (incremental, webhook, full, resync): the order totals of each
    buyer the ledger does not know yet (a new guest, mostly), put into the merge that creates them, so a
    new buyer costs one merge, not two.

    The totals are the ones the unit will record if every order is counted (sent or summarized). A
    creating merge answered "created" applied them whatever the merge strategy; the caller still writes
    the totals separately where the person already existed in Ortto (an Append-only or Ignore merge
    may have left older values) or where the recorded totals differ (an activity Ortto refused).
    Returns email -> the aggregate fields sent."""
    predicted: dict[str, PersonLedger] = {}
    for order in todo:
        email = email_by_order[order["id"]]
        if email in ledger:
            continue
        _count_order(predicted.setdefault(email, PersonLedger(email=email, order_count=0, total_spent=Decimal(0))),
                     order)
    folded = {email: _aggregates_of(ctx, row) for email, row in predicted.items()}
    for order in todo:
        fields = folded.get(email_by_order[order["id"]])
        if fields:
            person = person_by_order[order["id"]]
            person_by_order[order["id"]] = dataclasses.replace(person, fields={**person.fields, **fields},
                                                               fingerprint=person.fingerprint)
    return folded


# Ortto keeps at most 50 events per activity per contact per 24 h (https://help.ortto.com/a-235-rate-limits).
ACTIVITY_DAILY_LIMIT = 50


def summarized_event(ctx: SyncContext, email: str, count: int) -> SyncEvent:
    """The note on a buyer whose orders went into their totals without a Placed order activity."""
    return _event(ctx, resource="orders", email=email, level=SyncEvent.Level.INFO, message=(
        f"{count} order(s) counted in the person's order totals without a Placed order activity: Ortto keeps "
        f"at most {ACTIVITY_DAILY_LIMIT} of one activity per person per 24 hours."))


def activity_allowance(ctx: SyncContext, emails: set[str], *, now: datetime) -> dict[str, int]:
    """Per email, how many more Placed order activities Ortto keeps in the 24 h before `now` (counted
    from what this connection sent; the pure rule is ACTIVITY_DAILY_LIMIT minus that)."""
    sent = dict(
        OrderLedger.objects.filter(connection=ctx.connection, email__in=list(emails), summarized=False,
                                   placed_state=OrderLedger.Placed.SENT, sent_at__gte=now - timedelta(hours=24))
        .values("email").annotate(n=Count("id")).values_list("email", "n")
    )
    return {email: max(ACTIVITY_DAILY_LIMIT - sent.get(email, 0), 0) for email in emails}


def presence_ensure(ctx: SyncContext, emails: list[str], outcomes: dict, ledger: dict, work: PageWork) -> None:
    """Merge, before their activities, the buyers this run has not merged yet.

    An activity for an email Ortto no longer knows (a person deleted there since the bridge last synced
    them, GDPR erasures included) would re-create the person subscribed, Ortto's default. So each
    such buyer first gets an Append-only merge carrying only the email and the permission a new person
    gets from the ledger's memory: an existing person is left as is (a non-empty `bol::p` is never
    appended over), a deleted one comes back with the right permission and its reason (plan_repairs).
    A buyer whose merge fails gets no activity (the caller counts the order as failed)."""
    started = getattr(ctx.run, "started_at", None)
    rows, states = [], {}
    for email in emails:
        outcome = outcomes.get(email)
        if outcome is None or not outcome.ok or outcome.touched:
            continue
        row = ledger.get(email)
        if row is not None and started and row.synced_at and row.synced_at >= started:
            continue  # merged earlier in this run
        state = LedgerState(row.store_opt_in, row.store_opt_in_at) if row else LedgerState(None, None)
        states[email] = state
        permission = permission_decision(store_opt_in=state.store_opt_in, signal_at=None, known=None,
                                         store_name=ctx.store_name)
        rows.append((email, {"str::email": email, "bol::p": permission.subscribed}))
    pending = _calls("presence", MergeStrategy.APPEND_ONLY, rows)
    now = timezone.now()
    while pending:
        round_calls, pending = pending, []
        round_results = send_all(merge_people_safely, ctx, round_calls, lambda c: c.emails, lambda c: c.purpose,
                                 size=ortto_merge_concurrency())
        for call, results in zip(round_calls, round_results):
            for email, result in zip(call.emails, results):
                outcome = outcomes[email]
                error = _person_error(result)
                if error:
                    if call.purpose == "presence":
                        outcome.ok = False
                    work.events.append(_event(ctx, resource="orders", email=email, message=error))
                    continue
                row = ledger.get(email)
                if row is not None:
                    row.synced_at = now
                    if call.purpose == "presence" and result.get("status") == "created":
                        row.created_in_ortto = True
                        row.sent_permission = call.people[call.emails.index(email)]["fields"]["bol::p"]
                        work.events.append(_event(ctx, resource="orders", email=email, level=SyncEvent.Level.INFO,
                                                  message="Created again in Ortto (deleted there since the last "
                                                          "sync) before its order, with the store's permission."))
                    work.ledger_rows[email] = row
            pending += plan_repairs(call, results, states, store_name=ctx.store_name)
        pending = rebatch(pending)


def orders_to_carry(todo: list[dict], email_by_order: dict, ledger: dict) -> set:
    """Ids of the orders a unit (not its resource's last) leaves for the next one: those of the buyers
    who would fill only part of the last batch of new people, then the part-full tail of activities."""
    new_emails = list(dict.fromkeys(email_by_order[o["id"]] for o in todo if email_by_order[o["id"]] not in ledger))
    waiting = set()
    if len(new_emails) % BATCH_SIZE:
        tail = set(new_emails[len(new_emails) - len(new_emails) % BATCH_SIZE:])
        waiting = {o["id"] for o in todo if email_by_order[o["id"]] in tail}
    rest = [o for o in todo if o["id"] not in waiting]
    if len(rest) % BATCH_SIZE:
        waiting |= {o["id"] for o in rest[len(rest) - len(rest) % BATCH_SIZE:]}
    return waiting


def aggregates_push(ctx: SyncContext, rows: list[PersonLedger], work: PageWork) -> None:
    """Overwrite the order aggregates (count, total spent, last order) of these ledger rows in Ortto."""
    fields = [(row.email, _aggregates_of(ctx, row, clear_missing=True)) for row in rows]
    states = {row.email: LedgerState(row.store_opt_in, row.store_opt_in_at) for row in rows}
    pending = _calls("aggregates", MergeStrategy.OVERWRITE, fields)
    while pending:
        round_calls, pending = pending, []
        round_results = send_all(merge_people_safely, ctx, round_calls, lambda c: c.emails, lambda c: c.purpose,
                                 size=ortto_merge_concurrency())
        for call, results in zip(round_calls, round_results):
            for email, result in zip(call.emails, results):
                error = _person_error(result)
                if error:
                    work.events.append(_event(ctx, resource="orders", email=email, level=SyncEvent.Level.WARNING,
                                              message=f"Order totals not updated: {error}"))
            pending += plan_repairs(call, results, states, store_name=ctx.store_name)
        pending = rebatch(pending)


RESOURCE_PROCESSORS = {
    "subscribers": subscribers_process,
    "customers": customers_process,
    "orders": orders_process,
}
