"""Reading a run's BigCommerce pages: one page from a checkpoint, by id, and read ahead on a thread.

The checkpoint (a run's resume point) says where each resource's reading stands; the functions here
advance a copy of it and never touch the database, so the prefetch thread can call them.
"""

from __future__ import annotations

import contextvars
import copy
import logging
import queue
import threading
from datetime import datetime

from django.utils import timezone

from . import engine, mapping

logger = logging.getLogger(__name__)

PAGE_LIMIT = 250
# Pages processed and committed together: the fewest (up to this many) that make whole Ortto batches
# of 100 (2 x 250 = 500 records), so no batch is sent half-empty at a page boundary.
MAX_PAGES_PER_UNIT = 4
# BigCommerce pages fetched ahead of processing (bounds the worker's memory: ~8 x 250 records). Deep
# enough that reading goes on through a slow Ortto stretch (a 429's wait) instead of idling the quota.
PREFETCH_PAGES = 8
# Records read by id per request (webhook and retry runs).
WEBHOOK_CHUNK = 50


def pages_per_unit() -> int:
    for pages in range(1, MAX_PAGES_PER_UNIT + 1):
        if (pages * PAGE_LIMIT) % engine.BATCH_SIZE == 0:
            return pages
    return 1


class PagePrefetch:
    """A bounded read-ahead of one resource's pages on a helper thread (HTTP only, no database).

    The thread walks its own copy of the checkpoint, so the run's checkpoint only moves when a unit is
    committed; pages fetched but not committed when the run stops are simply read again on resume.
    """

    def __init__(self, ctx: engine.SyncContext, resource: str, checkpoint: dict, *, first=None):
        self.ctx, self.resource = ctx, resource
        self.checkpoint = copy.deepcopy(checkpoint)
        # (items, total, the resource's state after it): its first page, read by sync.runs._prepare for the totals.
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
                checkpoint = copy.deepcopy(checkpoint)
                items, page_total = page_fetch(self.ctx, self.resource, checkpoint)
                if not self._put((items, page_total, checkpoint)):
                    return
                if checkpoint["resources"][self.resource]["done"]:
                    return
        except BaseException as exc:  # handed to the run's thread, which raises it
            self._put(exc)

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


def page_fetch(ctx: engine.SyncContext, resource: str, checkpoint: dict) -> tuple[list[dict], int | None]:
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
            items = _orders_by_id(bc, chunk)
        return items, None

    since = _since(checkpoint, resource)
    if resource == "subscribers":
        page = bc.subscribers_page(modified_since=since, page=state["page"], limit=PAGE_LIMIT)
        state["page"] = page.next_page or state["page"]
        state["done"] = not page.items or not page.next_page
    elif resource == "customers":
        by_number = state.get("by_page") and not state["after"]
        page = bc.customers_page(modified_since=since, after=state["after"],
                                 page=state["page"] if by_number else None, limit=PAGE_LIMIT)
        state["after"] = page.next_after
        if not page.next_after and page.next_page and page.items:
            # An answer without cursor metadata: go on by page number rather than stop after this page.
            state["by_page"], state["page"] = True, page.next_page
        state["done"] = not page.items or not (page.next_after or state.get("by_page") and page.next_page)
    else:
        page = bc.orders_page(modified_since=since, min_id=state["min_id"], limit=PAGE_LIMIT)
        if page.items:
            state["min_id"] = max(int(o["id"]) for o in page.items) + 1
        state["done"] = len(page.items) < PAGE_LIMIT
    seen = [mapping.parse_bc_datetime(item.get("date_modified")) for item in page.items]
    seen = [s for s in seen if s]
    if seen:
        latest = max(seen)
        known = datetime.fromisoformat(state["max_modified"]) if state["max_modified"] else None
        if known is None or latest > known:
            state["max_modified"] = latest.isoformat()
    return page.items, page.total


def _orders_by_id(bc, ids: list[int]) -> list[dict]:
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


def carried_refetch(ctx: engine.SyncContext, resource: str, ids: list[int]) -> list[dict]:
    """A resumed run's carried records (their ids in the checkpoint), read again from BigCommerce."""
    if not ids:
        return []
    bc = ctx.bigcommerce
    if resource == "subscribers":
        items = bc.subscribers_page(ids=ids, limit=PAGE_LIMIT).items
    elif resource == "customers":
        items = bc.customers_page(ids=ids, limit=PAGE_LIMIT).items
    else:
        items = _orders_by_id(bc, ids)  # the last placed orders of one unit: mostly one range request
    return sorted(items, key=lambda record: int(record["id"]))
