"""The consent and erasure calls keep the Ortto contract in both directions (docs/ortto-contract/*.schema.json):
the bridge's person/get, archive and delete requests, and the emulator's answers to them."""

import pytest

from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
from sandbox.bigcommerce.services import app_install_complete
from sandbox.ortto.models import Person
from sandbox.ortto.seed import seed_ortto_instances
from sandbox.ortto.services import person_unsubscribe
from sync.consent.erasure import email_forget
from sync.engine.runs import sync_run_execute, sync_run_request
from sync.models import PersonLedger, SyncRun
from tests.contracts.ortto_contract import CONSENT_ENDPOINTS, OrttoRecorder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def test_the_sweeps_check_and_an_erasure_keep_the_contract(make_account, make_connection, make_store, sandbox_live,
                                                            monkeypatch):
    sandbox_store = seed_bigcommerce(store_hash="ctr9", name="Contract", customers=15, orders=10, seed=4)
    seed_users(store_hash="ctr9")
    install = app_install_complete(store=sandbox_store)
    seed_ortto_instances()
    store = make_store("ctr9", name="Contract", access_token=install.access_token, scopes=install.scopes)
    connection = make_connection(store, make_account(api_key="sbx-default-acmeus-0001"))
    for kind in (SyncRun.Kind.INITIAL,):
        run, _ = sync_run_request(store=store, kind=kind)
        sync_run_execute(run_id=run.pk)
    subscribed = PersonLedger.objects.filter(connection=connection, store_opt_in=True, sent_permission=True).first()
    person_unsubscribe(Person.objects.get(email=subscribed.email))

    recorder = OrttoRecorder()
    monkeypatch.setattr("sync.ortto.client.thread_session", recorder)
    run, _ = sync_run_request(store=store, kind=SyncRun.Kind.INCREMENTAL)
    sync_run_execute(run_id=run.pk)
    other = PersonLedger.objects.filter(connection=connection).exclude(ortto_person_id="").first()
    email_forget(email=other.email, store=store, in_ortto=True)
    email_forget(email="nobody.known@example.com", store=store, in_ortto=True)  # found by person/get: none

    assert {e.path for e in recorder.exchanges} >= CONSENT_ENDPOINTS
    assert recorder.violations() == []
