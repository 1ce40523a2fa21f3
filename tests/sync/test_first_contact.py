"""What a first real store would meet in Ortto (issue 13), over real HTTP against the emulated Ortto
enforcing the contract in docs/ortto-contract.md: the icon id, "already exists" as 400 or 409, phones,
a refused batch without an IP ban, 403, a person deleted in Ortto, and the 50-events rule."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django import db
from django.template.loader import render_to_string

from sandbox.bigcommerce.models import Customer
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete, checkout_order_place, customer_create
from sandbox.ortto import services as ortto_control
from sandbox.ortto.models import Instance, IpStrikes, Person, PersonActivity, RequestLog
from sandbox.ortto.seed import seed_ortto_instances
from sync.connect.selectors import app_state
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import Connection, SyncEvent, SyncRun
from sync.ortto.schema import ortto_schema_ensure
from sync.tasks import incremental_tick

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

US_KEY = "sbx-default-acmeus-0001"


def instance() -> Instance:
    return Instance.objects.get(name="acme-us")


@pytest.fixture
def bridge_store(make_store):
    """bridge_store(store_hash, *, customers, orders, seed): a seeded sandbox store, installed, and its
    bridge Store."""
    def make(store_hash, *, customers=10, orders=10, seed=1):
        return _bridge_store(make_store, store_hash, customers=customers, orders=orders, seed=seed)

    return make


def _bridge_store(make_store, store_hash, *, customers=10, orders=10, seed=1):
    sandbox_store = seed_bigcommerce(store_hash=store_hash, name=f"Store {store_hash}", customers=customers,
                                     orders=orders, seed=seed)
    seed_users(store_hash=store_hash)
    install = app_install_complete(store=sandbox_store)
    return sandbox_store, make_store(store_hash, name=f"Store {store_hash}", access_token=install.access_token)


def run(store, kind=SyncRun.Kind.INITIAL, **kwargs):
    queued, _ = sync_run_request(store=store, kind=kind)
    return sync_run_execute(run_id=queued.pk, **kwargs)


def in_threads(calls: list) -> list:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def refused_requests() -> int:
    return RequestLog.objects.filter(status__gte=400, status__lt=500).exclude(status=429).count()


@pytest.fixture
def ortto(sandbox_live):
    seed_ortto_instances()
    return instance()


# --- 1 and 2: the definition's icon, and "already exists" whatever its status ---------------------------


@pytest.mark.parametrize("duplicate_status", [409, 400])
def test_two_stores_on_one_ortto_account_both_sync(make_account, make_connection, bridge_store, ortto, duplicate_status):
    ortto_control.instance_set_contract(ortto, duplicate_status=duplicate_status)
    account = make_account(api_key=US_KEY)
    _, first = bridge_store("two1", seed=1)
    _, second = bridge_store("two2", seed=2)
    make_connection(first, account)
    make_connection(second, account)

    assert run(first).status == SyncRun.Status.SUCCEEDED
    fields_created = RequestLog.objects.filter(path="person/custom-field/create").count()
    assert run(second).status == SyncRun.Status.SUCCEEDED

    # The second store read the fields that exist and created none of them again.
    assert RequestLog.objects.filter(path="person/custom-field/create").count() == fields_created == 4
    assert ortto.activity_definitions.get(activity_id="act:cm:placed-order").definition["icon_id"] == \
        "moneys-illustration-icon"
    first_ids = Connection.objects.get(store=first).ortto_schema
    assert Connection.objects.get(store=second).ortto_schema == first_ids


def test_a_fleet_of_stores_connecting_to_one_account_at_once_creates_the_schema_once(make_account, make_connection,
                                                                                     make_store, ortto):
    """An agency connecting several stores to one Ortto account at the same moment: the first prepares the
    fields and the seven definitions while the others wait and take its ids, so no store meets "already
    exists" (a 4xx that counts towards Ortto's bad-request IP ban)."""
    account = make_account(api_key=US_KEY)
    connections = [make_connection(make_store(f"fleet{n}", name=f"Fleet {n}"), account) for n in range(4)]

    def prepare(connection):
        try:
            return ortto_schema_ensure(connection)
        finally:
            db.connection.close()

    schemas = in_threads([lambda c=c: prepare(c) for c in connections])
    assert all(schema == schemas[0] for schema in schemas)
    # Placed order, the journey's six and the product journeys' four.
    assert RequestLog.objects.filter(path="definitions/activity/create").count() == 11
    assert RequestLog.objects.filter(path="person/custom-field/create").count() == 4
    assert refused_requests() == 0
    assert all(c.schema_ready for c in Connection.objects.filter(account=account))


