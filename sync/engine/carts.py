"""Abandoned cart and Cart recovered, from BigCommerce's cart webhooks.

`store/cart/abandoned` (webhooks.v3.yml: data {type cart, id <cart uuid>, token}) fires after an hour
without activity. The webhook run reads the cart while it exists (GET /v3/carts/{id}, carts.v3.yml) and
sends Abandoned cart with the items, value, currency and a link that restores the cart on the storefront,
built from the abandoned-cart token (settings.BIGCOMMERCE_CART_RECOVERY_URL). A cart without an email (an
anonymous shopper) is skipped and counted; a cart gone before it was read (404: converted, deleted or
expired) is counted, once, and not retried. `store/cart/converted` (data {type cart, id, orderId}) sends
Cart recovered for a cart the bridge reported abandoned.

Each cart is remembered in `CartLedger`, so each of the two activities goes out at most once per cart and
connection; their keys (sync/engine/activities.py) make a resent one the same activity to Ortto.

The shopper of a cart may be unknown to Ortto. Such a person is merged first like any new person (R2:
unsubscribed, with the reason, by a merge that cannot change an existing person), never created by the
activity with Ortto's default (subscribed); a known one gets the same presence merge as a buyer
(placed.presence_ensure). docs/design.md §3.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from stores.models import WebhookEvent
from sync.catalog.mirror import facts_for
from sync.engine import activities, answers, context, mapping, people, sending
from sync.engine.orders import placed
from sync.engine.rules import NO_SIGNAL
from sync.models import CartLedger, PersonLedger, SyncEvent, SyncRun
from sync.ortto.schema import schema_journey_target

ABANDONED = "store/cart/abandoned"
CONVERTED = "store/cart/converted"


@dataclass(frozen=True)
class CartEvent:
    scope: str
    cart_id: str
    token: str = ""
    order_id: int | None = None


def cart_events(event_ids: list[int]) -> list[CartEvent]:
    """The cart deliveries among a webhook run's events, in the order they arrived."""
    events = []
    for scope, payload in (WebhookEvent.objects.filter(pk__in=event_ids, resource="carts").order_by("id")
                           .values_list("scope", "payload")):
        data = (payload or {}).get("data") or {}
        if not isinstance(data.get("id"), str):
            continue
        events.append(CartEvent(scope=scope, cart_id=data["id"], token=str(data.get("token") or ""),
                                order_id=int(data["orderId"]) if str(data.get("orderId") or "").isdigit() else None))
    return events


def recovery_url(*, store, token: str, cart_id: str) -> str:
    return settings.BIGCOMMERCE_CART_RECOVERY_URL.format(
        domain=store.domain or f"store-{store.store_hash}.mybigcommerce.com", store_hash=store.store_hash,
        token=token, cart_id=cart_id)


