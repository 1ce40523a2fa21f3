"""Contract test: every Ortto call the bridge makes, in both directions, against docs/ortto-contract/.

1. The schemas themselves are valid and accept what real Ortto answered (recorded responses).
2. The client's requests, captured with `responses`, for every call it makes.
3. A whole sync over real HTTP against the emulated Ortto: every request the bridge sent and every
   answer the emulator gave, validated against the same schemas.
4. The emulator's answers to refused requests (400, 401, 403, 404, duplicate, 429) and its refusals of
   requests the contract forbids.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from django.urls import include, path
from jsonschema import Draft202012Validator

from sandbox.ortto import services
from sandbox.ortto.seed import seed_ortto_instances
from sync.catalog import activities as product_activities
from sync.catalog.mirror import ProductFacts
from sync.consent.writeback import email_filter
from sync.engine import activities, mapping
from sync.engine.orders import records
from sync.ortto.client import OrttoClient
from sync.ortto.schema import ALL_SPECS

from .ortto_contract import (
    ENDPOINTS,
    PEOPLE_ENDPOINTS,
    OrttoRecorder,
    request_problems,
    response_problems,
    schema_files,
)

RECORDED = json.loads((Path(__file__).parent / "ortto_recorded" / "recorded.json").read_text())
BASE = "https://api.ap3api.com"
US_KEY = "sbx-default-acmeus-0001"


# --- 1. the schemas ---------------------------------------------------------------------------------


@pytest.mark.parametrize("schema_path", schema_files(), ids=lambda p: p.name)
def test_each_schema_is_a_valid_json_schema(schema_path):
    Draft202012Validator.check_schema(json.loads(schema_path.read_text()))


def test_the_contract_covers_every_endpoint_the_client_calls():
    source = (Path(__file__).resolve().parents[2] / "sync" / "ortto" / "client.py").read_text()
    called = {part.split('"')[0] for part in source.split('self._post("')[1:]}
    assert called == set(ENDPOINTS)


@pytest.mark.parametrize("recorded", RECORDED, ids=lambda r: r["source"].rsplit("/", 1)[-1])
def test_recorded_ortto_answers_fit_the_response_schemas(recorded):
    assert response_problems(recorded["endpoint"], recorded["status"], recorded["body"]) == []


# --- 2. the client's requests (captured with responses) ----------------------------------------------


@pytest.fixture
def captured(settings):
    settings.ORTTO_API_URL = ""
    with responses.RequestsMock() as rsps:
        bodies: list[tuple[str, dict]] = []

        def answer(payload):
            def callback(request):
                bodies.append((request.path_url, json.loads(request.body)))
                return 200, {}, json.dumps(payload)
            return callback

        rsps.add_callback(responses.POST, f"{BASE}/v1/person/custom-field/get", answer({"fields": []}))
        rsps.add_callback(responses.POST, f"{BASE}/v1/person/custom-field/create",
                          answer({"field_id": "int:cm:bigcommerce-order-count", "name": "x", "display_type": "integer"}))
        rsps.add_callback(responses.POST, f"{BASE}/v1/definitions/activity/create",
                          answer({"custom_activity": {"name": "Placed order", "activity_field_id": "act:cm:placed-order"}}))
        rsps.add_callback(responses.POST, f"{BASE}/v1/person/merge", answer({"people": []}))
        rsps.add_callback(responses.POST, f"{BASE}/v1/activities/create", answer({"activities": []}))
        rsps.add_callback(responses.POST, f"{BASE}/v1/accounts/merge", answer({"accounts": []}))
        rsps.add_callback(responses.PUT, f"{BASE}/v1/accounts/contacts/add", answer({}))
        rsps.add_callback(responses.PUT, f"{BASE}/v1/accounts/contacts/remove", answer({}))
        rsps.add_callback(responses.POST, f"{BASE}/v1/accounts/custom-field/create",
                          answer({"field_id": "int:oc:total-spent", "name": "Total spent", "display_type": "currency"}))
        rsps.add_callback(responses.POST, f"{BASE}/v1/person/get", answer({"contacts": [], "has_more": False}))
        rsps.add_callback(responses.PUT, f"{BASE}/v1/person/archive", answer({}))
        rsps.add_callback(responses.DELETE, f"{BASE}/v1/person/delete", answer({}))
        yield bodies


CUSTOMER = {
    "id": 7, "email": " Ann.Example@Example.com ", "first_name": "Ann", "last_name": "Example", "phone": "(555) 123-4567",
    "addresses": [{"city": "Austin", "state_or_province": "Texas", "country": "United States", "country_code": "US",
                   "postal_code": "78701", "phone": ""}],
}
ORDER = {
    "id": 101, "customer_id": 0, "status_id": 11, "status": "Awaiting Fulfillment", "total_inc_tax": "42.50",
    "currency_code": "AUD", "items_total": 2, "date_created": "Tue, 14 May 2024 09:34:00 +0000",
    "is_email_opt_in": True,
    "billing_address": {"email": "guest@example.com", "first_name": "Gus", "last_name": "Guest",
                        "phone": "0401 234 567", "city": "Sydney", "state": "NSW", "country": "Australia",
                        "country_iso2": "AU", "zip": "2000"},
}


ORDER_WITH_LINES = {
    **ORDER, "status_id": 2, "status": "Shipped", "refunded_amount": "10.00",
    "consignments": {"pickups": [], "downloads": [], "email": {"gift_certificates": []}, "shipping": [{"line_items": [
        {"id": 55, "product_id": 111, "variant_id": 1110, "sku": "TENT-2P", "name": "Trail Tent 2P", "quantity": 1,
         "price_inc_tax": "42.50", "product_options": [{"display_name": "Colour", "display_value": "Forest"}]}]}]},
}
CART = {"id": "09346904-4175-44fd-be53-f7e598531b6c", "email": "guest@example.com", "currency": {"code": "AUD"},
        "cart_amount": 42.5, "line_items": {"physical_items": [{"product_id": 111, "name": "Trail Tent 2P", "quantity": 1}]}}


def journey_activities() -> list[dict]:
    """One of each journey activity, as sync/engine/orders/journey.py and sync/engine/carts.py build them."""
    common = dict(order=ORDER_WITH_LINES, email="guest@example.com", store_hash="abc123", store_name="Acme")
    return [
        *records.ordered_product_activities(**common, activity_id="act:cm:ordered-product", catalog={111: FACTS}),
        records.fulfilled_activity(**common, activity_id="act:cm:fulfilled-order"),
        records.cancelled_activity(**common, activity_id="act:cm:cancelled-order"),
        records.refunded_activity(**common, activity_id="act:cm:refunded-order", amount=Decimal("10.00"),
                                     refunded_total=Decimal("10.00")),
        activities.abandoned_cart_activity(cart=CART, email="guest@example.com", store_hash="abc123",
                                           store_name="Acme", activity_id="act:cm:abandoned-cart",
                                           recovery_url="https://acme.example/cart.php?action=recover&token=1eed"),
        activities.cart_recovered_activity(cart_id=CART["id"], order_id=252, email="guest@example.com",
                                           store_hash="abc123", store_name="Acme", activity_id="act:cm:cart-recovered",
                                           value=Decimal("42.50"), currency="AUD"),
        *product_journey_activities(),
    ]


FACTS = ProductFacts(name="Trail Tent 2P", url="https://acme.example/trail-tent-2p/",
                     image_url="https://cdn.example/tent.jpg", price=Decimal("189.00"))


def product_journey_activities() -> list[dict]:
    """One of each product activity, as sync/catalog/journeys.py builds them (with the mirror's facts)."""
    details = {"name": "Trail Tent 2P", "sku": "TENT-2P", "quantity": 2, "price": "189.00", "cart_id": CART["id"],
               "currency": "AUD"}
    return [product_activities.product_activity(
        kind=spec.key, key=f"bc:abc123:{spec.key}:1", email="guest@example.com", store_hash="abc123",
        store_name="Acme", product_id=111, variant_id=1110, details=details, facts=FACTS,
        activity_id=spec.default_id) for spec in product_activities.PRODUCT_JOURNEY]


def test_journey_activities_use_only_attributes_their_definitions_declare():
    """Each activity's attribute ids are its definition's (display type prefix + ':cm:' + name), its key is
    unique to the event, and only the email names the person (the run merged them first)."""
    by_id = {spec.default_id: spec for spec in ALL_SPECS}
    built = journey_activities()
    assert {a["activity_id"] for a in built} == set(by_id)
    for activity in built:
        spec = by_id[activity["activity_id"]]
        declared = {spec.attribute_id(name) for name, _ in spec.attributes}
        assert set(activity["attributes"]) <= declared, activity["activity_id"]
        assert activity["fields"] == {"str::email": "guest@example.com"}
        assert activity["key"].startswith("bc:abc123:")
    assert len({a["key"] for a in built}) == len(built)
    # Every product-bearing activity carries the product's link and picture.
    for activity in built:
        spec = by_id[activity["activity_id"]]
        if "product-url" in dict(spec.attributes) and activity["activity_id"] != "act:cm:abandoned-cart":
            assert activity["attributes"][spec.attribute_id("product-url")] == FACTS.url, spec.name
            assert activity["attributes"][spec.attribute_id("image-url")] == FACTS.image_url, spec.name
        assert len(activity["attributes"]) <= 15
    for spec in ALL_SPECS:
        assert request_problems("activity-definition-create", spec.definition()) == []


def test_every_client_request_fits_the_request_schemas(captured):
    client = OrttoClient(api_key="key", region="default")
    client.verify()
    existing = client.custom_fields()
    for name, field_type, _ in mapping.CUSTOM_FIELDS.values():
        client.create_custom_field(name=name, field_type=field_type, existing=existing)
    client.create_activity_definition(mapping.placed_order_definition())
    for spec in ALL_SPECS:
        client.create_activity_definition(spec.definition())
    customer = mapping.customer_to_person(CUSTOMER)
    guest = records.order_to_person(ORDER)
    aggregates = mapping.aggregate_fields(email="ann.example@example.com", order_count=3, total_spent="42.50",
                                          last_order_at=mapping.parse_bc_datetime(ORDER["date_created"]))
    for strategy in (1, 2, 3):
        client.merge_people([{"fields": {**customer.fields, **mapping.permission_fields(subscribed=False, reason="r")}},
                             {"fields": guest.fields}, {"fields": aggregates}], merge_strategy=strategy)
    client.create_activities([records.order_activity(order=ORDER, email="guest@example.com", store_hash="abc123",
                                                     store_name="Acme")])
    client.create_activities(journey_activities())
    client.merge_accounts([{"fields": {"str:o:name": "Acme Ltd", "str:o:website": "acme.example",
                                       "geo:o:city": {"name": "Austin"}, "int:oc:orders": 3}}], merge_strategy=1)
    client.add_account_people(account_id="507f1f77bcf86cd799439011", person_ids=["006913c5b9ca58778a137d00"])
    client.remove_account_people(account_id="507f1f77bcf86cd799439011", person_ids=["006913c5b9ca58778a137d00"])
    client.create_account_field(name="Total spent", field_type="currency")
    client.get_people(filter=email_filter(["ann.example@example.com", "guest@example.com"]),
                      fields=["str::email", "bol::p"], limit=100)
    client.get_people(filter={"$str::is": {"field_id": "str::email", "value": "guest@example.com"}},
                      fields=["str::email"], limit=10)
    client.archive_people(["006913c5b9ca58778a137d00"])
    client.delete_people(["006913c5b9ca58778a137d00"])

    seen = {path for path, _ in captured}
    assert seen == set(ENDPOINTS)
    for path_url, body in captured:
        assert request_problems(ENDPOINTS[path_url], body) == [], (path_url, body)


@pytest.mark.parametrize("phone, country", [
    ("+1 (555) 123-4567", None), ("(555) 123-4567", "US"), ("0401 234 567", "AU"), ("020 7946 0958", "GB"),
    ("06 1234 5678", "IT"), ("0044 20 7946 0958", ""), ("1-555-123-4567 ext. 12", "US"),
])
def test_every_phone_the_mapping_sends_fits_the_phone_schema(phone, country):
    value = mapping.phone_field(phone, country_iso2=country)
    assert value is not None
    assert request_problems("person-merge", {"people": [{"fields": {"str::email": "a@b.co", "phn::phone": value}}]}) == []


@pytest.mark.parametrize("phone, country", [("(555) 123-4567", None), ("0401 234 567", ""), ("12", "US"),
                                            ("call me", "US"), ("+0 12", None)])
def test_a_phone_that_cannot_be_read_safely_is_left_out(phone, country):
    assert mapping.phone_field(phone, country_iso2=country) is None


# --- 3. a whole sync over real HTTP, both directions ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.live
@pytest.mark.parametrize("duplicate_status", [409, 400])
def test_a_whole_sync_keeps_the_contract_in_both_directions(make_store, make_account, make_connection, sandbox_live, monkeypatch, duplicate_status):
    from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
    from sandbox.bigcommerce.services import app_install_complete
    from sandbox.ortto.models import Instance
    from sync.engine.runs import sync_run_execute, sync_run_request
    from sync.models import SyncRun
    recorder = OrttoRecorder()
    monkeypatch.setattr("sync.ortto.client.thread_session", recorder)
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 20)
    sandbox_store = seed_bigcommerce(store_hash="ctr1", name="Contract", customers=25, orders=40, seed=11)
    seed_users(store_hash="ctr1")
    install = app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    services.instance_set_contract(Instance.objects.get(name="acme-us"), duplicate_status=duplicate_status)
    # One field already exists (another store's bridge made it): read, not created again.
    from sandbox.ortto import engine as emulated

    emulated.custom_field_create(Instance.objects.get(name="acme-us"),
                                 {"type": "integer", "name": mapping.CUSTOM_FIELDS["order_count"][0]})

    store = make_store("ctr1", name="Contract", access_token=install.access_token)
    make_connection(store, make_account(api_key=US_KEY), merge_strategy=2)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
    run = sync_run_execute(run_id=run.pk)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary

    assert PEOPLE_ENDPOINTS <= {e.path for e in recorder.exchanges} <= set(ENDPOINTS)
    assert recorder.violations() == []
    assert len(recorder.calls("/v1/person/custom-field/create")) == len(mapping.CUSTOM_FIELDS) - 1


