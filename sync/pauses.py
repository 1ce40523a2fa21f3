"""Connections paused because Ortto answered 403, and the probe that resumes them.

Ortto answers 403 when the key is right but the account may not be used now: the account expired or
was suspended, the user who authorised the key left it, or a plan limit was reached
(https://help.ortto.com/a-714-api-error-responses). That is not the key's fault, so the owner is not
told to reconnect: the account's connections pause, the app page and the admin say why, and the
scheduled sweep probes the account with one cheap read; when Ortto accepts again the connections
resume and an incremental run picks up where the cursors stand.
"""

from __future__ import annotations

import logging

from . import ortto
from .models import Connection, OrttoAccount

logger = logging.getLogger("sync.pauses")

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


def paused_accounts_probe(*, client_for=None) -> dict:
    """Probe each account with paused connections once; resume them when Ortto accepts again (the
    sweep that calls this then fans out their incremental runs like any active connection's).

    A 403 keeps them paused, a 401 turns them to "needs reconnect", anything else (Ortto unreachable)
    leaves them for the next sweep. Returns counts for the log."""
    client_for = client_for or (lambda account: ortto.OrttoClient(api_key=account.api_key, region=account.region))
    counts = {"probed": 0, "resumed": 0, "still_paused": 0}
    accounts = OrttoAccount.objects.filter(connections__state=Connection.State.PAUSED).distinct()
    for account in accounts:
        counts["probed"] += 1
        try:
            client_for(account).verify()
        except ortto.OrttoAccountBlocked:
            counts["still_paused"] += 1
            continue
        except ortto.OrttoAuthError as exc:
            Connection.objects.filter(account=account, state=Connection.State.PAUSED).update(
                state=Connection.State.NEEDS_RECONNECT,
                state_reason=f"Ortto rejected the API key (HTTP {exc.status}). Reconnect the Ortto account.")
            continue
        except ortto.OrttoError as exc:
            logger.info("Ortto account %s: probe failed (%s); trying again at the next sweep", account.pk, exc.status)
            continue
        resumed = Connection.objects.filter(account=account, state=Connection.State.PAUSED).update(
            state=Connection.State.ACTIVE, state_reason="")
        counts["resumed"] += resumed
        logger.info("Ortto account %s accepts again: %d connection(s) resumed", account.pk, resumed)
    return counts
