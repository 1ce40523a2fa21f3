"""Fixtures for the hostile-user tests; their helpers are in harness.py."""

import pytest

from .harness import Browser


@pytest.fixture
def browser(sandbox_live):
    return lambda: Browser(sandbox_live)
