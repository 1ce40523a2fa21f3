import json

import pytest
import responses
from django.utils import timezone

from stores.app_context import StoreContext, app_context_token
from stores.models import StoreUser
from sync.connect import connections
from sync.models import Connection
from sync.tracking import (
    TrackingKeyInvalid,
    tracking_disable,
    tracking_enable,
    tracking_move,
    tracking_snippet,
)

pytestmark = pytest.mark.django_db

API = "https://api.bigcommerce.test"
STORE = "abc123"
SCRIPTS = f"{API}/stores/{STORE}/v3/content/scripts"
UUID = "03805148-a592-4803-9482-e91fe5c1be12"
OTHER_UUID = "5b0c4a4e-2c4f-4d7e-9b7c-0d5c0a6f1e11"
US_KEY = "AbC123_-xyz"
EU_KEY = "EuKey-987_zz"


@pytest.fixture
def bigcommerce(settings, monkeypatch):
    settings.BIGCOMMERCE_API_URL = API
    # Retries of 5xx answers must not make the suite wait.
    monkeypatch.setattr("stores.http.backoff_delay", lambda attempt: 0.0)
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture
def connection(make_account, make_connection, make_store):
    store = make_store(STORE)
    return make_connection(store, make_account(tracking_key=US_KEY))


def script_answer(uuid=UUID, **fields):
    return {"data": {"uuid": uuid, "name": "Ortto tracking (Ortto Bridge)", **fields}, "meta": {}}


def sent_body(call) -> dict:
    return json.loads(call.request.body)


def methods(rsps) -> list[str]:
    return [call.request.method for call in rsps.calls]


def tracking_fields(connection: Connection) -> tuple:
    return (connection.tracking_enabled, connection.tracking_script_uuid, connection.tracking_changed_at,
            connection.tracking_changed_by)


def turn_on(connection, uuid=UUID):
    connection.tracking_enabled = True
    connection.tracking_script_uuid = uuid
    connection.tracking_changed_at = timezone.now()
    connection.tracking_changed_by = "bc-user:1001"
    connection.save()
    return connection


# --- enable ---------------------------------------------------------------------------------------


def test_enabling_installs_one_consent_gated_storefront_script(bigcommerce, connection):
    bigcommerce.add("POST", SCRIPTS, json=script_answer())

    assert tracking_enable(connection=connection, by="bc-user:1001") == ""

    body = sent_body(bigcommerce.calls[0])
    assert body["name"] and "Ortto" in body["name"]
    assert "Acme (US)" in body["description"]
    assert body["kind"] == "script_tag" and body["load_method"] == "default"
    assert body["location"] == "head" and body["visibility"] == "storefront"
    assert body["consent_category"] == "analytics"
    assert body["auto_uninstall"] is True and body["enabled"] is True
    assert "src" not in body
    # Ortto's code, then the product journeys' part (sync/catalog/script.py), in the one <script> tag.
    snippet = tracking_snippet(tracking_key=US_KEY, region="default")
    assert body["html"].startswith(snippet[:-len("</script>")]) and body["html"].count("<script>") == 1
    assert body["html"].endswith("</script>") and "/storefront/abc123/" in body["html"]
    assert f'ap3c.init("{US_KEY}", "https://capture-api-us.ortto.app/")' in body["html"]
    connection.refresh_from_db()
    assert connection.tracking_enabled is True
    assert connection.tracking_script_uuid == UUID
    assert connection.tracking_changed_by == "bc-user:1001"
    assert connection.tracking_changed_at is not None


def test_enabling_twice_updates_the_stored_script_instead_of_adding_one(bigcommerce, connection):
    turn_on(connection)
    since = connection.tracking_changed_at
    bigcommerce.add("GET", f"{SCRIPTS}/{UUID}", json=script_answer())
    bigcommerce.add("PUT", f"{SCRIPTS}/{UUID}", json=script_answer())

    assert tracking_enable(connection=connection, by="bc-user:1002") == ""

    assert methods(bigcommerce) == ["GET", "PUT"]  # no POST
    connection.refresh_from_db()
    assert connection.tracking_script_uuid == UUID and connection.tracking_enabled
    # Still installed since the first time: a repeated click does not move "since".
    assert connection.tracking_changed_at == since and connection.tracking_changed_by == "bc-user:1001"


