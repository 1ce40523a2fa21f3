"""Ortto → BigCommerce opt-outs (sync/consent/writeback.py) against BigCommerce and Ortto on `responses`:
what is asked of Ortto (and how often), what is written to the store, and what is left pending."""

import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from django.utils import timezone

from stores.bigcommerce import store_client
from sync.consent.writeback import NOTE_NO_SCOPE, consent_sweep, unsubscribes_check
from sync.models import ConsentPreference, ConsentWriteback, PersonLedger
from sync.ortto.schema import ortto_client

BC = "https://bc.test"
ORTTO = "https://ortto.test/{region}"
GET = re.compile(re.escape(ORTTO.format(region="default")) + r"/v1/person/get")
WRITE_SCOPES = "store_v2_customers store_v2_orders_read_only store_v2_content store_cart_read_only"


class Shop:
    """BigCommerce's customers and subscribers endpoints on `responses`, keeping what was written."""

    def __init__(self, rsps, *, customers=(), subscribers=(), fail=None):
        self.customers = {c["id"]: dict(c) for c in customers}
        self.subscribers = {s["id"]: dict(s) for s in subscribers}
        self.fail = fail  # status to answer every write with
        self.writes = []
        base = f"{BC}/stores/abc123"
        rsps.add_callback(responses.GET, re.compile(re.escape(base) + r"/v3/customers\?"), self.on_customers)
        rsps.add_callback(responses.PUT, f"{base}/v3/customers", self.on_put)
        rsps.add_callback(responses.GET, re.compile(re.escape(base) + r"/v3/customers/subscribers\?"),
                          self.on_subscribers)
        rsps.add_callback(responses.DELETE, re.compile(re.escape(base) + r"/v3/customers/subscribers/\d+"),
                          self.on_delete)

    def _q(self, request):
        return {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}

    def on_customers(self, request):
        emails = self._q(request).get("email:in", "").split(",")
        data = [c for c in self.customers.values() if c["email"] in emails]
        return 200, {}, json.dumps({"data": data, "meta": {"pagination": {"total": len(data)}}})

    def on_subscribers(self, request):
        email = self._q(request).get("email")
        data = [s for s in self.subscribers.values() if s["email"] == email]
        return 200, {}, json.dumps({"data": data, "meta": {"pagination": {"total": len(data)}}})

    def on_put(self, request):
        if self.fail:
            return self.fail, {}, json.dumps({"status": self.fail, "title": "refused"})
        rows = json.loads(request.body)
        self.writes.append(("PUT", rows))
        for row in rows:
            self.customers[row["id"]].update(row)
        return 200, {}, json.dumps({"data": [self.customers[r["id"]] for r in rows], "meta": {}})

    def on_delete(self, request):
        if self.fail:
            return self.fail, {}, json.dumps({"status": self.fail, "title": "refused"})
        subscriber_id = int(request.url.rsplit("/", 1)[-1])
        self.writes.append(("DELETE", subscriber_id))
        self.subscribers.pop(subscriber_id, None)
        return 204, {}, ""


class OrttoPeople:
    """Ortto's person/get on `responses`: answers the `$or` of `$str::is` emails from a dict email → bol::p."""

    def __init__(self, rsps, permissions):
        self.permissions = permissions
        self.bodies = []
        rsps.add_callback(responses.POST, GET, self.on_get)

    def on_get(self, request):
        body = json.loads(request.body)
        self.bodies.append(body)
        wanted = [term["$str::is"]["value"] for term in body["filter"]["$or"]]
        contacts = [{"id": f"p-{email}", "fields": {"str::email": email, "bol::p": self.permissions[email]}}
                    for email in wanted if email in self.permissions]
        return 200, {}, json.dumps({"contacts": contacts, "has_more": False, "offset": 0,
                                    "next_offset": len(contacts), "cursor_id": ""})


