"""The emulated Ortto API: merge strategies, email permission defaults, limits, keys, faults, activities."""

import base64
import json

import pytest
from django.urls import include, path

from sandbox.ortto import guard, services
from sandbox.ortto.models import Instance, Person, PersonActivity, RateWindow, RequestLog
from sandbox.ortto.seed import seed_existing_people, seed_ortto_instances, tracking_key

# The sandbox mounted exactly as ortto_bridge/urls.py mounts it, without the rest of the project.
urlpatterns = [path("sandbox/ortto/", include("sandbox.ortto.urls"))]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

US_KEY = "sbx-default-acmeus-0001"
EU_KEY = "sbx-eu-acmeeu-0002"


@pytest.fixture(autouse=True)
def instances():
    return {i.name: i for i in seed_ortto_instances()}


def call(client, endpoint, body, *, key=US_KEY, region="default"):
    headers = {"X-Api-Key": key} if key else {}
    return client.post(
        f"/sandbox/ortto/{region}/v1/{endpoint}", data=json.dumps(body), content_type="application/json",
        headers=headers,
    )


def merge(client, people, **options):
    return call(client, "person/merge", {"people": [{"fields": f} for f in people], **options})


def person(email, instance="acme-us"):
    return Person.objects.get(instance__name=instance, email=email.lower())


def feed(p):
    return [(a.activity_id, a.attributes.get("reason")) for a in p.activities.order_by("created_at", "id")]


# --- creating people ------------------------------------------------------------------------------------


def test_new_person_is_subscribed_by_default_with_the_api_reason(client):
    response = merge(client, [{"str::email": "New@Example.com", "str::first": "Nia"}], merge_strategy=1)
    assert response.status_code == 200
    [result] = response.json()["people"]
    assert result["status"] == "created"
    assert len(result["person_id"]) == 24 and int(result["person_id"], 16) >= 0
    p = person("new@example.com")
    assert p.person_id == result["person_id"]
    assert p.fields["bol::p"] is True
    assert p.fields["str::s-ctx"] == "Subscribed via API"
    assert p.fields["bol::sp"] is False
    assert p.email_permission is True
    assert feed(p) == [("subscribed", "Subscribed via API")]


def test_new_person_sent_unsubscribed_keeps_the_reason_on_the_feed(client):
    merge(client, [{"str::email": "no@example.com", "bol::p": False, "str::u-ctx": "Did not tick the newsletter box"}])
    p = person("no@example.com")
    assert p.fields["bol::p"] is False
    assert p.email_permission is False
    assert feed(p) == [("unsubscribed", "Did not tick the newsletter box")]


def test_unsubscribed_without_reason_gets_ortto_default_reason(client):
    merge(client, [{"str::email": "no@example.com", "bol::p": False}])
    assert feed(person("no@example.com")) == [("unsubscribed", "Unsubscribed via API")]


def test_statuses_come_back_one_per_input_in_order(client):
    seed_existing_people("acme-us", [{"email": "old@example.com", "subscribed": True}])
    response = merge(
        client,
        [{"str::email": "a@example.com"}, {"str::email": "OLD@example.com"}, {"str::email": "a@example.com"}],
        merge_strategy=2,
    )
    people = response.json()["people"]
    assert [p["status"] for p in people] == ["created", "merged", "merged"]
    assert people[0]["person_id"] == people[2]["person_id"]
    assert people[1]["person_id"] == person("old@example.com").person_id
    assert Person.objects.filter(instance__name="acme-us").count() == 2


# --- the three merge strategies ----------------------------------------------------------------------------


@pytest.fixture
def existing():
    [p] = seed_existing_people(
        "acme-us",
        [{"fields": {"str::email": "sam@example.com", "str::first": "Sam", "geo::city": {"name": "Denver"},
                     "bol::p": True, "str::s-ctx": "Signed up in store"}}],
    )
    return p


def test_append_only_fills_empty_fields_and_never_changes_permission(client, existing):
    response = merge(
        client,
        [{"str::email": "sam@example.com", "str::first": "Samuel", "str::last": "Lee", "bol::p": False,
          "str::u-ctx": "unticked"}],
        merge_strategy=1,
    )
    assert response.json()["people"] == [{"person_id": existing.person_id, "status": "merged"}]
    p = person("sam@example.com")
    assert p.fields["str::first"] == "Sam"
    assert p.fields["str::last"] == "Lee"
    assert p.fields["bol::p"] is True
    assert feed(p) == [("subscribed", "Signed up in store")]


