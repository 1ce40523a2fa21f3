"""The catalog mirror (sync/catalog/mirror.py) and the deliveries that keep it current (sync/intake/webhooks.py), with
BigCommerce mocked at the HTTP level."""

import json
import re

import pytest
import responses
from django.conf import settings

from stores.bigcommerce import BigCommerceClient
from sync.catalog import mirror
from sync.engine.orders import records
from sync.intake.webhooks import delivery_parse
from sync.models import CatalogProduct

pytestmark = pytest.mark.django_db
CATALOG = re.compile(re.escape(f"{settings.BIGCOMMERCE_API_URL}/stores/abc123/v3/catalog/products") + r".*")


def product(pid, *, level=0, variant_level=None, deleted=False):
    return {"id": pid, "name": f"Product {pid}", "price": 20.0, "sale_price": 0, "inventory_level": level,
            "inventory_tracking": "variant", "availability": "available", "custom_url": {"url": f"/p-{pid}/"},
            "primary_image": {"url_standard": f"https://cdn.example/{pid}.jpg"},
            "date_modified": "2026-12-01T10:00:00+00:00",
            "variants": [{"id": pid * 10, "product_id": pid, "sku": f"SKU-{pid}", "price": 20.0,
                          "inventory_level": level if variant_level is None else variant_level,
                          "purchasing_disabled": False,
                          "option_values": [{"label": "L", "option_display_name": "Size"}]}]}


def serve(rsps, products):
    def answer(request):
        query = request.url.split("?", 1)[-1]
        items = products
        if "id%3Ain=" in query:
            wanted = {int(x) for x in re.search(r"id%3Ain=([0-9%C,]+)", query).group(1).replace("%2C", ",").split(",")}
            items = [p for p in products if p["id"] in wanted]
        return 200, {}, json.dumps({"data": items, "meta": {"pagination": {
            "total": len(items), "count": len(items), "per_page": 250, "current_page": 1, "total_pages": 1}}})
    rsps.add_callback(responses.GET, CATALOG, callback=answer)


@pytest.fixture
def store(make_store, settings):
    settings.BIGCOMMERCE_STOREFRONT_URL = "https://{domain}"  # the production default
    return make_store("abc123", domain="shop.example")


def test_first_read_fills_the_mirror_and_restocks_nothing(store):
    with responses.RequestsMock() as rsps:
        serve(rsps, [product(1, level=0), product(2, level=3)])
        read, restocked = mirror.mirror_read_all(store, BigCommerceClient("abc123", "tok"))
    assert read == 2 and restocked == set()
    row = CatalogProduct.objects.get(store=store, product_id=1)
    assert row.url == "https://shop.example/p-1/" and row.image_url == "https://cdn.example/1.jpg"
    assert row.variants.get().options == "Size: L"
    assert mirror.variant_in_stock(store, 1, 10) is False and mirror.variant_in_stock(store, 2, 20) is True
    assert mirror.variant_in_stock(store, 99, 0) is None


def test_a_variant_going_above_zero_is_restocked_once(store):
    client = BigCommerceClient("abc123", "tok")
    with responses.RequestsMock() as rsps:
        serve(rsps, [product(1, level=0)])
        mirror.mirror_read_all(store, client)
    with responses.RequestsMock() as rsps:
        serve(rsps, [product(1, level=5)])
        _, restocked = mirror.mirror_refresh(store, client, [1])
    assert restocked == {(1, 0), (1, 10)}
    with responses.RequestsMock() as rsps:
        serve(rsps, [product(1, level=7)])
        _, again = mirror.mirror_refresh(store, client, [1])
    assert again == set()


def test_a_deleted_product_is_kept_and_its_activities_send_what_is_known(store):
    client = BigCommerceClient("abc123", "tok")
    with responses.RequestsMock() as rsps:
        serve(rsps, [product(1, level=2)])
        mirror.mirror_read_all(store, client)
    with responses.RequestsMock() as rsps:
        serve(rsps, [])  # store/product/deleted: the catalog answers nothing for it now
        mirror.mirror_refresh(store, client, [1])
    assert CatalogProduct.objects.get(store=store, product_id=1).deleted_at is not None
    assert mirror.variant_in_stock(store, 1, 10) is None
    facts = mirror.product_facts(store, [1, 2])
    order = {"id": 5, "date_created": "Tue, 14 May 2024 09:34:00 +0000", "currency_code": "USD", "consignments": {
        "shipping": [{"line_items": [{"id": 1, "product_id": 1, "name": "Product 1", "quantity": 1, "price_inc_tax": "20"},
                                     {"id": 2, "product_id": 2, "name": "Never mirrored", "quantity": 1,
                                      "price_inc_tax": "5"}]}]}}
    first, second = records.ordered_product_activities(order=order, email="a@example.com", store_hash="abc123",
                                                           store_name="S", activity_id="act:cm:ordered-product",
                                                           catalog=facts)
    assert first["attributes"]["str:cm:product-url"] == "https://shop.example/p-1/"
    assert "str:cm:product-url" not in second["attributes"] and second["attributes"]["str:cm:product-name"] == "Never mirrored"


def test_links_are_left_out_where_the_definition_predates_them():
    facts = {1: mirror.ProductFacts(url="https://shop.example/p-1/", image_url="https://cdn.example/1.jpg")}
    order = {"id": 5, "consignments": {"shipping": [{"line_items": [{"id": 1, "product_id": 1, "quantity": 1}]}]}}
    old_ids = {"product-name": "str:cm:product-name", "product-id": "int:cm:product-id"}
    [activity] = records.ordered_product_activities(order=order, email="a@example.com", store_hash="abc123",
                                                        store_name="S", activity_id="x", catalog=facts,
                                                        attribute_ids=old_ids)
    assert not [name for name in activity["attributes"] if name.endswith("-url")]


@pytest.mark.parametrize("scope, data, resource, resource_id", [
    ("store/product/updated", {"type": "product", "id": 205}, "products", 205),
    ("store/sku/inventory/updated", {"type": "sku", "id": 461, "inventory": {"product_id": 167, "variant_id": 509,
                                                                             "method": "absolute", "value": 2}},
     "products", 167),
    ("store/sku/deleted", {"type": "sku", "id": 461, "sku": {"product_id": 206, "variant_id": 509}}, "products", 206),
    ("store/cart/lineItem/created", {"type": "cart_line_item", "id": "09346904-4175-44fd-be53-f7e598531b6c",
                                     "cartId": "b0386708-fef3-45de-9d8b-fbe3031450a4"}, "cart_items", 0),
])
def test_catalog_and_line_item_deliveries_are_taken_in(scope, data, resource, resource_id):
    body = json.dumps({"producer": "stores/abc123", "scope": scope, "created_at": 1561482670, "hash": "h",
                       "data": data}).encode()
    parsed = delivery_parse(body)
    assert (parsed.resource, parsed.resource_id) == (resource, resource_id)


@pytest.mark.parametrize("scope, data", [
    ("store/sku/updated", {"type": "sku", "id": 461}),  # no product named
    ("store/cart/lineItem/created", {"type": "cart_line_item", "id": "x y", "cartId": "b0386708"}),
])
def test_malformed_catalog_and_line_item_deliveries_are_refused(scope, data):
    body = json.dumps({"producer": "stores/abc123", "scope": scope, "created_at": 1561482670, "data": data}).encode()
    assert delivery_parse(body) is None
