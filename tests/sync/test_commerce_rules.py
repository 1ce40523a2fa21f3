"""The journey's rules as pure functions: which order changes are news, and what they do to the totals
(sync/engine/orders/journey.py), and what the activities carry (sync/engine/activities.py)."""

from decimal import Decimal

import pytest

from sync.engine.orders import records
from sync.engine.orders.journey import JUST_PLACED, counted_total, order_change, order_is_fulfilled, refunded_amount
from sync.ortto.schema import ALL_SPECS


def order(status_id=11, total="100.00", refunded="0.0000", items_total=2, items_shipped=0, **extra):
    return {"id": 7, "status_id": status_id, "status": "x", "total_inc_tax": total, "refunded_amount": refunded,
            "items_total": items_total, "items_shipped": items_shipped, "currency_code": "USD", **extra}


def change(current, *, previous_status=11, previous_fulfilled=False, previous_refunded="0", previous_counted="100",
           send=True):
    return order_change(order=current, previous_status=previous_status, previous_fulfilled=previous_fulfilled,
                        previous_refunded=Decimal(previous_refunded), previous_counted=Decimal(previous_counted),
                        send=send)


def test_a_shipped_order_is_fulfilled_once():
    assert change(order(status_id=2)).events == ["fulfilled"]
    assert change(order(status_id=2), previous_status=2, previous_fulfilled=True).events == []
    assert change(order(status_id=10)).events == ["fulfilled"]  # Completed (digital, pickup)


def test_a_shipped_order_refunded_before_anyone_looked_is_still_fulfilled():
    current = order(status_id=14, refunded="30.00", items_shipped=2)
    assert order_is_fulfilled(current)
    result = change(current)
    assert result.events == ["fulfilled", "refunded"] and result.refund_amount == Decimal("30.00")
    assert result.total_delta == Decimal("-30.00") and result.count_delta == 0


def test_cancelling_takes_the_order_out_of_the_totals_and_undoing_it_puts_it_back():
    cancelled = change(order(status_id=5))
    assert cancelled.events == ["cancelled"] and cancelled.count_delta == -1 and cancelled.total_delta == -100
    back = change(order(status_id=11), previous_status=5, previous_counted="0")
    assert back.events == [] and back.count_delta == 1 and back.total_delta == 100


def test_each_new_refunded_total_is_one_refund():
    first = change(order(status_id=14, refunded="25.00"))
    second = change(order(status_id=4, refunded="100.00"), previous_status=14, previous_refunded="25",
                    previous_counted="75")
    assert first.events == ["refunded"] and first.refund_amount == 25
    assert second.events == ["refunded"] and second.refund_amount == 75 and second.total_delta == -75
    assert change(order(status_id=14, refunded="25.00"), previous_status=14, previous_refunded="25",
                  previous_counted="75").events == []


def test_refunded_amounts_the_order_does_not_state():
    assert refunded_amount(order(status_id=4, refunded="0")) == Decimal("100.00")  # Refunded: in full
    assert refunded_amount(order(status_id=14, refunded="0")) == 0  # Partially: unknown, nothing sent yet
    assert counted_total(order(status_id=5), 5, Decimal(0)) == 0


def test_an_import_records_without_news_and_a_row_without_status_only_learns_it():
    assert change(order(status_id=2), previous_status=JUST_PLACED, send=False).events == []
    assert change(order(status_id=5), previous_status=None).events == []
    placed_then_shipped = change(order(status_id=2), previous_status=JUST_PLACED)
    assert placed_then_shipped.events == ["fulfilled"]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.key)
def test_definitions_name_their_title_attribute_and_fit_ortto_limits(spec):
    definition = spec.definition()
    names = [a["name"] for a in definition["attributes"]]
    assert spec.title_attribute in names and len(names) <= 15
    assert definition["icon_id"].endswith("-illustration-icon")
    assert definition["display_style"]["attribute_field_id"] == spec.attribute_id(spec.title_attribute)


def test_line_items_come_from_every_kind_of_consignment_and_resource_links_are_not_items():
    lines = {"shipping": [{"line_items": [{"id": 1, "product_id": 5, "name": "A", "quantity": 1}]}],
             "pickups": [{"line_items": [{"id": 2, "product_id": 6, "name": "B", "quantity": 2}]}],
             "downloads": [{"line_items": {"url": "u", "resource": "/orders/7/products/3"}}],
             "email": {"gift_certificates": []}}
    assert [i["id"] for i in records.order_line_items({"consignments": lines})] == [1, 2]
    assert records.order_line_items({"consignments": {"url": "u", "resource": "r"}}) is None
    links_only = {"shipping": [{"line_items": [{"url": "u", "resource": "/orders/7/products/1"}]}]}
    assert records.order_line_items({"consignments": links_only}) is None