def test_overwrite_replaces_given_fields_clears_nulls_and_leaves_others(client, existing):
    response = merge(
        client,
        [{"str::email": "sam@example.com", "str::first": "Samuel", "geo::city": None, "bol::p": False,
          "str::u-ctx": "Opted out at checkout"}],
        merge_strategy=2,
    )
    assert response.json()["people"][0]["status"] == "merged"
    p = person("sam@example.com")
    assert p.fields["str::first"] == "Samuel"
    assert "geo::city" not in p.fields
    assert p.fields["str::s-ctx"] == "Signed up in store"
    assert p.fields["bol::p"] is False and p.email_permission is False
    assert feed(p) == [("subscribed", "Signed up in store"), ("unsubscribed", "Opted out at checkout")]


def test_overwrite_is_the_default_strategy(client, existing):
    merge(client, [{"str::email": "sam@example.com", "str::first": "Samuel"}])
    assert person("sam@example.com").fields["str::first"] == "Samuel"


def test_overwrite_resubscribe_records_a_subscribed_entry(client):
    seed_existing_people("acme-us", [{"email": "u@example.com", "subscribed": False, "reason": "footer link"}])
    merge(client, [{"str::email": "u@example.com", "bol::p": True, "str::s-ctx": "Ticked at checkout"}])
    assert feed(person("u@example.com")) == [("unsubscribed", "footer link"), ("subscribed", "Ticked at checkout")]


def test_overwrite_without_permission_change_adds_no_feed_entry(client, existing):
    merge(client, [{"str::email": "sam@example.com", "bol::p": True}], merge_strategy=2)
    assert len(feed(person("sam@example.com"))) == 1


def test_ignore_never_changes_existing_but_creates_new_with_every_field(client, existing):
    response = merge(
        client,
        [{"str::email": "sam@example.com", "str::first": "X", "bol::p": False},
         {"str::email": "fresh@example.com", "str::first": "Fay", "bol::p": False, "str::u-ctx": "unticked"}],
        merge_strategy=3,
    )
    assert [p["status"] for p in response.json()["people"]] == ["merged", "created"]
    sam = person("sam@example.com")
    assert sam.fields["str::first"] == "Sam" and sam.fields["bol::p"] is True
    fay = person("fresh@example.com")
    assert fay.fields["str::first"] == "Fay" and fay.fields["bol::p"] is False
    assert feed(fay) == [("unsubscribed", "unticked")]


def test_skip_non_existing_only_updates(client, existing):
    response = merge(
        client, [{"str::email": "sam@example.com", "str::last": "L"}, {"str::email": "nobody@example.com"}],
        skip_non_existing=True,
    )
    assert [p["status"] for p in response.json()["people"]] == ["merged", "ignored"]
    assert not Person.objects.filter(email="nobody@example.com").exists()


def test_merge_by_external_id_then_email(client, existing):
    response = merge(
        client, [{"str::ei": "cust-1", "str::email": "sam@example.com", "str::last": "Lee"}],
        merge_by=["str::ei", "str::email"],
    )
    assert response.json()["people"][0] == {"person_id": existing.person_id, "status": "merged"}
    assert person("sam@example.com").external_id == "cust-1"


def test_merge_by_person_id_can_change_the_email(client, existing):
    response = merge(client, [{"str::person_id": existing.person_id, "str::email": "sam.new@example.com"}],
                     merge_by=["str::person_id"])
    assert response.json()["people"] == [{"person_id": existing.person_id, "status": "merged"}]
    assert Person.objects.get(pk=existing.pk).email == "sam.new@example.com"


def test_person_id_must_be_the_only_merge_key(client):
    assert merge(client, [{"str::email": "a@example.com"}], merge_by=["str::person_id", "str::email"]).status_code == 400


def test_find_strategy_1_uses_next_key_only_when_previous_is_empty(client, existing):
    # ei is given but unknown: with find_strategy 1 the email is not tried, so a new person is created...
    # ...which collides with the existing email and is refused rather than silently duplicated.
    response = merge(client, [{"str::ei": "zzz", "str::email": "sam@example.com"}],
                     merge_by=["str::ei", "str::email"], find_strategy=1)
    assert response.status_code == 400
    # ei empty: the email is used.
    response = merge(client, [{"str::email": "sam@example.com", "str::last": "Lee"}],
                     merge_by=["str::ei", "str::email"], find_strategy=1)
    assert response.json()["people"][0] == {"person_id": existing.person_id, "status": "merged"}


