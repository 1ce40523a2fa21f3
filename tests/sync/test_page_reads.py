"""BigCommerce pages read by number, several at a time, handed to the run in order (issue 17)."""

import threading
import time
from types import SimpleNamespace

import pytest
import responses

from stores.bigcommerce import BigCommerceClient, Page
from sync.engine import bigcommerce_pages
from sync.engine.bigcommerce_pages import (
    MAX_PAGES_PER_UNIT,
    MAX_READ_CONCURRENCY,
    PREFETCH_PAGES,
    PagePrefetch,
    pages_per_unit,
    read_concurrency,
)


class NumberedStore:
    """A client double with `pages` subscriber pages of 2; page numbers 2 .. 1 + meet answer only once
    all of them are waiting at once (so a reader that asks one page at a time never gets them)."""

    def __init__(self, pages: int, *, meet: int = 0, fail_page: int | None = None, grow_to: int | None = None):
        self.pages, self.fail_page, self.grow_to = pages, fail_page, grow_to
        self.barrier = threading.Barrier(meet, timeout=3) if meet else None
        self.asked: list[int] = []
        self.lock = threading.Lock()

    def subscribers_page(self, *, modified_since=None, page=1, limit=250):
        with self.lock:
            self.asked.append(page)
        if self.barrier is not None and 2 <= page < 2 + self.barrier.parties:
            self.barrier.wait()  # BrokenBarrierError unless the reader has all of these in flight together
            time.sleep(0.01 * (2 + self.barrier.parties - page))  # and the later pages answer first
        if page == self.fail_page:
            raise RuntimeError(f"page {page} failed")
        total_pages = self.grow_to if self.grow_to and page >= self.pages else self.pages
        items = [{"id": page * 10 + i, "date_modified": "2024-05-01T00:00:00Z"} for i in (1, 2)] \
            if page <= total_pages else []
        return Page(items=items, total=2 * total_pages, next_page=page + 1 if page < total_pages else None,
                    total_pages=total_pages)


def _checkpoint():
    state = {"done": False, "started_at": None, "max_modified": None, "page": 1, "after": None,
             "min_id": None, "offset": 0}
    return {"resources": {"subscribers": state}, "since": {}}


def _read_all(client) -> list[tuple[list[int], dict]]:
    units = []
    with PagePrefetch(SimpleNamespace(bigcommerce=client), "subscribers", _checkpoint()) as pages:
        while True:
            items, _, checkpoint = pages.next_unit(1)
            units.append(([item["id"] for item in items], checkpoint["resources"]["subscribers"]))
            if checkpoint["resources"]["subscribers"]["done"]:
                return units


def test_pages_are_read_several_at_a_time_and_handed_on_in_order(settings):
    settings.BIGCOMMERCE_READ_CONCURRENCY = 3
    client = NumberedStore(6, meet=3)  # pages 2-4 answer only when all three are in flight, 4 first
    units = _read_all(client)
    assert [ids for ids, _ in units] == [[11, 12], [21, 22], [31, 32], [41, 42], [51, 52], [61, 62]]
    assert [state["page"] for _, state in units] == [2, 3, 4, 5, 6, 7]
    assert [state["done"] for _, state in units] == [False] * 5 + [True]
    assert sorted(client.asked) == [1, 2, 3, 4, 5, 6]  # each page once, none past the last


def test_one_read_at_a_time_cannot_meet_the_parallel_double(settings):
    """The double's check is real: with one read in flight, the pages that need company never answer."""
    settings.BIGCOMMERCE_READ_CONCURRENCY = 1
    with pytest.raises(threading.BrokenBarrierError):
        _read_all(NumberedStore(4, meet=2))


def test_a_store_that_grows_during_the_read_is_read_to_its_new_end(settings):
    settings.BIGCOMMERCE_READ_CONCURRENCY = 4
    client = NumberedStore(2, grow_to=4)
    units = _read_all(client)
    assert [ids for ids, _ in units] == [[11, 12], [21, 22], [31, 32], [41, 42]]
    assert sorted(client.asked) == [1, 2, 3, 4]


