"""Unit tests of the Ortto client over mocked HTTP (`responses`); nothing here sleeps for real."""

import logging
import time

import pytest
import requests
import responses
from responses import matchers
from responses.registries import OrderedRegistry

from sync.ortto.client import (
    OrttoAuthError,
    OrttoClient,
    OrttoError,
    OrttoRateLimited,
    OrttoRequestError,
    OrttoUnavailable,
    api_base,
    kebab,
)

KEY = "sbx-default-SECRET-key-0001"
BASE = "https://api.ap3api.com"


@pytest.fixture(autouse=True)
def ortto_settings(settings):
    settings.ORTTO_API_URL = ""
    settings.HTTP_TIMEOUT_SECONDS = 9.0
    return settings


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sleeps):
    return OrttoClient(api_key=KEY, region="default", sleep=sleeps.append)


def ordered_mock():
    return responses.RequestsMock(registry=OrderedRegistry)


# --- hosts --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "region, host",
    [("default", "https://api.ap3api.com"), ("au", "https://api.au.ap3api.com"), ("eu", "https://api.eu.ap3api.com")],
)
def test_official_host_per_region(region, host):
    assert api_base(region) == host


def test_api_url_override_substitutes_the_region(settings):
    settings.ORTTO_API_URL = "http://127.0.0.1:8000/sandbox/ortto/{region}"
    assert api_base("eu") == "http://127.0.0.1:8000/sandbox/ortto/eu"
    assert api_base("default") == "http://127.0.0.1:8000/sandbox/ortto/default"


def test_api_url_override_without_placeholder_serves_every_region(settings):
    settings.ORTTO_API_URL = "https://ortto-proxy.internal/"
    assert {api_base(r) for r in ("default", "au", "eu")} == {"https://ortto-proxy.internal"}


def test_unknown_region_is_refused():
    with pytest.raises(ValueError):
        api_base("us")
    with pytest.raises(ValueError):
        OrttoClient(api_key=KEY, region="mars")


def test_client_uses_its_region_host_read_at_call_time(settings, sleeps):
    client = OrttoClient(api_key=KEY, region="eu", sleep=sleeps.append)
    with responses.RequestsMock() as rsps:
        rsps.post("https://api.eu.ap3api.com/v1/person/custom-field/get", json={"fields": []})
        rsps.post("http://sandbox.test/sandbox/ortto/eu/v1/person/custom-field/get", json={"fields": []})
        client.verify()
        settings.ORTTO_API_URL = "http://sandbox.test/sandbox/ortto/{region}"
        client.verify()


# --- calls --------------------------------------------------------------------------------------


def test_merge_people_posts_the_batch_and_returns_one_result_per_person(client):
    people = [
        {"fields": {"str::email": "ann@example.com", "str::first": "Ann", "bol::p": False}},
        {"fields": {"str::email": "bob@example.com", "str::first": "Bob", "bol::p": True}},
    ]
    results = [{"person_id": "006913c5b9ca58778a137d00", "status": "created"},
               {"person_id": "006913c5b9ca58778a137d01", "status": "merged"}]
    with responses.RequestsMock() as rsps:
        rsps.post(
            f"{BASE}/v1/person/merge",
            json={"people": results},
            match=[
                matchers.json_params_matcher(
                    {"people": people, "merge_by": ["str::ei", "str::email"], "merge_strategy": 1, "async": False}
                ),
                matchers.header_matcher({"X-Api-Key": KEY, "Content-Type": "application/json"}),
            ],
        )
        assert client.merge_people(people, merge_strategy=1, merge_by=("str::ei", "str::email")) == results
        assert rsps.calls[0].request.req_kwargs["timeout"] == 9.0


def test_merge_people_async_flag_and_default_merge_by(client):
    people = [{"fields": {"str::email": "ann@example.com"}}]
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/merge", json={"people": [{"status": "queued"}]},
                  match=[matchers.json_params_matcher(
                      {"people": people, "merge_by": ["str::email"], "merge_strategy": 2, "async": True})])
        assert client.merge_people(people, merge_strategy=2, async_=True) == [{"status": "queued"}]


