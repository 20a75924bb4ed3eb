"""Monitoring alert ingestion through the HTTP API, with deduplication.

    python bench/alerts.py [--cis 2000] [--duration 10] [--connections 16] [--quick]

For a fresh SQLite database (and a fresh PostgreSQL database too when KEEL_BENCH_POSTGRES_URL is
set: the bench creates a scratch database on that server and drops it afterwards, so the URL's
role needs CREATEDB):

- `keel migrate`; 4 customers and --cis CIs bulk-written into Keel's tables; an engineer made
  with `keel user add` signs in for a token;
- one `keel serve` worker (KEEL_SCHEDULER=off, KEEL_SQLITE_SYNCHRONOUS=NORMAL as the other
  benches) receives POST /api/alerts from wrk with a Lua script cycling through 2,500 bodies
  (a Python httpx load generator in a second process when wrk is absent): every CI has one
  metric in breach (processor, memory, disks, event log, backup, UPS, virus, firewall), so the
  first pass over the bodies opens one incident per CI and every later pass joins it; one body
  in five is below its threshold (stored, ignored). Half the bodies name their CI by id, half
  by name and customer.
- prints alerts/s, p50 and p99, non-2xx answers, and from the database afterwards: alerts
  stored by outcome, incidents opened, and the (CI, metric) pairs with more than one open
  incident (must be none). Targets: >= 1,000 alerts/s on SQLite, >= 2,000 on PostgreSQL.

The timed run follows --warmup seconds of untimed load (the worker's CI lookups warm, as in a
worker that has been receiving monitoring for a while). --quick (for CI): 500 CIs, 2 s + 3 s.
Figures are printed, never asserted (the duplicate check excepted: a duplicate is a bug, not a
slow machine, and the bench exits 1).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api import free_port, request  # noqa: E402

PASSWORD = "bench-password"
CUSTOMERS = 4
BODIES = 2_500
# (metric, a breaching value, a quiet value, duration_s)
METRICS = (
    ("cpu_percent", 97, 35, 600),
    ("memory_percent", 92, 40, None),
    ("disk_system_free_gb", 0.7, 40, None),
    ("disk_data_free_percent", 4, 55, None),
    ("event_log", "critical", "information", None),
    ("backup", "failure", "success", None),
    ("ups", "warning", "ok", None),
    ("virus", "EICAR-Test-File", False, None),
    ("firewall_attack", "port scan from 203.0.113.9", "", None),
)


def bench_env(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "KEEL_DATABASE_URL": url,
        "KEEL_SECRET_KEY": "bench-secret",
        "KEEL_SECURE_COOKIES": "false",
        "KEEL_SQLITE_SYNCHRONOUS": os.environ.get("KEEL_SQLITE_SYNCHRONOUS", "NORMAL"),
        "KEEL_SCHEDULER": "off",
    }


def keel(url: str, *args: str, stdin: str = "") -> str:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        input=stdin,
        text=True,
        check=True,
        env=bench_env(url),
        cwd=ROOT,
        capture_output=True,
    ).stdout


def start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "serve", "--port", str(port), "--log-level", "warning"],
        env=bench_env(url),
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


# ------------------------------------------------------------------ in a process of its own


async def prepare(cis: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    """Customers and CIs bulk-written; returns the flood's POST bodies and each CI's first breach."""
    from cmdb import db
    from cmdb import repository as repo

    engine = repo.engine()
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    keys = [f"B{n:02d}" for n in range(CUSTOMERS)]
    tenant_ids = []
    async with db.atomic(engine):
        for key in keys:
            tenant_ids.append(
                await repo.insert_customer(
                    {
                        "key": key,
                        "name": f"Bench customer {key}",
                        "created_at": now,
                        "updated_at": now,
                        "calendar": "{}",
                        "sla": "{}",
                    }
                )
            )
    first_id = await repo.max_ci_id() + 1
    rows = [
        (first_id + n, tenant_ids[n % CUSTOMERS], f"host-{n:05d}", "server", "live", "medium", "", "{}", 1, now, now)
        for n in range(cis)
    ]
    async with db.atomic(engine):
        for start in range(0, len(rows), 5000):
            await db.executemany(
                engine,
                "INSERT INTO ci (id, tenant, name, ci_class, status, criticality, description, attributes, version, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows[start : start + 5000],
            )
        if not db.is_sqlite(engine):
            await engine.run_ddl("SELECT setval('ci_id_seq', (SELECT max(id) FROM ci))")
    bodies = []
    for n in range(BODIES):
        index = n % cis if n < cis else rng.randrange(cis)
        ci_id, tenant, name = rows[index][0], rows[index][1], rows[index][2]
        metric, hot, quiet, duration = METRICS[index % len(METRICS)]
        body: dict[str, Any] = {"ci": ci_id} if n % 2 == 0 else {"ci": name, "customer": keys[tenant_ids.index(tenant)]}
        body.update({"metric": metric, "value": quiet if n % 5 == 4 else hot})
        if duration:
            body["duration_s"] = duration
        body["message"] = f"bench alert {n}"
        bodies.append(body)
    firsts = []
    for index, row in enumerate(rows):
        metric, hot, _, duration = METRICS[index % len(METRICS)]
        first: dict[str, Any] = {"ci": row[0], "metric": metric, "value": hot}
        if duration:
            first["duration_s"] = duration
        firsts.append(first)
    if isinstance(engine, db.KeelSQLiteEngine):
        await engine.close()
    return {"bodies": bodies, "firsts": firsts}


async def check() -> dict[str, Any]:
    """What the load left in the database."""
    from cmdb import db
    from cmdb import repository as repo

    engine = repo.engine()
    outcomes = {
        row["outcome"]: int(row["n"])
        for row in await db.fetch(engine, "SELECT outcome, count(*) AS n FROM alert GROUP BY outcome")
    }
    incidents = int((await db.fetch(engine, "SELECT count(*) AS n FROM incident"))[0]["n"])
    duplicates = await db.fetch(
        engine,
        "SELECT a.ci, a.metric, count(DISTINCT a.incident) AS n FROM alert a JOIN incident i ON i.id = a.incident "
        "WHERE i.status <> 'closed' GROUP BY a.ci, a.metric HAVING count(DISTINCT a.incident) > 1",
    )
    claims = int((await db.fetch(engine, "SELECT count(*) AS n FROM alert_open"))[0]["n"])
    if isinstance(engine, db.KeelSQLiteEngine):
        await engine.close()
    return {"outcomes": outcomes, "incidents": incidents, "duplicates": len(duplicates), "claims": claims}


# ------------------------------------------------------------------ load

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {
%s
}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/api/alerts", nil, bodies[(n %% #bodies) + 1])
end
"""


