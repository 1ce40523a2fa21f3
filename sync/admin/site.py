"""Admin for support staff: Ortto accounts, connections, sync runs and their record-level events,
and the Store page with its sync (sync/admin/store.py, registered here in place of stores' own).

Everything here is read-mostly. The run and event tables grow to millions of rows, so the lists
never load the JSON columns, never count the whole table twice and never query per row.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.timezone import localtime

from stores.admin_toolkit import (
    CappedCountPaginator,
    LogAdmin,
    ReadOnlyInline,
    ResourceFilter,
    StoreFilter,
    admin_link,
    badge,
    changelist_url,
    is_changelist,
    store_ids_matching,
    store_link,
    titled_boolean_filter,
)
from stores.fields import mask_secret
from stores.models import Store
from sync.admin.display import (
    LEVEL_COLOURS,
    STATE_COLOURS,
    counters_table,
    requested_by_label,
    resolved_label,
    run_duration,
    run_status_badge,
    totals_table,
)
from sync.admin.store import StoreSyncAdmin
from sync.connect.preflight import ortto_account_check
from sync.models import CartLedger, Connection, OrttoAccount, SyncEvent, SyncRun

EVENTS_SHOWN = 50

# The lists need the page's width: at 1280 px the navigation sidebar would push their last columns out of
# sight. The breadcrumbs and the home page lead everywhere it did.
admin.site.enable_nav_sidebar = False


def short_time(value) -> str:
    """A list's date and time in 16 characters ("2026-12-07 15:04"), the admin's own takes 24."""
    return localtime(value).strftime("%Y-%m-%d %H:%M") if value else "—"


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


class RecordRowsFilter(admin.SimpleListFilter):
    """One row per record by default: a record that fails run after run is one problem, shown by its latest
    event (per store, resource, record and level). A run's own events, or every row, on request."""

    title = "rows"
    parameter_name = "rows"
    EVERY_RUN = "all"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        # A run's page links to that run's events: all of them, even those a later run repeated.
        self.run_chosen = bool(request.GET.get("run__id__exact"))

    def lookups(self, request, model_admin):
        return [(self.EVERY_RUN, "Every run's rows")]

    def choices(self, changelist):
        every = self.value() == self.EVERY_RUN or self.run_chosen
        yield {"selected": not every, "query_string": changelist.get_query_string(remove=[self.parameter_name]),
               "display": "Latest per record"}
        yield {"selected": every, "query_string": changelist.get_query_string({self.parameter_name: self.EVERY_RUN}),
               "display": "Every run's rows"}

    def queryset(self, request, queryset):
        if self.value() == self.EVERY_RUN or self.run_chosen:
            return queryset
        return events_latest_per_record(queryset)


