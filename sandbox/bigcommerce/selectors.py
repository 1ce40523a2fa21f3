"""Read side of the emulated API: filters, offset and keyset paging, and the collection bodies.

Every list is ordered on an indexed (sort key, bc_id) pair. Cursors carry that pair, so a page that
follows a cursor starts right after the last record seen even when records change between pages.
"""

import base64
import binascii
import json
import math
from datetime import datetime, time
from datetime import timezone as dt_timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

from django.db.models import Count, Q, QuerySet
from django.http import QueryDict
from django.utils.dateparse import parse_datetime

from .errors import ApiError
from .models import Customer, Hook, Order, Product, SandboxStore, Script, Subscriber
from .serializers import customer_json, hook_json, order_json, product_json, script_json, subscriber_json

MAX_LIMIT = 250
DEFAULT_LIMIT = 50


# --- parameter parsing ----------------------------------------------------------------------------

def parse_date(value: str, *, end_of_day: bool = False) -> datetime:
    """ISO-8601 timestamp or date, RFC-2822, or a unix timestamp -> aware UTC datetime."""
    value = (value or "").strip()
    parsed = None
    if value.isdigit():
        parsed = datetime.fromtimestamp(int(value), tz=dt_timezone.utc)
    if parsed is None:
        try:
            parsed = parse_datetime(value.replace(" ", "+")) or datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            parsed = None
    if parsed is None:
        raise ApiError(422, f"Invalid date value: {value!r}")
    if len(value) == 10 and end_of_day:
        parsed = datetime.combine(parsed.date(), time.max)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt_timezone.utc)
    return parsed.astimezone(dt_timezone.utc)


def parse_int(value: str | None, name: str, *, default: int | None = None, minimum: int = 0) -> int | None:
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        raise ApiError(422, f"The filter {name} is not valid.", {name: "must be an integer"}) from None
    if number < minimum:
        raise ApiError(422, f"The filter {name} is not valid.", {name: f"must be at least {minimum}"})
    return number


def parse_int_list(value: str, name: str) -> list[int]:
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise ApiError(422, f"The filter {name} is not valid.", {name: "must be a list of integers"}) from None


def parse_limit(params: QueryDict, *, status_over_max: int = 422) -> int:
    limit = parse_int(params.get("limit"), "limit", default=DEFAULT_LIMIT, minimum=1)
    if limit > MAX_LIMIT:
        raise ApiError(
            status_over_max, "The specified limit exceeds the maximum allowed.", {"limit": f"max {MAX_LIMIT}"}
        )
    return limit


def _date_filters(params: QueryDict, mapping: dict[str, str]) -> Q:
    condition = Q()
    for param, lookup in mapping.items():
        if params.get(param):
            condition &= Q(**{lookup: parse_date(params[param], end_of_day=lookup.endswith("lte"))})
    return condition


# --- paging ---------------------------------------------------------------------------------------

def _links_query(params: QueryDict, **changes) -> str:
    query = {key: value for key, value in params.items() if key not in ("page", "after", "before")}
    query.update({key: value for key, value in changes.items() if value is not None})
    return "?" + urlencode(query)


def offset_page(queryset: QuerySet, *, params: QueryDict, limit: int) -> tuple[list, dict]:
    """One page by page number, and BigCommerce's `meta.pagination` for it."""
    page = parse_int(params.get("page"), "page", default=1, minimum=1)
    total = queryset.count()
    total_pages = math.ceil(total / limit)
    items = list(queryset[(page - 1) * limit: page * limit])
    links = {"current": _links_query(params, page=page, limit=limit)}
    if page > 1:
        links["previous"] = _links_query(params, page=page - 1, limit=limit)
    if page < total_pages:
        links["next"] = _links_query(params, page=page + 1, limit=limit)
    meta = {
        "total": total, "count": len(items), "per_page": limit, "current_page": page,
        "total_pages": total_pages, "links": links,
    }
    return items, meta


