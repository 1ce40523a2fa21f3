"""The benchmark harness at a tiny size, for correctness only (not timed): separate emulator server and
worker processes, quotas on, initial then incremental syncs, the admin tables, and BENCHMARKS.md written."""

import math

import pytest

from benchmarks import run as bench

pytestmark = pytest.mark.bench


def test_bench_harness_smoke(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    results = bench.main(["--quick", "--sizes", "300", "--only", "sync,admin", "--scale", "2",
                          "--work", str(tmp_path), "--out", str(out), "--postgres", ""])
    size = results["sizes"][0]
    data = size["data"]
    for mode in ("unthrottled", "throttled"):
        run = size[mode]
        assert run["status"] == "succeeded", run["summary"]
        calls = run["requests"]["calls"]
        # One page per 250 records per resource: the progress bar's totals come with the first pages.
        assert calls["bigcommerce GET v3/customers"] == math.ceil(data["customers"] / 250)
        assert calls["bigcommerce GET v3/customers/subscribers"] == math.ceil(data["subscribers"] / 250)
        assert run["ortto_stats"]["placed_order_activities"] == data["placed_orders"]
        # Line items come with the orders pages: one request per 250 orders (the count says when the last
        # is read), and Ordered product costs ceil(lines / 100) activity calls beside Placed order's.
        orders = data["orders"]
        assert calls["bigcommerce GET v2/orders"] == math.ceil(orders / 250)
        assert not [key for key in calls if "v2/" in key and "/products" in key]
        # The catalog mirror is read inside the same quota, one page per 250 products: the bench store holds one
        # product per 20 customers beside the shop's four, and the quota bound counts their pages.
        assert data["products"] == 300 // 20 + 4
        assert calls["bigcommerce GET v3/catalog/products"] == math.ceil(data["products"] / 250)
        assert run["counters"]["catalog"]["fetched"] == data["products"]
        assert run["ortto_stats"]["ordered_product_activities"] == data["ordered_products"]
        assert calls["ortto activities/create"] == (math.ceil(data["placed_orders"] / 100)
                                                    + math.ceil(data["ordered_products"] / 100))
        assert run["ortto_stats"]["people"] == (data["subscriber_people"] + data["customer_people"]
                                                - data["customers_also_subscribers"]
                                                + data["guest_people_new_in_orders"])
    nothing = size["incremental_nothing"]["requests"]
    assert nothing["by_api"].get("ortto", 0) == 0
    assert all(nothing["calls"][f"bigcommerce GET {p}"] == 1
               for p in ("v3/customers", "v3/customers/subscribers", "v2/orders", "v3/catalog/products"))
    changed = size["incremental_changed"]
    assert changed["requests"]["by_api"].get("ortto", 0) == math.ceil(changed["changed"] / 100)
    assert results["admin"]["pages"]["run list"]["status"] == 200
    text = out.read_text()
    assert "## 1. Initial sync against the quota bound" in text and "## 5. Admin at scale" in text
    assert "| 1 / 1 (1 page in " in text  # the catalog's pages against their minimum, and how long they took


def test_bench_b2b_organizations_reach_the_minimum(tmp_path):
    """The B2B data set: one merge per 100 organizations, one add call per organization, none when
    nothing changed."""
    out = tmp_path / "BENCHMARKS.md"
    results = bench.main(["--quick", "--sizes", "200", "--only", "b2b", "--scale", "2", "--work", str(tmp_path),
                          "--out", str(out), "--postgres", ""])
    b2b = results["b2b"]
    orgs = b2b["data"]["organizations"]
    assert orgs >= 5
    initial = b2b["throttled"]
    assert initial["status"] == "succeeded", initial["summary"]
    calls = initial["requests"]["calls"]
    assert calls["ortto accounts/merge"] == math.ceil(orgs / 100)
    assert calls["ortto accounts/contacts/add"] == orgs
    assert initial["counters"]["organizations"]["created"] == orgs
    nothing = b2b["incremental_nothing"]["requests"]["calls"]
    assert not any(key.startswith("ortto accounts/") for key in nothing)
    assert "## 1c. B2B store: organizations" in out.read_text()


def test_bench_regimes_side_by_side(tmp_path, monkeypatch):
    """Plans' quotas (BC 150 or 450 per 30 s x Ortto 10 or 60/s) on one data set, at loopback speed and over a
    slow network, no Ortto rate given and no Ortto concurrency limit told; the regime list from BENCH_REGIMES."""
    monkeypatch.setenv("BENCH_REGIMES", "150/10,450/60@100/60")
    out = tmp_path / "BENCHMARKS.md"
    results = bench.main(["--quick", "--only", "regimes", "--regime-sizes", "300", "--work", str(tmp_path),
                          "--out", str(out), "--postgres", "", "--merge-limit", "3"])
    size = results["regimes"][0]
    assert [run["regime"]["latency_ms"] for run in size["runs"]] == [None, [100, 60]]
    assert results["merge_limit"] == 3
    for run in size["runs"]:
        merges = run["merge_concurrency"]
        assert merges["limit"] == 3 and 0 < merges["merges"] <= run["requests"]["calls"]["ortto person/merge"]
        assert run["merge_limiters"] and run["merge_limiters"][0]["refusals"] == merges["refused"]
        assert run["status"] == "succeeded", run["summary"]
        assert run["ortto_stats"]["people"] == size["data"]["distinct_people"]
        assert sum(run["counters"][r]["fetched"] for r in ("subscribers", "customers", "orders")) == sum(
            run["totals"][r] for r in ("subscribers", "customers", "orders"))
        # The request timeline counts every request once, and places the reading phases in order.
        timeline, phases = run["requests"]["timeline"], run["requests"]["phases"]
        assert {api: sum(counts) for api, counts in timeline.items()} == run["requests"]["by_api"]
        assert phases["subscribers"][1] <= phases["customers"][1] <= phases["orders"][1]
    text = out.read_text()
    assert "## 1. Initial import at the quota bound, per plan (regimes)" in text
    assert "**Where the seconds go**" in text
    assert "**Over a real network**" in text and "| 100 / 60 ms |" in text


def test_bench_slow_pages_are_read_several_at_a_time(tmp_path):
    """Every BigCommerce request slowed down in the emulator: the import reads pages one at a time, then
    several at a time, and both import everything."""
    out = tmp_path / "BENCHMARKS.md"
    results = bench.main(["--quick", "--only", "latency", "--page-latency", "0.2", "--work", str(tmp_path),
                          "--out", str(out), "--postgres", ""])
    latency = results["latency"]
    assert [run["read_concurrency"] for run in latency["runs"]] == [1, 4]
    for run in latency["runs"]:
        assert run["status"] == "succeeded", run["summary"]
        assert run["ortto_stats"]["people"] == latency["data"]["distinct_people"]
        assert run["requests"]["status"].get("bigcommerce 429", 0) == 0
    assert "## 1d. Slow BigCommerce pages: reading several at a time" in out.read_text()
