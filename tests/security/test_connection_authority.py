"""Issue 24, finding 1, over real HTTP against the sandbox: a store user whom the owner has not allowed
cannot connect, reconnect or disconnect the store at any endpoint, even with a Connect link in hand; one
the owner allowed can, and the owner gets one e-mail per change, which the app page's history shows too."""

import re

import pytest
import requests

from sandbox.bigcommerce.services import signed_payload_jwt
from stores.app_context import StoreContext, connect_token
from sync.models import Connection, ConnectionChange

from .harness import connect_link, follow_connect_link, installed_sandbox_store, load_page

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

APP_CONTEXT = re.compile(r'data-app-context="([^"]+)"')
PASSWORD = "the-right-password"
NOT_ALLOWED = "You cannot change this connection"


@pytest.fixture
def mail_sent_inline(monkeypatch):
    """Mail queued after commit is sent at once (to Django's test outbox); sync runs are only recorded."""
    from django.utils.module_loading import import_string

    def async_task(func, *args, **kwargs):
        if func == "sync.tasks.owner_mail_deliver":
            import_string(func)(*args)

    monkeypatch.setattr("django_q.tasks.async_task", async_task)


def app_call(base: str, page: requests.Response, path: str, data: dict | None = None) -> requests.Response:
    """What the app page's script sends: a POST with the page's app context in its header, no cookies."""
    context = APP_CONTEXT.search(page.text)[1]
    return requests.post(f"{base}/bigcommerce/app/{path}", data=data or {}, headers={"X-App-Context": context},
                         timeout=30)


def connect_through_the_flow(person, link: str, *, email: str, account_pk: int, strategy: int,
                             signed_in: bool = False, switching: bool = False) -> requests.Response:
    """Accounts → Merge → Next, after following the link (sign-in, or Continue when signed in already);
    `switching` ticks the box that confirms a full import into another account."""
    if signed_in:
        person.get(link.removeprefix(person.base_url))
        token = link.split("token=", 1)[1]
        assert person.post("/connect/", {"token": token}).status_code == 302
    else:
        assert follow_connect_link(person, link, email=email, password=PASSWORD).status_code == 302
    person.get("/connect/accounts/")
    assert person.post("/connect/accounts/", {"account": account_pk}).status_code == 302
    person.get("/connect/merge/")
    return person.post("/connect/merge/", {"merge_strategy": strategy, **({"confirm_switch": "1"} if switching else {})})


def test_a_store_user_the_owner_has_not_allowed_cannot_connect_reconnect_or_disconnect(
        make_user, sandbox_account, sandbox_live, browser, mail_sent_inline, mailoutbox):
    sandbox_store, owner, staff = installed_sandbox_store(sandbox_live)
    owner_signin = make_user("owner@example.com", password=PASSWORD)
    staff_signin = make_user("staff@example.com", password=PASSWORD)
    ours = sandbox_account("acme-us", members=[owner_signin])
    theirs = sandbox_account("acme-eu", members=[staff_signin])

    # The staff user's app page: the status read-only, who can change it, no Connect link or Disconnect.
    staff_page = load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=staff))
    assert staff_page.status_code == 200
    assert 'id="connect-button"' not in staff_page.text and 'data-action="disconnect"' not in staff_page.text
    assert "Only the store owner (owner@sec1.example)" in staff_page.text
    assert app_call(sandbox_live, staff_page, "status").status_code == 405  # (a GET endpoint)
    assert requests.get(f"{sandbox_live}/bigcommerce/app/status", timeout=30, headers={
        "X-App-Context": APP_CONTEXT.search(staff_page.text)[1]}).json()["connect_url"] == ""

    # Connect: a Connect link made out to them (one kept from when they were allowed) is refused when
    # opened, at Continue and at the sign-in it would lead to.
    forged = connect_token(StoreContext(store_hash="sec1", bc_user_id=staff.bc_id))
    intruder = browser()
    opened = intruder.get("/connect/?token=" + forged)
    assert opened.status_code == 403 and NOT_ALLOWED in opened.text and "owner@sec1.example" in opened.text
    intruder.get("/connect/signin/")
    signed_in = intruder.post("/connect/signin/", {"email": "staff@example.com", "password": PASSWORD,
                                                   "token": forged})
    assert signed_in.status_code == 403 and NOT_ALLOWED in signed_in.text
    assert intruder.get("/connect/?token=" + forged).status_code == 403
    assert intruder.post("/connect/", {"token": forged}).status_code == 403
    assert intruder.get("/connect/accounts/").status_code == 400  # no flow was bound
    assert not Connection.objects.filter(store__store_hash="sec1").exists()

    # The owner connects; then allows the staff user, who starts a flow, and stops allowing them mid-way.
    owner_page = load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=owner))
    merchant = browser()
    assert connect_through_the_flow(merchant, connect_link(owner_page), email="owner@example.com",
                                    account_pk=ours.pk, strategy=1).status_code == 302
    assert app_call(sandbox_live, owner_page, "managers", {"bc_user_id": staff.bc_id, "allowed": "1"}).ok
    staff_page = load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=staff))
    assert follow_connect_link(intruder, connect_link(staff_page), email="staff@example.com",
                               password=PASSWORD).status_code == 302
    intruder.get("/connect/accounts/")
    assert intruder.post("/connect/accounts/", {"account": theirs.pk}).status_code == 302
    assert app_call(sandbox_live, owner_page, "managers", {"bc_user_id": staff.bc_id, "allowed": "0"}).ok

    # Reconnect (to their own account, with Overwrite) is refused at every step that changes something.
    merge = intruder.post("/connect/merge/", {"merge_strategy": 2})
    assert merge.status_code == 403 and NOT_ALLOWED in merge.text
    assert intruder.post("/connect/accounts/", {"account": theirs.pk}).status_code == 403
    # Disconnect from the app page, and allowing themselves, are refused too.
    disconnect = app_call(sandbox_live, staff_page, "disconnect")
    assert disconnect.status_code == 403 and "Only the store owner" in disconnect.json()["error"]
    # So is the URL of the store's Ortto unsubscribe journey (its secret), shown or replaced.
    for op in ("show", "rotate"):
        hook = app_call(sandbox_live, staff_page, "consent/hook", {"op": op})
        assert hook.status_code == 403 and "hook_url" not in hook.json(), op
    assert app_call(sandbox_live, staff_page, "managers", {"bc_user_id": staff.bc_id, "allowed": "1"}
                    ).status_code == 403

    live = Connection.objects.get(store__store_hash="sec1")
    assert live.state == "active" and live.account == ours and live.merge_strategy == 1
    assert [c.kind for c in ConnectionChange.objects.all()] == ["connected"]
    assert len(mailoutbox) == 1  # the owner's own connect, nothing else


