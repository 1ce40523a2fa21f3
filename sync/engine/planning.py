"""Batch planning for people, pure: which merge calls a batch of people needs (docs/design.md §3).

People the ledger does not know go out in one merge that carries `bol::p` and its reason, with a strategy that
can never change a person who already exists in Ortto: Append only (1) when the connection uses 1 (a
non-empty `bol::p` is never overwritten), Ignore (3) otherwise. Only Overwrite (2) needs a second call, for
the people of that batch Ortto reports as `merged`, sent without `bol::p`. Known people whose record changed
get one merge with the connection's strategy and no `bol::p`; a permission change (a newer, different choice
in the store) is a strategy-2 merge carrying only the email and the permission. Unchanged people cost no call."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from sync.engine import mapping
from sync.engine.answers import person_exists
from sync.engine.context import BATCH_SIZE, chunks
from sync.engine.mapping import PersonInput
from sync.engine.rules import LedgerState, Permission, latest_signal, permission_decision
from sync.models import MergeStrategy, PersonLedger


@dataclass
class KnownPerson:
    """The ledger's memory of one person, as planning needs it."""

    state: LedgerState
    fingerprints: dict = field(default_factory=dict)
    created_in_ortto: bool = False


@dataclass
class PlanItem:
    person: PersonInput
    known: KnownPerson | None
    permission: Permission | None
    update_fields: bool = True

    @property
    def fields_changed(self) -> bool:
        if self.known is None:
            return True
        return self.update_fields and self.known.fingerprints.get(self.person.source) != self.person.fingerprint


@dataclass
class MergeCall:
    purpose: str  # create | overwrite | update | permission | aggregates | repair
    merge_strategy: int
    people: list[dict]
    emails: list[str]


def plan_item(person: PersonInput, known: KnownPerson | None, *, store_name: str, update_fields=True) -> PlanItem:
    decision = permission_decision(
        store_opt_in=person.signal.store_opt_in,
        signal_at=person.signal.signal_at,
        known=known.state if known else None,
        store_name=store_name,
        source=person.source,
    )
    return PlanItem(person=person, known=known, permission=decision, update_fields=update_fields)


def _without_permission(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if k not in mapping.PERMISSION_FIELDS}


def merge_calls(purpose: str, strategy: int, rows: list[tuple[str, dict]]) -> list[MergeCall]:
    return [
        MergeCall(purpose, strategy, [{"fields": f} for _, f in chunk], [e for e, _ in chunk])
        for chunk in chunks(rows)
    ]


def plan_people(items: list[PlanItem], *, merge_strategy: int) -> list[MergeCall]:
    """The first round of merge calls for a batch of people (see the module docstring)."""
    create_strategy = MergeStrategy.APPEND_ONLY if merge_strategy == MergeStrategy.APPEND_ONLY else MergeStrategy.IGNORE
    creates, updates_by_strategy, permissions = [], {}, []
    for item in items:
        person = item.person
        if item.known is None:
            permission = item.permission or permission_decision(store_opt_in=None, signal_at=None, known=None)
            fields = {**_without_permission(person.fields), **mapping.permission_fields(
                subscribed=permission.subscribed, reason=permission.reason)}
            creates.append((person.email, fields))
            continue
        if item.fields_changed:
            strategy = _update_strategy(merge_strategy, item.known)
            if strategy is not None:
                updates_by_strategy.setdefault(strategy, []).append((person.email, _without_permission(person.fields)))
        if item.permission is not None:
            permissions.append((person.email, {
                "str::email": person.email,
                **mapping.permission_fields(subscribed=item.permission.subscribed, reason=item.permission.reason),
            }))
    calls = merge_calls("create", create_strategy, creates)
    for strategy, rows in sorted(updates_by_strategy.items()):
        calls += merge_calls("update", strategy, rows)
    calls += merge_calls("permission", MergeStrategy.OVERWRITE, permissions)
    return calls


