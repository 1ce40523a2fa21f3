from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Ortto sync"

    def ready(self):
        from . import signals  # noqa: F401  (post_migrate: schedules)
        from . import admin_organizations  # noqa: F401  (registers the organizations' admin; builds on admin.py)
