from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from stores.models import Store
from sync.connect.selectors import live_connection_get
from sync.engine.pauses import paused_connection_probe
from sync.engine.runs import RunNotPossible, sync_run_execute, sync_run_request
from sync.models import SyncRun


class Command(BaseCommand):
    help = "Sync one store into its Ortto account now, in the foreground, with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("store_hash")
        parser.add_argument("--full", action="store_true", help="Read everything, not just what changed.")

    def handle(self, *args, store_hash, full, **options):
        store = Store.objects.filter(store_hash=store_hash).first()
        if store is None:
            raise CommandError(f"No store with hash {store_hash!r}.")
        kind = SyncRun.Kind.FULL if full else SyncRun.Kind.MANUAL
        connection = live_connection_get(store=store)
        # A paused connection: ask Ortto now rather than fail on the pause the sweep would lift later.
        refused = paused_connection_probe(connection=connection) if connection is not None else ""
        if refused:
            raise CommandError(refused)
        try:
            run, created = sync_run_request(store=store, kind=kind, requested_by="manage.py sync_store",
                                           enqueue_run=False)
        except RunNotPossible as exc:
            raise CommandError(str(exc)) from exc
        if not created:
            self.stdout.write(f"Run #{run.pk} ({run.get_kind_display()}) is already active; taking it over if it can be claimed.")
        bar = tqdm(total=run.total or None, unit="record", disable=options.get("verbosity", 1) == 0)

        def progress(current):
            bar.total = max(current.total, current.processed) or None
            bar.n = current.processed
            bar.refresh()

        result = sync_run_execute(run_id=run.pk, sliced=False, on_page=progress)
        bar.close()
        if result is None:
            raise CommandError(f"Run #{run.pk} is being executed by another worker.")
        result.refresh_from_db()
        self.stdout.write(f"Run #{result.pk}: {result.get_status_display()}")
        for resource, counters in result.counter_rows:
            parts = ", ".join(f"{k} {v}" for k, v in counters.items())
            self.stdout.write(f"  {resource}: {parts}")
        if result.error_summary:
            self.stdout.write(f"  {result.error_summary}")
        if result.status == SyncRun.Status.FAILED:
            raise CommandError("The run failed.")