@pytest.mark.parametrize("duplicate_status", [409, 400])
def test_a_reconnect_to_the_same_account_syncs_again(make_account, make_connection, bridge_store, ortto, duplicate_status):
    ortto_control.instance_set_contract(ortto, duplicate_status=duplicate_status)
    _, store = bridge_store("recon", seed=3)
    connection = make_connection(store, make_account(api_key=US_KEY))
    assert run(store).status == SyncRun.Status.SUCCEEDED
    # Reconnect: a new connection row on the same account, whose schema has to be ensured again.
    connection.state = Connection.State.DISCONNECTED
    connection.save()
    make_connection(store, connection.account, merge_strategy=2)
    again = run(store, SyncRun.Kind.FULL)
    assert again.status == SyncRun.Status.SUCCEEDED, again.error_summary
    # Placed order, the six journey activities and the four product ones: each already exists.
    assert RequestLog.objects.filter(path="definitions/activity/create", status=duplicate_status).count() == 11


# --- 3: phones --------------------------------------------------------------------------------------


def test_national_phones_go_with_the_address_country_and_a_refused_phone_never_costs_the_person(make_account, make_connection, bridge_store, ortto):
    sandbox_store, store = bridge_store("phn", customers=0, orders=0)
    customer_create(store=sandbox_store, email="national@example.com", first_name="Nat", last_name="Ional",
                    address={"first_name": "Nat", "last_name": "Ional", "city": "Sydney", "country": "Australia",
                             "country_code": "AU", "phone": "0401 234 567", "postal_code": "2000"})
    customer_create(store=sandbox_store, email="nowhere@example.com", first_name="No", last_name="Where",
                    address={"first_name": "No", "last_name": "Where", "city": "?", "country": "",
                             "country_code": "", "phone": "(555) 123-4567", "postal_code": ""})
    Customer.objects.filter(store=sandbox_store, email="national@example.com").update(phone="0401 234 567")
    make_connection(store, make_account(api_key=US_KEY))
    assert run(store).status == SyncRun.Status.SUCCEEDED

    assert Person.objects.get(email="national@example.com").fields["phn::phone"] == {"c": "61", "n": "401234567"}
    nowhere = Person.objects.get(email="nowhere@example.com")
    assert "phn::phone" not in nowhere.fields


def test_a_person_refused_for_the_phone_alone_is_sent_without_it(make_account, make_connection, bridge_store, ortto, monkeypatch):
    # A phone the contract allows but this Ortto refuses (the emulator reads "+0..." as no number).
    monkeypatch.setattr("sync.engine.mapping.phone_field", lambda value, country_iso2=None:
                        {"phone": "0001234567", "parse_with_country_code": True} if value else None)
    sandbox_store, store = bridge_store("phn2", customers=0, orders=0)
    customer_create(store=sandbox_store, email="odd.phone@example.com", first_name="Odd", last_name="Phone",
                    address={"first_name": "Odd", "last_name": "Phone", "city": "Austin", "country": "United States",
                             "country_code": "US", "phone": "0001234567", "postal_code": "78701"})
    make_connection(store, make_account(api_key=US_KEY))
    finished = run(store)
    assert finished.status == SyncRun.Status.SUCCEEDED
    person = Person.objects.get(email="odd.phone@example.com")
    assert "phn::phone" not in person.fields and person.fields["str::first"] == "Odd"
    assert SyncEvent.objects.filter(run=finished, level="warning", message__contains="phone").exists()


