"""The right to be forgotten (docs/design.md §4, "Erasure").

- `email_forget`: support's "Forget this email" (and `store/customer/deleted` when the store chose to erase):
  the person's rows in the bridge's own tables are deleted (ledgers, failed-record events, cart rows,
  staged subscribers, write-backs) and the text the bridge stored about runs is scrubbed; if asked, the
  person is archived and then deleted in Ortto (`PUT /v1/person/archive`, `DELETE /v1/person/delete`,
  docs/ortto-contract.md). An `ErasureRecord` proves it without the email: a keyed hash (HMAC-SHA256 with
  `ERASURE_HASH_KEY`).
- `erased_filter`: the sweep (and any run) leaves out the records of an erased person that are not newer
  than the erasure, so a full or incremental run does not re-create them; a record created after it (a
  new order or sign-up: they came back on their own) lifts the erasure and is synced as usual.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django_q.models import Schedule

from stores.models import Store, WebhookEvent
from sync.engine import mapping
from sync.models import (
    CartLedger,
    Connection,
    ConsentPreference,
    ConsentWriteback,
    ErasureRecord,
    Incident,
    OrderLedger,
    OrganizationMember,
    PersonLedger,
    StagedSubscriber,
    SyncEvent,
    SyncRun,
)
from sync.ortto.client import OrttoError
from sync.ortto.schema import ortto_client

logger = logging.getLogger("sync.consent")

ERASED = "[erased]"


def email_hash(email: str) -> str:
    """The keyed hash an audit row keeps: the same email always gives the same hash, and without the key
    nobody can test guesses against it."""
    normal = mapping.clean_email(email)
    return hmac.new(settings.ERASURE_HASH_KEY.encode(), normal.encode(), hashlib.sha256).hexdigest()


# --- Ortto -----------------------------------------------------------------------------------------


class OrttoEraseFailed(Exception):
    """Ortto did not erase the person (an error answer, or not reachable): nothing was changed in the bridge."""


def ortto_erase(connections: Iterable[Connection], email: str, person_ids: dict[int, set[str]]) -> tuple[str, bool]:
    """Archive then delete the person in each Ortto account of these connections (once per account).
    Returns what happened, in words without the email, and whether every account did it."""
    done, failed = [], []
    seen_accounts = set()
    for connection in connections:
        if connection.account_id in seen_accounts:
            continue
        seen_accounts.add(connection.account_id)
        ids = set(person_ids.get(connection.account_id, set()))
        client = ortto_client(connection)
        try:
            if not ids:
                answer = client.get_people(
                    filter={"$str::is": {"field_id": "str::email", "value": email}}, fields=["str::email"], limit=10)
                ids = {c["id"] for c in answer.get("contacts") or [] if isinstance(c, dict) and c.get("id")}
            if ids:
                client.archive_people(sorted(ids))
                client.delete_people(sorted(ids))
            done.append(f"{connection.account.business_name}: {len(ids)} deleted")
        except OrttoError as exc:
            failed.append(f"{connection.account.business_name}: Ortto answered HTTP {exc.status or 'error'}")
    return "; ".join(done + failed)[:255], not failed


# --- The bridge's tables ----------------------------------------------------------------------------


def _text_contains(model, field: str, email: str):
    return model.objects.annotate(_text=Cast(field, TextField())).filter(_text__icontains=email)


def bridge_erase(connections: list[Connection], email: str) -> dict:
    """Delete the person's rows and scrub their email from stored text; counts per table."""
    counts = {}

    def count(name, number):
        if number:
            counts[name] = counts.get(name, 0) + number

    scope = Q(connection__in=connections)
    count("PersonLedger", PersonLedger.objects.filter(scope, email__iexact=email).delete()[0])
    count("OrderLedger", OrderLedger.objects.filter(scope, email__iexact=email).delete()[0])
    count("CartLedger", CartLedger.objects.filter(scope, email__iexact=email).delete()[0])
    count("OrganizationMember", OrganizationMember.objects.filter(scope, email__iexact=email).delete()[0])
    count("ConsentWriteback", ConsentWriteback.objects.filter(scope, email__iexact=email).delete()[0])
    runs = SyncRun.objects.filter(connection__in=connections)
    count("SyncEvent", SyncEvent.objects.filter(run__in=runs).filter(
        Q(email__iexact=email) | Q(message__icontains=email)).delete()[0])
    count("StagedSubscriber", StagedSubscriber.objects.filter(run__in=runs).filter(
        Q(email__iexact=email) | Q(pk__in=_text_contains(StagedSubscriber, "record", email).values("pk"))).delete()[0])
    # Free text the bridge keeps about runs and incidents: the email is replaced, the rest stays for support.
    for run in _text_contains(SyncRun, "error_summary", email).filter(connection__in=connections):
        run.error_summary = _scrub(run.error_summary, email)
        run.save(update_fields=["error_summary"])
        count("SyncRun", 1)
    for run in _text_contains(SyncRun, "checkpoint", email).filter(connection__in=connections):
        run.checkpoint = _scrub_json(run.checkpoint, email)
        run.save(update_fields=["checkpoint"])
        count("SyncRun", 1)
    stores = {c.store_id for c in connections}
    for incident in _text_contains(Incident, "details", email).filter(store_id__in=stores):
        incident.details = _scrub_json(incident.details, email)
        incident.summary = _scrub(incident.summary, email)
        incident.save(update_fields=["details", "summary"])
        count("Incident", 1)
    for event in _text_contains(WebhookEvent, "payload", email).filter(store_id__in=stores):
        event.payload = _scrub_json(event.payload, email)
        event.save(update_fields=["payload"])
        count("WebhookEvent", 1)
    return counts


