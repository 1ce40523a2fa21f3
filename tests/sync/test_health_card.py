"""The app page's health card: the selector over each state, and the card as the store owner reads it."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from stores.app_context import StoreContext, app_context_token
from stores.models import WebhookEvent
from sync.health.card import CHART_HEIGHT, CHART_HOURS, store_health
from sync.models import Connection, SyncEvent, SyncRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(make_store):
    return make_store("hlth1")


@pytest.fixture
def connection(store, make_account, make_connection):
    return make_connection(store, make_account())


def _run(store, connection, *, finished, kind=SyncRun.Kind.INCREMENTAL, status=SyncRun.Status.SUCCEEDED,
         processed=0, failed=0, missed=0):
    return SyncRun.objects.create(store=store, connection=connection, kind=kind, status=status, started_at=finished,
                                  finished_at=finished, processed=processed, failed=failed, missed_deliveries=missed)


def _event(store, *, received, status=WebhookEvent.Status.PENDING, resource_id=1):
    event = WebhookEvent.objects.create(store=store, dedup_key=f"k{resource_id}", scope="store/customer/updated",
                                        resource="customers", resource_id=resource_id, payload={},
                                        bc_created_at=received, status=status)
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=received)  # auto_now_add
    return event


def test_a_store_without_a_connection_or_history(store, django_assert_num_queries):
    with django_assert_num_queries(6):
        health = store_health(store=store)
    assert health["last_success_at"] is None and health["lag_minutes"] == 0
    assert health["ortto_words"] == "Not connected to Ortto." and health["webhooks_last_at"] is None
    assert health["hooks"]["checked_at"] is None and health["missed_deliveries"] == 0
    assert health["failing_records"] == 0
    assert len(health["chart"]["bars"]) == CHART_HOURS and health["chart"]["max"] == 0


def test_a_healthy_store(store, connection, django_assert_num_queries):
    now = timezone.now()
    _run(store, connection, finished=now - timedelta(minutes=30), processed=40, failed=2)
    _run(store, connection, finished=now - timedelta(minutes=5), status=SyncRun.Status.FAILED, processed=3)
    _event(store, received=now - timedelta(minutes=12), status=WebhookEvent.Status.PROCESSED)
    Connection.objects.filter(pk=connection.pk).update(webhooks_checked_at=now - timedelta(minutes=30))
    with django_assert_num_queries(6):
        health = store_health(store=store, now=now)
    assert health["last_success_at"] == now - timedelta(minutes=30)  # not the failed run after it
    assert health["lag_minutes"] == 0
    assert health["ortto_tone"] == "ok" and health["ortto_words"].startswith("Connected")
    assert health["webhooks_last_at"] == now - timedelta(minutes=12)
    assert health["hooks"]["checked_at"] and health["hooks"]["healed_at"] is None


def test_the_lag_is_the_age_of_the_oldest_change_not_yet_synced(store, connection):
    now = timezone.now()
    _event(store, received=now - timedelta(minutes=50), status=WebhookEvent.Status.PROCESSED, resource_id=1)
    _event(store, received=now - timedelta(minutes=17, seconds=20), resource_id=2)
    _event(store, received=now - timedelta(minutes=3), resource_id=3)
    health = store_health(store=store, now=now)
    assert health["lag_minutes"] == 17
    assert health["webhooks_last_at"] == now - timedelta(minutes=3)


@pytest.mark.parametrize("state, tone, words", [
    (Connection.State.PAUSED, "warn", "Paused by Ortto"),
    (Connection.State.NEEDS_RECONNECT, "bad", "Needs reconnecting"),
])
def test_the_ortto_connection_in_plain_words(store, connection, state, tone, words):
    Connection.objects.filter(pk=connection.pk).update(state=state)
    health = store_health(store=store)
    assert health["ortto_tone"] == tone and health["ortto_words"].startswith(words)


def test_hooks_put_back_and_missed_deliveries_of_the_last_seven_days(store, connection):
    now = timezone.now()
    Connection.objects.filter(pk=connection.pk).update(
        webhooks_checked_at=now - timedelta(minutes=2), webhooks_healed_at=now - timedelta(hours=2), webhooks_healed=5)
    _run(store, connection, finished=now - timedelta(hours=2), missed=3)
    _run(store, connection, finished=now - timedelta(days=1), missed=1)
    _run(store, connection, finished=now - timedelta(days=8), missed=40)  # too old
    health = store_health(store=store, now=now)
    assert health["hooks"]["healed"] == 5 and health["hooks"]["healed_at"] == now - timedelta(hours=2)
    assert health["missed_deliveries"] == 4
    # A week later the repair is history: all active again.
    later = store_health(store=store, now=now + timedelta(days=8))
    assert later["hooks"]["healed"] == 0 and later["hooks"]["healed_at"] is None


def test_failing_records_are_the_unresolved_errors(store, connection):
    run = _run(store, connection, finished=timezone.now(), status=SyncRun.Status.PARTIAL, processed=5, failed=3)
    for bc_id, level, resolved in [(1, "error", False), (2, "error", False), (3, "error", True), (4, "warning", False)]:
        SyncEvent.objects.create(run=run, resource="customers", bc_id=bc_id, level=level, resolved=resolved,
                                 message="Ortto rejected the record")
    assert store_health(store=store)["failing_records"] == 2


def test_the_chart_has_an_hourly_bucket_for_each_of_the_last_seven_days(store, connection):
    now = timezone.now().replace(minute=40)
    hour = now.replace(minute=0, second=0, microsecond=0)
    _run(store, connection, finished=hour + timedelta(minutes=10), processed=50, failed=10)   # this hour: 40
    _run(store, connection, finished=hour + timedelta(minutes=20), processed=40)               # this hour: +40
    _run(store, connection, finished=hour - timedelta(hours=5, minutes=-1), processed=20)      # 5 h ago: 20
    _run(store, connection, finished=hour - timedelta(hours=CHART_HOURS), processed=999)       # outside
    chart = store_health(store=store, now=now)["chart"]
    bars = chart["bars"]
    assert len(bars) == CHART_HOURS and bars[-1]["hour"] == hour and bars[0]["hour"] == hour - timedelta(hours=167)
    assert bars[-1]["records"] == 80 and bars[-1]["height"] == CHART_HEIGHT and bars[-1]["y"] == 0
    assert bars[-6]["records"] == 20 and bars[-6]["height"] == CHART_HEIGHT // 4
    assert sum(b["records"] for b in bars) == 100 == chart["total"] and chart["max"] == 80


def test_the_owner_reads_the_card_on_the_app_page(store, connection, client):
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    _run(store, connection, finished=hour - timedelta(hours=2, minutes=-5), processed=30)
    _run(store, connection, finished=hour - timedelta(hours=1, minutes=-5), processed=60, missed=2)
    _event(store, received=now - timedelta(minutes=9, seconds=30))
    Connection.objects.filter(pk=connection.pk).update(
        webhooks_checked_at=now, webhooks_healed_at=now - timedelta(minutes=1), webhooks_healed=5)
    SyncEvent.objects.create(run=SyncRun.objects.first(), resource="orders", bc_id=7, message="Ortto said no")

    token = app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=1001))
    page = client.get("/bigcommerce/app/panel", HTTP_X_APP_CONTEXT=token).content.decode()
    card = page[page.index('id="health"'):]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", card))
    assert "Last successful sync" in text and "How far Ortto is behind your store 9 minutes" in text
    assert "Connected: Ortto is accepting your data." in text
    assert "5 re-activated" in text and "BigCommerce had turned them off" in text
    assert "2 changes in the last 7 days reached the bridge only at the scheduled check" in text
    assert 'href="#failed-records">1 record</a>' in card
    heights = [int(h) for h in re.findall(r'<rect class="bar"[^>]* height="(\d+)"', card)]
    assert len(heights) == CHART_HOURS
    assert heights[-2] == CHART_HEIGHT and heights[-3] == CHART_HEIGHT // 2 and sum(heights) == CHART_HEIGHT * 3 // 2
    assert "style=" not in card and "<script" not in card
