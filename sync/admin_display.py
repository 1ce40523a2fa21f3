"""How the admin shows runs and connections: status badges, durations, counter and total tables."""

from django.utils import timezone
from django.utils.html import format_html, format_html_join

from stores.admin_toolkit import badge, human_duration

from .models import Connection, SyncEvent, SyncRun

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
    head = format_html_join("", "<th>{}</th>", ((key,) for key in SyncRun.COUNTER_ORDER))
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
