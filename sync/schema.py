"""The Ortto-side definitions the bridge needs: its custom person fields, Placed order and the journey's
activities (sync/activities.py)."""

from __future__ import annotations

import logging

from . import activities, mapping
from .models import Connection
from .ortto import OrttoClient

logger = logging.getLogger("sync.schema")


def ortto_client(connection: Connection) -> OrttoClient:
    account = connection.account
    return OrttoClient(api_key=account.api_key, region=account.region)


def ortto_schema_ensure(connection: Connection, *, client=None) -> dict:
    """Create the custom fields and the activity definitions (Placed order and the journey's, an existing one is fine),
    store the ids Ortto answered on the connection and mark it schema_ready. Safe to call again.

    The fields that exist are read first (custom-field/get) and only the missing ones created, so a
    second store, a reconnect or an account switch on the same Ortto account costs no refused request."""
    client = client or ortto_client(connection)
    existing = client.custom_fields()
    field_ids = {}
    for key, (name, field_type, _default) in mapping.CUSTOM_FIELDS.items():
        field_ids[key] = client.create_custom_field(name=name, field_type=field_type, existing=existing)
    activity_id = client.create_activity_definition(mapping.placed_order_definition())
    journey = {spec.key: client.create_activity_definition(spec.definition()) or spec.default_id
               for spec in activities.JOURNEY}
    connection.ortto_schema = {"fields": field_ids, "activity_id": activity_id or mapping.PLACED_ORDER_ACTIVITY_ID,
                               "activities": journey}
    connection.schema_ready = True
    connection.save(update_fields=["ortto_schema", "schema_ready"])
    logger.info("store %s: Ortto schema ready (%d fields, %s)", connection.store.store_hash, len(field_ids),
                connection.ortto_schema["activity_id"])
    return connection.ortto_schema


def schema_field_ids(connection: Connection) -> dict:
    return {**mapping.DEFAULT_FIELD_IDS, **((connection.ortto_schema or {}).get("fields") or {})}


def schema_activity_id(connection: Connection) -> str:
    return (connection.ortto_schema or {}).get("activity_id") or mapping.PLACED_ORDER_ACTIVITY_ID


def schema_journey_ready(connection: Connection) -> bool:
    """Whether the connection knows the ids of every journey activity (connections made before them do not)."""
    known = (connection.ortto_schema or {}).get("activities") or {}
    return all(spec.key in known for spec in activities.JOURNEY)


def schema_journey_id(connection: Connection, spec: activities.ActivitySpec) -> str:
    return ((connection.ortto_schema or {}).get("activities") or {}).get(spec.key) or spec.default_id
