"""What the emulated Ortto does with a request body: person merge, activities, schema, person lookups.

Each public function takes an Instance and the parsed JSON body and returns (http_status, payload).
Views add authentication, faults, throttling and the request log around them (see guard.py).
A batch of 100 people costs a handful of queries: one lookup per merge key, one bulk insert, one bulk
update and one bulk insert of feed entries.
"""

import json
import uuid
from datetime import timedelta
from datetime import timezone as dt_timezone

from django.db.models import Count, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from sync.db import rows_update

from . import schema
from .models import ActivityDefinition, CustomField, Person, PersonActivity

MAX_PEOPLE = 100
MAX_ACTIVITIES = 100
MAX_ATTRIBUTES = 15
MAX_ACTIVITY_BYTES = 16 * 1024
MAX_MERGE_BY = 3
# At most 50 events per activity per contact per 24 h (https://help.ortto.com/a-235-rate-limits); the
# rest are not kept. How Ortto answers them is not public: the emulator accepts and drops them silently.
MAX_EVENTS_PER_DAY = 50
BAD_ITEM_STATUSES = ("invalid", "suppressed")

SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"


def error_body(code: int, message: str, details: list | None = None) -> dict:
    """Ortto's recorded error shape: {"request_id", "code", "error", "details"?}."""
    body = {"request_id": str(uuid.uuid4()), "code": code, "error": message}
    if details is not None:
        body["details"] = details
    return body


def bad_request(message: str, details: list | None = None):
    return 400, error_body(400, message, details)


# --- people: lookup and field application ---------------------------------------------------------


def normalise_key(field_id: str, value):
    if value is None or value == "":
        return None
    if field_id == "str::email":
        return str(value).strip().lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def person_key_value(person: Person, field_id: str):
    if field_id == "str::person_id":
        return person.person_id
    if field_id == "str::email":
        return person.email
    if field_id == "str::ei":
        return person.external_id
    return normalise_key(field_id, person.fields.get(field_id))


