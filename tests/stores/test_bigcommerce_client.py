"""Unit tests of the BigCommerce client over mocked HTTP (`responses`); nothing here sleeps for real."""

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses
from responses import matchers
from responses.registries import OrderedRegistry

from stores.bigcommerce import (
    BigCommerceAuthError,
    BigCommerceClient,
    BigCommerceError,
    BigCommerceNotFound,
    BigCommerceRateLimited,
    BigCommerceRequestError,
    BigCommerceUnavailable,
    Page,
    TokenGrant,
    exchange_code,
    format_filter_datetime,
)

API = "https://api.bc.test"
LOGIN = "https://login.bc.test"
STORE = "abc123"
TOKEN = "tok-SECRET-abc123-xyz"
V2 = f"{API}/stores/{STORE}/v2"
V3 = f"{API}/stores/{STORE}/v3"


@pytest.fixture(autouse=True)
def bigcommerce_settings(settings):
    settings.BIGCOMMERCE_API_URL = API
    settings.BIGCOMMERCE_LOGIN_URL = LOGIN
    settings.BIGCOMMERCE_CLIENT_ID = "client-id-1"
    settings.BIGCOMMERCE_CLIENT_SECRET = "client-SECRET-1"
    settings.PUBLIC_URL = "https://bridge.example"
    settings.HTTP_TIMEOUT_SECONDS = 7.5
    return settings


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sleeps):
    return BigCommerceClient(STORE, TOKEN, sleep=sleeps.append)


def ordered_mock():
    return responses.RequestsMock(registry=OrderedRegistry)


# --- token exchange -----------------------------------------------------------------------------

GRANT = {
    "access_token": "fresh-token-SECRET",
    "scope": "store_v2_orders_read_only store_v2_customers_read_only",
    "user": {"id": 1002, "username": "staff@acme.example", "email": "staff@acme.example"},
    "owner": {"id": 1001, "username": "owner@acme.example", "email": "owner@acme.example"},
    "context": "stores/abc123",
    "account_uuid": "12345678-90ab-cdef-1234-567890abcdef",
}


def test_exchange_code_posts_the_documented_json_body_and_returns_a_grant():
    expected_body = {
        "client_id": "client-id-1",
        "client_secret": "client-SECRET-1",
        "code": "qr6h3thvbvag2ffq",
        "context": "stores/abc123",
        "scope": "store_v2_orders_read_only store_v2_customers_read_only",
        "grant_type": "authorization_code",
        "redirect_uri": "https://bridge.example/bigcommerce/auth/",
    }
    with responses.RequestsMock() as rsps:
        rsps.post(
            f"{LOGIN}/oauth2/token",
            json=GRANT,
            match=[
                matchers.json_params_matcher(expected_body),
                matchers.header_matcher({"Accept": "application/json", "Content-Type": "application/json"}),
            ],
        )
        grant = exchange_code(code="qr6h3thvbvag2ffq", scope=expected_body["scope"], context="stores/abc123")
        assert rsps.calls[0].request.req_kwargs["timeout"] == 7.5

    assert grant == TokenGrant(
        access_token="fresh-token-SECRET",
        scope=GRANT["scope"],
        store_hash="abc123",
        context="stores/abc123",
        account_uuid=GRANT["account_uuid"],
        user=GRANT["user"],
        owner=GRANT["owner"],
    )
    assert "fresh-token-SECRET" not in repr(grant)


def test_exchange_code_refused_code_is_a_request_error_without_secrets_in_the_message():
    with responses.RequestsMock() as rsps:
        rsps.post(f"{LOGIN}/oauth2/token", status=400, json={"error": "Invalid code"})
        with pytest.raises(BigCommerceRequestError) as caught:
            exchange_code(code="one-time-code", scope="s", context="stores/abc123")
    assert caught.value.status == 400
    assert "Invalid code" in caught.value.message
    for secret in ("client-SECRET-1", "one-time-code"):
        assert secret not in str(caught.value)


def test_exchange_code_bad_client_credentials_is_an_auth_error_without_retry(sleeps):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{LOGIN}/oauth2/token", status=401, json={"error": "Invalid client id or secret"})
        with pytest.raises(BigCommerceAuthError):
            exchange_code(code="c", scope="s", context="stores/abc123", sleep=sleeps.append)
        assert len(rsps.calls) == 1
    assert sleeps == []


