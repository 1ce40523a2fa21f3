"""Incidents for support staff: read-only, listed by store, kind and open / cleared, with their timeline."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from sync.admin.site import LogAdmin, StoreFilter, admin_link, badge
from sync.models import Incident


class OpenFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open"), ("no", "Cleared")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(cleared_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(cleared_at__isnull=False)
        return queryset


@admin.register(Incident)
class IncidentAdmin(LogAdmin):
    list_display = ("opened_at", "store_link", "kind", "state", "cleared_at", "emails_sent")
    list_filter = (OpenFilter, "kind", StoreFilter, ("opened_at", admin.DateFieldListFilter))
    list_select_related = ("store",)
    search_fields = ("store__store_hash", "store__name", "summary")
    date_hierarchy = "opened_at"
    fields = ("store", "kind", "opened_at", "cleared_at", "summary", "emails_sent", "timeline", "facts")
    readonly_fields = fields

    @admin.display(description="Store", ordering="store__store_hash")
    def store_link(self, incident):
        return admin_link(incident.store, incident.store.store_hash)

    @admin.display(description="State")
    def state(self, incident):
        return badge("open", "#c0392b") if incident.is_open else badge("cleared", "#3a9d5d")

    @admin.display(description="Timeline")
    def timeline(self, incident):
        entries = (incident.details or {}).get("timeline") or []
        return format_html("<ol>{}</ol>", format_html_join(
            "", "<li><code>{}</code> {} {}</li>",
            ((e.get("at", ""), e.get("event", ""), e.get("text") or e.get("to") or "") for e in entries)))

    @admin.display(description="Facts")
    def facts(self, incident):
        return format_html("<code>{}</code>", (incident.details or {}).get("facts"))
