"""Case 7 — secrets: after an install through the real callback, an Ortto account added with its key,
a sync (with a 401 and retries on the way), webhook registration and the Ortto journey webhook's URL used and
replaced, no access token, API key, webhook secret, journey URL secret or client secret appears in plain text in any database column of the bridge or in the logs."""

import logging

import pytest
from django.conf import settings
from django.db import connection

from sandbox.bigcommerce.limits import faults_set, quota_set
from sandbox.bigcommerce.models import Customer, SandboxUser
from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_auth_callback_url, app_install_grant, customer_update
from sandbox.ortto.models import Instance
from sandbox.ortto.seed import seed_ortto_instances
from sandbox.ortto.services import instance_fail_next, instance_set_revoked
from stores.models import Store
from sync.connect.accounts import ortto_account_add
from sync.consent.instant import hook_token_show
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import SyncRun
from tests.reliability.harness import bridge_secrets, secrets_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

# The emulators' own tables play BigCommerce's and Ortto's databases: they hold the keys by design.
EMULATOR_TABLES = ("sandbox_", "bigcommerce_sandbox", "ortto_sandbox")


def _bridge_tables() -> list[str]:
    from django.apps import apps

    emulator = {m._meta.db_table for m in apps.get_models() if m._meta.app_label.startswith("sandbox")
                or m.__module__.startswith("sandbox")}
    return [t for t in connection.introspection.table_names() if t not in emulator]


def test_no_secret_in_plain_text_in_the_database_or_the_logs(make_connection, make_user, sandbox_live, client, caplog,
                                                             capfd, fast_retries):
    caplog.set_level(logging.DEBUG)
    seed_ortto_instances()
    sandbox = seed_bigcommerce(store_hash="secr01", name="Secret Store", customers=120, orders=80, seed=4)
    quota_set(store=sandbox, requests=100000, window_ms=1000)
    seed_users(store_hash="secr01")
    owner = SandboxUser.objects.filter(store=sandbox, is_owner=True).first()
    # Install through the real callback: the code is exchanged for the token over HTTP.
    response = client.get(app_auth_callback_url(install=app_install_grant(store=sandbox, user=owner)))
    assert response.status_code == 200
    store = Store.objects.get(store_hash="secr01")
    assert store.access_token
    user = make_user("secrets@example.com")
    instance = Instance.objects.get(name="acme-us")
    outcome = ortto_account_add(user=user, business_name="Acme", name="acme-us", region="default",
                                api_key=instance.api_key)
    assert outcome.account
    make_connection(store, outcome.account)
    # A sync with retries on both sides, then a 401 (the error paths log the most).
    faults_set(store=sandbox, fail_next_count=2, fail_next_status=503)
    instance_fail_next(instance, count=2, status=500)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INITIAL)
    assert sync_run_execute(run_id=run.pk).status == SyncRun.Status.SUCCEEDED
    # The Ortto unsubscribe journey's URL: made, posted to (a wrong secret, a malformed body, a delivery), replaced.
    hook = hook_token_show(store=store)
    answers = [client.post(url.removeprefix(settings.PUBLIC_URL), data=body, content_type="application/json")
               .status_code for url, body in ((hook[:-3] + "abc", b"{}"), (hook, b"{bad"),
                                              (hook, b'{"email": "x@example.com"}'))]
    assert answers == [403, 400, 202]
    hook_token_show(store=store, rotate=True)
    # A change in the store (its webhook is delivered over HTTP, secret header and all), and the key revoked.
    customer = Customer.objects.filter(store=sandbox).order_by("bc_id").first()
    customer_update(customer=customer, email=customer.email, first_name="Changed", last_name=customer.last_name)
    instance_set_revoked(instance, revoked=True)
    SyncRun.objects.filter(store=store, status__in=SyncRun.ACTIVE_STATUSES).delete()
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INCREMENTAL)
    assert sync_run_execute(run_id=run.pk).status == SyncRun.Status.FAILED
    instance_set_revoked(instance, revoked=False)
    # Wrong key on the add-account form: logged as a failure, key not logged.
    ortto_account_add(user=user, business_name="Bad", name="bad", region="default", api_key="sbx-wrong-key-123456")

    secrets = bridge_secrets() + ["sbx-wrong-key-123456", hook.split("token=", 1)[1]]
    store.refresh_from_db()
    assert store.webhook_secret and len(secrets) >= 4

    # 1. Raw columns of every bridge table (the ORM decrypts; this reads what is stored).
    findings = []
    with connection.cursor() as cursor:
        for table in _bridge_tables():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                text = " ".join(str(value) for value in row)
                for leak in secrets_in(text, secrets):
                    findings.append((table, leak))
    assert not findings, findings
    # The scan can see a secret when one is there: the emulated BigCommerce keeps its issued token in clear.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM " + connection.ops.quote_name(
            __import__("sandbox.bigcommerce.models", fromlist=["AppInstall"]).AppInstall._meta.db_table))
        assert secrets_in(" ".join(str(v) for row in cursor.fetchall() for v in row), [store.access_token])

    # 2. The logs: every record captured, and whatever reached stdout / stderr.
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    out, err = capfd.readouterr()
    assert len(caplog.records) > 20
    assert not secrets_in(logged + out + err, secrets)
    print(f"FIGURE case7: tables={len(_bridge_tables())} secrets={len(secrets)} log_records={len(caplog.records)}")
