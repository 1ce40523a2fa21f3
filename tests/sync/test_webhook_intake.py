"""POST /bigcommerce/webhooks/: authenticate, de-duplicate, store, answer 200 at once."""

import json

import pytest

from stores.models import WebhookEvent
from sync.models import SyncRun

pytestmark = pytest.mark.django_db

URL = "/bigcommerce/webhooks/"
SECRET = "s3cret-value"


def payload(scope="store/customer/updated", id=7, hash="abc", created_at=1735000000, producer="stores/abc123", **extra):
    return {"scope": scope, "store_id": "1", "data": {"type": scope.split("/")[1], "id": id, **extra},
            "hash": hash, "created_at": created_at, "producer": producer}


@pytest.fixture(autouse=True)
def _fresh_intake_memo(monkeypatch):
    # Each test starts as a new process would: no store remembered by the intake.
    monkeypatch.setattr("sync.intake.webhooks._KNOWN_STORES", {})


@pytest.fixture
def store(make_account, make_connection, make_store):
    store = make_store("abc123", webhook_secret=SECRET)
    make_connection(store, make_account())
    return store


def post(client, body, secret=SECRET, **kwargs):
    headers = {"HTTP_X_BRIDGE_WEBHOOK_SECRET": secret} if secret is not None else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **headers, **kwargs)


def test_valid_delivery_is_stored_and_answered_with_an_empty_200(client, store, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, payload())
    assert response.status_code == 200 and response.content == b""
    event = WebhookEvent.objects.get()
    assert (event.resource, event.resource_id, event.status) == ("customers", 7, WebhookEvent.Status.PENDING)
    run = SyncRun.objects.get()
    assert run.kind == SyncRun.Kind.WEBHOOK and len(callbacks) == 1  # the run is enqueued after commit


def test_redelivery_is_counted_not_stored_twice(client, store):
    assert post(client, payload()).status_code == 200
    assert post(client, payload()).status_code == 200
    event = WebhookEvent.objects.get()
    assert event.duplicates == 1


def test_deliveries_while_a_run_is_active_are_coalesced(client, store):
    post(client, payload(id=1))
    post(client, payload(id=2, hash="other"))
    assert WebhookEvent.objects.count() == 2 and SyncRun.objects.count() == 1


@pytest.mark.parametrize("secret", [None, "", "wrong"])
def test_missing_or_wrong_secret_is_refused(client, store, secret):
    assert post(client, payload(), secret=secret).status_code == 401
    assert not WebhookEvent.objects.exists()


def test_unknown_or_uninstalled_store_is_refused_like_a_bad_secret(client, store):
    assert post(client, payload(producer="stores/nope")).status_code == 401
    store.is_installed = False
    store.save()
    assert post(client, payload()).status_code == 401


@pytest.mark.parametrize("body", [
    b"not json", b"[]", json.dumps({"scope": "store/customer/updated"}),
    json.dumps(payload(producer="apps/x")), json.dumps({**payload(), "data": {"type": "customer"}}),
    json.dumps({**payload(), "created_at": "soon"}),
])
def test_malformed_payloads_get_400(client, store, body):
    assert post(client, body).status_code == 400


def test_oversized_body_gets_413(client, store):
    big = payload(padding="x" * 70_000)
    assert post(client, big).status_code == 413


def test_only_post_is_allowed(client, store):
    assert client.get(URL).status_code == 405


def test_scopes_the_bridge_does_not_process_are_stored_as_ignored(client, store):
    assert post(client, payload(scope="store/customer/deleted")).status_code == 200
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.IGNORED
    assert not SyncRun.objects.exists()


def test_address_events_point_at_their_customer(client, store):
    post(client, payload(scope="store/customer/address/updated", id=99, address={"customer_id": 7}))
    assert WebhookEvent.objects.get().resource_id == 7


def test_a_new_secret_takes_effect_at_once(client, store):
    """The decrypted secret is memoised by its ciphertext: a rotated secret is a new entry, never a stale one."""
    assert post(client, payload(hash="a")).status_code == 200
    store.webhook_secret = "rotated-secret"
    store.save()
    assert post(client, payload(hash="b")).status_code == 401
    assert post(client, payload(hash="c"), secret="rotated-secret").status_code == 200


def test_uninstall_refuses_the_next_delivery(client, store):
    from stores.services import store_uninstall

    assert post(client, payload(hash="a")).status_code == 200
    store_uninstall(store=store)
    assert post(client, payload(hash="b")).status_code == 401
    assert WebhookEvent.objects.count() == 1


