"""Sending one Ortto batch so that a refused batch costs a few requests, not one per record.

Ortto bans the calling IP for 15 s after 15 bad requests in 15 s (docs/ortto-contract.md, "Limits"),
so a refused batch of 100 must not be retried record by record. `send_resolving` drops the rows a
400's `details` names (one entry per record, as Ortto's recorded answers have) and re-sends the rest
at once; without usable details it re-sends the batch in RESOLVE_REQUESTS parts, each accepted or
failing whole, and the records of a refused part fail for a later run's retry. Used by the people,
activity and organization merges alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sync.ortto.client import OrttoRequestError

# Requests one refused batch may spend finding its bad rows when Ortto's answer does not name them:
# a batch of 100 with 3 bad rows then costs 10 requests, at most 4 of them refused, and 67+ records
# go through; with the process-wide budget in sync/ortto/client.py this stays well under the IP ban.
RESOLVE_REQUESTS = 9
# Statuses of a refused row in a 400's `details` (recorded: "invalid", "suppressed").
REFUSED_STATUSES = {"invalid", "suppressed", "error"}


def send_resolving(send: Callable[[list], list], items: list, *, log: logging.Logger | logging.LoggerAdapter,
                   what: str, missing: dict, budget: list[int] | None = None) -> list[dict]:
    """send(items) -> exactly one result per item, in order; a refused batch is resolved as above.
    `missing` fills in for items an accepted answer has no row for; `budget` (shared by the recursion)
    counts the requests still allowed for re-sending a refused batch in parts."""
    budget = [RESOLVE_REQUESTS] if budget is None else budget

    def again(subset):
        return send_resolving(send, subset, log=log, what=what, missing=missing, budget=budget)

    try:
        results = list(send(items) or [])
    except OrttoRequestError as exc:
        error = exc.message or str(exc)

        details = exc.details

        def refused(index):
            detail = details[index] if details and index < len(details) else {}
            return {"status": (detail or {}).get("status") or "invalid",
                    "error": detail_error(details, index) or error}

        if len(items) == 1:
            return [{"status": "error", "error": detail_error(exc.details, 0) or error}]
        bad = bad_rows(exc.details, len(items))
        if bad is not None and len(bad) == len(items):
            return [refused(i) for i in range(len(items))]
        if bad:
            log.warning("%s of %d refused (%s); re-sending without the %d row(s) Ortto named",
                        what, len(items), exc.status, len(bad))
            good = [i for i in range(len(items)) if i not in bad]
            resent = dict(zip(good, again([items[i] for i in good])))
            return [refused(i) if i in bad else resent[i] for i in range(len(items))]
        if budget[0] < 2:
            return [{"status": "error", "error": f"refused with its batch ({error}); a later run retries it"}
                    for _ in items]
        parts = min(budget[0], len(items))
        budget[0] -= parts
        log.warning("%s of %d refused (%s) without per-item details; re-sending it in %d parts",
                    what, len(items), exc.status, parts)
        size, extra = divmod(len(items), parts)
        results, start = [], 0
        for part in range(parts):
            end = start + size + (1 if part < extra else 0)
            results += again(items[start:end])
            start = end
        return results
    return results[:len(items)] + [dict(missing)] * (len(items) - len(results))


def bad_rows(details: list, size: int) -> set[int] | None:
    """Indexes of the refused rows when the 400's `details` has one entry per item, else None."""
    if not details or len(details) != size or not all(isinstance(d, dict) for d in details):
        return None
    return {i for i, d in enumerate(details) if d.get("error") or d.get("status") in REFUSED_STATUSES}


def detail_error(details: list, index: int) -> str:
    if details and index < len(details) and isinstance(details[index], dict):
        return str(details[index].get("error") or "")
    return ""
