"""One throttle for every password form (the connect sign-in, the admin login, sign-up, "Add an Ortto
account") and for single-use links.

Each attempt first raises a counter row with one atomic UPDATE (count = count + 1) and only then
reads it: of N simultaneous attempts at most `limit` ever see a count within the limit, whatever the
interleaving. A counter that is bumped after a failure lets every parallel guess through the check.
Counters are keyed by account and by client IP; keys are hashed so no email is stored in them.

Sign-in never hard-locks an account for everyone: a stranger's wrong passwords refuse only the stranger's
own (form, account, IP) pair. An account (or an IP) that collects many failures from everywhere only slows
every pair down to one attempt a minute, so the rightful user, from their own IP, still signs in. The
connect sign-in and the admin login count separately: failures on the public connect form never touch an
admin's sign-in. (django-axes was considered: its AXES_LOCKOUT_PARAMETERS can lock by the [username,
ip_address] combination, but every lockout it knows is a hard one with a single failure limit, it has no
softer per-account slow-down, and it counts failures after the password check, through the
user_login_failed signal, which lets parallel guesses past the limit; see docs/design.md.)
"""

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from sync.models import ThrottleCounter


@dataclass(frozen=True)
class Rule:
    name: str
    limit: int
    window_seconds: int


# Sign-in guesses at one account on one form from one IP: beyond the limit that pair is refused.
SIGNIN_PAIR = Rule("signin-pair", limit=5, window_seconds=15 * 60)
# Guesses at one account on one form from anywhere, and from one IP at any account: beyond either limit
# every pair involved is slowed to SIGNIN_SLOW (one attempt a minute), never locked.
SIGNIN_ACCOUNT = Rule("signin-account", limit=20, window_seconds=15 * 60)
SIGNIN_IP = Rule("signin-ip", limit=100, window_seconds=15 * 60)
SIGNIN_SLOW = Rule("signin-slow", limit=1, window_seconds=60)
# The forms whose sign-ins are counted apart (an admin is never slowed by the connect form's failures).
SIGNIN_FORMS = ("connect", "admin")
SIGNUP_IP = Rule("signup-ip", limit=10, window_seconds=60 * 60)
# BigCommerce's auth callback comes from the merchant's browser and costs one token exchange: per IP only
# (a per-store limit would let a stranger block a store's install).
INSTALL_IP = Rule("install-ip", limit=10, window_seconds=10 * 60)
ACCOUNT_ADD_USER = Rule("account-add-user", limit=10, window_seconds=60 * 60)
ACCOUNT_ADD_IP = Rule("account-add-ip", limit=30, window_seconds=60 * 60)
# Per store, for the app page's buttons: every manual run reads the store's BigCommerce quota (shared
# with the store's other apps), every tracking toggle costs Scripts API calls. Whoever clicks, and
# however many tabs or scripts post at once, the store gets one manual run a minute and a few toggles.
SYNC_NOW_STORE = Rule("sync-now-store", limit=1, window_seconds=60)
TRACKING_STORE = Rule("tracking-store", limit=4, window_seconds=5 * 60)

LOCKED_MESSAGE = "Too many attempts. Wait {wait} and try again."


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


def signin_attempt(*, form: str, username: str, ip: str) -> Rule | None:
    """Count one sign-in attempt (every attempt, before the password is checked). None: check the password;
    else the rule that refuses it (for locked_message)."""
    if form not in SIGNIN_FORMS:
        raise ValueError(form)
    pair = f"{form}|{username}|{ip}"
    if not throttle_allows(rule=SIGNIN_PAIR, subject=pair):
        return SIGNIN_PAIR
    account_busy = not throttle_allows(rule=SIGNIN_ACCOUNT, subject=f"{form}|{username}")
    ip_busy = not throttle_allows(rule=SIGNIN_IP, subject=ip)
    if (account_busy or ip_busy) and not throttle_allows(rule=SIGNIN_SLOW, subject=pair):
        return SIGNIN_SLOW
    return None


def signin_succeeded(*, form: str, username: str, ip: str) -> None:
    """The right password: this pair starts afresh, and its attempt counts against neither the account nor the IP."""
    pair = f"{form}|{username}|{ip}"
    throttle_forget(rule=SIGNIN_PAIR, subject=pair)
    throttle_forget(rule=SIGNIN_SLOW, subject=pair)
    throttle_undo(rule=SIGNIN_ACCOUNT, subject=f"{form}|{username}")
    throttle_undo(rule=SIGNIN_IP, subject=ip)


def install_attempt(request) -> bool:
    """An auth (install) callback may exchange its code (settings.BIGCOMMERCE_INSTALL_THROTTLE)."""
    return throttle_allows(rule=INSTALL_IP, subject=client_ip(request))


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


def single_use_spent(*, purpose: str, token: str) -> bool:
    """Whether `token` was presented for `purpose` already (single_use), without presenting it."""
    key = _key(Rule(f"once-{purpose}", limit=1, window_seconds=0), token)
    return ThrottleCounter.objects.filter(key=key, window_ends_at__gt=timezone.now(), count__gte=1).exists()


def locked_message(rule: Rule = SIGNIN_PAIR) -> str:
    minutes = max(rule.window_seconds // 60, 1)
    return LOCKED_MESSAGE.format(wait="a minute" if minutes == 1 else f"{minutes} minutes")
