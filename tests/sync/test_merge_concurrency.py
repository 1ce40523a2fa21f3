"""Ortto's concurrency limit on synchronous merges (docs/ortto-contract.md, "Concurrency"): the AIMD limiter
(sync/engine/concurrency.py) and the client's reading of every plausible refusal, over mocked HTTP
(`responses`); nothing here sleeps for real."""

import threading

import pytest
import responses

from sync.engine import concurrency
from sync.engine.concurrency import AimdLimiter
from sync.ortto.client import OrttoClient, OrttoConcurrencyLimited, OrttoRequestError, rate_gate

KEY = "sbx-default-SECRET-key-0001"
BASE = "https://api.ap3api.com"
PERSON = [{"fields": {"str::email": "a@example.com"}}]
CREATED = {"people": [{"status": "created", "person_id": "p1"}]}


@pytest.fixture(autouse=True)
def ortto_settings(settings):
    settings.ORTTO_API_URL = ""
    settings.ORTTO_RATE_PER_SECOND = 0
    return settings


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def limited(sleeps):
    """A client whose synchronous merges go through a limiter, as the engine sets it (concurrency.attach)."""
    client = OrttoClient(api_key=KEY, region="default", sleep=sleeps.append)
    concurrency.attach(client)
    return client


# --- the limiter ------------------------------------------------------------------------------------------


def full_window(limiter, *, refused=False):
    """As many merges as the limit allows, sent together, then answered."""
    tickets = [limiter.acquire() for _ in range(limiter.allowed())]
    for ticket in tickets:
        limiter.release(ticket, refused=refused)


def test_each_full_window_of_accepted_merges_raises_the_limit_by_about_one():
    limiter = AimdLimiter(initial=2, ceiling=16)
    full_window(limiter)
    assert 2.8 < limiter.limit < 3.0 and limiter.allowed() == 2
    full_window(limiter)
    assert limiter.allowed() == 3


def test_merges_that_do_not_fill_the_window_do_not_raise_the_limit():
    limiter = AimdLimiter(initial=4, ceiling=16)
    for _ in range(20):  # one at a time: the limit of 4 is never tested
        limiter.release(limiter.acquire())
    assert limiter.limit == 4


def test_a_refusal_halves_the_limit_once_for_the_merges_sent_together():
    limiter = AimdLimiter(initial=8, ceiling=16)
    tickets = [limiter.acquire() for _ in range(8)]
    assert limiter.in_flight == 8
    for ticket in tickets[:3]:  # three merges of the same window refused: one congestion
        limiter.release(ticket, refused=True)
    assert limiter.limit == 4 and limiter.refusals == 3
    for ticket in tickets[3:]:
        limiter.release(ticket)
    after = limiter.limit
    limiter.release(limiter.acquire(), refused=True)  # sent under the new limit: a new congestion
    assert limiter.limit == pytest.approx(after / 2)


def test_the_limit_stays_between_floor_and_ceiling():
    limiter = AimdLimiter(initial=2, ceiling=3)
    for _ in range(20):
        full_window(limiter)
    assert limiter.limit == 3
    for _ in range(10):
        limiter.release(limiter.acquire(), refused=True)
    assert limiter.limit == 1 and limiter.allowed() == 1


def test_an_unanswered_merge_neither_raises_nor_lowers_the_limit():
    limiter = AimdLimiter(initial=4)
    limiter.release(limiter.acquire(), refused=None)
    assert limiter.limit == 4 and limiter.in_flight == 0


def test_a_merge_beyond_the_limit_waits_for_one_to_finish():
    limiter = AimdLimiter(initial=1, ceiling=1)
    first = limiter.acquire()
    entered = threading.Event()

    def second():
        limiter.release(limiter.acquire())
        entered.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not entered.wait(0.2), "a second merge went out beside the first with a limit of 1"
    limiter.release(first)
    assert entered.wait(5)
    thread.join()
    assert limiter.peak_in_flight == 1


def test_one_limiter_per_account_and_a_client_without_a_key_gets_none(settings):
    settings.ORTTO_MERGE_CONCURRENCY = 5
    assert concurrency.merge_limiter("key-a") is concurrency.merge_limiter("key-a")
    assert concurrency.merge_limiter("key-a") is not concurrency.merge_limiter("key-b")
    assert concurrency.merge_limiter("key-a").ceiling == 5

    class Double:
        merge_limiter = None

    double = Double()
    concurrency.attach(double)
    assert double.merge_limiter is None


