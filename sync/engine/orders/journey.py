"""Orders beyond Placed order: Ordered product per line item, and Fulfilled / Cancelled / Refunded order when
an order's status or refunded amount changes — each exactly once, whether a webhook run or the scheduled
sweep sees the change first — with the buyer's totals (order count, total spent) following refunds and
cancellations.

How "exactly once" holds: the order ledger (`OrderLedger`) remembers each order's last status, refunded
amount and what it adds to its buyer's totals. A run compares the order it just read with that memory, sends
the activities of the difference, and commits the new memory with the page (sync/engine/runs.py), in the same
transaction as its checkpoint. Runs of one store never overlap (docs/design.md §4), so a webhook run and the
sweep never both see the same difference; a run cut short between Ortto's answer and the commit sends the
same activities again with the same keys, which Ortto de-duplicates (sync/engine/activities.py).

An order seen for the first time by an initial or full import only records its status: its history before
the connection is not news for a journey (a shipped order from last year is not "just fulfilled"). First
seen by an incremental or webhook run, it is news: a Placed order and its Fulfilled / Cancelled / Refunded
order follow each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from sync.catalog.mirror import facts_for
from sync.db import rows_update
from sync.engine import activities, answers, context, mapping, people, sending
from sync.engine.bigcommerce_pages import orders_by_id
from sync.engine.orders import placed, records
from sync.engine.orders.records import CANCELLED_STATUS, FULFILLED_STATUSES, REFUNDED_STATUS
from sync.models import OrderLedger, PersonLedger, SyncEvent, SyncRun
from sync.ortto.schema import schema_journey_id, schema_journey_target

FULL_KINDS = (SyncRun.Kind.INITIAL, SyncRun.Kind.FULL)
# A ledger row the bridge wrote before the order's status was sent: any later status is news.
JUST_PLACED = 0


# --- The rules (pure) -------------------------------------------------------------------------------


def refunded_amount(order: dict) -> Decimal:
    """What has been refunded of the order. BigCommerce's v2 order carries `refunded_amount`; a Refunded
    (4) order that says 0 is taken as refunded in full. A Partially Refunded (14) order that says 0 has an
    amount the bridge cannot know without another request: nothing is sent until the amount shows
    (docs/ortto-contract.md, "What the public record does not say")."""
    amount = mapping.to_decimal(order.get("refunded_amount"))
    if amount <= 0 and int(order.get("status_id") or 0) == REFUNDED_STATUS:
        return records.order_total(order)
    return max(amount, Decimal(0))


def order_is_fulfilled(order: dict) -> bool:
    """Shipped (2) or Completed (10), or every item shipped: a shipped order refunded later is Partially
    Refunded (14) but still was fulfilled (orders.v2.oas2.yml: items_shipped, items_total)."""
    if int(order.get("status_id") or 0) in FULFILLED_STATUSES:
        return True
    items_total = int(order.get("items_total") or 0)
    return items_total > 0 and int(order.get("items_shipped") or 0) >= items_total


def counted_total(order: dict, status_id: int, refunded: Decimal) -> Decimal:
    """What the order adds to its buyer's total spent: nothing once cancelled, else its total less refunds."""
    if status_id == CANCELLED_STATUS:
        return Decimal(0)
    return max(records.order_total(order) - refunded, Decimal(0))


@dataclass
class OrderChange:
    """What one order's new state means: the events to send and the totals' deltas."""

    status_id: int
    fulfilled: bool
    refunded: Decimal
    counted: Decimal
    events: list[str] = field(default_factory=list)  # fulfilled | cancelled | refunded
    refund_amount: Decimal = Decimal(0)
    count_delta: int = 0
    total_delta: Decimal = Decimal(0)


def order_change(*, order: dict, previous_status: int | None, previous_fulfilled: bool, previous_refunded: Decimal,
                 previous_counted: Decimal, send: bool) -> OrderChange:
    """The difference between an order and the ledger's memory of it. previous_status None: the ledger
    never knew the status (no event). send False: record only (an import's first sight)."""
    status_id = int(order.get("status_id") or 0)
    refunded = refunded_amount(order)
    counted = counted_total(order, status_id, refunded)
    change = OrderChange(status_id=status_id, fulfilled=order_is_fulfilled(order), refunded=refunded, counted=counted)
    was_counted = previous_status != CANCELLED_STATUS
    change.count_delta = int(status_id != CANCELLED_STATUS) - int(was_counted)
    change.total_delta = counted - previous_counted
    if not send or previous_status is None:
        return change
    if change.fulfilled and not previous_fulfilled:
        change.events.append("fulfilled")
    if status_id == CANCELLED_STATUS and previous_status != CANCELLED_STATUS:
        change.events.append("cancelled")
    if refunded > previous_refunded:
        change.events.append("refunded")
        change.refund_amount = refunded - previous_refunded
    return change