def _update_strategy(merge_strategy: int, known: KnownPerson) -> int | None:
    """Strategy for a changed, known person; None means no call.

    "Import new records only" (3) never updates a person who existed in Ortto before the bridge, and a
    strategy-3 call would change nothing for them. People the bridge itself created are new records
    from the store, so their later data (e.g. the customer record after the subscriber record) is
    appended without overwriting anything.
    """
    if merge_strategy == MergeStrategy.IGNORE:
        return MergeStrategy.APPEND_ONLY if known.created_in_ortto else None
    return merge_strategy


def plan_overwrite_existing(call: MergeCall, results: list[dict], fields_by_email: dict, *, merge_strategy: int):
    """Strategy 2 only: overwrite the people the creating merge found already in Ortto, without bol::p."""
    if merge_strategy != MergeStrategy.OVERWRITE or call.purpose != "create":
        return []
    rows = [
        (email, _without_permission(fields_by_email[email]))
        for email, result in zip(call.emails, results)
        if person_exists(result)
    ]
    return merge_calls("overwrite", MergeStrategy.OVERWRITE, rows)


def plan_repairs(call: MergeCall, results: list[dict], ledger_states: dict, *, store_name: str) -> list[MergeCall]:
    """A merge without bol::p that *created* someone (deleted in Ortto since the bridge last synced
    them) left that person subscribed by Ortto's default; set the permission a new person gets."""
    if call.purpose in ("create", "permission", "repair"):
        return []
    rows = []
    for email, result in zip(call.emails, results):
        if result.get("status") != "created":
            continue
        state = ledger_states.get(email)
        permission = permission_decision(
            store_opt_in=state.store_opt_in if state else None, signal_at=None, known=None, store_name=store_name
        )
        rows.append((email, {"str::email": email, **mapping.permission_fields(
            subscribed=permission.subscribed, reason=permission.reason)}))
    return merge_calls("repair", MergeStrategy.OVERWRITE, rows)


def rebatch(calls: list[MergeCall]) -> list[MergeCall]:
    """Follow-up calls of one round (e.g. the overwrites of the people each creating merge found in
    Ortto), regrouped by purpose and strategy into full batches: one call per 100 people of a kind,
    not one part-full call per creating merge."""
    grouped: dict[tuple[str, int], list[tuple[str, dict]]] = {}
    for call in calls:
        grouped.setdefault((call.purpose, call.merge_strategy), []).extend(
            (email, person["fields"]) for email, person in zip(call.emails, call.people))
    return [batch for (purpose, strategy), rows in grouped.items() for batch in merge_calls(purpose, strategy, rows)]


def fold_people(people: list[PersonInput]) -> list[PersonInput]:
    """One input per email: the last record's fields, the newest explicit signal of all of them."""
    by_email: dict[str, list[PersonInput]] = {}
    for person in people:
        if person.email:
            by_email.setdefault(person.email, []).append(person)
    folded = []
    for email, group in by_email.items():
        last = group[-1]
        if len(group) > 1:
            last = PersonInput(
                email=email, fields=last.fields, source=last.source,
                signal=latest_signal([p.signal for p in group]), bc_id=last.bc_id,
                bc_customer_id=next((p.bc_customer_id for p in reversed(group) if p.bc_customer_id), None),
            )
        folded.append(last)
    return folded


def combined_fingerprint(fingerprints: dict) -> str:
    return hashlib.sha256(json.dumps(fingerprints, sort_keys=True).encode()).hexdigest()


def carry_tail(calls: list[MergeCall]) -> set[str]:
    """The people of each creating or updating class whose last batch would go out part-full: they wait
    for the next unit's people instead, so a resource costs ceil(people / 100) calls per class, not one
    part-full call more per unit."""
    last: dict[tuple[str, int], MergeCall] = {}
    for call in calls:
        if call.purpose in ("create", "update"):
            last[(call.purpose, call.merge_strategy)] = call
    return {email for call in last.values() if len(call.emails) < BATCH_SIZE for email in call.emails}


def known_person(row: PersonLedger | None) -> KnownPerson | None:
    if row is None:
        return None
    return KnownPerson(
        state=LedgerState(row.store_opt_in, row.store_opt_in_at),
        fingerprints=dict(row.fingerprints or {}),
        created_in_ortto=row.created_in_ortto,
    )
