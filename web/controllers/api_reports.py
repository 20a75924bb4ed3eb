"""The monthly report API: `GET /api/reports/monthly?customer=&month=` and issuing it."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED

from cmdb.models import Actor
from problem.reports import ReportService
from web.deps import parse_ref

CustomerRef = Annotated[str | None, Parameter(description="The customer's key or id")]
Month = Annotated[str | None, Parameter(description="The month as YYYY-MM, in the customer's time zone")]


@get(
    "/api/reports/monthly",
    tags=["reports"],
    summary="A customer's monthly report as data: the issued (frozen) copy, else computed now",
)
async def monthly_report(
    reports: ReportService,
    actor: Actor,
    customer: CustomerRef = None,
    month: Month = None,
    live: Annotated[bool, Parameter(description="Recompute even when the report was issued")] = False,
    changes: Annotated[bool, Parameter(description="For an issued report, list figures that differ now")] = False,
) -> dict[str, Any]:
    ref = parse_ref(customer) if customer else None
    if changes and not live:
        report = await reports.with_changes(actor, ref, month)
        return {**report.as_json(), "changes_since_issue": report.changes}
    return (await reports.monthly(actor, ref, month, live=live)).as_json()


@post(
    "/api/reports/monthly/issue",
    tags=["reports"],
    status_code=HTTP_201_CREATED,
    summary="Issue (freeze) a customer's report for a finished month; provider staff only",
)
async def issue_monthly_report(
    reports: ReportService, actor: Actor, customer: CustomerRef = None, month: Month = None
) -> dict[str, Any]:
    ref = parse_ref(customer) if customer else None
    return (await reports.issue(actor, ref, month)).as_json()


HANDLERS: list[Any] = [monthly_report, issue_monthly_report]