def test_a_failed_page_reaches_the_run_after_the_pages_before_it(settings):
    settings.BIGCOMMERCE_READ_CONCURRENCY = 3
    with PagePrefetch(SimpleNamespace(bigcommerce=NumberedStore(6, fail_page=3)), "subscribers",
                      _checkpoint()) as pages:
        assert [i["id"] for i in pages.next_unit(1)[0]] == [11, 12]
        assert [i["id"] for i in pages.next_unit(1)[0]] == [21, 22]
        with pytest.raises(RuntimeError, match="page 3 failed"):
            pages.next_unit(1)


def test_a_resumed_read_starts_at_its_checkpoint_page(settings):
    settings.BIGCOMMERCE_READ_CONCURRENCY = 2
    client = NumberedStore(5)
    checkpoint = _checkpoint()
    checkpoint["resources"]["subscribers"].update(page=4, pages=5, started_at="2024-05-01T00:00:00+00:00")
    with PagePrefetch(SimpleNamespace(bigcommerce=client), "subscribers", checkpoint) as pages:
        items, _, after = pages.next_unit(4)
    assert [i["id"] for i in items] == [41, 42, 51, 52] and after["resources"]["subscribers"]["done"]
    assert sorted(client.asked) == [4, 5]


class Orders:
    def __init__(self, ids):
        self.ids, self.asked = ids, []

    def orders_page(self, *, modified_since=None, min_id=None, max_id=None, limit=250, **_):
        self.asked.append((min_id, max_id))
        ids = [i for i in self.ids if i >= (min_id or 0) and i <= (max_id or 10**9)][:limit]
        return Page(items=[{"id": i, "date_modified": "Wed, 01 May 2024 00:00:00 +0000"} for i in ids])


def _orders_read(client, count):
    state = {"done": False, "started_at": None, "max_modified": None, "page": 1, "after": None, "min_id": None,
             "offset": 0, "count": count}
    with PagePrefetch(SimpleNamespace(bigcommerce=client), "orders",
                      {"resources": {"orders": state}, "since": {}}) as pages:
        items, _, after = pages.next_unit(5)
    assert after["resources"]["orders"]["done"]
    return [o["id"] for o in items]


def test_full_run_orders_are_read_as_id_ranges_up_to_the_count(settings, monkeypatch):
    """After the first page, the count's pages as disjoint id ranges read together; an order placed since
    the count is left to the next run."""
    monkeypatch.setattr(bigcommerce_pages, "PAGE_LIMIT", 2)
    settings.BIGCOMMERCE_READ_CONCURRENCY = 3
    client = Orders(range(1, 8))  # the count said 6; order 7 came in since
    assert _orders_read(client, 6) == [1, 2, 3, 4, 5, 6]
    assert client.asked == [(None, None), (3, 4), (5, 6)]


def test_orders_missing_from_the_ranges_are_read_on_by_min_id(settings, monkeypatch):
    """An order archived during the read leaves a gap: the ranges read fewer than the count, so min_id
    pages go on; no other order moves."""
    monkeypatch.setattr(bigcommerce_pages, "PAGE_LIMIT", 2)
    settings.BIGCOMMERCE_READ_CONCURRENCY = 3
    client = Orders([1, 2, 3, 5, 6, 7, 8])
    assert _orders_read(client, 6) == [1, 2, 3, 5, 6, 7, 8]
    assert client.asked == [(None, None), (3, 4), (5, 6), (7, None)]


