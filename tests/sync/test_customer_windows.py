"""A full read of customers in date windows read side by side (sync/engine/bigcommerce_pages.py,
customer_windows_plan): every customer handed to the run once, whatever is deleted or created meanwhile,
with the windows' requests in flight together, and a resumed read going on where each window was."""

import threading
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from stores.bigcommerce import Page
from sync.engine.bigcommerce_pages import CUSTOMERS_SORT, PagePrefetch, page_fetch

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class CustomerStore:
    """A client double of v3 customers: `per_page` to a page, sorted by date_created then id, paged by
    number or, with date_created:min / :max (inclusive, whole seconds, as the sandbox), by cursor. Every
    request sleeps `latency` seconds, and the most requests in flight at once are counted."""

    def __init__(self, count: int, *, per_page: int = 5, same_second: int = 1, latency: float = 0.005):
        self.per_page, self.latency = per_page, latency
        self.customers = [{"id": i, "date_created": _iso(START + timedelta(seconds=(i - 1) // same_second)),
                           "date_modified": _iso(START)} for i in range(1, count + 1)]
        self.next_id = count + 1
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = self.requests = 0
        self.on_request = None  # called with the request's number before it is answered

    def create(self, at: datetime) -> int:
        with self.lock:
            self.customers.append({"id": self.next_id, "date_created": _iso(at), "date_modified": _iso(at)})
            self.next_id += 1
            return self.next_id - 1

    def delete(self, customer_id: int) -> None:
        with self.lock:
            self.customers = [c for c in self.customers if c["id"] != customer_id]

    def customers_page(self, *, modified_since=None, after=None, page=None, ids=None, created_min=None,
                       created_max=None, sort="date_modified:asc", limit=250):
        assert sort == CUSTOMERS_SORT and modified_since is None and ids is None
        with self.lock:
            self.requests += 1
            number = self.requests
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.on_request:
                self.on_request(number)
            time.sleep(self.latency)
            with self.lock:
                rows = sorted(self.customers, key=lambda c: (c["date_created"], c["id"]))
            if created_min is not None or created_max is not None or after:
                rows = [c for c in rows if (created_min is None or c["date_created"] >= _iso(created_min))
                        and (created_max is None or c["date_created"] <= _iso(created_max))]
                start = int(after or 0)
                chunk = rows[start:start + self.per_page]
                more = start + self.per_page < len(rows)
                return Page(items=[dict(c) for c in chunk], total=len(rows),
                            next_after=str(start + self.per_page) if more else None)
            number_of_pages = max((len(rows) + self.per_page - 1) // self.per_page, 1)
            current = page or 1
            chunk = rows[(current - 1) * self.per_page: current * self.per_page]
            # Page 1 without a cursor carries both kinds of paging (as BigCommerce does).
            next_after = str(self.per_page) if current == 1 and len(rows) > self.per_page and not page else None
            return Page(items=[dict(c) for c in chunk], total=len(rows), total_pages=number_of_pages,
                        next_page=current + 1 if current < number_of_pages else None, next_after=next_after)
        finally:
            with self.lock:
                self.in_flight -= 1


def _checkpoint():
    state = {"done": False, "started_at": None, "max_modified": None, "page": 1, "after": None,
             "min_id": None, "offset": 0, "sort": CUSTOMERS_SORT}
    return {"resources": {"customers": state}, "since": {}}


def _first_page(client, checkpoint):
    """As runs._prepare reads it: the first page by cursor, handed to the read as `first`."""
    scratch = {"resources": {"customers": dict(checkpoint["resources"]["customers"])}, "since": {}}
    items, total = page_fetch(SimpleNamespace(bigcommerce=client), "customers", scratch)
    return items, total, scratch["resources"]["customers"]


def _read(client, checkpoint=None, *, stop_after: int | None = None):
    """The ids handed to the run, unit by unit (one page a unit), and the checkpoint after the last."""
    checkpoint = checkpoint or _checkpoint()
    first = _first_page(client, checkpoint) if checkpoint["resources"]["customers"]["started_at"] is None else None
    handed = []
    with PagePrefetch(SimpleNamespace(bigcommerce=client), "customers", checkpoint, first=first) as pages:
        while True:
            items, _, checkpoint = pages.next_unit(1)
            handed += [item["id"] for item in items]
            if checkpoint["resources"]["customers"]["done"] or stop_after and len(handed) >= stop_after:
                return handed, checkpoint


def test_a_full_read_hands_every_customer_once_with_the_windows_read_side_by_side(settings):
    settings.BIGCOMMERCE_READ_CONCURRENCY = 4
    client = CustomerStore(200)  # 40 pages of 5
    handed, checkpoint = _read(client)
    assert sorted(handed) == list(range(1, 201))  # each once
    plan = checkpoint["resources"]["customers"]["windows"]
    assert len(plan["list"]) == 4 and all(window["done"] for window in plan["list"])
    assert client.most_in_flight >= 3  # the windows were read together, not one after the other
    # Cost: the 40 pages' worth, plus at most one part-full page per window and the first page's cursor.
    assert client.requests <= 40 + 4 + 1


def test_one_read_at_a_time_reads_by_cursor_as_before(settings):
    settings.BIGCOMMERCE_READ_CONCURRENCY = 1
    client = CustomerStore(60)
    handed, checkpoint = _read(client)
    assert sorted(handed) == list(range(1, 61))
    assert "windows" not in checkpoint["resources"]["customers"] and client.most_in_flight == 1


def test_a_customer_deleted_during_the_read_costs_no_other_customer(settings):
    """With page numbers alone, the deletion would shift a customer onto a page already read."""
    settings.BIGCOMMERCE_READ_CONCURRENCY = 4
    client = CustomerStore(200)
    deleted = []

    def delete_an_early_customer(number):
        if number == 6 and not deleted:  # once the boundary pages are read: the windows are reading
            client.delete(3)
            deleted.append(3)

    client.on_request = delete_an_early_customer
    handed, _ = _read(client)
    assert set(range(1, 201)) - {3} <= set(handed)
    assert len(handed) == len(set(handed))


def test_customers_created_during_the_read_are_in_the_last_window(settings):
    settings.BIGCOMMERCE_READ_CONCURRENCY = 4
    client = CustomerStore(200)
    created = []

    def create_one(number):
        if number == 8 and not created:
            created.append(client.create(START + timedelta(days=30)))

    client.on_request = create_one
    handed, _ = _read(client)
    assert sorted(handed) == list(range(1, 202)) and created == [201]


def test_customers_created_in_the_same_second_across_a_boundary_are_handed_once(settings):
    settings.BIGCOMMERCE_READ_CONCURRENCY = 4
    client = CustomerStore(200, same_second=7)  # 7 customers a second: every boundary falls inside a second
    handed, _ = _read(client)
    assert sorted(handed) == list(range(1, 201))


def test_a_resumed_read_goes_on_where_each_window_was(settings):
    settings.BIGCOMMERCE_READ_CONCURRENCY = 4
    client = CustomerStore(200)
    first_part, checkpoint = _read(client, stop_after=90)
    assert not checkpoint["resources"]["customers"]["done"]
    rest, checkpoint = _read(client, checkpoint)
    assert set(first_part) | set(rest) == set(range(1, 201))
    assert not set(first_part) & set(rest)  # nothing handed twice: each window resumed at its cursor
    assert checkpoint["resources"]["customers"]["done"]


def test_a_run_slower_than_the_reads_still_gets_every_customer(settings):
    """The read-ahead fills while the run works on a unit: the windows wait for room, they do not stop."""
    settings.BIGCOMMERCE_READ_CONCURRENCY = 4
    client = CustomerStore(200, latency=0.0)
    handed = []
    checkpoint = _checkpoint()
    prefetch = PagePrefetch(SimpleNamespace(bigcommerce=client), "customers", checkpoint,
                            first=_first_page(client, checkpoint))

    def consume():
        with prefetch as pages:
            while True:
                time.sleep(0.01)  # slower than the double answers: the queue is full most of the time
                items, _, state = pages.next_unit(1)
                handed.extend(item["id"] for item in items)
                if state["resources"]["customers"]["done"]:
                    return

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    reader.join(timeout=30)
    if reader.is_alive():  # the run would wait for a page forever
        prefetch.stopping.set()
    assert not reader.is_alive() and sorted(handed) == list(range(1, 201))
