"""What an order becomes in Ortto, pure (plain dicts in, plain dicts out): its buyer as a person, its Placed
order activity, one Ordered product activity per line item, and the Fulfilled / Cancelled / Refunded order
activities of its status changes; and which of BigCommerce's order statuses mean what.

placed.py and journey.py decide when each is sent; the activity definitions (names, attributes, icons) are in
sync/engine/activities.py, the person fields' conventions in sync/engine/mapping.py.
"""

from __future__ import annotations

from datetime import timezone
from decimal import Decimal

from sync.engine.activities import (
    CANCELLED_ORDER,
    FULFILLED_ORDER,
    ORDERED_PRODUCT,
    REFUNDED_ORDER,
    activity_body,
)
from sync.engine.mapping import (
    ACTIVITY_ATTRIBUTE_LIMIT,
    PLACED_ORDER_ACTIVITY_ID,
    PersonInput,
    clean_email,
    field_put,
    geo_put,
    money_to_int,
    parse_bc_datetime,
    phone_field,
    to_decimal,
    truncate,
)
from sync.engine.rules import order_signal

# BigCommerce order statuses (orders.v2.oas2.yml, "Order Status"): 2 Shipped and 10 Completed are
# fulfilled (Completed is how digital and pickup orders end); 5 Cancelled; 4 Refunded, 14 Partially Refunded.
FULFILLED_STATUSES = frozenset({2, 10})


CANCELLED_STATUS = 5


REFUNDED_STATUS = 4


PARTIALLY_REFUNDED_STATUS = 14


def order_currency(order: dict) -> str:
    return truncate(order.get("currency_code") or order.get("default_currency_code") or "")


def order_line_items(order: dict) -> list[dict] | None:
    """The order's products from `include=consignments.line_items&consignment_structure=object`
    (orders.v2.oas2.yml, orderConsignment_Get: pickups, shipping, downloads, email.gift_certificates, each
    with `line_items`). None when the answer carries no line items (only resource links)."""
    consignments = order.get("consignments")
    if not isinstance(consignments, dict) or not {"shipping", "pickups", "downloads", "email"} & set(consignments):
        return None  # absent, or the resource link an order carries without the include
    groups = [*(consignments.get("shipping") or []), *(consignments.get("pickups") or []),
              *(consignments.get("downloads") or []),
              *((consignments.get("email") or {}).get("gift_certificates") or [])]
    items, seen, expanded = [], set(), False
    for group in groups:
        line_items = group.get("line_items") if isinstance(group, dict) else None
        for item in line_items if isinstance(line_items, list) else []:
            if not isinstance(item, dict) or "product_id" not in item:
                continue  # a resource link: not expanded
            expanded = True
            if item.get("id") in seen:
                continue
            seen.add(item.get("id"))
            items.append(item)
    if not expanded and groups:
        return None
    return items


def _variant(item: dict) -> str:
    options = [f"{o.get('display_name')}: {o.get('display_value')}" for o in item.get("product_options") or []
               if isinstance(o, dict) and o.get("display_name")]
    return truncate(", ".join(options))


def ordered_product_activities(*, order: dict, email: str, store_hash: str, store_name: str,
                               activity_id: str, attribute_ids: dict | None = None,
                               catalog: dict | None = None) -> list[dict]:
    """`catalog`: product id -> the mirror's facts (sync/catalog/mirror.ProductFacts): its link and picture."""
    created = parse_bc_datetime(order.get("date_created"))
    activities = []
    for item in order_line_items(order) or []:
        facts = (catalog or {}).get(int(item.get("product_id") or 0))
        activities.append(activity_body(
            ORDERED_PRODUCT, activity_id, email=email, created=created, attribute_ids=attribute_ids,
            key=f"bc:{store_hash}:order:{order.get('id')}:item:{item.get('id')}",
            values={
                "product-name": truncate(item.get("name") or item.get("name_customer") or ""),
                "product-id": int(item.get("product_id") or 0),
                "sku": truncate(item.get("sku") or ""),
                "variant": _variant(item),
                "quantity": int(item.get("quantity") or 0),
                "price": money_to_int(item.get("price_inc_tax") if item.get("price_inc_tax") is not None
                                      else item.get("base_price")),
                "order-id": truncate(order.get("id")),
                "currency": order_currency(order),
                "store": truncate(store_name or store_hash),
                "product-url": truncate(facts.url) if facts else None,
                "image-url": truncate(facts.image_url) if facts else None,
            },
        ))
    return activities


