"""The initial import's catalog read over real HTTP against the emulated BigCommerce (sync/catalog/journeys.py,
catalog_read_page; sync/engine/runs.py, _catalog_read): a store with hundreds of products, each with its variant.

- A worker that dies in the middle of the catalog, or a run whose time slice runs out there, resumes at the next
  page: every product is mirrored once, and no page is read twice.
- On a tiny quota the read waits for the window instead of drawing a 429, and the mirror is complete.
"""

from collections import Counter
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from requests.adapters import HTTPAdapter

from sandbox.bigcommerce.limits import quota_set
from sandbox.bigcommerce.models import Product
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete, catalog_ensure
from sandbox.ortto.seed import seed_ortto_instances
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import CatalogProduct, CatalogVariant, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

GENERATED = 650  # three pages of 250


class Crash(Exception):
    """What a worker killed in the middle of a run leaves behind: the pages it committed, nothing else."""


class Wire:
    """Every BigCommerce API request the bridge makes, with its answer's status."""

    def __init__(self, monkeypatch):
        self.catalog_reads: list[dict] = []
        self.statuses: Counter = Counter()
        original = HTTPAdapter.send
        wire = self

        def send(adapter, request, **kwargs):
            response = original(adapter, request, **kwargs)
            if "/sandbox/bigcommerce/api/" in request.url:
                wire.statuses[response.status_code] += 1
                if "/v3/catalog/products" in request.url:
                    query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
                    wire.catalog_reads.append({"query": query, "status": response.status_code})
            return response

        monkeypatch.setattr(HTTPAdapter, "send", send)

    def catalog_pages(self) -> list[str]:
        """Where each answered catalog page started (its `id:greater`, "" for the first)."""
        return [read["query"].get("id:greater", "") for read in self.catalog_reads if read["status"] == 200]


@pytest.fixture
def big_catalog(make_account, make_connection, make_store, sandbox_live, settings, monkeypatch):
    monkeypatch.setattr("stores.http.backoff_delay", lambda attempt: 0.01 * attempt)

    def make(store_hash, *, quota=100000, window_ms=1000):
        sandbox_store = seed_bigcommerce(store_hash=store_hash, name="Big Catalog Co.", customers=6, orders=4, seed=5)
        catalog_ensure(sandbox_store)  # the four shop products, then many more
        now = timezone.now()
        Product.objects.bulk_create([Product(
            store=sandbox_store, bc_id=1000 + i, variant_id=100000 + i, sku=f"GEN-{i}", name=f"Generated {i}",
            slug=f"generated-{i}", option_name="Size", option_value="SML"[i % 3], price=Decimal("10.00") + i,
            inventory_level=i % 4, date_modified=now) for i in range(GENERATED)])
        quota_set(store=sandbox_store, requests=quota, window_ms=window_ms)
        seed_users(store_hash=store_hash)
        install = app_install_complete(store=sandbox_store)
        seed_ortto_instances()
        store = make_store(store_hash, name="Big Catalog Co.", access_token=install.access_token)
        make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=1)
        run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL, enqueue_run=False)
        return sandbox_store, store, run

    return make


def _mirror_complete(sandbox_store, store) -> None:
    expected = set(Product.objects.filter(store=sandbox_store).values_list("bc_id", flat=True))
    mirrored = list(CatalogProduct.objects.filter(store=store).values_list("product_id", flat=True))
    assert len(expected) == GENERATED + 4
    assert sorted(mirrored) == sorted(expected)  # each product present, once
    assert CatalogVariant.objects.filter(product__store=store).count() == len(expected)


def test_a_worker_killed_mid_catalog_resumes_at_the_next_page(big_catalog, monkeypatch):
    sandbox_store, store, run = big_catalog("cat1")
    wire = Wire(monkeypatch)

    def die_after_two_catalog_pages(current):
        if (current.checkpoint.get("catalog") or {}).get("after") and current.counters["catalog"]["fetched"] >= 500:
            raise Crash("worker killed")

    with pytest.raises(Crash):
        sync_run_execute(run_id=run.pk, on_page=die_after_two_catalog_pages)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.QUEUED and not run.checkpoint.get("catalog_done")
    assert CatalogProduct.objects.filter(store=store).count() == 500  # two pages committed, the third never read
    assert len(wire.catalog_pages()) == 2

    run = sync_run_execute(run_id=run.pk)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    _mirror_complete(sandbox_store, store)
    pages = wire.catalog_pages()
    assert len(pages) == 3 and len(set(pages)) == 3, pages  # no page read twice
    assert pages[0] == "" and pages[1:] == sorted(pages[1:], key=int)
    assert run.counters["catalog"]["fetched"] == GENERATED + 4  # read once each, over both attempts
    assert "product_activities" not in run.counters  # no product activity in an import: no line for them


def test_a_slice_that_runs_out_mid_catalog_resumes_at_the_next_page(big_catalog, monkeypatch, settings):
    sandbox_store, store, run = big_catalog("cat2")
    wire = Wire(monkeypatch)
    settings.SYNC_TASK_SLICE_SECONDS = 240

    def out_of_time_after_first_catalog_page(current):
        if (current.checkpoint.get("catalog") or {}).get("after"):
            settings.SYNC_TASK_SLICE_SECONDS = -1  # the slice is used up at the next page's check

    run = sync_run_execute(run_id=run.pk, on_page=out_of_time_after_first_catalog_page)
    assert run.status == SyncRun.Status.QUEUED
    assert run.checkpoint["catalog"] == {"after": 1000 + 245, "since": None, "done": False}  # 4 shop products + 246
    assert CatalogProduct.objects.filter(store=store).count() == 250

    settings.SYNC_TASK_SLICE_SECONDS = 240
    run = sync_run_execute(run_id=run.pk)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    _mirror_complete(sandbox_store, store)
    pages = wire.catalog_pages()
    assert pages == ["", "1245", "1495"]
    assert run.counters["catalog"]["fetched"] == GENERATED + 4


def test_the_catalog_read_keeps_inside_a_tiny_quota(big_catalog, monkeypatch, settings):
    # Five requests a second (BigCommerce's smallest plan allows 150 per 30 s): the run waits for each window.
    sandbox_store, store, run = big_catalog("cat3", quota=5, window_ms=1000)
    wire = Wire(monkeypatch)

    run = sync_run_execute(run_id=run.pk, sliced=False)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert wire.statuses[429] == 0, wire.statuses  # never beyond the quota
    _mirror_complete(sandbox_store, store)
    assert len(wire.catalog_pages()) == 3  # ceil(654 / 250)
    assert run.counters["catalog"]["fetched"] == GENERATED + 4
