"""The instant path over real HTTP: the sandbox Ortto's unsubscribe journey posts to the bridge's endpoint, the
bridge checks with Ortto and writes to the sandbox BigCommerce, without any sweep (sync/consent/instant.py)."""

import pytest

from sandbox.bigcommerce.models import Customer, Subscriber
from sandbox.bigcommerce.webhooks import webhook_deliveries_run
from sandbox.ortto.models import Instance, Person, PersonActivity, RequestLog
from sandbox.ortto.services import instance_set_journey_webhook, journey_webhook_payload, person_unsubscribe
from sync.consent.instant import hook_token_show
from sync.models import ConsentPreference, ConsentWriteback, SyncRun
from tests.sync.consent.test_consent_e2e import _connected, _subscribed_customer, _sweep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_an_unsubscribe_in_ortto_reaches_the_store_at_once_through_the_journey_webhook(
        make_account, make_connection, make_store, sandbox_live, settings, queued_work_runs_inline):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    sandbox_store, store, connection = _connected(make_account, make_connection, make_store, "hook1")
    instance = Instance.objects.get(name="acme-us")
    instance_set_journey_webhook(instance, url=hook_token_show(store=store))  # the owner's set-up in Ortto
    subscriber = _subscribed_customer(sandbox_store)
    customer = Customer.objects.get(store=sandbox_store, email=subscriber.email)
    Customer.objects.filter(pk=customer.pk).update(accepts_product_review_abandoned_cart_emails=True)
    person = Person.objects.get(instance=instance, email=subscriber.email.lower())
    runs = SyncRun.objects.count()
    gets = RequestLog.objects.filter(path__endswith="person/get").count()

    person_unsubscribe(person)  # the contact clicks an email's unsubscribe link; the journey posts at once

    assert not Subscriber.objects.filter(store=sandbox_store, email=subscriber.email).exists()
    customer.refresh_from_db()
    assert customer.accepts_product_review_abandoned_cart_emails is False
    assert SyncRun.objects.count() == runs, "no sweep ran"
    assert RequestLog.objects.filter(path__endswith="person/get").count() - gets == 1, "one check with Ortto"
    assert ConsentWriteback.objects.get(connection=connection).via_hook
    preference = ConsentPreference.objects.get(store=store)
    assert preference.writeback_count == 1 and preference.hook_received_count == 1

    # The store's echoes, then a sweep: nothing flows back to Ortto.
    person.refresh_from_db()
    touched = person.updated_at
    webhook_deliveries_run(store=sandbox_store)
    _sweep(store)
    person.refresh_from_db()
    assert person.email_permission is False and person.updated_at == touched
    assert PersonActivity.objects.filter(person=person, activity_id="unsubscribed").count() == 1


def test_a_forged_delivery_for_a_subscriber_still_subscribed_in_ortto_writes_nothing(
        make_account, make_connection, make_store, sandbox_live, settings, queued_work_runs_inline):
    import requests

    sandbox_store, store, connection = _connected(make_account, make_connection, make_store, "hook2")
    subscriber = _subscribed_customer(sandbox_store)
    person = Person.objects.get(email=subscriber.email.lower())
    url = hook_token_show(store=store)
    # Someone who learnt the URL posts a well-formed delivery for a subscriber who never unsubscribed.
    answer = requests.post(url, json=journey_webhook_payload(person), timeout=10)
    assert answer.status_code == 202
    assert Subscriber.objects.filter(store=sandbox_store, email=subscriber.email).exists()
    assert not ConsentWriteback.objects.filter(connection=connection).exists()
    person.refresh_from_db()
    assert person.email_permission is True
