"""Connecting a store to an Ortto account: connect, prepare, reconnect, disconnect, uninstall, and the app
page's actions (Sync now, tracking).

Services return explicit outcomes; views only show them (django-allauth's socialaccount flow is the model).
"""

import logging
import math
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from stores.models import Store
from stores.services import store_user_label
from sync.connect.authority import NOT_ALLOWED, connection_change_record, connection_manager_may
from sync.connect.selectors import active_import_get, active_run_get, live_connection_get
from sync.engine.pauses import paused_connection_probe
from sync.engine.runs import sync_run_request, sync_runs_cancel
from sync.health.failures import failing_records
from sync.health.stalls import sync_run_active_answer
from sync.intake.hooks import webhooks_register, webhooks_unregister
from sync.models import Connection, ConnectionChange, ConnectionManager, MergeStrategy, OrttoAccount, SyncRun
from sync.ortto.schema import ortto_schema_ensure
from sync.throttle import sync_now_attempt, tracking_attempt
from sync.tracking import tracking_disable, tracking_enable, tracking_move

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


def connection_connect(*, store: Store, account: OrttoAccount, merge_strategy: int, user, bc_user_id: int) -> ConnectOutcome:
    """Connect or reconnect `store` to `account` and queue the sync that follows.

    Same account: keep the connection (its ledger and cursors) and update the strategy. Another account:
    the old connection becomes history, a new one starts with a full import, and tracking moves along.
    Only the owner and the users the owner allowed may (authority.connection_manager_may); the change is
    recorded and mailed to the owner.
    """
    if merge_strategy not in MergeStrategy.values:
        return ConnectOutcome("refused", reason="Choose how records should be merged.")
    if not store.is_installed:
        return ConnectOutcome("refused", reason="This store has uninstalled the app. Install it again first.")
    if not account.members.filter(pk=user.pk).exists():
        return ConnectOutcome("refused", reason="You are not a member of that Ortto account.")
    if not store.users.filter(bc_user_id=bc_user_id, is_active=True).exists():
        return ConnectOutcome("refused", reason="You no longer have access to this store.")
    if not connection_manager_may(store=store, bc_user_id=bc_user_id):
        return ConnectOutcome("refused", reason=NOT_ALLOWED)

    now = timezone.now()
    moved_tracking_from = None
    with transaction.atomic():
        Store.objects.select_for_update().get(pk=store.pk)  # serialise connects of one store
        current = live_connection_get(store=store)
        if current and current.account_id == account.pk and current.merge_strategy != merge_strategy:
            running = active_import_get(store=store)
            if running is not None:
                # An import reads the strategy page by page: changing it now would split it in two.
                return ConnectOutcome("refused", connection=current, run=running, reason=strategy_locked_reason(
                    connection=current, run=running))
        if current and current.account_id == account.pk:
            change = (ConnectionChange.Kind.RECONNECTED if current.merge_strategy == merge_strategy
                      else ConnectionChange.Kind.STRATEGY_CHANGED)
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
            change = ConnectionChange.Kind.SWITCHED if current else ConnectionChange.Kind.CONNECTED
            kind = SyncRun.Kind.INITIAL
        run, _ = sync_run_request(store=store, kind=kind, requested_by=f"connect:{user.get_username()}")
        connection_change_record(
            store=store, kind=change, by_bc_user_id=bc_user_id, signin_email=user.email or user.get_username(),
            account_name=account.business_name, merge_strategy=merge_strategy,
        )

    if moved_tracking_from is not None:
        tracking_move(old=moved_tracking_from, new=connection, by=user.get_username())
    logger.info("store %s %s connection to account %s (strategy %s)", store.store_hash, result, account.pk, merge_strategy)
    return ConnectOutcome(result, connection=connection, run=run)


def strategy_locked_reason(*, connection: Connection, run: SyncRun) -> str:
    return (f"The {run.get_kind_display().lower()} running now uses \"{connection.get_merge_strategy_display()}\", "
            "the merge strategy it started with, to the end. You can choose another strategy once it has finished.")


def connection_prepare(connection: Connection) -> None:
    """What the connect flow does before the initial run: the Ortto schema, then the store's webhooks."""
    ortto_schema_ensure(connection)
    webhooks_register(connection)


