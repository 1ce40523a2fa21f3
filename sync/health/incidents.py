"""Incidents: trouble with a store's sync that the owner should hear about, and the e-mails that say so.

The conditions are read from the facts (the connection's state, the runs, the webhook arrivals), never
from the events that changed them, so evaluating twice changes nothing and a fact that changes back
clears its incident. incidents_evaluate(store=...) runs where the facts change (the end of every run,
which is also where Ortto's 401 and 403 land: sync.tasks.incidents_check, queued by runs._finish) and in
the maintenance tick for all stores (stalls, the paused-account probe's outcome, clearing).

Each incident opens once per store and kind (the `one_open_incident_per_kind` constraint) and sends two
e-mails in its life: one when it opens, one when it clears, to the owner unless they turned alerts off
(AlertPreference) and as a blind copy to SUPPORT_ALERT_EMAIL. A flood of the same trouble is one
incident. Texts are written here from our own words and counts: no key, token or raw answer goes out.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from stores.models import Store, WebhookEvent
from sync.connect.selectors import control_panel_url, live_connection_get
from sync.engine.pauses import SUMMARY_ORTTO_PAUSED
from sync.engine.runs import SUMMARY_ORTTO_REJECTED
from sync.mail import owner_mail_send
from sync.models import AlertPreference, Connection, Incident, SyncRun

logger = logging.getLogger("sync.health.incidents")

Kind = Incident.Kind
# A run that failed because Ortto refused the key or the account is the key / pause incident, not a
# second one: their summaries start with these words (runs._run_execute).
_REFUSAL_PREFIXES = tuple(text.split("{status}")[0] for text in (SUMMARY_ORTTO_REJECTED, SUMMARY_ORTTO_PAUSED))

# What the owner can do about each kind, said in the e-mail and on the app page.
ADVICE = {
    Kind.KEY_REJECTED: "Open the Ortto Bridge app in your BigCommerce control panel and click Reconnect to "
                       "pick the Ortto account again. Syncing resumes where it stopped.",
    Kind.PAUSED: "Check the Ortto account's plan and status in Ortto. Nothing needs reconnecting: syncing "
                 "resumes by itself as soon as Ortto accepts again.",
    Kind.RUN_FAILED: "The next scheduled sync tries again. If this keeps happening, contact support.",
    Kind.RUN_STALLED: "The bridge resumes the sync from where it stopped; nothing is lost. If it does not "
                      "finish, contact support.",
    Kind.WEBHOOKS_SILENT: "Changes still reach Ortto at every scheduled sweep, only later. The bridge "
                          "re-registers the store's webhooks; if this stays, contact support.",
    Kind.FAILED_SHARE: "Open the app page's Failed records list to see which records and why, fix them in "
                       "the store, then click Retry these.",
}


# --- The conditions ---------------------------------------------------------------------------------


def incident_conditions(*, store: Store, now=None) -> dict[str, dict]:
    """kind -> {"summary", "facts"} for every kind whose condition holds now."""
    now = now or timezone.now()
    found: dict[str, dict] = {}
    connection = live_connection_get(store=store)
    if connection is None or not store.is_installed:
        return found  # nothing syncs: nothing to watch
    if connection.state == Connection.State.NEEDS_RECONNECT:
        found[Kind.KEY_REJECTED] = {"summary": "Ortto stopped accepting the connection's API key, so nothing "
                                               "reaches Ortto until the account is reconnected.",
                                    "facts": {"connection": connection.pk}}
    elif connection.state == Connection.State.PAUSED:
        found[Kind.PAUSED] = {"summary": "Ortto is refusing access to the account for now (it may have expired, "
                                         "been suspended or reached a plan limit), so syncing is paused.",
                              "facts": {"connection": connection.pk}}

    runs = SyncRun.objects.filter(store=store)
    last = runs.filter(finished_at__isnull=False).exclude(status=SyncRun.Status.CANCELLED).order_by(
        "-finished_at", "-id").first()
    if (last is not None and last.status == SyncRun.Status.FAILED and connection.state == Connection.State.ACTIVE
            and not last.error_summary.startswith(_REFUSAL_PREFIXES)):
        found[Kind.RUN_FAILED] = {"summary": f"A sync ({last.get_kind_display().lower()}) stopped without "
                                             "finishing.", "facts": {"run": last.pk}}

    # A stalled run is resumed by the next maintenance tick (a worker died, or a retry is waiting): only one
    # still without progress after SYNC_ALERT_STALL_SECONDS is trouble worth an e-mail. The one stall rule,
    # read that much later.
    grace = timedelta(seconds=max(settings.SYNC_ALERT_STALL_SECONDS - settings.SYNC_STALL_SECONDS, 0))
    stalled = runs.stalled(now - grace).order_by("id").first()
    if stalled is None:
        # An open stall incident lasts while its run is still active (resumed, not yet finished).
        open_stall = Incident.objects.filter(store=store, kind=Kind.RUN_STALLED, cleared_at__isnull=True).first()
        run_id = (open_stall.details.get("facts") or {}).get("run") if open_stall else None
        if run_id and runs.filter(pk=run_id, status__in=SyncRun.ACTIVE_STATUSES).exists():
            stalled = runs.get(pk=run_id)
    if stalled is not None:
        found[Kind.RUN_STALLED] = {
            "summary": f"A sync ({stalled.get_kind_display().lower()}) made no progress for over "
                       f"{max(settings.SYNC_ALERT_STALL_SECONDS, settings.SYNC_STALL_SECONDS) // 60 or 1} minute(s).",
            "facts": {"run": stalled.pk}}

    silent = _webhooks_silence(store=store, connection=connection)
    if silent:
        found[Kind.WEBHOOKS_SILENT] = silent

    share = _failed_share(runs)
    if share:
        found[Kind.FAILED_SHARE] = share
    return found


def _webhooks_silence(*, store: Store, connection: Connection) -> dict | None:
    """The sweep found changes no webhook had announced (its missed deliveries, sync/intake/hooks.py) while no webhook
    had arrived for WEBHOOK_SILENCE_SECONDS before it: BigCommerce stopped telling us (hooks deactivated, or
    deliveries failing)."""
    sweep = (SyncRun.objects.filter(store=store, kind=SyncRun.Kind.INCREMENTAL, finished_at__isnull=False,
                                    status__in=(SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL))
             .order_by("-finished_at", "-id").first())
    if sweep is None or not sweep.missed_deliveries:
        return None
    last_webhook = WebhookEvent.objects.filter(store=store).aggregate(at=Max("received_at"))["at"]
    heard = max(filter(None, [last_webhook, connection.connected_at]))
    if (sweep.started_at or sweep.created_at) - heard <= timedelta(seconds=settings.WEBHOOK_SILENCE_SECONDS):
        return None
    since = last_webhook.strftime("%Y-%m-%d %H:%M UTC") if last_webhook else "the connection was made"
    return {"summary": "The store's changes stopped arriving by webhook (none since "
                       f"{since}); the scheduled sweep found {sweep.missed_deliveries} change(s) instead.",
            "facts": {"run": sweep.pk, "last_webhook": last_webhook.isoformat() if last_webhook else None}}


def _failed_share(runs) -> dict | None:
    """The last finished run of at least SYNC_ALERT_MIN_RECORDS records failed more than SYNC_ALERT_FAILED_SHARE."""
    run = (runs.filter(finished_at__isnull=False, processed__gte=max(1, settings.SYNC_ALERT_MIN_RECORDS))
           .exclude(status=SyncRun.Status.CANCELLED).order_by("-finished_at", "-id").first())
    if run is None or run.failed / run.processed <= settings.SYNC_ALERT_FAILED_SHARE:
        return None
    return {"summary": f"{run.failed} of {run.processed} records in the last sync could not be sent to Ortto "
                       f"({100 * run.failed / run.processed:.0f} %).",
            "facts": {"run": run.pk, "failed": run.failed, "processed": run.processed}}


# --- Opening and clearing -----------------------------------------------------------------------------


def incidents_evaluate(*, store: Store, now=None) -> dict:
    """Open an incident for each condition that holds and has none open; clear the open ones whose
    condition no longer holds. Returns {"opened": [kinds], "cleared": [kinds]}."""
    now = now or timezone.now()
    conditions = incident_conditions(store=store, now=now)
    open_now = {i.kind: i for i in Incident.objects.filter(store=store, cleared_at__isnull=True)}
    # Uninstalled or disconnected: the trouble is moot, not fixed; no "good news" e-mail for it.
    watched = store.is_installed and live_connection_get(store=store) is not None
    opened, cleared = [], []
    for kind, found in conditions.items():
        if kind not in open_now and incident_open(store=store, kind=kind, summary=found["summary"],
                                                  facts=found["facts"], now=now):
            opened.append(kind)
    for kind, incident in open_now.items():
        if kind not in conditions:
            incident_clear(incident=incident, now=now, notify=watched)
            cleared.append(kind)
    return {"opened": opened, "cleared": cleared}


def incident_open(*, store: Store, kind: str, summary: str, facts: dict, now=None) -> Incident | None:
    """Open one incident and mail it; None when one of this kind is already open (another evaluation won)."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            incident = Incident.objects.create(
                store=store, kind=kind, opened_at=now, summary=summary,
                details={"facts": facts, "timeline": [{"at": now.isoformat(), "event": "opened", "text": summary}]})
            _mail(incident, opening=True, now=now)
    except IntegrityError:
        return None
    logger.info("store %s: incident opened: %s", store.store_hash, kind)
    return incident