# --- 4: a batch of 100 with 3 bad emails ---------------------------------------------------------------


@pytest.mark.parametrize("batch_errors", ["per_item", "refuse_with_details", "refuse"])
def test_a_batch_of_100_with_3_bad_emails_costs_few_requests_and_no_ban(make_account, make_connection, bridge_store, ortto, batch_errors):
    ortto_control.instance_set_contract(ortto, batch_errors=batch_errors)
    sandbox_store, store = bridge_store("bad3", customers=100, orders=0, seed=4)
    bad = list(Customer.objects.filter(store=sandbox_store).order_by("bc_id")[10:13])
    for number, customer in enumerate(bad):
        Customer.objects.filter(pk=customer.pk).update(email=f"not-an-email-{number}")
    make_connection(store, make_account(api_key=US_KEY))
    finished = run(store)

    assert finished.status == SyncRun.Status.PARTIAL
    merges = RequestLog.objects.filter(path="person/merge")
    assert merges.count() <= 10
    assert refused_requests() == 0 and not IpStrikes.objects.filter(banned_until__gt=0).exists()
    assert SyncEvent.objects.filter(run=finished, message__contains="valid email").count() == 3
    assert Person.objects.filter(instance=ortto).count() >= 97


@pytest.mark.parametrize("with_details", [True, False])
def test_a_refused_batch_is_resolved_in_at_most_10_requests_under_the_ban(make_account, make_connection, bridge_store, ortto, with_details):
    """Bad rows the bridge's own checks cannot see (here: a field the account does not have) in a batch
    Ortto refuses whole, with or without per-person details."""
    from sync.engine import answers, context, planning, sending
    from sync.ortto.schema import ortto_client

    ortto_control.instance_set_contract(ortto, batch_errors="refuse_with_details" if with_details else "refuse")
    _, store = bridge_store("bad4", customers=0, orders=0)
    connection = make_connection(store, make_account(api_key=US_KEY))
    people = [{"fields": {"str::email": f"p{i}@x.io", **({"str:cm:gone": "x"} if i in (10, 40, 80) else {})}}
              for i in range(100)]
    call = planning.MergeCall("create", 1, people, [p["fields"]["str::email"] for p in people])
    ctx = context.SyncContext(run=None, connection=connection, store=store, ortto=ortto_client(connection),
                             bigcommerce=None, log=context.run_logger(store_hash="bad4", run_id=0), field_ids={},
                             activity_id="")

    results = sending.merge_people_safely(ctx, call)

    assert len(results) == 100
    merges = RequestLog.objects.filter(path="person/merge").count()
    assert merges <= 10
    assert refused_requests() < 15 and not IpStrikes.objects.filter(banned_until__gt=0).exists()
    failed = {i for i, r in enumerate(results) if r.get("status") not in answers.OK_PERSON_STATUSES}
    assert {10, 40, 80} <= failed
    if with_details:
        assert failed == {10, 40, 80} and merges == 2
        assert Person.objects.filter(instance=ortto).count() == 97
    else:
        # Re-sent in 9 parts: the 3 refused parts fail whole (a later run retries them), the rest go through.
        assert len(failed) <= 36 and Person.objects.filter(instance=ortto).count() == 100 - len(failed)


# --- 5: 403 mid-run ---------------------------------------------------------------------------------------