def test_enabling_after_the_merchant_deleted_the_script_installs_it_again(bigcommerce, connection):
    turn_on(connection)
    bigcommerce.add("GET", f"{SCRIPTS}/{UUID}", status=404, json={"status": 404, "title": "Not found"})
    bigcommerce.add("POST", SCRIPTS, json=script_answer(OTHER_UUID))

    assert tracking_enable(connection=connection, by="bc-user:1002") == ""

    connection.refresh_from_db()
    assert connection.tracking_script_uuid == OTHER_UUID and connection.tracking_changed_by == "bc-user:1002"


def test_enable_and_disable_in_a_row_leave_nothing_installed(bigcommerce, connection):
    bigcommerce.add("POST", SCRIPTS, json=script_answer())
    bigcommerce.add("DELETE", f"{SCRIPTS}/{UUID}", status=204)

    assert tracking_enable(connection=connection, by="a") == ""
    assert tracking_disable(connection=connection, by="b") == ""

    connection.refresh_from_db()
    assert (connection.tracking_enabled, connection.tracking_script_uuid) == (False, "")
    assert connection.tracking_changed_by == "b"


@pytest.mark.parametrize(
    "status, body, words",
    [
        (403, {"status": 403, "title": "You don't have a required scope to access the endpoint"}, "permission"),
        (422, {"status": 422, "title": "An app may install at most 10 scripts.", "errors": {}}, "at most 10 scripts"),
        (500, {"status": 500, "title": "Internal Server Error"}, "not answering"),
    ],
    ids=["missing-scope", "unprocessable", "server-error"],
)
def test_bigcommerce_refusing_the_script_leaves_tracking_off(bigcommerce, connection, status, body, words):
    bigcommerce.add("POST", SCRIPTS, status=status, json=body)
    before = tracking_fields(connection)

    message = tracking_enable(connection=connection, by="bc-user:1001")

    assert message.startswith("Tracking was not enabled.") and words in message
    connection.refresh_from_db()
    assert tracking_fields(connection) == before


def test_a_failing_update_of_the_stored_script_changes_nothing(bigcommerce, connection):
    turn_on(connection)
    before = tracking_fields(connection)
    bigcommerce.add("GET", f"{SCRIPTS}/{UUID}", json=script_answer())
    bigcommerce.add("PUT", f"{SCRIPTS}/{UUID}", status=422, json={"status": 422, "title": "Invalid html"})

    assert "Invalid html" in tracking_enable(connection=connection, by="x")

    assert methods(bigcommerce) == ["GET", "PUT"]  # no fallback POST that would add a second script
    connection.refresh_from_db()
    assert tracking_fields(connection) == before


def test_enabling_needs_a_tracking_key(make_account, make_connection, make_store, bigcommerce):
    connection = make_connection(make_store(STORE), make_account(tracking_key=""))
    assert "no tracking key" in tracking_enable(connection=connection, by="x")
    connection.refresh_from_db()
    assert not connection.tracking_enabled and not bigcommerce.calls


def test_a_tracking_key_that_could_break_out_of_the_script_is_refused(make_account, make_connection, make_store,
                                                                      bigcommerce):
    connection = make_connection(make_store(STORE), make_account(tracking_key="abc');alert(1);//"))
    assert "not valid" in tracking_enable(connection=connection, by="x")
    assert not bigcommerce.calls


def test_a_second_click_while_a_change_is_in_flight_is_refused(bigcommerce, connection):
    from sync.tracking import _lease

    with _lease(connection.pk) as acquired:
        assert acquired
        assert "being changed right now" in tracking_enable(connection=connection, by="x")
        assert "being changed right now" in tracking_disable(connection=connection, by="x")

    assert not bigcommerce.calls
    connection.refresh_from_db()
    assert not connection.tracking_enabled


