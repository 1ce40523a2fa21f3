"""The emulated Ortto: instances (accounts), their people, activity feeds and schema.

Only the sandbox uses these tables; the bridge reaches them over HTTP like the real API.
"""

import secrets
import time

from django.db import models
from django.utils import timezone

REGIONS = [("default", "Default (US)"), ("au", "Australia"), ("eu", "Europe")]


def new_person_id() -> str:
    """A 24-hex id shaped like Ortto's (`006913c5b9ca58778a137d00`): 00 + seconds + random + 00."""
    return f"00{int(time.time()) & 0xFFFFFFFF:08x}{secrets.token_hex(6)}00"


class Instance(models.Model):
    """One Ortto account ("instance") with its Custom API data-source key and injected faults."""

    name = models.SlugField(max_length=64, unique=True)
    business_name = models.CharField(max_length=200)
    region = models.CharField(max_length=10, choices=REGIONS, default="default")
    api_key = models.CharField(max_length=128, unique=True)
    tracking_key = models.CharField(max_length=200, blank=True)
    # Throttling: requests per second for this instance; 0 switches it off.
    rate_limit_per_second = models.PositiveIntegerField(default=0)
    # Random faults, each a probability between 0 and 1, drawn per request.
    fault_429_probability = models.FloatField(default=0)
    fault_500_probability = models.FloatField(default=0)
    fault_timeout_probability = models.FloatField(default=0)
    # A "timeout" fault sleeps this long and then answers 504 (longer than the client's timeout).
    fault_timeout_seconds = models.FloatField(default=25)
    # Added to every API request, to make benchmarks feel a real network.
    latency_ms = models.PositiveIntegerField(default=0)
    # Deterministic faults for tests: the next N API requests fail with this status.
    fail_next_count = models.PositiveIntegerField(default=0)
    fail_next_status = models.PositiveIntegerField(default=500)
    # A disconnected data source: every call is rejected with 401.
    revoked = models.BooleanField(default=False)
    # Emails on the instance's email suppression list (lower case).
    suppressed_emails = models.JSONField(default=list, blank=True)
    # An expired or suspended account (or the user who authorised the key left): every call is 403.
    expired = models.BooleanField(default=False)
    # Where the public record is silent, the emulator answers each plausible way (docs/ortto-contract.md):
    # the status of "custom field / activity definition already exists" (400 or 409) ...
    duplicate_status = models.PositiveSmallIntegerField(default=409)
    # ... and what a merge batch with some invalid people gets: "per_item" (200, those items invalid),
    # "refuse_with_details" (400, one `details` entry per person) or "refuse" (400, no usable details).
    batch_errors = models.CharField(max_length=24, default="per_item")
    # Synchronous merges by a merge key in flight at once before Ortto's concurrency limit answers 429
    # (Ortto warns of the limit without a number); 0 switches it off.
    merge_concurrency_limit = models.PositiveSmallIntegerField(default=8)
    # ... the icon ids a definition may use: empty means the SDK's list (sandbox/ortto/schema.py); a
    # shorter list makes the emulator refuse an icon no recorded answer shows ...
    accepted_icons = models.JSONField(default=list, blank=True)
    # ... the id prefix Ortto gives an activity attribute of a display type ({"price": "dec"}): no public
    # answer shows the prefix of `price` or `link` attributes; unset types follow the custom-field rule ...
    attribute_prefixes = models.JSONField(default=dict, blank=True)
    # ... and what a merge under strategy 3 (Ignore) answers for a person who exists: "merged" (as for the
    # other strategies), "ignored", "unchanged", or "none" (no status, only the person id).
    ignore_status = models.CharField(max_length=16, default="merged")
    # ... the same for an account under strategy 3: "merged", "ignored", "unchanged", "none" (the account
    # id only), or "ignored-no-id" ({"status": "ignored"} without the account id) ...
    account_ignore_status = models.CharField(max_length=16, default="merged")
    # ... and what removing someone who is not in the account answers: "ok" (200 {}) or "refuse" (400).
    remove_absent = models.CharField(max_length=8, default="ok")
    # A journey "People enter when: Unsubscribed from email" with a Send to webhook action to this URL
    # (help.ortto.com a-251, a-626): the person page's Unsubscribe button then POSTs the documented payload
    # to it (services.journey_webhook_send). Blank: no such journey.
    journey_webhook_url = models.URLField(max_length=1000, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.business_name})"