def test_merge_by_custom_field(client):
    call(client, "person/custom-field/create", {"type": "text", "name": "BigCommerce customer ID"})
    fid = "str:cm:bigcommerce-customer-id"
    first = merge(client, [{fid: "42", "str::email": "c@example.com"}], merge_by=[fid]).json()["people"][0]
    second = merge(client, [{fid: "42", "str::email": "c@example.com", "str::first": "C"}],
                   merge_by=[fid]).json()["people"][0]
    assert (first["status"], second["status"]) == ("created", "merged")
    assert first["person_id"] == second["person_id"]


def test_tags_are_added_and_removed(client):
    call(client, "person/merge", {"people": [{"fields": {"str::email": "t@example.com"}, "tags": ["a", "b"]}]})
    call(client, "person/merge", {"people": [{"fields": {"str::email": "t@example.com"}, "tags": ["c"],
                                              "unset_tags": ["a"]}]})
    assert person("t@example.com").tags == ["b", "c"]


# --- validation and limits ------------------------------------------------------------------------------


def test_101_people_is_a_400_with_ortto_error_shape(client):
    response = merge(client, [{"str::email": f"p{i}@example.com"} for i in range(101)])
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 400 and "100" in body["error"] and body["request_id"]
    assert not Person.objects.exists()


def test_empty_people_is_a_400(client):
    assert merge(client, []).status_code == 400


def test_unknown_field_makes_only_that_person_invalid(client):
    response = merge(client, [{"str::email": "ok@example.com"}, {"str::email": "bad@example.com", "str::nope": "x"}])
    assert response.status_code == 200
    ok, bad = response.json()["people"]
    assert ok["status"] == "created"
    assert bad == {"status": "invalid",
                   "error": "failed to validate field str::nope in schema: str::nope: Object not found"}
    assert not Person.objects.filter(email="bad@example.com").exists()


def test_all_invalid_is_a_400_with_details(client):
    response = merge(client, [{"str::email": "bad@example.com", "str:cm:missing": "x"}])
    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith("No valid contacts provided (failed to validate field str:cm:missing")
    assert body["details"] == [{"status": "invalid", "error": body["details"][0]["error"]}]
    assert "Object not found" in body["details"][0]["error"]


def test_string_longer_than_255_is_invalid(client):
    response = merge(client, [{"str::email": "long@example.com", "str::first": "x" * 256}])
    assert response.status_code == 400
    assert response.json()["details"][0]["status"] == "invalid"


def test_wrong_value_types_are_invalid(client):
    people = merge(client, [{"str::email": "a@example.com", "bol::p": "yes"},
                            {"str::email": "b@example.com", "geo::city": "Denver"},
                            {"str::email": "c@example.com", "geo::city": {"name": "Denver"}}]).json()["people"]
    assert [p["status"] for p in people] == ["invalid", "invalid", "created"]


def test_suppressed_email_is_not_created(client, instances):
    services.instance_set_suppressed(instances["acme-us"], emails=["Blocked@example.com"])
    response = merge(client, [{"str::email": "blocked@example.com"}], suppression_list_field_id="str::email")
    assert response.status_code == 400
    assert response.json()["details"][0] == {"status": "suppressed", "error": "Email is suppressed"}


# --- custom fields --------------------------------------------------------------------------------------


def test_custom_fields_create_get_and_conflict(client):
    response = call(client, "person/custom-field/create", {"type": "decimal", "name": "Total spent"})
    assert response.status_code == 200
    assert response.json() == {"name": "Total spent", "field_id": "int:cm:total-spent", "display_type": "decimal"}
    assert call(client, "person/custom-field/create", {"type": "decimal", "name": "Total spent"}).status_code == 409
    call(client, "person/custom-field/create", {"type": "date", "name": "Last order date"})
    fields = call(client, "person/custom-field/get", {}).json()["fields"]
    assert [f["field"]["id"] for f in fields] == ["int:cm:total-spent", "dtz:cm:last-order-date"]
    assert fields[0] == {"field": {"id": "int:cm:total-spent", "name": "Total spent", "display_type": "decimal",
                                   "liquid_name": "people.custom.total-spent"}, "tracked_value": False}
    created = merge(client, [{"str::email": "x@example.com", "int:cm:total-spent": 45600}]).json()["people"][0]
    assert created["status"] == "created"