class PeopleBatch:
    """Finds, creates and changes the people of one request in memory, then writes them in bulk."""

    def __init__(self, instance, *, merge_by, find_strategy=0, custom_field_ids=frozenset()):
        self.instance = instance
        self.merge_by = list(merge_by)
        self.find_strategy = find_strategy
        self.custom_field_ids = custom_field_ids
        self.index = {field_id: {} for field_id in set(self.merge_by) | {"str::email"}}
        self.new_people: list[Person] = []
        self.dirty: dict[int, Person] = {}
        # Only the columns some person of the batch changed go into the bulk UPDATE (CASE per column).
        self.changed_columns = {"fields", "updated_at"}
        self.feed: list[PersonActivity] = []
        self.now = timezone.now()

    def prefetch(self, field_sets: list[dict], person_ids=()):
        """Load every existing person any of these field sets could match: one query per key field."""
        wanted = {field_id: set() for field_id in self.index}
        for fields in field_sets:
            for field_id in wanted:
                key = normalise_key(field_id, fields.get(field_id))
                if key is not None:
                    wanted[field_id].add(key)
        people = Person.objects.filter(instance=self.instance)
        for field_id, values in wanted.items():
            if not values:
                continue
            if field_id == "str::email":
                found = people.filter(email__in=values)
            elif field_id == "str::person_id":
                found = people.filter(person_id__in=values)
            elif field_id == "str::ei":
                found = people.filter(external_id__in=values)
            else:
                found = people.filter(**{f"fields__{field_id}__in": list(values)})
            for person in found:
                self.remember(person)
        if person_ids:
            for person in people.filter(person_id__in=list(person_ids)):
                self.remember(person)

    def remember(self, person: Person):
        for field_id, index in self.index.items():
            key = person_key_value(person, field_id)
            if key is not None:
                index.setdefault(key, person)
        self.index.setdefault("str::person_id", {})[person.person_id] = person

    def find(self, fields: dict) -> Person | None:
        if self.find_strategy == 2:  # All: every merge key must be given and point at the same person.
            matches = []
            for field_id in self.merge_by:
                key = normalise_key(field_id, fields.get(field_id))
                if key is None:
                    return None
                matches.append(self.index[field_id].get(key))
            first = matches[0] if matches else None
            return first if first is not None and all(m is first for m in matches) else None
        for field_id in self.merge_by:
            key = normalise_key(field_id, fields.get(field_id))
            if key is None:
                continue
            person = self.index[field_id].get(key)
            if person is not None:
                return person
            if self.find_strategy == 1:  # Next only if the previous key is empty.
                return None
        return None

    def find_by_person_id(self, person_id) -> Person | None:
        return self.index.get("str::person_id", {}).get(person_id)

    def has_merge_key(self, fields: dict) -> bool:
        return any(normalise_key(f, fields.get(f)) is not None for f in self.merge_by) or any(
            normalise_key(f, fields.get(f)) is not None for f in ("str::email", "str::ei")
        )

    def email_conflict(self, person: Person | None, fields: dict) -> str | None:
        """The person id that already owns this item's email, when it is not `person`."""
        key = normalise_key("str::email", fields.get("str::email"))
        if key is None:
            return None
        owner = self.index["str::email"].get(key)
        if owner is not None and owner is not person:
            return owner.person_id
        return None

    def create(self, fields: dict, *, tags=(), created_at=None) -> Person:
        person = Person(instance=self.instance, created_at=created_at or self.now, updated_at=self.now)
        values = {k: v for k, v in fields.items() if v is not None and k != "str::person_id"}
        if "bol::sp" not in values:
            values["bol::sp"] = False
        permission = values.get("bol::p")
        if permission is None:  # Ortto: everyone created through the API is opted in unless told otherwise.
            permission = values["bol::p"] = True
        if permission:
            values["str::s-ctx"] = values.get("str::s-ctx") or schema.DEFAULT_SUBSCRIBE_REASON
            self.record_permission(person, True, values["str::s-ctx"], at=person.created_at)
        else:
            values["str::u-ctx"] = values.get("str::u-ctx") or schema.DEFAULT_UNSUBSCRIBE_REASON
            self.record_permission(person, False, values["str::u-ctx"], at=person.created_at)
        person.fields = values
        person.tags = sorted(set(tags))
        sync_columns(person)
        self.new_people.append(person)
        self.remember(person)
        return person

    def update(self, person: Person, fields: dict, *, strategy: int, tags=(), unset_tags=(), clear_fields=()):
        """Apply one merge to an existing person. Returns nothing; records permission changes on the feed."""
        if strategy == 3:
            return
        old_permission = person.fields.get("bol::p")
        values = dict(person.fields)
        if strategy == 1:  # Append only: fill what is empty (absent or null), never overwrite.
            for field_id, value in fields.items():
                if value is not None and values.get(field_id) is None and field_id != "str::person_id":
                    values[field_id] = value
        else:  # Overwrite: given fields win, null clears, others are left alone.
            for field_id, value in fields.items():
                if field_id == "str::person_id":
                    continue
                if value is None:
                    values.pop(field_id, None)
                else:
                    values[field_id] = value
            for field_id in clear_fields:
                values.pop(field_id, None)
        new_permission = values.get("bol::p")
        if new_permission is not None and new_permission != old_permission:
            if new_permission:
                reason = fields.get("str::s-ctx") or schema.DEFAULT_SUBSCRIBE_REASON
                values["str::s-ctx"] = reason
            else:
                reason = fields.get("str::u-ctx") or schema.DEFAULT_UNSUBSCRIBE_REASON
                values["str::u-ctx"] = reason
            self.record_permission(person, new_permission, reason, at=self.now)
        new_tags = sorted((set(person.tags) | set(tags)) - set(unset_tags))
        if values != person.fields or new_tags != person.tags:
            before = column_values(person)
            if new_tags != person.tags:
                self.changed_columns.add("tags")
            person.fields = values
            person.tags = new_tags
            person.updated_at = self.now
            sync_columns(person)
            after = column_values(person)
            self.changed_columns.update(c for c in after if after[c] != before[c])
            if person.pk is not None:
                self.dirty[person.pk] = person

    def record_permission(self, person: Person, subscribed: bool, reason: str, *, at):
        self.feed.append(
            PersonActivity(
                instance=self.instance,
                person=person,
                activity_id=SUBSCRIBED if subscribed else UNSUBSCRIBED,
                attributes={"reason": reason},
                created_at=at,
                ingested_at=self.now,
            )
        )

    def add_activity(self, activity: PersonActivity):
        self.feed.append(activity)

    def flush(self):
        if self.new_people:
            Person.objects.bulk_create(self.new_people, batch_size=500)
        if self.dirty:
            rows_update(Person, list(self.dirty.values()), sorted(self.changed_columns))
        if self.feed:
            for activity in self.feed:  # people created above now have their primary keys
                activity.person = activity.person
            PersonActivity.objects.bulk_create(self.feed, batch_size=500)


