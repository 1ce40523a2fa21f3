from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import BooleanField, Case, Q, Value, When
from django.utils import timezone

from stores.fields import EncryptedTextField
from stores.models import Store


class MergeStrategy(models.IntegerChoices):
    """Ortto's `merge_strategy`, with the words the Merge page uses for each."""

    APPEND_ONLY = 1, "Import and merge new records only"
    OVERWRITE = 2, "Import and overwrite any records that exist"
    IGNORE = 3, "Import new records only"


class OrttoAccount(models.Model):
    """An Ortto account ("instance") and the private API key of its Custom API data source."""

    class Region(models.TextChoices):
        DEFAULT = "default", "Default (US and rest of world)"
        AU = "au", "Australia"
        EU = "eu", "Europe"

    name = models.CharField(max_length=100, help_text="Ortto's instance name, e.g. acme-au.")
    business_name = models.CharField(max_length=255)
    region = models.CharField(max_length=10, choices=Region.choices, default=Region.DEFAULT)
    api_key = EncryptedTextField()
    tracking_key = models.CharField(max_length=255, blank=True)
    account_url = models.URLField(blank=True, help_text="Opens the account in Ortto.")
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="ortto_accounts", blank=True)
    # The attribute ids Ortto answered when the bridge created the journey's activity definitions here
    # ({spec key: {attribute name: field id}}): Ortto cannot list definitions, and a create that meets an
    # existing one answers no ids, so this is the only record once the connection that created them is gone.
    activity_attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["business_name"]

    def __str__(self):
        return self.business_name


class Connection(models.Model):
    """A store connected to an Ortto account. Earlier connections are kept as history."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        # Ortto answered 403 (expired or suspended account, plan limit): syncs wait and resume by
        # themselves once Ortto accepts again (the scheduled sweep probes it). Not the key's fault.
        PAUSED = "paused", "Paused by Ortto"
        NEEDS_RECONNECT = "needs_reconnect", "Needs reconnect"
        DISCONNECTED = "disconnected", "Disconnected"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="connections")
    account = models.ForeignKey(OrttoAccount, on_delete=models.PROTECT, related_name="connections")
    merge_strategy = models.PositiveSmallIntegerField(
        choices=MergeStrategy.choices, default=MergeStrategy.APPEND_ONLY
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.ACTIVE)
    state_reason = models.CharField(max_length=255, blank=True)
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    connected_by_bc_user_id = models.BigIntegerField(null=True, blank=True)
    connected_at = models.DateTimeField()
    disconnected_at = models.DateTimeField(null=True, blank=True)
    # Ortto-side definitions the bridge created for this account (field ids, activity id).
    schema_ready = models.BooleanField(default=False)
    tracking_enabled = models.BooleanField(default=False)
    tracking_script_uuid = models.CharField(max_length=64, blank=True)
    tracking_changed_at = models.DateTimeField(null=True, blank=True)
    tracking_changed_by = models.CharField(max_length=255, blank=True)
    webhook_ids = models.JSONField(default=list, blank=True)
    # The sweep's look at the store's hooks (sync/intake/hooks.py webhooks_check): when it last looked, and when
    # it last found hooks deactivated or missing and how many it put back.
    webhooks_checked_at = models.DateTimeField(null=True, blank=True)
    webhooks_healed_at = models.DateTimeField(null=True, blank=True)
    webhooks_healed = models.PositiveSmallIntegerField(default=0)
    # {"fields": {"customer_id": "int:cm:bigcommerce-customer-id", ...}, "activity_id": "act:cm:placed-order"}
    ortto_schema = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            # One live connection per store; disconnected rows are history.
            models.UniqueConstraint(
                fields=["store"], condition=~Q(state="disconnected"), name="one_live_connection_per_store"
            )
        ]
        indexes = [models.Index(fields=["state"], name="connection_state_idx")]
        ordering = ["-connected_at"]

    def __str__(self):
        return f"{self.store} → {self.account}"


def _stalled(now=None) -> Q:
    """An active run that no worker has reported on for SYNC_STALL_SECONDS: its heartbeat is older (a
    worker died, or an interrupted run is waiting for its retry), or it never had one and was queued
    that long ago (its task was lost). The maintenance tick resumes these; a worker may take them over."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.SYNC_STALL_SECONDS)
    return Q(status__in=SyncRun.ACTIVE_STATUSES) & (
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    )


