"""Control of the emulated Ortto for tests, benchmarks and the demo: faults, throttling, revoking a key,
resetting an instance and reading its stats. The JSON control endpoints call these same functions."""

import logging
import re
import secrets

import requests
from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from . import schema
from .models import (
    Account,
    AccountCustomField,
    ActivityDefinition,
    CustomField,
    Instance,
    Person,
    PersonActivity,
    RateWindow,
    RequestLog,
)

FAULT_FIELDS = {
    "p429": "fault_429_probability",
    "p500": "fault_500_probability",
    "ptimeout": "fault_timeout_probability",
    "timeout_seconds": "fault_timeout_seconds",
    "latency_ms": "latency_ms",
}


def instance_get(name: str) -> Instance:
    return Instance.objects.get(name=name)


def instance_faults(instance: Instance) -> dict:
    return {
        "p429": instance.fault_429_probability,
        "p500": instance.fault_500_probability,
        "ptimeout": instance.fault_timeout_probability,
        "timeout_seconds": instance.fault_timeout_seconds,
        "latency_ms": instance.latency_ms,
        "fail_next": {"count": instance.fail_next_count, "status": instance.fail_next_status},
        "rate_limit_per_second": instance.rate_limit_per_second,
        "revoked": instance.revoked,
        "expired": instance.expired,
        "duplicate_status": instance.duplicate_status,
        "batch_errors": instance.batch_errors,
        "merge_concurrency_limit": instance.merge_concurrency_limit,
        "accepted_icons": list(instance.accepted_icons or []),
        "attribute_prefixes": dict(instance.attribute_prefixes or {}),
        "ignore_status": instance.ignore_status,
        "account_ignore_status": instance.account_ignore_status,
        "remove_absent": instance.remove_absent,
    }


def instance_set_faults(
    instance: Instance,
    *,
    p429: float | None = None,
    p500: float | None = None,
    ptimeout: float | None = None,
    timeout_seconds: float | None = None,
    latency_ms: int | None = None,
    fail_next_count: int | None = None,
    fail_next_status: int | None = None,
    clear: bool = False,
) -> dict:
    """Change only what is given; `clear=True` first switches every fault off (not the rate limit)."""
    if clear:
        instance.fault_429_probability = instance.fault_500_probability = instance.fault_timeout_probability = 0
        instance.latency_ms = 0
        instance.fail_next_count = 0
        instance.fail_next_status = 500
    given = {"p429": p429, "p500": p500, "ptimeout": ptimeout, "timeout_seconds": timeout_seconds,
             "latency_ms": latency_ms}
    for key, value in given.items():
        if value is not None:
            setattr(instance, FAULT_FIELDS[key], value)
    if fail_next_count is not None:
        instance.fail_next_count = fail_next_count
    if fail_next_status is not None:
        instance.fail_next_status = fail_next_status
    instance.save()
    return instance_faults(instance)


def instance_fail_next(instance: Instance, *, count: int, status: int) -> dict:
    """The next `count` API requests to this instance answer `status` (e.g. 429, 500, 503, 401)."""
    return instance_set_faults(instance, fail_next_count=count, fail_next_status=status)


def instance_set_rate_limit(instance: Instance, *, per_second: int) -> dict:
    instance.rate_limit_per_second = max(0, int(per_second))
    instance.save(update_fields=["rate_limit_per_second"])
    RateWindow.objects.filter(instance=instance).delete()
    return instance_faults(instance)


def instance_set_revoked(instance: Instance, *, revoked: bool | None = None) -> bool:
    """Disconnect (or reconnect) the API key; None toggles."""
    instance.revoked = (not instance.revoked) if revoked is None else bool(revoked)
    instance.save(update_fields=["revoked"])
    return instance.revoked


BATCH_ERROR_MODES = ("per_item", "refuse_with_details", "refuse")
IGNORE_STATUSES = ("merged", "ignored", "unchanged", "none")
ACCOUNT_IGNORE_STATUSES = (*IGNORE_STATUSES, "ignored-no-id")