# --- 4. the emulator's refusals ---------------------------------------------------------------------------

urlpatterns = [path("sandbox/ortto/", include("sandbox.ortto.urls"))]


@pytest.fixture
def emulator(db, settings):
    settings.ROOT_URLCONF = __name__
    return {i.name: i for i in seed_ortto_instances()}


def api(client, endpoint, body, *, key=US_KEY):
    response = client.post(f"/sandbox/ortto/default/v1/{endpoint}", data=json.dumps(body),
                           content_type="application/json", headers={"X-Api-Key": key} if key else {})
    return response.status_code, response.json()


REFUSED = [
    # (endpoint, body the contract forbids, why)
    ("definitions/activity/create", {"name": "Placed order", "icon_id": "money-illustration"}, "icon id"),
    ("definitions/activity/create", {"name": "Placed order"}, "no icon id"),
    ("person/merge", {"people": [{"fields": {"str::email": f"p{i}@x.io"}} for i in range(101)]}, "101 people"),
    ("person/merge", {"people": [{"fields": {"str::email": "a@x.io"}}], "merge_by": ["str::email"] * 4}, "merge_by"),
    ("person/merge", {"people": [{"fields": {"str::email": "a@x.io", "phn::phone": {"phone": "5551234567x"}}}]},
     "phone"),
    ("person/merge", {"people": [{"fields": {"str::email": "a@x.io", "phn::phone": {"c": "+1", "n": "555"}}}]},
     "phone parts"),
    ("person/merge", {"people": [{"fields": {"str::email": "a@x.io", "str::first": "x" * 256}}]}, "string length"),
    ("person/merge", {"people": [{"fields": {"str::email": "not-an-email"}}]}, "email"),
    ("person/custom-field/create", {"name": "Colour", "type": "colour"}, "field type"),
]