# --- Processing a unit of orders --------------------------------------------------------------------


def orders_process(ctx: context.SyncContext, orders: list[dict], *, carry: bool = False) -> context.PageWork:
    """placed.placed_process (people, Placed order, totals), then the journey of the same orders."""
    placed_ids = [int(o["id"]) for o in orders if records.order_is_placed(o)]
    known = {row.order_id: row for row in
             OrderLedger.objects.filter(connection=ctx.connection, order_id__in=placed_ids)}
    work = placed.placed_process(ctx, orders, carry=carry, push_aggregates=False)
    journey_apply(ctx, orders, known, work)
    if work.aggregates_due and not ctx.defer_aggregates:
        # Once per buyer per unit: the totals of new orders and of status changes in one overwrite.
        placed.aggregates_push(ctx, list(work.aggregates_due.values()), work)
    return work


@dataclass
class _Pending:
    row: OrderLedger
    order: dict
    change: OrderChange
    new: bool
    activities: list = field(default_factory=list)  # status events: all must pass to record the change
    products: list = field(default_factory=list)


def journey_apply(ctx: context.SyncContext, orders: list[dict], known: dict[int, OrderLedger],
                  work: context.PageWork) -> None:
    by_id = {int(o["id"]): o for o in orders}
    import_run = ctx.run.kind in FULL_KINDS
    pending: list[_Pending] = []
    for row in work.order_rows:  # placed by this unit (the engine sent Placed order, counted it in full)
        order = by_id.get(row.order_id)
        if order is None:
            continue
        change = order_change(order=order, previous_status=JUST_PLACED, previous_fulfilled=False,
                              previous_refunded=Decimal(0),
                              previous_counted=records.order_total(order), send=not import_run)
        item = _Pending(row=row, order=order, change=change, new=True)
        if not row.summarized:
            item.products = _products_of(ctx, order, row.email)
        pending.append(item)
    for order_id, row in known.items():
        order = by_id.get(order_id)
        if order is None:
            continue
        previous_counted = (row.counted_total if row.counted_total is not None else records.order_total(order))
        change = order_change(order=order, previous_status=row.status_id,
                              previous_fulfilled=row.fulfilled or row.status_id in FULFILLED_STATUSES,
                              previous_refunded=Decimal(row.refunded_amount or 0),
                              previous_counted=Decimal(previous_counted), send=True)
        unchanged = (row.status_id == change.status_id and row.fulfilled == change.fulfilled
                     and Decimal(row.refunded_amount or 0) == change.refunded
                     and row.counted_total is not None and Decimal(row.counted_total) == change.counted)
        if not unchanged:
            pending.append(_Pending(row=row, order=order, change=change, new=False))
    if not pending:
        return
    if ctx.defer_placed:
        _products_wait([item for item in pending if item.new])
    else:
        _products_limit(ctx, [item for item in pending if item.new], work)
    for item in pending:
        item.activities = [_status_activity(ctx, item, event) for event in item.change.events]

    # Known orders' buyers may not have been merged by this run: merge them first (never Ortto's default).
    # The ledger rows are needed only for them and for totals that change (an import's new orders were
    # counted in full by the engine: most units need none).
    emails = sorted({item.row.email for item in pending
                     if (item.activities and not item.new) or item.change.count_delta or item.change.total_delta})
    ledger = {row.email: row for row in PersonLedger.objects.filter(connection=ctx.connection, email__in=emails)}
    ledger.update({email: row for email, row in work.ledger_rows.items() if email in ledger or email in emails})
    needing = [item.row.email for item in pending if item.activities and not item.new]
    outcomes = {email: people._Outcome() for email in needing}
    if needing:
        placed.presence_ensure(ctx, list(dict.fromkeys(needing)), outcomes, ledger, work)

    sendable, owners = [], []  # owners: (pending index, is a status event)
    products, product_owners = [], []
    for index, item in enumerate(pending):
        if item.activities and not item.new and not outcomes[item.row.email].ok:
            item.activities = None  # not sent, not recorded: the next run tries again
            continue
        for activity in item.activities:
            sendable.append(activity)
            owners.append((index, True))
        for activity in item.products:
            products.append(activity)
            product_owners.append((index, False))
    if sendable:  # one stream of batches, as few calls as the unit's activities allow
        sendable, owners = sendable + products, owners + product_owners
    elif products:
        # Only Ordered product activities: the commit records their lines "to send" whatever Ortto answers,
        # so they stay in flight while the run commits this unit and plans the next (context.DeferredSends);
        # the answers become a later commit: the rows "sent" or "refused", and the refusals' events. A row
        # left "to send" (the worker died meanwhile) is sent again by a later run (journey_redo).
        rows = [pending[index].row for index, _ in product_owners]
        batches = list(context.chunks(list(zip(products, rows))))

        def send(ctx, batch):
            return sending.create_activities_safely(ctx, [activity for activity, _ in batch])

        def answered(batch, results):
            refused = {row.order_id for (_, row), result in zip(batch, results) if _refused(result)}
            orders = {row.order_id for _, row in batch}
            return [*(_refusal_event(ctx, row, activity, result)
                      for (activity, row), result in zip(batch, results) if _refused(result)),
                    _products_record(ctx, sent=orders - refused, refused=refused)]

        ctx.deferred.submit(ctx, send, batches, answered)
    results = sending.activities_send(ctx, sendable)
    status_failed: set[int] = set()
    products_refused: set[int] = set()
    for activity, (index, is_status), result in zip(sendable, owners, results):
        if _refused(result):
            work.events.append(_refusal_event(ctx, pending[index].row, activity, result))
            (status_failed if is_status else products_refused).add(index)
    if sendable:
        for index, item in enumerate(pending):
            if item.products:
                item.row.products_state = (OrderLedger.Products.REFUSED if index in products_refused
                                           else OrderLedger.Products.SENT)

    changed_people: dict[str, PersonLedger] = {}
    for index, item in enumerate(pending):
        row, change = item.row, item.change
        if item.activities is None or index in status_failed:
            work.counters.failed += 1
            if item.activities is None:
                work.events.append(context.event(ctx, resource="orders", bc_id=row.order_id, email=row.email,
                                                 message="Order status not sent: its person could not be merged "
                                                         "in Ortto first."))
            if item.new:  # recorded as just placed and counted in full: the next run sends the change
                row.status_id, row.fulfilled, row.refunded_amount = JUST_PLACED, False, Decimal(0)
                row.counted_total = records.order_total(item.order)
            continue
        row.status_id, row.fulfilled = change.status_id, change.fulfilled
        row.refunded_amount, row.counted_total = change.refunded, change.counted
        if not item.new:
            work.order_updates.append(row)
        if change.count_delta or change.total_delta:
            person = ledger.get(row.email)
            if person is not None:
                person.order_count = max(int(person.order_count or 0) + change.count_delta, 0)
                person.total_spent = Decimal(person.total_spent or 0) + change.total_delta
                work.ledger_rows[row.email] = person
                changed_people[row.email] = person
    work.aggregates_due.update(changed_people)  # written by orders_process, with the new orders' totals


