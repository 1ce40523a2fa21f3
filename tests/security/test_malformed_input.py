"""Issue 16, item 6, over real HTTP: garbage gets a 4xx with a clear message, never a 500."""

import json

import pytest
import requests

from .harness import in_parallel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_deeply_nested_json_at_the_webhook_url_is_a_400(make_store, live_server):
    make_store("abc123", webhook_secret="s3cret")
    for secret in (None, "s3cret"):
        headers = {"X-Bridge-Webhook-Secret": secret} if secret else {}
        for body in (b"[" * 40_000, b'{"a":' * 7_000 + b"1" + b"}" * 7_000):
            response = requests.post(f"{live_server.url}/bigcommerce/webhooks/", data=body, headers=headers, timeout=30)
            assert response.status_code == 400, response.status_code


def test_webhook_ids_outside_the_database_range_are_a_400(make_store, live_server):
    make_store("abc123", webhook_secret="s3cret")
    for data in ({"type": "customer", "id": 10**25}, {"type": "customer", "id": -5},
                 {"type": "customer", "id": 7, "address": {"customer_id": 10**30}}):
        scope = "store/customer/address/updated" if "address" in data else "store/customer/updated"
        body = json.dumps({"producer": "stores/abc123", "scope": scope, "hash": "h", "created_at": 1735000000,
                           "data": data, "store_id": "1"})
        response = requests.post(f"{live_server.url}/bigcommerce/webhooks/", data=body, timeout=30,
                                 headers={"X-Bridge-Webhook-Secret": "s3cret", "Content-Type": "application/json"})
        assert response.status_code == 400, (data, response.status_code)


def test_jwt_user_ids_outside_the_database_range_are_a_400(make_store, signed_payload, live_server):
    make_store("abc123")
    for path in ("/bigcommerce/load/", "/bigcommerce/uninstall/", "/bigcommerce/remove-user/"):
        for user_id in (10**30, -1, 0):
            response = requests.get(live_server.url + path, timeout=30,
                                    params={"signed_payload_jwt": signed_payload(user_id=user_id)})
            assert response.status_code == 400, (path, user_id, response.status_code)
            assert "user" in response.text


def test_a_non_numeric_account_choice_is_a_400(make_store, make_user, browser):
    make_store("abc123")
    make_user("owner@example.com", password="the-right-password")
    person = browser()
    person.get("/connect/signin/")
    person.post("/connect/signin/", {"email": "owner@example.com", "password": "the-right-password"})
    from stores.app_context import StoreContext, connect_token

    token = connect_token(StoreContext(store_hash="abc123", bc_user_id=1001))
    person.get("/connect/?token=" + token)  # signed in already: the confirmation page
    assert person.post("/connect/", {"token": token}).status_code == 302  # Continue
    person.get("/connect/accounts/")
    for choice in ("", "abc", "1e5", "9" * 40, "-1", "²", "١٢"):
        response = person.post("/connect/accounts/", {"account": choice})
        assert response.status_code == 400 and "Pick one of your Ortto accounts" in response.text, choice
    assert person.get("/connect/syncing/" + "9" * 30 + "/").status_code == 404


def test_identical_sign_ups_at_once_are_never_a_500(browser):
    people = [browser() for _ in range(10)]
    for person in people:
        person.get("/connect/signup/")
    sign_up = lambda person: lambda: person.post(  # noqa: E731
        "/connect/signup/", {"email": "same@example.com", "password": "a-fine-password-1"}).status_code
    statuses = in_parallel([sign_up(person) for person in people], threads=10)
    assert 500 not in statuses and statuses.count(302) == 1, statuses
