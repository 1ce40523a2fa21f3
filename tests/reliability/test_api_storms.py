"""Case 3 — API storms: ~10 % of the calls to both APIs answer 429 / 5xx, time out or have their
connection reset (some after the server did the work), and halfway through, Ortto starts answering 401
to one connection's key. Every record reaches Ortto where the key is valid; the 401 connection is marked
"needs reconnect", stops cleanly, and after Reconnect catches up without loss."""

import random
from collections import Counter

import pytest
import requests
from requests.adapters import HTTPAdapter

from sandbox.bigcommerce.limits import faults_reset, faults_set
from sandbox.bigcommerce.models import Customer, Order, SandboxStore, Subscriber
from sandbox.ortto.models import Instance, Person, PersonActivity, RequestLog
from sandbox.ortto.services import instance_set_faults, instance_set_revoked
from sync.connect.connections import connection_connect, connection_sync_now
from sync.connect.selectors import app_state
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import Connection, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

CUSTOMERS, ORDERS = 1000, 800


class Storm:
    """Connection resets injected at the HTTP adapter (half before the request is sent, half after the
    server answered: the work is done but the client never hears of it), and a tally of every fault seen."""

    def __init__(self, monkeypatch, *, reset_probability: float, seed: int = 7):
        self.rng = random.Random(seed)
        self.seen = Counter()
        original = HTTPAdapter.send
        storm = self

        def send(adapter, request, **kwargs):
            api = "/sandbox/bigcommerce/api/" in request.url or "/sandbox/ortto/" in request.url
            side = "bigcommerce" if "/bigcommerce/" in request.url else "ortto"
            if api:
                storm.seen[f"{side} calls"] += 1
            if api and storm.rng.random() < reset_probability / 2:
                storm.seen[f"{side} reset before send"] += 1
                raise requests.ConnectionError("Connection reset by peer (injected)")
            try:
                response = original(adapter, request, **kwargs)
            except requests.Timeout:
                storm.seen[f"{side} timeout"] += 1
                raise
            if api and response.status_code in (429, 500, 502, 503, 504):
                storm.seen[f"{side} {response.status_code}"] += 1
            if api and storm.rng.random() < reset_probability / 2:
                storm.seen[f"{side} reset after answer"] += 1
                response.close()
                raise requests.ConnectionError("Connection reset by peer after the answer (injected)")
            return response

        monkeypatch.setattr(HTTPAdapter, "send", send)

    @property
    def faults(self) -> int:
        return sum(n for key, n in self.seen.items() if not key.endswith("calls"))


def _drive(run_id, **kwargs):
    """What the maintenance tick does for an interrupted run, without waiting for the stall timeout."""
    for _ in range(30):
        run = sync_run_execute(run_id=run_id, **kwargs)
        run = SyncRun.objects.get(pk=run_id)
        if not run.is_active:
            return run
    raise AssertionError(f"run {run_id} did not finish: {run.status} {run.error_summary}")


def _delivered(store_hash: str, instance_name: str):
    emails = {e.lower() for e in Customer.objects.filter(store__store_hash=store_hash).values_list("email", flat=True)}
    emails |= {e.lower() for e in Subscriber.objects.filter(store__store_hash=store_hash).values_list("email", flat=True)}
    people = set(Person.objects.filter(instance__name=instance_name).values_list("email", flat=True))
    placed = Order.objects.filter(store__store_hash=store_hash).exclude(status_id=0).count()
    activities = PersonActivity.objects.filter(instance__name=instance_name, activity_id__startswith="act:cm:placed")
    keys = list(activities.values_list("key", flat=True))
    return emails - people, placed, len(keys), len(set(keys))


def test_storm_on_both_apis_with_a_401_halfway(connect_store, sandbox_account, make_user, sandbox_live, settings,
                                               monkeypatch, fast_retries):
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 50)
    settings.HTTP_TIMEOUT_SECONDS = 0.6
    healthy = connect_store("storma", sandbox_account("acme-us"), customers=CUSTOMERS, orders=ORDERS, seed=11)
    eu_account = sandbox_account("acme-eu")
    revoked = connect_store("stormb", eu_account, customers=CUSTOMERS, orders=ORDERS, seed=12)
    # 429 3 %, 5xx 3 %, timeouts 2 % at the emulators; connection resets 2 % at the client.
    for store_hash in ("storma", "stormb"):
        faults_set(store=SandboxStore.objects.get(store_hash=store_hash), error_429_probability=0.03,
                   error_500_probability=0.03, slow_probability=0.02, slow_seconds=1.2)
    for name in ("acme-us", "acme-eu"):
        instance_set_faults(Instance.objects.get(name=name), p429=0.03, p500=0.03, ptimeout=0.02, timeout_seconds=1.2)
    storm = Storm(monkeypatch, reset_probability=0.02)

    # The healthy store: everything arrives, once.
    run, _ = sync_run_request(store=healthy, kind=SyncRun.Kind.INITIAL)
    run = _drive(run.pk)
    assert run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), run.error_summary
    missing, placed, activities, distinct = _delivered("storma", "acme-us")
    assert not missing
    assert activities == distinct == placed

    # The other store: its Ortto key is disconnected halfway through its initial sync.
    pages = []

    def revoke_halfway(current):
        pages.append(current.pk)
        if len(pages) == 6:
            instance_set_revoked(Instance.objects.get(name="acme-eu"), revoked=True)

    run, _ = sync_run_request(store=revoked, kind=SyncRun.Kind.INITIAL)
    run = _drive(run.pk, on_page=revoke_halfway)
    assert run.status == SyncRun.Status.FAILED
    assert "Reconnect" in run.error_summary
    connection = Connection.objects.get(store=revoked)
    assert connection.state == Connection.State.NEEDS_RECONNECT
    assert app_state(store=revoked)["connection"]["needs_reconnect"] is True
    # Stopped cleanly: one 401, never retried (Ortto bans IPs that keep sending bad keys), no new run.
    eu = Instance.objects.get(name="acme-eu")
    assert RequestLog.objects.filter(instance=eu, status=401).count() <= 1
    assert connection_sync_now(store=revoked, requested_by="test")  # refused: needs reconnect
    assert not SyncRun.objects.filter(store=revoked, status__in=SyncRun.ACTIVE_STATUSES).exists()
    missing_before, *_ = _delivered("stormb", "acme-eu")
    assert missing_before  # it really was cut short

    # Reconnect (the key works again; the owner goes through the connect flow with the same account).
    instance_set_revoked(eu, revoked=False)
    owner = make_user("owner@stormb.example")
    eu_account.members.add(owner)
    outcome = connection_connect(store=revoked, account=eu_account, merge_strategy=connection.merge_strategy,
                                 user=owner, bc_user_id=revoked.owner_bc_id)
    assert outcome.ok, outcome.reason
    assert Connection.objects.get(pk=connection.pk).state == Connection.State.ACTIVE
    run = _drive(outcome.run.pk)
    assert run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), run.error_summary
    missing, placed, activities, distinct = _delivered("stormb", "acme-eu")
    assert not missing
    assert activities == distinct == placed

    for store_hash in ("storma", "stormb"):
        faults_reset(store=SandboxStore.objects.get(store_hash=store_hash))
    calls = storm.seen["ortto calls"] + storm.seen["bigcommerce calls"]
    assert storm.faults >= 0.05 * calls, storm.seen
    print(f"FIGURE case3: calls={calls} records_per_store={CUSTOMERS} customers + {ORDERS} orders; faults={storm.faults} "
          f"{dict(storm.seen)}")
