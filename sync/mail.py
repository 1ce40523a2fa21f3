"""Mail to a store's owner: the one path every notice takes (connection changes, and the incident alerts
of sync/health/incidents.py, which may also go to support staff at SUPPORT_ALERT_EMAIL).

A message is handed to a django-q2 task after the surrounding transaction commits, so a mail server that
is down never fails the request that caused it; the task sends through Django's mail API (EMAIL_URL) and,
when the server refuses or cannot be reached, schedules itself again with a growing delay. Callers write
the text: it names people and accounts, never a token or a key.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone
from django_q.models import Schedule

from stores.models import Store, StoreUser
from sync.queue import enqueue

logger = logging.getLogger(__name__)

# Seconds to wait before each further attempt; after the last one the message is given up (and logged).
RETRY_DELAYS = (60, 5 * 60, 30 * 60, 2 * 3600)
DELIVER_TASK = "sync.tasks.owner_mail_deliver"


def store_owner_email(*, store: Store) -> str:
    """The owner's address: BigCommerce's install grant names the owner; a later load may name them too."""
    if store.owner_email:
        return store.owner_email
    return StoreUser.objects.filter(store=store, is_owner=True).exclude(email="").values_list(
        "email", flat=True).first() or ""


def owner_mail_send(*, store: Store, subject: str, body: str, to_owner: bool = True,
                    support_copy: bool = False) -> None:
    """Queue `subject` / `body` for the store's owner, sent by a worker once the transaction commits.

    support_copy: a blind copy to SUPPORT_ALERT_EMAIL when that is set; to_owner=False sends only that copy
    (the owner turned alerts off)."""
    enqueue(DELIVER_TASK, store.pk, subject, body, 1, to_owner, support_copy)


def _recipients(store: Store | None, *, to_owner: bool, support_copy: bool) -> tuple[list[str], list[str]]:
    owner = store_owner_email(store=store) if store and to_owner else ""
    support = settings.SUPPORT_ALERT_EMAIL if support_copy else ""
    return ([owner] if owner else []), ([support] if support and support != owner else [])


def owner_mail_deliver(*, store_id: int, subject: str, body: str, attempt: int = 1, to_owner: bool = True,
                       support_copy: bool = False) -> bool:
    """Send one queued message now; on a mail-server failure schedule the next attempt. True when sent."""
    store = Store.objects.filter(pk=store_id).first()
    to, bcc = _recipients(store, to_owner=to_owner, support_copy=support_copy)
    if to_owner and not to:
        logger.warning("store %s has no owner address: a notice was not sent to the owner",
                       store.store_hash if store else store_id)
    if not to and not bcc:
        return False
    try:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, to or bcc, bcc=bcc if to else []).send()
    except OSError as exc:  # smtplib's errors are OSErrors, as are a refused or timed-out connection
        if attempt > len(RETRY_DELAYS):
            logger.error("store %s: mail to the owner given up after %d attempts (%s)", store.store_hash, attempt,
                         type(exc).__name__)
            return False
        delay = RETRY_DELAYS[attempt - 1]
        logger.warning("store %s: mail to the owner failed (%s); attempt %d in %ds", store.store_hash,
                       type(exc).__name__, attempt + 1, delay)
        Schedule.objects.create(
            func=DELIVER_TASK, args=repr((store_id, subject, body, attempt + 1, to_owner, support_copy)), schedule_type=Schedule.ONCE,
            repeats=-1, next_run=timezone.now() + timedelta(seconds=delay),
            name=f"owner-mail-{store_id}-{timezone.now().timestamp():.0f}-{attempt + 1}",
        )
        return False
    return True
