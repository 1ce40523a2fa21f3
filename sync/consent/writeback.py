"""Ortto → BigCommerce opt-outs: a person the store believes subscribed who unsubscribed in Ortto is
removed from the store's newsletter subscribers, and their customer record stops accepting marketing
emails (docs/design.md §4, "Consent written back"; the Ortto calls in docs/ortto-contract.md).

How the bridge learns, cheaply. The candidates are the people of this connection whose ledger says the
store's last choice was an opt-in *and* the bridge sent Ortto a subscribed permission (`store_opt_in` and
`sent_permission` both true): only they can have become unsubscribed in Ortto since. Everyone else is
already unsubscribed (R2) or was never the store's to write back. Each sweep asks Ortto's documented
`POST /v1/person/get` about up to `CONSENT_CHECK_CALLS_PER_SWEEP` × 100 of them (`$or` of `$str::is` on
`str::email`, fields `str::email` and `bol::p`), walking the candidates by ledger id and starting again at
the first once it reaches the end, so a sweep costs a bounded number of calls whatever the store's size.
An Ortto journey's webhook can tell the bridge at once instead (sync/consent/instant.py): it verifies with
person/get and writes through the same functions (writeback_record, unsubscribes_write).

A write BigCommerce refuses (403, 429, outage) stays pending, tried once a sweep, until
CONSENT_WRITEBACK_MAX_ATTEMPTS: then it is failed, with its reason, until support retries it (admin). A store
without the write scope holds its write-backs as no_scope: not an attempt, not a failure.

What it writes (BigCommerce's v3 specs, customers modify scope `store_v2_customers`): the subscriber
records of the email are deleted (subscribers.v3.yml deleteSubscriber) and a customer with that email gets
`accepts_product_review_abandoned_cart_emails: false` (customers.v3.yml updateCustomers, 10 a call).

No ping-pong: once written, the ledger records the store's choice as an opt-out made now, with the
permission Ortto already has (false). The echoes (store/subscriber/deleted is not a scope the bridge syncs;
store/customer/updated brings a customer whose synced fields did not change; a stale subscriber record
without the consent is the ledger's own choice again) are therefore not changes under R3/R4: nothing is
sent back to Ortto, and no second unsubscribe lands on the profile.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from stores.bigcommerce import (
    CUSTOMERS_PUT_LIMIT,
    BigCommerceAuthError,
    BigCommerceClient,
    BigCommerceError,
    BigCommerceRateLimited,
    BigCommerceUnavailable,
)
from sync.models import Connection, ConsentPreference, ConsentWriteback, PersonLedger
from sync.ortto.client import OrttoClient, OrttoRateLimited, OrttoRequestError, OrttoUnavailable

logger = logging.getLogger("sync.consent")

EMAILS_PER_CHECK = 100  # emails per person/get call (`limit` 100 covers them all: one page, no offset)

NOTE_NO_SCOPE = ("Unsubscribes in Ortto cannot update the store yet: the app has read-only access to customers. "
                 "To grant it, reinstall the app or re-authorize it (Apps › My Apps) and accept Customers (modify). "
                 "Syncing to Ortto goes on.")
NOTE_REFUSED = ("BigCommerce refused to change a customer or subscriber (HTTP {status}). The unsubscribes wait "
                "and are written once the app may modify customers: reinstall or re-authorize the app.")
# Both are stored in ConsentPreference.writeback_note (255 characters; PostgreSQL refuses more, SQLite does not).
assert len(NOTE_NO_SCOPE) <= 255 and len(NOTE_REFUSED.format(status=999)) <= 255


def preference_of(store) -> ConsentPreference:
    preference, _ = ConsentPreference.objects.get_or_create(store=store)
    return preference


def writeback_enabled(store) -> bool:
    preference = ConsentPreference.objects.filter(store=store).only("writeback_enabled").first()
    return preference is None or preference.writeback_enabled


def email_filter(emails: list[str]) -> dict:
    """person/get's filter for these emails: the documented `$or` of `$str::is` on `str::email`."""
    return {"$or": [{"$str::is": {"field_id": "str::email", "value": email}} for email in emails]}


