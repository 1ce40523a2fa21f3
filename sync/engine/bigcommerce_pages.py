"""Reading a run's BigCommerce pages: one page from a checkpoint, by id, and read ahead on a thread.

The checkpoint (a run's resume point) says where each resource's reading stands; the functions here
advance a copy of it and never touch the database, so the prefetch thread can call them.

Reading several pages at a time, where that loses nothing when the store changes during the read:
subscribers by page number (their only paging; sorted by id, so new ones go to the end), customers by
page number only when the answers carry no cursor, and the orders of a full run in disjoint id ranges of
one page each (v2 `min_id`/`max_id`: an order archived or placed meanwhile shifts no other order). The
pages reach the run strictly in order. Customers are otherwise read by cursor, and incremental orders and
the orders past the count by `min_id`, one page after the other: a page number would skip a record
whenever one before it is deleted during the read.
"""

from __future__ import annotations

import collections
import contextvars
import copy
import logging
import math
import queue
import threading
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import wait as futures_wait
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from sync.engine import context, mapping

logger = logging.getLogger(__name__)

PAGE_LIMIT = 250
# Pages processed and committed together (pages_per_unit): at least the fewest that make whole Ortto
# batches of 100 (2 x 250 = 500 records), so no batch is sent half-empty at a page boundary; at most this many.
MAX_PAGES_PER_UNIT = 8
# BigCommerce pages fetched ahead of processing (bounds the worker's memory: ~16 x 250 records): two of the
# largest units, so the next unit is being read while this one is sent, and reading goes on through a slow
# Ortto stretch (a 429's wait) instead of idling the quota.
PREFETCH_PAGES = 2 * MAX_PAGES_PER_UNIT
# Records read by id per request (webhook and retry runs).
WEBHOOK_CHUNK = 50
# Page (or orders id range) reads in flight at once (settings.BIGCOMMERCE_READ_CONCURRENCY overrides).
# Together they stay within the store's quota: the client pauses every reader once the window's requests
# left reach its reserve plus the requests in flight (stores.bigcommerce.BigCommerceClient).
READ_CONCURRENCY = 4
# At most this many, sized by Little's law (read_concurrency): a Pro plan (15 requests/s) at half a second an
# answer keeps 7.5 busy; pages in flight count against the read-ahead.
MAX_READ_CONCURRENCY = 8


# Customers read by page number (answers without a cursor) are in creation order: an edit during the
# read moves no customer across a page boundary (date_modified order would, and a page would be skipped).
CUSTOMERS_SORT = "date_created:asc"


def read_concurrency(bc=None) -> int:
    """Page reads in flight at once: at least BIGCOMMERCE_READ_CONCURRENCY, and as many as the store's quota
    can keep busy at the answer times seen so far (Little's law, BigCommerceClient.in_flight_wanted), up to
    MAX_READ_CONCURRENCY. Over loopback that is the setting; at half a second an answer on a Pro plan
    (15 requests/s) it is 8. The client's pacing keeps the store's reserve whatever the number."""
    configured = max(1, int(getattr(settings, "BIGCOMMERCE_READ_CONCURRENCY", READ_CONCURRENCY)))
    wanted = bc.in_flight_wanted() if bc is not None and hasattr(bc, "in_flight_wanted") else None
    if not wanted:
        return configured
    return max(configured, min(math.ceil(wanted * 1.1), MAX_READ_CONCURRENCY))


def _whole_batches_pages() -> int:
    for pages in range(1, MAX_PAGES_PER_UNIT + 1):
        if (pages * PAGE_LIMIT) % context.BATCH_SIZE == 0:
            return pages
    return 1


