"""Case 6 — hostile input, property-based (hypothesis): the BigCommerce callbacks' JWTs, the webhook
receiver, the app-context and connect tokens, markup in names and messages on every page, one owner
editing ids to reach another store, and password guessing."""

import base64
import json
import time

import jwt
import pytest
from django.conf import settings
from django.core import signing
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from stores.app_context import (
    ContextTokenError,
    StoreContext,
    app_context_read,
    app_context_token,
    connect_token,
    connect_token_read,
)
from stores.models import Store, WebhookEvent
from stores.signed_payload import SignedPayloadError, signed_payload_verify
from sync.models import SyncEvent, SyncRun

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")]

FAST = hsettings(max_examples=60, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MARKUP = st.sampled_from(['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "<b>bold</b>",
                          "';alert(1);//", "</textarea><svg onload=alert(1)>"])


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(store_hash="abc123", **over):
    now = int(time.time())
    claims = {"aud": settings.BIGCOMMERCE_CLIENT_ID, "iss": "bc", "iat": now, "nbf": now - 5, "exp": now + 3600,
              "sub": f"stores/{store_hash}", "user": {"id": 1001, "email": "u@example.com"},
              "owner": {"id": 1001, "email": "u@example.com"}, "url": "/"}
    claims.update(over)
    return claims


# --- signed_payload_jwt ----------------------------------------------------------------------------

@FAST
@given(secret=st.text(min_size=1, max_size=40).filter(lambda s: s != settings.BIGCOMMERCE_CLIENT_SECRET))
def test_forged_signature_is_refused(secret):
    with pytest.raises(SignedPayloadError) as refused:
        signed_payload_verify(jwt.encode(_claims(), secret, algorithm="HS256"))
    assert refused.value.status == 401


@FAST
@given(age=st.integers(min_value=120, max_value=10 ** 8))
def test_expired_payload_is_refused(age):
    now = int(time.time())
    token = jwt.encode(_claims(exp=now - age, iat=now - age - 60, nbf=now - age - 65),
                       settings.BIGCOMMERCE_CLIENT_SECRET, algorithm="HS256")
    with pytest.raises(SignedPayloadError):
        signed_payload_verify(token)


@FAST
@given(audience=st.text(min_size=1, max_size=30).filter(lambda a: a != settings.BIGCOMMERCE_CLIENT_ID))
def test_wrong_audience_is_refused(audience):
    with pytest.raises(SignedPayloadError):
        signed_payload_verify(jwt.encode(_claims(aud=audience), settings.BIGCOMMERCE_CLIENT_SECRET, algorithm="HS256"))


@FAST
@given(alg=st.sampled_from(["none", "None", "NONE", "HS512", "HS384"]), sig=st.sampled_from(["", "AAAA"]))
def test_other_algorithms_and_alg_none_are_refused(alg, sig):
    token = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(_claims())}.{sig}"
    with pytest.raises(SignedPayloadError):
        signed_payload_verify(token)
    if alg.startswith("HS"):  # validly signed, but not with the one algorithm allowed
        with pytest.raises(SignedPayloadError):
            signed_payload_verify(jwt.encode(_claims(), settings.BIGCOMMERCE_CLIENT_SECRET, algorithm=alg))


@FAST
@given(data=st.data())
def test_truncated_or_tampered_tokens_are_refused(signed_payload, data):
    token = signed_payload("abc123")
    cut = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    with pytest.raises(SignedPayloadError):
        signed_payload_verify(token[:cut])
    head, body, sig = token.split(".")
    # Re-signed: claims changed (another store) and signed with a key the attacker has.
    other = jwt.encode(_claims("victim99"), data.draw(st.text(min_size=1, max_size=20)), algorithm="HS256")
    with pytest.raises(SignedPayloadError):
        signed_payload_verify(f"{head}.{other.split('.')[1]}.{sig}")
    with pytest.raises(SignedPayloadError):
        signed_payload_verify(other if jwt.get_unverified_header(other) else token[:cut])


