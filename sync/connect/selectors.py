"""Reads: a store's live connection, what the app page shows, a person's Ortto accounts, and the store's
sync history for the Store page."""

from django.conf import settings
from django.db.models import Prefetch

from stores.models import Store
from sync.health.failures import failing_records
from sync.models import Connection, OrttoAccount, SyncRun
from sync.throttle import sync_now_open_at


def live_connection_get(*, store: Store) -> Connection | None:
    """The store's current (not disconnected) connection, with its account."""
    return (
        Connection.objects.select_related("account")
        .filter(store=store)
        .exclude(state=Connection.State.DISCONNECTED)
        .first()
    )


def active_run_get(*, store: Store) -> SyncRun | None:
    """The store's queued or running run, if any (at most one: `one_active_run_per_store`)."""
    return SyncRun.objects.filter(store=store, status__in=SyncRun.ACTIVE_STATUSES).first()


def active_import_get(*, store: Store) -> SyncRun | None:
    """The store's queued or running import (initial or full): the one whose merge strategy stays put
    until it finishes. Short runs (webhook, incremental, manual) end in moments; the next run uses a
    new strategy."""
    run = active_run_get(store=store)
    return run if run is not None and run.kind in (SyncRun.Kind.INITIAL, SyncRun.Kind.FULL) else None


def ortto_accounts_for_user(*, user):
    """The Ortto accounts this person may connect a store to."""
    return OrttoAccount.objects.filter(members=user).order_by("business_name")


def ortto_accounts_with_other_stores(*, accounts, store: Store):
    """The Accounts page's list: each account with `elsewhere`, the live connections of other stores to
    it (so a store owner sees that an account already receives another store's data)."""
    others = (Connection.objects.exclude(state=Connection.State.DISCONNECTED).exclude(store=store)
              .select_related("store").order_by("store__name"))
    return accounts.prefetch_related(Prefetch("connections", queryset=others, to_attr="elsewhere"))


def _label(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


# What each counter means to a store owner, per kind of record (sync/engine/people.py counts them): the
# words the app page puts after each number. Every record read lands in exactly one of them, so a
# line adds up to the number read; on an initial import the subscribers a customer took along (one
# person in Ortto, written once with their customer record) are the rest of the subscribers' line.
RECORD_NOUNS = {
    "subscribers": ("subscriber", "subscribers"),
    "customers": ("customer", "customers"),
    "orders": ("order", "orders"),
    "organizations": ("company", "companies"),
    "carts": ("abandoned cart", "abandoned carts"),
    "catalog": ("product", "products"),
    "product_activities": ("product activity", "product activities"),
}
COUNTER_WORDS = {
    "subscribers": [("created", "added to Ortto"), ("merged", "merged with their customer record"),
                    ("updated", "updated in Ortto"), ("unchanged", "already up to date"),
                    ("skipped", "not sent (erased on request)"), ("failed", "not sent (see the errors)")],
    "customers": [("created", "added to Ortto"), ("updated", "updated in Ortto"),
                  ("unchanged", "already up to date"), ("skipped", "not sent (erased on request)"),
                  ("failed", "not sent (see the errors)")],
    "orders": [("created", "sent as Placed order activities"),
               ("summarized", "counted in their buyer's totals only"),
               ("incomplete", "incomplete checkouts (never placed, not sent)"),
               ("unchanged", "already in Ortto"), ("skipped", "not sent (erased on request)"),
               ("failed", "not sent (see the errors)")],
    "organizations": [("created", "added to Ortto as organizations"), ("updated", "updated in Ortto"),
                      ("unchanged", "already up to date"), ("failed", "not sent (see the errors)")],
    # The catalog mirror: products read for their links and pictures, never sent themselves.
    "catalog": [("unchanged", "kept in the catalog mirror for product links and pictures")],
    # Added to cart, Viewed product, Waiting on stock and Back in stock (sync/catalog/journeys.py): a line of
    # their own, so neither it nor the catalog's mixes the other's numbers.
    "product_activities": [("created", "sent to Ortto"),
                           ("summarized", "not sent (Ortto keeps 50 of one activity per person a day)"),
                           ("skipped", "cart lines not sent (shopper unknown or cart gone)"),
                           ("failed", "not sent (see the errors)")],
}
DEFAULT_WORDS = [("created", "sent to Ortto"), ("updated", "updated in Ortto"), ("unchanged", "already up to date"),
                 ("summarized", "not sent (Ortto keeps 50 of one activity per person a day)"),
                 ("skipped", "not sent (nothing to send)"), ("failed", "not sent (see the errors)")]


def counter_lines(run: SyncRun) -> list[dict]:
    """The run's counters as sentences that add up: "1,341 subscribers: 563 added to Ortto, 778 merged
    with their customer record". Each line has `total`, `parts` [(count, words)] and `text`."""
    lines = []
    for resource, counts in run.counter_rows:
        words = COUNTER_WORDS.get(resource, DEFAULT_WORDS)
        counts = dict(counts)
        if resource == "subscribers":
            counts["merged"] = max(0, counts["fetched"] - sum(counts[k] for k, _ in words if k != "merged"))
        total = counts["fetched"]
        parts = [(counts[key], text) for key, text in words if counts.get(key)]
        singular, plural = RECORD_NOUNS.get(resource, (resource, resource))
        noun = singular if total == 1 else plural
        text = f"{total:,} {noun}" + (": " + ", ".join(f"{n:,} {t}" for n, t in parts) if parts else "")
        lines.append({"resource": resource, "total": total, "parts": parts, "text": text})
    return lines


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
        "counter_lines": counter_lines(run),
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
        # When Sync now opens again after the last manual request (None: it is open). A moment, not a
        # countdown, so the panel's version changes only when the button does.
        "sync_now_available_at": None,
    }
    open_at = sync_now_open_at(store_hash=store.store_hash)
    if open_at is not None:
        state["sync_now_available_at"] = open_at.isoformat()
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
    active run, the last finished one, and the records failing now (sync/health/failures.py) with their count."""
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