def test_duplicates_are_counted_on_every_redelivery_and_ignored_scopes_too(client, store):
    for _ in range(3):
        assert post(client, payload()).status_code == 200
    for _ in range(2):
        assert post(client, payload(scope="store/customer/deleted", hash="gone")).status_code == 200
    assert sorted(WebhookEvent.objects.values_list("status", "duplicates")) == [
        (WebhookEvent.Status.IGNORED, 1), (WebhookEvent.Status.PENDING, 2)]
    assert SyncRun.objects.count() == 1


def test_portable_path_without_upsert_behaves_the_same(client, store, monkeypatch):
    """Databases without INSERT ... ON CONFLICT ... RETURNING take the insert-or-IntegrityError path."""
    from sync.intake import webhooks

    monkeypatch.setattr(webhooks, "_can_upsert", lambda connection: False)
    monkeypatch.setattr(webhooks, "_INTAKE_SQL", {})
    assert post(client, payload()).status_code == 200
    assert post(client, payload()).status_code == 200
    assert post(client, payload(hash="other")).status_code == 200
    assert sorted(WebhookEvent.objects.values_list("duplicates", flat=True)) == [0, 1]
    assert SyncRun.objects.count() == 1


def test_deliveries_skip_browser_middleware_but_keep_its_security_answers(client, store):
    """WebhookIntakeMiddleware short-cuts this one path; the answer's headers and host check stay."""
    from django.urls import reverse

    from sync.intake.hooks import WEBHOOK_PATH

    assert reverse("bigcommerce:webhooks") == WEBHOOK_PATH
    response = post(client, payload())
    assert response.status_code == 200 and response.content == b""
    assert response["Content-Length"] == "0" and response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff" and response["Referrer-Policy"] == "same-origin"
    assert "Set-Cookie" not in response and not response.cookies
    assert post(client, payload(hash="h2"), HTTP_HOST="evil.example").status_code == 400
    assert WebhookEvent.objects.count() == 1


def test_a_known_store_costs_one_write_and_is_still_checked_on_every_delivery(client, store):
    """After a first delivery the store read is skipped: the upsert itself re-checks install + secret."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from stores.models import Store

    def statements(body):
        with CaptureQueriesContext(connection) as ctx:
            assert post(client, body).status_code == 200
        # (the test's own transaction adds a savepoint around the upsert; a web request has none)
        return [q["sql"].split()[0] for q in ctx.captured_queries
                if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))]

    assert statements(payload(hash="first"))[:2] == ["SELECT", "INSERT"]  # the store is read once
    assert statements(payload(hash="second")) == ["INSERT", "SELECT"]  # the upsert, the active-run EXISTS
    assert statements(payload(hash="second")) == ["INSERT"]  # a redelivery: the upsert only
    # Changed behind this process's back (another process, the admin): refused on the next delivery.
    Store.objects.filter(pk=store.pk).update(is_installed=False)
    assert post(client, payload(hash="third")).status_code == 401
    Store.objects.filter(pk=store.pk).update(is_installed=True)
    assert post(client, payload(hash="third")).status_code == 200
    assert WebhookEvent.objects.count() == 3


@pytest.mark.parametrize("allowed", [True, False])
def test_on_postgresql_the_intake_statements_are_prepared_unless_turned_off(client, store, settings, allowed):
    """sync/intake/cursors.py: prepared once per connection (WEBHOOK_INTAKE_PREPARED=0 behind a pooler that
    cannot keep them); a delivery is stored or counted the same either way."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    settings.WEBHOOK_INTAKE_PREPARED = allowed
    for n in range(3):
        assert post(client, payload(hash=f"p{n}")).status_code == 200
    assert post(client, payload(hash="p0")).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    intake = [sql for sql in prepared if "webhookevent" in sql or "syncrun" in sql]
    assert len(intake) == (2 if allowed else 0), prepared  # the upsert and the active-run EXISTS
    assert WebhookEvent.objects.count() == 3 and WebhookEvent.objects.get(dedup_key__isnull=False,
                                                                          payload__hash="p0").duplicates == 1


def test_prepared_statements_stay_off_behind_a_pooler_or_when_turned_off(settings):
    from types import SimpleNamespace

    from sync.intake.cursors import prepared_statements_allowed

    settings.WEBHOOK_INTAKE_PREPARED = True
    assert prepared_statements_allowed(SimpleNamespace(settings_dict={"DISABLE_SERVER_SIDE_CURSORS": False}))
    # Django's documented setting for PgBouncer in transaction mode turns them off too.
    assert not prepared_statements_allowed(SimpleNamespace(settings_dict={"DISABLE_SERVER_SIDE_CURSORS": True}))
    settings.WEBHOOK_INTAKE_PREPARED = False
    assert not prepared_statements_allowed(SimpleNamespace(settings_dict={}))