# --- disable --------------------------------------------------------------------------------------


def test_disabling_deletes_the_script(bigcommerce, connection):
    turn_on(connection)
    bigcommerce.add("DELETE", f"{SCRIPTS}/{UUID}", status=204)

    assert tracking_disable(connection=connection, by="bc-user:1002") == ""

    connection.refresh_from_db()
    assert connection.tracking_enabled is False and connection.tracking_script_uuid == ""
    assert connection.tracking_changed_by == "bc-user:1002"


def test_a_script_already_deleted_counts_as_removed(bigcommerce, connection):
    turn_on(connection)
    bigcommerce.add("DELETE", f"{SCRIPTS}/{UUID}", status=404, json={"status": 404, "title": "Not found"})

    assert tracking_disable(connection=connection, by="x") == ""

    connection.refresh_from_db()
    assert connection.tracking_enabled is False and connection.tracking_script_uuid == ""


@pytest.mark.parametrize("status", [403, 422, 500])
def test_bigcommerce_refusing_the_delete_leaves_tracking_on(bigcommerce, connection, status):
    turn_on(connection)
    before = tracking_fields(connection)
    bigcommerce.add("DELETE", f"{SCRIPTS}/{UUID}", status=status, json={"status": status, "title": "No"})

    assert tracking_disable(connection=connection, by="x").startswith("Tracking is still on.")

    connection.refresh_from_db()
    assert tracking_fields(connection) == before


def test_disconnecting_removes_the_script(bigcommerce, connection, monkeypatch):
    monkeypatch.setattr(connections, "sync_runs_cancel", lambda **kwargs: None)
    turn_on(connection)
    bigcommerce.add("DELETE", f"{SCRIPTS}/{UUID}", status=204)

    connections.connection_disconnect(store=connection.store, bc_user_id=1001)

    connection.refresh_from_db()
    assert connection.state == "disconnected"
    assert connection.tracking_enabled is False and connection.tracking_script_uuid == ""


# --- reconnect to another account -------------------------------------------------------------------


@pytest.fixture
def switched(make_account, make_connection):
    """switched(store, *, tracking_key): the store's connection disconnected and a new one to Acme (EU)."""

    def switch(store, *, tracking_key=EU_KEY):
        old = Connection.objects.get(store=store)
        old.state = Connection.State.DISCONNECTED
        old.save()
        account = make_account(name="acme-eu", business_name="Acme (EU)", region="eu", api_key="k2",
                               tracking_key=tracking_key)
        return old, make_connection(store, account)

    return switch


def test_reconnecting_to_another_account_rewrites_the_same_script(switched, bigcommerce, connection):
    turn_on(connection)
    old, new = switched(connection.store)
    bigcommerce.add("GET", f"{SCRIPTS}/{UUID}", json=script_answer())
    bigcommerce.add("PUT", f"{SCRIPTS}/{UUID}", json=script_answer())

    tracking_move(old=old, new=new, by="owner@example.com")

    assert methods(bigcommerce) == ["GET", "PUT"]
    body = sent_body(bigcommerce.calls[1])
    assert f'ap3c.init("{EU_KEY}", "https://capture-api-eu.ortto.app/")' in body["html"]
    assert "https://cdneu.net/app.js" in body["html"] and US_KEY not in body["html"]
    assert "Acme (EU)" in body["description"] and body["consent_category"] == "analytics"
    old.refresh_from_db()
    new.refresh_from_db()
    assert (new.tracking_enabled, new.tracking_script_uuid) == (True, UUID)
    assert new.tracking_changed_by == "owner@example.com"
    assert (old.tracking_enabled, old.tracking_script_uuid) == (False, "")