def _scrub(text: str, email: str) -> str:
    return re.sub(re.escape(email), ERASED, text or "", flags=re.IGNORECASE)


def _scrub_json(value, email: str):
    if isinstance(value, str):
        return _scrub(value, email)
    if isinstance(value, list):
        return [_scrub_json(v, email) for v in value]
    if isinstance(value, dict):
        return {_scrub(k, email): _scrub_json(v, email) for k, v in value.items()}
    return value


def email_forget(*, email: str, store: Store | None = None, in_ortto: bool = False, requested_by: str = "",
                 source: str = ErasureRecord.Source.SUPPORT, ortto_required: bool = False) -> ErasureRecord:
    """Erase one person from the bridge (one store's connections, or every store's when `store` is None)
    and, if asked, from the Ortto accounts those connections use. Returns the audit row.

    `ortto_required`: when Ortto does not erase them, raise OrttoEraseFailed before the bridge forgets the
    email (which a retry needs); otherwise the bridge forgets anyway and the audit row says what Ortto did."""
    email = mapping.clean_email(email)
    if not mapping.email_is_valid(email):
        raise ValueError("Enter a valid email address.")
    connections = list(Connection.objects.select_related("account", "store")
                       .filter(**({"store": store} if store is not None else {})))
    outcome = ""
    if in_ortto:
        person_ids: dict[int, set[str]] = {}
        for account_id, person_id in PersonLedger.objects.filter(
                connection__in=connections, email__iexact=email).exclude(ortto_person_id="").values_list(
                "connection__account_id", "ortto_person_id"):
            person_ids.setdefault(account_id, set()).add(person_id)
        outcome, erased = ortto_erase(connections, email, person_ids)
        outcome = outcome or "No Ortto account to erase from."
        if ortto_required and not erased:
            raise OrttoEraseFailed(outcome)
    with transaction.atomic():
        counts = bridge_erase(connections, email)
        record = ErasureRecord.objects.create(
            store=store, email_hash=email_hash(email), source=source, requested_by=requested_by[:255],
            in_ortto=in_ortto, ortto_outcome=outcome, rows_deleted=counts)
    logger.info("erasure %s: %s rows in the bridge%s", record.pk, sum(counts.values()),
                f"; Ortto: {outcome}" if in_ortto else "")
    return record


# --- store/customer/deleted ------------------------------------------------------------------------


