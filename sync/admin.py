"""Admin for support staff: Ortto accounts, connections, sync runs and their record-level events,
and the Store page with its sync (sync/admin_store.py, registered here in place of stores' own).

Everything here is read-mostly. The run and event tables grow to millions of rows, so the lists
never load the JSON columns, never count the whole table twice and never query per row.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Prefetch, Q
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html
from django.utils.text import Truncator

from stores.admin_toolkit import (
    LogAdmin,
    ReadOnlyInline,
    ResourceFilter,
    StoreFilter,
    admin_link,
    badge,
    changelist_url,
    is_changelist,
    store_ids_matching,
)
from stores.fields import mask_secret
from stores.models import Store

from .admin_display import LEVEL_COLOURS, STATE_COLOURS, counters_table, run_duration, run_status_badge, totals_table
from .admin_store import StoreSyncAdmin
from .models import Connection, OrttoAccount, SyncEvent, SyncRun
from .preflight import ortto_account_check

EVENTS_SHOWN = 50


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
            return queryset.stalled()
        if self.value() == "active":
            return queryset.filter(status__in=SyncRun.ACTIVE_STATUSES)
        if self.value() == "problems":
            return queryset.filter(status__in=[SyncRun.Status.FAILED, SyncRun.Status.PARTIAL])
        return queryset


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
    actions = ["check_against_ortto"]

    @admin.action(description="Check against Ortto (key, region, fields; changes nothing)")
    def check_against_ortto(self, request, queryset):
        for account in queryset[:10]:
            report = ortto_account_check(account=account)
            self.message_user(request, f"{account}: {report.verdict}",
                              messages.SUCCESS if report.ready else messages.ERROR)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.defer("api_key") if is_changelist(request) else queryset

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
                       "people_synced", "failed", "counters_display", "totals_display", "checkpoint", "error_summary",
                       "events_link")
    fieldsets = (
        (None, {"fields": ("store_link", "connection_link", "kind", "status_badge", "requested_by", "error_summary")}),
        ("Timing", {"fields": ("created_at", "started_at", "heartbeat_at", "finished_at", "duration", "attempts")}),
        ("Counts", {"fields": ("progress", "people_synced", "failed", "counters_display", "totals_display",
                              "events_link")}),
        ("Resume point", {"classes": ("collapse",), "fields": ("checkpoint",)}),
    )

    def get_queryset(self, request):
        queryset = super().get_queryset(request).with_stalled()
        if is_changelist(request):
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
        return run_status_badge(run, stalled=run.is_stalled)

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

    @admin.display(description="Totals")
    def totals_display(self, run):
        return totals_table(run)

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


admin.site.unregister(Store)
admin.site.register(Store, StoreSyncAdmin)
