"""Bulk import and export: formats, the all-or-nothing rule, the per-row error report, history,
graph coherence, round trips, formula neutralisation and tenant scoping. Runs on SQLite and on
PostgreSQL (KEEL_DATABASE_URL)."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import pytest

from cmdb import db
from cmdb import repository as repo
from cmdb.errors import Conflict, Forbidden, InvalidInput, NotFound
from cmdb.importexport import MAX_PROBLEMS, ImportExportService
from cmdb.models import Actor
from tests.support import FakeClock, World, reset_tables

CI_HEADER = "name,customer,class,status,criticality,description,attr.cpu_cores,attr.memory_gb,attr.applications\n"


def transfer(world: World) -> ImportExportService:
    return ImportExportService(world.clock, world.service)


async def counts() -> dict[str, int]:
    engine = repo.engine()
    found = {}
    for table in ("ci", "relationship", "history", "graph_log"):
        rows = await db.fetch(engine, f"SELECT COUNT(*) AS n FROM {table}")
        found[table] = int(rows[0]["n"])
    found["revision"] = await repo.graph_revision()
    return found


async def refused(world: World, content: str | bytes, fmt: str = "csv", **kwargs: Any) -> list[dict[str, Any]]:
    """Imports as eve, expects a refusal that saved nothing, returns the problems."""
    before = await counts()
    with pytest.raises(InvalidInput) as caught:
        await transfer(world).import_records(world.actors["eve"], content, fmt, **kwargs)
    assert await counts() == before
    return [problem.as_dict() for problem in caught.value.problems]


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


# --- what an import creates ----------------------------------------------------------------


async def test_csv_import_creates_cis_relationships_and_history(world: World) -> None:
    eve = world.actors["eve"]
    core = await world.ci(world.provider.key, "core-switch", "network_device")
    existing = await world.ci("ACME", "legacy-db", "database")
    content = (
        "record,customer,name,class,status,criticality,description,source,target,type,note,"
        "attr.cpu_cores,attr.memory_gb,attr.applications,attr.version\n"
        "ci,ACME,web-01,server,live,high,Front web server,,,,,8,16.5,shop; blog,\n"
        # A relationship may come before the CIs it names: references resolve across the file.
        "relationship,ACME,,,,,,shop,web-01,runs_on,moved in 2026,,,,\n"
        "ci,ACME,shop,application,planned,,,,,,,,,,2.1\n"
        "relationship,ACME,,,,,,shop,legacy-db,depends_on,,,,,\n"
        f"relationship,ACME,,,,,,web-01,{core.id},connected_to,,,,,\n"
        "relationship,,,,,,,ACME:web-01,PROV:core-switch,depends_on,,,,,\n"
    )
    report = await transfer(world).import_records(eve, content.encode("utf-8-sig"), "csv")
    assert (report.cis_created, report.relationships_created) == (2, 4)

    web = await world.service.get_ci(eve, "ACME:web-01")
    assert web.ci_class.value == "server" and web.criticality.value == "high"
    assert web.attributes == {"cpu_cores": 8, "memory_gb": 16.5, "applications": ["shop", "blog"]}
    assert web.description == "Front web server"
    shop = await world.service.get_ci(eve, "ACME:shop")
    assert shop.status.value == "planned" and shop.criticality.value == "medium"
    assert shop.attributes == {"version": "2.1"}

    links = {(r.source_id, r.target_id, r.type.value, r.note) for r in await repo.relationships_of(web.id)}
    assert links == {
        (shop.id, web.id, "runs_on", "moved in 2026"),
        (web.id, core.id, "connected_to", ""),
        (web.id, core.id, "depends_on", ""),
    }
    assert {(r.source_id, r.target_id) for r in await repo.relationships_of(existing.id)} == {(shop.id, existing.id)}

    _, entries, total = await world.service.history(eve, web.id, 50, 0)
    imported = [entry for entry in entries if entry.action == "imported"]
    assert total == 4 and len(imported) == 4
    created = next(entry for entry in imported if entry.entity == "ci")
    assert created.entity_id == web.id and created.actor_name == "eve" and created.actor_id == eve.person_id
    assert created.at == world.clock.now()
    assert created.after == {
        "name": "web-01",
        "class": "server",
        "status": "live",
        "criticality": "high",
        "description": "Front web server",
        "owner": None,
        "support": [],
        "attributes": {"applications": ["shop", "blog"], "cpu_cores": 8, "memory_gb": 16.5},
    }
    edge = next(entry for entry in imported if entry.entity == "relationship" and entry.ci_id == shop.id)
    assert edge.after == {"source": "shop", "type": "runs_on", "target": "web-01"}
    assert edge.other_ci_id == web.id and edge.comment == "moved in 2026"
    # The history row names the relationship it created.
    assert await repo.get_relationship(eve.scope, edge.entity_id) is not None


async def test_json_import_with_default_customer_and_bare_list(world: World) -> None:
    eve = world.actors["eve"]
    document: dict[str, list[dict[str, Any]]] = {
        "cis": [
            {"name": "db-01", "class": "database", "attributes": {"size_gb": 120, "engine": "PostgreSQL"}},
            {"name": "app-01", "class": "application", "customer": "GLOBEX"},
            {"name": "app-02", "class": "application", "description": None},
        ],
        "relationships": [
            {"source": "app-02", "target": "db-01", "type": "depends_on", "note": "orders"},
            {"source": "GLOBEX:app-01", "target": "PROV:nope", "type": "depends_on", "customer": "GLOBEX"},
        ],
    }
    problems = await refused(world, json.dumps(document), "json", customer="ACME")
    assert problems == [
        {
            "row": 1,
            "field": "relationships[1].target",
            "reason": "no CI named nope in PROV, neither in this file nor in Keel",
        }
    ]
    document["relationships"].pop()
    report = await transfer(world).import_records(eve, json.dumps(document), "json", customer="ACME")
    assert (report.cis_created, report.relationships_created) == (3, 1)
    assert (await world.service.get_ci(eve, "GLOBEX:app-01")).tenant_id == world.globex.id
    db_ci = await world.service.get_ci(eve, "ACME:db-01")
    assert db_ci.attributes == {"size_gb": 120, "engine": "PostgreSQL"}

    bare = [{"name": "db-02", "class": "database", "customer": "ACME"}]
    report = await transfer(world).import_records(eve, json.dumps(bare).encode(), "json")
    assert (report.cis_created, report.relationships_created) == (1, 0)


async def test_relationship_file_is_told_by_its_header(world: World) -> None:
    eve = world.actors["eve"]
    a = await world.ci("ACME", "a")
    await world.ci("ACME", "b")
    content = f"source,target,type\n{a.id},b,depends_on\n"
    report = await transfer(world).import_records(eve, content, "csv", customer="ACME")
    assert (report.cis_created, report.relationships_created) == (0, 1)
    # The same file without a customer cannot tell whose "b" it means.
    problems = await refused(world, "source,target,type\na,b,runs_on\n")
    assert {(p["row"], p["field"]) for p in problems} == {(1, "source"), (1, "target")}
    assert "needs a customer" in problems[0]["reason"]


async def test_customer_ci_may_rely_on_provider_ci_but_not_the_reverse(world: World) -> None:
    eve = world.actors["eve"]
    await world.ci(world.provider.key, "san-01", "storage")
    ok = "customer,source,target,type\nACME,app,PROV:san-01,depends_on\n"
    ci_file = "name,customer,class\napp,ACME,application\n"
    await transfer(world).import_records(eve, ci_file, "csv")
    report = await transfer(world).import_records(eve, ok, "csv")
    assert report.relationships_created == 1
    problems = await refused(world, "customer,source,target,type\nPROV,san-01,ACME:app,hosted_on\n")
    assert problems[0]["field"] == "target" and "different customers" in problems[0]["reason"]


# --- all or nothing and the error report ---------------------------------------------------


async def test_one_bad_row_in_the_middle_saves_nothing(world: World) -> None:
    await world.ci("ACME", "existing")
    lines = ["record,customer,name,class,source,target,type"]
    for number in range(1, 101):
        lines.append(f"ci,ACME,host-{number:03},{'toaster' if number == 50 else 'server'},,,")
    for number in range(2, 101):
        lines.append(f"relationship,ACME,,,host-{number:03},host-{number - 1:03},depends_on")
    problems = await refused(world, "\n".join(lines) + "\n")
    assert problems == [
        {
            "row": 50,
            "field": "class",
            "reason": "unknown class 'toaster'; known: " + ", ".join(sorted(_classes())),
        }
    ]


def _classes() -> list[str]:
    from cmdb.models import CIClass

    return CIClass.values()


CSV_CASES = [
    pytest.param(
        CI_HEADER + "a,ACME,server,,,,,,\nb,ACME,toaster,,,,,,\n",
        (2, "class", "unknown class 'toaster'"),
        id="unknown-class",
    ),
    pytest.param(
        "name,customer,class,attr.colour\na,ACME,server,red\n",
        (1, "attr.colour", "is not an attribute of class server"),
        id="unknown-attribute",
    ),
    pytest.param(
        CI_HEADER + "a,ACME,server,,,,eight,,\n",
        (1, "attr.cpu_cores", "must be a whole number"),
        id="wrong-attribute-type",
    ),
    pytest.param(
        "name,customer,class,attr.memory_gb\na,ACME,server,nan\n",
        (1, "attr.memory_gb", "must be a finite number"),
        id="non-finite-number",
    ),
    pytest.param(
        "name,customer,class,status\na,ACME,server,broken\n",
        (1, "status", "unknown status 'broken'"),
        id="unknown-status",
    ),
    pytest.param(
        "customer,source,target,type\nACME,web,db,likes\n",
        (1, "type", "unknown type 'likes'"),
        id="unknown-relationship-type",
    ),
    pytest.param(
        "customer,source,target,type\nACME,web,web,depends_on\n",
        (1, "target", "a CI cannot relate to itself"),
        id="self-loop",
    ),
    pytest.param(
        "record,customer,name,class,source,target,type\nci,ACME,x,server,,,\nci,GLOBEX,x,server,,,\nci,ACME,x,server,,,\n",
        (3, "name", "x appears twice in this file for ACME (first at row 1)"),
        id="duplicate-name-in-file",
    ),
    pytest.param(
        "name,customer,class\nweb,ACME,server\n",
        (1, "name", "ACME already has a CI named web"),
        id="duplicate-name-in-database",
    ),
    pytest.param(
        "customer,source,target,type\nACME,web,GLOBEX:gx,depends_on\n",
        (1, "target", "CIs of two different customers cannot be related"),
        id="cross-customer-edge",
    ),
    pytest.param(
        "customer,source,target,type\nACME,web,ghost,depends_on\n",
        (1, "target", "no CI named ghost in ACME, neither in this file nor in Keel"),
        id="unknown-reference",
    ),
    pytest.param(
        "customer,source,target,type\nACME,web,99999,depends_on\n",
        (1, "target", "no CI 99999 exists"),
        id="unknown-id",
    ),
    pytest.param(
        "customer,source,target,type\nACME,web,NOPE:db,depends_on\n",
        (1, "target", "no customer NOPE exists"),
        id="unknown-customer-in-reference",
    ),
    pytest.param(
        "customer,source,target,type\nACME,web,db,depends_on\n",
        (1, "target", "web already depends on db"),
        id="duplicate-edge-in-database",
    ),
    pytest.param(
        "customer,source,target,type\nACME,web,db,runs_on\nACME,web,db,runs_on\n",
        (2, "target", "web runs on db appears twice in this file (first at row 1)"),
        id="duplicate-edge-in-file",
    ),
    pytest.param(
        "name,class\norphan,server\n",
        (1, "customer", "is required"),
        id="missing-customer",
    ),
    pytest.param(
        "name,customer,class\nweb:01,ACME,server\n",
        (1, "name", "must not contain ':'"),
        id="colon-in-name",
    ),
    pytest.param(
        "name,customer,class\nweb-02,INITECH,server\n",
        (1, "customer", "no customer INITECH exists"),
        id="unknown-customer",
    ),
    pytest.param(
        'name,customer,class,description\na,ACME,server,"two\nlines"\nb,ACME,toaster,\n',
        (2, "class", "unknown class 'toaster'"),
        id="rows-count-records-not-lines",
    ),
    pytest.param(
        "record,name,customer,class\nserver,web-02,ACME,server\n",
        (1, "record", "must be ci or relationship"),
        id="unknown-record-kind",
    ),
]


@pytest.mark.parametrize(("content", "expected"), CSV_CASES)
async def test_error_report_names_row_column_and_reason(
    world: World, content: str, expected: tuple[int, str, str]
) -> None:
    web = await world.ci("ACME", "web")
    db_ci = await world.ci("ACME", "db", "database")
    await world.ci("GLOBEX", "gx")
    await world.link(web.id, db_ci.id, "depends_on")
    problems = await refused(world, content)
    row, field, reason = expected
    assert [(p["row"], p["field"]) for p in problems] == [(row, field)], problems
    assert reason in problems[0]["reason"]


async def test_json_problems_name_the_path_within_each_list(world: World) -> None:
    document = {
        "cis": [
            {"name": "ok", "customer": "ACME", "class": "server"},
            {"name": "bad", "customer": "ACME", "class": "server", "attributes": {"cpu_cores": "many"}, "colour": 1},
        ],
        "relationships": [
            {"source": "ok", "target": "bad", "type": "depends_on", "customer": "ACME"},
            {"source": "ok", "target": "ok", "type": "sits_on", "customer": "ACME"},
        ],
    }
    problems = await refused(world, json.dumps(document), "json")
    assert [(p["row"], p["field"]) for p in problems] == [
        (1, "cis[1].colour"),
        (1, "cis[1].attributes.cpu_cores"),
        (1, "relationships[1].type"),
    ]


async def test_unreadable_files_are_refused_with_a_reason(world: World) -> None:
    assert (await refused(world, "{not json", "json"))[0]["field"] == "body"
    assert (await refused(world, b"name,customer,class\n\xff\xfe,ACME,server\n"))[0]["field"] == "body"
    assert (await refused(world, ""))[0]["field"] == "body"
    assert (await refused(world, "name,customer,class\n"))[0]["reason"] == "holds no CIs or relationships"
    problems = await refused(world, "name,customer,kind\nweb,ACME,server\n")
    assert {p["field"] for p in problems} == {"kind", "class"}
    with pytest.raises(InvalidInput):
        await transfer(world).import_records(world.actors["eve"], "[]", "xml")
    with pytest.raises(InvalidInput) as caught:
        await transfer(world).import_records(world.actors["eve"], "[]", "json", customer="INITECH")
    assert caught.value.problems[0].field == "customer"


async def test_numbers_no_database_could_hold_are_refused_not_crashed_on(world: World) -> None:
    await world.ci("ACME", "web")
    document = {
        "cis": [{"name": "big", "customer": 10**30, "class": "server", "attributes": {"cpu_cores": 10**30}}],
        "relationships": [{"source": "web", "target": 2**31, "type": "depends_on", "customer": "ACME"}],
    }
    problems = await refused(world, json.dumps(document), "json")
    assert [(p["row"], p["field"]) for p in problems] == [(0, "cis[0].customer"), (0, "relationships[0].target")]
    with pytest.raises(InvalidInput):
        await transfer(world).import_records(world.actors["eve"], "[]", "json", customer=10**20)
    with pytest.raises(NotFound):
        await transfer(world).export_records(world.actors["eve"], customer=10**20, fmt="json")


async def test_many_unknown_customers_cost_one_read_not_one_each(world: World) -> None:
    content = "name,customer,class\n" + "".join(f"ci-{n},NOPE{n},server\n" for n in range(200))
    content += "ci-x,ACME,server\nci-y,GLOBEX,server\n"
    problems = await refused(world, content)
    assert len(problems) == 200
    assert {p["field"] for p in problems} == {"customer"} and problems[-1]["row"] == 200


async def test_the_report_lists_the_first_thousand_problems_and_counts_all(world: World) -> None:
    content = "name,customer,class\n" + "".join(f"ci-{n},ACME,toaster\n" for n in range(1500))
    with pytest.raises(InvalidInput) as caught:
        await transfer(world).import_records(world.actors["eve"], content, "csv")
    problems = caught.value.problems
    assert len(problems) == MAX_PROBLEMS
    assert [p.row for p in problems] == list(range(1, MAX_PROBLEMS + 1))
    assert "1500 problems" in caught.value.detail


async def test_only_ci_writers_may_import(world: World) -> None:
    with pytest.raises(Forbidden):
        await transfer(world).import_records(
            world.actors["acme-contact"], "name,customer,class\nx,ACME,server\n", "csv"
        )
    report = await transfer(world).import_records(world.actors["carl"], "name,customer,class\nx,ACME,server\n", "csv")
    assert report.cis_created == 1


async def test_a_name_taken_while_the_import_ran_saves_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation runs before the write transaction; the unique index catches a CI created in
    between, and the import answers a conflict with nothing saved."""
    service = transfer(world)
    original = service._write

    async def racing_write(*args: Any) -> Any:
        await world.ci("ACME", "host-7")
        return await original(*args)

    monkeypatch.setattr(service, "_write", racing_write)
    content = "name,customer,class\n" + "".join(f"host-{n},ACME,server\n" for n in range(10))
    before = await counts()
    with pytest.raises(Conflict):
        await service.import_records(world.actors["eve"], content, "csv")
    after = await counts()
    assert after["ci"] == before["ci"] + 1  # only the racing CI
    assert after["relationship"] == before["relationship"]


