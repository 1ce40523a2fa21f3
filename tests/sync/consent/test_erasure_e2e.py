"""The right to be forgotten over real HTTP against the sandbox: support's "Forget this email" leaves no copy
of the email in any of the bridge's tables, the next syncs do not re-create the person until they come back
on their own, and store/customer/deleted follows the store's setting."""

import time

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection as db
from django.utils import timezone

from sandbox.bigcommerce.models import Customer, Order, Subscriber
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete, checkout_order_place, customer_delete
from sandbox.bigcommerce.webhooks import webhook_deliveries_run
from sandbox.ortto.models import Person
from sandbox.ortto.seed import seed_ortto_instances
from stores.models import WebhookEvent
from sync.consent.erasure import email_hash
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import ConsentPreference, ErasureRecord, PersonLedger, SyncEvent, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def _run(store, kind):
    run, _ = sync_run_request(store=store, kind=kind)
    sync_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    return run


def _connected(make_account, make_connection, make_store, store_hash):
    sandbox_store = seed_bigcommerce(store_hash=store_hash, name="Forget Co", customers=20, orders=30, seed=7)
    seed_users(store_hash=store_hash)
    install = app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    store = make_store(store_hash, name="Forget Co", access_token=install.access_token, scopes=install.scopes)
    connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=1)
    _run(store, SyncRun.Kind.INITIAL)
    return sandbox_store, store, connection


def _buyer_with_everything(sandbox_store):
    """A customer who subscribed and has placed orders: in the person, order and event tables alike."""
    for subscriber in Subscriber.objects.filter(store=sandbox_store).order_by("bc_id"):
        customer = Customer.objects.filter(store=sandbox_store, email=subscriber.email).first()
        if customer and Order.objects.filter(store=sandbox_store, customer_id=customer.bc_id).exists():
            return customer
    raise AssertionError("the seed has a subscribed buyer")


def _tables_holding(email: str) -> list[str]:
    """Every table of the bridge's database (the emulators' own sandbox_* tables aside) whose rows mention it."""
    found = []
    with db.cursor() as cursor:
        for table in db.introspection.table_names(cursor):
            if table.startswith("sandbox_"):
                continue
            cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)}")
            for row in cursor.fetchall():
                if any(email in (value.decode(errors="ignore") if isinstance(value, bytes | memoryview) else str(value))
                       .lower() for value in row if value is not None):
                    found.append(table)
                    break
    return found


def test_forget_this_email_leaves_no_copy_in_any_table_and_the_next_sync_does_not_bring_them_back(
        make_account, make_connection, make_store, make_user, sandbox_live, client, settings, queued_work_runs_inline):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    sandbox_store, store, connection = _connected(make_account, make_connection, make_store, "forg1")
    customer = _buyer_with_everything(sandbox_store)
    email = customer.email.lower()
    run = SyncRun.objects.filter(store=store).first()
    SyncEvent.objects.create(run=run, resource="customers", bc_id=customer.bc_id, email=email,
                             message=f"Ortto refused {email}: str::email invalid")
    SyncRun.objects.filter(pk=run.pk).update(error_summary=f"1 failed record ({email})")
    assert "sync_personledger" in _tables_holding(email) and "sync_syncevent" in _tables_holding(email)

    staff = make_user("support@example.com")
    staff.is_staff = True
    staff.save()
    # The Support group as its migration makes it (tests/test_admin.py checks the migration; an earlier
    # transactional test may have flushed the migration's rows).
    support, _ = Group.objects.get_or_create(name="Support")
    support.permissions.add(*Permission.objects.filter(codename__in=["forget_email", "view_erasurerecord"]))
    staff.groups.add(support)
    client.force_login(staff)
    page = client.get("/admin/sync/erasurerecord/forget/")
    assert page.status_code == 200 and b"Forget this email" in page.content
    refused = client.post("/admin/sync/erasurerecord/forget/", {"email": "not an email", "confirm": "on"})
    assert refused.status_code == 400 and ErasureRecord.objects.count() == 0, "bad input changes nothing"
    done = client.post("/admin/sync/erasurerecord/forget/",
                       {"email": customer.email.upper(), "store": store.pk, "in_ortto": "on", "confirm": "on"},
                       follow=True)
    assert done.status_code == 200 and b"Forgotten:" in done.content

    assert _tables_holding(email) == [], "no copy of the email anywhere in the bridge"
    record = ErasureRecord.objects.get()
    assert record.email_hash == email_hash(email) and record.in_ortto and record.requested_by == "support@example.com"
    assert "1 deleted" in record.ortto_outcome
    assert not Person.objects.filter(email=email).exists(), "archived, then deleted in Ortto"

    # A full resync reads the customer again (they are still in the store): not re-created.
    full = _run(store, SyncRun.Kind.FULL)
    assert not Person.objects.filter(email=email).exists()
    assert not PersonLedger.objects.filter(email=email).exists()
    assert full.counters["customers"]["skipped"] >= 1
    assert _tables_holding(email) == []

    # They come back on their own: a new order brings them to Ortto again, and lifts the erasure. (BigCommerce's
    # dates have whole seconds: one in the erasure's own second is not taken for a return.)
    while timezone.now().replace(microsecond=0) <= record.created_at.replace(microsecond=0):
        time.sleep(0.05)
    checkout_order_place(store=sandbox_store, email=customer.email, first_name="Back", last_name="Again",
                         subscribe=False, customer=customer)
    webhook_deliveries_run(store=sandbox_store)
    assert Person.objects.filter(email=email).exists()
    record.refresh_from_db()
    assert record.lifted_at is not None


def test_a_customer_deleted_in_the_store_stays_in_ortto_by_default_and_is_erased_when_the_store_chose_so(
        make_account, make_connection, make_store, sandbox_live, settings, queued_work_runs_inline):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    sandbox_store, store, connection = _connected(make_account, make_connection, make_store, "forg2")
    kept, erased = list(Customer.objects.filter(store=sandbox_store).order_by("bc_id")[:2])
    kept_email, erased_email = kept.email.lower(), erased.email.lower()

    customer_delete(customer=kept)  # the control panel's Delete customer
    webhook_deliveries_run(store=sandbox_store)
    assert Person.objects.filter(email=kept_email).exists() and PersonLedger.objects.filter(email=kept_email).exists()
    assert WebhookEvent.objects.get(store=store, scope="store/customer/deleted").status == "ignored"

    ConsentPreference.objects.create(store=store, on_customer_deleted="erase")
    customer_delete(customer=erased)
    webhook_deliveries_run(store=sandbox_store)
    assert not Person.objects.filter(email=erased_email).exists()
    assert not PersonLedger.objects.filter(email=erased_email).exists()
    record = ErasureRecord.objects.get()
    assert record.source == "customer_deleted" and record.email_hash == email_hash(erased_email)
    assert WebhookEvent.objects.filter(store=store, scope="store/customer/deleted", status="processed").count() == 1
    assert _tables_holding(erased_email) == []
