"""The one Ortto client: a small class per Ortto account (API key + region) over the shared transport
(stores/http.py).

Every call is a JSON POST with the X-Api-Key header and a required timeout
(settings.HTTP_TIMEOUT_SECONDS, read at call time). 429 waits for the body's `try-in-seconds`;
5xx, timeouts and connection errors back off with jitter; 401/403 are never retried, because
Ortto bans the caller's IP after 15 bad-credential requests in 15 seconds. Every 4xx answer counts
towards a budget shared by every process on the host (BAD_REQUEST_BUDGET per BAD_REQUEST_WINDOW_SECONDS)
that keeps the server's IP under Ortto's bad-request ban (docs/ortto-contract.md, "Limits"). The key never appears in
log lines or exception messages.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import re
import socket
import threading
import time
import unicodedata
from collections.abc import Iterable
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache

from stores import http
from stores.http import ApiError, Sleep, json_or_text, thread_session

logger = logging.getLogger(__name__)

REGION_HOSTS = {
    "default": "https://api.ap3api.com",
    "au": "https://api.au.ap3api.com",
    "eu": "https://api.eu.ap3api.com",
}
MAX_BATCH = 100  # people per merge and activities per create (Ortto's payload limit)
MAX_CUSTOM_FIELDS = 100  # custom person fields per account (docs/ortto-contract.md)
MAX_ATTEMPTS = 6
MAX_TOTAL_SLEEP_SECONDS = 120.0

# Custom field id prefixes by the `type` sent to custom-field/create; used only to name a field that
# already exists (409) when the field list does not show it.
FIELD_TYPE_PREFIXES = {
    "text": "str",
    "large_text": "txt",
    "integer": "int",
    "decimal": "int",
    "currency": "int",
    "price": "int",
    "bool": "bol",
    "boolean": "bol",
    "phone": "phn",
    "date": "dtz",
    "single_select": "str",
    "multi_select": "sst",
    "link": "str",
    "object": "obj",
}


@dataclasses.dataclass(frozen=True)
class DefinitionAnswer:
    """What an activity-definition create told the bridge."""

    activity_id: str
    attribute_ids: dict  # attribute name -> the field id Ortto gave it; {} when the definition existed already
    icon_id: str
    existed: bool = False


# --- Errors -------------------------------------------------------------------------------------


class OrttoError(ApiError):
    """Base of every Ortto failure. `message` never contains the API key."""


class OrttoAuthError(OrttoError):
    """401: wrong or disconnected key. The connection needs Reconnect."""


class OrttoAccountBlocked(OrttoAuthError):
    """403: the key is right but the account may not be used now (expired or suspended account, the
    user who authorised the key left, a plan limit). Not the key's fault: syncs pause and resume once
    Ortto accepts again. A subclass of OrttoAuthError so that callers that only know "refused" still
    stop; callers that can tell the difference catch this first."""


class OrttoRateLimited(OrttoError):
    """429 that outlasted the retries."""


class OrttoConcurrencyLimited(OrttoRateLimited):
    """A synchronous merge refused for Ortto's concurrency limit, after the retries. Ortto names no answer for
    it (docs/ortto-contract.md, "Concurrency"): a 429, a 503, or a 400/500 whose text says "concurrency"."""


class OrttoUnavailable(OrttoError):
    """5xx, timeout or connection error that outlasted the retries."""


class OrttoRequestError(OrttoError):
    """Any other 4xx. `details` is the body's per-item list (e.g. [{"status": "invalid", "error": ...}])."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None,
                 details: list | None = None):
        super().__init__(message, status=status, body=body)
        self.details = details or []


# --- Pure helpers -------------------------------------------------------------------------------


def kebab(name: str) -> str:
    """Ortto's id form of a name: "Total Spent (USD)" -> "total-spent-usd"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


def api_base(region: str) -> str:
    """Base URL for an account's region (default | au | eu); a key only works on its own region."""
    if region not in REGION_HOSTS:
        raise ValueError(f"unknown Ortto region {region!r}; expected one of {sorted(REGION_HOSTS)}")
    override = settings.ORTTO_API_URL
    if override:
        # Without a "{region}" placeholder the override serves every region (a proxy or the sandbox).
        return override.replace("{region}", region).rstrip("/")
    return REGION_HOSTS[region]


# --- Pacing (the transport itself is stores/http.py) -------------------------------------------


