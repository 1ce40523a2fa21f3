"""Connections paused because Ortto answered 403, and the probe that resumes them.

Ortto answers 403 when the key is right but the account may not be used now: the account expired or
was suspended, the user who authorised the key left it, or a plan limit was reached
(https://help.ortto.com/a-714-api-error-responses). That is not the key's fault, so the owner is not
told to reconnect: the account's connections pause, the app page and the admin say why, and the
scheduled sweep probes the account with one cheap read (and so does an explicit sync: Sync now,
`manage.py sync_store`, the admin's runs, see paused_connection_probe); when Ortto accepts again the connections
resume and an incremental run picks up where the cursors stand.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_q.models import Schedule

from sync.models import Connection, OrttoAccount
from sync.ortto import client as ortto

logger = logging.getLogger("sync.engine.pauses")

SUMMARY_ORTTO_PAUSED = (
    "Ortto refused access to the account ({status}): it may have expired, been suspended or reached a plan "
    "limit. Syncing is paused and resumes by itself once Ortto accepts again; the API key is not at fault."
)
PAUSED_REASON = "Ortto refused access to the account (HTTP {status}{detail}). Syncing resumes when Ortto accepts again."


def account_pause(*, account_id: int, status: int | None, message: str = "") -> int:
    """Pause every active connection of the account; returns how many."""
    detail = ""
    if message and ":" in message:
        detail = ": " + message.split(":", 1)[1].strip()
    reason = PAUSED_REASON.format(status=status or 403, detail=detail)[:255]
    return Connection.objects.filter(account_id=account_id, state=Connection.State.ACTIVE).update(
        state=Connection.State.PAUSED, state_reason=reason)


def _default_client(account: OrttoAccount):
    return ortto.OrttoClient(api_key=account.api_key, region=account.region)


def account_probe(*, account: OrttoAccount, client_for=None) -> str:
    """Ask Ortto once (one cheap read) whether it accepts the paused account again, and act on the answer:
    "resumed" (its paused connections are active again), "paused" (still 403), "needs_reconnect" (401),
    or "unreachable" (anything else: left paused for the next probe)."""
    client_for = client_for or _default_client
    try:
        client_for(account).verify()
    except ortto.OrttoAccountBlocked:
        return "paused"
    except ortto.OrttoAuthError as exc:
        Connection.objects.filter(account=account, state=Connection.State.PAUSED).update(
            state=Connection.State.NEEDS_RECONNECT,
            state_reason=f"Ortto rejected the API key (HTTP {exc.status}). Reconnect the Ortto account.")
        return "needs_reconnect"
    except ortto.OrttoError as exc:
        logger.info("Ortto account %s: probe failed (%s); trying again at the next probe", account.pk, exc.status)
        return "unreachable"
    resumed = Connection.objects.filter(account=account, state=Connection.State.PAUSED).update(
        state=Connection.State.ACTIVE, state_reason="")
    logger.info("Ortto account %s accepts again: %d connection(s) resumed", account.pk, resumed)
    return "resumed"


def paused_accounts_probe(*, client_for=None) -> dict:
    """Probe each account with paused connections once; resume them when Ortto accepts again (the
    sweep that calls this then fans out their incremental runs like any active connection's).

    A 403 keeps them paused, a 401 turns them to "needs reconnect", anything else (Ortto unreachable)
    leaves them for the next sweep. Returns counts for the log."""
    counts = {"probed": 0, "resumed": 0, "still_paused": 0}
    accounts = OrttoAccount.objects.filter(connections__state=Connection.State.PAUSED).distinct()
    for account in accounts:
        counts["probed"] += 1
        paused = Connection.objects.filter(account=account, state=Connection.State.PAUSED).count()
        outcome = account_probe(account=account, client_for=client_for)
        if outcome == "paused":
            counts["still_paused"] += 1
        elif outcome == "resumed":
            counts["resumed"] += paused
    return counts


def next_probe_at() -> datetime:
    """When the scheduled sweep (sync.tasks.incremental_tick) next probes paused accounts."""
    now = timezone.now()
    scheduled = (Schedule.objects.filter(func="sync.tasks.incremental_tick", next_run__gt=now)
                 .order_by("next_run").values_list("next_run", flat=True).first())
    return scheduled or now + timedelta(minutes=settings.SYNC_INTERVAL_MINUTES)


def paused_connection_probe(*, connection: Connection, client_for=None) -> str:
    """An explicit sync (Sync now, `manage.py sync_store`, the admin's runs) of a paused connection asks
    Ortto first instead of waiting for the sweep. Returns "" when the connection may sync now (it was
    not paused, or Ortto accepts again and it is resumed), else why not and when the next automatic
    probe is."""
    if connection.state != Connection.State.PAUSED:
        return ""
    outcome = account_probe(account=connection.account, client_for=client_for)
    if outcome == "resumed":
        return ""
    if outcome == "needs_reconnect":
        return "Ortto no longer accepts this connection's API key. Reconnect first."
    when = next_probe_at()
    minutes = max(1, round((when - timezone.now()).total_seconds() / 60))
    asked = ("Ortto still refuses access to this account (it may have expired, been suspended or reached a plan "
             "limit)" if outcome == "paused" else "Ortto could not be reached to check the account")
    return (f"{asked}, so nothing was synced. The next automatic check is at about {when:%H:%M} UTC "
            f"(in {minutes} minute{'s' if minutes != 1 else ''}); syncing resumes by itself once Ortto accepts.")
