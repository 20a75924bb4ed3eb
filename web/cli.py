"""The `keel` command: serve, migrate, demo, user add, impact, import, export.

Script-facing commands (api.md) keep their shape. KEEL_DATABASE_URL picks the database for all.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from cmdb import repository as repo
from cmdb.db import KeelSQLiteEngine
from cmdb.errors import DomainError, InvalidInput
from cmdb.graphcache import GraphCache
from cmdb.importexport import ImportExportService
from cmdb.models import Customer
from cmdb.services import CMDBService, SystemClock, ensure_provider, system_actor
from web.settings import Settings

T = TypeVar("T")


def _run(work: Callable[[], Awaitable[T]]) -> T:
    async def wrapped() -> T:
        engine = repo.engine()
        try:
            return await work()
        finally:
            if isinstance(engine, KeelSQLiteEngine):
                await engine.close()

    return asyncio.run(wrapped())


def _settings() -> Settings:
    import os

    os.environ.setdefault("KEEL_SECRET_KEY", "cli-only")  # the CLI signs no cookies
    return Settings.from_env()


async def _migrate(settings: Settings, quiet: bool = False) -> Customer:
    from piccolo.apps.migrations.commands.forwards import run_forwards

    result = await run_forwards("all")
    if not result.success:
        raise SystemExit(f"keel: migration failed: {result.message}")
    return await ensure_provider(SystemClock(), settings.provider_key, settings.provider_name)


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    provider = _run(lambda: _migrate(settings))
    print(f"keel: database is up to date; provider tenant {provider.key}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    uvicorn.run(
        "web.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        proxy_headers=True,
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from web.demo import seed_demo

    settings = _settings()

    async def work() -> Any:
        await _migrate(settings)
        clock = SystemClock()
        return await seed_demo(CMDBService(clock, GraphCache()), clock, provider_key=settings.provider_key)

    summary = _run(work)
    print(summary.describe() if hasattr(summary, "describe") else summary)
    return 0


def _read_password(stream: Any = None) -> str:
    stream = stream or sys.stdin
    if stream.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise SystemExit("keel: the passwords differ")
        return first
    return str(stream.readline().rstrip("\r\n"))


def cmd_user_add(args: argparse.Namespace) -> int:
    password = _read_password()

    async def work() -> Any:
        await _migrate(_settings())
        service = CMDBService(SystemClock(), GraphCache())
        return await service.create_person(
            None,
            {
                "username": args.username,
                "name": args.name or args.username,
                "roles": args.role,
                "customer": args.customer,
                "password": password,
                "email": args.email,
                "expertise": args.expertise or [],
            },
        )

    person = _run(work)
    print(f"keel: created {person.username} with roles {', '.join(sorted(r.value for r in person.roles))}")
    return 0


def cmd_impact(args: argparse.Namespace) -> int:
    async def work() -> tuple[Any, dict[int, str]]:
        provider = await repo.provider()
        if provider is None:
            raise SystemExit("keel: run `keel migrate` first")
        service = CMDBService(SystemClock(), GraphCache())
        result = await service.impact(
            system_actor(provider),
            int(args.ci) if args.ci.isdigit() else args.ci,
            direction="up" if args.up else "down",
            depth=args.depth,
            types=args.types.split(",") if args.types else None,
            limit=10_000,
        )
        keys = await service.customer_keys({r.ci.tenant_id for r in result.items if r.ci} | {result.root.tenant_id})
        return result, keys

    result, keys = _run(work)
    print(render_tree(result, keys))
    return 0


def render_tree(result: Any, keys: dict[int, str]) -> str:
    """The impact answer as an indented tree: each CI under the CI it was reached through."""
    children: dict[int, list[Any]] = {}
    for row in result.items:
        children.setdefault(row.via, []).append(row)
    root = result.root
    arrow = "relies on" if result.direction == "up" else "impacts"
    lines = [f"{root.name} ({root.ci_class.value}, {keys.get(root.tenant_id, '?')}) {arrow}:"]

    def walk(node: int, prefix: str) -> None:
        kids = children.get(node, [])
        for index, row in enumerate(kids):
            last = index == len(kids) - 1
            label = (
                f"{row.ci.name} ({row.ci.ci_class.value}, {keys.get(row.ci.tenant_id, '?')})"
                if row.ci
                else f"#{row.ci_id}"
            )
            lines.append(f"{prefix}{'└── ' if last else '├── '}{label}")
            walk(row.ci_id, prefix + ("    " if last else "│   "))

    walk(root.id, "")
    lines.append(f"{result.total} CI(s)")
    return "\n".join(lines)


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    fmt = args.format or ("csv" if path.suffix.lower() == ".csv" else "json")
    content = path.read_bytes()

    async def work() -> Any:
        provider = await repo.provider()
        if provider is None:
            raise SystemExit("keel: run `keel migrate` first")
        clock = SystemClock()
        transfer = ImportExportService(clock, CMDBService(clock, GraphCache()))
        return await transfer.import_records(system_actor(provider), content, fmt, customer=args.customer)

    report = _run(work)
    print(f"keel: imported {report.cis_created} CIs and {report.relationships_created} relationships")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    async def work() -> str:
        provider = await repo.provider()
        if provider is None:
            raise SystemExit("keel: run `keel migrate` first")
        clock = SystemClock()
        transfer = ImportExportService(clock, CMDBService(clock, GraphCache()))
        return await transfer.export_records(system_actor(provider), customer=args.customer, fmt=args.format)

    text = _run(work)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"keel: wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _change_service() -> Any:
    from change.services import ChangeService

    clock = SystemClock()
    return ChangeService(clock, CMDBService(clock, GraphCache()))


def cmd_rfc_list(args: argparse.Namespace) -> int:
    async def work() -> tuple[list[Any], int, dict[int, str]]:
        provider = await repo.provider()
        if provider is None:
            raise SystemExit("keel: run `keel migrate` first")
        service = _change_service()
        items, total = await service.list_rfcs(
            system_actor(provider),
            customer=args.customer,
            states=args.state.split(",") if args.state else None,
            limit=args.limit,
        )
        return items, total, await service.cmdb.customer_keys({r.tenant_id for r in items})

    items, total, keys = _run(work)
    print(f"{'KEY':<14} {'CUSTOMER':<10} {'STATE':<18} {'PRIORITY':<9} TITLE")
    for rfc in items:
        print(
            f"{rfc.key:<14} {keys.get(rfc.tenant_id, '?'):<10} {rfc.state.value:<18} "
            f"{rfc.priority.value:<9} {rfc.title}"
        )
    print(f"{len(items)} of {total} RFC(s)")
    return 0


def cmd_rfc_show(args: argparse.Namespace) -> int:
    async def work() -> tuple[Any, Any, list[Any], dict[int, str]]:
        provider = await repo.provider()
        if provider is None:
            raise SystemExit("keel: run `keel migrate` first")
        service = _change_service()
        actor = system_actor(provider)
        view = await service.get(actor, int(args.key) if args.key.isdigit() else args.key)
        impact = await service.impact(actor, view.rfc.id)
        timeline = await service.timeline(actor, view.rfc.id)
        return view, impact, timeline, await service.cmdb.customer_keys({view.rfc.tenant_id})

    view, impact, timeline, keys = _run(work)
    rfc = view.rfc
    lines = [
        f"{rfc.key}  {rfc.title}",
        f"customer {keys.get(rfc.tenant_id)}  state {rfc.state.value}  type {rfc.type.value}  "
        f"priority {rfc.priority.value}",
        f"affected CIs: {', '.join(str(ci) for ci in rfc.ci_ids) or '-'}",
        f"impact: {impact.impact_class} ({impact.total} CIs, {len(impact.customers)} customer(s)); "
        f"committee {'required' if impact.committee_required else 'not required'}; risk {impact.risk['score']}"
        + (" (frozen at authorization)" if impact.frozen else ""),
    ]
    if rfc.planned_start:
        lines.append(
            f"planned: {rfc.planned_start.isoformat()} - {rfc.planned_end.isoformat() if rfc.planned_end else '?'}"
        )
    for label, text in (
        ("need", rfc.need),
        ("desired result", rfc.desired_result),
        ("plan", rfc.plan),
        ("backout", rfc.backout_plan),
    ):
        if text:
            lines.append(f"{label}: {text}")
    lines.append("timeline:")
    lines += [f"  {e.at.isoformat()}  {e.action:<24} {e.actor_name}  {e.comment}".rstrip() for e in timeline]
    print("\n".join(lines))
    return 0


def cmd_patches_due(args: argparse.Namespace) -> int:
    """The patch urgency board as text: open patches (or --state ones), soonest due first."""

    async def work() -> tuple[list[Any], int, dict[str, int]]:
        provider = await repo.provider()
        if provider is None:
            raise SystemExit("keel: run `keel migrate` first")
        patches = services()["patches"]
        return await patches.board(  # type: ignore[no-any-return]
            system_actor(provider),
            customer=args.customer,
            states=args.state.split(",") if args.state else None,
            limit=args.limit,
        )

    rows, total, counts = _run(work)
    print(f"{'KEY':<14} {'CUSTOMER':<10} {'LEVEL':<16} {'DUE (UTC)':<17} {'STATE':<9} {'USED':>5}  TITLE")
    for row in rows:
        view = row.urgency
        print(
            f"{view.key:<14} {row.customer_key:<10} {view.level.value:<16} {view.due.strftime('%Y-%m-%d %H:%M'):<17} "
            f"{view.state.value:<9} {min(view.share_used, 9.99):>5.0%}  {row.title}"
        )
    summary = ", ".join(f"{state} {count}" for state, count in counts.items())
    print(f"{len(rows)} of {total} patch(es); all live patches: {summary}")
    return 0


def services() -> dict[str, Any]:
    """The same wiring as the web application, for commands that act through services."""
    from web.app import build_services

    return build_services(_settings())


def cmd_report(args: argparse.Namespace) -> int:
    """A customer's monthly report: the summary and key figures as text (or --json), and the
    PDF with --pdf FILE. Answers the issued copy once the report is issued."""
    import json

    async def work() -> Any:
        provider = await repo.provider()
        if provider is None:
            raise SystemExit("keel: run `keel migrate` first")
        reports = services()["reports"]
        customer = int(args.customer) if args.customer.isdigit() else args.customer
        return await reports.monthly(system_actor(provider), customer, args.month)

    report = _run(work)
    if args.pdf:
        from web.controllers.pages_reports import render_pdf

        Path(args.pdf).write_bytes(render_pdf(report))
    if args.json:
        print(json.dumps(report.as_json(), indent=2, sort_keys=True))
    else:
        data = report.data
        state = f"issued {report.issued_at:%Y-%m-%d %H:%M} UTC" if report.issued_at else "not issued (computed now)"
        print(f"{data['customer_name']} ({data['customer']}): {data['month_label']}, {state}")
        print(data["summary"])
        counts = data["rfcs"]["counts"]
        print(
            f"incidents {data['incidents']['total']}, answered in time {data['sla']['response']['percent']} %, "
            f"fixed in time {data['sla']['resolution']['percent']} %; planned changes completed "
            f"{counts['completed']}, open at month end {counts['open_at_end']}"
        )
    if args.pdf:
        print(f"keel: wrote {args.pdf}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    """Run scheduled jobs (escalations, email, monthly reports). `keel serve` already runs a
    scheduler in each worker; this is for a separate scheduler process or one round by hand."""
    import time

    async def work() -> Any:
        scheduler = services()["scheduler"]
        if args.once:
            return await scheduler.run_due(force=True)
        await scheduler.run_forever(args.tick)
        return None

    started = time.monotonic()
    done = _run(work)
    if args.once:
        if done is None:
            print("keel: another process holds the scheduler lease; nothing run")
            return 0
        for name, count in sorted(done.items()):
            print(f"{name}: {'failed' if count < 0 else count}")
        print(f"keel: scheduler round done in {time.monotonic() - started:.2f} s")
        return 1 if any(count < 0 for count in done.values()) else 0
    return 0


def read_alert_file(text: str) -> list[tuple[int, Any]]:
    """(line number, parsed item) of a JSON array or of JSON lines; an unparsable line comes
    back as a ValueError in place of its item. In an array, the line where each item starts."""
    import json

    stripped = text.lstrip()
    if stripped.startswith("["):
        decoder = json.JSONDecoder()
        try:
            items = decoder.decode(text)
        except ValueError as error:
            return [(1, ValueError(f"not valid JSON: {error}"))]
        starts: list[int] = []
        depth, in_string, escaped, expecting, line = 0, False, False, False, 1
        for char in text:
            if char == "\n":
                line += 1
            if in_string:
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    in_string = False
                continue
            if expecting and not char.isspace() and char != "]":
                starts.append(line)
                expecting = False
            if char == '"':
                in_string = True
            elif char in "[{":
                depth += 1
                expecting = depth == 1
            elif char in "]}":
                depth -= 1
            elif char == "," and depth == 1:
                expecting = True
        lines = starts if len(starts) == len(items) else list(range(1, len(items) + 1))
        return list(zip(lines, items, strict=True))
    parsed: list[tuple[int, Any]] = []
    for number, row in enumerate(text.splitlines(), start=1):
        if not row.strip():
            continue
        try:
            parsed.append((number, json.loads(row)))
        except ValueError as error:
            parsed.append((number, ValueError(f"not valid JSON: {error}")))
    return parsed


def cmd_alerts_replay(args: argparse.Namespace) -> int:
    """Feed a file of monitoring alerts through the same service as POST /api/alerts."""
    entries = read_alert_file(Path(args.file).read_text(encoding="utf-8-sig"))

    async def work() -> dict[str, Any]:
        provider = await repo.provider()
        if provider is None:
            raise SystemExit("keel: run `keel migrate` first")
        alerts = services()["alerts"]
        actor = system_actor(provider)
        summary: dict[str, Any] = {"received": 0, "breached": 0, "opened": 0, "joined": 0, "ignored": 0, "refused": []}
        for start in range(0, len(entries), 500):
            chunk = entries[start : start + 500]
            readable = [(line, item) for line, item in chunk if not isinstance(item, ValueError)]
            for line, item in chunk:
                if isinstance(item, ValueError):
                    summary["refused"].append((line, str(item)))
            results = await alerts.receive_batch(actor, [item for _, item in readable])
            for (line, _), result in zip(readable, results, strict=True):
                if result.error is not None:
                    summary["refused"].append((line, result.error.detail))
                    continue
                summary["breached"] += int(result.result.breached)
                summary[result.result.outcome] += 1
        summary["received"] = len(entries)
        summary["refused"].sort()
        return summary

    summary = _run(work)
    refused = summary["refused"]
    print(
        f"keel: {summary['received']} alert(s) received, {summary['breached']} breached, "
        f"{summary['opened']} incident(s) opened, {summary['joined']} joined, {summary['ignored']} ignored, "
        f"{len(refused)} refused"
    )
    for line, reason in refused:
        print(f"  line {line}: {reason}")
    return 1 if refused else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keel", description="Keel: change and configuration management with a CMDB.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web application")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    commands.add_parser("migrate", help="create or upgrade the database").set_defaults(func=cmd_migrate)
    commands.add_parser("demo", help="migrate and load the demo data set").set_defaults(func=cmd_demo)

    scheduler = commands.add_parser("scheduler", help="run scheduled jobs: escalations, email, monthly reports")
    scheduler.add_argument("--once", action="store_true", help="run every job once and exit")
    scheduler.add_argument("--tick", type=float, default=15.0, help="seconds between rounds")
    scheduler.set_defaults(func=cmd_scheduler)

    user = commands.add_parser("user", help="manage people")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser("add", help="add a person; the password is read from standard input")
    add.add_argument("username")
    add.add_argument("--role", action="append", required=True, help="repeat for several roles")
    add.add_argument("--customer", help="customer key (omit for the provider's staff)")
    add.add_argument("--name")
    add.add_argument("--email")
    add.add_argument("--expertise", action="append", help="a CI class; repeat for several")
    add.set_defaults(func=cmd_user_add)

    impact = commands.add_parser("impact", help="print what a CI impacts (or relies on, with --up) as a tree")
    impact.add_argument("ci", help="CI id, name or CUSTOMER:name")
    impact.add_argument("--up", action="store_true", help="what the CI relies on instead of what it impacts")
    impact.add_argument("--depth", type=int)
    impact.add_argument("--types", help="comma-separated relationship types to follow")
    impact.set_defaults(func=cmd_impact)

    imp = commands.add_parser("import", help="import CIs and relationships from CSV or JSON (all or nothing)")
    imp.add_argument("file")
    imp.add_argument("--customer", help="default customer for rows without one")
    imp.add_argument("--format", choices=["csv", "json"])
    imp.set_defaults(func=cmd_import)

    rfc = commands.add_parser("rfc", help="requests for change")
    rfc_commands = rfc.add_subparsers(dest="rfc_command", required=True)
    rfc_list = rfc_commands.add_parser("list", help="list RFCs, newest first")
    rfc_list.add_argument("--customer")
    rfc_list.add_argument("--state", help="comma-separated states")
    rfc_list.add_argument("--limit", type=int, default=50)
    rfc_list.set_defaults(func=cmd_rfc_list)
    rfc_show = rfc_commands.add_parser("show", help="one RFC with its impact and timeline")
    rfc_show.add_argument("key", help="RFC-YYYY-NNNN or id")
    rfc_show.set_defaults(func=cmd_rfc_show)

    patches = commands.add_parser("patches", help="patch urgency")
    patch_commands = patches.add_subparsers(dest="patches_command", required=True)
    due = patch_commands.add_parser("due", help="open patches by due time (the urgency board)")
    due.add_argument("--customer", help="customer key")
    due.add_argument("--state", help="comma-separated: on_track, at_risk, overdue, met (default: all but met)")
    due.add_argument("--limit", type=int, default=50)
    due.set_defaults(func=cmd_patches_due)

    alerts = commands.add_parser("alerts", help="monitoring alerts")
    alerts_commands = alerts.add_subparsers(dest="alerts_command", required=True)
    replay = alerts_commands.add_parser("replay", help="feed a file of alerts (JSON lines or a JSON array)")
    replay.add_argument("file")
    replay.set_defaults(func=cmd_alerts_replay)

    exp = commands.add_parser("export", help="export CIs and relationships as CSV or JSON")
    exp.add_argument("--customer")
    exp.add_argument("--format", choices=["csv", "json"], default="csv")
    exp.add_argument("--output", "-o")
    exp.set_defaults(func=cmd_export)

    report = commands.add_parser("report", help="a customer's monthly report (summary, --json data, --pdf FILE)")
    report.add_argument("customer", help="customer key or id")
    report.add_argument("month", help="YYYY-MM, in the customer's time zone")
    report.add_argument("--pdf", metavar="FILE", help="also write the report as a PDF")
    report.add_argument("--json", action="store_true", help="print the report's data as JSON")
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InvalidInput as error:
        print(f"keel: {error.detail}", file=sys.stderr)
        for problem in error.problems[:50]:
            print(f"  {problem.sentence()}", file=sys.stderr)
        return 2
    except DomainError as error:
        print(f"keel: {error.detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
