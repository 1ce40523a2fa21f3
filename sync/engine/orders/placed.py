"""Placed order: an order seen for the first time becomes its buyer's Placed order activity and counts in
their totals (order count, total spent, last order).

First the people (guests and anyone the ledger does not know), then the activities, then the totals, so an
activity never creates a person with Ortto's defaults. Ortto keeps at most 50 of one activity per person per
24 hours: orders beyond that count in the totals only, and the run says so."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count
from django.utils import timezone

from sync.engine import mapping, organizations
from sync.engine.answers import OK_ACTIVITY_STATUSES, person_error
from sync.engine.context import BATCH_SIZE, PageWork, SyncContext, event
from sync.engine.mapping import PersonInput
from sync.engine.orders import records
from sync.engine.people import ledger_load, people_sync, without_erased
from sync.engine.planning import merge_calls, plan_repairs
from sync.engine.rules import LedgerState, permission_decision
from sync.engine.sending import activities_send, merge_rounds
from sync.models import MergeStrategy, OrderLedger, PersonLedger, SyncEvent


def placed_process(ctx: SyncContext, orders: list[dict], *, carry: bool = False,
                   push_aggregates: bool = True) -> PageWork:
    """Orders: first the people (guests and anyone the ledger does not know), then the activities,
    then the customer aggregates — so an activity never creates a person with Ortto's defaults.

    carry=True: the orders that would put part-full batches mid-resource (of new buyers, then of
    activities) wait for the next unit (`work.carry`). push_aggregates=False: the ledger rows whose
    totals Ortto still needs are left in `work.aggregates_due` for the caller to write (sync.engine.orders.journey
    writes them once, with the totals its status changes move)."""
    work = PageWork()
    work.counters.fetched = len(orders)
    orders = without_erased(ctx, orders, work, email_of=records.order_email)
    connection = ctx.connection
    placed = [o for o in orders if records.order_is_placed(o)]
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
        person = records.order_to_person(order)
        email = emails_by_customer.get(person.bc_customer_id) or person.email
        if not mapping.email_is_valid(email):
            work.counters.failed += 1
            work.events.append(event(ctx, resource="orders", bc_id=order["id"], email=email or "",
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
            work.events.append(event(ctx, resource="orders", bc_id=order["id"], email=email,
                                      message="Order not sent: its person could not be created in Ortto."))
            continue
        activity = records.order_activity(order=order, email=email, store_hash=ctx.store.store_hash,
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

    for order, result in zip(sendable, activities_send(ctx, activities)):
        email = email_by_order[order["id"]]
        if result.get("error") or result.get("status") not in OK_ACTIVITY_STATUSES:
            work.counters.failed += 1
            work.events.append(event(ctx, resource="orders", bc_id=order["id"], email=email,
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
    row.total_spent = Decimal(row.total_spent or 0) + records.order_total(order)
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
    return event(ctx, resource="orders", email=email, level=SyncEvent.Level.INFO, message=(
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
    now = timezone.now()

    def on_answers(call, results):
        for email, result in zip(call.emails, results):
            outcome = outcomes[email]
            error = person_error(result)
            if error:
                if call.purpose == "presence":
                    outcome.ok = False
                work.events.append(event(ctx, resource="orders", email=email, message=error))
                continue
            row = ledger.get(email)
            if row is not None:
                row.synced_at = now
                if call.purpose == "presence" and result.get("status") == "created":
                    row.created_in_ortto = True
                    row.sent_permission = call.people[call.emails.index(email)]["fields"]["bol::p"]
                    work.events.append(event(ctx, resource="orders", email=email, level=SyncEvent.Level.INFO,
                                             message="Created again in Ortto (deleted there since the last "
                                                     "sync) before its order, with the store's permission."))
                work.ledger_rows[email] = row
        return plan_repairs(call, results, states, store_name=ctx.store_name)

    merge_rounds(ctx, merge_calls("presence", MergeStrategy.APPEND_ONLY, rows), on_answers)


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

    def on_answers(call, results):
        for email, result in zip(call.emails, results):
            error = person_error(result)
            if error:
                work.events.append(event(ctx, resource="orders", email=email, level=SyncEvent.Level.WARNING,
                                         message=f"Order totals not updated: {error}"))
        return plan_repairs(call, results, states, store_name=ctx.store_name)

    merge_rounds(ctx, merge_calls("aggregates", MergeStrategy.OVERWRITE, fields), on_answers)
