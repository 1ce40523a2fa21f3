"""The emulated BigCommerce's data: stores, their control-panel users, the app install and the
store's customers, subscribers, orders, scripts and hooks.

Records carry BigCommerce's own per-store ids in `bc_id` (what the API shows); the primary key is only
the sandbox's row id. List endpoints page on (date_modified, bc_id) or bc_id, hence the indexes.
"""

import uuid

from django.db import models


def uuid_str() -> str:
    return str(uuid.uuid4())


class SandboxStore(models.Model):
    store_hash = models.CharField(max_length=32, unique=True)
    numeric_id = models.BigIntegerField(help_text="BigCommerce's numeric store_id (webhook payloads).")
    name = models.CharField(max_length=255)
    domain = models.CharField(max_length=255)
    currency_code = models.CharField(max_length=3, default="USD")
    # Plan quota, shared by every app on the store (BigCommerce: 150 or 450 requests per 30 s).
    quota_requests = models.PositiveIntegerField(default=150)
    quota_window_ms = models.PositiveIntegerField(default=30000)
    window_started_ms = models.BigIntegerField(default=0)
    window_used = models.PositiveIntegerField(default=0)
    # Injected faults: probabilities per request, plus a counter for deterministic tests.
    fault_429_probability = models.FloatField(default=0.0)
    fault_500_probability = models.FloatField(default=0.0)
    fault_slow_probability = models.FloatField(default=0.0)
    fault_slow_seconds = models.FloatField(default=2.0)
    fail_next_count = models.PositiveIntegerField(default=0)
    fail_next_status = models.PositiveSmallIntegerField(default=500)
    # Off: customers pages answer with `meta.pagination` only, no `meta.cursor_pagination` (a store or an API
    # version that does not send it), so a client must page by number.
    customers_cursor_meta = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["store_hash"]

    def __str__(self):
        return f"{self.name} ({self.store_hash})"


class SandboxUser(models.Model):
    store = models.ForeignKey(SandboxStore, on_delete=models.CASCADE, related_name="users")
    bc_id = models.BigIntegerField()
    email = models.EmailField()
    is_owner = models.BooleanField(default=False)

    class Meta:
        ordering = ["-is_owner", "bc_id"]
        constraints = [models.UniqueConstraint(fields=["store", "bc_id"], name="sbx_bc_user_unique")]

    def __str__(self):
        return self.email


class AppInstall(models.Model):
    """One app (client id) on one store: the pending grant code and, once exchanged, the token."""

    store = models.ForeignKey(SandboxStore, on_delete=models.CASCADE, related_name="installs")
    client_id = models.CharField(max_length=100)
    installed = models.BooleanField(default=False)
    access_token = models.CharField(max_length=100, blank=True, db_index=True)
    scopes = models.TextField(blank=True)
    granted_code = models.CharField(max_length=100, blank=True, db_index=True)
    code_expires_at = models.DateTimeField(null=True, blank=True)
    code_used = models.BooleanField(default=False)
    installed_by = models.ForeignKey(SandboxUser, null=True, blank=True, on_delete=models.SET_NULL)
    installed_at = models.DateTimeField(null=True, blank=True)
    uninstalled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "client_id"], name="sbx_bc_install_unique")]


class Customer(models.Model):
    store = models.ForeignKey(SandboxStore, on_delete=models.CASCADE, related_name="customers")
    bc_id = models.PositiveIntegerField()
    email = models.CharField(max_length=255)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    # BigCommerce's customers spec states no maximum length for company: hold whatever a store may send.
    company = models.TextField(blank=True)
    phone = models.CharField(max_length=50, blank=True)
    notes = models.TextField(blank=True)
    registration_ip_address = models.CharField(max_length=30, blank=True)
    customer_group_id = models.PositiveIntegerField(default=0)
    accepts_product_review_abandoned_cart_emails = models.BooleanField(default=False)
    addresses = models.JSONField(default=list, blank=True)
    date_created = models.DateTimeField()
    date_modified = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "bc_id"], name="sbx_bc_customer_unique")]
        indexes = [
            models.Index(fields=["store", "date_modified", "bc_id"], name="sbx_bc_cust_modified"),
            models.Index(fields=["store", "date_created", "bc_id"], name="sbx_bc_cust_created"),
            models.Index(fields=["store", "email"], name="sbx_bc_cust_email"),
        ]

    def __str__(self):
        return self.email


