"""Issue 16, items 3 and 4, over real HTTP against the sandbox: a load token replayed at the uninstall
callback changes nothing until BigCommerce confirms the uninstall; a removed user's older load tokens
and open connect flow stop working."""

import pytest
import requests
from django.utils import timezone

from sandbox.bigcommerce.services import app_uninstall, signed_payload_jwt, user_remove
from stores.models import Store, StoreUser
from stores.services import UNINSTALL_CHECK_DELAYS, store_uninstall_checks_run
from sync.models import Connection, ConnectionManager

from .harness import connect_link, follow_connect_link, in_parallel, installed_sandbox_store, load_page

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_a_replayed_load_token_cannot_uninstall_the_app(sandbox_live):
    sandbox_store, owner, staff = installed_sandbox_store(sandbox_live)
    store = Store.objects.get(store_hash="sec1")
    store.webhook_secret = "hook-secret"
    store.save()
    staff_load_token = signed_payload_jwt(store=sandbox_store, user=staff)
    for _ in range(3):  # and again: it can never be made to work by repeating
        replay = requests.get(f"{sandbox_live}/bigcommerce/uninstall/",
                              params={"signed_payload_jwt": staff_load_token}, timeout=30)
        assert replay.status_code == 200  # BigCommerce always gets a 2xx (issue 25); the bridge checks
    store.refresh_from_db()
    assert store.is_installed and store.access_token and store.webhook_secret == "hook-secret"
    assert load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=owner)).status_code == 200
    # Every later check finds the token still working: the replays change nothing, ever.
    for _ in range(len(UNINSTALL_CHECK_DELAYS) + 1):
        Store.objects.filter(pk=store.pk, uninstall_check_at__isnull=False).update(uninstall_check_at=timezone.now())
        store_uninstall_checks_run()
    store.refresh_from_db()
    assert store.is_installed and store.access_token and store.uninstall_check_at is None

    # The real uninstall: BigCommerce revokes the token first, so the bridge's check confirms it.
    result = app_uninstall(store=sandbox_store, user=owner)
    assert result.status == 200, result.error
    store.refresh_from_db()
    assert not store.is_installed and store.access_token == "" and store.webhook_secret == ""


def test_a_removed_users_older_load_token_is_refused(signed_payload, sandbox_live):
    sandbox_store, owner, staff = installed_sandbox_store(sandbox_live)
    before_removal = signed_payload_jwt(store=sandbox_store, user=staff)
    assert load_page(sandbox_live, before_removal).status_code == 200
    assert user_remove(store=sandbox_store, user=staff).status == 200
    replay = load_page(sandbox_live, before_removal)
    assert replay.status_code == 403 and "no longer have access" in replay.text
    assert not StoreUser.objects.get(store__store_hash="sec1", bc_user_id=2002).is_active
    # Added back by the owner later: BigCommerce's new load token works.
    later = signed_payload("sec1", user_id=2002, owner_id=2001, iat_offset=2)
    assert load_page(sandbox_live, later).status_code == 200


def test_a_replayed_owner_token_cannot_remove_the_owner(sandbox_live):
    sandbox_store, owner, _ = installed_sandbox_store(sandbox_live)
    response = requests.get(f"{sandbox_live}/bigcommerce/remove-user/",
                            params={"signed_payload_jwt": signed_payload_jwt(store=sandbox_store, user=owner)}, timeout=30)
    assert response.status_code == 400
    assert StoreUser.objects.get(store__store_hash="sec1", bc_user_id=2001).is_active


def test_a_removed_users_open_connect_flow_cannot_connect_the_store(make_user, sandbox_account, sandbox_live, browser):
    sandbox_store, owner, staff = installed_sandbox_store(sandbox_live)
    account = sandbox_account("acme-us", members=[make_user("staff@example.com", password="the-right-password")])
    person = browser()
    page = load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=staff))  # records the user
    ConnectionManager.objects.create(store=Store.objects.get(store_hash="sec1"), bc_user_id=staff.bc_id,
                                     granted_by="owner")  # the owner allowed them
    page = load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=staff))
    assert follow_connect_link(person, connect_link(page), email="staff@example.com",
                               password="the-right-password").status_code == 302
    person.get("/connect/accounts/")
    assert person.post("/connect/accounts/", {"account": account.pk}).status_code == 302
    assert person.get("/connect/merge/").status_code == 200

    assert user_remove(store=sandbox_store, user=staff).status == 200
    merge = person.post("/connect/merge/", {"merge_strategy": 1})
    assert merge.status_code == 400
    assert not Connection.objects.filter(store__store_hash="sec1").exists()


def test_a_connect_link_works_once(make_user, sandbox_live, browser):
    sandbox_store, owner, _ = installed_sandbox_store(sandbox_live)
    make_user("owner@example.com", password="the-right-password")
    link = connect_link(load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=owner)))
    # Opening it changes nothing (a GET): another browser may still look at it...
    assert browser().session.get(link, timeout=30, allow_redirects=False).status_code == 200
    merchant = browser()
    first = follow_connect_link(merchant, link, email="owner@example.com", password="the-right-password")
    assert first.status_code == 302 and first.headers["Location"].endswith("/connect/accounts/")
    # The same browser reloading the link goes on with its flow...
    assert merchant.session.get(link, timeout=30, allow_redirects=False).status_code == 302
    # ...anyone else replaying it (read from a log) is refused.
    for _ in range(3):
        replay = browser().session.get(link, timeout=30, allow_redirects=False)
        assert replay.status_code == 403 and "This link has been used" in replay.text


def test_a_load_token_opens_the_app_page_once(sandbox_live):
    """A copied load URL (browser history, a screenshot of the address bar) does not open the app page again;
    a new launch from the control panel, with a new token, does."""
    sandbox_store, owner, _ = installed_sandbox_store(sandbox_live)
    token = signed_payload_jwt(store=sandbox_store, user=owner)
    first = load_page(sandbox_live, token)
    assert first.status_code == 200 and "Step 1: Connect your account" in first.text
    again = load_page(sandbox_live, token)
    assert again.status_code == 403 and "This link has already been used" in again.text
    assert "Step 1" not in again.text
    assert load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=owner)).status_code == 200


def test_one_load_token_sent_twenty_times_at_once_opens_one_page(sandbox_live):
    sandbox_store, owner, _ = installed_sandbox_store(sandbox_live)
    token = signed_payload_jwt(store=sandbox_store, user=owner)
    statuses = in_parallel([lambda: load_page(sandbox_live, token).status_code] * 20)
    assert sorted(statuses) == [200] + [403] * 19