def run_wrk(port: int, token: str, bodies: list[dict[str, Any]], duration: int, connections: int) -> dict[str, float]:
    lines = ",\n".join(f"  [==[{json.dumps(body)}]==]" for body in bodies)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % lines)
    try:
        output = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{duration}s",
                "--latency",
                "-s",
                script.name,
                "-H",
                f"Authorization: Bearer {token}",
                f"http://127.0.0.1:{port}/api/alerts",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise SystemExit("wrk printed no figures:\n" + output)

    def latency(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", output, re.MULTILINE)
        if not found:
            return float("nan")
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(rate.group(1)),
        "requests": float(total.group(1)),
        "p50": latency("50"),
        "p99": latency("99"),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


PY_LOADER = r"""
import asyncio, json, sys, time
import httpx
port, token, bodies_path = sys.argv[1], sys.argv[2], sys.argv[5]
duration, connections = float(sys.argv[3]), int(sys.argv[4])
bodies = json.load(open(bodies_path))
lat = []; errors = 0; turn = 0
async def worker(client, stop):
    global errors, turn
    while time.perf_counter() < stop:
        body = bodies[turn % len(bodies)]; turn += 1
        t = time.perf_counter()
        r = await client.post("/api/alerts", json=body)
        lat.append(time.perf_counter() - t)
        if r.status_code not in (200, 201): errors += 1
async def main():
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits, timeout=60) as c:
        stop = time.perf_counter() + duration
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c, stop) for _ in range(connections)))
        return time.perf_counter() - t0
elapsed = asyncio.run(main())
lat.sort()
print(json.dumps({"rps": len(lat) / elapsed, "requests": len(lat), "p50": lat[len(lat) // 2] * 1000,
                  "p99": lat[int(len(lat) * 0.99)] * 1000, "errors": errors}))
"""


def run_python(port: int, token: str, bodies_path: Path, duration: int, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-c", PY_LOADER, str(port), token, str(duration), str(connections), str(bodies_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(output))


# ------------------------------------------------------------------ one database


def in_process(url: str, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, __file__, *args],
        env=bench_env(url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench/alerts.py {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_database(label: str, url: str, args: argparse.Namespace, workdir: Path) -> tuple[list[str], bool]:
    keel(url, "migrate")
    keel(url, "user", "add", "bench", "--role", "engineer", stdin=PASSWORD + "\n")
    started = time.perf_counter()
    prepared = in_process(url, "--prepare", "--cis", str(args.cis))
    bodies, firsts = prepared["bodies"], prepared["firsts"]
    prepare_s = time.perf_counter() - started
    bodies_path = workdir / f"bodies-{label}.json"
    bodies_path.write_text(json.dumps(bodies))
    port = free_port()
    server = start_server(url, port)
    try:
        _, signed_in = request(port, "/api/auth/token", body={"username": "bench", "password": PASSWORD})
        token = signed_in["token"]
        # The first breach of every CI opens its incident: timed apart, through the batch route.
        opening_started = time.perf_counter()
        for start in range(0, len(firsts), 250):
            request(port, "/api/alerts/batch", token, firsts[start : start + 250])  # type: ignore[arg-type]
        opening_s = time.perf_counter() - opening_started
        use_wrk = shutil.which("wrk") is not None

        def load(seconds: int) -> dict[str, float]:
            if use_wrk:
                return run_wrk(port, token, bodies, seconds, args.connections)
            return run_python(port, token, bodies_path, seconds, args.connections)

        # Warm-up: the worker's CI lookups (remembered 30 s) and its code paths, like a worker
        # that has been receiving monitoring for a while.
        warm = load(args.warmup)
        before = in_process(url, "--check")
        started = time.perf_counter()
        result = load(args.duration)
        elapsed = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    found = in_process(url, "--check")
    outcomes = found["outcomes"]
    stored = sum(outcomes.values()) - sum(before["outcomes"].values())
    target = ">= 1,000 alerts/s (SQLite)" if label == "SQLite" else ">= 2,000 alerts/s (PostgreSQL)"
    lines = [
        f"{label}: {args.cis:,} CIs of {CUSTOMERS} customers written in {prepare_s:.1f} s; "
        f"{len(bodies):,} distinct alert bodies (4 in 5 in breach)",
        f"  first breaches: {len(firsts):,} incidents opened through POST /api/alerts/batch in {opening_s:.1f} s "
        f"({len(firsts) / opening_s:,.0f}/s); the flood below then mostly joins them",
        f"  warm-up {args.warmup} s: {warm['rps']:,.0f} alerts/s, p50 {warm['p50']:.2f} ms",
        f"  POST /api/alerts, 1 worker, {'wrk + Lua' if use_wrk else 'python-httpx (wrk not installed)'}, "
        f"{args.connections} connections, {args.duration} s: {result['rps']:,.0f} alerts/s, "
        f"p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms, non-2xx {int(result['errors'])}; "
        f"{stored:,} stored during the flood ({stored / elapsed:,.0f}/s); target {target}",
        f"  outcomes: opened {outcomes.get('opened', 0):,}, joined {outcomes.get('joined', 0):,}, "
        f"ignored {outcomes.get('ignored', 0):,}; incidents in the database {found['incidents']:,}; "
        f"(CI, metric) claims {found['claims']:,}; pairs with more than one open incident: {found['duplicates']}",
    ]
    healthy = found["duplicates"] == 0 and found["incidents"] == outcomes.get("opened", 0)
    if not healthy:
        lines.append("  DUPLICATES: more incidents than first breaches - deduplication failed")
    return lines, healthy


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cis", type=int, default=2_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3, help="seconds of untimed load first")
    parser.add_argument("--quick", action="store_true", help="500 CIs, 2 s warm-up, 3 s of load")
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        print(json.dumps(asyncio.run(prepare(args.cis, seed=5))))
        return 0
    if args.check:
        print(json.dumps(asyncio.run(check())))
        return 0
    if args.quick or os.environ.get("KEEL_BENCH_QUICK"):
        args.cis, args.duration, args.warmup = min(args.cis, 500), min(args.duration, 3), min(args.warmup, 2)
    print("$ " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"machine: {os.cpu_count()} cores; server and load generator share them")
    healthy = True
    with tempfile.TemporaryDirectory(prefix="keel-bench-alerts-") as workdir:
        lines, ok = bench_database("SQLite", str(Path(workdir) / "keel.sqlite"), args, Path(workdir))
        healthy = healthy and ok
        pg_url = os.environ.get("KEEL_BENCH_POSTGRES_URL")
        if pg_url:
            name = f"keel_bench_alerts_{os.getpid()}"
            asyncio.run(_admin(pg_url, f'CREATE DATABASE "{name}"'))
            parts = urllib.parse.urlsplit(pg_url)
            scratch = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
            try:
                more, ok = bench_database("PostgreSQL", scratch, args, Path(workdir))
                lines += more
                healthy = healthy and ok
            finally:
                asyncio.run(_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print("\n".join(lines))
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main())