class Subscriber(models.Model):
    class Source(models.TextChoices):
        STOREFRONT = "storefront"
        ORDER = "order"
        CUSTOM = "custom"

    store = models.ForeignKey(SandboxStore, on_delete=models.CASCADE, related_name="subscribers")
    bc_id = models.PositiveIntegerField()
    email = models.CharField(max_length=255)
    first_name = models.CharField(max_length=255, blank=True)
    last_name = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.STOREFRONT)
    order_id = models.PositiveIntegerField(null=True, blank=True)
    channel_id = models.PositiveIntegerField(default=1)
    consents = models.JSONField(default=list, blank=True)
    date_created = models.DateTimeField()
    date_modified = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "bc_id"], name="sbx_bc_subscriber_unique")]
        indexes = [
            models.Index(fields=["store", "date_modified", "bc_id"], name="sbx_bc_sub_modified"),
            models.Index(fields=["store", "email"], name="sbx_bc_sub_email"),
        ]

    def __str__(self):
        return self.email


class Order(models.Model):
    STATUSES = {
        0: "Incomplete",
        1: "Pending",
        2: "Shipped",
        3: "Partially Shipped",
        4: "Refunded",
        5: "Cancelled",
        6: "Declined",
        7: "Awaiting Payment",
        8: "Awaiting Pickup",
        9: "Awaiting Shipment",
        10: "Completed",
        11: "Awaiting Fulfillment",
        12: "Manual Verification Required",
        13: "Disputed",
        14: "Partially Refunded",
    }

    store = models.ForeignKey(SandboxStore, on_delete=models.CASCADE, related_name="orders")
    bc_id = models.PositiveIntegerField()
    customer_id = models.PositiveIntegerField(default=0, help_text="0 for guest orders")
    status_id = models.PositiveSmallIntegerField(default=11)
    is_email_opt_in = models.BooleanField(default=False)
    billing_address = models.JSONField(default=dict)
    subtotal_ex_tax = models.DecimalField(max_digits=12, decimal_places=4)
    total_tax = models.DecimalField(max_digits=12, decimal_places=4)
    total_inc_tax = models.DecimalField(max_digits=12, decimal_places=4)
    currency_code = models.CharField(max_length=3, default="USD")
    items_total = models.PositiveIntegerField(default=1)
    payment_method = models.CharField(max_length=50, default="Credit Card")
    ip_address = models.CharField(max_length=30, blank=True)
    # [{"product_id", "variant_id", "sku", "name", "options": [[name, value]], "quantity", "price"}]; empty:
    # the emulator derives one line from the order (seeded orders), see serializers.order_products.
    line_items = models.JSONField(default=list, blank=True)
    refunded_amount = models.DecimalField(max_digits=12, decimal_places=4, default=0)
    date_shipped = models.DateTimeField(null=True, blank=True)
    cart_id = models.CharField(max_length=64, blank=True)
    date_created = models.DateTimeField()
    date_modified = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "bc_id"], name="sbx_bc_order_unique")]
        indexes = [
            models.Index(fields=["store", "date_modified", "bc_id"], name="sbx_bc_order_modified"),
            models.Index(fields=["store", "customer_id"], name="sbx_bc_order_customer"),
        ]

    @property
    def status(self) -> str:
        return self.STATUSES.get(self.status_id, "Pending")

    @property
    def email(self) -> str:
        return self.billing_address.get("email", "")