class RateGate:
    """Client-side pacing for one Ortto account, shared by every thread of the process: at most `rate`
    requests start in any sliding window of 1 s + `margin`. Ortto counts requests per window on its
    side; the margin absorbs the jitter between our send and its count, so that a request sent at the
    end of one of its windows and one sent early in the next never add up to more than `rate`.
    Requests beyond the allowance wait instead of drawing a 429."""

    def __init__(self, rate: int, *, margin: float = 0.05, clock=time.monotonic, sleep: Sleep = time.sleep):
        self.rate = rate
        self.window = 1.0 + margin
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._starts: collections.deque[float] = collections.deque()
        # How long the account's answers take (seconds, a moving average): with the rate, Little's law says
        # how many calls in flight keep it busy (OrttoClient.in_flight_wanted).
        self.latency: float | None = None

    def observe(self, seconds: float) -> None:
        with self._lock:
            self.latency = seconds if self.latency is None else 0.8 * self.latency + 0.2 * seconds

    def acquire(self) -> float:
        """Wait for a slot; the time (on the gate's clock) at which the request may start."""
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and now - self._starts[0] >= self.window:
                    self._starts.popleft()
                if len(self._starts) < self.rate:
                    self._starts.append(now)
                    return now
                wait = self._starts[0] + self.window - now
            self._sleep(max(wait, 0.001))


class LearnedRateGate(RateGate):
    """A RateGate whose rate is learned from the account's answers, for when no rate is configured.

    Ortto's rate depends on the account's plan (10 to 60+ requests/s, docs/ortto-contract.md) and no
    answer states it; a 429 does. Until the first 429 nothing is paced. A 429 means that the requests
    started in the window before the refused one were as many as the account allows, so the gate settles
    at that count (`learn`); every `probe_seconds` without a 429 it allows one request per second more,
    so a plan upgrade is found again at the cost of a rare 429 (which is retried after its try-in-seconds).

    The count is taken in the window that ends when the refused request *started*, not when its answer
    came back: on a loaded host an answer can take most of a second, and the window before the answer
    then holds fewer starts than the account allows (seen: a 10/s account learned as 5/s).
    """

    HISTORY_SECONDS = 10.0
    # A probe that draws a 429 (the account's rate is still the learned one) doubles the wait before the
    # next probe, up to this: a long import at an account's steady rate pays for a few probes, not one a
    # minute (a plan upgrade is then found within ten minutes).
    MAX_PROBE_SECONDS = 600.0

    def __init__(self, *, probe_seconds: float = 30.0, margin: float = 0.05, clock=time.monotonic,
                 sleep: Sleep = time.sleep):
        super().__init__(0, margin=margin, clock=clock, sleep=sleep)
        self.probe_seconds = probe_seconds
        self._probed_from = 0  # the rate before the last probe raised it (0: no probe since the last 429)
        self._history: collections.deque[float] = collections.deque()  # every start, paced or not
        self._refused: collections.deque[float] = collections.deque()  # starts of the requests refused
        self._last_change = clock()
        self.limited = 0  # 429s seen, for logs and tests

    def acquire(self) -> float:
        with self._lock:
            now = self._clock()
            if self.rate and now - self._last_change >= self.probe_seconds:
                self._probed_from = self.rate
                self.rate += 1
                self._last_change = now
            rate = self.rate
            if not rate:
                self._remember(now)
                return now
        started = super().acquire()
        with self._lock:
            self._remember(started)
        return started

    def _remember(self, started: float) -> None:
        self._history.append(started)
        while self._history and self._history[-1] - self._history[0] > self.HISTORY_SECONDS:
            self._history.popleft()

    def learn(self, started: float | None = None) -> int:
        """A 429 arrived for a request that started at `started` (default: now): pace at what the account
        accepted in the window before that start (the requests started in it, less the ones refused).
        A refusal of a request sent at the current pace also slows it by at least 10 %; one sent before
        the pace was last set (the same burst) only corrects the count."""
        with self._lock:
            now = self._clock()
            at = now if started is None else started
            # The starts up to the refused one, less itself (it is among them).
            begun = sum(1 for t in self._history if at - self.window < t <= at) - 1
            refused = sum(1 for t in self._refused if at - self.window < t <= at)
            self._refused.append(at)
            while self._refused and now - self._refused[0] > self.HISTORY_SECONDS:
                self._refused.popleft()
            accepted = max(begun - refused, 1)
            if not self.rate:
                self._starts = collections.deque(t for t in self._history if now - t < self.window)
            elif self._probed_from and at >= self._last_change:
                # A probe found the limit where it was: back to the rate before it, probe less often.
                accepted = min(accepted, self._probed_from)
                self.probe_seconds = min(self.probe_seconds * 2, self.MAX_PROBE_SECONDS)
            elif at >= self._last_change:
                accepted = min(accepted, max(int(self.rate * 0.9), self.rate - 1))
            else:
                accepted = min(accepted, self.rate)
            self._probed_from = 0
            self.rate = max(accepted, 1)
            self._last_change = now
            self.limited += 1
            return self.rate


