"""What stands in front of every emulated API call: the region-bound key, the disconnected data source,
injected faults and per-instance throttling. All state lives in the database, so every web process and
thread sees the same counters."""

import math
import random
import time

from django.db import IntegrityError, connection, transaction
from django.db.models import F

from .engine import error_body
from .models import InFlightMerge, Instance, IpStrikes, RateWindow

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
    if instance.expired:
        # https://help.ortto.com/a-714-api-error-responses: 403 when the account has expired or the user
        # who authorised the key left. The body's wording is not public; the shape is Ortto's usual one.
        return None, error_body(403, "account expired or suspended")
    return instance, None


# --- the bad-request IP ban (https://help.ortto.com/a-235-rate-limits) -------------------------------------

BAN_STRIKES = 15
BAN_WINDOW_SECONDS = 15.0
BAN_SECONDS = 15.0


def ip_banned(ip: str, *, now: float | None = None) -> float | None:
    """Seconds left of this IP's ban, or None."""
    now = time.time() if now is None else now
    until = IpStrikes.objects.filter(ip=ip).values_list("banned_until", flat=True).first()
    return until - now if until and until > now else None


def ip_strike(ip: str, *, now: float | None = None) -> None:
    """Count one bad request (a 4xx other than 429) for the IP; the 15th in 15 s bans it for 15 s."""
    now = time.time() if now is None else now
    for _ in range(3):
        try:
            with transaction.atomic():
                row, _ = IpStrikes.objects.select_for_update().get_or_create(ip=ip)
                strikes = [t for t in row.strikes if now - t < BAN_WINDOW_SECONDS] + [now]
                if len(strikes) >= BAN_STRIKES:
                    row.banned_until, strikes = now + BAN_SECONDS, []
                row.strikes = strikes
                row.save()
            return
        except IntegrityError:
            continue


def banned_body(seconds: float) -> dict:
    # What a banned IP is answered is not public: the emulator says 429 with the rate-limit shape.
    return {"error": {"code": "ip-banned", "message": "too many bad requests",
                      "try-in-seconds": max(0.1, math.ceil(seconds * 10) / 10)}}


# --- Ortto's concurrency limit for synchronous merges by a merge key (merge page, a-257) -------------------

IN_FLIGHT_STALE_SECONDS = 60.0


def merge_slot_take(instance: Instance, *, now: float | None = None) -> tuple[InFlightMerge | None, int]:
    """Register one synchronous merge in flight: (its slot, the merges in flight counting it). The slot is None
    (and nothing registered) when that count is over the limit. The count is the caller's concurrency as Ortto
    sees it (the request log keeps it: tests and the benchmark measure the bridge's in-flight merges there)."""
    now = time.time() if now is None else now
    slot = InFlightMerge.objects.create(instance=instance, started_at=now)
    running = InFlightMerge.objects.filter(instance=instance, started_at__gt=now - IN_FLIGHT_STALE_SECONDS,
                                           pk__lte=slot.pk).count()
    if running > instance.merge_concurrency_limit:
        slot.delete()
        return None, running
    return slot, running


def concurrency_body() -> dict:
    # Ortto says such merges "may start failing" without naming the answer: the emulator says 429.
    return {"error": {"code": "concurrency-limit", "message": "too many concurrent synchronous merges",
                      "try-in-seconds": 1}}


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