def test_exchange_code_retries_a_server_error(sleeps):
    with ordered_mock() as rsps:
        rsps.post(f"{LOGIN}/oauth2/token", status=502)
        rsps.post(f"{LOGIN}/oauth2/token", json=GRANT)
        grant = exchange_code(code="c", scope="s", context="stores/abc123", sleep=sleeps.append)
    assert grant.store_hash == "abc123"
    assert len(sleeps) == 1


# --- requests every call makes ------------------------------------------------------------------


def test_every_request_carries_token_json_headers_and_the_configured_timeout(client):
    with responses.RequestsMock() as rsps:
        rsps.get(
            f"{V2}/store",
            json={"id": "abc123", "name": "Acme Outdoor Co.", "domain": "acme.example"},
            match=[
                matchers.header_matcher(
                    {"X-Auth-Token": TOKEN, "Accept": "application/json", "Content-Type": "application/json"}
                )
            ],
        )
        info = client.store_information()
        assert rsps.calls[0].request.req_kwargs["timeout"] == 7.5
    assert info["name"] == "Acme Outdoor Co."


def test_timeout_is_read_from_settings_at_call_time(client, settings):
    settings.HTTP_TIMEOUT_SECONDS = 3.0
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V2}/store", json={})
        client.store_information()
        assert rsps.calls[0].request.req_kwargs["timeout"] == 3.0


def test_client_repr_does_not_show_the_token(client):
    assert TOKEN not in repr(client)


# --- paging -------------------------------------------------------------------------------------

SINCE = datetime(2024, 5, 14, 9, 34, 0, 123456, tzinfo=timezone.utc)


def test_customers_follow_the_after_cursor_until_there_is_no_next_link(client):
    first = {
        "data": [{"id": 1}, {"id": 2}],
        "meta": {
            "pagination": {"total": 3, "count": 2, "per_page": 2, "current_page": 1, "total_pages": 2,
                           "links": {"current": "?page=1", "next": "?page=2"}},
            "cursor_pagination": {"count": 2, "per_page": 2, "start_cursor": "c1", "end_cursor": "c2",
                                  "links": {"next": "?after=c2"}},
        },
    }
    second = {
        "data": [{"id": 3}],
        "meta": {"cursor_pagination": {"count": 1, "per_page": 2, "start_cursor": "c3", "end_cursor": "c3",
                                       "links": {"previous": "?before=c3"}}},
    }
    base = {"include": "addresses", "sort": "date_modified:asc", "limit": "2",
            "date_modified:min": "2024-05-14T09:34:00Z"}
    with ordered_mock() as rsps:
        rsps.get(f"{V3}/customers", json=first, match=[matchers.query_param_matcher(base)])
        rsps.get(f"{V3}/customers", json=second, match=[matchers.query_param_matcher({**base, "after": "c2"})])
        pages = [client.customers_page(modified_since=SINCE, limit=2)]
        pages.append(client.customers_page(modified_since=SINCE, after=pages[0].next_after, limit=2))

    assert pages == [
        Page(items=[{"id": 1}, {"id": 2}], total=3, next_after="c2", next_page=2, total_pages=2),
        Page(items=[{"id": 3}], total=None, next_after=None),
    ]


def test_customers_without_cursor_metadata_page_by_number(client):
    """An answer with meta.pagination only: the client says which page comes next and asks for it by number."""
    def answer(ids, page):
        return {"data": [{"id": i} for i in ids], "meta": {"pagination": {
            "total": 3, "count": len(ids), "per_page": 2, "current_page": page, "total_pages": 2}}}

    base = {"include": "addresses", "sort": "date_modified:asc", "limit": "2"}
    with ordered_mock() as rsps:
        rsps.get(f"{V3}/customers", json=answer([1, 2], 1), match=[matchers.query_param_matcher(base)])
        rsps.get(f"{V3}/customers", json=answer([3], 2),
                 match=[matchers.query_param_matcher({**base, "page": "2"})])
        first = client.customers_page(limit=2)
        second = client.customers_page(page=first.next_page, limit=2)
    assert (first.next_after, first.next_page) == (None, 2)
    assert second.items == [{"id": 3}] and second.next_page is None


