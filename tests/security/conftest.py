"""Helpers for the hostile-user tests (issue 16): every attack here goes over real HTTP to pytest-django's
live server, with real threads for the concurrent ones (bounded counts, loopback only)."""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Browser:
    """A requests.Session that fetched a form page first, so its POSTs carry the CSRF cookie and token."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.csrf = ""

    def get(self, path: str, **kwargs) -> requests.Response:
        response = self.session.get(self.base_url + path, timeout=30, **kwargs)
        match = CSRF_FIELD.search(response.text)
        if match:
            self.csrf = match[1]
        return response

    def post(self, path: str, data: dict, **kwargs) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        return self.session.post(self.base_url + path, data={**data, "csrfmiddlewaretoken": self.csrf},
                                 timeout=60, **kwargs)


@pytest.fixture
def browser(sandbox_live):
    return lambda: Browser(sandbox_live)


def in_parallel(calls, *, threads: int = 16) -> list:
    """Run the zero-argument callables at once on real threads; their results in order."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda call: call(), calls))
