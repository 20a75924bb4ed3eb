"""Change management at scale: the change manager's queue, and RFC creation through the HTTP API.

    python bench/change_api.py [--cis 1000000] [--rfcs 10000] [--duration 10] [--connections 16] [--quick]

For a fresh SQLite database (and a fresh PostgreSQL database too when KEEL_BENCH_POSTGRES_URL is
set: the bench creates a scratch database on that server and drops it afterwards, so the URL's
role needs CREATEDB):

(a) the queue. `keel migrate`, then bench/graph.py's synthetic CMDB bulk-written into Keel's
    tables (bench/api.py's loader: at 1M CIs, 40 customer tenants and the provider), then
    --rfcs open RFCs bulk-written into rfc and rfc_ci: spread over the customers, 3 CIs of their
    customer each, across the open states (about half waiting for a change manager: submitted,
    authorized, approved), all priorities, raised over the last 90 days. Then
    `ChangeService.queue` for a change manager made with `keel user add`, called repeatedly in
    a process of its own: server time p50/p95. Target <= 100 ms.

(b) creating RFCs through the API. `keel serve` with one worker; an engineer made with
    `keel user add` signs in for a token; drafts with 3 CIs of one customer each are POSTed to
    /api/rfcs from a second process: wrk with a Lua script when wrk is installed, else a Python
    (httpx) load generator. Prints the rate of RFCs created, p50 and p99, non-2xx answers, and
    the one-client-at-a-time latency. Target >= 1,000 RFCs/s on SQLite.

--quick (for CI): 100,000 CIs (the generator then makes 4 customers), 10,000 RFCs, 5 s of load.
Figures are printed with the command line, never asserted: they depend on the machine.
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

from bench.api import free_port, keel, keel_env, load_data, request, start_server  # noqa: E402

BULK_STATES = (  # open states and their share of the backlog
    ("draft", 0.15),
    ("submitted", 0.20),
    ("needs_information", 0.05),
    ("authorized", 0.15),
    ("in_review", 0.10),
    ("approved", 0.15),
    ("scheduled", 0.15),
    ("implementing", 0.05),
)
PRIORITIES = (("critical", 0.05), ("high", 0.25), ("medium", 0.50), ("low", 0.20))
BODIES = 2_000  # distinct POST bodies the load generator cycles through
PASSWORD = "bench-password"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# ------------------------------------------------------------------ (a) data and the queue


async def _bulk_rfcs(count: int, seed: int) -> tuple[dict[str, int], float, list[dict[str, Any]]]:
    """Writes `count` open RFCs straight into rfc and rfc_ci; returns RFCs per state, the
    seconds it took, and POST bodies for the API phase (3 CIs of one customer each)."""
    import numpy as np

    from cmdb import db
    from cmdb import repository as repo

    engine = repo.engine()
    rng = random.Random(seed)
    provider = await repo.provider()
    assert provider is not None
    customers = {
        row["id"]: row["key"]
        for row in await db.fetch(engine, "SELECT id, key FROM customer WHERE id <> ?", provider.id)
    }
    rows = await db.fetch(engine, "SELECT id, tenant FROM ci WHERE tenant <> ?", provider.id)
    ids = np.array([row["id"] for row in rows], dtype=np.int64)
    tenants = np.array([row["tenant"] for row in rows], dtype=np.int64)
    by_tenant = {int(t): ids[tenants == t] for t in np.unique(tenants)}
    tenant_list = sorted(by_tenant)

    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    # Last year's keys: the API's RFCs (this year's sequence) never collide with them.
    year = now.year - 1
    states = rng.choices([s for s, _ in BULK_STATES], weights=[w for _, w in BULK_STATES], k=count)
    priorities = rng.choices([p for p, _ in PRIORITIES], weights=[w for _, w in PRIORITIES], k=count)
    rfc_rows, link_rows = [], []
    for n in range(count):
        rfc_id = n + 1
        tenant = tenant_list[n % len(tenant_list)]
        state = states[n]
        created = now - dt.timedelta(minutes=rng.randint(10, 90 * 24 * 60))
        planned_start = planned_end = None
        if state in ("scheduled", "implementing"):
            planned_start = now + dt.timedelta(hours=rng.randint(-2 if state == "implementing" else 12, 24 * 30))
            planned_end = planned_start + dt.timedelta(hours=rng.choice((1, 2, 4)))
        rfc_rows.append(
            (
                rfc_id,
                f"RFC-{year}-{rfc_id:05d}",
                tenant,
                f"Bench change {rfc_id} for {customers[tenant]}",
                "normal",
                state,
                priorities[n],
                "internal",
                "The need of a benchmark RFC.",
                "The desired result.",
                "The plan.",
                "The backout plan.",
                planned_start,
                planned_end,
                state not in ("draft", "submitted", "needs_information"),
                1,
                created,
                created,
            )
        )
        pool = by_tenant[tenant]
        for ci in rng.sample(range(len(pool)), 3):
            link_rows.append((rfc_id, int(pool[ci])))
    async with db.atomic(engine):
        for start in range(0, len(rfc_rows), 2_000):
            await db.executemany(
                engine,
                "INSERT INTO rfc (id, key, tenant, title, type, state, priority, origin, need, desired_result, plan, "
                "backout_plan, planned_start, planned_end, impact_frozen, version, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rfc_rows[start : start + 2_000],
            )
        for start in range(0, len(link_rows), 5_000):
            await db.executemany(engine, "INSERT INTO rfc_ci (rfc, ci) VALUES (?, ?)", link_rows[start : start + 5_000])
        if not db.is_sqlite(engine):
            await engine.run_ddl("SELECT setval('rfc_id_seq', (SELECT max(id) FROM rfc))")
    if db.is_sqlite(engine):
        await engine.run_ddl("ANALYZE")
    else:
        await engine.run_ddl("ANALYZE rfc")
        await engine.run_ddl("ANALYZE rfc_ci")
    seconds = time.perf_counter() - started

    bodies = []
    for n in range(BODIES):
        tenant = tenant_list[n % len(tenant_list)]
        pool = by_tenant[tenant]
        cis = sorted(int(pool[i]) for i in rng.sample(range(len(pool)), 3))
        bodies.append({"customer": customers[tenant], "title": f"Load-test draft {n}", "cis": cis})
    per_state: dict[str, int] = {}
    for state in states:
        per_state[state] = per_state.get(state, 0) + 1
    return per_state, seconds, bodies


async def _queue_times(calls: int) -> dict[str, Any]:
    from change.services import ChangeService
    from cmdb import repository as repo
    from cmdb.graphcache import GraphCache
    from cmdb.models import Actor
    from cmdb.services import CMDBService, SystemClock, system_actor

    clock = SystemClock()
    cmdb = CMDBService(clock, GraphCache())
    service = ChangeService(clock, cmdb)
    provider = await repo.provider()
    assert provider is not None
    person = await cmdb.get_person(system_actor(provider), "carl")
    carl = Actor(person.id, person.username, person.name, person.tenant_id, provider.id, person.roles)
    for _ in range(3):  # warm the connections and the statement caches
        queue = await service.queue(carl)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        queue = await service.queue(carl)
        times.append(time.perf_counter() - started)
    _, waiting = await service.list_rfcs(carl, states=["submitted", "authorized", "approved"], limit=1)
    return {
        "p50": statistics.median(times) * 1000,
        "p95": pct(times, 0.95) * 1000,
        "max": max(times) * 1000,
        "calls": calls,
        "waiting": waiting,
        "answered": len(queue),
        "first": [rfc.priority.value for rfc, _ in queue[:3]],
    }


async def _create_times(bodies: list[dict[str, Any]]) -> dict[str, float]:
    """`ChangeService.create` in process, one after the other: the service's share of a POST."""
    from change.services import ChangeService
    from cmdb import repository as repo
    from cmdb.graphcache import GraphCache
    from cmdb.models import Actor
    from cmdb.services import CMDBService, SystemClock, system_actor

    clock = SystemClock()
    cmdb = CMDBService(clock, GraphCache())
    service = ChangeService(clock, cmdb)
    provider = await repo.provider()
    assert provider is not None
    person = await cmdb.get_person(system_actor(provider), "bench")
    bench = Actor(person.id, person.username, person.name, person.tenant_id, provider.id, person.roles)
    times = []
    for body in bodies:
        started = time.perf_counter()
        await service.create(bench, body)
        times.append(time.perf_counter() - started)
    return {"p50": statistics.median(times) * 1000, "p95": pct(times, 0.95) * 1000, "count": len(times)}


