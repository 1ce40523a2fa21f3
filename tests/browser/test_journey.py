"""The store owner's journey in real Chromium, against the sandbox over real HTTP (docs/design.md §2)."""

import re

import pytest

from sandbox import demo
from sync.models import Connection, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def install_and_open(page, base):
    page.goto(base + "/sandbox/bigcommerce/")
    page.get_by_role("link", name=re.compile("Acme Outdoor Co.")).click()
    page.locator("nav.side").get_by_role("link", name="Marketplace").click()
    page.get_by_role("link", name="Install").click()
    page.check("input[name=agree]")
    page.get_by_role("button", name="Confirm").click()
    frame = page.frame_locator("#app-frame")
    frame.get_by_text("Step 1: Connect your account").wait_for()
    return frame


def connect(context, frame, *, account: str, strategy: str, shoot=None, signed_in=False):
    with context.expect_page() as opened:
        frame.locator("#connect-button").click()
    tab = opened.value
    tab.wait_for_load_state()
    # Signed in already, in the session that follows this store's flow: straight on to Accounts
    # (a session signed in without it is asked first: test_connect_link_attack.py).
    if not signed_in:
        assert tab.get_by_role("heading", name="Ortto Bridge sign-in").is_visible()
        shoot and shoot(tab, "03-sign-in")
        tab.fill("input[name=email]", demo.DEMO_EMAIL)
        tab.fill("input[name=password]", demo.DEMO_PASSWORD)
        tab.get_by_role("button", name="Sign in").click()
    tab.get_by_role("heading", name="Accounts").wait_for()
    buttons = tab.locator("ul.accounts button")
    assert buttons.count() == 3, "the demo sign-in has three Ortto accounts"
    shoot and shoot(tab, "04-accounts")
    tab.locator("ul.accounts button", has_text=account).click()
    tab.get_by_role("heading", name="Merge").wait_for()
    assert tab.get_by_label("Import and merge new records only").is_checked(), "Append only is the default"
    shoot and shoot(tab, "05-merge")
    tab.get_by_label(strategy).check()
    confirm = tab.locator("input[name=confirm_switch]")
    if confirm.count():  # Reconnect into another account asks first, naming the account and the full import
        assert account in tab.locator("#switch-confirm").inner_text()
        assert "full import" in tab.locator("#switch-confirm").inner_text()
        confirm.check()
    tab.get_by_role("button", name="Next").click()
    tab.get_by_role("heading", name="Syncing your data").wait_for()
    return tab


