"""The emulated Ortto's accounts (formerly organizations): merge by name, strategies, limits, membership."""

import json

import pytest
from django.urls import include, path

from sandbox.ortto import accounts as ortto_accounts
from sandbox.ortto.models import Account, Person
from sandbox.ortto.seed import seed_existing_people, seed_ortto_instances

urlpatterns = [path("sandbox/ortto/", include("sandbox.ortto.urls"))]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

KEY = "sbx-default-acmeus-0001"


@pytest.fixture(autouse=True)
def instances():
    return {i.name: i for i in seed_ortto_instances()}


def call(client, endpoint, body, *, method="post"):
    return getattr(client, method)(f"/sandbox/ortto/default/v1/{endpoint}", data=json.dumps(body),
                                   content_type="application/json", headers={"X-Api-Key": KEY})


def merge(client, accounts, **options):
    return call(client, "accounts/merge", {"accounts": [{"fields": f} for f in accounts],
                                           "merge_by": ["str:o:name"], **options})


def test_merge_creates_then_merges_by_name_with_the_recorded_shape(client):
    first = merge(client, [{"str:o:name": "Acme Ltd", "str:o:website": "acme.test"}], merge_strategy=2)
    assert first.status_code == 200
    [created] = first.json()["accounts"]
    assert created["status"] == "created" and len(created["account_id"]) == 24
    [merged] = merge(client, [{"str:o:name": "Acme Ltd"}], merge_strategy=2).json()["accounts"]
    assert merged == {"account_id": created["account_id"], "status": "merged"}
    assert Account.objects.count() == 1


@pytest.mark.parametrize(("strategy", "website", "city"), [(1, "old.test", "Austin"), (2, "new.test", "Austin"),
                                                           (3, "old.test", None)])
def test_merge_strategies_on_an_existing_account(client, strategy, website, city):
    merge(client, [{"str:o:name": "Acme Ltd", "str:o:website": "old.test"}])
    merge(client, [{"str:o:name": "Acme Ltd", "str:o:website": "new.test", "geo:o:city": {"name": "Austin"}}],
          merge_strategy=strategy)
    account = Account.objects.get()
    assert account.fields["str:o:website"] == website
    assert (account.fields.get("geo:o:city") or {}).get("name") == city


def test_merge_limits_and_invalid_items(client):
    too_many = merge(client, [{"str:o:name": f"Co {i}"} for i in range(101)])
    assert too_many.status_code == 400
    long_name = merge(client, [{"str:o:name": "Z" * 256}, {"str:o:name": "Fine"}])
    bad, good = long_name.json()["accounts"]
    assert bad["status"] == "invalid" and "255" in bad["error"]
    assert good["status"] == "created"
    unknown = merge(client, [{"str:o:name": "X", "str:oc:nope": "1"}])
    assert unknown.status_code == 400 and "Object not found" in unknown.json()["error"]
    assert merge(client, [{"str:o:website": "no-name.test"}]).status_code == 400
    assert call(client, "accounts/merge", {"accounts": [{"fields": {"str:o:name": "A"}}],
                                           "merge_by": ["str::email"]}).status_code == 400


def test_custom_account_fields_use_the_oc_namespace(client):
    answer = call(client, "accounts/custom-field/create", {"name": "Total spent", "type": "currency"})
    assert answer.json() == {"name": "Total spent", "field_id": "int:oc:total-spent", "display_type": "currency"}
    assert call(client, "accounts/custom-field/create", {"name": "Total spent", "type": "currency"}).status_code == 409
    assert merge(client, [{"str:o:name": "A", "int:oc:total-spent": 1000}]).status_code == 200


def test_people_are_added_and_removed_with_put_one_account_per_call(client):
    people = seed_existing_people("acme-us", [{"email": "a@acme.test"}, {"email": "b@acme.test"}])
    [account] = merge(client, [{"str:o:name": "Acme Ltd"}]).json()["accounts"]
    body = {"inclusion_ids": [p.person_id for p in people], "account_id": account["account_id"]}
    assert call(client, "accounts/contacts/add", body).status_code == 404, "Ortto documents PUT"
    added = call(client, "accounts/contacts/add", body, method="put")
    assert added.status_code == 200 and added.json() == {}
    assert call(client, "accounts/contacts/add", body, method="put").status_code == 200, "adding twice is harmless"
    assert Account.objects.get().people.count() == 2
    removed = call(client, "accounts/contacts/remove", {**body, "inclusion_ids": [people[0].person_id]}, method="put")
    assert removed.status_code == 200
    assert [p.email for p in Account.objects.get().people.all()] == ["b@acme.test"]
    assert call(client, "accounts/contacts/add", {**body, "account_id": "0" * 24}, method="put").status_code == 400
    assert call(client, "accounts/contacts/add", {"inclusion_ids": [], "account_id": account["account_id"]},
                method="put").status_code == 400


def test_an_account_holds_at_most_3000_people(client, monkeypatch):
    monkeypatch.setattr(ortto_accounts, "MAX_PEOPLE_PER_ACCOUNT", 1)
    people = seed_existing_people("acme-us", [{"email": "a@acme.test"}, {"email": "b@acme.test"}])
    [account] = merge(client, [{"str:o:name": "Acme Ltd"}]).json()["accounts"]
    answer = call(client, "accounts/contacts/add", {"inclusion_ids": [p.person_id for p in people],
                                                    "account_id": account["account_id"]}, method="put")
    assert answer.status_code == 400 and Person.objects.filter(accounts__isnull=False).count() == 0
