"""Demo history for support staff: the second demo store is installed and connected at start-up, and its
first sync runs for real — three customers with mistyped email addresses make it finish with errors that
support can read in the admin and re-send once the merchant fixes them in the sandbox control panel."""

import logging
import time

import requests
from django.contrib.auth import get_user_model
from django.utils import timezone

logger = logging.getLogger(__name__)

HISTORY_STORE = "north567"
HISTORY_ACCOUNT = "acme-au"
# Typos a shopper or an old import might leave behind; Ortto refuses them.
BAD_EMAILS = ["rosa.diaz@gmail", "tom.becker@@example.com", "li.wei@example"]


def demo_history_seed(*, base_url: str, wait_seconds: float = 30) -> str:
    from sandbox.bigcommerce.models import Customer, SandboxStore, SandboxUser
    from sandbox.bigcommerce.services import app_auth_callback_url, app_install_grant
    from stores.models import Store
    from sync.connect.connections import connection_connect
    from sync.models import OrttoAccount

    if Store.objects.filter(store_hash=HISTORY_STORE).exists():
        return "kept"
    for _ in range(int(wait_seconds * 4)):  # the web server is starting alongside
        try:
            requests.get(f"{base_url}/healthz", timeout=2)
            break
        except requests.RequestException:
            time.sleep(0.25)

    sandbox_store = SandboxStore.objects.get(store_hash=HISTORY_STORE)
    for customer, email in zip(Customer.objects.filter(store=sandbox_store).order_by("bc_id")[:3], BAD_EMAILS):
        customer.email = email
        customer.date_modified = timezone.now()
        customer.save(update_fields=["email", "date_modified"])

    owner = SandboxUser.objects.filter(store=sandbox_store, is_owner=True).first()
    install = app_install_grant(store=sandbox_store, user=owner)
    response = requests.get(app_auth_callback_url(install=install), timeout=30)
    if response.status_code != 200:
        return f"install failed ({response.status_code})"
    store = Store.objects.get(store_hash=HISTORY_STORE)
    demo_user = get_user_model().objects.get(username="demo@example.com")
    account = OrttoAccount.objects.get(name=HISTORY_ACCOUNT)
    outcome = connection_connect(store=store, account=account, merge_strategy=1, user=demo_user,
                                 bc_user_id=owner.bc_id)
    return f"{outcome.result}; initial run #{outcome.run.pk} queued"
