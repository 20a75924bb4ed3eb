"""Keel's Litestar application: `create_app(settings)` wires services, auth, errors, pages."""

from __future__ import annotations

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
from cmdb.graphcache import GraphCache
from cmdb.importexport import ImportExportService
from cmdb.services import ChangeAuthority, Clock, CMDBService, SystemClock
from web.auth import PUBLIC_PATHS, KeelAuthenticationMiddleware
from web.deps import DEPENDENCIES
from web.errors import EXCEPTION_HANDLERS
from web.settings import Settings

HERE = Path(__file__).parent


@get("/health", exclude_from_auth=True, include_in_schema=False)
async def health() -> dict[str, Any]:
    return {"status": "ok", "graph_revision": await repo.graph_revision()}


def route_handlers() -> list[Any]:
    from web.controllers import api_change, api_cmdb, api_import
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
        create_static_files_router(path="/static", directories=[HERE / "static"], include_in_schema=False),
    ]


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    graph: GraphCache | None = None,
    change_authority: ChangeAuthority | None = None,
) -> Litestar:
    settings = settings or Settings.from_env()
    clock = clock or SystemClock()
    graph = graph or GraphCache()
    cmdb = CMDBService(clock, graph, change_authority or RFCAuthority())
    state = State(
        {
            "settings": settings,
            "clock": clock,
            "graph": graph,
            "cmdb": cmdb,
            "accounts": Accounts(clock, session_hours=settings.session_hours, token_days=settings.token_days),
            "transfer": ImportExportService(clock, cmdb),
            "change": ChangeService(clock, cmdb),
        }
    )

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
        on_startup=[open_pool] if settings.database_url.startswith("postgres") else [],
        on_shutdown=[close_pool],
        debug=settings.debug,
    )
