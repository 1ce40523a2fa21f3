"""The Ortto-side definitions the bridge needs: its custom person fields, Placed order and the journey's
activities (sync/engine/activities.py)."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

from django.core.cache import cache

from sync.catalog.activities import PRODUCT_JOURNEY
from sync.engine import activities, mapping
from sync.models import Connection
from sync.ortto.client import OrttoClient

logger = logging.getLogger("sync.ortto.schema")


def ortto_client(connection: Connection) -> OrttoClient:
    account = connection.account
    return OrttoClient(api_key=account.api_key, region=account.region)


# Connections on one Ortto account share its fields and definitions: the first to prepare creates them while
# the others wait (a store fleet connecting at once would otherwise meet "already exists" from each create, a
# 4xx that counts towards Ortto's bad-request IP ban; docs/ortto-contract.md). The lock outlives a crashed
# holder by its timeout; a waiter that gives up goes ahead, and "already exists" is still fine.
SCHEMA_LOCK_SECONDS = 120
SCHEMA_LOCK_WAIT_SECONDS = 30.0
SCHEMA_KEYS = ("fields", "activity_id", "activities", "attributes")
# Every activity definition the bridge creates besides Placed order: the order and cart journey, and the
# product journeys (sync/catalog/activities.py).
ALL_SPECS = activities.JOURNEY + PRODUCT_JOURNEY


def ortto_schema_ensure(connection: Connection, *, client=None) -> dict:
    """Create the custom fields and the activity definitions (Placed order and the journey's, an existing one is fine),
    store the ids Ortto answered on the connection and mark it schema_ready. Safe to call again.

    Another connection on the same Ortto account that has them already lends its ids, and no call is made.
    Otherwise the fields that exist are read first (custom-field/get) and only the missing ones created, so a
    second store, a reconnect or an account switch on the same Ortto account costs no refused request."""
    schema, created = account_schema(connection), False
    if schema is None:
        with _account_schema_lock(connection.account_id):
            schema = account_schema(connection)
            if schema is None:
                schema, created = _schema_create(connection, client=client or ortto_client(connection)), True
    connection.ortto_schema = {**(connection.ortto_schema or {}),
                               **{key: schema[key] for key in SCHEMA_KEYS if key in schema}}
    connection.schema_ready = True
    connection.save(update_fields=["ortto_schema", "schema_ready"])
    logger.info("store %s: Ortto schema ready (%d fields, %s)%s", connection.store.store_hash,
                len(connection.ortto_schema["fields"]), connection.ortto_schema["activity_id"],
                "" if created else ", as another connection on the account put it in place")
    return connection.ortto_schema


def account_schema(connection: Connection) -> dict | None:
    """The complete schema another connection on the same Ortto account has put in place, if any."""
    siblings = (Connection.objects.filter(account_id=connection.account_id, schema_ready=True)
                .exclude(pk=connection.pk).order_by("-pk").values_list("ortto_schema", flat=True))
    for schema in siblings:
        schema = schema or {}
        if (set(mapping.CUSTOM_FIELDS) <= set(schema.get("fields") or {}) and schema.get("activity_id")
                and all(spec.key in (schema.get("activities") or {}) for spec in ALL_SPECS)):
            return schema
    return None


def _schema_create(connection: Connection, *, client) -> dict:
    existing = client.custom_fields()
    field_ids = {}
    for key, (name, field_type, _default) in mapping.CUSTOM_FIELDS.items():
        field_ids[key] = client.create_custom_field(name=name, field_type=field_type, existing=existing)
    activity_id = client.create_activity_definition(mapping.placed_order_definition())
    remembered = remembered_attribute_ids(connection)
    journey, attributes = {}, {}
    for spec in ALL_SPECS:
        answer = client.activity_definition_create(spec.definition(), fallback_icons=spec.fallback_icons())
        journey[spec.key] = answer.activity_id or spec.default_id
        # The ids Ortto gave the attributes; a definition that existed already answers none, so the ids this
        # account's connections were given when they created it stand in (else the custom-field rule).
        attributes[spec.key] = answer.attribute_ids or remembered.get(spec.key) or {}
        if answer.existed and not attributes[spec.key]:
            logger.warning("store %s: %s existed in Ortto and its attribute ids are unknown; sending the "
                           "custom-field rule's ids", connection.store.store_hash, spec.name)
    answered = {key: ids for key, ids in attributes.items() if ids}
    if answered:
        account = connection.account
        account.activity_attributes = {**(account.activity_attributes or {}), **answered}
        type(account).objects.filter(pk=account.pk).update(activity_attributes=account.activity_attributes)
    return {"fields": field_ids, "activity_id": activity_id or mapping.PLACED_ORDER_ACTIVITY_ID, "activities": journey,
            "attributes": attributes}


def remembered_attribute_ids(connection: Connection) -> dict:
    """spec key -> {attribute name: id} that Ortto answered when the bridge created the definitions on this
    Ortto account (OrttoAccount.activity_attributes): Ortto cannot list definitions, so its answers are the
    only record."""
    return dict(type(connection.account).objects.filter(pk=connection.account_id)
                .values_list("activity_attributes", flat=True).first() or {})


@contextmanager
def _account_schema_lock(account_id: int):
    key = f"ortto:schema-lock:{account_id}"
    deadline = time.monotonic() + SCHEMA_LOCK_WAIT_SECONDS
    held = False
    while True:
        try:
            held = cache.add(key, 1, timeout=SCHEMA_LOCK_SECONDS)
        except Exception:  # noqa: BLE001 — without the cache, connections only risk "already exists" answers
            logger.warning("Ortto schema lock unavailable (cache error); preparing without it", exc_info=True)
            break
        if held or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    try:
        yield
    finally:
        if held:
            cache.delete(key)


def schema_field_ids(connection: Connection) -> dict:
    return {**mapping.DEFAULT_FIELD_IDS, **((connection.ortto_schema or {}).get("fields") or {})}


def schema_activity_id(connection: Connection) -> str:
    return (connection.ortto_schema or {}).get("activity_id") or mapping.PLACED_ORDER_ACTIVITY_ID


def schema_journey_ready(connection: Connection) -> bool:
    """Whether the connection knows the ids of every journey activity (connections made before them do not)."""
    known = (connection.ortto_schema or {}).get("activities") or {}
    return all(spec.key in known for spec in ALL_SPECS)


def schema_journey_id(connection: Connection, spec: activities.ActivitySpec) -> str:
    return ((connection.ortto_schema or {}).get("activities") or {}).get(spec.key) or spec.default_id


def schema_journey_target(connection: Connection, spec: activities.ActivitySpec) -> dict:
    """The activity id and the attribute ids Ortto gave this journey activity, as the builders in
    sync/engine/activities.py take them (`activity_id=`, `attribute_ids=`)."""
    return {"activity_id": schema_journey_id(connection, spec),
            "attribute_ids": ((connection.ortto_schema or {}).get("attributes") or {}).get(spec.key) or {}}
