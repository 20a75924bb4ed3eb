"""Benchmark of RFC schedule-conflict detection (change.conflicts).

    python bench/change.py [--quick] [--cis 1000000] [--rfcs 2000,10000] [--depth 3] [--seed N]

Builds the synthetic CMDB of bench/graph.py (``synthesize``: 1M CIs, ~2.9M relationships,
40 customers and a provider tenant owning the shared infrastructure) into a GraphIndex, then for
each RFC count:

- raises that many RFCs with 3 affected CIs each: 85 % are customer changes (3 CIs of one
  customer), 15 % provider changes (3 provider CIs: hosts mostly, now and then a cluster, a
  storage array or an access switch, which impact thousands of CIs), plus one change to the
  core switch (which impacts about three quarters of the estate);
- schedules them all within one month (March 2026, UTC), 1 to 8 hours long (short ones
  commoner), starts on the quarter hour, three in four in the weekend windows (Friday 20:00 to
  Monday 06:00) and the rest on weekday nights (20:00 to 06:00), so many windows overlap and
  some just touch;
- computes each RFC's impacted set (its CIs plus everything downstream to --depth, one
  GraphIndex.impact_many call per RFC) and times that separately;
- times ``find_conflicts`` (the median of 3 runs) on the list of ScheduledChange records: the
  conflict step proper, i.e. reading the windows, sorting, building the RFC x CI incidence
  matrix, the sparse product, the window filter and the shared-CI lists (up to 50 per pair).
  It excludes the graph traversals above;
- times ``find_conflicts_naive`` (every pair compared with Python sets): in full when there are
  at most 2,000 RFCs, and cross-checks both answers; above that, on a random sample of 2,000
  RFCs, scaled by the ratio of pair counts (an estimate, marked so), with the sample
  cross-checked too.

``--quick`` (for CI): a 100k-CI graph and 2,000 RFCs. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.util
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from change.conflicts import (  # noqa: E402
    ConflictPair,
    ScheduledChange,
    conflicting_rfcs,
    find_conflicts,
    find_conflicts_naive,
)
from cmdb.graph import GraphIndex  # noqa: E402


def _load_graph_bench() -> Any:
    """bench/graph.py by path (bench is a folder of scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("keel_bench_graph", ROOT / "bench" / "graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


graph_bench = _load_graph_bench()

MONTH_START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
MONTH_END = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
QUARTER = dt.timedelta(minutes=15)
PROVIDER_SHARE = 0.15
WEEKEND_SHARE = 0.75
NAIVE_FULL_UP_TO = 2_000
NAIVE_SAMPLE = 2_000
MAX_SHARED = 50
TARGETS = {2_000: "<= 250 ms", 10_000: "<= 3,000 ms"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - t0) * 1000, out


def fmt_ms(v: float) -> str:
    if v < 1:
        return f"{v:.3f}"
    if v < 100:
        return f"{v:.1f}"
    return f"{v:,.0f}"


# ------------------------------------------------------------------ the RFCs


@dataclass
class Rfc:
    id: int
    cis: list[int]
    start: dt.datetime
    end: dt.datetime


def windows() -> tuple[list[tuple[dt.datetime, dt.datetime]], list[tuple[dt.datetime, dt.datetime]]]:
    """The month's weekend windows (Friday 20:00 to Monday 06:00) and weekday nights (Monday to
    Thursday, 20:00 to 06:00), each starting inside the month."""
    weekends: list[tuple[dt.datetime, dt.datetime]] = []
    nights: list[tuple[dt.datetime, dt.datetime]] = []
    day = MONTH_START
    while day < MONTH_END:
        evening = day.replace(hour=20)
        if day.weekday() == 4:
            weekends.append((evening, evening + dt.timedelta(hours=58)))
        elif day.weekday() < 4:
            nights.append((evening, evening + dt.timedelta(hours=10)))
        day += dt.timedelta(days=1)
    # The weekend that began on the last Friday of February still reaches into March.
    first = MONTH_START
    while first.weekday() != 4:
        first -= dt.timedelta(days=1)
    if first < MONTH_START:
        weekends.insert(0, (first.replace(hour=20), first.replace(hour=20) + dt.timedelta(hours=58)))
    return weekends, nights


def raise_rfcs(db: Any, count: int, rng: np.random.Generator) -> list[Rfc]:
    tenants = db.tenants
    ids = db.node_ids
    provider = graph_bench.PROVIDER
    hubs = set(db.hubs[:3])  # core switch, central SAN, shared cluster
    provider_ids = np.array([c for c in ids[tenants == provider].tolist() if c not in hubs], dtype=np.int64)
    order = np.argsort(tenants, kind="stable")
    sorted_tenants = tenants[order]
    customers = np.unique(tenants[tenants != provider])
    per_customer = {
        int(t): ids[order[np.searchsorted(sorted_tenants, t, "left") : np.searchsorted(sorted_tenants, t, "right")]]
        for t in customers
    }
    weekends, nights = windows()
    durations = [dt.timedelta(minutes=30 * k) for k in range(2, 17)]  # 1 h to 8 h
    weights = 1.0 / np.arange(2, 17)
    weights /= weights.sum()

    rfcs: list[Rfc] = []
    for i in range(count):
        if i == count // 2:
            cis = [int(db.hubs[0])]  # one change to the core switch
        elif rng.random() < PROVIDER_SHARE:
            cis = [int(c) for c in rng.choice(provider_ids, 3, replace=False)]
        else:
            pool = per_customer[int(rng.choice(customers))]
            cis = [int(c) for c in rng.choice(pool, 3, replace=False)]
        length: dt.timedelta = durations[rng.choice(len(durations), p=weights)]
        pool_windows = weekends if rng.random() < WEEKEND_SHARE else nights
        lo, hi = pool_windows[int(rng.integers(len(pool_windows)))]
        slots = int((hi - lo - length) / QUARTER)
        start = lo + int(rng.integers(slots + 1)) * QUARTER
        rfcs.append(Rfc(10_000 + i, cis, start, start + length))
    return rfcs


# ------------------------------------------------------------------ one size


@dataclass
class SizeResult:
    n: int
    rows: dict[str, str] = field(default_factory=dict)


def bench_size(index: GraphIndex, db: Any, n: int, depth: int, seed: int) -> SizeResult:
    res = SizeResult(n)
    rng = np.random.default_rng(seed + n)
    rfcs = raise_rfcs(db, n, rng)

    log(f"{n:,} RFCs: impacted sets")
    per_rfc: list[float] = []
    changes: list[ScheduledChange] = []
    t0 = time.perf_counter()
    for rfc in rfcs:
        t1 = time.perf_counter()
        impacted = index.impact_many(rfc.cis, "down", depth)
        arr = np.fromiter(impacted, dtype=np.int64, count=len(impacted))
        per_rfc.append((time.perf_counter() - t1) * 1000)
        changes.append(ScheduledChange(rfc.id, rfc.start, rfc.end, arr))
    impact_ms = (time.perf_counter() - t0) * 1000
    sizes = np.array([len(c.impacted) for c in changes])  # type: ignore[arg-type]
    res.rows["impacted sets: total ms (impact_many to depth, per RFC)"] = fmt_ms(impact_ms)
    res.rows["impacted sets: per RFC p50 / p95 / max ms"] = (
        f"{fmt_ms(statistics.median(per_rfc))} / {fmt_ms(float(np.percentile(per_rfc, 95)))} / {fmt_ms(max(per_rfc))}"
    )
    res.rows["impacted CIs per RFC p50 / p95 / max"] = (
        f"{int(np.median(sizes)):,} / {int(np.percentile(sizes, 95)):,} / {int(sizes.max()):,}"
    )
    res.rows["incidences (RFC, CI) in all"] = f"{int(sizes.sum()):,}"
    overlapping = _overlapping_pairs(changes)
    res.rows["RFC pairs with overlapping windows"] = f"{overlapping:,} of {n * (n - 1) // 2:,}"

    log(f"{n:,} RFCs: find_conflicts")
    gc.collect()
    runs = [timed(find_conflicts, changes, MAX_SHARED) for _ in range(3)]
    fast_ms = statistics.median(ms for ms, _ in runs)
    pairs: list[ConflictPair] = runs[0][1]
    res.rows["find_conflicts ms (median of 3)"] = fmt_ms(fast_ms)
    res.rows["  target"] = TARGETS.get(n, "-")
    res.rows["conflicting pairs"] = f"{len(pairs):,}"
    res.rows["RFCs flagged (in at least one pair)"] = f"{len(conflicting_rfcs(pairs)):,}"
    if pairs:
        counts = np.array([p.shared_count for p in pairs])
        res.rows["shared CIs per pair p50 / max"] = f"{int(np.median(counts)):,} / {int(counts.max()):,}"
        res.rows[f"pairs with more than {MAX_SHARED} shared (list capped)"] = f"{int((counts > MAX_SHARED).sum()):,}"

    if n <= NAIVE_FULL_UP_TO:
        log(f"{n:,} RFCs: naive")
        naive_ms, naive = timed(find_conflicts_naive, changes, MAX_SHARED)
        res.rows["naive pairwise ms"] = fmt_ms(naive_ms)
        res.rows["cross-check find_conflicts == naive"] = "OK" if naive == pairs else "MISMATCH"
    else:
        log(f"{n:,} RFCs: naive on a sample of {NAIVE_SAMPLE:,}")
        pick = np.sort(rng.choice(n, NAIVE_SAMPLE, replace=False))
        sample = [changes[i] for i in pick.tolist()]
        sample_ms, naive = timed(find_conflicts_naive, sample, MAX_SHARED)
        scale = (n * (n - 1)) / (NAIVE_SAMPLE * (NAIVE_SAMPLE - 1))
        res.rows["naive pairwise ms"] = (
            f"~{fmt_ms(sample_ms * scale)} (estimate: {NAIVE_SAMPLE:,}-RFC sample x {scale:.0f})"
        )
        same = naive == find_conflicts(sample, MAX_SHARED)
        res.rows["cross-check find_conflicts == naive"] = f"{'OK' if same else 'MISMATCH'} (on the sample)"
        naive_ms = sample_ms * scale
    res.rows["speed-up find_conflicts vs naive"] = f"{naive_ms / max(fast_ms, 1e-6):,.0f}x"
    return res


def _overlapping_pairs(changes: list[ScheduledChange]) -> int:
    starts = np.array([c.start.timestamp() for c in changes])
    ends = np.array([c.end.timestamp() for c in changes])
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.searchsorted(starts, ends, side="left")
    return int((reach - np.arange(1, len(changes) + 1)).sum())


def print_table(results: list[SizeResult]) -> None:
    keys: list[str] = []
    for r in results:
        for k in r.rows:
            if k not in keys:
                keys.append(k)
    width0 = max(len(k) for k in keys)
    widths = [max(len(f"{r.n:,} RFCs"), *(len(r.rows.get(k, "-")) for k in keys)) for r in results]
    header = "metric".ljust(width0) + "".join(
        f" | {f'{r.n:,} RFCs'.rjust(w)}" for r, w in zip(results, widths, strict=True)
    )
    print(header)
    print("-" * len(header))
    for k in keys:
        print(
            k.ljust(width0) + "".join(f" | {r.rows.get(k, '-').rjust(w)}" for r, w in zip(results, widths, strict=True))
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 100k-CI graph and 2,000 RFCs")
    parser.add_argument("--cis", type=int, default=None, help="CIs in the synthetic CMDB (default 1,000,000)")
    parser.add_argument("--rfcs", default=None, help="comma-separated RFC counts (default 2000,10000)")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args(argv)
    cis = args.cis or (100_000 if args.quick else 1_000_000)
    counts = [int(s) for s in (args.rfcs or ("2000" if args.quick else "2000,10000")).split(",") if s.strip()]

    print("$ python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]))
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}, seed {args.seed}{', quick' if args.quick else ''}"
    )
    log(f"synthesizing {cis:,} CIs")
    db = graph_bench.synthesize(cis, args.seed)
    load_ms, index = timed(
        lambda: GraphIndex.from_arrays(db.node_ids, db.tenants, db.rel_ids, db.sources, db.targets, db.codes)
    )
    print(
        f"graph: {len(db.node_ids):,} CIs, {len(db.rel_ids):,} relationships, "
        f"{len(np.unique(db.tenants)) - 1} customers + provider; GraphIndex.from_arrays {fmt_ms(load_ms)} ms"
    )
    print(
        f"RFCs: 3 affected CIs each ({PROVIDER_SHARE:.0%} provider changes, one on the core switch), impact "
        f"downstream to depth {args.depth}; windows of 1-8 h within March 2026, {WEEKEND_SHARE:.0%} in weekend "
        "windows (Fri 20:00 - Mon 06:00), the rest on weekday nights"
    )
    print(
        "find_conflicts = the conflict step only: windows, sort, incidence matrix, sparse product, window "
        f"filter, shared-CI lists (<= {MAX_SHARED} per pair); the impacted sets are computed before and "
        "timed on their own row"
    )
    print(flush=True)
    results = []
    t0 = time.perf_counter()
    for n in counts:
        results.append(bench_size(index, db, n, args.depth, args.seed))
        gc.collect()
    print_table(results)
    print(f"\ntotal run time {time.perf_counter() - t0:,.0f} s (after building the graph)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
