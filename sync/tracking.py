"""Website tracking: Ortto's tracking script on the store's storefront, through BigCommerce's Scripts API.

One script per connection at most. Its uuid lives on the connection; enabling reuses it (checked with
a GET, merchants can delete scripts in Script Manager), reconnecting to another account rewrites it in
place for the new account, and un-ticking or disconnecting deletes it. The row only changes after
BigCommerce has confirmed: a refusal leaves both sides as they were.

Concurrency: one change per connection at a time. A short lease in the cache (Redis, or the database
cache table) is held while BigCommerce is called, and the result is written under select_for_update.
The row lock is not held across the HTTP calls: on SQLite every transaction locks the whole file
(IMMEDIATE mode), which would stall the workers and deadlock the sandbox, whose Scripts API writes to
the same database.
"""

import json
import logging
import re
import secrets
from contextlib import contextmanager

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from stores.bigcommerce import (
    BigCommerceAuthError,
    BigCommerceClient,
    BigCommerceError,
    BigCommerceNotFound,
    BigCommerceRateLimited,
    BigCommerceRequestError,
    BigCommerceUnavailable,
    store_client,
)
from stores.models import Store
from sync.catalog.preferences import stock_consent_text
from sync.catalog.script import product_journeys_js
from sync.models import Connection, OrttoAccount

logger = logging.getLogger(__name__)

SCRIPT_NAME = "Ortto tracking (Ortto Bridge)"

# Ortto's capture endpoint and loader per instance region (docs/ortto-contract.md §6).
CAPTURE_HOSTS = {
    OrttoAccount.Region.DEFAULT: ("https://capture-api-us.ortto.app/", "https://cdn2l.ink/app.js"),
    OrttoAccount.Region.EU: ("https://capture-api-eu.ortto.app/", "https://cdneu.net/app.js"),
    OrttoAccount.Region.AU: ("https://capture-api-au.ortto.app/", "https://cdn2l.ink/app.js"),
}

# Ortto's tracking keys are base64url without padding. Anything else is refused rather than escaped:
# the key is pasted by a person and lands inside a script on every storefront page.
TRACKING_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,200}")

# The owner waits on these calls (and the change lease is held meanwhile): retry a little, not the
# minutes a background sync allows itself.
INTERACTIVE_MAX_ATTEMPTS = 2
INTERACTIVE_MAX_TOTAL_SLEEP_SECONDS = 3.0

# Longer than the slowest call sequence (2 attempts x HTTP_TIMEOUT_SECONDS, a few of them), so a
# lease never expires under a change in progress; a crashed process frees it after this.
LEASE_SECONDS = 180
BUSY = "Tracking is being changed right now. Wait a moment, then try again."

FIELDS = ["tracking_enabled", "tracking_script_uuid", "tracking_changed_at", "tracking_changed_by"]


class TrackingKeyInvalid(ValueError):
    pass


def tracking_key_valid(tracking_key: str) -> bool:
    return bool(tracking_key) and TRACKING_KEY_PATTERN.fullmatch(tracking_key) is not None


def tracking_snippet(*, tracking_key: str, region: str) -> str:
    """Ortto's tracking code for one account, as the single <script> tag the Scripts API accepts."""
    if not tracking_key_valid(tracking_key):
        raise TrackingKeyInvalid("A tracking key may contain only letters, digits, '-' and '_'.")
    if region not in CAPTURE_HOSTS:
        raise ValueError(f"unknown Ortto region {region!r}")
    capture_api, app_js = CAPTURE_HOSTS[region]
    # json.dumps quotes the values as JS strings; the key is already restricted to [A-Za-z0-9_-].
    key, api, src = json.dumps(tracking_key), json.dumps(capture_api), json.dumps(app_js)
    return (
        "<script>\n"
        "window.ap3c = window.ap3c || {};\n"
        "var ap3c = window.ap3c;\n"
        "ap3c.cmd = ap3c.cmd || [];\n"
        f"ap3c.cmd.push(function() {{ ap3c.init({key}, {api}); ap3c.track({{v: 0}}); }});\n"
        "ap3c.activity = function(act) { ap3c.act = (ap3c.act || []); ap3c.act.push(act); };\n"
        "(function() {\n"
        "  var s = document.createElement('script'); s.type = 'text/javascript'; s.async = true;\n"
        f"  s.src = {src};\n"
        "  var t = document.getElementsByTagName('script')[0]; t.parentNode.insertBefore(s, t);\n"
        "})();\n"
        "</script>"
    )


