"""Admin for support staff: Ortto accounts, connections, sync runs and their record-level events.

Everything here is read-mostly. The run and event tables grow to millions of rows, so the lists
never load the JSON columns, never count the whole table twice and never query per row.
"""

import calendar
import datetime
from datetime import timedelta

from django.conf import settings
from django.contrib import admin
from django.db.models import BooleanField, Case, Prefetch, Q, Value, When
from django.utils import formats
from django.utils.text import capfirst
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from stores.fields import mask_secret
from stores.models import Store

from .models import Connection, OrttoAccount, SyncEvent, SyncRun

EVENTS_SHOWN = 50
CHART_RUNS = 60
RECENT_RUNS = 10

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
    Connection.State.NEEDS_RECONNECT: "#c0392b",
    Connection.State.DISCONNECTED: "#7f8c8d",
}
LEVEL_COLOURS = {
    SyncEvent.Level.INFO: "#2f6fb3",
    SyncEvent.Level.WARNING: "#b9770e",
    SyncEvent.Level.ERROR: "#c0392b",
}


# --- shared display helpers (also used by stores/admin.py) ------------------------------------------

def badge(label, colour: str):
    return format_html(
        '<span style="background:{};color:#fff;padding:1px 7px;border-radius:9px;font-size:11px;'
        'white-space:nowrap">{}</span>',
        colour, label,
    )


def stall_cutoff(now=None):
    return (now or timezone.now()) - timedelta(seconds=settings.SYNC_STALL_SECONDS)


def stalled_q(now=None) -> Q:
    """A running run whose worker has not reported for SYNC_STALL_SECONDS (or never did, since start)."""
    cutoff = stall_cutoff(now)
    return Q(status=SyncRun.Status.RUNNING) & (
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )


def run_is_stalled(run: SyncRun, now=None) -> bool:
    if run.status != SyncRun.Status.RUNNING:
        return False
    cutoff = stall_cutoff(now)
    seen = run.heartbeat_at or run.started_at
    return seen is not None and seen < cutoff


def run_status_badge(run: SyncRun, *, stalled: bool | None = None):
    label = badge(run.get_status_display(), STATUS_COLOURS.get(run.status, "#7f8c8d"))
    if stalled is None:
        stalled = run_is_stalled(run)
    if stalled:
        return format_html("{} {}", label, badge("stalled", STALLED_COLOUR))
    return label


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def run_duration(run: SyncRun) -> str:
    if not run.started_at:
        return "—"
    end = run.finished_at or timezone.now()
    text = human_duration(max((end - run.started_at).total_seconds(), 0))
    return text if run.finished_at else f"{text} so far"


def admin_link(obj, label=None):
    if obj is None:
        return "—"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj if label is None else label)


def changelist_url(model, **params) -> str:
    from urllib.parse import urlencode

    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


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


def _is_changelist(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match and match.url_name and match.url_name.endswith("_changelist"))


# --- filters ---------------------------------------------------------------------------------------

class StoreFilter(admin.SimpleListFilter):
    """Filter by store without listing every store: all of them while there are few, else the chosen one.

    RelatedOnlyFieldListFilter would run a DISTINCT over the whole run table; links from the store
    page carry ?store=<id>, and search finds a store by its hash.
    """

    title = "store"
    parameter_name = "store"
    store_path = "store"
    list_all_up_to = 30

    def _selected(self):
        value = self.value()
        return int(value) if value and value.isdigit() else None

    def lookups(self, request, model_admin):
        fields = ("id", "store_hash", "name", "domain")
        stores = list(Store.objects.only(*fields).order_by("store_hash")[: self.list_all_up_to + 1])
        if len(stores) > self.list_all_up_to:
            selected = self._selected()
            stores = list(Store.objects.only(*fields).filter(pk=selected)) if selected else []
        return [(str(store.pk), f"{store.store_hash} · {store}") for store in stores]

    def queryset(self, request, queryset):
        selected = self._selected()
        if selected is None:
            return queryset
        return queryset.filter(**{self.store_path: selected})


class EventStoreFilter(StoreFilter):
    store_path = "run__store"


