"""Fixtures for the job system's tests: a migrated database of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import scratch_database
from vur.core import migrations
from vur.core.db import Database, get_database


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    """A migrated database of this test's own: SQLite, or PostgreSQL when configured."""
    with scratch_database(tmp_path) as url:
        migrations.upgrade(url)
        yield url


@pytest.fixture
def db(fresh_url: str) -> Database:
    return get_database(fresh_url)
