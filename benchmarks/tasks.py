"""Benchmark steps that need Django, each run as its own process (`python -m benchmarks.tasks <step>`)
with DATABASE_URL pointing at the emulator's or the bridge's database. Each prints one JSON line.

The orchestrator (benchmarks/run.py) never imports Django itself: the emulator server, the sync worker
and the setup steps are separate processes with separate databases, as in production.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from collections import Counter, defaultdict

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ortto_bridge.settings")
os.environ.setdefault("SANDBOX", "1")

BENCH_STORE = "bench01"
ORTTO_INSTANCE = "acme-us"
ORTTO_KEY = "sbx-default-acmeus-0001"


def _setup():
    import django

    django.setup()


def _out(payload: dict) -> None:
    print("BENCH-JSON " + json.dumps(payload, default=str), flush=True)


# --- emulator side ---------------------------------------------------------------------------------


def emu_seed(args) -> None:
    _setup()
    from sandbox.bigcommerce.limits import quota_set
    from sandbox.bigcommerce.models import AppInstall
    from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
    from sandbox.bigcommerce.services import app_install_complete
    from sandbox.ortto.seed import seed_existing_people, seed_ortto_instances
    from sandbox.ortto.services import instance_get, instance_reset

    started = time.monotonic()
    store = seed_bigcommerce(store_hash=BENCH_STORE, name="Bench Outdoor", customers=args.n, orders=2 * args.n,
                             seed=7, b2b_share=args.b2b_share)
    catalog_seed(store, count=args.n // PRODUCTS_PER_CUSTOMERS)
    seed_users(store_hash=BENCH_STORE)
    install = AppInstall.objects.filter(store=store, installed=True).first() or app_install_complete(store=store)
    quota_set(store=store, requests=10**9, window_ms=30000)
    seed_ortto_instances()
    instance = instance_get(ORTTO_INSTANCE)
    instance_reset(instance, schema=True, faults=True)
    existing = 0
    if args.existing_fraction:
        from sandbox.bigcommerce.models import Customer

        step = max(int(round(1 / args.existing_fraction)), 1)
        people = [{"email": c.email, "first": "Before", "subscribed": False}
                  for c in Customer.objects.filter(store=store).order_by("bc_id")[::step]]
        seed_existing_people(instance, people)
        existing = len(people)
    _out({"token": install.access_token, "customers": args.n, "existing_in_ortto": existing,
          "seconds": time.monotonic() - started, **emu_counts(store)})


# The bench store's catalog grows with it: one product per 20 customers (beside the sandbox shop's four), two in
# three with an option (a variant named "Size: M"), some out of stock. The initial import reads it before the orders
# (sync/catalog/), ceil(products / 250) pages inside the same quota.
PRODUCTS_PER_CUSTOMERS = 20


def catalog_seed(store, *, count: int) -> int:
    from decimal import Decimal

    from django.utils import timezone

    from sandbox.bigcommerce.models import Product
    from sandbox.bigcommerce.services import catalog_ensure

    catalog_ensure(store)
    now = timezone.now()
    Product.objects.bulk_create([Product(
        store=store, bc_id=10_000 + i, variant_id=1_000_000 + i, sku=f"BENCH-{i}", name=f"Bench product {i}",
        slug=f"bench-product-{i}", option_name="Size" if i % 3 else "", option_value="SML"[i % 3] if i % 3 else "",
        price=Decimal("5.00") + i % 200, sale_price=Decimal("0"), inventory_level=(i * 7) % 11,
        date_modified=now) for i in range(count)], batch_size=2000, ignore_conflicts=True)
    return Product.objects.filter(store=store).count()


def emu_counts(store) -> dict:
    """The data set's sizes, and the people each resource must write (for the minimum Ortto calls)."""
    from sandbox.bigcommerce.models import Customer, Order, Product, Subscriber

    subscribers = Subscriber.objects.filter(store=store).count()
    orders = Order.objects.filter(store=store).count()
    placed = Order.objects.filter(store=store).exclude(status_id=0).count()
    # The people each resource must write (for the minimum number of Ortto calls).
    sub_emails = {e.lower() for e in Subscriber.objects.filter(store=store).values_list("email", flat=True)}
    cust_emails = {e.lower() for e in Customer.objects.filter(store=store).values_list("email", flat=True)}
    order_customers, guest_emails = set(), set()
    for customer_id, billing in Order.objects.filter(store=store).exclude(status_id=0).values_list(
            "customer_id", "billing_address").iterator(chunk_size=5000):
        if customer_id:
            order_customers.add(customer_id)
        else:
            email = ((billing or {}).get("email") or "").lower()
            if email:
                guest_emails.add(email)
    # Ordered product: one activity per line of a placed order (seeded orders hold one line each, see
    # sandbox.bigcommerce.serializers.order_lines), read from the orders pages themselves.
    ordered_products = sum(len(lines) or 1 for lines in Order.objects.filter(store=store).exclude(status_id=0)
                           .values_list("line_items", flat=True).iterator(chunk_size=5000))
    return {**organization_counts(store), "subscribers": subscribers, "orders": orders, "placed_orders": placed,
            "ordered_products": ordered_products, "products": Product.objects.filter(store=store).count(),
            "subscriber_people": len(sub_emails), "customer_people": len(cust_emails),
            "customers_also_subscribers": len(cust_emails & sub_emails),
            "guest_people_new_in_orders": len(guest_emails - sub_emails - cust_emails),
            "people_with_orders": len(order_customers) + len(guest_emails),
            "distinct_people": len(sub_emails | cust_emails | guest_emails)}