@FAST
@given(junk=st.text(max_size=300))
def test_load_callback_answers_4xx_never_500(client, junk):
    for path in ("/bigcommerce/load/", "/bigcommerce/uninstall/", "/bigcommerce/remove-user/"):
        response = client.get(path, {"signed_payload_jwt": junk})
        assert 400 <= response.status_code < 500, (path, junk, response.status_code)


# --- webhook receiver ------------------------------------------------------------------------------

@FAST
@given(body=st.one_of(st.binary(max_size=600), st.text(max_size=600).map(str.encode),
                      st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text(max_size=20)),
                                      max_size=6).map(lambda d: json.dumps(d).encode())),
       secret=st.one_of(st.none(), st.text(max_size=40)))
def test_webhook_receiver_refuses_junk_and_strangers(make_store, client, body, secret):
    store = Store.objects.filter(store_hash="hook1").first() or make_store("hook1", webhook_secret="the-real-secret")
    headers = {} if secret is None else {"HTTP_X_BRIDGE_WEBHOOK_SECRET": secret.encode("utf-8", "ignore").decode("latin-1")}
    response = client.post("/bigcommerce/webhooks/", data=body, content_type="application/json", **headers)
    assert response.status_code in (400, 401, 413), response.status_code
    assert not WebhookEvent.objects.filter(store=store).exists()


# --- app-context and connect tokens ------------------------------------------------------------------

@FAST
@given(store_hash=st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True), user=st.integers(1, 10 ** 9), data=st.data())
def test_context_tokens_cannot_be_tampered_or_swapped(store_hash, user, data):
    ctx = StoreContext(store_hash=store_hash, bc_user_id=user)
    token, connect = app_context_token(ctx), connect_token(ctx)
    assert app_context_read(token) == ctx and connect_token_read(connect) == ctx
    with pytest.raises(ContextTokenError):
        app_context_read(connect)  # each salt is its own audience
    with pytest.raises(ContextTokenError):
        connect_token_read(token)
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.sampled_from("AZaz09-_:"))
    tampered = token[:position] + replacement + token[position + 1:]
    if tampered != token:
        with pytest.raises(ContextTokenError):
            app_context_read(tampered)
    # Another store's hash in a token signed with a guessed key.
    forged = signing.dumps({"s": "victim99", "u": user}, key="guessed-" + store_hash, salt="ortto-bridge.app-context")
    with pytest.raises(ContextTokenError):
        app_context_read(forged)


def test_expired_connect_token_is_refused(make_store, client, monkeypatch):
    make_store("exp1")
    token = connect_token(StoreContext("exp1", 1001))
    monkeypatch.setattr("stores.app_context.CONNECT_MAX_AGE", -1)
    response = client.get("/connect/", {"token": token})
    assert response.status_code == 403 and b"expired" in response.content


@FAST
@given(token=st.text(max_size=200))
def test_connect_start_with_junk_token_is_403(client, token):
    assert client.get("/connect/", {"token": token}).status_code == 403


# --- one owner, another store ----------------------------------------------------------------------

