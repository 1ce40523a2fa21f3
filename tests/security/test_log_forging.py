"""Issue 24, low finding: a newline in `context=` on the auth callback (or anywhere else a client's text
reaches a log line) cannot forge a log line. Over real HTTP against runserver and gunicorn, as
test_no_secrets_in_logs.py starts them; the logs they wrote are read."""

import sys
from pathlib import Path

import pytest
import requests

from stores.log_filters import SafeLogLines, escape_controls

from .test_no_secrets_in_logs import _free_port, _server, _stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

FORGED = "2026-12-07 12:00:00,000 INFO stores.services store victim1 uninstalled"


def attack(base: str) -> None:
    response = requests.get(f"{base}/bigcommerce/auth/", params={
        "code": "x", "scope": "s", "context": f"stores/abc\n{FORGED}\r\n\x1b[2K{FORGED}"}, timeout=30)
    assert response.status_code == 502  # the sandbox refuses the made-up code: the bridge logs a warning
    requests.get(f"{base}/bigcommerce/nothing%0A{FORGED.replace(' ', '%20')}", timeout=30)


@pytest.mark.parametrize("server", ["runserver", "gunicorn"])
def test_a_newline_from_a_client_cannot_forge_a_log_line(tmp_path, settings, server):
    port = _free_port()
    log = tmp_path / f"{server}.log"
    command = ([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"]
               if server == "runserver" else
               [str(Path(sys.executable).parent / "gunicorn"), "ortto_bridge.wsgi", "-c", "gunicorn.conf.py"])
    process = _server(command, port=port, log=log, BIND=f"127.0.0.1:{port}", WEB_WORKERS="1", WEB_THREADS="4")
    try:
        attack(f"http://127.0.0.1:{port}")
    finally:
        _stop(process)
    text = log.read_text()
    assert "token exchange failed for stores/abc\\n2026-12-07" in text, text[-3000:]
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith(FORGED) or line.startswith("\x1b")], text[-3000:]
    assert "\x1b" not in text


def test_the_filter_escapes_every_control_character_and_keeps_the_rest():
    import logging

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "failed for %s: %s", ("a\nb\u2028c\x00", 502), None)
    assert SafeLogLines().filter(record)
    assert record.getMessage() == "failed for a\\nb\\u2028c\\x00: 502"
    assert escape_controls("tab\tstays") == "tab\tstays"