def column_values(person: Person) -> dict:
    return {c: getattr(person, c) for c in ("email", "external_id", "name", "email_permission")}


def sync_columns(person: Person):
    fields = person.fields
    person.email = normalise_key("str::email", fields.get("str::email"))
    external_id = fields.get("str::ei")
    person.external_id = str(external_id) if external_id not in (None, "") else None
    person.name = " ".join(str(fields[k]) for k in ("str::first", "str::last") if fields.get(k)).strip()
    permission = fields.get("bol::p")
    person.email_permission = permission if isinstance(permission, bool) else None


def validate_fields(fields, custom_field_ids) -> str | None:
    if not isinstance(fields, dict):
        return "fields must be an object"
    for field_id, value in fields.items():
        if not schema.is_known_field(field_id, custom_field_ids):
            return schema.unknown_field_error(field_id)
        problem = schema.value_error(field_id, value)
        if problem:
            return problem
    return None


def parse_merge_by(value):
    merge_by = value if value is not None else ["str::email"]
    if not isinstance(merge_by, list) or not merge_by or not all(isinstance(f, str) for f in merge_by):
        return None, "merge_by must be a list of field ids"
    if len(merge_by) > MAX_MERGE_BY:
        return None, f"merge_by accepts at most {MAX_MERGE_BY} fields"
    if "str::person_id" in merge_by and len(merge_by) > 1:
        return None, "str::person_id must be the only merge_by field"
    return merge_by, None


def custom_field_ids_for(instance) -> frozenset:
    return frozenset(CustomField.objects.filter(instance=instance).values_list("field_id", flat=True))


# --- POST /v1/person/merge --------------------------------------------------------------------------


