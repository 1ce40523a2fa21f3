"""The Store page with its sync: Ortto connection and last run in the list, the store's sync history on
its page, and the three sync actions (Sync now, Resync failed records, Full resync).

stores' StoreAdmin knows nothing of sync; sync/admin/site.py registers this subclass in its place. Support
staff queue syncs when they hold "sync.run_sync" (SyncRun's Meta.permissions).
"""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from stores.admin import StoreAdmin
from stores.admin_toolkit import admin_link, badge, changelist_url, is_changelist, titled_boolean_filter
from stores.models import Store, WebhookEvent
from sync.admin.charts import legend_html, runs_chart_svg
from sync.admin.display import STATE_COLOURS, counters_table, requested_by_label, run_duration, run_status_badge
from sync.connect.selectors import live_connection_get, store_sync_overview
from sync.engine.pauses import paused_connection_probe
from sync.engine.runs import RunNotPossible, sync_run_request
from sync.models import Connection, MergeStrategy, SyncEvent, SyncRun

RUN_SYNC_PERMISSION = "sync.run_sync"
SYNC_KINDS = {
    SyncRun.Kind.MANUAL: "Sync now",
    SyncRun.Kind.RETRY_FAILED: "Resync failed records",
    SyncRun.Kind.FULL: "Full resync",
}


def request_runs(request, stores, kind: str) -> None:
    """Queue one run of `kind` per store through the sync service and say what happened to each."""
    label = SyncRun.Kind(kind).label
    requested_by = f"admin:{request.user.get_username()}"
    queued, busy, refused = [], [], []
    for store in stores:
        connection = live_connection_get(store=store)
        if connection is not None and connection.state == Connection.State.NEEDS_RECONNECT:
            # Same refusal as the app page's Sync now: the run could only fail on Ortto's 401.
            refused.append(f"{store.store_hash} (Ortto refused the API key: the owner must reconnect)")
            continue
        paused_answer = paused_connection_probe(connection=connection) if connection is not None else ""
        if paused_answer:  # paused, and Ortto still refuses when asked now
            refused.append(f"{store.store_hash} ({paused_answer})")
            continue
        try:
            run, created = sync_run_request(store=store, kind=kind, requested_by=requested_by)
        except RunNotPossible:
            refused.append(f"{store.store_hash} (not connected to an Ortto account)")
            continue
        (queued if created else busy).append((store, run))
    if queued:
        messages.success(request, format_html(
            "{} queued for {}.", label,
            format_html_join(", ", "{}", ((admin_link(run, store.store_hash),) for store, run in queued)),
        ))
    for store, run in busy:
        messages.warning(request, format_html(
            "A sync is already active for {} ({}), so no new run was queued.",
            store.store_hash, admin_link(run, f"run #{run.pk}, {run.get_status_display().lower()}"),
        ))
    if refused:
        messages.error(request, f"{label} not queued for " + "; ".join(refused) + ".")


def store_sync_panel(*, store: Store) -> dict:
    """The sync summary above the Store page's fields: the store's overview with its badges and links."""
    overview = store_sync_overview(store=store)
    live, active, last_finished = overview["connection"], overview["active_run"], overview["last_finished"]
    return {
        "connection": live,
        "connections": overview["connections"],
        "state_badge": badge(live.get_state_display(), STATE_COLOURS.get(live.state, "#7f8c8d")) if live else None,
        "recent_runs": [
            {"run": run, "badge": run_status_badge(run, stalled=run.is_stalled), "duration": run_duration(run),
             "orders": _orders_sent(run.counters), "requested_by": requested_by_label(run.requested_by)}
            for run in overview["recent_runs"]
        ],
        "active_run": active,
        "active_stalled": bool(active and active.is_stalled),
        "last_finished": last_finished,
        "last_finished_badge": run_status_badge(last_finished, stalled=False) if last_finished else None,
        "last_finished_counters": counters_table(last_finished) if last_finished else None,
        "failing_records": overview["failing_records"],
        "failing_count": overview["failing_count"],
        "chart": runs_chart_svg(overview["chart_runs"],
                                run_url=lambda run: reverse("admin:sync_syncrun_change", args=[run.pk])),
        "chart_legend": legend_html(),
        "runs_url": changelist_url(SyncRun, store=store.pk),
        "connections_url": changelist_url(Connection, store=store.pk),
        "events_url": changelist_url(SyncEvent, store=store.pk, level__exact=SyncEvent.Level.ERROR),
        "failing_url": changelist_url(SyncEvent, store=store.pk, level__exact=SyncEvent.Level.ERROR,
                                      resolved__exact=0),
    }


def _orders_sent(counters: dict):
    orders = (counters or {}).get("orders")
    if not isinstance(orders, dict):
        return "—"
    sent = sum(v for k, v in orders.items() if k in ("created", "updated", "sent") and isinstance(v, int))
    return sent