def test_more_than_100_people_or_activities_is_a_value_error(client):
    with responses.RequestsMock():  # any request would fail: none registered
        with pytest.raises(ValueError):
            client.merge_people([{"fields": {"str::email": f"p{i}@example.com"}} for i in range(101)], merge_strategy=1)
        with pytest.raises(ValueError):
            client.create_activities([{"activity_id": "act:cm:placed-order"}] * 101)


def test_exactly_100_people_is_allowed(client):
    people = [{"fields": {"str::email": f"p{i}@example.com"}} for i in range(100)]
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/merge", json={"people": [{"status": "created"}] * 100})
        assert len(client.merge_people(people, merge_strategy=1)) == 100


def test_create_activities_posts_activities_with_top_level_merge_by(client):
    activities = [{
        "activity_id": "act:cm:placed-order",
        "attributes": {"int:cm:order-id": 250, "int::v": 15300},
        "fields": {"str::email": "ann@example.com"},
        "key": "order-250",
        "created": "2024-05-14T09:34:00Z",
    }]
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/activities/create",
                  json={"activities": [{"person_id": "p1", "status": "ingested", "person_status": "created"}]},
                  match=[matchers.json_params_matcher({"activities": activities, "merge_by": ["str::email"]})])
        result = client.create_activities(activities)
    assert result == [{"person_id": "p1", "status": "ingested", "person_status": "created"}]


def test_custom_fields_and_verify(client):
    fields = [{"field": {"id": "str:cm:job-title", "name": "Job Title", "display_type": "text"},
               "tracked_value": True}]
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/custom-field/get", json={"fields": fields},
                  match=[matchers.json_params_matcher({})])
        rsps.post(f"{BASE}/v1/person/custom-field/get", json={"fields": fields},
                  match=[matchers.json_params_matcher({})])
        assert client.custom_fields() == fields
        assert client.verify() is None


def test_create_custom_field_returns_the_new_id(client):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/custom-field/create", json={"field_id": "int:cm:total-spent"},
                  match=[matchers.json_params_matcher({"name": "Total Spent", "type": "decimal"})])
        assert client.create_custom_field(name="Total Spent", field_type="decimal") == "int:cm:total-spent"


def test_create_custom_field_conflict_means_it_exists(client, sleeps):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/custom-field/create", status=409,
                  json={"code": 409, "error": "field already exists"})
        rsps.post(f"{BASE}/v1/person/custom-field/get", json={"fields": [
            {"field": {"id": "str:cm:job-title", "name": "Job Title"}},
            {"field": {"id": "int:cm:order-count", "name": "Order Count"}},
        ]})
        assert client.create_custom_field(name="Order Count", field_type="integer") == "int:cm:order-count"
    assert sleeps == []


def test_create_custom_field_conflict_falls_back_to_the_computed_id(client):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/custom-field/create", status=409, json={"error": "exists"})
        rsps.post(f"{BASE}/v1/person/custom-field/get", json={"fields": []})
        assert client.create_custom_field(name="Last Order Date", field_type="text") == "str:cm:last-order-date"


def test_create_activity_definition_new_and_existing(client):
    payload = {"name": "Placed order", "icon_id": "moneys-illustration-icon", "track_conversion_value": True,
               "touch": True, "filterable": True, "visible_in_feeds": True,
               "attributes": [{"name": "Order ID", "display_type": "integer"}]}
    with ordered_mock() as rsps:
        rsps.post(f"{BASE}/v1/definitions/activity/create", json={"activity_id": "act:cm:placed-order"},
                  match=[matchers.json_params_matcher(payload)])
        rsps.post(f"{BASE}/v1/definitions/activity/create", status=409, json={"error": "already exists"})
        assert client.create_activity_definition(payload) == "act:cm:placed-order"
        assert client.create_activity_definition(payload) == "act:cm:placed-order"


def test_empty_batches_send_nothing(client):
    with responses.RequestsMock():
        assert client.merge_people([], merge_strategy=1) == []
        assert client.create_activities([]) == []


# --- errors and retries -------------------------------------------------------------------------


