"""Monthly report pages and PDFs: `/reports`, `/reports/monthly/{customer}/{YYYY-MM}` and `.pdf`.

The page and the PDF share one template body (`reports/_report.html`) and the same charts:
inline SVG built with escaping by `problem.charts`. The PDF is drawn by WeasyPrint from a
string with no base URL and a URL fetcher that serves only Keel's bundled report stylesheet
(`keel-asset:report.css`) and refuses every other URL (file://, http(s)://, data:, relative),
so tenant text, even if it held markup, could never make the renderer read a file or reach the
network (pitfalls: WeasyPrint's default fetcher follows file:// and network URLs).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import get, post
from litestar.response import Redirect, Response, Template
from markupsafe import Markup

from change.models import RFCState
from cmdb.errors import InvalidInput
from cmdb.models import Actor
from cmdb.services import CMDBService
from problem import charts
from problem.report_summary import month_label
from problem.reports import MonthlyReport, ReportService, previous_month
from web.controllers.pages import NAV, NavEntry, page
from web.deps import parse_ref

WEB = Path(__file__).resolve().parent.parent
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
ASSET_SCHEME = "keel-asset:"
PDF_LIST_LIMIT = 20  # rows per list in the PDF; the page and the data have them all
BUNDLED_ASSETS = {"report.css": "text/css"}

PRIORITY_LABELS = {"critical": "Critical", "high": "High", "normal": "Normal", "low": "Low"}
PATCH_LABELS = {
    "due": "Updates due this month",
    "met_on_time": "Approved on schedule",
    "met_late": "Approved late",
    "unmet": "Not approved yet",
    "pending": "Due later this month",
}
METRIC_LABELS = {
    "cpu_percent": "Processor busy",
    "memory_percent": "Memory nearly full",
    "disk_system_free_gb": "System disk nearly full",
    "disk_data_free_percent": "Data disk nearly full",
    "event_log": "Event log errors",
    "backup": "Backup failures",
    "ups": "Power supply (UPS)",
    "virus": "Virus detected",
    "firewall_attack": "Firewall attacks",
}


# --- the view both the page and the PDF show -------------------------------------------------


def _local(value: str | None, timezone: str, with_time: bool = False) -> str:
    if not value:
        return "\u2014"
    moment = dt.datetime.fromisoformat(value).astimezone(ZoneInfo(timezone))
    text = f"{moment.day} {moment:%b %Y}"
    return f"{text} {moment:%H:%M}" if with_time else text


def _share(met: int, measured: int) -> str:
    return f"{met} of {measured} ({(100 * met) // measured} %)" if measured else "\u2014"


def report_view(
    data: Mapping[str, Any], issued_at: dt.datetime | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Everything the templates show beyond the raw data: charts, formatted rows. `limit` caps
    each list (the PDF: WeasyPrint lays out a table row in about 10 ms, so a month of 2,000
    planned changes would take half a minute; the page and the data list every one)."""
    tz = data["period"]["timezone"]
    incidents, sla, rfcs = data["incidents"], data["sla"], data["rfcs"]
    weeks = incidents["weeks"]
    incident_chart = charts.stacked_bars(
        "Incidents per week, by priority",
        [week["label"] for week in weeks],
        [
            charts.Series(PRIORITY_LABELS.get(p, p), p, [int(week["counts"].get(p, 0)) for week in weeks])
            for p in PRIORITY_LABELS
        ],
    )
    sla_chart = charts.attainment_bars(
        "Within the agreed times",
        [
            ("Answered in time", sla["response"]["met"], sla["response"]["measured"]),
            ("Fixed in time", sla["resolution"]["met"], sla["resolution"]["measured"]),
        ],
        target=sla.get("target_percent"),
    )
    state_items = []
    for state, count in sorted(rfcs["by_state"].items(), key=lambda pair: -pair[1]):
        choice = RFCState._value2member_map_.get(state)
        state_items.append(
            (choice.label if choice else state, int(count), choice.colour if choice else "grey")  # type: ignore[attr-defined]
        )
    rfc_chart = charts.simple_bars("Planned changes by state", state_items)
    sla_rows = []
    for priority, label in PRIORITY_LABELS.items():
        measured = sla["by_priority"].get(priority)
        count = incidents["by_priority"].get(priority, 0)
        if not count and not measured:
            continue
        sla_rows.append(
            {
                "label": label,
                "count": count,
                "response": _share(measured["response"]["met"], measured["response"]["measured"])
                if measured
                else "\u2014",
                "resolution": _share(measured["resolution"]["met"], measured["resolution"]["measured"])
                if measured
                else "\u2014",
            }
        )

    def in_time(item: Mapping[str, Any]) -> str:
        marks = {True: "yes", False: "no", None: "\u2014"}
        return f"answer {marks[item.get('response_met')]}, fix {marks[item.get('resolution_met')]}"

    compliance = data.get("patch_compliance") or {}
    counts = compliance.get("counts") or {}
    patch_rows = [
        {"label": label, "value": counts[name]}
        for name, label in PATCH_LABELS.items()
        if isinstance(counts.get(name), int)
    ]
    if compliance.get("share_met_on_time") is not None:
        patch_rows.insert(0, {"label": "On schedule", "value": f"{int(100 * compliance['share_met_on_time'])} %"})
    if compliance:
        patch_rows.append({"label": "Systems missing an overdue update", "value": len(compliance.get("lacking") or [])})
    minutes = int(data["health"]["actions"].get("minutes_worked", 0))
    return {
        "charts": {"incidents": Markup(incident_chart), "sla": Markup(sla_chart), "rfcs": Markup(rfc_chart)},
        "sla_rows": sla_rows,
        "incident_rows": [
            {
                "key": item["key"],
                "title": item["title"],
                "priority": PRIORITY_LABELS.get(item["priority"], item["priority"]),
                "created": _local(item["created_at"], tz),
                "resolved": _local(item["resolved_at"], tz),
                "resolution": item.get("resolution") or "\u2014",
                "in_time": in_time(item),
            }
            for item in incidents["items"][:limit]
        ],
        "completed_rows": [
            {**item, "when": _local(item["at"], tz), "priority": str(item["priority"]).capitalize()}
            for item in rfcs["completed"][:limit]
        ],
        "reversed_rows": [
            {**item, "when": _local(item["at"], tz), "outcome": str(item["outcome"]).replace("_", " ")}
            for item in rfcs["reversed"][:limit]
        ],
        "open_rows": [
            {
                **item,
                "state": item["state_label"],
                "when": _local(item["created_at"], tz),
                "priority": str(item["priority"]).capitalize(),
            }
            for item in rfcs["open_at_end"][:limit]
        ],
        "patch_rows": patch_rows,
        "more": {
            "completed": max(len(rfcs["completed"]) - limit, 0) if limit is not None else 0,
            "reversed": max(len(rfcs["reversed"]) - limit, 0) if limit is not None else 0,
            "open": max(len(rfcs["open_at_end"]) - limit, 0) if limit is not None else 0,
        },
        "page_href": f"/reports/monthly/{data['customer']}/{data['month']}",
        "metric_labels": METRIC_LABELS,
        "hours_worked": f"{minutes // 60:,} h {minutes % 60:02d} min",
        "issued": _local(issued_at.isoformat(), tz, with_time=True) if issued_at else "",
        "generated": _local(data.get("generated_at"), tz, with_time=True),
    }


