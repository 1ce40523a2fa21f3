"""Connecting a store to an Ortto account: connect, reconnect, disconnect, and what the app page shows.

Services return explicit outcomes; views only show them (django-allauth's socialaccount flow is the model).
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from stores.models import Store

from .models import Connection, MergeStrategy, OrttoAccount, SyncRun
from .stalls import sync_run_active_answer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectOutcome:
    result: str  # "created" | "updated" | "switched" | "refused"
    connection: Connection | None = None
    run: SyncRun | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.result != "refused"


def connection_live(*, store: Store) -> Connection | None:
    """The store's current (not disconnected) connection, with its account."""
    return (
        Connection.objects.select_related("account")
        .filter(store=store)
        .exclude(state=Connection.State.DISCONNECTED)
        .first()
    )


def accounts_for_user(*, user):
    return OrttoAccount.objects.filter(members=user).order_by("business_name")


def connection_connect(*, store: Store, account: OrttoAccount, merge_strategy: int, user, bc_user_id: int) -> ConnectOutcome:
    """Connect or reconnect `store` to `account` and queue the sync that follows.

    Same account: keep the connection (its ledger and cursors) and update the strategy. Another account:
    the old connection becomes history, a new one starts with a full import, and tracking moves along.
    """
    from .runs import sync_run_request

    if merge_strategy not in MergeStrategy.values:
        return ConnectOutcome("refused", reason="Choose how records should be merged.")
    if not store.is_installed:
        return ConnectOutcome("refused", reason="This store has uninstalled the app. Install it again first.")
    if not account.members.filter(pk=user.pk).exists():
        return ConnectOutcome("refused", reason="You are not a member of that Ortto account.")
    if not store.users.filter(bc_user_id=bc_user_id, is_active=True).exists():
        return ConnectOutcome("refused", reason="You no longer have access to this store.")

    now = timezone.now()
    moved_tracking_from = None
    with transaction.atomic():
        Store.objects.select_for_update().get(pk=store.pk)  # serialise connects of one store
        current = connection_live(store=store)
        if current and current.account_id == account.pk:
            current.merge_strategy = merge_strategy
            current.state = Connection.State.ACTIVE
            current.state_reason = ""
            current.connected_by = user
            current.connected_by_bc_user_id = bc_user_id
            current.connected_at = now
            current.save()
            connection, result, kind = current, "updated", SyncRun.Kind.MANUAL
        else:
            if current:
                from .runs import sync_runs_cancel

                sync_runs_cancel(store=store, reason="Reconnected to another Ortto account")
                current.state = Connection.State.DISCONNECTED
                current.state_reason = f"Replaced by a connection to {account.business_name}"
                current.disconnected_at = now
                current.save()
                if current.tracking_enabled:
                    moved_tracking_from = current
            connection = Connection.objects.create(
                store=store, account=account, merge_strategy=merge_strategy, state=Connection.State.ACTIVE,
                connected_by=user, connected_by_bc_user_id=bc_user_id, connected_at=now,
            )
            # A new account starts from nothing: cursors belong to the old account's history.
            store.cursors.all().delete()
            result = "switched" if current else "created"
            kind = SyncRun.Kind.INITIAL
        run, _ = sync_run_request(store=store, kind=kind, requested_by=f"connect:{user.get_username()}")

    if moved_tracking_from is not None:
        _tracking_move(old=moved_tracking_from, new=connection, by=user.get_username())
    logger.info("store %s %s connection to account %s (strategy %s)", store.store_hash, result, account.pk, merge_strategy)
    return ConnectOutcome(result, connection=connection, run=run)


def _tracking_move(*, old: Connection, new: Connection, by: str) -> None:
    try:
        from .tracking import tracking_move
    except ImportError:  # tracking arrives with its own issue
        return
    tracking_move(old=old, new=new, by=by)


def connection_disconnect(*, store: Store, by: str) -> Connection | None:
    """Stop syncing: cancel runs, remove the tracking script and webhooks; keep the history."""
    from .runs import sync_runs_cancel

    connection = connection_live(store=store)
    if connection is None:
        return None
    sync_runs_cancel(store=store, reason=f"Disconnected by {by}")
    if connection.tracking_enabled:
        try:
            from .tracking import tracking_disable

            tracking_disable(connection=connection, by=by)
        except ImportError:
            pass
        except Exception:  # the store may have removed it already; disconnect anyway
            logger.exception("store %s: removing the tracking script on disconnect failed", store.store_hash)
    try:
        from .webhooks import webhooks_unregister

        webhooks_unregister(connection)
    except Exception:
        logger.exception("store %s: removing webhooks on disconnect failed", store.store_hash)
    connection.state = Connection.State.DISCONNECTED
    connection.state_reason = f"Disconnected by {by}"
    connection.disconnected_at = timezone.now()
    connection.save(update_fields=["state", "state_reason", "disconnected_at"])
    return connection


def connection_store_uninstalled(*, store: Store) -> None:
    """BigCommerce removed the app (and with it our hooks and scripts): stop everything, keep history."""
    from .runs import sync_runs_cancel

    sync_runs_cancel(store=store, reason="The app was uninstalled")
    Connection.objects.filter(store=store).exclude(state=Connection.State.DISCONNECTED).update(
        state=Connection.State.DISCONNECTED, state_reason="The app was uninstalled",
        disconnected_at=timezone.now(), tracking_enabled=False, tracking_script_uuid="", webhook_ids=[],
    )


def connection_sync_now(*, store: Store, requested_by: str) -> str:
    """Queue a manual sync. Returns a refusal message, or "" when queued."""
    from .runs import sync_run_request

    connection = connection_live(store=store)
    if connection is None:
        return "Connect an Ortto account first."
    if connection.state == Connection.State.NEEDS_RECONNECT:
        return "Ortto no longer accepts this connection's API key. Reconnect first."
    run, created = sync_run_request(store=store, kind=SyncRun.Kind.MANUAL, requested_by=requested_by)
    return "" if created else sync_run_active_answer(run=run)


def connection_tracking_set(*, store: Store, enabled: bool, by: str) -> str:
    """Install or remove the storefront tracking script. Returns a refusal message, or "" when done."""
    connection = connection_live(store=store)
    if connection is None:
        return "Connect an Ortto account before enabling tracking."
    try:
        from .tracking import tracking_disable, tracking_enable
    except ImportError:
        return "Website tracking is not available yet."
    if enabled:
        return tracking_enable(connection=connection, by=by)
    return tracking_disable(connection=connection, by=by)


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
    connection = connection_live(store=store)
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


def ortto_account_url(*, name: str) -> str:
    return settings.ORTTO_APP_URL.format(name=name)