def test_a_403_mid_run_pauses_without_blaming_the_key_and_resumes_by_itself(make_account, make_connection, bridge_store, ortto, monkeypatch):
    monkeypatch.setattr("sync.engine.bigcommerce_pages.PAGE_LIMIT", 20)
    _, store = bridge_store("exp1", customers=40, orders=20, seed=6)
    connection = make_connection(store, make_account(api_key=US_KEY))
    pages = []

    def expire_after_first_page(current):
        pages.append(current.pk)
        if len(pages) == 1:
            ortto_control.instance_set_contract(instance(), expired=True)

    stopped = run(store, on_page=expire_after_first_page)
    assert stopped.status == SyncRun.Status.FAILED
    assert "key is not at fault" in stopped.error_summary
    connection.refresh_from_db()
    assert connection.state == Connection.State.PAUSED
    assert "403" in connection.state_reason and "key" not in connection.state_reason.lower()
    shown = app_state(store=store)["connection"]
    assert shown["paused"] and not shown["needs_reconnect"]

    incremental_tick()  # still 403: stays paused, no run
    connection.refresh_from_db()
    assert connection.state == Connection.State.PAUSED
    assert not SyncRun.objects.filter(store=store, status__in=SyncRun.ACTIVE_STATUSES).exists()

    ortto_control.instance_set_contract(instance(), expired=False)
    incremental_tick()
    connection.refresh_from_db()
    assert connection.state == Connection.State.ACTIVE and connection.state_reason == ""
    resumed = SyncRun.objects.get(store=store, status=SyncRun.Status.QUEUED)
    assert sync_run_execute(run_id=resumed.pk).status == SyncRun.Status.SUCCEEDED


# --- 7: a person deleted in Ortto between syncs -----------------------------------------------------------


def test_an_order_of_a_person_deleted_in_ortto_never_recreates_them_subscribed(make_account, make_connection, bridge_store, ortto):
    sandbox_store, store = bridge_store("gdpr", customers=0, orders=0)
    checkout_order_place(store=sandbox_store, email="erased@example.com", first_name="Era", last_name="Sed",
                         subscribe=False)
    make_connection(store, make_account(api_key=US_KEY))
    assert run(store).status == SyncRun.Status.SUCCEEDED
    assert Person.objects.get(email="erased@example.com").email_permission is False

    ortto_control.instance_delete_people(ortto, emails=["erased@example.com"])  # e.g. a GDPR erasure
    checkout_order_place(store=sandbox_store, email="erased@example.com", first_name="Era", last_name="Sed",
                         subscribe=False)
    later = run(store, SyncRun.Kind.INCREMENTAL)
    assert later.status == SyncRun.Status.SUCCEEDED, later.error_summary

    again = Person.objects.get(email="erased@example.com")
    assert again.email_permission is False, "re-created with the store's permission, not Ortto's default"
    assert not again.activities.filter(activity_id="subscribed").exists()
    assert again.activities.filter(activity_id="act:cm:placed-order").count() == 1


# --- 8: a buyer with 80 historic orders ---------------------------------------------------------------


def test_a_buyer_with_80_orders_gets_50_activities_and_80_in_the_totals(make_account, make_connection, bridge_store, ortto):
    sandbox_store, store = bridge_store("heavy", customers=0, orders=0)
    for _ in range(80):
        checkout_order_place(store=sandbox_store, email="heavy@example.com", first_name="Hea", last_name="Vy",
                             subscribe=False)
    make_connection(store, make_account(api_key=US_KEY))
    finished = run(store)
    assert finished.status == SyncRun.Status.SUCCEEDED, finished.error_summary

    person = Person.objects.get(email="heavy@example.com")
    assert PersonActivity.objects.filter(person=person, activity_id="act:cm:placed-order").count() == 50
    assert finished.counters["orders"]["summarized"] == 30
    assert finished.counters["orders"]["created"] == 50
    assert person.fields["int:cm:bigcommerce-order-count"] == 80
    assert SyncEvent.objects.filter(run=finished, level="info", message__contains="30 order(s)").exists()
    panel = render_to_string("sync/_panel.html", {"store": store, "state": app_state(store=store)})
    assert "30 older orders went into their buyers&#x27; totals instead of Placed order activities" in panel
