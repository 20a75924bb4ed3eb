"""The per-process CI graph: derived from the database, kept current from the graph log.

Every graph write bumps `graph_revision` and appends to `graph_log` in its own transaction.
Before answering a graph query a process reads the revision (one indexed read); if it is
behind, it applies the log entries it has not seen, and rebuilds only when too far behind.
That keeps several workers, and several hosts on one PostgreSQL, coherent without a broker.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cmdb import repository as repo
from cmdb.graph import GraphIndex


@dataclass
class GraphCacheStats:
    rebuilds: int = 0
    log_entries_applied: int = 0
    compactions: int = 0
    last_build_seconds: float = 0.0


class GraphCache:
    def __init__(self, *, max_lag: int = 20_000, compact_after: int = 50_000) -> None:
        self.max_lag = max_lag
        self.compact_after = compact_after
        self.index: GraphIndex | None = None
        self.revision = -1
        self.stats = GraphCacheStats()
        self._locks: dict[int, asyncio.Lock] = {}

    def _lock(self) -> asyncio.Lock:
        loop_id = id(asyncio.get_running_loop())
        lock = self._locks.get(loop_id)
        if lock is None:
            lock = self._locks[loop_id] = asyncio.Lock()
        return lock

    def invalidate(self) -> None:
        self.index = None
        self.revision = -1

    async def current(self) -> GraphIndex:
        """The graph as of the database's current revision."""
        revision = await repo.graph_revision()
        index = self.index
        if index is not None and revision == self.revision:
            return index
        async with self._lock():
            if self.index is None or revision - self.revision > self.max_lag:
                await self._rebuild()
            elif revision > self.revision:
                await self._catch_up()
            assert self.index is not None
            if self.index.overlay_size() > self.compact_after:
                self.index = self.index.compact()
                self.stats.compactions += 1
            return self.index

    async def _rebuild(self) -> None:
        started = time.perf_counter()
        # Read the revision first: edits landing during the load are applied again from the
        # log afterwards, which is harmless because every edit is idempotent.
        revision = await repo.graph_revision()
        (ids, tenants), (rel_ids, sources, targets, codes) = await repo.graph_arrays()
        self.index = GraphIndex.from_arrays(ids, tenants, rel_ids, sources, targets, codes.astype(np.int8))
        self.revision = revision
        # Freeze what the build allocated so full collections do not walk it on every query.
        gc.collect()
        gc.freeze()
        self.stats.rebuilds += 1
        self.stats.last_build_seconds = time.perf_counter() - started
        await self._catch_up()

    async def _catch_up(self) -> None:
        assert self.index is not None
        while True:
            entries = await repo.graph_log_since(self.revision, 5000)
            if not entries:
                return
            for entry in entries:
                if entry["op"] == "rebuild":
                    await self._rebuild()
                    return
                apply_log_entry(self.index, entry)
                self.revision = int(entry["revision"])
                self.stats.log_entries_applied += 1


def apply_log_entry(index: GraphIndex, entry: Mapping[str, Any]) -> None:
    op = entry["op"]
    if op == "add_ci":
        index.add_node(int(entry["ci_id"]), int(entry["tenant_id"]))
    elif op == "remove_ci":
        index.remove_node(int(entry["ci_id"]))
    elif op == "add_edge":
        index.add_edge(int(entry["rel_id"]), int(entry["source_id"]), int(entry["target_id"]), str(entry["type"]))
    elif op == "remove_edge":
        index.remove_edge(int(entry["rel_id"]))
    else:
        raise ValueError(f"unknown graph log operation {op!r}")


def log_add_ci(ci_id: int, tenant_id: int) -> dict[str, Any]:
    return {"op": "add_ci", "ci_id": ci_id, "tenant_id": tenant_id}


def log_add_edge(rel_id: int, source: int, target: int, type_: str) -> dict[str, Any]:
    return {"op": "add_edge", "rel_id": rel_id, "source_id": source, "target_id": target, "type": type_}


def log_remove_edge(rel_id: int) -> dict[str, Any]:
    return {"op": "remove_edge", "rel_id": rel_id}


async def record_graph_changes(entries: list[dict[str, Any]]) -> int:
    """Inside the writer's transaction: reserve revisions and log the edits. Returns the new revision."""
    if not entries:
        return await repo.graph_revision()
    last = await repo.bump_graph_revision(len(entries))
    first = last - len(entries) + 1
    await repo.append_graph_log([{**entry, "revision": first + i} for i, entry in enumerate(entries)])
    return last