def test_429_waits_try_in_seconds_from_the_body_then_retries(client, sleeps):
    with ordered_mock() as rsps:
        rsps.post(f"{BASE}/v1/person/merge", status=429,
                  json={"error": {"code": "rate-limit", "message": "rate limit", "try-in-seconds": 2.5}})
        rsps.post(f"{BASE}/v1/person/merge", json={"people": [{"status": "created"}]})
        assert client.merge_people([{"fields": {"str::email": "a@example.com"}}], merge_strategy=1) == [
            {"status": "created"}]
    assert sleeps == [2.5]


def test_429_without_a_wait_backs_off(client, sleeps):
    with ordered_mock() as rsps:
        rsps.post(f"{BASE}/v1/person/custom-field/get", status=429, body="Too Many Requests")
        rsps.post(f"{BASE}/v1/person/custom-field/get", json={"fields": []})
        client.verify()
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5


def test_persistent_429_ends_in_rate_limited(client, sleeps):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/merge", status=429, json={"error": {"code": "rate-limit", "try-in-seconds": 1}})
        with pytest.raises(OrttoRateLimited):
            client.merge_people([{"fields": {}}], merge_strategy=1)
        assert len(rsps.calls) == 6
    assert sleeps == [1.0] * 5


def test_server_errors_and_timeouts_are_retried(client, sleeps):
    with ordered_mock() as rsps:
        rsps.post(f"{BASE}/v1/activities/create", status=503)
        rsps.post(f"{BASE}/v1/activities/create", body=requests.exceptions.ReadTimeout("slow"))
        rsps.post(f"{BASE}/v1/activities/create", body=requests.exceptions.ConnectionError("reset"))
        rsps.post(f"{BASE}/v1/activities/create", json={"activities": [{"status": "queued"}]})
        assert client.create_activities([{"activity_id": "act:cm:placed-order"}]) == [{"status": "queued"}]
    assert len(sleeps) == 3


def test_retries_are_capped(client, sleeps):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/merge", status=500, json={"error": "internal"})
        with pytest.raises(OrttoUnavailable) as caught:
            client.merge_people([{"fields": {}}], merge_strategy=1)
        assert len(rsps.calls) == 6
    assert len(sleeps) == 5
    assert caught.value.status == 500


def test_total_sleep_is_capped(sleeps):
    client = OrttoClient(api_key=KEY, region="default", sleep=sleeps.append, max_total_sleep=30)
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/merge", status=429, json={"error": {"try-in-seconds": 20}})
        with pytest.raises(OrttoRateLimited):
            client.merge_people([{"fields": {}}], merge_strategy=1)
        assert len(rsps.calls) == 2
    assert sleeps == [20.0]


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_are_never_retried(client, sleeps, status):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/custom-field/get", status=status, json={"error": "Invalid API key"})
        with pytest.raises(OrttoAuthError) as caught:
            client.verify()
        assert len(rsps.calls) == 1
    assert sleeps == []
    assert caught.value.status == status


def test_bad_request_carries_error_and_details(client, sleeps):
    body = {"request_id": "r1", "code": 400, "error": "No valid contacts provided",
            "details": [{"status": "suppressed", "error": "Email is suppressed"}]}
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/merge", status=400, json=body)
        with pytest.raises(OrttoRequestError) as caught:
            client.merge_people([{"fields": {"str::email": "x@example.com"}}], merge_strategy=1)
        assert len(rsps.calls) == 1
    assert caught.value.status == 400
    assert "No valid contacts provided" in caught.value.message
    assert caught.value.details == body["details"]
    assert caught.value.body == body
    assert sleeps == []


def test_errors_share_the_base_class():
    for error in (OrttoAuthError, OrttoRateLimited, OrttoUnavailable, OrttoRequestError):
        assert issubclass(error, OrttoError)


def test_api_key_never_reaches_logs_or_error_messages(client, caplog):
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/merge", status=502)
        with pytest.raises(OrttoUnavailable) as caught:
            client.merge_people([{"fields": {}}], merge_strategy=1)
    assert caplog.records
    assert KEY not in caplog.text
    assert KEY not in str(caught.value)
    assert KEY not in repr(client)


