from datetime import timedelta

import pytest
import responses
from django.conf import settings
from django.utils import timezone

from stores.models import SpentSignedPayload, Store, StoreUser
from sync.tasks import maintenance_tick

pytestmark = pytest.mark.django_db

SCOPES = ("store_v2_customers_read_only store_v2_orders_read_only store_v2_content store_v2_information_read_only "
          "store_cart_read_only store_v2_products_read_only")


def token_response(store_hash="abc123", scope=SCOPES):
    return {
        "access_token": "ACCESS-TOKEN-SECRET-123456789", "scope": scope,
        "user": {"id": 1002, "username": "staff@example.com", "email": "staff@example.com"},
        "owner": {"id": 1001, "username": "owner@example.com", "email": "owner@example.com"},
        "context": f"stores/{store_hash}", "account_uuid": "12345678-90ab-cdef-1234-567890abcdef",
    }


@pytest.fixture
def bc_api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def install(client, bc_api, *, scope=SCOPES, store_hash="abc123"):
    bc_api.post(f"{settings.BIGCOMMERCE_LOGIN_URL}/oauth2/token", json=token_response(store_hash, scope))
    bc_api.get(f"{settings.BIGCOMMERCE_API_URL}/stores/{store_hash}/v2/store",
               json={"id": store_hash, "name": "Acme Outdoor Co.", "domain": "acme.example"})
    return client.get("/bigcommerce/auth/", {"code": "qr6h3t", "scope": scope, "context": f"stores/{store_hash}",
                                              "account_uuid": "12345678-90ab-cdef-1234-567890abcdef"})


def test_install_saves_the_store_and_shows_the_app_page(client, bc_api):
    response = install(client, bc_api)
    assert response.status_code == 200
    html = response.content.decode()
    # The installing user here is a staff user, not the owner: Step 1 says who may connect (issue 24).
    assert "Step 1: Connect your account" in html and "Only the store owner (owner@example.com)" in html
    assert "Step 2: Consent to enable website tracking script" in html and "Enable tracking" in html
    store = Store.objects.get(store_hash="abc123")
    assert store.name == "Acme Outdoor Co." and store.access_token == "ACCESS-TOKEN-SECRET-123456789"
    assert store.owner_email == "owner@example.com" and store.is_installed
    assert set(StoreUser.objects.filter(store=store).values_list("bc_user_id", flat=True)) == {1001, 1002}
    # The token exchange carried what BigCommerce requires.
    import json

    body = json.loads(bc_api.calls[0].request.body)
    assert body["grant_type"] == "authorization_code" and body["code"] == "qr6h3t"
    assert body["redirect_uri"] == settings.PUBLIC_URL + "/bigcommerce/auth/"
    assert body["client_secret"] == settings.BIGCOMMERCE_CLIENT_SECRET and body["context"] == "stores/abc123"
    # Framable by the control panel only; never DENY.
    assert "X-Frame-Options" not in response
    assert "frame-ancestors" in response["Content-Security-Policy"]


def test_token_is_encrypted_at_rest(client, bc_api):
    install(client, bc_api)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM stores_store WHERE store_hash = %s", ["abc123"])
        raw = cursor.fetchone()[0]
    assert "ACCESS-TOKEN-SECRET" not in raw and raw


def test_reinstall_updates_the_same_store(client, bc_api):
    install(client, bc_api)
    install(client, bc_api)
    assert Store.objects.filter(store_hash="abc123").count() == 1


def test_install_with_missing_scopes_says_which(client, bc_api):
    response = install(client, bc_api, scope="store_v2_orders_read_only")
    assert response.status_code == 403
    html = response.content.decode()
    assert "store_v2_customers_read_only" in html and "store_v2_content" in html
    assert not Store.objects.exists()


def test_refused_code_changes_nothing(client, bc_api):
    bc_api.post(f"{settings.BIGCOMMERCE_LOGIN_URL}/oauth2/token", status=400, json={"error": "invalid_grant"})
    response = client.get("/bigcommerce/auth/", {"code": "x", "scope": SCOPES, "context": "stores/abc123"})
    assert response.status_code == 502
    assert not Store.objects.exists()


def test_auth_without_code_is_a_clear_400(client):
    assert client.get("/bigcommerce/auth/").status_code == 400


def test_load_renders_the_app_page_and_adds_new_users(make_store, signed_payload, client):
    store = make_store()
    response = client.get("/bigcommerce/load/", {"signed_payload_jwt": signed_payload(user_id=2002)})
    assert response.status_code == 200
    assert b"Step 1: Connect your account" in response.content
    assert StoreUser.objects.filter(store=store, bc_user_id=2002, is_owner=False).exists()


