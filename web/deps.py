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
from cmdb.services import CMDBService


def provide_cmdb(state: State) -> CMDBService:
    return state.cmdb  # type: ignore[no-any-return]


def provide_accounts(state: State) -> Accounts:
    return state.accounts  # type: ignore[no-any-return]


def provide_transfer(state: State) -> ImportExportService:
    return state.transfer  # type: ignore[no-any-return]


def provide_change(state: State) -> ChangeService:
    return state.change  # type: ignore[no-any-return]


def provide_actor(request: Request[Any, Any, Any]) -> Actor:
    return request.user  # type: ignore[no-any-return]


DEPENDENCIES = {
    "cmdb": Provide(provide_cmdb, sync_to_thread=False),
    "accounts": Provide(provide_accounts, sync_to_thread=False),
    "transfer": Provide(provide_transfer, sync_to_thread=False),
    "actor": Provide(provide_actor, sync_to_thread=False),
    "change": Provide(provide_change, sync_to_thread=False),
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
