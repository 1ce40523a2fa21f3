"""The app page in BigCommerce's iframe and the endpoints its scripts call (with X-App-Context).

Views parse the request, call one service and render. stores' callbacks authenticate the request and
hand over to app_page; the endpoints authenticate with stores' app_context_required.
"""

import hashlib
import json
import logging
import math
from datetime import datetime

from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from stores.app_context import StoreContext, app_context_token, connect_token
from stores.services import store_user_label
from stores.views import app_context_required
from sync.catalog.preferences import MAX_CONSENT_TEXT, stock_consent_set, stock_consent_text
from sync.connect.authority import connection_authority, connection_manager_may, connection_manager_set
from sync.connect.connections import (
    connection_disconnect,
    connection_sync_now,
    connection_tracking_set,
    failed_records_retry,
)
from sync.connect.selectors import app_state, live_connection_get
from sync.consent.instant import hook_token_show
from sync.consent.panel import consent_panel, consent_set
from sync.health.card import store_health
from sync.health.failures import failed_records_page
from sync.health.incidents import alerts_panel, alerts_set
from sync.tracking import tracking_enable

logger = logging.getLogger(__name__)


def _connect_url(request, store, ctx) -> str:
    """A Connect link only for someone who may use it (authority.connection_manager_may)."""
    if not connection_manager_may(store=store, bc_user_id=ctx.bc_user_id):
        return ""
    return request.build_absolute_uri(reverse("connect:start")) + "?token=" + connect_token(ctx)


def _failed_page(request) -> int:
    page = request.GET.get("failed_page", "1")
    return int(page) if page.isascii() and page.isdigit() and len(page) < 7 else 1


def _panel_context(request, store, ctx) -> dict:
    state = app_state(store=store)
    authority = connection_authority(store=store, bc_user_id=ctx.bc_user_id)
    failed = failed_records_page(store=store, page=_failed_page(request))
    alerts = alerts_panel(store=store)
    consent = consent_panel(store=store)
    stock_alerts = {"consent_text": stock_consent_text(store), "max_length": MAX_CONSENT_TEXT}
    health = store_health(store=store)
    state["version"] = hashlib.sha256(json.dumps(
        [state, authority, failed, alerts, consent, stock_alerts, {k: v for k, v in health.items() if k != "now"}],
        sort_keys=True, default=str,
    ).encode()).hexdigest()[:16]
    return {
        "store": store,
        "state": state,
        "authority": authority,
        "failed": failed,
        "alerts": alerts,
        "consent": consent,
        "stock_alerts": stock_alerts,
        "health": health,
        "connect_url": _connect_url(request, store, ctx),
    }


def app_page(request, *, store, bc_user_id: int, status=200):
    """The app page in BigCommerce's iframe; stores' install and load callbacks answer with it
    (settings.BIGCOMMERCE_APP_PAGE_VIEW)."""
    ctx = StoreContext(store_hash=store.store_hash, bc_user_id=bc_user_id)
    context = _panel_context(request, store, ctx)
    context["app_context"] = app_context_token(ctx)
    context["sync_now_wait"] = _seconds_until(context["state"]["sync_now_available_at"])
    response = render(request, "sync/app.html", context, status=status)
    response.xframe_options_exempt = True
    return response


def _state_json(request, store, ctx, *, error: str = "", status: int = 200):
    state = app_state(store=store)
    state["connect_url"] = _connect_url(request, store, ctx)
    if error:
        state["error"] = error
    return JsonResponse(state, status=status)


def _seconds_until(moment: str | None) -> int:
    """Whole seconds until an ISO moment of app_state (0: it has passed): "Sync now (available in 40 s)"."""
    if not moment:
        return 0
    return max(0, math.ceil((datetime.fromisoformat(moment) - timezone.now()).total_seconds()))


@require_GET
@app_context_required
def app_status(request, store, ctx):
    return _state_json(request, store, ctx)


@require_GET
@app_context_required
def app_panel(request, store, ctx):
    """The app page's panel, re-rendered for the poller (it swaps it in when the version changes)."""
    context = _panel_context(request, store, ctx)
    context["error"] = request.GET.get("error", "")[:300]
    context["sync_now_wait"] = _seconds_until(context["state"]["sync_now_available_at"])
    response = render(request, "sync/_panel.html", context)
    response["X-Panel-Version"] = context["state"]["version"]
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@app_context_required
def app_tracking(request, store, ctx):
    enabled = request.POST.get("enabled") == "1"
    refused = connection_tracking_set(store=store, enabled=enabled, by=store_user_label(store=store, bc_user_id=ctx.bc_user_id))
    return _state_json(request, store, ctx, error=refused, status=400 if refused else 200)


@require_POST
@app_context_required
def app_sync_now(request, store, ctx):
    refused = connection_sync_now(store=store, requested_by=store_user_label(store=store, bc_user_id=ctx.bc_user_id))
    return _state_json(request, store, ctx, error=refused, status=409 if refused else 200)


