"""Deterministic demo data for the emulated BigCommerce.

`seed_bigcommerce` replaces a store's customers, subscribers and orders (installs, scripts, hooks and
users stay) with bulk inserts, so 200,000 customers take seconds. The same seed gives the same people,
ids, statuses and opt-ins; dates are spread over the year before `now`, all distinct.
"""

import hashlib
import random
import re
import unicodedata
from datetime import datetime, timedelta

from django.db import connections, models, router, transaction
from django.utils import timezone

from .models import Customer, Order, SandboxStore, SandboxUser, Subscriber, WebhookDelivery
from .serializers import CATALOG, order_tax

BATCH_SIZE = 2000
NEWSLETTER = "marketing_newsletter"

FIRST_NAMES = [
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Ava", "Elijah", "Sophia", "Lucas", "Mia",
    "Mateo", "Isabella", "Leo", "Charlotte", "Hiroshi", "Aarav", "Priya", "Chloé", "José", "Zoë",
    "Siobhan", "Björn", "Fatima", "Wei", "Ngozi", "Mohammed", "Ingrid", "Sven", "Lucía", "Kwame",
    "Aroha", "Tane", "Grace", "Jack", "Ruby", "Henry", "Ella", "Samuel", "Freya",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martínez", "Lopez",
    "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Müller", "Schmidt", "Nguyen", "Tanaka", "Kowalski",
    "Rossi", "Dubois", "Silva", "Patel", "Kim", "Chen", "Okafor", "Haddad", "Larsen", "Fernández",
    "Walker", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Campbell", "Hughes",
]
# (city, state, country, iso2, postal code)
PLACES = [
    ("Austin", "Texas", "United States", "US", "78701"),
    ("Denver", "Colorado", "United States", "US", "80202"),
    ("Portland", "Oregon", "United States", "US", "97205"),
    ("Seattle", "Washington", "United States", "US", "98101"),
    ("Boston", "Massachusetts", "United States", "US", "02108"),
    ("Toronto", "Ontario", "Canada", "CA", "M5H 2N2"),
    ("Vancouver", "British Columbia", "Canada", "CA", "V6B 1A1"),
    ("London", "Greater London", "United Kingdom", "GB", "SW1A 1AA"),
    ("Manchester", "Greater Manchester", "United Kingdom", "GB", "M1 1AE"),
    ("Dublin", "Dublin", "Ireland", "IE", "D02 X285"),
    ("Berlin", "Berlin", "Germany", "DE", "10115"),
    ("München", "Bayern", "Germany", "DE", "80331"),
    ("Paris", "Île-de-France", "France", "FR", "75001"),
    ("Sydney", "New South Wales", "Australia", "AU", "2000"),
    ("Melbourne", "Victoria", "Australia", "AU", "3000"),
    ("Auckland", "Auckland", "New Zealand", "NZ", "1010"),
    ("Stockholm", "Stockholm", "Sweden", "SE", "111 20"),
    ("Madrid", "Madrid", "Spain", "ES", "28013"),
]
STREETS = ["Main Street", "Oak Avenue", "High Street", "Market Road", "Harbour Lane", "Pine Way", "Elm Court"]
# (status_id, weight)
ORDER_STATUSES = [(10, 40), (2, 20), (11, 15), (9, 5), (1, 5), (7, 4), (5, 4), (4, 3), (14, 2), (0, 2)]

KNOWN_STORES = {
    # The demo store sells to businesses too: 20% of its customers name one of customers/20 companies.
    "demo1234": {"name": "Acme Outdoor Co.", "b2b_share": 0.2,
                 "users": [(1001, "owner@acme.example", True), (1002, "staff@acme.example", False)]},
    "north567": {"name": "Northwind Bikes",
                 "users": [(2001, "owner@northwind.example", True), (2002, "staff@northwind.example", False)]},
}


# Business buyers' companies. Spellings vary as they do in real stores (case, spaces, a suffix), some
# customers leave the company field empty and give it only on their address, and a few write "n/a".
COMPANY_WORDS = [
    "Summit", "Granite", "Riverside", "Northwind", "Bluebird", "Cedar", "Harbor", "Ironwood", "Lakeside",
    "Maple", "Orchard", "Pinecrest", "Redwood", "Silverline", "Timber", "Westfield", "Alpine", "Coastal",
]
COMPANY_KINDS = ["Outfitters", "Supply Co.", "Ltd", "Trading", "Adventures", "Gear GmbH", "Sports Pty Ltd"]