def test_customers_by_ids_send_a_comma_separated_id_in(client):
    with responses.RequestsMock() as rsps:
        rsps.get(
            f"{V3}/customers",
            json={"data": [{"id": 4}], "meta": {"pagination": {"total": 1}}},
            match=[matchers.query_param_matcher(
                {"include": "addresses", "sort": "date_modified:asc", "limit": "250", "id:in": "4,5"}
            )],
        )
        page = client.customers_page(ids=[4, 5])
    assert page.items == [{"id": 4}] and page.total == 1 and page.next_after is None


def test_subscribers_are_paged_by_page_number(client):
    def body(page, ids):
        return {"data": [{"id": i} for i in ids],
                "meta": {"pagination": {"total": 3, "count": len(ids), "per_page": 2, "current_page": page,
                                        "total_pages": 2}}}

    with ordered_mock() as rsps:
        rsps.get(f"{V3}/customers/subscribers", json=body(1, [1, 2]), match=[
            matchers.query_param_matcher({"page": "1", "limit": "2", "date_modified:min": "2024-05-14T09:34:00Z"})])
        rsps.get(f"{V3}/customers/subscribers", json=body(2, [3]), match=[
            matchers.query_param_matcher({"page": "2", "limit": "2", "date_modified:min": "2024-05-14T09:34:00Z"})])
        pages = [client.subscribers_page(modified_since=SINCE, page=1, limit=2)]
        pages.append(client.subscribers_page(modified_since=SINCE, page=pages[0].next_page, limit=2))

    assert [p.items for p in pages] == [[{"id": 1}, {"id": 2}], [{"id": 3}]]
    assert [p.next_page for p in pages] == [2, None]
    assert pages[0].total == 3


def test_subscribers_by_ids(client):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V3}/customers/subscribers", json={"data": [], "meta": {"pagination": {"total": 0}}},
                 match=[matchers.query_param_matcher({"page": "1", "limit": "250", "id:in": "7,8"})])
        page = client.subscribers_page(ids=[7, 8])
    assert page == Page(items=[], total=0, next_page=None)


def test_orders_are_paged_by_min_id_until_204(client):
    orders_1 = [{"id": 100, "date_modified": "Tue, 14 May 2024 09:34:00 +0000"}, {"id": 104}]
    orders_2 = [{"id": 107}]
    # Every orders page carries its line items (Ordered product costs no request of its own).
    base = {"sort": "id:asc", "limit": "2", "min_date_modified": "2024-05-14T09:34:00Z",
            "include": "consignments.line_items", "consignment_structure": "object"}
    with ordered_mock() as rsps:
        rsps.get(f"{V2}/orders", json=orders_1, match=[matchers.query_param_matcher(base)])
        rsps.get(f"{V2}/orders", json=orders_2, match=[matchers.query_param_matcher({**base, "min_id": "105"})])
        rsps.get(f"{V2}/orders", status=204, match=[matchers.query_param_matcher({**base, "min_id": "108"})])
        pages = [client.orders_page(modified_since=SINCE, limit=2)]
        pages.append(client.orders_page(modified_since=SINCE, min_id=105, limit=2))
        pages.append(client.orders_page(modified_since=SINCE, min_id=108, limit=2))

    assert [p.items for p in pages] == [orders_1, orders_2, []]
    # Items come back exactly as BigCommerce sent them.
    assert pages[0].items[0]["date_modified"] == "Tue, 14 May 2024 09:34:00 +0000"


def test_orders_page_204_is_an_empty_page(client):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V2}/orders", status=204)
        assert client.orders_page(min_id=5) == Page(items=[])


def test_orders_count_and_single_order(client):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V2}/orders/count", json={"count": 42, "statuses": []},
                 match=[matchers.query_param_matcher({"min_date_modified": "2024-05-14T09:34:00Z"})])
        rsps.get(f"{V2}/orders/100", json={"id": 100})
        rsps.get(f"{V2}/orders/101", status=404, json=[{"status": 404, "message": "The requested resource was not found."}])
        assert client.orders_count(modified_since=SINCE) == 42
        assert client.order(100) == {"id": 100}
        assert client.order(101) is None


# --- rate limits and retries --------------------------------------------------------------------


def test_429_sleeps_for_the_reset_header_then_succeeds(client, sleeps):
    with ordered_mock() as rsps:
        # Lower-case names: BigCommerce's headers are case-insensitive since 2022.
        rsps.get(f"{V2}/store", status=429,
                 headers={"x-rate-limit-time-reset-ms": "1500", "x-rate-limit-requests-left": "0"})
        rsps.get(f"{V2}/store", json={"name": "Acme"},
                 headers={"X-Rate-Limit-Requests-Left": "149", "X-Rate-Limit-Time-Reset-Ms": "29000"})
        assert client.store_information() == {"name": "Acme"}
    assert sleeps == [1.5]