# --- the PDF -----------------------------------------------------------------------------------

_PRINT_ENV = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))


class BundledAssetsOnly:
    """WeasyPrint's URL fetcher for reports: `keel-asset:NAME` for the few bundled assets,
    an error for anything else. Records every URL it was asked for (the tests check that tenant
    text never reaches it)."""

    def __init__(self) -> None:
        from weasyprint.urls import URLFetcher

        # WeasyPrint calls the fetcher and reads its `_fail_on_errors`; subclassing at run time
        # keeps the import of WeasyPrint (and its native libraries) out of module import.
        outer = self
        self.requested: list[str] = []

        class _Fetcher(URLFetcher):  # type: ignore[misc]
            def fetch(self, url: str, headers: Any = None) -> Any:
                return outer.fetch(url)

        self.fetcher = _Fetcher(allowed_protocols=["keel-asset"], fail_on_errors=False)

    def fetch(self, url: str) -> Any:
        from weasyprint.urls import URLFetcherResponse

        self.requested.append(url)
        name = url[len(ASSET_SCHEME) :] if url.startswith(ASSET_SCHEME) else None
        if name is None or name not in BUNDLED_ASSETS:
            raise ValueError(f"the report renderer fetches only Keel's bundled assets, not {url[:80]!r}")
        return URLFetcherResponse(
            url, body=(STATIC / name).read_bytes(), headers={"Content-Type": BUNDLED_ASSETS[name]}
        )


