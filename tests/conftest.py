"""Shared fixtures. The suite runs with the sandbox mounted (SANDBOX=1, set by `make test`). Work handed to
django-q2 goes to the real broker as in production and runs only where a test says so: with the
`queued_work_runs_inline` fixture, the browser tests' `thread_worker`, or real `qcluster` processes
(tests/reliability)."""

import os

os.environ.setdefault("SANDBOX", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

BROWSER_TESTS = Path(__file__).parent / "browser"


def pytest_collection_modifyitems(config, items):
    """A test served by a live server is `live` and one under tests/browser is `browser`, whatever its module
    says, so that `make test-fast` (-m "not live and not browser and not bench") never starts either."""
    for item in items:
        if "live_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.live)
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture
def sandbox_live(live_server, settings):
    """Point the bridge at the sandbox served by pytest-django's live server, over real HTTP."""
    url = live_server.url
    settings.PUBLIC_URL = url
    settings.BIGCOMMERCE_API_URL = f"{url}/sandbox/bigcommerce/api"
    settings.BIGCOMMERCE_LOGIN_URL = f"{url}/sandbox/bigcommerce/login"
    settings.BIGCOMMERCE_CONTROL_PANEL_URL = f"{url}/sandbox/bigcommerce/store-{{store_hash}}/manage/app/{{app_id}}"
    settings.ORTTO_API_URL = f"{url}/sandbox/ortto/{{region}}"
    settings.BIGCOMMERCE_FRAME_ANCESTORS = [url]
    settings.CSRF_TRUSTED_ORIGINS = [url]
    return url


@pytest.fixture
def queued_work_runs_inline(monkeypatch):
    """Queued django-q2 work runs at once in the thread that queued it (after its transaction commits)."""
    from django.utils.module_loading import import_string

    def async_task(func, *args, **kwargs):
        (import_string(func) if isinstance(func, str) else func)(*args)
        return "inline"

    monkeypatch.setattr("django_q.tasks.async_task", async_task)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The database cache rolls back with each test; Redis (CI's PostgreSQL pass) does not, so sign-in
    lockouts and rate windows would leak from one test into the next."""
    from django.conf import settings
    from django.core.cache import cache

    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        cache.clear()
    yield
