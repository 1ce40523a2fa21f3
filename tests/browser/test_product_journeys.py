"""The product journeys in real Chromium, against the sandbox over real HTTP: with tracking on, the storefront
script shows the back-in-stock form on a sold-out product page (Waiting on stock), the control panel's Restock
button brings Back in stock, a signed-in shopper's product view becomes Viewed product (verified through the
Current Customer JWT) and their cart, Added to cart. Each activity once, with the product's link and picture;
the README's product pictures (23-26) are saved on the way; the back-in-stock form shows the consent wording
the owner set on the app page."""

import re

import pytest
from playwright.sync_api import Error as PlaywrightError

from sandbox.bigcommerce.models import Customer
from sandbox.ortto.models import Person, PersonActivity
from sync.models import StockAlertPreference, SyncRun
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_journey import connect, install_and_open

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

WAITER = "fern.waits@example.com"
WORDING = "Yes, e-mail me once when it is back in stock (this adds me to no newsletter)."


def _wait_for(page, condition, what, tries=160):
    for _ in range(tries):
        if condition():
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"timed out waiting for {what}")


def _idle():
    return not SyncRun.objects.filter(status__in=SyncRun.ACTIVE_STATUSES).exists()


def test_storefront_product_journeys(page, sandbox, thread_worker, shoot, settings):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = True  # BigCommerce delivers on its own, as in `make run`
    frame = install_and_open(page, sandbox)
    tab = connect(page.context, frame, account="Acme Outdoor (EU)", strategy="Import and merge new records only")
    _wait_for(tab, lambda: "Succeeded" in tab.locator("#progress-text").inner_text(), "the initial sync")
    tab.close()
    frame.get_by_label(re.compile("Enable tracking")).check()
    frame.get_by_text("is installed on your storefront").wait_for()

    # The owner words the form's consent on the app page; the storefront shows that wording.
    frame.locator("#stock-consent-text").fill(WORDING)
    frame.locator("#stock-consent-save").click()
    _wait_for(page, lambda: StockAlertPreference.objects.filter(consent_text=WORDING).exists(), "the wording saved")
    for attempt in range(3):  # the poller may swap a fresher panel in while the picture is taken
        try:
            frame.locator("#stock-alerts").screenshot(path=str(ARTIFACTS / "26-app-page-stock-wording.png"))
            break
        except PlaywrightError:
            if attempt == 2:
                raise

    # A sold-out product page: the script adds the form; the same e-mail twice is one wait.
    shop = page.context.new_page()
    shop.goto(sandbox + "/sandbox/bigcommerce/store-demo1234/storefront/wool-hiking-socks/")
    form = shop.locator("form.ortto-bridge-stock")
    form.get_by_text("E-mail me when it's back").wait_for()
    form.get_by_text(WORDING).wait_for()
    form.get_by_label("Your e-mail").fill(WAITER)
    form.get_by_role("button", name="Notify me").click()
    assert not PersonActivity.objects.filter(activity_id="act:cm:waiting-on-stock").exists()  # consent is required
    form.get_by_role("checkbox").check()
    form.get_by_role("button", name="Notify me").click()
    form.get_by_text("Thanks! We will e-mail you once when it is back.").wait_for()
    shoot(shop, "23-storefront-back-in-stock")
    form.get_by_role("button", name="Notify me").click()
    form.get_by_text("You are on the list already").wait_for()
    _wait_for(shop, lambda: PersonActivity.objects.filter(activity_id="act:cm:waiting-on-stock").exists(),
              "Waiting on stock in Ortto")

    # The control panel's Restock button: the waiting shopper gets Back in stock, once.
    page.goto(sandbox + "/sandbox/bigcommerce/store-demo1234/manage/products/")
    page.locator("tr", has_text="Wool Hiking Socks").get_by_role("button", name="Restock").click()
    page.get_by_text("Wool Hiking Socks: 10 in stock").wait_for()
    _wait_for(page, lambda: PersonActivity.objects.filter(activity_id="act:cm:back-in-stock").exists(),
              "Back in stock in Ortto")

    # A signed-in shopper views a product and adds it to the cart.
    customer = Customer.objects.filter(store__store_hash="demo1234").order_by("bc_id").first()
    shop.goto(sandbox + "/sandbox/bigcommerce/store-demo1234/storefront/trail-tent-2p/")
    assert shop.locator("form.ortto-bridge-stock").count() == 0  # in stock: no form
    shop.get_by_label("Customer email").fill(customer.email)
    shop.get_by_role("button", name="Sign in").click()
    shop.get_by_text(f"Signed in as {customer.email}").first.wait_for()
    _wait_for(shop, lambda: PersonActivity.objects.filter(activity_id="act:cm:viewed-product").exists(),
              "Viewed product in Ortto")
    shop.get_by_role("button", name="Add to cart").click()
    shop.get_by_text("Added to your cart.").wait_for()
    _wait_for(shop, lambda: PersonActivity.objects.filter(activity_id="act:cm:added-to-cart").exists(),
              "Added to cart in Ortto")
    shop.reload()  # a second view the same day: still one Viewed product
    _wait_for(shop, _idle, "runs to end")

    counts = {a: PersonActivity.objects.filter(activity_id=a).count() for a in (
        "act:cm:waiting-on-stock", "act:cm:back-in-stock", "act:cm:viewed-product", "act:cm:added-to-cart")}
    assert set(counts.values()) == {1}, counts
    back = PersonActivity.objects.get(activity_id="act:cm:back-in-stock")
    assert back.person.email == WAITER
    links = {k.split(":")[-1]: v for k, v in back.attributes.items() if k.endswith("-url")}
    assert links["product-url"].endswith("/store-demo1234/storefront/wool-hiking-socks/")
    viewed = PersonActivity.objects.get(activity_id="act:cm:viewed-product")
    assert viewed.person.email == customer.email

    # Ortto: the person pages show the activities with their pictures.
    ortto = page.context.new_page()
    ortto.goto(f"{sandbox}/sandbox/ortto/app/acme-eu/people/{Person.objects.get(email=WAITER).person_id}/")
    ortto.get_by_text("Back in stock").first.wait_for()
    shoot(ortto, "24-ortto-back-in-stock")
    ortto.goto(f"{sandbox}/sandbox/ortto/app/acme-eu/people/{viewed.person.person_id}/")
    ortto.get_by_text("Viewed product").first.wait_for()
    assert ortto.get_by_text("Added to cart").first.is_visible()
    shoot(ortto, "25-ortto-viewed-and-added")
