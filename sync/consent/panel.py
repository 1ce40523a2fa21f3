"""The app page's "Consent" card: the two per-store settings and what the write-back did."""

from __future__ import annotations

from django.utils import timezone

from stores.models import Store
from sync.consent.writeback import NOTE_NO_SCOPE
from sync.models import ConsentPreference, ConsentWriteback


def consent_panel(*, store: Store) -> dict:
    preference = ConsentPreference.objects.filter(store=store).first() or ConsentPreference(store=store)
    note = preference.writeback_note
    if not store.can_write_customers:
        note = NOTE_NO_SCOPE
    return {
        "writeback_enabled": preference.writeback_enabled,
        "writeback_count": preference.writeback_count,
        "writeback_last_at": (preference.writeback_last_at.strftime("%Y-%m-%d %H:%M UTC")
                              if preference.writeback_last_at else ""),
        "unknown_count": preference.unknown_count,
        "pending": ConsentWriteback.objects.filter(connection__store=store, state__in=(
            ConsentWriteback.State.PENDING, ConsentWriteback.State.NO_SCOPE)).count(),
        **_failed(store),
        "hook_ready": bool(preference.hook_token),
        "hook_received_count": preference.hook_received_count,
        "hook_last_at": preference.hook_last_at.strftime("%Y-%m-%d %H:%M UTC") if preference.hook_last_at else "",
        "note": note if preference.writeback_enabled else "",
        "erase_on_delete": preference.on_customer_deleted == ConsentPreference.OnCustomerDeleted.ERASE,
    }


def _failed(store: Store) -> dict:
    """Write-backs BigCommerce kept refusing (the attempt limit): how many, and the latest reason."""
    failed = ConsentWriteback.objects.filter(connection__store=store, state=ConsentWriteback.State.FAILED)
    latest = failed.order_by("-id").values_list("last_error", flat=True).first()
    return {"failed": failed.count(), "failed_reason": latest or ""}


def consent_set(*, store: Store, by: str, writeback: bool | None = None, erase_on_delete: bool | None = None) -> None:
    """The owner's choices; each call changes the one given."""
    preference, _ = ConsentPreference.objects.get_or_create(store=store)
    fields = ["changed_by", "changed_at"]
    if writeback is not None:
        preference.writeback_enabled = writeback
        fields.append("writeback_enabled")
    if erase_on_delete is not None:
        preference.on_customer_deleted = (ConsentPreference.OnCustomerDeleted.ERASE if erase_on_delete
                                          else ConsentPreference.OnCustomerDeleted.KEEP)
        fields.append("on_customer_deleted")
    preference.changed_by, preference.changed_at = by[:255], timezone.now()
    preference.save(update_fields=fields)