def pages_per_unit(bc=None) -> int:
    """Pages per unit. A unit costs at least one round trip to Ortto (its merges, and their follow-ups) before
    it is committed, whatever its size; while it waits, the store's quota could deliver as many pages as are
    wanted in flight (Little's law, BigCommerceClient.in_flight_wanted: about 8 on a Pro plan at half a
    second an answer, well under 1 over loopback). So a unit is the fewest pages that make whole batches,
    times enough to cover those pages, up to MAX_PAGES_PER_UNIT: 2 over loopback, 8 over a slow network —
    where units of 2 left both APIs idle while each unit waited for its answers (BENCHMARKS.md)."""
    step = _whole_batches_pages()
    wanted = bc.in_flight_wanted() if bc is not None and hasattr(bc, "in_flight_wanted") else None
    if not wanted or wanted <= step:
        return step
    return max(step, min(step * math.ceil(wanted / step), MAX_PAGES_PER_UNIT // step * step))


class PagePrefetch:
    """A bounded read-ahead of one resource's pages on a helper thread (HTTP only, no database).

    The thread walks its own copy of the checkpoint, so the run's checkpoint only moves when a unit is
    committed; pages fetched but not committed when the run stops are simply read again on resume.
    """

    def __init__(self, ctx: context.SyncContext, resource: str, checkpoint: dict, *, first=None):
        self.ctx, self.resource = ctx, resource
        self.checkpoint = copy.deepcopy(checkpoint)
        # (items, total, the resource's state after it): its first page, read by sync.engine.runs._prepare for the totals.
        self.first = first
        self.queue: queue.Queue = queue.Queue(maxsize=max(PREFETCH_PAGES, 1))
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=contextvars.copy_context().run, args=(self._work,),
                                       name=f"prefetch-{resource}", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        # The thread sees this within 0.1 s of its current request; a request in flight (or its retry
        # wait) is left to finish on its own rather than holding up the run's exit.
        self.stopping.set()
        self.thread.join(timeout=1.0)
        return False

    def _put(self, entry) -> bool:
        while not self.stopping.is_set():
            try:
                self.queue.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        checkpoint = self.checkpoint
        try:
            if self.first is not None:
                items, page_total, state = self.first
                checkpoint = copy.deepcopy(checkpoint)
                checkpoint["resources"][self.resource] = copy.deepcopy(state)
                if not self._put((items, page_total, checkpoint)) or state["done"]:
                    return
            while not self.stopping.is_set():
                if windowed(checkpoint, self.resource):
                    # Customers of a full read: boundary pages, then date windows, several at a time.
                    self._windowed(checkpoint)
                    return
                if numbered(checkpoint, self.resource):
                    # Several at a time, until the last page or (orders) past the planned ranges.
                    checkpoint = self._numbered(checkpoint)
                    if checkpoint is None:
                        return
                    continue
                checkpoint = copy.deepcopy(checkpoint)
                items, page_total = page_fetch(self.ctx, self.resource, checkpoint)
                if not self._put((items, page_total, checkpoint)):
                    return
                if checkpoint["resources"][self.resource]["done"]:
                    return
        except BaseException as exc:  # handed to the run's thread, which raises it
            self._put(exc)

    def _numbered(self, checkpoint: dict) -> dict | None:
        """Pages by number, up to read_concurrency() requests in flight, handed on in page order.

        Pages up to the count the answers (or the order count) gave are requested ahead, as long as the
        pages read and not yet taken stay within PREFETCH_PAGES; past the count, one at a time, until a
        page says it is the last. A page that fails stops the reading: its error
        goes to the run, and the pages after it are dropped (they are read again on resume).
        Returns None when the resource is read (or the run stops), else the checkpoint to go on from
        one page at a time (orders past their planned id ranges).
        """
        resource = self.resource
        state = checkpoint["resources"][resource]
        since = _since(checkpoint, resource)
        next_number = state["page"]
        in_flight: collections.deque = collections.deque()
        ranges = resource == "orders"  # past the planned ranges, orders go on by min_id
        while not self.stopping.is_set():
            known = state.get("pages") or 0
            # Pages in flight count against the read-ahead: memory stays at PREFETCH_PAGES pages.
            room = PREFETCH_PAGES - self.queue.qsize() - len(in_flight)
            while len(in_flight) < read_concurrency(self.ctx.bigcommerce) and (room > 0 or not in_flight) and (
                    next_number <= known or not in_flight and not ranges):
                room -= 1
                in_flight.append((next_number, _in_thread(numbered_page, self.ctx, resource, state, since,
                                                          next_number, name=f"read-{resource}")))
                next_number += 1
            if not in_flight:
                return checkpoint
            number, future = in_flight.popleft()
            page = future.result()
            checkpoint = copy.deepcopy(checkpoint)
            state = checkpoint["resources"][resource]
            numbered_advance(state, resource, page, number)
            if not self._put((page.items, page.total, checkpoint)) or state["done"]:
                return None
            if not numbered(checkpoint, resource):
                return checkpoint
        return None

    def _windowed(self, checkpoint: dict) -> None:
        """Customers of a full read in date windows (customer_windows_plan), up to read_concurrency() requests
        in flight: first the boundary pages by number, handed on in order; then each window by its own
        cursor, its pages handed on as they come (a window's own pages in order), so every window reads at
        once while the read-ahead stays at PREFETCH_PAGES pages. Each page handed on carries the checkpoint
        after it: the boundaries read and every window's cursor, so a resumed run goes on where each was."""
        resource = self.resource
        plan = checkpoint["resources"][resource]["windows"]
        numbers = plan["boundaries"][plan["read"]:] if not plan.get("closed") else []
        futures = [(n, _in_thread(windowed_boundary_page, self.ctx, n, name=f"read-{resource}")) for n in numbers]
        for number, future in futures:
            page = future.result()
            if self.stopping.is_set():
                return
            checkpoint = copy.deepcopy(checkpoint)
            state = checkpoint["resources"][resource]
            windows_boundary_read(state, page)
            windows_done_check(state)
            if not self._put((page.items, page.total, checkpoint)) or state["done"]:
                return
        pending: dict = {}
        while not self.stopping.is_set():
            state = checkpoint["resources"][resource]
            room = PREFETCH_PAGES - self.queue.qsize() - len(pending)
            for index, window in enumerate(state["windows"]["list"]):
                # A full read-ahead still lets one request go, as _numbered does: the run is taking pages.
                if len(pending) >= read_concurrency(self.ctx.bigcommerce) or room <= 0 and pending:
                    break
                if not window["done"] and index not in pending:
                    room -= 1
                    pending[index] = _in_thread(windowed_page, self.ctx, copy.deepcopy(window),
                                                name=f"read-{resource}")
            if not pending:
                return
            finished, _ = futures_wait(list(pending.values()), timeout=0.1, return_when=FIRST_COMPLETED)
            for index in [i for i, f in pending.items() if f in finished]:
                page = pending.pop(index).result()
                checkpoint = copy.deepcopy(checkpoint)
                state = checkpoint["resources"][resource]
                items = windows_page_read(state, index, page)
                windows_done_check(state, pending=pending)
                # A window's total counts that window only: no total for the progress bar.
                if not self._put((items, None, checkpoint)) or state["done"]:
                    return

    def _next_page(self):
        entry = self.queue.get()
        if isinstance(entry, BaseException):
            raise entry
        return entry

    def next_unit(self, pages: int) -> tuple[list[dict], int | None, dict]:
        """The next `pages` pages (fewer at the end) as one unit: items, first page's total, checkpoint."""
        items, page_total, checkpoint = self._next_page()
        items = list(items)
        for _ in range(pages - 1):
            if checkpoint["resources"][self.resource]["done"]:
                break
            more, _, checkpoint = self._next_page()
            items += more
        return items, page_total, checkpoint


def _since(checkpoint: dict, resource: str) -> datetime | None:
    value = checkpoint.get("since", {}).get(resource)
    return datetime.fromisoformat(value) if value else None


def numbered(checkpoint: dict, resource: str) -> bool:
    """Whether this resource's next pages are read several at a time (by page number, or id range)."""
    if "webhook" in checkpoint:
        return False
    state = checkpoint["resources"][resource]
    return resource == "subscribers" or bool(state.get("by_page") and not state.get("after"))


def windowed(checkpoint: dict, resource: str) -> bool:
    """Whether this resource's next pages are read in date windows (customers of a full read)."""
    state = checkpoint["resources"][resource]
    return "webhook" not in checkpoint and bool(state.get("windows")) and not state.get("done")


# A window is planned for at least this many pages: fewer, and the partial last page each window costs
# outweighs reading them one after the other.
MIN_PAGES_PER_WINDOW = 4


def customer_windows_plan(state: dict, page, concurrency: int) -> bool:
    """Plan a full read of customers as date windows read side by side, from its first page (by cursor,
    oldest first), when the answer says how many pages there are.

    Customers can be read side by side only by page number or by date: v3 has no id ranges. Page numbers
    shift when a customer is deleted during the read, and one would be skipped; dates do not move. So the
    pages at evenly spaced numbers (the boundaries, real data) are read first, by number, and the
    customers between them are then read by creation date, each window by its own cursor.

    Each customer belongs to one place. A boundary page's customers are its own (every window skips their
    ids). Every other customer belongs to the window whose cut range holds its creation date: window i
    holds [cut_i, cut_i+1), where cut_i is the newest date on boundary page i (the first window has no
    lower cut, the last no upper one: customers created during the read are in it). A window asks
    BigCommerce for a second more on each side of what it needs, so the bound's inclusion does not
    matter, and drops what is not its own. Whatever a deletion shifts, dates do not move: the windows
    cover every customer once. The cost over reading one after the other: at most a part-full page per
    window."""
    pages = page.total_pages or 0
    count = min(concurrency, pages // MIN_PAGES_PER_WINDOW)
    if count < 2 or not page.items:
        return False
    boundaries = sorted({1 + round(i * pages / count) for i in range(1, count)} - {1})
    state["windows"] = {"boundaries": boundaries, "read": 0, "closed": False,
                        "boundary_ids": sorted({int(i["id"]) for i in page.items}),
                        "list": [_window_after(page.items, first=True)]}
    state["after"] = None
    return True


def _created(item: dict) -> datetime | None:
    return mapping.parse_bc_datetime(item.get("date_created"))


def _window_after(items: list[dict], *, first: bool = False) -> dict:
    """The window that starts at a boundary page's newest creation date (the first window: anywhere)."""
    dates = [d for d in (_created(item) for item in items) if d]
    cut = max(dates) if dates else None
    return {"cut": None if first or cut is None else cut.isoformat(),
            "low": (cut - timedelta(seconds=1)).isoformat() if cut else None,
            "high_cut": None, "high": None, "after": None, "page": None, "done": False}


def windowed_boundary_page(ctx: context.SyncContext, number: int):
    return ctx.bigcommerce.customers_page(page=number, sort=CUSTOMERS_SORT, limit=PAGE_LIMIT)


def windowed_page(ctx: context.SyncContext, window: dict):
    """The next page of one date window (called on the reader threads)."""
    return ctx.bigcommerce.customers_page(
        created_min=datetime.fromisoformat(window["low"]) if window["low"] else None,
        created_max=datetime.fromisoformat(window["high"]) if window["high"] else None,
        after=window["after"], page=window["page"], sort=CUSTOMERS_SORT, limit=PAGE_LIMIT)


def windows_boundary_read(state: dict, page) -> None:
    """A boundary page handed on: it closes the window before it and opens the next."""
    plan = state["windows"]
    plan["read"] += 1
    dates = [d for d in (_created(item) for item in page.items) if d]
    if not dates:
        # Past the end (customers deleted since the count): the window before it stays open-ended.
        plan["closed"] = True
        return
    previous = plan["list"][-1]
    following = _window_after(page.items)
    previous["high_cut"] = following["cut"]
    # Nothing between the windows is newer than this page's oldest customer (the rest of the page is its own).
    previous["high"] = (min(dates) + timedelta(seconds=1)).isoformat()
    plan["boundary_ids"] = sorted(set(plan["boundary_ids"]) | {int(i["id"]) for i in page.items})
    plan["list"].append(following)
    _note_modified(state, page.items)


def _in_window(window: dict, item: dict) -> bool:
    created = _created(item)
    if created is None:
        return window["cut"] is None  # no date: the first window's (read there, nowhere else)
    low = datetime.fromisoformat(window["cut"]) if window["cut"] else None
    high = datetime.fromisoformat(window["high_cut"]) if window["high_cut"] else None
    return (low is None or created >= low) and (high is None or created < high)


def windows_page_read(state: dict, index: int, page) -> list[dict]:
    """A window's page handed on: the customers in it that are the window's own; the window moves on."""
    plan = state["windows"]
    window = plan["list"][index]
    boundary = set(plan["boundary_ids"])
    items = [item for item in page.items if int(item["id"]) not in boundary and _in_window(window, item)]
    if page.next_after:
        window["after"], window["page"] = page.next_after, None
    elif page.next_page and page.items and not window["after"]:
        window["page"] = page.next_page  # an answer without cursor metadata: on by page number
    else:
        window["done"] = True
    _note_modified(state, items)
    return items


def windows_done_check(state: dict, pending=()) -> None:
    plan = state["windows"]
    boundaries_read = plan.get("closed") or plan["read"] >= len(plan["boundaries"])
    state["done"] = bool(boundaries_read and not pending and all(w["done"] for w in plan["list"]))


def _in_thread(fn, *args, name: str) -> Future:
    """fn(*args) on a daemon thread of its own (a request still retrying never holds up the worker's
    exit), in a copy of this thread's context."""
    future: Future = Future()
    future.set_running_or_notify_cancel()

    def run():
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=contextvars.copy_context().run, args=(run,), name=name, daemon=True).start()
    return future


def _customers_sort(state: dict) -> str:
    """A read begun before customers were read in creation order keeps the order its cursor was made for."""
    return state.get("sort") or "date_modified:asc"


def order_range(state: dict, number: int) -> tuple[int, int]:
    """The ids of planned orders range `number`: one page wide, so one request reads it whole."""
    low = int(state["range_from"]) + (number - 1) * PAGE_LIMIT
    return low, low + PAGE_LIMIT - 1


def numbered_page(ctx: context.SyncContext, resource: str, state: dict, since: datetime | None, number: int):
    """Page or range `number` of a resource read several at a time (called on the reader threads)."""
    bc = ctx.bigcommerce
    if resource == "subscribers":
        return bc.subscribers_page(modified_since=since, page=number, limit=PAGE_LIMIT)
    if resource == "customers":
        return bc.customers_page(modified_since=since, page=number, sort=_customers_sort(state), limit=PAGE_LIMIT)
    low, high = order_range(state, number)
    return bc.orders_page(modified_since=since, min_id=low, max_id=high, limit=PAGE_LIMIT)


def numbered_advance(state: dict, resource: str, page, number: int) -> None:
    """The resource's reading state once page (or orders range) `number` has been handed to the run."""
    if state["started_at"] is None:
        state["started_at"] = timezone.now().isoformat()
    state["page"] = number + 1
    if resource == "orders":
        # Past the last planned range: done once the count is read (orders placed since are the next
        # run's, as its cursor starts before this run did), else min_id reads go on until a short page.
        state["min_id"] = order_range(state, number)[1] + 1
        state["read"] = state.get("read", 0) + len(page.items)
        last = number >= (state.get("pages") or 0)
        if last:
            state["by_page"] = False
        state["done"] = last and state["read"] >= state.get("count", 0)
    else:
        state["pages"] = page.total_pages if page.total_pages is not None else state.get("pages")
        state["done"] = not page.items or not page.next_page
    _note_modified(state, page.items)


def _note_modified(state: dict, items: list[dict]) -> None:
    seen = [mapping.parse_bc_datetime(item.get("date_modified")) for item in items]
    seen = [s for s in seen if s]
    if seen:
        latest = max(seen)
        known = datetime.fromisoformat(state["max_modified"]) if state["max_modified"] else None
        if known is None or latest > known:
            state["max_modified"] = latest.isoformat()


def page_fetch(ctx: context.SyncContext, resource: str, checkpoint: dict) -> tuple[list[dict], int | None]:
    """One page of a resource from where the checkpoint says; advances `checkpoint` in place."""
    state = checkpoint["resources"][resource]
    if state["started_at"] is None:
        state["started_at"] = timezone.now().isoformat()
    bc = ctx.bigcommerce
    if "webhook" in checkpoint:
        ids = checkpoint["webhook"]["ids"][resource]
        chunk = ids[state["offset"]: state["offset"] + WEBHOOK_CHUNK]
        state["offset"] += WEBHOOK_CHUNK
        state["done"] = state["offset"] >= len(ids)
        if resource == "subscribers":
            items = bc.subscribers_page(ids=chunk, limit=PAGE_LIMIT).items
        elif resource == "customers":
            items = bc.customers_page(ids=chunk, limit=PAGE_LIMIT).items
        else:
            items = orders_by_id(bc, chunk)
        return items, None

    since = _since(checkpoint, resource)
    if numbered(checkpoint, resource):
        number = state["page"]
        page = numbered_page(ctx, resource, state, since, number)
        numbered_advance(state, resource, page, number)
        return page.items, page.total
    if resource == "customers":  # by cursor (page numbers are the numbered() path above)
        first_of_full_read = (since is None and not state["after"] and not state.get("windows")
                              and _customers_sort(state) == CUSTOMERS_SORT)
        page = bc.customers_page(modified_since=since, after=state["after"], sort=_customers_sort(state),
                                 limit=PAGE_LIMIT)
        state["after"] = page.next_after
        if first_of_full_read and customer_windows_plan(state, page, read_concurrency(bc)):
            state["done"] = False
            _note_modified(state, page.items)
            return page.items, page.total
        if not page.next_after and page.next_page and page.items:
            # An answer without cursor metadata: go on by page number (several at a time, PagePrefetch)
            # rather than stop after this page.
            state["by_page"], state["page"], state["pages"] = True, page.next_page, page.total_pages
        state["done"] = not page.items or not (page.next_after or state.get("by_page") and page.next_page)
    else:
        page = bc.orders_page(modified_since=since, min_id=state["min_id"], limit=PAGE_LIMIT)
        if page.items:
            state["min_id"] = max(int(o["id"]) for o in page.items) + 1
        state["done"] = len(page.items) < PAGE_LIMIT
        if "count" in state:  # full runs: the order count when the run started
            state["read"] = state.get("read", 0) + len(page.items)
            # Orders placed since the count are the next run's (its cursor starts before this run did).
            state["done"] = state["done"] or state["read"] >= state["count"]
            ranges = math.ceil(state["count"] / PAGE_LIMIT) - 1 if not state.get("range_from") else 0
            if ranges > 0 and not state["done"]:
                # The count's other pages, read several at a time as disjoint id ranges.
                state.update(by_page=True, range_from=state["min_id"], page=1, pages=ranges)
    _note_modified(state, page.items)
    return page.items, page.total


def orders_by_id(bc, ids: list[int]) -> list[dict]:
    """Orders by id, in as few requests as v2 allows (it has no id:in): ids less than a page apart
    share one min_id/max_id range request (such a range holds at most a page of orders); a lone id
    is one GET of that order. A burst of new orders has consecutive ids: one request for the lot."""
    wanted = sorted({int(i) for i in ids})
    groups: list[list[int]] = []
    for order_id in wanted:
        if groups and order_id - groups[-1][0] < PAGE_LIMIT:
            groups[-1].append(order_id)
        else:
            groups.append([order_id])
    items = []
    for group in groups:
        if len(group) == 1:
            order = bc.order(group[0])
            items += [order] if order else []
        else:
            members = set(group)
            page = bc.orders_page(min_id=group[0], max_id=group[-1], limit=PAGE_LIMIT).items
            items += [order for order in page if int(order["id"]) in members]
    return items


def carried_refetch(ctx: context.SyncContext, resource: str, ids: list[int]) -> list[dict]:
    """A resumed run's carried records (their ids in the checkpoint), read again from BigCommerce."""
    if not ids:
        return []
    bc = ctx.bigcommerce
    if resource == "subscribers":
        items = bc.subscribers_page(ids=ids, limit=PAGE_LIMIT).items
    elif resource == "customers":
        items = bc.customers_page(ids=ids, limit=PAGE_LIMIT).items
    else:
        items = orders_by_id(bc, ids)  # the last placed orders of one unit: mostly one range request
    return sorted(items, key=lambda record: int(record["id"]))