def organization_counts(store) -> dict:
    """The organizations the store's data makes (sync.engine.organizations' rules), for the minimum Ortto calls:
    one merge per 100 organizations and one add call per organization (each has at least one person)."""
    from sandbox.bigcommerce.models import Customer, Order
    from sync.engine.organizations import customer_company, guest_order_company

    members: dict[str, str] = {}
    for customer in Customer.objects.filter(store=store).values("email", "company", "addresses").iterator(5000):
        company = customer_company(customer)
        if company:
            members[customer["email"].lower()] = company.key
    for customer_id, billing in (Order.objects.filter(store=store, customer_id=0).exclude(status_id=0)
                                 .values_list("customer_id", "billing_address").iterator(5000)):
        company = guest_order_company({"customer_id": customer_id, "billing_address": billing})
        if company:
            members[(billing.get("email") or "").lower()] = company.key
    return {"organizations": len(set(members.values())), "organization_people": len(members)}


def emu_stats(args) -> None:
    _setup()
    from sandbox.bigcommerce.models import Customer, SandboxStore

    store = SandboxStore.objects.get(store_hash=BENCH_STORE)
    _out({"customers": Customer.objects.filter(store=store).count(), **emu_counts(store)})


def emu_touch(args) -> None:
    """Change a fraction of the customers now (new last name, fresh date_modified)."""
    _setup()
    from django.utils import timezone

    from sandbox.bigcommerce.models import Customer

    ids = list(Customer.objects.filter(store__store_hash=BENCH_STORE).order_by("bc_id").values_list("pk", flat=True))
    count = int(len(ids) * args.fraction)
    step = max(len(ids) // max(count, 1), 1)
    chosen = ids[::step][:count]
    now = timezone.now()
    for start in range(0, len(chosen), 500):
        Customer.objects.filter(pk__in=chosen[start:start + 500]).update(last_name="Changed", date_modified=now)
    _out({"changed": len(chosen)})


# --- bridge side -------------------------------------------------------------------------------------


def bridge_setup(args) -> None:
    _setup()
    from django.conf import settings
    from django.utils import timezone

    from stores.models import Store, StoreUser
    from sync.connect.connections import connection_prepare
    from sync.models import Connection, OrttoAccount

    store = Store.objects.create(
        store_hash=BENCH_STORE, name="Bench Outdoor", access_token=args.token,
        scopes=" ".join(settings.BIGCOMMERCE_REQUIRED_SCOPES), is_installed=True, owner_bc_id=2001,
        owner_email="owner@bench.example", installed_at=timezone.now(),
    )
    StoreUser.objects.create(store=store, bc_user_id=2001, email="owner@bench.example", is_owner=True)
    account = OrttoAccount.objects.create(name=ORTTO_INSTANCE, business_name="Acme Outdoor (US)", region="default",
                                          api_key=ORTTO_KEY, tracking_key="trk", account_url="http://x/")
    connection = Connection.objects.create(store=store, account=account, merge_strategy=args.strategy,
                                           state=Connection.State.ACTIVE, connected_at=timezone.now())
    connection_prepare(connection)
    _out({"store_id": store.pk, "connection_id": connection.pk, "webhook_secret": store.webhook_secret})


class RequestCounter:
    """Counts every HTTP request the worker sends, by API, endpoint and status (and Ortto batch sizes)."""

    def __init__(self):
        import requests

        self.lock = threading.Lock()
        self.calls = Counter()
        self.status = Counter()
        self.items = Counter()
        self.strategies = Counter()
        # Requests answered per second of the run, per API, and the seconds each BigCommerce resource
        # was read in: where the limiting API sat idle (report: "Where the seconds go").
        self.started = time.monotonic()
        self.timeline = defaultdict(Counter)
        self.phases = {}
        original = requests.Session.send
        counter = self

        def send(session, request, **kwargs):
            response = original(session, request, **kwargs)
            counter.record(request, response)
            return response

        requests.Session.send = send

    def record(self, request, response):
        from urllib.parse import urlsplit

        path = urlsplit(request.url).path
        if "/sandbox/bigcommerce/api/stores/" in path:
            api, endpoint = "bigcommerce", request.method + " " + path.split("/", 6)[-1]
        elif "/sandbox/ortto/" in path:
            api, endpoint = "ortto", path.split("/v1/", 1)[-1]
        else:
            api, endpoint = "other", path
        key = f"{api} {endpoint}"
        items, strategy = 0, None
        if api == "ortto" and request.body:
            try:
                body = json.loads(request.body)
                items = len(body.get("people") or body.get("activities") or body.get("accounts")
                            or body.get("inclusion_ids") or [])
                strategy = body.get("merge_strategy")
            except ValueError:
                pass
        second = int(time.monotonic() - self.started)
        resource = None
        if api == "bigcommerce":
            resource = ("subscribers" if "subscribers" in endpoint else "customers" if "customers" in endpoint
                        else "orders" if "orders" in endpoint else "catalog" if "catalog" in endpoint else None)
        with self.lock:
            self.timeline[api][second] += 1
            if resource:
                first, _ = self.phases.get(resource, (second, second))
                self.phases[resource] = (first, second)
            self.calls[key] += 1
            self.status[f"{api} {response.status_code}"] += 1
            self.items[key] += items
            if strategy is not None:
                self.strategies[f"strategy {strategy}"] += 1

    def reset(self):
        with self.lock:
            self.calls.clear(), self.status.clear(), self.items.clear(), self.strategies.clear()
            self.timeline.clear(), self.phases.clear()
            self.started = time.monotonic()

    def as_dict(self):
        by_api = defaultdict(int)
        for key, value in self.calls.items():
            by_api[key.split(" ", 1)[0]] += value
        end = max((max(seconds) for seconds in self.timeline.values() if seconds), default=-1) + 1
        timeline = {api: [seconds.get(i, 0) for i in range(end)] for api, seconds in self.timeline.items()}
        return {"calls": dict(self.calls), "status": dict(self.status), "items": dict(self.items),
                "strategies": dict(self.strategies), "by_api": dict(by_api), "timeline": timeline,
                "phases": dict(self.phases)}


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sync(args) -> None:
    """Run one sync inline (the worker's code path, unsliced) and report time, CPU, memory, requests."""
    counter = RequestCounter()
    _setup()
    from stores.models import Store
    from sync.engine.runs import sync_run_execute, sync_run_request
    from sync.models import SyncRun

    store = Store.objects.get(store_hash=BENCH_STORE)
    kind = {"initial": SyncRun.Kind.INITIAL, "incremental": SyncRun.Kind.INCREMENTAL}[args.kind]
    run, _ = sync_run_request(store=store, kind=kind, requested_by="bench", enqueue_run=False)
    rss_before = _rss_kb()
    counter.reset()
    samples, sampling = [], threading.Event()

    def sample_rss():  # (seconds, RSS kB) every second: is memory flat over the run?
        start = time.monotonic()
        while not sampling.wait(1.0):
            samples.append((round(time.monotonic() - start, 1), _rss_kb()))

    threading.Thread(target=sample_rss, daemon=True).start()
    cpu0, wall0 = os.times(), time.monotonic()
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        run = profiler.runcall(sync_run_execute, run_id=run.pk, sliced=False)
        profiler.dump_stats(os.environ["BENCH_PROFILE"] + "." + args.kind)
    else:
        run = sync_run_execute(run_id=run.pk, sliced=False)
    wall, cpu1 = time.monotonic() - wall0, os.times()
    sampling.set()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    half = len(samples) // 2
    rss_halves = [max((kb for _, kb in samples[:half]), default=0), max((kb for _, kb in samples[half:]), default=0)]
    _out({
        "kind": args.kind, "wall": wall, "cpu": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "rss_before_kb": rss_before, "peak_rss_kb": peak, "status": run.status, "summary": run.error_summary,
        "processed": run.processed, "failed": run.failed, "people_synced": run.people_synced,
        "counters": run.counters, "totals": run.totals, "requests": counter.as_dict(),
        "rss_halves_kb": rss_halves, "ortto_learned_rate": _learned_rate(), "merge_limiters": _merge_limiters(),
    })


def _merge_limiters():
    """What the AIMD merge limiter found (sync/engine/concurrency.py): limit, refusals, peak in flight."""
    from sync.engine import concurrency

    return [limiter.snapshot() for limiter in concurrency.limiters()]


def _learned_rate():
    """The rate the Ortto client learned from 429s (None: a fixed ORTTO_RATE_PER_SECOND, or no 429)."""
    from sync.ortto.client import LearnedRateGate, _gates

    learned = [(gate.rate, gate.limited) for gate in _gates.values() if isinstance(gate, LearnedRateGate)]
    return learned[0] if learned else None


# --- webhooks and admin ----------------------------------------------------------------------------------


def webhook_check(args) -> None:
    """Every distinct delivery stored once; duplicates counted on their event, not stored again."""
    _setup()
    from django.db.models import Sum

    from stores.models import WebhookEvent

    events = WebhookEvent.objects.filter(store__store_hash=BENCH_STORE)
    keys = events.values_list("dedup_key", flat=True)
    total = events.count()
    distinct = len(set(keys))
    duplicates = events.aggregate(n=Sum("duplicates"))["n"] or 0
    _out({"events": total, "distinct_keys": distinct, "duplicates_recorded": duplicates})


def _rows_insert(model, fields, row, count: int, chunk: int = 5000) -> None:
    """INSERT row(0) .. row(count - 1) (lists of prepared values for `fields`) with executemany, in one transaction."""
    from django.db import connection as db
    from django.db import transaction

    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        db.ops.quote_name(model._meta.db_table), ", ".join(db.ops.quote_name(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)))
    with transaction.atomic(), db.cursor() as cursor:
        for start in range(0, count, chunk):
            cursor.executemany(sql, [row(i) for i in range(start, min(start + chunk, count))])


