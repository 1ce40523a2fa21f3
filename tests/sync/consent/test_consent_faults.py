"""Consent both ways under 10 % injected faults (429s and 5xx) on both APIs, with Append only and with Overwrite: every
unsubscribe in Ortto reaches the store, nobody is re-subscribed anywhere, nobody else is touched, and each
person carries one unsubscribe (docs/design.md §4, "Consent written back")."""

import random

import pytest

from sandbox.bigcommerce import limits
from sandbox.bigcommerce.limits import faults_reset, faults_set, quota_set
from sandbox.bigcommerce.models import Customer, SandboxStore, Subscriber
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from sandbox.bigcommerce.webhooks import webhook_deliveries_run
from sandbox.ortto.models import Instance, Person, PersonActivity, RequestLog
from sandbox.ortto.seed import seed_ortto_instances
from sandbox.ortto.services import instance_set_faults, person_unsubscribe
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import ConsentWriteback, PersonLedger, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

NEWSLETTER = "marketing_newsletter"


def _drain(store, tries=40):
    """Every run of the store to its end, as the maintenance tick would resume an interrupted one."""
    for _ in range(tries):
        active = SyncRun.objects.filter(store=store, status__in=SyncRun.ACTIVE_STATUSES).order_by("pk").first()
        if active is None:
            return
        sync_run_execute(run_id=active.pk)
    raise AssertionError(list(SyncRun.objects.filter(store=store).values_list("kind", "status", "error_summary")))


def _newsletter_emails(sandbox_store):
    return {s.email.lower() for s in Subscriber.objects.filter(store=sandbox_store) if NEWSLETTER in (s.consents or [])}


@pytest.mark.parametrize("strategy", [1, 2], ids=["append-only", "overwrite"])
def test_unsubscribes_reach_the_store_under_faults_and_nobody_is_resubscribed(
        strategy, make_account, make_connection, make_store, sandbox_live, settings, monkeypatch):
    monkeypatch.setattr("stores.http.backoff_delay", lambda attempt: 0.02 * attempt)
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    settings.CONSENT_CHECK_CALLS_PER_SWEEP = 1  # the walk spans sweeps, as in a large store
    monkeypatch.setattr("sync.consent.writeback.EMAILS_PER_CHECK", 20)
    store_hash = f"cfault{strategy}"
    sandbox_store = seed_bigcommerce(store_hash=store_hash, name="Faulty Co", customers=150, orders=60, seed=21)
    seed_users(store_hash=store_hash)
    install = app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    store = make_store(store_hash, name="Faulty Co", access_token=install.access_token, scopes=install.scopes)
    connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=strategy)
    sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
    _drain(store)

    instance = Instance.objects.get(name="acme-us")
    # 10 % faults on each API, 429s among them. BigCommerce's 429 carries its documented X-Rate-Limit-* headers
    # (and X-Retry-After), and the client waits X-Rate-Limit-Time-Reset-Ms: a 400 ms window keeps that short.
    # Ortto's 429 carries `try-in-seconds`, which the client waits.
    sandbox_shop = SandboxStore.objects.get(store_hash=store_hash)
    bigcommerce_faults = []
    real_pick = limits.fault_pick

    def fault_pick(*, store, rng=None):  # the sandbox's own choice, noted
        fault = real_pick(store=store, rng=rng)
        if fault.status:
            bigcommerce_faults.append(fault.status)
        return fault

    monkeypatch.setattr(limits, "fault_pick", fault_pick)
    quota_set(store=sandbox_shop, requests=100_000, window_ms=400)
    faults_set(store=sandbox_shop, error_429_probability=0.04, error_500_probability=0.06)
    instance_set_faults(instance, p429=0.04, p500=0.06)
    # A handful of calls per sweep meet 10 % rarely: the first sweep's first calls are throttled for sure.
    instance_set_faults(instance, fail_next_count=2, fail_next_status=429)
    faults_set(store=sandbox_shop, fail_next_count=2, fail_next_status=429)

    subscribed = sorted(_newsletter_emails(sandbox_store) & set(
        PersonLedger.objects.filter(connection=connection, store_opt_in=True, sent_permission=True)
        .values_list("email", flat=True)))
    assert len(subscribed) > 40, "the walk needs several sweeps"
    leaving = set(random.Random(strategy).sample(subscribed, 12))
    staying = set(subscribed) - leaving
    for email in sorted(leaving):
        person_unsubscribe(Person.objects.get(instance=instance, email=email))
    customers = {c.email.lower() for c in Customer.objects.filter(store=sandbox_store)}
    Customer.objects.filter(store=sandbox_store).update(accepts_product_review_abandoned_cart_emails=True)

    for sweep in range(12):  # sweeps, each with the store's echoes delivered and synced
        if sweep == 1:  # and the second sweep's first calls fail with a 5xx for sure (10 % may miss a few calls)
            instance_set_faults(instance, fail_next_count=1, fail_next_status=503)
            faults_set(store=sandbox_shop, fail_next_count=1, fail_next_status=503)
        sync_run_request(store=store, kind=SyncRun.Kind.INCREMENTAL)
        _drain(store)
        webhook_deliveries_run(store=sandbox_store)
        _drain(store)
        if sweep and not (_newsletter_emails(sandbox_store) & leaving) and not ConsentWriteback.objects.filter(
                connection=connection, state="pending").exists():
            break

    faults_reset(store=SandboxStore.objects.get(store_hash=store_hash))
    instance_set_faults(instance, clear=True)
    assert RequestLog.objects.filter(instance=instance, status=429).exists(), "Ortto answered 429s"
    assert 429 in bigcommerce_faults, "BigCommerce answered 429s (with their reset headers)"
    assert RequestLog.objects.filter(instance=instance, status__gte=500).exists(), "Ortto answered 5xx"
    assert any(status >= 500 for status in bigcommerce_faults), "BigCommerce answered 5xx"
    # The truth: the unsubscribes reached the store...
    assert not (_newsletter_emails(sandbox_store) & leaving)
    for customer in Customer.objects.filter(store=sandbox_store):
        assert customer.accepts_product_review_abandoned_cart_emails is (customer.email.lower() not in leaving)
    # ...nobody else was touched, in the store or in Ortto...
    assert staying <= _newsletter_emails(sandbox_store)
    assert set(Person.objects.filter(instance=instance, email__in=staying, email_permission=True)
               .values_list("email", flat=True)) == staying
    # ...and nobody who left was re-subscribed, nor unsubscribed twice.
    for email in leaving:
        person = Person.objects.get(instance=instance, email=email)
        assert person.email_permission is False, email
        feed = list(PersonActivity.objects.filter(person=person, activity_id__in=("subscribed", "unsubscribed"))
                    .order_by("created_at", "pk").values_list("activity_id", flat=True))
        assert feed[-1] == "unsubscribed" and feed.count("unsubscribed") == 1, (email, feed)
    assert ConsentWriteback.objects.filter(connection=connection, state="done").count() == len(leaving & customers) \
        + len(leaving - customers)
