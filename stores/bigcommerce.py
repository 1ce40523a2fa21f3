"""The one BigCommerce client: the OAuth token exchange and a small per-store REST client.

Everything that talks to BigCommerce goes through here, over the shared transport (stores/http.py):
requests share one connection pool, carry a required timeout, pace themselves on the
X-Rate-Limit-* headers (the quota is shared with every other app on the store), retry 429 / 5xx /
timeouts / connection errors with capped backoff, and fail with typed errors. Access tokens and the
client secret never appear in log lines or exception messages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import requests
from django.conf import settings

from . import http
from .http import ApiError, Sleep, header_number, json_or_text, thread_session

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
MAX_TOTAL_SLEEP_SECONDS = 120.0
# The store's quota is shared with every app installed on it: stop a little before it runs out.
DEFAULT_RATE_LIMIT_RESERVE = 2
# The auth callback is a browser request waiting on this: give up sooner than a background sync does.
TOKEN_EXCHANGE_MAX_ATTEMPTS = 3
TOKEN_EXCHANGE_MAX_TOTAL_SLEEP_SECONDS = 10.0
DEFAULT_PAGE_LIMIT = 250


# --- Errors -------------------------------------------------------------------------------------


# Every order read carries its line items in the same answer (orders.v2.oas2.yml, getOrders / getOrder:
# `include=consignments.line_items` with `consignment_structure=object` puts each consignment's
# /orders/{id}/products rows under `consignments`): Ordered product costs no request of its own.
ORDER_INCLUDES = {"include": "consignments.line_items", "consignment_structure": "object"}


class BigCommerceError(ApiError):
    """Base of every BigCommerce failure. `message` never contains a token or secret."""


class BigCommerceAuthError(BigCommerceError):
    """401/403: the token was revoked, the app uninstalled, or a scope is missing."""


class BigCommerceNotFound(BigCommerceError):
    """404."""


class BigCommerceRateLimited(BigCommerceError):
    """429 that outlasted the retries."""


class BigCommerceUnavailable(BigCommerceError):
    """5xx, timeout or connection error that outlasted the retries."""


class BigCommerceRequestError(BigCommerceError):
    """Any other 4xx (400, 409, 413, 422 ...). `errors` is the parsed response body."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None):
        super().__init__(message, status=status, body=body)
        self.errors = body


# --- Data ---------------------------------------------------------------------------------------


@dataclass
class TokenGrant:
    access_token: str = field(repr=False)
    scope: str
    store_hash: str
    context: str
    account_uuid: str
    user: dict
    owner: dict


@dataclass
class Page:
    items: list[dict]
    total: int | None = None
    next_after: str | None = None
    next_page: int | None = None
    total_pages: int | None = None  # v3 meta.pagination; None where the answer has none


# --- Dates --------------------------------------------------------------------------------------


