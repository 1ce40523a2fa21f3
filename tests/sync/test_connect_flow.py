import re

import pytest
import responses
from django.conf import settings
from django.core import signing

from stores.app_context import StoreContext, connect_token
from sync.models import Connection, OrttoAccount, SyncRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    """Record the work the flow hands to django-q2 instead of running it."""
    calls = []
    monkeypatch.setattr("sync.queue.transaction.on_commit", lambda fn: fn())
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **k: calls.append(a))
    return calls


def start(client, store, bc_user_id=1001):
    """Follow a Connect link: the POST (Continue, or the sign-in the link led to) binds the flow to the session."""
    token = connect_token(StoreContext(store_hash=store.store_hash, bc_user_id=bc_user_id))
    return client.post("/connect/", {"token": token})


def signin(client, email="owner@example.com", password="a-good-password"):
    return client.post("/connect/signin/", {"email": email, "password": password})


def test_connect_walks_accounts_merge_and_syncing(make_account, make_store, make_user, client, queued):
    store = make_store()
    user = make_user()
    first = make_account(members=[user], name="acme-us", business_name="Acme (US)")
    second = make_account(members=[user], name="acme-eu", business_name="Acme (EU)", region="eu", api_key="k2")
    make_account(name="someone-else", business_name="Not Yours", api_key="k3")

    response = start(client, store)
    assert response["Location"].endswith("/connect/accounts/")
    response = client.get(response["Location"])
    assert response.status_code == 302 and "/connect/signin/" in response["Location"]  # sign in first
    assert signin(client).status_code == 302
    page = client.get("/connect/accounts/").content.decode()
    assert "Acme (US)" in page and "Acme (EU)" in page and "Not Yours" not in page

    response = client.post("/connect/accounts/", {"account": second.pk})
    assert response["Location"].endswith("/connect/merge/")
    page = client.get("/connect/merge/").content.decode()
    for label in ("Import and merge new records only", "Import and overwrite any records that exist", "Import new records only"):
        assert label in page
    assert re.search(r'value="1"[^>]*checked|checked[^>]*value="1"', page), "Append only is preselected"

    response = client.post("/connect/merge/", {"merge_strategy": 2})
    assert response.status_code == 302
    connection = Connection.objects.get(store=store)
    assert connection.account == second and connection.merge_strategy == 2 and connection.state == "active"
    run = SyncRun.objects.get(store=store)
    assert run.kind == "initial" and run.status == "queued"
    assert queued[0] == ("sync.tasks.run_sync", run.pk)
    assert [call[0] for call in queued[1:]] == ["sync.tasks.owner_mail_deliver"]  # the owner is told
    page = client.get(response["Location"]).content.decode()
    assert "Syncing your data" in page and "Done" in page
    assert settings.BIGCOMMERCE_CONTROL_PANEL_URL.format(store_hash=store.store_hash, app_id=settings.BIGCOMMERCE_APP_ID) in page
    progress = client.get(f"/connect/syncing/{run.pk}/progress").json()
    assert progress["status"] == "queued" and progress["percent"] == 0
    assert first  # the other account is untouched


def test_app_page_shows_the_connection_with_a_reconnect_button(make_account, make_connection, make_store,
                                                               signed_payload, client):
    store = make_store()
    make_connection(store, make_account(business_name="Acme <EU> & Co"))
    html = client.get("/bigcommerce/load/", {"signed_payload_jwt": signed_payload()}).content.decode()
    assert "Connected to" in html and "Acme &lt;EU&gt; &amp; Co" in html and ">Reconnect<" in html
    assert 'href="https://ortto.app/acme-us/"' in html


def test_reconnect_to_another_account_keeps_history_and_queues_a_full_import(make_account, make_connection,
                                                                             make_store, make_user, client, queued):
    store = make_store()
    user = make_user()
    old = make_connection(store, make_account(members=[user]), user=user)
    SyncRun.objects.create(store=store, connection=old, kind="incremental", status="succeeded")
    other = make_account(members=[user], name="acme-au", business_name="Acme (AU)", region="au", api_key="k9")
    start(client, store)
    signin(client)
    client.post("/connect/accounts/", {"account": other.pk})
    client.post("/connect/merge/", {"merge_strategy": 3, "confirm_switch": "1"})
    old.refresh_from_db()
    assert old.state == "disconnected" and old.disconnected_at
    live = Connection.objects.exclude(state="disconnected").get(store=store)
    assert live.account == other and live.merge_strategy == 3
    assert SyncRun.objects.filter(store=store, kind="initial", connection=live).exists()
    assert SyncRun.objects.filter(connection=old).count() == 1  # history kept


