from django.db.models.signals import post_migrate
from django.dispatch import receiver

from stores.signals import store_uninstalled

from .connections import connection_store_uninstalled
from .schedules import schedules_setup


@receiver(post_migrate)
def install_schedules(sender, **kwargs):
    """Keep the django-q2 schedules in place after every migrate (idempotent)."""
    if getattr(sender, "name", "") != "sync":
        return
    schedules_setup()


@receiver(store_uninstalled)
def stop_syncing_uninstalled_store(sender, *, store, **kwargs):
    connection_store_uninstalled(store=store)
