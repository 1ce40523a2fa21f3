"""Issue 26: incidents and alerts by e-mail (Django's locmem mail backend; queued work runs inline)."""

import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from stores.app_context import StoreContext, app_context_token
from stores.models import StoreUser, WebhookEvent
from sync.engine.pauses import account_pause
from sync.engine.runs import SUMMARY_ORTTO_REJECTED
from sync.health.incidents import incidents_evaluate
from sync.models import Connection, Incident, SyncRun
from sync.tasks import maintenance_tick

pytestmark = pytest.mark.django_db

OWNER = "user1001@example.com"
SUPPORT = "support@bridge.example"


@pytest.fixture
def connection(make_store, make_account, make_connection, settings, queued_work_runs_inline, monkeypatch):
    """A connected store; queued work (the mail task) runs at once, as a worker would after the commit."""
    monkeypatch.setattr("sync.queue.transaction.on_commit", lambda fn: fn())
    settings.SUPPORT_ALERT_EMAIL = SUPPORT
    connection = make_connection(make_store("abc123", name="Acme Outdoor"), make_account(api_key="key-very-secret"))
    Connection.objects.filter(pk=connection.pk).update(connected_at=timezone.now() - timedelta(days=1))
    connection.refresh_from_db()
    return connection


def _panel(client, store, bc_user_id=1001):
    token = app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=bc_user_id))
    return client.get("/bigcommerce/app/panel", HTTP_X_APP_CONTEXT=token).content.decode()


def _run(connection, **fields):
    now = timezone.now()
    fields.setdefault("finished_at", now)
    return SyncRun.objects.create(store=connection.store, connection=connection,
                                  kind=fields.pop("kind", SyncRun.Kind.INCREMENTAL),
                                  status=fields.pop("status", SyncRun.Status.SUCCEEDED), started_at=now, **fields)


def _assert_one_lifecycle(client, connection, kind, *, make_true, make_false, evaluate=None):
    """The incident opens once with one e-mail, shows on the app page, does not repeat, and clears with a
    recovery e-mail when the fact is fixed."""
    store = connection.store
    evaluate = evaluate or (lambda: incidents_evaluate(store=store))
    make_true()
    evaluate()
    evaluate()  # nothing repeats while it stays open
    incident = Incident.objects.get(store=store, kind=kind)
    assert incident.is_open and incident.emails_sent == 1
    assert len(mail.outbox) == 1
    opened = mail.outbox[0]
    assert opened.to == [OWNER] and opened.bcc == [SUPPORT]
    assert incident.get_kind_display() in opened.subject and "Acme Outdoor" in opened.subject
    assert f'data-incident="{kind}"' in _panel(client, store)
    for secret in ("key-very-secret", store.access_token):
        assert secret not in opened.subject + opened.body

    make_false()
    evaluate()
    evaluate()
    incident.refresh_from_db()
    assert not incident.is_open and incident.emails_sent == 2
    assert len(mail.outbox) == 2 and mail.outbox[1].subject.startswith("Ortto Bridge: resolved")
    assert f'data-incident="{kind}"' not in _panel(client, store)
    assert [e["event"] for e in incident.details["timeline"]][:1] == ["opened"]
    assert "cleared" in [e["event"] for e in incident.details["timeline"]]


def test_a_revoked_key_opens_one_incident_and_clears_on_reconnect(client, connection):
    def revoke():
        Connection.objects.filter(pk=connection.pk).update(state=Connection.State.NEEDS_RECONNECT)
        _run(connection, status=SyncRun.Status.FAILED, error_summary=SUMMARY_ORTTO_REJECTED.format(status="HTTP 401"))

    def reconnect():
        Connection.objects.filter(pk=connection.pk).update(state=Connection.State.ACTIVE)

    _assert_one_lifecycle(client, connection, Incident.Kind.KEY_REJECTED, make_true=revoke, make_false=reconnect)
    # The run that failed on the 401 is the key's incident, not a second "sync failed" one.
    assert not Incident.objects.filter(kind=Incident.Kind.RUN_FAILED).exists()


def test_a_403_pause_opens_one_incident_and_clears_when_ortto_accepts_again(client, connection):
    _assert_one_lifecycle(
        client, connection, Incident.Kind.PAUSED,
        make_true=lambda: account_pause(account_id=connection.account_id, status=403, message="403: expired"),
        make_false=lambda: Connection.objects.filter(pk=connection.pk).update(state=Connection.State.ACTIVE),
        evaluate=maintenance_tick)