class SyncRunQuerySet(models.QuerySet):
    def stalled(self, now=None):
        return self.filter(_stalled(now))

    def claimable(self, now=None):
        """Runs a worker may claim: queued ones, and stalled ones (a stall takeover)."""
        return self.filter(Q(status=SyncRun.Status.QUEUED) | _stalled(now))

    def with_stalled(self, now=None):
        """Annotates `is_stalled`, for lists that flag stalled runs."""
        return self.annotate(
            is_stalled=Case(When(_stalled(now), then=Value(True)), default=Value(False), output_field=BooleanField())
        )


class SyncRun(models.Model):
    """One pass of the sync engine for a store: its progress, counters and outcome."""

    class Kind(models.TextChoices):
        INITIAL = "initial", "Initial import"
        INCREMENTAL = "incremental", "Incremental"
        WEBHOOK = "webhook", "Webhook"
        MANUAL = "manual", "Manual"
        FULL = "full", "Full resync"
        RETRY_FAILED = "retry_failed", "Resync failed records"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with errors"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="sync_runs")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # {"customers": {"fetched": 0, "created": 0, "updated": 0, "unchanged": 0, "failed": 0}, ...}
    counters = models.JSONField(default=dict, blank=True)
    # {"customers": 2000, "subscribers": 800, "orders": 5000}: what the progress bar counts towards.
    totals = models.JSONField(default=dict, blank=True)
    # Where to resume: per resource, the last committed page's position.
    checkpoint = models.JSONField(default=dict, blank=True)
    processed = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    people_synced = models.PositiveIntegerField(default=0)
    # Changes this sweep read that no webhook had announced (sync/intake/hooks.py deliveries_missed_count).
    missed_deliveries = models.PositiveIntegerField(default=0)
    error_summary = models.TextField(blank=True)
    # Who holds the run right now: set when a worker claims it; every page commit checks it, so a
    # worker that lost the run to a stall takeover can never commit over the new owner.
    lease = models.CharField(max_length=32, blank=True)

    objects = SyncRunQuerySet.as_manager()

    class Meta:
        permissions = [("run_sync", "Can run syncs")]
        constraints = [
            # At most one active run per store, whatever the number of workers or hosts.
            models.UniqueConstraint(
                fields=["store"], condition=Q(status__in=["queued", "running"]), name="one_active_run_per_store"
            )
        ]
        indexes = [
            models.Index(fields=["store", "-created_at"], name="syncrun_store_recent_idx"),
            models.Index(fields=["status", "-created_at"], name="syncrun_status_idx"),
            models.Index(fields=["kind", "-created_at"], name="syncrun_kind_idx"),
            models.Index(fields=["-created_at"], name="syncrun_created_idx"),
        ]
        ordering = ["-created_at"]

    def __str__(self):
        # Support staff read runs by store: "Acme Outdoor Co. · initial import run #12".
        return f"{self.store} · {self.get_kind_display().lower()} run #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    RESOURCE_ORDER = ("subscribers", "customers", "orders", "organizations")
    COUNTER_ORDER = ("fetched", "created", "updated", "unchanged", "failed", "summarized", "skipped", "incomplete",
                     "not_linked")

    @property
    def counter_rows(self) -> list[tuple[str, dict]]:
        """Counters in a stable order (JSON columns do not keep key order on PostgreSQL)."""
        counters = self.counters or {}
        resources = [r for r in self.RESOURCE_ORDER if r in counters] + sorted(set(counters) - set(self.RESOURCE_ORDER))
        return [(r, {k: counters[r].get(k, 0) for k in self.COUNTER_ORDER}) for r in resources]

    @property
    def progress_percent(self) -> int:
        if self.status in (self.Status.SUCCEEDED, self.Status.PARTIAL):
            return 100
        if not self.total:
            return 0
        return min(99, int(100 * self.processed / self.total))


