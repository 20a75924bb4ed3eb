"""Benchmark of the CI graph engine (cmdb.graph.GraphIndex) against SQL traversals.

    python bench/graph.py [--sizes 10000,100000,1000000] [--quick] [--seed N]

For each size it builds a synthetic layered CMDB (services -> applications -> instances -> VMs
-> hosts -> clusters, with storage arrays, access switches, software and documents, and hubs
many CIs share: a core switch, a central SAN, a shared cluster), several customer tenants and a
provider tenant owning the shared infrastructure. Deterministic for a given seed.

It measures the engine (cold load, memory, impact latency by kind of root and depth, edit
visibility, compaction) and the same impact queries as a recursive CTE in SQLite, as a
query-per-node loop against SQLite (smaller sizes), and as a recursive CTE in PostgreSQL when
KEEL_BENCH_POSTGRES_URL is set. Every SQL answer is cross-checked against the engine's.
Figures are printed, never asserted: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import random
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmdb.graph import EDGE_TYPES, Direction, GraphIndex

PROVIDER = 0
T = {name: code for code, name in enumerate(EDGE_TYPES)}

# ------------------------------------------------------------------ synthetic CMDB


@dataclass
class Cmdb:
    node_ids: np.ndarray
    tenants: np.ndarray
    rel_ids: np.ndarray
    sources: np.ndarray
    targets: np.ndarray
    codes: np.ndarray
    kinds: dict[str, np.ndarray]  # CI ids per kind
    hubs: list[int]


def synthesize(n: int, seed: int) -> Cmdb:
    """A layered CMDB of about n CIs. Ids are sparse (not 0..n-1) to keep the engine honest."""
    rng = np.random.default_rng(seed)
    customers = max(4, min(40, n // 25_000))

    counts = {
        "core_switch": 1,
        "central_san": 1,
        "shared_cluster": 1,
        "access_switch": max(2, n // 2_000),
        "storage": max(2, n // 10_000),
        "cluster": max(2, n // 4_000),
        "host": max(4, n * 5 // 100),
        "service": max(4, n * 3 // 100),
        "application": max(4, n * 9 // 100),
        "instance": max(4, n * 24 // 100),
        "software": max(4, n * 16 // 100),
        "vm": max(4, n * 28 // 100),
    }
    counts["document"] = max(4, n - sum(counts.values()))

    kinds: dict[str, np.ndarray] = {}
    tenant_of: dict[str, np.ndarray] = {}
    next_id = 1_000
    for kind, count in counts.items():
        # Gaps between ids, as after years of deletes.
        ids = next_id + np.cumsum(rng.integers(1, 4, count))
        next_id = int(ids[-1]) + 1
        kinds[kind] = ids
        infra = kind in (
            "core_switch",
            "central_san",
            "shared_cluster",
            "access_switch",
            "storage",
            "cluster",
            "host",
        )
        tenant_of[kind] = np.full(count, PROVIDER) if infra else rng.integers(1, customers + 1, count)

    src: list[np.ndarray] = []
    tgt: list[np.ndarray] = []
    code: list[np.ndarray] = []

    def link(a: np.ndarray, b: np.ndarray, kind: str) -> None:
        src.append(a)
        tgt.append(b)
        code.append(np.full(len(a), T[kind], dtype=np.int8))

    def pick(kind: str, k: int) -> np.ndarray:
        return kinds[kind][rng.integers(0, len(kinds[kind]), k)]

    def pick_same_tenant(from_kind: str, to_kind: str, per: float) -> tuple[np.ndarray, np.ndarray]:
        """About `per` targets of kind to_kind per CI of from_kind, within the same tenant
        (customers never share CIs with each other)."""
        a_ids, a_ten = kinds[from_kind], tenant_of[from_kind]
        b_ids, b_ten = kinds[to_kind], tenant_of[to_kind]
        order = np.argsort(b_ten, kind="stable")
        b_sorted, bt_sorted = b_ids[order], b_ten[order]
        lo = np.searchsorted(bt_sorted, a_ten, "left")
        hi = np.searchsorted(bt_sorted, a_ten, "right")
        reps = rng.poisson(per, len(a_ids))
        reps = np.where((hi > lo), reps, 0)
        a = np.repeat(a_ids, reps)
        lo_r, hi_r = np.repeat(lo, reps), np.repeat(hi, reps)
        b = b_sorted[lo_r + (rng.random(len(a)) * (hi_r - lo_r)).astype(np.int64)]
        keep = a != b
        return a[keep], b[keep]

    # Customer stack.
    link(*pick_same_tenant("service", "application", 3.0), "depends_on")
    link(*pick_same_tenant("service", "document", 1.0), "documented_by")
    link(*pick_same_tenant("application", "instance", 3.0), "depends_on")
    link(*pick_same_tenant("application", "application", 0.6), "depends_on")  # makes some cycles
    link(*pick_same_tenant("application", "document", 1.0), "documented_by")
    link(*pick_same_tenant("application", "service", 0.2), "provides")
    link(*pick_same_tenant("instance", "instance", 1.5), "depends_on")
    link(*pick_same_tenant("instance", "software", 1.5), "depends_on")
    link(*pick_same_tenant("instance", "vm", 1.0), "runs_on")
    link(*pick_same_tenant("software", "vm", 1.0), "installed_on")
    link(*pick_same_tenant("software", "software", 0.8), "depends_on")
    link(*pick_same_tenant("software", "document", 0.4), "documented_by")
    link(*pick_same_tenant("vm", "vm", 0.3), "depends_on")
    # VMs sit on provider infrastructure: hosts, clusters, storage, the network.
    vms = kinds["vm"]
    link(vms, pick("host", len(vms)), "hosted_on")
    shared = rng.random(len(vms)) < 0.3
    link(vms[shared], np.full(int(shared.sum()), kinds["shared_cluster"][0]), "member_of")
    link(vms[~shared], pick("cluster", int((~shared).sum())), "member_of")
    on_san = rng.random(len(vms)) < 0.5
    link(vms[on_san], np.full(int(on_san.sum()), kinds["central_san"][0]), "depends_on")
    link(vms, pick("storage", len(vms)), "depends_on")
    link(vms, pick("access_switch", len(vms)), "connected_to")
    instances = kinds["instance"]
    wired = rng.random(len(instances)) < 0.6
    link(instances[wired], pick("access_switch", int(wired.sum())), "connected_to")
    hosts = kinds["host"]
    link(hosts, pick("cluster", len(hosts)), "member_of")
    link(hosts, np.full(len(hosts), kinds["core_switch"][0]), "connected_to")
    link(hosts, pick("access_switch", len(hosts)), "connected_to")
    link(hosts, np.full(len(hosts), kinds["central_san"][0]), "depends_on")
    for kind in ("cluster", "shared_cluster", "access_switch", "storage", "central_san"):
        ids = kinds[kind]
        link(ids, np.full(len(ids), kinds["core_switch"][0]), "connected_to")
    for kind in ("cluster", "shared_cluster", "storage"):
        ids = kinds[kind]
        link(ids, np.full(len(ids), kinds["central_san"][0]), "depends_on")

    sources = np.concatenate(src)
    targets = np.concatenate(tgt)
    codes = np.concatenate(code)
    order = rng.permutation(len(sources))  # the database hands rows over in no useful order
    sources, targets, codes = sources[order], targets[order], codes[order]
    rel_ids = 5_000_000_000 + np.cumsum(rng.integers(1, 3, len(sources)))

    node_ids = np.concatenate(list(kinds.values()))
    tenants = np.concatenate([tenant_of[k] for k in kinds])
    hubs = [int(kinds[k][0]) for k in ("core_switch", "central_san", "shared_cluster")]
    big_storage = np.bincount(np.searchsorted(kinds["storage"], targets[np.isin(targets, kinds["storage"])]))
    hubs.append(int(kinds["storage"][int(np.argmax(big_storage))]))
    hubs.append(int(kinds["access_switch"][0]))
    return Cmdb(node_ids, tenants, rel_ids, sources, targets, codes, kinds, hubs)


def sample_roots(db: Cmdb, index: GraphIndex, rng: random.Random, k: int) -> dict[str, list[int]]:
    """Leaves (nothing depends on them), median-degree CIs and hubs."""
    ids = db.node_ids
    order = np.argsort(ids)
    ids_sorted = ids[order]
    indeg = np.bincount(np.searchsorted(ids_sorted, db.targets), minlength=len(ids))
    outdeg = np.bincount(np.searchsorted(ids_sorted, db.sources), minlength=len(ids))
    degree = indeg + outdeg
    leaves = ids_sorted[(indeg == 0) & (outdeg > 0)]
    # Among CIs something depends on, so that "down" has something to find.
    relied_on = indeg > 0
    median = ids_sorted[relied_on & (degree == int(np.median(degree[relied_on])))]
    return {
        "leaf": sorted(rng.sample(leaves.tolist(), min(k, len(leaves)))),
        "median": sorted(rng.sample(median.tolist(), min(k, len(median)))),
        "hub": db.hubs,
    }


# ------------------------------------------------------------------ measuring helpers


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - t0) * 1000, out


def fmt_ms(v: float) -> str:
    if v != v:
        return "-"
    if v < 1:
        return f"{v:.3f}"
    if v < 100:
        return f"{v:.1f}"
    return f"{v:,.0f}"


def fmt_lat(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{fmt_ms(pct(values, 50))} / {fmt_ms(pct(values, 95))} (n={len(values)})"


Answer = tuple[np.ndarray, np.ndarray]  # CI ids sorted, and their depths


def answer_of(index: GraphIndex, root: int, direction: Direction, depth: int | None) -> Answer:
    """The engine's answer in a compact form (a 1M-CI hub answer as a dict would cost ~100 MB)."""
    cis, depths, _ = index.impact_arrays(root, direction, depth)
    order = np.argsort(cis)
    return cis[order], depths[order]


