"""Issue 25: the Syncing page showed Done while the run was still queued, and Done opened a second
control-panel tab. Done now waits for the run and returns to the app page that opened the flow."""

import threading

import django_q.tasks
import pytest

from sync.models import SyncRun
from sync.tasks import run_sync

from .test_journey import connect, install_and_open

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def gated_worker(thread_worker, monkeypatch):
    """The thread worker, holding each run until the test opens the gate."""
    gate = threading.Event()
    in_thread = django_q.tasks.async_task  # thread_worker's

    def async_task(func, *args, **kwargs):
        if func not in ("sync.tasks.run_sync", run_sync):
            return in_thread(func, *args, **kwargs)  # mail, incident checks: not held

        def held(*run_args):
            gate.wait(60)
            run_sync(*run_args)
        return in_thread(held, *args, **kwargs)

    monkeypatch.setattr("django_q.tasks.async_task", async_task)
    yield gate
    gate.set()


def test_done_waits_for_the_run_and_returns_to_the_app_page(page, sandbox, gated_worker):
    frame = install_and_open(page, sandbox)
    tab = connect(page.context, frame, account="Acme Outdoor (EU)", strategy="Import and merge new records only")
    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.QUEUED
    tab.wait_for_timeout(1500)  # a few polls of a queued run
    assert tab.get_by_role("link", name="Done").is_hidden(), "Done offered while the run is queued"
    assert "Done appears when the sync has finished" in tab.locator("#done-wait").inner_text()

    gated_worker.set()
    tab.get_by_role("link", name="Done").wait_for(state="visible", timeout=60_000)
    assert "Succeeded" in tab.locator("#progress-text").inner_text()
    with tab.expect_event("close"):
        tab.get_by_role("link", name="Done").click()
    assert page.context.pages == [page], "Done opened another tab instead of returning to the app page"
    frame.locator("#business-name", has_text="Acme Outdoor (EU)").wait_for()
    frame.get_by_text("Succeeded").wait_for()

    # Sync now: one manual run, then the button counts down to when it opens again.
    frame.get_by_role("button", name="Sync now").click()
    button = frame.locator("#sync-now", has_text="available in")
    button.wait_for(timeout=60_000)
    assert button.is_disabled() and "One manual sync a minute per store." in frame.locator("#sync-now-reason").inner_text()
    first = int(button.locator("[data-countdown]").inner_text())
    page.wait_for_timeout(2100)
    assert 0 < int(button.locator("[data-countdown]").inner_text()) < first <= 60
    assert SyncRun.objects.filter(kind=SyncRun.Kind.MANUAL).count() == 1

    # Opened some other way (typed in, from a bookmark): the browser keeps the tab, Done leads to the app.
    direct = page.context.new_page()
    direct.goto(sandbox + "/sandbox/bigcommerce/")
    direct.goto(f"{sandbox}/connect/syncing/{run.pk}/")
    direct.get_by_role("link", name="Done").click()
    direct.wait_for_url("**/store-demo1234/manage/app/**")