def test_reconnecting_to_an_account_without_tracking_key_removes_the_script(switched, bigcommerce, connection):
    turn_on(connection)
    old, new = switched(connection.store, tracking_key="")
    bigcommerce.add("DELETE", f"{SCRIPTS}/{UUID}", status=204)

    tracking_move(old=old, new=new, by="owner@example.com")

    old.refresh_from_db()
    new.refresh_from_db()
    assert (new.tracking_enabled, new.tracking_script_uuid) == (False, "")
    assert (old.tracking_enabled, old.tracking_script_uuid) == (False, "")


def test_a_refused_move_removes_the_script_rather_than_track_into_the_old_account(switched, bigcommerce, connection):
    turn_on(connection)
    old, new = switched(connection.store)
    bigcommerce.add("GET", f"{SCRIPTS}/{UUID}", json=script_answer())
    bigcommerce.add("PUT", f"{SCRIPTS}/{UUID}", status=422, json={"status": 422, "title": "Invalid"})
    bigcommerce.add("DELETE", f"{SCRIPTS}/{UUID}", status=204)

    tracking_move(old=old, new=new, by="owner@example.com")

    new.refresh_from_db()
    assert (new.tracking_enabled, new.tracking_script_uuid) == (False, "")


def test_a_script_that_can_be_neither_moved_nor_removed_stays_visible_on_the_new_connection(switched, bigcommerce,
                                                                                            connection):
    turn_on(connection)
    old, new = switched(connection.store)
    bigcommerce.add("GET", f"{SCRIPTS}/{UUID}", status=403, json={"status": 403, "title": "Forbidden"})
    bigcommerce.add("DELETE", f"{SCRIPTS}/{UUID}", status=403, json={"status": 403, "title": "Forbidden"})

    tracking_move(old=old, new=new, by="owner@example.com")

    new.refresh_from_db()
    # Shown as on, so the owner can un-tick (which retries the delete) or tick again (which rewrites it).
    assert (new.tracking_enabled, new.tracking_script_uuid) == (True, UUID)


# --- the snippet --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "region, capture, loader",
    [
        ("default", "https://capture-api-us.ortto.app/", "https://cdn2l.ink/app.js"),
        ("eu", "https://capture-api-eu.ortto.app/", "https://cdneu.net/app.js"),
        ("au", "https://capture-api-au.ortto.app/", "https://cdn2l.ink/app.js"),
    ],
)
def test_snippet_is_one_script_tag_for_the_region_capture_host(region, capture, loader):
    html = tracking_snippet(tracking_key=US_KEY, region=region)
    assert html.startswith("<script>") and html.endswith("</script>")
    assert html.lower().count("<script") == 1 and html.lower().count("</script") == 1
    assert f'ap3c.init("{US_KEY}", "{capture}")' in html
    assert f's.src = "{loader}"' in html
    assert "ap3c.track({v: 0})" in html


@pytest.mark.parametrize(
    "key",
    ["", "abc'def", 'abc"def', "abc</script><script>alert(1)</script>", "abc\\def", "abc\ndef", "abc def",
     "ab=", "a" * 201, "ключ"],
)
def test_snippet_refuses_keys_that_could_break_out_of_the_js_string(key):
    with pytest.raises(TrackingKeyInvalid):
        tracking_snippet(tracking_key=key, region="default")


def test_snippet_refuses_an_unknown_region():
    with pytest.raises(ValueError):
        tracking_snippet(tracking_key=US_KEY, region="mars")


# --- through the app page ---------------------------------------------------------------------------


def _header(store, bc_user_id=1001):
    return {"HTTP_X_APP_CONTEXT": app_context_token(StoreContext(store.store_hash, bc_user_id))}


def test_ticking_enable_tracking_on_the_app_page_installs_the_script(client, bigcommerce, connection):
    bigcommerce.add("POST", SCRIPTS, json=script_answer())

    response = client.post("/bigcommerce/app/tracking", {"enabled": "1"}, **_header(connection.store))

    assert response.status_code == 200
    state = response.json()["connection"]
    assert state["tracking_enabled"] is True and state["tracking_changed_by"] == "user1001@example.com"
    assert state["tracking_changed_at"]
    connection.refresh_from_db()
    assert connection.tracking_enabled is True and connection.tracking_script_uuid == UUID


