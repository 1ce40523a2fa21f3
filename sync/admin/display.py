"""How the admin shows runs and connections: status badges, durations, counter and total tables."""

from django.utils import timezone
from django.utils.html import format_html, format_html_join

from stores.admin_toolkit import badge, human_duration
from sync.models import Connection, SyncEvent, SyncRun

STATUS_COLOURS = {
    SyncRun.Status.QUEUED: "#7f8c8d",
    SyncRun.Status.RUNNING: "#2f6fb3",
    SyncRun.Status.SUCCEEDED: "#2e8b57",
    SyncRun.Status.PARTIAL: "#b9770e",
    SyncRun.Status.FAILED: "#c0392b",
    SyncRun.Status.CANCELLED: "#7f8c8d",
}
STALLED_COLOUR = "#8e44ad"
STATE_COLOURS = {
    Connection.State.ACTIVE: "#2e8b57",
    Connection.State.PAUSED: "#b9770e",
    Connection.State.NEEDS_RECONNECT: "#c0392b",
    Connection.State.DISCONNECTED: "#7f8c8d",
}
LEVEL_COLOURS = {
    SyncEvent.Level.INFO: "#2f6fb3",
    SyncEvent.Level.WARNING: "#b9770e",
    SyncEvent.Level.ERROR: "#c0392b",
}


# The counters' column heads in support staff's words; "summarized" orders went into their buyer's totals
# only (Ortto keeps at most 50 of one activity per person a day, docs/ortto-contract.md "Limits").
COUNTER_HEADINGS = {
    "fetched": ("Read", "Records read from BigCommerce"),
    "created": ("Created", "New in Ortto"),
    "updated": ("Updated", "Changed in Ortto"),
    "unchanged": ("Unchanged", "Nothing new to send"),
    "failed": ("Failed", "Refused by Ortto or not sent"),
    "summarized": ("Totals only", "Orders counted in the buyer's totals without a Placed order activity, or "
                                  "product activities not sent: Ortto keeps at most 50 of one activity per "
                                  "person a day"),
    "skipped": ("Skipped", "Nothing to send (e.g. an anonymous or vanished cart)"),
    "incomplete": ("Incomplete", "Checkouts never placed (status 0): not orders, not sent"),
    "not_linked": ("Not linked", "People left unlinked from their organization: Ortto links at most 3,000 "
                                 "people to one organization"),
}


def requested_by_label(requested_by: str) -> str:
    """Who or what asked for a run, from the run's `requested_by` note ("connect:ann", "admin:bo", ...)."""
    if not requested_by:
        return "—"
    source, _, who = requested_by.partition(":")
    if not who:
        if "@" in requested_by:  # a control-panel user's email: Sync now on the app page
            return f"{requested_by}, app page"
        return {"schedule": "Scheduled sweep", "webhook": "Store change (webhook)"}.get(requested_by, requested_by)
    if source == "connect":
        return f"{who}, on connecting"
    if source == "admin":
        return f"Support ({who})"
    if source == "bc-user":
        return f"Store user {who}, app page"
    return requested_by


def resolved_label(event: SyncEvent, *, short: bool = False) -> str:
    """Whether a failed record went through since; warnings and notes have nothing to resolve."""
    if event.level != SyncEvent.Level.ERROR:
        return "—"
    if event.resolved:
        return "Yes, re-sent" if short else "Yes: a later run re-sent it successfully"
    return "Not yet" if short else "Not yet: no later run has re-sent it successfully"


def run_status_badge(run: SyncRun, *, stalled: bool):
    """The run's status; `stalled` comes from SyncRun.objects.with_stalled() (the one definition)."""
    label = badge(run.get_status_display(), STATUS_COLOURS.get(run.status, "#7f8c8d"))
    if stalled:
        return format_html("{} {}", label, badge("stalled", STALLED_COLOUR))
    return label


def run_duration(run: SyncRun) -> str:
    if not run.started_at:
        return "—"
    end = run.finished_at or timezone.now()
    text = human_duration(max((end - run.started_at).total_seconds(), 0))
    return text if run.finished_at else f"{text} so far"


def counters_table(run):
    """A run's per-resource counters as a small HTML table, in a stable order."""
    rows = run.counter_rows
    if not rows:
        return "—"
    head = format_html_join("", '<th title="{}">{}</th>',
                            ((COUNTER_HEADINGS[key][1], COUNTER_HEADINGS[key][0]) for key in SyncRun.COUNTER_ORDER))
    body = format_html_join(
        "", "<tr><th>{}</th>{}</tr>",
        ((resource, format_html_join("", "<td>{}</td>", ((values[key],) for key in SyncRun.COUNTER_ORDER)))
         for resource, values in rows),
    )
    return format_html('<table class="sync-counters"><tr><th></th>{}</tr>{}</table>', head, body)


def totals_table(run):
    """What the progress bar counts towards, per resource, as a small HTML table."""
    totals = run.totals or {}
    if not totals:
        return "—"
    resources = [r for r in SyncRun.RESOURCE_ORDER if r in totals] + sorted(set(totals) - set(SyncRun.RESOURCE_ORDER))
    head = format_html_join("", "<th>{}</th>", ((resource,) for resource in resources))
    cells = format_html_join("", "<td>{}</td>", ((totals[resource],) for resource in resources))
    return format_html('<table class="sync-counters"><tr>{}</tr><tr>{}</tr></table>', head, cells)
