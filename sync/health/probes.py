"""GET /healthz: the database answers, the broker answers, and a django-q2 cluster was seen recently."""

import logging

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_broker() -> str:
    from django_q.brokers import get_broker

    broker = get_broker()
    if not broker.ping():
        raise RuntimeError("broker did not answer")
    return f"ok ({broker.__class__.__name__})"


def _check_cluster() -> str:
    # Clusters report their status through the shared cache every few seconds (django-q2 Stat).
    from django_q.status import Stat

    clusters = [stat for stat in Stat.get_all() if stat.status != "Stopped"]
    if not clusters:
        raise RuntimeError("no django-q2 cluster has reported recently")
    return f"ok ({len(clusters)} cluster{'s' if len(clusters) != 1 else ''})"


@never_cache
@require_GET
def healthz(request):
    checks, healthy = {}, True
    for name, check in (("database", _check_database), ("broker", _check_broker), ("cluster", _check_cluster)):
        try:
            checks[name] = check()
        except Exception as exc:  # a health check reports, it does not raise
            healthy = False
            checks[name] = f"failing: {exc}"
            logger.warning("healthz %s failing: %s", name, exc)
    return JsonResponse({"status": "ok" if healthy else "failing", "checks": checks}, status=200 if healthy else 503)