RETRY_DELAYS = (60, 5 * 60, 30 * 60, 2 * 3600)  # Ortto not erasing: tried again, as owner mail is (sync/mail.py)
CUSTOMER_DELETED_TASK = "sync.tasks.consent_customer_deleted"


def customer_deleted_handle(*, store_id: int, event_id: int, attempt: int = 1) -> str:
    """A `store/customer/deleted` delivery (ids only): with the store's setting "erase", the customer's
    email is found in the ledger by their BigCommerce id and forgotten, in Ortto too. "keep" (the default):
    nothing changes, as before, and the delivery stays ignored. If Ortto does not erase them, nothing is
    forgotten yet and the task runs again later (1, 5, 30, 120 minutes); after that the bridge forgets them
    and the audit row says Ortto did not."""
    store = Store.objects.filter(pk=store_id).first()
    event = WebhookEvent.objects.filter(pk=event_id, store_id=store_id).first()
    if store is None or event is None:
        return "gone"
    preference = ConsentPreference.objects.filter(store=store).first()
    if preference is None or preference.on_customer_deleted != ConsentPreference.OnCustomerDeleted.ERASE:
        return "kept"
    emails = set(PersonLedger.objects.filter(connection__store=store, bc_customer_id=event.resource_id)
                 .values_list("email", flat=True))
    for email in emails:
        try:
            email_forget(email=email, store=store, in_ortto=True, requested_by="store/customer/deleted",
                         source=ErasureRecord.Source.CUSTOMER_DELETED, ortto_required=attempt <= len(RETRY_DELAYS))
        except OrttoEraseFailed as exc:
            delay = RETRY_DELAYS[attempt - 1]
            logger.warning("store %s: Ortto did not erase a deleted customer (%s); attempt %d in %ds",
                           store.store_hash, exc, attempt + 1, delay)
            Schedule.objects.create(
                func=CUSTOMER_DELETED_TASK, args=repr((store_id, event_id, attempt + 1)),
                schedule_type=Schedule.ONCE, repeats=-1, next_run=timezone.now() + timedelta(seconds=delay),
                name=f"customer-deleted-{event_id}-{attempt + 1}")
            return "retry"
    WebhookEvent.objects.filter(pk=event.pk).update(status=WebhookEvent.Status.PROCESSED, processed_at=timezone.now())
    return f"erased {len(emails)}"


# --- Not re-created by the next sweep ----------------------------------------------------------------


def erased_filter(store, records: list[dict], *, email_of: Callable[[dict], str],
                  created_of: Callable[[dict], datetime | None]) -> tuple[list[dict], int]:
    """The records to sync, and how many were left out: an erased person's records that are not newer than
    their erasure. A newer one (they came back on their own) lifts the erasure. One query when nobody was
    erased."""
    scope = Q(store=store) | Q(store__isnull=True)
    active = ErasureRecord.objects.filter(scope, lifted_at__isnull=True)
    if not records or not active.exists():
        return records, 0
    hashes = {id(r): email_hash(email_of(r) or "") for r in records}
    erased_at: dict[str, datetime] = {}
    for digest, at in active.filter(email_hash__in=set(hashes.values())).values_list("email_hash", "created_at"):
        erased_at[digest] = max(at, erased_at.get(digest, at))
    if not erased_at:
        return records, 0
    lifted = set()
    for record in records:
        digest = hashes[id(record)]
        created = created_of(record) if digest in erased_at else None
        # BigCommerce's dates have whole seconds: a record of the erasure's own second stays left out (erring
        # towards not re-creating someone), a later one is theirs coming back, with all their records.
        if created is not None and created > erased_at[digest].replace(microsecond=0):
            lifted.add(digest)
    kept = [r for r in records if hashes[id(r)] not in erased_at or hashes[id(r)] in lifted]
    left_out = len(records) - len(kept)
    if lifted:
        active.filter(email_hash__in=lifted).update(lifted_at=timezone.now())
    return kept, left_out


def created_at(record: dict) -> datetime | None:
    return mapping.parse_bc_datetime(record.get("date_created"))