class SyncEvent(models.Model):
    """A record-level problem or notable change during a run, for support staff."""

    class Level(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        ERROR = "error", "Error"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)
    level = models.CharField(max_length=10, choices=Level.choices, default=Level.ERROR)
    resource = models.CharField(max_length=20)
    bc_id = models.BigIntegerField(null=True, blank=True)
    email = models.CharField(max_length=255, blank=True)
    message = models.TextField()
    resolved = models.BooleanField(default=False, help_text="Re-sent successfully by a later run.")

    class Meta:
        indexes = [
            models.Index(fields=["run", "level"], name="syncevent_run_level_idx"),
            models.Index(fields=["email"], name="syncevent_email_idx"),
            models.Index(fields=["-created_at"], name="syncevent_created_idx"),
            # A record's later events, for the failed records list's one row per record.
            models.Index(fields=["bc_id", "resource"], name="syncevent_record_idx"),
            # The failing records: a commit resolves them by resource + id (sync/health/failures.py).
            models.Index(fields=["resource", "bc_id"], condition=Q(level="error", resolved=False),
                         name="syncevent_failing_idx"),
        ]
        ordering = ["-created_at"]

    # What one record of each resource is called ("Customer 3", not "customers 3").
    RECORD_NOUNS = {"customers": "Customer", "subscribers": "Subscriber", "orders": "Order", "carts": "Cart",
                    "organizations": "Organization"}

    def __str__(self):
        noun = self.RECORD_NOUNS.get(self.resource, self.resource.capitalize())
        if self.bc_id is not None:
            noun += f" #{self.bc_id}" + (f" ({self.email})" if self.email else "")
        elif self.email:
            noun += f" {self.email}"
        return f"{noun}: {self.message[:60]}"


class SyncCursor(models.Model):
    """How far incremental syncs have read a store's resource: the date_modified they re-read from."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="cursors")
    resource = models.CharField(max_length=20)
    modified_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "resource"], name="cursor_unique")]

    def __str__(self):
        return f"{self.store_id}/{self.resource} ≥ {self.modified_since}"


class PersonLedger(models.Model):
    """What the bridge last sent to an Ortto account for one person (email), and why.

    It is the memory behind rules R1–R4: the last explicit newsletter choice seen in the store and
    when it was made, and a fingerprint of the fields so unchanged people are skipped.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="people")
    email = models.CharField(max_length=255)
    ortto_person_id = models.CharField(max_length=64, blank=True)
    bc_customer_id = models.BigIntegerField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    # Per source record ("subscriber", "customer", "order"): the fingerprint of what was last sent, so
    # a subscriber record and a customer record for one email do not undo each other's "unchanged".
    fingerprints = models.JSONField(default=dict, blank=True)
    # The store's last explicit choice (None: the store never said), and when the shopper made it.
    # With no choice, store_opt_in_at is when the bridge first synced the person: only a choice made
    # after it may change the permission (R3/R4).
    store_opt_in = models.BooleanField(null=True)
    store_opt_in_at = models.DateTimeField(null=True, blank=True)
    # The bridge created this person in Ortto (the merge said "created"), as opposed to finding them.
    created_in_ortto = models.BooleanField(default=False)
    # The permission the bridge sent (None: never sent, the person already existed in Ortto).
    sent_permission = models.BooleanField(null=True)
    order_count = models.PositiveIntegerField(default=0)
    total_spent = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    last_order_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "email"], name="person_ledger_unique")]

    def __str__(self):
        return self.email


