"""The emulated store API (/api/stores/<hash>/v2|v3/...), the OAuth token endpoint and the JSON
control endpoints for tests and benchmarks. Thin: parse, call a selector or service, answer."""

import functools
import json
import math
import time

from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt

from sandbox import latency

from . import limits, selectors, services
from .errors import ApiError
from .models import AppInstall, Cart, Customer, Hook, SandboxStore, Script, Subscriber
from .serializers import cart_json, customer_json, hook_json, script_json, store_json, subscriber_json

ERROR_TITLES = {
    429: "You have exceeded your request quota. Please wait before retrying.",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _error(status: int, title: str, errors: dict | None = None) -> JsonResponse:
    return JsonResponse(ApiError(status, title, errors).body(), status=status)


def _json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Input is invalid.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Input is invalid.")
    return body


def store_api(*methods: str):
    """Wrap an API view with the store lookup, X-Auth-Token check, quota, faults and rate headers.

    The view gets (request, store, install, **kwargs) and returns a dict/list (sent as JSON with
    status 200), None (204) or an HttpResponse; an ApiError becomes BigCommerce's error body.
    """

    def decorator(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, store_hash, **kwargs):
            latency.pause(latency.bigcommerce_mean_ms())  # off unless SANDBOX_BIGCOMMERCE_LATENCY_MS is set
            store = SandboxStore.objects.filter(store_hash=store_hash).first()
            if store is None:
                return _error(404, "Store not found.")
            token = request.headers.get("X-Auth-Token", "")
            install = AppInstall.objects.filter(store=store, installed=True, access_token=token).first() \
                if token else None
            if install is None:
                response = _error(401, "Unauthorized - the X-Auth-Token is not valid for this store.")
                return _with_headers(response, limits.quota_peek(store=store))
            quota = limits.quota_consume(store=store)
            if not quota.allowed:
                response = _error(429, ERROR_TITLES[429])
                response["X-Retry-After"] = str(math.ceil(quota.reset_ms / 1000))
                return _with_headers(response, quota)
            fault = limits.fault_pick(store=store)
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault.status:
                response = _error(fault.status, ERROR_TITLES.get(fault.status, "Error"))
                if fault.status == 429:  # an injected 429 reads like the quota's own: X-Retry-After too
                    response["X-Retry-After"] = str(math.ceil(quota.reset_ms / 1000))
                return _with_headers(response, quota)
            if request.method not in methods:
                return _with_headers(_error(405, "Method not allowed."), quota)
            try:
                result = view(request, store, install, **kwargs)
            except ApiError as exc:
                response = JsonResponse(exc.body(), status=exc.status)
            else:
                if isinstance(result, HttpResponse):
                    response = result
                elif result is None:
                    response = HttpResponse(status=204)
                    del response["Content-Type"]
                else:
                    response = JsonResponse(result, safe=False)
            return _with_headers(response, quota)

        return wrapper

    return decorator


def _with_headers(response: HttpResponse, quota: limits.QuotaState) -> HttpResponse:
    for name, value in quota.headers().items():
        response[name] = value
    return response


# --- v2 -------------------------------------------------------------------------------------------

@store_api("GET")
def store_information(request, store, install):
    return store_json(store)


@store_api("GET")
def orders(request, store, install):
    return selectors.order_list(store=store, params=request.GET) or None


@store_api("GET")
def orders_count(request, store, install):
    return selectors.order_count(store=store, params=request.GET)


@store_api("GET")
def order(request, store, install, order_id):
    try:
        return selectors.order_detail(store=store, order_id=order_id, params=request.GET)
    except ApiError as exc:
        # v2 errors are a list of {status, message}.
        return JsonResponse([{"status": exc.status, "message": exc.title}], status=exc.status, safe=False)


@store_api("GET")
def cart(request, store, install, cart_id):
    """A cart while it can still be bought; converted (now an order), deleted or expired: 404."""
    found = Cart.objects.filter(store=store, cart_id=cart_id,
                                status__in=(Cart.Status.ACTIVE, Cart.Status.ABANDONED)).first()
    if found is None:
        return _error(404, "Cart not found.")
    return {"data": cart_json(found), "meta": {}}


# --- v3 catalog -----------------------------------------------------------------------------------

@store_api("GET")
def catalog_products(request, store, install):
    services.catalog_ensure(store)
    return selectors.product_collection(store=store, params=request.GET)


# --- v3 customers and subscribers -----------------------------------------------------------------

def _json_list(request) -> list:
    try:
        body = json.loads(request.body or b"[]")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Input is invalid.") from None
    if not isinstance(body, list):
        raise ApiError(422, "Input is invalid.", {"body": "a list of customers is expected"})
    return body


@store_api("GET", "PUT", "DELETE")
def customers(request, store, install):
    if request.method == "PUT":
        services.scope_require_customers_write(install)
        updated = services.customers_update(store=store, rows=_json_list(request))
        return {"data": [customer_json(c) for c in updated], "meta": {}}
    if request.method == "DELETE":
        # customers.v3.yml deleteCustomers: `id:in` is required.
        services.scope_require_customers_write(install)
        if not request.GET.get("id:in"):
            raise ApiError(422, "Input is invalid.", {"id:in": "required"})
        ids = selectors.parse_int_list(request.GET["id:in"], "id:in")
        for found in Customer.objects.filter(store=store, bc_id__in=ids):
            services.customer_delete(customer=found)
        return None
    return selectors.customer_collection(store=store, params=request.GET)


@store_api("GET", "DELETE")
def subscribers(request, store, install):
    if request.method == "DELETE":
        # subscribers.v3.yml deleteSubscribers: "By default, it deletes all subscribers. Use a filter".
        services.scope_require_customers_write(install)
        found = Subscriber.objects.filter(store=store)
        for name in ("email", "first_name", "last_name", "source"):
            if request.GET.get(name):
                found = found.filter(**{name: request.GET[name]})
        services.subscribers_delete(store=store, subscribers=list(found))
        return None
    return selectors.subscriber_collection(store=store, params=request.GET)


@store_api("GET", "DELETE")
def subscriber(request, store, install, subscriber_id):
    found = Subscriber.objects.filter(store=store, bc_id=subscriber_id).first()
    if request.method == "DELETE":
        services.scope_require_customers_write(install)
    if found is None:
        raise ApiError(404, "Subscriber not found.")
    if request.method == "DELETE":
        services.subscribers_delete(store=store, subscribers=[found])
        return None
    return {"data": subscriber_json(found), "meta": {}}


# --- v3 scripts -----------------------------------------------------------------------------------

@store_api("GET", "POST")
def scripts(request, store, install):
    if request.method == "POST":
        script = services.script_create(store=store, client_id=install.client_id, values=_json_body(request))
        return {"data": script_json(script), "meta": {}}
    return selectors.script_collection(store=store, client_id=install.client_id, params=request.GET)


@store_api("GET", "PUT", "DELETE")
def script(request, store, install, script_uuid):
    found = Script.objects.filter(store=store, api_client_id=install.client_id, uuid=script_uuid).first()
    if found is None:
        raise ApiError(404, "Script not found.")
    if request.method == "DELETE":
        found.delete()
        return None
    if request.method == "PUT":
        found = services.script_update(script=found, values=_json_body(request))
    return {"data": script_json(found), "meta": {}}


# --- v3 hooks -------------------------------------------------------------------------------------

@store_api("GET", "POST")
def hooks(request, store, install):
    if request.method == "POST":
        hook = services.hook_create(store=store, client_id=install.client_id, values=_json_body(request))
        return {"data": hook_json(hook, store), "meta": {}}
    return selectors.hook_collection(store=store, client_id=install.client_id, params=request.GET)


@store_api("GET", "PUT", "DELETE")
def hook(request, store, install, hook_id):
    found = Hook.objects.filter(store=store, client_id=install.client_id, bc_id=hook_id).first()
    if found is None:
        raise ApiError(404, f"Webhook with id [{hook_id}] not found")
    body = {"data": hook_json(found, store), "meta": {}}
    if request.method == "DELETE":
        found.delete()
    elif request.method == "PUT":
        body["data"] = hook_json(services.hook_update(hook=found, values=_json_body(request)), store)
    return body


# --- OAuth token endpoint -------------------------------------------------------------------------

@csrf_exempt
def token(request):
    if request.method != "POST":
        return JsonResponse({"error": "invalid_request", "error_description": "POST only."}, status=405)
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return JsonResponse({"error": "invalid_request", "error_description": "Invalid JSON."}, status=400)
    else:
        data = request.POST.dict()
    try:
        return JsonResponse(services.token_exchange(data=data))
    except services.TokenError as exc:
        return JsonResponse(exc.body(), status=exc.status)


# --- control endpoints (sandbox only) -------------------------------------------------------------

def _control_body(request) -> dict | None:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@csrf_exempt
def control_faults(request, store_hash):
    """POST {"error_429_probability", "error_500_probability", "slow_probability", "slow_seconds",
    "fail_next_count", "fail_next_status", "customers_cursor_meta"} (any subset; {"reset": true} clears all).
    customers_cursor_meta false: customers pages carry no cursor metadata, only page numbers."""
    store = get_object_or_404(SandboxStore, store_hash=store_hash)
    if request.method == "POST":
        body = _control_body(request)
        if body is None:
            return JsonResponse({"error": "JSON object expected"}, status=400)
        if body.pop("reset", False):
            limits.faults_reset(store=store)
        allowed = {"error_429_probability", "error_500_probability", "slow_probability", "slow_seconds",
                   "fail_next_count", "fail_next_status", "customers_cursor_meta"}
        unknown = set(body) - allowed
        if unknown:
            return JsonResponse({"error": f"unknown fields: {', '.join(sorted(unknown))}"}, status=400)
        limits.faults_set(store=store, **body)
    return JsonResponse(limits.fault_config(store))


@csrf_exempt
def control_quota(request, store_hash):
    """POST {"requests": 150, "window_ms": 30000} sets the plan quota and starts a fresh window."""
    store = get_object_or_404(SandboxStore, store_hash=store_hash)
    if request.method == "POST":
        body = _control_body(request)
        if body is None or set(body) - {"requests", "window_ms", "reset"}:
            return JsonResponse({"error": "expected {requests, window_ms, reset}"}, status=400)
        limits.quota_set(store=store, requests=body.get("requests"), window_ms=body.get("window_ms"),
                         reset=body.get("reset", True))
    return JsonResponse({**limits.quota_config(store), **limits.quota_peek(store=store).headers()})
