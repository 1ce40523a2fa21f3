"""`python manage.py migrate` alone prepares a database: the README's "Configuring for a real store" has no
separate createcachetable step, so migrate must create the database cache's table (ORM broker) itself."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sync.signals import create_cache_table

ROOT = Path(__file__).resolve().parents[2]


def manage(*args, database: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "SANDBOX": "1"}
    env.pop("REDIS_URL", None)  # the ORM broker and the database cache, as on one machine
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)


def test_migrate_on_a_fresh_database_creates_the_cache_table_and_the_cache_works(tmp_path):
    database = tmp_path / "fresh.sqlite3"

    migrated = manage("migrate", "--no-input", "-v0", database=database)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    with sqlite3.connect(database) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "django_cache" in tables

    # A second migrate (every deploy runs one) finds the table and leaves it; the cache then works.
    again = manage("migrate", "--no-input", "-v0", database=database)
    assert again.returncode == 0, again.stderr[-3000:]
    used = manage("shell", "-v0", "-c", "from django.core.cache import cache; cache.set('k', 'v'); print(cache.get('k'))",
                  database=database)
    assert used.returncode == 0, used.stderr[-3000:]
    assert used.stdout.strip() == "v" and "no such table" not in used.stderr


@pytest.mark.django_db
def test_with_a_redis_cache_migrate_creates_no_table(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    with CaptureQueriesContext(connection) as queries:
        create_cache_table(sender=apps.get_app_config("sync"), using="default")
    assert len(queries) == 0
