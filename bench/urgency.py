"""Benchmark of the patch urgency evaluation (release.urgency, release.patches).

    python bench/urgency.py [--quick] [--rfcs 50000] [--customers 200] [--runs 3] [--seed N]

Builds a fresh SQLite database in a temporary directory (or uses KEEL_DATABASE_URL when it
names PostgreSQL), runs ``keel migrate``, then writes by bulk SQL:

- ``--customers`` customers (default 200) spread over 12 calendars: New York, Chicago and Los
  Angeles (US holidays), London (GB-ENG), Berlin (DE-BY, 07:45-16:15), Paris (FR), Tokyo (JP,
  09:00-18:00), Sydney (AU-NSW), Kolkata (IN), Sao Paulo (BR), Jerusalem (IL, Sunday to
  Thursday) and UTC with no holidays; one customer in five has its own closure days (so its
  calendar is its own), one in four an SLA override of the patch schedule and at-risk share;
- one CI per customer, and ``--rfcs`` open patch RFCs (default 50,000) spread evenly over the
  customers, in the open RFC states, with every urgency level, their clock start (vendor release
  date, or creation time for one in five) up to 400 days in the past (business-day levels mostly
  within the last 30 days), each touching the customer's CI;
- a release approved for one RFC in ten, so some patches are met.

Then it times, median of ``--runs``:

- the urgency board over everything (``PatchService.board`` as provider staff, first page of
  100, which evaluates every live patch to sort them by due time), and split into its parts:
  the raw reads (patch columns, customers, release approvals) and the rule evaluation;
- ``PatchService.urgency_for_rfcs`` over all RFC ids (chunked reads by id);
- one customer's compliance for the current month.

``--quick``: 5,000 RFCs. Timings are printed, never asserted (target: the board over 50,000 open
patch RFCs across 200 customers in 2 s or less).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CALENDARS: list[dict[str, Any]] = [
    {"timezone": "America/New_York", "holiday_region": "US"},
    {"timezone": "America/Chicago", "holiday_region": "US"},
    {"timezone": "America/Los_Angeles", "holiday_region": "US"},
    {"timezone": "Europe/London", "holiday_region": "GB-ENG", "closes": "17:30"},
    {"timezone": "Europe/Berlin", "holiday_region": "DE-BY", "opens": "07:45", "closes": "16:15"},
    {"timezone": "Europe/Paris", "holiday_region": "FR"},
    {"timezone": "Asia/Tokyo", "holiday_region": "JP", "closes": "18:00"},
    {"timezone": "Australia/Sydney", "holiday_region": "AU-NSW", "opens": "08:30"},
    {"timezone": "Asia/Kolkata", "holiday_region": "IN"},
    {"timezone": "America/Sao_Paulo", "holiday_region": "BR"},
    {"timezone": "Asia/Jerusalem", "holiday_region": "IL", "working_days": [7, 1, 2, 3, 4]},
    {"timezone": "UTC"},
]
LEVELS = (
    ("critical", 0.15),
    ("important", 0.25),
    ("moderate", 0.25),
    ("low", 0.15),
    ("service_release", 0.12),
    ("major_revision", 0.08),
)
OPEN_STATES = ("draft", "submitted", "needs_information", "authorized", "in_review", "approved", "scheduled")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median_time(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.0f} ms (min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f})"


async def build(rfcs: int, customers: int, seed: int) -> dict[str, Any]:
    from cmdb import db
    from cmdb import repository as repo

    engine = repo.engine()
    rng = random.Random(seed)
    provider = await repo.provider()
    assert provider is not None
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    year = now.year - 1  # keys of last year: never collide with anything made later
    customer_rows, ci_rows = [], []
    for n in range(customers):
        calendar = dict(CALENDARS[n % len(CALENDARS)])
        if n % 5 == 0:
            calendar["closure_days"] = sorted(
                (now.date() - dt.timedelta(days=rng.randint(-200, 400))).isoformat() for _ in range(4)
            )
        sla: dict[str, Any] = {}
        if n % 4 == 0:
            sla = {
                "patch_schedule": {"critical": {"business_days": 2}, "moderate": {"months": 2}},
                "patch_at_risk_share": 0.6,
            }
        customer_rows.append(
            (
                f"B{n:03d}",
                f"Bench customer {n}",
                False,
                calendar["timezone"],
                calendar.get("holiday_region"),
                json.dumps(calendar),
                json.dumps(sla),
                1,
                now,
                now,
            )
        )
    async with db.atomic(engine):
        await db.executemany(
            engine,
            "INSERT INTO customer (key, name, is_provider, timezone, holiday_region, calendar, sla, version, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            customer_rows,
        )
    tenants = [
        row["id"] for row in await db.fetch(engine, "SELECT id FROM customer WHERE id <> ? ORDER BY id", provider.id)
    ]
    for tenant in tenants:
        ci_rows.append((tenant, f"bench-server-{tenant}", "server", "live", "medium", "{}", 1, now, now))
    async with db.atomic(engine):
        await db.executemany(
            engine,
            "INSERT INTO ci (tenant, name, ci_class, status, criticality, attributes, version, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ci_rows,
        )
    ci_of = {row["tenant"]: row["id"] for row in await db.fetch(engine, "SELECT id, tenant FROM ci")}

    levels = rng.choices([lv for lv, _ in LEVELS], weights=[w for _, w in LEVELS], k=rfcs)
    rfc_rows, link_rows, met_rfcs = [], [], []
    for n in range(rfcs):
        rfc_id = n + 1
        tenant = tenants[n % len(tenants)]
        level = levels[n]
        horizon = 30 if level in ("critical", "important") and rng.random() < 0.9 else 400
        start = now - dt.timedelta(seconds=rng.randint(0, horizon * 86400))
        known = rng.random() < 0.8
        rfc_rows.append(
            (
                rfc_id,
                f"RFC-{year}-{rfc_id:05d}",
                tenant,
                f"Bench {level} patch {rfc_id}",
                "normal",
                rng.choice(OPEN_STATES),
                "medium",
                "internal",
                level,
                start if known else None,
                1,
                start if not known else start + dt.timedelta(hours=rng.randint(0, 48)),
                now,
            )
        )
        link_rows.append((rfc_id, ci_of[tenant]))
        if rng.random() < 0.1:
            met_rfcs.append((rfc_id, tenant, start + dt.timedelta(days=rng.randint(1, 20))))
    started = time.perf_counter()
    async with db.atomic(engine):
        for at in range(0, len(rfc_rows), 2_000):
            await db.executemany(
                engine,
                "INSERT INTO rfc (id, key, tenant, title, type, state, priority, origin, urgency, available_at, "
                "version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rfc_rows[at : at + 2_000],
            )
        for at in range(0, len(link_rows), 5_000):
            await db.executemany(engine, "INSERT INTO rfc_ci (rfc, ci) VALUES (?, ?)", link_rows[at : at + 5_000])
        release_rows = [
            (n + 1, f"REL-{year}-{n + 1:05d}", tenant, "Bench release", "approved", approved, 7, 1, approved, approved)
            for n, (_, tenant, approved) in enumerate(met_rfcs)
        ]
        for at in range(0, len(release_rows), 2_000):
            await db.executemany(
                engine,
                "INSERT INTO release (id, key, tenant, title, state, approved_at, watch_days, version, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                release_rows[at : at + 2_000],
            )
        link = [(n + 1, rfc_id, approved) for n, (rfc_id, _, approved) in enumerate(met_rfcs)]
        for at in range(0, len(link), 5_000):
            await db.executemany(
                engine, "INSERT INTO release_rfc (release, rfc, added_at) VALUES (?, ?, ?)", link[at : at + 5_000]
            )
        if not db.is_sqlite(engine):
            await engine.run_ddl("SELECT setval('rfc_id_seq', (SELECT max(id) FROM rfc))")
            await engine.run_ddl("SELECT setval('release_id_seq', (SELECT max(id) FROM release))")
    await engine.run_ddl("ANALYZE")
    return {
        "rfcs": rfcs,
        "customers": len(tenants),
        "calendars": len({row[5] for row in customer_rows}),
        "met": len(met_rfcs),
        "write_seconds": time.perf_counter() - started,
        "tenant": tenants[0],
    }


async def measure(runs: int, tenant: int) -> dict[str, Any]:
    from cmdb import repository as repo
    from cmdb.graphcache import GraphCache
    from cmdb.notifications import NotificationService
    from cmdb.services import CMDBService, SystemClock, system_actor
    from release.patches import PatchService

    clock = SystemClock()
    cmdb = CMDBService(clock, GraphCache())
    service = PatchService(clock, cmdb, NotificationService(clock))
    provider = await repo.provider()
    assert provider is not None
    staff = system_actor(provider)
    started = time.perf_counter()
    await service.board(staff, limit=100)  # cold: builds the calendars' timelines in this process
    cold = time.perf_counter() - started

    board, reads, rules, by_id, compliance = [], [], [], [], []
    states: dict[str, int] = {}
    total = 0
    ids: list[int] = []
    for _ in range(runs):
        started = time.perf_counter()
        rows, total, states = await service.board(staff, limit=100)
        board.append(time.perf_counter() - started)

        started = time.perf_counter()
        patches = await service._patches()
        reads.append(time.perf_counter() - started)
        started = time.perf_counter()
        await service._assess(patches, clock.now())
        rules.append(time.perf_counter() - started)
        ids = [p.rfc_id for p in patches]

        started = time.perf_counter()
        views = await service.urgency_for_rfcs(ids)
        by_id.append(time.perf_counter() - started)
        assert len(views) == len(ids)

        started = time.perf_counter()
        await service.compliance(staff, tenant, None)
        compliance.append(time.perf_counter() - started)
    return {
        "cold": cold,
        "board": board,
        "reads": reads,
        "rules": rules,
        "by_id": by_id,
        "compliance": compliance,
        "total": total,
        "states": states,
        "first_due": rows[0].urgency.due.isoformat() if rows else None,
        "evaluated": len(ids),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5,000 RFCs")
    parser.add_argument("--rfcs", type=int, default=None, help="open patch RFCs (default 50,000)")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args(argv)
    rfcs = args.rfcs or (5_000 if args.quick else 50_000)

    url = os.environ.get("KEEL_DATABASE_URL", "")
    scratch = None
    if not url.startswith("postgres"):
        scratch = tempfile.TemporaryDirectory(prefix="keel-bench-urgency-")
        url = os.path.join(scratch.name, "keel.sqlite")
        os.environ["KEEL_DATABASE_URL"] = url
    os.environ.setdefault("KEEL_SECRET_KEY", "bench-secret")
    os.environ.setdefault("KEEL_SQLITE_SYNCHRONOUS", "NORMAL")
    log(f"keel migrate on {'PostgreSQL' if url.startswith('postgres') else 'SQLite ' + url}")
    subprocess.run(
        [sys.executable, "-m", "web.cli", "migrate"], check=True, env={**os.environ}, cwd=ROOT, capture_output=True
    )

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        from cmdb import repository as repo
        from cmdb.db import KeelSQLiteEngine

        try:
            log(f"writing {rfcs:,} patch RFCs across {args.customers} customers")
            built = await build(rfcs, args.customers, args.seed)
            log("timing")
            return built, await measure(args.runs, built["tenant"])
        finally:
            engine = repo.engine()
            if isinstance(engine, KeelSQLiteEngine):
                await engine.close()

    built, result = asyncio.run(run())
    print(
        f"Patch urgency benchmark  ({platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()})"
    )
    print(f"database: {'PostgreSQL' if url.startswith('postgres') else 'SQLite'}")
    print(
        f"data: {built['rfcs']:,} open patch RFCs, {built['customers']} customers, {built['calendars']} distinct "
        f"calendars, {built['met']:,} met by an approved release (written in {built['write_seconds']:.1f} s)"
    )
    print(
        f"board states: {result['states']}; open patches listed: {result['total']:,}; first due {result['first_due']}"
    )
    print(f"board, first call in the process (cold)    {result['cold'] * 1000:8.0f} ms")
    print(f"board over everything (first 100 by due)   {median_time(result['board'])}")
    print(f"  of which raw reads (RFCs, met times)      {median_time(result['reads'])}")
    print(f"  of which rule evaluation ({result['evaluated']:,})       {median_time(result['rules'])}")
    print(f"urgency_for_rfcs(all {result['evaluated']:,} ids)          {median_time(result['by_id'])}")
    print(f"one customer's compliance, this month     {median_time(result['compliance'])}")
    print("target: board over 50,000 open patch RFCs across 200 customers <= 2000 ms")
    reference = timeit.timeit("sum(range(100))", number=200_000) / 200_000 * 1e6
    print(f"machine check: sum(range(100)) takes {reference:.2f} us (about 0.6 on an idle recent x86 core)")
    if scratch is not None:
        scratch.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
