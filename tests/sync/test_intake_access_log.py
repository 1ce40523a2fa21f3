"""gunicorn's access log leaves out the webhook deliveries the intake accepted (their WebhookEvent row is the
record), and keeps every refused delivery and every other request (sync/intake/access_log.py)."""

import json
import sys
from pathlib import Path

import pytest
import requests

from stores.models import WebhookEvent
from sync.intake import access_log, hooks
from sync.intake.access_log import access_line_wanted

DELIVERY = {"REQUEST_METHOD": "POST", "PATH_INFO": "/bigcommerce/webhooks/"}


def test_the_intake_path_is_the_one_hooks_register():
    assert access_log.WEBHOOK_PATH == hooks.WEBHOOK_PATH


@pytest.mark.parametrize("environ, status, wanted", [
    (DELIVERY, 200, False),  # accepted: stored, a redelivery counted, or an ignored scope stored
    (DELIVERY, 401, True),  # refused: wrong secret, unknown store
    (DELIVERY, 400, True),
    (DELIVERY, 413, True),
    (DELIVERY, 500, True),
    ({"REQUEST_METHOD": "GET", "PATH_INFO": "/bigcommerce/webhooks/"}, 405, True),
    ({"REQUEST_METHOD": "GET", "PATH_INFO": "/bigcommerce/webhooks/"}, 200, True),
    ({"REQUEST_METHOD": "POST", "PATH_INFO": "/bigcommerce/webhooks/x"}, 200, True),
    ({"REQUEST_METHOD": "GET", "PATH_INFO": "/bigcommerce/load/"}, 200, True),
    ({"REQUEST_METHOD": "POST", "PATH_INFO": "/connect/merge/"}, 302, True),
])
def test_only_accepted_deliveries_are_left_out(environ, status, wanted):
    assert access_line_wanted(environ, status) is wanted
    assert access_line_wanted(environ, status, deliveries=True) is True  # ACCESS_LOG_DELIVERIES=1


@pytest.mark.parametrize("value, logged", [("", False), ("0", False), ("1", True), ("true", True), ("on", True)])
def test_access_log_deliveries_setting(monkeypatch, value, logged):
    monkeypatch.setenv("ACCESS_LOG_DELIVERIES", value)
    assert access_log.deliveries_logged() is logged


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deliveries_env, accepted_logged", [("", False), ("1", True)])
def test_gunicorn_logs_refused_deliveries_and_pages_not_accepted_deliveries(
        tmp_path, make_store, make_connection, make_account, deliveries_env, accepted_logged):
    from tests.security.test_no_secrets_in_logs import _free_port, _server, _stop

    store = make_store("alog1", webhook_secret="the-hook-secret")
    make_connection(store, make_account())
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    process = _server([str(Path(sys.executable).parent / "gunicorn"), "ortto_bridge.wsgi", "-c", "gunicorn.conf.py"],
                      port=port, log=log, BIND=f"127.0.0.1:{port}", WEB_WORKERS="1", WEB_THREADS="2",
                      ACCESS_LOG_DELIVERIES=deliveries_env)
    base = f"http://127.0.0.1:{port}"
    body = json.dumps({"scope": "store/customer/updated", "store_id": "1", "producer": "stores/alog1",
                       "hash": "h1", "created_at": 1735000000, "data": {"type": "customer", "id": 7}})
    try:
        accepted = [requests.post(f"{base}/bigcommerce/webhooks/", data=body, timeout=30,
                                  headers={"X-Bridge-Webhook-Secret": "the-hook-secret"}).status_code
                    for _ in range(2)]  # stored, then counted as a redelivery
        refused = requests.post(f"{base}/bigcommerce/webhooks/", data=body, timeout=30,
                                headers={"X-Bridge-Webhook-Secret": "wrong"}).status_code
        requests.get(f"{base}/healthz", timeout=30)  # 200 or 503 (no task cluster here): logged either way
    finally:
        _stop(process)
    assert accepted == [200, 200] and refused == 401
    event = WebhookEvent.objects.get(store=store)
    assert event.duplicates == 1  # what an operator reads instead of the two lines
    lines = log.read_text().splitlines()
    assert any('"POST /bigcommerce/webhooks/ HTTP/1.1" 401' in line for line in lines), lines[-20:]
    assert any('"GET /healthz HTTP/1.1"' in line for line in lines), lines[-20:]
    accepted_lines = [line for line in lines if '"POST /bigcommerce/webhooks/ HTTP/1.1" 200' in line]
    assert len(accepted_lines) == (2 if accepted_logged else 0), lines[-20:]