def same_answer(expected: Answer, got: dict[int, int] | set[int]) -> bool:
    cis, depths = expected
    if isinstance(got, set):
        return bool(np.array_equal(cis, np.sort(np.fromiter(got, np.int64, len(got)))))
    keys = np.fromiter(got.keys(), np.int64, len(got))
    values = np.fromiter(got.values(), np.int64, len(got))
    order = np.argsort(keys)
    return bool(np.array_equal(cis, keys[order]) and np.array_equal(depths, values[order]))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ SQL baselines

CTE_DEPTH = """
WITH RECURSIVE impact(ci, depth) AS (
    SELECT {p0}, 0
    UNION
    SELECT r.{walk_to}, i.depth + 1
    FROM relationship r JOIN impact i ON r.{walk_from} = i.ci
    WHERE i.depth < {p1}
)
SELECT ci, MIN(depth) FROM impact WHERE ci <> {p0b} GROUP BY ci
"""
# Without a depth bound the (ci, depth) pairs of a cycle never repeat, so the unlimited query
# keeps only the CI column: UNION then stops at cycles, and depth is not available.
CTE_ALL = """
WITH RECURSIVE impact(ci) AS (
    SELECT {p0}
    UNION
    SELECT r.{walk_to} FROM relationship r JOIN impact i ON r.{walk_from} = i.ci
)
SELECT ci FROM impact WHERE ci <> {p0b}
"""


