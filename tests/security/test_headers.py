"""Issue 16, item 9: pages that carry tokens are never cached, and the product's pages send a full CSP."""

import pytest
import requests

from sandbox.bigcommerce.services import signed_payload_jwt

from .harness import installed_sandbox_store, load_page

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_token_pages_are_no_store_and_carry_a_csp(sandbox_live):
    sandbox_store, owner, _ = installed_sandbox_store(sandbox_live)
    app_page = load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=owner))
    signin = requests.get(f"{sandbox_live}/connect/signin/", timeout=30)
    for response, framed in ((app_page, True), (signin, False)):
        assert response.status_code == 200
        assert "no-store" in response.headers["Cache-Control"]
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
        assert ("frame-ancestors 'self' " + sandbox_live in policy) if framed else "frame-ancestors 'none'" in policy
        assert "<script>" not in response.text and "style=" not in response.text


def test_every_page_denies_the_browser_features_the_app_never_uses(sandbox_live):
    """Issue 24: a Permissions-Policy on the product's pages, the admin and the sandbox; a CSP on all of them."""
    sandbox_store, owner, _ = installed_sandbox_store(sandbox_live)
    pages = {
        "app page": load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=owner)),
        "connect sign-in": requests.get(f"{sandbox_live}/connect/signin/", timeout=30),
        "admin login": requests.get(f"{sandbox_live}/admin/login/", timeout=30),
        "sandbox control panel": requests.get(f"{sandbox_live}/sandbox/bigcommerce/store-sec1/manage/", timeout=30),
        "sandbox storefront": requests.get(f"{sandbox_live}/sandbox/bigcommerce/store-sec1/storefront/", timeout=30),
        "sandbox Ortto": requests.get(f"{sandbox_live}/sandbox/ortto/", timeout=30),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
        permissions = response.headers.get("Permissions-Policy", "")
        for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
            assert f"{feature}=()" in permissions, (name, permissions)
        policy = response.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy and "object-src 'none'" in policy, (name, policy)
