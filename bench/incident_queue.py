"""The engineer's incident queue at scale: IncidentService.queue and the /incidents page.

    python bench/incident_queue.py [--incidents 50000] [--closed 50000] [--calls 200] [--quick]

For a fresh SQLite database (and a fresh PostgreSQL database too when KEEL_BENCH_POSTGRES_URL is
set: the bench creates a scratch database on that server and drops it afterwards, so the URL's
role needs CREATEDB):

- `keel migrate`, and `keel user add` for the engineer whose queue is timed;
- bulk SQL: 20 customers with 250 CIs each, 60 more engineers, each supporting the CIs of a few
  customers (the engineer's "team" is who supports the same CIs: unassigned incidents plus those
  on CIs the engineer supports); --incidents open incidents spread over the customers, all
  active statuses and priorities, raised over the last 30 days with their due times, 30 %
  unassigned and the rest spread over the engineers (the timed engineer gets a usual share),
  one or two CIs each; plus --closed closed incidents (history the queue must skip);
- `IncidentService.queue` for the engineer, scope mine / team / all, first page of 100,
  --calls calls each: server time p50/p95 (in process, no HTTP);
- the /incidents page (each tab): its handler and template called in process, as the server
  runs them minus HTTP: p50/p95 over --calls / 4 renders;
- EXPLAIN (QUERY PLAN on SQLite, ANALYZE on PostgreSQL) of the SQL the queue runs per scope.

Target: the queue with 50,000 open incidents <= 100 ms server time. --quick (for CI): 5,000
open and 5,000 closed incidents, 40 calls. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CUSTOMERS = 20
CIS_PER_CUSTOMER = 250
ENGINEERS = 60
CUSTOMERS_PER_ENGINEER = 3
UNASSIGNED_SHARE = 0.30
PASSWORD = "bench-password"
ACTIVE = (
    ("new", 0.15),
    ("open", 0.45),
    ("hold_research", 0.10),
    ("hold_resolution", 0.12),
    ("pending_fix", 0.08),
    ("rfc_submitted", 0.10),
)
PRIORITIES = (("critical", 0.05), ("high", 0.20), ("normal", 0.50), ("low", 0.25))
RESPONSE = {"critical": 1, "high": 2, "normal": 24, "low": 48}  # hours, near enough for data
RESOLUTION = {"critical": 4, "high": 8, "normal": 72, "low": 120}


def env_for(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "KEEL_DATABASE_URL": url,
        "KEEL_SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
        "KEEL_SECURE_COOKIES": "false",
        "KEEL_SQLITE_SYNCHRONOUS": "NORMAL",
        "KEEL_SCHEDULER": "off",
        "KEEL_PASSWORD_HASH": "fast",
    }


def keel(url: str, *args: str, stdin: str = "") -> None:
    subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        input=stdin,
        text=True,
        check=True,
        env=env_for(url),
        cwd=ROOT,
        capture_output=True,
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def summary(times: list[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(times) * 1000,
        "p95": pct(times, 0.95) * 1000,
        "max": max(times) * 1000,
    }


# ------------------------------------------------------------------ the data


async def load(open_count: int, closed_count: int, seed: int) -> dict[str, Any]:
    """Customers, CIs, engineers and their CIs, incidents: straight into the tables."""
    from cmdb import db
    from cmdb import repository as repo

    engine = repo.engine()
    rng = random.Random(seed)
    provider = await repo.provider()
    assert provider is not None
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    started = time.perf_counter()
    bench = (await db.fetch(engine, "SELECT id FROM person WHERE username = ?", "bench"))[0]["id"]

    async with db.atomic(engine):
        tenants = []
        for n in range(CUSTOMERS):
            tenants.append(
                await repo.insert_customer(
                    {
                        "key": f"C{n:03d}",
                        "name": f"Customer {n}",
                        "created_at": now,
                        "updated_at": now,
                        "timezone": rng.choice(["UTC", "Europe/London", "America/New_York"]),
                        "calendar": "{}",
                        "sla": "{}",
                    }
                )
            )
        ci_rows = []
        cis_of: dict[int, list[int]] = {}
        ci_id = 0
        for tenant in tenants:
            for _ in range(CIS_PER_CUSTOMER):
                ci_id += 1
                ci_rows.append((ci_id, tenant, f"ci-{ci_id}", "server", "live", "medium", "", "{}", 1, now, now))
                cis_of.setdefault(tenant, []).append(ci_id)
        for start in range(0, len(ci_rows), 5000):
            await db.executemany(
                engine,
                "INSERT INTO ci (id, tenant, name, ci_class, status, criticality, description, attributes, version, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ci_rows[start : start + 5000],
            )
        people = [
            (f"eng{n:03d}", f"Engineer {n}", provider.id, '["engineer"]', "[]", True, 1, now) for n in range(ENGINEERS)
        ]
        await db.executemany(
            engine,
            "INSERT INTO person (username, name, tenant, roles, expertise, active, version, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            people,
        )
        engineers = [
            int(row["id"]) for row in await db.fetch(engine, "SELECT id FROM person WHERE username LIKE 'eng%'")
        ]
        engineers.append(int(bench))
        support = []
        for person in engineers:
            for tenant in rng.sample(tenants, CUSTOMERS_PER_ENGINEER):
                support += [(ci, person, "support") for ci in cis_of[tenant][:50]]
        for start in range(0, len(support), 5000):
            await db.executemany(
                engine, "INSERT INTO ci_support (ci, person, role) VALUES (?, ?, ?)", support[start : start + 5000]
            )
        if not db.is_sqlite(engine):
            await engine.run_ddl("SELECT setval('ci_id_seq', (SELECT max(id) FROM ci))")

    statuses = [s for s, _ in ACTIVE]
    status_weights = [w for _, w in ACTIVE]
    priorities = [p for p, _ in PRIORITIES]
    priority_weights = [w for _, w in PRIORITIES]
    incident_rows, link_rows = [], []
    year = now.year - 1  # last year's keys: new incidents (this year's sequence) never collide
    total = open_count + closed_count
    mine = 0
    for n in range(total):
        incident_id = n + 1
        tenant = tenants[n % len(tenants)]
        closed = n >= open_count
        status = "closed" if closed else rng.choices(statuses, status_weights)[0]
        priority = rng.choices(priorities, priority_weights)[0]
        created = now - dt.timedelta(minutes=rng.randint(5, 30 * 24 * 60))
        response_due = created + dt.timedelta(hours=RESPONSE[priority])
        resolution_due = created + dt.timedelta(hours=RESOLUTION[priority])
        responded = None if status == "new" else created + dt.timedelta(minutes=rng.randint(1, 90))
        resolved = created + dt.timedelta(hours=rng.randint(1, 100)) if closed else None
        if closed:
            next_due = None
        elif responded is None:
            next_due = response_due
        else:
            next_due = resolution_due
        assignee = None if rng.random() < UNASSIGNED_SHARE else rng.choice(engineers)
        mine += int(assignee == bench and not closed)
        waiting = "customer" if status == "hold_resolution" else None
        incident_rows.append(
            (
                incident_id,
                f"INC-{year}-{incident_id:06d}",
                tenant,
                f"Bench incident {incident_id}: service degraded",
                status,
                priority,
                "manual",
                created,
                created,
                responded,
                responded,
                resolved,
                resolved,
                response_due,
                resolution_due,
                next_due,
                assignee,
                waiting,
                1,
            )
        )
        pool = cis_of[tenant]
        for ci in rng.sample(pool, rng.choice((1, 1, 2))):
            link_rows.append((incident_id, ci))
    async with db.atomic(engine):
        for start in range(0, len(incident_rows), 2_000):
            await db.executemany(
                engine,
                "INSERT INTO incident (id, key, tenant, title, status, priority, source, created_at, updated_at, "
                "acknowledged_at, responded_at, resolved_at, closed_at, response_due, resolution_due, next_due, "
                "assignee, waiting_for, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                incident_rows[start : start + 2_000],
            )
        for start in range(0, len(link_rows), 5_000):
            await db.executemany(
                engine, "INSERT INTO incident_ci (incident, ci) VALUES (?, ?)", link_rows[start : start + 5_000]
            )
        if not db.is_sqlite(engine):
            await engine.run_ddl("SELECT setval('incident_id_seq', (SELECT max(id) FROM incident))")
    # Statistics, and on PostgreSQL the visibility map too: autovacuum keeps a live database
    # so, and without it PostgreSQL cannot answer the queue's counts from the index alone.
    await engine.run_ddl("ANALYZE" if db.is_sqlite(engine) else "VACUUM ANALYZE")
    return {
        "seconds": time.perf_counter() - started,
        "open": open_count,
        "closed": closed_count,
        "mine": mine,
        "engineers": len(engineers),
        "cis": len(ci_rows),
    }


# ------------------------------------------------------------------ the measurements


async def bench_actor() -> Any:
    from cmdb import repository as repo
    from cmdb.graphcache import GraphCache
    from cmdb.models import Actor
    from cmdb.services import CMDBService, SystemClock, system_actor

    provider = await repo.provider()
    assert provider is not None
    cmdb = CMDBService(SystemClock(), GraphCache())
    person = await cmdb.get_person(system_actor(provider), "bench")
    return Actor(person.id, person.username, person.name, person.tenant_id, provider.id, person.roles)


async def queue_times(calls: int) -> dict[str, Any]:
    from web.app import build_services
    from web.settings import Settings

    services = build_services(Settings(secret_key="bench-secret-key-not-for-production-0123456789"))
    incidents = services["incidents"]
    actor = await bench_actor()
    found: dict[str, Any] = {}
    for scope in ("mine", "team", "all"):
        for _ in range(3):  # warm the connections and the statement caches
            await incidents.queue(actor, scope=scope, limit=100)
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            items, total = await incidents.queue(actor, scope=scope, limit=100)
            times.append(time.perf_counter() - started)
        found[scope] = {**summary(times), "total": total, "listed": len(items), "calls": calls}
    return found


async def page_times(calls: int) -> dict[str, Any]:
    """The /incidents handler and its template, called in process as the server runs them
    (without HTTP: Litestar's test client would open the app's PostgreSQL pool on another
    event loop than this one, litestar #1920)."""
    from web.app import build_services, create_app
    from web.controllers.pages_incident import incident_queue
    from web.settings import Settings

    settings = Settings(secret_key="bench-secret-key-not-for-production-0123456789", secure_cookies=False)
    app = create_app(settings)
    services = build_services(settings)
    engine = app.template_engine
    assert engine is not None
    actor = await bench_actor()

    async def render(tab: str) -> str:
        response = await incident_queue.fn(
            incidents=services["incidents"], cmdb=services["cmdb"], actor=actor, tab=tab, customer=None, offset=0
        )
        template = engine.get_template(response.template_name)
        return str(template.render(**response.context, csrf_token=lambda: "bench-token"))

    found: dict[str, Any] = {}
    for tab in ("mine", "team", "all"):
        for _ in range(2):
            html = await render(tab)
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            html = await render(tab)
            times.append(time.perf_counter() - started)
        found[tab] = {**summary(times), "bytes": len(html.encode()), "calls": calls}
    return found


async def explain() -> list[str]:
    """The plans of the SQL that IncidentService.queue runs for each scope, caught as it runs
    (so they follow incident/repository.py as it changes)."""
    from cmdb import db
    from cmdb import repository as repo
    from web.app import build_services
    from web.settings import Settings

    services = build_services(Settings(secret_key="bench-secret-key-not-for-production-0123456789"))
    actor = await bench_actor()
    engine = repo.engine()
    original = db.fetch
    caught: list[tuple[str, tuple[Any, ...]]] = []

    async def spy(on: Any, sql: str, *args: Any) -> list[dict[str, Any]]:
        caught.append((sql, args))
        return await original(on, sql, *args)

    lines = []
    for scope in ("mine", "team", "all"):
        caught.clear()
        db.fetch = spy  # type: ignore[assignment]
        try:
            await services["incidents"].queue(actor, scope=scope, limit=100)
        finally:
            db.fetch = original  # type: ignore[assignment]
        for sql, args in caught:
            if "FROM incident i" not in sql:
                continue
            label = f"{scope} {'count' if 'COUNT(' in sql else 'page'}"
            if db.is_sqlite(engine):
                rows = await db.fetch(engine, "EXPLAIN QUERY PLAN " + sql, *args)
                lines += [f"{label}: {row['detail']}" for row in rows]
            else:
                rows = await db.fetch(engine, "EXPLAIN ANALYZE " + sql, *args)
                lines += [f"{label}: {next(iter(row.values()))}" for row in rows]
    return lines


async def prepare(open_count: int, closed_count: int, calls: int) -> dict[str, Any]:
    """The in-process part, in a process of its own (Piccolo binds the engine at import)."""
    from cmdb import repository as repo

    engine: Any = repo.engine()
    info = await load(open_count, closed_count, seed=5)
    pooled = engine.engine_type == "postgres"
    if pooled:  # as `keel serve` runs: a pool, not a connection per query
        await engine.start_connection_pool(min_size=1, max_size=4)
    try:
        info["queue"] = await queue_times(calls)
        info["page"] = await page_times(max(calls // 4, 5))
        info["plan"] = await explain()
    finally:
        if pooled:
            await engine.close_connection_pool()
    return info


def bench_database(label: str, url: str, args: argparse.Namespace) -> list[str]:
    keel(url, "migrate")
    keel(url, "user", "add", "bench", "--role", "engineer", stdin=PASSWORD + "\n")
    prepared = subprocess.run(
        [
            sys.executable,
            __file__,
            "--prepare",
            "--incidents",
            str(args.incidents),
            "--closed",
            str(args.closed),
            "--calls",
            str(args.calls),
        ],
        env=env_for(url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if prepared.returncode != 0:
        raise SystemExit(f"{label}: preparing failed:\n{prepared.stderr[-4000:]}")
    info = json.loads(prepared.stdout.strip().splitlines()[-1])
    lines = [
        f"{label}: {info['open']:,} open + {info['closed']:,} closed incidents over {CUSTOMERS} customers, "
        f"{info['cis']:,} CIs, {info['engineers']} engineers, written in {info['seconds']:.1f} s; "
        f"the engineer has {info['mine']:,} assigned"
    ]
    for scope, q in info["queue"].items():
        lines.append(
            f"  IncidentService.queue scope={scope:<4} ({q['calls']} calls, page of {q['listed']} of {q['total']:,}): "
            f"p50 {q['p50']:.1f} ms, p95 {q['p95']:.1f} ms, max {q['max']:.1f} ms; target <= 100 ms"
        )
    for tab, p in info["page"].items():
        lines.append(
            f"  /incidents?tab={tab:<4} handler + template in process ({p['calls']} renders, {p['bytes']:,} bytes): "
            f"p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, max {p['max']:.1f} ms"
        )
    lines += [f"  plan {line[:160]}{'...' if len(line) > 160 else ''}" for line in info["plan"]]
    return lines


# ------------------------------------------------------------------ PostgreSQL scratch database


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def scratch_postgres(url: str) -> tuple[str, str]:
    name = f"keel_bench_incidents_{os.getpid()}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}")), name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=50_000, help="open incidents")
    parser.add_argument("--closed", type=int, default=50_000, help="closed incidents besides")
    parser.add_argument("--calls", type=int, default=200, help="queue calls to time per scope")
    parser.add_argument("--quick", action="store_true", help="5,000 open and 5,000 closed, 40 calls")
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        print(json.dumps(asyncio.run(prepare(args.incidents, args.closed, args.calls))))
        return 0
    if args.quick or os.environ.get("KEEL_BENCH_QUICK"):
        args.incidents, args.closed, args.calls = min(args.incidents, 5_000), min(args.closed, 5_000), 40
    print("$ " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"machine: {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="keel-bench-incidents-") as workdir:
        print("\n".join(bench_database("SQLite", str(Path(workdir) / "keel.sqlite"), args)), flush=True)
        pg_url = os.environ.get("KEEL_BENCH_POSTGRES_URL")
        if pg_url:
            scratch, name = scratch_postgres(pg_url)
            try:
                print("\n".join(bench_database("PostgreSQL", scratch, args)), flush=True)
            finally:
                asyncio.run(_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