def person_merge(instance, body: dict):
    people = body.get("people")
    if not isinstance(people, list) or not people:
        return bad_request("people must be a non-empty list")
    if len(people) > MAX_PEOPLE:
        return bad_request(f"too many people: {len(people)} (the maximum is {MAX_PEOPLE} per request)")
    merge_by, problem = parse_merge_by(body.get("merge_by"))
    if problem:
        return bad_request(problem)
    strategy = body.get("merge_strategy", 2)
    if strategy not in (1, 2, 3):
        return bad_request("merge_strategy must be 1 (append only), 2 (overwrite existing) or 3 (ignore)")
    find_strategy = body.get("find_strategy", 0)
    if find_strategy not in (0, 1, 2):
        return bad_request("find_strategy must be 0, 1 or 2")
    skip_non_existing = bool(body.get("skip_non_existing", False))
    check_suppression = bool(body.get("suppression_list_field_id"))
    suppressed = set(instance.suppressed_emails or []) if check_suppression else set()

    custom_ids = custom_field_ids_for(instance)
    for field_id in merge_by:
        if field_id != "str::person_id" and not schema.is_known_field(field_id, custom_ids):
            return bad_request(schema.unknown_field_error(field_id))

    batch = PeopleBatch(instance, merge_by=merge_by, find_strategy=find_strategy, custom_field_ids=custom_ids)
    items = []
    for item in people:
        fields = item.get("fields") if isinstance(item, dict) else None
        problem = "each person needs a fields object" if not isinstance(fields, dict) else None
        problem = problem or validate_fields(fields, custom_ids)
        items.append((item, fields, problem))
    batch.prefetch([fields for _, fields, problem in items if not problem])

    results = []
    for item, fields, problem in items:
        if problem:
            results.append({"status": "invalid", "error": problem})
            continue
        if not batch.has_merge_key(fields):
            results.append({"status": "invalid", "error": f"no value for any merge field ({', '.join(merge_by)})"})
            continue
        tags = _string_list(item.get("tags"))
        unset_tags = _string_list(item.get("unset_tags"))
        clear_fields = _clear_fields(item.get("clear_fields"))
        person = batch.find(fields)
        if person is None:
            if skip_non_existing:
                results.append({"status": "ignored"})
                continue
            email = normalise_key("str::email", fields.get("str::email"))
            if email and email in suppressed:
                results.append({"status": "suppressed", "error": "Email is suppressed"})
                continue
            owner = batch.email_conflict(None, fields)
            if owner:
                results.append({"status": "invalid", "error": f"str::email already belongs to person {owner}"})
                continue
            person = batch.create(fields, tags=tags)
            results.append({"person_id": person.person_id, "status": "created"})
            continue
        if strategy != 3 and "str::email" in fields:
            owner = batch.email_conflict(person, fields)
            if owner and (strategy == 2 or person.email is None):
                results.append({"status": "invalid", "error": f"str::email already belongs to person {owner}"})
                continue
        batch.update(person, fields, strategy=strategy, tags=tags, unset_tags=unset_tags, clear_fields=clear_fields)
        if strategy != 3:
            batch.remember(person)
            results.append({"person_id": person.person_id, "status": "merged"})
            continue
        # What Ortto answers for an existing person under Ignore is not public: "merged" by default, or the
        # instance's `ignore_status` ("ignored", "unchanged", or no status at all).
        ignored = {"person_id": person.person_id}
        if instance.ignore_status != "none":
            ignored["status"] = instance.ignore_status
        results.append(ignored)

    if not any("person_id" in r or r.get("status") == "ignored" for r in results):
        details = [{"status": r["status"], "error": r.get("error", "")} for r in results]
        first = details[0]["error"] if details else ""
        return bad_request(f"No valid contacts provided ({first})", details)
    refused = [r for r in results if r.get("status") in BAD_ITEM_STATUSES]
    if refused and instance.batch_errors != "per_item":
        # Whether Ortto refuses a whole batch for some bad people is not public: the emulator can.
        message = f"Invalid contacts provided ({refused[0].get('error', '')})"
        if instance.batch_errors == "refuse_with_details":
            return bad_request(message, [
                {"status": r["status"], "error": r.get("error", "")} if r.get("status") in BAD_ITEM_STATUSES
                else {"status": "valid"} for r in results])
        return bad_request(message)
    batch.flush()
    return 200, {"people": results}


def _string_list(value) -> list:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _clear_fields(value) -> list:
    if isinstance(value, dict):
        return [k for k, v in value.items() if v]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


# --- POST /v1/activities/create -----------------------------------------------------------------------


