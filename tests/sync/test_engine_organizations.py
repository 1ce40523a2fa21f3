"""Organizations over real HTTP: the store's companies become accounts in the emulated Ortto, with their people."""

import math

import pytest
from django.template.loader import render_to_string
from django.utils import timezone

from sandbox.bigcommerce.models import Customer, Order
from sandbox.bigcommerce.seed import seed_bigcommerce
from sandbox.bigcommerce.services import app_install_complete
from sandbox.ortto.models import Account, Instance, Person, RequestLog
from sandbox.ortto.seed import seed_ortto_instances
from sandbox.ortto.services import instance_fail_next
from sync.connect.selectors import app_state
from sync.engine.organizations import company_key
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import OrganizationLedger, OrganizationMember, SyncEvent, SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

KEY = "sbx-default-acmeus-0001"


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr("stores.http.backoff_delay", lambda attempt: 0.01)


@pytest.fixture
def b2b_store(make_account, make_connection, make_store):
    """Builds a seeded sandbox store and its connected bridge store: (sandbox store, store, connection)."""

    def build(store_hash, *, customers=40, orders=40, b2b_share=0.5, strategy=1, seed=4):
        sandbox_store = seed_bigcommerce(store_hash=store_hash, name=f"B2B {store_hash}", customers=customers,
                                         orders=orders, seed=seed, b2b_share=b2b_share)
        install = app_install_complete(store=sandbox_store)
        seed_ortto_instances()
        store = make_store(store_hash, name=f"B2B {store_hash}", access_token=install.access_token)
        connection = make_connection(store, make_account(api_key=KEY), merge_strategy=strategy)
        return sandbox_store, store, connection

    return build


def _run(store, kind=SyncRun.Kind.INITIAL):
    run, _ = sync_run_request(store=store, kind=kind, enqueue_run=False)
    return sync_run_execute(run_id=run.pk, sliced=False)


def _company_of(customer: Customer) -> str:
    """The company the store names for a customer (what sync.engine.organizations reads), normalized."""
    if company_key(customer.company):
        return company_key(customer.company)
    return next((company_key(a.get("company")) for a in customer.addresses if company_key(a.get("company"))), "")


def _expected_members(sandbox_store) -> dict[str, set[str]]:
    expected: dict[str, set[str]] = {}
    for customer in Customer.objects.filter(store=sandbox_store):
        if _company_of(customer):
            expected.setdefault(_company_of(customer), set()).add(customer.email.lower())
    for order in Order.objects.filter(store=sandbox_store, customer_id=0).exclude(status_id=0).order_by("bc_id"):
        key = company_key(order.billing_address.get("company"))
        if key:
            expected.setdefault(key, set()).add(order.billing_address["email"].lower())
    return expected


def _ortto_members() -> dict[str, set[str]]:
    return {company_key(a.name): {p.email for p in a.people.all()} for a in Account.objects.all()}


def _calls(path) -> int:
    return RequestLog.objects.filter(path=path, status=200).count()


