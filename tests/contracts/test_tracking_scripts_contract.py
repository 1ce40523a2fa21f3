"""Contract test: the Scripts API requests the tracking service sends are ones BigCommerce's spec allows.

The service runs against `responses` callbacks that capture every request; each is validated against
the official scripts.v3.yml with openapi-core through the shared validator of
bigcommerce_spec.py (path, uuid format, security, JSON headers, body schema with its
enums and lengths, no undeclared body fields). What the schema cannot express — "exactly one
<script> tag", `load_method` default for script_tag, no `src` with `html` — is checked here by hand.
"""

import json
import re
from urllib.parse import urlsplit

import pytest
import responses

from sync.models import Connection
from sync.tracking import tracking_disable, tracking_enable, tracking_move
from tests.contracts.bigcommerce_spec import API, STORE, assert_allowed_by_spec

pytestmark = pytest.mark.django_db

UUID = "03805148-a592-4803-9482-e91fe5c1be12"


@pytest.fixture(autouse=True)
def production_urls(settings):
    settings.BIGCOMMERCE_API_URL = API


@pytest.fixture
def sent():
    """Every request the service sends, answered as BigCommerce would."""
    captured = []

    def answer(request):
        captured.append(request)
        if request.method == "DELETE":
            return 204, {}, ""
        data = {"uuid": UUID, **(json.loads(request.body) if request.body else {})}
        return 200, {"Content-Type": "application/json"}, json.dumps({"data": data, "meta": {}})

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for method in ("GET", "POST", "PUT", "DELETE"):
            rsps.add_callback(method, re.compile(re.escape(f"{API}/stores/{STORE}/v3/content/scripts") + r".*"),
                              callback=answer)
        yield captured


@pytest.fixture
def connection(make_account, make_connection, make_store):
    return make_connection(make_store(STORE), make_account(tracking_key="AbC123_-xyz"))


def assert_tracking_script_body(request):
    body = json.loads(request.body)
    assert body["kind"] == "script_tag" and "src" not in body
    assert body["load_method"] == "default"  # the spec: "The load_method must be default" for script_tag
    assert len(re.findall(r"<script\b", body["html"], re.I)) == 1  # "exactly one `script` tag"
    assert len(re.findall(r"</script\s*>", body["html"], re.I)) == 1
    assert body["consent_category"] == "analytics" and body["auto_uninstall"] is True
    assert body["visibility"] == "storefront"  # all_pages/checkout need the Checkout Content scope


def test_enable_sends_a_post_the_spec_allows(sent, connection):
    assert tracking_enable(connection=connection, by="x") == ""

    [post] = sent
    assert post.method == "POST" and urlsplit(post.url).path == f"/stores/{STORE}/v3/content/scripts"
    assert_allowed_by_spec(post)
    assert_tracking_script_body(post)


def test_enable_again_and_disable_send_get_put_delete_the_spec_allows(sent, connection):
    assert tracking_enable(connection=connection, by="x") == ""
    assert tracking_enable(connection=connection, by="x") == ""
    assert tracking_disable(connection=connection, by="x") == ""

    assert [r.method for r in sent] == ["POST", "GET", "PUT", "DELETE"]
    for request in sent:
        assert_allowed_by_spec(request)
    assert_tracking_script_body(sent[2])


def test_moving_to_another_account_sends_a_put_the_spec_allows(make_account, make_connection, sent, connection):
    assert tracking_enable(connection=connection, by="x") == ""
    connection.state = Connection.State.DISCONNECTED
    connection.save()
    account = make_account(name="acme-au", business_name="Acme (AU)", region="au", api_key="k3",
                           tracking_key="AuKey_42")
    new = make_connection(connection.store, account)

    tracking_move(old=connection, new=new, by="x")

    put = sent[-1]
    assert put.method == "PUT" and urlsplit(put.url).path.endswith(f"/content/scripts/{UUID}")
    assert_allowed_by_spec(put)
    assert_tracking_script_body(put)
    assert '"AuKey_42", "https://capture-api-au.ortto.app/"' in json.loads(put.body)["html"]
