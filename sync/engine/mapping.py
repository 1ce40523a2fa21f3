"""BigCommerce records → Ortto person fields and activities. Pure: plain dicts in, plain dicts out.

Money: Ortto stores decimals in `int` fields multiplied by 1000 (docs/ortto-contract.md, person field
types). The bridge applies the same rule to an order's conversion value `int::v` and to the
"BigCommerce total spent" field, so $42.50 is sent as 42500 everywhere; Ortto's own activity example
(`"int::v": 15300`) is consistent with that scaling.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.utils import parsedate_to_datetime

from sync.engine.rules import Signal, customer_signal, subscriber_signal

STRING_LIMIT = 255
ACTIVITY_ATTRIBUTE_LIMIT = 15
PERMISSION_FIELDS = ("bol::p", "str::s-ctx", "str::u-ctx")


# The custom fields the bridge creates in each Ortto account: key → (name, Ortto field type, default id).
# Ids follow Ortto's rule (type prefix + ":cm:" + kebab-case name); ortto_schema_ensure stores the ids
# Ortto actually returns on the connection, and the engine passes those in.
CUSTOM_FIELDS = {
    "customer_id": ("BigCommerce customer id", "integer", "int:cm:bigcommerce-customer-id"),
    "order_count": ("BigCommerce order count", "integer", "int:cm:bigcommerce-order-count"),
    "total_spent": ("BigCommerce total spent", "decimal", "int:cm:bigcommerce-total-spent"),
    "last_order_date": ("BigCommerce last order date", "date", "dtz:cm:bigcommerce-last-order-date"),
}


DEFAULT_FIELD_IDS = {key: spec[2] for key, spec in CUSTOM_FIELDS.items()}


PLACED_ORDER_ACTIVITY_ID = "act:cm:placed-order"
# Activity attributes: name, display type, default id.
PLACED_ORDER_ATTRIBUTES = (
    ("order-id", "text", "str:cm:order-id"),
    ("currency", "text", "str:cm:currency"),
    ("item-count", "integer", "int:cm:item-count"),
    ("status", "text", "str:cm:status"),
    ("store", "text", "str:cm:store"),
)


def placed_order_definition() -> dict:
    """The body of Ortto's activity-definition create call for "Placed order"."""
    return {
        "name": "Placed order",
        # Ortto's icon ids end in "-illustration-icon" (docs/ortto-contract.md, activity definitions).
        "icon_id": "moneys-illustration-icon",
        "track_conversion_value": True,
        "touch": True,
        "filterable": True,
        "visible_in_feeds": True,
        "display_style": {
            "type": "activity_attribute",
            "title": "Placed order",
            "attribute_name": "order-id",
            "attribute_field_id": "str:cm:order-id",
        },
        "attributes": [{"name": name, "display_type": display} for name, display, _ in PLACED_ORDER_ATTRIBUTES],
    }


# --- Small value helpers -------------------------------------------------------------------------


def clean_email(value) -> str:
    return (value or "").strip().lower()


# The shape Ortto's merge accepts for str::email (a 255-character string that looks like an address;
# docs/ortto-contract.md). Checked before sending, so a malformed address costs no refused request:
# refused requests count towards Ortto's ban of the server's IP.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def email_is_valid(email: str) -> bool:
    return bool(email) and len(email) <= STRING_LIMIT and bool(_EMAIL.match(email))


def truncate(value, limit: int = STRING_LIMIT) -> str:
    return str(value)[:limit]


