"""Admin for support staff: stores, their users and webhook deliveries, and the three sync actions.

Support accounts (the "Support" group, see migrations/0002_support_group.py) can look at everything
and queue syncs when they hold "sync.run_sync"; they cannot add, change or delete. Secrets are never
rendered, only a masked hint.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, Subquery
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from sync.admin import (
    STATE_COLOURS, BigTableAdmin, ReadOnlyInline, ResourceFilter, StoreFilter, admin_link, badge, changelist_url, run_status_badge,
    store_ids_matching, store_sync_panel,
)
from sync.models import Connection, MergeStrategy, SyncRun

from .fields import mask_secret
from .models import Store, StoreUser, WebhookEvent

RUN_SYNC_PERMISSION = "sync.run_sync"
SYNC_KINDS = {
    SyncRun.Kind.MANUAL: "Sync now",
    SyncRun.Kind.RETRY_FAILED: "Resync failed records",
    SyncRun.Kind.FULL: "Full resync",
}


def request_runs(request, stores, kind: str) -> None:
    """Queue one run of `kind` per store through the sync service and say what happened to each."""
    from sync.connections import connection_live
    from sync.runs import RunNotPossible, sync_run_request

    label = SyncRun.Kind(kind).label
    requested_by = f"admin:{request.user.get_username()}"
    queued, busy, refused = [], [], []
    for store in stores:
        connection = connection_live(store=store)
        if connection is not None and connection.state == Connection.State.NEEDS_RECONNECT:
            # Same refusal as the app page's Sync now: the run could only fail on Ortto's 401.
            refused.append(f"{store.store_hash} (Ortto refused the API key: the owner must reconnect)")
            continue
        if connection is not None and connection.state == Connection.State.PAUSED:
            refused.append(f"{store.store_hash} (paused: Ortto refuses the account for now; it resumes by itself)")
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


class StoreUserInline(ReadOnlyInline):
    model = StoreUser
    fields = ("bc_user_id", "email", "is_owner", "is_active", "created_at", "last_seen_at")
    readonly_fields = fields

    def get_queryset(self, request):
        # Each row's label is str(user), which reads user.store.store_hash.
        return super().get_queryset(request).select_related("store").defer("store__access_token",
                                                                           "store__webhook_secret")


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


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    list_display = ("store_hash", "name", "domain", "owner_email", "is_installed", "ortto_account",
                    "merge_strategy", "connection_state", "last_sync")
    list_display_links = ("store_hash",)
    list_filter = ("is_installed", ConnectionStateFilter, ("installed_at", admin.DateFieldListFilter))
    search_fields = ("store_hash", "name", "domain", "owner_email")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [StoreUserInline]
    actions = ["sync_now", "resync_failed", "full_resync"]
    exclude = ("access_token", "webhook_secret")
    readonly_fields = ("store_hash", "access_token_hint", "webhook_secret_hint", "scopes", "account_uuid",
                       "owner_bc_id", "installed_at", "uninstalled_at", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("store_hash", "name", "domain", "owner_email", "owner_bc_id", "account_uuid")}),
        ("Install", {"fields": ("is_installed", "installed_at", "uninstalled_at", "scopes", "created_at",
                                "updated_at")}),
        ("Secrets (masked)", {"fields": ("access_token_hint", "webhook_secret_hint")}),
    )

    def has_add_permission(self, request):
        return False  # stores arrive through BigCommerce's install callback

    def has_run_sync_permission(self, request, obj=None):
        return request.user.has_perm(RUN_SYNC_PERMISSION)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        match = request.resolver_match
        if not (match and match.url_name == "stores_store_changelist"):
            return queryset
        # One row per store with its live connection and latest run, in one query (correlated
        # subqueries on the (store, -created_at) index) instead of two queries per row.
        live = Connection.objects.filter(store=OuterRef("pk")).exclude(state=Connection.State.DISCONNECTED)
        last = SyncRun.objects.filter(store=OuterRef("pk")).order_by("-created_at", "-id")
        return queryset.defer("access_token", "webhook_secret").annotate(
            live_account=Subquery(live.values("account__business_name")[:1]),
            live_state=Subquery(live.values("state")[:1]),
            live_merge_strategy=Subquery(live.values("merge_strategy")[:1]),
            last_run_id=Subquery(last.values("pk")[:1]),
            last_run_status=Subquery(last.values("status")[:1]),
            last_run_at=Subquery(last.values("created_at")[:1]),
            last_run_started_at=Subquery(last.values("started_at")[:1]),
            last_run_heartbeat_at=Subquery(last.values("heartbeat_at")[:1]),
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
        run = SyncRun(pk=store.last_run_id, status=store.last_run_status, created_at=store.last_run_at,
                      started_at=store.last_run_started_at, heartbeat_at=store.last_run_heartbeat_at)
        url = reverse("admin:sync_syncrun_change", args=[run.pk])
        return format_html('{} <a href="{}">{}</a>', run_status_badge(run), url,
                           store.last_run_at.strftime("%Y-%m-%d %H:%M"))

    @admin.display(description="Access token")
    def access_token_hint(self, store):
        return mask_secret(store.access_token)

    @admin.display(description="Webhook secret")
    def webhook_secret_hint(self, store):
        return mask_secret(store.webhook_secret)

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


@admin.register(WebhookEvent)
class WebhookEventAdmin(BigTableAdmin):
    list_display = ("received_at", "store_link", "scope", "resource", "resource_id", "status_badge", "processed_at",
                    "duplicates")
    list_filter = ("status", ResourceFilter, ("received_at", admin.DateFieldListFilter), StoreFilter)
    search_fields = ("=store__store_hash", "scope")
    date_hierarchy = "received_at"
    list_select_related = ("store",)
    fields = ("store_link", "scope", "resource", "resource_id", "status", "bc_created_at", "received_at",
              "processed_at", "duplicates", "dedup_key", "payload")
    readonly_fields = fields

    STATUS_COLOURS = {
        WebhookEvent.Status.PENDING: "#2f6fb3",
        WebhookEvent.Status.PROCESSED: "#2e8b57",
        WebhookEvent.Status.IGNORED: "#7f8c8d",
        WebhookEvent.Status.FAILED: "#c0392b",
    }

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        queryset = super().get_queryset(request).defer("store__access_token", "store__webhook_secret")
        match = request.resolver_match
        if match and match.url_name and match.url_name.endswith("_changelist"):
            queryset = queryset.defer("payload")
        return queryset

    def get_search_results(self, request, queryset, search_term):
        """A store (hash, name, domain), a scope such as store/order/created, or a BigCommerce id."""
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(store_id__in=store_ids_matching(term)) | Q(scope__icontains=term)
        if term.isdigit():
            condition |= Q(resource_id=int(term))
        return queryset.filter(condition), False

    @admin.display(description="Store", ordering="store__store_hash")
    def store_link(self, event):
        return admin_link(event.store, event.store.store_hash)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, event):
        return badge(event.get_status_display(), self.STATUS_COLOURS.get(event.status, "#7f8c8d"))