def cte_sql(direction: str, depth: int | None, style: str) -> str:
    walk_from, walk_to = ("target_id", "source_id") if direction == "down" else ("source_id", "target_id")
    if style == "sqlite":
        params = {"p0": "?1", "p1": "?2", "p0b": "?1"}
    else:
        params = {"p0": "$1::bigint", "p1": "$2", "p0b": "$1::bigint"}
    template = CTE_ALL if depth is None else CTE_DEPTH
    return template.format(walk_from=walk_from, walk_to=walk_to, **params)


def sqlite_load(path: Path, db: Cmdb) -> float:
    t0 = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("CREATE TABLE ci(id INTEGER PRIMARY KEY, tenant_id INTEGER)")
    conn.execute("CREATE TABLE relationship(id INTEGER PRIMARY KEY, source_id INTEGER, target_id INTEGER, type TEXT)")
    conn.executemany("INSERT INTO ci VALUES (?, ?)", zip(db.node_ids.tolist(), db.tenants.tolist(), strict=True))
    names = [EDGE_TYPES[c] for c in db.codes.tolist()]
    conn.executemany(
        "INSERT INTO relationship VALUES (?, ?, ?, ?)",
        zip(db.rel_ids.tolist(), db.sources.tolist(), db.targets.tolist(), names, strict=True),
    )
    conn.execute("CREATE INDEX relationship_source ON relationship(source_id)")
    conn.execute("CREATE INDEX relationship_target ON relationship(target_id)")
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return (time.perf_counter() - t0) * 1000


