"""Issue 26: the health card on the app page in real Chromium, under the page's CSP: the owner's words, the
lag, the webhooks put back, and the 7-day chart drawn as inline SVG (168 bars). Saves
16-health-card.png for the README."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from .conftest import ARTIFACTS
from .test_journey import install_and_open

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def _history(store, connection):
    """A week of a store's life: the import six days ago, then a sweep every hour and some webhook runs."""
    from stores.models import WebhookEvent
    from sync.models import Connection, SyncEvent, SyncRun

    now = timezone.now()
    rng = random.Random(26)
    runs = [SyncRun(store=store, connection=connection, kind=SyncRun.Kind.INITIAL, status=SyncRun.Status.SUCCEEDED,
                    started_at=now - timedelta(days=6, hours=1), finished_at=now - timedelta(days=6), processed=60)]
    for hours_ago in range(143, 0, -1):
        finished = now - timedelta(hours=hours_ago, minutes=rng.randint(0, 50))
        busy = 9 <= finished.hour <= 20
        runs.append(SyncRun(store=store, connection=connection, kind=SyncRun.Kind.INCREMENTAL,
                            status=SyncRun.Status.SUCCEEDED, started_at=finished, finished_at=finished,
                            processed=rng.randint(4, 18) if busy else rng.randint(0, 4),
                            missed_deliveries=3 if hours_ago == 2 else 0))
    SyncRun.objects.bulk_create(runs)
    partial = SyncRun.objects.create(store=store, connection=connection, kind=SyncRun.Kind.WEBHOOK,
                                     status=SyncRun.Status.PARTIAL, started_at=now - timedelta(minutes=20),
                                     finished_at=now - timedelta(minutes=20), processed=6, failed=2)
    for bc_id in (41, 42):
        SyncEvent.objects.create(run=partial, resource="customers", bc_id=bc_id, message="Ortto rejected the phone")
    event = WebhookEvent.objects.create(store=store, dedup_key="health-card", scope="store/customer/updated",
                                        resource="customers", resource_id=7, payload={}, bc_created_at=now)
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=now - timedelta(minutes=4, seconds=10))
    Connection.objects.filter(pk=connection.pk).update(
        webhooks_checked_at=now - timedelta(hours=2), webhooks_healed_at=now - timedelta(hours=2), webhooks_healed=5)


def test_the_health_card_in_chromium(page, sandbox, make_connection, sandbox_account):
    from stores.models import Store

    violations = []
    page.on("console", lambda message: "Content Security Policy" in message.text and violations.append(message.text))
    frame = install_and_open(page, sandbox)
    store = Store.objects.get(store_hash="demo1234")
    _history(store, make_connection(store, sandbox_account("acme-us")))
    page.reload()
    frame = page.frame_locator("#app-frame")
    card = frame.locator("#health")
    card.wait_for()
    assert "4 minutes" in card.locator("#health-lag").inner_text()
    assert "5 re-activated" in card.locator("#health-webhooks").inner_text()
    assert "3 changes in the last 7 days" in card.locator("#health-missed").inner_text()
    assert card.locator("#health-failing a").inner_text() == "2 records"
    assert card.locator("#health-chart rect.bar").count() == 168
    box = card.locator("#health-chart").bounding_box()
    assert box["width"] > 600 and box["height"] == 120
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    card.screenshot(path=str(ARTIFACTS / "16-health-card.png"))
    assert violations == []
