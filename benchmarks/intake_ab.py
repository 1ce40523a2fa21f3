"""Webhook intake, two code paths side by side in one run (issue 23: >= 1,000 deliveries/s, p99 < 50 ms).

    SANDBOX=1 .venv/bin/python -m benchmarks.intake_ab --roots /work/wt-intake-base,. --labels before,after \
        --db postgres://postgres@127.0.0.1:5432/test_intake --rounds 3 --seconds 10

Each root is a checkout of the project (a `git worktree` of the older commit, with .venv linked). Both are
measured against one database, set up once, in alternating rounds (A B A B ...), so that what the other
processes on the box do falls on both alike. Per run: wrk's rate and latency (same Lua script as §4 of
BENCHMARKS.md: store/customer/updated deliveries, 10 % re-sends), the gunicorn workers' CPU seconds per
delivery (from /proc), and PostgreSQL's transactions and rows written per request (pg_stat_database,
read after the web processes exit so that their counters are flushed). Per root, once: the SQL queries one
delivery costs (Django's test client in one process, CaptureQueriesContext) and the exactly-once check of §4.

--workers 0 starts gunicorn without --workers/--threads: each root's own gunicorn.conf.py decides.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

import requests

from .run import WRK_LUA, Env, log

CLK_TCK = os.sysconf("SC_CLK_TCK")

QUERY_PROBE = r"""
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ortto_bridge.settings")
import django
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
secret, n = sys.argv[1], int(sys.argv[2])
client = Client()
def post(h):
    body = json.dumps({"scope": "store/customer/updated", "store_id": "1", "producer": "stores/bench01",
                       "hash": h, "created_at": 1700000002, "data": {"type": "customer", "id": 3}})
    r = client.post("/bigcommerce/webhooks/", body, content_type="application/json",
                    headers={"X-Bridge-Webhook-Secret": secret})
    assert r.status_code == 200, r.status_code
tag = os.urandom(4).hex()
post(f"probe-{tag}-warm")  # the process's first delivery reads the store
with CaptureQueriesContext(connection) as new:
    for i in range(n):
        post(f"probe-{tag}-{i}")
with CaptureQueriesContext(connection) as dup:
    for i in range(n):
        post(f"probe-{tag}-{i}")
kinds = {}
for q in new.captured_queries:
    key = q["sql"].split()[0].upper()
    kinds[key] = kinds.get(key, 0) + 1
print("PROBE-JSON " + json.dumps({"new": len(new.captured_queries) / n, "duplicate": len(dup.captured_queries) / n,
                                  "new_kinds": {k: v / n for k, v in kinds.items()}}))
"""


def proc_cpu(pid: int) -> float:
    """utime + stime of one process, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def workers_cpu(master: int) -> float:
    total = 0.0
    for pid in group_pids(master):
        if pid == master:
            continue
        try:
            total += proc_cpu(pid)
        except OSError:
            pass
    return total


def pg_stats(db: str) -> dict:
    name = db.rsplit("/", 1)[1]
    admin = db.rsplit("/", 1)[0] + "/postgres"
    out = subprocess.run(["psql", admin, "-Atc",
                          "SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_fetched "
                          f"FROM pg_stat_database WHERE datname = '{name}'"],
                         check=True, capture_output=True, text=True).stdout.strip()
    keys = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_fetched")
    return dict(zip(keys, map(int, out.split("|"))))


def pg_events(db: str) -> dict:
    out = subprocess.run(["psql", db, "-Atc", "SELECT count(*), count(DISTINCT dedup_key), "
                          "coalesce(sum(duplicates), 0) FROM stores_webhookevent"],
                         check=True, capture_output=True, text=True).stdout.strip()
    events, distinct, dups = map(int, out.split("|"))
    return {"events": events, "distinct_keys": distinct, "duplicates_recorded": dups}


