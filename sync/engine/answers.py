"""What Ortto's answers mean, per person and per activity (docs/ortto-contract.md records each wording).

A merge's answer is accepted when Ortto created the person or has them in any wording; an activity's when
Ortto ingested or queued it. Everything else is a refusal with its reason."""


OK_PERSON_STATUSES = {"created", "merged", "updated"}


# What a merge under Ignore (3) answers for a person who exists is not in Ortto's public record: "merged" as
# under the other strategies, or "ignored", "unchanged", or only the person id without a status. Each means
# "exists" (docs/ortto-contract.md); none is a refusal, and none is "created".
EXISTING_PERSON_STATUSES = {"merged", "updated", "ignored", "unchanged"}


OK_ACTIVITY_STATUSES = {"ingested", "queued", "created", "merged", "updated"}


def person_accepted(result: dict) -> bool:
    """Whether a merge's answer for one person says Ortto has them (created, or existing in any wording)."""
    if result.get("error"):
        return False
    status = result.get("status")
    return status in OK_PERSON_STATUSES or status in EXISTING_PERSON_STATUSES or (not status and bool(result.get("person_id")))


def person_exists(result: dict) -> bool:
    """An accepted answer for a person Ortto already had (not created by this merge)."""
    return person_accepted(result) and result.get("status") != "created"


def person_error(result: dict) -> str | None:
    if not person_accepted(result):
        status = result.get("status")
        return f"Ortto refused the person ({status or 'error'}): {result.get('error') or 'no detail'}"
    return None
