"""Bulk import and export of CIs and relationships."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.response import Response

from cmdb.errors import InvalidInput
from cmdb.importexport import ImportExportService
from cmdb.models import Actor
from web.auth import CI_WRITER_GUARD
from web.deps import parse_ref

MAX_IMPORT_BYTES = 200 * 1024 * 1024


@post(
    "/api/import/cis",
    guards=[CI_WRITER_GUARD],
    status_code=200,
    tags=["import"],
    request_max_body_size=MAX_IMPORT_BYTES,
    summary="Import CIs and relationships from CSV or JSON, all or nothing",
)
async def import_cis(
    request: Request[Actor, Any, Any], transfer: ImportExportService, actor: Actor, customer: str | None = None
) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = "csv" if content_type in ("text/csv", "application/csv") else "json" if "json" in content_type else ""
    if not fmt:
        raise InvalidInput.field("Content-Type", "send text/csv or application/json")
    body = await request.body()
    report = await transfer.import_records(actor, body, fmt, customer=parse_ref(customer) if customer else None)
    return {"cis_created": report.cis_created, "relationships_created": report.relationships_created}


@get("/api/export/cis", tags=["import"], summary="Export CIs and relationships as CSV or JSON")
async def export_cis(
    transfer: ImportExportService, actor: Actor, customer: str | None = None, format: str = "json"
) -> Response[str]:
    if format not in ("csv", "json"):
        raise InvalidInput.field("format", "must be csv or json")
    text = await transfer.export_records(actor, customer=parse_ref(customer) if customer else None, fmt=format)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    return Response(
        content=text,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="keel-cis.{format}"'},
    )


HANDLERS = [import_cis, export_cis]