def test_custom_field_with_unknown_type_is_400(client):
    assert call(client, "person/custom-field/create", {"type": "banana", "name": "X"}).status_code == 400


# --- keys and regions ---------------------------------------------------------------------------------


def test_key_only_works_on_its_own_region(client):
    assert call(client, "person/custom-field/get", {}, key=EU_KEY, region="eu").status_code == 200
    response = call(client, "person/custom-field/get", {}, key=EU_KEY, region="default")
    assert response.status_code == 401
    assert response.json()["code"] == 401 and response.json()["error"]
    assert call(client, "person/custom-field/get", {}, key=US_KEY, region="au").status_code == 401


def test_missing_or_unknown_key_is_401(client):
    assert call(client, "person/custom-field/get", {}, key=None).status_code == 401
    assert call(client, "person/custom-field/get", {}, key="nope").status_code == 401


def test_unknown_region_or_endpoint_is_404(client):
    assert call(client, "person/custom-field/get", {}, region="mars").status_code == 404
    assert call(client, "person/explode", {}).status_code == 404
    assert client.get("/sandbox/ortto/default/v1/person/get", headers={"X-Api-Key": US_KEY}).status_code == 404


def test_revoked_key_is_401_until_reconnected(client):
    assert client.post("/sandbox/ortto/control/acme-us/revoke").json() == {"revoked": True}
    assert call(client, "person/custom-field/get", {}).status_code == 401
    assert client.post("/sandbox/ortto/control/acme-us/revoke").json() == {"revoked": False}
    assert call(client, "person/custom-field/get", {}).status_code == 200


# --- throttling and faults ------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_ortto_body(client):
    client.post("/sandbox/ortto/control/acme-us/rate", data={"per_second": 1}, content_type="application/json")
    statuses = []
    for _ in range(5):
        response = call(client, "person/custom-field/get", {})
        statuses.append(response.status_code)
        if response.status_code == 429:
            body = response.json()
    assert statuses.count(429) >= 3
    assert body["error"]["code"] == "rate-limit" and body["error"]["message"] == "rate limit"
    assert 0 < body["error"]["try-in-seconds"] <= 1


def test_throttle_window_arithmetic(instances):
    us = instances["acme-us"]
    services.instance_set_rate_limit(us, per_second=2)
    assert guard.throttle(us, now=1000.25) is None
    assert guard.throttle(us, now=1000.5) is None
    assert guard.throttle(us, now=1000.71) == 0.3
    assert guard.throttle(us, now=1001.0) is None  # a new second


def test_throttle_counts_the_arrival_second_and_not_rejected_requests(instances):
    us = instances["acme-us"]
    services.instance_set_rate_limit(us, per_second=2)
    assert guard.throttle(us, now=1000.2) is None
    # Sent (and arrived) within second 1000 but handled in 1001 on a busy box: it counts for 1000.
    assert guard.throttle(us, now=1001.3, arrived=1000.9) is None
    assert guard.throttle(us, now=1001.35, arrived=1000.95) == 0.1  # 1000 is full; its end has passed
    assert guard.throttle(us, now=1001.4) is None
    assert guard.throttle(us, now=1001.5) is None
    windows = dict(RateWindow.objects.filter(instance=us).values_list("second", "count"))
    assert windows == {1000: 2, 1001: 2}  # the 429 was not counted


