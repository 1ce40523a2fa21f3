"""How many synchronous Ortto merges to keep in flight, found while the run goes (issue 23).

Ortto warns that synchronous merges by a merge key "can end up hitting a concurrency limit" and publishes no
number (https://help.ortto.com/a-257-create-or-update-one-or-more-people-merge; docs/ortto-contract.md,
"Concurrency"). A fixed cap is too timid on one account and too bold on another, so the bridge probes:

- additive increase: each accepted merge of a full window raises the limit by 1 / limit, i.e. about one more
  merge in flight per round trip of the whole window (a window the run does not fill tests nothing);
- multiplicative decrease: a merge refused for concurrency halves it (never below `floor`). Only a refusal of a
  merge sent under the current limit counts: the merges that were in flight with it were sent under the old,
  higher limit, and their refusals are the same congestion, not a new one (as TCP halves once per window).

One limiter per Ortto account key and process (like the client's rate gates), shared by the threads of every run
of that account in the process. The client calls `acquire()` before each attempt of a limited merge and
`release(ticket, refused=...)` after its answer (sync/ortto/client.py, `merge_limiter`), so a refusal the client
retries still teaches the limiter.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.conf import settings

# Where the probe starts: the fixed value the bridge used before it probed (two merges in flight per process).
INITIAL_LIMIT = 2.0
FLOOR = 1.0
DEFAULT_CEILING = 16


@dataclass(frozen=True)
class Ticket:
    """One merge in flight: the limiter's decrease count and count of full windows when it was sent."""

    epoch: int
    fills: int = -1


class AimdLimiter:
    """Additive increase, multiplicative decrease of the merges allowed in flight at once."""

    def __init__(self, *, initial: float = INITIAL_LIMIT, floor: float = FLOOR, ceiling: float = DEFAULT_CEILING,
                 increase: float = 1.0, decrease: float = 0.5):
        if not 0 < decrease < 1 or floor < 1 or ceiling < floor:
            raise ValueError("AIMD needs 0 < decrease < 1 and 1 <= floor <= ceiling")
        self.floor, self.ceiling = float(floor), float(ceiling)
        self.increase, self.decrease = float(increase), float(decrease)
        self.limit = min(max(float(initial), self.floor), self.ceiling)
        self.in_flight = 0
        self.epoch = 0
        # What a run reports: refusals met, the limit's lowest and highest values, the most merges in flight.
        self.refusals = 0
        self.peak_in_flight = 0
        self._fills = 0  # acquires that filled the window
        self._cond = threading.Condition()

    def allowed(self) -> int:
        """Merges allowed in flight now: the limit's whole part."""
        return max(int(self.limit), 1)

    def acquire(self) -> Ticket:
        """Wait for room under the limit, then count one merge in flight."""
        with self._cond:
            while self.in_flight >= self.allowed():
                self._cond.wait()
            fills = self._fills
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            if self.in_flight >= self.allowed():
                self._fills += 1
            return Ticket(self.epoch, fills)

    def release(self, ticket: Ticket, *, refused: bool | None = False) -> None:
        """One merge answered: accepted (or failed for another reason) raises the limit a little; refused for
        concurrency lowers it once per congestion; None (no answer: a timeout, a dropped connection) leaves it."""
        with self._cond:
            # Only a full window tests the limit: a merge during which the window never filled (the run had no more
            # to send) says nothing about one more, so it does not raise it (as RFC 7661 for TCP).
            tested = self._fills > ticket.fills
            self.in_flight = max(self.in_flight - 1, 0)
            if refused is None:
                pass
            elif refused:
                self.refusals += 1
                if ticket.epoch == self.epoch:
                    self.limit = max(self.floor, self.limit * self.decrease)
                    self.epoch += 1
            elif tested:
                self.limit = min(self.ceiling, self.limit + self.increase / self.limit)
            self._cond.notify_all()

    def snapshot(self) -> dict:
        with self._cond:
            return {"limit": round(self.limit, 2), "in_flight": self.in_flight, "refusals": self.refusals,
                    "peak_in_flight": self.peak_in_flight, "decreases": self.epoch}


def ceiling() -> int:
    """The most merges one process keeps in flight to one account, whatever the probe finds
    (settings.ORTTO_MERGE_CONCURRENCY)."""
    return max(int(getattr(settings, "ORTTO_MERGE_CONCURRENCY", DEFAULT_CEILING) or 1), 1)


_lock = threading.Lock()
_limiters: dict[str, AimdLimiter] = {}


def merge_limiter(account_key: str) -> AimdLimiter:
    """The process's limiter for one Ortto account (keyed by its API key, never logged)."""
    with _lock:
        limiter = _limiters.get(account_key)
        if limiter is None or limiter.ceiling != ceiling():  # a new ceiling (settings) starts a new probe
            limiter = _limiters[account_key] = AimdLimiter(ceiling=ceiling())
        return limiter


def attach(client) -> None:
    """Send a client's synchronous merges through its account's limiter (a test double without a key: none)."""
    key = getattr(client, "_api_key", None)
    if isinstance(key, str) and key and getattr(client, "merge_limiter", None) is None:
        client.merge_limiter = merge_limiter(key)


def limiters() -> list[AimdLimiter]:
    with _lock:
        return list(_limiters.values())


def reset() -> None:
    """Forget every limiter (tests, and the benchmark between runs)."""
    with _lock:
        _limiters.clear()
