"""Erasure without HTTP: the keyed hash, the suppression rule and store/customer/deleted's retry."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from stores.models import WebhookEvent
from sync.consent import erasure
from sync.consent.erasure import customer_deleted_handle, email_hash, erased_filter
from sync.models import ConsentPreference, ErasureRecord, PersonLedger


@pytest.fixture
def connection(make_store, make_account, make_connection):
    return make_connection(make_store("abc123"), make_account())


def test_the_hash_is_keyed_and_the_same_for_one_email_however_written(settings):
    settings.ERASURE_HASH_KEY = "key-one"
    first = email_hash(" Ann@Example.com ")
    assert first == email_hash("ann@example.com") and "ann" not in first
    settings.ERASURE_HASH_KEY = "key-two"
    assert email_hash("ann@example.com") != first, "without the key a guess cannot be checked"


def test_an_erased_persons_old_records_are_left_out_and_a_newer_one_lifts_the_erasure(connection):
    store = connection.store
    erased_at = timezone.now().replace(microsecond=500000)
    record = ErasureRecord.objects.create(store=store, email_hash=email_hash("ann@x.io"), source="support",
                                          created_at=erased_at)
    old = {"email": "ann@x.io", "date_created": (erased_at - timedelta(days=30)).isoformat()}
    same_second = {"email": "ann@x.io", "date_created": erased_at.replace(microsecond=0).isoformat()}
    other = {"email": "bob@x.io", "date_created": old["date_created"]}
    kept, left_out = erased_filter(store, [old, same_second, other], email_of=lambda r: r["email"],
                                   created_of=erasure.created_at)
    assert kept == [other] and left_out == 2
    record.refresh_from_db()
    assert record.lifted_at is None

    new = {"email": "Ann@X.io", "date_created": (erased_at + timedelta(seconds=2)).isoformat()}
    kept, left_out = erased_filter(store, [new, old], email_of=lambda r: r["email"], created_of=erasure.created_at)
    assert kept == [new, old] and left_out == 0, "they came back: the erasure no longer applies"
    record.refresh_from_db()
    assert record.lifted_at is not None


def test_a_deleted_customer_whom_ortto_did_not_erase_is_kept_for_a_retry(connection, monkeypatch):
    store = connection.store
    ConsentPreference.objects.create(store=store, on_customer_deleted="erase")
    PersonLedger.objects.create(connection=connection, email="ann@x.io", bc_customer_id=9, synced_at=timezone.now())
    event = WebhookEvent.objects.create(store=store, dedup_key="k1", scope="store/customer/deleted",
                                        resource="customer", resource_id=9, payload={}, bc_created_at=timezone.now(),
                                        status=WebhookEvent.Status.IGNORED)
    monkeypatch.setattr(erasure, "ortto_erase", lambda *a: ("Acme: Ortto answered HTTP 503", False))
    assert customer_deleted_handle(store_id=store.pk, event_id=event.pk) == "retry"
    assert PersonLedger.objects.filter(email="ann@x.io").exists(), "the email a retry needs is kept"
    assert not ErasureRecord.objects.exists()
    retry = Schedule.objects.get(func="sync.tasks.consent_customer_deleted")
    assert retry.func == "sync.tasks.consent_customer_deleted" and retry.args == repr((store.pk, event.pk, 2))

    # The last attempt forgets them in the bridge anyway and says what Ortto did.
    assert customer_deleted_handle(store_id=store.pk, event_id=event.pk, attempt=5) == "erased 1"
    assert not PersonLedger.objects.filter(email="ann@x.io").exists()
    assert ErasureRecord.objects.get().ortto_outcome == "Acme: Ortto answered HTTP 503"
    event.refresh_from_db()
    assert event.status == WebhookEvent.Status.PROCESSED


def test_keep_is_the_default_and_changes_nothing(connection):
    store = connection.store
    PersonLedger.objects.create(connection=connection, email="ann@x.io", bc_customer_id=9, synced_at=timezone.now())
    event = WebhookEvent.objects.create(store=store, dedup_key="k2", scope="store/customer/deleted",
                                        resource="customer", resource_id=9, payload={}, bc_created_at=timezone.now(),
                                        status=WebhookEvent.Status.IGNORED)
    assert customer_deleted_handle(store_id=store.pk, event_id=event.pk) == "kept"
    assert PersonLedger.objects.filter(email="ann@x.io").exists() and not ErasureRecord.objects.exists()
