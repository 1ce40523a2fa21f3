"""Demo data for `make run`: the emulated stores and Ortto instances, and the bridge-side sign-ins."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

DEMO_EMAIL, DEMO_PASSWORD = "demo@example.com", "demo-password"
SUPPORT_EMAIL, SUPPORT_PASSWORD = "support@example.com", "support-password"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "admin-password"

STORES = [
    # (store hash, name, customers, orders)
    ("demo1234", "Acme Outdoor Co.", 2000, 5000),
    ("north567", "Northwind Bikes", 150, 300),
]


def _user(email: str, password: str, **flags):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=email, defaults={"email": email, **flags})
    if created:
        user.set_password(password)
        user.save()
    return user


def demo_seed(*, customers: int | None = None, orders: int | None = None, reset: bool = False, stdout=None) -> None:
    """Idempotent: a store that already has data keeps it (and the edits made in the demo) unless `reset`."""
    from sandbox.bigcommerce.models import Customer
    from sandbox.bigcommerce.seed import seed_bigcommerce, seed_users
    from sandbox.ortto.seed import seed_ortto_instances
    from sync.connect.accounts import ortto_account_url
    from sync.models import OrttoAccount

    say = (lambda msg: stdout.write(msg)) if stdout else (lambda msg: None)
    for store_hash, name, n_customers, n_orders in STORES:
        if not reset and customers is None and Customer.objects.filter(store__store_hash=store_hash).exists():
            seed_users(store_hash=store_hash)
            say(f"  sandbox BigCommerce store {store_hash} ({name}): kept (use --reset to start over)")
            continue
        seeded = seed_bigcommerce(
            store_hash=store_hash, name=name,
            customers=customers if customers is not None and store_hash == "demo1234" else n_customers,
            orders=orders if orders is not None and store_hash == "demo1234" else n_orders,
        )
        seed_users(store_hash=store_hash)
        say(f"  sandbox BigCommerce store {store_hash} ({name}): {seeded}")

    instances = seed_ortto_instances()
    with transaction.atomic():
        demo = _user(DEMO_EMAIL, DEMO_PASSWORD)
        for instance in instances:
            account, _ = OrttoAccount.objects.get_or_create(
                name=instance.name, region=instance.region,
                defaults={"business_name": instance.business_name, "api_key": instance.api_key,
                          "tracking_key": instance.tracking_key, "account_url": ortto_account_url(name=instance.name)},
            )
            account.members.add(demo)
        _user(ADMIN_EMAIL, ADMIN_PASSWORD, is_staff=True, is_superuser=True)
        support = _user(SUPPORT_EMAIL, SUPPORT_PASSWORD, is_staff=True)
        from django.contrib.auth.models import Group

        group = Group.objects.filter(name="Support").first()
        if group:
            support.groups.add(group)
    say(f"  sandbox Ortto instances: {', '.join(i.name for i in instances)}")


def demo_urls() -> dict:
    base = settings.PUBLIC_URL
    return {
        "control_panel": f"{base}/sandbox/bigcommerce/",
        "ortto": f"{base}/sandbox/ortto/",
        "mailbox": f"{base}/sandbox/mailbox/",
        "admin": f"{base}/admin/",
    }