class OrderLedger(models.Model):
    """An order whose Placed order activity has been sent: each order is sent once per connection."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="orders")
    order_id = models.BigIntegerField()
    email = models.CharField(max_length=255)
    sent_at = models.DateTimeField()
    # Counted in the buyer's totals without an activity: Ortto keeps at most 50 events per activity
    # per contact per 24 h (docs/ortto-contract.md, "Limits").
    summarized = models.BooleanField(default=False)

    class Placed(models.TextChoices):
        SENT = "", "Sent (or summarized)"
        TO_SEND = "to_send", "To send"  # an initial import's: sent after its last order page, newest first
        REFUSED = "refused", "Refused"  # the next run sends it again (sync/engine/orders/journey.py, journey_redo)

    # Where its Placed order activity stands, and the activity itself while it is not sent.
    placed_state = models.CharField(max_length=8, choices=Placed.choices, blank=True, default="")
    placed_activity = models.JSONField(null=True, blank=True)
    # The order as last seen (sync/engine/orders/journey.py): a change of status or refunded amount since is what sends
    # Fulfilled / Cancelled / Refunded order, once, whichever of a webhook run or the sweep sees it first.
    # Null status: a row from before status tracking; its first sighting only records the status.
    status_id = models.PositiveSmallIntegerField(null=True, blank=True)
    # Shipped in full once: a later status (e.g. Partially Refunded) no longer says so, this does.
    fulfilled = models.BooleanField(default=False)
    refunded_amount = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    # What the order adds to its buyer's "total spent" now (its total, less refunds; 0 once cancelled).
    counted_total = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    # Ordered product activities sent for it: Ortto keeps at most 50 of one activity per person per 24 h.
    products_sent = models.PositiveSmallIntegerField(default=0)

    class Products(models.TextChoices):
        NONE = "", "Nothing to send"
        TO_SEND = "to_send", "To send"  # recorded before the call: not confirmed until Ortto answers
        SENT = "sent", "Sent"
        REFUSED = "refused", "Refused"  # the next run sends them again
        REFUSED_AGAIN = "refused2", "Refused again"  # only "Resync failed records" sends them again
        # An initial import's lines, with their bodies: sent after its last order page, each buyer's newest
        # orders first, as Ortto's 50 a day allow (sync/engine/orders/journey.py, placed_send); products_sent says how many.
        WAITING = "waiting", "Waiting for the import's end"

    # Where its Ordered product activities stand: the next run sends again, once, what an earlier run left
    # "to send" (its call was cut off by a crash) or "refused", with the same keys (sync/engine/orders/journey.py,
    # journey_redo); refused a second time, they wait for "Resync failed records".
    products_state = models.CharField(max_length=8, choices=Products.choices, blank=True, default="")
    # The Ordered product activities while they wait ("waiting"); cleared once sent or left out.
    products_activities = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "order_id"], name="order_ledger_unique")]

    def __str__(self):
        return f"order {self.order_id}"


class CartLedger(models.Model):
    """An abandoned cart the bridge heard of, and what it did about it (sync/engine/carts.py): Abandoned cart
    and Cart recovered are each sent at most once per cart and connection."""

    class Outcome(models.TextChoices):
        SENT = "sent", "Abandoned cart sent"
        ANONYMOUS = "anonymous", "No email: skipped"
        EXPIRED = "expired", "Gone before it was read"
        FAILED = "failed", "Not sent"  # the next run sends it again (sync/engine/carts.py, carts_redo)
        FAILED_AGAIN = "failed2", "Not sent twice"  # only "Resync failed records" sends it again
        # Never sent: the shopper's 51st Abandoned cart in 24 h, which Ortto would drop (carts.over_daily_limit).
        LIMITED = "limited", "Over Ortto's 50 a day: not sent"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="carts")
    # BigCommerce cart ids are UUIDs (36 characters); the abandoned-cart token is 32 hex characters.
    cart_id = models.CharField(max_length=64)
    token = models.CharField(max_length=128, blank=True)
    email = models.CharField(max_length=255, blank=True)
    # The cart's value when it was abandoned: a converted cart is gone from the API (Cart recovered says it).
    value = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    abandoned_at = models.DateTimeField()
    order_id = models.BigIntegerField(null=True, blank=True)
    recovered_at = models.DateTimeField(null=True, blank=True)

    class Recovery(models.TextChoices):
        NONE = "", "Not refused"
        FAILED = "failed", "Cart recovered not sent"  # the next run sends it again (sync/engine/carts.py, carts_redo)
        FAILED_AGAIN = "failed2", "Cart recovered not sent twice"  # only "Resync failed records" sends it again

    # Where a refused Cart recovered stands (sent: recovered_at is set).
    recovery = models.CharField(max_length=16, choices=Recovery.choices, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "cart_id"], name="cart_ledger_unique")]
        verbose_name = "abandoned cart"

    def __str__(self):
        return f"cart {self.cart_id}"


class OrganizationLedger(models.Model):
    """What the bridge knows of one company of the store (one per normalized name per connection) and
    what it last sent to Ortto's account (formerly "organization") of that name."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="organizations")
    # The normalized name (sync.engine.organizations.company_key): "ACME Ltd" and "Acme  Ltd " share it.
    key = models.CharField(max_length=255)
    # The spelling first seen: Ortto merges accounts by this exact name, so it never changes.
    name = models.CharField(max_length=255)
    # What the store says of the company (website, address ...), latest record wins.
    source_fields = models.JSONField(default=dict, blank=True)
    ortto_account_id = models.CharField(max_length=64, blank=True)
    # Of the store's fields (name, website, address) last accepted by Ortto; empty: never sent.
    fingerprint = models.CharField(max_length=64, blank=True)
    # Of the bridge's counts (buyers, orders, total spent) last accepted by Ortto.
    aggregates_fingerprint = models.CharField(max_length=64, blank=True)
    created_in_ortto = models.BooleanField(default=False)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "key"], name="organization_ledger_unique")]
        ordering = ["name"]

    def __str__(self):
        return self.name


