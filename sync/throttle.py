"""One throttle for every password form (the connect sign-in, the admin login, sign-up, "Add an Ortto
account") and for single-use links.

Each attempt first raises a counter row with one atomic UPDATE (count = count + 1) and only then
reads it: of N simultaneous attempts at most `limit` ever see a count within the limit, whatever the
interleaving. A counter that is bumped after a failure lets every parallel guess through the check.
Counters are keyed by account and by client IP; keys are hashed so no email is stored in them.
"""

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .models import ThrottleCounter


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    window_seconds: int


# Sign-in guesses for one account (connect sign-in and admin login share it), and from one IP.
SIGNIN_ACCOUNT = Rule("signin-account", limit=5, window_seconds=15 * 60)
SIGNIN_IP = Rule("signin-ip", limit=100, window_seconds=15 * 60)
SIGNUP_IP = Rule("signup-ip", limit=10, window_seconds=60 * 60)
ACCOUNT_ADD_USER = Rule("account-add-user", limit=10, window_seconds=60 * 60)
ACCOUNT_ADD_IP = Rule("account-add-ip", limit=30, window_seconds=60 * 60)
# Per store, for the app page's buttons: every manual run reads the store's BigCommerce quota (shared
# with the store's other apps), every tracking toggle costs Scripts API calls. Whoever clicks, and
# however many tabs or scripts post at once, the store gets one manual run a minute and a few toggles.
SYNC_NOW_STORE = Rule("sync-now-store", limit=1, window_seconds=60)
TRACKING_STORE = Rule("tracking-store", limit=4, window_seconds=5 * 60)

LOCKED_MESSAGE = "Too many attempts. Wait {minutes} minutes and try again."


def client_ip(request) -> str:
    """The address to count attempts by. Behind the documented TLS proxy every request comes from the
    proxy, so the client is the last X-Forwarded-For entry (the one our proxy added; earlier entries are
    the client's own claims)."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "") if settings.BEHIND_TLS_PROXY else ""
    if forwarded.strip():
        return forwarded.split(",")[-1].strip()[:64]
    return request.META.get("REMOTE_ADDR", "")


def _key(rule: Rule, subject: str) -> str:
    digest = hashlib.sha256(f"{rule.name}|{subject.strip().lower()}".encode()).hexdigest()[:40]
    return f"{rule.name}:{digest}"


def throttle_hit(*, rule: Rule, subject: str) -> int:
    """Count one attempt at `subject` under `rule` and return the count in the window, this one included."""
    key = _key(rule, subject)
    for _ in range(3):
        now = timezone.now()
        counters = ThrottleCounter.objects.filter(key=key)
        if counters.filter(window_ends_at__gt=now).update(count=F("count") + 1):
            return counters.values_list("count", flat=True).first() or 1
        # No window open: start one, whether an old row is there (reset it) or not (create it). Two
        # attempts racing here both fail over to the UPDATE above on their next turn.
        ends = now + timedelta(seconds=rule.window_seconds)
        if counters.filter(window_ends_at__lte=now).update(count=1, window_ends_at=ends):
            return 1
        try:
            with transaction.atomic():
                ThrottleCounter.objects.create(key=key, count=1, window_ends_at=ends)
            return 1
        except IntegrityError:
            continue
    return rule.limit + 1  # constant contention on one key is itself an attack: refuse


def throttle_allows(*, rule: Rule, subject: str) -> bool:
    """Count the attempt, then say whether it is within the limit."""
    return throttle_hit(rule=rule, subject=subject) <= rule.limit


def throttle_open_at(*, rule: Rule, subject: str) -> datetime | None:
    """When `subject` may try again under `rule` (None: it may now). Reads only; counts nothing."""
    return ThrottleCounter.objects.filter(
        key=_key(rule, subject), window_ends_at__gt=timezone.now(), count__gte=rule.limit,
    ).values_list("window_ends_at", flat=True).first()


def throttle_wait_seconds(*, rule: Rule, subject: str) -> int:
    """Seconds until `subject` may try again under `rule` (0: it may now)."""
    open_at = throttle_open_at(rule=rule, subject=subject)
    return max(1, math.ceil((open_at - timezone.now()).total_seconds())) if open_at else 0


def throttle_forget(*, rule: Rule, subject: str) -> None:
    ThrottleCounter.objects.filter(key=_key(rule, subject)).delete()


def throttle_undo(*, rule: Rule, subject: str) -> None:
    """Take one attempt back (a sign-in that succeeded does not count against its IP)."""
    ThrottleCounter.objects.filter(key=_key(rule, subject), count__gt=0).update(count=F("count") - 1)


def throttle_purge() -> int:
    """Drop counters whose window has closed (a scheduled clean-up; they are reset on use anyway)."""
    return ThrottleCounter.objects.filter(window_ends_at__lte=timezone.now()).delete()[0]


# --- The rules as the forms use them ---------------------------------------------------------------


def signin_attempt(*, username: str, ip: str) -> bool:
    """Count one sign-in attempt (every attempt, before the password is checked); False: refuse it."""
    account_ok = throttle_allows(rule=SIGNIN_ACCOUNT, subject=username)
    ip_ok = throttle_allows(rule=SIGNIN_IP, subject=ip)
    return account_ok and ip_ok


def signin_succeeded(*, username: str, ip: str) -> None:
    throttle_forget(rule=SIGNIN_ACCOUNT, subject=username)
    throttle_undo(rule=SIGNIN_IP, subject=ip)


def signup_attempt(*, ip: str) -> bool:
    return throttle_allows(rule=SIGNUP_IP, subject=ip)


def account_add_attempt(*, user_id: int, ip: str) -> bool:
    user_ok = throttle_allows(rule=ACCOUNT_ADD_USER, subject=str(user_id))
    ip_ok = throttle_allows(rule=ACCOUNT_ADD_IP, subject=ip)
    return user_ok and ip_ok


def sync_now_attempt(*, store_hash: str) -> int:
    """Count one manual run for the store; 0 when allowed, else the seconds until Sync now is open again."""
    if throttle_allows(rule=SYNC_NOW_STORE, subject=store_hash):
        return 0
    return throttle_wait_seconds(rule=SYNC_NOW_STORE, subject=store_hash) or 1


def sync_now_open_at(*, store_hash: str) -> datetime | None:
    return throttle_open_at(rule=SYNC_NOW_STORE, subject=store_hash)


def tracking_attempt(*, store_hash: str) -> int:
    """Count one tracking toggle for the store; 0 when allowed, else the seconds until it may toggle again."""
    if throttle_allows(rule=TRACKING_STORE, subject=store_hash):
        return 0
    return throttle_wait_seconds(rule=TRACKING_STORE, subject=store_hash) or 1


def single_use(*, purpose: str, token: str, ttl_seconds: int) -> bool:
    """True the first time `token` is presented for `purpose` (within its lifetime), False on a replay."""
    return throttle_hit(rule=Rule(f"once-{purpose}", limit=1, window_seconds=ttl_seconds), subject=token) == 1


def locked_message(rule: Rule = SIGNIN_ACCOUNT) -> str:
    return LOCKED_MESSAGE.format(minutes=rule.window_seconds // 60)
