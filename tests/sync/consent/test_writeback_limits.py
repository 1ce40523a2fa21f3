"""A write-back BigCommerce keeps refusing stops after CONSENT_WRITEBACK_MAX_ATTEMPTS sweeps, shows as failed
with its reason (app page, admin) and is retried by support; a store without the write scope holds its
unsubscribes as waiting for the scope, which is not a failure (sync/consent/writeback.py)."""

import pytest
from django.contrib.auth.models import Group, User

from stores.app_context import StoreContext, app_context_token
from stores.bigcommerce import store_client
from sync.consent.writeback import consent_sweep
from sync.models import ConsentPreference, ConsentWriteback
from sync.ortto.schema import ortto_client
from tests.sync.consent.test_writeback import WRITE_SCOPES, OrttoPeople, Shop, ledger, shop_env  # noqa: F401


def _sweep(env):
    return consent_sweep(env.connection, ortto=ortto_client(env.connection),
                         bigcommerce=store_client(env.store, max_attempts=1, sleep=lambda s: None))


def _panel(client, store):
    token = app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=1001))
    return client.get("/bigcommerce/app/panel", HTTP_X_APP_CONTEXT=token).content.decode()


@pytest.mark.parametrize("status", [403, 429, 503])
def test_a_write_back_refused_too_often_fails_with_its_reason_and_is_no_longer_retried(
        shop_env, settings, client, status):  # noqa: F811
    settings.CONSENT_WRITEBACK_MAX_ATTEMPTS = 3
    ledger(shop_env.connection, "ann@x.io")
    shop = Shop(shop_env.rsps, subscribers=[{"id": 3, "email": "ann@x.io", "consents": ["marketing_newsletter"]}],
                fail=status)
    ortto = OrttoPeople(shop_env.rsps, {"ann@x.io": False})
    outcomes = [_sweep(shop_env) for _ in range(3)]
    assert [o["failed"] for o in outcomes] == [0, 0, 1], "the third refusal is the last"
    row = ConsentWriteback.objects.get(email="ann@x.io")
    assert row.state == "failed" and row.attempts == 3 and str(status) in row.last_error

    asked, deleted = len(ortto.bodies), shop_env.rsps.calls.__len__()
    fourth = _sweep(shop_env)
    assert fourth["written"] == 0 and fourth["failed"] == 0 and fourth["pending"] == 0
    assert len(ortto.bodies) == asked, "Ortto is not asked about a failed one again (that would reset it)"
    assert not [c for c in shop_env.rsps.calls[deleted:] if "/v3/customers" in c.request.url], "no retry"
    assert 3 in shop.subscribers

    html = _panel(client, shop_env.store)
    alert = html.split('id="consent-failed"')[1].split("</div>")[0]
    assert "1 unsubscribe could not be written" in alert and f"HTTP {status}" in alert and "support" in alert


def test_support_retries_a_failed_write_back_from_the_admin(shop_env, settings, client):  # noqa: F811
    settings.CONSENT_WRITEBACK_MAX_ATTEMPTS = 1
    ledger(shop_env.connection, "ann@x.io")
    shop = Shop(shop_env.rsps, subscribers=[{"id": 3, "email": "ann@x.io", "consents": ["marketing_newsletter"]}],
                fail=429)
    OrttoPeople(shop_env.rsps, {"ann@x.io": False})
    _sweep(shop_env)
    row = ConsentWriteback.objects.get(email="ann@x.io")
    assert row.state == "failed"

    staff = User.objects.create_user("viewer", password="pw-viewer-123456", is_staff=True)
    client.force_login(staff)
    page = "/admin/sync/consentwriteback/"
    assert client.get(page).status_code == 403, "not Support: no access"
    staff.groups.add(Group.objects.get(name="Support"))
    listing = client.get(page + "?state__exact=failed").content.decode()
    assert "ann@x.io" in listing and "HTTP 429" in listing and "Retry the failed ones" in listing
    answer = client.post(page, {"action": "retry", "_selected_action": [row.pk]}, follow=True)
    assert "1 write-back pending again" in answer.content.decode()
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_error) == ("pending", 0, "")

    shop.fail = None
    assert _sweep(shop_env)["written"] == 1 and 3 not in shop.subscribers
    assert ConsentWriteback.objects.get(email="ann@x.io").state == "done"


def test_without_the_write_scope_unsubscribes_wait_for_it_without_counting_attempts(shop_env, client):  # noqa: F811
    ledger(shop_env.connection, "ann@x.io")
    shop = Shop(shop_env.rsps, subscribers=[{"id": 3, "email": "ann@x.io", "consents": ["marketing_newsletter"]}],
                fail=503)
    OrttoPeople(shop_env.rsps, {"ann@x.io": False})
    _sweep(shop_env)  # found, and refused once by an outage
    shop_env.store.scopes = "store_v2_customers_read_only store_v2_orders_read_only store_v2_content"
    shop_env.store.save()
    for _ in range(5):
        assert _sweep(shop_env) == {"enabled": True, "scope": False}
    row = ConsentWriteback.objects.get(email="ann@x.io")
    assert (row.state, row.attempts) == ("no_scope", 1), "waiting for the scope is no attempt and no failure"
    html = _panel(client, shop_env.store)
    assert 'id="consent-failed"' not in html and "1 waiting to be written" in html
    assert "re-authorize" in html

    shop_env.store.scopes = WRITE_SCOPES  # the owner re-authorized the app with Customers (modify)
    shop_env.store.save()
    shop.fail = None
    assert _sweep(shop_env)["written"] == 1 and 3 not in shop.subscribers
    assert ConsentPreference.objects.get(store=shop_env.store).writeback_note == ""
