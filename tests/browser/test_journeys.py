"""The main journey of each role, in headless Chromium against `keel serve` (see conftest.py).

Each journey signs in through the form, as a person would, in a browser context of its own.
The server and its data (tests/browser/seed.py) are shared by the session, so a journey that
changes a record owns that record: no other journey reads it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Server, sign_in


def test_change_manager_authorizes_an_rfc_from_the_queue(page: Any, keel_server: Server) -> None:
    rfc = keel_server.facts["rfc"]["key"]
    sign_in(page, keel_server, "carl")
    page.get_by_role("link", name="Change queue").click()
    expect(page.get_by_role("heading", level=1, name="Change queue")).to_be_visible()
    row = page.locator(f'tr[data-rfc="{rfc}"]')
    expect(row).to_contain_text("Grow the ERP database volume")
    expect(row).to_contain_text("Submitted")
    row.get_by_label(f"Release requirements for {rfc}").fill("test evidence, backup verified")
    row.get_by_role("button", name=re.compile(r"^Authorize")).click()
    expect(page).to_have_url(re.compile(rf"/changes/{rfc}\?done=authorize$"))
    expect(page.get_by_role("status")).to_contain_text(f"Authorized. {rfc} is now authorized.")
    expect(page.locator("main")).to_contain_text("test evidence")
    # Back in the queue it waits for the next step (approve or refer), no longer for screening.
    page.goto("/changes")
    expect(page.locator(f'tr[data-rfc="{rfc}"]')).to_contain_text("Authorized")


def test_engineer_opens_a_ci_and_its_impact_picture(page: Any, keel_server: Server) -> None:
    sign_in(page, keel_server, "eve")
    expect(page).to_have_url(re.compile(r"/cis$"))
    page.get_by_label("Search").fill("acme-erp-db")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="acme-erp-db", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("acme-erp-db")
    page.get_by_role("link", name="Impact view").click()
    expect(page.get_by_role("heading", level=1, name="Impact of acme-erp-db")).to_be_visible()
    picture = page.locator(".graph-wrap svg")
    expect(picture).to_be_visible()
    # What depends on the database, directly and through the app, is drawn in the picture.
    expect(picture).to_contain_text("acme-erp-app")
    expect(picture).to_contain_text("acme-web-portal")
    box = picture.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 40, box  # drawn, not an empty box


def test_customer_sees_the_portal_and_never_another_customers_ci(page: Any, keel_server: Server) -> None:
    facts = keel_server.facts
    sign_in(page, keel_server, "acme-contact")
    expect(page).to_have_url(re.compile(r"/portal$"))
    expect(page.get_by_role("heading", level=1, name="Acme Corp")).to_be_visible()
    cis = page.locator("section", has=page.locator("#cis-heading"))
    expect(cis.get_by_role("row", name=re.compile(r"Database\s+1"))).to_be_visible()
    expect(cis.get_by_role("row", name=re.compile(r"Application\s+1"))).to_be_visible()
    expect(cis).to_contain_text(f"provider CI #{facts['cis']['prov-shared-cluster']}")
    expect(cis).not_to_contain_text("prov-shared-cluster")
    reports = page.locator("section", has=page.locator("#reports-heading"))
    first = reports.locator(f'a[data-month="{facts["first_month"]}"]')
    expect(first).to_have_attribute("href", f"/reports/monthly/ACME/{facts['first_month']}")
    rfcs = page.locator("section", has=page.locator("#rfcs-heading"))
    expect(rfcs).to_contain_text(facts["rfc"]["key"])
    rfcs.get_by_role("link", name=facts["rfc"]["key"]).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(facts["rfc"]["key"])
    expect(page.locator("main")).not_to_contain_text("globex", ignore_case=True)

    response = page.goto(f"/cis/{facts['cis']['globex-ledger']}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_contain_text("404")
    expect(page.locator("body")).not_to_contain_text("globex-ledger")
    response = page.goto("/cis/globex-ledger/impact")
    assert response is not None and response.status == 404
    page.goto("/cis?q=globex")
    expect(page.locator("main")).not_to_contain_text("globex-ledger")


def test_customer_reads_the_months_report_and_confirms_an_incident(page: Any, keel_server: Server) -> None:
    facts = keel_server.facts
    month = facts["report_month"]
    waiting_key = facts["incidents"]["waiting"]["key"]
    closed_key = facts["incidents"]["closed"]["key"]
    globex_key = facts["incidents"]["globex"]["key"]
    sign_in(page, keel_server, "acme-contact")
    expect(page).to_have_url(re.compile(r"/portal$"))

    # The month's report, opened from the portal's list.
    reports = page.locator("section", has=page.locator("#reports-heading"))
    reports.locator(f'a[data-month="{month}"]').click()
    expect(page).to_have_url(re.compile(rf"/reports/monthly/ACME/{month}$"))
    label = dt.date.fromisoformat(f"{month}-01").strftime("%B %Y")
    expect(page.get_by_role("heading", level=1, name=f"Acme Corp: {label}")).to_be_visible()
    summary = page.locator("section", has=page.locator("#r-summary"))
    expect(summary.locator(".report-summary").first).to_contain_text(
        f"In {label} we handled two incidents for Acme Corp."
    )
    incidents = page.locator("section", has=page.locator("#r-incidents"))
    expect(
        incidents.locator("div", has=page.locator("dt", has_text=re.compile(r"^Raised$"))).locator("dd")
    ).to_have_text("2")
    by_priority = incidents.locator("table", has=page.get_by_text("Agreed times by priority"))
    expect(by_priority.get_by_role("row", name=re.compile(r"^High\s+1\b"))).to_be_visible()
    expect(by_priority.get_by_role("row", name=re.compile(r"^Normal\s+1\b"))).to_be_visible()
    expect(incidents).to_contain_text(waiting_key)
    expect(incidents).to_contain_text(closed_key)
    charts = incidents.locator(".report-chart svg")
    expect(charts).to_have_count(2)
    expect(charts.first).to_be_visible()
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 40, box  # drawn, not an empty box
    main = page.locator("main")
    expect(main).not_to_contain_text("globex", ignore_case=True)
    expect(main).not_to_contain_text(globex_key)

    # The same report as a PDF, fetched with the contact's session.
    pdf_href = page.get_by_role("link", name="Download PDF").get_attribute("href")
    assert pdf_href == f"/reports/monthly/ACME/{month}.pdf", pdf_href
    pdf = page.request.get(pdf_href, timeout=60_000)
    assert pdf.status == 200, (pdf.status, pdf.text()[:500])
    assert pdf.headers["content-type"].startswith("application/pdf"), pdf.headers
    assert pdf.body().startswith(b"%PDF-"), pdf.body()[:40]

    # Back on the portal, the resolved incident waits for the contact: they confirm it.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Portal", exact=True).click()
    expect(page).to_have_url(re.compile(r"/portal$"))
    waiting = page.locator("section", has=page.locator("#waiting-heading"))
    row = waiting.locator(f'li[data-incident="{waiting_key}"]')
    expect(row).to_contain_text("ERP database slow at month end")
    expect(row).to_contain_text("Confirm it is resolved, or reopen it")
    expect(waiting.locator(f'li[data-incident="{closed_key}"]')).to_have_count(0)
    row.get_by_role("link", name=waiting_key).click()
    expect(page).to_have_url(re.compile(rf"/incidents/{waiting_key}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(waiting_key)
    confirm = page.locator("#action-confirm")
    confirm.get_by_label("Confirmed by").fill("Dana Acme, IT lead")
    confirm.get_by_label("Comment").fill("The ERP answers quickly again.")
    confirm.get_by_role("button", name="Confirm it is fixed").click()
    expect(page).to_have_url(re.compile(rf"/incidents/{waiting_key}\?done=confirm$"))
    expect(page.get_by_role("status")).to_contain_text(f"Confirmed: closed. {waiting_key} is now closed.")
    resolution = page.locator("section", has=page.locator("#closure-heading"))
    expect(resolution).to_contain_text("Dana Acme, IT lead")
    expect(page.locator('li[data-event="confirmed"]')).to_contain_text("The ERP answers quickly again.")
    expect(page.locator("#actions")).to_contain_text(f"No action is open to you on {waiting_key} now.")

    # Closed: nothing waits for the contact any more, and it has left the open incidents.
    page.goto("/portal")
    expect(waiting.locator(f'li[data-incident="{waiting_key}"]')).to_have_count(0)
    expect(waiting).to_contain_text("Nothing waits for your approval, confirmation or information.")
    open_incidents = page.locator("section", has=page.locator("#incidents-heading"))
    expect(open_incidents.locator(f'tr[data-incident="{waiting_key}"]')).to_have_count(0)