def test_an_owner_cannot_reach_another_store_by_editing_ids(make_account, make_connection, make_store, make_user,
                                                            client):
    mine, theirs = make_store("mine01", owner_id=1001), make_store("their1", owner_id=2001)
    me, them = make_user("me@example.com"), make_user("them@example.com")
    my_conn = make_connection(mine, make_account(name="mine", members=[me], api_key="k-mine"))
    their_conn = make_connection(theirs, make_account(name="theirs", members=[them], api_key="k-theirs"))
    their_run = SyncRun.objects.create(store=theirs, connection=their_conn, kind="initial", status="succeeded")
    my_run = SyncRun.objects.create(store=mine, connection=my_conn, kind="initial", status="succeeded")
    mine_token = app_context_token(StoreContext("mine01", 1001))
    # My token only ever shows my store; a token naming their store with my user id is not a member.
    assert client.get("/bigcommerce/app/status", HTTP_X_APP_CONTEXT=mine_token).json()["store_hash"] == "mine01"
    crafted = app_context_token(StoreContext("their1", 1001))  # even validly signed: I am not their user
    assert client.get("/bigcommerce/app/status", HTTP_X_APP_CONTEXT=crafted).status_code in (401, 403, 404)
    assert client.post("/bigcommerce/app/disconnect", HTTP_X_APP_CONTEXT=crafted).status_code in (401, 403, 404)
    assert client.post("/bigcommerce/app/sync-now", HTTP_X_APP_CONTEXT=crafted).status_code in (401, 403, 404)
    # The connect flow: a run id from another account is a 404, page and progress alike.
    client.force_login(me)
    assert client.get(f"/connect/syncing/{my_run.pk}/").status_code == 200
    assert client.get(f"/connect/syncing/{their_run.pk}/").status_code == 404
    assert client.get(f"/connect/syncing/{their_run.pk}/progress").status_code == 404
    assert client.get(f"/connect/syncing/{their_run.pk + 1000}/").status_code == 404
    # The admin is for staff only: a store owner's sign-in does not open it.
    for url in ("/admin/", f"/admin/sync/syncrun/{their_run.pk}/change/", f"/admin/stores/store/{theirs.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


# --- markup is escaped on every page and in the admin ----------------------------------------------------

@hsettings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=MARKUP, customer=MARKUP, message=MARKUP)
def test_markup_in_names_and_messages_is_escaped_everywhere(make_account, make_connection, make_store, make_user,
                                                            signed_payload, client, admin_client, name, customer,
                                                            message):
    SyncRun.objects.all().delete()
    Store.objects.filter(store_hash="xss001").delete()
    store = make_store("xss001", name=name)
    user = make_user(f"x{abs(hash(name + customer + message))}@example.com")
    account = make_account(name=f"x{abs(hash(name + message))}", business_name=name, members=[user],
                           api_key=f"k{abs(hash(customer))}")
    connection = make_connection(store, account)
    connection.state_reason = message
    connection.save()
    run = SyncRun.objects.create(store=store, connection=connection, kind="initial", status="failed",
                                 error_summary=message)
    SyncEvent.objects.create(run=run, resource="customers", bc_id=1, email=f"{customer}@example.com",
                             message=f"{customer}: {message}")
    pages = [
        client.get("/bigcommerce/load/", {"signed_payload_jwt": signed_payload("xss001")}),
        client.get("/bigcommerce/app/panel", HTTP_X_APP_CONTEXT=app_context_token(StoreContext("xss001", 1001))),
    ]
    client.force_login(user)
    pages.append(client.get(f"/connect/syncing/{run.pk}/"))
    pages += [admin_client.get(url) for url in (
        "/admin/stores/store/", f"/admin/stores/store/{store.pk}/change/", "/admin/sync/syncrun/",
        f"/admin/sync/syncrun/{run.pk}/change/", "/admin/sync/syncevent/", "/admin/sync/connection/",
        f"/admin/sync/connection/{connection.pk}/change/", "/admin/sync/orttoaccount/",
    )]
    for response in pages:
        assert response.status_code == 200, (response.request["PATH_INFO"], response.status_code)
        body = response.content.decode()
        for raw in {name, customer, message}:
            assert raw not in body, (response.request["PATH_INFO"], raw)


# --- password guessing ------------------------------------------------------------------------------

def test_repeated_wrong_passwords_lock_the_sign_in(make_user, client):
    make_user("victim@example.com", password="the-right-password")
    statuses = [client.post("/connect/signin/", {"email": "victim@example.com", "password": f"guess-{n}"}).status_code
                for n in range(7)]
    assert statuses[:5] == [400] * 5 and statuses[5:] == [429, 429]
    # Locked: even the right password is refused until the lock expires.
    right = client.post("/connect/signin/", {"email": "VICTIM@example.com", "password": "the-right-password"})
    assert right.status_code == 429