DEFAULT_RATE_MARGIN_SECONDS = 0.05
# The top of the rates Ortto publishes for its plans (Business and Enterprise: 600 requests per 10 s,
# https://help.ortto.com/developer/latest/developer-guide/rate-limits.html): what in_flight_wanted sizes an
# account at before its rate is learned.
ASSUMED_RATE_PER_SECOND = 60
_gates_lock = threading.Lock()
_gates: dict[tuple, RateGate] = {}


def rate_gate(api_key: str) -> RateGate:
    """The process-wide gate for an account: settings.ORTTO_RATE_PER_SECOND (read now) when set, else a
    gate that learns the account's rate from its 429s (LearnedRateGate)."""
    rate = int(getattr(settings, "ORTTO_RATE_PER_SECOND", 0) or 0)
    margin = float(getattr(settings, "ORTTO_RATE_MARGIN_SECONDS", DEFAULT_RATE_MARGIN_SECONDS))
    key = (api_key, rate, margin)
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = RateGate(rate, margin=margin) if rate > 0 else LearnedRateGate(margin=margin)
        return gate


# Ortto bans the calling IP for 15 s after 15 bad requests (or 15 bad-credential requests) in 15 s
# (https://help.ortto.com/a-235-rate-limits). The budget stays well under it for the whole host, because
# one IP's ban stalls every store on the server: every worker process on this host shares one count.
BAD_REQUEST_BUDGET = 10
BAD_REQUEST_WINDOW_SECONDS = 15.0
# How stale a process's view of the other processes' count may be; the margin between the budget (10) and
# the ban (15) absorbs what arrives meanwhile.
SHARED_CHECK_SECONDS = 0.5


class BadRequestBudget:
    """At most `budget` 4xx answers (429 excluded) in any window of `window` seconds: a request that
    could be one more waits until the oldest leaves the window.

    The count is this process's, plus, when `shared`, every process's on this host through the Django
    cache (Redis in production, the database cache otherwise), in one counter per host and second. A
    cache that fails leaves the process's own count in charge: syncing never stops for it."""

    def __init__(self, budget: int = BAD_REQUEST_BUDGET, window: float = BAD_REQUEST_WINDOW_SECONDS,
                 clock=time.monotonic, *, shared: bool = False, wall_clock=time.time):
        self.budget = budget
        self.window = window
        self.shared = shared
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._bad: collections.deque[float] = collections.deque()
        self._shared_until = 0.0  # wall-clock time until which the host's count is at the budget
        self._shared_checked_at = float("-inf")

    def wait_time(self) -> float:
        with self._lock:
            now = self._clock()
            while self._bad and now - self._bad[0] >= self.window:
                self._bad.popleft()
            local = 0.0 if len(self._bad) < self.budget else self._bad[0] + self.window - now
        return max(local, self._shared_wait())

    def record(self) -> None:
        with self._lock:
            self._bad.append(self._clock())
        if self.shared:
            second = int(self._wall_clock())
            self._cache_call(self._shared_record, second)
            self._shared_checked_at = float("-inf")  # see the new count at the next request

    def reset(self) -> None:
        with self._lock:
            self._bad.clear()
        self._shared_until, self._shared_checked_at = 0.0, float("-inf")
        if self.shared:
            now = int(self._wall_clock())
            self._cache_call(lambda: cache.delete_many(self._keys(now - int(self.window) - 2, now + 1)))

    # -- the host-wide count

    def _shared_wait(self) -> float:
        if not self.shared:
            return 0.0
        now = self._wall_clock()
        if now - self._shared_checked_at >= SHARED_CHECK_SECONDS:
            answer = self._cache_call(self._shared_read, now)
            until, recent = answer if answer is not None else (0.0, 0)
            self._shared_until = until
            # While the host has recent bad requests, every request looks again: a burst from other
            # processes must not slip past in the interval.
            self._shared_checked_at = now if recent == 0 else float("-inf")
        return max(0.0, self._shared_until - now)

    def _keys(self, first_second: int, last_second: int) -> list[str]:
        return [f"ortto:bad-requests:{_HOST}:{second}" for second in range(first_second, last_second + 1)]

    def _shared_record(self, second: int) -> None:
        key = self._keys(second, second)[0]
        cache.add(key, 0, timeout=int(self.window) + 5)
        cache.incr(key)

    def _shared_read(self, now: float) -> tuple[float, int]:
        """(until when the host is at its budget: the second that takes it there, plus the window; how many
        bad requests the host had in the window)."""
        first = int(now - self.window) + 1
        keys = self._keys(first, int(now))
        counts = cache.get_many(keys)
        total, until = 0, 0.0
        for second, key in reversed(list(enumerate(keys, start=first))):
            total += int(counts.get(key) or 0)
            if total >= self.budget and not until:
                until = second + self.window
        return until, total

    def _cache_call(self, call, *args):
        try:
            return call(*args)
        except Exception:  # noqa: BLE001 — a cache outage must not stop syncing; the local count still holds
            logger.debug("Ortto bad-request budget: the shared count is unavailable", exc_info=True)
            return None


