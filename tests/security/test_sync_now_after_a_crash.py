"""Issue 16, item 9: after a worker crash "Sync now" says when the stalled run resumes (or resumes it
now), instead of "already running" for minutes."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from stores.app_context import StoreContext, app_context_token
from sync.models import SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def _sync_now(base_url: str) -> requests.Response:
    token = app_context_token(StoreContext(store_hash="abc123", bc_user_id=1001))
    return requests.post(f"{base_url}/bigcommerce/app/sync-now", headers={"X-App-Context": token}, timeout=30)


@pytest.fixture
def crashed_run(make_account, make_connection, make_store, live_server, settings):
    settings.SYNC_STALL_SECONDS = 120
    store = make_store("abc123")
    connection = make_connection(store, make_account())
    return SyncRun.objects.create(store=store, connection=connection, kind=SyncRun.Kind.INITIAL,
                                  status=SyncRun.Status.RUNNING, lease="dead-worker")


def test_a_quiet_run_says_when_it_will_resume(live_server, crashed_run):
    last = timezone.now() - timedelta(seconds=45)
    SyncRun.objects.filter(pk=crashed_run.pk).update(heartbeat_at=last)
    response = _sync_now(live_server.url)
    assert response.status_code == 409
    resume_by = last + timedelta(seconds=120 + 60)
    error = response.json()["error"]
    assert f"resumes by itself by about {resume_by:%H:%M} UTC" in error and "in 2 minutes" in error


def test_a_stalled_run_is_resumed_at_once(live_server, crashed_run, monkeypatch):
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: queued.append((func, args)))
    SyncRun.objects.filter(pk=crashed_run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=300))
    response = _sync_now(live_server.url)
    assert response.status_code == 200 and "error" not in response.json()
    assert queued == [("sync.tasks.run_sync", (crashed_run.pk,))]


def test_a_busy_run_is_simply_already_running(live_server, crashed_run):
    SyncRun.objects.filter(pk=crashed_run.pk).update(heartbeat_at=timezone.now())
    response = _sync_now(live_server.url)
    assert response.status_code == 409 and response.json()["error"] == "A sync is already running for this store."
