"""The app page's health card, read in one selector: when the store last synced, how far Ortto lags, the
Ortto connection, the webhooks, the records that keep failing, and the records synced per hour for 7 days.

Definitions (docs/design.md §2, "Health card"):
- last synced successfully: the latest run that finished having read everything it set out to read
  (succeeded, or partial: its failed records are counted on their own line);
- lag: now minus the oldest change the bridge has received and not yet synced (the oldest webhook delivery
  still pending); 0 when none waits. A change no webhook announced is not seen before the sweep reads it:
  the sweep interval bounds that, and such changes are counted as missed deliveries;
- hooks: all active when the last sweep found nothing to put back, else how many it re-activated or
  re-created in the last 7 days, and when;
- missed deliveries: changes the sweeps of the last 7 days read that no webhook had announced (sync/intake/hooks.py);
- records that keep failing: sync/health/failures.py's one definition of "failing now";
- chart: each finished run's records (read less failed) in the hour it finished, 168 hourly buckets.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import F, Max, Min, Q, Sum
from django.db.models.functions import TruncHour
from django.utils import timezone

from stores.models import Store, WebhookEvent
from sync.connect.selectors import live_connection_get
from sync.health.failures import failing_records_count
from sync.intake.hooks import HOOK_SCOPES
from sync.models import Connection, SyncRun

CHART_HOURS = 168
CHART_BAR_WIDTH = 5  # px in the SVG's own units: 168 bars make an 840-wide chart
CHART_HEIGHT = 120

ORTTO_WORDS = {
    Connection.State.ACTIVE: ("ok", "Connected: Ortto is accepting your data."),
    Connection.State.PAUSED: ("warn", "Paused by Ortto: the account is refusing data for now (expired, suspended "
                                      "or over a plan limit). Syncing resumes by itself once Ortto accepts again."),
    Connection.State.NEEDS_RECONNECT: ("bad", "Needs reconnecting: Ortto no longer accepts this connection's API "
                                              "key. Click Reconnect above."),
}


def _chart(store: Store, now: datetime) -> dict:
    """168 hourly buckets ending with the current hour, from one aggregate query over the store's runs."""
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=CHART_HOURS - 1)
    rows = (
        SyncRun.objects.filter(store=store, finished_at__gte=first)
        .annotate(hour=TruncHour("finished_at"))
        .values("hour")
        .annotate(records=Sum(F("processed") - F("failed")))
    )
    per_hour = {row["hour"]: max(row["records"] or 0, 0) for row in rows}
    top = max(per_hour.values(), default=0)
    bars = []
    for index in range(CHART_HOURS):
        hour = first + timedelta(hours=index)
        records = per_hour.get(hour, 0)
        height = round(records * CHART_HEIGHT / top) if top else 0
        if records and not height:
            height = 1  # a little is still something
        bars.append({"x": index * CHART_BAR_WIDTH, "y": CHART_HEIGHT - height, "height": height,
                     "records": records, "hour": hour})
    return {"bars": bars, "max": top, "total": sum(per_hour.values()), "width": CHART_HOURS * CHART_BAR_WIDTH,
            "height": CHART_HEIGHT, "bar_width": CHART_BAR_WIDTH - 1, "first": first}


def store_health(*, store: Store, now: datetime | None = None) -> dict:
    """Everything the health card shows, in plain data (six queries)."""
    now = now or timezone.now()
    week_ago = now - timedelta(days=7)
    connection = live_connection_get(store=store)
    last_success = (
        SyncRun.objects.filter(store=store, status__in=(SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL))
        .order_by("-finished_at").values_list("finished_at", flat=True).first()
    )
    deliveries = WebhookEvent.objects.filter(store=store).aggregate(
        last=Max("received_at"), oldest_pending=Min("received_at", filter=Q(status=WebhookEvent.Status.PENDING)))
    oldest_pending = deliveries["oldest_pending"]
    lag_minutes = int((now - oldest_pending).total_seconds() // 60) if oldest_pending else 0
    missed = SyncRun.objects.filter(store=store, kind=SyncRun.Kind.INCREMENTAL, finished_at__gte=week_ago).aggregate(
        n=Sum("missed_deliveries"))["n"] or 0
    tone, words = ORTTO_WORDS.get(connection.state, ("", "")) if connection else ("bad", "Not connected to Ortto.")
    hooks = {"expected": len(HOOK_SCOPES), "checked_at": None, "healed_at": None, "healed": 0}
    if connection is not None:
        healed_lately = connection.webhooks_healed_at and connection.webhooks_healed_at >= week_ago
        hooks.update(checked_at=connection.webhooks_checked_at,
                     healed_at=connection.webhooks_healed_at if healed_lately else None,
                     healed=connection.webhooks_healed if healed_lately else 0)
    return {
        "now": now,
        "last_success_at": last_success,
        "lag_minutes": lag_minutes,
        "oldest_pending_at": oldest_pending,
        "ortto_tone": tone,
        "ortto_words": words,
        "webhooks_last_at": deliveries["last"],
        "hooks": hooks,
        "missed_deliveries": missed,
        "failing_records": failing_records_count(store=store),
        "chart": _chart(store, now),
    }
