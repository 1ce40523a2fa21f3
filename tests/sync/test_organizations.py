"""Organizations: where a company comes from and how its name is normalized (pure functions)."""

import pytest

from sync.engine.organizations import (
    CUSTOMER,
    clean_company_name,
    cleared_companies,
    company_key,
    customer_company,
    email_domain,
    guest_order_company,
    merge_strategy_for,
    merged_source_fields,
    organization_fields,
    removal_found_nothing,
)
from sync.models import MergeStrategy
from sync.ortto.client import OrttoRequestError


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Acme Ltd", "Acme Ltd"),
        ("  Acme   Ltd ", "Acme Ltd"),
        ("Acme\tLtd\n", "Acme Ltd"),
        ("Acme\u00a0Ltd", "Acme Ltd"),
        ("", ""),
        ("   ", ""),
        (None, ""),
        (42, ""),
        ("n/a", ""),
        ("N/A", ""),
        ("-", ""),
        ("---", ""),
        ("none", ""),
        ("<b>Acme</b> Ltd", "Acme Ltd"),
        ("<script>alert(1)</script>Acme", "alert(1)Acme"),
        ("Ben &amp; Jerry's", "Ben & Jerry's"),
        ("Café 🚲 Bikes", "Café 🚲 Bikes"),
        ("🚲", ""),
    ],
)
def test_company_names_are_cleaned(raw, clean):
    assert clean_company_name(raw) == clean


def test_a_long_company_name_is_cut_to_ortto_string_limit():
    name = clean_company_name("Z" * 300)
    assert len(name) == 255
    # Cut on characters, not bytes: emoji count as one each.
    assert len(clean_company_name("🚲A" * 200)) == 255


def test_a_key_stays_within_the_column_when_case_folding_lengthens_it():
    assert len(company_key("ß" * 300)) == 255


@pytest.mark.parametrize("spelling", ["ACME Ltd", "Acme Ltd ", " acme  ltd", "<i>Acme</i> Ltd", "ACME\u00a0LTD"])
def test_spellings_of_one_company_share_a_key(spelling):
    assert company_key(spelling) == company_key("Acme Ltd") == "acme ltd"


def test_different_companies_have_different_keys():
    assert company_key("Acme Ltd") != company_key("Acme Limited")


def test_customer_company_comes_from_the_customer_then_the_first_address_with_one():
    address = {"company": "Address Co", "address1": "1 Main St", "city": "Austin", "state_or_province": "Texas",
               "country": "United States", "postal_code": "78701"}
    own = customer_company({"email": "a@acme.test", "company": " Acme  Ltd", "addresses": [address]})
    assert own.name == "Acme Ltd" and own.key == "acme ltd"
    assert own.fields["str:o:website"] == "acme.test"
    assert own.fields["geo:o:city"] == {"name": "Austin"} and own.fields["str:o:postal"] == "78701"

    fallback = customer_company({"email": "a@acme.test", "company": "n/a",
                                 "addresses": [{"company": ""}, address]})
    assert fallback.name == "Address Co" and fallback.fields["str:o:address"] == "1 Main St"
    assert customer_company({"email": "a@b.test", "company": "", "addresses": [{"company": "-"}]}) is None
    assert customer_company({"email": "a@b.test"}) is None


def test_webmail_domains_are_not_a_company_website():
    assert email_domain("Jo@Gmail.com") == ""
    assert email_domain("jo@summit-outfitters.test") == "summit-outfitters.test"


def test_guest_orders_bring_their_billing_company_and_registered_orders_do_not():
    billing = {"company": "Guest Corp", "email": "g@guest.test", "street_1": "9 High St", "city": "Leeds",
               "state": "", "zip": "LS1", "country": "United Kingdom"}
    company = guest_order_company({"customer_id": 0, "billing_address": billing})
    assert company.name == "Guest Corp" and company.fields["str:o:address"] == "9 High St"
    assert "geo:o:region" not in company.fields
    assert guest_order_company({"customer_id": 12, "billing_address": billing}) is None


def test_known_company_details_stay_and_new_ones_fill_the_gaps():
    old = {"str:o:website": "first.test", "geo:o:city": {"name": "Austin"}}
    new = {"str:o:website": "second.test", "geo:o:city": {"name": "Denver"}, "str:o:postal": "80202"}
    assert merged_source_fields(old, new) == {"str:o:website": "first.test", "geo:o:city": {"name": "Austin"},
                                              "str:o:postal": "80202"}
    assert merged_source_fields({}, new) == new


def test_organization_fields_carry_name_source_and_aggregates():
    fields = organization_fields(name="Acme Ltd", source_fields={"str:o:website": "acme.test"}, buyers=2,
                                 orders=5, total_spent="123.45")
    assert fields == {"str:o:name": "Acme Ltd", "str:o:website": "acme.test", "int:oc:buyers": 2,
                      "int:oc:orders": 5, "int:oc:total-spent": 123450}


@pytest.mark.parametrize(
    ("strategy", "known", "created", "expected"),
    [
        (MergeStrategy.APPEND_ONLY, False, False, MergeStrategy.APPEND_ONLY),
        (MergeStrategy.APPEND_ONLY, True, True, MergeStrategy.APPEND_ONLY),
        (MergeStrategy.OVERWRITE, True, False, MergeStrategy.OVERWRITE),
        (MergeStrategy.IGNORE, False, False, MergeStrategy.IGNORE),
        (MergeStrategy.IGNORE, True, True, MergeStrategy.APPEND_ONLY),
        (MergeStrategy.IGNORE, True, False, None),
    ],
)
def test_merge_strategy_applies_to_organizations_as_to_people(strategy, known, created, expected):
    assert merge_strategy_for(connection_strategy=strategy, known=known, created_in_ortto=created) == expected


