"""`make bench`: the bridge's benchmarks; writes BENCHMARKS.md.

    SANDBOX=1 .venv/bin/python -m benchmarks.run [--sizes 10000,50000,200000] [--quick] [--only sync,webhooks,admin]

Process layout (as in production): the BigCommerce + Ortto emulators run as a gunicorn server on their
own SQLite database; the sync runs in a separate worker process (benchmarks.tasks sync) on the bridge's
own SQLite database and talks to the emulators over HTTP through the product's clients. Nothing here
imports Django; every Django step is a subprocess (see benchmarks/tasks.py).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
WORK = ROOT / "bench-out"

# Real quotas (developer.bigcommerce.com "API rate limits", docs/ortto-contract.md): BigCommerce Standard/Plus
# 150 requests per 30 s window, shared by all apps on the store; Ortto Professional 10 requests/s.
BC_QUOTA, BC_WINDOW_MS, ORTTO_RATE = 150, 30_000, 10
PAGE = 250
BATCH = 100


def log(*parts):
    print(f"[{datetime.now():%H:%M:%S}]", *parts, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Env:
    """Databases, ports and environment variables of one benchmark session."""

    def __init__(self, work: Path):
        self.work = work
        self.emu_port = free_port()
        self.web_port = free_port()
        self.template = work / "template.sqlite3"
        self.emu_db = work / "emulator.sqlite3"
        self.bridge_db = work / "bridge.sqlite3"
        self.procs: list[subprocess.Popen] = []

    @property
    def emu_url(self):
        return f"http://127.0.0.1:{self.emu_port}"

    def env(self, db, **extra) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "Q_SYNC")}
        env.update({
            "SANDBOX": "1", "DATABASE_URL": db if isinstance(db, str) else f"sqlite:///{db}", "PUBLIC_URL": f"http://127.0.0.1:{self.web_port}",
            "BIGCOMMERCE_API_URL": f"{self.emu_url}/sandbox/bigcommerce/api",
            "BIGCOMMERCE_LOGIN_URL": f"{self.emu_url}/sandbox/bigcommerce/login",
            "ORTTO_API_URL": f"{self.emu_url}/sandbox/ortto/{{region}}",
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            "PYTHONUNBUFFERED": "1",
        })
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def task(self, db: Path, step: str, *args, timeout=3600, **extra) -> dict:
        cmd = [PY, "-m", "benchmarks.tasks", step, *map(str, args)]
        done = subprocess.run(cmd, cwd=ROOT, env=self.env(db, **extra), capture_output=True, text=True,
                              timeout=timeout)
        lines = [l for l in done.stdout.splitlines() if l.startswith("BENCH-JSON ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"{step} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        return json.loads(lines[-1][len("BENCH-JSON "):])

    def template_db(self):
        if self.template.exists():
            return
        log("migrating the template database")
        subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env(self.template), check=True)

    def fresh(self, db):
        if isinstance(db, str):  # PostgreSQL: drop, create and migrate the benchmark database
            name = db.rsplit("/", 1)[1]
            admin = db.rsplit("/", 1)[0] + "/postgres"
            subprocess.run(["psql", admin, "-q", "-c", f"DROP DATABASE IF EXISTS {name}"], check=True,
                           capture_output=True)
            subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True)
            subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=self.env(db), check=True)
            return
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        shutil.copy(self.template, db)

    def gunicorn(self, db: Path, port: int, *, workers: int, threads: int, **extra) -> subprocess.Popen:
        cmd = [str(Path(PY).parent / "gunicorn"), "ortto_bridge.wsgi", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
               "--log-level", "warning", "--backlog", "2048"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env(db, **extra), stdout=subprocess.DEVNULL,
                                stderr=open(self.work / f"gunicorn-{port}.log", "w"), start_new_session=True)
        self.procs.append(proc)
        for _ in range(300):
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                return proc
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn on {port} did not start; see {self.work}/gunicorn-{port}.log")

    def stop(self, proc: subprocess.Popen):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self):
        for proc in list(self.procs):
            self.stop(proc)


# --- emulator control --------------------------------------------------------------------------------


def set_quotas(env: Env, *, scale: float | None):
    """scale=None: quotas off. Otherwise BigCommerce 150 per (30 s / scale) and Ortto 10*scale per second."""
    store = "bench01"
    if scale is None:
        body, rate = {"requests": 10**9, "window_ms": BC_WINDOW_MS}, 0
    else:
        body, rate = {"requests": BC_QUOTA, "window_ms": int(BC_WINDOW_MS / scale)}, int(ORTTO_RATE * scale)
    requests.post(f"{env.emu_url}/sandbox/bigcommerce/control/{store}/quota", json=body, timeout=10).raise_for_status()
    requests.post(f"{env.emu_url}/sandbox/ortto/control/acme-us/rate", json={"per_second": rate},
                  timeout=10).raise_for_status()
    return rate


def ortto_reset(env: Env):
    requests.post(f"{env.emu_url}/sandbox/ortto/control/acme-us/reset", json={}, timeout=600).raise_for_status()


def ortto_stats(env: Env) -> dict:
    return requests.get(f"{env.emu_url}/sandbox/ortto/control/acme-us/stats", timeout=600).json()


# --- 1-3: sync ---------------------------------------------------------------------------------------------


def minimums(data: dict, run: dict) -> dict:
    """Theoretical minimum requests for an initial sync of this data set (see BENCHMARKS.md)."""
    bc = {
        "subscribers": math.ceil(data["subscribers"] / PAGE),
        "customers": math.ceil(data["customers"] / PAGE),
        "orders": math.ceil(data["orders"] / PAGE),
    }
    if "products" in data:  # the catalog mirror's read (sync/catalog/), before the orders
        bc["catalog"] = max(math.ceil(data["products"] / PAGE), 1)
    return {"bigcommerce": bc, "bigcommerce_total": sum(bc.values())}


def sync_size(env: Env, n: int, *, scale: float, strategy: int = 1, existing_fraction: float = 0.0,
              incremental: bool = True, throttled_only: bool = False, b2b_share: float = 0.0) -> dict:
    log(f"n={n}: seeding the emulator")
    env.fresh(env.emu_db)
    data = env.task(env.emu_db, "emu-seed", "--n", n, "--existing-fraction", existing_fraction,
                    "--b2b-share", b2b_share)
    emu = env.gunicorn(env.emu_db, env.emu_port, workers=2, threads=8)
    result = {"n": n, "data": data, "scale": scale, "strategy": strategy}
    try:
        if not existing_fraction:  # the capacity check resets Ortto, which would drop the existing people
            result["emulator"] = emulator_capacity(env, data["token"])
        modes = [("throttled", scale)] if throttled_only else [("unthrottled", None), ("throttled", scale)]
        for mode, s in modes:
            if not existing_fraction:
                ortto_reset(env)
            rate = set_quotas(env, scale=s)
            env.fresh(env.bridge_db)
            env.task(env.bridge_db, "bridge-setup", "--token", data["token"], "--strategy", strategy,
                     ORTTO_RATE_PER_SECOND=rate)
            log(f"n={n}: initial sync, {mode}")
            run = env.task(env.bridge_db, "sync", "--kind", "initial", ORTTO_RATE_PER_SECOND=rate, timeout=7200)
            stats = ortto_stats(env)
            run["ortto_stats"] = {k: stats[k] for k in ("people", "subscribed", "unsubscribed", "activities")}
            run["ortto_stats"]["placed_order_activities"] = stats["activities_by_id"].get("act:cm:placed-order", 0)
            run["ortto_stats"]["ordered_product_activities"] = stats["activities_by_id"].get("act:cm:ordered-product", 0)
            run["ortto_requests_seen_by_emulator"] = stats["requests"]
            result[mode] = run
            log(f"n={n} {mode}: {run['wall']:.1f}s status={run['status']} requests={run['requests']['by_api']}")
        if incremental:
            rate = set_quotas(env, scale=scale)
            log(f"n={n}: incremental, nothing changed")
            result["incremental_nothing"] = env.task(env.bridge_db, "sync", "--kind", "incremental",
                                                     ORTTO_RATE_PER_SECOND=rate)
            touched = env.task(env.emu_db, "emu-touch", "--fraction", 0.01)
            log(f"n={n}: incremental, {touched['changed']} customers changed")
            run = env.task(env.bridge_db, "sync", "--kind", "incremental", ORTTO_RATE_PER_SECOND=rate)
            run["changed"] = touched["changed"]
            result["incremental_changed"] = run
    finally:
        env.stop(emu)
    return result


# Regimes: (BigCommerce requests per 30 s, Ortto requests per second, answer latency), real values before
# scaling. BigCommerce: 150 per 30 s on Standard and Plus, 450 on Pro; Ortto: 10/s (Professional) to 60/s and
# more. Latency: None (loopback, a few ms) or (BigCommerce ms, Ortto ms) per answer, ±20 % (issue 23: a page of
# 250 takes about 0.5 s, an Ortto merge of 100 a few hundred ms).
PLANS = ((150, 10), (150, 60), (450, 10), (450, 60))
NETWORK_MS = (500, 300)
REGIMES = tuple((bc, ortto, None) for bc, ortto in PLANS) + tuple((bc, ortto, NETWORK_MS) for bc, ortto in PLANS)
# Threads of each emulator worker: an answer's latency is a sleep that holds one, so with a latency the emulator
# gets enough that the bridge's requests in flight (Little's law: rate x latency, ~4 BigCommerce pages + ~18 Ortto
# calls at 60/s x 0.3 s) never wait for a thread.
EMULATOR_THREADS, EMULATOR_THREADS_LATENCY = 8, 64


def regime_parse(text: str) -> tuple:
    """"450/60" (loopback) or "450/60@500/300" (BigCommerce 500 ms, Ortto 300 ms per answer)."""
    plan, _, latency = text.strip().partition("@")
    bc, ortto = (int(v) for v in plan.split("/"))
    return bc, ortto, tuple(int(v) for v in latency.split("/")) if latency else None


def regimes_chosen(text: str) -> tuple:
    """A comma list of regime_parse specs; empty: every regime (REGIMES)."""
    return tuple(regime_parse(r) for r in text.split(",") if r.strip()) or REGIMES


def regime_label(regime: tuple) -> str:
    bc, ortto, latency = regime
    return f"BC {bc}/30s, Ortto {ortto}/s, " + (f"{latency[0]}/{latency[1]} ms" if latency else "loopback")


def set_merge_limit(env: Env, limit: int) -> None:
    """The emulated Ortto's concurrency limit on synchronous merges; the bridge is not told it."""
    requests.post(f"{env.emu_url}/sandbox/ortto/control/acme-us/contract", json={"merge_concurrency_limit": limit},
                  timeout=10).raise_for_status()


