"""django-q2 entry points: thin wrappers that take ids and call services."""

import logging

from stores.models import Store, WebhookEvent
from stores.services import signed_payloads_purge, store_uninstall_checks_run
from sync.consent.erasure import customer_deleted_handle
from sync.engine.pauses import paused_accounts_probe
from sync.engine.runs import RunNotPossible, sync_run_execute, sync_run_request, webhook_run_request
from sync.health.incidents import incidents_evaluate, incidents_evaluate_all
from sync.mail import owner_mail_deliver as owner_mail_deliver_service
from sync.models import Connection, SyncRun
from sync.queue import enqueue
from sync.throttle import throttle_purge

logger = logging.getLogger("sync.tasks")


def run_sync(run_id: int) -> None:
    sync_run_execute(run_id=run_id)


def owner_mail_deliver(store_id: int, subject: str, body: str, attempt: int = 1, to_owner: bool = True,
                       support_copy: bool = False) -> bool:
    return owner_mail_deliver_service(store_id=store_id, subject=subject, body=body, attempt=attempt,
                                      to_owner=to_owner, support_copy=support_copy)


def incidents_check(store_id: int) -> None:
    store = Store.objects.filter(pk=store_id).first()
    if store is not None:
        incidents_evaluate(store=store)


def consent_customer_deleted(store_id: int, event_id: int, attempt: int = 1) -> str:
    """store/customer/deleted: keep the person in Ortto (default) or erase them, as the store chose."""
    return customer_deleted_handle(store_id=store_id, event_id=event_id, attempt=attempt)


def incremental_tick() -> int:
    """Fan out: one incremental run per installed store with an active connection (an active run absorbs it)."""
    paused_accounts_probe()  # connections paused by an Ortto 403 resume here once Ortto accepts again
    requested = 0
    stores = Store.objects.filter(is_installed=True, connections__state=Connection.State.ACTIVE).distinct()
    for store in stores:
        try:
            _, created = sync_run_request(store=store, kind=SyncRun.Kind.INCREMENTAL, requested_by="schedule")
        except RunNotPossible:
            continue
        requested += int(created)
    return requested


def maintenance_tick() -> dict:
    """Resume runs whose worker went quiet, and drain webhook events that no run picked up."""
    # Stalls, the paused-account probe's outcome and recoveries show here (the rest also at each run's
    # end); first, before the stalled runs below are handed out again.
    incidents = incidents_evaluate_all()
    quiet = SyncRun.objects.stalled()
    resumed = 0
    for run_id in quiet.values_list("pk", flat=True):
        enqueue("sync.tasks.run_sync", run_id)
        resumed += 1
    drained = 0
    waiting = (
        Store.objects.filter(is_installed=True, webhook_events__status=WebhookEvent.Status.PENDING,
                             connections__state=Connection.State.ACTIVE)
        .exclude(sync_runs__status__in=SyncRun.ACTIVE_STATUSES)
        .distinct()
    )
    for store in waiting:
        if webhook_run_request(store=store) is not None:
            drained += 1
    throttle_purge()  # sign-in / sign-up counters whose window has closed
    signed_payloads_purge()  # spent load tokens that have expired
    store_uninstall_checks_run()  # uninstall callbacks that BigCommerce has not confirmed yet
    if resumed or drained:
        logger.info("maintenance: %d stalled run(s) resumed, %d webhook run(s) requested", resumed, drained)
    return {"resumed": resumed, "webhook_runs": drained, "incidents": incidents}
