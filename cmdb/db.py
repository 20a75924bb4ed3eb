"""Database engines for Keel: SQLite embedded by default, PostgreSQL in production.

Stock Piccolo on SQLite opens a new connection (and thread) for every query outside a
transaction, about 1 ms a read, and lets two writers in one process trip over "database is
locked". `KeelSQLiteEngine` keeps two long-lived connections instead: one for reads in
autocommit (WAL lets them run beside a writer) and one writer that transactions take in turn,
always with BEGIN IMMEDIATE. Across processes SQLite's own lock and busy timeout still decide.
"""

from __future__ import annotations

import asyncio
import os
import re
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory

DEFAULT_DATABASE = "var/keel.sqlite"
_READ_ONLY = re.compile(r"^\s*(SELECT|WITH|EXPLAIN|PRAGMA\s+\w+\s*$)", re.IGNORECASE)


class _SharedWriterTransaction(SQLiteTransaction):
    """A transaction on the engine's single writer connection, taken in turn."""

    engine: KeelSQLiteEngine

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        lock = self.engine._writer_lock()
        await lock.acquire()
        try:
            self.connection = await self.engine._writer()
            await self.connection.execute(f"BEGIN {self.transaction_type.value}")
        except BaseException:
            lock.release()
            raise
        self.context = self.engine.current_transaction.set(self)
        return self

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            self.engine.current_transaction.reset(self.context)
            self.engine._writer_lock().release()
        return exception is None