def test_429_without_headers_backs_off_with_jitter(client, sleeps):
    with ordered_mock() as rsps:
        rsps.get(f"{V2}/store", status=429)
        rsps.get(f"{V2}/store", status=429)
        rsps.get(f"{V2}/store", json={})
        client.store_information()
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_server_error_is_retried(client, sleeps):
    with ordered_mock() as rsps:
        rsps.get(f"{V3}/content/scripts/u1", status=503)
        rsps.get(f"{V3}/content/scripts/u1", status=500, json={"title": "oops"})
        rsps.get(f"{V3}/content/scripts/u1", json={"data": {"uuid": "u1"}})
        assert client.get_script("u1") == {"uuid": "u1"}
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "failure", [requests.exceptions.ReadTimeout("read timed out"), requests.exceptions.ConnectTimeout("c"),
                requests.exceptions.ConnectionError("refused")]
)
def test_timeouts_and_connection_errors_are_retried(client, sleeps, failure):
    with ordered_mock() as rsps:
        rsps.get(f"{V2}/orders/count", body=failure)
        rsps.get(f"{V2}/orders/count", json={"count": 1})
        assert client.orders_count() == 1
    assert len(sleeps) == 1


def test_retries_are_capped_and_end_in_a_typed_error(client, sleeps):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V2}/store", status=502)
        with pytest.raises(BigCommerceUnavailable) as caught:
            client.store_information()
        assert len(rsps.calls) == 6
    assert len(sleeps) == 5
    assert caught.value.status == 502


def test_persistent_timeouts_end_in_unavailable(client, sleeps):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V2}/store", body=requests.exceptions.ReadTimeout("slow"))
        with pytest.raises(BigCommerceUnavailable) as caught:
            client.store_information()
        assert len(rsps.calls) == 6
    assert caught.value.status is None
    assert "timed out" in caught.value.message


def test_persistent_429_ends_in_rate_limited(client, sleeps):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V2}/store", status=429, headers={"X-Rate-Limit-Time-Reset-Ms": "2000"})
        with pytest.raises(BigCommerceRateLimited) as caught:
            client.store_information()
        assert len(rsps.calls) == 6
    assert sleeps == [2.0] * 5
    assert caught.value.status == 429


def test_total_sleep_is_capped(sleeps):
    client = BigCommerceClient(STORE, TOKEN, sleep=sleeps.append, max_total_sleep=5.0)
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V2}/store", status=429, headers={"X-Rate-Limit-Time-Reset-Ms": "3000"})
        with pytest.raises(BigCommerceRateLimited):
            client.store_information()
        assert len(rsps.calls) == 2
    assert sleeps == [3.0]


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_raise_at_once(client, sleeps, status):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V2}/store", status=status, json={"status": status, "title": "Unauthorized"})
        with pytest.raises(BigCommerceAuthError) as caught:
            client.store_information()
        assert len(rsps.calls) == 1
    assert sleeps == []
    assert caught.value.status == status


def test_other_4xx_raise_a_request_error_with_the_parsed_errors(client, sleeps):
    errors = {"status": 422, "title": "JSON data is missing or invalid", "errors": {"name": "required"}}
    with responses.RequestsMock() as rsps:
        rsps.post(f"{V3}/content/scripts", status=422, json=errors)
        with pytest.raises(BigCommerceRequestError) as caught:
            client.create_script({"description": "no name"})
        assert len(rsps.calls) == 1
    assert caught.value.errors == errors
    assert caught.value.status == 422
    assert "JSON data is missing or invalid" in caught.value.message
    assert sleeps == []


def test_all_errors_share_the_base_class():
    for error in (BigCommerceAuthError, BigCommerceNotFound, BigCommerceRateLimited, BigCommerceUnavailable,
                  BigCommerceRequestError):
        assert issubclass(error, BigCommerceError)


def test_token_never_reaches_logs_or_error_messages(client, caplog):
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V2}/store", status=500, json={"title": "boom"})
        with pytest.raises(BigCommerceUnavailable) as caught:
            client.store_information()
    assert caplog.records  # the retries were logged ...
    assert TOKEN not in caplog.text  # ... without the token
    assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value.body)


