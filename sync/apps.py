from django.apps import AppConfig


class SyncConfig(AppConfig):
    name = "sync"
    verbose_name = "Ortto sync"

    def ready(self):
        # Receivers: post_migrate (schedules) and stores' store_uninstalled, as django.contrib.auth
        # connects user_logged_in. The admin registers itself through autodiscovery (sync/admin/).
        from sync import signals  # noqa: F401
