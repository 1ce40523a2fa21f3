"""BigCommerce's JSON shapes for the sandbox's records (v3: ISO-8601 dates; v2: RFC-2822, money as strings)."""

from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal
from email.utils import format_datetime

from django.conf import settings

from .models import Cart, Customer, Hook, Order, Product, SandboxStore, Script, Subscriber


def iso(value: datetime) -> str:
    return value.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc2822(value: datetime) -> str:
    return format_datetime(value.astimezone(dt_timezone.utc).replace(microsecond=0))


def money(value: Decimal) -> str:
    return f"{Decimal(value):.4f}"


def _address(customer: Customer, address: dict) -> dict:
    return {
        "id": address["id"],
        "customer_id": customer.bc_id,
        "first_name": address.get("first_name") or customer.first_name,
        "last_name": address.get("last_name") or customer.last_name,
        "company": address.get("company", ""),
        "address1": address.get("address1", ""),
        "address2": address.get("address2", ""),
        "city": address.get("city", ""),
        "state_or_province": address.get("state_or_province", ""),
        "postal_code": address.get("postal_code", ""),
        "country_code": address.get("country_code", ""),
        "country": address.get("country", ""),
        "phone": address.get("phone", ""),
        "address_type": address.get("address_type", "residential"),
    }


def customer_json(customer: Customer, *, include: set[str] = frozenset()) -> dict:
    data = {
        "id": customer.bc_id,
        "authentication": {"force_password_reset": False},
        "company": customer.company,
        "customer_group_id": customer.customer_group_id,
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "notes": customer.notes,
        "phone": customer.phone,
        "registration_ip_address": customer.registration_ip_address,
        "tax_exempt_category": "",
        "date_created": iso(customer.date_created),
        "date_modified": iso(customer.date_modified),
        "accepts_product_review_abandoned_cart_emails": customer.accepts_product_review_abandoned_cart_emails,
        "origin_channel_id": 1,
        "channel_ids": [1],
        "address_count": len(customer.addresses),
        "attribute_count": 0,
    }
    if "addresses" in include:
        data["addresses"] = [_address(customer, a) for a in customer.addresses[:10]]
    if "attributes" in include:
        data["attributes"] = []
    if "formfields" in include:
        data["form_fields"] = []
    if "storecredit" in include:
        data["store_credit_amounts"] = [{"amount": 0}]
    return data


def subscriber_json(subscriber: Subscriber) -> dict:
    return {
        "id": subscriber.bc_id,
        "email": subscriber.email,
        "first_name": subscriber.first_name,
        "last_name": subscriber.last_name,
        "source": subscriber.source,
        "order_id": subscriber.order_id,
        "channel_id": subscriber.channel_id,
        "consents": list(subscriber.consents),
        "date_created": iso(subscriber.date_created),
        "date_modified": iso(subscriber.date_modified),
    }


def _resource(store: SandboxStore, order_id: int, name: str) -> dict:
    base = f"{settings.BIGCOMMERCE_API_URL}/stores/{store.store_hash}/v2"
    return {"url": f"{base}/orders/{order_id}/{name}", "resource": f"/orders/{order_id}/{name}"}


# The sandbox store's catalog: what its storefront sells and what seeded orders contain.
CATALOG = (
    {"product_id": 111, "variant_id": 1110, "sku": "TENT-2P", "name": "Trail Tent 2P", "price": Decimal("189.00"),
     "options": [["Colour", "Forest"]]},
    {"product_id": 112, "variant_id": 1121, "sku": "BAG-30L", "name": "Day Pack 30L", "price": Decimal("64.00"),
     "options": [["Size", "M"]]},
    {"product_id": 113, "variant_id": 1130, "sku": "MUG-TI", "name": "Titanium Mug", "price": Decimal("24.50"),
     "options": []},
    {"product_id": 114, "variant_id": 1142, "sku": "SOCK-W", "name": "Wool Hiking Socks", "price": Decimal("18.00"),
     "options": [["Size", "L"]]},
)