async def prepare(n: int, rfcs: int, calls: int) -> dict[str, Any]:
    """The in-process part, in a process of its own (Piccolo binds the engine at import)."""
    from cmdb import repository as repo

    url = os.environ["KEEL_DATABASE_URL"]
    started = time.perf_counter()
    info = await load_data(url, n)
    load_s = time.perf_counter() - started
    engine: Any = repo.engine()
    pooled = engine.engine_type == "postgres"
    if pooled:  # as `keel serve` runs: a pool, not a connection per query
        await engine.start_connection_pool(min_size=1, max_size=4)
    try:
        per_state, rfc_s, bodies = await _bulk_rfcs(rfcs, seed=11)
        queue = await _queue_times(calls)
        create = await _create_times(bodies[:200])
    finally:
        if pooled:
            await engine.close_connection_pool()
    return {
        **info,
        "load_s": load_s,
        "rfc_s": rfc_s,
        "per_state": per_state,
        "customers": len({body["customer"] for body in bodies}),
        "queue": queue,
        "create": create,
        "bodies": bodies,
    }


# ------------------------------------------------------------------ (b) creating through the API

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {
%s
}
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, "/api/rfcs", nil, bodies[(n %% #bodies) + 1])
end
"""


def run_wrk_post(
    port: int, token: str, bodies: list[dict[str, Any]], duration: int, connections: int
) -> dict[str, float]:
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
                f"http://127.0.0.1:{port}/api/rfcs",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+)(s|m)", output)
    if match is None or total is None:
        raise SystemExit("wrk printed no figures:\n" + output)

    def latency(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", output, re.MULTILINE)
        if not found:
            return float("nan")
        value, unit = float(found.group(1)), found.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(match.group(1)),
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
        r = await client.post("/api/rfcs", json=body)
        lat.append(time.perf_counter() - t)
        if r.status_code != 201: errors += 1
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


def run_python_post(port: int, token: str, bodies_path: Path, duration: int, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-c", PY_LOADER, str(port), token, str(duration), str(connections), str(bodies_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(output))


def total_rfcs(port: int, token: str) -> int:
    return int(request(port, "/api/rfcs?limit=1", token)[1]["total"])


# ------------------------------------------------------------------ one database


def bench_database(label: str, url: str, args: argparse.Namespace, workdir: Path) -> list[str]:
    keel(url, "migrate")
    keel(url, "user", "add", "carl", "--role", "change_manager", stdin=PASSWORD + "\n")
    keel(url, "user", "add", "bench", "--role", "engineer", stdin=PASSWORD + "\n")
    bodies_path = workdir / f"bodies-{label}.json"
    prepared = subprocess.run(
        [
            sys.executable,
            __file__,
            "--prepare",
            "--cis",
            str(args.cis),
            "--rfcs",
            str(args.rfcs),
            "--calls",
            str(args.calls),
            "--bodies",
            str(bodies_path),
        ],
        env=keel_env(url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if prepared.returncode != 0:
        raise SystemExit(f"{label}: preparing failed:\n{prepared.stderr[-4000:]}")
    info = json.loads(prepared.stdout.strip().splitlines()[-1])
    queue = info["queue"]
    states = ", ".join(f"{state} {info['per_state'].get(state, 0):,}" for state, _ in BULK_STATES)
    lines = [
        f"{label}: {info['cis']:,} CIs, {info['relationships']:,} relationships, {info['customers']} customers "
        f"loaded in {info['load_s']:.1f} s; {args.rfcs:,} open RFCs ({states}) written in {info['rfc_s']:.1f} s",
        f"  (a) ChangeService.queue, change manager, {queue['calls']} calls: p50 {queue['p50']:.1f} ms, "
        f"p95 {queue['p95']:.1f} ms, max {queue['max']:.1f} ms; {queue['waiting']:,} RFCs waiting, "
        f"{queue['answered']} listed (first priorities {', '.join(queue['first'])}); target <= 100 ms",
        f"  ChangeService.create in process, one at a time ({info['create']['count']} drafts, 3 CIs): "
        f"p50 {info['create']['p50']:.2f} ms, p95 {info['create']['p95']:.2f} ms (the service's share of a POST)",
    ]

    bodies = json.loads(bodies_path.read_text())
    port = free_port()
    server = start_server(url, port)
    try:
        _, signed_in = request(port, "/api/auth/token", body={"username": "bench", "password": PASSWORD})
        token = signed_in["token"]
        one_by_one = []
        for body in bodies[200:400]:
            elapsed, created = request(port, "/api/rfcs", token, body)
            assert created["state"] == "draft" and len(created["cis"]) == 3, created
            one_by_one.append(elapsed)
        before = total_rfcs(port, token)
        use_wrk = shutil.which("wrk") is not None
        started = time.perf_counter()
        if use_wrk:
            result = run_wrk_post(port, token, bodies, args.duration, args.connections)
        else:
            result = run_python_post(port, token, bodies_path, args.duration, args.connections)
        elapsed_s = time.perf_counter() - started
        created_n = total_rfcs(port, token) - before
        lines.append(
            f"  (b) POST /api/rfcs (draft, 3 CIs), 1 worker, {'wrk + Lua' if use_wrk else 'python-httpx'}, "
            f"{args.connections} connections, {args.duration} s: {result['rps']:,.0f} req/s, "
            f"{created_n:,} RFCs created ({created_n / elapsed_s:,.0f}/s over the run), "
            f"p50 {result['p50']:.2f} ms, p99 {result['p99']:.2f} ms, non-2xx {int(result['errors'])}; "
            f"one client at a time p50 {statistics.median(one_by_one) * 1000:.2f} ms; target >= 1,000 RFCs/s (SQLite)"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
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
    """A new, empty database on the server `url` names: (its url, its name)."""
    name = f"keel_bench_change_{os.getpid()}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}")), name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cis", type=int, default=1_000_000)
    parser.add_argument("--rfcs", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=200, help="queue calls to time")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="100k CIs, 5 s of load")
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bodies", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        info = asyncio.run(prepare(args.cis, args.rfcs, args.calls))
        Path(args.bodies).write_text(json.dumps(info.pop("bodies")))
        print(json.dumps(info))
        return 0
    if args.quick or os.environ.get("KEEL_BENCH_QUICK"):
        args.cis, args.duration, args.calls = min(args.cis, 100_000), min(args.duration, 5), min(args.calls, 100)
    print("$ " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"machine: {os.cpu_count()} cores; server and load generator share them")
    with tempfile.TemporaryDirectory(prefix="keel-bench-change-") as workdir:
        lines = bench_database("SQLite", str(Path(workdir) / "keel.sqlite"), args, Path(workdir))
        pg_url = os.environ.get("KEEL_BENCH_POSTGRES_URL")
        if pg_url:
            scratch, name = scratch_postgres(pg_url)
            try:
                lines += bench_database("PostgreSQL", scratch, args, Path(workdir))
            finally:
                asyncio.run(_admin(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
