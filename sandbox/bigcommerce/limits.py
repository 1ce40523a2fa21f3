"""Per-store request quota and injected faults.

The window lives on the store row and moves with conditional UPDATEs, so every thread and process
serving the sandbox sees the same count (BigCommerce's quota is shared by all apps on a store).
"""

import random
import time
from dataclasses import dataclass

from django.db import connection
from django.db.models import F

from .models import SandboxStore


@dataclass(frozen=True)
class QuotaState:
    allowed: bool
    quota: int
    left: int
    window_ms: int
    reset_ms: int

    def headers(self) -> dict[str, str]:
        return {
            "X-Rate-Limit-Time-Window-Ms": str(self.window_ms),
            "X-Rate-Limit-Time-Reset-Ms": str(self.reset_ms),
            "X-Rate-Limit-Requests-Quota": str(self.quota),
            "X-Rate-Limit-Requests-Left": str(self.left),
        }


def _now_ms() -> int:
    return int(time.time() * 1000)


def _quota_state(values, *, allowed: bool, now_ms: int) -> QuotaState:
    quota, window_ms, started, used = values
    if now_ms - started >= window_ms:
        # The window has run out without a request opening a new one: a fresh window is waiting.
        return QuotaState(allowed, quota, quota, window_ms, window_ms)
    return QuotaState(allowed, quota, max(quota - used, 0), window_ms, max(started + window_ms - now_ms, 1))


def _state(store_id: int, *, allowed: bool, now_ms: int) -> QuotaState:
    values = SandboxStore.objects.values_list(
        "quota_requests", "quota_window_ms", "window_started_ms", "window_used"
    ).get(pk=store_id)
    return _quota_state(values, allowed=allowed, now_ms=now_ms)


def quota_consume(*, store: SandboxStore) -> QuotaState:
    """Count one request against the store's window; `allowed` is False when the quota is spent.

    One conditional UPDATE .. RETURNING (open a new window when the old one has run out, else count the
    request while the window has room), so an allowed request costs a single write.
    """
    now_ms = _now_ms()
    table = connection.ops.quote_name(SandboxStore._meta.db_table)
    expired = "window_started_ms <= %s - quota_window_ms"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET "
            f"window_started_ms = CASE WHEN {expired} THEN %s ELSE window_started_ms END, "
            f"window_used = CASE WHEN {expired} THEN 1 ELSE window_used + 1 END "
            f"WHERE id = %s AND ({expired} OR window_used < quota_requests) "
            f"RETURNING quota_requests, quota_window_ms, window_started_ms, window_used",
            [now_ms, now_ms, now_ms, store.pk, now_ms],
        )
        row = cursor.fetchone()
    if row is not None:
        return _quota_state(row, allowed=True, now_ms=now_ms)
    return _state(store.pk, allowed=False, now_ms=now_ms)


def quota_peek(*, store: SandboxStore) -> QuotaState:
    return _state(store.pk, allowed=True, now_ms=_now_ms())


def quota_set(*, store: SandboxStore, requests: int | None = None, window_ms: int | None = None,
              reset: bool = True) -> SandboxStore:
    if requests is not None:
        store.quota_requests = max(int(requests), 0)
    if window_ms is not None:
        store.quota_window_ms = max(int(window_ms), 1)
    fields = ["quota_requests", "quota_window_ms"]
    if reset:
        store.window_started_ms, store.window_used = 0, 0
        fields += ["window_started_ms", "window_used"]
    store.save(update_fields=fields)
    return store


def faults_set(
    *,
    store: SandboxStore,
    error_429_probability: float | None = None,
    error_500_probability: float | None = None,
    slow_probability: float | None = None,
    slow_seconds: float | None = None,
    fail_next_count: int | None = None,
    fail_next_status: int | None = None,
    customers_cursor_meta: bool | None = None,
) -> SandboxStore:
    """Change the store's fault injection; arguments left as None keep their current value."""
    changes = {
        "fault_429_probability": error_429_probability,
        "fault_500_probability": error_500_probability,
        "fault_slow_probability": slow_probability,
        "fault_slow_seconds": slow_seconds,
        "fail_next_count": fail_next_count,
        "fail_next_status": fail_next_status,
        "customers_cursor_meta": customers_cursor_meta,
    }
    changes = {field: value for field, value in changes.items() if value is not None}
    for field, value in changes.items():
        setattr(store, field, value)
    if changes:
        store.save(update_fields=list(changes))
    return store


def faults_reset(*, store: SandboxStore) -> SandboxStore:
    return faults_set(
        store=store, error_429_probability=0.0, error_500_probability=0.0, slow_probability=0.0,
        fail_next_count=0, customers_cursor_meta=True,
    )


@dataclass(frozen=True)
class Fault:
    status: int | None = None  # an error status to answer with instead of the real response
    delay_seconds: float = 0.0


def fault_pick(*, store: SandboxStore, rng: random.Random | None = None) -> Fault:
    """Decide whether this request fails. The "fail next N" counter wins over the probabilities."""
    # The store row was read at the start of this request: with no token left, skip the write.
    taken = store.fail_next_count > 0 and SandboxStore.objects.filter(pk=store.pk, fail_next_count__gt=0).update(
        fail_next_count=F("fail_next_count") - 1
    )
    if taken:
        return Fault(status=store.fail_next_status)
    rng = rng or random
    if store.fault_429_probability and rng.random() < store.fault_429_probability:
        return Fault(status=429)
    if store.fault_500_probability and rng.random() < store.fault_500_probability:
        return Fault(status=rng.choice([500, 502, 503]))
    if store.fault_slow_probability and rng.random() < store.fault_slow_probability:
        return Fault(delay_seconds=store.fault_slow_seconds)
    return Fault()


def fault_config(store: SandboxStore) -> dict:
    return {
        "error_429_probability": store.fault_429_probability,
        "error_500_probability": store.fault_500_probability,
        "slow_probability": store.fault_slow_probability,
        "slow_seconds": store.fault_slow_seconds,
        "fail_next_count": store.fail_next_count,
        "fail_next_status": store.fail_next_status,
        "customers_cursor_meta": store.customers_cursor_meta,
    }


def quota_config(store: SandboxStore) -> dict:
    return {"requests": store.quota_requests, "window_ms": store.quota_window_ms}
