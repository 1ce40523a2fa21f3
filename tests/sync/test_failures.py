"""Issue 26: failed records for the owner — plain reasons, the paginated list, "Retry these"."""

import pytest
from django.utils import timezone

from stores.app_context import StoreContext, app_context_token
from sync.health.failures import FAILED_PER_PAGE, failed_records_page, failing_records, failure_reason
from sync.models import Connection, SyncEvent, SyncRun

pytestmark = pytest.mark.django_db

# Every message the engine records for a failed record (sync/engine/people.py, commerce.py, carts.py), around
# Ortto's recorded per-item errors (docs/ortto-contract.md), and the owner's sentence for it.
KNOWN = [
    ("No email address: not sent to Ortto.", "has no e-mail address"),
    ("Not a valid email address: not sent to Ortto.", "is not a valid address"),
    ("Order without a valid email address: not sent to Ortto.", "order has no valid e-mail address"),
    ("Ortto refused the person (suppressed): Email is suppressed", "suppression list"),
    ("Ortto refused the person (invalid): str::email already belongs to person 0065a1", "Another person in Ortto"),
    ("Order not sent: its person could not be created in Ortto.", "refused the person who placed it"),
    ("Order status not sent: its person could not be merged into Ortto.", "new status was not sent"),
    ("Order totals not updated: Ortto refused the person (invalid): no detail", "order totals"),
    ("Abandoned cart for cart 9f3a not sent: Ortto refused it: activity refused.", "cart could not be sent"),
    ("Cart recovered for cart 9f3a not sent: its person could not be created.", "cart could not be sent"),
    ("Ortto refused the Placed order activity: activity refused", "refused the order's activity"),
    ("Ortto refused the Order status changed activity: invalid", "refused the order's activity"),
]


@pytest.mark.parametrize("message,plain", KNOWN)
def test_each_known_message_reads_as_a_plain_sentence(message, plain):
    reason = failure_reason(message)
    assert plain in reason
    assert "{" not in reason and "HTTP" not in reason and "Ortto refused the person (" not in reason


def test_an_unknown_refusal_says_ortto_refused_it_and_names_the_field():
    raw = ('Ortto refused the person (invalid): {"code":400,"error":"failed to validate field '
           'int:cm:bigcommerce-order-count in schema"}')
    assert failure_reason(raw) == "Ortto refused this record (it named the field “int:cm:bigcommerce-order-count”)."
    assert failure_reason("HTTP/1.1 500 <html>boom</html>") == "Ortto refused this record."
    assert failure_reason("") == "Ortto refused this record."


@pytest.fixture
def connected(make_store, make_account, make_connection):
    store = make_store("abc123")
    return make_connection(store, make_account())


def _failures(connection, count, *, resource="customers", run=None):
    run = run or SyncRun.objects.create(store=connection.store, connection=connection, kind=SyncRun.Kind.MANUAL,
                                        status=SyncRun.Status.PARTIAL, finished_at=timezone.now())
    SyncEvent.objects.bulk_create(
        SyncEvent(run=run, resource=resource, bc_id=n + 1, email=f"p{n}@x", message="Not a valid email address")
        for n in range(count))
    return run


def test_the_list_is_paginated_and_counts_each_record_once(connected):
    _failures(connected, FAILED_PER_PAGE + 5)
    _failures(connected, 3)  # the same three records failed again in a later run: still three records
    first = failed_records_page(store=connected.store)
    assert first["count"] == FAILED_PER_PAGE + 5 and first["pages"] == 2 and len(first["rows"]) == FAILED_PER_PAGE
    second = failed_records_page(store=connected.store, page=2)
    assert len(second["rows"]) == 5 and second["previous"] == 1 and second["next"] is None
    assert failed_records_page(store=connected.store, page=99)["page"] == 2
    row = first["rows"][0]
    assert row["kind"] == "Customer" and row["record"].startswith("p") and "not a valid address" in row["reason"]


def test_an_order_reads_as_its_number(connected):
    _failures(connected, 1, resource="orders")
    assert failed_records_page(store=connected.store)["rows"][0]["record"] == "Order #1"


def _post(client, store, path):
    token = app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=store.owner_bc_id))
    return client.post(path, HTTP_X_APP_CONTEXT=token)


def test_retry_these_queues_the_resync_failed_run_under_sync_now_rules(client, connected, monkeypatch):
    queued = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **kwargs: queued.append((func, args)))
    store = connected.store
    assert _post(client, store, "/bigcommerce/app/retry-failed").json()["error"] == "No failed records to retry."

    _failures(connected, 2)
    response = _post(client, store, "/bigcommerce/app/retry-failed")
    assert response.status_code == 200
    run = SyncRun.objects.get(store=store, kind=SyncRun.Kind.RETRY_FAILED)
    assert run.status == SyncRun.Status.QUEUED and run.requested_by == "user1001@example.com"

    # Like Sync now: one active run per store, and nothing while Ortto refuses the key.
    again = _post(client, store, "/bigcommerce/app/retry-failed")
    assert again.status_code == 409 and SyncRun.objects.filter(store=store, kind="retry_failed").count() == 1
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now())
    Connection.objects.filter(pk=connected.pk).update(state=Connection.State.NEEDS_RECONNECT)
    refused = _post(client, store, "/bigcommerce/app/retry-failed")
    assert refused.status_code == 409 and "Reconnect" in refused.json()["error"]


def test_retry_needs_the_app_context(client, connected):
    assert client.post("/bigcommerce/app/retry-failed").status_code in (401, 403)


def test_organization_errors_stay_in_the_admin(connected):
    _failures(connected, 1, resource="organizations")
    assert failing_records(store=connected.store).count() == 0
