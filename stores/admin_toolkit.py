"""A small toolkit for admin pages over big tables, shared by the stores and sync admins.

Badges and links, store filters that never list every store, a changelist whose date drill-down reads
two rows instead of the whole table, and read-only bases for log tables and inlines.
"""

import calendar
import datetime
from urllib.parse import urlencode

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Q
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.text import capfirst

from .models import Store


def badge(label, colour: str):
    return format_html(
        '<span style="background:{};color:#fff;padding:1px 7px;border-radius:9px;font-size:11px;'
        'white-space:nowrap">{}</span>',
        colour, label,
    )


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def admin_link(obj, label=None):
    if obj is None:
        return "—"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, obj if label is None else label)


def store_link(store):
    """The store's name linking to its page, the hash underneath."""
    if store is None:
        return "—"
    url = reverse("admin:stores_store_change", args=[store.pk])
    if not store.name or store.name == store.store_hash:
        return format_html('<a href="{}">{}</a>', url, store.store_hash)
    return format_html('<a href="{}">{}</a> <span class="store-hash">{}</span>', url, store.name, store.store_hash)


def changelist_url(model, **params) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def is_changelist(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match and match.url_name and match.url_name.endswith("_changelist"))


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
        return [(str(store.pk), f"{store} ({store.store_hash})" if store.name else store.store_hash)
                for store in stores]

    def queryset(self, request, queryset):
        selected = self._selected()
        if selected is None:
            return queryset
        return queryset.filter(**{self.store_path: selected})


def store_ids_matching(term: str, limit: int = 1000) -> list[int]:
    """Stores whose hash, name or domain match: looked up in the small table first, so a search on a
    big table becomes `store_id IN (...)` on its store index instead of a scan through a join."""
    return list(
        Store.objects.filter(Q(store_hash__iexact=term) | Q(name__icontains=term) | Q(domain__icontains=term))
        .values_list("pk", flat=True)[:limit]
    )


class AtLeast(int):
    """A count that stopped at a cap: compares as the cap plus one, reads "10000+"."""

    def __str__(self):
        return f"{int(self) - 1}+"


class CappedCountPaginator(Paginator):
    """Counts at most `cap` rows, then says "cap+": a list whose filter checks each row against the rest
    (one row per failed record) would otherwise read the whole table to number its pages."""

    cap = 10_000

    @cached_property
    def count(self):
        counted = self.object_list[: self.cap + 1].count()
        return AtLeast(counted) if counted > self.cap else counted


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
                ("carts", "Carts"), ("organizations", "Organizations")]

    def queryset(self, request, queryset):
        return queryset.filter(resource=self.value()) if self.value() else queryset


class LogAdmin(BigTableAdmin):
    """Rows the sync engine writes: nobody adds or edits them here; only superusers may delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records kept as evidence (an erasure's audit row, a write-back's state): nobody adds, edits or deletes them
    here; actions (with their own permissions) are the only way to act on them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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


def titled_boolean_filter(field: str, title: str, yes: str, no: str):
    """A Yes/No filter for a BooleanField with the product's words ("By installation: Installed /
    Uninstalled"), where Django's own would read "By is installed: Yes / No"."""

    class TitledBooleanFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            return [("1", yes), ("0", no)]

        def queryset(self, request, queryset):
            if self.value() in ("0", "1"):
                return queryset.filter(**{field: self.value() == "1"})
            return queryset

    TitledBooleanFilter.title = title
    TitledBooleanFilter.__name__ = f"{field.title().replace('_', '')}Filter"
    return TitledBooleanFilter
