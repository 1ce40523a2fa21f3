"""Admin for support staff: stores, their users and webhook deliveries.

Support accounts (the "Support" group, see migrations/0002_support_group.py) can look at everything;
they cannot add, change or delete. Secrets are never rendered, only a masked hint. sync/admin/store.py
extends the Store page with the store's Ortto connection, its runs and the sync actions.
"""

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html

from .admin_toolkit import (
    BigTableAdmin,
    ReadOnlyInline,
    ResourceFilter,
    StoreFilter,
    badge,
    is_changelist,
    store_ids_matching,
    store_link,
    titled_boolean_filter,
)
from .fields import mask_secret
from .models import Store, StoreUser, WebhookEvent


class StoreUserInline(ReadOnlyInline):
    model = StoreUser
    fields = ("bc_user_id", "email", "is_owner", "is_active", "created_at", "last_seen_at")
    readonly_fields = fields

    def get_queryset(self, request):
        # Each row's label is str(user), which reads user.store.store_hash.
        return super().get_queryset(request).select_related("store").defer("store__access_token",
                                                                           "store__webhook_secret")


@admin.register(Store)
class StoreAdmin(admin.ModelAdmin):
    # Name first, the hash under it; the domain is on the page and found by search, so 1280 px keep room
    # for the columns sync adds (sync/admin/store.py).
    list_display = ("store_name", "owner_email", "installed")
    list_display_links = ("store_name",)
    list_filter = (titled_boolean_filter("is_installed", "installation", "Installed", "Uninstalled"),
                   ("installed_at", admin.DateFieldListFilter))
    search_fields = ("store_hash", "name", "domain", "owner_email")
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [StoreUserInline]
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

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.defer("access_token", "webhook_secret") if is_changelist(request) else queryset

    @admin.display(description="Store", ordering="name")
    def store_name(self, store):
        if not store.name or store.name == store.store_hash:
            return store.store_hash
        return format_html('{} <span class="store-hash">{}</span>', store.name, store.store_hash)

    @admin.display(description="Installed", boolean=True, ordering="is_installed")
    def installed(self, store):
        return store.is_installed

    @admin.display(description="Access token")
    def access_token_hint(self, store):
        return mask_secret(store.access_token)

    @admin.display(description="Webhook secret")
    def webhook_secret_hint(self, store):
        return mask_secret(store.webhook_secret)


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

    @admin.display(description="Store", ordering="store__name")
    def store_link(self, event):
        return store_link(event.store)

    @admin.display(description="Status", ordering="status")
    def status_badge(self, event):
        return badge(event.get_status_display(), self.STATUS_COLOURS.get(event.status, "#7f8c8d"))
