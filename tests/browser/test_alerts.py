"""Issue 26 in real Chromium against the sandbox: the owner sees failed records in plain words, and when
Ortto refuses the key (the sandbox's fault injection) an incident opens, the app page says so and the
sandbox's mailbox shows the alert e-mail."""

import pytest
import requests
from django.utils import timezone

from sandbox.bigcommerce.models import Customer
from stores.models import Store
from sync.engine.runs import sync_run_request
from sync.models import Incident, SyncRun

from .conftest import ARTIFACTS
from .test_journey import install_and_open

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_an_incident_shows_on_the_app_page_and_in_the_mailbox(page, sandbox, settings, queued_work_runs_inline,
                                                              sandbox_account, make_connection, shoot):
    settings.EMAIL_BACKEND = "sandbox.mailbox.backend.EmailBackend"  # what `make run` uses
    frame = install_and_open(page, sandbox)
    store = Store.objects.get(store_hash="demo1234")
    for number, customer in enumerate(Customer.objects.filter(store__store_hash="demo1234").order_by("bc_id")[:3]):
        Customer.objects.filter(pk=customer.pk).update(email=f"jane.doe{number}@example com")
    make_connection(store, sandbox_account("acme-us"), merge_strategy=2)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)  # runs inline
    run.refresh_from_db()
    assert run.status == SyncRun.Status.PARTIAL, run.error_summary

    failed = frame.locator("#failed-records")
    failed.get_by_text("jane.doe2@example com").wait_for()
    assert "The e-mail address is not a valid address" in failed.inner_text()
    failed.locator("#retry-failed:not([disabled])").wait_for()  # no run active: Retry these is offered
    failed.scroll_into_view_if_needed()
    failed.screenshot(path=str(ARTIFACTS / "17-failed-records.png"))

    # Ortto stops accepting the key; a customer changes and the owner clicks Sync now.
    assert requests.post(f"{sandbox}/sandbox/ortto/control/acme-us/revoke", json={"revoked": True},
                         timeout=10).status_code == 200
    changed = Customer.objects.filter(store__store_hash="demo1234").order_by("-bc_id").first()
    Customer.objects.filter(pk=changed.pk).update(first_name="Changed", date_modified=timezone.now())
    frame.get_by_role("button", name="Sync now").click()
    alert = frame.locator('[data-incident="key_rejected"]')
    alert.wait_for()
    assert "Reconnect" in alert.inner_text()
    assert Incident.objects.filter(store=store, kind="key_rejected", cleared_at__isnull=True).count() == 1
    alert.scroll_into_view_if_needed()
    shoot(page, "19-app-page-alert")

    page.goto(sandbox + "/sandbox/mailbox/")
    mail = page.locator("article.mail").first
    assert "Ortto rejected the API key" in mail.locator(".mail-subject").inner_text()
    assert "owner@acme.example" in mail.inner_text() and "Reconnect" in mail.inner_text()
    assert page.locator("article.mail").count() == 1  # one e-mail, not one per failed sync
    mail.screenshot(path=str(ARTIFACTS / "18-alert-email.png"))
