"""Issue 25, pages a newcomer misread: the strategy under a running import, Reconnect into another account,
and accounts already connected to another store."""

import pytest

from stores.app_context import StoreContext, connect_token
from sync.models import Connection, SyncRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr("sync.queue.transaction.on_commit", lambda fn: fn())
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **k: calls.append(a))
    return calls


@pytest.fixture
def signed_in(client, make_store, make_user):
    store = make_store()
    user = make_user()
    token = connect_token(StoreContext(store_hash=store.store_hash, bc_user_id=1001))
    client.get("/connect/", {"token": token})  # the link leads to the sign-in, whose POST binds the flow
    assert client.post("/connect/signin/", {"email": "owner@example.com", "password": "a-good-password",
                                            "token": token}).status_code == 302
    return store, user


def test_the_strategy_cannot_change_under_a_running_import(client, signed_in, make_account, queued):
    store, user = signed_in
    account = make_account(members=[user])
    client.post("/connect/accounts/", {"account": account.pk})
    syncing = client.post("/connect/merge/", {"merge_strategy": 1})
    run = SyncRun.objects.get(store=store)
    assert syncing["Location"].endswith(f"/connect/syncing/{run.pk}/")
    assert "Merge strategy: Import and merge new records only." in client.get(syncing["Location"]).content.decode()

    # Back from Syncing, another strategy, Next: the page says why not, and nothing pretends otherwise.
    page = client.get("/connect/merge/").content.decode()
    assert "uses <strong>Import and merge new records only</strong>, the merge strategy it started with" in page
    response = client.post("/connect/merge/", {"merge_strategy": 2})
    assert response.status_code == 400
    assert "the merge strategy it started with, to the end" in response.content.decode()
    assert Connection.objects.get(store=store).merge_strategy == 1
    assert list(SyncRun.objects.filter(store=store)) == [run] and run.status == SyncRun.Status.QUEUED

    # Once the import has finished, the strategy changes and the next run uses it.
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.SUCCEEDED)
    response = client.post("/connect/merge/", {"merge_strategy": 2})
    assert response.status_code == 302
    assert Connection.objects.get(store=store).merge_strategy == 2
    assert "Merge strategy: Import and overwrite any records that exist." in client.get(response["Location"]).content.decode()


def test_reconnect_into_another_account_asks_first(client, signed_in, make_account, make_connection, queued):
    store, user = signed_in
    first = make_account(members=[user], name="acme-us", business_name="Acme (US)")
    second = make_account(members=[user], name="acme-eu", business_name="Acme (EU)", region="eu", api_key="k2")
    make_connection(store, first)
    client.post("/connect/accounts/", {"account": second.pk})
    page = client.get("/connect/merge/").content.decode()
    assert "starts a <strong>full import</strong> of every customer, subscriber and order into <strong>Acme (EU)</strong>" in page
    assert 'name="confirm_switch"' in page

    response = client.post("/connect/merge/", {"merge_strategy": 1})
    assert response.status_code == 400 and "run a full import into it" in response.content.decode()
    assert Connection.objects.get(store=store, state="active").account == first
    assert not SyncRun.objects.exists() and not queued

    response = client.post("/connect/merge/", {"merge_strategy": 1, "confirm_switch": "1"})
    assert response.status_code == 302
    assert Connection.objects.get(store=store, state="active").account == second
    assert SyncRun.objects.get().kind == SyncRun.Kind.INITIAL


def test_a_first_connect_needs_no_switch_confirmation(client, signed_in, make_account, queued):
    store, user = signed_in
    client.post("/connect/accounts/", {"account": make_account(members=[user]).pk})
    assert 'name="confirm_switch"' not in client.get("/connect/merge/").content.decode()
    assert client.post("/connect/merge/", {"merge_strategy": 1}).status_code == 302


def test_accounts_connected_to_another_store_are_marked(client, signed_in, make_account, make_connection, make_store):
    store, user = signed_in
    used = make_account(members=[user], name="acme-us", business_name="Acme (US)")
    make_account(members=[user], name="acme-eu", business_name="Acme (EU)", region="eu", api_key="k2")
    make_connection(make_store("other1", name="Beta Bikes"), used)
    make_connection(store, used)  # this store's own connection is "Connected now", not "another store"
    page = client.get("/connect/accounts/").content.decode()
    assert page.count("Connected to Beta Bikes") == 1
    used_row = page[page.index("Acme (US)"):page.index("Acme (EU)")] if page.index("Acme (US)") < page.index("Acme (EU)") \
        else page[page.index("Acme (US)"):]
    assert "Connected to Beta Bikes" in used_row and "Connected now" in used_row


def test_a_short_run_does_not_hold_the_strategy(client, signed_in, make_account, make_connection, queued):
    store, user = signed_in
    account = make_account(members=[user])
    connection = make_connection(store, account, merge_strategy=1)
    SyncRun.objects.create(store=store, connection=connection, kind=SyncRun.Kind.WEBHOOK, status=SyncRun.Status.RUNNING)
    client.post("/connect/accounts/", {"account": account.pk})
    assert "the merge strategy it started with" not in client.get("/connect/merge/").content.decode()
    assert client.post("/connect/merge/", {"merge_strategy": 2}).status_code == 302
    assert Connection.objects.get(store=store).merge_strategy == 2