def test_the_app_page_names_who_enabled_tracking_by_email(client, bigcommerce, connection):
    StoreUser.objects.create(store=connection.store, bc_user_id=2002, email="staff@acme.example")
    bigcommerce.add("POST", SCRIPTS, json=script_answer())

    client.post("/bigcommerce/app/tracking", {"enabled": "1"}, **_header(connection.store, bc_user_id=2002))
    panel = client.get("/bigcommerce/app/panel", **_header(connection.store)).content.decode()

    connection.refresh_from_db()
    assert connection.tracking_changed_by == "staff@acme.example"
    assert "enabled by staff@acme.example" in panel and "bc-user" not in panel


def test_a_user_without_an_email_is_named_by_their_bigcommerce_id(client, bigcommerce, connection):
    StoreUser.objects.create(store=connection.store, bc_user_id=3003, email="")
    bigcommerce.add("POST", SCRIPTS, json=script_answer())

    client.post("/bigcommerce/app/tracking", {"enabled": "1"}, **_header(connection.store, bc_user_id=3003))

    connection.refresh_from_db()
    assert connection.tracking_changed_by == "bc-user:3003"


def test_unticking_on_the_app_page_removes_the_script(client, bigcommerce, connection):
    turn_on(connection)
    bigcommerce.add("DELETE", f"{SCRIPTS}/{UUID}", status=204)

    response = client.post("/bigcommerce/app/tracking", {"enabled": "0"}, **_header(connection.store))

    assert response.status_code == 200 and response.json()["connection"]["tracking_enabled"] is False


def test_a_refusal_reaches_the_app_page_as_an_error(client, bigcommerce, connection):
    bigcommerce.add("POST", SCRIPTS, status=403, json={"status": 403, "title": "Forbidden"})

    response = client.post("/bigcommerce/app/tracking", {"enabled": "1"}, **_header(connection.store))

    assert response.status_code == 400
    assert "permission" in response.json()["error"] and response.json()["connection"]["tracking_enabled"] is False


def test_the_tracking_endpoint_needs_the_app_context(client, bigcommerce, connection):
    response = client.post("/bigcommerce/app/tracking", {"enabled": "1"})

    assert response.status_code == 401
    connection.refresh_from_db()
    assert connection.tracking_enabled is False and not bigcommerce.calls


# --- against the BigCommerce sandbox, over HTTP -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_sandbox_store_shows_one_script_through_enable_move_and_disable(switched, make_account, make_connection,
                                                                            make_store, sandbox_live):
    from sandbox.bigcommerce.models import Script
    from sandbox.bigcommerce.seed import seed_store, seed_users
    from sandbox.bigcommerce.services import app_install_complete

    sandbox_store = seed_store(store_hash=STORE)
    seed_users(store_hash=STORE, users=[(1001, "owner@example.com", True)])
    install = app_install_complete(store=sandbox_store)
    store = make_store(STORE, access_token=install.access_token)
    connection = make_connection(store, make_account(tracking_key=US_KEY))

    assert tracking_enable(connection=connection, by="a") == ""
    assert tracking_enable(connection=connection, by="a") == ""
    [script] = Script.objects.filter(store=sandbox_store)
    assert str(script.uuid) == connection.tracking_script_uuid
    assert (script.consent_category, script.visibility, script.location, script.kind) == (
        "analytics", "storefront", "head", "script_tag")

    old, new = switched(store)
    tracking_move(old=old, new=new, by="a")
    [script] = Script.objects.filter(store=sandbox_store)
    assert EU_KEY in script.html and str(script.uuid) == new.tracking_script_uuid

    assert tracking_disable(connection=new, by="a") == ""
    assert not Script.objects.filter(store=sandbox_store).exists()
