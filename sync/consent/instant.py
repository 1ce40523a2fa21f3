"""The instant path for Ortto's unsubscribes: an endpoint an Ortto journey's webhook calls
(docs/ortto-contract.md, "Journey webhook"; docs/design.md §4, "Consent written back").

The store owner builds one journey in Ortto: people enter when "Unsubscribed from email" occurs, and a
"Send to webhook" action posts to this store's URL, `POST /ortto/unsubscribed/<store_hash>/?token=<secret>`.
Ortto's documented payload carries the person's `email` (and `contact_id`, the campaign, the run); Ortto signs
nothing, so the URL's per-store secret is what tells a delivery from a stranger's post. The secret is kept
encrypted (ConsentPreference.hook_token, so the owner can show the URL again), compared in constant time, in
the query string (which neither gunicorn's access log nor Django's request log writes, and the log filter
redacts `token=`), and never logged.

The body is never trusted: a delivery only names an email. The work is queued (django-q2) and the delivery
acknowledged at once; the task asks Ortto (`POST /v1/person/get`, one call) whether it really holds that person
unsubscribed, and only then writes back through the sweep's own code (writeback.writeback_record and
unsubscribes_write), so the ledger's no-ping-pong rule, the attempt limit and the counts are the same. A forged
or replayed delivery therefore costs one person/get and writes nothing unless Ortto agrees. The sweep's walk
stays the basic path: a delivery lost or refused here is found by it.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets

from django.conf import settings
from django.db.models import F
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from stores.bigcommerce import BigCommerceError, store_client
from stores.models import Store
from sync import queue, throttle
from sync.consent.writeback import email_filter, preference_of, unsubscribes_write, writeback_record
from sync.engine.mapping import clean_email, email_is_valid
from sync.models import Connection, ConsentPreference, PersonLedger
from sync.ortto.client import OrttoError
from sync.ortto.schema import ortto_client

logger = logging.getLogger("sync.consent")

# Ortto's payload is a dozen short fields (help.ortto.com a-626) plus up to a few chosen person fields.
MAX_BODY = 32 * 1024
# Ortto's servers post for every store from few addresses: a per-IP limit on accepted deliveries would let
# one store's burst (a sunset policy unsubscribing thousands) refuse every other store's. So: a per-store
# limit on deliveries, and a per-IP limit on refused secrets (guessing).
HOOK_STORE = throttle.Rule("ortto-hook-store", limit=600, window_seconds=60)
HOOK_FORGED_IP = throttle.Rule("ortto-hook-forged-ip", limit=20, window_seconds=10 * 60)
TOKEN_BYTES = 32
MAX_TOKEN = 128


def _answer(status: int, message: str, **extra) -> JsonResponse:
    # Ortto counts a delivery as successful only on a JSON answer (a-626: "{}" at minimum).
    response = JsonResponse({"ok": status < 400, "message": message, **extra}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def hook_url(store: Store, token: str) -> str:
    path = reverse("ortto-unsubscribed", kwargs={"store_hash": store.store_hash})
    return f"{settings.PUBLIC_URL.rstrip('/')}{path}?token={token}"


def hook_token_show(*, store: Store, rotate: bool = False) -> str:
    """The store's journey-webhook URL, made on first use; `rotate` replaces the secret, and the old URL
    stops working at once."""
    preference = preference_of(store)
    if rotate or not preference.hook_token:
        preference.hook_token = secrets.token_urlsafe(TOKEN_BYTES)
        preference.hook_rotated_at = timezone.now()
        preference.save(update_fields=["hook_token", "hook_rotated_at"])
    return hook_url(store, preference.hook_token)


def _email_of(body) -> str:
    """The email a delivery names: `email` at the top (the journey action's documented payload, a-626); our
    assumption for a webhook set up with added person fields: `str::email` at the top, or under `fields` or
    `contact`."""
    if not isinstance(body, dict):
        return ""
    candidates = [body.get("email"), body.get("str::email")]
    for key in ("fields", "contact", "person"):
        inner = body.get(key)
        if isinstance(inner, dict):
            candidates += [inner.get("email"), inner.get("str::email")]
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return clean_email(value)
    return ""


def _token_matches(preference: ConsentPreference | None, token: str) -> bool:
    expected = preference.hook_token if preference is not None and preference.hook_token else ""
    # Compared in constant time, and compared even when there is nothing to compare with, so the answer's
    # timing does not tell an unknown store from a wrong secret.
    same = hmac.compare_digest((expected or "x" * 43).encode(), token.encode())
    return bool(expected) and same


@csrf_exempt
def ortto_unsubscribed(request, store_hash: str):
    """One delivery of the store's unsubscribe journey. 202 queued; 200 ignored (write-back off); 4xx bad input,
    nothing changed."""
    if request.method != "POST":
        response = _answer(405, "Send the webhook as POST.")
        response["Allow"] = "POST"
        return response
    ip = throttle.client_ip(request)
    if throttle.throttle_open_at(rule=HOOK_FORGED_IP, subject=ip) is not None:
        return _answer(429, "Too many refused requests. Try again later.")
    token = request.GET.get("token", "")
    store = Store.objects.filter(store_hash=store_hash[:64], is_installed=True).first()
    preference = ConsentPreference.objects.filter(store=store).first() if store is not None else None
    if not token or len(token) > MAX_TOKEN or not token.isascii() or not _token_matches(preference, token):
        throttle.throttle_hit(rule=HOOK_FORGED_IP, subject=ip)
        return _answer(403, "Unknown or replaced webhook URL: copy it again from the app page in BigCommerce.")
    connection = Connection.objects.filter(store=store, state=Connection.State.ACTIVE).first()
    if connection is None:
        return _answer(409, "This store is not connected to Ortto now.")
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_BODY:
        return _answer(413, f"The body is over {MAX_BODY // 1024} KB: send the journey's payload only.")
    raw = request.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return _answer(413, f"The body is over {MAX_BODY // 1024} KB: send the journey's payload only.")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _answer(400, "The body is not JSON.")
    email = _email_of(body)
    if not email_is_valid(email):
        return _answer(400, "The body names no valid email: include the person's email in the webhook.")
    if throttle.throttle_hit(rule=HOOK_STORE, subject=store.store_hash) > HOOK_STORE.limit:
        return _answer(429, "Too many deliveries for this store: the next scheduled sync picks up the rest.")
    if not preference.writeback_enabled:
        return _answer(200, "Unsubscribes in Ortto do not update this store (switched off on the app page).",
                       queued=False)
    ConsentPreference.objects.filter(pk=preference.pk).update(
        hook_received_count=F("hook_received_count") + 1, hook_last_at=timezone.now())
    queue.enqueue("sync.consent.instant.hook_unsubscribe_verify", store.pk, email)
    return _answer(202, "Received: the bridge checks with Ortto and updates the store.", queued=True)


def hook_unsubscribe_verify(store_id: int, email: str) -> str:
    """The queued half of a delivery: is this a person the store subscribed, and does Ortto really hold them
    unsubscribed? Only then the write-back. Returns what it did (for tests and the task's result)."""
    store = Store.objects.filter(pk=store_id, is_installed=True).first()
    connection = Connection.objects.filter(store=store, state=Connection.State.ACTIVE).select_related(
        "account", "store").first() if store is not None else None
    if connection is None:
        return "not connected"
    preference = preference_of(store)
    if not preference.writeback_enabled:
        return "switched off"
    if not store.can_write_customers:
        return "no write scope"  # the app page says so; the sweep finds them once the scope is granted
    email = clean_email(email)
    if not PersonLedger.objects.filter(connection=connection, email=email, store_opt_in=True,
                                       sent_permission=True).exists():
        return "not a subscriber of this store"  # nothing the store subscribed: nothing to write back
    try:
        answer = ortto_client(connection).get_people(filter=email_filter([email]), fields=["str::email", "bol::p"],
                                                     limit=1)
    except OrttoError as exc:
        logger.warning("store %s: Ortto did not answer the unsubscribe check (%s); the sweep will",
                       store.store_hash, exc.status)
        return "ortto unavailable"
    confirmed = any(
        clean_email(str(((c or {}).get("fields") or {}).get("str::email") or "")) == email
        and ((c or {}).get("fields") or {}).get("bol::p") is False
        for c in answer.get("contacts") or [])
    if not confirmed:
        return "not unsubscribed in Ortto"
    if not writeback_record(connection, email, via_hook=True):
        return "already waiting"
    try:
        outcome = unsubscribes_write(connection, preference, bigcommerce=store_client(store), emails=[email])
    except BigCommerceError as exc:
        logger.warning("store %s: BigCommerce refused the unsubscribe write (%s); it stays pending",
                       store.store_hash, exc.status)
        return "pending"
    if outcome["written"]:
        return "written"
    return "not in the store" if outcome["unknown"] else "pending"