class RunHealthFilter(admin.SimpleListFilter):
    title = "health"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return [
            ("stalled", f"Stalled (no heartbeat for {settings.SYNC_STALL_SECONDS}s)"),
            ("active", "Active (queued or running)"),
            ("problems", "Failed or finished with errors"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "stalled":
            return queryset.filter(stalled_q())
        if self.value() == "active":
            return queryset.filter(status__in=SyncRun.ACTIVE_STATUSES)
        if self.value() == "problems":
            return queryset.filter(status__in=[SyncRun.Status.FAILED, SyncRun.Status.PARTIAL])
        return queryset


# --- base classes ----------------------------------------------------------------------------------

def store_ids_matching(term: str, limit: int = 1000) -> list[int]:
    """Stores whose hash, name or domain match: looked up in the small table first, so a search on a
    big table becomes `store_id IN (...)` on its store index instead of a scan through a join."""
    return list(
        Store.objects.filter(Q(store_hash__iexact=term) | Q(name__icontains=term) | Q(domain__icontains=term))
        .values_list("pk", flat=True)[:limit]
    )


class BigTableAdmin(admin.ModelAdmin):
    """A changelist over millions of rows.

    Django's date_hierarchy runs SELECT DISTINCT over the truncated dates of every matching row (3 s
    for a million runs on SQLite); this one reads only the first and last date (two index probes) and
    offers every year / month / day between them, some of which may be empty.
    """

    show_full_result_count = False
    change_list_template = "admin/big_table_change_list.html"

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context and self.date_hierarchy:
            context["light_date_hierarchy"] = light_date_hierarchy(context["cl"])
        return response


def light_date_hierarchy(cl) -> dict:
    field = cl.date_hierarchy
    year_field, month_field, day_field = f"{field}__year", f"{field}__month", f"{field}__day"
    year, month, day = (cl.params.get(name) for name in (year_field, month_field, day_field))

    def link(filters):
        return cl.get_query_string(filters, [f"{field}__"])

    def probe(order):
        value = cl.queryset.order_by(order).values_list(field, flat=True).first()
        return timezone.localtime(value) if value is not None and timezone.is_aware(value) else value

    first = last = None
    if not (year and month and day):
        first, last = probe(field), probe(f"-{field}")
        if first is None:
            return {"show": False}
        if not year and first.year == last.year:
            year = first.year
            if first.month == last.month:
                month = first.month
    if year and month and day:
        date = datetime.date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {"link": link({year_field: year, month_field: month}),
                     "title": capfirst(formats.date_format(date, "YEAR_MONTH_FORMAT"))},
            "choices": [{"title": capfirst(formats.date_format(date, "MONTH_DAY_FORMAT"))}],
        }
    if year and month:
        year, month = int(year), int(month)
        days = [datetime.date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]
        days = [d for d in days if first.date() <= d <= last.date()]
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [{"link": link({year_field: year, month_field: month, day_field: d.day}),
                         "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT"))} for d in days],
        }
    if year:
        year = int(year)
        months = [datetime.date(year, m, 1) for m in range(1, 13)]
        months = [m for m in months if (first.year, first.month) <= (m.year, m.month) <= (last.year, last.month)]
        return {
            "show": True,
            "back": {"link": link({}), "title": "All dates"},
            "choices": [{"link": link({year_field: year, month_field: m.month}),
                         "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT"))} for m in months],
        }
    return {
        "show": True,
        "back": None,
        "choices": [{"link": link({year_field: str(y)}), "title": str(y)} for y in range(first.year, last.year + 1)],
    }


class ResourceFilter(admin.SimpleListFilter):
    """Fixed choices: the default filter on a plain CharField runs SELECT DISTINCT over the table."""

    title = "resource"
    parameter_name = "resource"

    def lookups(self, request, model_admin):
        return [("customers", "Customers"), ("subscribers", "Subscribers"), ("orders", "Orders"),
                ("organizations", "Organizations")]

    def queryset(self, request, queryset):
        return queryset.filter(resource=self.value()) if self.value() else queryset