# A row in one of these states is the bridge's business already: the walk does not find it again (a failed one
# waits for support's retry, which a new find would otherwise undo).
OPEN_STATES = (ConsentWriteback.State.PENDING, ConsentWriteback.State.FAILED, ConsentWriteback.State.NO_SCOPE)


def _candidates(connection: Connection, after_id: int, limit: int) -> list[tuple[int, str]]:
    waiting = ConsentWriteback.objects.filter(connection=connection, state__in=OPEN_STATES)
    return list(
        PersonLedger.objects.filter(connection=connection, store_opt_in=True, sent_permission=True, id__gt=after_id)
        .exclude(email__in=waiting.values("email"))
        .order_by("id").values_list("id", "email")[:limit]
    )


def unsubscribes_check(connection: Connection, preference: ConsentPreference, *, ortto: OrttoClient,
                       budget: int | None = None) -> tuple[int, int]:
    """Ask Ortto about the next candidates; record each one found unsubscribed as a pending write-back.
    Returns (person/get calls made, unsubscribes found)."""
    budget = settings.CONSENT_CHECK_CALLS_PER_SWEEP if budget is None else budget
    calls = found = 0
    after_id = preference.check_after_id
    wrapped = after_id == 0
    while calls < budget:
        batch = _candidates(connection, after_id, EMAILS_PER_CHECK)
        if not batch:
            if wrapped:
                after_id = 0
                break
            after_id, wrapped = 0, True  # the end of the walk: start again at the first candidate
            continue
        emails = [email for _, email in batch]
        answer = ortto.get_people(filter=email_filter(emails), fields=["str::email", "bol::p"],
                                  limit=EMAILS_PER_CHECK)
        calls += 1
        unsubscribed = set()
        wanted = set(emails)
        for contact in answer.get("contacts") or []:
            fields = (contact or {}).get("fields") or {}
            email = str(fields.get("str::email") or "").strip().lower()
            # Only an explicit false is an unsubscribe; a person without `bol::p` (or gone) is left alone.
            if email in wanted and fields.get("bol::p") is False:
                unsubscribed.add(email)
        for email in unsubscribed:
            writeback_record(connection, email)
        found += len(unsubscribed)
        after_id = batch[-1][0]
        if len(batch) < EMAILS_PER_CHECK:
            after_id = 0  # the walk is complete: the next sweep starts again at the first
            break
    preference.check_after_id = after_id
    preference.check_calls = calls
    preference.checked_at = timezone.now()
    preference.save(update_fields=["check_after_id", "check_calls", "checked_at"])
    return calls, found


def writeback_record(connection: Connection, email: str, *, via_hook: bool = False) -> bool:
    """An unsubscribe Ortto confirmed, to be written to the store. A row already open (pending, failed,
    waiting for the scope) is left as it is: False. A done or unknown one starts again (they subscribed
    again since, and unsubscribed again)."""
    row, created = ConsentWriteback.objects.get_or_create(
        connection=connection, email=email, defaults={"via_hook": via_hook})
    if created:
        return True
    if row.state in OPEN_STATES:
        return False
    return bool(ConsentWriteback.objects.filter(pk=row.pk).exclude(state__in=OPEN_STATES).update(
        state=ConsentWriteback.State.PENDING, found_at=timezone.now(), written_at=None, attempts=0, last_error="",
        via_hook=via_hook))


def _ledger_opted_out(connection: Connection, emails: list[str], *, at) -> None:
    """The store's choice is now an opt-out made at `at`, and Ortto holds false: no echo is a change."""
    PersonLedger.objects.filter(connection=connection, email__in=emails).update(
        store_opt_in=False, store_opt_in_at=at, sent_permission=False)


