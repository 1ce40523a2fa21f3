"""The product journeys inside a sync run: keep the catalog mirror current, turn cart line-item deliveries
into Added to cart, release the shoppers waiting on a variant that is back in stock, and send every product
activity the bridge owes Ortto (ProductActivity rows: written by the run itself, or by the storefront
endpoints in sync/catalog/storefront.py, which then ask for a run).

Which catalog read a run makes:
- initial and full runs read the whole catalog first, so their Ordered product activities carry links;
- a sweep (or Sync now) reads the products changed since the newest change the mirror holds;
  both page by page by ascending id, each page committed with the last id in the run's checkpoint
  (`catalog`), so a run cut short or out of time resumes at the next page (catalog_read_page);
- a webhook run re-reads the products its store/product/* and store/sku/* deliveries name.
A token without the catalog scope (a store installed before it was asked for) costs a warning, not the run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from stores.bigcommerce import BigCommerceAuthError
from stores.models import WebhookEvent
from sync.catalog import activities, mirror
from sync.engine import carts, context, sending
from sync.engine.activities import cart_line_items
from sync.engine.answers import OK_ACTIVITY_STATUSES
from sync.engine.orders.placed import ACTIVITY_DAILY_LIMIT
from sync.models import ProductActivity, StockWait, SyncEvent, SyncRun
from sync.ortto.schema import schema_journey_target

# Product activities one run sends at most (the rest wait for the next run, which the run's end asks for).
SEND_LIMIT = 1000
# A product activity Ortto refused, or whose shopper could not be merged, is tried this many runs.
MAX_ATTEMPTS = 3
ADDED_SCOPES = ("store/cart/lineItem/created", "store/cart/lineItem/updated")
# Where a product activity's shopper was met, for a new person's reason (sync/engine/rules.py, reason_created).
SOURCES = {"cart": {ProductActivity.Kind.ADDED_TO_CART},
           "stock": {ProductActivity.Kind.WAITING_ON_STOCK, ProductActivity.Kind.BACK_IN_STOCK},
           "storefront": {ProductActivity.Kind.VIEWED_PRODUCT}}


def catalog_read_start(ctx: context.SyncContext) -> dict:
    """Where this run's catalog read starts (its checkpoint's `catalog`): the whole catalog for initial and full
    runs, the changes since the newest one the mirror holds for a sweep or Sync now (fixed now, so a resumed
    read asks the same question), nothing for a webhook run (catalog_step re-reads the products it names)."""
    run = ctx.run
    if run.kind in (SyncRun.Kind.INITIAL, SyncRun.Kind.FULL):
        return {"after": 0, "since": None, "done": False}
    if run.kind in (SyncRun.Kind.INCREMENTAL, SyncRun.Kind.MANUAL) and "webhook" not in run.checkpoint:
        since = mirror.mirror_since(ctx.store)
        return {"after": 0, "since": since.isoformat() if since else None, "done": False}
    return {"after": 0, "since": None, "done": True}


def catalog_read_page(ctx: context.SyncContext, state: dict) -> tuple[context.PageWork, dict]:
    """One page of the run's catalog read, from `state` (catalog_read_start); answer its work (products read,
    counted under `catalog`) and the state after it, which the run commits with the page."""
    work, state = context.PageWork(), dict(state)
    since = datetime.fromisoformat(state["since"]) if state.get("since") else None
    try:
        page = mirror.mirror_read_page(ctx.store, ctx.bigcommerce, after_id=int(state.get("after") or 0),
                                       modified_since=since)
    except BigCommerceAuthError:
        work.events.append(_catalog_refused(ctx))
        state["done"] = True
        return work, state
    work.counters.fetched = page.read
    work.counters.unchanged = page.read  # mirrored, never sent themselves (sync/connect/selectors.py's words)
    if page.restocked:
        ctx.log.info("catalog: %d variant(s) back in stock", len(page.restocked))
    state["after"], state["done"] = page.last_id, page.done
    return work, state


def _catalog_refused(ctx: context.SyncContext) -> SyncEvent:
    return context.event(ctx, resource="catalog", level=SyncEvent.Level.WARNING, message=(
        "BigCommerce refused to list the catalog (the app's token lacks the Products scope): product "
        "activities go without links and pictures until the app is reinstalled."))


def catalog_step(ctx: context.SyncContext) -> tuple[context.PageWork, context.PageWork]:
    """After the run's catalog read (catalog_read_page): a webhook run's re-read of the products its deliveries
    name, then the product journeys. Answers two works: the products re-read (counted under `catalog`) and the
    product activities (counted under `product_activities`), so neither line mixes the other's numbers."""
    catalog_work, work = context.PageWork(), context.PageWork()
    run, store = ctx.run, ctx.store
    if "webhook" in run.checkpoint:
        try:
            read, restocked = mirror.mirror_refresh(store, ctx.bigcommerce,
                                                    product_ids_of(run.checkpoint["webhook"]["event_ids"]))
        except BigCommerceAuthError:
            read, restocked = 0, set()
            catalog_work.events.append(_catalog_refused(ctx))
        catalog_work.counters.fetched = read
        catalog_work.counters.unchanged = read
        if restocked:
            ctx.log.info("catalog: %d variant(s) back in stock", len(restocked))
        added_to_cart_record(ctx, run.checkpoint["webhook"]["event_ids"], work)
    waits_release(store)
    activities_send(ctx, work)
    # The product activities' line adds up: each one sent, left out (Ortto's 50 a day), skipped or failed.
    counts = work.counters
    counts.fetched = counts.created + counts.summarized + counts.skipped + counts.failed
    return catalog_work, work


