"""Server-side SVG charts for the admin: no JavaScript, every value escaped by format_html."""

from collections.abc import Callable, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import localtime

from sync.models import SyncRun

BAR_COLOURS = {
    SyncRun.Status.SUCCEEDED: "#3a9d5d",
    SyncRun.Status.PARTIAL: "#3a9d5d",
    SyncRun.Status.RUNNING: "#2f6fb3",
    SyncRun.Status.QUEUED: "#8a96a3",
    SyncRun.Status.CANCELLED: "#8a96a3",
    SyncRun.Status.FAILED: "#c0392b",
}
FAILURE_RED = "#c0392b"


def _n(value: float) -> str:
    # format_html escapes its arguments to strings, so numbers are formatted before they go in.
    return f"{value:.1f}"


def runs_chart_svg(
    runs: Sequence[SyncRun], *, run_url: Callable[[SyncRun], str] | None = None, width: int = 1100, height: int = 236
) -> SafeString:
    """Runs over time, oldest on the left, in two panels that share the time axis and nothing else.

    The upper panel's bars are the people each run synced, on a scale up to the busiest run; the lower
    panel's bars are the records each run failed, on a scale of their own, so 3 failures never stand as
    tall as 140 people. Each panel says what it counts and its top value. A failed run gets a pale red
    column across both panels and a red mark under the time axis.
    """
    if not runs:
        return format_html('<p class="help">{}</p>', "No sync runs yet.")
    left, right = 44, 8
    people_top, people_h = 20, 104
    failed_top, failed_h = people_top + people_h + 26, 44
    axis_y = failed_top + failed_h
    plot_w = width - left - right
    people_peak = max(max(run.people_synced for run in runs), 1)
    failed_peak = max(max(run.failed for run in runs), 1)
    slot = plot_w / len(runs)
    bar_w = max(slot * 0.7, 1.0)
    parts = []
    for index, run in enumerate(runs):
        x = left + index * slot + (slot - bar_w) / 2
        failed_run = run.status == SyncRun.Status.FAILED
        tip = format_html(
            "#{} {} · {} · {} · {} people synced, {} failed records",
            run.pk, run.get_kind_display(), run.get_status_display(),
            localtime(run.created_at).strftime("%Y-%m-%d %H:%M"), run.people_synced, run.failed,
        )
        shapes = []
        if failed_run:
            for top, panel_h in ((people_top, people_h), (failed_top, failed_h)):
                shapes.append(format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" fill-opacity="0.15"/>',
                    _n(x), top, _n(bar_w), panel_h, FAILURE_RED,
                ))
            shapes.append(format_html(
                '<rect class="failure-mark" x="{}" y="{}" width="{}" height="4" fill="{}"/>',
                _n(x), axis_y + 2, _n(bar_w), FAILURE_RED,
            ))
        if run.people_synced:
            bar_h = max(people_h * run.people_synced / people_peak, 1.5)
            shapes.append(format_html(
                '<rect class="bar-people" data-value="{}" x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
                run.people_synced, _n(x), _n(people_top + people_h - bar_h), _n(bar_w), _n(bar_h),
                BAR_COLOURS.get(run.status, "#8a96a3"),
            ))
        if run.failed:
            bar_h = max(failed_h * run.failed / failed_peak, 1.5)
            shapes.append(format_html(
                '<rect class="bar-failed failure-mark" data-value="{}" x="{}" y="{}" width="{}" height="{}" '
                'fill="{}"/>',
                run.failed, _n(x), _n(failed_top + failed_h - bar_h), _n(bar_w), _n(bar_h), FAILURE_RED,
            ))
        body = format_html("<title>{}</title>{}", tip, mark_safe("".join(shapes)))
        href = run_url(run) if run_url else ""
        if href:
            parts.append(format_html('<a href="{}">{}</a>', href, body))
        else:
            parts.append(format_html("<g>{}</g>", body))

    first, last = localtime(runs[0].created_at), localtime(runs[-1].created_at)
    panels = format_html_join("", (
        '<text class="panel-title" x="{l}" y="{title_y}" font-size="11" font-weight="600">{title}</text>'
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#999"/>'
        '<text class="axis-peak" x="{tl}" y="{peak_y}" text-anchor="end" font-size="10">{peak}</text>'
        '<text x="{tl}" y="{b}" text-anchor="end" font-size="10">0</text>'
    ), [
        {"l": left, "r": left + plot_w, "tl": left - 4, "title_y": top - 6, "peak_y": top + 8, "b": top + panel_h,
         "title": title, "peak": peak}
        for top, panel_h, title, peak in (
            (people_top, people_h, "People synced per run", people_peak),
            (failed_top, failed_h, "Failed records per run (own scale)", failed_peak),
        )
    ])
    dates = format_html(
        '<text x="{l}" y="{dy}" font-size="10">{first}</text>'
        '<text x="{r}" y="{dy}" text-anchor="end" font-size="10">{last}</text>',
        l=left, r=left + plot_w, dy=height - 4,
        first=first.strftime("%Y-%m-%d %H:%M"), last=last.strftime("%Y-%m-%d %H:%M"),
    )
    label = format_html("Last {} runs: people synced per run (up to {}) and, on a scale of their own, failed "
                        "records per run (up to {}); failed runs in red", len(runs), people_peak, failed_peak)
    return format_html(
        '<svg class="sync-runs-chart" xmlns="http://www.w3.org/2000/svg" role="img" width="{w}" height="{h}" '
        'viewBox="0 0 {w} {h}" aria-label="{label}"><title>{label}</title>{panels}{dates}{bars}</svg>',
        w=width, h=height, label=label, panels=panels, dates=dates, bars=mark_safe("".join(parts)),
    )


def legend_html() -> SafeString:
    items = [("people", "people synced"), ("running", "running"), ("failed", "failed run / failed records")]
    return format_html_join(
        " ", '<span class="chart-key"><span class="chart-swatch chart-swatch-{}"></span> {}</span>', items,
    )
