"""The instant path (sync/consent/instant.py): the endpoint an Ortto journey's webhook calls, its bad input,
its secret, and the verification through person/get before anything is written to the store."""

import json
import logging

import pytest
from django.db import connection as db
from django.utils.module_loading import import_string

from stores.app_context import StoreContext, app_context_token
from stores.models import StoreUser
from sync.consent import instant
from sync.models import ConsentPreference, ConsentWriteback, PersonLedger, ThrottleCounter
from tests.sync.consent.test_writeback import OrttoPeople, Shop, ledger, shop_env  # noqa: F401

PATH = "/ortto/unsubscribed/abc123/"


@pytest.fixture
def queued(monkeypatch):
    """What the endpoint queues, run on demand (the worker's half)."""
    calls = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: calls.append((func, args)))
    return calls


def _url(store, **query):
    token = instant.hook_token_show(store=store).split("token=", 1)[1]
    return token, PATH + "?token=" + query.get("token", token)


def _post(client, url, body, **extra):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", **extra)


def _payload(email):
    # The journey's Send to webhook payload (help.ortto.com a-626).
    return {"campaign_id": "c1", "campaign_name": "Unsubscribed from email", "contact_id": "p1", "email": email,
            "id": "i1", "run_id": "r1", "shape_id": "1", "shape_title": "https://bridge.test", "time":
            "2026-12-07T23:28:09.895030588Z", "webhook_id": "w1"}


def _run(queued):
    return [import_string(func)(*args) for func, args in queued]


def test_a_delivery_is_acknowledged_and_queued_then_verified_with_ortto_and_written(
        client, shop_env, queued, django_capture_on_commit_callbacks):  # noqa: F811
    ledger(shop_env.connection, "ann@x.io")
    shop = Shop(shop_env.rsps, customers=[{"id": 7, "email": "ann@x.io",
                                           "accepts_product_review_abandoned_cart_emails": True}],
                subscribers=[{"id": 3, "email": "ann@x.io", "consents": ["marketing_newsletter"]}])
    ortto = OrttoPeople(shop_env.rsps, {"ann@x.io": False})
    _, url = _url(shop_env.store)
    with django_capture_on_commit_callbacks(execute=True):
        answer = _post(client, url, _payload("Ann@X.io"))
    assert answer.status_code == 202 and answer.json()["ok"] is True
    assert shop.writes == [] and ortto.bodies == [], "acknowledged before any API call"
    assert queued == [("sync.consent.instant.hook_unsubscribe_verify", (shop_env.store.pk, "ann@x.io"))]

    assert _run(queued) == ["written"]
    assert [t["$str::is"]["value"] for t in ortto.bodies[0]["filter"]["$or"]] == ["ann@x.io"]
    assert 3 not in shop.subscribers and shop.customers[7]["accepts_product_review_abandoned_cart_emails"] is False
    row = ConsentWriteback.objects.get(email="ann@x.io")
    assert row.state == "done" and row.via_hook
    assert PersonLedger.objects.get(email="ann@x.io").store_opt_in is False, "the ledger holds the opt-out: no echo"
    preference = ConsentPreference.objects.get(store=shop_env.store)
    assert preference.writeback_count == 1 and preference.hook_received_count == 1

    # The same delivery again (Ortto may repeat one): nothing more is written or counted.
    shop.writes.clear()
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, url, _payload("ann@x.io"))
    assert _run(queued[1:]) == ["not a subscriber of this store"] and shop.writes == []
    assert ConsentPreference.objects.get(store=shop_env.store).writeback_count == 1


def test_a_person_ortto_does_not_hold_unsubscribed_is_not_written(client, shop_env, queued,  # noqa: F811
                                                                    django_capture_on_commit_callbacks):
    ledger(shop_env.connection, "ann@x.io")
    shop = Shop(shop_env.rsps, subscribers=[{"id": 3, "email": "ann@x.io", "consents": ["marketing_newsletter"]}])
    OrttoPeople(shop_env.rsps, {"ann@x.io": True})
    _, url = _url(shop_env.store)
    with django_capture_on_commit_callbacks(execute=True):
        assert _post(client, url, _payload("ann@x.io")).status_code == 202
    assert _run(queued) == ["not unsubscribed in Ortto"]
    assert shop.writes == [] and 3 in shop.subscribers and not ConsentWriteback.objects.exists()
    assert PersonLedger.objects.get(email="ann@x.io").store_opt_in is True


def test_an_email_the_store_did_not_subscribe_costs_no_ortto_call(client, shop_env, queued,  # noqa: F811
                                                                  django_capture_on_commit_callbacks):
    ledger(shop_env.connection, "out@x.io", opt_in=False, sent=False)
    shop = Shop(shop_env.rsps)
    ortto = OrttoPeople(shop_env.rsps, {"out@x.io": False, "stranger@x.io": False})
    _, url = _url(shop_env.store)
    with django_capture_on_commit_callbacks(execute=True):
        _post(client, url, _payload("out@x.io"))
        _post(client, url, _payload("stranger@x.io"))
    assert _run(queued) == ["not a subscriber of this store"] * 2
    assert ortto.bodies == [] and shop.writes == []


@pytest.mark.parametrize("case", ["no token", "wrong token", "other store's token", "not installed"])
def test_a_forged_or_unknown_url_is_refused_and_changes_nothing(client, shop_env, queued, make_store, case):  # noqa: F811
    ledger(shop_env.connection, "ann@x.io")
    token, url = _url(shop_env.store)
    other = make_store("zzz999", owner_id=3003)
    other_token = instant.hook_token_show(store=other).split("token=", 1)[1]
    url = {"no token": PATH, "wrong token": PATH + "?token=" + token[:-2] + "xx",
           "other store's token": PATH + "?token=" + other_token, "not installed": url}[case]
    if case == "not installed":
        shop_env.store.is_installed = False
        shop_env.store.save()
    answer = _post(client, url, _payload("ann@x.io"))
    assert answer.status_code == 403 and "copy it again" in answer.json()["message"]
    assert queued == [] and not ConsentWriteback.objects.exists()
    assert ConsentPreference.objects.get(store=shop_env.store).hook_received_count == 0


