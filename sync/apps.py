from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Ortto sync"

    def ready(self):
        # Receivers: post_migrate (schedules) and stores' store_uninstalled, as django.contrib.auth
        # connects user_logged_in.
        from . import (
            admin_incidents,  # noqa: F401  (registers the incidents' admin; builds on admin.py)
            admin_organizations,  # noqa: F401  (registers the organizations' admin; builds on admin.py)
            signals,  # noqa: F401
        )
