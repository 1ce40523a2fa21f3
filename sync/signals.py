from django.core.management import call_command
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from stores.signals import store_uninstalled
from sync.connect.connections import connection_store_uninstalled
from sync.schedules import schedules_setup


@receiver(post_migrate)
def install_schedules(sender, **kwargs):
    """Keep the django-q2 schedules in place after every migrate (idempotent)."""
    if getattr(sender, "name", "") != "sync":
        return
    schedules_setup()


@receiver(post_migrate)
def create_cache_table(sender, using, **kwargs):
    """`migrate` alone prepares the database: with the ORM broker (no REDIS_URL) django-q2's cluster status and
    the sign-in lockouts live in the database cache, whose table `migrate` does not create by itself.
    createcachetable skips a table that exists and any cache that is not the database's (Redis)."""
    if getattr(sender, "name", "") != "sync":
        return
    call_command("createcachetable", database=using, verbosity=0)


@receiver(store_uninstalled)
def stop_syncing_uninstalled_store(sender, *, store, **kwargs):
    connection_store_uninstalled(store=store)
