"""Test configuration. The database is chosen here, before any project import, from
KEEL_DATABASE_URL: unset means a fresh SQLite file for this run; postgresql://... runs the
same suite against PostgreSQL. Each test that asks for `db` starts from empty tables."""

from __future__ import annotations

import os
import tempfile

if not os.environ.get("KEEL_DATABASE_URL"):
    _tmp = tempfile.mkdtemp(prefix="keel-test-")
    os.environ["KEEL_DATABASE_URL"] = os.path.join(_tmp, "keel.sqlite")
os.environ.setdefault("KEEL_SQLITE_SYNCHRONOUS", "OFF")
os.environ.setdefault("KEEL_PASSWORD_HASH", "fast")
os.environ.setdefault("KEEL_SCHEDULER", "off")
os.environ.pop("KEEL_SMTP_HOST", None)
os.environ.setdefault("KEEL_SECRET_KEY", "test-secret-key-not-for-production-0123456789")

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from cmdb import repository as repo
from tests.support import (
    FakeClock,
    World,
    migrate_fresh,
    reset_tables,
)


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[None]:
    # The tests' loop gets its own pool; the app under test opens another on the test client's
    # loop at start-up (litestar #1920: they differ), which KeelPostgresEngine keeps apart.
    await migrate_fresh()
    engine = repo.engine()
    if engine.engine_type == "postgres":
        await engine.start_connection_pool(min_size=1, max_size=20)  # type: ignore[attr-defined]
    yield
    if engine.engine_type == "postgres":
        await engine.close_connection_pool()  # type: ignore[attr-defined]


@pytest.fixture
async def db(database: None) -> AsyncIterator[None]:
    await reset_tables()
    yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC))


@pytest.fixture
async def world(db: None, clock: FakeClock) -> World:
    """A provider, two customers with a few people each, and services wired to a fresh graph cache."""
    return await World.create(clock)
