"""Slows down password guessing on the Ortto sign-in: a lock after repeated failures, kept in the cache
(shared by every web process when REDIS_URL or the database cache is used)."""

import hashlib

from django.core.cache import cache

MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60


def _key(email: str, ip: str) -> str:
    digest = hashlib.sha256(f"{email.strip().lower()}|{ip}".encode()).hexdigest()[:32]
    return f"signin-failures:{digest}"


def signin_locked(*, email: str, ip: str) -> bool:
    return cache.get(_key(email, ip), 0) >= MAX_FAILURES


def signin_failed(*, email: str, ip: str) -> int:
    key = _key(email, ip)
    if cache.add(key, 1, LOCK_SECONDS):
        return 1
    try:
        return cache.incr(key)
    except ValueError:
        cache.set(key, 1, LOCK_SECONDS)
        return 1


def signin_succeeded(*, email: str, ip: str) -> None:
    cache.delete(_key(email, ip))
