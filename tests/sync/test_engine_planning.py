"""Batch planning against a fake Ortto that honours the three merge strategies and bol::p's default.

The Ortto-side outcome of R1–R4 is checked here over every combination: person absent / subscribed /
unsubscribed in Ortto, each merge strategy, the store's signal, and what the ledger remembers.
"""

import itertools
import logging
from datetime import datetime, timedelta, timezone

import pytest

from stores.models import Store
from sync.engine import context, mapping, people, planning
from sync.engine.planning import KnownPerson, PlanItem, plan_people
from sync.engine.rules import LedgerState, Permission, Signal
from sync.models import Connection, PersonLedger, SyncRun
from tests.sync.doubles import FakeOrtto

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def make_ctx(ortto, strategy):
    store = Store(store_hash="abc", name="Acme")
    connection = Connection(store=store, merge_strategy=strategy)
    return context.SyncContext(run=SyncRun(), connection=connection, store=store, ortto=ortto, bigcommerce=None,
                              log=logging.getLogger("test"), field_ids=mapping.DEFAULT_FIELD_IDS,
                              activity_id=mapping.PLACED_ORDER_ACTIVITY_ID)


def person(email="p@x.io", signal=Signal(None, None), first="Pat", source="subscriber"):
    return mapping.PersonInput(email=email, fields={"str::email": email, "str::first": first}, source=source,
                               signal=signal)


ORTTO_STATES = {
    "absent": None,
    "subscribed": {"bol::p": True, "str::first": "Old"},
    "unsubscribed": {"bol::p": False, "str::first": "Old"},
}
SIGNALS = {"opted_in": Signal(True, T0), "not_opted_in": Signal(False, T0), "no_signal": Signal(None, None)}


@pytest.mark.parametrize("strategy,ortto_state,signal_name",
                         list(itertools.product((1, 2, 3), ORTTO_STATES, SIGNALS)))
def test_person_unknown_to_the_ledger(strategy, ortto_state, signal_name):
    existing = ORTTO_STATES[ortto_state]
    ortto = FakeOrtto({"p@x.io": {"str::email": "p@x.io", **existing}} if existing else {})
    work = context.PageWork()
    people.people_sync(make_ctx(ortto, strategy), "subscribers", [person(signal=SIGNALS[signal_name])], work, ledger={})
    record = ortto.people["p@x.io"]
    if existing is None:
        # R1 / R2: created with an explicit permission and its reason.
        assert record["bol::p"] is (signal_name == "opted_in")
        assert record.get("str::s-ctx" if record["bol::p"] else "str::u-ctx")
        assert len(ortto.calls) == 1 and work.counters.created == 1
    else:
        # Whoever already exists in Ortto keeps their permission, whatever the strategy.
        assert record["bol::p"] is existing["bol::p"]
        assert record["str::first"] == ("Pat" if strategy == 2 else "Old")
        assert len(ortto.calls) == (2 if strategy == 2 else 1)
        if strategy == 2:
            assert ortto.calls[1][0] == 2 and "bol::p" not in ortto.calls[1][1][0]["fields"]
    assert ortto.calls[0][0] == (1 if strategy == 1 else 3)
    assert "bol::p" in ortto.calls[0][1][0]["fields"]
    row = work.ledger_rows["p@x.io"]
    assert row.created_in_ortto is (existing is None)
    assert row.store_opt_in is SIGNALS[signal_name].store_opt_in


KNOWN = {
    "known_opted_in": LedgerState(True, T0),
    "known_not_opted_in": LedgerState(False, T0),
    "known_never_said": LedgerState(None, T0),
}
AGES = {"newer": T0 + timedelta(days=1), "older": T0 - timedelta(days=1)}


@pytest.mark.parametrize("strategy,ortto_state,known_name,choice,age", list(itertools.product(
    (1, 2, 3), ("subscribed", "unsubscribed"), KNOWN, (True, False, None), AGES)))
def test_person_known_to_the_ledger(strategy, ortto_state, known_name, choice, age):
    existing = ORTTO_STATES[ortto_state]
    ortto = FakeOrtto({"p@x.io": {"str::email": "p@x.io", **existing}})
    known = KNOWN[known_name]
    fp = person().fingerprint
    ledger = {"p@x.io": PersonLedger(email="p@x.io", store_opt_in=known.store_opt_in,
                                     store_opt_in_at=known.store_opt_in_at, fingerprints={"subscriber": fp},
                                     synced_at=T0)}
    signal = Signal(choice, AGES[age] if choice is not None else None)
    work = context.PageWork()
    people.people_sync(make_ctx(ortto, strategy), "subscribers", [person(signal=signal)], work, ledger=ledger)
    changed = choice is not None and choice != known.store_opt_in and age == "newer" and not (
        choice is False and known.store_opt_in is None)
    record = ortto.people["p@x.io"]
    if changed:
        assert record["bol::p"] is choice
        assert ortto.calls == [(2, [{"fields": {"str::email": "p@x.io", **mapping.permission_fields(
            subscribed=choice, reason=record.get("str::s-ctx") or record.get("str::u-ctx"))}}])]
    else:
        assert record["bol::p"] is existing["bol::p"]  # R3 / R4
        assert ortto.calls == []  # unchanged data, no permission change: no call at all
        assert work.counters.unchanged == 1


