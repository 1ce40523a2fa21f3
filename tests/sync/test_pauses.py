"""Connections paused by an Ortto 403 and the sweep's probe that resumes them."""

import pytest

from sync.engine.pauses import account_pause, paused_accounts_probe, paused_connection_probe
from sync.models import Connection
from sync.ortto.client import OrttoAccountBlocked, OrttoAuthError, OrttoUnavailable

pytestmark = pytest.mark.django_db


class Probe:
    def __init__(self, failure=None):
        self.failure, self.calls = failure, 0

    def __call__(self, account):
        return self

    def verify(self):
        self.calls += 1
        if self.failure:
            raise self.failure


@pytest.fixture
def paused(make_store, make_account, make_connection):
    account = make_account()
    connections = [make_connection(make_store(h), account) for h in ("p1", "p2")]
    assert account_pause(account_id=account.pk, status=403, message="POST /v1/x -> HTTP 403: account expired") == 2
    return connections


def test_a_403_pauses_every_connection_of_the_account_without_blaming_the_key(paused):
    for connection in paused:
        connection.refresh_from_db()
        assert connection.state == Connection.State.PAUSED
        assert "403: account expired" in connection.state_reason and "key" not in connection.state_reason.lower()


@pytest.mark.parametrize("failure, state", [
    (None, Connection.State.ACTIVE),
    (OrttoAccountBlocked("x", status=403), Connection.State.PAUSED),
    (OrttoAuthError("x", status=401), Connection.State.NEEDS_RECONNECT),
    (OrttoUnavailable("x", status=503), Connection.State.PAUSED),
])
def test_the_probe_resumes_keeps_or_escalates(paused, failure, state):
    probe = Probe(failure)
    paused_accounts_probe(client_for=probe)
    assert probe.calls == 1, "one probe per account, not per connection"
    assert {c.state for c in Connection.objects.filter(pk__in=[c.pk for c in paused])} == {state}


def test_the_app_page_says_paused_without_asking_to_reconnect(paused):
    from django.template.loader import render_to_string

    from sync.connect.selectors import app_state

    html = render_to_string("sync/_panel.html", {"state": app_state(store=paused[0].store), "connect_url": "/c"})
    assert "Syncing is paused by Ortto." in html and "account expired" in html
    assert "Ortto stopped accepting this connection" not in html
    # Sync now stays open: it asks Ortto first (sync.engine.pauses.paused_connection_probe).
    assert "Sync now asks Ortto first" in html


def test_the_sweep_and_an_explicit_sync_share_one_probe(paused):
    connection = Connection.objects.select_related("account").get(pk=paused[0].pk)
    probe = Probe(OrttoAccountBlocked("x", status=403))
    answer = paused_connection_probe(connection=connection, client_for=probe)
    assert probe.calls == 1 and "still refuses access" in answer and "next automatic check is at about" in answer
    assert Connection.objects.get(pk=paused[0].pk).state == Connection.State.PAUSED
    probe = Probe()
    assert paused_connection_probe(connection=connection, client_for=probe) == ""
    assert probe.calls == 1
    assert {c.state for c in Connection.objects.filter(pk__in=[c.pk for c in paused])} == {Connection.State.ACTIVE}