async def test_ids_are_read_back_when_they_cannot_be_proven(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a concurrent writer on PostgreSQL the new ids are not one consecutive run; the
    import then reads the rows back by name and edge. Forced here on both databases."""
    eve = world.actors["eve"]
    await world.ci("ACME", "existing")

    async def unproven(table: str, after: int, count: int) -> None:
        return None

    monkeypatch.setattr(repo, "inserted_ids", unproven)
    content = (
        "record,customer,name,class,source,target,type\n"
        "ci,ACME,b,server,,,\n"
        "ci,ACME,a,server,,,\n"
        "relationship,ACME,,,a,b,depends_on\n"
        "relationship,ACME,,,b,existing,runs_on\n"
        "relationship,ACME,,,a,existing,runs_on\n"
    )
    await transfer(world).import_records(eve, content, "csv")
    a, b = await world.service.get_ci(eve, "ACME:a"), await world.service.get_ci(eve, "ACME:b")
    for ci in (a, b):
        _, entries, _ = await world.service.history(eve, ci.id, 50, 0)
        assert [(e.entity, e.entity_id) for e in entries if e.entity == "ci"] == [("ci", ci.id)]
        assert entries[0].after is not None
    for rel in await repo.relationships_of(a.id):
        _, entries, _ = await world.service.history(eve, rel.source_id, 50, 0)
        mine = [e for e in entries if e.entity == "relationship" and e.entity_id == rel.id]
        assert len(mine) == 1 and mine[0].other_ci_id == rel.target_id


# --- the graph -----------------------------------------------------------------------------


async def test_graph_cache_sees_imported_cis_and_edges(world: World) -> None:
    eve = world.actors["eve"]
    db_ci = await world.ci("ACME", "orders-db", "database")
    assert (await world.service.impact(eve, db_ci.id)).total == 0  # the cache is built now
    content = (
        "record,customer,name,class,source,target,type\n"
        "ci,ACME,orders-app,application,,,\n"
        "ci,ACME,shop,service,,,\n"
        "relationship,ACME,,,orders-app,orders-db,depends_on\n"
        "relationship,ACME,,,shop,orders-app,depends_on\n"
    )
    await transfer(world).import_records(eve, content, "csv")
    result = await world.service.impact(eve, db_ci.id)
    assert [(row.ci.name if row.ci else None, row.depth) for row in result.items] == [("orders-app", 1), ("shop", 2)]
    log = await db.fetch(repo.engine(), "SELECT op FROM graph_log ORDER BY revision DESC LIMIT 1")
    assert log[0]["op"] == "rebuild"
    # A CI created after the import is applied incrementally on top of the rebuilt graph.
    later = await world.ci("ACME", "reporting", "application")
    await world.link(later.id, db_ci.id)
    assert (await world.service.impact(eve, db_ci.id)).total == 3


# --- export --------------------------------------------------------------------------------


async def _sample_estate(world: World) -> None:
    """CIs with every kind of value export must carry, made through an import."""
    await world.ci(world.provider.key, "core-switch", "network_device")
    content = (
        "record,customer,name,class,status,criticality,description,source,target,type,note,"
        "attr.cpu_cores,attr.memory_gb,attr.applications,attr.warranty_expires,attr.size_gb\n"
        'ci,ACME,web-01,server,live,high,"Front, with comma\nand a new line",,,,,8,16.5,shop; blog,2027-01-31,\n'
        "ci,ACME,=cmd|' /C calc'!A0,application,planned,low,@SUM(1+1),,,,,,,,,\n"
        "ci,ACME,2024,database,live,medium,-2 is negative,,,,,,,,,-5\n"
        "ci,GLOBEX,gx-web,server,live,medium,+1 plus,,,,,2,,,,\n"
        "relationship,ACME,,,,,,=cmd|' /C calc'!A0,web-01,runs_on,note with \"quotes\",,,,,\n"
        "relationship,ACME,,,,,,web-01,ACME:2024,depends_on,,,,,,\n"
        "relationship,ACME,,,,,,web-01,PROV:core-switch,connected_to,,,,,,\n"
    )
    await transfer(world).import_records(world.actors["eve"], content, "csv")


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_export_reimports_into_an_empty_database_unchanged(world: World, clock: FakeClock, fmt: str) -> None:
    await _sample_estate(world)
    admin = world.actors["admin"]
    exported = await transfer(world).export_records(admin, customer="ACME", fmt=fmt)
    everything = await transfer(world).export_records(admin, customer=None, fmt=fmt)

    await reset_tables()
    fresh = await World.create(clock)
    await fresh.ci(fresh.provider.key, "core-switch", "network_device")
    report = await transfer(fresh).import_records(fresh.actors["eve"], exported, fmt)
    assert (report.cis_created, report.relationships_created) == (3, 3)
    assert await transfer(fresh).export_records(fresh.actors["admin"], customer="ACME", fmt=fmt) == exported

    await reset_tables()
    fresh = await World.create(clock)
    await transfer(fresh).import_records(fresh.actors["eve"], everything, fmt)
    assert await transfer(fresh).export_records(fresh.actors["admin"], customer=None, fmt=fmt) == everything


async def test_csv_export_neutralises_formulas(world: World) -> None:
    await _sample_estate(world)
    text = await transfer(world).export_records(world.actors["admin"], customer="ACME", fmt="csv")
    rows = rows_of(text)
    app = next(row for row in rows if row["record"] == "ci" and row["class"] == "application")
    assert app["name"] == "'=cmd|' /C calc'!A0"
    assert app["description"] == "'@SUM(1+1)"
    database = next(row for row in rows if row["class"] == "database")
    assert database["name"] == "2024"
    assert database["description"] == "'-2 is negative"
    assert database["attr.size_gb"] == "'-5.0"
    edge = next(row for row in rows if row["record"] == "relationship" and row["type"] == "runs_on")
    assert edge["source"] == "'=cmd|' /C calc'!A0"
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (column, value)
    # JSON is not read by spreadsheets: values stay as they are.
    document = json.loads(await transfer(world).export_records(world.actors["admin"], customer="ACME", fmt="json"))
    assert "=cmd|' /C calc'!A0" in {ci["name"] for ci in document["cis"]}


async def test_export_is_scoped_to_the_actors_tenant(world: World) -> None:
    await _sample_estate(world)
    core = (await world.service.get_ci(world.actors["admin"], "PROV:core-switch")).id
    contact: Actor = world.actors["acme-contact"]
    for fmt in ("csv", "json"):
        text = await transfer(world).export_records(contact, customer=None, fmt=fmt)
        assert "GLOBEX" not in text and "gx-web" not in text
        # A provider CI shows up only as its id, as graph answers redact it.
        assert "core-switch" not in text and "PROV" not in text
    document = json.loads(await transfer(world).export_records(contact, customer="ACME", fmt="json"))
    assert {ci["customer"] for ci in document["cis"]} == {"ACME"}
    assert {"source": "web-01", "target": core, "type": "connected_to", "note": "", "customer": "ACME"} in document[
        "relationships"
    ]
    with pytest.raises(NotFound):
        await transfer(world).export_records(contact, customer="GLOBEX", fmt="csv")

    staff = json.loads(await transfer(world).export_records(world.actors["eve"], customer=None, fmt="json"))
    assert {ci["customer"] for ci in staff["cis"]} == {"ACME", "GLOBEX", "PROV"}
    assert {
        "source": "web-01",
        "target": "PROV:core-switch",
        "type": "connected_to",
        "note": "",
        "customer": "ACME",
    } in (staff["relationships"])
    acme_only = rows_of(await transfer(world).export_records(world.actors["eve"], customer="ACME", fmt="csv"))
    assert {row["customer"] for row in acme_only} == {"ACME"}
    with pytest.raises(InvalidInput):
        await transfer(world).export_records(world.actors["eve"], customer=None, fmt="xlsx")


# --- size ----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_twenty_thousand_cis_and_forty_thousand_relationships(world: World) -> None:
    """Layered estate in two customers: 1,000 services -> 3,000 applications -> 6,000 hosts each,
    applications chained within a service, odd hosts on even ones, every host on a shared
    provider switch. Timed loosely: bench/import.py measures for real."""
    eve = world.actors["eve"]
    await world.ci(world.provider.key, "core-switch", "network_device")
    lines = ["record,customer,name,class,source,target,type,attr.cpu_cores"]
    edges: list[str] = []
    for tenant in ("ACME", "GLOBEX"):
        for n in range(1000):
            lines.append(f"ci,{tenant},svc-{n},service,,,,")
        for n in range(3000):
            lines.append(f"ci,{tenant},app-{n},application,,,,")
            edges.append(f"relationship,{tenant},,,svc-{n // 3},app-{n},depends_on,")
            if n % 3:
                edges.append(f"relationship,{tenant},,,app-{n},app-{n - 1},depends_on,")
        for n in range(6000):
            lines.append(f"ci,{tenant},host-{n},server,,,,{n % 64 + 1}")
            edges.append(f"relationship,{tenant},,,app-{n // 2},host-{n},runs_on,")
            edges.append(f"relationship,{tenant},,,host-{n},PROV:core-switch,connected_to,")
            if n % 2:
                edges.append(f"relationship,{tenant},,,host-{n},host-{n - 1},depends_on,")
    content = "\n".join(lines + edges) + "\n"
    assert len(lines) - 1 == 20_000 and len(edges) == 40_000

    started = time.perf_counter()
    report = await transfer(world).import_records(eve, content, "csv")
    seconds = time.perf_counter() - started
    assert (report.cis_created, report.relationships_created) == (20_000, 40_000)
    found = await counts()
    assert found["ci"] == 20_001 and found["relationship"] == 40_000
    history = await db.fetch(repo.engine(), "SELECT COUNT(*) AS n FROM history WHERE action = 'imported'")
    assert int(history[0]["n"]) == 60_000

    host = await world.service.get_ci(eve, "ACME:host-1")
    assert host.attributes == {"cpu_cores": 2}
    result = await world.service.impact(eve, host.id, limit=50)
    # host-1 <- app-0 <- {svc-0, app-1 <- app-2}: what depends on host-1, directly or not.
    assert {row.ci.name for row in result.items if row.ci} == {"app-0", "app-1", "app-2", "svc-0"}
    print(f"imported 20,000 CIs and 40,000 relationships in {seconds:.1f} s")
