"""The sync engine over real HTTP against the sandbox's BigCommerce and Ortto emulators."""

import pytest

from sandbox.bigcommerce.models import Customer, Order, Subscriber
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from sandbox.ortto.models import Person, PersonActivity
from sandbox.ortto.seed import seed_existing_people, seed_ortto_instances
from sync.engine import mapping
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.intake.hooks import HOOK_SCOPES
from sync.models import OrderLedger, PersonLedger, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_initial_then_incremental_sync_against_the_sandbox(make_account, make_connection, make_store, sandbox_live,
                                                           monkeypatch):
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 20)
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


def test_changes_arrive_through_webhooks_and_the_scheduled_sweep(make_account, make_connection, make_store,
                                                                 sandbox_live, settings, queued_work_runs_inline):
    """After the initial sync: edits in the store reach Ortto through BigCommerce's webhooks, and a change
    no webhook announced is caught by the scheduled sweep (docs/design.md §4)."""
    from django.utils import timezone

    from sandbox.bigcommerce.services import checkout_order_place, customer_update
    from sandbox.bigcommerce.webhooks import webhook_deliveries_run
    from stores.models import WebhookEvent
    from sync.tasks import incremental_tick

    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False  # delivered below, in this thread
    sandbox_store = seed_bigcommerce(store_hash="e2e2", name="E2E Bikes", customers=30, orders=40, seed=5)
    seed_users(store_hash="e2e2")
    install = app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    store = make_store("e2e2", name="E2E Bikes", access_token=install.access_token)
    # Overwrite, so that a rename in the store replaces the name in Ortto (Append only would keep it).
    connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=2)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)  # queued work runs inline here
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    connection.refresh_from_db()
    assert len(connection.webhook_ids) == len(HOOK_SCOPES), "the first run registers the store's webhooks"

    # A subscribed customer is renamed and unticks the newsletter in the store; a guest checks out and ticks it.
    subscribed = next(s for s in Subscriber.objects.filter(store=sandbox_store).order_by("bc_id")
                      if "marketing_newsletter" in (s.consents or [])
                      and Customer.objects.filter(store=sandbox_store, email=s.email).exists())
    assert Person.objects.get(email=subscribed.email.lower()).email_permission is True
    customer = Customer.objects.get(store=sandbox_store, email=subscribed.email)
    customer_update(customer=customer, email=customer.email, first_name="Renamed", last_name=customer.last_name,
                    newsletter=False)
    order = checkout_order_place(store=sandbox_store, email="new.guest@example.com", first_name="New",
                                 last_name="Guest", subscribe=True)
    delivered = webhook_deliveries_run(store=sandbox_store)
    assert delivered and all(d.status == "delivered" for d in delivered), [(d.status, d.last_error) for d in delivered]

    assert not WebhookEvent.objects.filter(store=store, status="pending").exists(), list(SyncRun.objects.values_list("kind", "status", "error_summary"))
    assert SyncRun.objects.filter(store=store, kind=SyncRun.Kind.WEBHOOK, status="succeeded").exists()
    renamed = Person.objects.get(email=subscribed.email.lower())
    assert renamed.fields["str::first"] == "Renamed"
    assert renamed.email_permission is False, "a new opt-out in the store after the last sync applies (R3)"
    guest = Person.objects.get(email="new.guest@example.com")
    assert guest.email_permission is True, "ticked at checkout: created subscribed (R1)"
    assert PersonActivity.objects.filter(person=guest, activity_id="act:cm:placed-order").count() == 1
    # The new buyer's totals came with the merge that created them (sync.engine.people.totals_fold).
    assert guest.fields["int:cm:bigcommerce-order-count"] == 1
    assert guest.fields["int:cm:bigcommerce-total-spent"] == mapping.money_to_int(order.total_inc_tax)
    assert OrderLedger.objects.filter(connection=connection, order_id=order.bc_id).count() == 1

    # A change no webhook announced (a missed delivery): the scheduled sweep picks it up.
    missed = Customer.objects.filter(store=sandbox_store).exclude(pk=customer.pk).order_by("bc_id").first()
    Customer.objects.filter(pk=missed.pk).update(first_name="Swept", date_modified=timezone.now())
    incremental_tick()
    assert Person.objects.get(email=missed.email.lower()).fields["str::first"] == "Swept"
    # Nothing was applied twice along the way.
    assert PersonActivity.objects.filter(activity_id="act:cm:placed-order").count() == OrderLedger.objects.count()