def sqlite_read_arrays(path: Path) -> GraphIndex:
    """What a process does at start-up: read both tables in chunks into arrays (no Python
    object per row survives a chunk) and build the index."""
    conn = sqlite3.connect(path)
    code_of = {name: code for code, name in enumerate(EDGE_TYPES)}
    (n,) = conn.execute("SELECT count(*) FROM ci").fetchone()
    nodes = np.empty((n, 2), dtype=np.int64)
    cur = conn.execute("SELECT id, tenant_id FROM ci")
    i = 0
    while chunk := cur.fetchmany(100_000):
        nodes[i : i + len(chunk)] = chunk
        i += len(chunk)
    (m,) = conn.execute("SELECT count(*) FROM relationship").fetchone()
    edges = np.empty((m, 4), dtype=np.int64)
    cur = conn.execute("SELECT id, source_id, target_id, type FROM relationship")
    i = 0
    while chunk := cur.fetchmany(100_000):
        edges[i : i + len(chunk)] = [(r, a, b, code_of[t]) for r, a, b, t in chunk]
        i += len(chunk)
    conn.close()
    return GraphIndex.from_arrays(nodes[:, 0], nodes[:, 1], edges[:, 0], edges[:, 1], edges[:, 2], edges[:, 3])


def naive_sqlite(conn: sqlite3.Connection, root: int, direction: str, depth: int | None) -> dict[int, int]:
    """Breadth-first search in Python with one SELECT per visited CI (the ORM-loop baseline)."""
    sql = (
        "SELECT source_id FROM relationship WHERE target_id = ?"
        if direction == "down"
        else "SELECT target_id FROM relationship WHERE source_id = ?"
    )
    seen = {root: 0}
    frontier = [root]
    d = 0
    while frontier and (depth is None or d < depth):
        d += 1
        nxt = []
        for ci in frontier:
            for (other,) in conn.execute(sql, (ci,)):
                if other not in seen:
                    seen[other] = d
                    nxt.append(other)
        frontier = nxt
    del seen[root]
    return seen


class Postgres:
    """The CTE on PostgreSQL through asyncpg, in a scratch schema dropped at the end."""

    def __init__(self, url: str) -> None:
        import asyncpg  # noqa: F401  (fails early when missing)

        self.url = url
        self.loop = asyncio.new_event_loop()
        self.conn: Any = None
        self.schema = f"keel_bench_{os.getpid()}"

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def load(self, db: Cmdb) -> float:
        import asyncpg

        async def go() -> None:
            if self.conn is None:
                self.conn = await asyncpg.connect(self.url)
            c = self.conn
            await c.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE; CREATE SCHEMA {self.schema}")
            await c.execute(f"SET search_path TO {self.schema}")
            await c.execute(
                "CREATE TABLE relationship(id bigint PRIMARY KEY, source_id bigint, target_id bigint, type text)"
            )
            names = [EDGE_TYPES[x] for x in db.codes.tolist()]
            records = zip(db.rel_ids.tolist(), db.sources.tolist(), db.targets.tolist(), names, strict=True)
            await c.copy_records_to_table("relationship", records=records)
            await c.execute("CREATE INDEX ON relationship(source_id)")
            await c.execute("CREATE INDEX ON relationship(target_id)")
            await c.execute("ANALYZE relationship")

        t0 = time.perf_counter()
        self.run(go())
        return (time.perf_counter() - t0) * 1000

    def query(self, root: int, direction: str, depth: int | None) -> dict[int, int] | set[int]:
        sql = cte_sql(direction, depth, "pg")

        async def go() -> Any:
            if depth is None:
                return await self.conn.fetch(sql, root)
            return await self.conn.fetch(sql, root, depth)

        rows = self.run(go())
        if depth is None:
            return {r[0] for r in rows}
        return {r[0]: r[1] for r in rows}

    def close(self) -> None:
        async def go() -> None:
            if self.conn is not None:
                await self.conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
                await self.conn.close()

        self.run(go())
        self.loop.close()


# ------------------------------------------------------------------ one size


