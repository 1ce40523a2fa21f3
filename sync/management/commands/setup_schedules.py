from django.core.management.base import BaseCommand

from sync.schedules import schedules_setup


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules the bridge needs (idempotent)."

    def handle(self, *args, **options):
        for name in schedules_setup():
            self.stdout.write(f"schedule ready: {name}")