# --- pacing -------------------------------------------------------------------------------------


def test_pacing_sleeps_for_the_reset_when_requests_left_reaches_the_reserve(client, sleeps):
    with ordered_mock() as rsps:
        rsps.get(f"{V2}/orders/count", json={"count": 1},
                 headers={"X-Rate-Limit-Requests-Left": "3", "X-Rate-Limit-Time-Reset-Ms": "9000"})
        rsps.get(f"{V2}/orders/count", json={"count": 1},
                 headers={"x-rate-limit-requests-left": "2", "x-rate-limit-time-reset-ms": "4200"})
        rsps.get(f"{V2}/orders/count", json={"count": 1},
                 headers={"X-Rate-Limit-Requests-Left": "149", "X-Rate-Limit-Time-Reset-Ms": "30000"})
        rsps.get(f"{V2}/orders/count", json={"count": 1})
        client.orders_count()
        assert sleeps == []  # 3 left: above the reserve
        client.orders_count()
        assert sleeps == []  # the pause happens before the *next* request
        client.orders_count()
        assert sleeps == [pytest.approx(4.2, abs=0.5)]
        client.orders_count()
        assert sleeps == [pytest.approx(4.2, abs=0.5)]


def test_pacing_reserve_is_configurable(sleeps):
    client = BigCommerceClient(STORE, TOKEN, sleep=sleeps.append, rate_limit_reserve=10)
    with ordered_mock() as rsps:
        rsps.get(f"{V2}/store", json={}, headers={"X-Rate-Limit-Requests-Left": "10",
                                                  "X-Rate-Limit-Time-Reset-Ms": "1000"})
        rsps.get(f"{V2}/store", json={})
        client.store_information()
        client.store_information()
    assert sleeps == [pytest.approx(1.0, abs=0.5)]


def test_429_does_not_also_trigger_a_pacing_pause(client, sleeps):
    with ordered_mock() as rsps:
        rsps.get(f"{V2}/store", status=429,
                 headers={"X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "800"})
        rsps.get(f"{V2}/store", json={})
        client.store_information()
    assert sleeps == [0.8]


# --- scripts ------------------------------------------------------------------------------------

SCRIPT = {
    "name": "Ortto tracking",
    "description": "Ortto capture script",
    "html": "<script>/* ap3c */</script>",
    "auto_uninstall": True,
    "load_method": "default",
    "location": "head",
    "visibility": "storefront",
    "kind": "script_tag",
    "consent_category": "analytics",
    "enabled": True,
}


def test_scripts_crud(client):
    uuid = "03805148-a592-4803-9482-e91fe5c1be12"
    with responses.RequestsMock() as rsps:
        rsps.post(f"{V3}/content/scripts", json={"data": {"uuid": uuid, **SCRIPT}, "meta": {}},
                  match=[matchers.json_params_matcher(SCRIPT)])
        rsps.put(f"{V3}/content/scripts/{uuid}", json={"data": {"uuid": uuid, "enabled": False}, "meta": {}},
                 match=[matchers.json_params_matcher({"enabled": False})])
        rsps.get(f"{V3}/content/scripts/{uuid}", json={"data": {"uuid": uuid}, "meta": {}})
        rsps.delete(f"{V3}/content/scripts/{uuid}", status=204)

        assert client.create_script(SCRIPT)["uuid"] == uuid
        assert client.update_script(uuid, {"enabled": False}) == {"uuid": uuid, "enabled": False}
        assert client.get_script(uuid) == {"uuid": uuid}
        assert client.delete_script(uuid) is None


def test_missing_script_reads_as_none_and_deletes_as_removed(client, sleeps):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V3}/content/scripts/gone", status=404, json={"status": 404, "title": "Not found"})
        rsps.delete(f"{V3}/content/scripts/gone", status=404, json={"status": 404, "title": "Not found"})
        assert client.get_script("gone") is None
        client.delete_script("gone")
    assert sleeps == []


# --- webhooks -----------------------------------------------------------------------------------

HOOK = {"id": 22561593, "scope": "store/order/created", "destination": "https://bridge.example/bigcommerce/webhooks/",
        "is_active": True, "headers": {"X-Bridge-Secret": "s3cr3t"}, "client_id": "client-id-1", "store_hash": STORE}


@pytest.mark.parametrize("answer", [{"data": HOOK, "meta": {}}, HOOK], ids=["wrapped", "flat"])
def test_create_hook_sends_scope_destination_headers_and_unwraps_the_answer(client, answer):
    body = {"scope": "store/order/created", "destination": "https://bridge.example/bigcommerce/webhooks/",
            "is_active": True, "headers": {"X-Bridge-Secret": "s3cr3t"}}
    with responses.RequestsMock() as rsps:
        rsps.post(f"{V3}/hooks", json=answer, match=[matchers.json_params_matcher(body)])
        hook = client.create_hook(scope=body["scope"], destination=body["destination"], headers=body["headers"])
    assert hook == HOOK


def test_list_hooks_walks_every_page(client):
    with ordered_mock() as rsps:
        rsps.get(f"{V3}/hooks", json={"data": [HOOK], "meta": {"pagination": {"current_page": 1, "total_pages": 2}}},
                 match=[matchers.query_param_matcher({"page": "1", "limit": "250"})])
        rsps.get(f"{V3}/hooks", json={"data": [{**HOOK, "id": 2}],
                                      "meta": {"pagination": {"current_page": 2, "total_pages": 2}}},
                 match=[matchers.query_param_matcher({"page": "2", "limit": "250"})])
        hooks = client.list_hooks()
    assert [h["id"] for h in hooks] == [22561593, 2]


def test_list_hooks_accepts_a_flat_list(client):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V3}/hooks", json=[HOOK])
        assert client.list_hooks() == [HOOK]


