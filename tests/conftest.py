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

from tests.support import (
    FakeClock,
    World,
    migrate_fresh,
    reset_tables,
)


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[None]:
    # No asyncpg pool here: Litestar's AsyncTestClient serves requests on another event loop
    # than the tests' own (litestar #1920), and a pool belongs to one loop.
    await migrate_fresh()
    yield


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