# The sandbox store charges a flat sales tax on the subtotal and ships for free ("Free Shipping" in each
# order's consignment): the checkout, the cart, seeded orders and the API's amounts all follow these.
TAX_RATE = Decimal("0.08")
TAX_PERCENT = f"{(TAX_RATE * 100).normalize():f}"
CENTS = Decimal("0.01")


def catalog_product(product_id: int) -> dict | None:
    return next((p for p in CATALOG if p["product_id"] == int(product_id)), None)


def order_tax(subtotal: Decimal) -> Decimal:
    return (Decimal(subtotal) * TAX_RATE).quantize(CENTS)


def basket_totals(lines: list[dict]) -> dict:
    """What a shopper pays for some lines (each with a price and a quantity): each line's total, the
    subtotal, shipping (free), the tax and the total, as the checkout and the cart show them."""
    priced = [{**line, "line_total": (Decimal(str(line["price"])) * int(line["quantity"])).quantize(CENTS)}
              for line in lines]
    subtotal = sum((line["line_total"] for line in priced), Decimal("0.00"))
    tax = order_tax(subtotal)
    return {"lines": priced, "items": sum(int(line["quantity"]) for line in lines), "subtotal": subtotal,
            "shipping": Decimal("0.00"), "tax": tax, "tax_percent": TAX_PERCENT, "total": subtotal + tax}


def order_lines(order: Order) -> list[dict]:
    """The order's lines as stored, or (seeded orders) one line of a catalog product for the order's items
    and subtotal, so every order has products to report."""
    if order.line_items:
        return order.line_items
    product = CATALOG[order.bc_id % len(CATALOG)]
    quantity = max(order.items_total, 1)
    price = (order.subtotal_ex_tax / quantity).quantize(Decimal("0.01"))
    return [{**product, "price": str(price), "quantity": quantity}]


def order_products(order: Order) -> list[dict]:
    """orders.v2.oas2.yml, orderProducts: one per line, ids stable per order and line."""
    rows = []
    for index, line in enumerate(order_lines(order), start=1):
        price, quantity = Decimal(str(line["price"])), int(line["quantity"])
        tax = order_tax(price)
        rows.append({
            "id": order.bc_id * 100 + index,
            "order_id": order.bc_id,
            "product_id": int(line["product_id"]),
            "variant_id": int(line.get("variant_id") or 0),
            "order_address_id": order.bc_id,
            "name": line["name"],
            "name_customer": line["name"],
            "name_merchant": line["name"],
            "sku": line.get("sku") or "",
            "upc": "",
            "type": "physical",
            "base_price": money(price),
            "price_ex_tax": money(price),
            "price_inc_tax": money(price + tax),
            "price_tax": money(tax),
            "base_total": money(price * quantity),
            "total_ex_tax": money(price * quantity),
            "total_inc_tax": money((price + tax) * quantity),
            "total_tax": money(tax * quantity),
            "quantity": quantity,
            "quantity_shipped": quantity if order.status_id in (2, 10) else 0,
            "is_refunded": order.status_id == 4,
            "quantity_refunded": quantity if order.status_id == 4 else 0,
            "refund_amount": money(Decimal(0)),
            "applied_discounts": [],
            "product_options": [
                {"id": n, "option_id": n, "order_product_id": order.bc_id * 100 + index, "product_option_id": n,
                 "display_name": name, "display_value": value, "value": value, "type": "Multiple choice",
                 "name": name, "display_style": "Rectangle"}
                for n, (name, value) in enumerate(line.get("options") or [], start=1)
            ],
            "configurable_fields": [],
            "discounted_total_inc_tax": money((price + tax) * quantity),
        })
    return rows


