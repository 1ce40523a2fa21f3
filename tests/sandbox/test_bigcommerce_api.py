"""The emulated BigCommerce store API: shapes, paging, filters, auth, quota and injected faults."""

from datetime import timedelta

import pytest
from django.utils import timezone

from sandbox.bigcommerce import limits, services
from sandbox.bigcommerce.models import Customer, Order, Subscriber
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users

pytestmark = pytest.mark.django_db

BASE = "/sandbox/bigcommerce/api/stores/demo1234"


@pytest.fixture
def store():
    store = seed_bigcommerce(store_hash="demo1234", name="Acme Outdoor Co.", customers=120, orders=300, seed=7)
    seed_users(store_hash="demo1234")
    return store


@pytest.fixture
def token(store):
    return services.app_install_complete(store=store).access_token


@pytest.fixture
def get(client, token):
    def get(path, **params):
        return client.get(BASE + path, params, HTTP_X_AUTH_TOKEN=token, HTTP_ACCEPT="application/json")

    return get


def test_store_information(get):
    body = get("/v2/store").json()
    assert body["id"] == "demo1234"
    assert body["name"] == "Acme Outdoor Co."
    assert body["secure_url"].startswith("https://")


def test_customers_page_one_has_both_kinds_of_paging(get):
    body = get("/v3/customers", limit=50, include="addresses").json()
    assert len(body["data"]) == 50
    assert body["meta"]["pagination"]["total"] == 120
    assert body["meta"]["pagination"]["total_pages"] == 3
    assert "next" in body["meta"]["pagination"]["links"]
    assert body["meta"]["cursor_pagination"]["end_cursor"]
    assert "addresses" in body["data"][0]
    assert [c["id"] for c in body["data"]] == list(range(1, 51))


def test_customers_offset_pages_cover_everything(get):
    seen = []
    for page in (1, 2, 3):
        body = get("/v3/customers", limit=50, page=page).json()
        seen += [c["id"] for c in body["data"]]
    assert sorted(seen) == list(range(1, 121))
    assert "cursor_pagination" not in get("/v3/customers", limit=50, page=2).json()["meta"]


def test_customers_limit_over_250_is_422(get):
    response = get("/v3/customers", limit=251)
    assert response.status_code == 422
    assert response.json()["status"] == 422


def _walk_cursor(get, **params):
    body = get("/v3/customers", **params).json()
    pages = [body]
    while "next" in body["meta"]["cursor_pagination"]["links"]:
        body = get("/v3/customers", after=body["meta"]["cursor_pagination"]["end_cursor"], **params).json()
        assert "pagination" not in body["meta"]
        pages.append(body)
    return pages


def test_cursor_paging_by_date_modified_visits_every_customer_in_order(get):
    pages = _walk_cursor(get, sort="date_modified:asc", limit=25)
    rows = [c for page in pages for c in page["data"]]
    assert len(rows) == 120
    assert [r["date_modified"] for r in rows] == sorted(r["date_modified"] for r in rows)


def test_cursor_is_stable_when_a_seen_record_is_modified_mid_paging(get, store):
    params = {"sort": "date_modified:asc", "limit": 30}
    first = get("/v3/customers", **params).json()
    seen = [c["id"] for c in first["data"]]
    # The shopper behind the first record edits their profile: it moves to the end of the order.
    moved = Customer.objects.get(store=store, bc_id=seen[0])
    services.customer_update(customer=moved, email=moved.email, first_name="Moved", last_name=moved.last_name)
    body = first
    while "next" in body["meta"]["cursor_pagination"]["links"]:
        body = get("/v3/customers", after=body["meta"]["cursor_pagination"]["end_cursor"], **params).json()
        seen += [c["id"] for c in body["data"]]
    assert set(seen) == set(range(1, 121))  # nothing skipped
    assert seen[-1] == moved.bc_id  # and the change is picked up at the end


def test_cursor_before_returns_the_previous_page(get):
    first = get("/v3/customers", limit=10).json()
    second = get("/v3/customers", limit=10, after=first["meta"]["cursor_pagination"]["end_cursor"]).json()
    back = get("/v3/customers", limit=10, before=second["meta"]["cursor_pagination"]["start_cursor"]).json()
    assert [c["id"] for c in back["data"]] == [c["id"] for c in first["data"]]


