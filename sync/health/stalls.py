"""What "Sync now" says when a run is already active: resumed now when its worker has gone quiet past
SYNC_STALL_SECONDS, otherwise when it would be resumed if its worker has stopped.

A worker that crashes leaves its run "running"; the maintenance tick (every minute) resumes a run
whose heartbeat is older than SYNC_STALL_SECONDS. Until then "already running" for minutes reads like
a hang, so the answer names the time.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from sync.models import SyncRun
from sync.queue import enqueue

# A run heartbeats after every page; quieter than this and the answer says when it will be resumed.
QUIET_SECONDS = 30
# The maintenance tick that resumes stalled runs runs once a minute (sync.schedules).
MAINTENANCE_EVERY_SECONDS = 60


def sync_run_active_answer(*, run: SyncRun) -> str:
    """Answer for a Sync now that found `run` active: "" when the stalled run was re-queued now."""
    now = timezone.now()
    last_sign = run.heartbeat_at or run.created_at
    stall = timedelta(seconds=settings.SYNC_STALL_SECONDS)
    if last_sign is None or now - last_sign < timedelta(seconds=QUIET_SECONDS):
        return "A sync is already running for this store."
    if SyncRun.objects.filter(pk=run.pk).stalled(now).exists():
        # Taken over from its checkpoint by whichever worker claims it (the claim accepts a stalled run).
        enqueue("sync.tasks.run_sync", run.pk)
        return ""
    resume_by = last_sign + stall + timedelta(seconds=MAINTENANCE_EVERY_SECONDS)
    minutes = max(1, round((resume_by - now).total_seconds() / 60))
    return (f"A sync is already running for this store, but its worker has not reported since "
            f"{last_sign:%H:%M:%S} UTC. If it stopped, the sync resumes by itself by about {resume_by:%H:%M} UTC "
            f"(in {minutes} minute{'s' if minutes != 1 else ''}).")
