"""The emulated Ortto over real HTTP, with concurrent callers (threads of the live server)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sandbox.ortto.models import Person, PersonActivity
from sandbox.ortto.seed import seed_ortto_instances

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

KEY = "sbx-default-acmeus-0001"


def test_concurrent_merges_of_the_same_people_create_each_once(sandbox_live):
    seed_ortto_instances()
    url = f"{sandbox_live}/sandbox/ortto/default/v1/person/merge"
    body = {"people": [{"fields": {"str::email": f"c{i}@example.com"}} for i in range(50)], "merge_strategy": 3}

    def send(_):
        return requests.post(url, json=body, headers={"X-Api-Key": KEY}, timeout=30)

    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(send, range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    statuses = [p["status"] for r in responses for p in r.json()["people"]]
    assert statuses.count("created") == 50 and statuses.count("merged") == 150
    assert Person.objects.count() == 50
    assert PersonActivity.objects.filter(activity_id="subscribed").count() == 50


def test_rate_limit_holds_across_threads(sandbox_live):
    seed_ortto_instances()
    requests.post(f"{sandbox_live}/sandbox/ortto/control/acme-us/rate", json={"per_second": 3}, timeout=10)
    url = f"{sandbox_live}/sandbox/ortto/default/v1/person/custom-field/get"

    def send(_):
        return requests.post(url, json={}, headers={"X-Api-Key": KEY}, timeout=30)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(send, range(12)))
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(limited) == 12
    assert limited and all(r.json()["error"]["code"] == "rate-limit" for r in limited)
    stats = requests.get(f"{sandbox_live}/sandbox/ortto/control/acme-us/stats", timeout=10).json()
    assert stats["requests_by_endpoint"]["person/custom-field/get"]["count"] == 12