# --- kebab --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [("Job Title", "job-title"), ("Placed order", "placed-order"), ("Total Spent (USD)", "total-spent-usd"),
     ("  Last  order__date ", "last-order-date"), ("Café Visits", "cafe-visits"), ("BC customer ID", "bc-customer-id")],
)
def test_kebab(name, expected):
    assert kebab(name) == expected


def test_unretryable_transport_errors_are_still_typed(client, sleeps):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/merge", body=requests.exceptions.TooManyRedirects("loop"))
        with pytest.raises(OrttoError):
            client.merge_people([{"fields": {}}], merge_strategy=1)
        assert len(rsps.calls) == 1
    assert sleeps == []


def test_a_2xx_that_is_not_a_json_object_is_an_error(client):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/merge", body="<html>maintenance</html>")
        with pytest.raises(OrttoError):
            client.merge_people([{"fields": {}}], merge_strategy=1)


def test_create_custom_field_existing_as_400_is_found_in_the_list(client):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/custom-field/create", status=400,
                  json={"code": 400, "error": "custom field int:cm:order-count already exists"})
        rsps.post(f"{BASE}/v1/person/custom-field/get", json={"fields": [
            {"field": {"id": "int:cm:order-count", "name": "Order Count", "display_type": "integer"}}]})
        assert client.create_custom_field(name="Order Count", field_type="integer") == "int:cm:order-count"


def test_create_custom_field_other_400_is_raised(client):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/custom-field/create", status=400, json={"code": 400, "error": "limit reached"})
        rsps.post(f"{BASE}/v1/person/custom-field/get", json={"fields": []})
        with pytest.raises(OrttoRequestError):
            client.create_custom_field(name="Order Count", field_type="integer")


def test_a_field_listed_already_costs_no_create(client):
    listed = [{"field": {"id": "int:cm:order-count", "name": "Order Count", "display_type": "integer"}}]
    with responses.RequestsMock():
        assert client.create_custom_field(name="Order Count", field_type="integer", existing=listed) == \
            "int:cm:order-count"


def test_create_activity_definition_existing_as_400_is_fine(client):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/definitions/activity/create", status=400,
                  json={"code": 400, "error": "activity act:cm:placed-order already exists"})
        assert client.create_activity_definition({"name": "Placed order"}) == "act:cm:placed-order"


def test_403_is_an_account_problem_not_a_key_problem(client):
    from sync.ortto.client import OrttoAccountBlocked

    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/custom-field/get", status=403, json={"code": 403, "error": "account expired"})
        rsps.post(f"{BASE}/v1/person/custom-field/get", status=401, json={"code": 401, "error": "invalid API key"})
        with pytest.raises(OrttoAccountBlocked):
            client.verify()
        with pytest.raises(OrttoAuthError) as caught:
            client.verify()
        assert not isinstance(caught.value, OrttoAccountBlocked)


def test_bad_requests_beyond_the_budget_wait_for_the_window(client, sleeps):
    from sync.ortto.client import BAD_REQUEST_BUDGET, BAD_REQUEST_WINDOW_SECONDS

    with responses.RequestsMock() as rsps:
        rsps.post(f"{BASE}/v1/person/merge", status=400, json={"code": 400, "error": "bad"})
        for _ in range(BAD_REQUEST_BUDGET + 1):
            with pytest.raises(OrttoRequestError):
                client.merge_people([{"fields": {"str::email": "x@example.com"}}], merge_strategy=1)
    assert len(sleeps) == 1 and 0 < sleeps[0] <= BAD_REQUEST_WINDOW_SECONDS


def test_the_bad_request_budget_is_a_sliding_window():
    from sync.ortto.client import BadRequestBudget

    now = [100.0]
    budget = BadRequestBudget(budget=3, window=15.0, clock=lambda: now[0])
    for _ in range(3):
        assert budget.wait_time() == 0
        budget.record()
    assert budget.wait_time() == 15.0
    now[0] += 10
    assert budget.wait_time() == 5.0
    now[0] += 5
    assert budget.wait_time() == 0


