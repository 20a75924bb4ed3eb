"""The monthly customer report at scale: the data, the page and the PDF.

    python bench/report.py [--incidents 2000000] [--month-incidents 10000] [--rfcs 2000] [--calls 20] [--quick]

For a fresh SQLite database (and a fresh PostgreSQL database too when KEEL_BENCH_POSTGRES_URL is
set: the bench creates a scratch database on that server and drops it afterwards, so the URL's
role needs CREATEDB):

- `keel migrate`, and `keel user add` for the service manager who reads the report;
- bulk SQL: 20 customers with 200 CIs each; --incidents incidents in all, of which the timed
  customer (BIG, America/New_York) has --month-incidents raised in last month (all priorities,
  answered and fixed mostly in time, one CI each, time logged on each) and the rest spread over
  the other customers and the previous 24 months; 2 monitoring alerts per month incident;
  --rfcs RFCs of BIG in last month with their history (60 % completed in the month, the rest
  open in various states) plus older ones; a few problems;
- ReportService.monthly (computed live, the report not issued yet): p50/p95 over --calls;
- the page /reports/monthly/BIG/YYYY-MM (its handler and template) and the PDF .pdf (its
  handler), in process as the server runs them;
- the frozen read once the report is issued.

Targets: data <= 50 ms, page <= 300 ms, PDF <= 2 s. --quick (for CI): 50,000 incidents in all,
the same month volume, 5 calls. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
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
CIS_PER_CUSTOMER = 200
PASSWORD = "bench-password"
PRIORITIES = (("critical", 0.05), ("high", 0.20), ("normal", 0.50), ("low", 0.25))
RESPONSE = {"critical": 1, "high": 2, "normal": 24, "low": 48}  # hours
RESOLUTION = {"critical": 4, "high": 8, "normal": 72, "low": 120}
OPEN_RFC_STATES = ("draft", "submitted", "authorized", "in_review", "approved", "scheduled", "implementing")
CHUNK = 5000


def env_for(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "KEEL_DATABASE_URL": url,
        "KEEL_SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
        "KEEL_SECURE_COOKIES": "false",
        "KEEL_SQLITE_SYNCHRONOUS": "OFF",
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
    return {"p50": statistics.median(times) * 1000, "p95": pct(times, 0.95) * 1000, "max": max(times) * 1000}


def last_month(now: dt.datetime) -> tuple[str, dt.datetime, dt.datetime]:
    """Last month in New York as (YYYY-MM, start, end) UTC instants."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("America/New_York")
    first_this = now.astimezone(tz).date().replace(day=1)
    first_last = (first_this - dt.timedelta(days=1)).replace(day=1)

    def instant(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(dt.UTC)

    return f"{first_last:%Y-%m}", instant(first_last), instant(first_this)


# ------------------------------------------------------------------ the data


async def _insert(engine: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
    from cmdb import db

    for start in range(0, len(rows), CHUNK):
        await db.executemany(engine, sql, rows[start : start + CHUNK])


async def load(total: int, month_incidents: int, rfc_count: int, seed: int) -> dict[str, Any]:
    from cmdb import db
    from cmdb import repository as repo

    engine = repo.engine()
    ts = repo.bulk_timestamp
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    month, start, end = last_month(now)
    span = (end - start).total_seconds()
    started = time.perf_counter()

    async with db.atomic(engine):
        tenants = []
        for n in range(CUSTOMERS):
            big = n == 0
            tenants.append(
                await repo.insert_customer(
                    {
                        "key": "BIG" if big else f"C{n:03d}",
                        "name": "Big Customer Ltd" if big else f"Customer {n}",
                        "created_at": now,
                        "updated_at": now,
                        "timezone": "America/New_York" if big else "UTC",
                        "holiday_region": "US" if big else None,
                        "calendar": json.dumps({"timezone": "America/New_York", "holiday_region": "US"} if big else {}),
                        "sla": "{}",
                    }
                )
            )
        big_tenant = tenants[0]
        ci_rows: list[tuple[Any, ...]] = []
        cis_of: dict[int, list[int]] = {}
        ci_id = 0
        for tenant in tenants:
            for _ in range(CIS_PER_CUSTOMER):
                ci_id += 1
                ci_rows.append(
                    (ci_id, tenant, f"ci-{ci_id}", "server", "live", "medium", "", "{}", 1, ts(now), ts(now))
                )
                cis_of.setdefault(tenant, []).append(ci_id)
        await _insert(
            engine,
            "INSERT INTO ci (id, tenant, name, ci_class, status, criticality, description, attributes, version, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ci_rows,
        )
        if not db.is_sqlite(engine):
            await engine.run_ddl("SELECT setval('ci_id_seq', (SELECT max(id) FROM ci))")
        engineer = int((await db.fetch(engine, "SELECT id FROM person WHERE username = ?", "bench"))[0]["id"])

    priorities = [p for p, _ in PRIORITIES]
    weights = [w for _, w in PRIORITIES]
    incident_rows: list[tuple[Any, ...]] = []
    link_rows: list[tuple[Any, ...]] = []
    time_rows: list[tuple[Any, ...]] = []
    alert_rows: list[tuple[Any, ...]] = []
    year = now.year - 3  # keys from an old year's sequence: new incidents never collide
    history_span = 24 * 30 * 86400
    incident_sql = (
        "INSERT INTO incident (id, key, tenant, title, status, priority, source, created_at, updated_at, "
        "acknowledged_at, responded_at, resolved_at, closed_at, response_due, resolution_due, reopen_count, "
        "closure, pauses, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '[]', 1)"
    )
    for n in range(total):
        if len(incident_rows) >= 100_000:  # written in batches: two million rows never sit in memory
            async with db.atomic(engine):
                await _insert(engine, incident_sql, incident_rows)
            incident_rows.clear()
        incident_id = n + 1
        in_month = n < month_incidents
        tenant = big_tenant if in_month else tenants[1 + n % (CUSTOMERS - 1)]
        if in_month:
            created = start + dt.timedelta(seconds=rng.uniform(0, span - 3600))
        else:
            created = now - dt.timedelta(seconds=rng.uniform(3600, history_span))
        priority = rng.choices(priorities, weights)[0]
        response_due = created + dt.timedelta(hours=RESPONSE[priority])
        resolution_due = created + dt.timedelta(hours=RESOLUTION[priority])
        responded = created + dt.timedelta(minutes=rng.randint(1, int(RESPONSE[priority] * 70)))
        fixed = created + dt.timedelta(hours=rng.uniform(0.5, RESOLUTION[priority] * 1.15))
        resolved = fixed if fixed <= now else None
        closure = (
            json.dumps({"actions_taken": f"Fixed the cause of incident {incident_id}"})
            if in_month and resolved
            else None
        )
        incident_rows.append(
            (
                incident_id,
                f"INC-{year}-{incident_id:07d}",
                tenant,
                f"Service degraded on ci {incident_id % 97}",
                "closed" if resolved else "open",
                priority,
                "alert" if n % 3 == 0 else "manual",
                ts(created),
                ts(created),
                ts(responded),
                ts(responded),
                ts(resolved) if resolved else None,
                ts(resolved) if resolved else None,
                ts(response_due),
                ts(resolution_due),
                int(rng.random() < 0.03),
                closure,
            )
        )
        if in_month:
            ci = cis_of[big_tenant][n % 40 if n % 5 == 0 else rng.randrange(CIS_PER_CUSTOMER)]
            link_rows.append((incident_id, ci))
            time_rows.append((incident_id, engineer, rng.randint(10, 180), ts(created + dt.timedelta(hours=1)), ""))
            for k in range(2):
                observed = created - dt.timedelta(minutes=5 * (k + 1))
                outcome = "opened" if k == 0 and n % 3 == 0 else rng.choice(("ignored", "joined"))
                alert_rows.append(
                    (tenant, ci, "cpu_percent", "95", ts(observed), ts(observed), outcome != "ignored", outcome)
                )
    async with db.atomic(engine):
        await _insert(engine, incident_sql, incident_rows)
        await _insert(engine, "INSERT INTO incident_ci (incident, ci) VALUES (?, ?)", link_rows)
        await _insert(
            engine, "INSERT INTO incident_time (incident, person, minutes, at, note) VALUES (?, ?, ?, ?, ?)", time_rows
        )
        await _insert(
            engine,
            "INSERT INTO alert (tenant, ci, metric, value, observed_at, received_at, breached, outcome) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            alert_rows,
        )
        if not db.is_sqlite(engine):
            await engine.run_ddl("SELECT setval('incident_id_seq', (SELECT max(id) FROM incident))")
    del incident_rows

    rfc_rows, history_rows = [], []
    rfc_total = rfc_count + rfc_count // 2  # plus older, finished ones
    for n in range(rfc_total):
        rfc_id = n + 1
        key = f"RFC-{year}-{rfc_id:05d}"
        in_month = n < rfc_count
        if in_month:
            created = start + dt.timedelta(seconds=rng.uniform(0, span / 2))
            completed = n % 5 < 3
            events = [(created, "created", "draft"), (created + dt.timedelta(hours=2), "submitted", "submitted")]
            if completed:
                events.append((created + dt.timedelta(days=rng.uniform(1, 10)), "completed", "completed"))
            else:
                state = OPEN_RFC_STATES[n % len(OPEN_RFC_STATES)]
                events.append((created + dt.timedelta(days=1), state, state))
        else:
            created = start - dt.timedelta(days=rng.uniform(40, 400))
            events = [(created, "created", "draft"), (created + dt.timedelta(days=3), "completed", "completed")]
        rfc_rows.append(
            (rfc_id, key, big_tenant, f"Planned change {rfc_id}", events[-1][2], ts(events[0][0]), ts(events[-1][0]))
        )
        for at, action, state in events:
            history_rows.append(
                (big_tenant, "rfc", rfc_id, action, "bench", ts(at), json.dumps({"state": state}), key, False, "[]", "")
            )
    async with db.atomic(engine):
        await _insert(
            engine,
            "INSERT INTO rfc (id, key, tenant, title, type, state, priority, origin, need, desired_result, "
            "affected_people, plan, backout_plan, release_requirements, impact_frozen, impact_adjustments, "
            "post_implementation_review_required, emergency_reason, customer_approval_required, patch_components, "
            "vulnerability, patch_description, testing_done, version, created_at, updated_at) VALUES "
            "(?, ?, ?, ?, 'normal', ?, 'medium', 'internal', '', '', '[]', '', '', '[]', false, '[]', false, '', "
            "false, '[]', '', '', '', 1, ?, ?)",
            rfc_rows,
        )
        await _insert(
            engine,
            'INSERT INTO history (tenant, entity, entity_id, action, actor_name, at, "after", rfc, unauthorized, '
            "unauthorized_fields, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            history_rows,
        )
        if not db.is_sqlite(engine):
            await engine.run_ddl("SELECT setval('rfc_id_seq', (SELECT max(id) FROM rfc))")
    if db.is_sqlite(engine):
        await db.fetch(engine, "ANALYZE")
    else:
        # VACUUM too: it sets the visibility map, so index-only scans need not visit the heap,
        # and autovacuum does not start on the fresh millions of rows in the middle of the timing.
        await engine.run_ddl("VACUUM ANALYZE")
    return {
        "month": month,
        "incidents": total,
        "month_incidents": month_incidents,
        "rfcs": rfc_count,
        "alerts": len(alert_rows),
        "seconds": time.perf_counter() - started,
    }


# ------------------------------------------------------------------ the timings


async def timings(month: str, calls: int, pdf_out: str | None) -> dict[str, Any]:
    """The service, and the page and PDF handlers with their template, called in process as
    the server runs them (without HTTP: Litestar's test client would open the app's PostgreSQL
    pool on another event loop than this one, litestar #1920)."""
    from cmdb import repository as repo
    from cmdb.services import system_actor
    from web.app import build_services, create_app
    from web.controllers.pages_reports import monthly_report_page
    from web.settings import Settings

    provider = await repo.provider()
    assert provider is not None
    actor = system_actor(provider)
    settings = Settings(secret_key="bench-secret-key-not-for-production-0123456789", secure_cookies=False)
    engine = create_app(settings).template_engine
    assert engine is not None
    reports = build_services(settings)["reports"]
    data_times = []
    report = None
    for _ in range(calls):
        t0 = time.perf_counter()
        report = await reports.monthly(actor, "BIG", month)
        data_times.append(time.perf_counter() - t0)
    assert report is not None
    out: dict[str, Any] = {
        "data": summary(data_times),
        "figures": {
            "incidents": report.data["incidents"]["total"],
            "open_rfcs": report.data["rfcs"]["counts"]["open_at_end"],
            "completed_rfcs": report.data["rfcs"]["counts"]["completed"],
            "alerts": report.data["health"]["alerts"]["received"],
            "response": report.data["sla"]["response"]["percent"],
            "json_bytes": len(json.dumps(report.as_json())),
        },
    }

    async def page() -> str:
        response = await monthly_report_page.fn(reports=reports, actor=actor, customer="BIG", month=month)
        template = engine.get_template(response.template_name)
        return str(template.render(**response.context, csrf_token=lambda: "bench-token"))

    async def pdf() -> bytes:
        response = await monthly_report_page.fn(reports=reports, actor=actor, customer="BIG", month=f"{month}.pdf")
        return bytes(response.content)

    page_times, pdf_times = [], []
    html, content = "", b""
    for _ in range(max(calls // 2, 3)):
        t0 = time.perf_counter()
        html = await page()
        page_times.append(time.perf_counter() - t0)
    for _ in range(max(calls // 5, 2)):
        t0 = time.perf_counter()
        content = await pdf()
        pdf_times.append(time.perf_counter() - t0)
    if pdf_out:
        await asyncio.to_thread(Path(pdf_out).write_bytes, content)
    out["page"] = {**summary(page_times), "bytes": len(html.encode())}
    out["pdf"] = {**summary(pdf_times), "bytes": len(content)}
    await reports.issue(actor, "BIG", month)
    frozen_times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        await reports.monthly(actor, "BIG", month)
        frozen_times.append(time.perf_counter() - t0)
    out["frozen"] = summary(frozen_times)
    return out


async def prepare(args: argparse.Namespace) -> dict[str, Any]:
    """The in-process part, in a process of its own (Piccolo binds the engine at import)."""
    from cmdb import repository as repo

    engine: Any = repo.engine()
    info = await load(args.incidents, args.month_incidents, args.rfcs, seed=7)
    # Loading leaves the collector a full collection due (its rows were promoted to the oldest
    # generation): settle it now, or it lands, 30-130 ms long, in one of the first timed calls.
    gc.collect()
    pooled = engine.engine_type == "postgres"
    if pooled:
        await engine.start_connection_pool(min_size=1, max_size=4)
    try:
        info.update(await timings(info["month"], args.calls, args.pdf_out))
    finally:
        if pooled:
            await engine.close_connection_pool()
    return info


def bench_database(label: str, url: str, args: argparse.Namespace) -> list[str]:
    keel(url, "migrate")
    keel(url, "user", "add", "bench", "--role", "service_manager", stdin=PASSWORD + "\n")
    command = [sys.executable, __file__, "--prepare", "--incidents", str(args.incidents)]
    command += ["--month-incidents", str(args.month_incidents), "--rfcs", str(args.rfcs), "--calls", str(args.calls)]
    if args.pdf_out:
        command += ["--pdf-out", args.pdf_out]
    prepared = subprocess.run(command, env=env_for(url), cwd=ROOT, capture_output=True, text=True, check=False)
    if prepared.returncode != 0:
        raise SystemExit(f"{label}: preparing failed:\n{prepared.stderr[-4000:]}")
    info = json.loads(prepared.stdout.strip().splitlines()[-1])
    f = info["figures"]
    lines = [
        f"{label}: {info['incidents']:,} incidents, BIG has {info['month_incidents']:,} in {info['month']} "
        f"with {info['alerts']:,} alerts and {info['rfcs']:,} RFCs; written in {info['seconds']:.1f} s",
        f"  report figures: {f['incidents']:,} incidents, {f['open_rfcs']:,} RFCs open at month end, "
        f"{f['completed_rfcs']:,} completed, {f['alerts']:,} alerts, {f['response']} % answered in time; "
        f"JSON {f['json_bytes']:,} bytes",
    ]
    for name, target in (("data", "50 ms"), ("page", "300 ms"), ("pdf", "2000 ms"), ("frozen", "50 ms")):
        t = info[name]
        extra = f", {t['bytes']:,} bytes" if "bytes" in t else ""
        what = {
            "data": "ReportService.monthly, computed live",
            "page": "page /reports/monthly/BIG/M (handler + template)",
            "pdf": "PDF /reports/monthly/BIG/M.pdf (handler)",
            "frozen": "ReportService.monthly, the issued copy",
        }[name]
        lines.append(
            f"  {what}: p50 {t['p50']:.1f} ms, p95 {t['p95']:.1f} ms, max {t['max']:.1f} ms{extra}; target <= {target}"
        )
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
    name = f"keel_bench_report_{os.getpid()}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}")), name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=2_000_000, help="incidents in the whole database")
    parser.add_argument("--month-incidents", type=int, default=10_000, help="the customer's incidents in the month")
    parser.add_argument("--rfcs", type=int, default=2_000, help="the customer's RFCs in the month")
    parser.add_argument("--calls", type=int, default=20, help="timed calls of the data (fewer for page and PDF)")
    parser.add_argument("--quick", action="store_true", help="50,000 incidents in all, 5 calls")
    parser.add_argument("--pdf-out", help="write the last PDF here, to look at")
    parser.add_argument("--keep", help="build the SQLite database at this path and keep it (for profiling)")
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        print(json.dumps(asyncio.run(prepare(args))))
        return 0
    if args.quick or os.environ.get("KEEL_BENCH_QUICK"):
        args.incidents, args.calls = min(args.incidents, 50_000), 5
    args.incidents = max(args.incidents, args.month_incidents)
    print("$ " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"machine: {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="keel-bench-report-") as workdir:
        lines = bench_database("SQLite", args.keep or str(Path(workdir) / "keel.sqlite"), args)
        pg_url = os.environ.get("KEEL_BENCH_POSTGRES_URL")
        if pg_url:
            scratch, name = scratch_postgres(pg_url)
            try:
                lines += bench_database("PostgreSQL", scratch, args)
            finally:
                asyncio.run(_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