def test_reconnect_to_the_same_account_updates_it_in_place(make_account, make_connection, make_store, make_user,
                                                           client, queued):
    store = make_store()
    user = make_user()
    account = make_account(members=[user])
    connection = make_connection(store, account, state=Connection.State.NEEDS_RECONNECT, user=user)
    start(client, store)
    signin(client)
    client.post("/connect/accounts/", {"account": account.pk})
    client.post("/connect/merge/", {"merge_strategy": 2})
    connection.refresh_from_db()
    assert connection.state == "active" and connection.merge_strategy == 2
    assert Connection.objects.filter(store=store).count() == 1


def test_someone_cannot_pick_an_account_they_are_not_a_member_of(make_account, make_store, make_user, client, queued):
    store = make_store()
    make_user()
    stranger_account = make_account(name="other", api_key="x")
    start(client, store)
    signin(client)
    response = client.post("/connect/accounts/", {"account": stranger_account.pk})
    assert response.status_code == 400
    session = client.session
    session["connect_account"] = stranger_account.pk
    session.save()
    assert client.post("/connect/merge/", {"merge_strategy": 1}).status_code == 302  # back to accounts
    assert not Connection.objects.exists()


@pytest.mark.parametrize("token", [
    "garbage",
    signing.dumps({"s": "abc123", "u": 1001}, salt="another-salt"),
])
def test_tampered_connect_tokens_are_refused(make_store, client, token):
    make_store()
    response = client.get("/connect/", {"token": token})
    assert response.status_code == 403 and b"not valid" in response.content
    assert "connect" not in client.session


def test_expired_connect_token_is_refused(make_store, client, monkeypatch):
    store = make_store()
    token = connect_token(StoreContext(store_hash=store.store_hash, bc_user_id=1001))
    monkeypatch.setattr("stores.app_context.CONNECT_MAX_AGE", -1)
    response = client.get("/connect/", {"token": token})
    assert response.status_code == 403 and b"expired" in response.content


def test_connect_token_for_a_user_removed_from_the_store_is_refused(make_store, client):
    store = make_store()
    response = start(client, store, bc_user_id=999)
    assert response.status_code == 403


def test_merge_post_without_csrf_token_is_refused(make_store, make_user):
    from django.test import Client

    store = make_store()
    make_user()
    client = Client(enforce_csrf_checks=True)
    token = connect_token(StoreContext(store_hash=store.store_hash, bc_user_id=1001))
    page = client.get("/connect/", {"token": token}).content.decode()  # the link leads to the sign-in
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    client.post("/connect/signin/", {"email": "owner@example.com", "password": "a-good-password", "token": token,
                                     "csrfmiddlewaretoken": csrf})
    assert client.get("/connect/merge/").status_code == 302  # the flow is bound: on to Accounts
    assert client.post("/connect/merge/", {"merge_strategy": 1}).status_code == 403


def test_add_account_verifies_the_key_before_saving(make_user, client):
    user = make_user()
    client.force_login(user)
    url = settings.ORTTO_API_URL.replace("{region}", "eu") if settings.ORTTO_API_URL else "https://api.eu.ap3api.com"
    form = {"business_name": "Acme EU", "name": "acme-eu", "region": "eu", "api_key": "good-key", "tracking_key": ""}
    with responses.RequestsMock() as rsps:
        rsps.post(f"{url}/v1/person/custom-field/get", status=401, json={"code": 401, "error": "Unauthorized"})
        response = client.post("/connect/accounts/add/", form)
    assert response.status_code == 400
    assert "did not accept this API key in the Europe region" in response.content.decode()
    assert not OrttoAccount.objects.exists()
    with responses.RequestsMock() as rsps:
        rsps.post(f"{url}/v1/person/custom-field/get", json={"fields": []})
        response = client.post("/connect/accounts/add/", form)
    assert response.status_code == 302
    account = OrttoAccount.objects.get()
    assert account.api_key == "good-key" and list(account.members.all()) == [user]


def test_repeated_wrong_passwords_lock_the_sign_in(make_user, client):
    make_user()
    for _ in range(5):
        assert signin(client, password="wrong-password").status_code == 400
    response = signin(client)  # even the right password waits now
    assert response.status_code == 429 and b"Too many attempts" in response.content


def test_the_sign_in_page_is_the_bridges_own_not_ortto_s(client):
    page = client.get("/connect/signin/").content.decode()
    assert "<title>Ortto Bridge sign-in" in page and "<h1>Ortto Bridge sign-in</h1>" in page
    assert "not your Ortto login" in page
    signup = client.get("/connect/signup/").content.decode()
    assert "<h1>Create your Ortto Bridge sign-in</h1>" in signup and "not to Ortto" in signup


