from django.db import models
from django.db.models.functions import Lower

from .fields import EncryptedTextField


class Store(models.Model):
    """A BigCommerce store that installed the app. Keyed on its store hash, never on a person."""

    store_hash = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255, blank=True)
    domain = models.CharField(max_length=255, blank=True)
    access_token = EncryptedTextField(blank=True)
    scopes = models.TextField(blank=True, help_text="Granted OAuth scopes, space-separated.")
    account_uuid = models.CharField(max_length=64, blank=True)
    owner_bc_id = models.BigIntegerField(null=True, blank=True)
    owner_email = models.EmailField(blank=True)
    is_installed = models.BooleanField(default=True)
    installed_at = models.DateTimeField(null=True, blank=True)
    uninstalled_at = models.DateTimeField(null=True, blank=True)
    # Per-store secret sent by BigCommerce in a header on every webhook delivery (see webhooks intake).
    webhook_secret = EncryptedTextField(blank=True)
    # An uninstall callback that BigCommerce has not confirmed yet (its token still worked): when the next
    # check is due (None: no check pending), and how many checks this callback has had.
    uninstall_check_at = models.DateTimeField(null=True, blank=True)
    uninstall_checks = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["store_hash"]
        indexes = [models.Index(Lower("owner_email"), name="store_owner_email_ci")]

    def __str__(self):
        return self.name or self.domain or self.store_hash

    @property
    def scope_set(self) -> set[str]:
        return set(self.scopes.split())

    @property
    def can_write_customers(self) -> bool:
        """Granted customers *modify* (store_v2_customers): Ortto's unsubscribes can be written back."""
        return "store_v2_customers" in self.scope_set


class StoreUser(models.Model):
    """A BigCommerce control-panel user of a store (the owner or an invited user)."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="users")
    bc_user_id = models.BigIntegerField()
    email = models.EmailField(blank=True)
    is_owner = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # When BigCommerce's remove-user callback arrived (this server's clock): app-context tokens the bridge
    # issued before it stay dead, even after the user is added back.
    removed_at = models.DateTimeField(null=True, blank=True)
    # The removal's own `iat` (BigCommerce's clock, UNIX seconds): a load is let in again only with a load
    # token BigCommerce issued after it, i.e. after the owner added the user back.
    removal_issued_at = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "bc_user_id"], name="storeuser_unique_per_store")]
        ordering = ["store", "-is_owner", "email"]

    def __str__(self):
        return f"{self.email or self.bc_user_id} @ {self.store.store_hash}"


class WebhookEvent(models.Model):
    """One BigCommerce webhook delivery, stored before it is acknowledged so that nothing is lost."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="webhook_events")
    # sha256 of (scope, BigCommerce's payload hash, created_at): a redelivery repeats all three.
    dedup_key = models.CharField(max_length=64)
    scope = models.CharField(max_length=100)
    resource = models.CharField(max_length=20, help_text="customers, subscribers or orders")
    resource_id = models.BigIntegerField()
    payload = models.JSONField()
    bc_created_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    processed_at = models.DateTimeField(null=True, blank=True)
    duplicates = models.PositiveIntegerField(default=0, help_text="Redeliveries received after the first.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "dedup_key"], name="webhook_event_dedup")]
        indexes = [
            models.Index(fields=["store", "status", "id"], name="webhook_pending_idx"),
            models.Index(fields=["-received_at"], name="webhook_received_idx"),
        ]
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.scope} #{self.resource_id} ({self.store.store_hash})"


class SpentSignedPayload(models.Model):
    """A load token (`signed_payload_jwt`) that opened the app page once: BigCommerce signs a new one at
    every launch, so the same token again is a replay (a copied URL, a browser history entry). Kept until the
    token expires; the unique key makes two simultaneous uses of one token one success and one refusal."""

    token_id = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return self.token_id