def product_ids_of(event_ids: list[int]) -> set[int]:
    return set(WebhookEvent.objects.filter(pk__in=event_ids, resource="products").values_list("resource_id", flat=True))


# --- Added to cart -------------------------------------------------------------------------------------


def added_to_cart_record(ctx: context.SyncContext, event_ids: list[int], work: context.PageWork) -> int:
    """One Added to cart per cart and product, for the line items these deliveries name, when the cart's
    shopper is known (an e-mail, or a customer the bridge synced). The cart is read once per run."""

    lines: dict[str, set[str]] = {}
    for scope, payload in (WebhookEvent.objects.filter(pk__in=event_ids, resource="cart_items")
                           .values_list("scope", "payload")):
        data = (payload or {}).get("data") or {}
        if scope in ADDED_SCOPES and isinstance(data.get("cartId"), str) and isinstance(data.get("id"), str):
            lines.setdefault(data["cartId"], set()).add(data["id"])
    rows = []
    for cart_id, line_ids in lines.items():
        cart = ctx.bigcommerce.cart(cart_id)
        if cart is None:
            work.counters.skipped += len(line_ids)  # the cart is gone
            continue
        email = carts.cart_email(ctx, cart)
        if not email:
            work.counters.skipped += len(line_ids)  # an anonymous shopper: Ortto's own tracking has them
            continue
        currency = (cart.get("currency") or {}).get("code") if isinstance(cart.get("currency"), dict) else ""

        for item in cart_line_items(cart):
            if str(item.get("id")) not in line_ids or not item.get("product_id"):
                continue
            product_id = int(item["product_id"])
            rows.append(ProductActivity(
                store=ctx.store, kind=ProductActivity.Kind.ADDED_TO_CART, email=email, product_id=product_id,
                variant_id=int(item.get("variant_id") or 0), dedup_key=f"cart:{cart_id}:product:{product_id}"[:200],
                details={"name": item.get("name") or "", "sku": item.get("sku") or "",
                         "quantity": int(item.get("quantity") or 0),
                         "price": str(item.get("sale_price") if item.get("sale_price") is not None
                                      else item.get("list_price") or 0),
                         "cart_id": cart_id, "currency": currency or ""}))
    created = ProductActivity.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


# --- Back in stock ---------------------------------------------------------------------------------------


def waits_release(store) -> int:
    """Every open wait whose variant the mirror says can be bought again gets one Back in stock and is released."""
    released = 0
    for wait in StockWait.objects.filter(store=store, released_at__isnull=True).order_by("id")[:SEND_LIMIT]:
        if mirror.variant_in_stock(store, wait.product_id, wait.variant_id) is not True:
            continue
        with transaction.atomic():
            if not StockWait.objects.filter(pk=wait.pk, released_at__isnull=True).update(released_at=timezone.now()):
                continue  # another run released it
            ProductActivity.objects.get_or_create(
                store=store, dedup_key=f"wait:{wait.pk}:back", defaults={
                    "kind": ProductActivity.Kind.BACK_IN_STOCK, "email": wait.email, "product_id": wait.product_id,
                    "variant_id": wait.variant_id, "details": {}})
        released += 1
    return released


# --- sending ----------------------------------------------------------------------------------------------


def daily_allowance(store, rows: list[ProductActivity], *, now) -> dict[tuple[str, str], int]:
    """Per (email, kind) of these rows, how many more of that activity Ortto keeps for the person in the 24 h
    before `now` (docs/ortto-contract.md, "Limits": 50 events per activity per contact per 24 h), counted from
    what the bridge sent for this store."""
    emails = {row.email for row in rows}
    sent = {(email, kind): n for email, kind, n in (
        ProductActivity.objects.filter(store=store, state=ProductActivity.State.SENT, email__in=emails,
                                       sent_at__gte=now - timedelta(hours=24))
        .values("email", "kind").annotate(n=Count("id")).values_list("email", "kind", "n"))}
    return {(row.email, row.kind): max(ACTIVITY_DAILY_LIMIT - sent.get((row.email, row.kind), 0), 0) for row in rows}