@pytest.fixture
def shop_env(make_account, make_connection, make_store, settings):
    settings.BIGCOMMERCE_API_URL = BC
    settings.ORTTO_API_URL = ORTTO
    store = make_store("abc123", name="Acme", scopes=WRITE_SCOPES)
    connection = make_connection(store, make_account(api_key="key-1"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield type("Env", (), {"store": store, "connection": connection, "rsps": rsps})


def ledger(connection, email, *, opt_in=True, sent=True, at=None):
    return PersonLedger.objects.create(connection=connection, email=email, store_opt_in=opt_in, sent_permission=sent,
                                       store_opt_in_at=at or timezone.now() - timedelta(days=3),
                                       synced_at=timezone.now() - timedelta(days=3))


def sweep(env):
    connection = env.connection
    return consent_sweep(connection, ortto=ortto_client(connection), bigcommerce=store_client(env.store))


def test_an_unsubscribe_in_ortto_removes_the_subscriber_and_the_customers_marketing_flag(shop_env):
    ledger(shop_env.connection, "ann@x.io")
    ledger(shop_env.connection, "bob@x.io")
    shop = Shop(shop_env.rsps,
                customers=[{"id": 7, "email": "ann@x.io", "accepts_product_review_abandoned_cart_emails": True}],
                subscribers=[{"id": 3, "email": "ann@x.io", "consents": ["marketing_newsletter"]},
                             {"id": 4, "email": "bob@x.io", "consents": ["marketing_newsletter"]}])
    ortto = OrttoPeople(shop_env.rsps, {"ann@x.io": False, "bob@x.io": True})

    outcome = sweep(shop_env)

    assert outcome["check_calls"] == 1 and outcome["found"] == 1 and outcome["written"] == 1
    assert 3 not in shop.subscribers and 4 in shop.subscribers, "only the unsubscribed person leaves the list"
    assert shop.customers[7]["accepts_product_review_abandoned_cart_emails"] is False
    assert ortto.bodies[0]["fields"] == ["str::email", "bol::p"] and ortto.bodies[0]["limit"] == 100
    row = PersonLedger.objects.get(email="ann@x.io")
    assert (row.store_opt_in, row.sent_permission) == (False, False), "the ledger now holds the opt-out: no echo"
    preference = ConsentPreference.objects.get(store=shop_env.store)
    assert preference.writeback_count == 1 and preference.writeback_last_at is not None
    assert ConsentWriteback.objects.get(email="ann@x.io").state == "done"

    # The next sweep asks about bob only (ann is no longer a candidate) and writes nothing.
    shop.writes.clear()
    again = sweep(shop_env)
    assert again["written"] == 0 and shop.writes == []
    asked = [t["$str::is"]["value"] for t in ortto.bodies[-1]["filter"]["$or"]]
    assert asked == ["bob@x.io"]


def test_only_people_the_store_opted_in_and_ortto_was_told_subscribed_are_asked_about(shop_env):
    ledger(shop_env.connection, "in@x.io")
    ledger(shop_env.connection, "never@x.io", opt_in=None, sent=False)  # R2: unsubscribed from the start
    ledger(shop_env.connection, "out@x.io", opt_in=False, sent=False)
    ledger(shop_env.connection, "found@x.io", opt_in=True, sent=None)  # existed in Ortto: not ours to judge
    Shop(shop_env.rsps)
    ortto = OrttoPeople(shop_env.rsps, {})
    sweep(shop_env)
    assert [t["$str::is"]["value"] for t in ortto.bodies[0]["filter"]["$or"]] == ["in@x.io"]


def test_a_large_store_costs_a_bounded_number_of_calls_per_sweep_and_is_walked_in_turn(shop_env, settings):
    settings.CONSENT_CHECK_CALLS_PER_SWEEP = 2
    PersonLedger.objects.bulk_create([
        PersonLedger(connection=shop_env.connection, email=f"p{i:04d}@x.io", store_opt_in=True, sent_permission=True,
                     store_opt_in_at=timezone.now(), synced_at=timezone.now()) for i in range(450)])
    Shop(shop_env.rsps)
    ortto = OrttoPeople(shop_env.rsps, {"p0420@x.io": False})
    first = sweep(shop_env)
    assert first["check_calls"] == 2 and first["found"] == 0, "200 of 450 people: two calls"
    second = sweep(shop_env)
    assert second["check_calls"] == 2
    third = sweep(shop_env)
    assert third["check_calls"] == 1 and third["found"] == 1, "the last 50, then the walk starts again"
    asked = [t["$str::is"]["value"] for body in ortto.bodies for t in body["filter"]["$or"]]
    assert len(asked) == 450 and len(set(asked)) == 450, "each person asked about once per walk"
    assert all(len(body["filter"]["$or"]) <= 100 for body in ortto.bodies)


def test_an_unsubscribe_for_an_email_the_store_does_not_have_changes_nothing_and_is_counted(shop_env):
    ledger(shop_env.connection, "gone@x.io")
    shop = Shop(shop_env.rsps)
    OrttoPeople(shop_env.rsps, {"gone@x.io": False})
    outcome = sweep(shop_env)
    assert outcome["unknown"] == 1 and outcome["written"] == 0 and shop.writes == []
    preference = ConsentPreference.objects.get(store=shop_env.store)
    assert preference.unknown_count == 1 and preference.writeback_count == 0
    assert ConsentWriteback.objects.get(email="gone@x.io").state == "unknown"


@pytest.mark.parametrize("status", [403, 429])
def test_a_refusal_or_throttling_from_bigcommerce_leaves_the_unsubscribe_pending(shop_env, status):
    ledger(shop_env.connection, "ann@x.io")
    shop = Shop(shop_env.rsps, subscribers=[{"id": 3, "email": "ann@x.io", "consents": ["marketing_newsletter"]}],
                fail=status)
    OrttoPeople(shop_env.rsps, {"ann@x.io": False})
    outcome = consent_sweep(shop_env.connection, ortto=ortto_client(shop_env.connection),
                            bigcommerce=store_client(shop_env.store, max_attempts=1, sleep=lambda s: None))
    assert outcome["pending"] == 1 and outcome["written"] == 0
    row = ConsentWriteback.objects.get(email="ann@x.io")
    assert row.state == "pending" and row.attempts == 1 and str(status) in row.last_error
    assert PersonLedger.objects.get(email="ann@x.io").store_opt_in is True, "nothing recorded as written"
    preference = ConsentPreference.objects.get(store=shop_env.store)
    if status == 403:
        assert "re-authorize" in preference.writeback_note
    # Once BigCommerce accepts, the next sweep writes it, without asking Ortto about ann again.
    shop.fail = None
    again = consent_sweep(shop_env.connection, ortto=ortto_client(shop_env.connection),
                          bigcommerce=store_client(shop_env.store))
    assert again["written"] == 1 and 3 not in shop.subscribers
    assert ConsentPreference.objects.get(store=shop_env.store).writeback_note == ""


def test_a_store_without_the_write_scope_keeps_syncing_one_way_with_a_note(shop_env):
    shop_env.store.scopes = "store_v2_customers_read_only store_v2_orders_read_only store_v2_content"
    shop_env.store.save()
    ledger(shop_env.connection, "ann@x.io")
    Shop(shop_env.rsps)
    ortto = OrttoPeople(shop_env.rsps, {"ann@x.io": False})
    outcome = sweep(shop_env)
    assert outcome == {"enabled": True, "scope": False}
    assert ortto.bodies == [], "no Ortto call spent on what cannot be written"
    assert ConsentPreference.objects.get(store=shop_env.store).writeback_note == NOTE_NO_SCOPE


def test_switched_off_it_asks_and_writes_nothing(shop_env):
    ConsentPreference.objects.create(store=shop_env.store, writeback_enabled=False)
    ledger(shop_env.connection, "ann@x.io")
    shop = Shop(shop_env.rsps)
    ortto = OrttoPeople(shop_env.rsps, {"ann@x.io": False})
    assert sweep(shop_env) == {"enabled": False}
    assert ortto.bodies == [] and shop.writes == []


def test_a_person_without_an_explicit_false_is_not_an_unsubscribe(shop_env):
    ledger(shop_env.connection, "ann@x.io")
    preference = ConsentPreference.objects.create(store=shop_env.store)
    OrttoPeople(shop_env.rsps, {"ann@x.io": None})
    calls, found = unsubscribes_check(shop_env.connection, preference, ortto=ortto_client(shop_env.connection))
    assert (calls, found) == (1, 0)


def test_a_shopper_who_opts_in_again_before_the_write_keeps_their_new_subscription(shop_env):
    row = ledger(shop_env.connection, "ann@x.io")
    shop = Shop(shop_env.rsps, subscribers=[{"id": 3, "email": "ann@x.io", "consents": ["marketing_newsletter"]}],
                fail=503)
    OrttoPeople(shop_env.rsps, {"ann@x.io": False})
    consent_sweep(shop_env.connection, ortto=ortto_client(shop_env.connection),
                  bigcommerce=store_client(shop_env.store, max_attempts=1, sleep=lambda s: None))
    assert ConsentWriteback.objects.get(email="ann@x.io").state == "pending"
    # Meanwhile the shopper ticks the newsletter box again, and a sync records it (R4 sends it to Ortto).
    PersonLedger.objects.filter(pk=row.pk).update(store_opt_in=True, store_opt_in_at=timezone.now() + timedelta(seconds=5))
    shop.fail = None
    outcome = consent_sweep(shop_env.connection, ortto=ortto_client(shop_env.connection),
                            bigcommerce=store_client(shop_env.store))
    assert outcome["written"] == 0 and shop.writes == [] and 3 in shop.subscribers
    assert not ConsentWriteback.objects.filter(email="ann@x.io", state="pending").exists()
