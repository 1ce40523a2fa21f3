"""The app page's Consent card: "Unsubscribes in Ortto update the store" (on by default) with its count and
last time, the note for a store without the write scope, and the store/customer/deleted choice."""

import re

import pytest
from django.utils import timezone

from stores.app_context import StoreContext, app_context_token
from stores.models import StoreUser
from sync.models import ConsentPreference

WRITE_SCOPES = "store_v2_customers store_v2_orders_read_only store_v2_content store_cart_read_only"


@pytest.fixture
def store(make_store, make_account, make_connection):
    store = make_store("abc123", name="Acme", scopes=WRITE_SCOPES)
    make_connection(store, make_account())
    return store


def _token(store, bc_user_id=1001):
    return app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=bc_user_id))


def _panel(client, store):
    return client.get("/bigcommerce/app/panel", HTTP_X_APP_CONTEXT=_token(store)).content.decode()


def _checked(html, element_id):
    return "checked" in html.split(f'id="{element_id}"')[1].split(">")[0]


def _text(html, element_id):
    return re.sub(r"\s+", " ", html.split(f'id="{element_id}"')[1].split(">", 1)[1].split("</")[0]).strip()


def test_on_by_default_then_counts_the_people_updated_and_when(client, store):
    html = _panel(client, store)
    assert "Unsubscribes in Ortto update the store" in html
    assert _checked(html, "consent-writeback") and not _checked(html, "consent-erase")
    assert _text(html, "consent-writeback-count") == "Nobody updated in the store yet."
    assert 'id="consent-note"' not in html

    at = timezone.now().replace(year=2026, month=12, day=7, hour=9, minute=30)
    ConsentPreference.objects.create(store=store, writeback_count=3, writeback_last_at=at, unknown_count=1)
    assert _text(_panel(client, store), "consent-writeback-count") == (
        "3 people updated in the store, last at 2026-12-07 09:30 UTC. 1 unsubscribed in Ortto was not in the store.")


def test_the_owner_switches_it_off_and_a_user_not_allowed_cannot(client, store):
    StoreUser.objects.create(store=store, bc_user_id=2002, email="staff@example.com", is_owner=False)
    refused = client.post("/bigcommerce/app/consent/writeback", {"enabled": "0"}, HTTP_X_APP_CONTEXT=_token(store, 2002))
    assert refused.status_code == 403 and _checked(_panel(client, store), "consent-writeback")
    done = client.post("/bigcommerce/app/consent/writeback", {"enabled": "0"}, HTTP_X_APP_CONTEXT=_token(store))
    assert done.status_code == 200
    assert not _checked(_panel(client, store), "consent-writeback")
    assert ConsentPreference.objects.get(store=store).changed_by

    assert client.post("/bigcommerce/app/consent/erase", {"enabled": "1"}, HTTP_X_APP_CONTEXT=_token(store)).status_code == 200
    assert ConsentPreference.objects.get(store=store).on_customer_deleted == "erase"
    assert _checked(_panel(client, store), "consent-erase")
    assert client.get("/bigcommerce/app/consent/erase", HTTP_X_APP_CONTEXT=_token(store)).status_code == 405


def test_a_store_without_the_write_scope_is_told_how_to_grant_it(client, store):
    store.scopes = "store_v2_customers_read_only store_v2_orders_read_only store_v2_content"
    store.save()
    note = _text(_panel(client, store), "consent-note")
    assert "read-only access to customers" in note and "reinstall the app or re-authorize it" in note