def test_customer_filters(get, store):
    middle = Customer.objects.filter(store=store).order_by("date_modified")[60]
    body = get("/v3/customers", **{"date_modified:min": middle.date_modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "limit": 250}).json()
    assert body["meta"]["pagination"]["total"] == 60
    assert [c["id"] for c in get("/v3/customers", **{"id:in": "3,5,8"}).json()["data"]] == [3, 5, 8]
    email = Customer.objects.get(store=store, bc_id=9).email
    assert [c["id"] for c in get("/v3/customers", **{"email:in": email}).json()["data"]] == [9]
    desc = get("/v3/customers", sort="date_created:desc", limit=5).json()["data"]
    assert [c["date_created"] for c in desc] == sorted((c["date_created"] for c in desc), reverse=True)


def test_subscribers_filters_and_paging(get, store):
    total = Subscriber.objects.filter(store=store).count()
    body = get("/v3/customers/subscribers", limit=10, page=2).json()
    assert body["meta"]["pagination"]["total"] == total
    assert body["meta"]["pagination"]["current_page"] == 2
    assert {"consents", "source", "order_id", "date_modified"} <= set(body["data"][0])
    assert [s["id"] for s in get("/v3/customers/subscribers", **{"id:in": "1,2"}).json()["data"]] == [1, 2]
    one = Subscriber.objects.get(store=store, bc_id=3)
    assert [s["id"] for s in get("/v3/customers/subscribers", email=one.email).json()["data"]] == [3]


def test_orders_are_a_bare_list_with_rfc2822_dates(get):
    response = get("/v2/orders", sort="id:asc", limit=5, min_id=10)
    body = response.json()
    assert isinstance(body, list)
    assert [o["id"] for o in body] == [10, 11, 12, 13, 14]
    assert body[0]["date_modified"].endswith("+0000")
    assert isinstance(body[0]["total_inc_tax"], str)
    assert "email" in body[0]["billing_address"]


def test_orders_empty_page_is_204_without_body(get):
    response = get("/v2/orders", min_id=99999)
    assert response.status_code == 204
    assert response.content == b""


def test_orders_filters_count_and_detail(get, store):
    guest_count = Order.objects.filter(store=store, customer_id=0).count()
    assert guest_count > 0
    assert get("/v2/orders/count", customer_id=0).json()["count"] == guest_count
    cutoff = timezone.now() - timedelta(days=30)
    recent = Order.objects.filter(store=store, date_modified__gte=cutoff).count()
    assert get("/v2/orders/count", min_date_modified=cutoff.isoformat()).json()["count"] == recent
    assert get("/v2/orders/7").json()["id"] == 7
    assert get("/v2/orders/99999").status_code == 404


def test_wrong_token_is_401_json(client, store, token):
    response = client.get(BASE + "/v3/customers", HTTP_X_AUTH_TOKEN="nope")
    assert response.status_code == 401
    assert response.json()["status"] == 401 and response.json()["title"]
    assert client.get(BASE + "/v3/customers").status_code == 401


def test_every_response_carries_rate_limit_headers(get):
    response = get("/v3/customers", limit=1)
    for name in ("X-Rate-Limit-Time-Window-Ms", "X-Rate-Limit-Time-Reset-Ms",
                 "X-Rate-Limit-Requests-Quota", "X-Rate-Limit-Requests-Left"):
        assert response.has_header(name)


def test_quota_exhaustion_is_429_with_headers(get, store):
    limits.quota_set(store=store, requests=3, window_ms=60000)
    lefts = [int(get("/v2/store")["X-Rate-Limit-Requests-Left"]) for _ in range(3)]
    assert lefts == [2, 1, 0]
    response = get("/v2/store")
    assert response.status_code == 429
    assert response["X-Rate-Limit-Requests-Left"] == "0"
    assert 0 < int(response["X-Rate-Limit-Time-Reset-Ms"]) <= 60000


def test_quota_window_resets(get, store):
    limits.quota_set(store=store, requests=1, window_ms=1)
    assert get("/v2/store").status_code == 200
    store.refresh_from_db()
    store.window_started_ms -= 10
    store.save()
    assert get("/v2/store").status_code == 200


def test_fail_next_n_requests(client, get, store):
    response = client.post(f"/sandbox/bigcommerce/control/{store.store_hash}/faults",
                           {"fail_next_count": 2, "fail_next_status": 503}, content_type="application/json")
    assert response.json()["fail_next_count"] == 2
    assert [get("/v2/store").status_code for _ in range(3)] == [503, 503, 200]


