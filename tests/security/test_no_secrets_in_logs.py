"""Issue 16, item 5: no load token, uninstall / remove-user payload, install code or connect token in
any log. A whole journey (install → load → connect → remove a user → uninstall) runs over real HTTP
against the dev server `make run` starts (runserver, with the sandbox), and against gunicorn as
`make serve` starts it; then the captured logs are read."""

import html
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from django.db import connection

from sandbox.bigcommerce.seed import seed_store, seed_users
from sandbox.bigcommerce.services import (
    app_auth_callback_url,
    app_install_grant,
    app_uninstall,
    signed_payload_jwt,
    user_remove,
)
from stores.log_filters import redact
from stores.models import Store
from sync.models import Connection

from .harness import Browser, connect_link, follow_connect_link

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_up(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-2000:]}")
        try:
            requests.get(url + "/healthz", timeout=5)
            return
        except requests.RequestException:  # not listening yet, or too busy starting to answer in time
            time.sleep(0.2)
    raise AssertionError("server did not start")


def _test_database_url() -> str:
    """The test database, for a server subprocess (SQLite file, or CI's PostgreSQL test database)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _server(command: list[str], *, port: int, log: Path, **env) -> subprocess.Popen:
    base = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, "SANDBOX": "1", "DEBUG": "1", "DATABASE_URL": _test_database_url(), "PUBLIC_URL": base,
                "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", **env}
    full_env.pop("TEST_DATABASE_NAME", None)
    process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    _wait_up(base, process, log)
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _journey(base: str, settings, *, make_user, sandbox_account) -> list[str]:
    """Install, load, connect, remove a user and uninstall over HTTP; every secret that crossed a URL."""
    settings.PUBLIC_URL = base  # the sandbox (in this process) calls the bridge's callbacks there
    secrets = []
    sandbox_store = seed_store(store_hash="logs1")
    owner, staff = seed_users(store_hash="logs1")
    install = app_install_grant(store=sandbox_store, user=owner)
    auth_url = html.unescape(app_install_callback := app_auth_callback_url(install=install))
    secrets.append(parse_qs(urlsplit(app_install_callback).query)["code"][0])
    assert requests.get(auth_url.replace(settings.PUBLIC_URL, base), timeout=60).status_code == 200

    merchant = Browser(base)
    load_token = signed_payload_jwt(store=sandbox_store, user=owner)
    secrets.append(load_token)
    page = merchant.session.get(f"{base}/bigcommerce/load/", params={"signed_payload_jwt": load_token}, timeout=60)
    assert page.status_code == 200
    link = connect_link(page)
    secrets.append(parse_qs(urlsplit(link).query)["token"][0])
    account = sandbox_account("acme-us", members=[make_user("owner@example.com", password="the-right-password")])
    assert follow_connect_link(merchant, link, email="owner@example.com", password="the-right-password"
                               ).status_code == 302
    merchant.get("/connect/accounts/")
    assert merchant.post("/connect/accounts/", {"account": account.pk}).status_code == 302
    merchant.get("/connect/merge/")
    assert merchant.post("/connect/merge/", {"merge_strategy": 1}).status_code == 302
    assert Connection.objects.filter(store__store_hash="logs1").exists()

    secrets.append(signed_payload_jwt(store=sandbox_store, user=staff))
    removed = user_remove(store=sandbox_store, user=staff)
    secrets.append(parse_qs(urlsplit(removed.url).query)["signed_payload_jwt"][0])
    uninstalled = app_uninstall(store=sandbox_store, user=owner)
    assert uninstalled.status == 200, uninstalled.error
    secrets.append(parse_qs(urlsplit(uninstalled.url).query)["signed_payload_jwt"][0])
    assert not Store.objects.get(store_hash="logs1").is_installed
    return secrets


def test_the_dev_server_logs_no_token_or_code(make_user, sandbox_account, tmp_path, settings):
    port = _free_port()
    log = tmp_path / "runserver.log"
    server = _server([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"],
                     port=port, log=log)
    try:
        secrets = _journey(f"http://127.0.0.1:{port}", settings, make_user=make_user, sandbox_account=sandbox_account)
    finally:
        _stop(server)
    text = log.read_text()
    assert "/bigcommerce/load/?signed_payload_jwt=[redacted]" in text, text[-3000:]  # requests were logged
    leaked = [secret[:12] for secret in secrets if secret in text]
    assert not leaked, leaked


def test_gunicorn_logs_no_query_strings(make_user, sandbox_account, tmp_path, settings):
    port = _free_port()
    log = tmp_path / "gunicorn.log"
    server = _server([str(Path(sys.executable).parent / "gunicorn"), "ortto_bridge.wsgi", "-c", "gunicorn.conf.py"],
                     port=port, log=log, BIND=f"127.0.0.1:{port}", WEB_WORKERS="1", WEB_THREADS="4")
    try:
        secrets = _journey(f"http://127.0.0.1:{port}", settings, make_user=make_user, sandbox_account=sandbox_account)
    finally:
        _stop(server)
    text = log.read_text()
    assert '"GET /bigcommerce/load/ HTTP/1.1" 200' in text, text[-3000:]
    leaked = [secret[:12] for secret in secrets if secret in text]
    assert not leaked, leaked


def test_redaction_keeps_the_rest_of_the_line():
    line = '"GET /bigcommerce/auth/?code=abc123&scope=store_v2&context=stores/x HTTP/1.1" 200 status_code=200'
    assert redact(line) == '"GET /bigcommerce/auth/?code=[redacted]&scope=store_v2&context=stores/x HTTP/1.1" 200 status_code=200'
    assert redact("next=/connect/%3Ftoken%3Dsecret") == "next=/connect/%3Ftoken%3D[redacted]"