def activities_create(instance, body: dict):
    activities = body.get("activities")
    if not isinstance(activities, list) or not activities:
        return bad_request("activities must be a non-empty list")
    if len(activities) > MAX_ACTIVITIES:
        return bad_request(f"too many activities: {len(activities)} (the maximum is {MAX_ACTIVITIES} per request)")
    merge_by, problem = parse_merge_by(body.get("merge_by"))
    if problem:
        return bad_request(problem)
    async_ = bool(body.get("async", False))
    custom_ids = custom_field_ids_for(instance)
    definitions = {d.activity_id: d for d in ActivityDefinition.objects.filter(instance=instance)}
    batch = PeopleBatch(instance, merge_by=merge_by, find_strategy=body.get("find_strategy", 0) or 0,
                        custom_field_ids=custom_ids)

    checked = []
    for item in activities:
        checked.append((item, _activity_problem(item, definitions, custom_ids)))
    batch.prefetch(
        [item.get("fields") or {} for item, problem in checked if not problem],
        person_ids=[item["person_id"] for item, problem in checked if not problem and item.get("person_id")],
    )
    day_counts = _recent_event_counts(instance, batch)
    keys = {item["key"] for item, problem in checked if not problem and item.get("key")}
    seen_keys = set()
    if keys:
        seen_keys = set(
            PersonActivity.objects.filter(instance=instance, key__in=keys).values_list(
                "person__person_id", "activity_id", "key"
            )
        )

    results = []
    for item, problem in checked:
        if problem:
            results.append({"status": "invalid", "error": problem})
            continue
        fields = item.get("fields") or {}
        person_status = "updated"
        if item.get("person_id"):
            person = batch.find_by_person_id(item["person_id"])
            if person is None:
                results.append({"status": "invalid", "error": f"person {item['person_id']} not found"})
                continue
        else:
            if not batch.has_merge_key(fields):
                results.append({"status": "invalid", "error": "no person_id and no merge field value in fields"})
                continue
            person = batch.find(fields)
            strategy = item.get("merge_strategy", body.get("merge_strategy", 2))
            if person is None:
                owner = batch.email_conflict(None, fields)
                if owner:
                    results.append({"status": "invalid", "error": f"str::email already belongs to person {owner}"})
                    continue
                # Like Ortto: an activity for an unknown person creates them, opted in unless fields say otherwise.
                person = batch.create(fields)
                person_status = "created"
            elif fields:
                batch.update(person, fields, strategy=strategy if strategy in (1, 2, 3) else 2)
                batch.remember(person)
        created = batch.now
        if item.get("created"):
            created = _parse_created(item["created"])
        key = str(item.get("key") or "")
        dedup = (person.person_id, item["activity_id"], key)
        day_key = (person.person_id, item["activity_id"])
        day_counts[day_key] = day_counts.get(day_key, 0) + 1
        if (not key or dedup not in seen_keys) and day_counts[day_key] <= MAX_EVENTS_PER_DAY:
            if key:
                seen_keys.add(dedup)
            attributes = dict(item.get("attributes") or {})
            batch.add_activity(
                PersonActivity(
                    instance=instance,
                    person=person,
                    activity_id=item["activity_id"],
                    attributes=attributes,
                    key=key,
                    created_at=created,
                    ingested_at=batch.now,
                )
            )
        if async_:
            results.append({"person_id": person.person_id, "status": "queued", "person_status": "queued"})
        else:
            results.append({"person_id": person.person_id, "status": "ingested", "person_status": person_status})

    if not any(r["status"] != "invalid" for r in results):
        details = [{"status": r["status"], "error": r.get("error", "")} for r in results]
        return bad_request(f"No valid activities provided ({details[0]['error']})", details)
    batch.flush()
    return 200, {"activities": results}


def _recent_event_counts(instance, batch) -> dict:
    """(person_id, activity_id) -> events kept in the last 24 h, for the people the batch found."""
    people = {p.pk: p.person_id for index in batch.index.values() for p in index.values() if p.pk}
    if not people:
        return {}
    since = batch.now - timedelta(hours=24)
    # By person only (their rows belong to this instance): with the instance in the filter, SQLite's planner
    # walks the instance's whole feed for every batch, which made each call slower as the feed grew.
    rows = (PersonActivity.objects.filter(person_id__in=list(people), ingested_at__gte=since)
            .values_list("person_id", "activity_id").annotate(n=Count("id")))
    return {(people[pk], activity_id): n for pk, activity_id, n in rows}