class Person(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="people")
    person_id = models.CharField(max_length=24, unique=True, default=new_person_id)
    # Lower-cased email for case-insensitive matching; NULL when the person has none.
    email = models.CharField(max_length=255, null=True, blank=True)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    # Denormalised for the list page, search and stats; the truth is in `fields`.
    name = models.CharField(max_length=511, blank=True, default="")
    email_permission = models.BooleanField(null=True)
    fields = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # PUT /v1/person/archive: soft-deleted, out of person/get (unless "type": "archived"); only an archived
    # person may be deleted (https://help.ortto.com/developer/latest/api-reference/person/archive.html).
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "email"], name="sandbox_ortto_person_email_unique"),
        ]
        indexes = [
            models.Index(fields=["instance", "external_id"], name="sbx_ortto_person_ei"),
            models.Index(fields=["instance", "-created_at"], name="sbx_ortto_person_created"),
        ]

    def __str__(self):
        return self.email or self.external_id or self.person_id


class PersonActivity(models.Model):
    """One line of a person's activity feed: built-in `subscribed`/`unsubscribed` or a custom act:cm:…"""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="activities")
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="activities")
    activity_id = models.CharField(max_length=200)
    attributes = models.JSONField(default=dict, blank=True)
    key = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    ingested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["person", "-created_at"], name="sbx_ortto_act_feed"),
            models.Index(fields=["person", "activity_id", "key"], name="sbx_ortto_act_key"),
            # activities/create looks up a batch's keys across the instance (de-duplication).
            models.Index(fields=["instance", "key"], name="sbx_ortto_act_inst_key"),
        ]

    def __str__(self):
        return f"{self.activity_id} for {self.person_id}"


class FieldDefinition(models.Model):
    """A custom field of an instance: a person's (CustomField) or an account's (AccountCustomField)."""

    field_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    display_type = models.CharField(max_length=40)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["id"]

    def __str__(self):
        return self.field_id


class CustomField(FieldDefinition):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="custom_fields")

    class Meta(FieldDefinition.Meta):
        constraints = [
            models.UniqueConstraint(fields=["instance", "field_id"], name="sandbox_ortto_custom_field_unique"),
        ]


class ActivityDefinition(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="activity_definitions")
    activity_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200)
    # [{"name", "field_id", "display_type"}]
    attributes = models.JSONField(default=list, blank=True)
    definition = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "activity_id"], name="sandbox_ortto_activity_def_unique"),
        ]
        ordering = ["id"]

    def __str__(self):
        return self.activity_id


class RequestLog(models.Model):
    """One row per API call (including rejected ones), for stats and benchmarks."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, null=True, related_name="request_logs")
    path = models.CharField(max_length=200)
    people = models.PositiveIntegerField(default=0)
    activities = models.PositiveIntegerField(default=0)
    status = models.PositiveIntegerField()
    duration_ms = models.PositiveIntegerField(default=0)
    at = models.DateTimeField(default=timezone.now)
    # Synchronous merges by a merge key: how many were in flight when this one arrived, itself included (over
    # the instance's merge_concurrency_limit: refused). None for every other call.
    in_flight = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["instance", "at"], name="sbx_ortto_reqlog_at")]


class RateWindow(models.Model):
    """Per instance and per second request counter; a row per (instance, second), shared by all processes."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    second = models.BigIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "second"], name="sandbox_ortto_rate_window_unique"),
        ]


def new_account_id() -> str:
    """A 24-hex id shaped like Ortto's recorded account ids (`507f1f77bcf86cd799439011`)."""
    return f"10{int(time.time()) & 0xFFFFFFFF:08x}{secrets.token_hex(6)}00"


class Account(models.Model):
    """An Ortto account in the CRM sense (formerly "organization"): built-in `*:o:*` fields, custom
    `*:oc:*` fields, and the people linked to it."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="accounts")
    account_id = models.CharField(max_length=24, unique=True, default=new_account_id)
    # Denormalised `str:o:name` (the merge key) for lookups and the list page; the truth is in `fields`.
    name = models.CharField(max_length=255)
    fields = models.JSONField(default=dict, blank=True)
    people = models.ManyToManyField(Person, related_name="accounts", blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["instance", "name"], name="sbx_ortto_account_name")]
        ordering = ["name", "id"]

    def __str__(self):
        return self.name


class AccountCustomField(FieldDefinition):
    """A custom account field (`<prefix>:oc:<kebab name>`), created by /v1/accounts/custom-field/create."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="account_custom_fields")

    class Meta(FieldDefinition.Meta):
        constraints = [
            models.UniqueConstraint(fields=["instance", "field_id"], name="sandbox_ortto_account_field_unique"),
        ]


class InFlightMerge(models.Model):
    """A synchronous merge being handled now: the concurrency limit counts these across processes."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    started_at = models.FloatField()


class IpStrikes(models.Model):
    """Bad requests per calling IP: 15 in 15 s ban the IP for 15 s (https://help.ortto.com/a-235-rate-limits)."""

    ip = models.CharField(max_length=64, unique=True)
    # Times (epoch seconds) of the bad requests of the last 15 s.
    strikes = models.JSONField(default=list, blank=True)
    banned_until = models.FloatField(default=0)
