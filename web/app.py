"""Keel's Litestar application: `create_app(settings)` wires services, auth, errors, pages."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from litestar import Litestar, get
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from change.services import ChangeService, RFCAuthority
from cmdb import repository as repo
from cmdb.accounts import Accounts
from cmdb.db import KeelSQLiteEngine
from cmdb.errors import FieldProblem
from cmdb.graphcache import GraphCache
from cmdb.importexport import ImportExportService
from cmdb.notifications import Mailer, NotificationService, SmtpMailer
from cmdb.scheduler import Scheduler
from cmdb.services import ChangeAuthority, Clock, CMDBService, SystemClock
from incident.alerts import AlertService
from incident.dashboard import ServiceDashboard
from incident.services import IncidentService
from incident.sla import validate_terms as validate_incident_terms
from incident.thresholds import AlertThresholds
from problem.reports import ReportService
from problem.services import ProblemService
from release.patches import PatchService, problems_of_sla
from release.services import ReleaseService
from web.auth import PUBLIC_PATHS, KeelAuthenticationMiddleware
from web.deps import DEPENDENCIES
from web.errors import EXCEPTION_HANDLERS
from web.settings import Settings

HERE = Path(__file__).parent


@get("/health", exclude_from_auth=True, include_in_schema=False)
async def health() -> dict[str, Any]:
    return {"status": "ok", "graph_revision": await repo.graph_revision()}


def route_handlers() -> list[Any]:
    from web.controllers import (
        api_alerts,
        api_change,
        api_cmdb,
        api_import,
        api_incident,
        api_patches,
        api_problem,
        api_release,
        api_reports,
        notifications,
        pages_incident,
        pages_patches,
        pages_portal,
        pages_problem,
        pages_release,
        pages_reports,
    )
    from web.controllers.pages import PAGE_HANDLERS
    from web.controllers.pages_change import CHANGE_PAGE_HANDLERS

    return [
        health,
        api_cmdb.AuthController,
        api_cmdb.CustomerController,
        api_cmdb.PeopleController,
        api_cmdb.CIController,
        api_cmdb.RelationshipController,
        *api_import.HANDLERS,
        *api_change.HANDLERS,
        *PAGE_HANDLERS,
        *CHANGE_PAGE_HANDLERS,
        *notifications.HANDLERS,
        *api_release.HANDLERS,
        *pages_release.HANDLERS,
        *api_incident.HANDLERS,
        *pages_incident.HANDLERS,
        *api_problem.HANDLERS,
        *pages_problem.HANDLERS,
        *api_patches.HANDLERS,
        *pages_patches.HANDLERS,
        *api_alerts.HANDLERS,
        *pages_portal.HANDLERS,
        *api_reports.HANDLERS,
        *pages_reports.HANDLERS,
        create_static_files_router(path="/static", directories=[HERE / "static"], include_in_schema=False),
    ]


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    graph: GraphCache | None = None,
    change_authority: ChangeAuthority | None = None,
    mailer: Mailer | None = None,
) -> dict[str, Any]:
    """Every service, wired once: the web application's state and the CLI use the same."""
    clock = clock or SystemClock()
    graph = graph or GraphCache()
    cmdb = CMDBService(clock, graph, change_authority or RFCAuthority())
    notifications = NotificationService(clock, mailer if mailer is not None else SmtpMailer.from_env())
    change = ChangeService(clock, cmdb)
    releases = ReleaseService(clock, cmdb, change, notifications)
    patches = PatchService(clock, cmdb, notifications)
    incidents = IncidentService(clock, cmdb, change, releases, notifications)
    change.incident_history = incidents
    problems = ProblemService(clock, cmdb, change, releases, incidents)
    reports = ReportService(clock, cmdb, change, patches, incidents, problems, notifications)
    scheduler = Scheduler(
        clock,
        [
            *notifications.jobs(),
            *patches.jobs(),
            *releases.jobs(),
            *incidents.jobs(),
            *problems.jobs(),
            *reports.jobs(),
        ],
    )
    cmdb.sla_validators += [
        problems_of_sla,
        lambda sla: AlertThresholds.resolve(sla)[1],
        lambda sla: [FieldProblem(name, reason) for name, reason in validate_incident_terms(sla)],
    ]
    return {
        "settings": settings,
        "clock": clock,
        "graph": graph,
        "cmdb": cmdb,
        "accounts": Accounts(clock, session_hours=settings.session_hours, token_days=settings.token_days),
        "transfer": ImportExportService(clock, cmdb),
        "change": change,
        "notifications": notifications,
        "releases": releases,
        "patches": patches,
        "incidents": incidents,
        "problems": problems,
        "reports": reports,
        "alerts": AlertService(clock, cmdb, incidents),
        "dashboard": ServiceDashboard(clock, cmdb),
        "scheduler": scheduler,
    }


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    graph: GraphCache | None = None,
    change_authority: ChangeAuthority | None = None,
    mailer: Mailer | None = None,
) -> Litestar:
    settings = settings or Settings.from_env()
    services = build_services(settings, clock=clock, graph=graph, change_authority=change_authority, mailer=mailer)
    state = State(services)
    scheduler_task: list[asyncio.Task[None]] = []

    async def start_scheduler() -> None:
        if settings.run_scheduler:
            scheduler: Scheduler = services["scheduler"]
            scheduler_task.append(asyncio.create_task(scheduler.run_forever(settings.scheduler_tick_seconds)))

    async def stop_scheduler() -> None:
        for task in scheduler_task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def open_pool() -> None:
        engine = repo.engine()
        if engine.engine_type == "postgres":
            await engine.start_connection_pool(min_size=2, max_size=20)  # type: ignore[call-arg]

    async def close_pool() -> None:
        engine = repo.engine()
        if engine.engine_type == "postgres":
            await engine.close_connection_pool()  # type: ignore[attr-defined]
        elif isinstance(engine, KeelSQLiteEngine):
            await engine.close()

    return Litestar(
        route_handlers=route_handlers(),
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[DefineMiddleware(KeelAuthenticationMiddleware, exclude=PUBLIC_PATHS)],
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_secure=settings.secure_cookies,
            cookie_httponly=False,
            cookie_samesite="lax",
            # The API takes bearer tokens only, never the session cookie: no CSRF exposure.
            exclude=["^/api/"],
        ),
        template_config=TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(
            title="Keel",
            version="0.1.0",
            description="ITIL change and configuration management with a CMDB.",
            path="/schema",
        ),
        state=state,
        on_startup=[open_pool, start_scheduler],
        on_shutdown=[stop_scheduler, close_pool],
        debug=settings.debug,
    )