def set_regime(env: Env, *, bc_requests: int, ortto_rate: int, scale: float) -> tuple[float, int]:
    """Quotas of one regime, scaled: BigCommerce bc_requests per 30 s / scale, Ortto ortto_rate * scale per s."""
    store = "bench01"
    window_ms = int(BC_WINDOW_MS / scale)
    rate = int(round(ortto_rate * scale))
    requests.post(f"{env.emu_url}/sandbox/bigcommerce/control/{store}/quota",
                  json={"requests": bc_requests, "window_ms": window_ms}, timeout=10).raise_for_status()
    requests.post(f"{env.emu_url}/sandbox/ortto/control/acme-us/rate", json={"per_second": rate},
                  timeout=10).raise_for_status()
    return bc_requests / (window_ms / 1000), rate


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its living descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(child) for child in children]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


def regimes_size(env: Env, n: int, *, scale: float, regimes, incremental: bool, floor: bool = True,
                 merge_limit: int = 0) -> dict:
    """One data set of n customers, synced from scratch under each regime, side by side in one session.
    The worker is given no Ortto rate (ORTTO_RATE_PER_SECOND=0): it learns each account's rate from its 429s,
    nor Ortto's concurrency limit on synchronous merges (merge_limit, set in the emulator): it finds it."""
    log(f"regimes n={n}: seeding the emulator")
    env.fresh(env.emu_db)
    data = env.task(env.emu_db, "emu-seed", "--n", n)
    emu = env.gunicorn(env.emu_db, env.emu_port, workers=2, threads=EMULATOR_THREADS)
    emu_latency = None
    result = {"n": n, "data": data, "scale": scale, "runs": [], "merge_limit": merge_limit}
    try:
        if floor:
            # The floor: the same import with the quotas off, i.e. what this box's CPU allows (the sync,
            # both emulators and their databases on the same cores).
            ortto_reset(env)
            if merge_limit:
                set_merge_limit(env, merge_limit)
            set_quotas(env, scale=None)
            env.fresh(env.bridge_db)
            env.task(env.bridge_db, "bridge-setup", "--token", data["token"], "--strategy", 1)
            log(f"regimes n={n}: quotas off (the box's floor)")
            emulator_cpu = process_tree_cpu(emu.pid)
            result["floor"] = env.task(env.bridge_db, "sync", "--kind", "initial", ORTTO_RATE_PER_SECOND=0,
                                       timeout=7200)
            result["floor"]["emulator_cpu"] = round(process_tree_cpu(emu.pid) - emulator_cpu, 2)
            log(f"regimes n={n}: floor {result['floor']['wall']:.1f}s cpu={result['floor']['cpu']:.1f}s "
                f"emulator cpu={result['floor']['emulator_cpu']:.1f}s")
        for bc_requests, ortto_rate, latency in regimes:
            if latency != emu_latency:  # the latency is the emulator's setting: restart it with the new one
                env.stop(emu)
                bc_ms, ortto_ms = latency or (0, 0)
                emu = env.gunicorn(env.emu_db, env.emu_port, workers=2,
                                   threads=EMULATOR_THREADS_LATENCY if latency else EMULATOR_THREADS,
                                   SANDBOX_BIGCOMMERCE_LATENCY_MS=bc_ms, SANDBOX_ORTTO_LATENCY_MS=ortto_ms,
                                   SANDBOX_LATENCY_JITTER=0.2)
                emu_latency = latency
            ortto_reset(env)
            if merge_limit:
                set_merge_limit(env, merge_limit)
            bc_rate, rate = set_regime(env, bc_requests=bc_requests, ortto_rate=ortto_rate, scale=scale)
            env.fresh(env.bridge_db)
            env.task(env.bridge_db, "bridge-setup", "--token", data["token"], "--strategy", 1)
            label = regime_label((bc_requests, ortto_rate, latency))
            log(f"regimes n={n}: {label} (x{scale}), merge limit {merge_limit or 'off'}: initial sync")
            emulator_cpu = process_tree_cpu(emu.pid)
            run = env.task(env.bridge_db, "sync", "--kind", "initial", ORTTO_RATE_PER_SECOND=0, timeout=7200)
            # Both emulators' CPU seconds over the run (gunicorn's master and workers): on a small box they
            # share its cores with the sync, which a real BigCommerce and Ortto never do.
            run["emulator_cpu"] = round(process_tree_cpu(emu.pid) - emulator_cpu, 2)
            stats = ortto_stats(env)
            run["ortto_stats"] = {k: stats[k] for k in ("people", "subscribed", "unsubscribed", "activities")}
            run["merge_concurrency"] = stats.get("merge_concurrency")
            run["regime"] = {"bc_requests_per_30s": bc_requests, "ortto_per_s": ortto_rate, "bc_rate": bc_rate,
                             "ortto_rate": rate, "latency_ms": list(latency) if latency else None}
            result["runs"].append(run)
            log(f"regimes n={n}: {run['wall']:.1f}s cpu={run['cpu']:.1f}s emulator cpu={run['emulator_cpu']:.1f}s "
                f"status={run['status']} "
                f"requests={run['requests']['by_api']} merges={run['merge_concurrency']}")
            if incremental and (bc_requests, ortto_rate, latency) == regimes[0]:
                log(f"regimes n={n}: incremental, nothing changed")
                result["incremental_nothing"] = env.task(env.bridge_db, "sync", "--kind", "incremental")
                touched = env.task(env.emu_db, "emu-touch", "--fraction", 0.01)
                log(f"regimes n={n}: incremental, {touched['changed']} customers changed")
                changed = env.task(env.bridge_db, "sync", "--kind", "incremental")
                changed["changed"] = touched["changed"]
                result["incremental_changed"] = changed
    finally:
        env.stop(emu)
    return result