@responses.activate
def test_every_reader_waits_for_the_window_once_the_reserve_is_reached(settings):
    """The quota pause is the client's, not one thread's: every reader that starts before the reset waits."""
    url = f"{settings.BIGCOMMERCE_API_URL}/stores/abc/v2/store"
    responses.get(url, json={}, headers={"X-Rate-Limit-Requests-Left": "1", "X-Rate-Limit-Time-Reset-Ms": "60000"})
    responses.get(url, json={})
    both_waiting = threading.Barrier(2, timeout=3)
    slept = []

    def sleep(seconds):  # returns only once both readers are in their pause
        slept.append((threading.current_thread().name, seconds))
        both_waiting.wait()

    client = BigCommerceClient("abc", "token", sleep=sleep)
    client.store_information()  # 1 left: within the reserve
    readers = [threading.Thread(target=client.store_information, name=f"reader-{n}") for n in (1, 2)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert sorted(name for name, _ in slept) == ["reader-1", "reader-2"]
    assert all(59 < seconds <= 60 for _, seconds in slept)
    assert not both_waiting.broken


@responses.activate
def test_the_reserve_counts_the_requests_still_in_flight(settings):
    """3 left with a reserve of 2 leaves room for one more request, not for the one still in flight too."""
    url = f"{settings.BIGCOMMERCE_API_URL}/stores/abc/v2/store"
    answered = threading.Event()
    release = threading.Event()

    def slow(request):  # the other reader's request: answered only after the first reader's answer
        release.wait(5)
        return (200, {}, "{}")

    responses.add_callback(responses.GET, f"{settings.BIGCOMMERCE_API_URL}/stores/abc/v2/orders/count", slow)
    responses.get(url, json={}, headers={"X-Rate-Limit-Requests-Left": "3", "X-Rate-Limit-Time-Reset-Ms": "60000"})
    responses.get(url, json={})
    slept = []
    client = BigCommerceClient("abc", "token", sleep=slept.append)
    other = threading.Thread(target=lambda: (client.orders_count(), answered.set()))
    other.start()
    while client._in_flight < 1:  # the other request is on its way
        time.sleep(0.01)
    client.store_information()  # 3 left, 1 other request in flight: within reserve + in flight
    release.set()
    other.join()
    client.store_information()
    assert len(slept) == 1 and 59 < slept[0] <= 60


def test_read_concurrency_follows_little_s_law_between_the_setting_and_the_read_ahead(settings):
    class Reads:
        def __init__(self, wanted):
            self.wanted = wanted

        def in_flight_wanted(self):
            return self.wanted

    settings.BIGCOMMERCE_READ_CONCURRENCY = 4
    assert read_concurrency(Reads(0.02)) == 4  # loopback: the setting
    assert read_concurrency(Reads(5.0)) == 6  # Standard plan (5/s) at 1 s an answer, with a tenth's margin
    assert read_concurrency(Reads(7.5)) == MAX_READ_CONCURRENCY == 8  # Pro at 0.5 s: every read-ahead slot
    assert read_concurrency(Reads(40.0)) == MAX_READ_CONCURRENCY


def test_units_grow_with_the_pages_the_quota_delivers_during_one_ortto_round_trip():
    """A unit waits for at least one Ortto round trip whatever its size: over a slow network it takes as many
    pages as the store's quota delivers meanwhile (whole batches of 100 still), over loopback the fewest."""
    class Reads:
        def __init__(self, wanted):
            self.wanted = wanted

        def in_flight_wanted(self):
            return self.wanted

    assert pages_per_unit() == pages_per_unit(Reads(None)) == 2  # nothing measured yet: 2 x 250 = 5 batches
    assert pages_per_unit(Reads(0.05)) == 2  # loopback
    assert pages_per_unit(Reads(2.5)) == 4  # Standard plan (5/s) at half a second
    assert pages_per_unit(Reads(7.5)) == 8  # Pro (15/s) at half a second
    assert pages_per_unit(Reads(40.0)) == MAX_PAGES_PER_UNIT == 8
    assert PREFETCH_PAGES >= 2 * MAX_PAGES_PER_UNIT  # the next unit is read while this one is sent