def tracking_script_payload(*, account: OrttoAccount, store_hash: str = "") -> dict:
    """The Scripts API body (POST and PUT) that installs `account`'s tracking code; with the store's hash, also
    the product journeys' part (sync/catalog/script.py) inside the same <script> tag."""
    html = tracking_snippet(tracking_key=account.tracking_key, region=account.region)
    if store_hash:
        consent = stock_consent_text(Store.objects.filter(store_hash=store_hash).first())  # the app page's wording
        html = html[:-len("</script>")] + product_journeys_js(store_hash=store_hash, consent_text=consent) + "</script>"
    return {
        "name": SCRIPT_NAME,
        "description": (
            f"Ortto's website tracking code for the Ortto account {account.business_name} ({account.name}). "
            "Loads only for shoppers whose cookie consent allows analytics. Managed by the Ortto Bridge app: "
            "turn it off there under Step 2."
        )[:1000],
        "html": html,
        "kind": "script_tag",
        "load_method": "default",  # the only method the Scripts API allows for script_tag
        "location": "head",
        # Storefront pages only: `all_pages` would add checkout, which needs the Checkout Content scope
        # the app does not request (store_v2_content covers storefront scripts).
        "visibility": "storefront",
        # Behind the store's cookie-consent banner the script loads only for shoppers who allow analytics.
        "consent_category": "analytics",
        # BigCommerce removes it by itself when the app is uninstalled or its token revoked.
        "auto_uninstall": True,
        "enabled": True,
    }


# --- helpers ------------------------------------------------------------------------------------


def _client(connection: Connection) -> BigCommerceClient | None:
    store = connection.store
    if not store.is_installed or not store.access_token:
        return None
    return store_client(
        store, max_attempts=INTERACTIVE_MAX_ATTEMPTS, max_total_sleep=INTERACTIVE_MAX_TOTAL_SLEEP_SECONDS,
    )


def _bigcommerce_reason(exc: BigCommerceError) -> str:
    if isinstance(exc, BigCommerceAuthError):
        if exc.status == 403:
            return ("BigCommerce refused: the app is missing the permission to manage storefront scripts "
                    "(Content: modify). Update the app's permissions in your control panel, then try again.")
        return "BigCommerce no longer accepts this app's access to your store. Reinstall the app, then try again."
    if isinstance(exc, (BigCommerceUnavailable, BigCommerceRateLimited)):
        return "BigCommerce is not answering right now. Try again in a few minutes."
    if isinstance(exc, BigCommerceRequestError):
        detail = _error_title(exc.body)
        return "BigCommerce did not accept the script" + (f": {detail}" if detail else "") + "."
    return "BigCommerce gave an unexpected answer. Try again in a few minutes."


def _error_title(body) -> str:
    if isinstance(body, dict):
        for key in ("title", "message", "error"):
            if isinstance(body.get(key), str) and body[key].strip():
                return body[key].strip().rstrip(".")[:200]
    return ""


def _locked(pk: int) -> Connection:
    return Connection.objects.select_for_update().select_related("account", "store").get(pk=pk)


def _sync_instance(target: Connection, source: Connection) -> None:
    """Let the caller's instance show what was saved."""
    for name in FIELDS:
        setattr(target, name, getattr(source, name))


def _install(client: BigCommerceClient, *, uuid: str, payload: dict) -> tuple[str, bool]:
    """Put `payload` in the script `uuid` if it still exists, else create one. Returns (uuid, created)."""
    if uuid and client.get_script(uuid) is not None:
        try:
            script = client.update_script(uuid, payload)
            return script.get("uuid") or uuid, False
        except BigCommerceNotFound:
            pass  # deleted between the GET and the PUT: create it again
    script = client.create_script(payload)
    created_uuid = script.get("uuid") or ""
    if not created_uuid:
        raise BigCommerceError("POST /v3/content/scripts -> answer without a uuid")
    return created_uuid, True


# --- services -----------------------------------------------------------------------------------


@contextmanager
def _lease(*pks: int):
    """Hold the change lease of each connection; yields False (holding none) when one is taken."""
    token = secrets.token_hex(8)
    held: list[str] = []
    try:
        for pk in sorted(set(pks)):
            key = f"sync.tracking.lease:{pk}"
            if not cache.add(key, token, LEASE_SECONDS):
                break
            held.append(key)
        else:
            yield True
            return
        yield False
    finally:
        for key in held:
            if cache.get(key) == token:
                cache.delete(key)


def _save(pk: int, **values) -> Connection:
    with transaction.atomic():
        locked = _locked(pk)
        for name, value in values.items():
            setattr(locked, name, value)
        locked.save(update_fields=FIELDS)
    return locked


def tracking_enable(*, connection: Connection, by: str) -> str:
    """Install (or refresh) the tracking script for the connection's account.

    Returns "" when it is installed, else a message for the owner; on refusal nothing has changed.
    """
    with _lease(connection.pk) as acquired:
        if not acquired:
            return BUSY
        current = Connection.objects.select_related("account", "store").get(pk=connection.pk)
        if current.state == Connection.State.DISCONNECTED:
            return "Connect an Ortto account before enabling tracking."
        if current.state == Connection.State.NEEDS_RECONNECT:
            return "Ortto no longer accepts this connection's API key. Reconnect first."
        account = current.account
        if not account.tracking_key:
            return "The connected Ortto account has no tracking key. Reconnect and add it to enable tracking."
        if not tracking_key_valid(account.tracking_key):
            return ("The connected Ortto account's tracking key is not valid (only letters, digits, '-' and '_'). "
                    "Copy it again from Ortto › Data sources › Tracking code and reconnect.")
        client = _client(current)
        if client is None:
            return "This store has uninstalled the app. Install it again first."
        try:
            uuid, created = _install(client, uuid=current.tracking_script_uuid,
                                     payload=tracking_script_payload(account=account,
                                                                     store_hash=current.store.store_hash))
        except BigCommerceError as exc:
            logger.warning("store %s: installing the tracking script failed: %s", current.store.store_hash, exc.message)
            return "Tracking was not enabled. " + _bigcommerce_reason(exc)
        values = {"tracking_enabled": True, "tracking_script_uuid": uuid}
        if created or not current.tracking_enabled or uuid != current.tracking_script_uuid:
            # "Since when" is when the script went in, not the last click on an already-ticked box.
            values.update(tracking_changed_at=timezone.now(), tracking_changed_by=by[:255])
        saved = _save(current.pk, **values)
    _sync_instance(connection, saved)
    logger.info("store %s: tracking script %s %s for account %s by %s", current.store.store_hash, uuid,
                "created" if created else "updated", account.pk, by)
    return ""