class LogAdmin(BigTableAdmin):
    """Rows the sync engine writes: nobody adds or edits them here; only superusers may delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- Ortto accounts and connections ---------------------------------------------------------------

@admin.register(OrttoAccount)
class OrttoAccountAdmin(admin.ModelAdmin):
    list_display = ("business_name", "name", "region", "api_key_hint", "account_link", "created_at")
    list_filter = ("region", ("created_at", admin.DateFieldListFilter))
    search_fields = ("business_name", "name", "members__email")
    date_hierarchy = "created_at"
    show_full_result_count = False
    exclude = ("api_key",)
    readonly_fields = ("api_key_hint", "connections_link", "created_at")
    filter_horizontal = ("members",)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.defer("api_key") if _is_changelist(request) else queryset

    @admin.display(description="API key")
    def api_key_hint(self, account):
        # The list defers the encrypted column, so it shows no hint rather than decrypting every row.
        if "api_key" in account.get_deferred_fields():
            return "(hidden)"
        return mask_secret(account.api_key)

    @admin.display(description="Ortto")
    def account_link(self, account):
        if not account.account_url:
            return "—"
        return format_html('<a href="{}" target="_blank" rel="noopener">open</a>', account.account_url)

    @admin.display(description="Connections")
    def connections_link(self, account):
        return format_html('<a href="{}">Connections to this account</a>',
                           changelist_url(Connection, account__id__exact=account.pk))


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ("id", "store_link", "account_link", "merge_strategy", "state_badge", "tracking",
                    "connected_at", "runs_link")
    list_display_links = ("id",)
    list_filter = ("state", "merge_strategy", "tracking_enabled", StoreFilter,
                   ("connected_at", admin.DateFieldListFilter))
    search_fields = ("=store__store_hash", "store__name", "store__domain", "account__business_name", "account__name")
    date_hierarchy = "connected_at"
    list_select_related = ("store", "account")
    show_full_result_count = False
    readonly_fields = ("store", "account", "store_link", "account_link", "connected_by", "connected_by_bc_user_id",
                       "connected_at", "disconnected_at", "schema_ready", "tracking_script_uuid",
                       "tracking_changed_at", "tracking_changed_by", "webhook_ids", "runs_link")
    fieldsets = (
        (None, {"fields": ("store_link", "account_link", "merge_strategy", "state", "state_reason", "runs_link")}),
        ("Connected", {"fields": ("connected_by", "connected_by_bc_user_id", "connected_at", "disconnected_at")}),
        ("Ortto side", {"fields": ("schema_ready", "tracking_enabled", "tracking_script_uuid",
                                   "tracking_changed_at", "tracking_changed_by", "webhook_ids")}),
    )

    def has_add_permission(self, request):
        return False  # connections come from the Connect flow

    def get_queryset(self, request):
        return super().get_queryset(request).defer(
            "store__access_token", "store__webhook_secret", "account__api_key"
        )

    @admin.display(description="Store", ordering="store__store_hash")
    def store_link(self, connection):
        return admin_link(connection.store, f"{connection.store.store_hash} · {connection.store}")

    @admin.display(description="Ortto account", ordering="account__business_name")
    def account_link(self, connection):
        return admin_link(connection.account)

    @admin.display(description="State", ordering="state")
    def state_badge(self, connection):
        label = badge(connection.get_state_display(), STATE_COLOURS.get(connection.state, "#7f8c8d"))
        if connection.state_reason:
            return format_html('{} <span class="help">{}</span>', label, connection.state_reason)
        return label

    @admin.display(description="Tracking", boolean=True, ordering="tracking_enabled")
    def tracking(self, connection):
        return connection.tracking_enabled

    @admin.display(description="Runs")
    def runs_link(self, connection):
        return format_html('<a href="{}">Runs</a>', changelist_url(SyncRun, connection__id__exact=connection.pk))


# --- runs and events -------------------------------------------------------------------------------

class LatestEventsFormSet(BaseInlineFormSet):
    def get_queryset(self):
        # A run may have thousands of events; the page shows the newest and links to the rest.
        if not hasattr(self, "_latest"):
            self._latest = super().get_queryset().order_by("-created_at", "-id")[:EVENTS_SHOWN]
        return self._latest


class ReadOnlyInline(admin.TabularInline):
    """Rows shown for reading alongside their parent; nobody adds, edits or deletes them here."""

    extra = 0
    max_num = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SyncEventInline(ReadOnlyInline):
    model = SyncEvent
    formset = LatestEventsFormSet
    fields = ("created_at", "level", "resource", "bc_id", "email", "message", "resolved")
    readonly_fields = fields
    show_change_link = True
    verbose_name_plural = f"Latest {EVENTS_SHOWN} events"


@admin.register(SyncRun)
class SyncRunAdmin(LogAdmin):
    list_display = ("id", "store_link", "account_name", "kind", "status_badge", "created_at", "duration",
                    "people_synced", "progress", "failed", "requested_by")
    list_display_links = ("id",)
    list_filter = (RunHealthFilter, "status", "kind", ("created_at", admin.DateFieldListFilter), StoreFilter)
    search_fields = ("=store__store_hash", "store__name", "store__domain")
    date_hierarchy = "created_at"
    # No JOIN in the list query: with one, SQLite starts from the store table and sorts every run
    # (2 s at a million rows). Stores and accounts come in one extra query each, whatever the page size.
    list_select_related = False
    list_per_page = 50
    ordering = ("-created_at",)
    inlines = [SyncEventInline]
    readonly_fields = ("store_link", "connection_link", "kind", "status_badge", "requested_by", "created_at",
                       "started_at", "heartbeat_at", "finished_at", "duration", "attempts", "progress",
                       "people_synced", "failed", "counters_display", "totals", "checkpoint", "error_summary",
                       "events_link")
    fieldsets = (
        (None, {"fields": ("store_link", "connection_link", "kind", "status_badge", "requested_by", "error_summary")}),
        ("Timing", {"fields": ("created_at", "started_at", "heartbeat_at", "finished_at", "duration", "attempts")}),
        ("Counts", {"fields": ("progress", "people_synced", "failed", "counters_display", "totals", "events_link")}),
        ("Resume point", {"classes": ("collapse",), "fields": ("checkpoint",)}),
    )

    def get_queryset(self, request):
        queryset = super().get_queryset(request).annotate(
            is_stalled=Case(When(stalled_q(), then=Value(True)), default=Value(False), output_field=BooleanField())
        )
        if _is_changelist(request):
            return queryset.defer("counters", "totals", "checkpoint", "error_summary").prefetch_related(
                Prefetch("store", queryset=Store.objects.only("id", "store_hash", "name", "domain")),
                Prefetch("connection", queryset=Connection.objects.select_related("account")
                         .only("id", "account__id", "account__business_name")),
            )
        return queryset.select_related("store", "connection__account").defer(
            "store__access_token", "store__webhook_secret", "connection__account__api_key"
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().lstrip("#")
        if not term:
            return queryset, False
        condition = Q(store_id__in=store_ids_matching(term))
        if term.isdigit():
            condition |= Q(pk=int(term))  # a run id
        return queryset.filter(condition), False

    @admin.display(description="Store", ordering="store__store_hash")
    def store_link(self, run):
        return admin_link(run.store, run.store.store_hash)

    @admin.display(description="Ortto account")
    def account_name(self, run):
        return run.connection.account.business_name

    @admin.display(description="Connection")
    def connection_link(self, run):
        return admin_link(run.connection)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, run):
        return run_status_badge(run, stalled=getattr(run, "is_stalled", None))

    @admin.display(description="Duration")
    def duration(self, run):
        return run_duration(run)

    @admin.display(description="Processed")
    def progress(self, run):
        if not run.total:
            return run.processed or "—"
        return f"{run.processed} / {run.total} ({run.progress_percent}%)"

    @admin.display(description="Counters")
    def counters_display(self, run):
        return counters_table(run)

    @admin.display(description="Events")
    def events_link(self, run):
        return format_html(
            '<a href="{}">All events of this run</a> · <a href="{}">errors only</a>',
            changelist_url(SyncEvent, run__id__exact=run.pk),
            changelist_url(SyncEvent, run__id__exact=run.pk, level__exact=SyncEvent.Level.ERROR),
        )


@admin.register(SyncEvent)
class SyncEventAdmin(LogAdmin):
    list_display = ("created_at", "level_badge", "run_link", "store_link", "resource", "bc_id", "email",
                    "short_message", "resolved")
    list_filter = ("level", ResourceFilter, "resolved", ("created_at", admin.DateFieldListFilter), EventStoreFilter)
    search_fields = ("email", "message", "=run__store__store_hash")
    date_hierarchy = "created_at"
    list_select_related = False  # runs and stores are prefetched, see get_queryset
    list_per_page = 100
    readonly_fields = ("run_link", "store_link", "created_at", "level", "resource", "bc_id", "email", "message",
                       "resolved")
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related(
            Prefetch("run", queryset=SyncRun.objects.select_related("store").only(
                "id", "kind", "store__id", "store__store_hash", "store__name", "store__domain"))
        )

    def get_search_results(self, request, queryset, search_term):
        """An email or a word of the message, a store (hash, name, domain) or a BigCommerce id."""
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(email__icontains=term) | Q(message__icontains=term)
        store_ids = store_ids_matching(term)
        if store_ids:
            condition |= Q(run__store_id__in=store_ids)
        if term.isdigit():
            condition |= Q(bc_id=int(term))
        return queryset.filter(condition), False

    @admin.display(description="Level", ordering="level")
    def level_badge(self, event):
        return badge(event.get_level_display(), LEVEL_COLOURS.get(event.level, "#7f8c8d"))

    @admin.display(description="Run", ordering="run")
    def run_link(self, event):
        return admin_link(event.run, f"#{event.run_id} {event.run.get_kind_display()}")

    @admin.display(description="Store")
    def store_link(self, event):
        return admin_link(event.run.store, event.run.store.store_hash)

    @admin.display(description="Message")
    def short_message(self, event):
        return Truncator(event.message).chars(140)


# --- the sync panel on the Store change page -------------------------------------------------------

def store_sync_panel(*, store: Store) -> dict:
    """What the Store change page shows about syncing, in a fixed number of small queries."""
    from .admin_charts import legend_html, runs_chart_svg

    connections = list(
        Connection.objects.filter(store=store).select_related("account", "connected_by")
        .defer("account__api_key").order_by("-connected_at")[:5]
    )
    live = next((c for c in connections if c.state != Connection.State.DISCONNECTED), None)
    light = ("id", "store_id", "kind", "status", "created_at", "started_at", "finished_at", "heartbeat_at",
             "people_synced", "processed", "failed")
    chart_runs = list(SyncRun.objects.filter(store=store).only(*light).order_by("-created_at", "-id")[:CHART_RUNS])
    recent = list(
        SyncRun.objects.filter(store=store).defer("checkpoint").order_by("-created_at", "-id")[:RECENT_RUNS]
    )
    now = timezone.now()
    for run in recent:
        run.is_stalled = run_is_stalled(run, now)
    active = next((run for run in recent if run.is_active), None)
    last_finished = next((run for run in recent if run.finished_at), None)
    last_errors = []
    if last_finished is not None and last_finished.failed:
        last_errors = list(
            SyncEvent.objects.filter(run=last_finished, level=SyncEvent.Level.ERROR).order_by("-created_at")[:10]
        )
    chart_runs.reverse()
    return {
        "connection": live,
        "connections": connections,
        "state_badge": badge(live.get_state_display(), STATE_COLOURS.get(live.state, "#7f8c8d")) if live else None,
        "recent_runs": [
            {"run": run, "badge": run_status_badge(run, stalled=run.is_stalled), "duration": run_duration(run),
             "orders": _orders_sent(run.counters)}
            for run in recent
        ],
        "active_run": active,
        "active_stalled": bool(active and active.is_stalled),
        "last_finished": last_finished,
        "last_finished_badge": run_status_badge(last_finished) if last_finished else None,
        "last_finished_counters": counters_table(last_finished) if last_finished else None,
        "last_errors": last_errors,
        "chart": runs_chart_svg(chart_runs, run_url=lambda run: reverse("admin:sync_syncrun_change", args=[run.pk])),
        "chart_legend": legend_html(),
        "runs_url": changelist_url(SyncRun, store=store.pk),
        "connections_url": changelist_url(Connection, store=store.pk),
        "events_url": changelist_url(SyncEvent, store=store.pk, level__exact=SyncEvent.Level.ERROR),
        "last_errors_url": (changelist_url(SyncEvent, run__id__exact=last_finished.pk, level__exact="error")
                            if last_finished else ""),
    }


def _orders_sent(counters: dict):
    orders = (counters or {}).get("orders")
    if not isinstance(orders, dict):
        return "—"
    sent = sum(v for k, v in orders.items() if k in ("created", "updated", "sent") and isinstance(v, int))
    return sent
