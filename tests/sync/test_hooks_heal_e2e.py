"""Webhooks that heal themselves, over real HTTP against the emulated BigCommerce and Ortto: BigCommerce
deactivates every hook; the next sweep re-activates them (one GET, a PUT per deactivated hook), delivers the
changes made meanwhile once, counts them as missed deliveries, and later changes arrive by webhook again."""

import re
import time
from collections import Counter
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from sandbox.bigcommerce import services as bc
from sandbox.bigcommerce.models import Customer, Hook, WebhookDelivery
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.webhooks import webhook_deliveries_run
from sandbox.ortto.models import Person, PersonActivity
from sandbox.ortto.seed import seed_ortto_instances
from stores.bigcommerce import BigCommerceClient
from stores.models import WebhookEvent
from sync.engine.runs import sync_run_request
from sync.intake.hooks import HOOK_SCOPES
from sync.models import Connection, SyncCursor, SyncRun
from sync.ortto.client import OrttoClient
from sync.tasks import incremental_tick

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

PLACED = "act:cm:placed-order"


@pytest.fixture
def synced(make_account, make_connection, make_store, sandbox_live, settings, queued_work_runs_inline, monkeypatch):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    sandbox_store = seed_bigcommerce(store_hash="heal1", name="Healing Outfitters", customers=12, orders=10, seed=3)
    seed_users(store_hash="heal1")
    install = bc.app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    store = make_store("heal1", name="Healing Outfitters", access_token=install.access_token)
    connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"), merge_strategy=2)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert Hook.objects.filter(store=sandbox_store, is_active=True).count() == len(HOOK_SCOPES)
    merged = Counter()
    original = OrttoClient.merge_people

    def counting(self, people, **kwargs):
        merged.update(p["fields"].get("str::email") for p in people)
        return original(self, people, **kwargs)

    monkeypatch.setattr(OrttoClient, "merge_people", counting)
    return sandbox_store, store, connection, merged


def _deactivate_every_hook(base: str, store_hash: str) -> str:
    """The control panel's Webhooks page, **Deactivate every hook**, over HTTP as a browser sends it."""
    browser = requests.Session()
    url = f"{base}/sandbox/bigcommerce/store-{store_hash}/manage/settings/webhooks/"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get(url, timeout=10).text).group(1)
    answer = browser.post(url + "deactivate/", data={"csrfmiddlewaretoken": token}, headers={"Referer": url},
                          timeout=10)
    assert answer.status_code == 200, answer.status_code
    return answer.text


def _bigcommerce_requests(monkeypatch) -> list[tuple[str, str]]:
    sent = []
    original = BigCommerceClient._request

    def counting(self, method, path, **kwargs):
        sent.append((method, path))
        return original(self, method, path, **kwargs)

    monkeypatch.setattr(BigCommerceClient, "_request", counting)
    return sent


def _past_the_cursor(store) -> None:
    """Wait until the clock is a whole second past the customers' cursor. BigCommerce's date_modified has whole
    seconds, and a sweep counts as missed only what changed after its cursor: a change in the cursor's own
    second is synced by the overlap but not counted."""
    cursor = SyncCursor.objects.get(store=store, resource="customers").modified_since
    deadline = time.monotonic() + 5
    while timezone.now().replace(microsecond=0) <= cursor and time.monotonic() < deadline:
        time.sleep(0.05)
    assert timezone.now().replace(microsecond=0) > cursor


def _last_sweep(store) -> SyncRun:
    run = SyncRun.objects.filter(store=store, kind=SyncRun.Kind.INCREMENTAL).order_by("-id").first()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    return run


def test_deactivated_hooks_are_reactivated_by_the_next_sweep_and_changes_arrive_once(synced, sandbox_live,
                                                                                      monkeypatch):
    sandbox_store, store, connection, merged = synced
    # A healthy sweep: one GET of the hooks, nothing put back, nothing missed.
    sent = _bigcommerce_requests(monkeypatch)
    incremental_tick()
    assert [r for r in sent if "/hooks" in r[1]] == [("GET", "/v3/hooks")]
    assert _last_sweep(store).missed_deliveries == 0
    connection.refresh_from_db()
    assert connection.webhooks_checked_at and connection.webhooks_healed_at is None

    # BigCommerce deactivates every hook; the store changes meanwhile and nothing is delivered.
    assert f"Deactivated {len(HOOK_SCOPES)} hook(s)" in _deactivate_every_hook(sandbox_live, "heal1")
    assert not Hook.objects.filter(store=sandbox_store, is_active=True).exists()
    customer = Customer.objects.filter(store=sandbox_store).order_by("bc_id").first()
    _past_the_cursor(store)
    bc.customer_update(customer=customer, email=customer.email, first_name="Renamed", last_name="Meanwhile")
    order = bc.checkout_order_place(store=sandbox_store, email="quiet.buyer@example.com", first_name="Quiet",
                                    last_name="Buyer", subscribe=False, subtotal=Decimal("80.00"))
    assert not webhook_deliveries_run(store=sandbox_store)
    merged.clear()
    sent.clear()

    incremental_tick()
    sweep = _last_sweep(store)
    # Re-activated in place: one GET, one PUT per hook, no new hook.
    hook_requests = [r for r in sent if "/hooks" in r[1]]
    assert hook_requests[0] == ("GET", "/v3/hooks")
    assert sorted(m for m, _ in hook_requests[1:]) == ["PUT"] * len(HOOK_SCOPES)
    assert Hook.objects.filter(store=sandbox_store, is_active=True).count() == len(HOOK_SCOPES)
    assert Hook.objects.filter(store=sandbox_store).count() == len(HOOK_SCOPES)
    connection.refresh_from_db()
    assert connection.webhooks_healed == len(HOOK_SCOPES) and connection.webhooks_healed_at
    # The two changes reached the bridge only by the sweep: two missed deliveries, each sent once.
    assert sweep.missed_deliveries == 2
    assert Person.objects.get(email=customer.email).name == "Renamed Meanwhile"
    assert merged[customer.email] == 1
    assert PersonActivity.objects.filter(activity_id=PLACED, person__email="quiet.buyer@example.com").count() == 1

    # The hooks fire again: the next change comes by webhook, once, and the sweep after it misses nothing
    # and sends nothing twice.
    merged.clear()
    bc.customer_update(customer=Customer.objects.get(pk=customer.pk), email=customer.email, first_name="Back",
                       last_name="Online")
    delivered = webhook_deliveries_run(store=sandbox_store)
    assert delivered and all(d.status == WebhookDelivery.Status.DELIVERED for d in delivered)
    assert WebhookEvent.objects.filter(store=store, resource="customers", resource_id=customer.bc_id).exists()
    assert Person.objects.get(email=customer.email).name == "Back Online"
    incremental_tick()
    assert _last_sweep(store).missed_deliveries == 0
    assert merged[customer.email] == 1
    assert PersonActivity.objects.filter(activity_id=PLACED, person__email="quiet.buyer@example.com").count() == 1
    assert Connection.objects.get(pk=connection.pk).webhooks_healed_at == connection.webhooks_healed_at
    assert order.bc_id