def test_load_for_unknown_or_uninstalled_store_asks_to_reinstall(make_store, signed_payload, client):
    response = client.get("/bigcommerce/load/", {"signed_payload_jwt": signed_payload("nope99")})
    assert response.status_code == 404 and b"reinstall" in response.content.lower()
    make_store("gone11", installed=False)
    response = client.get("/bigcommerce/load/", {"signed_payload_jwt": signed_payload("gone11")})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "token, status",
    [
        (lambda sign: sign(secret="not-the-client-secret-xxxxxxxxxxxxxxxx"), 401),
        (lambda sign: sign(exp_in=-3600, iat_offset=-90000), 401),
        (lambda sign: sign(audience="another-app"), 401),
        (lambda sign: sign(issuer="evil"), 401),
        (lambda sign: sign(iat_offset=3600), 401),  # not valid yet
        (lambda sign: sign(algorithm="HS512"), 401),
        (lambda sign: sign(sub="customers/abc123"), 400),
        (lambda sign: sign(user="nobody"), 400),
        (lambda sign: "not-a-jwt", 400),
        (lambda sign: sign()[:-4], (400, 401)),  # truncated signature: bad base64 or bad signature
        (lambda sign: "", 400),
    ],
    ids=["forged", "expired", "wrong-audience", "wrong-issuer", "not-yet-valid", "other-alg", "bad-sub",
         "bad-user", "garbage", "truncated", "missing"],
)
def test_bad_jwts_are_refused_and_change_nothing(make_store, signed_payload, client, token, status):
    store = make_store()
    before = list(StoreUser.objects.values_list("bc_user_id", flat=True))
    for path in ("/bigcommerce/load/", "/bigcommerce/uninstall/", "/bigcommerce/remove-user/"):
        response = client.get(path, {"signed_payload_jwt": token(signed_payload)})
        assert response.status_code in (status if isinstance(status, tuple) else (status,)), path
    store.refresh_from_db()
    assert store.is_installed and store.access_token
    assert list(StoreUser.objects.values_list("bc_user_id", flat=True)) == before


def test_alg_none_is_refused(make_store, client):
    import base64
    import json

    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    make_store()
    token = b64({"alg": "none", "typ": "JWT"}) + "." + b64({"sub": "stores/abc123", "aud": settings.BIGCOMMERCE_CLIENT_ID}) + "."
    response = client.get("/bigcommerce/uninstall/", {"signed_payload_jwt": token})
    assert response.status_code in (400, 401)
    assert Store.objects.get().is_installed


def test_uninstall_drops_the_token_and_keeps_history(make_store, signed_payload, client, bc_api):
    store = make_store()
    # BigCommerce has revoked the token: the bridge's confirming read is refused.
    bc_api.get(f"{settings.BIGCOMMERCE_API_URL}/stores/abc123/v2/store", status=401, json=[{"status": 401}])
    response = client.get("/bigcommerce/uninstall/", {"signed_payload_jwt": signed_payload()})
    assert response.status_code == 200
    store.refresh_from_db()
    assert not store.is_installed and store.access_token == "" and store.uninstalled_at
    # Afterwards the app page asks to reinstall.
    assert client.get("/bigcommerce/load/", {"signed_payload_jwt": signed_payload()}).status_code == 404


def test_remove_user_deactivates_only_that_user(make_store, signed_payload, client):
    store = make_store()
    StoreUser.objects.create(store=store, bc_user_id=2002, email="staff@example.com")
    response = client.get("/bigcommerce/remove-user/", {"signed_payload_jwt": signed_payload(user_id=2002)})
    assert response.status_code == 200
    assert not StoreUser.objects.get(bc_user_id=2002).is_active
    assert StoreUser.objects.get(bc_user_id=1001).is_active


@pytest.mark.parametrize("answer", [200, 500])
def test_uninstall_that_bigcommerce_does_not_confirm_answers_2xx_and_changes_nothing(
        make_store, signed_payload, client, bc_api, answer):
    """Issue 25: BigCommerce gets a 2xx; the store stays until a later check confirms the uninstall."""
    store = make_store()
    bc_api.get(f"{settings.BIGCOMMERCE_API_URL}/stores/abc123/v2/store", status=answer, json={"name": "Acme"})
    response = client.get("/bigcommerce/uninstall/", {"signed_payload_jwt": signed_payload()})
    assert response.status_code == 200
    store.refresh_from_db()
    assert store.is_installed and store.access_token == "tok-abc123"
    assert store.uninstall_check_at is not None  # checked again later


def test_remove_user_naming_the_owner_is_refused(make_store, signed_payload, client):
    make_store()
    response = client.get("/bigcommerce/remove-user/", {"signed_payload_jwt": signed_payload(user_id=1001)})
    assert response.status_code == 400
    assert StoreUser.objects.get(bc_user_id=1001).is_active


def test_spent_load_tokens_are_forgotten_once_expired():
    now = timezone.now()
    SpentSignedPayload.objects.create(token_id="expired", expires_at=now - timedelta(seconds=1))
    SpentSignedPayload.objects.create(token_id="still-valid", expires_at=now + timedelta(hours=1))
    maintenance_tick()
    assert list(SpentSignedPayload.objects.values_list("token_id", flat=True)) == ["still-valid"]