class KeelSQLiteEngine(SQLiteEngine):
    __slots__ = ("_connections", "_locks", "synchronous")

    def __init__(self, path: str, *, synchronous: str = "FULL", timeout: float = 30.0) -> None:
        super().__init__(path=path, timeout=timeout)
        self.synchronous = synchronous
        self._connections: dict[str, aiosqlite.Connection] = {}  # keyed by role and loop
        self._locks: dict[int, asyncio.Lock] = {}

    async def _open(self, role: str) -> aiosqlite.Connection:
        # One pair of connections per event loop: a loop's asyncio lock cannot guard another
        # loop's use of a shared connection, while SQLite's own file lock guards separate ones.
        role = f"{role}:{id(asyncio.get_running_loop())}"
        connection = self._connections.get(role)
        if connection is None:
            pending = aiosqlite.connect(**self.connection_kwargs)
            # Long-lived connections must not keep the interpreter alive at exit.
            pending._thread.daemon = True
            connection = await pending
            connection.row_factory = dict_factory  # type: ignore[assignment]
            await connection.execute("PRAGMA journal_mode = WAL")
            await connection.execute(f"PRAGMA synchronous = {self.synchronous}")
            await connection.execute("PRAGMA foreign_keys = 1")
            await connection.execute("PRAGMA busy_timeout = 30000")
            # Another coroutine may have opened one meanwhile; keep the first, close ours.
            existing = self._connections.setdefault(role, connection)
            if existing is not connection:
                await connection.close()
            connection = existing
        return connection

    async def _reader(self) -> aiosqlite.Connection:
        return await self._open("reader")

    async def _writer(self) -> aiosqlite.Connection:
        return await self._open("writer")

    def _writer_lock(self) -> asyncio.Lock:
        # asyncio locks belong to one loop; tests and the CLI may run several loops in turn.
        loop = asyncio.get_running_loop()
        lock = self._locks.get(id(loop))
        if lock is None:
            lock = self._locks[id(loop)] = asyncio.Lock()
        return lock

    async def close(self) -> None:
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            await connection.close()

    def transaction(
        self,
        transaction_type: TransactionType = TransactionType.immediate,
        allow_nested: bool = True,
    ) -> SQLiteTransaction:
        return _SharedWriterTransaction(
            engine=self, transaction_type=TransactionType.immediate, allow_nested=allow_nested
        )

    async def _run_in_existing_connection(
        self,
        connection: Any,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        # Piccolo re-sends PRAGMA foreign_keys before every statement; ours are set once.
        async with connection.execute(query, args or []) as cursor:
            return await cursor.fetchall()

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> Any:
        if query_type != "insert" and _READ_ONLY.match(query) and "RETURNING" not in query.upper():
            reader = await self._reader()
            return await reader.execute_fetchall(query, args or [])
        async with self.transaction() as transaction:
            return await self._run_in_existing_connection(transaction.connection, query, args)


def sqlite_path(url: str) -> str | None:
    """The file path if `url` names SQLite (a bare path or sqlite:///path), else None."""
    if url.startswith(("postgres://", "postgresql://")):
        return None
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    if url.startswith("sqlite://"):
        return url[len("sqlite://") :]
    return url


class KeelPostgresEngine(PostgresEngine):
    """Piccolo's PostgreSQL engine with one asyncpg pool per event loop instead of one per engine.

    A pool belongs to the loop it was made on. The application has one loop per worker, but
    Litestar's test client serves requests on a loop of its own beside the tests' (litestar
    #1920): with a single `pool` attribute one of them would use connections of the other loop,
    or run without a pool and open a connection per query. Keyed by the running loop, each
    gets its own pool (`start_connection_pool` on that loop); a loop without one falls back to
    a connection per query, as stock Piccolo does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def pool(self) -> Any:
        try:
            return self._pools.get(asyncio.get_running_loop())
        except RuntimeError:  # no running loop: nothing can use a pool here
            return None

    @pool.setter
    def pool(self, value: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # Piccolo's constructor clears the pool before any loop runs
        if value is None:
            self._pools.pop(loop, None)
        else:
            self._pools[loop] = value


def engine_from_url(url: str | None = None) -> Engine:
    url = url or os.environ.get("KEEL_DATABASE_URL") or DEFAULT_DATABASE
    path = sqlite_path(url)
    if path is None:
        return KeelPostgresEngine(config={"dsn": url.replace("postgres://", "postgresql://", 1)})
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return KeelSQLiteEngine(path=path, synchronous=os.environ.get("KEEL_SQLITE_SYNCHRONOUS", "FULL").upper())


def is_sqlite(engine: Engine) -> bool:
    return engine.engine_type == "sqlite"


@asynccontextmanager
async def atomic(engine: Engine) -> AsyncIterator[Any]:
    """One write transaction: BEGIN IMMEDIATE on SQLite, a pooled connection on PostgreSQL.
    Joins the caller's transaction when one is open."""
    async with engine.transaction() as transaction:
        yield transaction


async def executemany(engine: Engine, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Bulk insert inside the current transaction, bypassing per-row query building.

    `sql` uses `?` placeholders; they are rewritten to `$n` for PostgreSQL. Callers chunk
    their rows; asyncpg stops at 32,767 bind arguments per statement but executemany binds
    one row at a time, so chunks bound the memory, not the protocol.
    """
    transaction = engine.current_transaction.get()
    if transaction is None:
        raise RuntimeError("executemany must run inside a transaction")
    if is_sqlite(engine):
        await transaction.connection.executemany(sql, rows)
        return
    await transaction.connection.executemany(_numbered(sql), rows)


async def fetch_int_columns(engine: Engine, sql: str, columns: int, chunk: int = 250_000) -> list[Any]:
    """Whole-table reads of integer columns as one numpy int64 array per column: no dict per
    row. For the graph cache's cold build, where a million rows as dicts cost seconds."""
    import numpy as np

    parts: list[Any] = []
    transaction = engine.current_transaction.get()
    if isinstance(engine, KeelSQLiteEngine):
        # Inside a transaction, read on its connection: the reader would not see its writes.
        reader = transaction.connection if transaction is not None else await engine._reader()
        cursor = await reader.execute(sql)
        cursor.row_factory = None  # type: ignore[assignment]
        try:
            while rows := await cursor.fetchmany(chunk):
                parts.append(np.array(rows, dtype=np.int64))
        finally:
            await cursor.close()
    else:
        if transaction is not None:
            records = await transaction.connection.fetch(sql)
        else:
            pool = getattr(engine, "pool", None)
            connection = await (pool.acquire() if pool is not None else engine.get_new_connection())  # type: ignore[attr-defined]
            try:
                records = await connection.fetch(sql)
            finally:
                await (pool.release(connection) if pool is not None else connection.close())
        if records:
            parts.append(np.array([tuple(record) for record in records], dtype=np.int64))
    table = np.concatenate(parts) if parts else np.zeros((0, columns), dtype=np.int64)
    return [table[:, index] for index in range(columns)]


def _numbered(sql: str) -> str:
    counter = iter(range(1, 1_000_000))
    return re.sub(r"\?", lambda _m: f"${next(counter)}", sql)


async def fetch(engine: Engine, sql: str, *args: Any) -> list[dict[str, Any]]:
    """A raw read with `?` placeholders, inside the current transaction if there is one.
    For the few queries Piccolo's builder cannot say well (recursive CTEs, bulk reads)."""
    transaction = engine.current_transaction.get()
    if isinstance(engine, KeelSQLiteEngine):
        if transaction is not None:
            async with transaction.connection.execute(sql, args) as cursor:
                return cast(list[dict[str, Any]], await cursor.fetchall())
        reader = await engine._reader()
        return cast(list[dict[str, Any]], list(await reader.execute_fetchall(sql, args)))
    sql = _numbered(sql)
    if transaction is not None:
        records = await transaction.connection.fetch(sql, *args)
    elif getattr(engine, "pool", None) is not None:
        async with engine.pool.acquire() as connection:  # type: ignore[attr-defined]
            records = await connection.fetch(sql, *args)
    else:
        connection = await engine.get_new_connection()  # type: ignore[attr-defined]
        try:
            records = await connection.fetch(sql, *args)
        finally:
            await connection.close()
    return [dict(record) for record in records]


async def fetch_tuples(engine: Engine, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Like `fetch`, but each row a plain tuple in the SELECT's column order: no dict per row,
    for reads of tens of thousands of rows where building dicts is most of the cost."""
    transaction = engine.current_transaction.get()
    if isinstance(engine, KeelSQLiteEngine):
        # Inside a transaction, read on its connection: the reader would not see its writes.
        connection = transaction.connection if transaction is not None else await engine._reader()
        cursor = await connection.execute(sql, args)
        cursor.row_factory = None  # type: ignore[assignment]
        try:
            # With no row factory the driver's rows are tuples already.
            return cast(list[tuple[Any, ...]], list(await cursor.fetchall()))
        finally:
            await cursor.close()
    sql = _numbered(sql)
    if transaction is not None:
        records = await transaction.connection.fetch(sql, *args)
    elif getattr(engine, "pool", None) is not None:
        async with engine.pool.acquire() as connection:  # type: ignore[attr-defined]
            records = await connection.fetch(sql, *args)
    else:
        connection = await engine.get_new_connection()  # type: ignore[attr-defined]
        try:
            records = await connection.fetch(sql, *args)
        finally:
            await connection.close()
    return [tuple(record) for record in records]


__all__ = [
    "DEFAULT_DATABASE",
    "KeelSQLiteEngine",
    "atomic",
    "engine_from_url",
    "executemany",
    "fetch",
    "fetch_tuples",
    "is_sqlite",
]
