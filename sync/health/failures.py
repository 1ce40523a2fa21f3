"""Records that are failing now, and why in plain words.

A record fails when a run records an error event for it (SyncEvent, level "error"), and it stays failing
until a later run hands it to Ortto successfully: that commit marks its earlier errors resolved
(failures_resolve, called by runs._commit_page for the records each unit sent). A run that did not touch
a record leaves its failure alone, so "currently failing" is one question about the events, not about
the last run: the latest unresolved error per resource + record (the BigCommerce id, or the e-mail for
the few errors that have none). The admin's Store page, the app page and "Resync failed records" all
read it here.
"""

from __future__ import annotations

import re

from django.core.paginator import Paginator
from django.db.models import Case, CharField, F, Max, Value, When

from stores.models import Store
from sync.models import SyncEvent

# The records an owner recognises; organization errors stay in the admin (they name no single record).
RECORD_KINDS = {"customers": "Customer", "subscribers": "Subscriber", "orders": "Order", "carts": "Cart"}
FAILED_PER_PAGE = 20


def _unresolved(store_id: int):
    return SyncEvent.objects.filter(run__store_id=store_id, level=SyncEvent.Level.ERROR, resolved=False,
                                    resource__in=tuple(RECORD_KINDS))


def failing_records(*, store: Store):
    """The store's failing records: for each resource + record, its latest unresolved error, newest first."""
    latest = (
        _unresolved(store.pk)
        .annotate(record_email=Case(When(bc_id__isnull=True, then=F("email")), default=Value(""),
                                    output_field=CharField()))
        .order_by().values("resource", "bc_id", "record_email").annotate(latest=Max("id")).values("latest")
    )
    return SyncEvent.objects.filter(pk__in=latest).order_by("-created_at", "-id")


def failing_records_count(*, store: Store) -> int:
    return failing_records(store=store).count()


def failures_resolve(*, store_id: int, resource: str, sent_ids, work) -> int:
    """A unit's commit: the earlier errors of the records it sent and that did not fail again are resolved.

    sent_ids are the BigCommerce ids of `resource` the unit handed to Ortto; work is its engine.PageWork
    (its events are this unit's failures, its ledger_rows the people Ortto accepted). Errors that carry no
    id (an order's buyer refused by e-mail) resolve when that person goes through. Returns how many."""
    errors = [event for event in work.events if event.level == SyncEvent.Level.ERROR]
    failed_ids = {event.bc_id for event in errors if event.resource == resource and event.bc_id is not None}
    ok_ids = set(sent_ids) - failed_ids
    ok_emails = set(work.ledger_rows) - {event.email for event in errors}
    resolved = 0
    if ok_ids:
        resolved += _unresolved(store_id).filter(resource=resource, bc_id__in=ok_ids).update(resolved=True)
    if ok_emails:
        resolved += _unresolved(store_id).filter(bc_id__isnull=True, email__in=ok_emails).update(resolved=True)
    return resolved


# --- Reasons in plain words --------------------------------------------------------------------------

# (pattern over the recorded message, plain sentence). The messages are the engine's own (sync/engine/people.py,
# sync/engine/orders/journey.py, sync/engine/carts.py) around Ortto's per-person and per-activity errors, whose recorded
# wordings are in docs/ortto-contract.md ("Email is suppressed", "No valid contacts provided (...)",
# "str::email already belongs to person ...", "failed to validate field X ...").
_REASONS: tuple[tuple[re.Pattern, str], ...] = tuple((re.compile(pattern, re.I), text) for pattern, text in (
    (r"^No email address", "The record has no e-mail address, so Ortto cannot hold it. Add one in the store."),
    (r"^Not a valid email address",
     "The e-mail address is not a valid address. Correct it in the store; the next sync sends it."),
    (r"^Order without a valid email address",
     "The order has no valid e-mail address, so it cannot be tied to a person in Ortto."),
    (r"Email is suppressed",
     "Ortto has this e-mail address on its suppression list (it bounced or was reported), so it refuses it."),
    (r"already belongs to person",
     "Another person in Ortto already has this e-mail address, so Ortto refused the change."),
    (r"^Order not sent: its person could not be created",
     "The order was not sent because Ortto refused the person who placed it."),
    (r"^Order status not sent",
     "The order's new status was not sent because Ortto refused the person who placed it."),
    (r"^Order totals not updated", "The buyer's order totals could not be updated in Ortto."),
    (r"^(Abandoned cart|Cart recovered) for cart .* not sent",
     "The cart could not be sent to Ortto as an activity."),
    (r"Ortto refused the .* activity", "Ortto refused the order's activity."),
    (r"rate.?limit|\b429\b", "Ortto was busy and asked us to slow down; the record is sent again later."),
    (r"\b40[13]\b", "Ortto refused the connection at the time; the record is sent again once it accepts."),
))
_FIELD = re.compile(r"(?:field\s+([\w:-]+)|\b((?:str|int|bol|dtz|phn|geo|txt|dec)::?[\w-]+))", re.I)
_FALLBACK = "Ortto refused this record"


def failure_reason(message: str) -> str:
    """The owner's sentence for a failure message: a known message's plain text, or "Ortto refused this
    record" with the field Ortto named, if any. Never the raw answer (it may quote JSON or HTTP)."""
    text = message or ""
    for pattern, plain in _REASONS:
        if pattern.search(text):
            return plain
    match = _FIELD.search(text)
    if match:
        field = (match.group(1) or match.group(2)).rstrip(".,:;")
        return f"{_FALLBACK} (it named the field “{field}”)."
    return f"{_FALLBACK}."


def _record_label(event: SyncEvent) -> str:
    if event.resource == "orders" and event.bc_id:
        return f"Order #{event.bc_id}"
    if event.email:
        return event.email
    return f"{RECORD_KINDS.get(event.resource, 'Record')} #{event.bc_id}" if event.bc_id else "—"


def failed_records_page(*, store: Store, page: int = 1) -> dict:
    """The app page's list: one page of failing records with their kind, when and the plain reason."""
    paginator = Paginator(failing_records(store=store).only("id", "created_at", "resource", "bc_id", "email",
                                                            "message"), FAILED_PER_PAGE)
    current = paginator.get_page(page)
    return {
        "count": paginator.count,
        "page": current.number,
        "pages": paginator.num_pages,
        "previous": current.previous_page_number() if current.has_previous() else None,
        "next": current.next_page_number() if current.has_next() else None,
        "rows": [
            {"record": _record_label(event), "kind": RECORD_KINDS.get(event.resource, event.resource),
             "when": event.created_at.strftime("%Y-%m-%d %H:%M UTC"), "when_iso": event.created_at.isoformat(),
             "reason": failure_reason(event.message)}
            for event in current.object_list
        ],
    }
