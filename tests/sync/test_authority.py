"""Who may move the store's data (issue 24, finding 1): the rule, the owner's grant, the record of every
change and the owner's e-mail. Over real HTTP: tests/security/test_connection_authority.py."""

import smtplib

import pytest
from django.core import mail
from django.utils import timezone
from django_q.models import Schedule

from stores.app_context import StoreContext, app_context_token
from stores.models import StoreUser
from sync.connect import connections
from sync.connect.authority import connection_authority, connection_manager_may, connection_manager_set
from sync.mail import RETRY_DELAYS, owner_mail_deliver
from sync.models import Connection, ConnectionChange, ConnectionManager, SyncRun

pytestmark = pytest.mark.django_db

OWNER, STAFF, OTHER = 1001, 1002, 1003


@pytest.fixture
def store(make_store):
    store = make_store("abc123", name="Acme Outdoor")
    StoreUser.objects.create(store=store, bc_user_id=STAFF, email="staff@example.com")
    StoreUser.objects.create(store=store, bc_user_id=OTHER, email="other@example.com")
    return store


@pytest.fixture
def inline_mail(monkeypatch):
    """Work queued after commit runs at once: the mail task sends; sync runs are only recorded."""
    from django.utils.module_loading import import_string

    queued = []
    monkeypatch.setattr("sync.queue.transaction.on_commit", lambda fn: fn())

    def async_task(func, *args, **kwargs):
        if func == "sync.tasks.owner_mail_deliver":
            return import_string(func)(*args)
        queued.append((func, *args))

    monkeypatch.setattr("django_q.tasks.async_task", async_task)
    return queued


def test_the_owner_manages_and_other_users_only_once_the_owner_allows_them(store):
    assert connection_manager_may(store=store, bc_user_id=OWNER)
    assert not connection_manager_may(store=store, bc_user_id=STAFF)
    assert not connection_manager_may(store=store, bc_user_id=4242)  # never loaded the app

    assert connection_manager_set(store=store, by_bc_user_id=OWNER, bc_user_id=STAFF, allowed=True) == ""
    assert connection_manager_may(store=store, bc_user_id=STAFF)
    assert not connection_manager_may(store=store, bc_user_id=OTHER)
    assert ConnectionManager.objects.get(store=store, bc_user_id=STAFF).granted_by == "user1001@example.com"

    assert connection_manager_set(store=store, by_bc_user_id=OWNER, bc_user_id=STAFF, allowed=False) == ""
    assert not connection_manager_may(store=store, bc_user_id=STAFF)


def test_only_the_owner_allows_and_only_other_users_of_the_store(store):
    refused = connection_manager_set(store=store, by_bc_user_id=STAFF, bc_user_id=STAFF, allowed=True)
    assert refused == "Only the store owner can choose who manages the connection."
    connection_manager_set(store=store, by_bc_user_id=OWNER, bc_user_id=STAFF, allowed=True)
    # Allowed to manage the connection is not allowed to hand that on.
    assert connection_manager_set(store=store, by_bc_user_id=STAFF, bc_user_id=OTHER, allowed=True)
    assert connection_manager_set(store=store, by_bc_user_id=OWNER, bc_user_id=4242, allowed=True)
    assert not ConnectionManager.objects.filter(bc_user_id__in=[OTHER, 4242]).exists()


def test_a_removed_user_added_back_must_be_allowed_again(store):
    connection_manager_set(store=store, by_bc_user_id=OWNER, bc_user_id=STAFF, allowed=True)
    StoreUser.objects.filter(bc_user_id=STAFF).update(is_active=False, removed_at=timezone.now())
    assert not connection_manager_may(store=store, bc_user_id=STAFF)
    StoreUser.objects.filter(bc_user_id=STAFF).update(is_active=True)  # BigCommerce adds them back
    assert not connection_manager_may(store=store, bc_user_id=STAFF)
    assert not connection_authority(store=store, bc_user_id=OWNER)["users"][1]["manages"]
    connection_manager_set(store=store, by_bc_user_id=OWNER, bc_user_id=STAFF, allowed=True)
    assert connection_manager_may(store=store, bc_user_id=STAFF)


def test_an_uninstall_ends_every_grant(store, monkeypatch):
    from stores.services import store_uninstall

    connection_manager_set(store=store, by_bc_user_id=OWNER, bc_user_id=STAFF, allowed=True)
    store_uninstall(store=store)
    store.refresh_from_db()
    assert not connection_manager_may(store=store, bc_user_id=OWNER)
    store.is_installed = True  # installed again; the staff user opens the app again
    store.save()
    StoreUser.objects.filter(store=store).update(is_active=True)
    assert connection_manager_may(store=store, bc_user_id=OWNER)
    assert not connection_manager_may(store=store, bc_user_id=STAFF)


def test_a_user_not_allowed_can_neither_connect_nor_disconnect(store, make_account, make_connection, make_user,
                                                               inline_mail):
    staff_signin = make_user("staff@example.com")
    theirs = make_account(members=[staff_signin], name="staff-own", business_name="Staff's Own", api_key="k-s")
    live = make_connection(store, make_account(name="acme", business_name="Acme", api_key="k-a"))

    outcome = connections.connection_connect(store=store, account=theirs, merge_strategy=2, user=staff_signin,
                                             bc_user_id=STAFF)
    assert not outcome.ok and "Only the store owner" in outcome.reason
    assert connections.connection_disconnect(store=store, bc_user_id=STAFF).startswith("Only the store owner")
    live.refresh_from_db()
    assert live.state == "active" and Connection.objects.filter(store=store).count() == 1
    assert not SyncRun.objects.exists() and not ConnectionChange.objects.exists() and not mail.outbox