@dataclass
class Plan:
    engine_samples: int
    cte_samples: dict[str, int]  # per root kind, per depth
    cte_hub_unlimited: int
    naive: bool
    naive_samples: int
    edits: int


def plan_for(n: int, quick: bool) -> Plan:
    if n <= 20_000:
        p = Plan(200, {"leaf": 30, "median": 30, "hub": 5}, 5, True, 20, 300)
    elif n <= 200_000:
        p = Plan(200, {"leaf": 20, "median": 20, "hub": 5}, 3, True, 10, 300)
    else:
        p = Plan(200, {"leaf": 10, "median": 10, "hub": 2}, 1, False, 0, 300)
    if quick:
        p.engine_samples = min(p.engine_samples, 30)
        p.cte_samples = {k: min(v, 3) for k, v in p.cte_samples.items()}
        p.cte_hub_unlimited = min(p.cte_hub_unlimited, 1)
        p.naive_samples = min(p.naive_samples, 3)
        p.edits = 50
    return p


_DIRECTIONS: tuple[tuple[str, tuple[Direction, ...]], ...] = (
    ("leaf", ("down", "up")),
    ("median", ("down",)),
    ("hub", ("down",)),
)
QUERY_SHAPES: list[tuple[str, Direction, int | None]] = [
    (kind, direction, depth)
    for kind, directions in _DIRECTIONS
    for direction in directions
    for depth in (1, 2, 3, 4, None)
]