def _refused(result: dict) -> bool:
    return bool(result.get("error")) or result.get("status") not in answers.OK_ACTIVITY_STATUSES


def _refusal_event(ctx: context.SyncContext, row: OrderLedger, activity: dict, result: dict):
    return context.event(ctx, resource="orders", bc_id=row.order_id, email=row.email, message=(
        f"Ortto refused the {_activity_name(ctx, activity)} activity: {result.get('error') or result.get('status')}"))


def products_allowance(ctx: context.SyncContext, emails: set[str], *, now) -> dict[str, int]:
    """Per email, how many more Ordered product lines Ortto keeps in the 24 h before `now` (the lines this
    connection sent; waiting ones are not sent yet)."""
    sent = dict(OrderLedger.objects.filter(connection=ctx.connection, email__in=list(emails),
                                           sent_at__gte=now - timedelta(hours=24))
                .exclude(products_state=OrderLedger.Products.WAITING)
                .values("email").annotate(n=Sum("products_sent")).values_list("email", "n"))
    return {email: max(placed.ACTIVITY_DAILY_LIMIT - (sent.get(email) or 0), 0) for email in emails}


def _left_out_event(ctx: context.SyncContext, email: str, count: int):
    return context.event(ctx, resource="orders", email=email, level=SyncEvent.Level.INFO, message=(
        f"{count} ordered product(s) not sent as Ordered product activities: Ortto keeps at most "
        f"{placed.ACTIVITY_DAILY_LIMIT} of one activity per person per 24 hours."))


