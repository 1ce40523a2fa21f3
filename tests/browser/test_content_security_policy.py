"""Issue 16, item 9: the app page (framed by the emulated control panel) and the connect flow run under
their Content-Security-Policy in real Chromium without a single violation, and are never cached."""

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