def over_allowance(ctx: context.SyncContext, rows: list[ProductActivity], work: context.PageWork, *,
                   now) -> list[ProductActivity]:
    """The rows Ortto would still keep; the rest (beyond 50 of one activity per person in 24 h, oldest kept
    first) are never sent: Ortto would drop them without a word. They are marked `limited`, counted in the
    run's `summarized` counter, and noted once per person and activity."""
    allowance = daily_allowance(ctx.store, rows, now=now)
    kept, limited = [], {}
    for row in rows:
        key = (row.email, row.kind)
        if allowance[key] > 0:
            allowance[key] -= 1
            kept.append(row)
        else:
            limited.setdefault(key, []).append(row.pk)
    for (email, kind), pks in limited.items():
        work.counters.summarized += len(pks)
        work.events.append(context.event(ctx, resource="catalog", email=email, level=SyncEvent.Level.INFO, message=(
            f"{len(pks)} {ProductActivity.Kind(kind).label} activit{'y' if len(pks) == 1 else 'ies'} not sent: "
            f"Ortto keeps at most {ACTIVITY_DAILY_LIMIT} of one activity per person per 24 hours.")))
    if limited:
        pks = [pk for group in limited.values() for pk in group]
        work.commits.append(lambda: ProductActivity.objects.filter(pk__in=pks).update(
            state=ProductActivity.State.LIMITED))
    return kept


def activities_send(ctx: context.SyncContext, work: context.PageWork) -> None:

    rows = list(ProductActivity.objects.filter(store=ctx.store, state=ProductActivity.State.PENDING)
                .order_by("id")[:SEND_LIMIT])
    if not rows:
        return
    rows = over_allowance(ctx, rows, work, now=timezone.now())
    if not rows:
        return
    facts = mirror.product_facts(ctx.store, {row.product_id for row in rows})
    variants = mirror.variant_facts(ctx.store, {row.product_id for row in rows})
    # New shoppers get the reason that says where the bridge met them (sync/engine/rules.py, reason_created).
    ok_emails: set[str] = set()
    for source, kinds in SOURCES.items():
        ok_emails |= carts.people_ensure(ctx, [row.email for row in rows if row.kind in kinds and row.email not in ok_emails],
                                    work, source=source)
    sendable, bodies = [], []
    failed: list[tuple[ProductActivity, str]] = []
    for row in rows:
        if row.email not in ok_emails:
            failed.append((row, "its person could not be merged in Ortto first"))
            continue
        spec = activities.SPECS[row.kind]
        bodies.append(activities.product_activity(
            kind=row.kind, key=f"bc:{ctx.store.store_hash}:{row.kind}:{row.dedup_key}", email=row.email,
            store_hash=ctx.store.store_hash, store_name=ctx.store.name, product_id=row.product_id,
            variant_id=row.variant_id, facts=facts.get(row.product_id),
            details={**variants.get((row.product_id, row.variant_id), {}), **(row.details or {})},
            created=row.created_at, **schema_journey_target(ctx.connection, spec)))
        sendable.append(row)
    results = sending.activities_send(ctx, bodies)
    sent = []
    for row, result in zip(sendable, results):
        if result.get("error") or result.get("status") not in OK_ACTIVITY_STATUSES:
            failed.append((row, f"Ortto refused it: {result.get('error') or result.get('status')}"))
            continue
        sent.append(row.pk)
        work.counters.created += 1
    now = timezone.now()
    for row, reason in failed:
        work.counters.failed += 1
        work.events.append(context.event(ctx, resource="catalog", email=row.email, bc_id=row.product_id, message=(
            f"{row.get_kind_display()} for product {row.product_id} not sent: {reason}.")))

    def commit():
        ProductActivity.objects.filter(pk__in=sent).update(state=ProductActivity.State.SENT, sent_at=now)
        for row, _ in failed:
            state = ProductActivity.State.FAILED if row.attempts + 1 >= MAX_ATTEMPTS else ProductActivity.State.PENDING
            ProductActivity.objects.filter(pk=row.pk).update(attempts=row.attempts + 1, state=state)

    work.commits.append(commit)


def pending_exists(store) -> bool:
    return ProductActivity.objects.filter(store=store, state=ProductActivity.State.PENDING).exists()
