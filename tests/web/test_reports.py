"""Monthly reports over HTTP: the data, the page, the PDF; issuing; tenancy; PDF safety."""

from __future__ import annotations

import io
from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

from problem.reports import MonthlyReport
from tests.integration.test_reports import add_incident, add_rfc, at
from tests.support import World
from web.controllers.pages_reports import BundledAssetsOnly, print_html, render_pdf

Client = AsyncTestClient[Litestar]
NASTY = (
    '<img src="file:///etc/passwd"><link rel="stylesheet" href="http://attacker.test/x.css">'
    "<style>body { background: url(http://attacker.test/bg.png) }</style>"
)


def pdf_text(content: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)


async def test_the_data_has_the_contract_fields(world: World, sign_in: Any) -> None:
    await add_incident(world.acme.id, at("2026-10-10T14:00:00"), priority="high")
    session = await sign_in("sam")
    response = await session.get("/api/reports/monthly?customer=ACME&month=2026-10")
    assert response.status_code == 200, response.text
    body = response.json()
    for name in ("customer", "month", "summary", "incidents", "rfcs", "patch_compliance", "sla"):
        assert name in body
    assert body["customer"] == "ACME" and body["month"] == "2026-10"
    assert body["frozen"] is False and body["issued_at"] is None
    assert body["incidents"]["total"] == 1
    assert "In October 2026 we handled one incident for Acme Corp" in body["summary"]


async def test_bad_input_answers_404_or_422_with_the_reason(world: World, sign_in: Any) -> None:
    session = await sign_in("sam")
    unknown = await session.get("/api/reports/monthly?customer=NOPE&month=2026-10")
    assert unknown.status_code == 404
    future = await session.get("/api/reports/monthly?customer=ACME&month=2027-01")
    assert future.status_code == 422
    assert "future" in future.json()["detail"]
    malformed = await session.get("/api/reports/monthly?customer=ACME&month=2026-1")
    assert malformed.status_code == 422 and "month" in malformed.json()["detail"]
    missing = await session.get("/api/reports/monthly?month=2026-10")
    assert missing.status_code == 422 and "customer" in missing.json()["detail"]
    page = await session.get("/reports/monthly/ACME/2027-01", headers={"accept": "text/html"})
    assert page.status_code == 422


async def test_a_customer_sees_only_their_own_report(world: World, sign_in: Any) -> None:
    globex = await sign_in("globex-contact")
    for url in (
        "/api/reports/monthly?customer=ACME&month=2026-10",
        "/reports/monthly/ACME/2026-10",
        "/reports/monthly/ACME/2026-10.pdf",
        f"/api/reports/monthly?customer={world.acme.id}&month=2026-10",
    ):
        response = await globex.get(url)
        assert response.status_code == 404, url
    own = await globex.get("/api/reports/monthly?customer=GLOBEX&month=2026-10")
    assert own.status_code == 200 and own.json()["customer"] == "GLOBEX"
    refused = await globex.post("/api/reports/monthly/issue?customer=GLOBEX&month=2026-10")
    assert refused.status_code == 403


async def test_issuing_freezes_and_the_page_shows_what_changed(world: World, sign_in: Any) -> None:
    incident = await add_incident(world.acme.id, at("2026-10-10T14:00:00"))
    sam = await sign_in("sam")
    issued = await sam.post("/api/reports/monthly/issue?customer=ACME&month=2026-10")
    assert issued.status_code == 201, issued.text
    assert issued.json()["frozen"] is True and issued.json()["issued_by"] == "sam"
    again = await sam.post("/api/reports/monthly/issue?customer=ACME&month=2026-10")
    assert again.status_code == 409 and again.json()["state"] == "issued"
    current = await sam.post("/api/reports/monthly/issue?customer=ACME&month=2026-11")
    assert current.status_code == 422 and "not over" in current.json()["detail"]

    await add_incident(world.acme.id, at("2026-10-20T14:00:00"), priority="critical")
    assert incident
    data = await sam.get("/api/reports/monthly?customer=ACME&month=2026-10")
    assert data.json()["frozen"] is True and data.json()["incidents"]["total"] == 1
    compared = await sam.get("/api/reports/monthly?customer=ACME&month=2026-10&changes=true")
    changes = {c["figure"]: (c["issued"], c["now"]) for c in compared.json()["changes_since_issue"]}
    assert changes["Incidents"] == (1, 2) and changes["Critical incidents"] == (0, 1)
    live = await sam.get("/api/reports/monthly?customer=ACME&month=2026-10&live=true")
    assert live.json()["frozen"] is False and live.json()["incidents"]["total"] == 2

    contact = await sign_in("acme-contact")
    page = await contact.get("/reports/monthly/ACME/2026-10")
    assert page.status_code == 200
    assert "What changed since it was issued" in page.text
    assert "Critical incidents" in page.text


