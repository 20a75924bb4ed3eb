"""Bulk import and export of CIs and relationships (being written)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cmdb.models import Actor
from cmdb.services import Clock, CMDBService


@dataclass(frozen=True)
class ImportReport:
    cis_created: int
    relationships_created: int


class ImportExportService:
    def __init__(self, clock: Clock, cmdb: CMDBService) -> None:
        self.clock = clock
        self.cmdb = cmdb

    async def import_records(
        self, actor: Actor, content: bytes | str, fmt: str, *, customer: int | str | None = None
    ) -> ImportReport:
        raise NotImplementedError

    async def export_records(self, actor: Actor, *, customer: int | str | None, fmt: str) -> str:
        raise NotImplementedError

    def _unused(self) -> Any:
        return None