def format_filter_datetime(value: datetime) -> str:
    """Format an aware datetime for BigCommerce date filters: "2024-05-14T09:34:00Z".

    Both v3 (`date_modified:min`, typed `date-time` in the specs) and v2 (`min_date_modified`,
    "RFC-2822 or ISO-8601") accept this form. Microseconds are dropped, which moves the bound
    earlier: the filters are inclusive, so this can only re-read, never skip.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("BigCommerce date filters need an aware datetime")
    return value.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Answers -------------------------------------------------------------------------------------


def _error_summary(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("title", "error", "message", "error_description"):
            if isinstance(body.get(key), str) and body[key]:
                return body[key]
    if isinstance(body, list) and body and isinstance(body[0], dict):
        # v2 errors are a list: [{"status": 400, "message": "..."}]
        if isinstance(body[0].get("message"), str):
            return body[0]["message"]
    return ""


def _raise_for_status(response: requests.Response, what: str) -> None:
    status = response.status_code
    body = json_or_text(response)
    summary = _error_summary(body)
    message = f"{what} -> HTTP {status}" + (f": {summary}" if summary else "")
    if status in (401, 403):
        raise BigCommerceAuthError(message, status=status, body=body)
    if status == 404:
        raise BigCommerceNotFound(message, status=status, body=body)
    if status == 429:
        raise BigCommerceRateLimited(message, status=status, body=body)
    if status >= 500:
        raise BigCommerceUnavailable(message, status=status, body=body)
    raise BigCommerceRequestError(message, status=status, body=body)


def _retry_or_raise(response: requests.Response, attempt: int, *, what: str) -> tuple[BigCommerceError, float]:
    """An error answer: 429 waits for the window's reset, 5xx backs off; any other is raised, typed."""
    status = response.status_code
    if status == 429:
        failure = BigCommerceRateLimited(f"{what} -> HTTP 429 (rate limited)", status=429, body=json_or_text(response))
        reset_ms = header_number(response, "X-Rate-Limit-Time-Reset-Ms")
        retry_after = header_number(response, "X-Retry-After")
        if reset_ms is not None and reset_ms >= 0:
            delay = reset_ms / 1000.0
        elif retry_after is not None and retry_after >= 0:
            delay = retry_after
        else:
            # No headers: the platform itself is under load for this store. Back off.
            delay = http.backoff_delay(attempt)
        return failure, delay
    if status >= 500:
        failure = BigCommerceUnavailable(f"{what} -> HTTP {status}", status=status, body=json_or_text(response))
        return failure, http.backoff_delay(attempt)
    _raise_for_status(response, what)
    raise AssertionError("unreachable")  # pragma: no cover


def _send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    headers: dict[str, str],
    params: dict[str, Any] | None = None,
    json_body: Any = None,
    sleep: Sleep,
    max_attempts: int,
    max_total_sleep: float,
    before_attempt: Callable[[], None] | None = None,
    after_response: Callable[[requests.Response], None] | None = None,
) -> requests.Response:
    """Send one logical request over the shared transport; return a 2xx/3xx response."""
    return http.send(
        session, method, url, api="BigCommerce", what=what, error=BigCommerceError,
        unavailable=BigCommerceUnavailable,
        on_error_answer=lambda response, attempt: _retry_or_raise(response, attempt, what=what),
        headers=headers, params=params, json_body=json_body, sleep=sleep, max_attempts=max_attempts,
        max_total_sleep=max_total_sleep, before_attempt=before_attempt, after_response=after_response,
    )


# --- Token exchange -----------------------------------------------------------------------------


def exchange_code(*, code: str, scope: str, context: str, session: requests.Session | None = None,
                  sleep: Sleep = time.sleep) -> TokenGrant:
    """Exchange an auth-callback code for the store's permanent access token."""
    url = f"{settings.BIGCOMMERCE_LOGIN_URL}/oauth2/token"
    body = {
        "client_id": settings.BIGCOMMERCE_CLIENT_ID,
        "client_secret": settings.BIGCOMMERCE_CLIENT_SECRET,
        "code": code,
        "context": context,
        "scope": scope,
        "grant_type": "authorization_code",
        "redirect_uri": f"{settings.PUBLIC_URL}/bigcommerce/auth/",
    }
    response = _send(
        session or thread_session(),
        "POST",
        url,
        what="POST /oauth2/token",
        headers={"Accept": "application/json", "Content-Type": "application/json"},
        json_body=body,
        sleep=sleep,
        max_attempts=TOKEN_EXCHANGE_MAX_ATTEMPTS,
        max_total_sleep=TOKEN_EXCHANGE_MAX_TOTAL_SLEEP_SECONDS,
    )
    payload = json_or_text(response)
    if not isinstance(payload, dict) or not payload.get("access_token"):
        raise BigCommerceError(
            "POST /oauth2/token -> answer without an access_token", status=response.status_code
        )
    granted_context = payload.get("context") or context
    return TokenGrant(
        access_token=payload["access_token"],
        scope=payload.get("scope") or "",
        store_hash=granted_context.split("/", 1)[-1],
        context=granted_context,
        account_uuid=payload.get("account_uuid") or "",
        user=payload.get("user") or {},
        owner=payload.get("owner") or {},
    )


