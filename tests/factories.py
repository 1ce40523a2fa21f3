"""Small factory functions shared by tests."""

import time
import uuid

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from stores.models import Store, StoreUser
from sync.models import Connection, OrttoAccount


def signed_payload(store_hash="abc123", *, user_id=1001, owner_id=1001, secret=None, audience=None, issuer="bc",
                   exp_in=24 * 3600, iat_offset=0, algorithm="HS256", **extra):
    now = int(time.time()) + iat_offset
    claims = {
        "aud": audience or settings.BIGCOMMERCE_CLIENT_ID, "iss": issuer, "iat": now, "nbf": now - 5,
        "exp": now + exp_in, "jti": str(uuid.uuid4()), "sub": f"stores/{store_hash}",
        "user": {"id": user_id, "email": f"user{user_id}@example.com", "locale": "en-US"},
        "owner": {"id": owner_id, "email": f"user{owner_id}@example.com"}, "url": "/", "channel_id": None,
    }
    claims.update(extra)
    return jwt.encode(claims, secret or settings.BIGCOMMERCE_CLIENT_SECRET, algorithm=algorithm)


def make_store(store_hash="abc123", *, installed=True, owner_id=1001, **fields):
    store = Store.objects.create(
        store_hash=store_hash, name=fields.pop("name", "Test Store"), access_token=fields.pop("access_token", "tok-" + store_hash),
        scopes=fields.pop("scopes", " ".join(settings.BIGCOMMERCE_REQUIRED_SCOPES)), is_installed=installed,
        owner_bc_id=owner_id, owner_email=f"user{owner_id}@example.com", installed_at=timezone.now(), **fields,
    )
    StoreUser.objects.create(store=store, bc_user_id=owner_id, email=f"user{owner_id}@example.com", is_owner=True)
    return store


def make_user(email="owner@example.com", password="a-good-password"):
    return get_user_model().objects.create_user(username=email, email=email, password=password)


def make_account(*, members=(), name="acme-us", business_name="Acme (US)", region="default", api_key="key-acme-us",
                 tracking_key="trk-acme"):
    account = OrttoAccount.objects.create(name=name, business_name=business_name, region=region, api_key=api_key,
                                          tracking_key=tracking_key, account_url=f"https://ortto.app/{name}/")
    for member in members:
        account.members.add(member)
    return account


def make_connection(store, account, *, merge_strategy=1, state=Connection.State.ACTIVE, user=None):
    return Connection.objects.create(store=store, account=account, merge_strategy=merge_strategy, state=state,
                                     connected_by=user, connected_at=timezone.now())