def order_consignments(order: Order, billing: dict) -> dict:
    """`include=consignments.line_items&consignment_structure=object`: one shipping consignment holding
    every product (orders.v2.oas2.yml, orderConsignment_Get / shippingConsignment_Get)."""
    products = order_products(order)
    return {
        "pickups": [],
        "shipping": [{
            "id": order.bc_id,
            "first_name": billing["first_name"], "last_name": billing["last_name"], "company": billing["company"],
            "street_1": billing["street_1"], "street_2": billing["street_2"], "city": billing["city"],
            "state": billing["state"], "zip": billing["zip"], "country": billing["country"],
            "country_iso2": billing["country_iso2"], "email": billing["email"], "phone": billing["phone"],
            "form_fields": [],
            "line_items": products,
            "items_total": sum(p["quantity"] for p in products),
            "items_shipped": sum(p["quantity_shipped"] for p in products),
            "shipping_method": "Free Shipping",
            "base_cost": 0, "cost_ex_tax": 0, "cost_inc_tax": 0, "cost_tax": 0, "cost_tax_class_id": 0,
            "base_handling_cost": 0, "handling_cost_ex_tax": 0, "handling_cost_inc_tax": 0, "handling_cost_tax": 0,
            "handling_cost_tax_class_id": 0, "shipping_zone_id": 1, "shipping_zone_name": "United States",
        }],
        "downloads": [],
        "email": {"gift_certificates": []},
    }


def order_refunded_amount(order: Order) -> Decimal:
    if order.refunded_amount:
        return order.refunded_amount
    return order.total_inc_tax if order.status_id == 4 else Decimal(0)


def order_json(order: Order, store: SandboxStore, *, line_items: bool = False) -> dict:
    billing = {
        "first_name": "", "last_name": "", "company": "", "street_1": "", "street_2": "", "city": "",
        "state": "", "zip": "", "country": "", "country_iso2": "", "phone": "", "email": "",
        **order.billing_address,
        "form_fields": [],
    }
    zero = money(Decimal(0))
    subtotal_inc = order.subtotal_ex_tax + order.total_tax
    body = {
        "id": order.bc_id,
        "customer_id": order.customer_id,
        "date_created": rfc2822(order.date_created),
        "date_modified": rfc2822(order.date_modified),
        "date_shipped": rfc2822(order.date_shipped) if order.date_shipped else "",
        "status_id": order.status_id,
        "status": order.status,
        "custom_status": order.status,
        "subtotal_ex_tax": money(order.subtotal_ex_tax),
        "subtotal_inc_tax": money(subtotal_inc),
        "subtotal_tax": money(order.total_tax),
        "base_shipping_cost": zero,
        "shipping_cost_ex_tax": zero,
        "shipping_cost_inc_tax": zero,
        "shipping_cost_tax": zero,
        "shipping_cost_tax_class_id": 0,
        "base_handling_cost": zero,
        "handling_cost_ex_tax": zero,
        "handling_cost_inc_tax": zero,
        "handling_cost_tax": zero,
        "handling_cost_tax_class_id": 0,
        "base_wrapping_cost": zero,
        "wrapping_cost_ex_tax": zero,
        "wrapping_cost_inc_tax": zero,
        "wrapping_cost_tax": zero,
        "wrapping_cost_tax_class_id": 0,
        "total_ex_tax": money(order.subtotal_ex_tax),
        "total_inc_tax": money(order.total_inc_tax),
        "total_tax": money(order.total_tax),
        "is_tax_inclusive_pricing": False,
        "items_total": order.items_total,
        "items_shipped": order.items_total if order.status_id in (2, 10) or order.date_shipped else 0,
        "payment_method": order.payment_method,
        "payment_provider_id": "",
        "payment_status": "captured" if order.status_id not in (0, 6, 7) else "",
        "refunded_amount": money(order_refunded_amount(order)),
        "order_is_digital": False,
        "store_credit_amount": zero,
        "gift_certificate_amount": zero,
        "ip_address": order.ip_address,
        "ip_address_v6": "",
        "geoip_country": billing["country"],
        "geoip_country_iso2": billing["country_iso2"],
        "currency_id": 1,
        "currency_code": order.currency_code,
        "currency_exchange_rate": "1.0000000000",
        "default_currency_id": 1,
        "default_currency_code": order.currency_code,
        "store_default_currency_code": store.currency_code,
        "store_default_to_transactional_exchange_rate": "1.0000000000",
        "staff_notes": "",
        "customer_message": "",
        "discount_amount": zero,
        "coupon_discount": zero,
        "shipping_address_count": 1,
        "is_deleted": False,
        "ebay_order_id": "0",
        "cart_id": order.cart_id,
        "billing_address": billing,
        "is_email_opt_in": order.is_email_opt_in,
        "order_source": "www",
        "channel_id": 1,
        "external_source": None,
        "external_id": None,
        "external_merchant_id": None,
        "tax_provider_id": "BasicTaxProvider",
        "customer_locale": "en",
        "external_order_id": "",
        "products": _resource(store, order.bc_id, "products"),
        "shipping_addresses": _resource(store, order.bc_id, "shippingaddresses"),
        "coupons": _resource(store, order.bc_id, "coupons"),
    }
    if line_items:
        body["consignments"] = order_consignments(order, billing)
    return body