async def test_the_page_escapes_tenant_text_and_draws_charts(world: World, sign_in: Any) -> None:
    await add_incident(world.acme.id, at("2026-10-10T14:00:00"), priority="critical", title=NASTY)
    await add_rfc(world.acme.id, NASTY, [(at("2026-10-05T14:00:00"), "created", "draft")])
    session = await sign_in("acme-contact")  # pages accept the bearer token too
    page = await session.get("/reports/monthly/ACME/2026-10")
    assert page.status_code == 200
    assert '<img src="file:///etc/passwd">' not in page.text
    assert "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in page.text or "&lt;img src=&quot;" in page.text
    assert page.text.count("<svg") == 3
    assert "Incidents per week, by priority" in page.text


async def test_the_pdf_is_a_pdf_with_the_customer_and_figures(world: World, sign_in: Any) -> None:
    await add_incident(world.acme.id, at("2026-10-10T14:00:00"), priority="high")
    session = await sign_in("acme-contact")
    response = await session.get("/reports/monthly/ACME/2026-10.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    assert "Acme Corp" in text and "October 2026" in text
    assert "Incidents per week" in text  # the chart's title, drawn from the inline SVG


async def test_the_pdf_renderer_fetches_only_bundled_assets(world: World, sign_in: Any) -> None:
    await add_incident(world.acme.id, at("2026-10-10T14:00:00"), title=NASTY)
    session = await sign_in("sam")
    data = (await session.get("/api/reports/monthly?customer=ACME&month=2026-10")).json()
    report = MonthlyReport({k: v for k, v in data.items() if k not in ("frozen", "issued_at", "issued_by")}, False)
    html = print_html(report)
    assert "<img" not in html and "<style>" not in html.split("</head>")[1]
    assets = BundledAssetsOnly()
    content = render_pdf(report, assets)
    assert content.startswith(b"%PDF")
    assert assets.requested == ["keel-asset:report.css"]
    assert "file:///etc/passwd" in pdf_text(content)  # shown as text, never fetched


def test_the_fetcher_refuses_anything_but_bundled_assets() -> None:
    assets = BundledAssetsOnly()
    for url in (
        "file:///etc/passwd",
        "http://attacker.test/x.css",
        "https://attacker.test/x.png",
        "data:image/svg+xml,<svg/>",
        "keel-asset:../../../etc/passwd",
        "keel-asset:keel.css",
    ):
        try:
            assets.fetch(url)
        except ValueError:
            continue
        raise AssertionError(f"fetched {url}")
    assert assets.fetch("keel-asset:report.css").read().startswith(b"/*")


async def test_reports_index_leads_to_the_page(world: World, sign_in: Any) -> None:
    session = await sign_in("sam")
    index = await session.get("/reports")
    assert index.status_code == 200 and "Acme Corp" in index.text
    moved = await session.get("/reports?customer=ACME&month=2026-10", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == "/reports/monthly/ACME/2026-10"


async def test_issue_from_the_page_form(world: World, client: Client) -> None:
    from tests.web.test_pages import csrf_from, signed_in

    await signed_in(client, world, "sam")
    page = await client.get("/reports/monthly/ACME/2026-10")
    assert page.status_code == 200 and "Issue this report" in page.text
    response = await client.post(
        "/reports/monthly/ACME/2026-10/issue", data={"_csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    frozen = await client.get("/reports/monthly/ACME/2026-10")
    assert "Issued" in frozen.text and "Issue this report" not in frozen.text
