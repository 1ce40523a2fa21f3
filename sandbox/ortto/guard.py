"""What stands in front of every emulated API call: the region-bound key, the disconnected data source,
injected faults and per-instance throttling. All state lives in the database, so every web process and
thread sees the same counters."""

import math
import random
import time

from django.db import connection
from django.db.models import F

from .engine import error_body
from .models import Instance, RateWindow

REGIONS = ("default", "au", "eu")


def authenticate(*, region: str, api_key: str | None):
    """The instance this key belongs to in this region, or (None, 401 body). Keys only work on their region."""
    if not api_key:
        return None, error_body(401, "missing X-Api-Key header")
    instance = Instance.objects.filter(api_key=api_key, region=region).first()
    if instance is None:
        return None, error_body(401, "invalid API key")
    if instance.revoked:
        return None, error_body(401, "API key has been disconnected")
    return instance, None


def rate_limit_body(try_in_seconds: float) -> dict:
    # Ortto's documented 429 body; the sandbox's wait can be fractional (time to the next one-second window).
    return {"error": {"code": "rate-limit", "message": "rate limit", "try-in-seconds": try_in_seconds}}


def failure(status: int) -> dict:
    if status == 429:
        return rate_limit_body(1)
    messages = {
        401: "invalid API key",
        403: "account expired",
        500: "internal server error",
        502: "bad gateway",
        503: "service unavailable",
        504: "gateway timeout",
    }
    return error_body(status, messages.get(status, "injected failure"))


def take_forced_failure(instance: Instance) -> int | None:
    """Consume one of the "fail the next N requests" tokens; atomic across processes."""
    if instance.fail_next_count <= 0:
        return None
    taken = Instance.objects.filter(pk=instance.pk, fail_next_count__gt=0).update(
        fail_next_count=F("fail_next_count") - 1
    )
    return instance.fail_next_status if taken else None


def random_fault(instance: Instance) -> str | None:
    draw = random.random()
    for kind, probability in (
        ("429", instance.fault_429_probability),
        ("500", instance.fault_500_probability),
        ("timeout", instance.fault_timeout_probability),
    ):
        if probability > 0 and draw < probability:
            return kind
        draw -= probability
    return None


def throttle(instance: Instance, *, now: float | None = None, arrived: float | None = None) -> float | None:
    """Count this request in the one-second window it arrived in; seconds to wait when that window is full.

    One conditional upsert, atomic across processes: it adds the request only while the window is under the
    limit, so a rejected request is not counted (the counter holds the requests let through). `arrived`
    (default `now`) picks the window; the wait runs from `now` to the window's end.
    """
    limit = instance.rate_limit_per_second
    if not limit:
        return None
    now = time.time() if now is None else now
    arrived = now if arrived is None else arrived
    second = int(arrived)
    table = connection.ops.quote_name(RateWindow._meta.db_table)
    count = connection.ops.quote_name("count")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (instance_id, second, {count}) VALUES (%s, %s, 1) "
            f"ON CONFLICT (instance_id, second) DO UPDATE SET {count} = {table}.{count} + 1 "
            f"WHERE {table}.{count} < %s RETURNING {count}",
            [instance.pk, second, limit],
        )
        row = cursor.fetchone()
    if row is not None:
        if row[0] == 1:  # the first request of a new window clears the old ones
            RateWindow.objects.filter(instance=instance, second__lt=second - 10).delete()
        return None
    return max(0.1, math.ceil((second + 1 - now) * 10) / 10)