# --- Store client -------------------------------------------------------------------------------


# customers.v3.yml updateCustomers: "Limit of 10 customers per call."
CUSTOMERS_PUT_LIMIT = 10
# The scope that lets an app write customers and subscribers (customers modify); the read-only variant
# is enough for syncing to Ortto, this one for writing Ortto's unsubscribes back.
CUSTOMERS_WRITE_SCOPE = "store_v2_customers"


class BigCommerceClient:
    """REST client for one store (v2 and v3), authenticated with the store's access token.

    Pacing state lives on the instance and is shared by the threads that read through it (parallel page
    reads): when a response says the requests left in the window have fallen to `rate_limit_reserve`,
    every request that starts before the window resets (X-Rate-Limit-Time-Reset-Ms) first waits for it.
    """

    def __init__(
        self,
        store_hash: str,
        access_token: str,
        *,
        session: requests.Session | None = None,
        sleep: Sleep = time.sleep,
        rate_limit_reserve: int | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        max_total_sleep: float = MAX_TOTAL_SLEEP_SECONDS,
    ):
        self.store_hash = store_hash
        self._access_token = access_token
        self._session = session
        self._sleep = sleep
        if rate_limit_reserve is None:
            rate_limit_reserve = getattr(settings, "BIGCOMMERCE_RATE_LIMIT_RESERVE", DEFAULT_RATE_LIMIT_RESERVE)
        self.rate_limit_reserve = rate_limit_reserve
        self.max_attempts = max_attempts
        self.max_total_sleep = max_total_sleep
        self._pace_lock = threading.Lock()
        self._pause_until: float = 0.0  # time.monotonic() when the window resets; 0 = no pause
        self._in_flight = 0  # requests sent through this client and not answered yet (all threads)
        # What Little's law needs to size the reads in flight (in_flight_wanted): the store's quota rate
        # from the answers' headers, and how long answers take (a moving average, seconds).
        self._quota_rate: float | None = None
        self._latency: float | None = None
        self._attempt = threading.local()

    def __repr__(self) -> str:
        return f"<BigCommerceClient store_hash={self.store_hash!r}>"

    # -- plumbing

    def _before_attempt(self) -> None:
        with self._pace_lock:
            until = self._pause_until
        pause = until - time.monotonic() if until else 0.0
        if pause > 0:
            logger.info("BigCommerce store %s: quota reserve reached, pausing %.2fs", self.store_hash, pause)
            self._sleep(pause)
        if until:
            with self._pace_lock:
                if self._pause_until == until:  # the threads that waited for this reset all saw it pass
                    self._pause_until = 0.0
        self._attempt.started = time.monotonic()

    def _after_response(self, response: requests.Response) -> None:
        self._observe(response)
        if response.status_code == 429:
            return  # _send sleeps the reset itself before retrying; don't sleep twice.
        left = header_number(response, "X-Rate-Limit-Requests-Left")
        reset_ms = header_number(response, "X-Rate-Limit-Time-Reset-Ms")
        if left is None or reset_ms is None:
            return
        with self._pace_lock:
            # The other requests in flight were counted by BigCommerce, or will be: keep the reserve
            # for the store's other apps whichever way they land.
            if left <= self.rate_limit_reserve + max(self._in_flight - 1, 0):
                self._pause_until = max(self._pause_until, time.monotonic() + max(reset_ms, 0.0) / 1000.0)

    def _observe(self, response: requests.Response) -> None:
        started = getattr(self._attempt, "started", None)
        quota = header_number(response, "X-Rate-Limit-Requests-Quota")
        window_ms = header_number(response, "X-Rate-Limit-Time-Window-Ms")
        with self._pace_lock:
            if started is not None:
                seconds = max(time.monotonic() - started, 0.0)
                self._latency = seconds if self._latency is None else 0.8 * self._latency + 0.2 * seconds
            if quota and window_ms and quota > 0 and window_ms > 0:
                self._quota_rate = quota / (window_ms / 1000.0)

    def in_flight_wanted(self) -> float | None:
        """Requests in flight that would use the store's whole quota (Little's law: the quota's rate times
        how long an answer takes), from what the answers so far showed; None before any answer said."""
        with self._pace_lock:
            if self._quota_rate is None or self._latency is None:
                return None
            return self._quota_rate * self._latency

    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                 json_body: Any = None) -> requests.Response:
        url = f"{settings.BIGCOMMERCE_API_URL}/stores/{self.store_hash}{path}"
        headers = {
            "X-Auth-Token": self._access_token,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        with self._pace_lock:
            self._in_flight += 1
        try:
            return _send(
                self._session or thread_session(),
                method,
                url,
                what=f"{method} {path}",
                headers=headers,
                params=params,
                json_body=json_body,
                sleep=self._sleep,
                max_attempts=self.max_attempts,
                max_total_sleep=self.max_total_sleep,
                before_attempt=self._before_attempt,
                after_response=self._after_response,
            )
        finally:
            with self._pace_lock:
                self._in_flight -= 1

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise BigCommerceError(
                f"{method} {path} -> HTTP {response.status_code} with a body that is not JSON",
                status=response.status_code,
                body=response.text[:2000],
            ) from exc

    @staticmethod
    def _unwrap(payload: Any) -> dict:
        """v3 wraps single objects as {"data": {...}, "meta": {}}; some answers are flat."""
        if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
            return payload["data"]
        return payload if isinstance(payload, dict) else {}

    # -- store

    def store_information(self) -> dict:
        return self._json("GET", "/v2/store") or {}

    # -- customers (v3, cursor paging)

    def customers_page(
        self,
        *,
        modified_since: datetime | None = None,
        after: str | None = None,
        page: int | None = None,
        ids: list[int] | None = None,
        created_min: datetime | None = None,
        created_max: datetime | None = None,
        sort: str = "date_modified:asc",
        limit: int = DEFAULT_PAGE_LIMIT,
    ) -> Page:
        """One page by cursor (`after`) or by number (`page`), in `sort` order (customers.v3.yml, sort);
        created_min / created_max: `date_created:min` / `date_created:max` (customers.v3.yml)."""
        params: dict[str, Any] = {"include": "addresses", "sort": sort, "limit": limit}
        if page is not None and not after:
            params["page"] = page
        if modified_since is not None:
            params["date_modified:min"] = format_filter_datetime(modified_since)
        if created_min is not None:
            params["date_created:min"] = format_filter_datetime(created_min)
        if created_max is not None:
            params["date_created:max"] = format_filter_datetime(created_max)
        if ids:
            params["id:in"] = ",".join(str(int(i)) for i in ids)
        if after:
            params["after"] = after
        payload = self._json("GET", "/v3/customers", params=params) or {}
        meta = payload.get("meta") or {}
        pagination = meta.get("pagination") or {}
        cursor = meta.get("cursor_pagination") or {}
        next_after = None
        if (cursor.get("links") or {}).get("next") and cursor.get("end_cursor"):
            next_after = cursor["end_cursor"]
        # Page numbers (meta.pagination), for an answer without cursor metadata.
        current = pagination.get("current_page") or page or 1
        total_pages = pagination.get("total_pages") or 0
        return Page(items=list(payload.get("data") or []), total=pagination.get("total"), next_after=next_after,
                    next_page=current + 1 if current < total_pages else None,
                    total_pages=pagination.get("total_pages"))

    # -- subscribers (v3, page-based)

    def subscribers_page(
        self,
        *,
        modified_since: datetime | None = None,
        page: int = 1,
        ids: list[int] | None = None,
        limit: int = DEFAULT_PAGE_LIMIT,
    ) -> Page:
        params: dict[str, Any] = {"page": page, "limit": limit}
        if modified_since is not None:
            params["date_modified:min"] = format_filter_datetime(modified_since)
        if ids:
            params["id:in"] = ",".join(str(int(i)) for i in ids)
        payload = self._json("GET", "/v3/customers/subscribers", params=params) or {}
        pagination = (payload.get("meta") or {}).get("pagination") or {}
        current = pagination.get("current_page") or page
        total_pages = pagination.get("total_pages") or 0
        return Page(
            items=list(payload.get("data") or []),
            total=pagination.get("total"),
            next_page=current + 1 if current < total_pages else None,
            total_pages=pagination.get("total_pages"),
        )

    # -- consent written back (Ortto unsubscribes; customers modify scope, store_v2_customers)

    def customers_by_email(self, emails: list[str]) -> list[dict]:
        """The customers with these emails (customers.v3.yml getCustomers, `email:in`), at most one page."""
        if not emails:
            return []
        params = {"email:in": ",".join(emails), "limit": max(len(emails), 1)}
        payload = self._json("GET", "/v3/customers", params=params) or {}
        return list(payload.get("data") or [])

    def subscribers_by_email(self, email: str) -> list[dict]:
        """The subscriber records of one email (subscribers.v3.yml getSubscribers, `email` filter)."""
        payload = self._json("GET", "/v3/customers/subscribers", params={"email": email}) or {}
        return list(payload.get("data") or [])

    def delete_subscriber(self, subscriber_id: int) -> None:
        """Remove one newsletter subscriber (subscribers.v3.yml deleteSubscriber, 204); gone already is fine."""
        try:
            self._request("DELETE", f"/v3/customers/subscribers/{int(subscriber_id)}")
        except BigCommerceNotFound:
            pass

    def update_customers(self, rows: list[dict]) -> list[dict]:
        """PUT /v3/customers (customers.v3.yml updateCustomers): customer_Put rows with `id`, 10 a call."""
        if len(rows) > CUSTOMERS_PUT_LIMIT:
            raise ValueError(f"BigCommerce updates at most {CUSTOMERS_PUT_LIMIT} customers per call, got {len(rows)}")
        if not rows:
            return []
        payload = self._json("PUT", "/v3/customers", json_body=rows) or {}
        return list(payload.get("data") or []) if isinstance(payload, dict) else []

    # -- orders (v2, keyset on id)

    def orders_page(
        self,
        *,
        modified_since: datetime | None = None,
        min_id: int | None = None,
        max_id: int | None = None,
        limit: int = DEFAULT_PAGE_LIMIT,
    ) -> Page:
        """One page of orders by ascending id; items are as BigCommerce sends them (RFC-2822 dates).

        v2 has no cursor and no meta: callers page with min_id = last id + 1. 204 is an empty page.
        """
        params: dict[str, Any] = {"sort": "id:asc", "limit": limit, **ORDER_INCLUDES}
        if modified_since is not None:
            params["min_date_modified"] = format_filter_datetime(modified_since)
        if min_id is not None:
            params["min_id"] = min_id
        if max_id is not None:
            params["max_id"] = max_id
        payload = self._json("GET", "/v2/orders", params=params)
        return Page(items=list(payload or []))

    def orders_count(self, *, modified_since: datetime | None = None) -> int:
        params: dict[str, Any] = {}
        if modified_since is not None:
            params["min_date_modified"] = format_filter_datetime(modified_since)
        payload = self._json("GET", "/v2/orders/count", params=params) or {}
        return int(payload.get("count") or 0)

    def order(self, order_id: int) -> dict | None:
        try:
            return self._json("GET", f"/v2/orders/{int(order_id)}", params=dict(ORDER_INCLUDES))
        except BigCommerceNotFound:
            return None

    # -- carts (v3)

    def cart(self, cart_id: str) -> dict | None:
        """A cart's contents while it exists (carts.v3.yml, getCart); None once it is gone (404: converted
        into an order, deleted, or expired)."""
        try:
            return self._unwrap(self._json("GET", f"/v3/carts/{quote(str(cart_id), safe='')}"))
        except BigCommerceNotFound:
            return None

    # -- catalog (v3)

    def catalog_products_page(
        self,
        *,
        page: int = 1,
        modified_since: datetime | None = None,
        ids: list[int] | None = None,
        after_id: int | None = None,
        limit: int = DEFAULT_PAGE_LIMIT,
    ) -> Page:
        """One page of products with their variants and main image (products_catalog.v3.yml, getProducts:
        `include=variants,primary_image` (IncludeParamBase), `id:in`, `id:greater` (IdGreaterParam),
        `date_modified:min`, page/limit paging with meta.pagination). By ascending id, so a product changed
        while the pages are read is not skipped; `after_id` reads the page after the last id a run committed
        (a product deleted meanwhile shifts no page, unlike a page number)."""
        params: dict[str, Any] = {"include": "variants,primary_image", "page": page, "limit": limit,
                                  "sort": "id", "direction": "asc"}
        if modified_since is not None:
            params["date_modified:min"] = format_filter_datetime(modified_since)
        if ids:
            params["id:in"] = ",".join(str(int(i)) for i in ids)
        if after_id:
            params["id:greater"] = int(after_id)
        payload = self._json("GET", "/v3/catalog/products", params=params) or {}
        pagination = (payload.get("meta") or {}).get("pagination") or {}
        current = pagination.get("current_page") or page
        total_pages = pagination.get("total_pages") or 0
        return Page(items=[p for p in payload.get("data") or [] if isinstance(p, dict)],
                    total=pagination.get("total"), next_page=current + 1 if current < total_pages else None,
                    total_pages=pagination.get("total_pages"))

    # -- scripts (v3)

    def create_script(self, payload: dict) -> dict:
        return self._unwrap(self._json("POST", "/v3/content/scripts", json_body=payload))

    def update_script(self, uuid: str, payload: dict) -> dict:
        return self._unwrap(self._json("PUT", f"/v3/content/scripts/{uuid}", json_body=payload))

    def delete_script(self, uuid: str) -> None:
        try:
            self._request("DELETE", f"/v3/content/scripts/{uuid}")
        except BigCommerceNotFound:
            pass  # the merchant (or auto_uninstall) removed it already

    def get_script(self, uuid: str) -> dict | None:
        try:
            return self._unwrap(self._json("GET", f"/v3/content/scripts/{uuid}"))
        except BigCommerceNotFound:
            return None

    # -- webhooks (v3)

    def create_hook(self, *, scope: str, destination: str, headers: dict[str, str]) -> dict:
        body = {"scope": scope, "destination": destination, "is_active": True, "headers": headers}
        return self._unwrap(self._json("POST", "/v3/hooks", json_body=body))

    def list_hooks(self) -> list[dict]:
        hooks: list[dict] = []
        page = 1
        while True:
            payload = self._json("GET", "/v3/hooks", params={"page": page, "limit": DEFAULT_PAGE_LIMIT})
            if isinstance(payload, list):  # a flat answer has no paging
                return hooks + payload
            payload = payload or {}
            items = list(payload.get("data") or [])
            hooks.extend(items)
            pagination = (payload.get("meta") or {}).get("pagination") or {}
            total_pages = pagination.get("total_pages")
            if not items or (total_pages is not None and page >= total_pages) or (
                total_pages is None and len(items) < DEFAULT_PAGE_LIMIT
            ):
                return hooks
            page += 1

    def update_hook(self, hook_id: int, *, is_active: bool) -> dict:
        """Turn a hook on or off (webhooks.v3.yml, updateWebhook: PUT /v3/hooks/{id} with webhook_Put).
        BigCommerce deactivates a hook whose deliveries keep failing; `is_active: true` re-activates it."""
        return self._unwrap(self._json("PUT", f"/v3/hooks/{int(hook_id)}", json_body={"is_active": is_active}))

    def delete_hook(self, hook_id: int) -> None:
        try:
            self._request("DELETE", f"/v3/hooks/{int(hook_id)}")
        except BigCommerceNotFound:
            pass  # already gone (BigCommerce deletes an app's hooks on uninstall)


def store_client(store, **options: Any) -> BigCommerceClient:
    """The client for a store (a Store, or a TokenGrant before the store is saved): the one place a
    BigCommerce client is built. `options` are BigCommerceClient's retry and pacing keywords."""
    return BigCommerceClient(store.store_hash, store.access_token, **options)
