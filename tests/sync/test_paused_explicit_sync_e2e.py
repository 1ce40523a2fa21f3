"""Issue 25: a pause outlasted the outage. Ortto answered 403 while a sync ran and the account was paused;
once Ortto accepted again, `manage.py sync_store` still failed at once. An explicit sync now asks Ortto
first (one cheap call), over real HTTP against the sandbox's fault injection."""

import pytest
import requests
from django.core.management import CommandError, call_command
from django.urls import reverse

from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from sandbox.ortto.models import RequestLog
from stores.app_context import StoreContext, app_context_token
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import Connection, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

STORE = "pause1"


def _ortto_expired(base_url: str, expired: bool) -> None:
    answer = requests.post(f"{base_url}/sandbox/ortto/control/acme-us/contract", json={"expired": expired}, timeout=30)
    assert answer.status_code == 200


@pytest.fixture
def paused(sandbox_live, make_store, make_connection, sandbox_account):
    sandbox_store = seed_bigcommerce(store_hash=STORE, name="Pause Outdoor", customers=4, orders=4, seed=7)
    seed_users(store_hash=STORE)
    install = app_install_complete(store=sandbox_store)
    store = make_store(STORE, name="Pause Outdoor", access_token=install.access_token)
    connection = make_connection(store, sandbox_account("acme-us"))
    _ortto_expired(sandbox_live, True)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL, enqueue_run=False)
    assert sync_run_execute(run_id=run.pk, sliced=False).status == SyncRun.Status.FAILED
    connection.refresh_from_db()
    assert connection.state == Connection.State.PAUSED
    return connection


def _probes() -> int:
    return RequestLog.objects.filter(path="person/custom-field/get").count()


def test_sync_store_probes_ortto_and_runs_once_it_accepts_again(sandbox_live, paused):
    _ortto_expired(sandbox_live, False)
    before = _probes()
    call_command("sync_store", STORE, verbosity=0)
    paused.refresh_from_db()
    assert paused.state == Connection.State.ACTIVE and paused.state_reason == ""
    assert SyncRun.objects.filter(store=paused.store, kind=SyncRun.Kind.MANUAL).get().status == SyncRun.Status.SUCCEEDED
    assert _probes() > before


def test_sync_store_says_ortto_still_refuses_and_when_it_checks_again(sandbox_live, paused):
    before = _probes()
    with pytest.raises(CommandError) as refused:
        call_command("sync_store", STORE, verbosity=0)
    assert "Ortto still refuses access" in str(refused.value) and "next automatic check is at about" in str(refused.value)
    assert _probes() == before + 1, "one cheap call, no run"
    assert not SyncRun.objects.filter(store=paused.store, kind=SyncRun.Kind.MANUAL).exists()
    paused.refresh_from_db()
    assert paused.state == Connection.State.PAUSED


def test_sync_now_on_the_app_page_probes_first(sandbox_live, paused, queued_work_runs_inline):
    token = app_context_token(StoreContext(store_hash=STORE, bc_user_id=1001))
    _ortto_expired(sandbox_live, False)
    answer = requests.post(f"{sandbox_live}/bigcommerce/app/sync-now", headers={"X-App-Context": token}, timeout=60)
    assert answer.status_code == 200, answer.text
    paused.refresh_from_db()
    assert paused.state == Connection.State.ACTIVE
    assert SyncRun.objects.filter(store=paused.store, kind=SyncRun.Kind.MANUAL).get().status == SyncRun.Status.SUCCEEDED


def test_sync_now_while_ortto_still_refuses_says_so(sandbox_live, paused):
    token = app_context_token(StoreContext(store_hash=STORE, bc_user_id=1001))
    answer = requests.post(f"{sandbox_live}/bigcommerce/app/sync-now", headers={"X-App-Context": token}, timeout=60)
    assert answer.status_code == 409
    assert "Ortto still refuses access" in answer.json()["error"] and "UTC" in answer.json()["error"]
    assert not SyncRun.objects.filter(store=paused.store, kind=SyncRun.Kind.MANUAL).exists()


def test_the_admins_run_probes_first(sandbox_live, paused, admin_client, monkeypatch):
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: queued.append(args))
    url = reverse("admin:stores_store_run_sync", args=[paused.store.pk])
    refused = admin_client.post(url, {"kind": SyncRun.Kind.MANUAL}, follow=True).content.decode()
    assert "Ortto still refuses access" in refused and not queued
    _ortto_expired(sandbox_live, False)
    admin_client.post(url, {"kind": SyncRun.Kind.MANUAL}, follow=True)
    paused.refresh_from_db()
    assert paused.state == Connection.State.ACTIVE
    assert [run.pk for run in SyncRun.objects.filter(kind=SyncRun.Kind.MANUAL)] == [args[0] for args in queued]
    assert len(queued) == 1
