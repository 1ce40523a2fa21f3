"""The django-q2 schedules the bridge needs, created idempotently (never at import time)."""

from django.conf import settings


def schedules_setup() -> list[str]:
    from django_q.models import Schedule

    wanted = {
        "sync: fan out incremental runs": dict(
            func="sync.tasks.incremental_tick", schedule_type=Schedule.MINUTES,
            minutes=settings.SYNC_INTERVAL_MINUTES, repeats=-1,
        ),
        "sync: resume stalled runs and drain webhooks": dict(
            func="sync.tasks.maintenance_tick", schedule_type=Schedule.MINUTES, minutes=1, repeats=-1,
        ),
    }
    names = []
    for name, defaults in wanted.items():
        Schedule.objects.update_or_create(name=name, defaults=defaults)
        names.append(name)
    return names
