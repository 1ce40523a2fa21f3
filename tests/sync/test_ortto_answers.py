"""What Ortto really answers, where the public record is silent or the bridge used to guess (issue 25,
"Ortto's real answers"): every wording of an existing person under Ignore, the attribute ids a definition's
create answers, and icons Ortto may refuse. Ortto mocked at the HTTP level (tests/sync/doubles.py)."""

import json
import re

import pytest
import responses

from sync.engine import activities
from sync.engine.orders import records
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import Connection, PersonLedger, SyncEvent, SyncRun
from sync.ortto.client import OrttoClient, OrttoRequestError
from sync.ortto.schema import ALL_SPECS, ortto_schema_ensure, schema_journey_target

pytestmark = pytest.mark.django_db

BASE = "https://api.ap3api.com"


def run_once(store, kind=SyncRun.Kind.INITIAL):
    run, _ = sync_run_request(store=store, kind=kind)
    return sync_run_execute(run_id=run.pk)


# --- Every merge status of an existing person under Ignore (3) ------------------------------------------


@pytest.mark.parametrize("status", ["merged", "ignored", "unchanged", "none"])
@pytest.mark.parametrize("strategy", [2, 3])
def test_an_existing_person_is_never_failed_nor_merged_twice_whatever_ignore_answers(env, strategy, status):
    """cat exists in Ortto. The creating merge goes out under Ignore (3); whatever Ortto says for her there,
    she is not failed, she is overwritten once under Overwrite (2) and left alone under Ignore (3), and a
    rerun sends nothing."""
    Connection.objects.filter(pk=env.connection.pk).update(merge_strategy=strategy)
    env.ortto.ignore_status = status
    run = run_once(env.store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert run.failed == 0
    assert not SyncEvent.objects.filter(level=SyncEvent.Level.ERROR).exists()
    cat_merges = [(s, p) for s, people in env.ortto.calls for p in people if p["fields"]["str::email"] == "cat@x.io"]
    assert [s for s, _ in cat_merges] == ([3, 2] if strategy == 2 else [3])
    assert env.ortto.people["cat@x.io"]["str::first"] == ("Cat" if strategy == 2 else "Catherine")
    assert env.ortto.people["cat@x.io"]["bol::p"] is True  # never unsubscribed by the bridge (R3)
    row = PersonLedger.objects.get(connection=env.connection, email="cat@x.io")
    assert row.ortto_person_id == "id-cat@x.io" and not row.created_in_ortto

    calls = len(env.ortto.calls)
    again = run_once(env.store, kind=SyncRun.Kind.INCREMENTAL)
    assert again.status == SyncRun.Status.SUCCEEDED and again.failed == 0
    assert len(env.ortto.calls) == calls, "nobody merged a second time"


# --- Attribute ids from the definition's create answer ---------------------------------------------------


def _definition_answer(body, prefixes):
    slug = body["name"].lower().replace(" ", "-")
    return {"custom_activity": {
        "name": body["name"], "activity_field_id": f"act:cm:{slug}", "icon_id": body["icon_id"],
        "attributes": [{"name": a["name"], "display_type": a["display_type"],
                        "field_id": f"{prefixes.get(a['display_type'], 'str')}:cm:{a['name']}",
                        "liquid_name": f"activity.custom.{slug}.{a['name']}"} for a in body["attributes"]]}}


@pytest.fixture
def ortto_schema_http(settings):
    """Ortto's schema calls over mocked HTTP: answers[name] = callable(body) -> (status, json)."""
    settings.ORTTO_API_URL = ""
    answers = {}
    bodies = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        def on_definition(request):
            body = json.loads(request.body)
            bodies.append(body)
            status, payload = answers["definition"](body)
            return status, {}, json.dumps(payload)

        rsps.add_callback(responses.POST, f"{BASE}/v1/definitions/activity/create", callback=on_definition)
        rsps.add(responses.POST, f"{BASE}/v1/person/custom-field/get", json={"fields": []})
        rsps.add_callback(responses.POST, f"{BASE}/v1/person/custom-field/create", callback=lambda r: (
            200, {}, json.dumps({"field_id": "int:cm:" + json.loads(r.body)["name"].lower().replace(" ", "-")})))
        yield answers, bodies


def test_journey_activities_use_the_attribute_ids_ortto_answered(make_account, make_connection, make_store,
                                                                 ortto_schema_http):
    answers, _ = ortto_schema_http
    prefixes = {"text": "str", "integer": "int", "price": "dec", "link": "url"}
    answers["definition"] = lambda body: (200, _definition_answer(body, prefixes))
    connection = make_connection(make_store("att1"), make_account(api_key="key-att"))
    ortto_schema_ensure(connection)

    ordered = records.ordered_product_activities(
        order={"id": 7, "date_created": "Tue, 01 Jul 2025 10:00:00 +0000", "currency_code": "USD",
               "consignments": {"shipping": [{"line_items": [{"id": 1, "product_id": 5, "name": "Mug",
                                                              "quantity": 2, "price_inc_tax": "24.50"}]}]}},
        email="a@x.io", store_hash="att1", store_name="Att",
        **schema_journey_target(connection, activities.ORDERED_PRODUCT))
    assert ordered[0]["attributes"]["dec:cm:price"] == 24500
    assert "int:cm:price" not in ordered[0]["attributes"]
    cart = activities.abandoned_cart_activity(
        cart={"id": "c1", "cart_amount": "10.00", "currency": {"code": "USD"}}, email="a@x.io", store_hash="att1",
        store_name="Att", recovery_url="https://shop.test/cart.php?action=recover&token=t",
        **schema_journey_target(connection, activities.ABANDONED_CART))
    assert cart["attributes"]["url:cm:recovery-url"].endswith("token=t")
    assert cart["attributes"]["dec:cm:cart-value"] == 10000


def test_an_existing_definition_keeps_the_ids_another_connection_was_answered(make_account, make_connection,
                                                                              make_store, ortto_schema_http):
    answers, _ = ortto_schema_http
    prefixes = {"text": "str", "integer": "int", "price": "dec", "link": "url"}
    answers["definition"] = lambda body: (200, _definition_answer(body, prefixes))
    account = make_account(api_key="key-att2")
    first = make_connection(make_store("att2"), account)
    ortto_schema_ensure(first)
    first.delete()  # its store left; the definitions stay in Ortto
    answers["definition"] = lambda body: (409, {"error": f"activity {body['name']} already exists"})
    second = make_connection(make_store("att3"), account)
    ortto_schema_ensure(second)
    target = schema_journey_target(second, activities.REFUNDED_ORDER)
    assert target["attribute_ids"]["refund-amount"] == "dec:cm:refund-amount"


# --- Icons: only recorded ones, and a refused one falls back -------------------------------------------


def test_journey_definitions_use_only_icons_a_recorded_answer_shows():
    for spec in ALL_SPECS:
        assert spec.definition()["icon_id"] in activities.RECORDED_ICONS, spec.name


def test_a_refused_icon_falls_back_to_a_recorded_one_instead_of_failing_the_schema(
        make_account, make_connection, make_store, ortto_schema_http):
    answers, bodies = ortto_schema_http
    accepted = {"moneys-illustration-icon"}

    def definition(body):
        if body["icon_id"] not in accepted:
            return 400, {"code": 400, "error": f"invalid icon_id {body['icon_id']!r}"}
        return 200, _definition_answer(body, {"price": "int", "link": "str", "integer": "int"})

    answers["definition"] = definition
    connection = make_connection(make_store("ico1"), make_account(api_key="key-ico"))
    schema = ortto_schema_ensure(connection)
    assert connection.schema_ready
    assert set(schema["activities"]) == {spec.key for spec in ALL_SPECS}
    created = [b for b in bodies if b["icon_id"] in accepted]
    assert len(created) == 1 + len(ALL_SPECS)  # Placed order and the journeys, each once
    refused = [b["name"] for b in bodies if b["icon_id"] not in accepted]
    assert sorted(refused) == ["Back in stock", "Cancelled order", "Cart recovered", "Fulfilled order",
                               "Viewed product", "Waiting on stock"]  # flag, happy: once each


def test_a_refusal_that_is_not_the_icon_still_fails_after_the_fallbacks(settings):
    settings.ORTTO_API_URL = ""
    client = OrttoClient(api_key="key", region="default")
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, re.compile(f"{BASE}/v1/definitions/activity/create"), status=400,
                 json={"code": 400, "error": "bad attribute"})
        with pytest.raises(OrttoRequestError):
            client.activity_definition_create(activities.FULFILLED_ORDER.definition(),
                                              fallback_icons=activities.FULFILLED_ORDER.fallback_icons())
        assert len(rsps.calls) == len(activities.RECORDED_ICONS)