def print_html(report: MonthlyReport) -> str:
    template = _PRINT_ENV.get_template("reports/print.html")
    view = report_view(report.data, report.issued_at, limit=PDF_LIST_LIMIT)
    return template.render(r=report.data, v=view, frozen=report.frozen)


def render_pdf(report: MonthlyReport, assets: BundledAssetsOnly | None = None) -> bytes:
    from weasyprint import HTML

    assets = assets or BundledAssetsOnly()
    document = HTML(string=print_html(report), base_url=None, url_fetcher=assets.fetcher)
    return bytes(document.write_pdf())


# --- handlers ----------------------------------------------------------------------------------


def _reports_allowed(actor: Actor) -> bool:
    return actor.person_id is not None


@get("/reports", include_in_schema=False)
async def reports_index(
    cmdb: CMDBService, reports: ReportService, actor: Actor, customer: str | None = None, month: str | None = None
) -> Template | Redirect:
    if customer and month:
        return Redirect(f"/reports/monthly/{customer}/{month}", status_code=303)
    customers, _ = await cmdb.list_customers(actor, 500, 0)
    customers = [c for c in customers if not c.is_provider] or customers
    last = previous_month(reports.clock.now().date())
    recent = []
    for c in customers[:20]:
        recent.append({"name": c.name, "label": month_label(last), "href": f"/reports/monthly/{c.key}/{last}"})
    return page(
        "reports/index.html",
        actor,
        section="reports",
        title="Monthly reports",
        customers=customers,
        selected=customer or (customers[0].key if customers else ""),
        month=month or last,
        recent=recent,
    )


@get("/reports/monthly/{customer:str}/{month:str}", include_in_schema=False)
async def monthly_report_page(
    reports: ReportService, actor: Actor, customer: str, month: str
) -> Template | Response[bytes]:
    """The page, or with `.pdf` after the month the PDF (one route: the month segment carries it)."""
    if month.endswith(".pdf"):
        report = await reports.monthly(actor, parse_ref(customer), month.removesuffix(".pdf"))
        content = await asyncio.to_thread(render_pdf, report)
        filename = f"keel-report-{report.data['customer']}-{report.data['month']}.pdf"
        return Response(
            content=content,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )
    report = await reports.with_changes(actor, parse_ref(customer), month)
    data = report.data
    base = f"/reports/monthly/{data['customer']}/{data['month']}"
    return page(
        "reports/monthly.html",
        actor,
        section="reports",
        title=f"{data['customer_name']} · {data['month_label']}",
        r=data,
        v=report_view(data, report.issued_at),
        frozen=report.frozen,
        issued_by=report.issued_by,
        changes=report.changes,
        can_issue=actor.is_provider_staff and not report.frozen and not data.get("draft"),
        pdf_href=f"{base}.pdf",
        json_href=f"/api/reports/monthly?customer={data['customer']}&month={data['month']}",
        issue_href=f"{base}/issue",
    )


@post("/reports/monthly/{customer:str}/{month:str}/issue", include_in_schema=False)
async def issue_report_page(reports: ReportService, actor: Actor, customer: str, month: str) -> Redirect:
    if month.endswith(".pdf"):
        raise InvalidInput.field("month", "must be a month as YYYY-MM")
    report = await reports.issue(actor, parse_ref(customer), month)
    return Redirect(f"/reports/monthly/{report.data['customer']}/{report.data['month']}", status_code=303)


NAV.append(NavEntry("reports", "Reports", "/reports", _reports_allowed))

HANDLERS: list[Any] = [reports_index, monthly_report_page, issue_report_page]