def fulfilled_activity(*, order: dict, email: str, store_hash: str, store_name: str, activity_id: str,
                       attribute_ids: dict | None = None) -> dict:
    return activity_body(
        FULFILLED_ORDER, activity_id, email=email, attribute_ids=attribute_ids,
        key=f"bc:{store_hash}:order:{order.get('id')}:fulfilled",
        created=parse_bc_datetime(order.get("date_shipped")) or parse_bc_datetime(order.get("date_modified")),
        values={"order-id": truncate(order.get("id")), "status": truncate(order.get("status") or ""),
                "item-count": int(order.get("items_total") or 0),
                "order-total": money_to_int(order.get("total_inc_tax")), "currency": order_currency(order),
                "store": truncate(store_name or store_hash)},
    )


def cancelled_activity(*, order: dict, email: str, store_hash: str, store_name: str, activity_id: str,
                       attribute_ids: dict | None = None) -> dict:
    return activity_body(
        CANCELLED_ORDER, activity_id, email=email, attribute_ids=attribute_ids,
        key=f"bc:{store_hash}:order:{order.get('id')}:cancelled",
        created=parse_bc_datetime(order.get("date_modified")),
        values={"order-id": truncate(order.get("id")), "status": truncate(order.get("status") or ""),
                "order-total": money_to_int(order.get("total_inc_tax")), "currency": order_currency(order),
                "store": truncate(store_name or store_hash)},
    )


def refunded_activity(*, order: dict, email: str, store_hash: str, store_name: str, activity_id: str,
                      amount: Decimal, refunded_total: Decimal, attribute_ids: dict | None = None) -> dict:
    """One per new refunded total of the order: the key names the total, so two refunds of one order are two
    activities and a redelivered one is the same activity."""
    full = refunded_total >= to_decimal(order.get("total_inc_tax")) > 0
    cents = int((refunded_total * 100).to_integral_value())
    return activity_body(
        REFUNDED_ORDER, activity_id, email=email, attribute_ids=attribute_ids, key=f"bc:{store_hash}:order:{order.get('id')}:refunded:{cents}",
        created=parse_bc_datetime(order.get("date_modified")),
        values={"order-id": truncate(order.get("id")), "refund-amount": money_to_int(amount),
                "refunded-total": money_to_int(refunded_total), "refund-type": "full" if full else "partial",
                "order-total": money_to_int(order.get("total_inc_tax")), "currency": order_currency(order),
                "store": truncate(store_name or store_hash)},
    )


def order_email(order: dict) -> str:
    return clean_email((order.get("billing_address") or {}).get("email"))


def order_to_person(order: dict) -> PersonInput:
    """The person an order's billing address describes (guests have nothing else)."""
    billing = order.get("billing_address") or {}
    email = order_email(order)
    fields: dict = {"str::email": email}
    field_put(fields, "str::first", billing.get("first_name"))
    field_put(fields, "str::last", billing.get("last_name"))
    phone = phone_field(billing.get("phone"), country_iso2=billing.get("country_iso2"))
    if phone:
        fields["phn::phone"] = phone
    geo_put(fields, city=billing.get("city"), region=billing.get("state"), country=billing.get("country"),
         postal=billing.get("zip"))
    customer_id = order.get("customer_id") or None
    return PersonInput(
        email=email,
        fields=fields,
        source="order",
        signal=order_signal(
            is_email_opt_in=order.get("is_email_opt_in"), date_created=parse_bc_datetime(order.get("date_created"))
        ),
        bc_id=order.get("id"),
        bc_customer_id=int(customer_id) if customer_id else None,
    )


INCOMPLETE_STATUS_ID = 0


def order_is_placed(order: dict) -> bool:
    """Incomplete orders (status 0) are abandoned checkouts, not placed orders."""
    return int(order.get("status_id") or 0) != INCOMPLETE_STATUS_ID


def order_total(order: dict) -> Decimal:
    return to_decimal(order.get("total_inc_tax"))


def order_activity(*, order: dict, email: str, store_hash: str, store_name: str = "",
                   activity_id: str = PLACED_ORDER_ACTIVITY_ID) -> dict:
    """A "Placed order" activity. Only `str::email` in fields: the person exists already (created
    with the right permission by the bridge), so the activity can never create one subscribed."""
    created = parse_bc_datetime(order.get("date_created"))
    attributes = {
        "int::v": money_to_int(order.get("total_inc_tax")),
        "str:cm:order-id": truncate(order.get("id")),
        "str:cm:currency": truncate(order.get("currency_code") or order.get("default_currency_code") or ""),
        "int:cm:item-count": int(order.get("items_total") or 0),
        "str:cm:status": truncate(order.get("status") or ""),
        "str:cm:store": truncate(store_name or store_hash),
    }
    attributes = dict(list(attributes.items())[:ACTIVITY_ATTRIBUTE_LIMIT])
    activity = {
        "activity_id": activity_id,
        "attributes": attributes,
        "fields": {"str::email": email},
        "key": f"bc:{store_hash}:order:{order.get('id')}",
    }
    if created:
        activity["created"] = created.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return activity
