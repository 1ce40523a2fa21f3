"""BigCommerce records → Ortto person fields and Placed order activities."""

from datetime import datetime, timezone
from decimal import Decimal

from sync.engine import mapping
from sync.engine.orders import records

CUSTOMER = {
    "id": 42, "email": " Ann@Example.COM ", "first_name": "Ann", "last_name": "Lee", "phone": "+1 (555) 010-0200",
    "date_modified": "2025-03-01T10:00:00Z",
    "addresses": [{"city": "Austin", "state_or_province": "Texas", "country": "United States", "postal_code": "78701"}],
}


def test_customer_maps_to_person_fields():
    person = mapping.customer_to_person(CUSTOMER)
    assert person.email == "ann@example.com"
    assert person.fields == {
        "str::email": "ann@example.com", "str::first": "Ann", "str::last": "Lee",
        "phn::phone": {"phone": "15550100200", "parse_with_country_code": True},
        "geo::city": {"name": "Austin"}, "geo::region": {"name": "Texas"}, "geo::country": {"name": "United States"},
        "str::postal": "78701", "int:cm:bigcommerce-customer-id": 42,
    }
    assert person.signal.store_opt_in is None
    assert "bol::p" not in person.fields


def test_empty_values_are_left_out_not_sent_blank():
    person = mapping.customer_to_person({"id": 1, "email": "a@b.c", "first_name": "", "phone": "", "addresses": []})
    assert person.fields == {"str::email": "a@b.c", "int:cm:bigcommerce-customer-id": 1}


def test_strings_are_truncated_to_255():
    person = mapping.subscriber_to_person({"email": "a@b.c", "first_name": "x" * 400, "consents": []})
    assert len(person.fields["str::first"]) == 255


def test_subscriber_consent_is_the_signal():
    person = mapping.subscriber_to_person({"id": 7, "email": "S@x.io", "consents": ["marketing_newsletter"],
                                           "date_modified": "2025-03-01T10:00:00+00:00"})
    assert person.signal.store_opt_in is True
    assert person.signal.signal_at == datetime(2025, 3, 1, 10, tzinfo=timezone.utc)


def test_fingerprint_ignores_permission_and_key_order():
    a = mapping.fingerprint({"str::email": "a@b.c", "str::first": "A", "bol::p": True})
    b = mapping.fingerprint({"str::first": "A", "str::email": "a@b.c"})
    assert a == b
    assert a != mapping.fingerprint({"str::first": "B", "str::email": "a@b.c"})


ORDER = {
    "id": 101, "customer_id": 0, "status_id": 11, "status": "Awaiting Fulfillment", "total_inc_tax": "42.5000",
    "currency_code": "USD", "items_total": 3, "is_email_opt_in": True,
    "date_created": "Tue, 04 Mar 2025 12:30:00 +0000", "date_modified": "Tue, 04 Mar 2025 12:31:00 +0000",
    "billing_address": {"first_name": "Gus", "last_name": "Guest", "email": "Gus@Guest.io", "city": "Leeds",
                        "state": "", "country": "United Kingdom", "zip": "LS1", "phone": ""},
}


def test_guest_order_maps_to_person_with_opt_in_signal():
    person = records.order_to_person(ORDER)
    assert person.email == "gus@guest.io"
    assert person.fields["geo::country"] == {"name": "United Kingdom"}
    assert "geo::region" not in person.fields
    assert person.signal.store_opt_in is True
    assert person.signal.signal_at == datetime(2025, 3, 4, 12, 30, tzinfo=timezone.utc)
    assert person.bc_customer_id is None


def test_order_becomes_placed_order_activity_with_value_times_1000():
    activity = records.order_activity(order=ORDER, email="gus@guest.io", store_hash="abc", store_name="Acme")
    assert activity == {
        "activity_id": "act:cm:placed-order",
        "attributes": {"int::v": 42500, "str:cm:order-id": "101", "str:cm:currency": "USD",
                       "int:cm:item-count": 3, "str:cm:status": "Awaiting Fulfillment", "str:cm:store": "Acme"},
        "fields": {"str::email": "gus@guest.io"},
        "key": "bc:abc:order:101",
        "created": "2025-03-04T12:30:00Z",
    }
    assert len(activity["attributes"]) <= 15


def test_incomplete_orders_are_not_placed():
    assert records.order_is_placed(ORDER)
    assert not records.order_is_placed({**ORDER, "status_id": 0})


def test_aggregates_use_int_times_1000_and_a_date_object():
    fields = mapping.aggregate_fields(email="a@b.c", order_count=2, total_spent=Decimal("10.005"),
                                      last_order_at=datetime(2025, 3, 4, 23, tzinfo=timezone.utc))
    assert fields == {
        "str::email": "a@b.c", "int:cm:bigcommerce-order-count": 2, "int:cm:bigcommerce-total-spent": 10005,
        "dtz:cm:bigcommerce-last-order-date": {"year": 2025, "month": 3, "day": 4, "timezone": "UTC"},
    }


def test_dates_parse_from_iso_and_rfc2822():
    assert mapping.parse_bc_datetime("2025-03-01T10:00:00Z") == datetime(2025, 3, 1, 10, tzinfo=timezone.utc)
    assert mapping.parse_bc_datetime("Sat, 01 Mar 2025 10:00:00 +0000") == datetime(2025, 3, 1, 10, tzinfo=timezone.utc)
    assert mapping.parse_bc_datetime("") is None
    assert mapping.parse_bc_datetime("nonsense") is None
