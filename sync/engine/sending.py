"""Sending merges and activities to Ortto, and reading Ortto's answer for each person or activity.

A refused batch costs a few requests, not one per item (sync/engine/batches.py); a person refused only for
their phone is sent again without it. merge_rounds sends planned merges round by round: each round's calls go
out concurrently, and the follow-ups their answers call for (overwrites, repairs) form the next round."""

from __future__ import annotations

from sync.engine import concurrency
from sync.engine.answers import person_accepted
from sync.engine.batches import send_resolving
from sync.engine.context import SyncContext, chunks, ortto_merge_concurrency, send_all
from sync.engine.planning import MergeCall, rebatch

PHONE_FIELD = "phn::phone"


def merge_people_safely(ctx: SyncContext, call: MergeCall) -> list[dict]:
    """Send one merge; one result per person, in order. A refused batch costs a few requests, not one
    per person (sync/engine/batches.py). A person refused only for their phone is sent again without it:
    a phone never costs a person."""
    results = _merge_resolving(ctx, call)
    return _resend_without_phone(ctx, call, results)


MISSING_PERSON = {"status": "error", "error": "missing from Ortto's answer"}


# Ortto may answer an accepted batch of activities without per-item rows; absence is not an error there.
MISSING_ACTIVITY = {"status": "ingested"}


def _merge_resolving(ctx: SyncContext, call: MergeCall) -> list[dict]:
    concurrency.attach(ctx.ortto)

    def send(people):
        return ctx.ortto.merge_people(people, merge_strategy=call.merge_strategy)

    return send_resolving(send, call.people, log=ctx.log, what="merge", missing=MISSING_PERSON)


def _resend_without_phone(ctx: SyncContext, call: MergeCall, results: list[dict]) -> list[dict]:
    refused = [i for i, (person, result) in enumerate(zip(call.people, results))
               if PHONE_FIELD in person.get("fields", {}) and not person_accepted(result)
               and PHONE_FIELD in str(result.get("error") or "")]
    if not refused:
        return results
    ctx.log.info("%d person(s) refused for their phone; sending them without it", len(refused))
    retry = MergeCall(call.purpose, call.merge_strategy,
                      [{**call.people[i], "fields": {k: v for k, v in call.people[i]["fields"].items()
                                                     if k != PHONE_FIELD}} for i in refused],
                      [call.emails[i] for i in refused])
    results = list(results)
    for index, result in zip(refused, _merge_resolving(ctx, retry)):
        if person_accepted(result):
            result = {**result, "warning": f"phone refused by Ortto, sent without it: {results[index].get('error')}"}
        results[index] = result
    return results


def create_activities_safely(ctx: SyncContext, activities: list[dict]) -> list[dict]:
    """Send one batch of activities; a refused batch is resolved like a merge (merge_people_safely)."""
    return send_resolving(ctx.ortto.create_activities, activities, log=ctx.log, what="activities",
                          missing=MISSING_ACTIVITY)


def merge_rounds(ctx: SyncContext, calls: list[MergeCall], on_answers) -> None:
    """Send planned merges round by round. A round's calls go out concurrently (up to
    ortto_merge_concurrency() in flight); on_answers(call, results) records one call's answers and returns
    the follow-up calls they need (an overwrite, a repair), which form the next round, rebatched by 100."""
    pending = calls
    while pending:
        round_calls, pending = pending, []
        answers = send_all(merge_people_safely, ctx, round_calls, lambda c: c.emails, lambda c: c.purpose,
                           size=ortto_merge_concurrency())
        for call, results in zip(round_calls, answers):
            pending += on_answers(call, results)
        pending = rebatch(pending)


def activities_send(ctx: SyncContext, activities: list[dict]) -> list[dict]:
    """Send activities in batches of 100, concurrently; one result per activity, in order."""
    batches = send_all(create_activities_safely, ctx, list(chunks(activities)))
    return [result for batch in batches for result in batch]
