"""The emulated Ortto's people pages: list, search, profile with fields and the activity feed."""

import json

import pytest
from django.urls import include, path

from sandbox.ortto.models import Person
from sandbox.ortto.seed import seed_existing_people, seed_ortto_instances

urlpatterns = [path("sandbox/ortto/", include("sandbox.ortto.urls"))]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

KEY = "sbx-default-acmeus-0001"


def api(client, endpoint, body):
    response = client.post(f"/sandbox/ortto/default/v1/{endpoint}", data=json.dumps(body),
                           content_type="application/json", headers={"X-Api-Key": KEY})
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture(autouse=True)
def instances():
    return seed_ortto_instances()


@pytest.fixture
def shopper(client):
    api(client, "person/custom-field/create", {"type": "text", "name": "BigCommerce customer ID"})
    api(client, "person/custom-field/create", {"type": "decimal", "name": "Total spent"})
    api(client, "definitions/activity/create", {
        "name": "Placed order", "icon_id": "moneys-illustration-icon",
        "attributes": [{"name": "Order ID", "display_type": "integer"}, {"name": "Total", "display_type": "decimal"},
                       {"name": "Currency", "display_type": "text"}],
    })
    api(client, "person/merge", {"people": [{"fields": {
        "str::email": "bold@example.com", "str::first": "<b>Bold</b>", "str::last": "O'Neil",
        "geo::city": {"name": "Denver"}, "phn::phone": {"c": "1", "n": "5551234"},
        "str:cm:bigcommerce-customer-id": "42", "int:cm:total-spent": 45600,
        "bol::p": True, "str::s-ctx": "Ticked the newsletter box at checkout",
    }}]})
    api(client, "activities/create", {"activities": [{
        "activity_id": "act:cm:placed-order", "created": "2024-05-01T12:00:00Z",
        "attributes": {"int:cm:order-id": 123, "int:cm:total": 45600, "str:cm:currency": "USD"},
        "fields": {"str::email": "bold@example.com"},
    }]})
    api(client, "person/merge", {"merge_strategy": 2, "people": [{"fields": {
        "str::email": "bold@example.com", "bol::p": False, "str::u-ctx": "Unsubscribed in store <script>",
    }}]})
    return Person.objects.get(email="bold@example.com")


def test_index_lists_instances(client):
    response = client.get("/sandbox/ortto/")
    assert response.status_code == 200
    for name in ("Acme Outdoor (US)", "Acme Outdoor (EU)", "Acme Outdoor (AU)"):
        assert name in response.content.decode()


def test_app_redirects_to_people(client):
    response = client.get("/sandbox/ortto/app/acme-us/")
    assert response.status_code == 302 and response.url == "/sandbox/ortto/app/acme-us/people/"
    assert client.get("/sandbox/ortto/app/nope/").status_code == 404


def test_people_list_shows_permission_city_and_escapes(client, shopper):
    seed_existing_people("acme-us", [{"email": "sub@example.com", "first": "Sue", "subscribed": True,
                                      "city": "Boise"}])
    html = client.get("/sandbox/ortto/app/acme-us/people/").content.decode()
    assert "Acme Outdoor (US)" in html
    assert "&lt;b&gt;Bold&lt;/b&gt; O&#x27;Neil" in html and "<b>Bold</b>" not in html
    assert "bold@example.com" in html and "Denver" in html and "Boise" in html
    assert '<span class="badge unsub">Unsubscribed</span>' in html
    assert '<span class="badge sub">Subscribed</span>' in html
    assert f"/sandbox/ortto/app/acme-us/people/{shopper.person_id}/" in html


def test_people_search_by_email_and_name(client, shopper):
    seed_existing_people("acme-us", [{"email": "zed@example.com", "first": "Zed"}])
    html = client.get("/sandbox/ortto/app/acme-us/people/", {"q": "ZED"}).content.decode()
    assert "zed@example.com" in html and "bold@example.com" not in html
    html = client.get("/sandbox/ortto/app/acme-us/people/", {"q": "bold@"}).content.decode()
    assert "bold@example.com" in html and "zed@example.com" not in html