def test_a_wrong_password_names_the_bridge_sign_in(make_user, client):
    make_user()
    response = signin(client, password="wrong-password")
    assert response.status_code == 400
    assert "do not match an Ortto Bridge sign-in" in response.content.decode()


def test_signup_creates_a_sign_in(client):
    response = client.post("/connect/signup/", {"email": "New@Example.com", "password": "correct-horse-battery"})
    assert response.status_code == 302
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.filter(username="new@example.com").exists()


# --- The flow is bound to the session that started it (issue 24, finding 2) ---------------------------


def test_opening_a_connect_link_changes_nothing_until_a_post(make_store, make_user, client):
    from sync.throttle import single_use_spent

    store = make_store()
    make_user()
    token = connect_token(StoreContext(store_hash=store.store_hash, bc_user_id=1001))
    for _ in range(2):
        page = client.get("/connect/", {"token": token})
        assert page.status_code == 200 and "<h1>Ortto Bridge sign-in</h1>" in page.content.decode()
        assert "connect" not in client.session and not single_use_spent(purpose="connect", token=token)
    response = client.post("/connect/signin/", {"email": "owner@example.com", "password": "a-good-password",
                                                "token": token})
    assert response["Location"].endswith("/connect/accounts/")
    assert client.session["connect"] == {"store_hash": store.store_hash, "bc_user_id": 1001}
    assert single_use_spent(purpose="connect", token=token)
    # The other GETs of the flow change nothing either; sign-out is a POST.
    for path in ("/connect/accounts/", "/connect/merge/", "/connect/signin/", "/connect/signup/"):
        client.get(path)
    assert client.session["connect"] == {"store_hash": store.store_hash, "bc_user_id": 1001}
    assert client.get("/connect/signout/").status_code == 405 and "_auth_user_id" in client.session


def test_an_attackers_link_asks_a_signed_in_victim_and_only_continue_rebinds(make_store, make_user, client):
    victims, attackers = make_store("victim1", name="Victim's Shop"), make_store("evil01", name="Evil Shop",
                                                                                 owner_id=6666)
    make_user("victim@example.com")
    start(client, victims)
    signin(client, email="victim@example.com")
    own = {"store_hash": "victim1", "bc_user_id": 1001}
    assert client.session["connect"] == own
    lure = connect_token(StoreContext(store_hash=attackers.store_hash, bc_user_id=6666))

    page = client.get("/connect/", {"token": lure})
    html = page.content.decode()
    assert page.status_code == 200 and "<h1>Connect Evil Shop?</h1>" in html
    assert "evil01" in html and "victim@example.com" in html and 'name="cancel"' in html
    assert client.session["connect"] == own  # the GET rebinds nothing

    cancelled = client.post("/connect/", {"token": lure, "cancel": ""})
    assert cancelled.status_code == 200 and "Nothing was connected" in cancelled.content.decode()
    assert client.session["connect"] == own
    assert "Victim&#x27;s Shop" in client.get("/connect/accounts/").content.decode()

    # Continue is the victim's own, deliberate choice (a POST with CSRF): only it moves the flow.
    client.post("/connect/", {"token": lure})
    assert client.session["connect"] == {"store_hash": "evil01", "bc_user_id": 6666}


def test_the_same_session_reopening_its_link_goes_straight_on(make_store, make_user, client):
    store = make_store()
    make_user()
    start(client, store)
    signin(client)
    again = connect_token(StoreContext(store_hash=store.store_hash, bc_user_id=1001))  # Reconnect, a new link
    response = client.get("/connect/", {"token": again})
    assert response.status_code == 302 and response["Location"].endswith("/connect/accounts/")


def test_a_new_person_signs_up_from_the_link_and_the_flow_is_theirs(make_store, client):
    store = make_store(name="Acme Outdoor Co.")
    token = connect_token(StoreContext(store_hash=store.store_hash, bc_user_id=1001))
    signin_page = client.get("/connect/", {"token": token}).content.decode()
    assert "connecting Acme Outdoor Co. (abc123)" in signin_page  # the page names the store
    signup_page = client.get("/connect/signup/", {"token": token}).content.decode()
    assert f'name="token" value="{token}"' in signup_page and "connecting Acme Outdoor Co." in signup_page
    assert "connect" not in client.session
    response = client.post("/connect/signup/", {"email": "new@example.com", "password": "correct-horse-battery",
                                                "token": token})
    assert response["Location"].endswith("/connect/accounts/")
    assert client.session["connect"] == {"store_hash": store.store_hash, "bc_user_id": 1001}