def latency_bench(env: Env, n: int, *, latency: float, concurrencies=(1, 4)) -> dict:
    """Pages that answer slowly: every BigCommerce request of the store takes `latency` seconds in the
    emulator, under the Pro / Ortto 60/s regime, read one page at a time and several at a time
    (BIGCOMMERCE_READ_CONCURRENCY), side by side on one data set."""
    log(f"latency n={n}: seeding the emulator")
    env.fresh(env.emu_db)
    data = env.task(env.emu_db, "emu-seed", "--n", n)
    emu = env.gunicorn(env.emu_db, env.emu_port, workers=2, threads=16)
    result = {"n": n, "data": data, "latency": latency, "runs": []}
    faults = f"{env.emu_url}/sandbox/bigcommerce/control/bench01/faults"
    try:
        for concurrency in concurrencies:
            ortto_reset(env)
            bc_rate, rate = set_regime(env, bc_requests=450, ortto_rate=60, scale=1.0)
            requests.post(faults, json={"slow_probability": 0.0}, timeout=10).raise_for_status()
            env.fresh(env.bridge_db)
            env.task(env.bridge_db, "bridge-setup", "--token", data["token"], "--strategy", 1)
            requests.post(faults, json={"slow_probability": 1.0, "slow_seconds": latency},
                          timeout=10).raise_for_status()
            log(f"latency n={n}: {latency}s per BigCommerce request, {concurrency} page(s) at a time")
            run = env.task(env.bridge_db, "sync", "--kind", "initial", ORTTO_RATE_PER_SECOND=0,
                           BIGCOMMERCE_READ_CONCURRENCY=concurrency, timeout=7200)
            run["regime"] = {"bc_requests_per_30s": 450, "ortto_per_s": 60, "bc_rate": bc_rate, "ortto_rate": rate}
            run["read_concurrency"] = concurrency
            stats = ortto_stats(env)
            run["ortto_stats"] = {k: stats[k] for k in ("people", "subscribed", "unsubscribed", "activities")}
            result["runs"].append(run)
            log(f"latency n={n}: {run['wall']:.1f}s status={run['status']} requests={run['requests']['by_api']}")
        requests.post(faults, json={"slow_probability": 0.0}, timeout=10).raise_for_status()
    finally:
        env.stop(emu)
    return result


