from django.core.management.base import BaseCommand

from sandbox.demo import demo_seed


class Command(BaseCommand):
    help = "Seed the sandbox: emulated BigCommerce stores, Ortto instances and the demo sign-ins."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, help="Customers in the demo store (default 2000).")
        parser.add_argument("--orders", type=int, help="Orders in the demo store (default 5000).")
        parser.add_argument("--reset", action="store_true", help="Replace the stores' data with fresh demo data.")

    def handle(self, *args, customers=None, orders=None, reset=False, **options):
        self.stdout.write("Seeding the sandbox…")
        demo_seed(customers=customers, orders=orders, reset=reset, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Sandbox ready."))