def test_a_stalled_run_opens_one_incident_in_the_maintenance_tick_and_clears_when_it_ends(client, connection,
                                                                                        monkeypatch):
    monkeypatch.setattr("sync.tasks.enqueue", lambda *args: None)  # the tick's resume is not under test
    run = _run(connection, status=SyncRun.Status.RUNNING, finished_at=None,
               heartbeat_at=timezone.now() - timedelta(hours=1))

    def resumed_then_finished():
        SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now(),
                                                 heartbeat_at=timezone.now())

    _assert_one_lifecycle(client, connection, Incident.Kind.RUN_STALLED, make_true=lambda: None,
                          make_false=resumed_then_finished, evaluate=maintenance_tick)


def test_a_stall_the_maintenance_tick_resumes_in_time_sends_no_e_mail(connection, settings, monkeypatch):
    settings.SYNC_STALL_SECONDS, settings.SYNC_ALERT_STALL_SECONDS = 120, 900
    monkeypatch.setattr("sync.tasks.enqueue", lambda *args: None)
    run = _run(connection, status=SyncRun.Status.RUNNING, finished_at=None,
               heartbeat_at=timezone.now() - timedelta(minutes=5))  # stalled: a worker may take it over
    assert SyncRun.objects.stalled().filter(pk=run.pk).exists()
    maintenance_tick()
    assert not Incident.objects.exists() and not mail.outbox
    SyncRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=16))
    maintenance_tick()
    assert Incident.objects.get().kind == Incident.Kind.RUN_STALLED


def test_silent_webhooks_open_one_incident_and_clear_when_a_webhook_arrives(client, connection):
    # BigCommerce deactivated the hooks: the sweep finds the store's changes, no webhook told us.
    def sweep_finds_changes():
        _run(connection, counters={"customers": {"fetched": 3, "created": 1, "updated": 2, "unchanged": 0}},
             processed=3, missed_deliveries=3)

    def a_webhook_arrives():
        WebhookEvent.objects.create(store=connection.store, dedup_key="k1", scope="store/customer/updated",
                                    resource="customers", resource_id=1, payload={}, bc_created_at=timezone.now())

    _assert_one_lifecycle(client, connection, Incident.Kind.WEBHOOKS_SILENT, make_true=sweep_finds_changes,
                          make_false=a_webhook_arrives)


def test_a_sweep_that_found_nothing_new_is_not_silence(connection):
    _run(connection, counters={"customers": {"fetched": 3, "unchanged": 3}}, processed=3)
    assert incidents_evaluate(store=connection.store)["opened"] == []
    # Changes that webhooks announced (none missed) are not silence either, however long ago the last one came.
    _run(connection, counters={"customers": {"fetched": 3, "updated": 3}}, processed=3, missed_deliveries=0)
    assert incidents_evaluate(store=connection.store)["opened"] == []


def test_a_failed_run_and_a_flood_of_failed_records_each_open_one_incident(client, connection, settings):
    settings.SYNC_ALERT_FAILED_SHARE, settings.SYNC_ALERT_MIN_RECORDS = 0.05, 20

    def flood():
        for _ in range(30):  # thirty runs, each with a fifth of its records failed: one incident
            _run(connection, status=SyncRun.Status.PARTIAL, processed=100, failed=20)
            incidents_evaluate(store=connection.store)

    _assert_one_lifecycle(client, connection, Incident.Kind.FAILED_SHARE, make_true=flood,
                          make_false=lambda: _run(connection, processed=100, failed=1))
    assert Incident.objects.count() == 1

    mail.outbox.clear()
    _run(connection, status=SyncRun.Status.FAILED, error_summary="Stopped after 6 interrupted attempts.")
    assert incidents_evaluate(store=connection.store)["opened"] == [Incident.Kind.RUN_FAILED]
    _run(connection)
    assert incidents_evaluate(store=connection.store)["cleared"] == [Incident.Kind.RUN_FAILED]
    assert len(mail.outbox) == 2