class OrganizationMember(models.Model):
    """One person's company: the one the store says now, and the one Ortto has them linked to."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="organization_members")
    email = models.CharField(max_length=255)
    organization = models.ForeignKey(OrganizationLedger, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="members")
    linked_organization = models.ForeignKey(OrganizationLedger, null=True, blank=True, on_delete=models.SET_NULL,
                                            related_name="linked_members")
    # Where the company came from: "customer" (the customer's own company field), "address" (the fallback:
    # an address's company) or "order" (a guest order's billing company). Once the customer's own field
    # has named the company, a blank field means the company was cleared: the address does not stand in.
    source = models.CharField(max_length=8, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "email"], name="organization_member_unique")]

    def __str__(self):
        return self.email


class ThrottleCounter(models.Model):
    """Attempts at one throttled thing (a sign-in for one email, sign-ups from one IP…) in a window.

    A row, not the cache: the count is raised with one UPDATE … SET count = count + 1 before anything is
    checked, which the database makes atomic; Django's DatabaseCache.incr is a read then a write.
    """

    key = models.CharField(max_length=128, unique=True)
    count = models.PositiveIntegerField(default=0)
    window_ends_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["window_ends_at"], name="throttle_window_idx")]

    def __str__(self):
        return f"{self.key}: {self.count}"


class StagedSubscriber(models.Model):
    """A subscriber record an initial run has read but not yet written to Ortto.

    An initial run reads the store's subscribers first and keeps them here; each customer page takes
    its customers' subscriber records along, so a customer who is also a subscriber becomes one merge
    (customer fields, the subscriber's opt-in). The rest are written after the customers. Rows live only
    for their run, committed with its checkpoint, so a resumed run finds them; memory stays flat."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="staged_subscribers")
    email = models.CharField(max_length=255)
    bc_id = models.BigIntegerField(null=True, blank=True)
    record = models.JSONField()

    class Meta:
        indexes = [models.Index(fields=["run", "email"], name="staged_subscriber_email")]


class ConnectionManager(models.Model):
    """A store user whom the owner allowed to manage the store's connection (connect, reconnect,
    disconnect). Keyed by store and BigCommerce user id rather than a field on stores' StoreUser: who may
    move the store's data to Ortto is sync's rule, and stores knows nothing of Ortto. The grant counts only
    while the user is an active StoreUser and was made after their last removal from the store, so a user
    removed and added back must be allowed again; a revoke or an uninstall deletes the row."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="connection_managers")
    bc_user_id = models.BigIntegerField()
    granted_by = models.CharField(max_length=255, help_text="The owner who allowed it, by email.")
    granted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "bc_user_id"], name="connection_manager_unique_per_store")
        ]

    def __str__(self):
        return f"bc-user:{self.bc_user_id} manages {self.store.store_hash}"


class ConnectionChange(models.Model):
    """One change of a store's connection, for the app page's Connection history and the owner's e-mail:
    who (the store user's email), from which Ortto Bridge sign-in, to which Ortto account, when."""

    class Kind(models.TextChoices):
        CONNECTED = "connected", "Connected"
        RECONNECTED = "reconnected", "Reconnected"
        STRATEGY_CHANGED = "strategy_changed", "Merge strategy changed"
        SWITCHED = "switched", "Reconnected to another Ortto account"
        DISCONNECTED = "disconnected", "Disconnected"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="connection_changes")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    by_email = models.CharField(max_length=255, help_text="The store user who made the change.")
    by_bc_user_id = models.BigIntegerField(null=True, blank=True)
    signin_email = models.CharField(max_length=255, blank=True, help_text="The Ortto Bridge sign-in used, if any.")
    account_name = models.CharField(max_length=255, help_text="The Ortto account's business name.")
    merge_strategy = models.PositiveSmallIntegerField(choices=MergeStrategy.choices, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["store", "-created_at"], name="connection_change_store_idx")]
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.store.store_hash}: {self.get_kind_display()} by {self.by_email}"


