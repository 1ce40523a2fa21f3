"""Issue 26: a failing record stays failing until a run succeeds for it — over the engine, against the sandbox."""

import pytest
from django.urls import reverse

from sandbox.bigcommerce.models import Customer
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete, customer_update
from sandbox.bigcommerce.webhooks import webhook_deliveries_run
from sandbox.ortto.seed import seed_ortto_instances
from stores.app_context import StoreContext, app_context_token
from sync.engine.runs import sync_run_request
from sync.health.failures import failing_records
from sync.models import SyncEvent, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_a_run_that_did_not_touch_a_record_leaves_it_failing(make_account, make_connection, make_store, sandbox_live,
                                                             settings, queued_work_runs_inline, admin_client, client):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False  # delivered below, in this thread
    sandbox_store = seed_bigcommerce(store_hash="fail1", name="Fail Outdoor", customers=12, orders=0, seed=7)
    seed_users(store_hash="fail1")
    install = app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    broken = list(Customer.objects.filter(store=sandbox_store).order_by("bc_id")[:3])
    for number, customer in enumerate(broken):
        Customer.objects.filter(pk=customer.pk).update(email=f"broken{number}@@example")
    store = make_store("fail1", name="Fail Outdoor", access_token=install.access_token)
    make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=2)

    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)  # runs inline
    run.refresh_from_db()
    assert run.status == SyncRun.Status.PARTIAL and run.failed == 3, run.error_summary
    assert failing_records(store=store).count() == 3

    # A newcomer fixes one customer in the store; the webhook run that follows succeeds.
    fixed = Customer.objects.get(pk=broken[0].pk)
    customer_update(customer=fixed, email="fixed.customer@example.com", first_name=fixed.first_name,
                    last_name=fixed.last_name)
    webhook_deliveries_run(store=sandbox_store)
    webhook_run = SyncRun.objects.filter(store=store, kind=SyncRun.Kind.WEBHOOK).get()
    assert webhook_run.status == SyncRun.Status.SUCCEEDED and webhook_run.failed == 0

    # One resolved, two still failing.
    assert SyncEvent.objects.filter(run=run, resolved=True).count() == 1
    assert sorted(failing_records(store=store).values_list("email", flat=True)) == ["broken1@@example",
                                                                                    "broken2@@example"]

    # The admin's Store page: the last run succeeded, and two records are still failing.
    admin = admin_client.get(reverse("admin:stores_store_change", args=[store.pk])).content.decode()
    assert "2 failing now" in admin
    assert "broken1@@example" in admin and "broken2@@example" in admin and "broken0@@example" not in admin

    # The app page: the same two, in plain words.
    token = app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=store.owner_bc_id))
    panel = client.get("/bigcommerce/app/panel", HTTP_X_APP_CONTEXT=token).content.decode()
    assert 'id="failed-records"' in panel
    assert "broken1@@example" in panel and "broken2@@example" in panel and "broken0@@example" not in panel
    assert "The e-mail address is not a valid address" in panel

    # "Retry these" with the two still broken: they stay failing, nothing else is resolved.
    response = client.post("/bigcommerce/app/retry-failed", HTTP_X_APP_CONTEXT=token)
    assert response.status_code == 200, response.content
    retry = SyncRun.objects.filter(store=store, kind=SyncRun.Kind.RETRY_FAILED).get()
    assert retry.status == SyncRun.Status.PARTIAL and retry.failed == 2
    assert failing_records(store=store).count() == 2
