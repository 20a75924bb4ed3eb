"""Human keys (RFC-2026-0042): numbers are handed out once each, even to racing transactions."""

from __future__ import annotations

import asyncio

from cmdb import db as database
from cmdb import repository as repo

RACERS = 8


async def _take(name: str, barrier: asyncio.Barrier | None) -> int:
    async with database.atomic(repo.engine()):
        if barrier is not None:
            # Every transaction is open before any takes a number: the first number of a new
            # sequence is then asked for by all of them at once.
            await database.fetch(repo.engine(), "SELECT 1")
            await barrier.wait()
        return await repo.next_in_sequence(name)


async def test_the_first_numbers_of_a_new_sequence_race_without_a_clash(db: None) -> None:
    # SQLite serialises write transactions at BEGIN, so only PostgreSQL can open them together.
    concurrent = not database.is_sqlite(repo.engine())
    barrier = asyncio.Barrier(RACERS) if concurrent else None
    numbers = await asyncio.gather(*(_take("PRB-2031", barrier) for _ in range(RACERS)))
    assert sorted(numbers) == list(range(1, RACERS + 1))
    assert await _take("PRB-2031", None) == RACERS + 1
    assert await _take("PRB-2032", None) == 1