# --- every plausible refusal: retried, and the limiter learns from it ------------------------------------------

REFUSALS = {
    "429 concurrency-limit": (429, {"error": {"code": "concurrency-limit", "message": "too many concurrent requests",
                                              "try-in-seconds": 1}}),
    "429 with a message only": (429, {"error": "Too many concurrent synchronous requests"}),
    "503 without a body": (503, None),
    "503 naming concurrency": (503, {"code": 503, "error": "concurrency limit reached"}),
    "500 naming concurrency": (500, {"request_id": "r1", "code": 500, "error": "Concurrency limit exceeded"}),
    "400 naming concurrency": (400, {"request_id": "r1", "code": 400,
                                     "error": "Too many concurrent merges, please retry"}),
}


@pytest.mark.parametrize("shape", list(REFUSALS))
def test_each_refusal_shape_is_retried_and_halves_the_limit(limited, sleeps, shape):
    status, body = REFUSALS[shape]
    limiter = limited.merge_limiter
    limiter.limit = 1.0  # one merge fills the window: its answer tests the limit
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}/v1/person/merge", status=status, **({"json": body} if body else {}))
        mocked.post(f"{BASE}/v1/person/merge", json=CREATED)
        assert limited.merge_people(PERSON, merge_strategy=1) == CREATED["people"]
        assert len(mocked.calls) == 2, "the refused merge is sent again, whole (no bad-row search)"
    assert limiter.snapshot() == {"limit": 2.0, "in_flight": 0, "refusals": 1, "peak_in_flight": 1,
                                  "decreases": 1}, "lowered (to its floor), then raised by the accepted retry"
    assert len(sleeps) == 1 and sleeps[0] <= 1.0
    assert rate_gate(KEY).rate == 0, "a concurrency refusal is not a rate"


def test_a_refusal_that_outlasts_the_retries_is_a_concurrency_error_not_bad_rows(limited):
    status, body = REFUSALS["400 naming concurrency"]
    limited.max_attempts = 2
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}/v1/person/merge", status=status, json=body)
        mocked.post(f"{BASE}/v1/person/merge", status=status, json=body)
        with pytest.raises(OrttoConcurrencyLimited):
            limited.merge_people(PERSON, merge_strategy=1)
    assert limited.merge_limiter.in_flight == 0


def test_a_bad_row_400_is_still_a_request_error_and_no_refusal(limited):
    body = {"request_id": "r1", "code": 400, "error": "No valid contacts provided (invalid email)"}
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}/v1/person/merge", status=400, json=body)
        with pytest.raises(OrttoRequestError):
            limited.merge_people(PERSON, merge_strategy=1)
    assert limited.merge_limiter.refusals == 0 and limited.merge_limiter.in_flight == 0


def test_a_rate_limit_429_does_not_lower_the_concurrency_limit(limited):
    limited.merge_limiter.limit = 1.0  # each merge fills the window
    with responses.RequestsMock() as mocked:
        mocked.post(f"{BASE}/v1/person/merge", status=429,
                    json={"error": {"code": "rate-limit", "message": "rate limit", "try-in-seconds": 1}})
        mocked.post(f"{BASE}/v1/person/merge", json=CREATED)
        limited.merge_people(PERSON, merge_strategy=1)
    assert limited.merge_limiter.refusals == 0 and limited.merge_limiter.limit > 1.0
    assert rate_gate(KEY).limited == 1, "a rate 429 still teaches the rate"


@pytest.mark.parametrize("call", ["async merge", "merge by person id", "activities"])
def test_calls_outside_the_limit_do_not_take_a_slot(limited, call):
    limiter = limited.merge_limiter
    limiter.acquire()
    limiter.limit = 1.0  # full: a limited merge would wait here for ever
    with responses.RequestsMock() as mocked:
        if call == "activities":
            mocked.post(f"{BASE}/v1/activities/create", json={"activities": [{"status": "ingested"}]})
            limited.create_activities([{"activity_id": "act:cm:x", "fields": {"str::email": "a@example.com"}}])
        else:
            mocked.post(f"{BASE}/v1/person/merge", json={"status": "queued"} if call == "async merge" else CREATED)
            if call == "async merge":
                limited.merge_people(PERSON, merge_strategy=1, async_=True)
            else:
                limited.merge_people([{"fields": {"str::person_id": "p1"}}], merge_strategy=2,
                                     merge_by=("str::person_id",))
    assert limiter.in_flight == 1
