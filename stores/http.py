"""The HTTP transport under both API clients (stores/bigcommerce.py and sync/ortto/client.py).

One connection pool per process and one session per thread, with no cookies and no credentials (each
request carries its own key header); a required timeout (settings.HTTP_TIMEOUT_SECONDS, read at call
time); retries of timeouts, connection errors and the answers a client says are worth retrying, with
capped exponential backoff and jitter; typed errors whose messages never carry a key or token.
Each client keeps its own error classes (BigCommerceError, OrttoError ...) over ApiError, and decides
what an error answer means. It lives in stores because sync may import stores, never the reverse.
"""

from __future__ import annotations

import http.cookiejar
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0

Sleep = Callable[[float], None]


class ApiError(Exception):
    """Base of every API client's errors. `message` never contains a key, token or secret."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body


# --- Sessions -----------------------------------------------------------------------------------

_adapter_lock = threading.Lock()
_adapter: HTTPAdapter | None = None
_thread_sessions = threading.local()


def _shared_adapter() -> HTTPAdapter:
    global _adapter
    with _adapter_lock:
        if _adapter is None:
            # Retries are ours (they need the APIs' rate-limit answers); urllib3 must not add its own.
            _adapter = HTTPAdapter(pool_connections=12, pool_maxsize=32, max_retries=0)
        return _adapter


def thread_session() -> requests.Session:
    """A session for the current thread, over the process-wide connection pool.

    Sessions carry no credentials (each request sends its own key header) and keep no cookies, so
    nothing leaks from one store or account to another.
    """
    session = getattr(_thread_sessions, "session", None)
    if session is None:
        session = requests.Session()
        session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = _shared_adapter()
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        _thread_sessions.session = session
    return session


# --- Answers ------------------------------------------------------------------------------------


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with jitter for retry number `attempt` (1-based)."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2 ** (attempt - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def json_or_text(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]


def header_number(response: requests.Response, name: str) -> float | None:
    raw = response.headers.get(name)  # requests' headers are case-insensitive
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


# --- Sending ------------------------------------------------------------------------------------

# What a client makes of an error answer (status >= 400) on attempt n: (the error, seconds to wait)
# when it is worth retrying; it raises the error itself when not.
RetryDecision = Callable[[requests.Response, int], tuple[ApiError, float]]


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    api: str,
    what: str,
    error: type[ApiError],
    unavailable: type[ApiError],
    on_error_answer: RetryDecision,
    headers: dict[str, str],
    params: dict[str, Any] | None = None,
    json_body: Any = None,
    sleep: Sleep,
    max_attempts: int,
    max_total_sleep: float,
    before_attempt: Callable[[], None] | None = None,
    after_response: Callable[[requests.Response], None] | None = None,
) -> requests.Response:
    """Send one logical request to `api` ("BigCommerce", "Ortto"), retrying what is worth retrying.

    Returns the first answer below 400. Timeouts and connection errors become `unavailable` and are
    retried; other request failures become `error` at once. Gives up (raising the last failure) after
    max_attempts, or when the next wait would take the total past max_total_sleep.
    """
    slept = 0.0
    attempt = 0
    while True:
        attempt += 1
        if before_attempt:
            before_attempt()
        failure: ApiError
        try:
            response = session.request(
                method,
                url,
                headers=headers,
                params=params,
                json=json_body,
                timeout=settings.HTTP_TIMEOUT_SECONDS,
            )
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
            failure = unavailable(f"{what} -> {kind}", status=None, body=None)
            failure.__cause__ = exc
            delay = backoff_delay(attempt)
        except requests.RequestException as exc:
            # Not worth retrying (an invalid URL, too many redirects ...); still a typed error.
            raise error(f"{what} -> {type(exc).__name__}") from exc
        else:
            if after_response:
                after_response(response)
            if response.status_code < 400:
                return response
            failure, delay = on_error_answer(response, attempt)

        if attempt >= max_attempts or slept + delay > max_total_sleep:
            logger.warning("%s %s; giving up after %d attempt(s)", api, failure.message, attempt)
            raise failure
        logger.info("%s %s; retry %d/%d in %.2fs", api, failure.message, attempt, max_attempts - 1, delay)
        sleep(delay)
        slept += delay