@pytest.mark.django_db
def test_the_bad_request_budget_is_shared_by_every_process_on_the_host():
    """Ortto bans an IP, not a process: two workers on one host share one count through the cache."""
    from sync.ortto.client import BAD_REQUEST_BUDGET, BadRequestBudget

    wall = [1_000_000.0]
    first, second = (BadRequestBudget(shared=True, wall_clock=lambda: wall[0]) for _ in range(2))
    first.reset()
    for _ in range(BAD_REQUEST_BUDGET - 4):
        first.record()
    assert second.wait_time() == 0
    for _ in range(4):
        second.record()
    wall[0] += 1  # past the other process's check interval
    assert first.wait_time() == pytest.approx(14.0)  # the budget was reached a second ago
    assert second.wait_time() == pytest.approx(14.0)
    wall[0] += 14
    assert first.wait_time() == 0 and second.wait_time() == 0
    first.reset()


def test_a_cache_outage_leaves_the_process_count_in_charge(monkeypatch):
    from sync.ortto import client as ortto
    from sync.ortto.client import BadRequestBudget

    class Down:
        def __getattr__(self, name):
            raise ConnectionError("cache down")

    monkeypatch.setattr(ortto, "cache", Down())
    now = [0.0]
    budget = BadRequestBudget(budget=2, window=15.0, clock=lambda: now[0], shared=True)
    budget.record()
    assert budget.wait_time() == 0
    budget.record()
    assert budget.wait_time() == 15.0


# --- The rate learned from 429s (no ORTTO_RATE_PER_SECOND) ------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_learned_gate_is_unpaced_until_a_429_then_paces_at_what_was_accepted():
    from sync.ortto.client import LearnedRateGate

    clock = FakeClock()
    gate = LearnedRateGate(margin=0.0, clock=clock, sleep=clock.sleep)
    starts = []
    for _ in range(12):  # 12 requests in 0.12 s: nothing paces them
        starts.append(gate.acquire())
        clock.now += 0.01
    assert clock.now == pytest.approx(100.12)
    # The account allows 10/s: requests 11 and 12 were refused.
    assert gate.learn(starts[10]) == 10
    assert gate.learn(starts[11]) == 10  # the same burst's second refusal: not a reason to slow down more
    start = clock.now
    for _ in range(20):
        gate.acquire()
    assert clock.now - start >= 1.0  # 20 more requests need two windows at 10/s


def test_learned_gate_counts_the_window_before_the_refused_request_not_before_its_answer():
    """On a loaded host a 429 can come back most of a second after its request left; the requests
    started in the second before the *answer* are then fewer than the account allows."""
    from sync.ortto.client import LearnedRateGate

    clock = FakeClock()
    gate = LearnedRateGate(margin=0.0, clock=clock, sleep=clock.sleep)
    for _ in range(10):  # 10 requests spread over 0.9 s, all accepted
        gate.acquire()
        clock.now += 0.09
    refused = gate.acquire()  # the 11th in that second: refused ...
    clock.now += 0.8  # ... and its answer arrives 0.8 s later, after only a few more starts
    for _ in range(3):
        gate.acquire()
    assert gate.learn(refused) == 10


def test_learned_gate_only_slows_down_on_a_429_and_probes_up_slowly():
    from sync.ortto.client import LearnedRateGate

    clock = FakeClock()
    gate = LearnedRateGate(margin=0.0, probe_seconds=30, clock=clock, sleep=clock.sleep)
    gate.acquire()
    gate.learn()
    assert gate.rate == 1
    clock.now += 31
    gate.acquire()
    assert gate.rate == 2  # one more per probe period without a 429
    gate.rate = 20
    for _ in range(20):
        gate.acquire()
    assert gate.learn() <= 18  # a 429 while paced: at least 10 % slower


def test_a_probe_that_draws_a_429_goes_back_to_the_rate_and_probes_less_often():
    from sync.ortto.client import LearnedRateGate

    clock = FakeClock()
    gate = LearnedRateGate(margin=0.0, probe_seconds=30, clock=clock, sleep=clock.sleep)
    gate.acquire()
    gate.rate = 10  # learned
    clock.now += 31
    starts = [gate.acquire() for _ in range(11)]
    assert gate.rate == 11  # the probe
    assert gate.learn(starts[-1]) == 10  # the 11th refused: the account's rate is still 10, not 10 % less
    assert gate.probe_seconds == 60
    clock.now += 31
    gate.acquire()
    assert gate.rate == 10  # the next probe waits twice as long
    clock.now += 30
    gate.acquire()
    assert gate.rate == 11