class Incident(models.Model):
    """Something about a store's sync that needs attention, from when it was noticed until it cleared.

    sync/health/incidents.py opens and clears them from the facts (connection state, runs, webhook arrivals);
    each one mails the owner (and support) once when it opens and once when it clears. At most one is open
    per store and kind (`one_open_incident_per_kind`), so a flood of the same trouble is one incident.
    """

    class Kind(models.TextChoices):
        KEY_REJECTED = "key_rejected", "Ortto rejected the API key"
        PAUSED = "paused", "Ortto paused the account"
        RUN_FAILED = "run_failed", "A sync failed"
        RUN_STALLED = "run_stalled", "A sync stalled"
        WEBHOOKS_SILENT = "webhooks_silent", "Store changes stopped arriving"
        FAILED_SHARE = "failed_share", "Many records failed"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="incidents")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    opened_at = models.DateTimeField(default=timezone.now)
    cleared_at = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(help_text="What the owner was told when it opened (no secrets).")
    details = models.JSONField(default=dict, blank=True, help_text="The facts behind it and its timeline.")
    emails_sent = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["store", "kind"], condition=Q(cleared_at__isnull=True),
                                    name="one_open_incident_per_kind"),
        ]
        indexes = [models.Index(fields=["store", "-opened_at"], name="incident_store_idx")]
        ordering = ["-opened_at", "-id"]

    def __str__(self):
        return f"{self.store.store_hash}: {self.get_kind_display()} ({'open' if self.is_open else 'cleared'})"

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None


class AlertPreference(models.Model):
    """The owner's choice on the app page: e-mail me when syncing needs attention (on when no row exists)."""

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="alert_preference")
    enabled = models.BooleanField(default=True)
    changed_by = models.CharField(max_length=255, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.store.store_hash}: alerts {'on' if self.enabled else 'off'}"


# --- Consent both ways and erasure (sync/consent/, docs/design.md §4 "Consent written back") ----------