def test_a_store_user_the_owner_allowed_can_and_the_owner_is_told_of_each_change(
        make_user, sandbox_account, sandbox_live, browser, mail_sent_inline, mailoutbox):
    sandbox_store, owner, staff = installed_sandbox_store(sandbox_live)
    staff_signin = make_user("staff@example.com", password=PASSWORD)
    us = sandbox_account("acme-us", members=[staff_signin])
    eu = sandbox_account("acme-eu", members=[staff_signin])
    load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=staff))  # the owner sees them once loaded
    owner_page = load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=owner))
    assert "staff@sec1.example" in owner_page.text and ">Allow<" in owner_page.text
    assert app_call(sandbox_live, owner_page, "managers", {"bc_user_id": staff.bc_id, "allowed": "1"}).ok

    staff_page = load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=staff))
    person = browser()
    # Connect.
    assert connect_through_the_flow(person, connect_link(staff_page), email="staff@example.com",
                                    account_pk=us.pk, strategy=1).status_code == 302
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["owner@sec1.example"] and message.subject == "Ortto Bridge: Store sec1 was connected to Acme Outdoor (US)"
    for fact in ("Who: staff@sec1.example", "Ortto Bridge sign-in: staff@example.com",
                 "Ortto account: Acme Outdoor (US)", "When: "):
        assert fact in message.body, fact
    # Reconnect to another account (a new link, the browser signed in already: Continue).
    staff_page = load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=staff))
    assert connect_through_the_flow(person, connect_link(staff_page), email="staff@example.com",
                                    account_pk=eu.pk, strategy=2, signed_in=True, switching=True).status_code == 302
    assert len(mailoutbox) == 2 and "Ortto account: Acme Outdoor (EU)" in mailoutbox[1].body
    assert Connection.objects.get(store__store_hash="sec1", state="active").account == eu
    # Disconnect.
    assert app_call(sandbox_live, staff_page, "disconnect").status_code == 200
    assert not Connection.objects.filter(store__store_hash="sec1").exclude(state="disconnected").exists()
    assert len(mailoutbox) == 3 and mailoutbox[2].body.startswith("Disconnected")
    assert all(m.to == ["owner@sec1.example"] for m in mailoutbox)
    assert "sbx-" not in "".join(m.body for m in mailoutbox)  # no API key in any message

    # The owner's app page: Connection history, newest first.
    page = load_page(sandbox_live, signed_payload_jwt(store=sandbox_store, user=owner)).text
    history = page[page.index("Connection history"):]
    rows = re.findall(r"<tr><td><time[^>]*>[^<]*</time></td><td>([^<]+)</td><td>([^<]+)", history)
    assert rows == [("Disconnected", "staff@sec1.example"),
                    ("Reconnected to another Ortto account", "staff@sec1.example "),
                    ("Connected", "staff@sec1.example ")]