def carts_process(ctx: context.SyncContext, events: list[CartEvent]) -> context.PageWork:
    work = context.PageWork()
    work.counters.fetched = len(events)
    if not events:
        return work
    known = {row.cart_id: row for row in
             CartLedger.objects.filter(connection=ctx.connection, cart_id__in={e.cart_id for e in events})}
    now = timezone.now()
    new_rows: dict[str, CartLedger] = {}
    sends: list[tuple[CartLedger, dict, str]] = []  # (ledger row, activity, what)

    for event in events:
        if event.scope == ABANDONED:
            if event.cart_id in known or event.cart_id in new_rows:
                work.counters.unchanged += 1
                continue
            row = CartLedger(connection=ctx.connection, cart_id=event.cart_id[:64], token=event.token[:128],
                             abandoned_at=now, outcome=CartLedger.Outcome.SENT)
            new_rows[event.cart_id] = row
            cart = ctx.bigcommerce.cart(event.cart_id)
            if cart is None:
                row.outcome = CartLedger.Outcome.EXPIRED
                _skip(ctx, work, event, "Abandoned cart gone before it could be read (converted, deleted or "
                                        "expired): not sent.")
                continue
            email = cart_email(ctx, cart)
            if not mapping.email_is_valid(email):
                row.outcome = CartLedger.Outcome.ANONYMOUS
                _skip(ctx, work, event, "Abandoned cart without an email address (anonymous shopper): not sent.")
                continue
            row.email, row.value = email, activities.cart_value(cart)
            row.currency = activities.cart_currency(cart)[:3]
            sends.append((row, activities.abandoned_cart_activity(
                cart=cart, email=email, store_hash=ctx.store.store_hash, store_name=ctx.store.name,
                **schema_journey_target(ctx.connection, activities.ABANDONED_CART),
                catalog=facts_for(ctx, [i.get("product_id") for i in activities.cart_line_items(cart)]),
                recovery_url=recovery_url(store=ctx.store, token=event.token, cart_id=event.cart_id)), "abandoned"))
        elif event.scope == CONVERTED:
            row = known.get(event.cart_id) or new_rows.get(event.cart_id)
            if row is None or row.outcome != CartLedger.Outcome.SENT or row.recovered_at or not row.email:
                work.counters.unchanged += 1  # never reported abandoned: nothing was recovered
                continue
            row.order_id = event.order_id
            sends.append((row, activities.cart_recovered_activity(
                cart_id=row.cart_id, order_id=event.order_id or "", email=row.email,
                store_hash=ctx.store.store_hash, store_name=ctx.store.name,
                **schema_journey_target(ctx.connection, activities.CART_RECOVERED),
                value=Decimal(row.value) if row.value is not None else None, currency=row.currency), "recovered"))

    sends = over_daily_limit(ctx, sends, work, now=now)
    ok_emails = people_ensure(ctx, [row.email for row, _, _ in sends], work)
    sendable = [(row, activity, what) for row, activity, what in sends if row.email in ok_emails]
    changed: dict[str, CartLedger] = {}
    for row, _, what in sends:
        if row.email not in ok_emails:
            _failed(ctx, work, row, what, "its person could not be merged in Ortto first")
            if what == "recovered":
                changed[row.cart_id] = row  # the ledger remembers it: the next run sends it again
    results = sending.activities_send(ctx, [a for _, a, _ in sendable])
    for (row, _, what), result in zip(sendable, results):
        if result.get("error") or result.get("status") not in answers.OK_ACTIVITY_STATUSES:
            _failed(ctx, work, row, what, f"Ortto refused it: {result.get('error') or result.get('status')}")
            if what == "recovered":
                changed[row.cart_id] = row  # the ledger remembers it: the next run sends it again
            continue
        work.counters.created += 1
        if what == "recovered":
            row.recovered_at = now
        changed[row.cart_id] = row

    def commit():
        CartLedger.objects.bulk_create([row for row in new_rows.values() if row.pk is None], ignore_conflicts=True)
        for row in changed.values():
            if row.pk is not None:
                CartLedger.objects.filter(pk=row.pk).update(order_id=row.order_id, recovered_at=row.recovered_at,
                                                            recovery=row.recovery)

    work.commits.append(commit)
    return work


def over_daily_limit(ctx: context.SyncContext, sends: list, work: context.PageWork, *, now) -> list:
    """Ortto keeps at most 50 events of one activity per person per 24 h and drops the rest without a word
    (docs/ortto-contract.md, "Limits"): a shopper's Abandoned carts beyond 50 in the 24 h before `now` (counted
    from the carts this connection reported) are not sent; their ledger rows say `limited`, and they are counted
    in the run's `summarized` counter with a note. The rest of `sends` is answered."""
    emails = {row.email for row, _, what in sends if what == "abandoned"}
    if not emails:
        return sends
    sent = dict(CartLedger.objects.filter(connection=ctx.connection, email__in=emails, outcome=CartLedger.Outcome.SENT,
                                          abandoned_at__gte=now - timedelta(hours=24))
                .values("email").annotate(n=Count("id")).values_list("email", "n"))
    left = {email: max(placed.ACTIVITY_DAILY_LIMIT - sent.get(email, 0), 0) for email in emails}
    kept, limited = [], Counter()
    for row, activity, what in sends:
        if what == "abandoned":
            if left[row.email] <= 0:
                row.outcome = CartLedger.Outcome.LIMITED
                limited[row.email] += 1
                continue
            left[row.email] -= 1
        kept.append((row, activity, what))
    for email, count in limited.items():
        work.counters.summarized += count
        work.events.append(context.event(ctx, resource="carts", email=email, level=SyncEvent.Level.INFO, message=(
            f"{count} abandoned cart(s) not sent as Abandoned cart activities: Ortto keeps at most "
            f"{placed.ACTIVITY_DAILY_LIMIT} of one activity per person per 24 hours.")))
    return kept


