from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate)
def install_schedules(sender, **kwargs):
    """Keep the django-q2 schedules in place after every migrate (idempotent)."""
    if getattr(sender, "name", "") != "sync":
        return
    from .schedules import schedules_setup

    schedules_setup()


@receiver(post_migrate)
def create_cache_table(sender, using, **kwargs):
    """`migrate` alone prepares the database: with the ORM broker (no REDIS_URL) django-q2's cluster status and
    the sign-in lockouts live in the database cache, whose table `migrate` does not create by itself.
    createcachetable skips a table that exists and any cache that is not the database's (Redis)."""
    if getattr(sender, "name", "") != "sync":
        return
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)