def test_people_list_paginates(client, django_assert_max_num_queries):
    seed_existing_people("acme-us", [{"email": f"p{i:03d}@example.com"} for i in range(120)])
    with django_assert_max_num_queries(4):
        first = client.get("/sandbox/ortto/app/acme-us/people/").content.decode()
    assert "120 people" in first and "Page 1 of 3" in first
    third = client.get("/sandbox/ortto/app/acme-us/people/", {"page": 3}).content.decode()
    assert third.count("@example.com</td>") == 20


def test_profile_shows_fields_and_feed_newest_first(client, shopper):
    response = client.get(f"/sandbox/ortto/app/acme-us/people/{shopper.person_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "&lt;b&gt;Bold&lt;/b&gt;" in html and "<b>Bold</b>" not in html
    assert "Unsubscribed in store &lt;script&gt;" in html
    # Friendly names, custom fields included, with values formatted.
    for text in ("First name", "City", "Denver", "BigCommerce customer ID", "42", "Total spent", "45.60",
                 "Email permission", "+1 5551234"):
        assert text in html
    # Newest first: the unsubscribe, then the subscribe at creation, then the back-dated order.
    unsub = html.index("Unsubscribed</span> — ")
    order = html.index("Placed order #123</span> · <span class=\"detail\">45.60 USD")
    sub = html.index("Subscribed</span> — <span class=\"detail\">Ticked the newsletter box at checkout")
    assert unsub < sub < order


def test_unknown_person_is_404(client):
    assert client.get("/sandbox/ortto/app/acme-us/people/000000000000000000000000/").status_code == 404


def test_the_unsubscribe_button_unsubscribes_like_an_emails_link(client):
    api(client, "person/merge", {"people": [{"fields": {"str::email": "sub@example.com", "bol::p": True}}]})
    person = Person.objects.get(email="sub@example.com")
    page = client.get(f"/sandbox/ortto/app/acme-us/people/{person.person_id}/").content.decode()
    assert ">Unsubscribe</button>" in page
    url = f"/sandbox/ortto/app/acme-us/people/{person.person_id}/unsubscribe/"
    assert client.get(url).status_code == 405, "a GET changes nothing"
    assert client.post(url).status_code == 302
    person.refresh_from_db()
    assert person.email_permission is False and person.fields["str::u-ctx"] == "Unsubscribed from an email"
    page = client.get(f"/sandbox/ortto/app/acme-us/people/{person.person_id}/").content.decode()
    assert ">Unsubscribe</button>" not in page and "Unsubscribed from an email" in page
    client.post(url)  # twice: one Unsubscribed line
    assert person.activities.filter(activity_id="unsubscribed").count() == 1


def test_archive_then_delete_as_ortto_documents(client):
    api(client, "person/merge", {"people": [{"fields": {"str::email": "gone@example.com"}}]})
    person_id = Person.objects.get(email="gone@example.com").person_id
    refused = client.delete("/sandbox/ortto/default/v1/person/delete", data=json.dumps({"inclusion_ids": [person_id]}),
                            content_type="application/json", HTTP_X_API_KEY=KEY)
    assert refused.status_code == 400 and Person.objects.filter(person_id=person_id).exists(), "archive first"
    archived = client.put("/sandbox/ortto/default/v1/person/archive", data=json.dumps({"inclusion_ids": [person_id]}),
                          content_type="application/json", HTTP_X_API_KEY=KEY)
    assert archived.status_code == 200 and archived.json() == {"archived_contacts": 1}
    found = api(client, "person/get", {"filter": {"$str::is": {"field_id": "str::email", "value": "gone@example.com"}}})
    assert found["contacts"] == [], "archived people are out of person/get"
    assert api(client, "person/get", {"type": "archived"})["contacts"][0]["id"] == person_id
    deleted = client.delete("/sandbox/ortto/default/v1/person/delete", data=json.dumps({"inclusion_ids": [person_id]}),
                            content_type="application/json", HTTP_X_API_KEY=KEY)
    assert deleted.status_code == 200 and not Person.objects.filter(person_id=person_id).exists()