class ConsentPreference(models.Model):
    """Per store: whether Ortto's unsubscribes update the store (on when no row exists), what that did,
    and what `store/customer/deleted` does in Ortto. Also the write-back's own bookkeeping."""

    class OnCustomerDeleted(models.TextChoices):
        KEEP = "keep", "Keep the person in Ortto"
        ERASE = "erase", "Erase the person in Ortto and in the bridge"

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="consent_preference")
    writeback_enabled = models.BooleanField(default=True)
    writeback_count = models.PositiveIntegerField(default=0, help_text="People updated in the store.")
    writeback_last_at = models.DateTimeField(null=True, blank=True)
    unknown_count = models.PositiveIntegerField(default=0, help_text="Unsubscribes for emails the store does not have.")
    # Why writing back is on hold (no write scope, BigCommerce refused): shown on the app page; blank when fine.
    writeback_note = models.CharField(max_length=255, blank=True)
    # The check of Ortto's permissions walks the candidates by ledger id, a budget of calls per sweep.
    check_after_id = models.BigIntegerField(default=0)
    checked_at = models.DateTimeField(null=True, blank=True)
    check_calls = models.PositiveIntegerField(default=0, help_text="Ortto person/get calls of the last check.")
    on_customer_deleted = models.CharField(max_length=8, choices=OnCustomerDeleted.choices,
                                           default=OnCustomerDeleted.KEEP)
    # The instant path (sync/consent/instant.py): the secret of the URL an Ortto journey's webhook calls,
    # encrypted at rest (blank until the owner first shows the URL), and what its deliveries did.
    hook_token = EncryptedTextField(blank=True)
    hook_rotated_at = models.DateTimeField(null=True, blank=True)
    hook_received_count = models.PositiveIntegerField(default=0, help_text="Journey webhook deliveries accepted.")
    hook_last_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.CharField(max_length=255, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.store.store_hash}: write-back {'on' if self.writeback_enabled else 'off'}"


class ConsentWriteback(models.Model):
    """An Ortto unsubscribe to write to the store: pending until BigCommerce took it (done), or the store
    had no subscriber nor customer with that email (unknown). A 403, 429 or outage leaves it pending for
    the next sweep, up to CONSENT_WRITEBACK_MAX_ATTEMPTS attempts; then it is failed (with its reason) until
    support retries it. A store without the write scope holds it as no_scope (not an attempt, not a
    failure) until the scope is granted."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Written to the store"
        UNKNOWN = "unknown", "Not in the store"
        FAILED = "failed", "Failed: BigCommerce kept refusing"
        NO_SCOPE = "no_scope", "Waiting for the write scope"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="consent_writebacks")
    email = models.CharField(max_length=255)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    # Where it was learnt: the sweep's person/get walk, or a journey webhook (then verified by person/get).
    via_hook = models.BooleanField(default=False)
    found_at = models.DateTimeField(default=timezone.now)
    written_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "email"], name="consent_writeback_unique")]
        indexes = [models.Index(fields=["connection", "state", "id"], name="consent_writeback_state")]
        permissions = [("retry_writeback", "Can retry a failed unsubscribe write-back")]

    def __str__(self):
        return f"{self.email}: {self.get_state_display()}"


class ErasureRecord(models.Model):
    """Proof that a person was erased, without their email: a keyed hash (HMAC-SHA256, ERASURE_HASH_KEY).
    Also what keeps the sweep from re-creating them until a record of theirs newer than the erasure
    arrives (a new order or sign-up), which lifts it."""

    class Source(models.TextChoices):
        SUPPORT = "support", "Forget this email (support)"
        CUSTOMER_DELETED = "customer_deleted", "Customer deleted in the store"

    store = models.ForeignKey(Store, on_delete=models.SET_NULL, null=True, blank=True, related_name="erasures",
                              help_text="Blank: every store.")
    email_hash = models.CharField(max_length=64, db_index=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    requested_by = models.CharField(max_length=255, blank=True)
    in_ortto = models.BooleanField(default=False, help_text="Ortto was asked to erase the person too.")
    ortto_outcome = models.CharField(max_length=255, blank=True)
    rows_deleted = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    lifted_at = models.DateTimeField(null=True, blank=True,
                                     help_text="They came back on their own: the sweep syncs them again.")

    class Meta:
        ordering = ["-created_at"]
        permissions = [("forget_email", "Can forget an email (erasure)")]

    def __str__(self):
        return f"erasure {self.email_hash[:12]}… at {self.created_at:%Y-%m-%d %H:%M}"


# --- catalog mirror and product journeys (sync/catalog/) --------------------------------------------


class CatalogProduct(models.Model):
    """The store's catalog as the bridge last read it (v3 catalog: sync/catalog/mirror.py): what a product
    activity shows of a product. A product deleted from the store stays, marked, so activities still send
    what is known of it."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="catalog_products")
    product_id = models.PositiveBigIntegerField()
    name = models.CharField(max_length=255, blank=True)
    url = models.CharField(max_length=1000, blank=True, help_text="The product's storefront URL.")
    image_url = models.CharField(max_length=1000, blank=True, help_text="The product's main image.")
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    sale_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    inventory_level = models.IntegerField(default=0)
    inventory_tracking = models.CharField(max_length=10, blank=True)
    availability = models.CharField(max_length=10, blank=True)
    bc_modified_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "product_id"], name="catalog_product_unique")]

    def __str__(self):
        return f"{self.store_id}:{self.product_id} {self.name}"