def connection_disconnect(*, store: Store, bc_user_id: int) -> str:
    """Stop syncing: cancel runs, remove the tracking script and webhooks; keep the history. Only the owner
    and the users the owner allowed may; the change is recorded and mailed to the owner. Returns a refusal
    message, or "" when done (or when nothing was connected)."""
    if not connection_manager_may(store=store, bc_user_id=bc_user_id):
        return NOT_ALLOWED
    connection = live_connection_get(store=store)
    if connection is None:
        return ""
    by = store_user_label(store=store, bc_user_id=bc_user_id)
    sync_runs_cancel(store=store, reason=f"Disconnected by {by}")
    if connection.tracking_enabled:
        try:
            tracking_disable(connection=connection, by=by)
        except Exception:  # the store may have removed it already; disconnect anyway
            logger.exception("store %s: removing the tracking script on disconnect failed", store.store_hash)
    try:
        webhooks_unregister(connection)
    except Exception:
        logger.exception("store %s: removing webhooks on disconnect failed", store.store_hash)
    connection.state = Connection.State.DISCONNECTED
    connection.state_reason = f"Disconnected by {by}"
    connection.disconnected_at = timezone.now()
    connection.save(update_fields=["state", "state_reason", "disconnected_at"])
    connection_change_record(store=store, kind=ConnectionChange.Kind.DISCONNECTED, by_bc_user_id=bc_user_id,
                             account_name=connection.account.business_name)
    return ""


def connection_store_uninstalled(*, store: Store) -> None:
    """BigCommerce removed the app (and with it our hooks and scripts): stop everything, keep history.

    Called on stores' `store_uninstalled` signal (connected in SyncConfig.ready), inside the uninstall's
    transaction. A later install starts over: the owner allows other users again.
    """
    sync_runs_cancel(store=store, reason="The app was uninstalled")
    ConnectionManager.objects.filter(store=store).delete()
    Connection.objects.filter(store=store).exclude(state=Connection.State.DISCONNECTED).update(
        state=Connection.State.DISCONNECTED, state_reason="The app was uninstalled",
        disconnected_at=timezone.now(), tracking_enabled=False, tracking_script_uuid="", webhook_ids=[],
    )


def _wait_words(seconds: int) -> str:
    """"40 s", "3 min": how long a store owner waits, as the app page says it."""
    return f"{seconds} s" if seconds < 90 else f"{math.ceil(seconds / 60)} min"


def connection_sync_now(*, store: Store, requested_by: str, kind: str = SyncRun.Kind.MANUAL) -> str:
    """Queue a manual sync (or, kind=RETRY_FAILED, the app page's "Retry these"): the owner's explicit
    runs share these rules. Returns a refusal message, or "" when queued.

    At most one manual run a minute per store (throttle.SYNC_NOW_STORE), counted before anything else
    costs a call; a paused connection asks Ortto first (pauses.paused_connection_probe)."""
    connection = live_connection_get(store=store)
    if connection is None:
        return "Connect an Ortto account first."
    if connection.state == Connection.State.NEEDS_RECONNECT:
        return "Ortto no longer accepts this connection's API key. Reconnect first."
    active = active_run_get(store=store)
    if active is not None:
        return sync_run_active_answer(run=active)
    wait = sync_now_attempt(store_hash=store.store_hash)
    if wait:
        return f"A sync was requested less than a minute ago. Sync now is available again in {_wait_words(wait)}."
    refused = paused_connection_probe(connection=connection)
    if refused:
        return refused
    run, created = sync_run_request(store=store, kind=kind, requested_by=requested_by)
    return "" if created else sync_run_active_answer(run=run)


def failed_records_retry(*, store: Store, requested_by: str) -> str:
    """The app page's "Retry these": the admin's "Resync failed records" run, under Sync now's rules."""
    if not failing_records(store=store).filter(bc_id__isnull=False).exists():
        return "No failed records to retry."
    return connection_sync_now(store=store, requested_by=requested_by, kind=SyncRun.Kind.RETRY_FAILED)


def connection_tracking_set(*, store: Store, enabled: bool, by: str) -> str:
    """Install or remove the storefront tracking script. Returns a refusal message, or "" when done.

    A few toggles per store in five minutes (throttle.TRACKING_STORE): each costs Scripts API calls."""
    connection = live_connection_get(store=store)
    if connection is None:
        return "Connect an Ortto account before enabling tracking."
    wait = tracking_attempt(store_hash=store.store_hash)
    if wait:
        return (f"Tracking was switched on and off too often; nothing was changed. Try again in "
                f"{_wait_words(wait)}.")
    if enabled:
        return tracking_enable(connection=connection, by=by)
    return tracking_disable(connection=connection, by=by)
