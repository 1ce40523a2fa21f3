"""The emulated Ortto's organization pages: list, search, one organization with its fields and people."""

import json

import pytest
from django.urls import include, path

from sandbox.ortto.seed import seed_existing_people, seed_ortto_instances

urlpatterns = [path("sandbox/ortto/", include("sandbox.ortto.urls"))]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

KEY = "sbx-default-acmeus-0001"


def api(client, endpoint, body, method="post"):
    response = getattr(client, method)(f"/sandbox/ortto/default/v1/{endpoint}", data=json.dumps(body),
                                       content_type="application/json", headers={"X-Api-Key": KEY})
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def organization(client):
    seed_ortto_instances()
    people = seed_existing_people("acme-us", [{"email": "ana@acme.test", "first": "Ana"},
                                              {"email": "ben@acme.test", "first": "<b>Ben</b>"}])
    api(client, "accounts/custom-field/create", {"name": "Total spent", "type": "currency"})
    [account] = api(client, "accounts/merge", {"accounts": [{"fields": {
        "str:o:name": "Acme <i>Ltd</i> 🚲", "str:o:website": "acme.test", "geo:o:city": {"name": "Austin"},
        "int:oc:total-spent": 123450}}], "merge_by": ["str:o:name"]})["accounts"]
    api(client, "accounts/contacts/add", {"inclusion_ids": [people[0].person_id], "account_id": account["account_id"]},
        method="put")
    return account["account_id"], people


def test_organizations_list_and_search(client, organization):
    page = client.get("/sandbox/ortto/app/acme-us/organizations/").content.decode()
    assert "Acme &lt;i&gt;Ltd&lt;/i&gt; 🚲" in page and "acme.test" in page and "Austin" in page
    assert "1 organizations" in page
    assert "No organizations match" in client.get("/sandbox/ortto/app/acme-us/organizations/", {"q": "zzz"}).content.decode()
    assert "acme.test" in client.get("/sandbox/ortto/app/acme-us/organizations/", {"q": "acme"}).content.decode()


def test_an_organization_shows_its_fields_and_its_people_only(client, organization):
    account_id, people = organization
    page = client.get(f"/sandbox/ortto/app/acme-us/organizations/{account_id}/").content.decode()
    assert "ana@acme.test" in page and "ben@acme.test" not in page
    assert "123.45" in page and "Total spent" in page and "str:o:website" in page
    person = client.get(f"/sandbox/ortto/app/acme-us/people/{people[0].person_id}/").content.decode()
    assert f"/organizations/{account_id}/" in person
    assert client.get("/sandbox/ortto/app/acme-us/organizations/nope/").status_code == 404