class CatalogVariant(models.Model):
    product = models.ForeignKey(CatalogProduct, on_delete=models.CASCADE, related_name="variants")
    variant_id = models.PositiveBigIntegerField()
    sku = models.CharField(max_length=255, blank=True)
    options = models.CharField(max_length=255, blank=True)
    image_url = models.CharField(max_length=1000, blank=True)
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    sale_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    inventory_level = models.IntegerField(default=0)
    purchasing_disabled = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "variant_id"], name="catalog_variant_unique")]


class ProductActivity(models.Model):
    """One product activity the bridge owes Ortto (Added to cart, Viewed product, Waiting on stock, Back in
    stock): written when the event is accepted, sent by the store's next run (sync/catalog/journeys.py).
    `dedup_key` is the rule that keeps it to one (per cart and product; per shopper, product and day; per
    wait), and the activity's key in Ortto."""

    class Kind(models.TextChoices):
        ADDED_TO_CART = "added_to_cart", "Added to cart"
        VIEWED_PRODUCT = "viewed_product", "Viewed product"
        WAITING_ON_STOCK = "waiting_on_stock", "Waiting on stock"
        BACK_IN_STOCK = "back_in_stock", "Back in stock"

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"
        # Never sent: beyond Ortto's 50 of one activity per person per 24 h (journeys.over_allowance).
        LIMITED = "limited"

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="product_activities")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    dedup_key = models.CharField(max_length=200)
    email = models.CharField(max_length=255)
    product_id = models.PositiveBigIntegerField()
    variant_id = models.PositiveBigIntegerField(default=0)
    details = models.JSONField(default=dict, blank=True, help_text="quantity, price, cart id ... as received")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "dedup_key"], name="product_activity_once")]
        indexes = [models.Index(fields=["store", "state"], name="product_activity_state_idx")]


class StockAlertPreference(models.Model):
    """Per store: the consent wording the storefront's back-in-stock form shows beside its box (the app page's
    setting; sync/catalog/preferences.py). No row, or a blank wording: the default."""

    store = models.OneToOneField(Store, on_delete=models.CASCADE, related_name="stock_alert_preference")
    consent_text = models.CharField(max_length=200, blank=True)
    changed_by = models.CharField(max_length=255, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"{self.store.store_hash}: {self.consent_text or '(default wording)'}"


class StockWait(models.Model):
    """A shopper waiting for a variant to come back in stock (the storefront's back-in-stock form). Released
    once their Back in stock activity is owed; the same e-mail twice is one wait."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="stock_waits")
    email = models.CharField(max_length=255)
    product_id = models.PositiveBigIntegerField()
    variant_id = models.PositiveBigIntegerField(default=0)
    consent_text = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["store", "email", "product_id", "variant_id"],
                                               condition=Q(released_at__isnull=True), name="one_open_stock_wait")]
