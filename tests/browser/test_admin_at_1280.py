"""Issue 25, the admin: at 1280 px every list shows its useful columns (nothing hidden past the right edge)
and the store page's chart, in real Chromium; no page asks for something that is not there (the favicon)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from stores.models import WebhookEvent
from sync.models import CartLedger, SyncEvent, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

LISTS = {
    "/admin/sync/syncrun/": ["Account", "Duration", "Failed", "Requested by"],
    "/admin/stores/store/": ["Ortto account", "Connection", "Last sync"],
    "/admin/sync/syncevent/": ["Store", "Message", "Resolved"],
    "/admin/sync/connection/": ["Ortto account", "State", "Runs"],
    "/admin/stores/webhookevent/": ["Store", "Status", "Duplicates"],
    "/admin/sync/cartledger/": ["Shopper", "What the bridge did", "Recovered"],
}


@pytest.fixture
def support_data(make_store, make_account, make_connection):
    store = make_store("demo1234", name="Acme Outdoor Co.", domain="acme-outdoor.example.com")
    connection = make_connection(store, make_account(business_name="Acme Outdoor (US)"), merge_strategy=2)
    now = timezone.now()
    for n in range(12):
        run = SyncRun.objects.create(
            store=store, connection=connection, kind=SyncRun.Kind.INCREMENTAL,
            status=SyncRun.Status.PARTIAL if n % 4 == 1 else SyncRun.Status.SUCCEEDED,
            people_synced=140 if n == 0 else 20 + n, failed=3 if n % 4 == 1 else 0, processed=160,
            requested_by="connect:owner.with.a.long.name@acme-outdoor.example.com" if n == 0 else "schedule",
            counters={"customers": {"fetched": 160, "created": 140, "failed": 3}})
        SyncRun.objects.filter(pk=run.pk).update(created_at=now - timedelta(hours=12 - n),
                                                 started_at=now - timedelta(hours=12 - n),
                                                 finished_at=now - timedelta(hours=12 - n, seconds=-95))
        if run.failed:
            SyncEvent.objects.create(run=run, resource="customers", bc_id=3, email="long.email.address@shopper.example",
                                     message="Ortto refused the person: str::email is not a valid email address")
    WebhookEvent.objects.create(store=store, dedup_key="d" * 64, scope="store/customer/updated", resource="customers",
                                resource_id=3, payload={}, bc_created_at=now)
    CartLedger.objects.create(connection=connection, cart_id="0b8f4c52-6c1e-4d53-9a55-1c2f3e4d5a6b",
                              email="cart.shopper@example.com", value="237.00", currency="USD",
                              outcome=CartLedger.Outcome.SENT, abandoned_at=now, order_id=120, recovered_at=now)
    return store


def test_every_list_shows_its_useful_columns_at_1280_px(page, live_server, admin_user, support_data, shoot):
    missing = []
    page.on("response", lambda response: response.status == 404 and missing.append(response.url))
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "password")
    page.click("input[type=submit]")
    for path, columns in LISTS.items():
        page.goto(f"{live_server.url}{path}")
        shoot(page, "admin-" + path.strip("/").replace("/", "-"))
        for column in columns:
            header = page.locator("#result_list thead th", has_text=column).first
            box = header.bounding_box()
            assert box and box["x"] + box["width"] <= 1280, (path, column)
        # Nothing sits past the list's right edge, to be scrolled to.
        overflow = page.evaluate("() => { const r = document.querySelector('#changelist .results');"
                                 " return r.scrollWidth - r.clientWidth; }")
        assert overflow <= 0, (path, overflow)
    page.goto(f"{live_server.url}/admin/stores/store/{support_data.pk}/change/")
    chart = page.locator("svg.sync-runs-chart")
    assert chart.bounding_box()["width"] <= 1280
    assert "Failed records per run" in chart.inner_html()
    shoot(page, "admin-store-page")
    assert missing == []
