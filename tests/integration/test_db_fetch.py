"""`cmdb.db.fetch_tuples`: raw reads as plain tuples, on SQLite and PostgreSQL, outside and
inside a transaction (where it must see the transaction's own writes)."""

from __future__ import annotations

from cmdb import db
from cmdb import repository as cmdb_repo
from tests.support import World


async def test_fetch_tuples_gives_tuples_in_select_order(world: World) -> None:
    await world.ci("ACME", "web-01", "server")
    await world.ci("ACME", "db-01", "server")
    engine = cmdb_repo.engine()
    rows = await db.fetch_tuples(
        engine, "SELECT name, ci_class FROM ci WHERE name IN (?, ?) ORDER BY name", "web-01", "db-01"
    )
    assert rows == [("db-01", "server"), ("web-01", "server")]
    assert all(type(row) is tuple for row in rows)
    as_dicts = await db.fetch(
        engine, "SELECT name, ci_class FROM ci WHERE name IN (?, ?) ORDER BY name", "web-01", "db-01"
    )
    assert rows == [tuple(row.values()) for row in as_dicts]


async def test_fetch_tuples_with_no_rows_and_no_args(world: World) -> None:
    engine = cmdb_repo.engine()
    assert await db.fetch_tuples(engine, "SELECT id FROM ci WHERE 1 = 0") == []
    assert await db.fetch_tuples(engine, "SELECT 1 + 1") == [(2,)]


async def test_fetch_tuples_inside_a_transaction_sees_its_own_writes(world: World) -> None:
    ci = await world.ci("ACME", "web-01", "server")
    engine = cmdb_repo.engine()
    async with db.atomic(engine):
        await db.fetch(engine, "UPDATE ci SET name = ? WHERE id = ? RETURNING id", "web-01-renamed", ci.id)
        inside = await db.fetch_tuples(engine, "SELECT name FROM ci WHERE id = ?", ci.id)
        assert inside == [("web-01-renamed",)]
    assert await db.fetch_tuples(engine, "SELECT name FROM ci WHERE id = ?", ci.id) == [("web-01-renamed",)]