def _activity_problem(item, definitions, custom_ids) -> str | None:
    if not isinstance(item, dict):
        return "each activity must be an object"
    activity_id = item.get("activity_id")
    if not isinstance(activity_id, str) or not activity_id:
        return "activity_id is required"
    if activity_id not in definitions:
        return f"activity {activity_id} not found: create its definition first"
    attributes = item.get("attributes") or {}
    if not isinstance(attributes, dict):
        return "attributes must be an object"
    if len(attributes) > MAX_ATTRIBUTES:
        return f"too many attributes: {len(attributes)} (the maximum is {MAX_ATTRIBUTES})"
    declared = {a.get("field_id") for a in definitions[activity_id].attributes or [] if isinstance(a, dict)}
    for attribute_id in attributes:
        # A custom attribute must be one its definition declares, by the id Ortto gave it (the wording of
        # Ortto's recorded 400 for an unknown field); built-ins such as int::v need no declaration.
        if ":cm:" in str(attribute_id) and attribute_id not in declared:
            return schema.unknown_field_error(attribute_id)
    if len(json.dumps(item)) > MAX_ACTIVITY_BYTES:
        return "activity larger than 16 kB"
    if item.get("person_id") is not None and not isinstance(item.get("person_id"), str):
        return "person_id must be a string"
    if not item.get("person_id"):
        problem = validate_fields(item.get("fields") or {}, custom_ids)
        if problem:
            return problem
    if item.get("created") and _parse_created(item["created"]) is None:
        return "created must be an ISO 8601 date-time"
    if item.get("key") is not None and not isinstance(item.get("key"), (str, int)):
        return "key must be a string"
    return None


def _parse_created(value):
    if not isinstance(value, str):
        return None
    parsed = parse_datetime(value.replace("Z", "+00:00"))
    if parsed is None:
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed


# --- custom fields and activity definitions ------------------------------------------------------------


def custom_field_payload(field: CustomField) -> dict:
    slug = field.field_id.split(":", 2)[2]
    return {
        "field": {
            "id": field.field_id,
            "name": field.name,
            "display_type": field.display_type,
            "liquid_name": f"people.custom.{slug}",
        },
        "tracked_value": False,
    }


def custom_field_get(instance, body: dict):
    return 200, {"fields": [custom_field_payload(f) for f in CustomField.objects.filter(instance=instance)]}


def custom_field_create(instance, body: dict):
    name = body.get("name")
    field_type = body.get("type")
    if not isinstance(name, str) or not schema.kebab(name):
        return bad_request("name is required")
    if field_type not in schema.CUSTOM_FIELD_PREFIXES:
        return bad_request(f"unknown type {field_type!r}; one of {', '.join(schema.CUSTOM_FIELD_PREFIXES)}")
    field_id = schema.custom_field_id(name=name, field_type=field_type)
    if not schema.CUSTOM_ID_RE.match(field_id):
        return bad_request(f"invalid field name {name!r}")
    existing = CustomField.objects.filter(instance=instance)
    if existing.filter(field_id=field_id).exists():
        status = instance.duplicate_status
        return status, error_body(status, f"custom field {field_id} already exists")
    if existing.count() >= schema.MAX_CUSTOM_FIELDS:
        return bad_request(f"custom field limit reached ({schema.MAX_CUSTOM_FIELDS})")
    CustomField.objects.create(instance=instance, field_id=field_id, name=name.strip(), display_type=field_type)
    # The recorded response shape (phpdevkits/ortto-sdk tests/Fixtures/Saloon/person/custom-field/create.json).
    return 200, {"name": name.strip(), "field_id": field_id, "display_type": field_type}


