"""Dependencies the controllers receive through Litestar's `Provide`."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import Provide

from change.services import ChangeService
from cmdb.accounts import Accounts
from cmdb.importexport import ImportExportService
from cmdb.models import Actor
from cmdb.notifications import NotificationService
from cmdb.services import CMDBService
from incident.alerts import AlertService
from incident.dashboard import ServiceDashboard
from incident.services import IncidentService
from problem.reports import ReportService
from problem.services import ProblemService
from release.patches import PatchService
from release.services import ReleaseService


def provide_cmdb(state: State) -> CMDBService:
    return state.cmdb  # type: ignore[no-any-return]


def provide_accounts(state: State) -> Accounts:
    return state.accounts  # type: ignore[no-any-return]


def provide_transfer(state: State) -> ImportExportService:
    return state.transfer  # type: ignore[no-any-return]


def provide_change(state: State) -> ChangeService:
    return state.change  # type: ignore[no-any-return]


def provide_notifications(state: State) -> NotificationService:
    return state.notifications  # type: ignore[no-any-return]


def provide_releases(state: State) -> ReleaseService:
    return state.releases  # type: ignore[no-any-return]


def provide_patches(state: State) -> PatchService:
    return state.patches  # type: ignore[no-any-return]


def provide_incidents(state: State) -> IncidentService:
    return state.incidents  # type: ignore[no-any-return]


def provide_problems(state: State) -> ProblemService:
    return state.problems  # type: ignore[no-any-return]


def provide_reports(state: State) -> ReportService:
    return state.reports  # type: ignore[no-any-return]


def provide_alerts(state: State) -> AlertService:
    return state.alerts  # type: ignore[no-any-return]


def provide_dashboard(state: State) -> ServiceDashboard:
    return state.dashboard  # type: ignore[no-any-return]


def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    return request.user  # type: ignore[no-any-return]


DEPENDENCIES = {
    "cmdb": Provide(provide_cmdb, sync_to_thread=False),
    "accounts": Provide(provide_accounts, sync_to_thread=False),
    "transfer": Provide(provide_transfer, sync_to_thread=False),
    "actor": Provide(provide_actor, sync_to_thread=False),
    "change": Provide(provide_change, sync_to_thread=False),
    "notifications": Provide(provide_notifications, sync_to_thread=False),
    "releases": Provide(provide_releases, sync_to_thread=False),
    "patches": Provide(provide_patches, sync_to_thread=False),
    "incidents": Provide(provide_incidents, sync_to_thread=False),
    "problems": Provide(provide_problems, sync_to_thread=False),
    "reports": Provide(provide_reports, sync_to_thread=False),
    "alerts": Provide(provide_alerts, sync_to_thread=False),
    "dashboard": Provide(provide_dashboard, sync_to_thread=False),
}


def parse_ref(value: str) -> int | str:
    """Path and query references: digits are ids, anything else a human key or name."""
    return int(value) if value.isdigit() else value


def if_match(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    raw = raw.strip().strip('"').removeprefix("W/").strip('"')
    from cmdb.errors import InvalidInput

    if not raw.isdigit():
        raise InvalidInput.field("If-Match", "must be the record's version number")
    return int(raw)


async def json_object(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """An action's JSON body: empty means `{}`; anything but an object is refused naming `body`."""
    import msgspec

    from cmdb.errors import InvalidInput

    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        decoded = msgspec.json.decode(raw)
    except msgspec.DecodeError as error:
        raise InvalidInput.field("body", f"is not valid JSON ({error})") from error
    if not isinstance(decoded, dict):
        raise InvalidInput.field("body", "must be a JSON object")
    return decoded


def expected_version(request: Request[Any, Any, Any], body: dict[str, Any]) -> int | None:
    """The version the caller read: `If-Match`, else `version` in the body (taken out of it)."""
    version = if_match(request)
    body_version = body.pop("version", None)
    if version is None and isinstance(body_version, int) and not isinstance(body_version, bool):
        version = body_version
    return version
