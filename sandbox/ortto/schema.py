"""Ortto's person schema as the sandbox knows it: built-in field ids, custom field id rules, value checks
and the friendly names the people pages show. Plain functions, no database."""

import re

# Built-in person fields (docs/ortto-contract.md §2 "Built-in person field IDs") with their UI labels.
BUILTIN_FIELDS = {
    "str::first": "First name",
    "str::last": "Last name",
    "str::email": "Email",
    "str::ei": "External ID",
    "str::person_id": "Person ID",
    "phn::phone": "Phone number",
    "geo::city": "City",
    "geo::region": "Region",
    "geo::country": "Country",
    "str::postal": "Postal code",
    "dtz::b": "Birthday",
    "bol::gdpr": "GDPR",
    "bol::p": "Email permission",
    "str::s-ctx": "Email subscribe reason",
    "str::u-ctx": "Email unsubscribe reason",
    "bol::sp": "SMS permission",
    "str::soi-ctx": "SMS opt-in reason",
    "str::soo-ctx": "SMS opt-out reason",
    "str::language": "Language",
    "str::fcm_ios_token": "FCM iOS token",
    "str::apn_ios_token": "APN iOS token",
    "str::android_token": "Android token",
    "u4s::t": "Time zone",
    "idt::o": "Organization",
}

DEFAULT_SUBSCRIBE_REASON = "Subscribed via API"
DEFAULT_UNSUBSCRIBE_REASON = "Unsubscribed via API"

# Custom field `type` (as sent to /v1/person/custom-field/create) -> id prefix. Decimals, currency and
# price are int fields holding value x 1000 (reference §2, "decimals are sent x1000").
CUSTOM_FIELD_PREFIXES = {
    "text": "str",
    "large_text": "txt",
    "integer": "int",
    "decimal": "int",
    "currency": "int",
    "price": "int",
    "date": "dtz",
    "time": "tme",
    "bool": "bol",
    "phone": "phn",
    "single_select": "str",
    "multi_select": "sst",
    "link": "str",
    "object": "obj",
}
MAX_CUSTOM_FIELDS = 100

STRING_MAX = 255
TEXT_MAX = 4000

# Activity definition icons (phpdevkits/ortto-sdk src/Enums/ActivityIcon.php, citing Ortto's definition
# docs; a recorded create answer uses "moneys-illustration-icon").
ACTIVITY_ICONS = (
    "calendar-illustration-icon", "caution-illustration-icon", "clicked-illustration-icon",
    "coupon-illustration-icon", "download-illustration-icon", "email-illustration-icon", "eye-illustration-icon",
    "flag-activities-illustration-icon", "happy-illustration-icon", "moneys-illustration-icon",
    "page-illustration-icon", "phone-illustration-icon", "reload-illustration-icon", "tag-illustration-icon",
    "time-illustration-icon",
)
# A custom person or activity field id: type prefix, the "cm" namespace, a kebab-case name.
CUSTOM_ID_RE = re.compile(r"^[a-z]{3}:cm:[a-z0-9]+(?:-[a-z0-9]+)*$")
PHONE_DIGITS_RE = re.compile(r"^[1-9][0-9]{7,14}$")

