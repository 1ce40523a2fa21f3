"""R1–R4 as pure functions, over every combination of store signal, ledger memory and signal age."""

import itertools
from datetime import datetime, timedelta, timezone

import pytest

from sync.engine.rules import (
    LedgerState,
    Permission,
    Signal,
    customer_signal,
    latest_signal,
    order_signal,
    permission_decision,
    signal_to_record,
    subscriber_signal,
)

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
OLDER, SAME, NEWER = T0 - timedelta(days=1), T0, T0 + timedelta(days=1)
CHOICES = (True, False, None)
KNOWN_STATES = [None] + [LedgerState(choice, at) for choice in CHOICES for at in (T0, None)]
SIGNAL_TIMES = (OLDER, SAME, NEWER, None)


def test_opted_in_shopper_is_created_subscribed_with_reason():
    decision = permission_decision(store_opt_in=True, signal_at=T0, known=None, store_name="Acme")
    assert decision == Permission(True, "Opted in to the newsletter in Acme")


@pytest.mark.parametrize("choice", [False, None])
def test_unticked_shopper_is_created_unsubscribed_with_reason(choice):
    decision = permission_decision(store_opt_in=choice, signal_at=T0, known=None, store_name="Acme")
    assert decision == Permission(False, "Did not opt in to the newsletter at checkout in Acme")


def test_a_shopper_known_only_from_a_cart_is_created_unsubscribed_with_a_true_reason():
    decision = permission_decision(store_opt_in=None, signal_at=None, known=None, store_name="Acme", source="cart")
    assert decision == Permission(False, "Left a cart at Acme; did not opt in to the newsletter")
    # Only the words differ: the same R2 decision, and a known person is left alone as before (R3).
    assert permission_decision(store_opt_in=None, signal_at=None, known=None, store_name="Acme").subscribed is False
    assert permission_decision(store_opt_in=None, signal_at=T0, known=LedgerState(None, T0), source="cart") is None


@pytest.mark.parametrize("source", ["subscriber", "customer", "order", ""])
def test_other_first_records_keep_the_checkout_reason(source):
    decision = permission_decision(store_opt_in=False, signal_at=T0, known=None, store_name="Acme", source=source)
    assert decision == Permission(False, "Did not opt in to the newsletter at checkout in Acme")


@pytest.mark.parametrize("known_choice", CHOICES)
def test_no_signal_never_touches_a_known_person(known_choice):
    for at in SIGNAL_TIMES:
        assert permission_decision(store_opt_in=None, signal_at=at, known=LedgerState(known_choice, T0)) is None


def test_unticked_box_never_downgrades_a_subscribed_person_r3():
    known = LedgerState(True, T0)
    assert permission_decision(store_opt_in=None, signal_at=NEWER, known=known) is None
    assert permission_decision(store_opt_in=False, signal_at=OLDER, known=known) is None


def test_old_opt_in_resent_never_resubscribes_r4():
    assert permission_decision(store_opt_in=True, signal_at=NEWER, known=LedgerState(True, T0)) is None
    assert permission_decision(store_opt_in=True, signal_at=OLDER, known=LedgerState(False, T0)) is None
    assert permission_decision(store_opt_in=True, signal_at=SAME, known=LedgerState(False, T0)) is None


def test_opt_out_after_last_sync_unsubscribes():
    decision = permission_decision(store_opt_in=False, signal_at=NEWER, known=LedgerState(True, T0), store_name="Acme")
    assert decision == Permission(False, "Unsubscribed from the newsletter in Acme")


def test_new_opt_in_after_last_sync_subscribes():
    assert permission_decision(store_opt_in=True, signal_at=NEWER, known=LedgerState(False, T0)).subscribed is True
    # The store never said before; the ledger's time is when the bridge first synced the person.
    assert permission_decision(store_opt_in=True, signal_at=NEWER, known=LedgerState(None, T0)).subscribed is True
    assert permission_decision(store_opt_in=True, signal_at=OLDER, known=LedgerState(None, T0)) is None


def test_not_subscribed_after_store_never_said_is_not_an_opt_out():
    assert permission_decision(store_opt_in=False, signal_at=NEWER, known=LedgerState(None, T0)) is None


@pytest.mark.parametrize(
    "signal,signal_at,known", list(itertools.product(CHOICES, SIGNAL_TIMES, KNOWN_STATES))
)
def test_every_combination_obeys_r1_to_r4(signal, signal_at, known):
    decision = permission_decision(store_opt_in=signal, signal_at=signal_at, known=known, store_name="S")
    if known is None:
        # R1 / R2: a new person always gets an explicit permission.
        assert decision is not None and decision.subscribed is (signal is True)
        return
    newer = known.store_opt_in_at is None or (signal_at is not None and signal_at > known.store_opt_in_at)
    if decision is None:
        # Nothing is sent unless the store holds a newer, different, explicit choice.
        assert signal is None or signal == known.store_opt_in or not newer or (
            signal is False and known.store_opt_in is None)
        return
    assert decision.subscribed is signal
    assert signal != known.store_opt_in and newer
    if decision.subscribed is False:
        assert known.store_opt_in is True  # R3: only an explicit opt-out after an opt-in downgrades
    assert decision.reason


@pytest.mark.parametrize("signal,signal_at,known", list(itertools.product(CHOICES, SIGNAL_TIMES, KNOWN_STATES)))
def test_the_ledger_keeps_the_newest_explicit_choice(signal, signal_at, known):
    recorded = signal_to_record(store_opt_in=signal, signal_at=signal_at, known=known)
    if signal is None:
        assert recorded is None
    elif known is None:
        assert recorded == LedgerState(signal, signal_at)
    elif recorded is not None:
        assert recorded.store_opt_in == signal != known.store_opt_in


def test_signals_from_each_bigcommerce_record():
    assert subscriber_signal(consents=["marketing_newsletter"], date_modified=T0) == Signal(True, T0)
    assert subscriber_signal(consents=["abandoned_cart"], date_modified=T0) == Signal(False, T0)
    assert subscriber_signal(consents=[], date_modified=T0) == Signal(False, T0)
    assert customer_signal() == Signal(None, None)
    assert order_signal(is_email_opt_in=True, date_created=T0) == Signal(True, T0)
    assert order_signal(is_email_opt_in=False, date_created=T0) == Signal(None, None)


def test_latest_explicit_signal_wins():
    assert latest_signal([Signal(True, OLDER), Signal(None, None), Signal(False, NEWER)]) == Signal(False, NEWER)
    assert latest_signal([Signal(None, None)]) == Signal(None, None)
