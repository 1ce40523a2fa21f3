"""The shopper's journey as Ortto activities: their definitions and the activity bodies. Pure: plain dicts
in, plain dicts out (sync/engine/orders/journey.py and sync/engine/carts.py decide when to send them).

Definitions follow docs/ortto-contract.md ("POST /v1/definitions/activity/create"): only icon ids that a
recorded Ortto answer shows (`RECORDED_ICONS`), attributes named in kebab case. The id of each attribute is
the one Ortto answered when the definition was created (connection.ortto_schema["attributes"]); the
display type's prefix + ":cm:" + the name (as Placed order's `str:cm:order-id`) stands in only where Ortto
said nothing (a definition that existed before the bridge remembered it). Money is sent x1000 in `int` attributes,
like every other amount the bridge sends (sync/engine/mapping.py). Every activity carries a key that names the
event itself (`bc:<store_hash>:order:<id>:fulfilled`, ...), so a retried or redelivered event is the same
activity to Ortto, which de-duplicates by key (docs/ortto-contract.md, `key`).

Names are the product's words (docs/design.md §4): Ordered product, Fulfilled order, Cancelled order,
Refunded order, Abandoned cart, Cart recovered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal

from sync.engine.mapping import ACTIVITY_ATTRIBUTE_LIMIT, money_to_int, parse_bc_datetime, to_decimal, truncate

# The id prefix of a custom field of each display type (docs/ortto-contract.md, field types): recorded for text
# and integer; for price and link a guess, used only when Ortto's answer gave no attribute ids.
_PREFIX = {"text": "str", "integer": "int", "price": "int", "link": "str"}
# Icon ids a recorded Ortto answer or recorded request shows (docs/ortto-contract.md, "definitions/activity/create":
# phpdevkits/ortto-sdk's fixtures). The SDK's enum lists more (tag, caution, reload, time, ...) that no
# recorded answer confirms. A refused icon falls back to these, in this order.
RECORDED_ICONS = ("moneys-illustration-icon", "flag-activities-illustration-icon", "happy-illustration-icon")


@dataclass(frozen=True)
class ActivitySpec:
    key: str  # the bridge's name for it (connection.ortto_schema["activities"])
    name: str  # the product's word, and Ortto's activity name
    icon_id: str
    title_attribute: str
    attributes: tuple[tuple[str, str], ...]  # (name, display type)
    track_conversion_value: bool = False

    @property
    def default_id(self) -> str:
        return "act:cm:" + self.name.lower().replace(" ", "-")

    def attribute_id(self, name: str) -> str:
        """The id by the custom-field rule: what the bridge sends only when Ortto's answer named none."""
        display = dict(self.attributes)[name]
        return f"{_PREFIX[display]}:cm:{name}"

    def fallback_icons(self) -> tuple[str, ...]:
        return tuple(icon for icon in RECORDED_ICONS if icon != self.icon_id)

    def definition(self) -> dict:
        """The body of Ortto's activity-definition create call."""
        return {
            "name": self.name,
            "icon_id": self.icon_id,
            "track_conversion_value": self.track_conversion_value,
            "touch": True,
            "filterable": True,
            "visible_in_feeds": True,
            "display_style": {
                "type": "activity_attribute",
                "title": self.name,
                "attribute_name": self.title_attribute,
                "attribute_field_id": self.attribute_id(self.title_attribute),
            },
            "attributes": [{"name": name, "display_type": display} for name, display in self.attributes],
        }


ORDERED_PRODUCT = ActivitySpec(
    key="ordered_product", name="Ordered product", icon_id="moneys-illustration-icon", title_attribute="product-name",
    attributes=(("product-name", "text"), ("product-id", "integer"), ("sku", "text"), ("variant", "text"),
                ("quantity", "integer"), ("price", "price"), ("order-id", "text"), ("currency", "text"),
                ("store", "text"), ("product-url", "link"), ("image-url", "link")),
)


FULFILLED_ORDER = ActivitySpec(
    key="fulfilled_order", name="Fulfilled order", icon_id="flag-activities-illustration-icon",
    title_attribute="order-id",
    attributes=(("order-id", "text"), ("status", "text"), ("item-count", "integer"), ("order-total", "price"),
                ("currency", "text"), ("store", "text")),
)


CANCELLED_ORDER = ActivitySpec(
    key="cancelled_order", name="Cancelled order", icon_id="flag-activities-illustration-icon", title_attribute="order-id",
    attributes=(("order-id", "text"), ("status", "text"), ("order-total", "price"), ("currency", "text"),
                ("store", "text")),
)


REFUNDED_ORDER = ActivitySpec(
    key="refunded_order", name="Refunded order", icon_id="moneys-illustration-icon", title_attribute="order-id",
    attributes=(("order-id", "text"), ("refund-amount", "price"), ("refunded-total", "price"),
                ("refund-type", "text"), ("order-total", "price"), ("currency", "text"), ("store", "text")),
)