def _write_chunk(connection: Connection, rows: list[ConsentWriteback], *, bigcommerce: BigCommerceClient) -> dict:
    emails = [row.email for row in rows]
    customers = bigcommerce.customers_by_email(emails)
    by_email: dict[str, list[dict]] = {}
    for customer in customers:
        by_email.setdefault(str(customer.get("email") or "").strip().lower(), []).append(customer)
    has_subscriber = set()
    for email in emails:
        subscribers = bigcommerce.subscribers_by_email(email)
        for subscriber in subscribers:
            bigcommerce.delete_subscriber(subscriber["id"])
        if subscribers:
            has_subscriber.add(email)
    updates = [{"id": c["id"], "accepts_product_review_abandoned_cart_emails": False}
               for email in emails for c in by_email.get(email, [])
               if c.get("accepts_product_review_abandoned_cart_emails") is not False]
    if updates:
        bigcommerce.update_customers(updates)
    now = timezone.now()
    done = [email for email in emails if email in has_subscriber or email in by_email]
    unknown = [email for email in emails if email not in done]
    with transaction.atomic():
        # Only rows still pending change and count: a sweep and a journey webhook writing the same person
        # at once count them once.
        still = ConsentWriteback.objects.filter(connection=connection, state=ConsentWriteback.State.PENDING)
        written = still.filter(email__in=done).update(
            state=ConsentWriteback.State.DONE, written_at=now, attempts=F("attempts") + 1, last_error="")
        not_there = still.filter(email__in=unknown).update(
            state=ConsentWriteback.State.UNKNOWN, written_at=now, attempts=F("attempts") + 1, last_error="")
        _ledger_opted_out(connection, done + unknown, at=now)
        changes = {"writeback_count": F("writeback_count") + written, "unknown_count": F("unknown_count") + not_there}
        if written:
            changes["writeback_last_at"] = now
        ConsentPreference.objects.filter(store=connection.store).update(**changes)
    return {"written": written, "unknown": not_there}


def unsubscribes_write(connection: Connection, preference: ConsentPreference, *,
                       bigcommerce: BigCommerceClient, limit: int | None = None, emails: list[str] | None = None) -> dict:
    """Write the pending unsubscribes to the store (or only those of `emails`). Without the write scope they
    wait as no_scope, with the app page's note, until it is granted (no attempt is counted). On a 403, 429
    or outage from BigCommerce they stay pending (with the reason) for the next sweep, until
    CONSENT_WRITEBACK_MAX_ATTEMPTS attempts: then they are failed until support retries them. The run never
    fails here."""
    limit = settings.CONSENT_WRITES_PER_SWEEP if limit is None else limit
    outcome = {"written": 0, "unknown": 0, "pending": 0, "failed": 0}
    _superseded_drop(connection)
    rows = ConsentWriteback.objects.filter(connection=connection)
    if not connection.store.can_write_customers:
        rows.filter(state=ConsentWriteback.State.PENDING).update(state=ConsentWriteback.State.NO_SCOPE)
        _note(preference, NOTE_NO_SCOPE)
        outcome["pending"] = rows.filter(state=ConsentWriteback.State.NO_SCOPE).count()
        return outcome
    # The scope was granted since: what waited for it is written now.
    rows.filter(state=ConsentWriteback.State.NO_SCOPE).update(state=ConsentWriteback.State.PENDING)
    pending = rows.filter(state=ConsentWriteback.State.PENDING)
    if emails is not None:
        pending = pending.filter(email__in=emails)
    pending = list(pending.order_by("id")[:limit])
    if not pending:
        _note(preference, "")
        return outcome
    note = ""
    for start in range(0, len(pending), CUSTOMERS_PUT_LIMIT):
        chunk = pending[start:start + CUSTOMERS_PUT_LIMIT]
        try:
            counts = _write_chunk(connection, chunk, bigcommerce=bigcommerce)
        except BigCommerceAuthError as exc:
            if exc.status == 401:
                raise  # the token was revoked: the run fails as for any read
            note = NOTE_REFUSED.format(status=exc.status)
            outcome["failed"] += _keep_pending(chunk, f"HTTP {exc.status} from BigCommerce")
            break
        except (BigCommerceRateLimited, BigCommerceUnavailable) as exc:
            outcome["failed"] += _keep_pending(chunk, f"HTTP {exc.status or 'error'} from BigCommerce, will retry")
            break
        except BigCommerceError as exc:
            outcome["failed"] += _keep_pending(chunk, str(exc)[:255])
            continue
        outcome["written"] += counts["written"]
        outcome["unknown"] += counts["unknown"]
    outcome["pending"] = rows.filter(state=ConsentWriteback.State.PENDING).count()
    _note(preference, note)
    return outcome