def pg_backends(db: str) -> list[int]:
    """The server processes serving this database (the web processes keep theirs: conn_max_age)."""
    name = db.rsplit("/", 1)[1]
    admin = db.rsplit("/", 1)[0] + "/postgres"
    out = subprocess.run(["psql", admin, "-Atc", f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}'"],
                         check=True, capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def pids_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += proc_cpu(pid)
        except OSError:
            pass
    return total


def start_web(env: Env, root: Path, db: str, port: int, workers: int, threads: int, extra_env: dict):
    gunicorn = str(Path(os.environ.get("VIRTUAL_ENV", root / ".venv")) / "bin" / "gunicorn")
    if not Path(gunicorn).exists():
        gunicorn = str(root / ".venv" / "bin" / "gunicorn")
    cmd = [gunicorn, "ortto_bridge.wsgi", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
           "--backlog", "2048"]
    if workers:
        cmd += ["--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread"]
    run_env = env.env(db + "?conn_max_age=600", **extra_env)
    run_env["PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(cmd, cwd=root, env=run_env, stdout=subprocess.DEVNULL,
                            stderr=open(env.work / f"gunicorn-ab-{port}.log", "w"), start_new_session=True)
    for _ in range(300):
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn in {root} did not start")


def stop_web(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wrk_run(script: Path, url: str, *, connections: int, seconds: int) -> dict:
    wrk = shutil.which("wrk")
    out = subprocess.run([wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True)
    line = next(l for l in out.stdout.splitlines() if l.startswith("WRK-JSON "))
    stats = json.loads(line[len("WRK-JSON "):])
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    return stats


def one_run(env: Env, root: Path, label: str, db: str, secret: str, args, extra_env: dict) -> dict:
    port = env.web_port
    web = start_web(env, root, db, port, args.workers, args.threads, extra_env)
    url = f"http://127.0.0.1:{port}"
    try:
        script = env.work / f"ab-{label}.lua"
        script.write_text(f'SECRET = "{secret}"\nRUN = "{label}-warm{time.time_ns()}"\n' + WRK_LUA)
        warm = wrk_run(script, url, connections=8, seconds=2)
        script.write_text(f'SECRET = "{secret}"\nRUN = "{label}-{time.time_ns()}"\n' + WRK_LUA)
        s0 = pg_stats(db)  # also before the measured run: the warm-up's counters may be flushed by now
        e0 = pg_events(db)
        backends = pg_backends(db)
        pg_start = {pid: pids_cpu([pid]) for pid in backends}
        cpu0, t0 = workers_cpu(web.pid), time.monotonic()
        stats = wrk_run(script, url, connections=args.connections, seconds=args.seconds)
        cpu1, t1 = workers_cpu(web.pid), time.monotonic()
        # Threads that first connected during the run brought new server processes: all their CPU counts.
        backends = pg_backends(db)
        pg1 = pids_cpu(backends)
        pg0 = sum(pg_start.get(pid, 0.0) for pid in backends)
    finally:
        stop_web(web)
    time.sleep(1.0)  # the backends exit with the web processes and flush their counters
    s1 = pg_stats(db)
    e1 = pg_events(db)
    n = stats["requests"]
    stored = e1["events"] - e0["events"]
    # s0 was read after the warm-up; what it had not flushed yet is counted here too (at most its requests).
    result = {
        "label": label, "rps": stats["rps"], "p50_ms": stats["p50_us"] / 1000, "p90_ms": stats["p90_us"] / 1000,
        "p99_ms": stats["p99_us"] / 1000, "max_ms": stats["max_us"] / 1000, "requests": n,
        "errors": stats["errors_status"] + stats["errors_connect"] + stats["errors_timeout"],
        "cpu_ms_per_delivery": (cpu1 - cpu0) * 1000 / n, "cores_used": (cpu1 - cpu0) / (t1 - t0),
        "pg_cpu_ms_per_delivery": (pg1 - pg0) * 1000 / n, "pg_backends": len(backends),
        "xacts_per_request": (s1["xact_commit"] - s0["xact_commit"]) / n,
        "rows_written_per_request": (s1["tup_inserted"] + s1["tup_updated"] - s0["tup_inserted"]
                                     - s0["tup_updated"]) / n,
        "distinct_sent": stats["distinct_sent"], "stored": stored, "warm_requests": warm["requests"],
        "loadavg_1m_after": float(open("/proc/loadavg").read().split()[0]),  # the box is shared: say how busy
    }
    return result


def exactness(env: Env, root: Path, label: str, db: str, secret: str, args, extra_env: dict) -> dict:
    web = start_web(env, root, db, env.web_port, args.workers, args.threads, extra_env)
    try:
        before = pg_events(db)
        rng = random.Random(5)
        distinct = [f"exact-{label}-{time.time_ns()}-{i}" for i in range(3000)]
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
        after = pg_events(db)
    finally:
        stop_web(web)
    stored = after["events"] - before["events"]
    dups = after["duplicates_recorded"] - before["duplicates_recorded"]
    return {"stored": stored, "duplicates_recorded": dups, "non_200": sum(c != 200 for c in codes),
            "exact": stored == 3000 and dups == 1000 and after["events"] == after["distinct_keys"]
            and all(c == 200 for c in codes)}


def queries(env: Env, root: Path, db: str, secret: str) -> dict:
    done = subprocess.run([str(root / ".venv" / "bin" / "python"), "-c", QUERY_PROBE, secret, "50"], cwd=root,
                          env=env.env(db + "?conn_max_age=600"), capture_output=True, text=True, timeout=300)
    line = next((l for l in done.stdout.splitlines() if l.startswith("PROBE-JSON ")), None)
    if line is None:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-4000:])
    return json.loads(line[len("PROBE-JSON "):])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--roots", required=True, help="comma list of checkouts")
    parser.add_argument("--labels", required=True, help="comma list, one per root")
    parser.add_argument("--env", action="append", default=[],
                        help="LABEL:NAME=VALUE, an extra environment variable for one label's web processes")
    parser.add_argument("--db", default="postgres://postgres@127.0.0.1:5432/test_intake")
    parser.add_argument("--work", default="bench-out/intake-ab")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="0: each root's gunicorn.conf.py decides")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    roots = [Path(r).resolve() for r in args.roots.split(",")]
    labels = args.labels.split(",")
    extra = {label: {} for label in labels}
    for item in args.env:
        label, pair = item.split(":", 1)
        name, value = pair.split("=", 1)
        extra[label][name] = value
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = Env(work)
    results = {"args": vars(args), "runs": [], "queries": {}, "exactness": {}}
    try:
        env.template_db()
        env.fresh(env.emu_db)
        data = env.task(env.emu_db, "emu-seed", "--n", 100)
        emu = env.gunicorn(env.emu_db, env.emu_port, workers=1, threads=4)
        try:
            env.fresh(args.db)
            setup = env.task(args.db, "bridge-setup", "--token", data["token"], "--strategy", 1)
        finally:
            env.stop(emu)
        secret = setup["webhook_secret"]
        for label, root in zip(labels, roots):
            results["queries"][label] = queries(env, root, args.db, secret)
            log(f"{label}: queries per delivery {results['queries'][label]}")
        for r in range(args.rounds):
            order = list(zip(labels, roots))
            if r % 2:
                order.reverse()
            for label, root in order:
                run = one_run(env, root, label, args.db, secret, args, extra[label])
                run["round"] = r
                results["runs"].append(run)
                log(f"round {r} {label}: {run['rps']:.0f}/s p50 {run['p50_ms']:.1f} p99 {run['p99_ms']:.1f} ms, "
                    f"{run['cpu_ms_per_delivery']:.3f} CPU ms/delivery, {run['cores_used']:.2f} cores, "
                    f"PostgreSQL {run['pg_cpu_ms_per_delivery']:.3f} ms ({run['pg_backends']} backends), "
                    f"{run['xacts_per_request']:.2f} xacts/req, errors {run['errors']}, load {run['loadavg_1m_after']:.1f}")
        for label, root in zip(labels, roots):
            results["exactness"][label] = exactness(env, root, label, args.db, secret, args, extra[label])
            log(f"{label}: exactness {results['exactness'][label]}")
    finally:
        env.stop_all()
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    print(summary(results, labels))
    return results


def summary(results: dict, labels: list[str]) -> str:
    lines = ["| code | runs | deliveries/s (median) | p50 | p99 (median, worst) | web CPU ms / delivery | web cores | "
             "PostgreSQL CPU ms / delivery | "
             "SQL queries / new delivery (dup) | transactions / request | errors | exactly once |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label in labels:
        runs = [r for r in results["runs"] if r["label"] == label]
        if not runs:
            continue
        med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
        q = results["queries"].get(label, {})
        ex = results["exactness"].get(label, {})
        lines.append(
            f"| {label} | {len(runs)} | {med('rps'):,.0f} | {med('p50_ms'):.1f} ms | {med('p99_ms'):.1f} ms, "
            f"{max(r['p99_ms'] for r in runs):.1f} ms | {med('cpu_ms_per_delivery'):.3f} | {med('cores_used'):.2f} | "
            f"{med('pg_cpu_ms_per_delivery'):.3f} | "
            f"{q.get('new', float('nan')):.2f} ({q.get('duplicate', float('nan')):.2f}) | "
            f"{med('xacts_per_request'):.2f} | {sum(r['errors'] for r in runs)} | "
            f"{'yes' if ex.get('exact') else ex} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