def admin_seed(args) -> None:
    """Bulk-insert SyncRun and SyncEvent rows straight into the bridge database (executemany)."""
    _setup()
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection as db
    from django.utils import timezone

    from stores.models import Store
    from sync.models import Connection, SyncEvent, SyncRun

    started = time.monotonic()
    store = Store.objects.get(store_hash=BENCH_STORE)
    conn = Connection.objects.get(store=store)
    User = get_user_model()
    if not User.objects.filter(username="bench-admin").exists():
        User.objects.create_superuser("bench-admin", "admin@bench.example", "bench-password")
    # Extra stores so the run list is not one store's.
    stores = [store]
    for i in range(1, 20):
        s = Store.objects.create(store_hash=f"bx{i:04d}", name=f"Bench Store {i}", access_token="x",
                                 is_installed=True, owner_bc_id=1, owner_email="o@x.example",
                                 installed_at=timezone.now())
        Connection.objects.create(store=s, account=conn.account, merge_strategy=1,
                                  state=Connection.State.ACTIVE, connected_at=timezone.now())
        stores.append(s)
    conns = {c.store_id: c.pk for c in Connection.objects.all()}
    # Template rows from the model so that every NOT NULL column gets its default.
    fields = [f for f in SyncRun._meta.concrete_fields if not f.primary_key]
    now = timezone.now()
    statuses = [SyncRun.Status.SUCCEEDED] * 8 + [SyncRun.Status.PARTIAL, SyncRun.Status.FAILED]
    kinds = [SyncRun.Kind.INCREMENTAL] * 6 + [SyncRun.Kind.WEBHOOK] * 3 + [SyncRun.Kind.INITIAL]

    def run_row(i):
        s = stores[i % len(stores)]
        created = now - timedelta(minutes=(args.runs - i))
        obj = SyncRun(store_id=s.pk, connection_id=conns[s.pk], kind=kinds[i % len(kinds)],
                      status=statuses[i % len(statuses)], created_at=created, started_at=created,
                      finished_at=created + timedelta(seconds=3), heartbeat_at=created, processed=i % 50,
                      total=i % 50, people_synced=i % 7, failed=1 if i % 10 == 8 else 0,
                      counters={}, totals={}, checkpoint={})
        return [f.get_db_prep_save(getattr(obj, f.attname), db) for f in fields]

    _rows_insert(SyncRun, fields, run_row, args.runs)
    run_ids = list(SyncRun.objects.filter(failed__gt=0).order_by("-pk").values_list("pk", "store_id")[:2000])
    efields = [f for f in SyncEvent._meta.concrete_fields if not f.primary_key]

    def event_row(i):
        run_id, _ = run_ids[i % len(run_ids)]
        obj = SyncEvent(run_id=run_id, resource="customers", email=f"person{i}@example.com", bc_id=i,
                        message="Ortto refused the person (invalid): bad phone number",
                        level=SyncEvent.Level.ERROR)
        return [f.get_db_prep_save(getattr(obj, f.attname), db) if f.attname != "created_at"
                else f.get_db_prep_save(now, db) for f in efields]

    _rows_insert(SyncEvent, efields, event_row, args.events)
    with db.cursor() as cursor:
        cursor.execute("ANALYZE")
    _out({"runs": SyncRun.objects.count(), "events": SyncEvent.objects.count(),
          "seconds": time.monotonic() - started})