def emulator_capacity(env: Env, token: str) -> dict:
    """The same kinds of requests against the emulator from a bare client (quotas off): can it keep up?"""
    set_quotas(env, scale=None)
    ortto_reset(env)
    session = requests.Session()
    headers = {"X-Auth-Token": token, "Accept": "application/json"}
    base = f"{env.emu_url}/sandbox/bigcommerce/api/stores/bench01"
    t0, pages, after = time.monotonic(), 0, None
    while pages < 40:
        params = {"include": "addresses", "sort": "date_modified:asc", "limit": PAGE}
        if after:
            params["after"] = after
        body = session.get(f"{base}/v3/customers", params=params, headers=headers, timeout=60).json()
        pages += 1
        cursor = body["meta"].get("cursor_pagination") or {}
        after = cursor.get("end_cursor")
        if not (cursor.get("links") or {}).get("next"):
            break
    bc_seq = pages / (time.monotonic() - t0)
    t0, opages, min_id = time.monotonic(), 0, None
    while opages < 40:
        params = {"sort": "id:asc", "limit": PAGE, **({"min_id": min_id} if min_id else {})}
        r = session.get(f"{base}/v2/orders", params=params, headers=headers, timeout=60)
        opages += 1
        if r.status_code == 204:
            break
        min_id = max(o["id"] for o in r.json()) + 1
    orders_seq = opages / (time.monotonic() - t0)

    key = {"X-Api-Key": "sbx-default-acmeus-0001", "Content-Type": "application/json"}
    url = f"{env.emu_url}/sandbox/ortto/default/v1/person/merge"

    def merge(i):
        people = [{"fields": {"str::email": f"cap{i}.{j}@capacity.example", "str::first": "Cap", "bol::p": False}}
                  for j in range(BATCH)]
        s = requests.Session()
        r = s.post(url, json={"people": people, "merge_by": ["str::email"], "merge_strategy": 3}, headers=key,
                   timeout=60)
        return r.status_code

    calls = 200
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(merge, range(calls)))
    merge_rate = calls / (time.monotonic() - t0)
    ortto_reset(env)
    return {"bc_customer_pages_per_s": bc_seq, "bc_order_pages_per_s": orders_seq,
            "ortto_merges_per_s_4_threads": merge_rate, "ortto_merge_errors": sum(c != 200 for c in codes)}


