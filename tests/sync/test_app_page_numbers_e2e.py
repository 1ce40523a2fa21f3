"""Issue 25: on a first import the app page showed "Subscribers: fetched 1341, created 563" with no word on
the other 778, and "Orders: unchanged 107". Each line now adds up to what was read, in a store owner's
words. A real initial import against the sandbox over HTTP, then the app page's panel as the page gets it."""

import re

import pytest
import requests

from sandbox.bigcommerce.models import Customer, Order, Subscriber
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from stores.app_context import StoreContext, app_context_token
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import SyncRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

STORE = "count1"
LINE = re.compile(r'<li data-resource="(\w+)">([\d,]+) [a-z ]+?(?:: (.*))?</li>')


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_the_first_imports_numbers_add_up_in_words(sandbox_live, make_store, make_connection, sandbox_account):
    sandbox_store = seed_bigcommerce(store_hash=STORE, name="Count Outdoor", customers=40, orders=80, seed=3)
    seed_users(store_hash=STORE)
    install = app_install_complete(store=sandbox_store)
    store = make_store(STORE, name="Count Outdoor", access_token=install.access_token)
    make_connection(store, sandbox_account("acme-us"))
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL, enqueue_run=False)
    assert sync_run_execute(run_id=run.pk, sliced=False).status == SyncRun.Status.SUCCEEDED

    token = app_context_token(StoreContext(store_hash=STORE, bc_user_id=1001))
    panel = requests.get(f"{sandbox_live}/bigcommerce/app/panel", headers={"X-App-Context": token}, timeout=30).text
    lines = {resource: (_number(total), rest or "") for resource, total, rest in LINE.findall(panel)}
    assert {"subscribers", "customers", "orders"} <= set(lines), panel
    for resource, (total, rest) in lines.items():
        parts = [_number(n) for n in re.findall(r"(?:^|, )(\d[\d,]*) ", rest)]
        assert sum(parts) == total, f"{resource}: {total} read, the parts say {parts}: {rest}"

    subscribers = Subscriber.objects.filter(store=sandbox_store)
    customer_emails = set(Customer.objects.filter(store=sandbox_store).values_list("email", flat=True))
    with_customer = subscribers.filter(email__in=customer_emails).count()
    assert lines["subscribers"][0] == subscribers.count()
    assert f"{with_customer} merged with their customer record" in lines["subscribers"][1]
    incomplete = Order.objects.filter(store=sandbox_store, status_id=0).count()
    assert incomplete and f"{incomplete} incomplete checkout" in lines["orders"][1]
    assert "unchanged" not in panel.lower() and "fetched" not in panel.lower()
