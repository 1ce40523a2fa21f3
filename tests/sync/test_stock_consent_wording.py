"""The back-in-stock form's consent wording, a store setting on the app page (sync/catalog/preferences.py): the
default until someone with connection authority changes it, plain text of at most 200 characters, escaped on the
app page and in the storefront script, the storefront script reinstalled with it, and stored with each wait."""

import re

import pytest

from stores.app_context import StoreContext, app_context_token
from stores.models import StoreUser
from sync.catalog.preferences import DEFAULT_CONSENT_TEXT, MAX_CONSENT_TEXT
from sync.models import CatalogProduct, StockAlertPreference, StockWait
from sync.tracking import tracking_script_payload

pytestmark = pytest.mark.django_db

URL = "/bigcommerce/app/stock-consent"
HOSTILE = 'Tell me <b>once</b> & only "once" </script><script>alert(1)</script><!--'


@pytest.fixture
def store(make_store, make_account, make_connection):
    store = make_store("abc123", name="Acme")
    make_connection(store, make_account())
    return store


def _token(store, bc_user_id=1001):
    return app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=bc_user_id))


def _panel(client, store, bc_user_id=1001):
    return client.get("/bigcommerce/app/panel", HTTP_X_APP_CONTEXT=_token(store, bc_user_id)).content.decode()


def _field(html) -> str:
    return html.split('id="stock-consent-text"')[1].split(">")[0]


def _save(client, store, text, bc_user_id=1001):
    return client.post(URL, {"consent_text": text}, HTTP_X_APP_CONTEXT=_token(store, bc_user_id))


def _script_wording(store) -> str:
    """The wording the storefront script sets as the form's label (its `var consent = ...;`)."""
    from sync.models import Connection

    html = tracking_script_payload(account=Connection.objects.get(store=store).account,
                                   store_hash=store.store_hash)["html"]
    assert html.count("</script>") == 1 and html.endswith("</script>")  # nothing a wording says closes the tag
    assert "<!--" not in html
    return re.search(r"var consent = (\".*?(?<!\\)\");", html).group(1)


def test_the_default_wording_until_the_owner_changes_it(client, store):
    assert f'value="{DEFAULT_CONSENT_TEXT}"' in _field(_panel(client, store))
    assert _script_wording(store) == f'"{DEFAULT_CONSENT_TEXT}"'

    assert _save(client, store, "  E-mail me   when it is back.\n").status_code == 200
    assert StockAlertPreference.objects.get(store=store).consent_text == "E-mail me when it is back."
    assert 'value="E-mail me when it is back."' in _field(_panel(client, store))
    assert _script_wording(store) == '"E-mail me when it is back."'
    assert StockAlertPreference.objects.get(store=store).changed_by

    assert _save(client, store, "").status_code == 200  # empty: back to the default
    assert f'value="{DEFAULT_CONSENT_TEXT}"' in _field(_panel(client, store))


def test_markup_is_shown_as_text_everywhere(client, store):
    assert _save(client, store, HOSTILE).status_code == 200
    field = _field(_panel(client, store))
    assert "<b>" not in field and "&lt;b&gt;once&lt;/b&gt; &amp; only &quot;once&quot;" in field
    wording = _script_wording(store)
    assert "<" not in wording and ">" not in wording and "&" not in wording
    assert wording.startswith(r'"Tell me \u003cb\u003eonce\u003c/b\u003e \u0026 only \"once\"')


def test_bad_wording_is_refused_and_changes_nothing(client, store):
    _save(client, store, "Notify me once.")
    too_long = _save(client, store, "x" * (MAX_CONSENT_TEXT + 1))
    assert too_long.status_code == 400 and "200 characters or fewer" in too_long.json()["error"]
    control = _save(client, store, "Notify\x00 me")
    assert control.status_code == 400 and control.json()["error"] == "The wording may contain only plain text."
    assert StockAlertPreference.objects.get(store=store).consent_text == "Notify me once."
    assert _save(client, store, "x" * MAX_CONSENT_TEXT).status_code == 200


def test_only_users_with_connection_authority_change_it(client, store):
    StoreUser.objects.create(store=store, bc_user_id=2002, email="staff@example.com", is_owner=False)
    assert "disabled" in _field(_panel(client, store, 2002))
    refused = _save(client, store, "Staff wording", bc_user_id=2002)
    assert refused.status_code == 403 and not StockAlertPreference.objects.exists()
    assert client.get(URL, HTTP_X_APP_CONTEXT=_token(store)).status_code == 405
    assert client.post(URL, {"consent_text": "No context"}).status_code in (400, 401, 403)
    assert not StockAlertPreference.objects.exists()
    assert "disabled" not in _field(_panel(client, store))


def test_a_wait_stores_the_store_wording_not_the_browsers(client, store, monkeypatch):
    monkeypatch.setattr("sync.catalog.storefront._run_request", lambda store: None)
    CatalogProduct.objects.create(store=store, product_id=114, name="Socks", inventory_level=0,
                                  inventory_tracking="product", availability="available")
    _save(client, store, "Tell me once, then forget me.")
    answer = client.post("/storefront/abc123/back-in-stock/", {
        "email": "w@example.com", "product_id": "114", "consent": "1", "consent_text": "I agreed to nothing"})
    assert answer.status_code == 201, answer.content
    assert StockWait.objects.get(store=store).consent_text == "Tell me once, then forget me."


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_with_tracking_on_the_storefront_script_is_reinstalled_with_the_new_wording(
        client, make_store, make_account, make_connection, sandbox_live):
    from sandbox.bigcommerce.models import Script
    from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
    from sandbox.bigcommerce.services import app_install_complete
    from sync.tracking import tracking_enable

    sandbox_store = seed_bigcommerce(store_hash="wrd1", name="Wording Co.", customers=1, orders=0, seed=2)
    seed_users(store_hash="wrd1")
    install = app_install_complete(store=sandbox_store)
    store = make_store("wrd1", name="Wording Co.", access_token=install.access_token)
    connection = make_connection(store, make_account())
    assert tracking_enable(connection=connection, by="owner") == ""
    script = Script.objects.get(store=sandbox_store)
    assert f'"{DEFAULT_CONSENT_TEXT}"' in script.html

    assert _save(client, store, "Only once <please>").status_code == 200

    script.refresh_from_db()
    assert r'"Only once \u003cplease\u003e"' in script.html and DEFAULT_CONSENT_TEXT not in script.html
    assert Script.objects.filter(store=sandbox_store).count() == 1  # the same script, updated