def script_json(script: Script) -> dict:
    return {
        "uuid": str(script.uuid),
        "name": script.name,
        "description": script.description,
        "html": script.html,
        "src": script.src,
        "auto_uninstall": script.auto_uninstall,
        "load_method": script.load_method,
        "location": script.location,
        "visibility": script.visibility,
        "kind": script.kind,
        "api_client_id": script.api_client_id,
        "consent_category": script.consent_category,
        "enabled": script.enabled,
        "channel_id": script.channel_id,
        "integrity_hashes": list(script.integrity_hashes),
        "date_created": iso(script.date_created),
        "date_modified": iso(script.date_modified),
    }


def hook_json(hook: Hook, store: SandboxStore) -> dict:
    return {
        "id": hook.bc_id,
        "client_id": hook.client_id,
        "store_hash": store.store_hash,
        "scope": hook.scope,
        "destination": hook.destination,
        "is_active": hook.is_active,
        "headers": hook.headers,
        "created_at": int(hook.created_at.timestamp()),
        "updated_at": int(hook.updated_at.timestamp()),
    }


def store_json(store: SandboxStore) -> dict:
    owner = store.users.filter(is_owner=True).first()
    return {
        "id": store.store_hash,
        "store_id": store.numeric_id,
        "domain": store.domain,
        "secure_url": f"https://{store.domain}",
        "control_panel_base_url": f"https://store-{store.store_hash}.mybigcommerce.com",
        "status": "live",
        "name": store.name,
        "first_name": "",
        "last_name": "",
        "address": "",
        "country": "United States",
        "country_code": "US",
        "phone": "",
        "admin_email": owner.email if owner else "",
        "order_email": owner.email if owner else "",
        "favicon_url": "",
        "timezone": {
            "name": "Etc/UTC",
            "raw_offset": 0,
            "dst_offset": 0,
            "date_format": {"display": "jS M Y", "export": "M jS Y", "extended_display": "M jS Y @ g:i A"},
        },
        "language": "en",
        "currency": store.currency_code,
        "currency_symbol": "$",
        "decimal_separator": ".",
        "thousands_separator": ",",
        "decimal_places": 2,
        "currency_symbol_location": "left",
        "weight_units": "LBS",
        "dimension_units": "Inches",
        "dimension_decimal_places": "2",
        "dimension_decimal_token": ".",
        "dimension_thousands_token": ",",
        "plan_name": "Plus",
        "plan_level": "Plus",
        "plan_is_trial": False,
        "industry": "Outdoor",
        "logo": [],
        "is_price_entered_with_tax": False,
        "default_site_id": 1,
        "default_channel_id": 1,
        "active_comparison_modules": [],
        "features": {
            "stencil_enabled": True,
            "sitewidehttps_enabled": True,
            "facebook_catalog_id": "",
            "checkout_type": "optimized",
            "wishlists_enabled": True,
            "graphql_storefront_api_enabled": True,
            "shopper_consent_tracking_enabled": False,
            "multi_storefront_enabled": False,
        },
    }


