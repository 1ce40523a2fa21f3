"""GET /healthz as an operator's probe sees it: 200 only when the database, the broker and a cluster all answer;
otherwise 503 with the failing check named, so a load balancer drops the host and a person knows why."""

import pytest

pytestmark = pytest.mark.django_db


class ClusterStat:
    status = "Idle"


@pytest.fixture
def a_cluster_reports(monkeypatch):
    monkeypatch.setattr("django_q.status.Stat.get_all", staticmethod(lambda *args, **kwargs: [ClusterStat()]))


def test_all_checks_pass_when_a_cluster_reports(client, a_cluster_reports):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "cluster"}
    assert all(result.startswith("ok") for result in body["checks"].values())
    assert "no-cache" in response["Cache-Control"]


def test_no_cluster_running_is_a_503_naming_the_cluster(client):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "failing"
    assert body["checks"]["cluster"] == "failing: no django-q2 cluster has reported recently"
    assert body["checks"]["database"] == "ok" and body["checks"]["broker"].startswith("ok")


def test_a_stopped_cluster_does_not_count(client, monkeypatch):
    stopped = type("Stat", (), {"status": "Stopped"})()
    monkeypatch.setattr("django_q.status.Stat.get_all", staticmethod(lambda *args, **kwargs: [stopped]))

    assert client.get("/healthz").status_code == 503


def refused():
    raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")


@pytest.mark.parametrize("ping, reason", [
    (lambda: False, "failing: broker did not answer"),
    (refused, "failing: Error 111 connecting to redis:6379. Connection refused."),
], ids=["no-answer", "unreachable"])
def test_a_broker_that_does_not_answer_is_a_503_naming_the_broker(client, monkeypatch, a_cluster_reports, ping, reason):
    broker = type("Broker", (), {"ping": staticmethod(ping)})()
    monkeypatch.setattr("django_q.brokers.get_broker", lambda *args, **kwargs: broker)

    response = client.get("/healthz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"] == reason
    assert checks["database"] == "ok" and checks["cluster"].startswith("ok")


def test_a_database_that_does_not_answer_is_a_503_naming_the_database(client, monkeypatch, a_cluster_reports):
    def refuse(*args, **kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr("sync.health.probes._check_database", refuse)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "failing: database is locked"


def test_only_get_is_answered(client):
    assert client.post("/healthz").status_code == 405
