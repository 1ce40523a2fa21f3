"""Subscription rules R1–R4 (docs/design.md §3) and the signals they read, as pure functions.

No database, no HTTP: the engine feeds plain values in and acts on what comes out.

The one piece of memory the rules need is the ledger's last explicit newsletter choice for a person
and when the shopper made it (`LedgerState`). When the store never said anything about a person, the
engine records the time the bridge first synced them as `store_opt_in_at`, so only a choice made after
that moment counts as a change (R4: an old opt-in that surfaces later never re-subscribes anyone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

NEWSLETTER_CONSENT = "marketing_newsletter"


@dataclass(frozen=True)
class LedgerState:
    """What the ledger remembers of the store's newsletter choice for one person."""

    store_opt_in: bool | None
    store_opt_in_at: datetime | None


class Permission(NamedTuple):
    """An email permission to send: `bol::p` and the reason shown on the Ortto profile."""

    subscribed: bool
    reason: str


def reason_created(*, subscribed: bool, store_name: str, source: str = "") -> str:
    """Why a new person is (un)subscribed. `source` is the record they were first seen in: a shopper
    known only from an abandoned cart ("cart") never reached a checkout, so the reason does not say so."""
    where = store_name or "the store"
    if subscribed:
        return f"Opted in to the newsletter in {where}"
    if source == "cart":
        return f"Left a cart at {where}; did not opt in to the newsletter"
    if source == "stock":  # the back-in-stock form (sync/catalog/storefront.py)
        return f"Asked {where} to e-mail them once a product is back in stock; did not opt in to the newsletter"
    if source == "storefront":  # a signed-in shopper's product view
        return f"Signed in at {where}; did not opt in to the newsletter"
    return f"Did not opt in to the newsletter at checkout in {where}"


def reason_changed(*, subscribed: bool, store_name: str) -> str:
    where = store_name or "the store"
    if subscribed:
        return f"Subscribed to the newsletter in {where}"
    return f"Unsubscribed from the newsletter in {where}"


def _is_newer(signal_at: datetime | None, known_at: datetime | None) -> bool:
    if known_at is None:
        return True
    if signal_at is None:
        return False
    return signal_at > known_at


def permission_decision(
    *,
    store_opt_in: bool | None,
    signal_at: datetime | None,
    known: LedgerState | None,
    store_name: str = "",
    source: str = "",
) -> Permission | None:
    """The permission to send for one person, or None to leave Ortto's permission alone.

    known is None (the bridge never synced this person to this connection): the person is created
    subscribed only on an explicit opt-in (R1), otherwise unsubscribed with the reason (R2). The merge
    that carries it cannot change a person who already exists in Ortto (strategy 3 / 1).

    known exists: only a *different* explicit choice made *after* the one the ledger holds is sent.
    An unticked box (no signal) never downgrades (R3); an opt-in the ledger already holds, or an older
    one, never re-subscribes (R4); "not subscribed" after "store never said" is not an opt-out.
    """
    if known is None:
        subscribed = store_opt_in is True
        return Permission(subscribed, reason_created(subscribed=subscribed, store_name=store_name, source=source))
    if store_opt_in is None or store_opt_in == known.store_opt_in:
        return None
    if store_opt_in is False and known.store_opt_in is None:
        return None
    if not _is_newer(signal_at, known.store_opt_in_at):
        return None
    return Permission(store_opt_in, reason_changed(subscribed=store_opt_in, store_name=store_name))


def signal_to_record(
    *, store_opt_in: bool | None, signal_at: datetime | None, known: LedgerState | None
) -> LedgerState | None:
    """The ledger's new (choice, time) after seeing a signal, or None to keep what it holds.

    The ledger keeps the newest explicit choice it has seen, even one that was not sent (an unticked
    subscriber record after "store never said"), so that an older opt-in can never win over it later.
    """
    if store_opt_in is None:
        return None
    if known is None:
        return LedgerState(store_opt_in, signal_at)
    if store_opt_in == known.store_opt_in:
        return None
    if not _is_newer(signal_at, known.store_opt_in_at):
        return None
    return LedgerState(store_opt_in, signal_at)


# --- Signals: what each BigCommerce record says about the newsletter -------------------------------


class Signal(NamedTuple):
    store_opt_in: bool | None
    signal_at: datetime | None


NO_SIGNAL = Signal(None, None)


def subscriber_signal(*, consents: list | None, date_modified: datetime | None) -> Signal:
    """A subscriber record is an explicit choice: the newsletter consent is there or it is not."""
    return Signal(NEWSLETTER_CONSENT in (consents or []), date_modified)


def customer_signal() -> Signal:
    """Customers v3 carry no newsletter flag: a customer record says nothing about email permission."""
    return NO_SIGNAL


def order_signal(*, is_email_opt_in: bool | None, date_created: datetime | None) -> Signal:
    """A ticked checkout box is an opt-in; an unticked one is not an opt-out (R3)."""
    if is_email_opt_in is True:
        return Signal(True, date_created)
    return NO_SIGNAL


def latest_signal(signals: list[Signal]) -> Signal:
    """Of several signals for one person (e.g. a guest's orders in one page), the newest explicit one."""
    explicit = [s for s in signals if s.store_opt_in is not None]
    if not explicit:
        return NO_SIGNAL
    return max(explicit, key=lambda s: (s.signal_at is not None, s.signal_at or datetime.min))
