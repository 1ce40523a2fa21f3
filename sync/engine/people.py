"""People: subscribers and customers become Ortto people, planned by sync/engine/planning.py and sent by
sync/engine/sending.py; each page's outcomes become ledger rows and events in its PageWork (sync/engine/context.py).

Page processing makes the Ortto calls outside any database transaction (SQLite would hold its write lock
across HTTP) and returns a `PageWork` that runs.py commits in one transaction together with the checkpoint."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from sync.consent.erasure import created_at as erasure_created_at
from sync.consent.erasure import erased_filter
from sync.engine import mapping, organizations
from sync.engine.answers import person_error
from sync.engine.context import PageWork, SyncContext, event
from sync.engine.mapping import PersonInput
from sync.engine.planning import (
    MergeCall,
    PlanItem,
    carry_tail,
    combined_fingerprint,
    fold_people,
    known_person,
    plan_item,
    plan_overwrite_existing,
    plan_people,
    plan_repairs,
)
from sync.engine.rules import LedgerState, signal_to_record
from sync.engine.sending import merge_rounds
from sync.models import PersonLedger, StagedSubscriber, SyncEvent

logger = logging.getLogger("sync.engine.people")


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
        plan_item(p, known_person(ledger.get(p.email)), store_name=ctx.store_name,
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

    merge_rounds(ctx, plan_people(items, merge_strategy=strategy),
                 lambda call, results: _merge_outcomes(ctx, call, results, outcomes, fields_by_email, states, strategy))

    for item in items:
        person, outcome = item.person, outcomes[item.person.email]
        for warning in outcome.warnings:
            work.events.append(event(ctx, resource=resource, email=person.email, bc_id=person.bc_id,
                                      level=SyncEvent.Level.WARNING, message=warning))
        if outcome.errors:
            work.counters.failed += 1
            for error in outcome.errors:
                work.events.append(event(ctx, resource=resource, email=person.email, bc_id=person.bc_id,
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


def _merge_outcomes(ctx, call: MergeCall, results: list[dict], outcomes, fields_by_email, states,
                    strategy) -> list[MergeCall]:
    """Record one merge call's per-person results; return the follow-up calls they need."""
    for email, result in zip(call.emails, results):
        outcome = outcomes[email]
        outcome.touched = True
        error = person_error(result)
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
    return (plan_overwrite_existing(call, results, fields_by_email, merge_strategy=strategy)
            + plan_repairs(call, results, states, store_name=ctx.store_name))


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


def without_erased(ctx: SyncContext, records: list[dict], work: PageWork, *, email_of) -> list[dict]:
    """Records of people erased on request are not synced until they come back (sync/consent/erasure.py);
    they count as skipped."""
    kept, left_out = erased_filter(ctx.store, records, email_of=email_of, created_of=erasure_created_at)
    work.counters.skipped += left_out
    return kept


def subscribers_process(ctx: SyncContext, subscribers: list[dict], *, carry: bool = False) -> PageWork:
    work = PageWork()
    work.counters.fetched = len(subscribers)
    subscribers = without_erased(ctx, subscribers, work, email_of=lambda s: mapping.clean_email(s.get("email")))
    people = [mapping.subscriber_to_person(s) for s in subscribers]
    _people_process(ctx, "subscribers", subscribers, people, work, carry=carry)
    return work


def subscribers_stage(ctx: SyncContext, subscribers: list[dict], *, carry: bool = False) -> PageWork:
    """Initial runs: keep the subscriber records (StagedSubscriber) for the customers; no Ortto call yet."""
    work = PageWork()
    work.counters.fetched = len(subscribers)
    subscribers = without_erased(ctx, subscribers, work, email_of=lambda s: mapping.clean_email(s.get("email")))
    work.staged = list(subscribers)
    return work


def staged_subscriber_rows(run, subscribers: list[dict]) -> list[StagedSubscriber]:
    return [StagedSubscriber(run=run, email=mapping.clean_email(s.get("email")), bc_id=s.get("id"), record=s)
            for s in subscribers]


def customers_process(ctx: SyncContext, customers: list[dict], *, carry: bool = False) -> PageWork:
    work = PageWork()
    work.counters.fetched = len(customers)
    customers = without_erased(ctx, customers, work, email_of=lambda c: mapping.clean_email(c.get("email")))
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
            work.events.append(event(ctx, resource=resource, bc_id=person.bc_id, level=SyncEvent.Level.WARNING,
                                      message="No email address: not sent to Ortto."))
        elif not mapping.email_is_valid(person.email):
            work.counters.failed += 1
            # An error, not a warning: the merchant can fix the address, and "Resync failed records" retries it.
            work.events.append(event(ctx, resource=resource, bc_id=person.bc_id, email=person.email,
                                      message="Not a valid email address: not sent to Ortto."))
