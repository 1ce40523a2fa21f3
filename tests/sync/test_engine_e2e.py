"""The sync engine over real HTTP against the sandbox's BigCommerce and Ortto emulators."""

import pytest

from ortto_bridge.sandbox.bigcommerce.models import Customer, Order, Subscriber
from ortto_bridge.sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from ortto_bridge.sandbox.bigcommerce.services import app_install_complete
from ortto_bridge.sandbox.ortto.models import Person, PersonActivity
from ortto_bridge.sandbox.ortto.seed import seed_existing_people, seed_ortto_instances
from sync.models import OrderLedger, PersonLedger, SyncRun
from sync.runs import sync_run_execute, sync_run_request
from tests.factories import make_account, make_connection, make_store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_initial_then_incremental_sync_against_the_sandbox(sandbox_live, monkeypatch):
    monkeypatch.setattr("sync.runs.PAGE_LIMIT", 20)
    sandbox_store = seed_bigcommerce(store_hash="e2e1", name="E2E Outdoor", customers=40, orders=80, seed=3)
    seed_users(store_hash="e2e1")
    install = app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    existing = Customer.objects.filter(store=sandbox_store).order_by("bc_id").first()
    # Already in Ortto and unsubscribed there: the bridge must leave that alone (R3/R4).
    seed_existing_people("acme-us", [{"email": existing.email, "first": "Before", "subscribed": False}])

    store = make_store("e2e1", name="E2E Outdoor", access_token=install.access_token)
    connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=1)

    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
    run = sync_run_execute(run_id=run.pk)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary

    placed = Order.objects.filter(store=sandbox_store).exclude(status_id=0).count()
    assert OrderLedger.objects.filter(connection=connection).count() == placed
    assert PersonActivity.objects.filter(activity_id="act:cm:placed-order").count() == placed
    assert Person.objects.get(email=existing.email.lower()).email_permission is False
    # Every person the bridge created has the permission the rules gave them.
    opted_in = {s.email.lower() for s in Subscriber.objects.filter(store=sandbox_store)
                if "marketing_newsletter" in (s.consents or [])}
    for row in PersonLedger.objects.filter(connection=connection, created_in_ortto=True):
        person = Person.objects.get(email=row.email)
        assert person.email_permission is row.sent_permission, row.email
        if row.email in opted_in:
            assert person.email_permission is True

    activities, people = PersonActivity.objects.count(), Person.objects.count()
    again, _ = sync_run_request(store=store, kind=SyncRun.Kind.INCREMENTAL)
    again = sync_run_execute(run_id=again.pk)
    assert again.status == SyncRun.Status.SUCCEEDED
    assert again.people_synced == 0
    assert PersonActivity.objects.count() == activities and Person.objects.count() == people