def incident_clear(*, incident: Incident, now=None, notify: bool = True) -> bool:
    """Clear an open incident and send the recovery e-mail (notify=False: the store stopped syncing, so
    no e-mail); False when it was cleared meanwhile."""
    now = now or timezone.now()
    with transaction.atomic():
        if not Incident.objects.filter(pk=incident.pk, cleared_at__isnull=True).update(cleared_at=now):
            return False
        incident.cleared_at = now
        incident.details.setdefault("timeline", []).append(
            {"at": now.isoformat(), "event": "cleared" if notify else "closed: the store no longer syncs"})
        if notify:
            _mail(incident, opening=False, now=now)
        else:
            Incident.objects.filter(pk=incident.pk).update(details=incident.details)
    logger.info("store %s: incident cleared: %s", incident.store.store_hash, incident.kind)
    return True


def alerts_enabled(*, store: Store) -> bool:
    preference = AlertPreference.objects.filter(store=store).first()
    return preference.enabled if preference else True


def _mail(incident: Incident, *, opening: bool, now) -> None:
    store = incident.store
    to_owner = alerts_enabled(store=store)
    support = bool(settings.SUPPORT_ALERT_EMAIL)
    if to_owner or support:
        subject, body = alert_text(incident, opening=opening)
        owner_mail_send(store=store, subject=subject, body=body, to_owner=to_owner, support_copy=support)
        incident.emails_sent += 1
    incident.details.setdefault("timeline", []).append({
        "at": now.isoformat(), "event": "e-mail queued" if (to_owner or support) else "no e-mail (alerts off)",
        "to": ", ".join(filter(None, ["owner" if to_owner else "", "support" if support else ""])) or "nobody"})
    Incident.objects.filter(pk=incident.pk).update(emails_sent=incident.emails_sent, details=incident.details)