def _products_wait(placed: list[_Pending]) -> None:
    """An initial import: each new order's lines wait in the ledger with their bodies; placed_send sends them
    after the last order page, each buyer's newest orders first (Ortto's 50 a day keep the newest)."""
    for item in placed:
        if item.products:
            item.row.products_state = OrderLedger.Products.WAITING
            item.row.products_activities, item.row.products_sent = item.products, len(item.products)
        item.products = []


def _products_limit(ctx: context.SyncContext, placed: list[_Pending], work: context.PageWork) -> None:
    """Ortto keeps at most 50 events of one activity per person per 24 h and drops the rest silently
    (docs/ortto-contract.md, "Limits"): Ordered product lines beyond that are not sent, and the run says so."""
    emails = {item.row.email for item in placed if item.products}
    if not emails:
        return
    allowance = products_allowance(ctx, emails, now=timezone.now())
    left_out: dict[str, int] = {}
    for item in placed:
        email = item.row.email
        if len(item.products) > allowance.get(email, 0):
            left_out[email] = left_out.get(email, 0) + len(item.products) - allowance.get(email, 0)
            item.products = item.products[:allowance.get(email, 0)]
        allowance[email] = allowance.get(email, 0) - len(item.products)
        item.row.products_sent = len(item.products)
        item.row.products_state = OrderLedger.Products.TO_SEND if item.products else OrderLedger.Products.NONE
    for email, count in left_out.items():
        work.events.append(_left_out_event(ctx, email, count))


def _products_of(ctx: context.SyncContext, order: dict, email: str) -> list[dict]:
    items = records.order_line_items(order) or []
    return records.ordered_product_activities(
        order=order, email=email, store_hash=ctx.store.store_hash, store_name=ctx.store.name,
        catalog=facts_for(ctx, [item.get("product_id") for item in items]),
        **schema_journey_target(ctx.connection, activities.ORDERED_PRODUCT))


def _products_record(ctx: context.SyncContext, *, sent: set[int], refused: set[int]):
    """A commit: what Ortto answered for these orders' Ordered product activities."""
    connection = ctx.connection

    def commit():
        OrderLedger.objects.filter(connection=connection, order_id__in=sent).update(
            products_state=OrderLedger.Products.SENT)
        OrderLedger.objects.filter(connection=connection, order_id__in=refused).update(
            products_state=OrderLedger.Products.REFUSED)

    return commit


# --- Placed order and Ordered product, newest first --------------------------------------------------

# Buyers whose waiting Placed order and Ordered product activities one step of placed_flush sends.
PLACED_CHUNK_BUYERS = 500
_PLACED_WAITING = (OrderLedger.Placed.TO_SEND, OrderLedger.Placed.REFUSED)
# The bodies stay in the database until their activities are chosen: a step holds a batch's worth.
_BODIES = ("placed_activity", "products_activities")


def _waiting_rows(ctx: context.SyncContext, *, earlier_runs: bool):
    rows = OrderLedger.objects.filter(connection=ctx.connection).filter(
        Q(placed_state__in=_PLACED_WAITING) | Q(products_state=OrderLedger.Products.WAITING))
    return rows.filter(sent_at__lt=ctx.run.started_at) if earlier_runs else rows


def placed_waiting_emails(ctx: context.SyncContext, *, after: str, earlier_runs: bool = False) -> list[str]:
    """The next buyers (by email, after `after`) whose Placed order or Ordered product activities wait in
    the ledger."""
    rows = _waiting_rows(ctx, earlier_runs=earlier_runs).filter(email__gt=after)
    return list(rows.order_by("email").values_list("email", flat=True).distinct()[:PLACED_CHUNK_BUYERS])