def test_a_429_teaches_the_client_its_accounts_rate(client, settings):
    settings.ORTTO_RATE_PER_SECOND = 0
    from sync.ortto.client import rate_gate

    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}/v1/person/merge", status=429,
                    json={"error": {"code": "rate-limit", "try-in-seconds": 1}})
        mocked.post(f"{BASE}/v1/person/merge", json={"people": [{"status": "created", "person_id": "p1"}]})
        client.merge_people([{"fields": {"str::email": "a@example.com"}}], merge_strategy=1)
    gate = rate_gate(KEY)
    assert gate.limited == 1 and gate.rate >= 1


def test_a_concurrency_429_is_not_a_rate(client, settings):
    settings.ORTTO_RATE_PER_SECOND = 0
    from sync.ortto.client import rate_gate

    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}/v1/person/merge", status=429,
                    json={"error": {"code": "concurrency-limit", "try-in-seconds": 1}})
        mocked.post(f"{BASE}/v1/person/merge", json={"people": [{"status": "created", "person_id": "p1"}]})
        client.merge_people([{"fields": {"str::email": "a@example.com"}}], merge_strategy=1)
    assert rate_gate(KEY).rate == 0


# --- how many calls in flight the account's rate can keep busy (Little's law) -------------------------


def _slow_answers(rsps, seconds: float):
    def answer(request):
        time.sleep(seconds)
        return 200, {}, '{"people": [{"person_id": "006913c5b9ca58778a137d00", "status": "created"}]}'

    rsps.add_callback(responses.POST, f"{BASE}/v1/person/merge", callback=answer)


def test_in_flight_wanted_is_the_rate_times_the_answer_time(client, settings):
    from sync.ortto.client import _gates

    _gates.clear()
    settings.ORTTO_RATE_PER_SECOND = 40
    assert client.in_flight_wanted() is None  # nothing known before an answer
    with responses.RequestsMock() as rsps:
        _slow_answers(rsps, 0.05)
        for _ in range(3):
            client.merge_people([{"fields": {"str::email": "ann@example.com"}}], merge_strategy=1)
    assert client.in_flight_wanted() == pytest.approx(40 * 0.05, rel=0.5)  # ~2 calls in flight
    _gates.clear()


def test_an_account_whose_rate_is_not_learned_is_sized_at_the_published_top(client, settings):
    from sync.ortto.client import ASSUMED_RATE_PER_SECOND, _gates

    _gates.clear()
    settings.ORTTO_RATE_PER_SECOND = 0  # learned from 429s, none met yet
    with responses.RequestsMock() as rsps:
        _slow_answers(rsps, 0.05)
        client.merge_people([{"fields": {"str::email": "ann@example.com"}}], merge_strategy=1)
    assert client.in_flight_wanted() == pytest.approx(ASSUMED_RATE_PER_SECOND * 0.05, rel=0.5)
    _gates.clear()


def test_the_pool_follows_little_s_law_between_the_setting_and_its_ceiling(settings):
    from types import SimpleNamespace

    from sync.engine.context import MAX_ORTTO_CONCURRENCY, ortto_concurrency

    class Account:
        def __init__(self, wanted):
            self.wanted = wanted

        def in_flight_wanted(self):
            return self.wanted

    settings.ORTTO_CONCURRENCY = 4
    assert ortto_concurrency() == 4
    assert ortto_concurrency(SimpleNamespace(ortto=Account(None))) == 4  # no answer yet
    assert ortto_concurrency(SimpleNamespace(ortto=Account(0.3))) == 4  # loopback: the setting
    assert ortto_concurrency(SimpleNamespace(ortto=Account(6.0))) == 8  # 20/s at 300 ms, a tenth's margin
    assert ortto_concurrency(SimpleNamespace(ortto=Account(18.0))) == MAX_ORTTO_CONCURRENCY == 32  # 60/s at 300 ms
    assert ortto_concurrency(SimpleNamespace(ortto=Account(500.0))) == 32
