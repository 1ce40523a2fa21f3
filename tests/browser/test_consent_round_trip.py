"""Consent both ways in real Chromium, against the sandbox over real HTTP (docs/design.md §4, "Consent written
back"): a new shopper opts in at checkout, unsubscribes from an Ortto email, and after the next sweep the
store's subscriber list no longer holds them; nothing flows back to Ortto. The README's pictures 20-22. Then the
owner sets up the instant path: shows the URL on the Consent card, pastes it into the Ortto account's unsubscribe
journey, and the next unsubscribe leaves the store's list with no sweep."""

import pytest

from sandbox.bigcommerce.models import Subscriber
from sandbox.ortto.models import Person, PersonActivity
from sync.models import PersonLedger, SyncRun
from sync.tasks import incremental_tick
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_journey import connect, install_and_open

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

SHOPPER = "june.optin@example.com"


def _wait_for(page, condition, what, tries=160):
    for _ in range(tries):
        if condition():
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"timed out waiting for {what}")


def _sweeps_done(store_hash="demo1234"):
    return not SyncRun.objects.filter(store__store_hash=store_hash, status__in=SyncRun.ACTIVE_STATUSES).exists()


def test_an_unsubscribe_in_ortto_leaves_the_stores_list_and_nothing_flows_back(page, sandbox, thread_worker, shoot,
                                                                             settings):
    settings.SANDBOX_BIGCOMMERCE_WEBHOOKS_ASYNC = True  # BigCommerce delivers on its own, as in `make run`
    context = page.context
    frame = install_and_open(page, sandbox)
    tab = connect(context, frame, account="Acme Outdoor (US)", strategy="Import and merge new records only")
    _wait_for(tab, lambda: "Succeeded" in tab.locator("#progress-text").inner_text(), "the initial sync")
    tab.close()

    # A new shopper checks out and ticks the newsletter box.
    shop = context.new_page()
    shop.goto(sandbox + "/sandbox/bigcommerce/store-demo1234/checkout/")
    shop.fill("input[name=email]", SHOPPER)
    shop.fill("input[name=first_name]", "June")
    shop.fill("input[name=last_name]", "Optin")
    shop.check("input[name=subscribe]")
    shop.get_by_role("button", name="Place order").click()
    shop.locator("#order-placed").get_by_text("subscribed to the newsletter").wait_for()
    _wait_for(shop, lambda: Person.objects.filter(email=SHOPPER, email_permission=True).exists(),
              "the shopper subscribed in Ortto")
    _wait_for(shop, _sweeps_done, "the webhook run to finish")

    # In Ortto, they click an email's unsubscribe link (the person page's Unsubscribe button).
    person = Person.objects.get(email=SHOPPER)
    ortto = context.new_page()
    ortto.goto(f"{sandbox}/sandbox/ortto/app/acme-us/people/{person.person_id}/")
    ortto.get_by_role("button", name="Unsubscribe").click()
    ortto.get_by_text("Unsubscribed from an email").first.wait_for()
    shoot(ortto, "20-ortto-unsubscribe")

    # The scheduled sweep: the store learns it.
    incremental_tick()
    _wait_for(shop, lambda: not Subscriber.objects.filter(store__store_hash="demo1234", email=SHOPPER).exists(),
              "the subscriber removed from the store")
    _wait_for(shop, _sweeps_done, "the sweep and the echoes' runs to finish")
    panel = context.new_page()
    panel.goto(f"{sandbox}/sandbox/bigcommerce/store-demo1234/manage/customers/subscribers/?q=june.optin")
    panel.get_by_text("No subscribers.").wait_for()
    shoot(panel, "21-store-subscriber-removed")

    # The app page counts it.
    page.goto(sandbox + "/sandbox/bigcommerce/store-demo1234/manage/apps/")
    page.get_by_role("link", name="Launch").first.click()
    frame = page.frame_locator("#app-frame")
    frame.locator("#consent-writeback-count").get_by_text("1 person updated in the store").wait_for()
    assert frame.locator("#consent-writeback").is_checked()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    frame.locator("#consent").screenshot(path=str(ARTIFACTS / "22-app-page-consent.png"))

    # Nothing flows back: the store's echoes (subscriber deleted, customer untouched) sent Ortto nothing.
    incremental_tick()
    _wait_for(shop, _sweeps_done, "the next sweep")
    person.refresh_from_db()
    assert person.email_permission is False
    assert PersonActivity.objects.filter(person=person, activity_id="unsubscribed").count() == 1
    assert PersonActivity.objects.filter(person=person, activity_id="subscribed").count() <= 1
    assert not Subscriber.objects.filter(store__store_hash="demo1234", email=SHOPPER).exists()

    # The instant path: the owner shows the store's URL and pastes it into Ortto's unsubscribe journey.
    frame.locator("#consent-hook summary").click()
    for words in ("Webhook (advanced)", "Unsubscribed from email"):
        frame.locator("#consent-hook-steps").get_by_text(words).first.wait_for()
    frame.locator("#consent").screenshot(path=str(ARTIFACTS / "27-app-page-consent-instant.png"))
    frame.get_by_role("button", name="Show the URL").click()
    field = frame.locator("#consent-hook-url")
    field.wait_for(state="visible")
    url = field.input_value()
    assert "/ortto/unsubscribed/demo1234/?token=" in url
    ortto.goto(f"{sandbox}/sandbox/ortto/app/acme-us/people/")
    ortto.locator("#journey-webhook input[name=url]").fill(url)
    ortto.locator("#journey-webhook").get_by_role("button", name="Save").click()
    ortto.locator("#journey-webhook").get_by_text("On.").wait_for()

    # Another subscriber unsubscribes in Ortto: the store's list loses them without any sweep.
    subscribed = set(PersonLedger.objects.filter(connection__store__store_hash="demo1234", store_opt_in=True,
                                                 sent_permission=True).values_list("email", flat=True))
    other = next(s for s in Subscriber.objects.filter(store__store_hash="demo1234").order_by("bc_id")
                 if s.email.lower() in subscribed and "marketing_newsletter" in (s.consents or []))
    other_person = Person.objects.get(instance__name="acme-us", email=other.email.lower())
    runs = SyncRun.objects.filter(store__store_hash="demo1234", kind=SyncRun.Kind.INCREMENTAL).count()
    ortto.goto(f"{sandbox}/sandbox/ortto/app/acme-us/people/{other_person.person_id}/")
    ortto.get_by_role("button", name="Unsubscribe").click()
    _wait_for(shop, lambda: not Subscriber.objects.filter(pk=other.pk).exists(),
              "the journey webhook to remove the subscriber")
    assert SyncRun.objects.filter(store__store_hash="demo1234", kind=SyncRun.Kind.INCREMENTAL).count() == runs, \
        "no sweep ran"
    frame.locator("#consent-writeback-count").get_by_text("2 people updated in the store").wait_for()