def alert_text(incident: Incident, *, opening: bool) -> tuple[str, str]:
    """The alert's subject and plain-text body: our own words and counts only, never a key or a token."""
    store = incident.store
    name = " ".join((store.name or store.store_hash).split())  # a header never carries a line break
    title = incident.get_kind_display()
    link = control_panel_url(store=store)
    if opening:
        subject = f"Ortto Bridge: {title} for {name}"
        body = (f"Hello,\n\n{incident.summary}\n\nWhat to do: {ADVICE[incident.kind]}\n\n"
                f"Noticed at {incident.opened_at:%Y-%m-%d %H:%M} UTC. You get one more e-mail when this is resolved, "
                f"not one per failed sync.\n\nOpen the app: {link}\n\n"
                "You receive this because alerts are on for your store. Untick \"E-mail me when syncing needs "
                "attention\" on the app page to stop them.\n")
    else:
        subject = f"Ortto Bridge: resolved — {title} for {name}"
        body = (f"Hello,\n\nGood news: this is resolved since {incident.cleared_at:%Y-%m-%d %H:%M} UTC.\n\n"
                f"It was: {incident.summary}\n(noticed at {incident.opened_at:%Y-%m-%d %H:%M} UTC)\n\n"
                f"Syncing with Ortto works again. Open the app: {link}\n")
    return subject, body


def alerts_set(*, store: Store, enabled: bool, by: str) -> None:
    """The owner's choice on the app page."""
    AlertPreference.objects.update_or_create(store=store, defaults={"enabled": enabled, "changed_by": by[:255],
                                                                    "changed_at": timezone.now()})


def alerts_panel(*, store: Store) -> dict:
    """The app page's alerts block: the open incidents in the owner's words, and the e-mail choice."""
    return {
        "enabled": alerts_enabled(store=store),
        "open": [
            {"kind": incident.kind, "title": incident.get_kind_display(), "summary": incident.summary,
             "advice": ADVICE[incident.kind], "since": incident.opened_at.strftime("%Y-%m-%d %H:%M UTC")}
            for incident in Incident.objects.filter(store=store, cleared_at__isnull=True).order_by("opened_at")
        ],
    }


def incidents_evaluate_all(*, now=None) -> dict:
    """The maintenance tick: every store that syncs or has an open incident."""
    now = now or timezone.now()
    stores = Store.objects.filter(
        Q(is_installed=True, connections__state__in=(Connection.State.ACTIVE, Connection.State.PAUSED,
                                                     Connection.State.NEEDS_RECONNECT))
        | Q(incidents__cleared_at__isnull=True, incidents__isnull=False)
    ).distinct()
    totals = {"opened": 0, "cleared": 0}
    for store in stores:
        result = incidents_evaluate(store=store, now=now)
        totals["opened"] += len(result["opened"])
        totals["cleared"] += len(result["cleared"])
    return totals
