"""Issue 24, low finding "anonymous auth callbacks each cost one token exchange", over real HTTP against
the sandbox: a flood of install callbacks from one IP costs a bounded number of token exchanges, and a
merchant on another network still installs. (Uninstall replays: test_uninstall_confirmation.py.)"""

import html

import pytest
import requests

from sandbox.bigcommerce.seed import seed_store, seed_users
from sandbox.bigcommerce.services import app_auth_callback_url, app_install_grant
from stores import bigcommerce
from stores.models import Store
from sync import throttle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

ATTACKER, MERCHANT = "198.51.100.66", "203.0.113.9"


@pytest.fixture
def exchanges(monkeypatch):
    calls = []
    original = bigcommerce.exchange_code

    def counted(**kwargs):
        calls.append(kwargs["context"])
        return original(**kwargs)

    monkeypatch.setattr(bigcommerce, "exchange_code", counted)
    return calls


def test_a_flood_of_install_callbacks_costs_a_bounded_number_of_token_exchanges(sandbox_live, settings, exchanges):
    settings.BEHIND_TLS_PROXY = True
    statuses = [
        requests.get(f"{sandbox_live}/bigcommerce/auth/", params={"code": f"forged-{n}", "scope": "x",
                                                                  "context": "stores/sec1"},
                     headers={"X-Forwarded-For": ATTACKER}, timeout=30).status_code
        for n in range(40)
    ]
    assert len(exchanges) == throttle.INSTALL_IP.limit  # 40 callbacks, 10 token exchanges
    assert statuses[:throttle.INSTALL_IP.limit] == [502] * throttle.INSTALL_IP.limit
    assert set(statuses[throttle.INSTALL_IP.limit:]) == {429}

    sandbox_store = seed_store(store_hash="sec1")
    owner, _ = seed_users(store_hash="sec1")
    install = app_install_grant(store=sandbox_store, user=owner)
    page = requests.get(html.unescape(app_auth_callback_url(install=install)), headers={"X-Forwarded-For": MERCHANT},
                        timeout=30)
    assert page.status_code == 200
    assert Store.objects.get(store_hash="sec1").is_installed