def _superseded_drop(connection: Connection) -> int:
    """A pending unsubscribe the shopper overtook by opting in again in the store (a choice the ledger
    recorded after the unsubscribe was found) is not written: the newest choice wins, as under R3/R4."""
    newer = PersonLedger.objects.filter(connection=connection, email=OuterRef("email"), store_opt_in=True,
                                        store_opt_in_at__gt=OuterRef("found_at"))
    return ConsentWriteback.objects.filter(connection=connection, state__in=OPEN_STATES).filter(
        Exists(newer)).delete()[0]


def _keep_pending(rows: list[ConsentWriteback], error: str) -> int:
    """One more attempt for each; those that reached the limit are failed. Returns how many failed now."""
    still = ConsentWriteback.objects.filter(pk__in=[row.pk for row in rows], state=ConsentWriteback.State.PENDING)
    still.update(attempts=F("attempts") + 1, last_error=error[:255])
    return still.filter(attempts__gte=settings.CONSENT_WRITEBACK_MAX_ATTEMPTS).update(
        state=ConsentWriteback.State.FAILED)


def writebacks_retry(queryset) -> int:
    """Support's retry: failed write-backs are pending again, with a fresh count of attempts."""
    return queryset.filter(state=ConsentWriteback.State.FAILED).update(
        state=ConsentWriteback.State.PENDING, attempts=0, last_error="")


def _note(preference: ConsentPreference, note: str) -> None:
    if preference.writeback_note != note:
        preference.writeback_note = note
        preference.save(update_fields=["writeback_note"])


def consent_sweep(connection: Connection, *, ortto: OrttoClient, bigcommerce: BigCommerceClient, log=logger) -> dict:
    """The sweep's part (an incremental run, first slice): check Ortto, then write what is pending.
    Ortto throttling or an outage leaves the rest to the next sweep; it never fails the run."""
    preference = preference_of(connection.store)
    if not preference.writeback_enabled:
        return {"enabled": False}
    if not connection.store.can_write_customers:
        # Installed with read-only customers: syncing goes on one way, the app page says how to grant it;
        # no Ortto call is spent on unsubscribes that could not be written (those found already wait).
        _note(preference, NOTE_NO_SCOPE)
        ConsentWriteback.objects.filter(connection=connection, state=ConsentWriteback.State.PENDING).update(
            state=ConsentWriteback.State.NO_SCOPE)
        return {"enabled": True, "scope": False}
    outcome = {"enabled": True, "check_calls": 0, "found": 0}
    try:
        outcome["check_calls"], outcome["found"] = unsubscribes_check(connection, preference, ortto=ortto)
    except (OrttoRateLimited, OrttoUnavailable, OrttoRequestError) as exc:
        log.warning("Ortto unsubscribes check stopped (%s); the next sweep goes on", exc.status)
    outcome.update(unsubscribes_write(connection, preference, bigcommerce=bigcommerce))
    if outcome["check_calls"] or outcome["written"] or outcome["unknown"] or outcome["pending"] or outcome["failed"]:
        log.info("consent: %(check_calls)d person/get call(s), %(found)d unsubscribed in Ortto, %(written)d "
                 "written to the store, %(unknown)d not in the store, %(pending)d pending, %(failed)d failed "
                 "after too many refusals", outcome)
    return outcome