def test_fail_next_requests_then_recover(client):
    client.post("/sandbox/ortto/control/acme-us/faults", data={"fail_next": {"count": 2, "status": 503}},
                content_type="application/json")
    statuses = [call(client, "person/custom-field/get", {}).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    stats = client.get("/sandbox/ortto/control/acme-us/stats").json()
    assert stats["requests_by_endpoint"]["person/custom-field/get"]["by_status"] == {"503": 2, "200": 1}


def test_forced_429_has_the_rate_limit_body(client, instances):
    services.instance_fail_next(instances["acme-us"], count=1, status=429)
    response = call(client, "person/custom-field/get", {})
    assert response.status_code == 429 and response.json()["error"]["try-in-seconds"] == 1


def test_random_500_fault(client, instances):
    services.instance_set_faults(instances["acme-us"], p500=1.0)
    assert call(client, "person/custom-field/get", {}).status_code == 500
    services.instance_set_faults(instances["acme-us"], clear=True)
    assert call(client, "person/custom-field/get", {}).status_code == 200


def test_timeout_fault_sleeps_then_answers_504(client, instances):
    services.instance_set_faults(instances["acme-us"], ptimeout=1.0, timeout_seconds=0.05)
    assert call(client, "person/custom-field/get", {}).status_code == 504


# --- activities -----------------------------------------------------------------------------------------


@pytest.fixture
def placed_order(client):
    response = call(client, "definitions/activity/create", {
        "name": "Placed order", "icon_id": "moneys-illustration-icon", "track_conversion_value": True,
        "display_style": {"type": "activity_attribute", "title": "Placed order", "attribute_name": "Order ID",
                          "attribute_field_id": "int:cm:order-id"},
        "attributes": [{"name": "Order ID", "display_type": "integer"},
                       {"name": "Total", "display_type": "decimal"},
                       {"name": "Currency", "display_type": "text"}],
    })
    assert response.status_code == 200
    return response.json()["custom_activity"]


def order(email, order_id=123, **extra):
    return {"activity_id": "act:cm:placed-order",
            "attributes": {"int:cm:order-id": order_id, "int:cm:total": 45600, "str:cm:currency": "USD"},
            "fields": {"str::email": email}, **extra}


def test_activity_definition_create_and_conflict(client, placed_order):
    assert placed_order["activity_field_id"] == "act:cm:placed-order"
    assert [a["field_id"] for a in placed_order["attributes"]] == ["int:cm:order-id", "int:cm:total",
                                                                    "str:cm:currency"]
    again = call(client, "definitions/activity/create", {"name": "Placed order", "icon_id": "moneys-illustration-icon"})
    assert again.status_code == 409


def test_activity_for_unknown_person_creates_them_subscribed(client, placed_order):
    response = call(client, "activities/create", {"activities": [order("guest@example.com")],
                                                  "merge_by": ["str::email"]})
    assert response.status_code == 200
    [result] = response.json()["activities"]
    assert result["status"] == "ingested" and result["person_status"] == "created"
    p = person("guest@example.com")
    assert result["person_id"] == p.person_id
    assert p.fields["bol::p"] is True
    assert feed(p) == [("subscribed", "Subscribed via API"), ("act:cm:placed-order", None)]


def test_activity_for_existing_person_updates_without_touching_permission(client, placed_order):
    seed_existing_people("acme-us", [{"email": "u@example.com", "subscribed": False, "reason": "no"}])
    result = call(client, "activities/create", {"activities": [order("U@example.com")]}).json()["activities"][0]
    assert result["person_status"] == "updated"
    assert person("u@example.com").fields["bol::p"] is False


def test_activity_fields_can_create_an_unsubscribed_person(client, placed_order):
    item = order("x@example.com")
    item["fields"].update({"bol::p": False, "str::u-ctx": "Did not opt in"})
    call(client, "activities/create", {"activities": [item]})
    assert feed(person("x@example.com"))[0] == ("unsubscribed", "Did not opt in")


def test_activity_key_deduplicates(client, placed_order):
    body = {"activities": [order("k@example.com", key="order-123"), order("k@example.com", key="order-123")]}
    first = call(client, "activities/create", body).json()["activities"]
    second = call(client, "activities/create", body).json()["activities"]
    assert [a["status"] for a in first + second] == ["ingested"] * 4
    assert PersonActivity.objects.filter(activity_id="act:cm:placed-order").count() == 1
    call(client, "activities/create", {"activities": [order("k@example.com", key="order-124")]})
    assert PersonActivity.objects.filter(activity_id="act:cm:placed-order").count() == 2


def test_activity_backdated_created(client, placed_order):
    call(client, "activities/create", {"activities": [order("b@example.com", created="2024-03-01T10:00:00Z")]})
    activity = PersonActivity.objects.get(activity_id="act:cm:placed-order")
    assert activity.created_at.isoformat() == "2024-03-01T10:00:00+00:00"


def test_activity_by_person_id(client, placed_order):
    [p] = seed_existing_people("acme-us", [{"email": "pid@example.com"}])
    item = {"activity_id": "act:cm:placed-order", "attributes": {}, "person_id": p.person_id}
    result = call(client, "activities/create", {"activities": [item]}).json()["activities"][0]
    assert result == {"person_id": p.person_id, "status": "ingested", "person_status": "updated"}


def test_activity_without_definition_or_with_too_many_attributes_is_invalid(client, placed_order):
    too_many = order("a@example.com")
    too_many["attributes"] = {f"str:cm:a{i}": "x" for i in range(16)}
    unknown = {"activity_id": "act:cm:nope", "attributes": {}, "fields": {"str::email": "a@example.com"}}
    response = call(client, "activities/create", {"activities": [order("a@example.com"), too_many, unknown]})
    assert [a["status"] for a in response.json()["activities"]] == ["ingested", "invalid", "invalid"]
    assert call(client, "activities/create", {"activities": [unknown]}).status_code == 400


def test_101_activities_is_a_400(client, placed_order):
    response = call(client, "activities/create", {"activities": [order(f"a{i}@example.com") for i in range(101)]})
    assert response.status_code == 400
    assert not Person.objects.exists()


def test_async_activities_answer_queued(client, placed_order):
    result = call(client, "activities/create", {"activities": [order("q@example.com")], "async": True})
    assert result.json()["activities"][0]["status"] == "queued"


# --- lookups, stats, seeding, efficiency -----------------------------------------------------------------


def test_person_get_by_email_filter(client):
    merge(client, [{"str::email": "find.me@example.com", "str::first": "Fi"}, {"str::email": "other@example.com"}])
    response = call(client, "person/get", {
        "limit": 10, "offset": 0, "fields": ["str::email", "str::first", "bol::p"],
        "filter": {"$str::is": {"field_id": "str::email", "value": "Find.Me@example.com"}},
    })
    body = response.json()
    assert response.status_code == 200
    assert body["has_more"] is False
    [contact] = body["contacts"]
    assert contact["fields"] == {"str::email": "find.me@example.com", "str::first": "Fi", "bol::p": True}
    assert contact["id"] == person("find.me@example.com").person_id


def test_person_get_pages(client):
    merge(client, [{"str::email": f"p{i}@example.com"} for i in range(5)])
    body = call(client, "person/get", {"limit": 2, "offset": 2}).json()
    assert len(body["contacts"]) == 2 and body["has_more"] is True and body["next_offset"] == 4
    assert body["meta"]["total_contacts"] == 5


def test_stats_and_reset(client, placed_order):
    merge(client, [{"str::email": "s1@example.com"}, {"str::email": "s2@example.com", "bol::p": False}])
    call(client, "activities/create", {"activities": [order("s1@example.com")]})
    stats = client.get("/sandbox/ortto/control/acme-us/stats").json()
    assert (stats["people"], stats["subscribed"], stats["unsubscribed"]) == (2, 1, 1)
    assert stats["activities_by_id"]["act:cm:placed-order"] == 1
    assert stats["requests_by_endpoint"]["person/merge"]["people"] == 2
    assert stats["requests_by_endpoint"]["activities/create"]["activities"] == 1
    after = client.post("/sandbox/ortto/control/acme-us/reset").json()
    assert after["people"] == 0 and after["activities"] == 0 and after["requests"] == 0
    assert after["activity_definitions"] == ["act:cm:placed-order"]


def test_control_people_seeds_existing_people(client):
    response = client.post("/sandbox/ortto/control/acme-eu/people", content_type="application/json",
                           data={"people": [{"email": "e@example.com", "subscribed": False, "reason": "r"}]})
    assert response.status_code == 200
    assert person("e@example.com", "acme-eu").email_permission is False


def test_seed_is_idempotent_and_tracking_keys_carry_the_instance_name():
    seed_ortto_instances()
    assert Instance.objects.count() == 3
    eu = Instance.objects.get(name="acme-eu")
    assert (eu.business_name, eu.region, eu.api_key) == ("Acme Outdoor (EU)", "eu", EU_KEY)
    raw = base64.urlsafe_b64decode(eu.tracking_key + "=" * (-len(eu.tracking_key) % 4))
    assert raw[12:] == b"acme-eu" and eu.tracking_key == tracking_key("acme-eu")
    seed_existing_people("acme-us")
    seed_existing_people("acme-us")
    assert Person.objects.filter(instance__name="acme-us").count() == 2


def test_merging_100_people_takes_a_handful_of_queries(client, django_assert_max_num_queries):
    seed_existing_people("acme-us", [{"email": f"p{i}@example.com"} for i in range(0, 100, 2)])
    people = [{"str::email": f"p{i}@example.com", "str::first": f"P{i}"} for i in range(100)]
    with django_assert_max_num_queries(20):
        response = merge(client, people, merge_strategy=2)
    statuses = [p["status"] for p in response.json()["people"]]
    assert statuses.count("created") == 50 and statuses.count("merged") == 50
    assert Person.objects.filter(instance__name="acme-us").count() == 100
    assert RequestLog.objects.filter(path="person/merge", status=200).count() == 1


# --- the contract's limits (docs/ortto-contract.md) ----------------------------------------------------------


def test_synchronous_merges_beyond_the_concurrency_limit_answer_429(client, instances):
    import time

    from sandbox.ortto.models import InFlightMerge

    acme = instances["acme-us"]
    services.instance_set_contract(acme, merge_concurrency_limit=1)
    busy = InFlightMerge.objects.create(instance=acme, started_at=time.time())  # another merge in flight
    response = merge(client, [{"str::email": "a@x.io"}])
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "concurrency-limit"
    assert merge(client, [{"str::email": "a@x.io"}], **{"async": True}).status_code == 200, "async is not limited"
    busy.delete()
    assert merge(client, [{"str::email": "b@x.io"}]).status_code == 200
    assert not InFlightMerge.objects.exists(), "a finished merge frees its slot"


def test_fifteen_bad_requests_in_fifteen_seconds_ban_the_ip(client, instances):
    for _ in range(guard.BAN_STRIKES):
        assert call(client, "person/merge", {"people": []}).status_code == 400
    banned = merge(client, [{"str::email": "a@x.io"}])
    assert banned.status_code == 429 and banned.json()["error"]["code"] == "ip-banned"
    assert 0 < banned.json()["error"]["try-in-seconds"] <= guard.BAN_SECONDS


def test_the_ban_window_slides():
    from sandbox.ortto.models import IpStrikes

    for second in range(guard.BAN_STRIKES - 1):
        guard.ip_strike("10.0.0.1", now=1000.0 + second)
    assert guard.ip_banned("10.0.0.1", now=1014.5) is None
    guard.ip_strike("10.0.0.1", now=1020.0)  # the first strikes have left the window
    assert guard.ip_banned("10.0.0.1", now=1020.5) is None
    for second in range(guard.BAN_STRIKES):
        guard.ip_strike("10.0.0.2", now=2000.0 + second / 10)
    assert guard.ip_banned("10.0.0.2", now=2002.0) == pytest.approx(2001.4 + guard.BAN_SECONDS - 2002.0)
    assert IpStrikes.objects.get(ip="10.0.0.2").strikes == []


def test_an_expired_account_answers_403_on_every_call(client, instances):
    services.instance_set_contract(instances["acme-us"], expired=True)
    response = call(client, "person/custom-field/get", {})
    assert response.status_code == 403 and response.json()["code"] == 403


def test_only_50_events_per_activity_per_person_per_day_are_kept(client):
    call(client, "definitions/activity/create", {"name": "Placed order", "icon_id": "moneys-illustration-icon",
                                                 "attributes": [{"name": "Order ID", "display_type": "text"}]})
    activities = [{"activity_id": "act:cm:placed-order", "attributes": {"str:cm:order-id": str(i)},
                   "fields": {"str::email": "heavy@x.io"}} for i in range(60)]
    first = call(client, "activities/create", {"activities": activities[:40]})
    second = call(client, "activities/create", {"activities": activities[40:]})
    assert first.status_code == second.status_code == 200
    assert all(a["status"] == "ingested" for a in second.json()["activities"]), "dropped silently"
    assert PersonActivity.objects.filter(person=person("heavy@x.io"), activity_id="act:cm:placed-order").count() == 50


@pytest.mark.parametrize("mode, status, details", [("per_item", 200, None), ("refuse_with_details", 400, 2),
                                                   ("refuse", 400, None)])
def test_a_batch_with_an_invalid_person_per_batch_errors_mode(client, instances, mode, status, details):
    services.instance_set_contract(instances["acme-us"], batch_errors=mode)
    response = merge(client, [{"str::email": "good@x.io"}, {"str::email": "bad"}])
    assert response.status_code == status
    body = response.json()
    if status == 400:
        assert len(body.get("details") or []) == (details or 0)
        assert not Person.objects.filter(email="good@x.io").exists(), "a refused batch stores nobody"
    else:
        assert [p["status"] for p in body["people"]] == ["created", "invalid"]