def cart_email(ctx: context.SyncContext, cart: dict) -> str:
    """The cart's email, or a signed-in shopper's as the bridge synced it."""
    email = mapping.clean_email(cart.get("email"))
    if email or not cart.get("customer_id"):
        return email
    return (PersonLedger.objects.filter(connection=ctx.connection, bc_customer_id=int(cart["customer_id"]))
            .values_list("email", flat=True).first() or "")


def people_ensure(ctx: context.SyncContext, emails: list[str], work: context.PageWork, *,
                   source: str = "cart") -> set[str]:
    """Merge the carts' shoppers before their activities: new ones under R2, known ones by presence."""
    emails = list(dict.fromkeys(emails))
    if not emails:
        return set()
    ledger = people.ledger_load(ctx, emails)
    persons = [mapping.PersonInput(email=email, fields={"str::email": email}, source=source, signal=NO_SIGNAL)
               for email in emails if email not in ledger]
    person_work = context.PageWork()
    outcomes = people.people_sync(ctx, "carts", persons, person_work, ledger=ledger, update_fields=False)
    work.events += person_work.events
    work.ledger_rows.update(person_work.ledger_rows)
    work.people_synced += person_work.people_synced
    for email in emails:
        outcomes.setdefault(email, people._Outcome())
    placed.presence_ensure(ctx, [e for e in emails if e in ledger], outcomes, ledger, work)
    return {email for email in emails if outcomes[email].ok and email in ledger}


def _skip(ctx, work: context.PageWork, event: CartEvent, message: str) -> None:
    work.counters.skipped += 1
    work.events.append(context.event(ctx, resource="carts", level=SyncEvent.Level.INFO,
                                     message=f"Cart {event.cart_id}: {message}"))


def _failed(ctx, work: context.PageWork, row: CartLedger, what: str, reason: str) -> None:
    work.counters.failed += 1
    name = "Abandoned cart" if what == "abandoned" else "Cart recovered"
    if what == "abandoned":
        row.outcome = CartLedger.Outcome.FAILED
    else:
        row.recovery = CartLedger.Recovery.FAILED
    work.events.append(context.event(ctx, resource="carts", email=row.email,
                                     message=f"{name} for cart {row.cart_id} not sent: {reason}."))


# Carts whose Abandoned cart a run sends again at most (the rest wait for the next run).
REDO_LIMIT = 200


