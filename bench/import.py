"""Benchmark of the bulk import (cmdb.importexport.ImportExportService).

    python bench/import.py [--cis 100000] [--relationships 300000] [--customers 8]
                           [--formats csv,json] [--http] [--seed N] [--profile]

Generates a realistic estate once (several customers; services -> applications -> databases ->
virtual machines -> servers -> clusters, storage and switches, documents; a provider tenant
owning shared switches, SANs and clusters that customers' servers rely on), writes it as a CSV
with a record column and as JSON, then imports each file into a freshly migrated SQLite
database in a temp dir: through ImportExportService directly and, with --http, through
POST /api/import/cis. When KEEL_BENCH_POSTGRES_URL is set (a server where the URL's user may
CREATE DATABASE), the same runs go to throwaway databases created on that server and dropped
afterwards. Each run is a child process on a fresh database, so each gets its own engine from
KEEL_DATABASE_URL the way Keel does.

Prints rows per second and seconds per phase. Never asserts timings: they depend on the machine.
The target on a developer machine is 100,000 CIs + 300,000 relationships in 20 s on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROVIDER_KEY = "PROV"
# Share of each class among a customer's CIs.
CLASS_SHARE = {
    "service": 0.05,
    "application": 0.15,
    "database": 0.08,
    "virtual_machine": 0.30,
    "server": 0.15,
    "cluster": 0.02,
    "storage": 0.03,
    "network_device": 0.05,
    "document": 0.17,
}
PREFIX = {
    "service": "svc",
    "application": "app",
    "database": "db",
    "virtual_machine": "vm",
    "server": "srv",
    "cluster": "clu",
    "storage": "san",
    "network_device": "sw",
    "document": "doc",
}
# (source class, type, target class, share of relationships, share of targets at the provider)
EDGE_RULES = [
    ("service", "depends_on", "application", 0.10, 0.0),
    ("application", "depends_on", "database", 0.10, 0.0),
    ("application", "runs_on", "virtual_machine", 0.14, 0.0),
    ("database", "runs_on", "virtual_machine", 0.06, 0.0),
    ("virtual_machine", "hosted_on", "server", 0.14, 0.0),
    ("virtual_machine", "hosted_on", "cluster", 0.04, 0.3),
    ("server", "member_of", "cluster", 0.06, 0.3),
    ("server", "connected_to", "network_device", 0.12, 0.5),
    ("server", "depends_on", "storage", 0.08, 0.5),
    ("application", "documented_by", "document", 0.10, 0.0),
    ("service", "documented_by", "document", 0.06, 0.0),
]


# --- the estate ----------------------------------------------------------------------------


def _attributes(ci_class: str, n: int, rng: random.Random) -> dict[str, Any]:
    if ci_class == "server":
        return {
            "serial_number": f"SN{rng.randrange(10**9):09d}",
            "make": rng.choice(["Dell", "HPE", "Lenovo"]),
            "cpu_cores": rng.choice([8, 16, 32, 64]),
            "memory_gb": rng.choice([64, 128, 256, 512]),
            "ip_address": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
            "warranty_expires": f"{rng.randrange(2026, 2031)}-{rng.randrange(1, 13):02d}-28",
        }
    if ci_class == "virtual_machine":
        return {"vcpus": rng.choice([2, 4, 8]), "memory_gb": rng.choice([4, 8, 16, 32]), "hostname": f"vm{n}"}
    if ci_class == "application":
        return {"vendor": rng.choice(["in-house", "SAP", "Atlassian"]), "version": f"{rng.randrange(1, 9)}.{n % 10}"}
    if ci_class == "database":
        return {"engine": rng.choice(["PostgreSQL", "SQL Server", "Oracle"]), "size_gb": rng.randrange(10, 5000)}
    if ci_class == "document":
        return {"url": f"https://wiki.example.com/doc/{n}", "version": "1"}
    if ci_class == "network_device":
        return {"firmware": f"17.{n % 12}", "ports": rng.choice([24, 48])}
    if ci_class == "storage":
        return {"capacity_tb": rng.choice([50, 100, 400]), "raid_level": "6"}
    if ci_class == "service":
        return {"business_owner": f"Owner {n}", "users": rng.randrange(10, 5000)}
    return {}


def generate(cis: int, relationships: int, customers: int, seed: int) -> dict[str, Any]:
    """The estate in the JSON import format. Deterministic for a seed."""
    rng = random.Random(seed)
    keys = [f"C{number:02d}" for number in range(1, customers + 1)]
    provider_cis = max(len(CLASS_SHARE), cis // 50)  # shared infrastructure: 2 %
    per_customer = (cis - provider_cis) // customers
    records: list[dict[str, Any]] = []
    by_class: dict[tuple[str, str], list[str]] = {}

    def add(key: str, ci_class: str, count: int) -> None:
        names = by_class.setdefault((key, ci_class), [])
        for _ in range(count):
            n = len(names)
            name = f"{PREFIX[ci_class]}-{n:06d}"
            names.append(name)
            records.append(
                {
                    "name": name,
                    "customer": key,
                    "class": ci_class,
                    "status": "live" if rng.random() < 0.9 else "planned",
                    "criticality": rng.choice(["low", "medium", "medium", "high", "critical"]),
                    "description": f"{ci_class.replace('_', ' ')} {n} of {key}",
                    "attributes": _attributes(ci_class, n, rng),
                }
            )

    for ci_class in ("network_device", "storage", "cluster"):
        add(PROVIDER_KEY, ci_class, provider_cis // 3)
    for key in keys:
        remaining = per_customer
        for ci_class, share in CLASS_SHARE.items():
            count = max(1, int(per_customer * share)) if ci_class != "document" else remaining
            add(key, ci_class, count)
            remaining -= count
    # Top up rounding losses with documents of the first customer.
    add(keys[0], "document", cis - len(records))

    edges: set[tuple[str, str, str, str]] = set()
    out: list[dict[str, Any]] = []
    for source_class, type_, target_class, share, provider_share in EDGE_RULES:
        wanted = int(relationships * share)
        made = attempts = 0
        while made < wanted and attempts < wanted * 5:
            attempts += 1
            key = rng.choice(keys)
            sources = by_class[(key, source_class)]
            source = sources[rng.randrange(len(sources))]
            at_provider = rng.random() < provider_share
            target_key = PROVIDER_KEY if at_provider else key
            targets = by_class[(target_key, target_class)]
            # Skewed choice: a few hubs carry many edges, as real estates do.
            target = (
                targets[min(len(targets) - 1, int(rng.paretovariate(1.2)) - 1)]
                if rng.random() < 0.2
                else (targets[rng.randrange(len(targets))])
            )
            edge = (key, source, type_, f"{target_key}:{target}")
            if edge in edges:
                continue
            edges.add(edge)
            out.append(
                {
                    "source": source,
                    "target": f"{PROVIDER_KEY}:{target}" if at_provider else target,
                    "type": type_,
                    "customer": key,
                }
            )
            made += 1
    # Rules that ran out of distinct pairs leave a shortfall; fill it with documentation links.
    while len(out) < relationships:
        key = rng.choice(keys)
        source = rng.choice(by_class[(key, "virtual_machine")])
        target = rng.choice(by_class[(key, "document")])
        edge = (key, source, "documented_by", f"{key}:{target}")
        if edge not in edges:
            edges.add(edge)
            out.append({"source": source, "target": target, "type": "documented_by", "customer": key})
    return {"customers": keys, "cis": records, "relationships": out}


def to_csv(estate: dict[str, Any]) -> str:
    attribute_names = sorted({name for ci in estate["cis"] for name in ci["attributes"]})
    columns = [
        "record",
        "customer",
        "name",
        "class",
        "status",
        "criticality",
        "description",
        "source",
        "target",
        "type",
        "note",
        *(f"attr.{name}" for name in attribute_names),
    ]
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(columns)
    for ci in estate["cis"]:
        attributes = ci["attributes"]
        writer.writerow(
            [
                "ci",
                ci["customer"],
                ci["name"],
                ci["class"],
                ci["status"],
                ci["criticality"],
                ci["description"],
                "",
                "",
                "",
                "",
                *(attributes.get(name, "") for name in attribute_names),
            ]
        )
    blank = [""] * len(attribute_names)
    for rel in estate["relationships"]:
        writer.writerow(
            ["relationship", rel["customer"], "", "", "", "", "", rel["source"], rel["target"], rel["type"], "", *blank]
        )
    return out.getvalue()


# --- one database run (a child process) ----------------------------------------------------


async def _run_worker(customers: list[str], content: bytes, fmt: str, path: str, profile: bool) -> dict[str, Any]:
    """Migrates the empty database KEEL_DATABASE_URL names, creates the customers, imports."""
    from cmdb import db
    from cmdb import repository as repo
    from cmdb.graphcache import GraphCache
    from cmdb.importexport import ImportExportService
    from cmdb.services import CMDBService, SystemClock, ensure_provider, system_actor
    from tests.support import migrate_fresh

    clock = SystemClock()
    await migrate_fresh()
    provider = await ensure_provider(clock, PROVIDER_KEY, "Bench Managed Services")
    service = CMDBService(clock, GraphCache())
    system = system_actor(provider)
    for key in customers:
        await service.create_customer(system, {"key": key, "name": f"Customer {key}"})
    transfer = ImportExportService(clock, service)

    # Time the write phase (one transaction) apart from parsing and validation.
    phases: dict[str, float] = {}
    original_write = transfer._write

    async def timed_write(*write_args: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original_write(*write_args)
        finally:
            phases["write"] = time.perf_counter() - started

    transfer._write = timed_write  # type: ignore[method-assign,assignment]
    started = time.perf_counter()
    if path == "direct":
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
        report = await transfer.import_records(system, content, fmt)
        if profile:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        cis, rels = report.cis_created, report.relationships_created
    else:
        cis, rels = await _import_over_http(service, clock, content)
        phases["write"] = float("nan")  # the app's own service instance did the writing
    total = time.perf_counter() - started

    # What a process pays on its next graph query: the cache rebuilds once from the tables.
    graph_started = time.perf_counter()
    await service.graph.current()
    graph_seconds = time.perf_counter() - graph_started
    history = await db.fetch(repo.engine(), "SELECT COUNT(*) AS n FROM history WHERE action = 'imported'")
    return {
        "format": fmt,
        "path": path,
        "bytes": len(content),
        "cis": cis,
        "relationships": rels,
        "history": int(history[0]["n"]),
        "seconds": total,
        "write_seconds": phases.get("write", float("nan")),
        "graph_seconds": graph_seconds,
    }


async def _import_over_http(service: Any, clock: Any, content: bytes) -> tuple[int, int]:
    from litestar.testing import AsyncTestClient

    from web.app import create_app
    from web.settings import Settings

    password = "bench-password-0123"
    await service.create_person(
        None, {"username": "bench", "name": "Bench", "roles": ["administrator"], "password": password}
    )
    # No database_url: the app then opens no pool of its own (a test client runs start-up on
    # another event loop) and uses the engine Keel configured from KEEL_DATABASE_URL.
    app = create_app(Settings(secret_key="bench-secret-key-0123456789-abcdefghij", secure_cookies=False), clock=clock)
    async with AsyncTestClient(app=app, timeout=600) as client:
        response = await client.post("/api/auth/token", json={"username": "bench", "password": password})
        token = response.json()["token"]
        response = await client.post(
            "/api/import/cis", content=content, headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
        )
        if response.status_code != 200:
            raise SystemExit(f"HTTP import failed: {response.status_code} {response.text[:2000]}")
        body = response.json()
        return int(body["cis_created"]), int(body["relationships_created"])


# --- the orchestrator ----------------------------------------------------------------------


def _child(args: argparse.Namespace, url: str, fmt: str, path: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", "--data-dir", args.data_dir, "--formats", fmt, "--path", path]
    if args.profile:
        command.append("--profile")
    env = {**os.environ, "KEEL_DATABASE_URL": url}
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        print(completed.stdout, completed.stderr, sep="\n", file=sys.stderr)
        raise SystemExit(f"the {fmt} {path} run on {url} failed (exit {completed.returncode})")
    if args.profile:
        print(completed.stderr, file=sys.stderr)
    return json.loads(completed.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _print_results(label: str, results: list[dict[str, Any]]) -> None:
    print(f"\n{label}")
    print(
        f"  {'format':<6} {'path':<6} {'MB':>5} {'CIs':>8} {'rels':>8} {'history':>8} "
        f"{'total s':>8} {'write s':>8} {'rows/s':>8} {'graph s':>8}"
    )
    for r in results:
        rows = r["cis"] + r["relationships"]
        print(
            f"  {r['format']:<6} {r['path']:<6} {r['bytes'] / 1e6:>5.1f} {r['cis']:>8} {r['relationships']:>8} "
            f"{r['history']:>8} {r['seconds']:>8.2f} {r['write_seconds']:>8.2f} {rows / r['seconds']:>8,.0f} "
            f"{r['graph_seconds']:>8.2f}"
        )


async def _postgres_database(url: str, name: str, create: bool) -> str:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        if create:
            await connection.execute(f'CREATE DATABASE "{name}"')
        else:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await connection.close()
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cis", type=int, default=100_000)
    parser.add_argument("--relationships", type=int, default=300_000)
    parser.add_argument("--customers", type=int, default=8)
    parser.add_argument("--formats", default="csv,json", help="comma-separated: csv, json")
    parser.add_argument("--http", action="store_true", help="also import the CSV through POST /api/import/cis")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each direct import")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="direct", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="20k CIs, 60k relationships, CSV only (for CI)")
    args = parser.parse_args()
    if args.quick or os.environ.get("KEEL_BENCH_QUICK"):
        args.cis, args.relationships, args.formats = min(args.cis, 20_000), min(args.relationships, 60_000), "csv"
    formats = [fmt.strip() for fmt in args.formats.split(",") if fmt.strip()]

    if args.worker:
        os.environ.setdefault("KEEL_SECRET_KEY", "bench-secret-key-0123456789-abcdefghij")
        customers = json.loads(Path(args.data_dir, "customers.json").read_text())
        content = Path(args.data_dir, f"estate.{formats[0]}").read_bytes()
        print(json.dumps(asyncio.run(_run_worker(customers, content, formats[0], args.path, args.profile))))
        return

    print(
        f"bench/import.py: {args.cis:,} CIs, {args.relationships:,} relationships, {args.customers} customers, "
        f"seed {args.seed}"
    )
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f}, SQLite synchronous={os.environ.get('KEEL_SQLITE_SYNCHRONOUS', 'FULL')}"
    )
    runs = [(fmt, "direct") for fmt in formats] + ([("csv", "http")] if args.http else [])
    with tempfile.TemporaryDirectory(prefix="keel-bench-import-") as tmp:
        started = time.perf_counter()
        estate = generate(args.cis, args.relationships, args.customers, args.seed)
        Path(tmp, "customers.json").write_text(json.dumps(estate["customers"]))
        Path(tmp, "estate.csv").write_text(to_csv(estate), encoding="utf-8")
        Path(tmp, "estate.json").write_text(
            json.dumps({"cis": estate["cis"], "relationships": estate["relationships"]}), encoding="utf-8"
        )
        print(
            f"generated the estate in {time.perf_counter() - started:.1f} s "
            f"({len(estate['cis']):,} CIs, {len(estate['relationships']):,} relationships)"
        )
        del estate
        args.data_dir = tmp
        results = []
        for number, (fmt, path) in enumerate(runs):
            # A fresh database file per run, so no run pays for another's rows.
            results.append(_child(args, str(Path(tmp, f"keel-{number}.sqlite")), fmt, path))
        _print_results("SQLite (a file in a temp dir, one fresh database per run)", results)
        postgres = os.environ.get("KEEL_BENCH_POSTGRES_URL")
        if not postgres:
            print("\n(set KEEL_BENCH_POSTGRES_URL to also run on PostgreSQL)")
            return
        results = []
        for fmt, path in runs:
            name = f"keel_bench_{uuid.uuid4().hex[:8]}"
            url = asyncio.run(_postgres_database(postgres, name, create=True))
            try:
                results.append(_child(args, url, fmt, path))
            finally:
                asyncio.run(_postgres_database(postgres, name, create=False))
        _print_results("PostgreSQL (one throwaway database per run, dropped after)", results)


if __name__ == "__main__":
    main()
