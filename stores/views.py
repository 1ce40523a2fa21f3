"""BigCommerce callbacks: install, load, uninstall, remove user; they answer with the app page.

Views parse the request, call one service and render. The iframe never relies on cookies: the page
carries an app-context token and its scripts send it in the X-App-Context header (app_context_required).
The app page itself and its endpoints are sync's (sync/connect/app_views.py): they show and change connections.
"""

import functools
import logging

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from . import bigcommerce
from .app_context import ContextTokenError, app_context_read
from .services import (
    CallbackRefused,
    SignedPayloadSpent,
    StoreUnavailable,
    StoreUserRemoved,
    store_for_context,
    store_install,
    store_load,
    store_uninstall_callback,
    store_user_remove,
)
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


def app_page(request, *, store, bc_user_id: int, status=200):
    """The app page, rendered by the view named in settings.BIGCOMMERCE_APP_PAGE_VIEW."""
    return import_string(settings.BIGCOMMERCE_APP_PAGE_VIEW)(request, store=store, bc_user_id=bc_user_id, status=status)


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
    if not import_string(settings.BIGCOMMERCE_INSTALL_THROTTLE)(request):
        return _message_page(
            request, title="Too many install attempts",
            message="This network has started too many installs in the last few minutes. Wait ten minutes, then "
                    "start the install again from Apps › Marketplace.", status=429,
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
        info = bigcommerce.store_client(grant).store_information()
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
    except SignedPayloadSpent:
        return _message_page(
            request, title="This link has already been used", status=403,
            message="Each link BigCommerce gives the app opens it once. Open the app again from Apps › My Apps "
                    "in your control panel.",
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


# --- For the app page's own endpoints (called from the iframe with X-App-Context) ---------------


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
            store = store_for_context(store_hash=ctx.store_hash, bc_user_id=ctx.bc_user_id,
                                      issued_at_ms=ctx.issued_at_ms)
        except ContextTokenError as exc:
            message = "Your session has expired. Reload the app." if str(exc) == "expired" else "Not signed in."
            return JsonResponse({"error": message}, status=401)
        except StoreUnavailable:
            return JsonResponse({"error": "This store has uninstalled the app."}, status=404)
        return view(request, store, ctx)

    return wrapper
