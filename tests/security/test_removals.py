"""Issue 24, medium finding 3 and its low finding, over real HTTP against the sandbox: a removal sticks
even for a user the bridge has never seen, until BigCommerce signs a newer load for that user; app-context
tokens issued before a removal stay dead after the user is added back."""

import html
import re

import pytest
import requests

from sandbox.bigcommerce.services import signed_payload_jwt, user_add, user_remove
from stores.models import StoreUser

from .harness import connect_link, follow_connect_link, installed_sandbox_store, load_page

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

APP_CONTEXT = re.compile(r'data-app-context="([^"]+)"')


def panel(base_url: str, app_context: str) -> requests.Response:
    return requests.get(f"{base_url}/bigcommerce/app/panel", headers={"X-App-Context": app_context}, timeout=30)


def test_a_user_removed_before_their_first_load_stays_out(signed_payload, sandbox_live):
    sandbox_store, owner, _ = installed_sandbox_store(sandbox_live)
    newcomer = user_add(store=sandbox_store, email="newcomer@example.com")
    # A load token BigCommerce issued before the removal (the user had it, never used it).
    before_removal = signed_payload_jwt(store=sandbox_store, user=newcomer)
    assert user_remove(store=sandbox_store, user=newcomer).status == 200
    assert StoreUser.objects.filter(store__store_hash="sec1", bc_user_id=newcomer.bc_id, is_active=False).exists()

    first_load = load_page(sandbox_live, before_removal)
    assert first_load.status_code == 403 and "no longer have access" in first_load.text
    assert not StoreUser.objects.get(store__store_hash="sec1", bc_user_id=newcomer.bc_id).is_active
    # A load BigCommerce signs later (the owner added the user back) lets them in.
    later = signed_payload("sec1", user_id=newcomer.bc_id, owner_id=owner.bc_id, iat_offset=2)
    assert load_page(sandbox_live, later).status_code == 200
    assert StoreUser.objects.get(store__store_hash="sec1", bc_user_id=newcomer.bc_id).is_active


def test_a_load_signed_in_the_same_second_as_the_removal_is_refused(signed_payload, sandbox_live):
    installed_sandbox_store(sandbox_live)
    removal = signed_payload("sec1", user_id=2002, owner_id=2001)
    assert requests.get(f"{sandbox_live}/bigcommerce/remove-user/", params={"signed_payload_jwt": removal},
                        timeout=30).status_code == 200
    same_second = signed_payload("sec1", user_id=2002, owner_id=2001)
    assert load_page(sandbox_live, same_second).status_code == 403


def test_an_app_context_token_from_before_a_removal_stays_dead_after_a_re_add(signed_payload, sandbox_live):
    sandbox_store, owner, staff = installed_sandbox_store(sandbox_live)
    page = load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=staff))
    old_context = html.unescape(APP_CONTEXT.search(page.text)[1])
    assert panel(sandbox_live, old_context).status_code == 200

    assert user_remove(store=sandbox_store, user=staff).status == 200
    assert panel(sandbox_live, old_context).status_code in (401, 404)
    re_added = load_page(sandbox_live, signed_payload("sec1", user_id=2002, owner_id=2001, iat_offset=2))
    assert re_added.status_code == 200
    assert panel(sandbox_live, old_context).status_code in (401, 404)
    new_context = html.unescape(APP_CONTEXT.search(re_added.text)[1])
    assert panel(sandbox_live, new_context).status_code == 200



def allow(base_url: str, sandbox_store, owner, staff) -> None:
    """The owner allows the staff user to manage the connection, on the app page."""
    owner_page = load_page(base_url, signed_payload_jwt(store=sandbox_store, user=owner))
    owner_context = html.unescape(APP_CONTEXT.search(owner_page.text)[1])
    assert requests.post(f"{base_url}/bigcommerce/app/managers", data={"bc_user_id": staff.bc_id, "allowed": "1"},
                         headers={"X-App-Context": owner_context}, timeout=30).ok


def test_a_connect_link_or_flow_from_before_a_removal_stays_dead_after_a_re_add(
        make_user, sandbox_account, signed_payload, sandbox_live, browser):
    sandbox_store, owner, staff = installed_sandbox_store(sandbox_live)
    make_user("staff@example.com", password="the-right-password")
    load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=staff))
    allow(sandbox_live, sandbox_store, owner, staff)
    unused_link = connect_link(load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=staff)))
    bound_link = connect_link(load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=staff)))
    person = browser()
    assert follow_connect_link(person, bound_link, email="staff@example.com",
                               password="the-right-password").status_code == 302
    assert person.get("/connect/accounts/").status_code == 200

    assert user_remove(store=sandbox_store, user=staff).status == 200
    assert person.get("/connect/accounts/").status_code == 400  # the flow ends with the removal
    re_added = signed_payload("sec1", user_id=staff.bc_id, owner_id=owner.bc_id, iat_offset=2)
    assert load_page(sandbox_live, re_added).status_code == 200
    allow(sandbox_live, sandbox_store, owner, staff)

    # Back in the store and allowed again, yet neither the flow nor the link from before the removal works.
    assert person.get("/connect/accounts/").status_code == 400
    stale = requests.get(unused_link, timeout=30)
    assert stale.status_code == 403 and "no longer have access" in stale.text