class ConnectionStateFilter(admin.SimpleListFilter):
    title = "Ortto connection"
    parameter_name = "connection"

    def lookups(self, request, model_admin):
        return [
            (Connection.State.ACTIVE, "Connected"),
            (Connection.State.PAUSED, "Paused by Ortto (403)"),
            (Connection.State.NEEDS_RECONNECT, "Needs reconnect"),
            ("none", "Not connected"),
        ]

    def queryset(self, request, queryset):
        live = Connection.objects.exclude(state=Connection.State.DISCONNECTED)
        if self.value() == "none":
            return queryset.exclude(pk__in=live.values("store_id"))
        if self.value() in (Connection.State.ACTIVE, Connection.State.PAUSED, Connection.State.NEEDS_RECONNECT):
            return queryset.filter(pk__in=live.filter(state=self.value()).values("store_id"))
        return queryset


class StoreSyncAdmin(StoreAdmin):
    change_form_template = "admin/sync/store_change_form.html"
    # The merge strategy's words are long: it is on the store's page, not in the list.
    list_display = StoreAdmin.list_display + ("ortto_account", "connection_state", "last_sync")
    list_filter = (titled_boolean_filter("is_installed", "installation", "Installed", "Uninstalled"), ConnectionStateFilter, ("installed_at", admin.DateFieldListFilter))
    actions = ["sync_now", "resync_failed", "full_resync"]

    def has_run_sync_permission(self, request, obj=None):
        return request.user.has_perm(RUN_SYNC_PERMISSION)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if not is_changelist(request):
            return queryset
        # One row per store with its live connection and latest run, in one query (correlated
        # subqueries on the (store, -created_at) index) instead of two queries per row.
        live = Connection.objects.filter(store=OuterRef("pk")).exclude(state=Connection.State.DISCONNECTED)
        last = SyncRun.objects.filter(store=OuterRef("pk")).with_stalled().order_by("-created_at", "-id")
        return queryset.annotate(
            live_account=Subquery(live.values("account__business_name")[:1]),
            live_state=Subquery(live.values("state")[:1]),
            live_merge_strategy=Subquery(live.values("merge_strategy")[:1]),
            last_run_id=Subquery(last.values("pk")[:1]),
            last_run_status=Subquery(last.values("status")[:1]),
            last_run_at=Subquery(last.values("created_at")[:1]),
            last_run_stalled=Subquery(last.values("is_stalled")[:1]),
        )

    @admin.display(description="Ortto account", ordering="live_account")
    def ortto_account(self, store):
        return store.live_account or "—"

    @admin.display(description="Merge strategy")
    def merge_strategy(self, store):
        return MergeStrategy(store.live_merge_strategy).label if store.live_merge_strategy else "—"

    @admin.display(description="Connection", ordering="live_state")
    def connection_state(self, store):
        if not store.live_state:
            return badge("Not connected", "#7f8c8d")
        return badge(Connection.State(store.live_state).label, STATE_COLOURS.get(store.live_state, "#7f8c8d"))

    @admin.display(description="Last sync", ordering="last_run_at")
    def last_sync(self, store):
        if not store.last_run_id:
            return "never"
        run = SyncRun(pk=store.last_run_id, status=store.last_run_status)
        url = reverse("admin:sync_syncrun_change", args=[run.pk])
        return format_html('{} <a href="{}">{}</a>', run_status_badge(run, stalled=store.last_run_stalled), url,
                           store.last_run_at.strftime("%Y-%m-%d %H:%M"))

    # --- the three sync actions (changelist) and buttons (change page) ---

    @admin.action(description="Sync now", permissions=["run_sync"])
    def sync_now(self, request, queryset):
        request_runs(request, queryset.defer("access_token", "webhook_secret"), SyncRun.Kind.MANUAL)

    @admin.action(description="Resync failed records", permissions=["run_sync"])
    def resync_failed(self, request, queryset):
        request_runs(request, queryset.defer("access_token", "webhook_secret"), SyncRun.Kind.RETRY_FAILED)

    @admin.action(description="Full resync", permissions=["run_sync"])
    def full_resync(self, request, queryset):
        request_runs(request, queryset.defer("access_token", "webhook_secret"), SyncRun.Kind.FULL)

    def get_urls(self):
        extra = [
            path("<path:object_id>/run-sync/", self.admin_site.admin_view(self.run_sync_view),
                 name="stores_store_run_sync"),
        ]
        return extra + super().get_urls()

    def run_sync_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_run_sync_permission(request):
            raise PermissionDenied
        store = get_object_or_404(Store, pk=object_id)
        kind = request.POST.get("kind", "")
        if kind not in SYNC_KINDS:
            messages.error(request, "Unknown kind of sync.")
        else:
            request_runs(request, [store], kind)
        return HttpResponseRedirect(reverse("admin:stores_store_change", args=[store.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update({
                "sync_panel": store_sync_panel(store=obj),
                "sync_kinds": list(SYNC_KINDS.items()),
                "can_run_sync": self.has_run_sync_permission(request),
                "run_sync_url": reverse("admin:stores_store_run_sync", args=[obj.pk]),
                "webhooks_url": changelist_url(WebhookEvent, store=obj.pk),
                "stall_seconds": settings.SYNC_STALL_SECONDS,
            })
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)
