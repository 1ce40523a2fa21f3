"""Shared fixtures. The suite runs with the sandbox mounted (SANDBOX=1, set by `make test`). Work handed to
django-q2 goes to the real broker as in production and runs only where a test says so: with the
`queued_work_runs_inline` fixture, the browser tests' `thread_worker`, or real `qcluster` processes
(tests/reliability).

The factories (`make_store`, `make_user`, `make_account`, `make_connection`, `signed_payload`) are fixtures
that return a function: a test asks for the ones it uses and calls them as often as it needs."""

import os

os.environ.setdefault("SANDBOX", "1")

import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import jwt  # noqa: E402
import pytest  # noqa: E402
from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402

BROWSER_TESTS = Path(__file__).parent / "browser"


def pytest_collection_modifyitems(config, items):
    """A test served by a live server is `live` and one under tests/browser is `browser`, whatever its module
    says, so that `make test-fast` (-m "not live and not browser and not bench") never starts either."""
    for item in items:
        if "live_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.live)
        if BROWSER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.browser)


# --- Factories -------------------------------------------------------------------------------------


@pytest.fixture
def signed_payload():
    """signed_payload(store_hash, *, user_id, ...): a load/uninstall/remove-user JWT as BigCommerce signs it;
    keyword arguments break it on purpose (wrong secret, expired, other audience) or add claims."""

    def sign(store_hash="abc123", *, user_id=1001, owner_id=1001, secret=None, audience=None, issuer="bc",
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

    return sign


@pytest.fixture
def make_store(db):
    """make_store(store_hash, *, installed, owner_id, **fields): an installed Store with its owner as StoreUser."""
    from stores.models import Store, StoreUser

    def make(store_hash="abc123", *, installed=True, owner_id=1001, **fields):
        store = Store.objects.create(
            store_hash=store_hash, name=fields.pop("name", "Test Store"),
            access_token=fields.pop("access_token", "tok-" + store_hash),
            scopes=fields.pop("scopes", " ".join(settings.BIGCOMMERCE_REQUIRED_SCOPES)), is_installed=installed,
            owner_bc_id=owner_id, owner_email=f"user{owner_id}@example.com", installed_at=timezone.now(), **fields,
        )
        StoreUser.objects.create(store=store, bc_user_id=owner_id, email=f"user{owner_id}@example.com", is_owner=True)
        return store

    return make


@pytest.fixture
def make_user(db):
    """make_user(email, password): a bridge sign-in (the connect flow's user)."""
    from django.contrib.auth import get_user_model

    def make(email="owner@example.com", password="a-good-password"):
        return get_user_model().objects.create_user(username=email, email=email, password=password)

    return make


@pytest.fixture
def make_account(db):
    """make_account(*, members, name, business_name, region, api_key, tracking_key): an OrttoAccount."""
    from sync.models import OrttoAccount

    def make(*, members=(), name="acme-us", business_name="Acme (US)", region="default", api_key="key-acme-us",
             tracking_key="trk-acme"):
        account = OrttoAccount.objects.create(name=name, business_name=business_name, region=region, api_key=api_key,
                                              tracking_key=tracking_key, account_url=f"https://ortto.app/{name}/")
        for member in members:
            account.members.add(member)
        return account

    return make


@pytest.fixture
def make_connection(db):
    """make_connection(store, account, *, merge_strategy, state, user): a Connection, active by default."""
    from sync.models import Connection

    def make(store, account, *, merge_strategy=1, state=Connection.State.ACTIVE, user=None):
        return Connection.objects.create(store=store, account=account, merge_strategy=merge_strategy, state=state,
                                         connected_by=user, connected_at=timezone.now())

    return make


@pytest.fixture
def sandbox_live(live_server, settings):
    """Point the bridge at the sandbox served by pytest-django's live server, over real HTTP."""
    url = live_server.url
    settings.PUBLIC_URL = url
    settings.BIGCOMMERCE_API_URL = f"{url}/sandbox/bigcommerce/api"
    settings.BIGCOMMERCE_LOGIN_URL = f"{url}/sandbox/bigcommerce/login"
    settings.BIGCOMMERCE_CONTROL_PANEL_URL = f"{url}/sandbox/bigcommerce/store-{{store_hash}}/manage/app/{{app_id}}"
    settings.ORTTO_API_URL = f"{url}/sandbox/ortto/{{region}}"
    settings.BIGCOMMERCE_CART_RECOVERY_URL = (
        f"{url}/sandbox/bigcommerce/store-{{store_hash}}/storefront/cart.php?action=recover&token={{token}}")
    settings.BIGCOMMERCE_STOREFRONT_URL = f"{url}/sandbox/bigcommerce/store-{{store_hash}}/storefront"
    settings.BIGCOMMERCE_FRAME_ANCESTORS = [url]
    settings.CSRF_TRUSTED_ORIGINS = [url]
    return url


@pytest.fixture
def queued_work_runs_inline(monkeypatch):
    """Queued django-q2 work runs at once in the thread that queued it (after its transaction commits)."""
    from django.utils.module_loading import import_string

    def async_task(func, *args, **kwargs):
        (import_string(func) if isinstance(func, str) else func)(*args)
        return "inline"

    monkeypatch.setattr("django_q.tasks.async_task", async_task)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The database cache rolls back with each test; Redis (CI's PostgreSQL pass) does not, so sign-in
    lockouts and rate windows would leak from one test into the next."""
    from django.conf import settings
    from django.core.cache import cache

    if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        cache.clear()
    yield


@pytest.fixture
def sandbox_account(make_account):
    """sandbox_account(instance_name, **fields): an OrttoAccount for one of the seeded sandbox Ortto instances."""
    from sandbox.ortto.models import Instance
    from sandbox.ortto.seed import seed_ortto_instances

    def make(instance_name: str = "acme-us", **fields):
        seed_ortto_instances()
        instance = Instance.objects.get(name=instance_name)
        return make_account(name=instance.name, business_name=instance.business_name, region=instance.region,
                            api_key=instance.api_key, tracking_key=instance.tracking_key, **fields)

    return make


@pytest.fixture(autouse=True)
def _fresh_bad_request_budget():
    """The Ortto client's bad-request budget is process-wide: each test starts with none spent."""
    from sync.engine import concurrency
    from sync.ortto.client import _gates, bad_requests

    bad_requests.reset()
    _gates.clear()  # and no rate learned from an earlier test's 429s
    concurrency.reset()  # nor a merge concurrency limit found by one
    yield
    bad_requests.reset()
    concurrency.reset()
