"""Issue 24, low finding: "Sync now" and the tracking toggle had no rate limit (5,439 posts in 45 s made
79 manual runs; 40 toggles made 82 Scripts API calls). Attacked over real HTTP against the sandbox."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.core.signals import request_started
from django.utils import timezone

from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from stores.app_context import StoreContext, app_context_token
from sync.models import SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

STORE = "rate1"


def _post(base_url: str, path: str, data=None) -> requests.Response:
    token = app_context_token(StoreContext(store_hash=STORE, bc_user_id=1001))
    return requests.post(f"{base_url}/bigcommerce/app/{path}", headers={"X-App-Context": token}, data=data or {},
                         timeout=30)


def _panel(base_url: str) -> str:
    token = app_context_token(StoreContext(store_hash=STORE, bc_user_id=1001))
    return requests.get(f"{base_url}/bigcommerce/app/panel", headers={"X-App-Context": token}, timeout=30).text


@pytest.fixture
def connected(sandbox_live, make_store, make_connection, sandbox_account):
    sandbox_store = seed_bigcommerce(store_hash=STORE, name="Rate Outdoor", customers=3, orders=3, seed=5)
    seed_users(store_hash=STORE)
    install = app_install_complete(store=sandbox_store)
    store = make_store(STORE, name="Rate Outdoor", access_token=install.access_token)
    return make_connection(store, sandbox_account("acme-us"))


@pytest.fixture
def runs_finish_at_once(monkeypatch):
    """A worker that finishes every queued run at once: the flood then meets no active run to hide behind."""
    def async_task(func, *args, **kwargs):
        SyncRun.objects.filter(pk=args[0]).update(status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now())

    monkeypatch.setattr("django_q.tasks.async_task", async_task)


def test_a_flood_of_sync_now_makes_one_manual_run_and_says_why(sandbox_live, connected, runs_finish_at_once):
    first = _post(sandbox_live, "sync-now")
    assert first.status_code == 200, first.text
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: _post(sandbox_live, "sync-now"), range(40)))
    assert SyncRun.objects.filter(store__store_hash=STORE, kind=SyncRun.Kind.MANUAL).count() == 1
    assert {a.status_code for a in answers} == {409}
    error = answers[-1].json()["error"]
    assert "Sync now is available again in" in error and " s." in error
    panel = _panel(sandbox_live)
    assert "Sync now (available in" in panel and "One manual sync a minute per store." in panel


def _count_script_calls(calls: list):
    def count(sender, environ=None, **kwargs):
        if environ and "/v3/content/scripts" in environ.get("PATH_INFO", ""):
            calls.append(environ["REQUEST_METHOD"])
    request_started.connect(count, weak=False)
    return count


def test_tracking_toggles_are_limited_per_store_and_a_refused_one_calls_nothing(sandbox_live, connected):
    calls: list[str] = []
    receiver = _count_script_calls(calls)
    try:
        answers = [_post(sandbox_live, "tracking", {"enabled": "1" if i % 2 == 0 else "0"}) for i in range(40)]
        allowed = [a for a in answers if a.status_code == 200]
        assert len(allowed) == 4, [a.status_code for a in answers]
        refused = answers[4:]
        assert {a.status_code for a in refused} == {400}
        assert "nothing was changed" in refused[0].json()["error"] and "Try again in" in refused[0].json()["error"]
        assert calls, "the allowed toggles reached the Scripts API"
        calls_after_limit = len(calls)
        _post(sandbox_live, "tracking", {"enabled": "1"})
        assert len(calls) == calls_after_limit, "a refused toggle must not call BigCommerce"
        assert len(calls) <= 4 * 3, calls
    finally:
        request_started.disconnect(receiver)