def test_the_owner_turns_alerts_off_and_support_still_gets_its_copy(client, connection, make_store):
    store = connection.store
    token = app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=1001))
    assert 'id="alerts-enabled"' in _panel(client, store) and "checked" in _panel(client, store).split(
        'id="alerts-enabled"')[1].split(">")[0]
    StoreUser.objects.create(store=store, bc_user_id=2002, email="staff@example.com", is_owner=False)
    staff = app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=2002))
    assert client.post("/bigcommerce/app/alerts", {"enabled": "0"}, HTTP_X_APP_CONTEXT=staff).status_code == 403
    assert client.post("/bigcommerce/app/alerts", {"enabled": "0"}, HTTP_X_APP_CONTEXT=token).status_code == 200
    assert "checked" not in _panel(client, store).split('id="alerts-enabled"')[1].split(">")[0]

    Connection.objects.filter(pk=connection.pk).update(state=Connection.State.NEEDS_RECONNECT)
    incidents_evaluate(store=store)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [SUPPORT] and OWNER not in mail.outbox[0].recipients()
    assert f'data-incident="{Incident.Kind.KEY_REJECTED}"' in _panel(client, store)  # still shown on the page


def test_a_mail_server_that_is_down_never_fails_a_sync_and_the_alert_is_retried(connection, monkeypatch):
    def refused(*args, **kwargs):
        raise smtplib.SMTPConnectError(421, "try later")

    monkeypatch.setattr("sync.mail.EmailMessage.send", refused)
    Connection.objects.filter(pk=connection.pk).update(state=Connection.State.NEEDS_RECONNECT)
    assert incidents_evaluate(store=connection.store)["opened"] == [Incident.Kind.KEY_REJECTED]
    retry = Schedule.objects.get(func="sync.tasks.owner_mail_deliver")
    assert retry.args.endswith(", 2, True, True)") and "Ortto rejected the API key" in retry.args
    monkeypatch.undo()
    from sync.tasks import owner_mail_deliver
    assert owner_mail_deliver(*eval(retry.args)) is True  # the scheduled retry, as django-q2 calls it
    assert mail.outbox[-1].to == [OWNER] and mail.outbox[-1].bcc == [SUPPORT]


def test_at_most_one_open_incident_per_store_and_kind_is_a_database_rule(connection):
    from django.db import IntegrityError, transaction

    Incident.objects.create(store=connection.store, kind=Incident.Kind.PAUSED, summary="s")
    with pytest.raises(IntegrityError), transaction.atomic():
        Incident.objects.create(store=connection.store, kind=Incident.Kind.PAUSED, summary="s")
    Incident.objects.update(cleared_at=timezone.now())
    Incident.objects.create(store=connection.store, kind=Incident.Kind.PAUSED, summary="again")


def test_support_sees_incidents_read_only_with_their_timeline(admin_client, connection):
    Connection.objects.filter(pk=connection.pk).update(state=Connection.State.NEEDS_RECONNECT)
    incidents_evaluate(store=connection.store)
    url = reverse("admin:sync_incident_changelist")
    listing = admin_client.get(url)
    assert listing.status_code == 200 and "abc123" in listing.content.decode()
    for query in ("?open=yes", "?open=no", "?kind=key_rejected", f"?store={connection.store.pk}", "?q=abc123"):
        assert admin_client.get(url + query).status_code == 200, query
    incident = Incident.objects.get()
    detail = admin_client.get(reverse("admin:sync_incident_change", args=[incident.pk])).content.decode()
    assert "opened" in detail and "e-mail queued" in detail
    assert admin_client.get(reverse("admin:sync_incident_add")).status_code == 403


def test_an_uninstall_closes_open_incidents_without_a_good_news_e_mail(connection):
    store = connection.store
    store.name = "Acme\nBcc: victim@example.com"
    store.save(update_fields=["name"])
    Connection.objects.filter(pk=connection.pk).update(state=Connection.State.NEEDS_RECONNECT)
    incidents_evaluate(store=store)
    assert len(mail.outbox) == 1 and "\n" not in mail.outbox[0].subject and mail.outbox[0].bcc == [SUPPORT]

    type(store).objects.filter(pk=store.pk).update(is_installed=False)
    store.refresh_from_db()
    maintenance_tick()
    incident = Incident.objects.get()
    assert not incident.is_open and len(mail.outbox) == 1
    assert incident.details["timeline"][-1]["event"] == "closed: the store no longer syncs"
