"""The back-in-stock form's consent wording: a store setting on the app page (StockAlertPreference).

Plain text, one line, at most MAX_CONSENT_TEXT characters; never markup. Everywhere it is shown it is escaped:
the app page by Django's autoescape, the storefront script as a JSON string literal set with `textContent`
(sync/catalog/script.py). A change reinstalls the storefront script where tracking is on, so the form shows the
new wording; the wording a shopper agreed to is stored with their wait (StockWait.consent_text).
"""

from __future__ import annotations

import unicodedata

from django.utils import timezone

from stores.models import Store
from sync.models import StockAlertPreference

# The wording the form shows when the app page says nothing else.
DEFAULT_CONSENT_TEXT = "E-mail me once when it is back in stock."
MAX_CONSENT_TEXT = 200


def stock_consent_text(store: Store | None) -> str:
    if store is None:
        return DEFAULT_CONSENT_TEXT
    text = (StockAlertPreference.objects.filter(store=store).values_list("consent_text", flat=True).first() or "")
    return text or DEFAULT_CONSENT_TEXT


def consent_text_clean(text: str) -> tuple[str, str]:
    """(the wording to save, "") or ("", why it is refused). Runs of white space become one space; blank means
    the default wording."""
    text = " ".join(str(text or "").split())
    if len(text) > MAX_CONSENT_TEXT:
        return "", f"Keep the wording to {MAX_CONSENT_TEXT} characters or fewer (it has {len(text)})."
    if any(unicodedata.category(char).startswith("C") for char in text):
        return "", "The wording may contain only plain text."
    return text, ""


def stock_consent_set(*, store: Store, text: str, by: str) -> str:
    """Save the store's wording; "" when saved, else the reason it was refused (nothing changed). The caller
    reinstalls the storefront script where it is installed (sync/connect/app_views.py), so that the catalog
    needs nothing from tracking, which reads the wording from here."""
    cleaned, refused = consent_text_clean(text)
    if refused:
        return refused
    if cleaned == DEFAULT_CONSENT_TEXT:
        cleaned = ""
    StockAlertPreference.objects.update_or_create(store=store, defaults={
        "consent_text": cleaned, "changed_by": by[:255], "changed_at": timezone.now()})
    return ""