class Cart(models.Model):
    """A storefront cart (carts.v3.yml, Cart_Full). Abandoned: it has an abandoned-cart token, the one the
    store/cart/abandoned webhook carries and the recovery link holds. Converted or deleted carts are gone
    from the API (404), as BigCommerce deletes a cart once it becomes an order."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        ABANDONED = "abandoned"
        CONVERTED = "converted"
        DELETED = "deleted"

    store = models.ForeignKey(SandboxStore, on_delete=models.CASCADE, related_name="carts")
    cart_id = models.CharField(max_length=36, unique=True, default=uuid_str)
    customer_id = models.PositiveIntegerField(default=0)
    email = models.CharField(max_length=255, blank=True)
    currency_code = models.CharField(max_length=3, default="USD")
    # [{"id", "product_id", "variant_id", "sku", "name", "quantity", "price"}]
    items = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    abandoned_token = models.CharField(max_length=64, blank=True, db_index=True)
    order_id = models.PositiveIntegerField(null=True, blank=True)
    created_time = models.DateTimeField(auto_now_add=True)
    updated_time = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]


class Script(models.Model):
    store = models.ForeignKey(SandboxStore, on_delete=models.CASCADE, related_name="scripts")
    api_client_id = models.CharField(max_length=100)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True)
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    html = models.TextField(blank=True)
    src = models.TextField(blank=True)
    auto_uninstall = models.BooleanField(default=False)
    load_method = models.CharField(max_length=10, default="default")
    location = models.CharField(max_length=10, default="head")
    visibility = models.CharField(max_length=20, default="storefront")
    kind = models.CharField(max_length=12, default="src")
    # BigCommerce files a script sent without a category under "unknown" (hidden behind consent banners).
    consent_category = models.CharField(max_length=12, default="unknown")
    enabled = models.BooleanField(default=True)
    channel_id = models.PositiveIntegerField(default=1)
    integrity_hashes = models.JSONField(default=list, blank=True)
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["date_created", "id"]


class Hook(models.Model):
    store = models.ForeignKey(SandboxStore, on_delete=models.CASCADE, related_name="hooks")
    client_id = models.CharField(max_length=100)
    bc_id = models.PositiveIntegerField(unique=True)
    scope = models.CharField(max_length=100)
    destination = models.URLField(max_length=500)
    is_active = models.BooleanField(default=True)
    headers = models.JSONField(default=dict, blank=True, null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["bc_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["store", "client_id", "scope", "destination"], name="sbx_bc_hook_unique"
            )
        ]


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    hook = models.ForeignKey(Hook, null=True, on_delete=models.SET_NULL, related_name="deliveries")
    store = models.ForeignKey(SandboxStore, on_delete=models.CASCADE, related_name="webhook_deliveries")
    scope = models.CharField(max_length=100)
    destination = models.URLField(max_length=500)
    headers = models.JSONField(default=dict, blank=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "id"], name="sbx_bc_delivery_status")]


class Product(models.Model):
    """A catalog product with its one variant (products_catalog.v3.yml, product_Full with `variants`): what
    GET /v3/catalog/products lists and the storefront's product pages show. Seeded from serializers.CATALOG
    the first time a store's catalog is read (services.catalog_ensure); some products start out of stock."""

    store = models.ForeignKey(SandboxStore, on_delete=models.CASCADE, related_name="products")
    bc_id = models.PositiveIntegerField()
    variant_id = models.PositiveIntegerField()
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    slug = models.SlugField(max_length=255)
    option_name = models.CharField(max_length=64, blank=True)
    option_value = models.CharField(max_length=64, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    sale_price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    inventory_level = models.IntegerField(default=0)
    availability = models.CharField(max_length=10, default="available")
    date_created = models.DateTimeField(auto_now_add=True)
    date_modified = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["bc_id"]
        constraints = [models.UniqueConstraint(fields=["store", "bc_id"], name="sbx_product_unique")]

    def __str__(self):
        return f"{self.name} ({self.sku})"