def encode_cursor(sort_field: str, record) -> str:
    value = getattr(record, sort_field) if sort_field != "bc_id" else None
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps({"s": sort_field, "v": value, "id": record.bc_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort_field: str) -> tuple[object, int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if raw["s"] != sort_field:
            raise ValueError("cursor made for another sort")
        value = raw["v"]
        if sort_field.startswith("date_"):
            value = datetime.fromisoformat(value)
        return value, int(raw["id"])
    except (binascii.Error, ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise ApiError(422, "The cursor is not valid.", {"after": "invalid cursor"}) from None


def _keyset_after(sort_field: str, descending: bool, value, bc_id: int) -> Q:
    cmp = "lt" if descending else "gt"
    if sort_field == "bc_id":
        return Q(**{f"bc_id__{cmp}": bc_id})
    # The leading range term is implied by the OR, but without it SQLite cannot seek the (store, sort, bc_id)
    # index to the cursor and walks every row before it: deep pages of a large store cost ~10x more.
    return Q(**{f"{sort_field}__{cmp}e": value}) & (
        Q(**{f"{sort_field}__{cmp}": value}) | Q(**{sort_field: value, f"bc_id__{cmp}": bc_id})
    )


def _ordering(sort_field: str, descending: bool) -> list[str]:
    sign = "-" if descending else ""
    return [f"{sign}bc_id"] if sort_field == "bc_id" else [f"{sign}{sort_field}", f"{sign}bc_id"]


def cursor_page(queryset: QuerySet, *, params: QueryDict, limit: int, sort_field: str,
                descending: bool) -> tuple[list, dict]:
    """One page after (or before) an opaque cursor, and BigCommerce's `meta.cursor_pagination`."""
    after, before = params.get("after"), params.get("before")
    if before and not after:
        value, bc_id = decode_cursor(before, sort_field)
        rows = list(
            queryset.filter(_keyset_after(sort_field, not descending, value, bc_id))
            .order_by(*_ordering(sort_field, not descending))[: limit + 1]
        )
        has_more_before = len(rows) > limit
        items = list(reversed(rows[:limit]))
        has_next, has_previous = True, has_more_before
    else:
        if after:
            value, bc_id = decode_cursor(after, sort_field)
            queryset = queryset.filter(_keyset_after(sort_field, descending, value, bc_id))
        rows = list(queryset.order_by(*_ordering(sort_field, descending))[: limit + 1])
        items = rows[:limit]
        has_next, has_previous = len(rows) > limit, bool(after)
    meta = {"count": len(items), "per_page": limit, "links": {}}
    if items:
        meta["start_cursor"] = encode_cursor(sort_field, items[0])
        meta["end_cursor"] = encode_cursor(sort_field, items[-1])
        meta["links"]["current"] = _links_query(params, limit=limit, after=after, before=before)
        if has_next:
            meta["links"]["next"] = _links_query(params, limit=limit, after=meta["end_cursor"])
        if has_previous:
            meta["links"]["previous"] = _links_query(params, limit=limit, before=meta["start_cursor"])
    return items, meta


# --- customers ------------------------------------------------------------------------------------

CUSTOMER_SORTS = {"date_created": "date_created", "date_modified": "date_modified", "last_name": "last_name"}
CUSTOMER_INCLUDES = {"addresses", "storecredit", "attributes", "formfields", "shopper_profile_id", "segment_ids"}


def customer_collection(*, store: SandboxStore, params: QueryDict) -> dict:
    """GET /v3/customers: the whole response body."""
    limit = parse_limit(params)
    include = {part for part in params.get("include", "").split(",") if part}
    if include - CUSTOMER_INCLUDES:
        raise ApiError(422, "The filter include is not valid.", {"include": ",".join(sorted(include - CUSTOMER_INCLUDES))})
    sort_field, descending = "bc_id", False
    if params.get("sort"):
        field, _, direction = params["sort"].partition(":")
        if field not in CUSTOMER_SORTS or direction not in ("", "asc", "desc"):
            raise ApiError(422, "The filter sort is not valid.", {"sort": params["sort"]})
        sort_field, descending = CUSTOMER_SORTS[field], direction == "desc"

    queryset = Customer.objects.filter(store=store).filter(
        _date_filters(params, {
            "date_created:min": "date_created__gte", "date_created:max": "date_created__lte",
            "date_modified:min": "date_modified__gte", "date_modified:max": "date_modified__lte",
        })
    )
    for param, lookup in (("date_created", "date_created__date"), ("date_modified", "date_modified__date")):
        if params.get(param):
            queryset = queryset.filter(**{lookup: parse_date(params[param]).date()})
    if params.get("id:in"):
        queryset = queryset.filter(bc_id__in=parse_int_list(params["id:in"], "id:in"))
    if params.get("email:in"):
        queryset = queryset.filter(email__in=[e.strip() for e in params["email:in"].split(",") if e.strip()])
    if params.get("name:like"):
        name_q = Q()
        for part in params["name:like"].split(","):
            name_q |= Q(first_name__icontains=part) | Q(last_name__icontains=part)
        queryset = queryset.filter(name_q)

    meta = {}
    if params.get("after") or params.get("before"):
        items, meta["cursor_pagination"] = cursor_page(
            queryset, params=params, limit=limit, sort_field=sort_field, descending=descending
        )
    else:
        items, meta["pagination"] = offset_page(
            queryset.order_by(*_ordering(sort_field, descending)), params=params, limit=limit
        )
        if meta["pagination"]["current_page"] == 1 and store.customers_cursor_meta:
            # BigCommerce answers page 1 with both kinds of paging so a client can switch to cursors.
            _, meta["cursor_pagination"] = cursor_page(
                queryset, params=params, limit=limit, sort_field=sort_field, descending=descending
            )
    return {"data": [customer_json(c, include=include) for c in items], "meta": meta}


# --- subscribers ----------------------------------------------------------------------------------

def subscriber_collection(*, store: SandboxStore, params: QueryDict) -> dict:
    limit = parse_limit(params)
    queryset = Subscriber.objects.filter(store=store).filter(
        _date_filters(params, {
            "date_created:min": "date_created__gte", "date_created:max": "date_created__lte",
            "date_modified:min": "date_modified__gte", "date_modified:max": "date_modified__lte",
        })
    )
    if params.get("id:in"):
        queryset = queryset.filter(bc_id__in=parse_int_list(params["id:in"], "id:in"))
    if params.get("id"):
        queryset = queryset.filter(bc_id=parse_int(params["id"], "id"))
    for name in ("email", "first_name", "last_name", "source"):
        if params.get(name):
            queryset = queryset.filter(**{name: params[name]})
    if params.get("order_id"):
        queryset = queryset.filter(order_id=parse_int(params["order_id"], "order_id"))
    items, pagination = offset_page(queryset.order_by("bc_id"), params=params, limit=limit)
    return {"data": [subscriber_json(s) for s in items], "meta": {"pagination": pagination}}


# --- orders (v2) ----------------------------------------------------------------------------------

ORDER_SORTS = {"id": "bc_id", "customer_id": "customer_id", "date_created": "date_created",
               "date_modified": "date_modified", "status_id": "status_id"}


def _orders_filtered(store: SandboxStore, params: QueryDict) -> QuerySet:
    queryset = Order.objects.filter(store=store).filter(
        _date_filters(params, {
            "min_date_created": "date_created__gte", "max_date_created": "date_created__lte",
            "min_date_modified": "date_modified__gte", "max_date_modified": "date_modified__lte",
        })
    )
    int_filters = {"min_id": "bc_id__gte", "max_id": "bc_id__lte", "customer_id": "customer_id",
                   "status_id": "status_id"}
    for param, lookup in int_filters.items():
        if params.get(param):
            queryset = queryset.filter(**{lookup: parse_int(params[param], param)})
    if params.get("email"):
        queryset = queryset.filter(billing_address__email=params["email"])
    return queryset


def order_list(*, store: SandboxStore, params: QueryDict) -> list[dict]:
    """GET /v2/orders: a bare list (empty means the view answers 204)."""
    limit = parse_limit(params, status_over_max=413)
    page = parse_int(params.get("page"), "page", default=1, minimum=1)
    field, _, direction = params.get("sort", "id:asc").partition(":")
    if field not in ORDER_SORTS or direction not in ("", "asc", "desc"):
        raise ApiError(400, "The field 'sort' is invalid.")
    ordering = _ordering(ORDER_SORTS[field], direction == "desc")
    queryset = _orders_filtered(store, params).order_by(*ordering)
    line_items = wants_line_items(params)
    return [order_json(o, store, line_items=line_items) for o in queryset[(page - 1) * limit: page * limit]]


def wants_line_items(params: QueryDict) -> bool:
    """`include=consignments.line_items` with `consignment_structure=object` (orders.v2.oas2.yml,
    order_includes): the consignments object with each consignment's products, in the same answer."""
    includes = {part for value in params.getlist("include") for part in value.split(",")}
    return "consignments.line_items" in includes and params.get("consignment_structure") == "object"


def order_count(*, store: SandboxStore, params: QueryDict) -> dict:
    counts = dict(
        _orders_filtered(store, params).order_by().values_list("status_id").annotate(n=Count("id"))
    )
    statuses = [
        {"id": status_id, "name": name, "system_label": name, "custom_label": name,
         "system_description": name, "count": counts.get(status_id, 0), "sort_order": status_id}
        for status_id, name in Order.STATUSES.items()
    ]
    return {"count": sum(counts.values()), "statuses": statuses}


def order_detail(*, store: SandboxStore, order_id: int, params: QueryDict | None = None) -> dict:
    order = Order.objects.filter(store=store, bc_id=order_id).first()
    if order is None:
        raise ApiError(404, "The requested resource was not found.")
    return order_json(order, store, line_items=params is not None and wants_line_items(params))


# --- scripts and hooks ----------------------------------------------------------------------------

SCRIPT_SORTS = {"name", "description", "date_created", "date_modified"}


def script_collection(*, store: SandboxStore, client_id: str, params: QueryDict) -> dict:
    limit = parse_limit(params)
    sort = params.get("sort", "date_created")
    if sort not in SCRIPT_SORTS:
        raise ApiError(422, "The filter sort is not valid.", {"sort": sort})
    sign = "-" if params.get("direction") == "desc" else ""
    queryset = Script.objects.filter(store=store, api_client_id=client_id).order_by(f"{sign}{sort}", "id")
    items, pagination = offset_page(queryset, params=params, limit=limit)
    return {"data": [script_json(s) for s in items], "meta": {"pagination": pagination}}


def hook_collection(*, store: SandboxStore, client_id: str, params: QueryDict) -> dict:
    limit = parse_limit(params)
    queryset = Hook.objects.filter(store=store, client_id=client_id)
    if params.get("is_active") in ("true", "false"):
        queryset = queryset.filter(is_active=params["is_active"] == "true")
    for name in ("scope", "destination"):
        if params.get(name):
            queryset = queryset.filter(**{name: params[name]})
    items, pagination = offset_page(queryset.order_by("bc_id"), params=params, limit=limit)
    return {"data": [hook_json(h, store) for h in items], "meta": {"pagination": pagination}}


# --- catalog (v3) ----------------------------------------------------------------------------------

PRODUCT_INCLUDES = {"bulk_pricing_rules", "channels", "custom_fields", "images", "modifiers", "options",
                    "parent_relations", "primary_image", "reviews", "variants", "videos"}
PRODUCT_SORTS = {"id": "bc_id", "name": "name", "sku": "sku", "price": "price", "date_modified": "date_modified"}


def product_collection(*, store: SandboxStore, params: QueryDict) -> dict:
    """GET /v3/catalog/products (products_catalog.v3.yml, getProducts): page/limit, `id:in`,
    `id:greater|min|less|max`, `date_modified:min`, `inventory_level`, `include`, `sort` + `direction`."""
    limit = parse_limit(params)
    # The spec declares only a 200 for this operation: values outside IncludeParamBase are ignored.
    include = {part for part in (params.get("include") or "").split(",") if part} & PRODUCT_INCLUDES
    queryset = Product.objects.filter(store=store).select_related("store").filter(_date_filters(params, {
        "date_modified:min": "date_modified__gte", "date_modified:max": "date_modified__lte"}))
    if params.get("id:in"):
        queryset = queryset.filter(bc_id__in=parse_int_list(params["id:in"], "id:in"))
    if params.get("id"):
        queryset = queryset.filter(bc_id=parse_int(params["id"], "id"))
    for name, lookup in (("id:greater", "bc_id__gt"), ("id:min", "bc_id__gte"), ("id:less", "bc_id__lt"),
                         ("id:max", "bc_id__lte")):
        if params.get(name) not in (None, ""):
            queryset = queryset.filter(**{lookup: parse_int(params[name], name)})
    if params.get("inventory_level") not in (None, ""):
        queryset = queryset.filter(inventory_level=parse_int(params["inventory_level"], "inventory_level"))
    sort = params.get("sort") or "id"
    if sort not in PRODUCT_SORTS:
        raise ApiError(400, "The sort parameter is invalid.")
    direction = params.get("direction") or "asc"
    if direction not in ("asc", "desc"):
        raise ApiError(400, "The direction parameter is invalid.")
    field = PRODUCT_SORTS[sort]
    queryset = queryset.order_by(("-" if direction == "desc" else "") + field, "bc_id")
    items, pagination = offset_page(queryset, params=params, limit=limit)
    return {"data": [product_json(p, include=include) for p in items], "meta": {"pagination": pagination}}