def test_initial_import_creates_each_company_once_with_its_people(b2b_store, sandbox_live):
    sandbox_store, store, connection = b2b_store("org1")
    run = _run(store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary

    expected = _expected_members(sandbox_store)
    assert len(expected) >= 2
    assert _ortto_members() == expected
    assert Account.objects.count() == len(expected), "one account per normalized name, never two"
    account = Account.objects.order_by("name").first()
    assert account.fields["int:oc:buyers"] <= len(expected[company_key(account.name)])
    assert run.counters["organizations"]["created"] == len(expected)
    # The fewest requests Ortto allows: merges of 100, one add per organization, no removal.
    assert _calls("accounts/merge") == math.ceil(len(expected) / 100)
    assert _calls("accounts/contacts/add") == len(expected)
    assert _calls("accounts/contacts/remove") == 0

    # Nothing changed in the store: no organization call at all.
    before = RequestLog.objects.filter(path__startswith="accounts/").count()
    again = _run(store, SyncRun.Kind.INCREMENTAL)
    assert again.status == SyncRun.Status.SUCCEEDED
    assert RequestLog.objects.filter(path__startswith="accounts/").count() == before
    assert again.counters["organizations"]["unchanged"] == len(expected)


def test_renamed_moved_and_emptied_companies_move_people_in_ortto(b2b_store, sandbox_live):
    sandbox_store, store, connection = b2b_store("org2", orders=0)
    assert _run(store).status == SyncRun.Status.SUCCEEDED
    with_company = [c for c in Customer.objects.filter(store=sandbox_store).order_by("bc_id") if _company_of(c)]
    renamed, moved, emptied = with_company[0], with_company[1], with_company[2]
    other = next(c for c in with_company if _company_of(c) not in (_company_of(moved), ""))
    old_of_moved = _company_of(moved)

    now = timezone.now()
    Customer.objects.filter(pk=renamed.pk).update(company="Brand New Name Inc", addresses=[], date_modified=now)
    Customer.objects.filter(pk=moved.pk).update(company=other.company or _company_of(other), addresses=[],
                                                date_modified=now)
    Customer.objects.filter(pk=emptied.pk).update(company="", addresses=[], date_modified=now)
    run = _run(store, SyncRun.Kind.INCREMENTAL)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary

    members = _ortto_members()
    assert members["brand new name inc"] == {renamed.email.lower()}
    assert moved.email.lower() in members[_company_of(other)]
    assert moved.email.lower() not in members.get(old_of_moved, set())
    assert not any(emptied.email.lower() in people for people in members.values())
    assert members == {key: people for key, people in _expected_members(sandbox_store).items()} | {
        key: set() for key in members if key not in _expected_members(sandbox_store)}
    # Gone, or kept unlinked as the memory of a customer's own cleared company field.
    cleared = OrganizationMember.objects.filter(connection=connection, email=emptied.email.lower()).first()
    assert cleared is None or (cleared.organization is None and cleared.linked_organization is None)


@pytest.mark.parametrize(("remove_absent", "removed_by_hand"), [("ok", False), ("ok", True), ("refuse", True)])
def test_a_cleared_company_unlinks_the_customer_though_an_address_still_names_it(b2b_store, sandbox_live,
                                                                                 remove_absent, removed_by_hand):
    """BigCommerce keeps the company an address was entered with. A customer whose own company field is
    cleared leaves the organization in Ortto (one `contacts/remove`), and stays out on later runs; a removal
    Ortto answers "not a member" (someone unlinked them by hand first) is done, not an error."""
    sandbox_store, store, connection = b2b_store(f"org8{remove_absent[0]}{int(removed_by_hand)}", b2b_share=0,
                                                 orders=0)
    buyer, colleague = Customer.objects.filter(store=sandbox_store).order_by("bc_id")[:2]
    for customer in (buyer, colleague):
        addresses = [{**address, "company": "Summit Ltd"} for address in customer.addresses]
        Customer.objects.filter(pk=customer.pk).update(company="Summit Ltd", addresses=addresses)
    assert buyer.addresses, "the seed gives customers an address"
    assert _run(store).status == SyncRun.Status.SUCCEEDED
    assert _ortto_members() == {"summit ltd": {buyer.email.lower(), colleague.email.lower()}}
    instance = Instance.objects.get(api_key=KEY)
    from sandbox.ortto.services import instance_set_contract
    instance_set_contract(instance, remove_absent=remove_absent)
    if removed_by_hand:
        account = Account.objects.get(name="Summit Ltd")
        account.people.remove(Person.objects.get(email=buyer.email.lower()))

    Customer.objects.filter(pk=buyer.pk).update(company="", date_modified=timezone.now())
    run = _run(store, SyncRun.Kind.INCREMENTAL)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert not SyncEvent.objects.filter(run=run, level=SyncEvent.Level.ERROR).exists()
    assert _ortto_members() == {"summit ltd": {colleague.email.lower()}}
    assert _calls("accounts/contacts/remove") == (0 if remove_absent == "refuse" else 1)
    member = OrganizationMember.objects.get(connection=connection, email=buyer.email.lower())
    assert member.organization is None and member.linked_organization is None

    # Read again (a full run), the address's company does not bring them back.
    removes = RequestLog.objects.filter(path="accounts/contacts/remove").count()
    assert _run(store, SyncRun.Kind.FULL).status == SyncRun.Status.SUCCEEDED
    assert _ortto_members() == {"summit ltd": {colleague.email.lower()}}
    assert RequestLog.objects.filter(path="accounts/contacts/remove").count() == removes


@pytest.mark.parametrize(("strategy", "website", "industry", "counter"), [
    (1, "old.test", "Retail", "updated"),  # Append only: fills empty fields, keeps the store's others
    (2, "summit.test", "Retail", "updated"),  # Overwrite: replaces what the bridge sends, leaves other fields
    (3, "old.test", "Retail", "unchanged"),  # Ignore: an existing organization is left alone entirely
])
def test_merge_strategy_applies_to_existing_organizations(b2b_store, sandbox_live, strategy, website, industry, counter):
    sandbox_store, store, connection = b2b_store(f"org3{strategy}", b2b_share=0, strategy=strategy)
    seed_ortto_instances()
    customer = Customer.objects.filter(store=sandbox_store).order_by("bc_id").first()
    Customer.objects.filter(pk=customer.pk).update(email="buyer@summit.test", company="Summit Ltd")
    instance = Instance.objects.get(api_key=KEY)
    Account.objects.create(instance=instance, name="Summit Ltd", fields={
        "str:o:name": "Summit Ltd", "str:o:website": "old.test", "str:o:industry": "Retail"})

    run = _run(store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    account = Account.objects.get(name="Summit Ltd")
    assert Account.objects.count() == 1
    assert account.fields["str:o:website"] == website
    assert account.fields["str:o:industry"] == industry
    # The counts are the bridge's own fields: written under Append only and Overwrite, not under Ignore.
    assert ("int:oc:orders" in account.fields) is (strategy != 3)
    assert {p.email for p in account.people.all()} == {"buyer@summit.test"}, "its people are linked in every strategy"
    assert run.counters["organizations"][counter] == 1


@pytest.mark.parametrize("strategy", [1, 2, 3])
def test_new_orders_update_the_counts_of_an_organization_the_bridge_created(b2b_store, sandbox_live, strategy):
    """Counts are the bridge's: they follow the store under every strategy, with one merge per change;
    what the store says of the company follows the strategy."""
    from sandbox.bigcommerce.services import checkout_order_place

    sandbox_store, store, connection = b2b_store(f"org7{strategy}", b2b_share=0, orders=0, strategy=strategy)
    customer = Customer.objects.filter(store=sandbox_store).order_by("bc_id").first()
    Customer.objects.filter(pk=customer.pk).update(email="buyer@summit.test", company="Summit Ltd")
    assert _run(store).status == SyncRun.Status.SUCCEEDED
    account = Account.objects.get(name="Summit Ltd")
    assert account.fields["int:oc:orders"] == 0
    customer.refresh_from_db()
    checkout_order_place(store=sandbox_store, email=customer.email, first_name="B", last_name="Buyer",
                         subscribe=False, customer=customer)
    merges = _calls("accounts/merge")
    run = _run(store, SyncRun.Kind.INCREMENTAL)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    account.refresh_from_db()
    assert account.fields["int:oc:orders"] == 1 and account.fields["int:oc:buyers"] == 1
    assert account.fields["int:oc:total-spent"] > 0
    assert _calls("accounts/merge") == merges + 1
    assert run.counters["organizations"]["updated"] == 1


def test_server_errors_and_throttling_on_organization_calls_are_retried_without_doubles(b2b_store, 
    sandbox_live, monkeypatch, fast_retries
):
    sandbox_store, store, connection = b2b_store("org4", orders=0)
    instance = Instance.objects.get(api_key=KEY)
    from sync.engine import organizations
    from sync.ortto.client import OrttoClient

    push = organizations.organizations_push
    add = OrttoClient.add_account_people
    state = {"adds": 0}

    def push_with_faults(ctx, **kwargs):
        instance_fail_next(instance, count=2, status=500)
        return push(ctx, **kwargs)

    def add_with_faults(self, **kwargs):
        state["adds"] += 1
        if state["adds"] == 2:
            instance_fail_next(instance, count=1, status=429)
        return add(self, **kwargs)

    monkeypatch.setattr(organizations, "organizations_push", push_with_faults)
    monkeypatch.setattr(OrttoClient, "add_account_people", add_with_faults)
    run = _run(store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert RequestLog.objects.filter(status=500).count() == 2 and RequestLog.objects.filter(status=429).count() == 1
    assert _ortto_members() == _expected_members(sandbox_store)


def test_an_outage_during_linking_resumes_without_losing_or_doubling(b2b_store, sandbox_live, monkeypatch, fast_retries):
    sandbox_store, store, connection = b2b_store("org5", orders=0)
    instance = Instance.objects.get(api_key=KEY)
    from sync.ortto.client import OrttoClient

    add = OrttoClient.add_account_people
    outage = {"on": True}

    def add_during_outage(self, **kwargs):
        if outage["on"]:
            outage["on"] = False
            instance_fail_next(instance, count=20, status=503)
        return add(self, **kwargs)

    monkeypatch.setattr(OrttoClient, "add_account_people", add_during_outage)
    run = _run(store)
    assert run.status == SyncRun.Status.QUEUED, "the run waits to retry"
    instance_fail_next(instance, count=0, status=503)
    run = sync_run_execute(run_id=run.pk, sliced=False)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    expected = _expected_members(sandbox_store)
    assert _ortto_members() == expected
    assert Account.objects.count() == len(expected)
    assert OrganizationLedger.objects.filter(connection=connection).exclude(ortto_account_id="").count() == len(expected)


def test_bad_company_names_change_nothing_else(b2b_store, sandbox_live):
    sandbox_store, store, connection = b2b_store("org6", b2b_share=0, orders=0)
    customers = list(Customer.objects.filter(store=sandbox_store).order_by("bc_id")[:6])
    names = ["Z" * 300, "<b>Bold</b> &amp; Co", "Café 🚲 Bikes", "ACME Ltd", " acme  ltd ", "n/a"]
    for customer, name in zip(customers, names):
        Customer.objects.filter(pk=customer.pk).update(company=name)
    run = _run(store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert not SyncEvent.objects.filter(run=run).exists()
    assert Person.objects.count() >= len(Customer.objects.filter(store=sandbox_store))
    by_key = {company_key(a.name): a for a in Account.objects.all()}
    assert Account.objects.count() == 4
    assert set(by_key) == {"z" * 255, "bold & co", "café 🚲 bikes", "acme ltd"}
    assert by_key["acme ltd"].name in ("ACME Ltd", "acme ltd"), "the first spelling seen, cleaned"
    assert {p.email for p in by_key["acme ltd"].people.all()} == {customers[3].email.lower(),
                                                                 customers[4].email.lower()}
    assert customers[5].email.lower() not in {p.email for a in Account.objects.all() for p in a.people.all()}


def test_people_beyond_ortto_s_cap_per_organization_are_counted_not_sent(b2b_store, sandbox_live, monkeypatch):
    """Ortto holds 3,000 people per organization (here 3, on both sides): the bridge links up to the cap, sends
    no link Ortto would refuse, says how many wait in a warning, and counts them in the run."""
    from sandbox.ortto import accounts as emulated

    monkeypatch.setattr(emulated, "MAX_PEOPLE_PER_ACCOUNT", 3)
    monkeypatch.setattr("sync.engine.organizations.MAX_PEOPLE_PER_ACCOUNT", 3)
    sandbox_store, store, connection = b2b_store("org9", b2b_share=0, orders=0)
    staff = list(Customer.objects.filter(store=sandbox_store).order_by("bc_id")[:5])
    Customer.objects.filter(pk__in=[c.pk for c in staff]).update(company="Big Corp")
    run = _run(store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert not SyncEvent.objects.filter(run=run, level=SyncEvent.Level.ERROR).exists()
    assert len(_ortto_members()["big corp"]) == 3
    assert not RequestLog.objects.filter(path="accounts/contacts/add").exclude(status=200).exists()
    warning = SyncEvent.objects.get(run=run, level=SyncEvent.Level.WARNING, resource="organizations")
    assert "'Big Corp' has 3 people linked in Ortto" in warning.message and "2 more not linked" in warning.message
    assert run.counters["organizations"]["not_linked"] == 2
    # The store owner reads it on the app page too.
    panel = render_to_string("sync/_panel.html", {"state": app_state(store=store), "authority": {}})
    assert "2 people were not linked to their company in Ortto: Ortto links at most 3,000 people" in panel
    big = OrganizationLedger.objects.get(connection=connection, key="big corp")
    assert big.linked_members.count() == 3 and big.members.count() == 5

    # One of them leaves the company: a place frees up and one who waited is linked.
    Customer.objects.filter(pk=staff[0].pk).update(company="", addresses=[], date_modified=timezone.now())
    again = _run(store, SyncRun.Kind.INCREMENTAL)
    assert again.status == SyncRun.Status.SUCCEEDED, again.error_summary
    assert len(_ortto_members()["big corp"]) == 3 and staff[0].email.lower() not in _ortto_members()["big corp"]
    assert again.counters["organizations"]["not_linked"] == 1


@pytest.mark.parametrize("status", ["ignored", "unchanged", "none", "ignored-no-id"])
def test_an_existing_organization_under_ignore_is_neither_failed_nor_merged_twice(b2b_store, sandbox_live, status):
    """What Ortto answers under Ignore (3) for an account it already has is not public: whatever the answer,
    even "ignored" without the account id, the organization is not counted failed, its account keeps its
    fields, its people are linked (an id-less answer is followed by a merge of the name alone, Append only,
    which writes nothing and names the account), and the next run sends no merge for it."""
    sandbox_store, store, connection = b2b_store(f"org9{status[:3]}", b2b_share=0, strategy=3)
    seed_ortto_instances()
    customer = Customer.objects.filter(store=sandbox_store).order_by("bc_id").first()
    Customer.objects.filter(pk=customer.pk).update(email="buyer@summit.test", company="Summit Ltd")
    instance = Instance.objects.get(api_key=KEY)
    instance.account_ignore_status = status
    instance.save(update_fields=["account_ignore_status"])
    before = {"str:o:name": "Summit Ltd", "str:o:website": "old.test", "str:o:industry": "Retail"}
    Account.objects.create(instance=instance, name="Summit Ltd", fields=before)

    run = _run(store)
    assert run.status == SyncRun.Status.SUCCEEDED, run.error_summary
    assert run.failed == 0 and run.counters["organizations"]["failed"] == 0
    assert run.counters["organizations"]["unchanged"] == 1
    assert not SyncEvent.objects.filter(resource="organizations", level=SyncEvent.Level.ERROR).exists()
    account = Account.objects.get(name="Summit Ltd")
    assert Account.objects.count() == 1 and account.fields == before
    assert {p.email for p in account.people.all()} == {"buyer@summit.test"}
    assert OrganizationLedger.objects.get(connection=connection).ortto_account_id == account.account_id

    merges = _calls("/v1/accounts/merge")
    again = _run(store, SyncRun.Kind.INCREMENTAL)
    assert again.status == SyncRun.Status.SUCCEEDED and again.failed == 0
    assert _calls("/v1/accounts/merge") == merges, "not merged twice"