def _state(*, known=True, created=True, store_same=True, counts_same=True):
    from sync.engine.organizations import OrganizationState, aggregate_fields, fingerprint, store_fields

    store = store_fields(name="Acme Ltd", source_fields={"str:o:website": "acme.test"})
    counts = aggregate_fields(name="Acme Ltd", buyers=1, orders=2, total_spent="10.00")
    return OrganizationState(pk=7, known=known, created_in_ortto=created, store=store, aggregates=counts,
                             store_fingerprint=fingerprint(store) if store_same else "old",
                             aggregates_fingerprint=fingerprint(counts) if counts_same else "old")


def _plan(state, strategy):
    from sync.engine.organizations import plan_organization_merges

    return [(m.strategy, m.parts) for m in plan_organization_merges([state], connection_strategy=strategy)]


@pytest.mark.parametrize("strategy", [1, 2, 3])
def test_a_new_organization_is_one_merge_with_everything_and_the_connection_strategy(strategy):
    assert _plan(_state(known=False, created=False, store_same=False, counts_same=False), strategy) == [
        (strategy, ("store", "aggregates"))]


@pytest.mark.parametrize("strategy", [1, 2, 3])
def test_an_unchanged_organization_costs_no_call(strategy):
    assert _plan(_state(), strategy) == []


@pytest.mark.parametrize(("strategy", "created", "expected"), [
    (1, False, [(2, ("aggregates",))]),
    (2, False, [(2, ("aggregates",))]),
    (3, True, [(2, ("aggregates",))]),
    (3, False, []),  # Ignore: an organization Ortto had before the bridge is never merged again
])
def test_new_counts_are_overwritten_whatever_the_strategy(strategy, created, expected):
    assert _plan(_state(created=created, counts_same=False), strategy) == expected


@pytest.mark.parametrize(("strategy", "expected"), [
    (1, [(1, ("store",)), (2, ("aggregates",))]),
    (2, [(2, ("store", "aggregates"))]),  # one merge when both parts use Overwrite
])
def test_changed_store_fields_follow_the_strategy(strategy, expected):
    assert _plan(_state(created=False, store_same=False, counts_same=False), strategy) == expected


def test_append_only_overwrites_the_counts_of_an_organization_ortto_already_had():
    from sync.engine.organizations import OrganizationMerge, plan_counts_overwrite

    state = _state(known=False, created=False, store_same=False, counts_same=False)
    merge = OrganizationMerge(1, 7, {**state.store, **state.aggregates}, ("store", "aggregates"))
    follow_up = plan_counts_overwrite(merge, {"status": "merged"}, state, connection_strategy=1)
    assert (follow_up.strategy, follow_up.parts, follow_up.fields) == (2, ("aggregates",), state.aggregates)
    assert plan_counts_overwrite(merge, {"status": "created"}, state, connection_strategy=1) is None
    ignore = OrganizationMerge(3, 7, merge.fields, merge.parts)
    assert plan_counts_overwrite(ignore, {"status": "merged"}, state, connection_strategy=3) is None


def test_a_customer_who_clears_their_own_company_is_not_kept_in_it_by_an_address():
    address = {"company": "Summit Ltd", "address1": "1 Main St"}
    before = customer_company({"email": "jo@summit.test", "company": "Summit Ltd", "addresses": [address]})
    after = customer_company({"email": "jo@summit.test", "company": "", "addresses": [address]})
    assert before.source == CUSTOMER and after.source == "address" and after.key == before.key
    # The customer's own field named the company before: blank now means cleared.
    assert cleared_companies({"jo@summit.test": after}, {"jo@summit.test": CUSTOMER}) == {"jo@summit.test": None}
    # A customer who only ever gave the company on an address keeps the fallback.
    assert cleared_companies({"jo@summit.test": after}, {"jo@summit.test": "address"}) == {"jo@summit.test": after}
    assert cleared_companies({"jo@summit.test": after}, {}) == {"jo@summit.test": after}
    assert cleared_companies({"jo@summit.test": before}, {"jo@summit.test": CUSTOMER}) == {"jo@summit.test": before}


@pytest.mark.parametrize(("status", "message", "nothing"), [
    (400, "person 0069 is not a member of account 1060", True),
    (404, "Account not found", True),
    (400, "none of inclusion_ids is a known person", True),
    (400, "unknown person id", True),
    (400, "inclusion_ids must be a non-empty list of person ids", False),
    (500, "not found", False),
])
def test_a_removal_that_finds_nothing_to_remove_counts_as_removed(status, message, nothing):
    assert removal_found_nothing(OrttoRequestError(message, status=status)) is nothing


@pytest.mark.parametrize("strategy", [1, 2, 3])
def test_an_organization_ortto_took_without_its_id_is_only_looked_up_again(strategy):
    """An earlier answer without the account id (e.g. "ignored" under Ignore): what Ortto took is not sent
    again; only the name goes out, Append only, to learn the id its people are linked with."""
    from sync.engine.organizations import plan_organization_merges

    state = _state(known=False, created=False)
    merges = plan_organization_merges([state], connection_strategy=strategy)
    assert [(m.strategy, m.parts, m.fields) for m in merges] == [(1, ("lookup",), {"str:o:name": "Acme Ltd"})]
