"""Contract test: every request the BigCommerce client sends is one BigCommerce's own OpenAPI specs allow.

The client runs against `responses` callbacks that capture each prepared request; each one is then
validated with openapi-core (path, path/query parameter types and enums, date-time formats, the
X-Auth-Token security scheme, JSON body schema) against the official spec of its API, plus stricter
checks openapi-core leaves out: no undeclared query parameter, no undeclared top-level body field,
and the JSON Accept/Content-Type headers (OpenAPI 3 tells validators to ignore those two parameters).

The specs, their known defects (patched in memory) and the validator are in bigcommerce_spec.py beside this file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_core.exceptions import OpenAPIError

from stores.bigcommerce import BigCommerceClient, exchange_code
from tests.contracts.bigcommerce_spec import API, STORE, assert_allowed_by_spec, spec_dir

TOKEN = "contract-test-token"
SINCE = datetime(2024, 5, 14, 9, 34, tzinfo=timezone.utc)
SCRIPT_UUID = "03805148-a592-4803-9482-e91fe5c1be12"

# The script the bridge installs for website tracking (what sync/stores services will send).
TRACKING_SCRIPT = {
    "name": "Ortto tracking",
    "description": "Ortto website tracking for this store",
    "html": "<script>window.ap3c = window.ap3c || {};</script>",
    "auto_uninstall": True,
    "load_method": "default",
    "location": "head",
    "visibility": "storefront",
    "kind": "script_tag",
    "consent_category": "analytics",
    "enabled": True,
}



# --- capturing the client's requests ------------------------------------------------------------

CANNED: list[tuple[str, str, int, Any]] = [  # method, path regex (after /stores/{hash}), status, body
    ("GET", r"/v3/customers", 200, {"data": [{"id": 1}], "meta": {
        "pagination": {"total": 1, "count": 1, "per_page": 250, "current_page": 1, "total_pages": 1},
        "cursor_pagination": {"count": 1, "per_page": 250, "start_cursor": "c1", "end_cursor": "c1", "links": {}}}}),
    ("GET", r"/v3/customers/subscribers", 200, {"data": [{"id": 1, "email": "a@example.com"}], "meta": {
        "pagination": {"total": 1, "count": 1, "per_page": 250, "current_page": 1, "total_pages": 1}}}),
    ("PUT", r"/v3/customers", 200, {"data": [{"id": 7}], "meta": {}}),
    ("DELETE", r"/v3/customers/subscribers/\d+", 204, None),
    ("GET", r"/v2/orders", 204, None),
    ("GET", r"/v2/orders/count", 200, {"count": 3, "statuses": []}),
    ("GET", r"/v2/orders/\d+", 200, {"id": 100}),
    ("GET", r"/v3/catalog/products", 200, {"data": [], "meta": {
        "pagination": {"total": 0, "count": 0, "per_page": 250, "current_page": 1, "total_pages": 0}}}),
    ("GET", r"/v3/carts/[^/]+", 200, {"data": {"id": "09346904-4175-44fd-be53-f7e598531b6c"}, "meta": {}}),
    ("GET", r"/v2/store", 200, {"id": STORE, "name": "Acme Outdoor Co."}),
    ("POST", r"/v3/content/scripts", 200, {"data": {"uuid": SCRIPT_UUID, **TRACKING_SCRIPT}, "meta": {}}),
    ("PUT", r"/v3/content/scripts/[^/]+", 200, {"data": {"uuid": SCRIPT_UUID}, "meta": {}}),
    ("GET", r"/v3/content/scripts/[^/]+", 200, {"data": {"uuid": SCRIPT_UUID}, "meta": {}}),
    ("DELETE", r"/v3/content/scripts/[^/]+", 204, None),
    ("POST", r"/v3/hooks", 200, {"data": {"id": 22561593, "scope": "store/order/created"}, "meta": {}}),
    ("GET", r"/v3/hooks", 200, {"data": [{"id": 22561593}], "meta": {
        "pagination": {"total": 1, "count": 1, "per_page": 250, "current_page": 1, "total_pages": 1}}}),
    ("PUT", r"/v3/hooks/\d+", 200, {"data": {"id": 22561593, "is_active": True}, "meta": {}}),
    ("DELETE", r"/v3/hooks/\d+", 200, {"data": {"id": 22561593}, "meta": {}}),
]


def capture(call: Callable[[BigCommerceClient], Any], methods: set[str]) -> list[requests.PreparedRequest]:
    captured: list[requests.PreparedRequest] = []

    def answer(request: requests.PreparedRequest):
        captured.append(request)
        path = urlsplit(request.url).path.removeprefix(f"/stores/{STORE}")
        for method, pattern, status, body in CANNED:
            if method == request.method and re.fullmatch(pattern, path):
                return status, {"Content-Type": "application/json"}, json.dumps(body) if body is not None else ""
        raise AssertionError(f"unexpected {request.method} {path}")

    with responses.RequestsMock() as rsps:
        for method in methods:
            rsps.add_callback(method, re.compile(re.escape(API) + r"/.*"), callback=answer)
        call(BigCommerceClient(STORE, TOKEN, sleep=lambda seconds: None))
    assert captured
    return captured


@dataclass(frozen=True)
class Endpoint:
    name: str
    methods: set[str]
    call: Callable[[BigCommerceClient], Any]


ENDPOINTS = [
    Endpoint("customers first page", {"GET"}, lambda c: c.customers_page(modified_since=SINCE)),
    Endpoint("customers after cursor", {"GET"}, lambda c: c.customers_page(modified_since=SINCE, after="eyJpZCI6MjA0fQ")),
    Endpoint("customers by ids", {"GET"}, lambda c: c.customers_page(ids=[4, 5, 6], limit=50)),
    Endpoint("subscribers page", {"GET"}, lambda c: c.subscribers_page(modified_since=SINCE, page=2)),
    Endpoint("subscribers by ids", {"GET"}, lambda c: c.subscribers_page(ids=[7, 8])),
    # Consent written back (sync/consent/writeback.py).
    Endpoint("customers by email", {"GET"}, lambda c: c.customers_by_email(["ann@example.com", "bob@example.com"])),
    Endpoint("subscribers by email", {"GET"}, lambda c: c.subscribers_by_email("ann@example.com")),
    Endpoint("delete subscriber", {"DELETE"}, lambda c: c.delete_subscriber(3)),
    Endpoint("customers stop accepting marketing", {"PUT"}, lambda c: c.update_customers(
        [{"id": 7, "accepts_product_review_abandoned_cart_emails": False}])),
    Endpoint("orders page", {"GET"}, lambda c: c.orders_page(modified_since=SINCE, min_id=101, limit=250)),
    Endpoint("orders first page", {"GET"}, lambda c: c.orders_page()),
    Endpoint("orders id range", {"GET"}, lambda c: c.orders_page(min_id=101, max_id=140, limit=250)),
    Endpoint("orders count", {"GET"}, lambda c: c.orders_count(modified_since=SINCE)),
    Endpoint("orders count, all", {"GET"}, lambda c: c.orders_count()),
    Endpoint("single order", {"GET"}, lambda c: c.order(100)),
    Endpoint("a cart", {"GET"}, lambda c: c.cart("09346904-4175-44fd-be53-f7e598531b6c")),
    Endpoint("catalog page", {"GET"}, lambda c: c.catalog_products_page(page=2)),
    Endpoint("catalog changed since", {"GET"}, lambda c: c.catalog_products_page(modified_since=SINCE)),
    Endpoint("catalog by ids", {"GET"}, lambda c: c.catalog_products_page(ids=[111, 114])),
    Endpoint("catalog after an id", {"GET"}, lambda c: c.catalog_products_page(after_id=1245)),
    Endpoint("create script", {"POST"}, lambda c: c.create_script(TRACKING_SCRIPT)),
    Endpoint("update script", {"PUT"}, lambda c: c.update_script(SCRIPT_UUID, {"enabled": False})),
    Endpoint("get script", {"GET"}, lambda c: c.get_script(SCRIPT_UUID)),
    Endpoint("delete script", {"DELETE"}, lambda c: c.delete_script(SCRIPT_UUID)),
    Endpoint("create hook", {"POST"}, lambda c: c.create_hook(
        scope="store/customer/updated", destination="https://bridge.example/bigcommerce/webhooks/",
        headers={"X-Bridge-Secret": "s3cr3t"})),
    Endpoint("list hooks", {"GET"}, lambda c: c.list_hooks()),
    Endpoint("re-activate hook", {"PUT"}, lambda c: c.update_hook(22561593, is_active=True)),
    Endpoint("delete hook", {"DELETE"}, lambda c: c.delete_hook(22561593)),
]


@pytest.fixture(autouse=True)
def production_urls(settings):
    settings.BIGCOMMERCE_API_URL = API
    settings.BIGCOMMERCE_LOGIN_URL = "https://login.bigcommerce.com"
    settings.PUBLIC_URL = "https://bridge.example"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_client_requests_are_allowed_by_the_official_spec(endpoint):
    for request in capture(endpoint.call, endpoint.methods):
        assert request.headers["X-Auth-Token"] == TOKEN
        assert_allowed_by_spec(request)


def test_every_order_read_asks_for_its_line_items_in_the_same_answer():
    """Ordered product costs no request: orders pages and single orders carry their line items."""
    for call in (lambda c: c.orders_page(min_id=1), lambda c: c.order(100),
                 lambda c: c.orders_page(min_id=101, max_id=140)):
        for request in capture(call, {"GET"}):
            query = parse_qs(urlsplit(request.url).query)
            assert query["include"] == ["consignments.line_items"]
            assert query["consignment_structure"] == ["object"]


def test_store_information_request():
    # /v2/store is described by store_information.v2.yml, which is not among the vendored specs:
    # check what the docs say by hand (path, method, auth and JSON headers, no query, no body).
    [request] = capture(lambda c: c.store_information(), {"GET"})
    assert request.method == "GET"
    assert urlsplit(request.url).path == f"/stores/{STORE}/v2/store" and not urlsplit(request.url).query
    assert request.headers["X-Auth-Token"] == TOKEN and request.headers["Accept"] == "application/json"
    assert not request.body


def test_token_exchange_request_matches_the_documented_fields():
    # The OAuth token endpoint has no OpenAPI spec; docs/integrations/apps/guide/auth.mdx lists the
    # JSON body's fields, all required.
    captured = []

    def answer(request):
        captured.append(request)
        return 200, {}, json.dumps({"access_token": "t", "scope": "s", "context": "stores/abc123",
                                    "account_uuid": "u", "user": {"id": 1, "email": "a@b.c"},
                                    "owner": {"id": 1, "email": "a@b.c"}})

    with responses.RequestsMock() as rsps:
        rsps.add_callback("POST", "https://login.bigcommerce.com/oauth2/token", callback=answer)
        exchange_code(code="qr6h3thvbvag2ffq", scope="store_v2_orders", context="stores/abc123")
    [request] = captured
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert set(body) == {"client_id", "client_secret", "code", "context", "scope", "grant_type", "redirect_uri"}
    assert body["grant_type"] == "authorization_code"
    assert body["redirect_uri"] == "https://bridge.example/bigcommerce/auth/"
    assert all(isinstance(value, str) and value for value in body.values())


# --- the validator itself catches what the spec forbids -----------------------------------------


def _prepared(method: str, path: str, *, params=None, body=None, headers=None) -> requests.PreparedRequest:
    default_headers = {"X-Auth-Token": TOKEN, "Accept": "application/json", "Content-Type": "application/json"}
    return requests.Request(method, f"{API}/stores/{STORE}{path}", params=params, json=body,
                            headers=headers or default_headers).prepare()


@pytest.mark.parametrize(
    "request_",
    [
        _prepared("GET", "/v3/customers", params={"sort": "date_modified:sideways"}),
        _prepared("GET", "/v3/customers", params={"include": "addresses,wishlists"}),
        _prepared("GET", "/v3/customers", params={"modified_since": "2024-05-14T09:34:00Z"}),
        _prepared("GET", "/v3/customers/subscribers", params={"date_modified:min": "last tuesday"}),
        _prepared("GET", "/v3/customers/subscribers", params={"page": "first"}),
        _prepared("GET", "/v2/orders", params={"sort": "id:up"}),
        _prepared("GET", "/v2/orders", params={"min_date_modified": "14/05/2024"}),
        _prepared("GET", "/v3/customers", params={"date_modified:min": "2024-05-14T09:34:00"}),
        _prepared("GET", "/v2/orders/abc"),
        _prepared("POST", "/v3/content/scripts", body={**TRACKING_SCRIPT, "consent_category": "marketing"}),
        _prepared("POST", "/v3/content/scripts", body={"description": "no name"}),
        _prepared("POST", "/v3/content/scripts", body={**TRACKING_SCRIPT, "pixel_id": "x"}),
        _prepared("PUT", "/v3/content/scripts/not-a-uuid", body={"enabled": False}),
        _prepared("POST", "/v3/hooks", body={"destination": "https://bridge.example/"}),
        _prepared("DELETE", "/v3/hooks/0"),
        _prepared("GET", "/v3/hooks", headers={"Accept": "application/json"}),
        _prepared("GET", "/v3/hooks", headers={"X-Auth-Token": TOKEN, "Accept": "text/html"}),
    ],
    ids=["bad-sort", "bad-include", "undeclared-param", "bad-date", "bad-page", "bad-orders-sort",
         "orders-date-not-iso", "customers-date-without-zone", "bad-order-id", "bad-consent", "script-without-name", "undeclared-body-field", "bad-uuid",
         "hook-without-scope", "hook-id-0", "no-token", "not-json"],
)
def test_validator_rejects_requests_the_spec_does_not_allow(request_):
    with pytest.raises((OpenAPIError, AssertionError)):
        assert_allowed_by_spec(request_)


def test_each_spec_patch_is_still_needed():
    # If BigCommerce fixes a defect upstream, this fails and the patch can go.
    def refused(file: str, path: str, params: dict) -> bool:
        raw = yaml.safe_load((spec_dir() / file).read_text(encoding="utf-8"))
        try:
            OpenAPI.from_dict(raw).validate_request(RequestsOpenAPIRequest(_prepared("GET", path, params=params)))
        except OpenAPIError:
            return True
        return False

    assert refused("subscribers.v3.yml", "/v3/customers/subscribers", {"page": 1})  # `id` required
    assert refused("subscribers.v3.yml", "/v3/customers/subscribers", {"id": 1, "id:in": "7,8"})  # no explode: false
    assert refused("orders.v2.oas2.yml", "/v2/orders", {"sort": "id:asc"})  # bare names only