def activity_definition_create(instance, body: dict):
    name = body.get("name")
    if not isinstance(name, str) or not schema.kebab(name):
        return bad_request("name is required")
    activity_id = f"act:cm:{schema.kebab(name)}"
    icon_id = body.get("icon_id")
    icons = instance.accepted_icons or schema.ACTIVITY_ICONS
    if icon_id not in icons:
        return bad_request(f"invalid icon_id {icon_id!r}: one of {', '.join(icons)}")
    attributes_in = body.get("attributes") or []
    if not isinstance(attributes_in, list):
        return bad_request("attributes must be a list")
    attributes = []
    slug = schema.kebab(name)
    for attribute in attributes_in:
        if not isinstance(attribute, dict) or not isinstance(attribute.get("name"), str):
            return bad_request("each attribute needs a name and a display_type")
        display_type = attribute.get("display_type", "text")
        prefix = (instance.attribute_prefixes or {}).get(display_type) or schema.CUSTOM_FIELD_PREFIXES.get(display_type)
        if prefix is None:
            return bad_request(f"unknown display_type {display_type!r}")
        attr_slug = schema.kebab(attribute["name"])
        if attribute.get("field_id") is not None and not schema.CUSTOM_ID_RE.match(str(attribute["field_id"])):
            return bad_request(f"invalid attribute field_id {attribute['field_id']!r}")
        attributes.append(
            {
                "name": attribute["name"],
                "field_id": attribute.get("field_id") or f"{prefix}:cm:{attr_slug}",
                "display_type": display_type,
                "liquid_name": f"activity.custom.{slug}.{attr_slug}",
            }
        )
    if ActivityDefinition.objects.filter(instance=instance, activity_id=activity_id).exists():
        status = instance.duplicate_status
        return status, error_body(status, f"activity {activity_id} already exists")
    now = timezone.now()
    definition = {
        "name": name,
        "activity_field_id": activity_id,
        "state": "awaiting_implementation",
        "display_mode": body.get("display_style") or {"type": "activity"},
        "attributes": attributes,
        "icon_id": body.get("icon_id", ""),
        "track_conversion_value": bool(body.get("track_conversion_value", False)),
        "touch": bool(body.get("touch", True)),
        "filterable": bool(body.get("filterable", True)),
        "visible_in_feeds": bool(body.get("visible_in_feeds", True)),
        "created_by": "Public API",
        "created_at": now.isoformat().replace("+00:00", "Z"),
        "edited_at": now.isoformat().replace("+00:00", "Z"),
    }
    ActivityDefinition.objects.create(
        instance=instance, activity_id=activity_id, name=name, attributes=attributes, definition=definition
    )
    # The recorded response shape (phpdevkits/ortto-sdk tests/Fixtures/Saloon/activity/create_definition_*.json).
    return 200, {"custom_activity": definition}


# --- POST /v1/person/get and /v1/person/get-by-ids -------------------------------------------------------


def _field_q(field_id: str, value) -> Q:
    if field_id == "str::email":
        return Q(email=normalise_key(field_id, value))
    if field_id == "str::person_id":
        return Q(person_id=value)
    if field_id == "str::ei":
        return Q(external_id=str(value))
    return Q(**{f"fields__{field_id}": value})


def _filter_q(node) -> Q:
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError("filter must be an object with one operator")
    (operator, argument), = node.items()
    if operator in ("$and", "$or"):
        if not isinstance(argument, list):
            raise ValueError(f"{operator} takes a list")
        combined = Q()
        for child in argument:
            combined = (combined & _filter_q(child)) if operator == "$and" else (combined | _filter_q(child))
        return combined
    if not isinstance(argument, dict) or "field_id" not in argument:
        raise ValueError(f"{operator} needs a field_id")
    field_id = argument["field_id"]
    if operator in ("$str::is", "$bol::is", "$int::is"):
        return _field_q(field_id, argument.get("value"))
    if operator == "$has_any_value":
        if field_id == "str::email":
            return Q(email__isnull=False)
        return Q(**{"fields__has_key": field_id}) & ~Q(**{f"fields__{field_id}": None})
    if operator == "$str::contains":
        return Q(**{f"fields__{field_id}__icontains": argument.get("value", "")})
    raise ValueError(f"unsupported filter operator {operator}")