FIELD_ID_RE = re.compile(r"^(?P<type>[a-z0-9]{3}):(?P<ns>[a-z]*):(?P<name>[A-Za-z0-9_\-]+)$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def kebab(name: str) -> str:
    """Ortto's id slug of a display name: lower case, runs of other characters become one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")


def custom_field_id(*, name: str, field_type: str) -> str:
    return f"{CUSTOM_FIELD_PREFIXES[field_type]}:cm:{kebab(name)}"


def field_type(field_id: str) -> str:
    return field_id.split(":", 1)[0]


def is_known_field(field_id: str, custom_field_ids) -> bool:
    return field_id in BUILTIN_FIELDS or field_id in custom_field_ids


def unknown_field_error(field_id: str) -> str:
    # The wording of Ortto's recorded 400 (phpdevkits/ortto-sdk merge_people_with_invalid_field.json).
    return f"failed to validate field {field_id} in schema: {field_id}: Object not found"


def value_error(field_id: str, value) -> str | None:
    """Why `value` cannot be stored in `field_id`, or None. `None` (clear) is always acceptable."""
    if value is None:
        return None
    kind = field_type(field_id)
    bad = f"failed to validate field {field_id}: "
    if kind == "str":
        if not isinstance(value, str):
            return bad + "expected a string"
        if len(value) > STRING_MAX:
            return bad + f"string longer than {STRING_MAX} characters"
        if field_id == "str::email" and value and not EMAIL_RE.match(value.strip()):
            return bad + "invalid email address"
    elif kind == "txt":
        if not isinstance(value, str):
            return bad + "expected a string"
        if len(value) > TEXT_MAX:
            return bad + f"text longer than {TEXT_MAX} characters"
    elif kind == "bol":
        if not isinstance(value, bool):
            return bad + "expected a boolean"
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return bad + "expected an integer (decimals are sent x1000)"
    elif kind == "geo":
        if not (isinstance(value, dict) and isinstance(value.get("name"), str)):
            return bad + 'expected {"name": "..."}'
    elif kind == "phn":
        if not (isinstance(value, dict) and (("c" in value and "n" in value) or "phone" in value)):
            return bad + 'expected {"c": "61", "n": "401234567"} or {"phone": "...", "parse_with_country_code": true}'
        if "phone" in value:
            # Read with its country code: the digits must be a whole international number.
            if not (isinstance(value["phone"], str) and PHONE_DIGITS_RE.match(value["phone"])):
                return bad + "not an international phone number"
        elif not (isinstance(value["c"], str) and re.fullmatch(r"[1-9][0-9]{0,2}", value["c"])
                  and isinstance(value["n"], str) and re.fullmatch(r"[0-9]{4,14}", value["n"])):
            return bad + "c must be a country calling code and n the national number (digits)"
    elif kind == "dtz":
        if isinstance(value, dict):
            if not all(isinstance(value.get(k), int) for k in ("year", "month", "day")):
                return bad + "expected year, month and day"
        elif not isinstance(value, str):
            return bad + "expected a date object or an ISO 8601 string"
    elif kind == "sst":
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return bad + "expected a list of strings"
    return None


def friendly_name(field_id: str, custom_names: dict) -> str:
    if field_id in BUILTIN_FIELDS:
        return BUILTIN_FIELDS[field_id]
    if field_id in custom_names:
        return custom_names[field_id]
    match = FIELD_ID_RE.match(field_id)
    if match:
        return match["name"].replace("-", " ").replace("_", " ").capitalize()
    return field_id


def display_value(field_id: str, value, display_type: str = "") -> str:
    """A person or activity value as the people pages show it (plain text; templates escape it)."""
    if value is None:
        return ""
    kind = field_type(field_id)
    if kind == "bol":
        if field_id == "bol::p":
            return "Subscribed" if value else "Unsubscribed"
        if field_id == "bol::sp":
            return "Opted in" if value else "Opted out"
        return "Yes" if value else "No"
    if kind == "geo" and isinstance(value, dict):
        return str(value.get("name", ""))
    if kind == "phn" and isinstance(value, dict):
        if "phone" in value:
            return f"+{value['phone']}".replace("++", "+")
        return f"+{value.get('c', '')} {value.get('n', '')}"
    if kind == "dtz" and isinstance(value, dict):
        try:
            return f"{int(value['year']):04d}-{int(value['month']):02d}-{int(value['day']):02d}"
        except (KeyError, TypeError, ValueError):
            return str(value)
    if kind == "int" and display_type in ("decimal", "currency", "price") and isinstance(value, int):
        return f"{value / 1000:,.2f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)
