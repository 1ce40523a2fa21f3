"""Fixtures of the reliability tests: a fleet of connected sandbox stores, real `qcluster` subprocesses
(harness.py), fast client retries for in-process runs."""

from __future__ import annotations

import pytest

from tests.reliability.harness import Cluster, cluster_env

# --- A fleet of connected sandbox stores ------------------------------------------------------------


@pytest.fixture
def connect_store(make_store, make_connection):
    """connect_store(store_hash, account, *, customers, orders, ...): one seeded sandbox store, installed,
    connected to `account` (an OrttoAccount)."""
    from sandbox.bigcommerce.limits import quota_set
    from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
    from sandbox.bigcommerce.services import app_install_complete

    def connect(store_hash: str, account, *, customers: int, orders: int, seed: int = 1, quota: int = 100000,
                name: str | None = None, merge_strategy: int = 1):
        name = name or f"Store {store_hash}"
        sandbox_store = seed_bigcommerce(store_hash=store_hash, name=name, customers=customers, orders=orders,
                                         seed=seed)
        quota_set(store=sandbox_store, requests=quota, window_ms=1000)
        seed_users(store_hash=store_hash)
        install = app_install_complete(store=sandbox_store)
        store = make_store(store_hash, name=name, access_token=install.access_token)
        make_connection(store, account, merge_strategy=merge_strategy)
        return store

    return connect


@pytest.fixture
def connect_fleet(sandbox_account, connect_store):
    """connect_fleet(*, count, customers, orders, prefix): `count` seeded sandbox stores, installed and connected
    to the sandbox Ortto instance acme-us; returns (stores, account)."""

    def connect(*, count: int, customers: int, orders: int, prefix: str = "rel"):
        account = sandbox_account("acme-us")
        stores = [connect_store(f"{prefix}{index:03d}", account, customers=customers, orders=orders, seed=100 + index)
                  for index in range(count)]
        return stores, account

    return connect


@pytest.fixture
def fast_retries(monkeypatch):
    """Both clients' backoff shortened (the retry logic itself is unchanged) so storms finish in seconds."""
    monkeypatch.setattr("stores.http.backoff_delay", lambda attempt: 0.02 * attempt)


# --- qcluster subprocesses ----------------------------------------------------------------------------


@pytest.fixture
def clusters(tmp_path, monkeypatch):
    """Factory: clusters(n, live_url, **env) starts n qclusters; all are stopped at teardown.

    The test process itself enqueues to the real broker, as everywhere in the suite."""
    import django_q.conf
    from django_q.brokers import get_broker

    monkeypatch.setattr(django_q.conf.Conf, "SYNC", False)
    broker = get_broker()
    broker.purge_queue()
    started: list[Cluster] = []

    def start(count: int, live_url: str, **extra) -> list[Cluster]:
        env = cluster_env(live_url, **extra)
        new = [Cluster(f"c{len(started) + i}", env, tmp_path / f"cluster-{len(started) + i}.log").start()
               for i in range(count)]
        started.extend(new)
        return new

    yield start
    for cluster in started:
        cluster.stop()
    broker.purge_queue()
    for cluster in started:  # kept for a failing test's report
        print(f"--- {cluster.name} ({cluster.log_path}) last lines ---")
        print("\n".join(cluster.output().splitlines()[-40:]))
