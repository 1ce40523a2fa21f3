"""Issue 25: there was no favicon, so every page's visit logged a 404 for /favicon.ico."""

import pytest
import requests

pytestmark = pytest.mark.django_db

ICO_MAGIC = b"\x00\x00\x01\x00"


def test_favicon_ico_answers_with_an_icon_over_http(live_server):
    response = requests.get(f"{live_server.url}/favicon.ico", timeout=10)
    assert response.status_code == 200 and response.history and response.history[0].status_code == 302
    assert response.content.startswith(ICO_MAGIC)
    assert response.headers["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")


@pytest.mark.parametrize("path", [
    "/connect/signin/",                                      # the product's pages (templates/base.html)
    "/admin/login/",                                         # the admin (templates/admin/base_site.html)
    "/sandbox/bigcommerce/",                                 # the emulated control panel's store picker
    "/sandbox/bigcommerce/store-demo1234/storefront/",       # the sandbox store's storefront and checkout
    "/sandbox/bigcommerce/store-demo1234/checkout/",
    "/sandbox/bigcommerce/store-demo1234/manage/",           # its control panel
    "/sandbox/ortto/",                                       # the emulated Ortto
])
def test_every_kind_of_page_names_the_icon(client, path, live_server):
    from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users

    seed_bigcommerce(store_hash="demo1234", name="Acme Outdoor Co.", customers=3, orders=3, seed=1)
    seed_users(store_hash="demo1234")
    response = client.get(path, follow=True)
    assert response.status_code == 200, path
    html = response.content.decode()
    assert '<link rel="icon" href="/static/favicon.ico">' in html, path
    assert requests.get(f"{live_server.url}/static/favicon.ico", timeout=10).status_code == 200
