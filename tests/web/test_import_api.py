"""POST /api/import/cis and GET /api/export/cis through the HTTP client."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from tests.support import World

CSV_FILE = (
    "record,customer,name,class,criticality,source,target,type,attr.cpu_cores,attr.applications\n"
    "ci,ACME,web-01,server,high,,,,8,shop; blog\n"
    "ci,ACME,shop,application,,,,,,\n"
    "relationship,ACME,,,,shop,web-01,runs_on,,\n"
)


async def test_engineer_imports_csv_and_reads_the_result(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    response = await eve.post("/api/import/cis", content=CSV_FILE.encode(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json() == {"cis_created": 2, "relationships_created": 1}

    response = await eve.get("/api/cis?customer=ACME&limit=10")
    assert response.status_code == 200, response.text
    items = {item["name"]: item for item in response.json()["items"]}
    assert set(items) == {"web-01", "shop"}
    assert items["web-01"]["attributes"] == {"cpu_cores": 8, "applications": ["shop", "blog"]}

    response = await eve.get(f"/api/cis/{items['web-01']['id']}/impact?direction=down")
    assert response.status_code == 200, response.text
    assert [item["ci"]["name"] for item in response.json()["items"]] == ["shop"]

    response = await eve.get(f"/api/cis/{items['web-01']['id']}/history")
    assert response.status_code == 200, response.text
    assert "imported" in response.text


async def test_json_import_takes_the_customer_parameter(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    body = {
        "cis": [{"name": "db-01", "class": "database"}, {"name": "app-01", "class": "application"}],
        "relationships": [{"source": "app-01", "target": "db-01", "type": "depends_on"}],
    }
    response = await eve.post(
        "/api/import/cis?customer=GLOBEX",
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"cis_created": 2, "relationships_created": 1}
    response = await eve.get("/api/cis/GLOBEX:db-01")
    assert response.status_code == 200, response.text


async def test_bad_rows_answer_422_with_row_field_and_reason_and_save_nothing(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    content = (
        "record,customer,name,class,source,target,type,attr.cpu_cores\n"
        "ci,ACME,web-01,server,,,,8\n"
        "ci,ACME,web-02,toaster,,,,\n"
        "ci,ACME,web-03,server,,,,lots\n"
        "relationship,ACME,,,web-01,web-01,runs_on,\n"
        "relationship,ACME,,,web-01,GLOBEX:nothing,runs_on,\n"
    )
    response = await eve.post("/api/import/cis", content=content.encode(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    assert "Nothing was imported" in body["detail"]
    assert [(f["row"], f["field"]) for f in body["fields"]] == [
        (2, "class"),
        (3, "attr.cpu_cores"),
        (4, "target"),
        (5, "target"),
    ]
    assert all(f["reason"] for f in body["fields"])
    response = await eve.get("/api/cis?customer=ACME")
    assert response.json()["total"] == 0


async def test_import_refuses_customers_and_unknown_content_types(world: World, sign_in: Any) -> None:
    contact = await sign_in("acme-contact")
    response = await contact.post("/api/import/cis", content=CSV_FILE.encode(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 403, response.text
    eve = await sign_in("eve")
    response = await eve.post("/api/import/cis", content=b"<cis/>", headers={"Content-Type": "application/xml"})
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["field"] == "Content-Type"
    response = await eve.post("/api/import/cis", content=b"{", headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["field"] == "body"


async def test_export_csv_is_scoped_and_neutralised(world: World, sign_in: Any) -> None:
    await world.ci("ACME", "=HYPERLINK(evil)", "server", description="+1 and @home")
    await world.ci("GLOBEX", "globex-secret", "server")
    contact = await sign_in("acme-contact")
    response = await contact.get("/api/export/cis?format=csv")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert [(row["name"], row["description"]) for row in rows] == [("'=HYPERLINK(evil)", "'+1 and @home")]
    assert "globex-secret" not in response.text
    response = await contact.get("/api/export/cis?format=csv&customer=GLOBEX")
    assert response.status_code == 404, response.text

    admin = await sign_in("admin")
    response = await admin.get("/api/export/cis?format=json")
    assert response.status_code == 200, response.text
    assert {ci["name"] for ci in response.json()["cis"]} == {"=HYPERLINK(evil)", "globex-secret"}
    response = await admin.get("/api/export/cis?format=xlsx")
    assert response.status_code == 422, response.text


async def test_exported_csv_imports_back_through_the_api(world: World, sign_in: Any) -> None:
    eve = await sign_in("eve")
    response = await eve.post("/api/import/cis", content=CSV_FILE.encode(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    exported = (await eve.get("/api/export/cis?format=csv&customer=ACME")).text
    # Re-importing the same file into the same customer clashes on every name, row by row.
    response = await eve.post("/api/import/cis", content=exported.encode(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 422, response.text
    assert {(f["row"], f["field"]) for f in response.json()["fields"]} >= {(1, "name"), (2, "name")}
    # Into an empty customer it goes in whole, once the customer column says so.
    initech = await (await sign_in("admin")).post("/api/customers", json={"key": "INITECH", "name": "Initech"})
    assert initech.status_code == 201, initech.text
    moved = exported.replace("ACME", "INITECH")
    response = await eve.post("/api/import/cis", content=moved.encode(), headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.json() == {"cis_created": 2, "relationships_created": 1}
