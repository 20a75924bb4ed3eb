"""HTTP throughput and latency of Keel's API: one `keel serve` worker, load from a second process.

    python bench/api.py [--cis 100000] [--duration 10] [--connections 32] [--quick]

Builds a synthetic layered CMDB (bench/graph.py's generator) in a fresh SQLite database, and in
PostgreSQL too when KEEL_BENCH_POSTGRES_URL is set, starts `keel serve` with one worker, and
drives it with wrk (Debian's package; a Python load generator in a separate process when wrk is
absent) for:
  - GET /api/cis?limit=50             (the list of 50)
  - GET /api/cis/{id}/impact?depth=3  (impact from a median CI)
Prints requests/s, p50 and p99. Targets (issue 2): list >= 3,000 req/s on SQLite with
p99 <= 10 ms; impact at depth 3 <= 10 ms through the API at 1M CIs. Figures, never assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.graph import synthesize  # noqa: E402

KIND_CLASS = {
    "core_switch": "network_device",
    "access_switch": "network_device",
    "central_san": "storage",
    "storage": "storage",
    "shared_cluster": "cluster",
    "cluster": "cluster",
    "host": "server",
    "service": "service",
    "application": "application",
    "instance": "application",
    "software": "operating_system",
    "vm": "virtual_machine",
    "document": "document",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keel_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "KEEL_DATABASE_URL": url,
        "KEEL_SECRET_KEY": "bench-secret",
        "KEEL_SECURE_COOKIES": "false",
        "KEEL_SQLITE_SYNCHRONOUS": "NORMAL",
    }


def keel(url: str, *args: str, stdin: str = "") -> None:
    subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        input=stdin,
        text=True,
        check=True,
        env=keel_env(url),
        cwd=ROOT,
        capture_output=True,
    )


async def load_data(url: str, n: int) -> dict[str, int]:
    """Bulk-writes customers, CIs and relationships straight into Keel's tables (the import path
    has its own benchmark); the app builds its graph from them at the first query."""
    os.environ["KEEL_DATABASE_URL"] = url
    from cmdb import db
    from cmdb import repository as repo

    cmdb = synthesize(n, seed=7)
    engine = repo.engine()
    provider = await repo.provider()
    assert provider is not None
    now = dt.datetime.now(dt.UTC)
    tenants = sorted(set(int(t) for t in np.unique(cmdb.tenants)) - {0})
    tenant_ids = {0: provider.id}
    async with db.atomic(engine):
        for code in tenants:
            tenant_ids[code] = await repo.insert_customer(
                {
                    "key": f"C{code:03d}",
                    "name": f"Customer {code}",
                    "created_at": now,
                    "updated_at": now,
                    "calendar": "{}",
                    "sla": "{}",
                }
            )
    kind_of = {int(ci): kind for kind, ids in cmdb.kinds.items() for ci in ids}
    # Keel ids are 32-bit: renumber the generator's sparse ids densely.
    new_id = {int(old): index + 1 for index, old in enumerate(cmdb.node_ids)}
    rows = [
        (
            new_id[int(old)],
            tenant_ids[int(t)],
            f"{kind_of[int(old)]}-{new_id[int(old)]}",
            KIND_CLASS[kind_of[int(old)]],
            "live",
            "medium",
            "",
            "{}",
            1,
            now,
            now,
        )
        for old, t in zip(cmdb.node_ids, cmdb.tenants, strict=True)
    ]
    edges = {}
    from cmdb.graph import EDGE_TYPES

    for s, t, c in zip(cmdb.sources.tolist(), cmdb.targets.tolist(), cmdb.codes.tolist(), strict=True):
        edges[(new_id[s], new_id[t], EDGE_TYPES[c])] = None
    tenant_by_ci = {row[0]: row[1] for row in rows}
    rels = [(i + 1, tenant_by_ci[s], s, t, kind, "", now) for i, (s, t, kind) in enumerate(edges)]
    async with db.atomic(engine):
        for start in range(0, len(rows), 5000):
            await db.executemany(
                engine,
                "INSERT INTO ci (id, tenant, name, ci_class, status, criticality, description, attributes, version, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows[start : start + 5000],
            )
        for start in range(0, len(rels), 5000):
            await db.executemany(
                engine,
                "INSERT INTO relationship (id, tenant, source, target, type, note, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rels[start : start + 5000],
            )
        if not db.is_sqlite(engine):
            await engine.run_ddl("SELECT setval('ci_id_seq', (SELECT max(id) FROM ci))")
            await engine.run_ddl("SELECT setval('relationship_id_seq', (SELECT max(id) FROM relationship))")
    # A median CI for the impact query: an application that services depend on, with the
    # median number of dependants (the generator's services depend on ~3 applications each).
    dependants: dict[int, int] = {}
    for _s, t, _k in edges:
        dependants[t] = dependants.get(t, 0) + 1
    apps = sorted((dependants.get(new_id[int(a)], 0), new_id[int(a)]) for a in cmdb.kinds["application"][:2000])
    apps = [pair for pair in apps if pair[0] > 0]
    instance_ids = [ci for _, ci in apps]
    if isinstance(engine, db.KeelSQLiteEngine):
        await engine.close()
    return {"cis": len(rows), "relationships": len(rels), "median_ci": instance_ids[len(instance_ids) // 2]}


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "serve", "--port", str(port), "--log-level", "warning"],
        env=keel_env(url),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("keel serve did not come up: " + (process.stderr.read().decode() if process.stderr else ""))


def request(port: int, path: str, token: str | None = None, body: dict[str, Any] | None = None) -> tuple[float, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    started = time.perf_counter()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=120) as response:
        payload = json.loads(response.read())
    return time.perf_counter() - started, payload


def run_wrk(port: int, path: str, token: str, duration: int, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", output, re.MULTILINE)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rps": rps, "p50": latency("50"), "p99": latency("99"), "errors": float(errors.group(1)) if errors else 0.0}


PY_LOADER = r"""
import asyncio, json, sys, time
import httpx
port, path, token, duration, connections = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
lat = []; errors = 0
async def worker(client, stop):
    global errors
    while time.perf_counter() < stop:
        t = time.perf_counter()
        r = await client.get(path)
        lat.append(time.perf_counter() - t)
        if r.status_code != 200: errors += 1
