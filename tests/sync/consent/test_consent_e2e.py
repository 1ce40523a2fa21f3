"""Consent both ways over real HTTP against the sandbox's BigCommerce and Ortto (docs/design.md §4)."""

import pytest

from sandbox.bigcommerce.models import Customer, Subscriber
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from sandbox.bigcommerce.webhooks import webhook_deliveries_run
from sandbox.ortto.models import Person, PersonActivity, RequestLog
from sandbox.ortto.seed import seed_ortto_instances
from sandbox.ortto.services import person_unsubscribe
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import ConsentPreference, PersonLedger, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def _connected(make_account, make_connection, make_store, store_hash, *, scopes=None):
    sandbox_store = seed_bigcommerce(store_hash=store_hash, name="Consent Co", customers=25, orders=20, seed=11)
    seed_users(store_hash=store_hash)
    install = app_install_complete(store=sandbox_store)
    if scopes is not None:
        install.scopes = scopes
        install.save(update_fields=["scopes"])
    seed_ortto_instances()
    store = make_store(store_hash, name="Consent Co", access_token=install.access_token, scopes=install.scopes)
    connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=1)
    run = _run(store, SyncRun.Kind.INITIAL)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    return sandbox_store, store, connection


def _subscribed_customer(sandbox_store):
    return next(s for s in Subscriber.objects.filter(store=sandbox_store).order_by("bc_id")
                if "marketing_newsletter" in (s.consents or [])
                and Customer.objects.filter(store=sandbox_store, email=s.email).exists())


def _run(store, kind):
    run, _ = sync_run_request(store=store, kind=kind)
    sync_run_execute(run_id=run.pk)  # already done when queued work runs inline
    run.refresh_from_db()
    return run


def _sweep(store):
    run = _run(store, SyncRun.Kind.INCREMENTAL)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    return run


def test_an_unsubscribe_in_ortto_reaches_the_store_at_the_next_sweep_and_nothing_flows_back(
        make_account, make_connection, make_store, sandbox_live, settings, queued_work_runs_inline):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    sandbox_store, store, connection = _connected(make_account, make_connection, make_store, "cons1")
    subscriber = _subscribed_customer(sandbox_store)
    email = subscriber.email.lower()
    customer = Customer.objects.get(store=sandbox_store, email=subscriber.email)
    Customer.objects.filter(pk=customer.pk).update(accepts_product_review_abandoned_cart_emails=True)
    person = Person.objects.get(email=email)
    assert person.email_permission is True

    person_unsubscribe(person)  # the contact clicks an email's unsubscribe link
    gets_before = RequestLog.objects.filter(path__endswith="person/get").count()
    _sweep(store)

    assert not Subscriber.objects.filter(store=sandbox_store, email=subscriber.email).exists()
    customer.refresh_from_db()
    assert customer.accepts_product_review_abandoned_cart_emails is False
    candidates = PersonLedger.objects.filter(connection=connection, store_opt_in=True, sent_permission=True).count()
    assert RequestLog.objects.filter(path__endswith="person/get").count() - gets_before == -(-(candidates + 1) // 100)
    preference = ConsentPreference.objects.get(store=store)
    assert preference.writeback_count == 1 and preference.writeback_last_at is not None

    # The store's echoes (subscriber deleted, customer updated) arrive as webhooks: nothing goes back to Ortto.
    person.refresh_from_db()
    touched = person.updated_at
    delivered = webhook_deliveries_run(store=sandbox_store)
    assert delivered, "BigCommerce announced its changes"
    _sweep(store)
    person.refresh_from_db()
    assert person.email_permission is False
    assert PersonActivity.objects.filter(person=person, activity_id="unsubscribed").count() == 1, \
        "one unsubscribe on the profile: the bridge sent no second one"
    assert person.updated_at == touched, "no merge touched the person again"
    assert not Subscriber.objects.filter(store=sandbox_store, email=subscriber.email).exists(), "no ping-pong"


def test_a_store_installed_read_only_keeps_syncing_one_way(make_account, make_connection, make_store, sandbox_live):
    read_only = "store_v2_customers_read_only store_v2_orders_read_only store_v2_content " \
                "store_v2_information_read_only store_cart_read_only"
    sandbox_store, store, connection = _connected(make_account, make_connection, make_store, "cons2", scopes=read_only)
    subscriber = _subscribed_customer(sandbox_store)
    person_unsubscribe(Person.objects.get(email=subscriber.email.lower()))
    run = _sweep(store)
    assert run.status == SyncRun.Status.SUCCEEDED
    assert Subscriber.objects.filter(store=sandbox_store, email=subscriber.email).exists()
    assert "re-authorize" in ConsentPreference.objects.get(store=store).writeback_note


def test_the_sandbox_refuses_writes_without_the_customers_modify_scope(make_account, make_connection, make_store,
                                                                      sandbox_live):
    from stores.bigcommerce import BigCommerceAuthError, store_client

    read_only = "store_v2_customers_read_only store_v2_orders_read_only store_v2_content"
    sandbox_store, store, _ = _connected(make_account, make_connection, make_store, "cons3", scopes=read_only)
    subscriber = _subscribed_customer(sandbox_store)
    with pytest.raises(BigCommerceAuthError) as refused:
        store_client(store).delete_subscriber(subscriber.bc_id)
    assert refused.value.status == 403
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()
