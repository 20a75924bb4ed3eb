"""`keel rfc list` and `keel rfc show` as scripts use them: real processes on the test database,
reading RFCs made through ChangeService in the test."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from change.models import RFC
from change.services import ChangeService
from tests.support import World


def keel(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
        check=False,
    )


FULL = {
    "need": "The ERP database runs out of disk in two weeks.",
    "desired_result": "Data volume grown to 2 TB with no data loss.",
    "plan": "Extend the LUN, grow the volume, verify.",
    "backout_plan": "Restore the snapshot taken before the change.",
}


@dataclass
class Changes:
    draft: RFC
    submitted: RFC
    scheduled: RFC
    globex: RFC


@pytest.fixture
async def changes(world: World) -> Changes:
    """A draft and a submitted RFC of ACME, a scheduled one of ACME on a small graph, and an
    authorized one of GLOBEX."""
    service = ChangeService(world.clock, world.service)
    eve, carl = world.actors["eve"], world.actors["carl"]
    db = await world.ci("ACME", "erp-db", "database", criticality="medium")
    app = await world.ci("ACME", "erp-app", "application", criticality="medium")
    await world.link(app.id, db.id)
    printer = await world.ci("ACME", "print-server", criticality="low")
    web = await world.ci("GLOBEX", "globex-web")

    draft = await service.create(eve, {"customer": "ACME", "title": "Replace the print server", "cis": [printer.id]})
    world.clock.advance(minutes=1)
    submitted = await service.create(
        world.actors["acme-contact"],
        {"customer": "ACME", "title": "Patch the print server", "cis": [printer.id], **FULL},
    )
    await service.act(world.actors["acme-contact"], submitted.id, "submit", {})
    world.clock.advance(minutes=1)
    scheduled = await service.create(eve, {"customer": "ACME", "title": "Grow the ERP disk", "cis": [db.id], **FULL})
    world.clock.advance(minutes=5)
    await service.act(eve, scheduled.id, "submit", {"comment": "Disk at 91 %"})
    world.clock.advance(hours=1)
    await service.act(carl, scheduled.id, "authorize", {"release_requirements": ["test evidence"]})
    await service.act(carl, scheduled.id, "approve", {})
    slot = {"planned_start": "2026-11-07T02:00:00+00:00", "planned_end": "2026-11-07T04:00:00+00:00"}
    await service.act(carl, scheduled.id, "schedule", slot)
    globex = await service.create(
        eve, {"customer": "GLOBEX", "title": "Renew the web certificate", "cis": [web.id], **FULL}
    )
    await service.act(eve, globex.id, "submit", {})
    await service.act(carl, globex.id, "authorize", {"release_requirements": []})
    return Changes(draft, submitted, scheduled, globex)


def _rows(stdout: str) -> dict[str, list[str]]:
    """The table of `keel rfc list` by key: [customer, state, priority, title]."""
    lines = stdout.splitlines()
    assert lines[0].split() == ["KEY", "CUSTOMER", "STATE", "PRIORITY", "TITLE"]
    rows = {}
    for line in lines[1:-1]:
        key, customer, state, priority, title = line.split(maxsplit=4)
        rows[key] = [customer, state, priority, title]
    return rows


async def test_list_shows_every_rfc_with_customer_state_and_title(changes: Changes) -> None:
    result = keel("rfc", "list")
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert rows == {
        changes.draft.key: ["ACME", "draft", "medium", "Replace the print server"],
        changes.submitted.key: ["ACME", "submitted", "medium", "Patch the print server"],
        changes.scheduled.key: ["ACME", "scheduled", "medium", "Grow the ERP disk"],
        changes.globex.key: ["GLOBEX", "authorized", "medium", "Renew the web certificate"],
    }
    assert result.stdout.splitlines()[-1] == "4 of 4 RFC(s)"
    # Newest first.
    assert list(rows) == [changes.globex.key, changes.scheduled.key, changes.submitted.key, changes.draft.key]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--state", "submitted"], ["submitted"]),
        (["--state", "draft,authorized"], ["draft", "globex"]),
        (["--customer", "GLOBEX"], ["globex"]),
        (["--customer", "ACME", "--state", "scheduled,authorized"], ["scheduled"]),
        (["--state", "completed"], []),
    ],
)
async def test_list_filters_by_state_and_customer(changes: Changes, args: list[str], expected: list[str]) -> None:
    result = keel("rfc", "list", *args)
    assert result.returncode == 0, result.stderr
    keys = {getattr(changes, name).key for name in expected}
    assert set(_rows(result.stdout)) == keys
    assert result.stdout.splitlines()[-1] == f"{len(keys)} of {len(keys)} RFC(s)"


async def test_list_limit_shows_how_many_there_are_and_bad_filters_are_refused(changes: Changes) -> None:
    result = keel("rfc", "list", "--limit", "2")
    assert result.returncode == 0, result.stderr
    assert len(_rows(result.stdout)) == 2 and result.stdout.splitlines()[-1] == "2 of 4 RFC(s)"
    bad = keel("rfc", "list", "--state", "done")
    assert bad.returncode == 2
    assert "state" in bad.stderr and "done" in bad.stderr and bad.stdout == ""
    unknown = keel("rfc", "list", "--customer", "NOPE")
    assert unknown.returncode == 1 and "NOPE" in unknown.stderr


async def test_show_prints_the_record_its_frozen_impact_and_timeline(world: World, changes: Changes) -> None:
    # A dependant added after authorization does not change the frozen impact.
    late = await world.ci("ACME", "late-report", "application")
    await world.link(late.id, (await world.service.get_ci(world.actors["eve"], "ACME:erp-db")).id)
    result = keel("rfc", "show", changes.scheduled.key)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{changes.scheduled.key}  Grow the ERP disk"
    assert lines[1] == "customer ACME  state scheduled  type normal  priority medium"
    db = await world.service.get_ci(world.actors["eve"], "ACME:erp-db")
    assert lines[2] == f"affected CIs: {db.id}"
    impact = next(line for line in lines if line.startswith("impact: "))
    # erp-db and the application that depends on it, frozen when the change manager authorized.
    assert impact.startswith("impact: low (2 CIs, 1 customer(s)); committee not required; risk ")
    assert impact.endswith("(frozen at authorization)")
    assert "planned: 2026-11-07T02:00:00+00:00 - 2026-11-07T04:00:00+00:00" in lines
    for label, text in (
        ("need", FULL["need"]),
        ("desired result", FULL["desired_result"]),
        ("plan", FULL["plan"]),
        ("backout", FULL["backout_plan"]),
    ):
        assert f"{label}: {text}" in lines
    timeline = lines[lines.index("timeline:") + 1 :]
    events = [line.split()[1:3] for line in timeline]
    assert events == [
        ["created", "eve"],
        ["submitted", "eve"],
        ["authorized", "carl"],
        ["approved", "carl"],
        ["scheduled", "carl"],
    ]
    # Times as recorded, in order, with the comment at the end of its line.
    moments = [dt.datetime.fromisoformat(line.split()[0]) for line in timeline]
    assert moments == sorted(moments) and moments[0] == dt.datetime(2026, 11, 2, 14, 2, tzinfo=dt.UTC)
    assert timeline[1].endswith("Disk at 91 %")


async def test_show_by_id_and_a_draft_without_a_plan(changes: Changes) -> None:
    result = keel("rfc", "show", str(changes.draft.id))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{changes.draft.key}  Replace the print server"
    assert "state draft" in lines[1]
    impact = next(line for line in lines if line.startswith("impact: "))
    assert impact.startswith("impact: low (1 CIs") and "frozen" not in impact  # computed now, not frozen
    assert not any(line.startswith(("planned:", "need:", "plan:")) for line in lines)
    assert lines[lines.index("timeline:") + 1 :][0].split()[1:3] == ["created", "eve"]


async def test_show_of_an_unknown_rfc_exits_1_with_a_message(changes: Changes) -> None:
    for ref in ("RFC-2026-9999", "999999"):
        result = keel("rfc", "show", ref)
        assert result.returncode == 1, result.stdout
        assert result.stdout == ""
        assert result.stderr.startswith("keel: ") and ref in result.stderr and "No RFC" in result.stderr