def company_names(count: int) -> list[str]:
    """`count` distinct company names, the same for the same count."""
    names = []
    for index in range(count):
        word = COMPANY_WORDS[index % len(COMPANY_WORDS)]
        kind = COMPANY_KINDS[(index // len(COMPANY_WORDS)) % len(COMPANY_KINDS)]
        round_ = index // (len(COMPANY_WORDS) * len(COMPANY_KINDS))
        names.append(f"{word} {kind}" + (f" {round_ + 1}" if round_ else ""))
    return names


def _spelling(name: str, variant: int) -> str:
    return [name, name.upper(), f"  {name.lower()} ", name.replace(" ", "  ")][variant % 4]


def _assign_companies(rng, customer_rows: list[dict], order_rows: list[dict], share: float) -> None:
    """Give `share` of the customers one of len(customers)/20 companies (and as many guest orders a
    billing company), with a separate RNG so the rest of the seed stays as it was."""
    if share <= 0 or not customer_rows:
        return
    names = company_names(max(1, len(customer_rows) // 20))
    for customer in customer_rows:
        if rng.random() >= share:
            continue
        name = _spelling(rng.choice(names), rng.randrange(4))
        if customer["addresses"] and rng.random() < 0.3:
            customer["addresses"][0]["company"] = name  # only on the address: the fallback
        else:
            customer["company"] = name
    for order in order_rows:
        if order["customer_id"] == 0 and rng.random() < share:
            order["billing_address"]["company"] = _spelling(rng.choice(names), rng.randrange(4))
        elif order["customer_id"] == 0 and rng.random() < 0.02:
            order["billing_address"]["company"] = "n/a"


def _ascii(text: str) -> str:
    text = re.sub(r"<[^>]+>", "", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "", text.lower()) or "x"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _ascii_words(text)).strip("-")


def _ascii_words(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def seed_store(*, store_hash: str, name: str | None = None, currency_code: str = "USD") -> SandboxStore:
    """Create or rename a sandbox store (keeps everything it holds)."""
    name = name or KNOWN_STORES.get(store_hash, {}).get("name") or f"Store {store_hash}"
    numeric_id = 1000000 + int(hashlib.sha1(store_hash.encode()).hexdigest()[:6], 16) % 9000000
    store, _ = SandboxStore.objects.update_or_create(
        store_hash=store_hash,
        defaults={"name": name, "domain": f"{_slug(name)}.mybigcommerce.com", "numeric_id": numeric_id,
                  "currency_code": currency_code},
    )
    return store


def seed_users(*, store_hash: str, users: list[tuple[int, str, bool]] | None = None) -> list[SandboxUser]:
    """Set a store's control-panel users: (bc id, email, is_owner). Defaults per known demo store."""
    store = SandboxStore.objects.filter(store_hash=store_hash).first() or seed_store(store_hash=store_hash)
    users = users or KNOWN_STORES.get(store_hash, {}).get("users") or [
        (2001, f"owner@{store_hash}.example", True), (2002, f"staff@{store_hash}.example", False)
    ]
    with transaction.atomic():
        store.users.exclude(bc_id__in=[u[0] for u in users]).delete()
        return [
            SandboxUser.objects.update_or_create(
                store=store, bc_id=bc_id, defaults={"email": email, "is_owner": is_owner}
            )[0]
            for bc_id, email, is_owner in users
        ]


class _Clock:
    """Hands out distinct timestamps (whole seconds) inside [start, end]."""

    def __init__(self, end: datetime):
        self.end = end
        self.taken: set[datetime] = set()

    def distinct(self, moment: datetime) -> datetime:
        moment = min(moment.replace(microsecond=0), self.end)
        while moment in self.taken:
            moment -= timedelta(seconds=1)
        self.taken.add(moment)
        return moment


def seed_bigcommerce(*, store_hash: str, name: str, customers: int = 2000, orders: int = 5000, seed: int = 1,
                     now: datetime | None = None, b2b_share: float | None = None) -> SandboxStore:
    """Replace the store's customers, subscribers and orders with deterministic demo data.
    b2b_share: the part of customers (and guest orders) with a company; known demo stores set their own."""
    rng = random.Random(seed)
    now = (now or timezone.now()).replace(microsecond=0)
    year_start = now - timedelta(days=365)
    span = (now - year_start).total_seconds()
    store = seed_store(store_hash=store_hash, name=name)

    customer_rows, customer_clock, modified_clock = [], _Clock(now), _Clock(now)
    address_id = 0
    for index in range(customers):
        bc_id = index + 1
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if index % 397 == 5:
            last = "O'Brien"
        if index % 503 == 7:
            first = "<b>Zoë</b>"
        city, state, country, iso2, postal = rng.choice(PLACES)
        created = customer_clock.distinct(year_start + timedelta(seconds=span * index / max(customers, 1)))
        modified = modified_clock.distinct(
            created + timedelta(seconds=rng.randint(0, int(min(60 * 86400, (now - created).total_seconds()))))
        )
        addresses = []
        for _ in range(rng.choices([0, 1, 2], weights=[10, 80, 10])[0]):
            address_id += 1
            addresses.append({
                "id": address_id, "first_name": first, "last_name": last, "company": "",
                "address1": f"{rng.randint(1, 999)} {rng.choice(STREETS)}", "address2": "", "city": city,
                "state_or_province": state, "postal_code": postal, "country": country, "country_code": iso2,
                "phone": f"+1 555 {rng.randint(1000000, 9999999)}", "address_type": "residential",
            })
        customer_rows.append(dict(
            bc_id=bc_id, email=f"{_ascii(first)}.{_ascii(last)}.{bc_id}@example.com",
            first_name=first, last_name=last, phone=addresses[0]["phone"] if addresses else "",
            registration_ip_address=f"203.0.113.{bc_id % 250 + 1}", customer_group_id=0,
            accepts_product_review_abandoned_cart_emails=rng.random() < 0.5, addresses=addresses,
            date_created=created, date_modified=modified, company="", notes="",
        ))

    order_rows, order_clock, order_modified_clock = [], _Clock(now), _Clock(now)
    orders_by_customer: dict[int, list[dict]] = {}
    guest_number = 0
    statuses, weights = zip(*ORDER_STATUSES)
    for index in range(orders):
        created = order_clock.distinct(year_start + timedelta(seconds=span * (index + 0.5) / max(orders, 1)))
        # Only customers who existed by then can order; customers are created in id order over the year.
        existing = max(1, int(customers * (created - year_start).total_seconds() / span)) if customers else 0
        customer = customer_rows[rng.randrange(existing)] if existing and rng.random() >= 0.25 else None
        if customer is not None:
            address = customer["addresses"][0] if customer["addresses"] else {}
            first, last, email = customer["first_name"], customer["last_name"], customer["email"]
            city, state = address.get("city", "Austin"), address.get("state_or_province", "Texas")
            country, iso2 = address.get("country", "United States"), address.get("country_code", "US")
            postal = address.get("postal_code", "78701")
        else:
            guest_number += 1
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{_ascii(first)}.{_ascii(last)}.guest{guest_number}@example.net"
            city, state, country, iso2, postal = rng.choice(PLACES)
        rng.randint(1500, 40000)  # unused; drawn so that the draws after it, and the seeded data, stay as they are
        order = dict(
            bc_id=index + 1, customer_id=customer["bc_id"] if customer else 0,
            status_id=rng.choices(statuses, weights=weights)[0],
            is_email_opt_in=customer is None and rng.random() < 0.3,
            billing_address={
                "first_name": first, "last_name": last, "company": "",
                "street_1": f"{rng.randint(1, 999)} {rng.choice(STREETS)}", "street_2": "", "city": city,
                "state": state, "zip": postal, "country": country, "country_iso2": iso2, "phone": "",
                "email": email,
            },
            currency_code=store.currency_code,
            items_total=rng.randint(1, 6), payment_method=rng.choice(["Credit Card", "PayPal", "Cash"]),
            ip_address=f"198.51.100.{index % 250 + 1}", date_created=created,
            date_modified=order_modified_clock.distinct(
                created + timedelta(seconds=rng.randint(0, int(min(30 * 86400, (now - created).total_seconds()))))
            ),
        )
        # The order's one line (serializers.order_lines) is a catalog product at its listed price.
        subtotal = CATALOG[order["bc_id"] % len(CATALOG)]["price"] * order["items_total"]
        tax = order_tax(subtotal)
        order.update(subtotal_ex_tax=subtotal, total_tax=tax, total_inc_tax=subtotal + tax)
        order_rows.append(order)
        if customer is not None:
            orders_by_customer.setdefault(customer["bc_id"], []).append(order)

    if b2b_share is None:
        b2b_share = KNOWN_STORES.get(store_hash, {}).get("b2b_share", 0.0)
    _assign_companies(random.Random(f"companies-{seed}"), customer_rows, order_rows, b2b_share)
    subscriber_rows = _subscribers(rng, store, customer_rows, order_rows, orders_by_customer, now, year_start, span)

    with transaction.atomic():
        WebhookDelivery.objects.filter(store=store).delete()
        Customer.objects.filter(store=store).delete()
        Subscriber.objects.filter(store=store).delete()
        Order.objects.filter(store=store).delete()
        for model, rows in ((Customer, customer_rows), (Order, order_rows), (Subscriber, subscriber_rows)):
            _bulk_insert(model, store, rows)
    return store


def _bulk_insert(model, store: SandboxStore, rows: list[dict]) -> None:
    """bulk_create's job at executemany speed, from plain dicts: on SQLite Django caps a batch at
    999 parameters (about 50 customers per INSERT), which makes 200,000 customers take minutes."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    connection = connections[router.db_for_write(model)]
    # Only dates, JSON and decimals need the backend's adaptation; the rest goes in as is.
    needs_prep = (models.DateTimeField, models.JSONField, models.DecimalField)
    columns = [
        (f.attname, (lambda value, f=f: f.get_db_prep_save(value, connection)) if isinstance(f, needs_prep) else None)
        for f in fields
    ]
    for row in rows:
        row["store_id"] = store.pk
        for f in fields:  # columns the seed leaves to the model's default (e.g. an order's line items)
            if f.attname not in row:
                row[f.attname] = f.get_default()
    sql = "INSERT INTO {} ({}) VALUES ({})".format(
        connection.ops.quote_name(model._meta.db_table),
        ", ".join(connection.ops.quote_name(f.column) for f in fields),
        ", ".join(["%s"] * len(fields)),
    )
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH_SIZE):
            batch = rows[start:start + BATCH_SIZE]
            cursor.executemany(sql, [
                [prep(row[name]) if prep else row[name] for name, prep in columns] for row in batch
            ])


def _subscribers(rng, store, customer_rows, order_rows, orders_by_customer, now, year_start, span) -> list:
    """~35% of customers opted in (at checkout or in the footer), a few unsubscribed, guests who ticked
    the checkout box, and footer sign-ups without an account (some since unsubscribed)."""
    clock = _Clock(now)
    pending = []  # (date_created, fields)

    def later(moment: datetime, days: int) -> datetime:
        return moment + timedelta(seconds=rng.randint(0, int(min(days * 86400, (now - moment).total_seconds()))))

    for customer in customer_rows:
        roll = rng.random()
        if roll >= 0.40:
            continue
        customer_orders = orders_by_customer.get(customer["bc_id"], [])
        from_order = customer_orders and rng.random() < 0.6
        if from_order:
            order = customer_orders[0]
            order["is_email_opt_in"] = True
            created, source, order_id = order["date_created"], Subscriber.Source.ORDER, order["bc_id"]
        else:
            created, source, order_id = later(customer["date_created"], 20), Subscriber.Source.STOREFRONT, None
        consents = [NEWSLETTER] if roll < 0.35 else []  # the other 5% subscribed once and opted out
        pending.append((created, dict(email=customer["email"], first_name=customer["first_name"],
                                      last_name=customer["last_name"], source=source, order_id=order_id,
                                      consents=consents)))
    seen = {fields["email"] for _, fields in pending}
    for order in order_rows:
        email = order["billing_address"]["email"]
        if order["customer_id"] == 0 and order["is_email_opt_in"] and email not in seen:
            seen.add(email)
            pending.append((order["date_created"], dict(
                email=email, first_name=order["billing_address"]["first_name"],
                last_name=order["billing_address"]["last_name"], source=Subscriber.Source.ORDER,
                order_id=order["bc_id"], consents=[NEWSLETTER],
            )))
    for number in range(1, max(len(customer_rows) // 10, 1) + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = year_start + timedelta(seconds=rng.randint(0, int(span)))
        pending.append((created, dict(
            email=f"{_ascii(first)}.{number}@newsletter.example", first_name=first, last_name=last,
            source=Subscriber.Source.STOREFRONT, order_id=None,
            consents=[NEWSLETTER] if rng.random() < 0.8 else [],
        )))
    pending.sort(key=lambda item: item[0])
    rows = []
    for bc_id, (created, fields) in enumerate(pending, start=1):
        created = clock.distinct(created)
        rows.append(dict(bc_id=bc_id, channel_id=1, date_created=created,
                               date_modified=clock.distinct(later(created, 30)), **fields))
    return rows