def instance_set_contract(
    instance: Instance,
    *,
    duplicate_status: int | None = None,
    batch_errors: str | None = None,
    merge_concurrency_limit: int | None = None,
    expired: bool | None = None,
    accepted_icons: list | None = None,
    attribute_prefixes: dict | None = None,
    ignore_status: str | None = None,
    account_ignore_status: str | None = None,
    remove_absent: str | None = None,
) -> dict:
    """How this instance answers where Ortto's public record is silent, and its account state (expired:
    every call 403). Only what is given changes."""
    if duplicate_status is not None:
        if int(duplicate_status) not in (400, 409):
            raise ValueError("duplicate_status is 400 or 409")
        instance.duplicate_status = int(duplicate_status)
    if batch_errors is not None:
        if batch_errors not in BATCH_ERROR_MODES:
            raise ValueError(f"batch_errors is one of {BATCH_ERROR_MODES}")
        instance.batch_errors = batch_errors
    if merge_concurrency_limit is not None:
        instance.merge_concurrency_limit = max(0, int(merge_concurrency_limit))
    if expired is not None:
        instance.expired = bool(expired)
    if accepted_icons is not None:
        if not isinstance(accepted_icons, list) or not all(icon in schema.ACTIVITY_ICONS for icon in accepted_icons):
            raise ValueError(f"accepted_icons is a list of {', '.join(schema.ACTIVITY_ICONS)}")
        instance.accepted_icons = accepted_icons
    if attribute_prefixes is not None:
        if not isinstance(attribute_prefixes, dict) or not all(
                display in schema.CUSTOM_FIELD_PREFIXES and isinstance(prefix, str) and re.fullmatch(r"[a-z]{3}", prefix)
                for display, prefix in attribute_prefixes.items()):
            raise ValueError("attribute_prefixes maps a display type to a three-letter prefix")
        instance.attribute_prefixes = attribute_prefixes
    if ignore_status is not None:
        if ignore_status not in IGNORE_STATUSES:
            raise ValueError(f"ignore_status is one of {IGNORE_STATUSES}")
        instance.ignore_status = ignore_status
    if account_ignore_status is not None:
        if account_ignore_status not in ACCOUNT_IGNORE_STATUSES:
            raise ValueError(f"account_ignore_status is one of {ACCOUNT_IGNORE_STATUSES}")
        instance.account_ignore_status = account_ignore_status
    if remove_absent is not None:
        if remove_absent not in ("ok", "refuse"):
            raise ValueError("remove_absent is ok or refuse")
        instance.remove_absent = remove_absent
    instance.save(update_fields=["duplicate_status", "batch_errors", "merge_concurrency_limit", "expired",
                                 "accepted_icons", "attribute_prefixes", "ignore_status", "account_ignore_status",
                                 "remove_absent"])
    return instance_faults(instance)


def instance_delete_people(instance: Instance, *, emails: list[str]) -> int:
    """Delete people as Ortto's UI (or a GDPR erasure) does: profile and activities gone."""
    wanted = {e.strip().lower() for e in emails if e and e.strip()}
    people = Person.objects.filter(instance=instance, email__in=wanted)
    deleted = people.count()
    people.delete()
    return deleted


UNSUBSCRIBE_REASON = "Unsubscribed from an email"


def person_unsubscribe(person: Person, *, reason: str = UNSUBSCRIBE_REASON) -> bool:
    """What a contact's click on an email's unsubscribe link does in Ortto: `bol::p` false with the reason
    in `str::u-ctx` and an Unsubscribed line in the feed. Already unsubscribed: nothing changes."""
    if person.email_permission is False:
        return False
    now = timezone.now()
    person.fields = {**person.fields, "bol::p": False, "str::u-ctx": reason}
    person.email_permission = False
    person.updated_at = now
    person.save(update_fields=["fields", "email_permission", "updated_at"])
    PersonActivity.objects.create(instance=person.instance, person=person, activity_id="unsubscribed",
                                  attributes={"reason": reason}, created_at=now, ingested_at=now)
    if person.instance.journey_webhook_url:
        transaction.on_commit(lambda: journey_webhook_send(person))
    return True


JOURNEY_NAME = "Unsubscribed from email → BigCommerce"
logger = logging.getLogger("sandbox.ortto")


def journey_webhook_payload(person: Person) -> dict:
    """The body Ortto's journey "Send to webhook" action posts (help.ortto.com a-626): the campaign, the
    person's id and email, the run, the shape and the time. Ids are Ortto-style opaque strings."""
    instance = person.instance
    return {
        "campaign_id": f"cmp{instance.pk:021d}", "campaign_name": JOURNEY_NAME, "contact_id": person.person_id,
        "email": person.email or "", "id": secrets.token_hex(12), "run_id": secrets.token_hex(12), "shape_id": "1",
        "shape_title": instance.journey_webhook_url.split("?")[0],
        "time": timezone.now().isoformat().replace("+00:00", "Z"), "webhook_id": f"wh{instance.pk:022d}",
    }