def test_delete_hook_treats_404_as_removed(client):
    with responses.RequestsMock() as rsps:
        rsps.delete(f"{V3}/hooks/22561593", json={"data": HOOK, "meta": {}})
        rsps.delete(f"{V3}/hooks/5", status=404)
        assert client.delete_hook(22561593) is None
        assert client.delete_hook(5) is None


# --- dates --------------------------------------------------------------------------------------


def test_format_filter_datetime_is_utc_iso8601():
    amsterdam = timezone(timedelta(hours=2))
    assert format_filter_datetime(datetime(2024, 5, 14, 11, 34, 0, 999, tzinfo=amsterdam)) == "2024-05-14T09:34:00Z"
    with pytest.raises(ValueError):
        format_filter_datetime(datetime(2024, 5, 14, 9, 34))


def test_request_bodies_are_json(client):
    with responses.RequestsMock() as rsps:
        rsps.post(f"{V3}/content/scripts", json={"data": {"uuid": "u"}})
        client.create_script({"name": "x"})
        assert json.loads(rsps.calls[0].request.body) == {"name": "x"}


def test_unretryable_transport_errors_are_still_typed(client, sleeps):
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V2}/store", body=requests.exceptions.TooManyRedirects("loop"))
        with pytest.raises(BigCommerceError) as caught:
            client.store_information()
        assert len(rsps.calls) == 1
    assert "TooManyRedirects" in caught.value.message
    assert sleeps == []


# --- how many reads the quota can keep busy (Little's law) --------------------------------------------


def test_in_flight_wanted_is_the_quota_rate_times_the_answer_time(client, monkeypatch):
    """450 requests per 30 s (Pro) answered in 0.5 s: 7.5 requests in flight use the whole quota."""
    clock = {"now": 100.0}
    monkeypatch.setattr("stores.bigcommerce.time.monotonic", lambda: clock["now"])

    def slow_answer(request):
        clock["now"] += 0.5
        return 200, {"X-Rate-Limit-Requests-Quota": "450", "X-Rate-Limit-Time-Window-Ms": "30000",
                     "X-Rate-Limit-Requests-Left": "400", "X-Rate-Limit-Time-Reset-Ms": "20000"}, '{"count": 1}'

    assert client.in_flight_wanted() is None  # nothing known before an answer
    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.GET, f"{V2}/orders/count", callback=slow_answer)
        client.orders_count()
    assert client.in_flight_wanted() == pytest.approx(7.5)


def test_answers_without_quota_headers_leave_the_sizing_to_the_setting(client, settings):
    from sync.engine.bigcommerce_pages import read_concurrency

    settings.BIGCOMMERCE_READ_CONCURRENCY = 3
    with responses.RequestsMock() as rsps:
        rsps.get(f"{V2}/orders/count", json={"count": 1})
        client.orders_count()
    assert client.in_flight_wanted() is None
    assert read_concurrency(client) == 3