def carts_redo(ctx: context.SyncContext, *, limit: int = REDO_LIMIT) -> context.PageWork:
    """Send again, once, the Abandoned cart and Cart recovered activities an earlier run left not sent
    (Ortto refused them, or their shopper could not be merged first; a "Resync failed records" run also
    those that failed twice, which otherwise wait). Cart recovered is rebuilt from the ledger (the converted
    cart is gone from the API; its order id, value and currency were recorded); an abandoned cart is read
    again (one request per such cart, none when nothing waits): gone by now, it is counted as expired. Sent,
    the row says so and the earlier failure is marked resolved. The key is the one of the first attempt, so Ortto sees one activity
    (docs/ortto-contract.md, `key`). A cart still in flight when a worker died needs none of this: its run
    resumes before the cart step's commit and sends it again."""
    work = context.PageWork()
    outcomes = [CartLedger.Outcome.FAILED]
    recoveries = [CartLedger.Recovery.FAILED]
    if ctx.run.kind == SyncRun.Kind.RETRY_FAILED:
        outcomes.append(CartLedger.Outcome.FAILED_AGAIN)
        recoveries.append(CartLedger.Recovery.FAILED_AGAIN)
    # Only what earlier runs left: this run's own failures are the next run's to send.
    earlier = CartLedger.objects.filter(connection=ctx.connection, abandoned_at__lt=ctx.run.started_at).exclude(email="")
    rows = list(earlier.filter(outcome__in=outcomes).order_by("pk")[:limit])
    recovered = list(earlier.filter(recovery__in=recoveries, recovered_at__isnull=True).order_by("pk")[:limit])
    if not rows and not recovered:
        return work
    sends, gone = [], []
    for row in recovered:
        # Built from the ledger, as the first time (a converted cart is gone from the API): the same key.
        sends.append((row, activities.cart_recovered_activity(
            cart_id=row.cart_id, order_id=row.order_id or "", email=row.email, store_hash=ctx.store.store_hash,
            store_name=ctx.store.name, **schema_journey_target(ctx.connection, activities.CART_RECOVERED),
            value=Decimal(row.value) if row.value is not None else None, currency=row.currency), "recovered"))
    for row in rows:
        cart = ctx.bigcommerce.cart(row.cart_id)
        if cart is None:
            gone.append(row)
            continue
        sends.append((row, activities.abandoned_cart_activity(
            cart=cart, email=row.email, store_hash=ctx.store.store_hash, store_name=ctx.store.name,
            **schema_journey_target(ctx.connection, activities.ABANDONED_CART),
            catalog=facts_for(ctx, [i.get("product_id") for i in activities.cart_line_items(cart)]),
            recovery_url=recovery_url(store=ctx.store, token=row.token, cart_id=row.cart_id)), "abandoned"))
    ok_emails = people_ensure(ctx, [row.email for row, _, _ in sends], work)
    sendable = [(row, activity, what) for row, activity, what in sends if row.email in ok_emails]
    results = sending.activities_send(ctx, [a for _, a, _ in sendable])
    sent, refused, recovered_sent, recovered_refused = [], [], [], []
    now = timezone.now()
    for (row, _, what), result in zip(sendable, results):
        is_recovery = what == "recovered"
        name = "Cart recovered" if is_recovery else "Abandoned cart"
        if result.get("error") or result.get("status") not in answers.OK_ACTIVITY_STATUSES:
            (recovered_refused if is_recovery else refused).append(row)
            work.events.append(context.event(ctx, resource="carts", email=row.email, message=(
                f"{name} for cart {row.cart_id} not sent again: Ortto refused it: "
                f"{result.get('error') or result.get('status')}.")))
            continue
        (recovered_sent if is_recovery else sent).append(row)
    connection = ctx.connection

    def commit():
        CartLedger.objects.filter(pk__in=[row.pk for row in sent]).update(outcome=CartLedger.Outcome.SENT)
        CartLedger.objects.filter(pk__in=[row.pk for row in gone]).update(outcome=CartLedger.Outcome.EXPIRED)
        CartLedger.objects.filter(pk__in=[row.pk for row in refused]).update(outcome=CartLedger.Outcome.FAILED_AGAIN)
        CartLedger.objects.filter(pk__in=[row.pk for row in recovered_sent]).update(
            recovery=CartLedger.Recovery.NONE, recovered_at=now)
        CartLedger.objects.filter(pk__in=[row.pk for row in recovered_refused]).update(
            recovery=CartLedger.Recovery.FAILED_AGAIN)
        for name, done in (("Abandoned cart", sent), ("Cart recovered", recovered_sent)):
            for row in done:
                SyncEvent.objects.filter(run__connection=connection, resource="carts", level=SyncEvent.Level.ERROR,
                                         resolved=False, message__startswith=f"{name} for cart {row.cart_id} not sent"
                                         ).update(resolved=True)

    work.commits.append(commit)
    ctx.log.info("Abandoned cart sent again for %d cart(s); %d gone; Cart recovered sent again for %d",
                 len(sent), len(gone), len(recovered_sent))
    return work