def admin_pages(args) -> None:
    """Time admin pages with Django's test client, logged in as a superuser, and count their queries."""
    _setup()
    from django.conf import settings
    from django.db import connection as db
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    from stores.models import Store
    from sync.models import SyncRun

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["*"]
    client = Client()
    assert client.login(username="bench-admin", password="bench-password")
    store = Store.objects.get(store_hash=BENCH_STORE)
    run = SyncRun.objects.filter(failed__gt=0).order_by("-pk").first()
    pages = {
        "run list": reverse("admin:sync_syncrun_changelist"),
        "run list, filtered (status=failed)": reverse("admin:sync_syncrun_changelist") + "?status__exact=failed",
        "run list, search store hash": reverse("admin:sync_syncrun_changelist") + f"?q={BENCH_STORE}",
        "run page (with events)": reverse("admin:sync_syncrun_change", args=[run.pk]),
        "event list": reverse("admin:sync_syncevent_changelist"),
        "store list": reverse("admin:stores_store_changelist"),
        "store page": reverse("admin:stores_store_change", args=[store.pk]),
    }
    results = {}
    for name, url in pages.items():
        timings = []
        for _ in range(args.repeat):
            with CaptureQueriesContext(db) as queries:
                t0 = time.perf_counter()
                response = client.get(url)
                timings.append(time.perf_counter() - t0)
        results[name] = {"url": url, "status": response.status_code, "median_ms": sorted(timings)[len(timings) // 2] * 1000,
                         "max_ms": max(timings) * 1000, "queries": len(queries)}
    _out({"pages": results})


STEPS = {
    "emu-seed": emu_seed, "emu-stats": emu_stats, "emu-touch": emu_touch, "bridge-setup": bridge_setup, "sync": sync,
    "webhook-check": webhook_check, "admin-seed": admin_seed, "admin-pages": admin_pages,
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=sorted(STEPS))
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--existing-fraction", type=float, default=0.0)
    parser.add_argument("--b2b-share", type=float, default=0.0)
    parser.add_argument("--token", default="")
    parser.add_argument("--strategy", type=int, default=1)
    parser.add_argument("--kind", default="initial")
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    STEPS[args.step](args)


if __name__ == "__main__":
    main(sys.argv[1:])