def money_to_int(value) -> int:
    """Decimal money → Ortto's int ×1000 (half up)."""
    try:
        amount = Decimal(str(value or "0"))
    except InvalidOperation:
        amount = Decimal(0)
    return int((amount * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_decimal(value) -> Decimal:
    try:
        return Decimal(str(value or "0"))
    except InvalidOperation:
        return Decimal(0)


def parse_bc_datetime(value) -> datetime | None:
    """BigCommerce dates: ISO-8601 in v3, RFC-2822 in v2 orders. Always aware (UTC when unzoned)."""
    if not value:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                parsed = parsedate_to_datetime(text)
            except (TypeError, ValueError):
                return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


# Country calling codes by ISO 3166-1 alpha-2, for the countries stores sell to most (ITU-T E.164
# assignments). A national number from a country not listed is left out rather than guessed.
CALLING_CODES = {
    "US": "1", "CA": "1", "PR": "1", "AU": "61", "NZ": "64", "GB": "44", "IE": "353", "FR": "33", "DE": "49",
    "AT": "43", "CH": "41", "NL": "31", "BE": "32", "LU": "352", "ES": "34", "PT": "351", "IT": "39", "DK": "45",
    "SE": "46", "NO": "47", "FI": "358", "IS": "354", "PL": "48", "CZ": "420", "SK": "421", "HU": "36",
    "RO": "40", "BG": "359", "GR": "30", "HR": "385", "SI": "386", "EE": "372", "LV": "371", "LT": "370",
    "UA": "380", "TR": "90", "IL": "972", "AE": "971", "SA": "966", "ZA": "27", "NG": "234", "KE": "254",
    "EG": "20", "IN": "91", "PK": "92", "SG": "65", "MY": "60", "TH": "66", "PH": "63", "ID": "62", "VN": "84",
    "HK": "852", "TW": "886", "JP": "81", "KR": "82", "CN": "86", "MX": "52", "BR": "55", "AR": "54", "CL": "56",
    "CO": "57", "PE": "51",
}


# Countries whose national numbers keep their leading 0 after the country code (no trunk prefix).
KEEPS_LEADING_ZERO = {"IT"}
_EXTENSION = re.compile(r"(?:ext\.?|extension|x|#)\s*\d+\s*$", re.IGNORECASE)


def phone_field(value, *, country_iso2: str | None = None) -> dict | None:
    """A BigCommerce phone (free text) as Ortto's phone value, or None when it cannot be read safely.

    International numbers ("+61 401 234 567", "0061 ...") go as `{"phone": digits,
    "parse_with_country_code": true}`; national ones ("0401 234 567", "(555) 123-4567") need the
    country of the customer's address and go as `{"c": calling code, "n": number without the trunk 0}`
    (both shapes: docs/ortto-contract.md, person fields). Without a country, a national number is left out:
    read with a country code it would be somebody else's number, or refused with its person.
    """
    text = _EXTENSION.sub("", str(value or "")).strip()
    if not text:
        return None
    digits = re.sub(r"\D", "", text)
    if text.startswith("+") or (text.startswith("00") and not text.startswith("000")):
        number = digits[2:] if text.startswith("00") else digits
        if 8 <= len(number) <= 15 and not number.startswith("0"):
            return {"phone": number, "parse_with_country_code": True}
        return None
    code = CALLING_CODES.get((country_iso2 or "").strip().upper())
    if code is None:
        return None
    national = digits
    if code == "1" and len(national) == 11 and national.startswith("1"):
        national = national[1:]
    elif (country_iso2 or "").upper() not in KEEPS_LEADING_ZERO and national.startswith("0"):
        national = national[1:]
    if not 4 <= len(national) <= 14 or national.startswith("0") and (country_iso2 or "").upper() not in KEEPS_LEADING_ZERO:
        return None
    return {"c": code, "n": national}


def date_field(value: datetime | None) -> dict | None:
    if value is None:
        return None
    value = value.astimezone(timezone.utc)
    return {"year": value.year, "month": value.month, "day": value.day, "timezone": "UTC"}


def field_put(fields: dict, key: str, value) -> None:
    """Set a field only when it has a value: an empty string would blank Ortto's value on overwrite."""
    if value is None or value == "" or value == {}:
        return
    if isinstance(value, str):
        value = truncate(value.strip())
        if not value:
            return
    fields[key] = value


def geo_put(fields: dict, *, city, region, country, postal) -> None:
    for key, value in (("geo::city", city), ("geo::region", region), ("geo::country", country)):
        if value and str(value).strip():
            fields[key] = {"name": truncate(str(value).strip())}
    field_put(fields, "str::postal", postal)


# --- People ------------------------------------------------------------------------------------


@dataclass
class PersonInput:
    """One BigCommerce record mapped to an Ortto person, with what it says about the newsletter."""

    email: str
    fields: dict
    source: str  # "subscriber" | "customer" | "order" | "cart" | "stock" | "storefront" (sync/catalog/)
    signal: Signal
    bc_id: int | None = None
    bc_customer_id: int | None = None
    fingerprint: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.fingerprint:
            self.fingerprint = fingerprint(self.fields)


def fingerprint(fields: dict) -> str:
    """sha256 of the mapped fields without the permission, so unchanged people can be skipped."""
    material = {k: v for k, v in fields.items() if k not in PERMISSION_FIELDS}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def customer_to_person(customer: dict, *, field_ids: dict | None = None) -> PersonInput:
    ids = field_ids or DEFAULT_FIELD_IDS
    email = clean_email(customer.get("email"))
    fields: dict = {"str::email": email}
    field_put(fields, "str::first", customer.get("first_name"))
    field_put(fields, "str::last", customer.get("last_name"))
    addresses = customer.get("addresses") or []
    first_address = addresses[0] if addresses else {}
    phone = phone_field(customer.get("phone") or first_address.get("phone"),
                        country_iso2=first_address.get("country_code") or first_address.get("country_iso2"))
    if phone:
        fields["phn::phone"] = phone
    geo_put(
        fields,
        city=first_address.get("city"),
        region=first_address.get("state_or_province"),
        country=first_address.get("country"),
        postal=first_address.get("postal_code"),
    )
    if customer.get("id") is not None:
        fields[ids["customer_id"]] = int(customer["id"])
    return PersonInput(
        email=email,
        fields=fields,
        source="customer",
        signal=customer_signal(),
        bc_id=customer.get("id"),
        bc_customer_id=customer.get("id"),
    )


def subscriber_to_person(subscriber: dict) -> PersonInput:
    email = clean_email(subscriber.get("email"))
    fields: dict = {"str::email": email}
    field_put(fields, "str::first", subscriber.get("first_name"))
    field_put(fields, "str::last", subscriber.get("last_name"))
    return PersonInput(
        email=email,
        fields=fields,
        source="subscriber",
        signal=subscriber_signal(
            consents=subscriber.get("consents"), date_modified=parse_bc_datetime(subscriber.get("date_modified"))
        ),
        bc_id=subscriber.get("id"),
    )


def permission_fields(*, subscribed: bool, reason: str) -> dict:
    if subscribed:
        return {"bol::p": True, "str::s-ctx": truncate(reason)}
    return {"bol::p": False, "str::u-ctx": truncate(reason)}


def aggregate_fields(
    *, email: str, order_count: int, total_spent, last_order_at: datetime | None, field_ids: dict | None = None,
    clear_missing: bool = False,
) -> dict:
    """The order totals of one person. clear_missing: no last order date is sent as null, which an
    Overwrite merge clears (a date sent earlier for orders Ortto then refused)."""
    ids = field_ids or DEFAULT_FIELD_IDS
    fields = {
        "str::email": email,
        ids["order_count"]: int(order_count),
        ids["total_spent"]: money_to_int(total_spent),
    }
    last = date_field(last_order_at)
    if last or clear_missing:
        fields[ids["last_order_date"]] = last or None
    return fields


# --- Orders → "Placed order" activities ----------------------------------------------------------







