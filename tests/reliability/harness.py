"""Helpers of the reliability tests: real `qcluster` subprocesses against the test database (PostgreSQL + Redis
only), waiting for a condition, and finding secrets in text. Their fixtures are in conftest.py beside this file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

pg_redis_only = pytest.mark.skipif(
    not (os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")) and os.environ.get("REDIS_URL")),
    reason="needs PostgreSQL + Redis: two qcluster processes must never share SQLite (django-q2 pitfall 6); "
    "CI runs this in its PostgreSQL pass",
)


def full_scale() -> bool:
    """RELIABILITY_FULL=1 runs the cases at the sizes quoted in RELIABILITY.md (slower)."""
    return os.environ.get("RELIABILITY_FULL", "") == "1"


def wait_for(predicate, *, timeout: float, interval: float = 0.25, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {message}")


# --- qcluster subprocesses ----------------------------------------------------------------------------


class Cluster:
    """One `manage.py qcluster` in its own process group, its output in a file."""

    def __init__(self, name: str, env: dict, log_path: Path):
        self.name, self.env, self.log_path = name, env, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Cluster":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=self.env, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        """SIGKILL every process of this cluster at once (a host dying)."""
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.alive:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        try:  # the sentinel sometimes hangs after SIGTERM (django-q2 pitfall 10): finish the group off
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()

    def pids_running(self, run_id: int) -> list[int]:
        """Worker pids that logged claiming `run_id` (cluster_settings puts the pid in every line)."""
        pattern = re.compile(rf"pid=(\d+) \S+ sync\.engine \[store=\S+ run={run_id}\] \S+ run claimed")
        return [int(pid) for pid in pattern.findall(self.output())]


def cluster_env(live_url: str, **extra) -> dict:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.reliability.cluster_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "SANDBOX": "1",
        "Q_SYNC": "0",
        "Q_WORKERS": "2",
        "PUBLIC_URL": live_url,
        "BIGCOMMERCE_API_URL": f"{live_url}/sandbox/bigcommerce/api",
        "BIGCOMMERCE_LOGIN_URL": f"{live_url}/sandbox/bigcommerce/login",
        "ORTTO_API_URL": f"{live_url}/sandbox/ortto/{{region}}",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("TEST_DATABASE_NAME", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def secrets_in(text: str, secrets) -> list[str]:
    """Which of `secrets` appear in `text` (a finding lists a prefix only, never the secret itself)."""
    return [s[:4] + "…" for s in secrets if s and s in text]


def bridge_secrets() -> list[str]:
    """Every secret the bridge holds right now: access tokens, webhook secrets, API keys, client secret, the Ortto
    journey webhooks' URL secrets."""
    from stores.models import Store
    from sync.models import OrttoAccount

    found = [settings.BIGCOMMERCE_CLIENT_SECRET]
    for store in Store.objects.all():
        found += [store.access_token, store.webhook_secret]
    found += [account.api_key for account in OrttoAccount.objects.all()]
    from sync.models import ConsentPreference  # the Ortto unsubscribe journey's URL secret

    found += [preference.hook_token for preference in ConsentPreference.objects.all()]
    return [s for s in found if s and len(s) >= 8]
