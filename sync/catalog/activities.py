"""The product journeys' Ortto activities: Added to cart, Viewed product, Waiting on stock and Back in stock.

Definitions follow the journey's (sync/engine/activities.py): icons only from RECORDED_ICONS, at most 15 attributes
(docs/ortto-contract.md), money x1000 in `price` attributes, a key per event so a resend is the same
activity to Ortto. Each carries the product's link and picture from the catalog mirror (sync/catalog/mirror.py).
"""

from __future__ import annotations

from sync.engine.activities import RECORDED_ICONS, ActivitySpec, activity_body
from sync.engine.mapping import ACTIVITY_ATTRIBUTE_LIMIT, money_to_int, truncate

_PRODUCT = (("product-name", "text"), ("product-id", "integer"), ("sku", "text"), ("variant", "text"))
_LINKS = (("product-url", "link"), ("image-url", "link"), ("store", "text"))

ADDED_TO_CART = ActivitySpec(
    key="added_to_cart", name="Added to cart", icon_id="moneys-illustration-icon", title_attribute="product-name",
    attributes=(*_PRODUCT, ("variant-id", "integer"), ("quantity", "integer"), ("price", "price"),
                ("cart-id", "text"), ("currency", "text"), *_LINKS),
)
VIEWED_PRODUCT = ActivitySpec(
    key="viewed_product", name="Viewed product", icon_id="flag-activities-illustration-icon",
    title_attribute="product-name",
    attributes=(("product-name", "text"), ("product-id", "integer"), ("price", "price"), *_LINKS),
)
WAITING_ON_STOCK = ActivitySpec(
    key="waiting_on_stock", name="Waiting on stock", icon_id="flag-activities-illustration-icon",
    title_attribute="product-name", attributes=(*_PRODUCT, ("variant-id", "integer"), *_LINKS),
)
BACK_IN_STOCK = ActivitySpec(
    key="back_in_stock", name="Back in stock", icon_id="happy-illustration-icon", title_attribute="product-name",
    attributes=(*_PRODUCT, ("variant-id", "integer"), ("price", "price"), *_LINKS),
)
PRODUCT_JOURNEY = (ADDED_TO_CART, VIEWED_PRODUCT, WAITING_ON_STOCK, BACK_IN_STOCK)
SPECS = {spec.key: spec for spec in PRODUCT_JOURNEY}
assert all(len(spec.attributes) <= ACTIVITY_ATTRIBUTE_LIMIT for spec in PRODUCT_JOURNEY)
assert all(spec.icon_id in RECORDED_ICONS for spec in PRODUCT_JOURNEY)


def product_activity(*, kind: str, key: str, email: str, store_hash: str, store_name: str, product_id: int,
                     variant_id: int, details: dict, facts, activity_id: str, attribute_ids: dict | None = None,
                     created=None) -> dict:
    """One activity of `kind` (ProductActivity.Kind). `details` are what the event said (name, sku, quantity,
    price ...); `facts` the mirror's (mirror.ProductFacts or None: a product the mirror never saw)."""
    spec = SPECS[kind]
    declared = dict(spec.attributes)
    price = details.get("price")
    if price is None and facts is not None:
        price = facts.sale_price or facts.price
    values = {
        "product-name": truncate(details.get("name") or (facts.name if facts else "") or f"Product {product_id}"),
        "product-id": int(product_id),
        "sku": truncate(details.get("sku") or ""),
        "variant": truncate(details.get("variant") or ""),
        "variant-id": int(variant_id or 0) or None,
        "quantity": int(details["quantity"]) if details.get("quantity") is not None else None,
        "price": money_to_int(price) if price is not None else None,
        "cart-id": truncate(details.get("cart_id") or "") or None,
        "currency": truncate(details.get("currency") or "") or None,
        "product-url": truncate(facts.url) if facts else None,
        "image-url": truncate(facts.image_url) if facts else None,
        "store": truncate(store_name or store_hash),
    }
    values = {name: value for name, value in values.items() if name in declared}
    return activity_body(spec, activity_id, email=email, key=key, values=values, created=created,
                     attribute_ids=attribute_ids)
