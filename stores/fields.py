"""A text field encrypted at rest with Fernet (AES-128-CBC + HMAC), for tokens and API keys."""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def encrypt(value: str) -> str:
    return _fernet(settings.FIELD_ENCRYPTION_KEY).encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    try:
        return _fernet(settings.FIELD_ENCRYPTION_KEY).decrypt(value.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt a stored secret: FIELD_ENCRYPTION_KEY changed?") from exc


class EncryptedTextField(models.TextField):
    """Stores `encrypt(value)`; Python code only ever sees the plain value. Empty stays empty."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)


def mask_secret(value: str) -> str:
    """What support staff may see of a secret: enough to tell two apart, never enough to use."""
    if not value:
        return "—"
    if len(value) <= 8:
        return "••••"
    return f"{value[:3]}…{value[-3:]}"