def _contact(person: Person, wanted) -> dict:
    fields = person.fields if not wanted else {k: person.fields[k] for k in wanted if k in person.fields}
    if wanted and "str::person_id" in wanted:
        fields["str::person_id"] = person.person_id
    return {"id": person.person_id, "fields": fields}


def person_get(instance, body: dict):
    limit = body.get("limit", 50)
    offset = body.get("offset", 0)
    if not isinstance(limit, int) or not 1 <= limit <= 500:
        return bad_request("limit must be between 1 and 500")
    if not isinstance(offset, int) or offset < 0:
        return bad_request("offset must be 0 or more")
    wanted = body.get("fields") or []
    # Archived people are found only by asking for them ("type": "archived", the get page).
    people = Person.objects.filter(instance=instance, archived_at__isnull=body.get("type") != "archived")
    total = people.count()
    if body.get("filter"):
        try:
            people = people.filter(_filter_q(body["filter"]))
        except ValueError as exc:
            return bad_request(str(exc))
    if body.get("q"):
        q = str(body["q"]).lower()
        people = people.filter(Q(email__icontains=q) | Q(name__icontains=q))
    matches = people.count()
    page = list(people.order_by("-created_at", "-id")[offset : offset + limit])
    return 200, {
        "contacts": [_contact(p, wanted) for p in page],
        "meta": {"total_contacts": total, "total_organizations": 0, "total_matches": matches,
                 "total_subscribers": Person.objects.filter(instance=instance, email_permission=True).count()},
        "offset": offset,
        "next_offset": offset + len(page),
        "cursor_id": "",
        "has_more": offset + len(page) < matches,
    }


def person_get_by_ids(instance, body: dict):
    ids = body.get("contact_ids")
    if not isinstance(ids, list):
        return bad_request("contact_ids must be a list")
    wanted = body.get("fields") or []
    people = Person.objects.filter(instance=instance, person_id__in=ids)
    return 200, {"contacts": {p.person_id: _contact(p, wanted) for p in people}}


# --- PUT /v1/person/archive, DELETE /v1/person/delete ------------------------------------------------
# https://help.ortto.com/developer/latest/api-reference/person/archive.html: `inclusion_ids` (contact ids),
# at most 100 a call (https://help.ortto.com/developer/latest/developer-guide/archiving-and-deleting-people.html);
# "Contacts must be archived before they can be restored or deleted." The answer's shape is not relied on
# by the bridge (any 2xx); the emulator names what it did.


def _inclusion_ids(body: dict):
    ids = body.get("inclusion_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return None, bad_request("inclusion_ids must be a list of contact ids")
    if len(ids) > MAX_PEOPLE:
        return None, bad_request(f"at most {MAX_PEOPLE} contacts per call")
    return ids, None


def person_archive(instance, body: dict):
    ids, problem = _inclusion_ids(body)
    if problem:
        return problem
    people = Person.objects.filter(instance=instance, person_id__in=ids, archived_at__isnull=True)
    archived = people.update(archived_at=timezone.now())
    return 200, {"archived_contacts": archived}


def person_delete(instance, body: dict):
    ids, problem = _inclusion_ids(body)
    if problem:
        return problem
    people = Person.objects.filter(instance=instance, person_id__in=ids)
    if people.filter(archived_at__isnull=True).exists():
        return bad_request("contacts must be archived before they can be deleted")
    deleted = people.count()
    PersonActivity.objects.filter(person__in=people).delete()
    people.delete()
    return 200, {"deleted_contacts": deleted}


METHODS = {"person/archive": "PUT", "person/delete": "DELETE"}

ENDPOINTS = {
    "person/archive": person_archive,
    "person/delete": person_delete,
    "person/merge": person_merge,
    "activities/create": activities_create,
    "person/custom-field/get": custom_field_get,
    "person/custom-field/create": custom_field_create,
    "definitions/activity/create": activity_definition_create,
    "person/get": person_get,
    "person/get-by-ids": person_get_by_ids,
}
