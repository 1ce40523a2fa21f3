"""`make run`: migrate, seed, then run the web server and a django-q2 cluster together until Ctrl-C."""

import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from sandbox import demo


class Command(BaseCommand):
    help = "Run the sandbox demo: web server + django-q2 cluster, seeded with demo data."

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)  # also creates the cache table and schedules
        self.stdout.write("Database ready.")
        call_command("sandbox_seed", stdout=self.stdout)
        call_command("setup_schedules", verbosity=0)

        address = urlsplit(settings.PUBLIC_URL).netloc or "127.0.0.1:8000"
        manage = [sys.executable, "manage.py"]
        env = os.environ.copy()
        processes = [
            subprocess.Popen(manage + ["runserver", address, "--noreload", "--skip-checks"], env=env),
            subprocess.Popen(manage + ["qcluster"], env=env),
        ]
        urls = demo.demo_urls()
        from sandbox.history import HISTORY_STORE, demo_history_seed

        try:
            result = demo_history_seed(base_url=settings.PUBLIC_URL)
            self.stdout.write(f"Support demo history ({HISTORY_STORE} connected to Ortto): {result}")
        except Exception as exc:  # the demo still runs without the history
            self.stderr.write(f"Could not prepare the support demo history: {exc}")
        self.stdout.write(self.style.SUCCESS("\nOrtto Bridge sandbox is running. Open:"))
        self.stdout.write(f"  BigCommerce control panel (emulated):  {urls['control_panel']}")
        self.stdout.write("     → pick 'Acme Outdoor Co.', then Apps › Marketplace › Install, or My Apps › Launch")
        self.stdout.write(f"  Ortto (emulated) people pages:         {urls['ortto']}")
        self.stdout.write(f"  Mailbox (e-mails the bridge sent):     {urls['mailbox']}")
        self.stdout.write(f"  Support admin:                         {urls['admin']}")
        self.stdout.write("Logins:")
        self.stdout.write(f"  Ortto Bridge sign-in (Connect): {demo.DEMO_EMAIL} / {demo.DEMO_PASSWORD}")
        self.stdout.write(f"  Support staff (admin):          {demo.SUPPORT_EMAIL} / {demo.SUPPORT_PASSWORD}")
        self.stdout.write(f"  Superuser (admin):              {demo.ADMIN_EMAIL} / {demo.ADMIN_PASSWORD}")
        self.stdout.write("Press Ctrl-C to stop both processes.\n")

        def stop(*_):
            # SIGTERM, not SIGINT: started in the background (nohup, a supervisor, `make run &`) the
            # children inherit an ignored SIGINT and would only die at the kill below. On Ctrl-C in a
            # terminal they already got SIGINT from it; both runserver and qcluster stop cleanly on TERM.
            for process in processes:
                if process.poll() is None:
                    process.terminate()
            deadline = time.time() + 10
            for process in processes:
                try:
                    process.wait(timeout=max(0.1, deadline - time.time()))
                except subprocess.TimeoutExpired:
                    process.kill()

        signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
            self.stderr.write("A process exited; stopping the other.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            stop()
