"""Writes for the BigCommerce side: install, load, uninstall, remove user."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import bigcommerce
from .models import SpentSignedPayload, Store, StoreUser
from .signals import store_uninstalled
from .signed_payload import SignedPayload

logger = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The store is unknown here or has uninstalled the app: the owner must (re)install."""


class StoreUserRemoved(Exception):
    """The load token was issued before BigCommerce removed this user from the store."""


class SignedPayloadSpent(Exception):
    """This load token already opened the app page once."""


class CallbackRefused(Exception):
    """A remove-user callback that changes nothing; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class InstallOutcome:
    store: Store | None
    created: bool
    missing_scopes: list[str]


def scopes_missing(granted: str) -> list[str]:
    """Required scopes not granted; a read-write scope satisfies its read-only variant."""
    have = set(granted.split())
    missing = []
    for scope in settings.BIGCOMMERCE_REQUIRED_SCOPES:
        if scope in have:
            continue
        if scope.endswith("_read_only") and scope.removesuffix("_read_only") in have:
            continue
        missing.append(scope)
    return missing


def store_install(*, grant, store_name: str = "", store_domain: str = "") -> InstallOutcome:
    """Save (or refresh on re-install) the store and its token from a token grant."""
    missing = scopes_missing(grant.scope)
    if missing:
        return InstallOutcome(store=None, created=False, missing_scopes=missing)
    now = timezone.now()
    owner = grant.owner or {}
    user = grant.user or {}
    with transaction.atomic():
        store, created = Store.objects.select_for_update().get_or_create(store_hash=grant.store_hash)
        store.access_token = grant.access_token
        store.scopes = grant.scope
        store.account_uuid = grant.account_uuid or ""
        store.owner_bc_id = owner.get("id")
        store.owner_email = owner.get("email") or ""
        store.is_installed = True
        store.installed_at = now
        store.uninstalled_at = None
        if store_name:
            store.name = store_name
        if store_domain:
            store.domain = store_domain
        store.save()
        for person, is_owner in ((owner, True), (user, owner.get("id") == user.get("id"))):
            if person.get("id") is None:
                continue
            StoreUser.objects.update_or_create(
                store=store,
                bc_user_id=person["id"],
                defaults={"email": person.get("email") or "", "is_owner": is_owner, "is_active": True,
                          "last_seen_at": now},
            )
    logger.info("store %s installed (%s)", store.store_hash, "new" if created else "re-install")
    return InstallOutcome(store=store, created=created, missing_scopes=[])


def signed_payload_spend(*, payload: SignedPayload) -> None:
    """Use a load token up: raises SignedPayloadSpent if it was used before (by anyone, in any process)."""
    expires_at = datetime.fromtimestamp(max(payload.expires_at, 0), tz=dt_timezone.utc)
    try:
        with transaction.atomic():
            SpentSignedPayload.objects.create(token_id=payload.token_id, expires_at=expires_at)
    except IntegrityError:
        raise SignedPayloadSpent(payload.store_hash) from None


def signed_payloads_purge() -> int:
    """Forget spent tokens that have expired: they are refused as expired now."""
    deleted, _ = SpentSignedPayload.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


def store_load(*, payload: SignedPayload) -> tuple[Store, StoreUser]:
    """A verified load: the store must be installed here; unknown users of it are added. Each load token
    opens the app page once (signed_payload_spend)."""
    try:
        store = Store.objects.get(store_hash=payload.store_hash)
    except Store.DoesNotExist:
        raise StoreUnavailable(payload.store_hash)
    if not store.is_installed:
        raise StoreUnavailable(payload.store_hash)
    removal_issued_at = (StoreUser.objects.filter(store=store, bc_user_id=payload.user_id)
                         .values_list("removal_issued_at", flat=True).first())
    if removal_issued_at is not None and payload.issued_at <= removal_issued_at:
        # Only a load token BigCommerce signed after the removal (its `iat` against the removal's, both
        # BigCommerce's clock) means the owner added the user back; an older token (valid for a day) or
        # one of the same second must not bring the user back.
        raise StoreUserRemoved(payload.store_hash)
    signed_payload_spend(payload=payload)
    user, _ = StoreUser.objects.update_or_create(
        store=store,
        bc_user_id=payload.user_id,
        defaults={"email": payload.user_email, "is_owner": payload.owner_id == payload.user_id,
                  "is_active": True, "last_seen_at": timezone.now()},
    )
    return store, user


def store_uninstall(*, store: Store) -> Store:
    """Stop all work for the store and drop its token; its sync history stays for support.

    The apps that do work for a store stop it on the store_uninstalled signal.
    """
    with transaction.atomic():
        store = Store.objects.select_for_update().get(pk=store.pk)
        store.is_installed = False
        store.uninstalled_at = timezone.now()
        store.access_token = ""
        store.webhook_secret = ""
        store.uninstall_check_at = None
        store.uninstall_checks = 0
        store.save()
        StoreUser.objects.filter(store=store).update(is_active=False)
        store_uninstalled.send(sender=Store, store=store)
    logger.info("store %s uninstalled", store.store_hash)
    return store


# After an uninstall callback that BigCommerce did not confirm at once, the bridge asks again after these
# delays (the scheduled maintenance tick, every minute, runs the checks that are due); once they are spent
# and the token still works, the app is installed and the callback changed nothing.
UNINSTALL_CHECK_DELAYS = (timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=5),
                          timedelta(minutes=15), timedelta(minutes=60))
# How long a worker that claimed a check holds it: a crashed worker's check is taken up again after it.
UNINSTALL_CHECK_LEASE = timedelta(minutes=2)


def _uninstall_confirmed(store: Store) -> bool | None:
    """One authenticated read with the store's token: True when BigCommerce refuses it (401/403, or 404: the
    store is gone), i.e. the app is uninstalled; False when it answers (installed); None when it could not
    be asked (5xx, network)."""
    if not store.access_token:
        return True
    client = bigcommerce.BigCommerceClient(store.store_hash, store.access_token, max_attempts=2, max_total_sleep=2.0)
    try:
        client.store_information()
    except (bigcommerce.BigCommerceAuthError, bigcommerce.BigCommerceNotFound):
        return True
    except bigcommerce.BigCommerceError as exc:
        logger.warning("uninstall of %s not confirmed: BigCommerce answered %s", store.store_hash, exc.status)
        return None
    return False


def store_uninstall_callback(*, payload: SignedPayload) -> Store | None:
    """BigCommerce's uninstall callback: always answered 2xx; the store is uninstalled once BigCommerce
    confirms the app is gone, now or in a later check.

    The callback's signed payload is signed exactly like every user's load token, so the payload alone
    proves nothing. BigCommerce revokes the store's access token when the app is uninstalled, but may call
    before the token stops working: a cheap authenticated read that BigCommerce refuses confirms the
    uninstall; one it still answers (or cannot answer) leaves the store as it is and schedules checks
    (UNINSTALL_CHECK_DELAYS). While checks are pending, more callbacks for the store (a replayed load token
    sent again and again) cost no call to BigCommerce: at most about one a minute per store is made.
    """
    store = Store.objects.filter(store_hash=payload.store_hash).first()
    if store is None or not store.is_installed:
        return store  # nothing to undo (a repeated callback)
    now = timezone.now()
    # Claimed with one conditional UPDATE: of simultaneous callbacks only one asks BigCommerce.
    claimed = Store.objects.filter(pk=store.pk, is_installed=True, uninstall_check_at__isnull=True).update(
        uninstall_check_at=now + UNINSTALL_CHECK_LEASE, uninstall_checks=0)
    if not claimed:
        # A check is pending: this callback costs no call, it only brings that check forward to the next
        # minute (a real uninstall during a flood of replays is still confirmed within a couple of minutes).
        soon = now + UNINSTALL_CHECK_DELAYS[0]
        Store.objects.filter(pk=store.pk, uninstall_check_at__gt=soon).update(uninstall_check_at=soon)
        return store
    store.refresh_from_db()
    return _uninstall_check(store)


def _uninstall_check(store: Store) -> Store:
    """Ask BigCommerce once for a store whose check this process has claimed; uninstall or schedule the next."""
    confirmed = _uninstall_confirmed(store)
    if confirmed:
        return store_uninstall(store=store)
    checks = store.uninstall_checks + 1
    if checks > len(UNINSTALL_CHECK_DELAYS):
        logger.warning("uninstall callback for %s not confirmed after %d checks: the app is still installed; "
                       "nothing was changed", store.store_hash, checks)
        Store.objects.filter(pk=store.pk).update(uninstall_check_at=None, uninstall_checks=0)
    else:
        if confirmed is False:
            logger.info("uninstall callback for %s: BigCommerce still accepts the store's token; checking "
                        "again in %s", store.store_hash, UNINSTALL_CHECK_DELAYS[checks - 1])
        Store.objects.filter(pk=store.pk).update(
            uninstall_check_at=timezone.now() + UNINSTALL_CHECK_DELAYS[checks - 1], uninstall_checks=checks)
    store.refresh_from_db()
    return store


def store_uninstall_checks_run() -> int:
    """Run the uninstall checks that are due (from the scheduled maintenance tick); how many ran."""
    ran = 0
    now = timezone.now()
    due = Store.objects.filter(is_installed=True, uninstall_check_at__lte=now).values_list("pk", "uninstall_check_at")
    for pk, due_at in due:
        # Claimed by moving its due time (compare-and-set): two ticks at once never both ask BigCommerce.
        if Store.objects.filter(pk=pk, uninstall_check_at=due_at).update(uninstall_check_at=now + UNINSTALL_CHECK_LEASE):
            _uninstall_check(Store.objects.get(pk=pk))
            ran += 1
    return ran


def store_user_remove(*, payload: SignedPayload) -> bool:
    """Deactivate the one user the payload names, and remember when, so older load tokens and app-context
    tokens stop working. A user the bridge has never seen (removed before their first app load) is
    recorded too, so that their first load is refused like any other removed user's.

    BigCommerce never removes a store's owner, so a payload naming the owner (any load token of the
    owner's, replayed here) is refused. Raises CallbackRefused.
    """
    store = Store.objects.filter(store_hash=payload.store_hash).first()
    if store is None:
        return False
    if payload.user_id == store.owner_bc_id or payload.user_id == payload.owner_id:
        raise CallbackRefused("The store owner cannot be removed from the store.", status=400)
    now = timezone.now()
    with transaction.atomic():
        user, created = StoreUser.objects.select_for_update().get_or_create(
            store=store, bc_user_id=payload.user_id,
            defaults={"email": payload.user_email, "is_active": False, "removed_at": now,
                      "removal_issued_at": payload.issued_at},
        )
        if created:
            return True
        if user.is_owner:
            raise CallbackRefused("The store owner cannot be removed from the store.", status=400)
        user.is_active = False
        user.removed_at = now
        # A late or repeated removal never moves the line back: loads older than the newest removal stay out.
        user.removal_issued_at = max(user.removal_issued_at or 0, payload.issued_at)
        user.save(update_fields=["is_active", "removed_at", "removal_issued_at"])
    return True


def store_for_context(*, store_hash: str, bc_user_id: int, issued_at_ms: int) -> Store:
    """The store behind an app-context token, if it is installed, the user still belongs to it, and the
    token was issued after the user's last removal (a re-added user's old tokens stay dead)."""
    store = Store.objects.filter(store_hash=store_hash, is_installed=True).first()
    user = None if store is None else (
        StoreUser.objects.filter(store=store, bc_user_id=bc_user_id, is_active=True).only("removed_at").first())
    if user is None or (user.removed_at is not None and issued_at_ms <= user.removed_at.timestamp() * 1000):
        raise StoreUnavailable(store_hash)
    return store


def store_user_label(*, store: Store, bc_user_id: int) -> str:
    """How notes such as "tracking enabled by …" name a control-panel user: the email BigCommerce gave at
    install or load, else the user's BigCommerce id (it sends no email for some users)."""
    email = StoreUser.objects.filter(store=store, bc_user_id=bc_user_id).values_list("email", flat=True).first()
    return email or f"bc-user:{bc_user_id}"
