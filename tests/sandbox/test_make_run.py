"""`make run` (manage.py sandbox_up) as a process: it comes up, prints where to click, and stops cleanly —
also when it was started in the background, where SIGINT is ignored and only SIGTERM reaches it."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.live


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_make_run_starts_and_stops_on_sigterm_when_started_in_the_background(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(SANDBOX="1", DEBUG="1", PUBLIC_URL=f"http://127.0.0.1:{port}",
               DATABASE_URL=f"sqlite:///{tmp_path / 'run.sqlite3'}")
    out = open(tmp_path / "out.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox_up"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN), start_new_session=True,
    )
    try:
        deadline = time.time() + 180
        while "sandbox is running" not in (tmp_path / "out.log").read_text():
            assert process.poll() is None and time.time() < deadline, (tmp_path / "out.log").read_text()[-3000:]
            time.sleep(0.5)
        text = (tmp_path / "out.log").read_text()
        assert f"http://127.0.0.1:{port}/sandbox/bigcommerce/" in text and "demo@example.com" in text
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code in (200, 503)

        # Let the demo history's first sync finish (the cluster lets a running task end before it stops).
        while "run finished" not in (tmp_path / "out.log").read_text():
            assert time.time() < deadline, (tmp_path / "out.log").read_text()[-3000:]
            time.sleep(0.5)

        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        # Not the 10 s grace period and a kill: both children stop on the signal they are sent.
        assert time.monotonic() - started < 6, (tmp_path / "out.log").read_text()[-2000:]
        # Nothing of the group is left: no web server on the port, no cluster process.
        time.sleep(0.5)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        with pytest.raises(ProcessLookupError):
            os.killpg(process.pid, 0)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        out.close()
