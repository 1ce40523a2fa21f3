"""The shopper's journey in real Chromium, against the sandbox over real HTTP: a cart abandoned on the
storefront becomes Abandoned cart in Ortto, its link restores the cart, the order that follows is Placed
order, Ordered product and Cart recovered; shipped and refunded from the control panel, it becomes
Fulfilled order and Refunded order. The README's journey pictures (10-15) are saved on the way."""

import re

import pytest

from sandbox.ortto.models import Person, PersonActivity
from sync.models import SyncRun
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_journey import connect, install_and_open

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

SHOPPER = "river.stone@example.com"


def _wait_for(page, condition, what, tries=120):
    for _ in range(tries):
        if condition():
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_shopper_from_abandoned_cart_to_refund(page, sandbox, thread_worker, shoot, settings):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = True  # BigCommerce delivers on its own, as in `make run`
    context = page.context
    frame = install_and_open(page, sandbox)
    tab = connect(context, frame, account="Acme Outdoor (US)", strategy="Import and merge new records only")
    _wait_for(tab, lambda: "Succeeded" in tab.locator("#progress-text").inner_text(), "the initial sync")
    tab.close()

    # The storefront: two products in the cart, the shopper gives an email, then leaves.
    store = context.new_page()
    store.goto(sandbox + "/sandbox/bigcommerce/store-demo1234/storefront/")
    tent = store.locator("form.product", has_text="Trail Tent 2P")
    tent.locator("input[name=email]").fill(SHOPPER)
    tent.get_by_role("button", name="Add to cart").click()
    mug = store.locator("form.product", has_text="Titanium Mug")
    mug.locator("input[name=quantity]").fill("2")
    mug.get_by_role("button", name="Add to cart").click()
    assert store.locator("#cart table.basket tbody tr").count() == 2
    # The cart adds up at the listed prices: 189.00 + 2 × 24.50 = 238.00, 8 % tax, free shipping.
    assert store.locator("#cart [data-total=subtotal]").inner_text() == "$238.00"
    assert store.locator("#cart [data-total=total]").inner_text() == "$257.04"
    shoot(store, "10-storefront-cart")
    store.get_by_role("button", name=re.compile("Abandon cart now")).click()
    store.get_by_text("Your cart is empty.").wait_for()

    # Ortto: the shopper (never seen before: unsubscribed, R2) has Abandoned cart with a working link.
    _wait_for(store, lambda: PersonActivity.objects.filter(activity_id="act:cm:abandoned-cart").exists(),
              "Abandoned cart in Ortto")
    person = Person.objects.get(email=SHOPPER)
    assert person.email_permission is False
    assert person.fields["str::u-ctx"] == "Left a cart at Acme Outdoor Co.; did not opt in to the newsletter"
    ortto = context.new_page()
    ortto.goto(f"{sandbox}/sandbox/ortto/app/acme-us/people/{person.person_id}/")
    ortto.get_by_text("Abandoned cart").first.wait_for()
    assert ortto.get_by_text(re.compile("2 x Titanium Mug")).is_visible()
    shoot(ortto, "11-ortto-abandoned-cart")

    # The recovery link in the activity (beside the product's link and picture) brings the cart back.
    ortto.locator("a.attr-link[href*=\"action=recover\"]").first.click()
    ortto.get_by_text("your cart is as you left it").wait_for()
    assert ortto.locator("#cart table.basket tbody tr").count() == 2
    shoot(ortto, "12-cart-restored")
    ortto.get_by_role("button", name="Check out").click()
    ortto.get_by_text(re.compile(r"Order #\d+ placed: \$257\.04 charged")).wait_for()
    order_id = re.search(r"Order #(\d+) placed", ortto.content()).group(1)
    _wait_for(ortto, lambda: PersonActivity.objects.filter(activity_id="act:cm:cart-recovered").exists(),
              "Cart recovered in Ortto")
    assert PersonActivity.objects.filter(person=person, activity_id="act:cm:ordered-product").count() == 2

    # The control panel: ship the order, then refund part of it.
    panel = page
    panel.goto(f"{sandbox}/sandbox/bigcommerce/store-demo1234/manage/orders/")
    row = panel.locator("tr", has_text=f"#{order_id}")
    row.get_by_role("button", name="Ship").click()
    panel.get_by_text(f"Order #{order_id} shipped.").wait_for()
    row = panel.locator("tr", has_text=f"#{order_id}")
    row.locator("input[name=amount]").fill("60.00")
    row.get_by_role("button", name="Refund").click()
    panel.get_by_text(f"Refunded 60.00 on order #{order_id}.").wait_for()
    panel.set_viewport_size({"width": 1700, "height": 640})
    panel.screenshot(path=str(ARTIFACTS / "13-control-panel-orders.png"))  # the top of a long list
    _wait_for(panel, lambda: PersonActivity.objects.filter(person=person, activity_id="act:cm:refunded-order").exists()
              and PersonActivity.objects.filter(person=person, activity_id="act:cm:fulfilled-order").exists(),
              "Fulfilled and Refunded order in Ortto")
    _wait_for(panel, lambda: not SyncRun.objects.filter(status__in=SyncRun.ACTIVE_STATUSES).exists(), "runs to end")

    # One person's journey in Ortto, from the cart to the refund; each activity once.
    ortto.goto(f"{sandbox}/sandbox/ortto/app/acme-us/people/{person.person_id}/")
    for title in ("Abandoned cart", "Placed order", "Ordered product", "Cart recovered", "Fulfilled order",
                  "Refunded order"):
        assert ortto.get_by_text(title).first.is_visible(), title
    shoot(ortto, "14-ortto-journey")
    counts = {a: PersonActivity.objects.filter(person=person, activity_id=a).count() for a in (
        "act:cm:abandoned-cart", "act:cm:placed-order", "act:cm:cart-recovered", "act:cm:fulfilled-order",
        "act:cm:refunded-order")}
    assert set(counts.values()) == {1}, counts