def journey_webhook_send(person: Person) -> int | None:
    """The journey's webhook action for this person: POST to the instance's URL. Returns the answer's status
    (None: no answer); Ortto treats a non-JSON answer as a failure, and so does this (logged only)."""
    url = person.instance.journey_webhook_url
    if not url:
        return None
    try:
        response = requests.post(url, json=journey_webhook_payload(person), timeout=10)
    except requests.RequestException as exc:
        logger.warning("journey webhook: no answer (%s)", exc.__class__.__name__)
        return None
    try:
        response.json()
    except ValueError:
        logger.warning("journey webhook: HTTP %s without a JSON answer", response.status_code)
    return response.status_code


def instance_set_journey_webhook(instance: Instance, *, url: str) -> str:
    instance.journey_webhook_url = url.strip()[:1000]
    instance.save(update_fields=["journey_webhook_url"])
    return instance.journey_webhook_url


def instance_set_suppressed(instance: Instance, *, emails: list[str]) -> list[str]:
    instance.suppressed_emails = sorted({e.strip().lower() for e in emails if e and e.strip()})
    instance.save(update_fields=["suppressed_emails"])
    return instance.suppressed_emails


def instance_reset(instance: Instance, *, schema: bool = False, faults: bool = False) -> None:
    """Delete people, activities and the request log; `schema` also drops custom fields and activity
    definitions; `faults` also switches off faults, throttling and revocation."""
    PersonActivity.objects.filter(instance=instance).delete()
    Person.objects.filter(instance=instance).delete()
    Account.objects.filter(instance=instance).delete()
    RequestLog.objects.filter(instance=instance).delete()
    RateWindow.objects.filter(instance=instance).delete()
    if schema:
        CustomField.objects.filter(instance=instance).delete()
        ActivityDefinition.objects.filter(instance=instance).delete()
        AccountCustomField.objects.filter(instance=instance).delete()
    if faults:
        instance_set_faults(instance, clear=True)
        instance.rate_limit_per_second = 0
        instance.revoked = False
        instance.expired = False
        instance.save(update_fields=["rate_limit_per_second", "revoked", "expired"])


def instance_stats(instance: Instance) -> dict:
    people = Person.objects.filter(instance=instance).aggregate(
        total=Count("id"),
        subscribed=Count("id", filter=Q(email_permission=True)),
        unsubscribed=Count("id", filter=Q(email_permission=False)),
    )
    activities = dict(
        PersonActivity.objects.filter(instance=instance)
        .values_list("activity_id")
        .annotate(n=Count("id"))
        .values_list("activity_id", "n")
    )
    requests = {}
    for row in (
        RequestLog.objects.filter(instance=instance)
        .values("path", "status")
        .annotate(n=Count("id"), people=Sum("people"), activities=Sum("activities"))
    ):
        entry = requests.setdefault(row["path"], {"count": 0, "by_status": {}, "people": 0, "activities": 0})
        entry["count"] += row["n"]
        entry["by_status"][str(row["status"])] = row["n"]
        entry["people"] += row["people"] or 0
        entry["activities"] += row["activities"] or 0
    merges = RequestLog.objects.filter(instance=instance, in_flight__isnull=False).aggregate(
        total=Count("id"), refused=Count("id", filter=Q(status=429)), peak=Max("in_flight"))
    return {
        "instance": instance.name,
        # Synchronous merges by a merge key: refused by the concurrency limit, and the most in flight at once
        # as the callers attempted them (refused ones included).
        "merge_concurrency": {"merges": merges["total"], "refused": merges["refused"],
                              "peak_in_flight": merges["peak"] or 0,
                              "limit": instance.merge_concurrency_limit},
        "people": people["total"],
        "subscribed": people["subscribed"],
        "unsubscribed": people["unsubscribed"],
        "accounts": Account.objects.filter(instance=instance).count(),
        "activities": sum(activities.values()),
        "activities_by_id": activities,
        "requests": sum(e["count"] for e in requests.values()),
        "requests_by_endpoint": requests,
        "custom_fields": list(CustomField.objects.filter(instance=instance).values_list("field_id", flat=True)),
        "activity_definitions": list(
            ActivityDefinition.objects.filter(instance=instance).values_list("activity_id", flat=True)
        ),
        "faults": instance_faults(instance),
    }