@pytest.mark.parametrize("endpoint, body, why", REFUSED, ids=[r[2] for r in REFUSED])
def test_the_emulator_refuses_what_the_contract_forbids(client, emulator, endpoint, body, why):
    schema_name = ENDPOINTS["/v1/" + endpoint]
    assert request_problems(schema_name, body), f"the contract should forbid: {why}"
    status, answer = api(client, endpoint, body)
    assert status == 400, answer
    assert response_problems(schema_name, status, answer) == []


@pytest.mark.parametrize("duplicate_status", [409, 400])
def test_duplicates_answer_the_configured_status_in_ortto_error_shape(client, emulator, duplicate_status):
    services.instance_set_contract(emulator["acme-us"], duplicate_status=duplicate_status)
    body = {"name": "Job Title", "type": "text"}
    assert api(client, "person/custom-field/create", body)[0] == 200
    status, answer = api(client, "person/custom-field/create", body)
    assert status == duplicate_status and "already exists" in answer["error"]
    assert response_problems("custom-field-create", status, answer) == []
    definition = mapping.placed_order_definition()
    assert api(client, "definitions/activity/create", definition)[0] == 200
    status, answer = api(client, "definitions/activity/create", definition)
    assert status == duplicate_status
    assert response_problems("activity-definition-create", status, answer) == []


