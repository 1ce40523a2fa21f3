"""Issue 24, finding 2, in real Chromium against the sandbox: an attacker's Connect link, opened by a victim
who is signed in to the bridge, no longer rebinds the victim's flow. It shows a confirmation naming the
attacker's store; Cancel leaves the victim's own flow as it was and connects nothing."""

import re

import pytest
import requests

from sandbox import demo
from sandbox.bigcommerce.services import signed_payload_jwt
from sync.models import Connection
from tests.security.harness import connect_link, installed_sandbox_store

from .test_journey import install_and_open

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_an_attackers_connect_link_asks_the_signed_in_victim_and_cancel_connects_nothing(page, sandbox, shoot):
    # The attacker installs the app on their own store and copies the Connect link from its app page.
    attacker_store, attacker, _ = installed_sandbox_store(sandbox, store_hash="evil1")
    attacker_page = requests.get(f"{sandbox}/bigcommerce/load/", timeout=30,
                                 params={"signed_payload_jwt": signed_payload_jwt(store=attacker_store, user=attacker)})
    link = connect_link(attacker_page)

    # The victim, in their own store's connect flow, signed in to the bridge, on Accounts.
    context = page.context
    frame = install_and_open(page, sandbox)
    with context.expect_page() as opened:
        frame.locator("#connect-button").click()
    own_flow = opened.value
    own_flow.wait_for_load_state()
    own_flow.fill("input[name=email]", demo.DEMO_EMAIL)
    own_flow.fill("input[name=password]", demo.DEMO_PASSWORD)
    own_flow.get_by_role("button", name="Sign in").click()
    own_flow.get_by_role("heading", name="Accounts").wait_for()
    assert "Acme Outdoor Co." in own_flow.locator(".sub").inner_text()

    # The attacker's link, opened in the victim's browser: nothing rebinds; the page asks, naming the
    # attacker's store and the victim's sign-in.
    lure = context.new_page()
    lure.goto(link)
    lure.get_by_role("heading", name=re.compile(r"^Connect Store evil1\?")).wait_for()
    assert lure.locator("#confirm-store").inner_text() == "Store evil1"
    assert lure.locator("#confirm-store-hash").inner_text() == "evil1"
    assert lure.locator("#confirm-signin").inner_text() == demo.DEMO_EMAIL
    assert lure.get_by_role("button", name="Continue").is_visible()
    shoot(lure, "15-connect-link-confirmation")
    # Opening it changed nothing: the victim's flow is still theirs.
    own_flow.reload()
    assert "Acme Outdoor Co." in own_flow.locator(".sub").inner_text()

    lure.get_by_role("button", name="Cancel").click()
    lure.get_by_role("heading", name="Nothing was connected").wait_for()
    own_flow.reload()
    own_flow.get_by_role("heading", name="Accounts").wait_for()
    assert "Acme Outdoor Co." in own_flow.locator(".sub").inner_text()
    assert "evil1" not in own_flow.content()
    assert not Connection.objects.filter(store__store_hash="evil1").exists()

    # The victim's own flow still connects their own store.
    own_flow.locator("ul.accounts button", has_text="Acme Outdoor (EU)").click()
    own_flow.get_by_role("heading", name="Merge").wait_for()
    own_flow.get_by_role("button", name="Next").click()
    own_flow.get_by_role("heading", name="Syncing your data").wait_for()
    assert Connection.objects.get(state="active").store.store_hash == "demo1234"
    assert not Connection.objects.filter(store__store_hash="evil1").exists()


def test_the_owner_signed_in_elsewhere_confirms_their_own_store_and_connects(page, sandbox, thread_worker, shoot):
    # Signed in to the bridge in this browser, with no connect flow in the session (e.g. another day).
    page.goto(sandbox + "/connect/signin/")
    page.fill("input[name=email]", demo.DEMO_EMAIL)
    page.fill("input[name=password]", demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Start from your BigCommerce control panel").wait_for()

    frame = install_and_open(page, sandbox)
    with page.context.expect_page() as opened:
        frame.locator("#connect-button").click()
    tab = opened.value
    tab.get_by_role("heading", name="Connect Acme Outdoor Co.?").wait_for()
    assert tab.locator("#confirm-store-hash").inner_text() == "demo1234"
    assert tab.locator("#confirm-signin").inner_text() == demo.DEMO_EMAIL
    tab.get_by_role("button", name="Continue").click()
    tab.get_by_role("heading", name="Accounts").wait_for()
    tab.locator("ul.accounts button", has_text="Acme Outdoor (US)").click()
    tab.get_by_role("heading", name="Merge").wait_for()
    tab.get_by_role("button", name="Next").click()
    tab.get_by_role("heading", name="Syncing your data").wait_for()
    frame.locator("#business-name", has_text="Acme Outdoor (US)").wait_for()
    assert Connection.objects.get(state="active").store.store_hash == "demo1234"


def launch_as(page, base, email: str):
    """Switch the sandbox control panel to another of the store's users and launch the app as them."""
    page.goto(base + "/sandbox/bigcommerce/store-demo1234/manage/apps/")
    option = page.locator("#signed-in-as option", has_text=email)
    with page.expect_navigation():
        page.select_option("#signed-in-as", value=option.get_attribute("value"))
    page.get_by_role("link", name="Launch").first.click()
    frame = page.frame_locator("#app-frame")
    frame.get_by_text("Step 1: Connect your account").wait_for()
    return frame


def test_the_owner_allows_a_store_user_on_the_app_page(page, sandbox):
    install_and_open(page, sandbox)
    staff = launch_as(page, sandbox, "staff@acme.example")
    assert staff.locator("#connect-button").count() == 0
    assert "Only the store owner (owner@acme.example)" in staff.locator("#who-may-change").inner_text()

    owner = launch_as(page, sandbox, "owner@acme.example")
    row = owner.locator("#connection-managers tr", has_text="staff@acme.example")
    row.get_by_role("button", name="Allow").click()
    row.get_by_text("Allowed").wait_for()

    staff = launch_as(page, sandbox, "staff@acme.example")
    assert staff.get_by_role("link", name="Connect", exact=True).is_visible()
    assert staff.locator("#who-may-change").count() == 0