async def main():
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits) as c:
        stop = time.perf_counter() + duration
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c, stop) for _ in range(connections)))
        return time.perf_counter() - t0
elapsed = asyncio.run(main())
lat.sort()
p50, p99 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000
print(json.dumps({"rps": len(lat) / elapsed, "p50": p50, "p99": p99, "errors": errors}))
"""


def run_python_loader(port: int, path: str, token: str, duration: int, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-c", PY_LOADER, str(port), path, token, str(duration), str(connections)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(output))


def bench_database(label: str, url: str, n: int, duration: int, connections: int) -> list[str]:
    keel(url, "migrate")
    loaded_at = time.perf_counter()
    info = asyncio.run(load_data(url, n))
    load_s = time.perf_counter() - loaded_at
    keel(url, "user", "add", "bench", "--role", "engineer", stdin="bench-password\n")
    port = free_port()
    server = start_server(url, port)
    lines = []
    try:
        _, token_body = request(port, "/api/auth/token", body={"username": "bench", "password": "bench-password"})
        token = token_body["token"]
        cold, first = request(port, f"/api/cis/{info['median_ci']}/impact?depth=3", token)
        warm = [request(port, f"/api/cis/{info['median_ci']}/impact?depth=3", token)[0] for _ in range(200)]
        warm_list = sorted(request(port, "/api/cis?limit=50", token)[0] for _ in range(200))
        loader = run_wrk if shutil.which("wrk") else run_python_loader
        tool = "wrk" if shutil.which("wrk") else "python-httpx"
        lines.append(
            f"{label}: {info['cis']:,} CIs, {info['relationships']:,} relationships loaded in {load_s:.1f} s; "
            f"first graph query (cold build) {cold * 1000:.0f} ms; impact depth 3 answers {first['total']} CIs; "
            f"one client at a time: impact p50 {statistics.median(warm) * 1000:.2f} ms, "
            f"list p50 {statistics.median(warm_list) * 1000:.2f} ms "
            f"p99 {warm_list[int(len(warm_list) * 0.99)] * 1000:.2f} ms; "
            f"load tool {tool}, "
            f"{connections} connections, {duration} s per endpoint"
        )
        for name, path, target in (
            ("list of 50 CIs", "/api/cis?limit=50", ">= 3,000 req/s, p99 <= 10 ms (SQLite)"),
            ("impact depth 3", f"/api/cis/{info['median_ci']}/impact?depth=3", "p95 <= 10 ms at 1M CIs"),
        ):
            result = loader(port, path, token, duration, connections)
            lines.append(
                f"  {name:<16} {result['rps']:>8,.0f} req/s   p50 {result['p50']:>7.2f} ms"
                f"   p99 {result['p99']:>7.2f} ms"
                f"   non-2xx {int(result['errors'])}   target {target}"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cis", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="20k CIs, 5 s per endpoint")
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="one database (each runs in its own process)")
    args = parser.parse_args()
    if args.quick or os.environ.get("KEEL_BENCH_QUICK"):
        args.cis, args.duration = min(args.cis, 20_000), min(args.duration, 5)
    if args.only is None:
        print("$ " + " ".join([Path(sys.executable).name, *sys.argv]))
        print(f"machine: {os.cpu_count()} cores; server and load generator share them")
    pg_url = os.environ.get("KEEL_BENCH_POSTGRES_URL")
    lines: list[str] = []
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory(prefix="keel-bench-api-") as workdir:
            lines += bench_database(
                "SQLite", str(Path(workdir) / "keel.sqlite"), args.cis, args.duration, args.connections
            )
    if args.only == "postgres" and pg_url:
        lines += bench_database("PostgreSQL", pg_url, args.cis, args.duration, args.connections)
    elif args.only is None and pg_url:
        # Piccolo binds the engine at first import: PostgreSQL gets a process of its own.
        print("\n".join(lines))
        lines = []
        subprocess.run([sys.executable, *sys.argv, "--only", "postgres"], check=False)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