@require_POST
@app_context_required
def app_disconnect(request, store, ctx):
    refused = connection_disconnect(store=store, bc_user_id=ctx.bc_user_id)
    return _state_json(request, store, ctx, error=refused, status=403 if refused else 200)


@require_POST
@app_context_required
def app_managers(request, store, ctx):
    """The owner allows (allowed=1) or stops allowing (allowed=0) another store user to manage the connection."""
    user_id = request.POST.get("bc_user_id", "")
    if not (user_id.isascii() and user_id.isdigit() and len(user_id) < 19):
        return _state_json(request, store, ctx, error="Choose one of the store's users.", status=400)
    refused = connection_manager_set(store=store, by_bc_user_id=ctx.bc_user_id, bc_user_id=int(user_id),
                                     allowed=request.POST.get("allowed") == "1")
    return _state_json(request, store, ctx, error=refused, status=403 if refused else 200)


@require_POST
@app_context_required
def app_retry_failed(request, store, ctx):
    """The failed-records list's "Retry these": the same rules as Sync now (connections.connection_sync_now)."""
    refused = failed_records_retry(store=store, requested_by=store_user_label(store=store, bc_user_id=ctx.bc_user_id))
    return _state_json(request, store, ctx, error=refused, status=409 if refused else 200)


@require_POST
@app_context_required
def app_alerts(request, store, ctx):
    """E-mail me when syncing needs attention (enabled=1) or not (enabled=0): the owner and users they allow."""
    if not connection_manager_may(store=store, bc_user_id=ctx.bc_user_id):
        return _state_json(request, store, ctx, error="Only the store owner and users they allow can change alerts.",
                           status=403)
    alerts_set(store=store, enabled=request.POST.get("enabled") == "1",
               by=store_user_label(store=store, bc_user_id=ctx.bc_user_id))
    return _state_json(request, store, ctx)


def _consent_change(request, store, ctx, **choice):
    if not connection_manager_may(store=store, bc_user_id=ctx.bc_user_id):
        return _state_json(request, store, ctx, error="Only the store owner and users they allow can change this.",
                           status=403)
    consent_set(store=store, by=store_user_label(store=store, bc_user_id=ctx.bc_user_id), **choice)
    return _state_json(request, store, ctx)


@require_POST
@app_context_required
def app_consent_writeback(request, store, ctx):
    """Unsubscribes in Ortto update the store (enabled=1) or not (enabled=0)."""
    return _consent_change(request, store, ctx, writeback=request.POST.get("enabled") == "1")


@require_POST
@app_context_required
def app_consent_erase(request, store, ctx):
    """store/customer/deleted erases the person in Ortto (enabled=1) or keeps them (enabled=0, the default)."""
    return _consent_change(request, store, ctx, erase_on_delete=request.POST.get("enabled") == "1")


@require_POST
@app_context_required
def app_consent_hook(request, store, ctx):
    """The journey webhook's URL (op=show, made on first use) or a new one (op=rotate: the old one stops
    working): JSON {"hook_url"}, for the owner and the users they allow only."""
    if not connection_manager_may(store=store, bc_user_id=ctx.bc_user_id):
        return _state_json(request, store, ctx, error="Only the store owner and users they allow can see this URL.",
                           status=403)
    op = request.POST.get("op", "")
    if op not in ("show", "rotate"):
        return _state_json(request, store, ctx, error="Choose show or rotate.", status=400)
    url = hook_token_show(store=store, rotate=op == "rotate")
    response = JsonResponse({"hook_url": url, "rotated": op == "rotate"})
    response["Cache-Control"] = "no-store"
    return response


def _storefront_script_refresh(*, store, by: str) -> str:
    """Where the storefront script is installed, install it again with the store's new back-in-stock wording;
    "" when done or not installed, else what went wrong (the wording stays saved)."""
    connection = live_connection_get(store=store)
    if connection is None or not connection.tracking_enabled:
        return ""
    refused = tracking_enable(connection=connection, by=by)
    if refused:
        logger.warning("store %s: the back-in-stock wording is saved but the script was not updated: %s",
                       store.store_hash, refused)
        return "The wording is saved, but the storefront still shows the old one: " + refused
    return ""


@require_POST
@app_context_required
def app_stock_consent(request, store, ctx):
    """The back-in-stock form's consent wording (text; blank: the default), for the owner and users they allow."""
    if not connection_manager_may(store=store, bc_user_id=ctx.bc_user_id):
        return _state_json(request, store, ctx, error="Only the store owner and users they allow can change this.",
                           status=403)
    by = store_user_label(store=store, bc_user_id=ctx.bc_user_id)
    refused = stock_consent_set(store=store, text=request.POST.get("consent_text", "")[:10 * MAX_CONSENT_TEXT], by=by)
    if not refused:
        refused = _storefront_script_refresh(store=store, by=by)
    saved = not refused or refused.startswith("The wording is saved")
    return _state_json(request, store, ctx, error=refused, status=200 if saved else 400)
