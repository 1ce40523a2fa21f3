"""Verification of BigCommerce's `signed_payload_jwt` (load, uninstall and remove-user callbacks)."""

import hashlib
import re
from dataclasses import dataclass

import jwt
from django.conf import settings

from .json_limits import MAX_ID

STORE_SUB = re.compile(r"^stores/(?P<hash>[A-Za-z0-9]{1,64})$")
# BigCommerce's own example has nbf a few seconds before iat; allow for clock skew both ways.
LEEWAY_SECONDS = 60


class SignedPayloadError(Exception):
    """The payload cannot be trusted. `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 401):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class SignedPayload:
    store_hash: str
    user_id: int
    user_email: str
    owner_id: int | None
    owner_email: str
    url: str
    channel_id: int | None
    issued_at: int = 0
    # BigCommerce's `jti` (a UUID per token; the hash of the token if a payload lacks one) and `exp`: what a
    # load needs to refuse the same token twice (stores.services.signed_payload_spend).
    token_id: str = ""
    expires_at: int = 0


def signed_payload_verify(token: str | None) -> SignedPayload:
    """Check signature (HS256, client secret), audience, issuer, expiry and subject; return the claims."""
    if not token:
        raise SignedPayloadError("Missing signed_payload_jwt.", status=400)
    if len(token) > 8192 or token.count(".") != 2:
        raise SignedPayloadError("Malformed signed_payload_jwt.", status=400)
    try:
        claims = jwt.decode(
            token,
            settings.BIGCOMMERCE_CLIENT_SECRET,
            algorithms=["HS256"],
            audience=settings.BIGCOMMERCE_CLIENT_ID,
            issuer="bc",
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "nbf", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise SignedPayloadError("This link has expired. Open the app again from your control panel.")
    except jwt.InvalidAudienceError:
        raise SignedPayloadError("This payload was signed for another app.")
    except jwt.InvalidIssuerError:
        raise SignedPayloadError("This payload was not issued by BigCommerce.")
    except jwt.ImmatureSignatureError:
        raise SignedPayloadError("This payload is not valid yet.")
    except jwt.InvalidSignatureError:
        raise SignedPayloadError("The payload's signature is not valid.")
    except jwt.DecodeError:
        raise SignedPayloadError("Malformed signed_payload_jwt.", status=400)
    except jwt.InvalidTokenError as exc:
        raise SignedPayloadError(f"The payload is not valid ({exc.__class__.__name__}).")

    match = STORE_SUB.match(str(claims.get("sub", "")))
    user = claims.get("user")
    owner = claims.get("owner") or {}
    if not match or not isinstance(user, dict) or not isinstance(owner, dict):
        raise SignedPayloadError("The payload does not name a store and a user.", status=400)
    try:
        user_id = int(user["id"])
        owner_id = int(owner["id"]) if owner.get("id") is not None else None
    except (KeyError, TypeError, ValueError, OverflowError):
        raise SignedPayloadError("The payload does not name a store and a user.", status=400)
    if not 0 < user_id <= MAX_ID or not (owner_id is None or 0 < owner_id <= MAX_ID):
        raise SignedPayloadError("The payload's user id is out of range.", status=400)
    try:
        issued_at = int(claims["iat"])
        expires_at = int(claims["exp"])
    except (TypeError, ValueError, OverflowError):
        raise SignedPayloadError("The payload's issue or expiry time is not valid.", status=400)
    jti = claims.get("jti")
    token_id = jti if isinstance(jti, str) and 0 < len(jti) <= 64 else hashlib.sha256(token.encode()).hexdigest()
    channel = claims.get("channel_id")
    return SignedPayload(
        store_hash=match["hash"],
        user_id=user_id,
        user_email=str(user.get("email") or "")[:254],
        owner_id=owner_id,
        owner_email=str(owner.get("email") or "")[:254],
        url=str(claims.get("url") or "/"),
        channel_id=channel if isinstance(channel, int) and 0 <= channel <= MAX_ID else None,
        issued_at=issued_at,
        token_id=token_id,
        expires_at=expires_at,
    )