def test_known_person_with_changed_fields_is_merged_without_permission():
    for strategy in (1, 2):
        ortto = FakeOrtto({"p@x.io": {"str::email": "p@x.io", "bol::p": False, "str::first": "Old"}})
        ledger = {"p@x.io": PersonLedger(email="p@x.io", store_opt_in=None, store_opt_in_at=T0,
                                         fingerprints={"subscriber": "stale"}, synced_at=T0)}
        work = context.PageWork()
        people.people_sync(make_ctx(ortto, strategy), "subscribers", [person(first="New")], work, ledger=ledger)
        assert [c[0] for c in ortto.calls] == [strategy]
        assert "bol::p" not in ortto.calls[0][1][0]["fields"]
        assert ortto.people["p@x.io"]["bol::p"] is False
        assert work.ledger_rows["p@x.io"].fingerprints["subscriber"] == person(first="New").fingerprint


def test_ignore_strategy_appends_only_to_people_the_bridge_created():
    ortto = FakeOrtto({"a@x.io": {"str::email": "a@x.io", "bol::p": False},
                       "b@x.io": {"str::email": "b@x.io", "bol::p": True, "str::first": "Bee"}})
    ledger = {
        "a@x.io": PersonLedger(email="a@x.io", store_opt_in_at=T0, fingerprints={}, created_in_ortto=True, synced_at=T0),
        "b@x.io": PersonLedger(email="b@x.io", store_opt_in_at=T0, fingerprints={}, created_in_ortto=False, synced_at=T0),
    }
    work = context.PageWork()
    people.people_sync(make_ctx(ortto, 3), "customers",
                       [person("a@x.io", source="customer"), person("b@x.io", source="customer", first="Other")],
                       work, ledger=ledger)
    assert ortto.calls == [(1, [{"fields": {"str::email": "a@x.io", "str::first": "Pat"}}])]
    assert ortto.people["b@x.io"]["str::first"] == "Bee"


def test_person_deleted_in_ortto_is_recreated_with_the_new_person_permission():
    ortto = FakeOrtto({})
    ledger = {"p@x.io": PersonLedger(email="p@x.io", store_opt_in=None, store_opt_in_at=T0,
                                     fingerprints={"subscriber": "stale"}, synced_at=T0)}
    people.people_sync(make_ctx(ortto, 2), "subscribers", [person()], context.PageWork(), ledger=ledger)
    assert [c[0] for c in ortto.calls] == [2, 2]
    assert ortto.people["p@x.io"]["bol::p"] is False  # not Ortto's subscribed default


def test_batches_hold_at_most_100_people():
    people = [person(f"p{i}@x.io") for i in range(250)]
    items = [PlanItem(p, None, Permission(False, "r")) for p in people]
    calls = plan_people(items, merge_strategy=1)
    assert [len(c.people) for c in calls] == [100, 100, 50]


def test_unchanged_people_cost_no_call():
    p = person()
    known = KnownPerson(LedgerState(True, T0), {"subscriber": p.fingerprint})
    assert plan_people([PlanItem(p, known, None)], merge_strategy=2) == []


def test_duplicate_emails_in_a_page_fold_into_one_person_with_the_newest_signal():
    ortto = FakeOrtto({})
    work = context.PageWork()
    people.people_sync(make_ctx(ortto, 1), "orders", [
        person(signal=Signal(None, None), first="A", source="order"),
        person(signal=Signal(True, T0), first="B", source="order"),
    ], work, ledger={})
    assert len(ortto.calls) == 1 and len(ortto.calls[0][1]) == 1
    assert ortto.people["p@x.io"]["bol::p"] is True


def test_follow_up_calls_of_a_round_are_regrouped_into_full_batches():
    def call(purpose, strategy, emails):
        return planning.MergeCall(purpose, strategy, [{"fields": {"str::email": e}} for e in emails], list(emails))

    follow_ups = [call("overwrite", 2, [f"a{i}@x.io" for i in range(30)]),
                  call("repair", 2, ["r@x.io"]),
                  call("overwrite", 2, [f"b{i}@x.io" for i in range(40)]),
                  call("overwrite", 2, [f"c{i}@x.io" for i in range(50)])]
    batches = planning.rebatch(follow_ups)
    assert [(b.purpose, len(b.emails)) for b in batches] == [("overwrite", 100), ("overwrite", 20), ("repair", 1)]
    assert batches[0].emails[:31] == [f"a{i}@x.io" for i in range(30)] + ["b0@x.io"]
    assert all(p["fields"]["str::email"] == e for b in batches for p, e in zip(b.people, b.emails))
