"""The one place that hands work to django-q2, always after the surrounding transaction commits."""

from django.db import transaction


def enqueue(func: str, *args, **kwargs) -> None:
    """Queue `func(*args)` for a worker once the current transaction (if any) has committed."""

    def send():
        # Looked up when sent, so tests can replace django_q.tasks.async_task to record what is queued.
        from django_q.tasks import async_task

        async_task(func, *args, **kwargs)

    transaction.on_commit(send)
