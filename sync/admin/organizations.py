"""Admin for support staff: the organizations (store companies) the bridge keeps in step with Ortto."""

from django.contrib import admin
from django.db.models import Count

from sync.admin.site import LogAdmin, admin_link, store_ids_matching
from sync.engine.organizations import MAX_PEOPLE_PER_ACCOUNT
from sync.models import OrganizationLedger


@admin.register(OrganizationLedger)
class OrganizationLedgerAdmin(LogAdmin):
    list_display = ("name", "store_link", "people", "linked", "ortto_account_id", "created_in_ortto", "synced_at")
    list_filter = ("created_in_ortto", "connection__state")
    search_fields = ("name", "key", "ortto_account_id")
    list_select_related = ("connection__store",)
    readonly_fields = ("name", "key", "store_link", "people", "linked", "source_fields", "ortto_account_id", "fingerprint",
                       "created_in_ortto", "synced_at")
    fields = readonly_fields

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(people_count=Count("members", distinct=True),
                                                      linked_count=Count("linked_members", distinct=True))

    def get_search_results(self, request, queryset, search_term):
        """A company name, an Ortto account id, or a store (hash, name, domain)."""
        queryset, duplicates = super().get_search_results(request, queryset, search_term)
        store_ids = store_ids_matching(search_term.strip()) if search_term.strip() else []
        if store_ids:
            queryset |= self.get_queryset(request).filter(connection__store_id__in=store_ids)
        return queryset, duplicates

    @admin.display(description="Store", ordering="connection__store__name")
    def store_link(self, organization):
        return admin_link(organization.connection.store)

    @admin.display(description="People", ordering="people_count")
    def people(self, organization):
        return organization.people_count

    @admin.display(description="Linked in Ortto", ordering="linked_count")
    def linked(self, organization):
        """People linked to the account in Ortto, against Ortto's cap per organization (beyond it the bridge
        links nobody more, and each run's events say how many wait)."""
        return f"{organization.linked_count:,} of {MAX_PEOPLE_PER_ACCOUNT:,}"