def cart_json(cart: Cart) -> dict:
    """carts.v3.yml, Cart_Full (GET /v3/carts/{cartId}): the cart's shopper, currency, amounts and items."""
    physical = []
    for item in cart.items:
        price, quantity = Decimal(str(item["price"])), int(item["quantity"])
        physical.append({
            "id": item["id"], "variant_id": int(item.get("variant_id") or 0),
            "product_id": int(item["product_id"]), "sku": item.get("sku") or "", "name": item["name"],
            "url": f"https://{cart.store.domain}/products/{item['product_id']}/", "quantity": quantity,
            "is_taxable": True, "image_url": "", "discounts": [], "coupons": [], "discount_amount": 0,
            "coupon_amount": 0, "original_price": float(price), "list_price": float(price),
            "sale_price": float(price), "extended_list_price": float(price * quantity),
            "extended_sale_price": float(price * quantity), "is_require_shipping": True, "is_mutable": True,
        })
    amount = float(sum(Decimal(str(i["price"])) * int(i["quantity"]) for i in cart.items))
    return {
        "id": cart.cart_id, "customer_id": cart.customer_id, "channel_id": 1, "email": cart.email,
        "currency": {"code": cart.currency_code}, "tax_included": False, "base_amount": amount,
        "discount_amount": 0, "manual_discount_amount": 0, "cart_amount": amount, "coupons": [], "discounts": [],
        "line_items": {"physical_items": physical, "digital_items": [], "gift_certificates": [],
                       "custom_items": []},
        "created_time": iso(cart.created_time), "updated_time": iso(cart.updated_time), "locale": "en",
    }


# --- catalog (v3) ----------------------------------------------------------------------------------

# The sandbox's starting stock and sale prices (services.catalog_ensure): socks start sold out, for the
# storefront's "E-mail me when it's back" form; the mug is on sale.
CATALOG_STOCK = {111: 12, 112: 30, 113: 40, 114: 0}
CATALOG_SALE = {113: Decimal("19.50")}


def storefront_base(store: SandboxStore) -> str:
    return f"{settings.PUBLIC_URL}/sandbox/bigcommerce/store-{store.store_hash}/storefront"


def product_image_url(store: SandboxStore, product: Product) -> str:
    return f"{settings.PUBLIC_URL}/sandbox/bigcommerce/store-{store.store_hash}/product_images/{product.sku}.svg"


def product_json(product: Product, *, include: set[str] = frozenset()) -> dict:
    """products_catalog.v3.yml, product_Full (GET /v3/catalog/products): one variant per product; `variants`
    and `primary_image` only when asked for (IncludeParamBase)."""
    price, sale = float(product.price), float(product.sale_price)
    image = product_image_url(product.store, product)
    body = {
        "id": product.bc_id, "name": product.name, "type": "physical", "sku": product.sku, "weight": 1.0,
        "price": price, "sale_price": sale, "calculated_price": sale or price,
        "inventory_level": product.inventory_level, "inventory_tracking": "variant",
        "availability": product.availability, "is_visible": True, "base_variant_id": product.variant_id,
        "custom_url": {"url": f"/{product.slug}/", "is_customized": False},
        "date_created": iso(product.date_created), "date_modified": iso(product.date_modified),
    }
    if "variants" in include:
        body["variants"] = [{
            "id": product.variant_id, "product_id": product.bc_id, "sku": product.sku,
            "price": price, "sale_price": sale, "calculated_price": sale or price,
            "inventory_level": product.inventory_level, "purchasing_disabled": False, "image_url": image,
            "option_values": ([{"id": 1, "label": product.option_value, "option_id": 1,
                                "option_display_name": product.option_name}] if product.option_name else []),
        }]
    if "primary_image" in include:
        body["primary_image"] = {"id": product.bc_id, "product_id": product.bc_id, "is_thumbnail": True,
                                 "sort_order": 0, "description": product.name, "url_standard": image,
                                 "url_thumbnail": image, "url_tiny": image, "url_zoom": image,
                                 "date_modified": iso(product.date_modified)}
    return body