ABANDONED_CART = ActivitySpec(
    key="abandoned_cart", name="Abandoned cart", icon_id="moneys-illustration-icon", title_attribute="cart-value",
    attributes=(("cart-id", "text"), ("items", "text"), ("item-count", "integer"), ("cart-value", "price"),
                ("currency", "text"), ("recovery-url", "link"), ("store", "text"), ("product-url", "link"),
                ("image-url", "link")),
)


CART_RECOVERED = ActivitySpec(
    key="cart_recovered", name="Cart recovered", icon_id="happy-illustration-icon", title_attribute="order-id",
    attributes=(("cart-id", "text"), ("order-id", "text"), ("cart-value", "price"), ("currency", "text"),
                ("store", "text")),
)


JOURNEY = (ORDERED_PRODUCT, FULFILLED_ORDER, CANCELLED_ORDER, REFUNDED_ORDER, ABANDONED_CART, CART_RECOVERED)
assert all(len(spec.attributes) <= ACTIVITY_ATTRIBUTE_LIMIT for spec in JOURNEY)
assert all(spec.icon_id in RECORDED_ICONS for spec in JOURNEY)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if value else None


# Attributes added to a definition after it was first created (the catalog mirror's links, sync/catalog/):
# Ortto refuses an attribute its definition does not declare, and a definition made before them does not, so
# they are sent only where Ortto's answer gave them an id (or where no id is known for any attribute).
LATER_ATTRIBUTES = frozenset({"product-url", "image-url"})


def activity_body(spec: ActivitySpec, activity_id: str, *, email: str, key: str, values: dict,
              created: datetime | None = None, attribute_ids: dict | None = None) -> dict:
    ids = attribute_ids or {}
    attributes = {ids.get(name) or spec.attribute_id(name): value for name, value in values.items()
                  if value is not None and not (name in LATER_ATTRIBUTES and (value == "" or (ids and name not in ids)))}
    activity = {"activity_id": activity_id, "attributes": attributes,
                # Only the email: the person exists already (merged by this run with the right permission).
                "fields": {"str::email": email}, "key": key}
    if created:
        activity["created"] = _iso(created)
    return activity


# --- orders ----------------------------------------------------------------------------------------


# --- carts -----------------------------------------------------------------------------------------


def cart_line_items(cart: dict) -> list[dict]:
    """A v3 cart's items (carts.v3.yml, Cart: line_items.physical_items, digital_items, custom_items;
    gift certificates carry no product)."""
    line_items = cart.get("line_items") or {}
    return [item for kind in ("physical_items", "digital_items", "custom_items")
            for item in line_items.get(kind) or [] if isinstance(item, dict)]


def cart_value(cart: dict) -> Decimal:
    return to_decimal(cart.get("cart_amount") if cart.get("cart_amount") is not None else cart.get("base_amount"))


def cart_currency(cart: dict) -> str:
    currency = cart.get("currency")
    return truncate(currency.get("code") if isinstance(currency, dict) else currency or "")


def abandoned_cart_activity(*, cart: dict, email: str, store_hash: str, store_name: str, activity_id: str,
                            recovery_url: str, attribute_ids: dict | None = None, catalog: dict | None = None) -> dict:
    """The link and picture are the cart's dearest line's: the mirror's (`catalog`), else the cart's own."""
    items = cart_line_items(cart)
    lead = max(items, key=lambda i: to_decimal(i.get("extended_sale_price") or i.get("sale_price")), default=None)
    facts = (catalog or {}).get(int((lead or {}).get("product_id") or 0))
    product_url = (facts.url if facts else "") or (lead or {}).get("url") or ""
    image_url = (facts.image_url if facts else "") or (lead or {}).get("image_url") or ""
    names = ", ".join(f"{int(i.get('quantity') or 0)} x {i.get('name') or i.get('sku') or i.get('product_id')}"
                      for i in items)
    return activity_body(
        ABANDONED_CART, activity_id, email=email, attribute_ids=attribute_ids, key=f"bc:{store_hash}:cart:{cart.get('id')}:abandoned",
        created=parse_bc_datetime(cart.get("updated_time")),
        values={"cart-id": truncate(cart.get("id")), "items": truncate(names),
                "item-count": sum(int(i.get("quantity") or 0) for i in items),
                "cart-value": money_to_int(cart_value(cart)), "currency": cart_currency(cart),
                "recovery-url": truncate(recovery_url), "store": truncate(store_name or store_hash),
                "product-url": truncate(str(product_url)), "image-url": truncate(str(image_url))},
    )


def cart_recovered_activity(*, cart_id: str, order_id, email: str, store_hash: str, store_name: str,
                            activity_id: str, value: Decimal | None, currency: str,
                            attribute_ids: dict | None = None) -> dict:
    return activity_body(
        CART_RECOVERED, activity_id, email=email, attribute_ids=attribute_ids, key=f"bc:{store_hash}:cart:{cart_id}:recovered",
        values={"cart-id": truncate(cart_id), "order-id": truncate(order_id),
                "cart-value": money_to_int(value) if value is not None else None, "currency": currency or None,
                "store": truncate(store_name or store_hash)},
    )
