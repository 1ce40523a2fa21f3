"""Reads: a store's live connection, what the app page shows, a person's Ortto accounts, and the store's
sync history for the Store page."""

from django.conf import settings

from stores.models import Store

from .failures import failing_records
from .models import Connection, OrttoAccount, SyncRun


def live_connection_get(*, store: Store) -> Connection | None:
    """The store's current (not disconnected) connection, with its account."""
    return (
        Connection.objects.select_related("account")
        .filter(store=store)
        .exclude(state=Connection.State.DISCONNECTED)
        .first()
    )


def ortto_accounts_for_user(*, user):
    """The Ortto accounts this person may connect a store to."""
    return OrttoAccount.objects.filter(members=user).order_by("business_name")


def _label(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def _run_summary(run: SyncRun | None) -> dict | None:
    if run is None:
        return None
    return {
        "id": run.pk,
        "kind": run.get_kind_display(),
        "status": run.status,
        "status_label": run.get_status_display(),
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "finished_label": _label(run.finished_at),
        "processed": run.processed,
        "total": run.total,
        "failed": run.failed,
        "people_synced": run.people_synced,
        "percent": run.progress_percent,
        "counters": [{"resource": resource, **counts} for resource, counts in run.counter_rows],
        "error_summary": run.error_summary,
    }


def app_state(*, store: Store) -> dict:
    """Everything the app page shows, as plain data (also served as JSON to the page's poller)."""
    connection = live_connection_get(store=store)
    runs = SyncRun.objects.filter(store=store).order_by("-created_at")
    active = runs.filter(status__in=SyncRun.ACTIVE_STATUSES).first()
    last = runs.exclude(status__in=SyncRun.ACTIVE_STATUSES).first()
    state = {
        "store_hash": store.store_hash,
        "connected": connection is not None,
        "connection": None,
        "active_run": _run_summary(active),
        "last_run": _run_summary(last),
    }
    if connection is not None:
        account = connection.account
        state["connection"] = {
            "id": connection.pk,
            "business_name": account.business_name,
            "account_url": account.account_url,
            "region": account.get_region_display(),
            "merge_strategy": connection.merge_strategy,
            "merge_strategy_label": connection.get_merge_strategy_display(),
            "state": connection.state,
            "state_label": connection.get_state_display(),
            "state_reason": connection.state_reason,
            "needs_reconnect": connection.state == Connection.State.NEEDS_RECONNECT,
            "paused": connection.state == Connection.State.PAUSED,
            "connected_at": connection.connected_at.isoformat(),
            "tracking_enabled": connection.tracking_enabled,
            "tracking_changed_at": connection.tracking_changed_at.isoformat() if connection.tracking_changed_at else None,
            "tracking_changed_label": _label(connection.tracking_changed_at),
            "tracking_changed_by": connection.tracking_changed_by,
            "tracking_available": bool(account.tracking_key),
        }
    return state


def control_panel_url(*, store: Store) -> str:
    return settings.BIGCOMMERCE_CONTROL_PANEL_URL.format(store_hash=store.store_hash, app_id=settings.BIGCOMMERCE_APP_ID)


# How much of a store's history the Store page shows.
CHART_RUNS = 60
RECENT_RUNS = 10


def store_sync_overview(*, store: Store) -> dict:
    """A store's sync history for the Store page, in a fixed number of small queries: its latest
    connections and the live one, the runs for the chart and the recent ones (with `is_stalled`), the
    active run, the last finished one, and the records failing now (sync/failures.py) with their count."""
    connections = list(
        Connection.objects.filter(store=store).select_related("account", "connected_by")
        .defer("account__api_key").order_by("-connected_at")[:5]
    )
    live = next((c for c in connections if c.state != Connection.State.DISCONNECTED), None)
    light = ("id", "store_id", "kind", "status", "created_at", "started_at", "finished_at", "heartbeat_at",
             "people_synced", "processed", "failed")
    chart_runs = list(SyncRun.objects.filter(store=store).only(*light).order_by("-created_at", "-id")[:CHART_RUNS])
    recent = list(
        SyncRun.objects.filter(store=store).with_stalled().defer("checkpoint")
        .order_by("-created_at", "-id")[:RECENT_RUNS]
    )
    active = next((run for run in recent if run.is_active), None)
    last_finished = next((run for run in recent if run.finished_at), None)
    failing = failing_records(store=store)
    chart_runs.reverse()
    return {
        "connection": live,
        "connections": connections,
        "chart_runs": chart_runs,
        "recent_runs": recent,
        "active_run": active,
        "last_finished": last_finished,
        "failing_records": list(failing[:10]),
        "failing_count": failing.count(),
    }
