"""How the people pages describe a person: friendly field rows and activity feed lines (plain text,
the templates escape it)."""

from dataclasses import dataclass

from . import schema
from .models import ActivityDefinition, CustomField, Person, PersonActivity

MONEY_TYPES = ("decimal", "currency", "price")


@dataclass
class FieldRow:
    field_id: str
    label: str
    value: str
    custom: bool


@dataclass
class FeedLine:
    title: str
    detail: str
    kind: str  # subscribed | unsubscribed | custom
    at: object
    attributes: list  # [(label, value)]


def field_rows(person: Person, custom_fields: dict[str, CustomField]) -> list[FieldRow]:
    names = {fid: f.name for fid, f in custom_fields.items()}
    order = list(schema.BUILTIN_FIELDS)
    rows = [FieldRow("str::person_id", "Person ID", person.person_id, False)]
    keys = sorted(person.fields, key=lambda k: (k not in schema.BUILTIN_FIELDS,
                                                order.index(k) if k in order else 0, k))
    for field_id in keys:
        field = custom_fields.get(field_id)
        rows.append(
            FieldRow(
                field_id,
                schema.friendly_name(field_id, names),
                schema.display_value(field_id, person.fields[field_id], field.display_type if field else ""),
                field_id not in schema.BUILTIN_FIELDS,
            )
        )
    return rows


def _attribute_meta(definition: ActivityDefinition | None) -> dict:
    return {a["field_id"]: a for a in (definition.attributes if definition else [])}


def _attribute_slug(field_id: str) -> str:
    return field_id.split(":", 2)[-1]


def feed_line(activity: PersonActivity, definitions: dict[str, ActivityDefinition]) -> FeedLine:
    reason = (activity.attributes or {}).get("reason", "")
    if activity.activity_id == "subscribed":
        return FeedLine("Subscribed", reason, "subscribed", activity.created_at, [])
    if activity.activity_id == "unsubscribed":
        return FeedLine("Unsubscribed", reason, "unsubscribed", activity.created_at, [])
    definition = definitions.get(activity.activity_id)
    meta = _attribute_meta(definition)
    title = definition.name if definition else activity.activity_id
    number = money = currency = None
    attributes = []
    for field_id, value in (activity.attributes or {}).items():
        info = meta.get(field_id, {})
        display_type = info.get("display_type", "")
        if field_id == "int::v" and not display_type:  # the conversion value, money x 1000
            display_type = "currency"
        label = info.get("name") or schema.friendly_name(field_id, {})
        shown = schema.display_value(field_id, value, display_type)
        attributes.append((label, shown))
        slug = _attribute_slug(field_id)
        if number is None and (slug in ("order-id", "order-number", "id", "number") or slug.endswith("-id")):
            number = shown
        elif money is None and display_type in MONEY_TYPES:
            money = shown
        elif currency is None and "currency" in slug:
            currency = shown
    if number:
        title = f"{title} #{number}"
    detail = " ".join(part for part in (money, currency) if part)
    return FeedLine(title, detail, "custom", activity.created_at, attributes)


def person_feed(person: Person, *, limit: int = 200) -> list[FeedLine]:
    definitions = {d.activity_id: d for d in ActivityDefinition.objects.filter(instance_id=person.instance_id)}
    activities = person.activities.order_by("-created_at", "-id")[:limit]
    return [feed_line(a, definitions) for a in activities]
