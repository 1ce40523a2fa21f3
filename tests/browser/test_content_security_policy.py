"""Issue 16, item 9: the app page (framed by the emulated control panel) and the connect flow run under
their Content-Security-Policy in real Chromium without a single violation, and are never cached. Issue 24:
so do the admin and the sandbox under theirs."""

import re

import pytest

from .test_journey import connect, install_and_open

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_the_app_page_and_the_connect_flow_break_no_csp_rule(page, sandbox):
    violations = []

    def watch(tab):
        tab.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))

    watch(page)
    page.context.on("page", watch)
    headers = {}
    page.on("response", lambda r: "/bigcommerce/auth/" in r.url and headers.update(r.headers))
    frame = install_and_open(page, sandbox)
    assert "frame-ancestors" in headers["content-security-policy"] and "no-store" in headers["cache-control"]
    tab = connect(page.context, frame, account="Acme Outdoor (US)", strategy="Import and merge new records only")
    tab.locator("#bar").wait_for(state="attached")
    tab.wait_for_timeout(1500)  # a poll of the progress, and of the panel in the frame
    frame.locator("#panel-body").wait_for()
    assert violations == []


def test_the_admin_and_the_sandbox_work_under_their_csp_and_permissions_policy(page, sandbox, thread_worker):
    """Issue 24: the admin (lists, change forms, the store page and its charts) and the sandbox (control panel,
    Install / Launch with the app in its frame, storefront with Ortto's tracking code, Ortto's people page)
    send a Content-Security-Policy and a Permissions-Policy, and Chromium reports no violation on them."""
    from django.contrib.auth import get_user_model

    from stores.models import Store
    from sync.models import SyncRun

    violations, policies = [], {}

    def watch(tab):
        tab.on("console", lambda message: ("Content Security Policy" in message.text or "Permissions" in message.text)
               and violations.append(f"{tab.url}: {message.text}"))
        tab.on("response", lambda r: r.request.resource_type == "document" and policies.update(
            {r.url: (r.headers.get("content-security-policy", ""), r.headers.get("permissions-policy", ""))}))

    watch(page)
    page.context.on("page", watch)
    frame = install_and_open(page, sandbox)
    connect(page.context, frame, account="Acme Outdoor (US)", strategy="Import and merge new records only")
    frame.get_by_text("Connected to").wait_for()
    for _ in range(120):  # the initial run fills the store page's charts
        if SyncRun.objects.filter(status="succeeded").exists():
            break
        page.wait_for_timeout(250)
    # Tracking on, so the storefront runs Ortto's tracking code (an inline script the store installed).
    frame.get_by_label(re.compile("Enable tracking")).check()
    frame.get_by_text("is installed on your storefront").wait_for()

    sandbox_pages = [
        "/sandbox/bigcommerce/",
        "/sandbox/bigcommerce/store-demo1234/manage/",
        "/sandbox/bigcommerce/store-demo1234/manage/apps/",
        "/sandbox/bigcommerce/store-demo1234/manage/orders/",
        "/sandbox/bigcommerce/store-demo1234/manage/customers/",
        "/sandbox/bigcommerce/store-demo1234/storefront/",
        "/sandbox/bigcommerce/store-demo1234/checkout/",
        "/sandbox/ortto/app/acme-us/people/",
    ]
    for path in sandbox_pages:
        page.goto(sandbox + path)
        page.wait_for_load_state("networkidle")
    # The user switcher and order status still submit by themselves (a static script, not onchange="").
    page.goto(sandbox + "/sandbox/bigcommerce/store-demo1234/manage/orders/")
    with page.expect_navigation():
        page.select_option("select[data-autosubmit]:not(#signed-in-as)", index=1)

    get_user_model().objects.create_superuser("csp-check@example.com", "csp-check@example.com", "the-right-password")
    page.goto(sandbox + "/admin/login/")
    page.fill("input[name=username]", "csp-check@example.com")
    page.fill("input[name=password]", "the-right-password")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Site administration").wait_for()
    store = Store.objects.get(store_hash="demo1234")
    run = SyncRun.objects.first()
    for path in ["/admin/", "/admin/sync/syncrun/", f"/admin/sync/syncrun/{run.pk}/change/", "/admin/stores/store/",
                 f"/admin/stores/store/{store.pk}/change/", "/admin/sync/syncevent/", "/admin/stores/webhookevent/",
                 "/admin/sync/connection/"]:
        response = page.goto(sandbox + path)
        assert response.status == 200, path
        page.wait_for_load_state("networkidle")
        if path.startswith("/admin/stores/store/") and path.endswith("/change/"):
            chart = page.locator(".sync-panel svg").first
            assert chart.is_visible() and chart.bounding_box()["width"] > 100, "the store page shows its charts"

    assert violations == []
    for url, (csp, permissions) in policies.items():
        if "/sandbox/" in url or "/admin/" in url:
            assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp.split("style-src-attr")[0], url
            assert "camera=()" in permissions and "geolocation=()" in permissions, url
