"""Ortto's answers where the public record is silent, over real HTTP against the emulated Ortto set to answer
each plausible way (docs/ortto-contract.md, "What the public record does not say"): attribute ids of other
prefixes, icons refused, and every wording of an existing person under Ignore."""

import pytest

from sandbox.bigcommerce import services as bc
from sandbox.bigcommerce.models import Customer, Order
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from sandbox.bigcommerce.webhooks import webhook_deliveries_run
from sandbox.ortto.models import ActivityDefinition, Instance, Person, PersonActivity, RequestLog
from sandbox.ortto.seed import seed_existing_people, seed_ortto_instances
from sandbox.ortto.services import instance_set_contract
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import PersonLedger, SyncEvent, SyncRun
from sync.ortto.schema import ALL_SPECS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

KEY = "sbx-default-acmeus-0001"
PLACED, PRODUCT, ABANDONED = "act:cm:placed-order", "act:cm:ordered-product", "act:cm:abandoned-cart"


@pytest.fixture
def connected(make_account, make_connection, make_store, sandbox_live, settings, monkeypatch):
    """A seeded sandbox store connected to the emulated Ortto, set to answer as `contract` says."""
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = False
    monkeypatch.setattr("stores.http.backoff_delay", lambda attempt: 0.01 * attempt)

    def make(store_hash, *, customers=12, orders=12, strategy=1, existing=(), **contract):
        sandbox_store = seed_bigcommerce(store_hash=store_hash, name="Answers Outfitters", customers=customers,
                                         orders=orders, seed=5)
        seed_users(store_hash=store_hash)
        install = app_install_complete(store=sandbox_store)
        seed_ortto_instances()
        instance = Instance.objects.get(api_key=KEY)
        instance_set_contract(instance, **contract)
        if existing:
            seed_existing_people(instance, list(existing))
        store = make_store(store_hash, name="Answers Outfitters", access_token=install.access_token)
        connection = make_connection(store, make_account(api_key=KEY), merge_strategy=strategy)
        return sandbox_store, store, connection

    return make


def _run(store, kind=SyncRun.Kind.INITIAL):
    run, _ = sync_run_request(store=store, kind=kind, enqueue_run=False)
    return sync_run_execute(run_id=run.pk, sliced=False)


def test_activities_carry_the_attribute_ids_ortto_gave_their_definitions(connected):
    """Ortto gives `price` and `link` attributes prefixes nobody documents; the emulator refuses an activity
    whose attributes its definition does not declare. Every Ordered product and the abandoned cart arrive."""
    sandbox_store, store, _ = connected("ans1", attribute_prefixes={"price": "dec", "link": "url"})
    run = _run(store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    placed = Order.objects.filter(store=sandbox_store).exclude(status_id=0).count()
    assert PersonActivity.objects.filter(activity_id=PRODUCT).count() == placed
    product = PersonActivity.objects.filter(activity_id=PRODUCT).first()
    assert "dec:cm:price" in product.attributes and "int:cm:price" not in product.attributes
    assert not SyncEvent.objects.filter(message__contains="refused").exists()

    cart = bc.cart_add(store=sandbox_store, product_id=111, quantity=1, email="cart.answers@example.com")
    bc.cart_abandon(cart=cart)
    assert all(d.status == "delivered" for d in webhook_deliveries_run(store=sandbox_store))
    _run(store, SyncRun.Kind.INCREMENTAL)  # the sweep also takes any delivery left waiting
    abandoned = PersonActivity.objects.get(activity_id=ABANDONED)
    assert f"token={cart.abandoned_token}" in abandoned.attributes["url:cm:recovery-url"]
    assert abandoned.attributes["dec:cm:cart-value"] > 0


def test_an_ortto_that_accepts_only_the_recorded_money_icon_still_gets_every_definition(connected):
    sandbox_store, store, connection = connected("ans2", accepted_icons=["moneys-illustration-icon"])
    run = _run(store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    connection.refresh_from_db()
    assert connection.schema_ready
    definitions = ActivityDefinition.objects.filter(instance__api_key=KEY)
    assert definitions.count() == 1 + len(ALL_SPECS)  # Placed order, the order and cart journey, the product journeys
    assert {d.definition["icon_id"] for d in definitions} == {"moneys-illustration-icon"}
    placed = Order.objects.filter(store=sandbox_store).exclude(status_id=0).count()
    assert PersonActivity.objects.filter(activity_id=PRODUCT).count() == placed


@pytest.mark.parametrize("status", ["merged", "ignored", "unchanged", "none"])
@pytest.mark.parametrize("strategy", [2, 3])
def test_existing_people_are_neither_failed_nor_merged_twice_whatever_ignore_answers(connected, strategy, status):
    """People already in Ortto meet the creating merge's Ignore (3); whatever Ortto answers for them, the run
    has no failure, each keeps their permission, Overwrite (2) writes their fields once, Ignore leaves them,
    their orders' activities arrive, and a second run sends nobody again."""
    sandbox_store, store, connection = connected(f"ans3{strategy}{status[0]}", strategy=strategy,
                                                 ignore_status=status)
    customers = list(Customer.objects.filter(store=sandbox_store).order_by("bc_id")[:3])
    seed_existing_people(Instance.objects.get(api_key=KEY), [
        {"email": c.email.lower(), "first": "Before", "subscribed": True, "reason": "Signed up at a fair"}
        for c in customers])

    run = _run(store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert run.failed == 0
    assert not SyncEvent.objects.filter(level=SyncEvent.Level.ERROR).exists()
    for customer in customers:
        person = Person.objects.get(email=customer.email.lower())
        assert person.email_permission is True  # R3: never unsubscribed for an unticked box
        assert (person.fields["str::first"] == customer.first_name) is (strategy == 2)
        row = PersonLedger.objects.get(connection=connection, email=customer.email.lower())
        assert row.ortto_person_id == person.person_id and not row.created_in_ortto
    assert Person.objects.count() == len({e.lower() for e in PersonLedger.objects.values_list("email", flat=True)})
    placed = Order.objects.filter(store=sandbox_store).exclude(status_id=0).count()
    assert PersonActivity.objects.filter(activity_id=PLACED).count() == placed

    merges = RequestLog.objects.filter(path="person/merge").count()
    again = _run(store, SyncRun.Kind.INCREMENTAL)
    assert again.status == SyncRun.Status.SUCCEEDED and again.failed == 0
    assert RequestLog.objects.filter(path="person/merge").count() == merges, "nobody merged a second time"
