"""Helpers (not fixtures) for the hostile-user tests (issue 16): every attack here goes over real HTTP to pytest-django's
live server, with real threads for the concurrent ones (bounded counts, loopback only)."""

import re
from concurrent.futures import ThreadPoolExecutor

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


def in_parallel(calls, *, threads: int = 16) -> list:
    """Run the zero-argument callables at once on real threads; their results in order."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda call: call(), calls))


CONNECT_LINK = re.compile(r'id="connect-button" href="([^"]+)"')


def installed_sandbox_store(base_url: str, store_hash: str = "sec1"):
    """A sandbox store with an owner (2001) and a staff user (2002), installed over HTTP as a merchant
    would: BigCommerce's auth callback hits the bridge, which exchanges the code with the sandbox."""
    import html

    from sandbox.bigcommerce.seed import seed_store, seed_users
    from sandbox.bigcommerce.services import app_auth_callback_url, app_install_grant

    sandbox_store = seed_store(store_hash=store_hash)
    owner, staff = seed_users(store_hash=store_hash)
    install = app_install_grant(store=sandbox_store, user=owner)
    page = requests.get(html.unescape(app_auth_callback_url(install=install)), timeout=30)
    assert page.status_code == 200, page.text[:500]
    return sandbox_store, owner, staff


def load_page(base_url: str, token: str) -> requests.Response:
    return requests.get(f"{base_url}/bigcommerce/load/", params={"signed_payload_jwt": token}, timeout=30)


def connect_link(page: requests.Response) -> str:
    import html

    return html.unescape(CONNECT_LINK.search(page.text)[1])


def follow_connect_link(person: Browser, link: str, *, email: str, password: str) -> requests.Response:
    """Open a Connect link in a browser not signed in to the bridge (it shows the sign-in, naming the store)
    and sign in there: that POST binds the connect flow to this browser's session."""
    from urllib.parse import parse_qs, urlsplit

    page = person.session.get(link, timeout=30)
    assert page.status_code == 200 and "Ortto Bridge sign-in" in page.text, page.text[:300]
    person.csrf = CSRF_FIELD.search(page.text)[1]
    token = parse_qs(urlsplit(link).query)["token"][0]
    return person.post("/connect/signin/", {"email": email, "password": password, "token": token})