# --- 4: webhooks -------------------------------------------------------------------------------------------

WRK_LUA = r"""
-- counter, dups and tid are globals: thread:get/thread:set only see a thread's globals.
counter = 0
dups = 0
tid = 0
local threads = {}
local next_tid = 0
function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end
function init(args)
  counter = 0
  dups = 0
end
function request()
  local n
  if counter > 20 and math.random() < 0.1 then
    n = counter - math.random(1, 20)
    dups = dups + 1
  else
    counter = counter + 1
    n = counter
  end
  local body = string.format('{"scope":"store/customer/updated","store_id":"1","producer":"stores/bench01",' ..
    '"hash":"' .. RUN .. '-%d-%d","created_at":1700000000,"data":{"type":"customer","id":%d}}', tid, n, n % 5000 + 1)
  return wrk.format("POST", "/bigcommerce/webhooks/", {["Content-Type"]="application/json",
    ["X-Bridge-Webhook-Secret"]=SECRET}, body)
end
function done(summary, latency, requests)
  local distinct = 0
  local d = 0
  for _, t in ipairs(threads) do
    distinct = distinct + t:get("counter")
    d = d + t:get("dups")
  end
  io.write(string.format("WRK-JSON {\"requests\":%d,\"errors_status\":%d,\"errors_connect\":%d,\"errors_timeout\":%d," ..
    "\"duration_us\":%d,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"distinct_sent\":%d,\"dups_sent\":%d}\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.timeout, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, distinct, d))
end
"""