@dataclass
class PlacedStep:
    """One step of placed_send, its activities in flight: `finish()` waits for Ortto's answers and returns the
    step's work (to commit); `carry` / `carry_products` are known at once, so the next step can start before
    this one is committed (runs._placed_flush). `abandon()` waits for the calls without their answers."""

    carry: list
    carry_products: list
    finish: object
    abandon: object = lambda: None


def placed_send(ctx: context.SyncContext, emails: list[str], *, earlier_runs: bool = False, carried: list[int] = (),
                carried_products: list = (), last: bool = True) -> tuple[context.PageWork, list[int], list]:
    """placed_start, then its finish: (work, ids carried, [id, lines] carried)."""
    step = placed_start(ctx, emails, earlier_runs=earlier_runs, carried=carried, carried_products=carried_products,
                        last=last)
    return step.finish(), step.carry, step.carry_products


def placed_start(ctx: context.SyncContext, emails: list[str], *, earlier_runs: bool = False, carried: list[int] = (),
                 carried_products: list = (), last: bool = True) -> PlacedStep:
    """Start sending the waiting Placed order and Ordered product activities of these buyers by one rule: per buyer,
    the newest orders (by id) first, as many of each activity as Ortto's 50 a day still allow, in batches of
    100 per activity; the older orders are summarized (counted in the totals already, with the run's note),
    their lines, and lines beyond the 50, left out (with a note). An initial import records every order and
    its lines "waiting" and calls this after its last order page, so a buyer with 120 orders keeps the newest
    50 orders and the newest 50 lines, not the oldest. Lines go only with an order that has its Placed order
    (as in every other run). A refused Placed order stays in the ledger with its body ("refused") for the next
    run (`earlier_runs`: only what earlier runs left); refused lines are the next run's (journey_redo).

    Batches stay full: unless this is the `last` step, the chosen activities that would make a part-full
    batch are not sent; their ledger ids (with the number of lines) are returned, for the next step to send
    first (`carried`, `carried_products`), so the import costs ceil(activities / 100) calls per activity
    (lines travel with their order: an order whose lines straddle the cut waits whole). The calls are in
    flight when this returns: the step's `finish()` waits for them (PlacedStep)."""
    work = context.PageWork()
    lines_carried = {int(pk): int(n) for pk, n in carried_products}
    carried_ids = {int(pk) for pk in carried} | set(lines_carried)
    loaded = {row.pk: row for row in OrderLedger.objects.filter(pk__in=carried_ids).defer(*_BODIES)}
    rows = list(_waiting_rows(ctx, earlier_runs=earlier_runs).filter(email__in=emails).exclude(pk__in=carried_ids)
                .defer(*_BODIES).order_by("email", "-order_id"))
    if not rows and not loaded:
        return PlacedStep([], [], lambda: work)
    now = timezone.now()
    if earlier_runs:  # a later run: the buyer may have been deleted in Ortto since; never re-create them subscribed
        ledger = people.ledger_load(ctx, emails)
        outcomes = {email: people._Outcome() for email in emails}
        placed.presence_ensure(ctx, emails, outcomes, ledger, work)
        rows = [row for row in rows if outcomes[row.email].ok]
    placed_left = placed.activity_allowance(ctx, set(emails), now=now)
    lines_left = products_allowance(ctx, set(emails), now=now)
    chosen = [loaded[int(pk)] for pk in carried if int(pk) in loaded]
    lines = [(loaded[pk], n) for pk, n in lines_carried.items() if pk in loaded]
    summarized: dict[str, int] = {}
    left_out: dict[str, int] = {}
    placed_done, lines_done = [], []  # rows whose Placed order (lines) stand decided
    for row in rows:  # each buyer's newest order first
        if row.placed_state in _PLACED_WAITING:
            if placed_left[row.email] > 0:
                placed_left[row.email] -= 1
                chosen.append(row)
            else:
                summarized[row.email] = summarized.get(row.email, 0) + 1
                row.summarized, row.placed_state, row.placed_activity = True, OrderLedger.Placed.SENT, None
                work.counters.summarized += 1
                placed_done.append(row)
        if row.products_state == OrderLedger.Products.WAITING:
            count = 0 if row.summarized else min(row.products_sent, lines_left[row.email])
            lines_left[row.email] -= count
            if count < row.products_sent and not row.summarized:
                left_out[row.email] = left_out.get(row.email, 0) + row.products_sent - count
            if count:
                lines.append((row, count))
            else:
                row.products_state, row.products_activities, row.products_sent = OrderLedger.Products.NONE, None, 0
                lines_done.append(row)
    for email, count in summarized.items():
        work.events.append(placed.summarized_event(ctx, email, count))
    for email, count in left_out.items():
        work.events.append(_left_out_event(ctx, email, count))

    tail = [] if last else chosen[len(chosen) - len(chosen) % context.BATCH_SIZE:]
    chosen = chosen[:len(chosen) - len(tail)]
    keep = sum(count for _, count in lines)
    keep -= 0 if last else keep % context.BATCH_SIZE
    lines_sent, lines_tail, total = [], [], 0
    for row, count in lines:
        if not lines_tail and total + count <= keep:
            lines_sent.append((row, count))
            total += count
        else:
            lines_tail.append((row, count))
    bodies = dict(OrderLedger.objects.filter(pk__in=[row.pk for row in chosen])
                  .values_list("pk", "placed_activity"))
    line_bodies = dict(OrderLedger.objects.filter(pk__in=[row.pk for row, _ in lines_sent])
                       .values_list("pk", "products_activities"))
    placed_batches = list(context.chunks(chosen))
    line_batches = list(context.chunks([(row, body) for row, count in lines_sent
                                       for body in (line_bodies.get(row.pk) or [])[:count]]))
    sends = context.send_started(sending.create_activities_safely, ctx,
                                 [[bodies[row.pk] for row in batch] for batch in placed_batches]
                                 + [[body for _, body in batch] for batch in line_batches])
    del bodies, line_bodies  # the batches hold them now

    def finish() -> context.PageWork:
        _placed_answered(ctx, work, sends(), placed_batches, line_batches, lines_sent, placed_done, lines_done,
                         now=now, earlier_runs=earlier_runs)
        return work

    return PlacedStep([row.pk for row in tail], [[row.pk, count] for row, count in lines_tail], finish,
                      sends.abandoned)


