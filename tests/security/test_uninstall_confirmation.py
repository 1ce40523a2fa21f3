"""Issue 25 "The uninstall callback" and issue 24's low finding on its outbound calls, over real HTTP
against the sandbox BigCommerce: BigCommerce's uninstall callback always gets a 2xx; when it arrives before
the token stops working, the bridge confirms with BigCommerce later (the maintenance tick) and then
uninstalls; a replayed load token changes nothing, and a flood of them costs a bounded number of calls."""

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from sandbox.bigcommerce.models import AppInstall
from sandbox.bigcommerce.services import signed_payload_jwt
from stores import bigcommerce
from stores.models import Store
from stores.services import UNINSTALL_CHECK_DELAYS
from sync.tasks import maintenance_tick

from .harness import in_parallel, installed_sandbox_store, load_page

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


@pytest.fixture
def store_reads(monkeypatch):
    """Counts the bridge's calls to BigCommerce's store information (the uninstall check's one call)."""
    calls = []
    original = bigcommerce.BigCommerceClient.store_information

    def counted(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(bigcommerce.BigCommerceClient, "store_information", counted)
    return calls


def uninstall_callback(base_url: str, token: str) -> requests.Response:
    return requests.get(f"{base_url}/bigcommerce/uninstall/", params={"signed_payload_jwt": token}, timeout=30)


def minutes_pass(minutes: float) -> None:
    """Run the maintenance tick as if `minutes` had passed for the pending uninstall checks."""
    Store.objects.filter(uninstall_check_at__isnull=False).update(
        uninstall_check_at=timezone.now() - timedelta(seconds=1))
    maintenance_tick()


def test_an_uninstall_called_before_the_token_stops_working_answers_2xx_and_is_confirmed_later(sandbox_live):
    sandbox_store, owner, _ = installed_sandbox_store(sandbox_live)
    # BigCommerce calls the uninstall callback while the store's token still works...
    response = uninstall_callback(sandbox_live, signed_payload_jwt(store=sandbox_store, user=owner))
    assert response.status_code == 200
    store = Store.objects.get(store_hash="sec1")
    assert store.is_installed and store.access_token
    minutes_pass(1)  # ...and still works at the first check
    assert Store.objects.get(store_hash="sec1").is_installed

    # ...then revokes it: the next check confirms the uninstall.
    AppInstall.objects.filter(store=sandbox_store).update(installed=False, access_token="")
    minutes_pass(2)
    store.refresh_from_db()
    assert not store.is_installed and store.access_token == "" and store.uninstall_check_at is None
    assert load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=owner)).status_code == 404


def test_a_flood_of_replayed_uninstalls_costs_one_call_and_removes_nothing(sandbox_live, store_reads):
    sandbox_store, owner, staff = installed_sandbox_store(sandbox_live)
    spent = signed_payload_jwt(store=sandbox_store, user=staff)
    assert load_page(sandbox_live, spent).status_code == 200
    store_reads.clear()
    statuses = [uninstall_callback(sandbox_live, spent).status_code for _ in range(30)]
    statuses += in_parallel([lambda: uninstall_callback(sandbox_live, spent).status_code] * 20)
    assert set(statuses) == {200}
    assert len(store_reads) == 1  # 50 callbacks, one call to BigCommerce
    store = Store.objects.get(store_hash="sec1")
    assert store.is_installed and store.access_token

    # Callbacks keep coming: each minute costs at most one check, plus one when a finished round of checks
    # starts again.
    for _ in range(len(UNINSTALL_CHECK_DELAYS) + 2):
        before = len(store_reads)
        for _ in range(10):
            uninstall_callback(sandbox_live, spent)
        minutes_pass(1)
        assert len(store_reads) - before <= 2
    store.refresh_from_db()
    assert store.is_installed and store.access_token


def test_a_check_that_cannot_reach_bigcommerce_retries(sandbox_live, monkeypatch):
    sandbox_store, owner, _ = installed_sandbox_store(sandbox_live)
    answers = iter([bigcommerce.BigCommerceError("down", status=503), bigcommerce.BigCommerceError("down", status=503)])
    original = bigcommerce.BigCommerceClient.store_information

    def flaky(self, *args, **kwargs):
        failure = next(answers, None)
        if failure is not None:
            raise failure
        return original(self, *args, **kwargs)

    monkeypatch.setattr(bigcommerce.BigCommerceClient, "store_information", flaky)
    AppInstall.objects.filter(store=sandbox_store).update(installed=False, access_token="")
    assert uninstall_callback(sandbox_live, signed_payload_jwt(store=sandbox_store, user=owner)).status_code == 200
    assert Store.objects.get(store_hash="sec1").is_installed  # BigCommerce could not be asked
    minutes_pass(1)
    assert Store.objects.get(store_hash="sec1").is_installed  # nor the second time
    minutes_pass(2)
    assert not Store.objects.get(store_hash="sec1").is_installed
