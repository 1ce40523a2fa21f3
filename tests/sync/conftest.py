"""Fixtures of the sync tests."""

import pytest
import responses

from tests.sync.doubles import BC, ORTTO, FakeBigCommerce, HttpOrtto, customer, order, subscriber


@pytest.fixture
def env(make_account, make_connection, make_store, settings):
    """A connected store on BigCommerce and Ortto mocked at the HTTP level: two subscribers, two customers and
    four orders (guests, an opt-in, an incomplete one); env.store, env.connection, env.bc, env.ortto, env.rsps."""
    settings.BIGCOMMERCE_API_URL = BC
    settings.ORTTO_API_URL = ORTTO
    settings.SYNC_STALL_SECONDS = 120
    store = make_store("abc123", name="Acme")
    connection = make_connection(store, make_account(api_key="key-1"), merge_strategy=1)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        bc = FakeBigCommerce(
            rsps, "abc123",
            subscribers=[subscriber(1, "ann@x.io", ["marketing_newsletter"]), subscriber(2, "bob@x.io", [])],
            customers=[customer(1, "ann@x.io", "Ann"), customer(2, "cat@x.io", "Cat")],
            orders=[order(101, "ann@billing.io", customer_id=1, total="10.00"),
                    order(102, "gus@x.io", opt_in=True, total="5.50"),
                    order(103, "hal@x.io", total="2.25"), order(104, "cat@x.io", customer_id=2, status_id=0)],
        )
        # cat already exists in Ortto, subscribed; the bridge must not touch her permission.
        ortto = HttpOrtto(rsps, {"cat@x.io": {"str::email": "cat@x.io", "bol::p": True, "str::first": "Catherine"}})
        yield type("Env", (), {"store": store, "connection": connection, "bc": bc, "ortto": ortto, "rsps": rsps})