_HOST = socket.gethostname()
bad_requests = BadRequestBudget(shared=True)


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str):
            return error
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    return ""


def _error_code(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("code") or "") if isinstance(error, dict) else ""


def _try_in_seconds(body: Any) -> float | None:
    """429 bodies say how long to wait: {"error": {"code": "rate-limit", "try-in-seconds": 10}}."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    candidates = [error.get("try-in-seconds")] if isinstance(error, dict) else []
    candidates.append(body.get("try-in-seconds"))
    for value in candidates:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if seconds >= 0:
            return seconds
    return None


def says_concurrency(body: Any) -> bool:
    """An error body that names concurrency ("concurrency-limit", "too many concurrent requests" ...)."""
    return "concurren" in f"{_error_code(body)} {_error_text(body)}".lower()


def concurrency_refusal(status: int, body: Any) -> bool:
    """Whether an error answer to a synchronous merge by a merge key is Ortto's concurrency limit. The answer is
    not public (docs/ortto-contract.md, "Concurrency"), so every plausible one counts: any status whose body names
    concurrency (429, 400, 409, 500, 503 ...), and a bare 503 (an overloaded server: backing off is right either
    way)."""
    return status >= 400 and (status == 503 or says_concurrency(body))


def limited_merge(path: str, body: dict) -> bool:
    """A call Ortto's concurrency limit applies to: a synchronous person merge by a merge key (merge page:
    "synchronous ("async": false) API updates using a merge key"; merging by person id is the way around it)."""
    return (path == "/v1/person/merge" and not body.get("async")
            and list(body.get("merge_by") or ()) != ["str::person_id"])


# --- Client -------------------------------------------------------------------------------------


class OrttoClient:
    """REST client for one Ortto account (instance).

    `merge_limiter` (None: no limit) is held around each attempt of a synchronous merge by a merge key:
    `acquire() -> ticket` before it, `release(ticket, refused=...)` after its answer (True: refused for
    concurrency; None: no answer). The engine sets it (sync/engine/concurrency.py)."""

    merge_limiter = None

    def __init__(
        self,
        *,
        api_key: str,
        region: str,
        session: requests.Session | None = None,
        sleep: Sleep = time.sleep,
        max_attempts: int = MAX_ATTEMPTS,
        max_total_sleep: float = MAX_TOTAL_SLEEP_SECONDS,
    ):
        api_base(region)  # fail fast on an unknown region
        self.region = region
        self._api_key = api_key
        self._session = session
        self._sleep = sleep
        self.max_attempts = max_attempts
        self.max_total_sleep = max_total_sleep

    def __repr__(self) -> str:
        return f"<OrttoClient region={self.region!r}>"

    def _post(self, path: str, body: dict, *, method: str = "POST") -> Any:
        """POST (or PUT) JSON, retrying 429 / 5xx / timeouts; return the parsed body of a 2xx answer."""
        url = f"{api_base(self.region)}{path}"
        what = f"{method} {path}"
        headers = {
            "X-Api-Key": self._api_key,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        gate = rate_gate(self._api_key)

        def on_error_answer(response: requests.Response, attempt: int) -> tuple[OrttoError, float]:
            status = response.status_code
            payload = json_or_text(response)
            text = _error_text(payload)
            message = f"{what} -> HTTP {status}" + (f": {text}" if text else "")
            if status < 500 and status != 429:
                bad_requests.record()
            if status == 403:
                raise OrttoAccountBlocked(message, status=status, body=payload)
            if status == 401:
                # Never retried: bad-credential loops get the whole IP banned.
                raise OrttoAuthError(message, status=status, body=payload)
            if limited and concurrency_refusal(status, payload):
                wait = _try_in_seconds(payload)
                delay = wait if wait is not None else http.backoff_delay(attempt)
                return OrttoConcurrencyLimited(message, status=status, body=payload), delay
            if status == 429:
                if isinstance(gate, LearnedRateGate) and not says_concurrency(payload):
                    learned = gate.learn(attempt_started)
                    logger.info("Ortto answered 429: pacing this account at %d requests/s", learned)
                wait = _try_in_seconds(payload)
                delay = wait if wait is not None else http.backoff_delay(attempt)
                return OrttoRateLimited(message, status=status, body=payload), delay
            if status >= 500:
                return OrttoUnavailable(message, status=status, body=payload), http.backoff_delay(attempt)
            details = payload.get("details") if isinstance(payload, dict) else None
            raise OrttoRequestError(
                message, status=status, body=payload, details=details if isinstance(details, list) else []
            )

        attempt_started = None
        limited = limited_merge(path, body)
        limiter = self.merge_limiter if limited else None
        ticket = None
        answer_wait = [time.monotonic()]  # when the attempt in flight was sent

        def before_attempt() -> None:
            nonlocal attempt_started, ticket
            if limiter is not None:
                if ticket is not None:  # the last attempt got no answer (timeout, connection error)
                    limiter.release(ticket, refused=None)
                ticket = limiter.acquire()
            attempt_started = gate.acquire()
            pause = bad_requests.wait_time()
            if pause > 0:
                logger.warning("Ortto: %d bad requests in %.0fs; waiting %.1fs to stay clear of the IP ban",
                               bad_requests.budget, bad_requests.window, pause)
                self._sleep(pause)
            answer_wait[0] = time.monotonic()

        def after_response(response: requests.Response) -> None:
            nonlocal ticket
            gate.observe(time.monotonic() - answer_wait[0])
            if limiter is not None and ticket is not None:
                refused = response.status_code >= 400 and concurrency_refusal(response.status_code,
                                                                              json_or_text(response))
                limiter.release(ticket, refused=refused)
                ticket = None

        try:
            response = http.send(
                self._session or thread_session(), method, url, api="Ortto", what=what, error=OrttoError,
                unavailable=OrttoUnavailable, on_error_answer=on_error_answer, headers=headers, json_body=body,
                sleep=self._sleep, max_attempts=self.max_attempts, max_total_sleep=self.max_total_sleep,
                before_attempt=before_attempt, after_response=after_response,
            )
        finally:
            if limiter is not None and ticket is not None:
                limiter.release(ticket, refused=None)
        answer = json_or_text(response)
        if answer is None:
            return {}
        if not isinstance(answer, dict):
            raise OrttoError(f"{what} -> HTTP {response.status_code} with a body that is not a JSON object",
                             status=response.status_code, body=answer)
        return answer

    def in_flight_wanted(self) -> float | None:
        """Calls in flight that would keep this account at its rate (Little's law: rate times how long an
        answer takes), from the answers so far; None before any. An account whose rate is not learned yet
        is sized at ASSUMED_RATE_PER_SECOND: too many only draws the 429 that teaches the gate its rate."""
        gate = rate_gate(self._api_key)
        if not gate.latency:
            return None
        return (gate.rate or ASSUMED_RATE_PER_SECOND) * gate.latency

    # -- calls

    def verify(self) -> None:
        """Check the key against its region with a cheap read; raises OrttoAuthError when rejected."""
        self._post("/v1/person/custom-field/get", {})

    def merge_people(
        self,
        people: list[dict],
        *,
        merge_strategy: int,
        merge_by: Iterable[str] = ("str::email",),
        async_: bool = False,
    ) -> list[dict]:
        """Create or update up to 100 people; one result per input, in order."""
        if len(people) > MAX_BATCH:
            raise ValueError(f"Ortto merges at most {MAX_BATCH} people per call, got {len(people)}")
        if not people:
            return []
        body = {
            "people": people,
            "merge_by": list(merge_by),
            "merge_strategy": merge_strategy,
            "async": async_,
        }
        return list(self._post("/v1/person/merge", body).get("people") or [])

    def create_activities(self, activities: list[dict], *, merge_by: Iterable[str] = ("str::email",)) -> list[dict]:
        if len(activities) > MAX_BATCH:
            raise ValueError(f"Ortto accepts at most {MAX_BATCH} activities per call, got {len(activities)}")
        if not activities:
            return []
        body = {"activities": activities, "merge_by": list(merge_by)}
        return list(self._post("/v1/activities/create", body).get("activities") or [])

    def custom_fields(self) -> list[dict]:
        """The account's custom person fields: [{"field": {"id", "name", "display_type", ...}, ...}]."""
        return list(self._post("/v1/person/custom-field/get", {}).get("fields") or [])

    def create_custom_field(self, *, name: str, field_type: str, existing: list[dict] | None = None) -> str:
        """Create a custom person field and return its id. A field that already exists is not an error,
        whatever status Ortto uses to say so (the public record shows both 400 and 409): on a 400/409
        the field list decides, and the field counts as present when it is there."""
        found = find_custom_field(existing, name=name, field_type=field_type) if existing is not None else None
        if found:
            return found
        try:
            payload = self._post("/v1/person/custom-field/create", {"name": name, "type": field_type})
        except OrttoRequestError as exc:
            if exc.status not in ALREADY_EXISTS_STATUSES:
                raise
            found = find_custom_field(self.custom_fields(), name=name, field_type=field_type)
            if found:
                return found
            if exc.status == 409:
                return computed_field_id(name=name, field_type=field_type)
            raise
        field_id = payload.get("field_id") or (payload.get("field") or {}).get("id")
        return field_id or computed_field_id(name=name, field_type=field_type)

    def create_activity_definition(self, payload: dict) -> str:
        """Create a custom activity definition; return its id ("act:cm:<kebab name>"), new or existing."""
        return self.activity_definition_create(payload).activity_id

    def activity_definition_create(self, payload: dict, *, fallback_icons: Iterable[str] = ()) -> DefinitionAnswer:
        """Create a custom activity definition and return what Ortto answered: its id and the id Ortto gave each
        attribute (`custom_activity.attributes[].field_id`, recorded; nothing public says which prefix a `price`
        or `link` attribute gets, so the bridge uses the ids Ortto answers rather than build them).

        Ortto has no public endpoint that lists definitions, so "already exists" is read from the answer: any
        409, or a 400 whose message says it exists (docs/ortto-contract.md); the attribute ids are then unknown
        ({}). Another 400 may be a refused icon: the create is tried again with each of `fallback_icons` (ids a
        recorded answer shows) before the refusal stands."""
        computed = f"act:cm:{kebab(payload['name'])}"
        icons = list(dict.fromkeys([payload.get("icon_id"), *fallback_icons]))
        for attempt, icon in enumerate(icons):
            try:
                answer = self._post("/v1/definitions/activity/create", {**payload, "icon_id": icon})
            except OrttoRequestError as exc:
                if exc.status == 409 or (exc.status == 400 and says_already_exists(exc.message)):
                    return DefinitionAnswer(activity_id=computed, attribute_ids={}, icon_id=icon, existed=True)
                if exc.status == 400 and attempt + 1 < len(icons):
                    logger.warning("Ortto refused the definition %r with icon %s (%s); trying icon %s",
                                   payload["name"], icon, exc.message, icons[attempt + 1])
                    continue
                raise
            definition = answer.get("custom_activity") or answer.get("definition") or answer
            definition = definition if isinstance(definition, dict) else {}
            activity_id = next((value for key in ("activity_field_id", "activity_id", "id")
                                if isinstance(value := definition.get(key), str) and value.startswith("act:")),
                               computed)
            attribute_ids = {attribute["name"]: attribute["field_id"] for attribute in definition.get("attributes") or []
                             if isinstance(attribute, dict) and isinstance(attribute.get("name"), str)
                             and isinstance(attribute.get("field_id"), str) and attribute["field_id"]}
            return DefinitionAnswer(activity_id=activity_id, attribute_ids=attribute_ids, icon_id=icon)
        raise AssertionError("unreachable: the last icon's refusal is raised")

    # -- accounts (formerly "organizations"): docs/ortto-contract.md ("Organizations")

    def merge_accounts(self, accounts: list[dict], *, merge_strategy: int,
                       merge_by: Iterable[str] = ("str:o:name",)) -> list[dict]:
        """Create or update up to 100 accounts by name; one {"account_id", "status"} per input, in order.
        https://help.ortto.com/a-278-create-or-update-one-or-more-organizations-merge"""
        if len(accounts) > MAX_BATCH:
            raise ValueError(f"Ortto merges at most {MAX_BATCH} accounts per call, got {len(accounts)}")
        if not accounts:
            return []
        body = {"accounts": accounts, "merge_by": list(merge_by), "merge_strategy": merge_strategy,
                "find_strategy": 0, "async": False}
        return list(self._post("/v1/accounts/merge", body).get("accounts") or [])

    def get_people(self, *, filter: dict, fields: Iterable[str], limit: int = 100, offset: int = 0) -> dict:
        """POST /v1/person/get (https://help.ortto.com/developer/latest/api-reference/person/get.html):
        `limit` 1–500, `offset`, `fields`, `filter` with the documented `$and`/`$or`/`$str::is`.
        Returns the whole answer (`contacts`, `has_more`, `next_offset`)."""
        if not 1 <= limit <= 500:
            raise ValueError("Ortto's person/get takes a limit of 1 to 500")
        body = {"limit": limit, "offset": offset, "fields": list(fields), "filter": filter}
        return self._post("/v1/person/get", body)

    def archive_people(self, person_ids: list[str]) -> None:
        """PUT /v1/person/archive `{"inclusion_ids": [...]}` (at most 100 a call; archive page)."""
        if person_ids:
            self._post("/v1/person/archive", {"inclusion_ids": list(person_ids)}, method="PUT")

    def delete_people(self, person_ids: list[str]) -> None:
        """DELETE /v1/person/delete `{"inclusion_ids": [...]}`: only archived people can be deleted."""
        if person_ids:
            self._post("/v1/person/delete", {"inclusion_ids": list(person_ids)}, method="DELETE")

    def add_account_people(self, *, account_id: str, person_ids: list[str]) -> None:
        """Link people to one account (PUT, one account per call).
        https://help.ortto.com/a-280-manage-organization-association-add-remove"""
        self._post("/v1/accounts/contacts/add", {"inclusion_ids": list(person_ids), "account_id": account_id},
                   method="PUT")

    def remove_account_people(self, *, account_id: str, person_ids: list[str]) -> None:
        self._post("/v1/accounts/contacts/remove", {"inclusion_ids": list(person_ids), "account_id": account_id},
                   method="PUT")

    def create_account_field(self, *, name: str, field_type: str) -> str:
        """Create a custom account field ("<prefix>:oc:<kebab name>"); an existing one (409) is not an error."""
        computed = f"{FIELD_TYPE_PREFIXES.get(field_type, 'str')}:oc:{kebab(name)}"
        try:
            payload = self._post("/v1/accounts/custom-field/create", {"name": name, "type": field_type})
        except OrttoRequestError as exc:
            if exc.status == 409 or (exc.status == 400 and says_already_exists(exc.message)):
                return computed
            raise
        return payload.get("field_id") or computed

ALREADY_EXISTS_STATUSES = (400, 409)


def says_already_exists(message: str) -> bool:
    text = (message or "").lower()
    return "exist" in text or "duplicate" in text or "already" in text


def computed_field_id(*, name: str, field_type: str) -> str:
    """Ortto's id rule for a custom person field: type prefix + ":cm:" + kebab-case name."""
    prefix = FIELD_TYPE_PREFIXES.get(field_type, "str")
    return f"{prefix}:cm:{kebab(name)}"


def find_custom_field(fields: list[dict] | None, *, name: str, field_type: str) -> str | None:
    """The id of the field in a custom-field/get answer that is this one (by id, else by name)."""
    wanted = computed_field_id(name=name, field_type=field_type)
    suffix = f":cm:{kebab(name)}"
    by_name = None
    for entry in fields or []:
        field = entry.get("field") or entry
        field_id = field.get("id") or ""
        if field_id == wanted:
            return field_id
        if field_id.endswith(suffix) or (field.get("name") or "").strip().lower() == name.strip().lower():
            by_name = by_name or field_id
    return by_name
