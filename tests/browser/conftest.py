"""Real Chromium through Playwright. Outside CI a missing Chromium skips these tests; in CI it fails them."""

import os
import shutil
import threading
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from sandbox import demo

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"

# Playwright's sync API runs an event loop in the test thread; the ORM calls the test makes around it are
# still synchronous, so Django's async-safety guard does not apply here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def chromium_path():
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        message = f"Chromium not found at {CHROMIUM}; install Debian's chromium package"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@pytest.fixture(scope="session")
def browser(chromium_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shoot():
    """Save a screenshot of a step; the README's pictures come from here."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(page, name):
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    return save


@pytest.fixture
def sandbox(sandbox_live, settings):
    """The demo stores and Ortto accounts, served over real HTTP; webhooks delivered as they fire."""
    settings.ORTTO_APP_URL = f"{sandbox_live}/sandbox/ortto/app/{{name}}/"
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    demo.demo_seed(customers=40, orders=80)
    return sandbox_live


@pytest.fixture
def thread_worker(monkeypatch):
    """Run queued django-q2 work in background threads of this process, so pages poll real progress."""
    from django.db import connections
    from django.utils.module_loading import import_string

    threads = []

    def async_task(func, *args, **kwargs):
        def run():
            try:
                (import_string(func) if isinstance(func, str) else func)(*args)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return f"thread-{len(threads)}"

    monkeypatch.setattr("django_q.tasks.async_task", async_task)
    yield threads
    for thread in threads:
        thread.join(timeout=120)