def tracking_disable(*, connection: Connection, by: str) -> str:
    """Remove the tracking script. A script that is already gone counts as removed.

    Returns "" when it is gone, else a message for the owner; on refusal nothing has changed.
    """
    with _lease(connection.pk) as acquired:
        if not acquired:
            return BUSY
        current = Connection.objects.select_related("store").get(pk=connection.pk)
        uuid = current.tracking_script_uuid
        client = _client(current) if uuid else None
        # Without a token the app is uninstalled and auto_uninstall has removed the script already.
        if client is not None:
            try:
                client.delete_script(uuid)
            except BigCommerceError as exc:
                logger.warning("store %s: removing tracking script %s failed: %s",
                               current.store.store_hash, uuid, exc.message)
                return "Tracking is still on. " + _bigcommerce_reason(exc)
        values = {"tracking_enabled": False, "tracking_script_uuid": ""}
        if current.tracking_enabled or uuid:
            values.update(tracking_changed_at=timezone.now(), tracking_changed_by=by[:255])
        saved = _save(current.pk, **values)
    _sync_instance(connection, saved)
    if uuid:
        logger.info("store %s: tracking script %s removed by %s", current.store.store_hash, uuid, by)
    return ""


def tracking_move(*, old: Connection, new: Connection, by: str) -> None:
    """The store switched accounts while tracking was on: point the same script at the new account.

    The new connection takes over the script's uuid. When the new account has no (valid) tracking key
    the script is removed and tracking stays off (a script BigCommerce would not delete keeps its uuid on
    the new connection, so enabling later rewrites it instead of adding a second). If BigCommerce
    refuses the update, the script is removed rather than left sending visits to the account the owner
    just left; if even that fails, the new connection keeps the uuid with tracking on, so the page shows
    it and un-ticking retries the removal.
    """
    with _lease(old.pk, new.pk) as acquired:
        if not acquired:
            # A change of the old connection is in flight (an un-tick racing the reconnect): leave the
            # script with the old row, where support can see it, rather than guess.
            logger.warning("store %s: tracking change in progress; script not moved to connection %s",
                           new.store.store_hash, new.pk)
            return
        old_row = Connection.objects.get(pk=old.pk)
        new_row = Connection.objects.select_related("account", "store").get(pk=new.pk)
        uuid = old_row.tracking_script_uuid
        store_hash = new_row.store.store_hash
        client = _client(new_row)
        account = new_row.account

        keep_uuid, enabled = "", False
        if client is None:
            pass  # uninstalled: auto_uninstall removed the script
        elif tracking_key_valid(account.tracking_key):
            try:
                keep_uuid, _ = _install(client, uuid=uuid,
                                        payload=tracking_script_payload(account=account, store_hash=store_hash))
                enabled = True
            except BigCommerceError as exc:
                logger.warning("store %s: moving tracking script %s to account %s failed: %s",
                               store_hash, uuid, account.pk, exc.message)
                keep_uuid = _remove_or_keep(client, uuid, store_hash)
                enabled = bool(keep_uuid)
        elif uuid:
            logger.info("store %s: account %s has no usable tracking key; removing tracking script %s",
                        store_hash, account.pk, uuid)
            # Tracking stays off; a uuid that could not be removed is kept so the next enable reuses it.
            keep_uuid = _remove_or_keep(client, uuid, store_hash)

        now, who = timezone.now(), by[:255]
        with transaction.atomic():
            saved_old = _save(old.pk, tracking_enabled=False, tracking_script_uuid="",
                              tracking_changed_at=now, tracking_changed_by=who)
            saved_new = _save(new.pk, tracking_enabled=enabled, tracking_script_uuid=keep_uuid,
                              tracking_changed_at=now, tracking_changed_by=who)
    _sync_instance(old, saved_old)
    _sync_instance(new, saved_new)


def _remove_or_keep(client: BigCommerceClient, uuid: str, store_hash: str) -> str:
    """Delete the script; return "" when it is gone, else its uuid (still on the storefront)."""
    if not uuid:
        return ""
    try:
        client.delete_script(uuid)
        return ""
    except BigCommerceError as exc:
        logger.error("store %s: tracking script %s could not be removed: %s", store_hash, uuid, exc.message)
        return uuid
