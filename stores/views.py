"""BigCommerce callbacks and the app page shown in the control panel's iframe.

Views parse the request, call one service and render. The iframe never relies on cookies: the page
carries an app-context token and its scripts send it in the X-App-Context header.
"""

import functools
import hashlib
import json
import logging

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from sync import connections as sync_connections

from . import bigcommerce
from .app_context import ContextTokenError, StoreContext, app_context_read, app_context_token, connect_token
from .services import (CallbackRefused, StoreUnavailable, StoreUserRemoved, store_for_context, store_install, store_load,
                       store_uninstall_callback, store_user_remove)
from .signed_payload import SignedPayloadError, signed_payload_verify

logger = logging.getLogger(__name__)


def _message_page(request, *, title, message, status, detail=""):
    response = render(
        request, "stores/message.html", {"title": title, "message": message, "detail": detail}, status=status
    )
    response.xframe_options_exempt = True
    return response


def _reinstall_page(request):
    return _message_page(
        request,
        title="Please reinstall the app",
        message="This store has not installed Ortto Bridge, or has uninstalled it. Install it again from "
        "Apps › Marketplace in your BigCommerce control panel.",
        status=404,
    )


def _panel_context(request, store, ctx) -> dict:
    state = sync_connections.app_state(store=store)
    state["version"] = hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {
        "store": store,
        "state": state,
        "connect_url": request.build_absolute_uri(reverse("connect:start")) + "?token=" + connect_token(ctx),
    }


def app_page(request, *, store, bc_user_id: int, status=200):
    ctx = StoreContext(store_hash=store.store_hash, bc_user_id=bc_user_id)
    context = _panel_context(request, store, ctx)
    context["app_context"] = app_context_token(ctx)
    response = render(request, "stores/app.html", context, status=status)
    response.xframe_options_exempt = True
    return response


@require_GET
def auth_callback(request):
    """Single-click install: exchange the code for a permanent token, save the store, show the app."""
    code, scope, context = (request.GET.get(k, "") for k in ("code", "scope", "context"))
    if not (code and context.startswith("stores/")):
        return _message_page(
            request, title="Install could not start",
            message="BigCommerce's install request is missing its code or store. Start the install again.",
            status=400,
        )
    try:
        grant = bigcommerce.exchange_code(code=code, scope=scope, context=context)
    except bigcommerce.BigCommerceError as exc:
        logger.warning("token exchange failed for %s: %s", context, exc.status)
        return _message_page(
            request, title="BigCommerce did not complete the install",
            message="The install code was refused or has expired. Go back to Apps › Marketplace and click "
            "Install again.", detail=f"BigCommerce answered {exc.status or 'no response'}.", status=502,
        )
    name = domain = ""
    try:
        info = bigcommerce.BigCommerceClient(grant.store_hash, grant.access_token).store_information()
        name, domain = info.get("name") or "", info.get("domain") or ""
    except bigcommerce.BigCommerceError:
        logger.info("store information unavailable for %s; continuing without a name", grant.store_hash)
    outcome = store_install(grant=grant, store_name=name, store_domain=domain)
    if outcome.missing_scopes:
        response = render(
            request, "stores/scopes_missing.html", {"missing": outcome.missing_scopes, "granted": grant.scope.split()},
            status=403,
        )
        response.xframe_options_exempt = True
        return response
    user_id = (grant.user or {}).get("id") or outcome.store.owner_bc_id
    return app_page(request, store=outcome.store, bc_user_id=int(user_id))


@require_GET
def load_callback(request):
    try:
        payload = signed_payload_verify(request.GET.get("signed_payload_jwt"))
    except SignedPayloadError as exc:
        return _message_page(request, title="Could not verify this request", message=exc.message, status=exc.status)
    try:
        store, user = store_load(payload=payload)
    except StoreUnavailable:
        return _reinstall_page(request)
    except StoreUserRemoved:
        return _message_page(
            request, title="You no longer have access", status=403,
            message="You were removed from this store's users. Ask the store owner to add you again.",
        )
    return app_page(request, store=store, bc_user_id=user.bc_user_id)


def _server_callback(request, service):
    """uninstall / remove-user: called by BigCommerce's servers; JSON in, JSON out."""
    try:
        payload = signed_payload_verify(request.GET.get("signed_payload_jwt"))
    except SignedPayloadError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    try:
        service(payload=payload)
    except CallbackRefused as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    return JsonResponse({"status": "ok"})


@require_GET
def uninstall_callback(request):
    return _server_callback(request, store_uninstall_callback)


@require_GET
def remove_user_callback(request):
    return _server_callback(request, store_user_remove)


# --- The app page's own endpoints (called from the iframe with X-App-Context) --------------------


def app_context_required(view):
    """Resolve the X-App-Context header to (store, ctx) or refuse with JSON; the view gets both.

    The token is the CSRF defence for these endpoints: a cross-site form cannot set the header and an
    attacker cannot obtain the token. Django's cookie-based CSRF would not work in an iframe whose
    cookies the browser blocks, hence csrf_exempt.
    """

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request):
        try:
            ctx = app_context_read(request.headers.get("X-App-Context") or request.POST.get("app_context"))
            store = store_for_context(store_hash=ctx.store_hash, bc_user_id=ctx.bc_user_id)
        except ContextTokenError as exc:
            message = "Your session has expired. Reload the app." if str(exc) == "expired" else "Not signed in."
            return JsonResponse({"error": message}, status=401)
        except StoreUnavailable:
            return JsonResponse({"error": "This store has uninstalled the app."}, status=404)
        return view(request, store, ctx)

    return wrapper


def _state_json(request, store, ctx, *, error: str = "", status: int = 200):
    state = sync_connections.app_state(store=store)
    state["connect_url"] = request.build_absolute_uri(reverse("connect:start")) + "?token=" + connect_token(ctx)
    if error:
        state["error"] = error
    return JsonResponse(state, status=status)


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
    response = render(request, "stores/_panel.html", context)
    response["X-Panel-Version"] = context["state"]["version"]
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@app_context_required
def app_tracking(request, store, ctx):
    enabled = request.POST.get("enabled") == "1"
    refused = sync_connections.connection_tracking_set(store=store, enabled=enabled, by=f"bc-user:{ctx.bc_user_id}")
    return _state_json(request, store, ctx, error=refused, status=400 if refused else 200)


@require_POST
@app_context_required
def app_sync_now(request, store, ctx):
    refused = sync_connections.connection_sync_now(store=store, requested_by=f"bc-user:{ctx.bc_user_id}")
    return _state_json(request, store, ctx, error=refused, status=409 if refused else 200)


@require_POST
@app_context_required
def app_disconnect(request, store, ctx):
    sync_connections.connection_disconnect(store=store, by=f"bc-user:{ctx.bc_user_id}")
    return _state_json(request, store, ctx)