def test_guessing_secrets_from_one_address_is_stopped(client, shop_env, queued):  # noqa: F811
    _, url = _url(shop_env.store)
    for _ in range(instant.HOOK_FORGED_IP.limit):
        assert _post(client, PATH + "?token=guess", _payload("ann@x.io")).status_code == 403
    assert _post(client, PATH + "?token=guess", _payload("ann@x.io")).status_code == 429
    assert _post(client, url, _payload("ann@x.io")).status_code == 429, "the right secret waits too, from there"
    assert _post(client, url, _payload("ann@x.io"), REMOTE_ADDR="10.9.9.9").status_code == 202, "Ortto elsewhere"


@pytest.mark.parametrize("body,status,words", [
    (b"{not json", 400, "not JSON"),
    (b"\xff\xfe", 400, "not JSON"),
    ([1, 2], 400, "no valid email"),
    ({"contact_id": "p1"}, 400, "no valid email"),
    ({"email": "not-an-email"}, 400, "no valid email"),
    ({"email": ["ann@x.io"]}, 400, "no valid email"),
    ({"email": "ann@x.io", "pad": "x" * (instant.MAX_BODY + 1)}, 413, "KB"),
])
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(client, shop_env, queued, body, status, words):  # noqa: F811
    _, url = _url(shop_env.store)
    answer = _post(client, url, body)
    assert answer.status_code == status and words in answer.json()["message"]
    assert queued == [] and ConsentPreference.objects.get(store=shop_env.store).hook_received_count == 0


def test_only_post_and_only_a_connected_store_with_the_write_back_on(client, shop_env, queued):  # noqa: F811
    _, url = _url(shop_env.store)
    assert client.get(url).status_code == 405
    ConsentPreference.objects.filter(store=shop_env.store).update(writeback_enabled=False)
    off = _post(client, url, _payload("ann@x.io"))
    assert off.status_code == 200 and off.json()["queued"] is False and queued == []
    ConsentPreference.objects.filter(store=shop_env.store).update(writeback_enabled=True)
    shop_env.connection.state = "disconnected"
    shop_env.connection.save()
    assert _post(client, url, _payload("ann@x.io")).status_code == 409 and queued == []


def test_a_burst_for_one_store_is_limited_per_store(client, shop_env, queued, monkeypatch):  # noqa: F811
    monkeypatch.setattr(instant, "HOOK_STORE", instant.throttle.Rule("ortto-hook-store", limit=3, window_seconds=60))
    _, url = _url(shop_env.store)
    statuses = [_post(client, url, _payload(f"p{i}@x.io")).status_code for i in range(4)]
    assert statuses == [202, 202, 202, 429]


def _app(client, store, op, user=1001):
    token = app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=user))
    return client.post("/bigcommerce/app/consent/hook", {"op": op}, HTTP_X_APP_CONTEXT=token)


def test_the_owner_shows_and_replaces_the_url_a_user_not_allowed_cannot(client, shop_env, queued):  # noqa: F811
    store = shop_env.store
    StoreUser.objects.create(store=store, bc_user_id=2002, email="staff@example.com", is_owner=False)
    refused = _app(client, store, "show", user=2002)
    assert refused.status_code == 403 and "hook_url" not in refused.json()
    assert not ConsentPreference.objects.filter(store=store).exclude(hook_token="").exists()

    shown = _app(client, store, "show").json()["hook_url"]
    assert shown.startswith("http") and "/ortto/unsubscribed/abc123/?token=" in shown
    assert _app(client, store, "show").json()["hook_url"] == shown, "the same URL until it is replaced"
    token = shown.split("token=", 1)[1]
    assert len(token) >= 40
    with db.cursor() as cursor:  # encrypted at rest
        cursor.execute("SELECT hook_token FROM sync_consentpreference")
        assert token not in cursor.fetchone()[0]

    replaced = _app(client, store, "rotate").json()["hook_url"]
    assert replaced != shown
    assert _post(client, PATH + "?token=" + token, _payload("ann@x.io")).status_code == 403, "the old URL stops at once"
    assert _post(client, PATH + "?token=" + replaced.split("token=", 1)[1], _payload("ann@x.io")).status_code == 202
    assert _app(client, store, "other").status_code == 400


def test_the_secret_is_never_logged(client, shop_env, queued, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    token, url = _url(shop_env.store)
    _post(client, url, b"{bad")
    _post(client, PATH + "?token=" + token[:-1] + "Q", _payload("ann@x.io"))
    _post(client, url, _payload("ann@x.io"))
    assert token not in caplog.text and token[:-1] not in caplog.text
    assert not ThrottleCounter.objects.filter(key__contains=token[:12]).exists()


def test_the_consent_card_explains_the_set_up(client, shop_env):  # noqa: F811
    secret, _ = _url(shop_env.store)
    token = app_context_token(StoreContext(store_hash="abc123", bc_user_id=1001))
    html = client.get("/bigcommerce/app/panel", HTTP_X_APP_CONTEXT=token).content.decode()
    steps = html.split('id="consent-hook-steps"')[1].split("</ol>")[0]
    for words in ("Webhook (advanced)", "POST", "People enter when", "Unsubscribed from email", "email"):
        assert words in steps
    assert "Show the URL" in html and "Replace the URL" in html
    assert secret not in html and "/ortto/unsubscribed/" not in html, "the URL is fetched on request, not polled"