def events_latest_per_record(queryset):
    """The events no later event of the same store, resource, record and level repeats. A record is its
    BigCommerce id, else its email; an event naming neither stands alone."""
    later = SyncEvent.objects.filter(run__store_id=OuterRef("run__store_id"), resource=OuterRef("resource"),
                                     level=OuterRef("level"), pk__gt=OuterRef("pk"))
    repeated_by_id = Exists(later.filter(bc_id=OuterRef("bc_id")))  # NULL = NULL is never true
    repeated_by_email = Exists(later.filter(bc_id__isnull=True, email=OuterRef("email")))
    return queryset.exclude(repeated_by_id).exclude(Q(bc_id__isnull=True) & ~Q(email="") & repeated_by_email)


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
                    "connected", "runs_link")
    list_display_links = ("id",)
    list_filter = ("state", "merge_strategy", titled_boolean_filter("tracking_enabled", "website tracking", "On", "Off"),
                   StoreFilter,
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

    @admin.display(description="Store", ordering="store__name")
    def store_link(self, connection):
        return store_link(connection.store)

    @admin.display(description="Connected", ordering="connected_at")
    def connected(self, connection):
        return short_time(connection.connected_at)

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
    fields = ("created_at", "level", "resource", "record_id", "email", "message", "resolved_display")
    readonly_fields = fields

    @admin.display(description="BC id")
    def record_id(self, event):
        return event.bc_id if event.bc_id is not None else "—"

    @admin.display(description="Resolved")
    def resolved_display(self, event):
        return resolved_label(event)
    show_change_link = True
    verbose_name_plural = f"Latest {EVENTS_SHOWN} events"


@admin.register(SyncRun)
class SyncRunAdmin(LogAdmin):
    # Nine short columns fit 1280 px; "Processed" and the timing details are on the run's page.
    list_display = ("run_label", "store_link", "account_name", "status_badge", "when", "duration",
                    "people", "failed_count", "requested_by_display")
    list_display_links = ("run_label",)
    list_filter = (RunHealthFilter, "status", "kind", ("created_at", admin.DateFieldListFilter), StoreFilter)
    search_fields = ("=store__store_hash", "store__name", "store__domain")
    date_hierarchy = "created_at"
    # No JOIN in the list query: with one, SQLite starts from the store table and sorts every run
    # (2 s at a million rows). Stores and accounts come in one extra query each, whatever the page size.
    list_select_related = False
    list_per_page = 50
    ordering = ("-created_at",)
    inlines = [SyncEventInline]
    readonly_fields = ("store_link", "connection_link", "kind", "status_badge", "requested_by_display", "created_at",
                       "started_at", "heartbeat_at", "finished_at", "duration", "attempts", "progress",
                       "people_synced", "failed", "counters_display", "totals_display", "checkpoint", "error_summary",
                       "events_link")
    fieldsets = (
        (None, {"fields": ("store_link", "connection_link", "kind", "status_badge", "requested_by_display",
                           "error_summary")}),
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

    @admin.display(description="Store", ordering="store__name")
    def store_link(self, run):
        return store_link(run.store)

    @admin.display(description="Account")
    def account_name(self, run):
        return run.connection.account.business_name

    @admin.display(description="Connection")
    def connection_link(self, run):
        return admin_link(run.connection)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, run):
        return run_status_badge(run, stalled=run.is_stalled)

    @admin.display(description="Run", ordering="id")
    def run_label(self, run):
        return format_html('#{} <span class="secondary">{}</span>', run.pk, run.get_kind_display())

    @admin.display(description="Created", ordering="created_at")
    def when(self, run):
        return short_time(run.created_at)

    @admin.display(description="Duration")
    def duration(self, run):
        return run_duration(run)

    @admin.display(description="People", ordering="people_synced")
    def people(self, run):
        return run.people_synced

    @admin.display(description="Failed", ordering="failed")
    def failed_count(self, run):
        if not run.failed:
            return 0
        return format_html('<a href="{}">{}</a>', changelist_url(
            SyncEvent, run__id__exact=run.pk, level__exact=SyncEvent.Level.ERROR), run.failed)

    @admin.display(description="Requested by")
    def requested_by_display(self, run):
        return requested_by_label(run.requested_by)

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
    list_display = ("when", "level_badge", "run_link", "store_link", "resource", "record_id", "email",
                    "short_message", "resolved_short")
    list_display_links = ("when",)
    list_filter = (RecordRowsFilter, "level", ResourceFilter, "resolved", ("created_at", admin.DateFieldListFilter),
                   EventStoreFilter)
    search_fields = ("email", "message", "=run__store__store_hash")
    date_hierarchy = "created_at"
    list_select_related = False  # runs and stores are prefetched, see get_queryset
    list_per_page = 100
    paginator = CappedCountPaginator  # one row per record checks each row for a later one: count no further
    readonly_fields = ("run_link", "store_link", "created_at", "level", "resource", "record_id", "email", "message",
                       "resolved_display")
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
        return store_link(event.run.store)

    @admin.display(description="When", ordering="created_at")
    def when(self, event):
        return short_time(event.created_at)

    @admin.display(description="BC id", ordering="bc_id")
    def record_id(self, event):
        return event.bc_id if event.bc_id is not None else "—"

    @admin.display(description="Message")
    def short_message(self, event):
        return Truncator(event.message).chars(100)

    @admin.display(description="Resolved", ordering="resolved")
    def resolved_short(self, event):
        return resolved_label(event, short=True)

    @admin.display(description="Resolved")
    def resolved_display(self, event):
        return resolved_label(event)



# --- abandoned carts -------------------------------------------------------------------------------

class CartStoreFilter(StoreFilter):
    store_path = "connection__store"


class CartRecoveredFilter(admin.SimpleListFilter):
    title = "recovered"
    parameter_name = "recovered"

    def lookups(self, request, model_admin):
        return [("yes", "Bought after the reminder (Cart recovered sent)"), ("no", "Not recovered")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(recovered_at__isnull=self.value() == "no")
        return queryset


@admin.register(CartLedger)
class CartLedgerAdmin(LogAdmin):
    """The abandoned carts the bridge heard of (sync/engine/carts.py) and what it did about each."""

    list_display = ("abandoned", "store_link", "shopper", "cart_value", "outcome_badge", "recovered")
    list_display_links = ("abandoned",)
    list_filter = ("outcome", CartRecoveredFilter, ("abandoned_at", admin.DateFieldListFilter), CartStoreFilter)
    search_fields = ("email", "cart_id")
    date_hierarchy = "abandoned_at"
    list_select_related = ("connection__store",)
    ordering = ("-abandoned_at", "-id")
    readonly_fields = ("store_link", "connection_link", "cart_id", "shopper", "cart_value", "outcome_badge",
                       "abandoned_at", "order_id", "recovered_at", "recovery")
    fields = readonly_fields

    OUTCOME_COLOURS = {
        CartLedger.Outcome.SENT: "#2e8b57",
        CartLedger.Outcome.ANONYMOUS: "#7f8c8d",
        CartLedger.Outcome.EXPIRED: "#7f8c8d",
        CartLedger.Outcome.FAILED: "#c0392b",
    }

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("connection__store").defer(
            "token", "connection__store__access_token", "connection__store__webhook_secret")

    def get_search_results(self, request, queryset, search_term):
        """A shopper's email, a cart id, or a store (hash, name, domain)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(email__icontains=term) | Q(cart_id__iexact=term)
        store_ids = store_ids_matching(term)
        if store_ids:
            condition |= Q(connection__store_id__in=store_ids)
        return queryset.filter(condition), False

    @admin.display(description="Abandoned", ordering="abandoned_at")
    def abandoned(self, cart):
        return short_time(cart.abandoned_at)

    @admin.display(description="Store", ordering="connection__store__name")
    def store_link(self, cart):
        return store_link(cart.connection.store)

    @admin.display(description="Connection")
    def connection_link(self, cart):
        return admin_link(cart.connection, f"connection #{cart.connection_id}")

    @admin.display(description="Shopper", ordering="email")
    def shopper(self, cart):
        return cart.email or "no email (anonymous)"

    @admin.display(description="Value", ordering="value")
    def cart_value(self, cart):
        if cart.value is None:
            return "—"
        return f"{cart.value:.2f} {cart.currency}".strip()

    @admin.display(description="What the bridge did", ordering="outcome")
    def outcome_badge(self, cart):
        return badge(cart.get_outcome_display(), self.OUTCOME_COLOURS.get(cart.outcome, "#7f8c8d"))

    @admin.display(description="Recovered", ordering="recovered_at")
    def recovered(self, cart):
        if not cart.recovered_at:
            return "—"
        return f"order #{cart.order_id}, {short_time(cart.recovered_at)}" if cart.order_id else short_time(
            cart.recovered_at)


admin.site.unregister(Store)
admin.site.register(Store, StoreSyncAdmin)

