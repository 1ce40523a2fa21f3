"""Short-lived signed tokens that carry "this store, this BigCommerce user" without cookies.

The app page lives in BigCommerce's iframe where third-party cookies may be blocked, so every request
from it carries an app-context token (in the X-App-Context header). The Connect button carries a
separate, shorter-lived connect token to the first-party connect tab. Both are signed with SECRET_KEY
under their own salt, so one can never be used as the other.
"""

import secrets
import time
from dataclasses import dataclass, field

from django.core import signing

APP_CONTEXT_SALT = "ortto-bridge.app-context"
APP_CONTEXT_MAX_AGE = 24 * 3600  # as long as BigCommerce's own load JWT
CONNECT_SALT = "ortto-bridge.connect"
CONNECT_MAX_AGE = 30 * 60


class ContextTokenError(Exception):
    pass


@dataclass(frozen=True)
class StoreContext:
    store_hash: str
    bc_user_id: int
    # When the token was signed (ms since the epoch; 0 when unknown): a token from before the user's removal
    # stays dead after the user is added back (stores.services.store_for_context). Not part of equality:
    # two tokens for the same store and user name the same context.
    issued_at_ms: int = field(default=0, compare=False)


def _dumps(ctx: StoreContext, salt: str, **extra) -> str:
    data = {"s": ctx.store_hash, "u": ctx.bc_user_id, "t": int(time.time() * 1000), **extra}
    return signing.dumps(data, salt=salt, compress=False)


def _loads(token: str | None, salt: str, max_age: int) -> StoreContext:
    if not token or len(token) > 1024:
        raise ContextTokenError("missing")
    try:
        data = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired:
        raise ContextTokenError("expired")
    except signing.BadSignature:
        raise ContextTokenError("invalid")
    try:
        return StoreContext(store_hash=str(data["s"]), bc_user_id=int(data["u"]), issued_at_ms=int(data.get("t") or 0))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ContextTokenError("invalid")


def app_context_token(ctx: StoreContext) -> str:
    return _dumps(ctx, APP_CONTEXT_SALT)


def app_context_read(token: str | None) -> StoreContext:
    return _loads(token, APP_CONTEXT_SALT, APP_CONTEXT_MAX_AGE)


def connect_token(ctx: StoreContext) -> str:
    # A nonce: connect tokens are single-use, and two made in the same second must still differ.
    return _dumps(ctx, CONNECT_SALT, n=secrets.token_urlsafe(6))


def connect_token_read(token: str | None) -> StoreContext:
    return _loads(token, CONNECT_SALT, CONNECT_MAX_AGE)
