"""The bridge finds Ortto's concurrency limit on synchronous merges, over real HTTP: the sandbox Ortto answers
in ~300 ms (±20 %) and refuses synchronous merges beyond a limit the bridge is not told; the engine's merge
sending (send_all + merge_people_safely, the pool sized at ORTTO_MERGE_CONCURRENCY) runs through the account's
AIMD limiter. What Ortto saw is measured in the sandbox: how many merges were in flight when each arrived."""

import logging
import statistics
from types import SimpleNamespace

import pytest

from sandbox.ortto import services
from sandbox.ortto.models import Instance, Person, RequestLog
from sandbox.ortto.seed import seed_ortto_instances
from sync.engine import concurrency, context, planning, sending
from sync.ortto.client import OrttoClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

KEY = "sbx-default-acmeus-0001"
MERGES = 48


@pytest.mark.parametrize("limit", [3, 6])
def test_in_flight_merges_settle_at_or_below_a_limit_the_bridge_is_not_told(sandbox_live, settings, limit):
    seed_ortto_instances()
    settings.SANDBOX_ORTTO_LATENCY_MS = 300
    settings.ORTTO_MERGE_CONCURRENCY = 16  # the pool: far above the limit, so only the limiter holds it back
    settings.ORTTO_RATE_PER_SECOND = 0
    services.instance_set_contract(Instance.objects.get(name="acme-us"), merge_concurrency_limit=limit)

    client = OrttoClient(api_key=KEY, region="default")
    ctx = SimpleNamespace(ortto=client, log=logging.getLogger("test"))
    calls = [planning.MergeCall("create", 1, [{"fields": {"str::email": f"p{m}.{i}@example.com", "bol::p": False}}
                                            for i in range(100)], [f"p{m}.{i}@example.com" for i in range(100)])
             for m in range(MERGES)]
    results = context.send_all(sending.merge_people_safely, ctx, calls, lambda c: c.emails, lambda c: c.purpose,
                              size=context.ortto_merge_concurrency())

    # Nothing lost: every person of every merge created once, whatever was refused on the way.
    assert all(r["status"] == "created" for batch in results for r in batch)
    assert Person.objects.filter(instance__name="acme-us").count() == MERGES * 100

    arrivals = list(RequestLog.objects.filter(path="person/merge", in_flight__isnull=False)
                    .order_by("pk").values_list("in_flight", "status"))
    accepted = [n for n, status in arrivals if status == 200]
    refused = [n for n, status in arrivals if status == 429]
    assert len(accepted) == MERGES
    assert all(n > limit for n in refused), "the sandbox refuses only beyond its limit"
    # The bridge found the limit (it did not stay at its starting two), and settled at or below it: after the
    # first half of the run, most merges arrive with at most `limit` in flight, and AIMD's probes go one above.
    assert max(accepted) == limit
    later = [n for n, _ in arrivals[len(arrivals) // 2:]]
    assert statistics.median(later) <= limit
    assert max(later) <= limit + 1
    assert sum(n > limit for n in later) <= len(later) // 4
    found = concurrency.merge_limiter(KEY).snapshot()
    assert found["refusals"] == len(refused) and found["in_flight"] == 0
    assert found["limit"] < limit + 2, "the limit the run ended with: at most one probe above Ortto's"
