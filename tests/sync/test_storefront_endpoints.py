"""The storefront endpoints' guards (sync/catalog/storefront.py): rate limits, no session, bad input."""

import pytest

from sync.catalog.storefront import FORM_IP
from sync.models import ProductActivity, StockWait

pytestmark = pytest.mark.django_db


def test_the_back_in_stock_form_is_rate_limited_per_ip(client, make_store):
    make_store("abc123")  # installed, but without a live connection: every post is a 404 that writes nothing
    form = {"email": "a@example.com", "product_id": "1", "consent": "1"}
    answers = [client.post("/storefront/abc123/back-in-stock/", form).status_code for _ in range(FORM_IP.limit + 1)]
    assert answers == [404] * FORM_IP.limit + [429]
    assert not StockWait.objects.exists() and not ProductActivity.objects.exists()


def test_the_endpoints_need_no_session_and_take_only_posts(client):
    assert client.get("/storefront/abc123/viewed/").status_code == 405
    response = client.post("/storefront/abc123/viewed/", {"product_id": "1", "token": "x"})
    assert response.status_code == 404 and "Set-Cookie" not in response.headers
    assert response.headers["Access-Control-Allow-Origin"] == "*"
