"""Issue 24, low findings on the webhook receiver, over real HTTP against the live server: a delivery with
a valid secret never answers 500 whatever its scope (stored as ignored, or a clear 400), and a flood of
wrong-secret posts writes a warning a minute, not one per post."""

import json
import logging

import pytest
import requests

from stores.models import WebhookEvent
from sync.intake.hooks import SECRET_HEADER, WEBHOOK_PATH
from sync.intake.webhooks import refusal_log

from .harness import in_parallel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

SECRET = "s3cret-value"


@pytest.fixture(autouse=True)
def _fresh_intake(monkeypatch):
    monkeypatch.setattr("sync.intake.webhooks._KNOWN_STORES", {})
    monkeypatch.setattr(refusal_log, "_windows", {})


def deliver(base: str, scope, *, secret=SECRET, data=None, body=None, session=requests):
    body = body if body is not None else json.dumps({
        "scope": scope, "store_id": "1", "data": data or {"type": "x", "id": 7}, "hash": f"h-{scope!r}",
        "created_at": 1735000000, "producer": "stores/abc123"})
    return session.post(base + WEBHOOK_PATH, data=body, headers={"Content-Type": "application/json",
                                                                 SECRET_HEADER: secret}, timeout=30)


@pytest.mark.parametrize("scope", ["nonsense", "store", "store/", "/", "//", "store//x", "a" * 300,
                                   "store/customer", "store/customer/updated/extra", "é/ü", "tab\there",
                                   "line\nbreak"])
def test_any_scope_with_a_valid_secret_is_stored_as_ignored_never_a_500(live_server, make_store, scope):
    make_store("abc123", webhook_secret=SECRET)
    response = deliver(live_server.url, scope)
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEvent.Status.IGNORED
    assert event.payload["scope"] == scope  # nothing the store sent is lost
    assert deliver(live_server.url, scope).status_code == 200  # and a redelivery is counted
    assert WebhookEvent.objects.get().duplicates == 1


def test_a_payload_the_database_cannot_store_is_a_clear_400(live_server, make_store):
    make_store("abc123", webhook_secret=SECRET)
    body = '{"scope": "store/x\\u0000", "data": {"type": "x", "id": 7}, "created_at": 1735000000, ' \
           '"producer": "stores/abc123", "hash": "h"}'
    assert deliver(live_server.url, None, body=body).status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_flood_of_wrong_secret_posts_is_logged_once_a_minute(live_server, make_store, caplog):
    make_store("abc123", webhook_secret=SECRET)
    session = requests.Session()
    with caplog.at_level(logging.WARNING, logger="sync.intake.webhooks"):
        statuses = in_parallel([lambda: deliver(live_server.url, "store/customer/updated", secret="wrong",
                                                session=session).status_code] * 1500, threads=8)
    assert set(statuses) == {401}
    refusals = [r for r in caplog.records if r.name == "sync.intake.webhooks" and "refused" in r.getMessage()]
    assert 1 <= len(refusals) <= 2, [r.getMessage() for r in refusals]  # 1,500 posts: a line a minute at most


def test_the_count_of_unlogged_refusals_comes_with_the_next_line():
    from sync.intake.webhooks import RefusalLog

    log = RefusalLog()
    assert log.note("unauthorized", "198.51.100.7", now=0.0) == 0
    assert [log.note("unauthorized", "198.51.100.7", now=float(t)) for t in range(1, 40)] == [None] * 39
    assert log.note("unauthorized", "203.0.113.1", now=40.0) == 0  # another address has its own line
    assert log.note("unauthorized", "198.51.100.7", now=61.0) == 39