def test_install_connect_sync_and_reconnect(page, sandbox, thread_worker, shoot):
    context = page.context
    frame = install_and_open(page, sandbox)
    assert frame.get_by_text("Step 2: Consent to enable website tracking script").is_visible()
    assert frame.get_by_role("link", name="Connect", exact=True).is_visible()
    assert frame.get_by_label(re.compile("Enable tracking")).is_disabled(), "no tracking before a connection"
    shoot(page, "02-app-page-installed")

    # Connect: the second of the three accounts, with Overwrite.
    tab = connect(context, frame, account="Acme Outdoor (EU)", strategy="Import and overwrite any records that exist", shoot=shoot)
    for _ in range(120):
        if "Succeeded" in tab.locator("#progress-text").inner_text():
            break
        tab.wait_for_timeout(250)
    assert "Succeeded" in tab.locator("#progress-text").inner_text()
    assert tab.locator("#bar").evaluate("el => el.style.width") == "100%"
    shoot(tab, "06-syncing-your-data")
    done_href = tab.get_by_role("link", name="Done").get_attribute("href")
    assert "/sandbox/bigcommerce/store-demo1234/manage/app/" in done_href

    # Back in the control panel: the app page noticed the connection by itself (no reload).
    frame.get_by_text("Connected to").wait_for()
    business = frame.locator("#business-name")
    assert business.inner_text() == "Acme Outdoor (EU)"
    assert business.get_attribute("href").endswith("/sandbox/ortto/app/acme-eu/")
    assert frame.get_by_role("link", name="Reconnect").is_visible()
    frame.get_by_text("Succeeded").wait_for()
    # The owner's Connection history has the change (the owner was e-mailed it too).
    history = frame.locator("#connection-history tr").nth(1)
    assert history.locator("td").nth(1).inner_text() == "Connected"
    assert demo.DEMO_EMAIL in history.inner_text() and "Acme Outdoor (EU)" in history.inner_text()
    shoot(page, "07-app-page-connected")

    connection = Connection.objects.get(state="active")
    assert connection.account.name == "acme-eu" and connection.merge_strategy == 2
    run = SyncRun.objects.get(connection=connection, kind="initial")
    assert run.status == "succeeded" and run.processed == run.total > 0

    # Done closes the flow's tab and returns to the app page that opened it: no second control panel.
    with tab.expect_event("close"):
        tab.get_by_role("link", name="Done").click()
    assert context.pages == [page]
    frame.get_by_text("Connected to").wait_for()

    # The people reached the EU account; a shopper who did not opt in is an unsubscribed contact with the reason.
    ortto = context.new_page()
    ortto.goto(sandbox + "/sandbox/ortto/app/acme-eu/people/")
    assert ortto.get_by_text("Unsubscribed").first.is_visible() and ortto.get_by_text("Subscribed").first.is_visible()
    ortto.locator("table a").first.click()
    shoot(ortto, "08-ortto-person")

    # The store's companies are organizations there, with their people; the app page counts them.
    assert "added to Ortto as organizations" in frame.locator("#counter-lines").inner_text()
    ortto.get_by_role("link", name="Organizations").click()
    ortto.get_by_role("heading", name="Organizations").wait_for()
    assert ortto.locator("table tbody tr").count() >= 1 and not ortto.get_by_text("No organizations yet").count()
    ortto.locator("table tbody a").first.click()
    ortto.get_by_role("heading", name=re.compile(r"People \([1-9]")).wait_for()
    assert "@" in ortto.locator("table.people tbody td").nth(1).inner_text()
    shoot(ortto, "09-ortto-organization")

    # Reconnect to another account: the old connection stays as history, a full import goes to the new one.
    tab = connect(context, frame, account="Acme Outdoor (US)", strategy="Import new records only", signed_in=True)
    frame.locator("#business-name", has_text="Acme Outdoor (US)").wait_for()
    frame.locator("#connection-history td", has_text="Reconnected to another Ortto account").wait_for()
    assert Connection.objects.filter(state="disconnected", account__name="acme-eu").exists()
    assert Connection.objects.get(state="active").account.name == "acme-us"


def test_tampered_launch_jwt_is_refused(page, sandbox):
    install_and_open(page, sandbox)
    page.goto(sandbox + "/bigcommerce/load/?signed_payload_jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdG9yZXMvZGVtbzEyMzQifQ.forged")
    assert page.get_by_role("heading", name="Could not verify this request").is_visible()


def test_tracking_toggle_installs_and_removes_the_storefront_script(page, sandbox, thread_worker):
    frame = install_and_open(page, sandbox)
    tab = connect(page.context, frame, account="Acme Outdoor (EU)", strategy="Import and merge new records only")
    tab.close()
    frame.get_by_text("Connected to").wait_for()
    # The app page must work where the browser blocks third-party cookies: drop every cookie and check
    # that its requests carry none — the signed app context in a header is all it needs.
    page.context.clear_cookies()
    cookies_sent = []
    page.context.on("request", lambda r: "/bigcommerce/app/" in r.url and cookies_sent.append(r.headers.get("cookie")))
    checkbox = frame.get_by_label(re.compile("Enable tracking"))
    checkbox.check()
    frame.get_by_text("is installed on your storefront").wait_for()
    storefront = page.context.new_page()
    storefront.goto(sandbox + "/sandbox/bigcommerce/store-demo1234/storefront/")
    tracking_key = Connection.objects.get(state="active").account.tracking_key
    assert tracking_key in storefront.content() and "capture-api-eu.ortto.app" in storefront.content()
    frame.get_by_label(re.compile("Enable tracking")).uncheck()
    frame.get_by_text("Installs Ortto's tracking script").wait_for()
    storefront.reload()
    assert tracking_key not in storefront.content()
    assert cookies_sent and not any(cookies_sent), "the app page's requests carried cookies"