def test_each_change_is_recorded_and_mailed_to_the_owner_once(store, make_account, make_user, inline_mail):
    staff_signin = make_user("bridge-staff@example.com")
    eu = make_account(members=[staff_signin], name="acme-eu", business_name="Acme (EU)", api_key="k-eu")
    us = make_account(members=[staff_signin], name="acme-us", business_name="Acme (US)", api_key="k-us")
    connection_manager_set(store=store, by_bc_user_id=OWNER, bc_user_id=STAFF, allowed=True)

    def connect(account, strategy):
        outcome = connections.connection_connect(store=store, account=account, merge_strategy=strategy,
                                                 user=staff_signin, bc_user_id=STAFF)
        assert outcome.ok, outcome.reason
        # The import it queued has finished (a strategy cannot change under a running import).
        SyncRun.objects.filter(store=store).update(status=SyncRun.Status.SUCCEEDED)

    connect(eu, 1)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["user1001@example.com"]
    assert "Acme Outdoor" in message.subject and "Acme (EU)" in message.subject
    for fact in ("Who: staff@example.com", "Ortto Bridge sign-in: bridge-staff@example.com",
                 "Ortto account: Acme (EU)", "When: 20", "abc123"):
        assert fact in message.body, fact
    assert "k-eu" not in message.body  # no secret in the text

    connect(eu, 1)
    connect(eu, 2)
    connect(us, 2)
    assert connections.connection_disconnect(store=store, bc_user_id=STAFF) == ""
    assert connections.connection_disconnect(store=store, bc_user_id=STAFF) == ""  # nothing left: no change
    kinds = ["Disconnected", "Reconnected to another Ortto account", "Merge strategy changed", "Reconnected",
             "Connected"]
    assert [change.get_kind_display() for change in ConnectionChange.objects.filter(store=store)] == kinds
    assert len(mail.outbox) == 5
    assert mail.outbox[-1].body.startswith("Disconnected") and "Ortto account: Acme (US)" in mail.outbox[-1].body

    page = connection_authority(store=store, bc_user_id=OWNER)
    assert [row["kind"] for row in page["history"]] == kinds  # newest first
    assert page["history"][1]["signin"] == "bridge-staff@example.com"


def test_a_mail_server_that_is_down_never_fails_the_connect_and_is_tried_again(store, make_account, make_user,
                                                                               inline_mail, monkeypatch):
    def refused(*args, **kwargs):
        raise smtplib.SMTPConnectError(421, "try later")

    monkeypatch.setattr("sync.mail.EmailMessage.send", refused)
    user = make_user()
    outcome = connections.connection_connect(store=store, account=make_account(members=[user]), merge_strategy=1,
                                             user=user, bc_user_id=OWNER)
    assert outcome.ok and Connection.objects.filter(store=store, state="active").exists()
    retry = Schedule.objects.get(func="sync.tasks.owner_mail_deliver")
    assert retry.schedule_type == Schedule.ONCE and retry.args.endswith(", 2, True, False)")

    # The last attempt gives up (logged) instead of scheduling forever.
    Schedule.objects.all().delete()
    assert owner_mail_deliver(store_id=store.pk, subject="s", body="b", attempt=len(RETRY_DELAYS) + 1) is False
    assert not Schedule.objects.exists()

    monkeypatch.undo()
    assert owner_mail_deliver(store_id=store.pk, subject="s", body="b", attempt=2) is True
    assert mail.outbox[-1].to == ["user1001@example.com"]


def test_others_see_the_connection_read_only_and_who_can_change_it(store, make_account, make_connection, client):
    make_connection(store, make_account(business_name="Acme (EU)"))

    def panel(bc_user_id):
        token = app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=bc_user_id))
        return client.get("/bigcommerce/app/panel", HTTP_X_APP_CONTEXT=token).content.decode()

    staff = panel(STAFF)
    assert "Acme (EU)" in staff and 'id="connect-button"' not in staff and 'data-action="disconnect"' not in staff
    assert "Only the store owner (user1001@example.com)" in staff and "The owner can allow you" in staff
    assert "Who may manage the connection" not in staff

    owner = panel(OWNER)
    assert ">Reconnect<" in owner and 'data-action="disconnect"' in owner
    assert "Who may manage the connection" in owner and "staff@example.com" in owner and ">Allow<" in owner

    connection_manager_set(store=store, by_bc_user_id=OWNER, bc_user_id=STAFF, allowed=True)
    assert ">Reconnect<" in panel(STAFF) and ">Revoke<" in panel(OWNER)


def test_the_grant_endpoint_takes_only_a_user_id(store, client):
    token = app_context_token(StoreContext(store_hash=store.store_hash, bc_user_id=OWNER))
    for junk in ("", "abc", "9" * 40, "²", "-1"):
        response = client.post("/bigcommerce/app/managers", {"bc_user_id": junk, "allowed": "1"},
                               HTTP_X_APP_CONTEXT=token)
        assert response.status_code == 400, junk
    assert client.post("/bigcommerce/app/managers", {"bc_user_id": STAFF, "allowed": "1"},
                       HTTP_X_APP_CONTEXT=token).status_code == 200
    assert connection_manager_may(store=store, bc_user_id=STAFF)
