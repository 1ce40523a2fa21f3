from django.db.models.signals import post_migrate
from django.dispatch import receiver


@receiver(post_migrate)
def install_schedules(sender, **kwargs):
    """Keep the django-q2 schedules in place after every migrate (idempotent)."""
    if getattr(sender, "name", "") != "sync":
        return
    from .schedules import schedules_setup

    schedules_setup()