def _placed_answered(ctx: context.SyncContext, work: context.PageWork, answers: list, placed_batches: list,
                     line_batches: list, lines_sent: list, placed_done: list, lines_done: list, *, now,
                     earlier_runs: bool) -> None:
    """What Ortto answered for one step's Placed order and Ordered product activities, into its work."""
    resolved, placed_refused = [], []
    for batch, results in zip(placed_batches, answers):
        for row, result in zip(batch, results):
            if _refused(result):
                work.counters.failed += 1
                row.placed_state = OrderLedger.Placed.REFUSED
                placed_refused.append(row)
                work.events.append(context.event(ctx, resource="orders", bc_id=row.order_id, email=row.email, message=(
                    f"Ortto refused the Placed order activity: {result.get('error') or result.get('status')}")))
            else:
                work.counters.created += 1
                row.placed_state, row.placed_activity, row.sent_at = OrderLedger.Placed.SENT, None, now
                resolved.append(row.order_id)
                placed_done.append(row)
    lines_refused = set()
    for batch, results in zip(line_batches, answers[len(placed_batches):]):
        for (row, body), result in zip(batch, results):
            if _refused(result):
                lines_refused.add(row.pk)
                work.events.append(_refusal_event(ctx, row, body, result))
    for row, count in lines_sent:
        row.products_state = (OrderLedger.Products.REFUSED if row.pk in lines_refused
                              else OrderLedger.Products.SENT)
        row.products_sent, row.products_activities, row.sent_at = count, None, now
        lines_done.append(row)
    connection = ctx.connection

    def commit():
        rows_update(OrderLedger, placed_done, ["summarized", "placed_state", "placed_activity", "sent_at"])
        rows_update(OrderLedger, placed_refused, ["placed_state"])
        rows_update(OrderLedger, lines_done, ["products_state", "products_sent", "products_activities", "sent_at"])
        if earlier_runs and resolved:
            SyncEvent.objects.filter(run__connection=connection, resource="orders", bc_id__in=resolved,
                                     level=SyncEvent.Level.ERROR, resolved=False,
                                     message__startswith="Ortto refused the Placed order activity"
                                     ).update(resolved=True)

    work.commits.append(commit)


# Orders whose Ordered product activities a run sends again at most (the rest wait for the next run).
REDO_LIMIT = 500


