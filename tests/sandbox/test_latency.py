"""The emulators' answer latency (sandbox/latency.py) and what the emulated Ortto records of merges in flight.
The latency is a sleep: these tests replace it and check who waits how long, never the clock."""

import json
import random

import pytest

from sandbox import latency
from sandbox.bigcommerce import services as bc_services
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.ortto import services
from sandbox.ortto.models import InFlightMerge, Instance, RequestLog
from sandbox.ortto.seed import seed_ortto_instances

pytestmark = pytest.mark.django_db

US_KEY = "sbx-default-acmeus-0001"


@pytest.fixture
def slept(monkeypatch):
    waits = []
    monkeypatch.setattr("sandbox.latency.time.sleep", waits.append)
    return waits


def test_each_answer_takes_the_mean_within_the_jitter():
    rng = random.Random(4)
    waits = [latency.answer_seconds(500, jitter=0.2, rng=rng) for _ in range(2000)]
    assert 0.4 <= min(waits) < 0.42 and 0.58 < max(waits) <= 0.6
    assert sum(waits) / len(waits) == pytest.approx(0.5, abs=0.01)
    assert latency.answer_seconds(0) == 0 and latency.answer_seconds(300, jitter=0) == 0.3


def test_latency_is_off_by_default(client, slept):
    seed_ortto_instances()
    response = client.post("/sandbox/ortto/default/v1/person/custom-field/get", data="{}",
                           content_type="application/json", headers={"X-Api-Key": US_KEY})
    assert response.status_code == 200 and slept == []


def test_bigcommerce_answers_take_the_configured_latency(client, settings, slept):
    settings.SANDBOX_BIGCOMMERCE_LATENCY_MS = 500
    store = seed_bigcommerce(store_hash="lat1", name="Latency", customers=3, orders=0, seed=1)
    seed_users(store_hash="lat1")
    token = bc_services.app_install_complete(store=store).access_token
    response = client.get("/sandbox/bigcommerce/api/stores/lat1/v3/customers", HTTP_X_AUTH_TOKEN=token)
    assert response.status_code == 200
    assert len(slept) == 1 and 0.4 <= slept[0] <= 0.6


def test_ortto_answers_take_the_configured_latency_and_an_instance_setting_wins(client, settings, slept):
    settings.SANDBOX_ORTTO_LATENCY_MS = 300
    seed_ortto_instances()
    url = "/sandbox/ortto/default/v1/person/custom-field/get"
    client.post(url, data="{}", content_type="application/json", headers={"X-Api-Key": US_KEY})
    client.post(url, data="{}", content_type="application/json", headers={"X-Api-Key": "wrong"})
    assert len(slept) == 2 and all(0.24 <= s <= 0.36 for s in slept), "refusals take it too"
    services.instance_set_faults(Instance.objects.get(name="acme-us"), latency_ms=1000)
    client.post(url, data="{}", content_type="application/json", headers={"X-Api-Key": US_KEY})
    assert 0.8 <= slept[-1] <= 1.2


def test_a_merge_holds_its_slot_while_it_takes_its_latency(client, settings, monkeypatch):
    settings.SANDBOX_ORTTO_LATENCY_MS = 300
    seed_ortto_instances()
    held = []
    monkeypatch.setattr("sandbox.latency.time.sleep", lambda s: held.append(InFlightMerge.objects.count()))
    body = {"people": [{"fields": {"str::email": "a@x.io"}}], "merge_strategy": 1}
    response = client.post("/sandbox/ortto/default/v1/person/merge", data=json.dumps(body),
                           content_type="application/json", headers={"X-Api-Key": US_KEY})
    assert response.status_code == 200
    assert held == [1], "counted against the concurrency limit during its latency"
    assert not InFlightMerge.objects.exists()


def test_the_request_log_and_stats_say_how_many_merges_were_in_flight(client):
    import time

    seed_ortto_instances()
    acme = Instance.objects.get(name="acme-us")
    services.instance_set_contract(acme, merge_concurrency_limit=2)
    busy = InFlightMerge.objects.create(instance=acme, started_at=time.time())
    url = "/sandbox/ortto/default/v1/person/merge"

    def merge(email, **options):
        body = {"people": [{"fields": {"str::email": email}}], "merge_strategy": 1, **options}
        return client.post(url, data=json.dumps(body), content_type="application/json", headers={"X-Api-Key": US_KEY})

    assert merge("a@x.io").status_code == 200  # with the busy one: 2 in flight
    InFlightMerge.objects.create(instance=acme, started_at=time.time())
    assert merge("b@x.io").status_code == 429  # 3 in flight: refused
    assert merge("c@x.io", **{"async": True}).status_code == 200  # not limited, not counted
    busy.delete()
    logged = list(RequestLog.objects.filter(path="person/merge").order_by("pk").values_list("in_flight", "status"))
    assert logged == [(2, 200), (3, 429), (None, 200)]
    stats = services.instance_stats(acme)["merge_concurrency"]
    assert stats == {"merges": 2, "refused": 1, "peak_in_flight": 3, "limit": 2}