def webhooks_bench(env: Env, *, duration: int, connections: int, web_workers: int, web_threads: int,
                   db=None) -> dict:
    wrk = shutil.which("wrk")
    if not wrk:
        return {"skipped": "wrk is not installed (apt-get install -y wrk)"}
    db = db or env.bridge_db
    env.fresh(env.emu_db)
    data = env.task(env.emu_db, "emu-seed", "--n", 100)
    emu = env.gunicorn(env.emu_db, env.emu_port, workers=1, threads=4)
    try:
        env.fresh(db)
        setup = env.task(db, "bridge-setup", "--token", data["token"], "--strategy", 1)
    finally:
        env.stop(emu)  # the receiver must not need the emulators
    # Persistent database connections (DATABASE_URL ?conn_max_age=600), as a production web process runs.
    web_db = db + "?conn_max_age=600" if isinstance(db, str) else f"sqlite:///{db}?conn_max_age=600"
    web = env.gunicorn(web_db, env.web_port, workers=web_workers, threads=web_threads)
    old_bridge, env.bridge_db = env.bridge_db, db
    try:
        script = env.work / "webhooks.lua"
        url = f"http://127.0.0.1:{env.web_port}"
        # Warm-up (imports, first connections), then the measured run; each run has its own hashes.
        script.write_text(f'SECRET = "{setup["webhook_secret"]}"\nRUN = "warm"\n' + WRK_LUA)
        subprocess.run([wrk, "-t2", "-c8", "-d2s", "-s", str(script), url], capture_output=True, text=True)
        script.write_text(f'SECRET = "{setup["webhook_secret"]}"\nRUN = "m{int(time.time())}"\n' + WRK_LUA)
        check0 = env.task(env.bridge_db, "webhook-check")
        log(f"webhooks: wrk -t2 -c{connections} -d{duration}s on {db}")
        out = subprocess.run([wrk, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
                             capture_output=True, text=True)
        line = next(l for l in out.stdout.splitlines() if l.startswith("WRK-JSON "))
        stats = json.loads(line[len("WRK-JSON "):])
        stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
        stats["wrk_text"] = out.stdout
        check1 = env.task(env.bridge_db, "webhook-check")
        stats["stored_during_run"] = check1["events"] - check0["events"]
        stats["exactness"] = webhook_exactness(env, setup["webhook_secret"])
        stats["database"] = "PostgreSQL" if isinstance(db, str) else "SQLite"
        stats["gunicorn"] = f"{web_workers} workers x {web_threads} threads (gthread), conn_max_age=600"
        stats["connections"] = connections
    finally:
        env.stop(web)
        env.bridge_db = old_bridge
    return stats


def webhook_exactness(env: Env, secret: str) -> dict:
    """A known set, sent concurrently: 3,000 distinct deliveries + 1,000 duplicates of them, shuffled."""
    import random

    before = env.task(env.bridge_db, "webhook-check")
    rng = random.Random(5)
    distinct = [f"exact-{i}" for i in range(3000)]
    sends = distinct + [rng.choice(distinct) for _ in range(1000)]
    rng.shuffle(sends)
    url = f"http://127.0.0.1:{env.web_port}/bigcommerce/webhooks/"
    headers = {"Content-Type": "application/json", "X-Bridge-Webhook-Secret": secret}

    def send(h):
        body = json.dumps({"scope": "store/order/updated", "store_id": "1", "producer": "stores/bench01",
                           "hash": h, "created_at": 1700000001, "data": {"type": "order", "id": 7}})
        return requests.post(url, data=body, headers=headers, timeout=30).status_code

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        codes = list(pool.map(send, sends))
    after = env.task(env.bridge_db, "webhook-check")
    stored = after["events"] - before["events"]
    dups = after["duplicates_recorded"] - before["duplicates_recorded"]
    return {"sent": len(sends), "distinct": len(distinct), "duplicates_sent": len(sends) - len(distinct),
            "non_200": sum(c != 200 for c in codes), "stored": stored, "duplicates_recorded": dups,
            "exact": stored == len(distinct) and dups == len(sends) - len(distinct)
            and after["events"] == after["distinct_keys"]}


# --- 5: admin ---------------------------------------------------------------------------------------------


def admin_bench(env: Env, *, runs: int, events: int) -> dict:
    env.fresh(env.emu_db)
    data = env.task(env.emu_db, "emu-seed", "--n", 100)
    emu = env.gunicorn(env.emu_db, env.emu_port, workers=1, threads=4)
    try:
        env.fresh(env.bridge_db)
        env.task(env.bridge_db, "bridge-setup", "--token", data["token"], "--strategy", 1)
    finally:
        env.stop(emu)
    log(f"admin: inserting {runs} runs and {events} events")
    seeded = env.task(env.bridge_db, "admin-seed", "--runs", runs, "--events", events)
    pages = env.task(env.bridge_db, "admin-pages", "--repeat", 3)
    return {"seeded": seeded, **pages}


# --- report ---------------------------------------------------------------------------------------------------


def machine() -> dict:
    mem = ""
    try:
        mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split(":")[1].strip()
    except (OSError, StopIteration):
        pass
    cpu = ""
    try:
        cpu = next(l for l in open("/proc/cpuinfo") if l.startswith("model name")).split(":")[1].strip()
    except (OSError, StopIteration):
        pass
    import sqlite3

    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "os": platform.platform(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=None, help="customers per sync benchmark, comma list "
                        "(default 10000,50000,200000; 500 with --quick)")
    parser.add_argument("--work", default=str(WORK), help="scratch directory (databases, logs)")
    parser.add_argument("--quick", action="store_true", help="smoke size (500 customers), small admin/webhook runs")
    parser.add_argument("--only", default="regimes,latency,overwrite,b2b,webhooks,admin",
                        help="comma list of: regimes, latency, sync, overwrite, b2b, webhooks, admin")
    parser.add_argument("--page-latency", type=float, default=1.0,
                        help="latency: seconds each BigCommerce request takes in the emulator")
    parser.add_argument("--regime-sizes", default=os.environ.get("BENCH_REGIME_SIZES") or "10000,50000",
                        help="regimes: customers per data set, every regime at each (comma list; env "
                             "BENCH_REGIME_SIZES)")
    parser.add_argument("--slowest-sizes", default="200000",
                        help="regimes: bigger data sets run only in the slowest regime (BC 150/30 s, Ortto 10/s)")
    parser.add_argument("--regimes", default=os.environ.get("BENCH_REGIMES", ""),
                        help="regimes: a subset, e.g. 150/10,450/60@500/300 (BC requests per 30 s / Ortto per s, "
                             "@ BC ms / Ortto ms per answer; none: loopback); env BENCH_REGIMES; default: the four "
                             "plans at loopback and at 500/300 ms")
    parser.add_argument("--merge-limit", type=int, default=int(os.environ.get("BENCH_MERGE_LIMIT") or 0),
                        help="the emulated Ortto's concurrency limit on synchronous merges (default: drawn at "
                             "random between 3 and 8 for the run; env BENCH_MERGE_LIMIT); the bridge is not told")
    parser.add_argument("--regime-scale", type=float, default=1.0,
                        help="regimes: one quota factor for every regime (1.0: the real quotas)")
    parser.add_argument("--b2b-share", type=float, default=0.2,
                        help="b2b: the part of customers (and guest orders) with one of customers/20 companies")
    parser.add_argument("--scale", type=float, default=2.0,
                        help="quota speed-up factor: BigCommerce 150 per 30s/scale, Ortto 10*scale per second")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--json", default=None, help="results file (default <work>/results.json)")
    parser.add_argument("--webhook-seconds", type=int, default=15)
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers for the webhook benchmark")
    parser.add_argument("--web-threads", type=int, default=8, help="gunicorn threads per worker (gthread)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/ortto_bench",
                        help="also run the webhook benchmark on this PostgreSQL database ('' to skip)")
    parser.add_argument("--report-only", action="store_true", help="rewrite BENCHMARKS.md from --json")
    parser.add_argument("--throttled-only", action="store_true", help="skip the unthrottled initial syncs")
    args = parser.parse_args(argv)
    args.json = args.json or str(Path(args.work) / "results.json")
    if args.report_only:
        from .report import write_report

        write_report(json.loads(Path(args.json).read_text()), Path(args.out))
        return None
    only = set(args.only.split(","))
    sizes = [int(s) for s in (args.sizes or ("500" if args.quick else "10000,50000,200000")).split(",") if s]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = Env(work)
    results = {"machine": machine(), "args": vars(args), "sizes": [], "argv": sys.argv[1:]}
    try:
        env.template_db()
        if "overwrite" in only:
            n = sizes[0]
            results["overwrite"] = sync_size(env, n, scale=args.scale, strategy=2, existing_fraction=0.2,
                                             incremental=False, throttled_only=True)
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        if "b2b" in only:
            # Organizations: the store's companies merged to Ortto with their people (report section 1c).
            results["b2b"] = sync_size(env, sizes[0], scale=args.scale, b2b_share=args.b2b_share,
                                       throttled_only=True)
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        if "webhooks" in only:
            duration = 3 if args.quick else args.webhook_seconds
            results["webhooks"] = webhooks_bench(env, duration=duration, connections=32,
                                                 web_workers=args.web_workers, web_threads=args.web_threads)
            if args.postgres and shutil.which("psql"):
                results["webhooks_pg"] = webhooks_bench(env, duration=duration, connections=32,
                                                        web_workers=args.web_workers, web_threads=args.web_threads,
                                                        db=args.postgres)
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        if "admin" in only:
            results["admin"] = admin_bench(env, runs=5_000 if args.quick else 1_000_000,
                                           events=1_000 if args.quick else 100_000)
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        if "latency" in only:
            results["latency"] = latency_bench(env, 500 if args.quick else 10_000, latency=args.page_latency)
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        if "regimes" in only:
            results["regimes"] = []
            quick_default = args.quick and args.regime_sizes == "10000,50000"
            regime_sizes = [int(x) for x in ("500" if quick_default else args.regime_sizes).split(",") if x]
            slowest = [] if args.quick else [int(x) for x in args.slowest_sizes.split(",") if x]
            chosen = regimes_chosen(args.regimes)
            merge_limit = args.merge_limit or random.SystemRandom().randint(3, 8)
            results["merge_limit"] = merge_limit
            log(f"regimes: {', '.join(map(regime_label, chosen))}; Ortto merge concurrency limit {merge_limit}")
            for n in regime_sizes:
                results["regimes"].append(regimes_size(env, n, scale=args.regime_scale, regimes=chosen,
                                                       incremental=True, floor=not args.quick,
                                                       merge_limit=merge_limit))
                Path(args.json).write_text(json.dumps(results, indent=1, default=str))
            for n in slowest:
                results["regimes"].append(regimes_size(env, n, scale=args.regime_scale, regimes=REGIMES[:1],
                                                       incremental=False, floor=False, merge_limit=merge_limit))
                Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        # Last: the biggest size may hit an outer timeout; every step before it is already saved.
        if "sync" in only:
            for n in sizes:
                results["sizes"].append(sync_size(env, n, scale=args.scale, throttled_only=args.throttled_only))
                Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    finally:
        env.stop_all()
    from .report import write_report

    write_report(results, Path(args.out))
    log(f"wrote {args.out} and {args.json}")
    return results


if __name__ == "__main__":
    main()
