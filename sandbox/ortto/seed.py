"""Demo data for the emulated Ortto: the three instances of the contract, and optional existing people."""

import base64
import hashlib

from django.db import transaction

from .engine import PeopleBatch
from .models import Instance

DEMO_INSTANCES = [
    # (name, business name, region, API key) — /work/notes/contracts.md "Sandbox demo constants".
    ("acme-us", "Acme Outdoor (US)", "default", "sbx-default-acmeus-0001"),
    ("acme-eu", "Acme Outdoor (EU)", "eu", "sbx-eu-acmeeu-0002"),
    ("acme-au", "Acme Outdoor (AU)", "au", "sbx-au-acmeau-0003"),
]

# People who are already in Ortto before the bridge connects, to show rules R3 and R4.
DEMO_EXISTING_PEOPLE = [
    {"email": "already.subscribed@example.com", "first": "Sam", "last": "Subscribed", "subscribed": True,
     "reason": "Subscribed via signup form", "city": "Denver"},
    {"email": "already.unsubscribed@example.com", "first": "Una", "last": "Unsubscribed", "subscribed": False,
     "reason": "Unsubscribed via email footer link", "city": "Portland"},
]


def tracking_key(name: str) -> str:
    """base64url(12-byte id + instance name) without padding, the shape of Ortto's tracking keys.
    The 12 bytes are fixed per name so that seeding is repeatable."""
    raw = hashlib.sha256(f"sandbox-ortto:{name}".encode()).digest()[:12] + name.encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def seed_ortto_instances() -> list[Instance]:
    """Create or refresh the three demo instances (idempotent; leaves people and faults alone)."""
    instances = []
    for name, business_name, region, api_key in DEMO_INSTANCES:
        instance, _ = Instance.objects.update_or_create(
            name=name,
            defaults={
                "business_name": business_name,
                "region": region,
                "api_key": api_key,
                "tracking_key": tracking_key(name),
            },
        )
        instances.append(instance)
    return instances


def _fields_of(entry: dict) -> dict:
    if "fields" in entry:
        return dict(entry["fields"])
    fields = {"str::email": entry["email"]}
    if entry.get("first"):
        fields["str::first"] = entry["first"]
    if entry.get("last"):
        fields["str::last"] = entry["last"]
    if entry.get("city"):
        fields["geo::city"] = {"name": entry["city"]}
    if "subscribed" in entry:
        fields["bol::p"] = bool(entry["subscribed"])
        if entry.get("reason"):
            fields["str::s-ctx" if entry["subscribed"] else "str::u-ctx"] = entry["reason"]
    return fields


@transaction.atomic
def seed_existing_people(instance: Instance | str, people: list[dict] | None = None) -> list:
    """Put people into an instance as if they had been there before the bridge.

    Each entry is either {"fields": {field id: value}} or the shorthand
    {"email", "first"?, "last"?, "city"?, "subscribed"?: bool, "reason"?: str}. Existing people (by email)
    are overwritten with the given fields; the feed records subscribe/unsubscribe like the API does.
    Returns the Person rows.
    """
    if isinstance(instance, str):
        instance = Instance.objects.get(name=instance)
    people = DEMO_EXISTING_PEOPLE if people is None else people
    field_sets = [_fields_of(entry) for entry in people]
    batch = PeopleBatch(instance, merge_by=["str::email"])
    batch.prefetch(field_sets)
    result = []
    for fields in field_sets:
        person = batch.find(fields)
        if person is None:
            person = batch.create(fields)
        else:
            batch.update(person, fields, strategy=2)
        result.append(person)
    batch.flush()
    return result