def test_a_deleted_hook_is_created_again_with_the_store_s_secret(synced):
    sandbox_store, store, connection, _ = synced
    Hook.objects.filter(store=sandbox_store, scope="store/order/*").delete()
    incremental_tick()
    _last_sweep(store)
    hook = Hook.objects.get(store=sandbox_store, scope="store/order/*")
    store.refresh_from_db()
    assert hook.is_active and hook.headers == {"X-Bridge-Webhook-Secret": store.webhook_secret}
    connection.refresh_from_db()
    assert connection.webhooks_healed == 1 and hook.bc_id in connection.webhook_ids
    # Its deliveries are accepted again.
    bc.order_status_set(order=bc.Order.objects.filter(store=sandbox_store).exclude(status_id=0).first(), status_id=2)
    delivered = webhook_deliveries_run(store=sandbox_store)
    assert delivered and all(d.status == WebhookDelivery.Status.DELIVERED for d in delivered)


def test_deactivated_hooks_open_one_incident_shown_on_the_app_page_and_cleared_when_webhooks_return(
        synced, sandbox_live, settings, mailoutbox):
    """Issue 26's done-when for deactivated hooks: one incident, one e-mail, on the app page, and a recovery
    e-mail once the store's changes arrive by webhook again."""
    from stores.app_context import StoreContext, app_context_token
    from sync.models import Incident

    settings.WEBHOOK_SILENCE_SECONDS = 0  # the tests' clock: any sweep after the connection counts
    sandbox_store, store, connection, _ = synced

    def panel() -> str:
        token = app_context_token(StoreContext(store_hash="heal1", bc_user_id=store.owner_bc_id))
        answer = requests.get(f"{sandbox_live}/bigcommerce/app/panel", headers={"X-App-Context": token}, timeout=30)
        assert answer.status_code == 200
        return answer.text

    _deactivate_every_hook(sandbox_live, "heal1")
    customer = Customer.objects.filter(store=sandbox_store).order_by("bc_id").first()
    _past_the_cursor(store)
    bc.customer_update(customer=customer, email=customer.email, first_name="Quietly", last_name="Renamed")
    incremental_tick()
    assert _last_sweep(store).missed_deliveries == 1
    incident = Incident.objects.get(store=store, cleared_at__isnull=True)
    assert incident.kind == Incident.Kind.WEBHOOKS_SILENT
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [store.owner_email]
    assert "stopped arriving" in mailoutbox[0].subject.lower() + mailoutbox[0].body.lower()
    assert "Store changes stopped arriving" in panel()

    # BigCommerce deactivates them again before anyone heard from the store: the next sweep finds another
    # missed change; the incident stays the one, with no second e-mail.
    _deactivate_every_hook(sandbox_live, "heal1")
    _past_the_cursor(store)
    bc.customer_update(customer=Customer.objects.get(pk=customer.pk), email=customer.email, first_name="Still",
                       last_name="Quiet")
    incremental_tick()
    assert _last_sweep(store).missed_deliveries == 1
    assert Incident.objects.filter(store=store).count() == 1 and len(mailoutbox) == 1

    # The sweep re-activated the hooks: the next change comes by webhook, and the next sweep misses nothing:
    # the incident clears with one recovery e-mail.
    bc.customer_update(customer=Customer.objects.get(pk=customer.pk), email=customer.email, first_name="Back",
                       last_name="Again")
    assert webhook_deliveries_run(store=sandbox_store)
    incremental_tick()
    assert not Incident.objects.filter(store=store, cleared_at__isnull=True).exists()
    assert len(mailoutbox) == 2 and mailoutbox[1].to == [store.owner_email]
    assert "Store changes stopped arriving" not in panel()