def journey_redo(ctx: context.SyncContext, *, limit: int = REDO_LIMIT) -> context.PageWork:
    """Send again, once, the Ordered product activities an earlier run left refused, or "to send" (it did not
    live to hear Ortto's answer); a "Resync failed records" run also those refused twice.

    The lines are rebuilt from the order read again by id (a few range requests; none when nothing waits),
    the same lines as before (the first `products_sent`, Ortto's daily 50 having been applied then), with
    the same keys: a line Ortto took before a crash is the same activity to it (docs/ortto-contract.md,
    `key`). Each order's lines then stand "sent" or "refused again"; an order gone from BigCommerce is
    dropped with a note. Earlier refusals of an order that goes through are marked resolved."""
    work = context.PageWork()
    states = [OrderLedger.Products.TO_SEND, OrderLedger.Products.REFUSED]
    if ctx.run.kind == SyncRun.Kind.RETRY_FAILED:
        states.append(OrderLedger.Products.REFUSED_AGAIN)
    # Only what earlier runs left: this run's own refusals are the next run's to send.
    rows = list(OrderLedger.objects.filter(connection=ctx.connection, products_state__in=states,
                                           sent_at__lt=ctx.run.started_at).order_by("order_id")[:limit])
    if not rows:
        return work
    orders = {int(o["id"]): o for o in orders_by_id(ctx.bigcommerce, [row.order_id for row in rows])}
    emails = list(dict.fromkeys(row.email for row in rows if row.order_id in orders))
    ledger = people.ledger_load(ctx, emails)
    outcomes = {email: people._Outcome() for email in emails}
    placed.presence_ensure(ctx, emails, outcomes, ledger, work)
    sendable, owners, changed = [], [], []
    for row in rows:
        order = orders.get(row.order_id)
        if order is None:
            row.products_state = OrderLedger.Products.NONE
            changed.append(row)
            work.events.append(context.event(ctx, resource="orders", bc_id=row.order_id, email=row.email,
                                             level=SyncEvent.Level.INFO, message=(
                "Ordered product activities not sent again: the order is no longer in BigCommerce.")))
            continue
        if not outcomes[row.email].ok:
            continue  # its person could not be merged first: still waiting, the next run tries again
        for activity in _products_of(ctx, order, row.email)[:row.products_sent]:
            sendable.append(activity)
            owners.append(row)
    results = sending.activities_send(ctx, sendable)
    refused: set[int] = set()
    for activity, row, result in zip(sendable, owners, results):
        if _refused(result):
            refused.add(row.order_id)
            work.events.append(_refusal_event(ctx, row, activity, result))
    done = {row.order_id: row for row in owners}
    for order_id, row in done.items():
        row.products_state = OrderLedger.Products.REFUSED_AGAIN if order_id in refused else OrderLedger.Products.SENT
        changed.append(row)
    resolved = [order_id for order_id in done if order_id not in refused]
    connection = ctx.connection

    def resolve():
        rows_update(OrderLedger, changed, ["products_state"])
        SyncEvent.objects.filter(run__connection=connection, resource="orders", bc_id__in=resolved,
                                 level=SyncEvent.Level.ERROR, resolved=False,
                                 message__startswith=f"Ortto refused the {activities.ORDERED_PRODUCT.name} activity"
                                 ).update(resolved=True)

    work.commits.append(resolve)
    ctx.log.info("Ordered product sent again for %d order(s), %d refused", len(done) - len(refused), len(refused))
    return work


def _status_activity(ctx: context.SyncContext, item: _Pending, event: str) -> dict:
    common = dict(order=item.order, email=item.row.email, store_hash=ctx.store.store_hash,
                  store_name=ctx.store.name)
    if event == "fulfilled":
        return records.fulfilled_activity(
            **common, **schema_journey_target(ctx.connection, activities.FULFILLED_ORDER))
    if event == "cancelled":
        return records.cancelled_activity(
            **common, **schema_journey_target(ctx.connection, activities.CANCELLED_ORDER))
    return records.refunded_activity(
        **common, **schema_journey_target(ctx.connection, activities.REFUNDED_ORDER),
        amount=item.change.refund_amount, refunded_total=item.change.refunded)


def _activity_name(ctx: context.SyncContext, activity: dict) -> str:
    for spec in activities.JOURNEY:
        if schema_journey_id(ctx.connection, spec) == activity.get("activity_id"):
            return spec.name
    return activity.get("activity_id", "")
