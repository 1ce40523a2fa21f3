"""Server-side SVG charts for the admin: no JavaScript, every value escaped by format_html."""

from collections.abc import Callable, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import localtime

from .models import SyncRun

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
    runs: Sequence[SyncRun], *, run_url: Callable[[SyncRun], str] | None = None, width: int = 720, height: int = 170
) -> SafeString:
    """Runs over time, oldest on the left: one bar per run, its height the people synced.

    A failed run gets a pale red column and a red marker under the axis; a run that finished with
    record errors gets a red cap whose height is its share of failed records.
    """
    if not runs:
        return format_html('<p class="help">{}</p>', "No sync runs yet.")
    top, bottom, left, right = 18, 30, 44, 8
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(max(run.people_synced for run in runs), 1)
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
            shapes.append(format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" fill-opacity="0.15"/>',
                _n(x), top, _n(bar_w), plot_h, FAILURE_RED,
            ))
            shapes.append(format_html(
                '<rect class="failure-mark" x="{}" y="{}" width="{}" height="4" fill="{}"/>',
                _n(x), top + plot_h + 2, _n(bar_w), FAILURE_RED,
            ))
        bar_h = plot_h * run.people_synced / peak
        if run.people_synced:
            bar_h = max(bar_h, 1.5)
            shapes.append(format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
                _n(x), _n(top + plot_h - bar_h), _n(bar_w), _n(bar_h), BAR_COLOURS.get(run.status, "#8a96a3"),
            ))
        if run.failed and not failed_run:
            share = run.failed / max(run.processed, run.failed, 1)
            cap_h = max(plot_h * share, 3.0)
            shapes.append(format_html(
                '<rect class="failure-mark" x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
                _n(x), _n(top + plot_h - bar_h - cap_h), _n(bar_w), _n(cap_h), FAILURE_RED,
            ))
        body = format_html("<title>{}</title>{}", tip, mark_safe("".join(shapes)))
        href = run_url(run) if run_url else ""
        if href:
            parts.append(format_html('<a href="{}">{}</a>', href, body))
        else:
            parts.append(format_html("<g>{}</g>", body))

    first, last = localtime(runs[0].created_at), localtime(runs[-1].created_at)
    axes = format_html(
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#999"/>'
        '<text x="{tl}" y="{ty}" text-anchor="end" font-size="10">{peak}</text>'
        '<text x="{tl}" y="{b}" text-anchor="end" font-size="10">0</text>'
        '<text x="{l}" y="{dy}" font-size="10">{first}</text>'
        '<text x="{r}" y="{dy}" text-anchor="end" font-size="10">{last}</text>',
        l=left, r=left + plot_w, b=top + plot_h, tl=left - 4, ty=top + 8, dy=height - 6,
        peak=peak, first=first.strftime("%Y-%m-%d %H:%M"), last=last.strftime("%Y-%m-%d %H:%M"),
    )
    label = format_html("People synced per run, last {} runs; failures in red", len(runs))
    return format_html(
        '<svg class="sync-runs-chart" xmlns="http://www.w3.org/2000/svg" role="img" width="{w}" height="{h}" '
        'viewBox="0 0 {w} {h}" aria-label="{label}"><title>{label}</title>{axes}{bars}</svg>',
        w=width, h=height, label=label, axes=axes, bars=mark_safe("".join(parts)),
    )


def legend_html() -> SafeString:
    items = [("#3a9d5d", "people synced"), ("#2f6fb3", "running"), (FAILURE_RED, "failed run / failed records")]
    return format_html_join(
        " ", '<span style="white-space:nowrap"><span style="display:inline-block;width:10px;height:10px;'
        'background:{}"></span> {}</span>', items,
    )
