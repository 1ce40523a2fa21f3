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