@dataclass
class SizeResult:
    n: int
    rows: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def bench_size(n: int, seed: int, quick: bool, pg: Postgres | None, workdir: Path) -> SizeResult:
    res = SizeResult(n)
    plan = plan_for(n, quick)
    rng = random.Random(seed)

    log(f"n={n:,}: synthesizing")
    db = synthesize(n, seed)
    res.rows["CIs / relationships"] = f"{len(db.node_ids):,} / {len(db.rel_ids):,}"
    res.rows["relationships per CI"] = f"{len(db.rel_ids) / len(db.node_ids):.2f}"

    # --- cold load and memory
    gc.collect()
    rss0 = rss_mb()
    load_ms, index = timed(
        lambda: GraphIndex.from_arrays(db.node_ids, db.tenants, db.rel_ids, db.sources, db.targets, db.codes)
    )
    gc.collect()
    rss1 = rss_mb()
    res.rows["cold load from arrays (ms)"] = fmt_ms(load_ms)
    res.rows["index arrays (MB)"] = f"{index.nbytes / 2**20:.1f}"
    res.rows["RSS delta after load (MB)"] = f"{rss1 - rss0:.1f}"
    del index
    gc.collect()
    tracemalloc.start()
    index = GraphIndex.from_arrays(db.node_ids, db.tenants, db.rel_ids, db.sources, db.targets, db.codes)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    res.rows["tracemalloc held / peak during load (MB)"] = f"{current / 2**20:.1f} / {peak / 2**20:.1f}"

    roots = sample_roots(db, index, rng, plan.engine_samples)
    res.rows["sampled roots leaf/median/hub"] = "/".join(str(len(roots[k])) for k in ("leaf", "median", "hub"))

    # --- engine latency
    log(f"n={n:,}: engine queries")
    engine_answers: dict[tuple[str, str, int | None, int], Answer] = {}
    result_sizes: dict[tuple[str, str, int | None], list[int]] = {}
    for kind, direction, depth in QUERY_SHAPES:
        lat: list[float] = []
        lat_arrays: list[float] = []
        reps = 3 if kind == "hub" else 1
        for root in roots[kind]:
            for _ in range(reps):
                ms, items = timed(index.impact, root, direction, depth)
                lat.append(ms)
                ms_a, _ = timed(index.impact_arrays, root, direction, depth)
                lat_arrays.append(ms_a)
            engine_answers[(kind, direction, depth, root)] = answer_of(index, root, direction, depth)
            result_sizes.setdefault((kind, direction, depth), []).append(len(items))
            del items
        label = f"{kind:6} {direction:4} depth {depth or 'all'}"
        sizes = result_sizes[(kind, direction, depth)]
        res.rows[f"engine {label} p50/p95 ms"] = fmt_lat(lat)
        if kind == "hub" or depth is None:
            res.rows[f"  same, arrays only (no ImpactItem list) p50/p95 ms [{label}]"] = fmt_lat(lat_arrays)
        res.rows[f"  result size median/max [{label}]"] = f"{int(statistics.median(sizes)):,} / {max(sizes):,}"

    # A customer's view: same queries through the tenant mask {customer, provider}.
    lat = []
    for root in roots["median"]:
        tenant = index.tenant(root)
        allowed = {tenant, PROVIDER}
        ms, _ = timed(index.impact, root, "down", 4, None, allowed)
        lat.append(ms)
    res.rows["engine median down depth 4, tenant mask p50/p95 ms"] = fmt_lat(lat)
    lat = []
    hub = db.hubs[0]
    for tenant in range(1, 4):
        ms, _ = timed(index.impact, hub, "down", None, None, {tenant, PROVIDER})
        lat.append(ms)
    res.rows["engine core switch down all, tenant mask p50/p95 ms"] = fmt_lat(lat)
    ms, _ = timed(index.impact_many, roots["median"][:20], "down", 3)
    res.rows["engine impact_many(20 median roots, depth 3) ms"] = fmt_ms(ms)
    ms, cyc = timed(index.cycles, None, 100)
    res.rows["engine cycles(limit=100) over the whole graph ms"] = f"{fmt_ms(ms)} ({len(cyc)} found)"
    lat, found = [], 0
    for leaf in roots["leaf"][:50]:
        ms, hops = timed(index.path, leaf, db.hubs[0])
        lat.append(ms)
        found += hops is not None
    res.rows["engine path leaf -> core switch p50/p95 ms"] = f"{fmt_lat(lat)}, {found} found"
    lat, found = [], 0
    for x, y in zip(roots["median"][:50], roots["median"][50:100], strict=False):
        ms, hops = timed(index.path, x, y, None, None, False)
        lat.append(ms)
        found += hops is not None
    res.rows["engine path median <-> median, undirected p50/p95 ms"] = f"{fmt_lat(lat)}, {found} found"
    lat, sizes = [], []
    for root in roots["median"][:50]:
        ms, sub = timed(index.neighbourhood, root, 2, None, None, 500)
        lat.append(ms)
        sizes.append(sub.number_of_nodes())
    res.rows["engine neighbourhood(median, 2, max_nodes=500) p50/p95 ms"] = (
        f"{fmt_lat(lat)}, median {int(statistics.median(sizes))} nodes"
    )
    ms, sub = timed(index.neighbourhood, roots["median"][0], 2)
    res.rows["engine neighbourhood(median, 2), unbounded, one root ms"] = (
        f"{fmt_ms(ms)} ({sub.number_of_nodes():,} nodes)"
    )
    del sub

    # --- edits
    log(f"n={n:,}: edits")
    vis: list[float] = []
    rm: list[float] = []
    ids = db.node_ids
    next_rel = int(db.rel_ids.max()) + 1
    added: list[int] = []
    for _ in range(plan.edits):
        s = int(ids[rng.randrange(len(ids))])
        t = int(ids[rng.randrange(len(ids))])
        if s == t:
            continue
        t0 = time.perf_counter()
        index.add_edge(next_rel, s, t, "depends_on")
        seen = any(i.ci == s for i in index.impact(t, "down", 1, {"depends_on"}))
        vis.append((time.perf_counter() - t0) * 1000)
        assert seen, "an added edge must be visible at once"
        added.append(next_rel)
        next_rel += 1
    res.rows["edit: add_edge then visible in impact p50/p95 ms"] = fmt_lat(vis)
    for rel in added[: len(added) // 2]:
        s_t = index.edge(rel)
        assert s_t is not None
        t0 = time.perf_counter()
        index.remove_edge(rel)
        gone = all(i.ci != s_t[0] for i in index.impact(s_t[1], "down", 1, {"depends_on"})) or index.edge(rel) is None
        rm.append((time.perf_counter() - t0) * 1000)
        assert gone
    res.rows["edit: remove_edge then visible p50/p95 ms"] = fmt_lat(rm)
    # Base edges removed in place too.
    for rel in db.rel_ids[: plan.edits // 2].tolist():
        index.remove_edge(int(rel))
    lat = [timed(index.impact, r, "down", 4)[0] for r in roots["median"]]
    res.rows[f"  median down depth 4 with overlay of {index.overlay_size()} edits p50/p95 ms"] = fmt_lat(lat)
    ms, compacted = timed(index.compact)
    res.rows["compact() ms"] = fmt_ms(ms)
    for root in roots["median"][:20]:
        assert compacted.impact(root, "down", 4) == index.impact(root, "down", 4)
    del compacted, index
    gc.collect()

    # --- SQLite
    log(f"n={n:,}: SQLite load")
    path = workdir / f"cmdb_{n}.sqlite"
    res.rows["SQLite: load + index (ms)"] = fmt_ms(sqlite_load(path, db))
    res.rows["SQLite file (MB)"] = f"{path.stat().st_size / 2**20:.1f}"
    gc.collect()
    ms, index = timed(lambda: sqlite_read_arrays(path))
    res.rows["cold start: read SQLite + build index (ms)"] = fmt_ms(ms)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA cache_size=-500000")  # 500 MB page cache, so the CTE runs warm
    log(f"n={n:,}: SQLite CTE")

    def sqlite_cte(root: int, direction: str, depth: int | None) -> dict[int, int] | set[int]:
        sql = cte_sql(direction, depth, "sqlite")
        if depth is None:
            return {r[0] for r in conn.execute(sql, (root,))}
        return dict(conn.execute(sql, (root, depth)).fetchall())

    compare_cte(res, "SQLite CTE", sqlite_cte, index, roots, plan, n, engine_answers, result_sizes)

    if plan.naive:
        log(f"n={n:,}: naive loop")
        mismatches = 0
        checked = 0
        for kind, direction, depth in QUERY_SHAPES:
            sample = roots[kind][: plan.naive_samples if kind != "hub" else 2]
            lat = []
            for root in sample:
                ms, got = timed(naive_sqlite, conn, root, direction, depth)
                lat.append(ms)
                checked += 1
                mismatches += not same_answer(engine_answers[(kind, direction, depth, root)], got)
            res.rows[f"naive per-node SELECT {kind:6} {direction:4} depth {depth or 'all'} p50/p95 ms"] = fmt_lat(lat)
        res.rows["cross-check engine vs naive loop"] = f"{'OK' if not mismatches else 'MISMATCH'} ({checked} queries)"
    conn.close()
    path.unlink()

    # --- PostgreSQL
    if pg is not None:
        log(f"n={n:,}: PostgreSQL")
        res.rows["PostgreSQL: COPY + index (ms)"] = fmt_ms(pg.load(db))
        compare_cte(res, "PostgreSQL CTE", pg.query, index, roots, plan, n, engine_answers, result_sizes)
    return res


def compare_cte(
    res: SizeResult,
    name: str,
    query: Callable[[int, str, int | None], dict[int, int] | set[int]],
    index: GraphIndex,
    roots: dict[str, list[int]],
    plan: Plan,
    n: int,
    engine_answers: dict[tuple[str, str, int | None, int], Answer],
    result_sizes: dict[tuple[str, str, int | None], list[int]],
) -> None:
    """Run every query shape through `query`, check each answer against the engine's and
    time the engine on the same roots right after, for a like-for-like ratio."""
    mismatches = 0
    checked = 0
    speedups: dict[str, list[float]] = {}
    for kind, direction, depth in QUERY_SHAPES:
        count = plan.cte_hub_unlimited if (kind == "hub" and depth is None) else plan.cte_samples[kind]
        # At 1M a hub query to depth >= 3 walks most of the graph; keep those to one sample.
        if n > 200_000 and kind == "hub" and depth is not None and depth >= 3:
            count = 1
        cte_lat: list[float] = []
        eng_lat: list[float] = []
        for root in roots[kind][:count]:
            ms, got = timed(query, root, direction, depth)
            cte_lat.append(ms)
            eng_lat.append(timed(index.impact, root, direction, depth)[0])
            expected = engine_answers[(kind, direction, depth, root)]
            checked += 1
            mismatches += not same_answer(expected, got)
        label = f"{kind:6} {direction:4} depth {depth or 'all'}"
        res.rows[f"{name} {label} p50/p95 ms"] = fmt_lat(cte_lat)
        if cte_lat:
            ratio = statistics.median(cte_lat) / max(statistics.median(eng_lat), 1e-6)
            res.rows[f"  speed-up engine vs {name} (ratio of p50) [{label}]"] = f"{ratio:,.1f}x"
            if statistics.median(result_sizes[(kind, direction, depth)]) > 0:
                speedups.setdefault(kind, []).append(ratio)
    res.rows[f"cross-check engine vs {name}"] = f"{'OK' if not mismatches else 'MISMATCH'} ({checked} queries)"
    for kind, values in speedups.items():
        res.rows[f"speed-up vs {name}, {kind}, non-empty shapes (min / median / max)"] = (
            f"{min(values):,.1f}x / {statistics.median(values):,.1f}x / {max(values):,.1f}x"
        )


# ------------------------------------------------------------------ report

TARGETS = {
    "engine median down depth 4 p50/p95 ms": "target at 1M: p95 <= 1 ms",
    "engine leaf   up   depth 4 p50/p95 ms": "target at 1M: p95 <= 1 ms",
    "engine leaf   down depth 4 p50/p95 ms": "target at 1M: p95 <= 1 ms",
    "engine hub    down depth all p50/p95 ms": "target at 1M: <= 100 ms",
    "  same, arrays only (no ImpactItem list) p50/p95 ms [hub    down depth all]": "target at 1M: <= 100 ms",
    "cold load from arrays (ms)": "target at 1M: <= 10,000 ms",
    "cold start: read SQLite + build index (ms)": "target at 1M: <= 10,000 ms",
    "index arrays (MB)": "target at 1M: <= 500 MB",
    "RSS delta after load (MB)": "target at 1M: <= 500 MB",
    "edit: add_edge then visible in impact p50/p95 ms": "target at 1M: <= 10 ms",
    "speed-up vs SQLite CTE, leaf, non-empty shapes (min / median / max)": "target at 1M: >= 10x",
    "speed-up vs PostgreSQL CTE, leaf, non-empty shapes (min / median / max)": "target at 1M: >= 10x",
    "speed-up vs SQLite CTE, median, non-empty shapes (min / median / max)": "target at 1M: >= 10x",
    "speed-up vs PostgreSQL CTE, median, non-empty shapes (min / median / max)": "target at 1M: >= 10x",
    "speed-up vs SQLite CTE, hub, non-empty shapes (min / median / max)": "target at 1M: >= 10x",
    "speed-up vs PostgreSQL CTE, hub, non-empty shapes (min / median / max)": "target at 1M: >= 10x",
}


def print_table(results: list[SizeResult]) -> None:
    keys: list[str] = []
    for r in results:
        for k in r.rows:
            if k not in keys:
                keys.append(k)
    width0 = max(len(k) for k in keys)
    widths = [max(len(f"{r.n:,} CIs"), *(len(r.rows.get(k, "-")) for k in keys)) for r in results]
    header = "metric".ljust(width0) + "".join(
        f" | {f'{r.n:,} CIs'.rjust(w)}" for r, w in zip(results, widths, strict=True)
    )
    print(header + " | target")
    print("-" * (len(header) + 30))
    for k in keys:
        cells = "".join(f" | {r.rows.get(k, '-').rjust(w)}" for r, w in zip(results, widths, strict=True))
        print(k.ljust(width0) + cells + (f" | {TARGETS[k]}" if k in TARGETS else " |"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--quick", action="store_true", help="fewer samples per query shape")
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    print("$ python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]))
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
        f"{platform.machine()}, seed {args.seed}{', quick' if args.quick else ''}"
    )
    print(
        "latency cells: p50 / p95 in ms (n = samples); 'engine' = GraphIndex.impact() returning "
        "list[ImpactItem]; hubs are the core switch, central SAN, shared cluster, busiest storage "
        "array and an access switch, each queried 3 times"
    )
    url = os.environ.get("KEEL_BENCH_POSTGRES_URL")
    pg = Postgres(url) if url else None
    print(f"PostgreSQL: {'yes' if pg else 'no (set KEEL_BENCH_POSTGRES_URL to include it)'}")
    print(flush=True)
    results = []
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="keel-bench-") as tmp:
            for n in sizes:
                results.append(bench_size(n, args.seed, args.quick, pg, Path(tmp)))
                gc.collect()
    finally:
        if pg is not None:
            pg.close()
    print_table(results)
    print(f"\ntotal run time {time.perf_counter() - t0:,.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