def test_probabilistic_faults(client, get, store):
    client.post(f"/sandbox/bigcommerce/control/{store.store_hash}/faults",
                {"error_429_probability": 1.0}, content_type="application/json")
    throttled = get("/v2/store")
    assert throttled.status_code == 429
    # An injected 429 reads like the quota's own: the documented reset headers, which the client waits for.
    reset_ms = int(throttled["X-Rate-Limit-Time-Reset-Ms"])
    assert 0 <= reset_ms <= int(throttled["X-Rate-Limit-Time-Window-Ms"])
    assert int(throttled["X-Retry-After"]) == -(-reset_ms // 1000)
    client.post(f"/sandbox/bigcommerce/control/{store.store_hash}/faults",
                {"reset": True, "error_500_probability": 1.0}, content_type="application/json")
    assert get("/v2/store").status_code in (500, 502, 503)
    client.post(f"/sandbox/bigcommerce/control/{store.store_hash}/faults", {"reset": True},
                content_type="application/json")
    assert get("/v2/store").status_code == 200


def test_quota_control_endpoint(client, get, store):
    response = client.post(f"/sandbox/bigcommerce/control/{store.store_hash}/quota",
                           {"requests": 450, "window_ms": 30000}, content_type="application/json")
    assert response.json()["requests"] == 450
    assert get("/v2/store")["X-Rate-Limit-Requests-Quota"] == "450"


def _post(client, token, path, body, method="post"):
    return getattr(client, method)(BASE + path, body, content_type="application/json", HTTP_X_AUTH_TOKEN=token)


def test_scripts_crud_and_validation(client, token, get):
    html = "<script>window.ap3c=1</script>"
    created = _post(client, token, "/v3/content/scripts", {
        "name": "Ortto tracking", "kind": "script_tag", "html": html, "consent_category": "analytics",
        "auto_uninstall": True, "location": "head", "visibility": "storefront",
    })
    assert created.status_code == 200
    script = created.json()["data"]
    assert script["html"] == html and script["uuid"]
    assert get(f"/v3/content/scripts/{script['uuid']}").json()["data"]["name"] == "Ortto tracking"
    updated = _post(client, token, f"/v3/content/scripts/{script['uuid']}", {"enabled": False}, method="put")
    assert updated.json()["data"]["enabled"] is False
    assert get("/v3/content/scripts").json()["meta"]["pagination"]["total"] == 1
    assert _post(client, token, "/v3/content/scripts", {"kind": "src", "src": "https://x"}).status_code == 422
    two_tags = {"name": "x", "kind": "script_tag", "html": "<script></script><script></script>"}
    assert _post(client, token, "/v3/content/scripts", two_tags).status_code == 422
    bad_consent = {"name": "x", "kind": "src", "src": "https://x/a.js", "consent_category": "ads"}
    assert _post(client, token, "/v3/content/scripts", bad_consent).status_code == 422
    deleted = client.delete(BASE + f"/v3/content/scripts/{script['uuid']}", HTTP_X_AUTH_TOKEN=token)
    assert deleted.status_code == 204
    assert get(f"/v3/content/scripts/{script['uuid']}").status_code == 404


def test_at_most_ten_scripts_per_app(client, token):
    for number in range(10):
        body = {"name": f"s{number}", "kind": "src", "src": f"https://cdn.example/{number}.js"}
        assert _post(client, token, "/v3/content/scripts", body).status_code == 200
    eleventh = _post(client, token, "/v3/content/scripts", {"name": "s10", "kind": "src", "src": "https://x/y.js"})
    assert eleventh.status_code == 422


def test_hooks_crud_and_duplicates(client, token, get):
    body = {"scope": "store/customer/*", "destination": "https://bridge.example/bigcommerce/webhooks/",
            "is_active": True, "headers": {"X-Secret": "s3cret"}}
    created = _post(client, token, "/v3/hooks", body)
    assert created.status_code == 200
    hook = created.json()["data"]
    assert hook["scope"] == "store/customer/*" and hook["headers"] == {"X-Secret": "s3cret"}
    assert _post(client, token, "/v3/hooks", body).status_code == 422
    assert _post(client, token, "/v3/hooks", {"scope": "store/order/created"}).status_code == 422
    assert get("/v3/hooks").json()["data"][0]["id"] == hook["id"]
    updated = _post(client, token, f"/v3/hooks/{hook['id']}", {"is_active": False}, method="put")
    assert updated.json()["data"]["is_active"] is False
    assert client.delete(BASE + f"/v3/hooks/{hook['id']}", HTTP_X_AUTH_TOKEN=token).status_code == 200
    assert get(f"/v3/hooks/{hook['id']}").status_code == 404