def test_key_account_and_endpoint_errors_have_ortto_error_shape(client, emulator):
    merge = {"people": [{"fields": {"str::email": "a@x.io"}}]}
    status, answer = api(client, "person/merge", merge, key="wrong-key")
    assert status == 401 and response_problems("person-merge", status, answer) == []
    services.instance_set_contract(emulator["acme-us"], expired=True)
    status, answer = api(client, "person/merge", merge)
    assert status == 403 and response_problems("person-merge", status, answer) == []
    services.instance_set_contract(emulator["acme-us"], expired=False)
    status, answer = api(client, "person/nope", merge)
    assert status == 404 and response_problems("person-merge", status, answer) == []
    services.instance_set_rate_limit(emulator["acme-us"], per_second=1)
    api(client, "person/merge", merge)
    status, answer = api(client, "person/merge", merge)
    assert status == 429 and response_problems("person-merge", status, answer) == []


def test_every_emulator_success_fits_the_response_schemas(client, emulator):
    definition = mapping.placed_order_definition()
    checks = [
        ("person/custom-field/create", {"name": "BigCommerce order count", "type": "integer"}),
        ("person/custom-field/get", {}),
        ("definitions/activity/create", definition),
        ("person/merge", {"people": [{"fields": {"str::email": "a@x.io", "bol::p": False}},
                                     {"fields": {"str::email": "bad"}}], "merge_strategy": 1}),
        ("activities/create", {"activities": [
            records.order_activity(order=ORDER, email="a@x.io", store_hash="abc123", store_name="Acme")],
            "merge_by": ["str::email"]}),
    ]
    for endpoint, body in checks:
        status, answer = api(client, endpoint, body)
        assert status == 200, (endpoint, answer)
        assert response_problems(ENDPOINTS["/v1/" + endpoint], status, answer) == [], endpoint
