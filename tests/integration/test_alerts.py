"""Alert ingestion: thresholds per customer, one incident per (CI, metric), floods deduplicated."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cmdb import db
from cmdb import repository as cmdb_repo
from cmdb.errors import Forbidden, InvalidInput
from incident import alerts_repository as alerts_repo
from incident.alerts import AlertService
from tests.support import FakeClock, World
from web.app import build_services
from web.settings import Settings

SETTINGS = Settings(secret_key="test-secret-key-not-for-production-0123456789", secure_cookies=False)


@dataclass
class FakeIncidents:
    """The real incident service, with the calls alert ingestion makes recorded."""

    real: Any = None
    opened: list[dict[str, Any]] = field(default_factory=list)
    repeats: list[tuple[int, str]] = field(default_factory=list)

    async def open_from_alert(self, **kwargs: Any) -> Any:
        await asyncio.sleep(0)  # let concurrent alerts interleave here
        self.opened.append({key: kwargs[key] for key in ("tenant_id", "ci_id", "priority", "title")})
        return await self.real.open_from_alert(**kwargs)

    async def record_alert_repeat(self, incident_id: int, *, summary: str, observed_at: dt.datetime) -> None:
        self.repeats.append((incident_id, summary))
        await self.real.record_alert_repeat(incident_id, summary=summary, observed_at=observed_at)

    async def close(self, incident_id: int) -> None:
        """As if the customer had confirmed the resolution."""
        async with db.atomic(alerts_repo.engine()):
            await db.fetch(alerts_repo.engine(), "UPDATE incident SET status = 'closed' WHERE id = ?", incident_id)


def fake_service(world: World, incidents: FakeIncidents) -> AlertService:
    if incidents.real is None:
        incidents.real = wired(world)["incidents"]
    return AlertService(world.clock, world.service, incidents)  # type: ignore[arg-type]


async def stored_alerts() -> list[dict[str, Any]]:
    return await db.fetch(alerts_repo.engine(), "SELECT * FROM alert ORDER BY id")


# --------------------------------------------------------------------------- with a fake


async def test_below_threshold_is_stored_and_ignored(world: World) -> None:
    await world.ci("ACME", "web-01")
    incidents = FakeIncidents()
    service = fake_service(world, incidents)
    result = await service.receive(world.actors["eve"], {"ci": "web-01", "metric": "memory_percent", "value": 42})
    assert (result.breached, result.outcome, result.incident_id) == (False, "ignored", None)
    assert incidents.opened == []
    rows = await stored_alerts()
    assert len(rows) == 1
    row = rows[0]
    assert (row["metric"], row["value"], bool(row["breached"]), row["incident"], row["outcome"]) == (
        "memory_percent",
        "42",
        False,
        None,
        "ignored",
    )
    assert row["tenant"] == world.acme.id


async def test_breach_opens_then_repeats_join_then_closed_opens_anew(world: World, clock: FakeClock) -> None:
    ci = await world.ci("ACME", "db-01")
    incidents = FakeIncidents()
    service = fake_service(world, incidents)
    eve = world.actors["eve"]
    alert = {"ci": ci.id, "metric": "ups", "value": "critical", "message": "on battery"}
    first = await service.receive(eve, alert)
    assert (first.breached, first.outcome, first.incident_id, first.incident_key, first.priority) == (
        True,
        "opened",
        1,
        "INC-2026-0001",
        "high",
    )
    assert incidents.opened[0] == {
        "tenant_id": world.acme.id,
        "ci_id": ci.id,
        "priority": "high",
        "title": "UPS critical on db-01",
    }
    second = await service.receive(eve, {**alert, "value": "warning"})
    assert (second.outcome, second.incident_id, second.incident_key) == ("joined", 1, "INC-2026-0001")
    # Another metric on the same CI is another incident.
    other = await service.receive(eve, {"ci": ci.id, "metric": "backup", "value": "failure"})
    assert (other.outcome, other.incident_id) == ("opened", 2)
    # Once the incident is closed, the next breach opens a new one and later repeats join that.
    await incidents.close(1)
    third = await service.receive(eve, alert)
    assert (third.outcome, third.incident_id) == ("opened", 3)
    fourth = await service.receive(eve, alert)
    assert (fourth.outcome, fourth.incident_id) == ("joined", 3)
    rows = await stored_alerts()
    assert [(r["outcome"], r["incident"]) for r in rows] == [
        ("opened", 1),
        ("joined", 1),
        ("opened", 2),
        ("opened", 3),
        ("joined", 3),
    ]
    claims = await alerts_repo.open_claims([ci.id])
    assert [(c["metric"], c["incident"], c["incident_key"]) for c in claims] == [
        ("backup", 2, "INC-2026-0002"),
        ("ups", 3, "INC-2026-0003"),
    ]


async def test_a_breach_below_threshold_in_between_does_not_break_the_join(world: World) -> None:
    ci = await world.ci("ACME", "app-01")
    incidents = FakeIncidents()
    service = fake_service(world, incidents)
    eve = world.actors["eve"]
    hot = {"ci": ci.id, "metric": "cpu_percent", "value": 97, "duration_s": 600}
    assert (await service.receive(eve, hot)).outcome == "opened"
    assert (await service.receive(eve, {**hot, "value": 30})).outcome == "ignored"
    assert (await service.receive(eve, hot)).outcome == "joined"
    assert len(incidents.opened) == 1


async def test_customer_overrides_apply_to_their_cis_only(world: World, clock: FakeClock) -> None:
    await world.service.update_customer(
        world.actors["admin"],
        "ACME",
        {"sla": {"alert_thresholds": {"cpu_percent": {"above": 95, "for_s": 600}, "virus": {"priority": "critical"}}}},
        expected_version=world.acme.version,
    )
    acme_ci = await world.ci("ACME", "acme-app")
    globex_ci = await world.ci("GLOBEX", "globex-app")
    incidents = FakeIncidents()
    service = fake_service(world, incidents)
    eve = world.actors["eve"]
    cpu = {"metric": "cpu_percent", "value": 93, "duration_s": 400}
    acme = await service.receive(eve, {"ci": acme_ci.id, **cpu})
    globex = await service.receive(eve, {"ci": globex_ci.id, **cpu})
    assert (acme.breached, acme.threshold.source, acme.threshold.limit) == (False, "customer", 95)
    assert (globex.breached, globex.threshold.source, globex.outcome) == (True, "default", "opened")
    virus = await service.receive(eve, {"ci": acme_ci.id, "metric": "virus", "value": "EICAR"})
    assert virus.priority == "critical"


async def test_faulty_override_falls_back_to_the_default_and_says_so(world: World) -> None:
    await world.service.update_customer(
        world.actors["admin"],
        "ACME",
        {"sla": {"alert_thresholds": {"memory_percent": {"above": "lots"}}}},
        expected_version=world.acme.version,
    )
    ci = await world.ci("ACME", "mem-01")
    service = fake_service(world, FakeIncidents())
    result = await service.receive(world.actors["eve"], {"ci": ci.id, "metric": "memory_percent", "value": 85})
    assert result.breached and result.threshold.source == "default"
    assert result.as_dict()["threshold"]["problems"][0]["field"] == "sla.alert_thresholds.memory_percent.above"


async def test_ci_by_name_needs_the_customer_only_when_the_name_is_shared(world: World) -> None:
    acme_ci = await world.ci("ACME", "mail")
    globex_ci = await world.ci("GLOBEX", "mail")
    unique = await world.ci("GLOBEX", "fileserver")
    service = fake_service(world, FakeIncidents())
    eve = world.actors["eve"]
    with pytest.raises(InvalidInput) as caught:
        await service.receive(eve, {"ci": "mail", "metric": "backup", "value": "success"})
    assert [p.field for p in caught.value.problems] == ["customer"]
    assert (
        await service.receive(eve, {"ci": "mail", "customer": "ACME", "metric": "backup", "value": "success"})
    ).ci.id == acme_ci.id
    assert (
        await service.receive(eve, {"ci": "mail", "customer": "GLOBEX", "metric": "backup", "value": "success"})
    ).ci.id == globex_ci.id
    assert (await service.receive(eve, {"ci": "fileserver", "metric": "backup", "value": "success"})).ci.id == unique.id
    assert (
        await service.receive(eve, {"ci": str(unique.id), "metric": "backup", "value": "success"})
    ).ci.id == unique.id
    with pytest.raises(InvalidInput) as caught:
        await service.receive(eve, {"ci": unique.id, "customer": "ACME", "metric": "backup", "value": "success"})
    assert [p.field for p in caught.value.problems] == ["ci"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"ci": "nope", "metric": "ups", "value": "critical"}, ["ci"]),
        ({"ci": 999999, "metric": "ups", "value": "critical"}, ["ci"]),
        ({"ci": "web-01", "metric": "temperature", "value": 80}, ["metric"]),
        ({"ci": "web-01", "metric": "cpu_percent", "value": "hot"}, ["value"]),
        ({"ci": "web-01", "metric": "cpu_percent", "value": 95, "duration_s": -1}, ["duration_s"]),
        ({"ci": "web-01", "metric": "ups", "value": "critical", "observed_at": "yesterday"}, ["observed_at"]),
        (
            {"ci": "web-01", "metric": "ups", "value": "critical", "observed_at": "2026-11-03T14:00:00Z"},
            ["observed_at"],
        ),
        ({"ci": "web-01", "metric": "ups", "value": "critical", "customer": "NOPE"}, ["customer"]),
        ({"ci": "web-01", "metric": "ups", "value": "critical", "message": 5}, ["message"]),
        ({"ci": "web-01", "metric": "ups", "value": "critical", "severity": "x"}, ["severity"]),
        ({"metric": "ups"}, ["ci", "value"]),
    ],
)
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_opened(
    world: World, body: dict[str, Any], fields: list[str]
) -> None:
    await world.ci("ACME", "web-01")
    incidents = FakeIncidents()
    service = fake_service(world, incidents)
    with pytest.raises(InvalidInput) as caught:
        await service.receive(world.actors["eve"], body)
    assert sorted(p.field for p in caught.value.problems) == sorted(fields)
    assert incidents.opened == [] and await stored_alerts() == []


async def test_observed_at_defaults_to_now_and_takes_a_little_skew(world: World, clock: FakeClock) -> None:
    ci = await world.ci("ACME", "web-01")
    service = fake_service(world, FakeIncidents())
    eve = world.actors["eve"]
    await service.receive(eve, {"ci": ci.id, "metric": "backup", "value": "success"})
    skewed = (clock.now() + dt.timedelta(minutes=2)).isoformat()
    await service.receive(eve, {"ci": ci.id, "metric": "backup", "value": "success", "observed_at": skewed})
    await service.receive(
        eve, {"ci": ci.id, "metric": "backup", "value": "success", "observed_at": "2026-11-01T10:00:00"}
    )
    rows = await stored_alerts()
    assert [cmdb_repo._utc(r["observed_at"]) for r in rows] == [
        clock.now(),
        clock.now() + dt.timedelta(minutes=2),
        dt.datetime(2026, 11, 1, 10, 0, tzinfo=dt.UTC),
    ]


async def test_only_provider_staff_who_run_monitoring_may_post(world: World) -> None:
    await world.ci("ACME", "web-01")
    service = fake_service(world, FakeIncidents())
    body = {"ci": "web-01", "metric": "ups", "value": "critical"}
    for username in ("acme-contact", "carl", "rita"):
        with pytest.raises(Forbidden):
            await service.receive(world.actors[username], body)
    for username in ("eve", "sam", "admin"):
        assert (await service.receive(world.actors[username], body)).breached
    assert await stored_alerts() != []


async def test_concurrent_copies_open_exactly_one_incident_with_a_fake(world: World) -> None:
    ci = await world.ci("ACME", "web-01")
    incidents = FakeIncidents()
    services = [fake_service(world, incidents) for _ in range(4)]  # several processes' worth of caches
    eve = world.actors["eve"]
    body = {"ci": ci.id, "metric": "virus", "value": "EICAR"}
    results = await asyncio.gather(*(services[n % 4].receive(eve, body) for n in range(100)))
    outcomes = [r.outcome for r in results]
    assert outcomes.count("opened") == 1 and outcomes.count("joined") == 99
    assert len(incidents.opened) == 1
    assert {r.incident_id for r in results} == {1}


async def test_repeats_reach_the_timeline_at_most_once_a_minute(world: World, clock: FakeClock) -> None:
    ci = await world.ci("ACME", "web-01")
    incidents = FakeIncidents()
    service = fake_service(world, incidents)
    eve = world.actors["eve"]
    body = {"ci": ci.id, "metric": "backup", "value": "failure"}
    assert (await service.receive(eve, body)).outcome == "opened"
    for _ in range(5):
        clock.advance(seconds=5)
        assert (await service.receive(eve, body)).outcome == "joined"
    assert incidents.repeats == []  # within a minute of the opening: in the alert table only
    clock.advance(seconds=60)
    await service.receive(eve, body)
    assert len(incidents.repeats) == 1
    assert incidents.repeats[0][1].endswith("(5 earlier repeat(s) since 14:00:00 UTC)")
    clock.advance(seconds=10)
    await service.receive(eve, body)
    assert len(incidents.repeats) == 1
    history = await db.fetch(
        alerts_repo.engine(), "SELECT comment FROM history WHERE entity = 'incident' AND action = 'alert_repeated'"
    )
    assert len(history) == 1
    assert len([r for r in await stored_alerts() if r["outcome"] == "joined"]) == 7


@dataclass
class FailingIncidents(FakeIncidents):
    failing_ci: int = 0

    async def open_from_alert(self, **kwargs: Any) -> Any:
        if kwargs["ci_id"] == self.failing_ci:
            raise RuntimeError("incident store unavailable")
        return await super().open_from_alert(**kwargs)


async def test_a_failing_alert_in_a_group_fails_alone(world: World) -> None:
    good = [await world.ci("ACME", f"ok-{n}") for n in range(5)]
    bad = await world.ci("ACME", "bad")
    service = fake_service(world, FailingIncidents(failing_ci=bad.id))
    sizes: list[int] = []
    ingest = service._ingest

    async def recording(batch: Any) -> Any:
        sizes.append(len(batch))
        return await ingest(batch)

    service._ingest = recording  # type: ignore[method-assign]
    eve = world.actors["eve"]
    bodies = [{"ci": ci.id, "metric": "ups", "value": "critical"} for ci in [*good[:2], bad, *good[2:]]]
    outcomes = await asyncio.gather(*(service.receive(eve, body) for body in bodies), return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == ["AlertResult"] * 2 + ["RuntimeError"] + ["AlertResult"] * 3
    rows = await stored_alerts()
    assert sorted(r["ci"] for r in rows) == sorted(ci.id for ci in good)
    assert max(sizes) > 1  # they were grouped, and the group's failure was retried one by one


@dataclass
class StuckIncidents(FakeIncidents):
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    leader: Any = None

    async def open_from_alert(self, **kwargs: Any) -> Any:
        self.leader = asyncio.current_task()
        self.entered.set()
        await asyncio.sleep(30)
        return await super().open_from_alert(**kwargs)


async def test_waiting_alerts_are_told_when_the_leading_request_is_cancelled(world: World) -> None:
    cis = [await world.ci("ACME", f"h{n}") for n in range(3)]
    incidents = StuckIncidents()
    service = fake_service(world, incidents)
    eve = world.actors["eve"]
    group = service._group()
    await group.lock.acquire()  # hold the next commit until all three wait, so they form one group
    tasks = [
        asyncio.create_task(service.receive(eve, {"ci": ci.id, "metric": "ups", "value": "critical"})) for ci in cis
    ]
    for _ in range(1000):  # until all three have parsed and wait for the commit
        if len(group.pending) == 3:
            break
        await asyncio.sleep(0.01)
    group.lock.release()
    await asyncio.wait_for(incidents.entered.wait(), 10)
    incidents.leader.cancel()
    outcomes = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["CancelledError", "RuntimeError", "RuntimeError"]
    assert await stored_alerts() == []


async def test_batch_handles_each_entry_in_order_in_one_transaction(world: World) -> None:
    ci = await world.ci("ACME", "web-01")
    other = await world.ci("ACME", "web-02")
    incidents = FakeIncidents()
    service = fake_service(world, incidents)
    items = await service.receive_batch(
        world.actors["eve"],
        [
            {"ci": ci.id, "metric": "ups", "value": "critical"},
            {"ci": ci.id, "metric": "ups", "value": "critical"},
            {"ci": "ghost", "metric": "ups", "value": "critical"},
            {"ci": other.id, "metric": "memory_percent", "value": 10},
            {"ci": other.id, "metric": "memory_percent", "value": 99},
            {"ci": ci.id, "metric": "ups", "value": "warning"},
        ],
    )
    described = [(i.result.outcome, i.result.incident_id) if i.result else ("refused", None) for i in items]
    assert described == [
        ("opened", 1),
        ("joined", 1),
        ("refused", None),
        ("ignored", None),
        ("opened", 2),
        ("joined", 1),
    ]
    assert items[2].error is not None and items[2].as_dict()["fields"][0]["field"] == "ci"
    assert len(await stored_alerts()) == 5


async def test_counts_for_the_monthly_report(world: World, clock: FakeClock) -> None:
    ci = await world.ci("ACME", "web-01")
    service = fake_service(world, FakeIncidents())
    eve = world.actors["eve"]
    for value in ("critical", "critical", "ok"):
        await service.receive(eve, {"ci": ci.id, "metric": "ups", "value": value})
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    end = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert await service.counts(world.acme.id, start, end) == {
        "received": 3,
        "breached": 2,
        "opened": 1,
        "joined": 1,
        "ignored": 1,
    }
    assert (await service.counts(world.globex.id, start, end))["received"] == 0
    assert (await service.counts(world.acme.id, end, end + dt.timedelta(days=30)))["received"] == 0


async def test_customers_list_only_their_own_alerts(world: World) -> None:
    acme_ci = await world.ci("ACME", "a1")
    globex_ci = await world.ci("GLOBEX", "g1")
    service = fake_service(world, FakeIncidents())
    eve = world.actors["eve"]
    await service.receive(eve, {"ci": acme_ci.id, "metric": "backup", "value": "failure"})
    await service.receive(eve, {"ci": globex_ci.id, "metric": "backup", "value": "failure"})
    mine, total = await service.list_alerts(world.actors["acme-contact"])
    assert total == 1 and mine[0].ci_id == acme_ci.id
    _, total = await service.list_alerts(eve)
    assert total == 2
    _, total = await service.list_alerts(eve, customer="GLOBEX")
    assert total == 1


# --------------------------------------------------------------------------- end to end


def wired(world: World) -> dict[str, Any]:
    return build_services(SETTINGS, clock=world.clock)


async def incident_rows() -> list[dict[str, Any]]:
    return await db.fetch(alerts_repo.engine(), "SELECT * FROM incident ORDER BY id")


async def test_breach_opens_a_real_incident_with_the_right_priority_on_the_ci(world: World) -> None:
    ci = await world.ci("ACME", "fw-01", "network_device")
    services = wired(world)
    alerts: AlertService = services["alerts"]
    eve = world.actors["eve"]
    result = await alerts.receive(eve, {"ci": ci.id, "metric": "firewall_attack", "value": "SYN flood"})
    assert result.outcome == "opened" and result.incident_key and result.incident_key.startswith("INC-2026-")
    incident = (await services["incidents"].get(eve, result.incident_id)).incident
    assert incident.priority.value == "high"
    assert incident.source.value == "alert"
    assert incident.ci_ids == (ci.id,)
    assert incident.tenant_id == world.acme.id
    assert "Firewall attack" in incident.title
    repeat = await alerts.receive(eve, {"ci": ci.id, "metric": "firewall_attack", "value": "SYN flood"})
    assert (repeat.outcome, repeat.incident_id, repeat.incident_key) == ("joined", incident.id, incident.key)
    assert len(await incident_rows()) == 1


async def test_100_concurrent_copies_open_exactly_one_real_incident(world: World) -> None:
    ci = await world.ci("ACME", "web-01")
    alerts: AlertService = wired(world)["alerts"]
    eve = world.actors["eve"]
    body = {"ci": ci.id, "metric": "disk_system_free_gb", "value": 0.5}
    results = await asyncio.gather(*(alerts.receive(eve, body) for _ in range(100)))
    outcomes = [r.outcome for r in results]
    assert outcomes.count("opened") == 1 and outcomes.count("joined") == 99
    rows = await incident_rows()
    assert len(rows) == 1 and {r.incident_id for r in results} == {rows[0]["id"]}
    assert len(await stored_alerts()) == 100


async def test_unknown_ci_opens_nothing_end_to_end(world: World) -> None:
    alerts: AlertService = wired(world)["alerts"]
    with pytest.raises(InvalidInput):
        await alerts.receive(world.actors["eve"], {"ci": "ghost", "metric": "ups", "value": "critical"})
    assert await incident_rows() == [] and await stored_alerts() == []


# --------------------------------------------------------------------------- the CLI


def keel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
        check=False,
    )


async def test_replay_of_json_lines_prints_a_summary_with_refused_lines(world: World, tmp_path: Path) -> None:
    ci = await world.ci("ACME", "web-01")
    lines = [
        json.dumps({"ci": ci.id, "metric": "ups", "value": "critical"}),
        json.dumps({"ci": ci.id, "metric": "ups", "value": "critical"}),
        "",
        "{not json",
        json.dumps({"ci": "web-01", "metric": "memory_percent", "value": 12}),
        json.dumps({"ci": "ghost", "metric": "ups", "value": "critical"}),
    ]
    path = tmp_path / "alerts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = keel("alerts", "replay", str(path))
    assert result.returncode == 1, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == ("keel: 5 alert(s) received, 2 breached, 1 incident(s) opened, 1 joined, 1 ignored, 2 refused")
    assert out[1].startswith("  line 4: not valid JSON")
    assert out[2].startswith("  line 6: ci: no CI is named 'ghost'")
    assert len(await incident_rows()) == 1 and len(await stored_alerts()) == 3


async def test_replay_of_a_json_array_names_the_line_each_item_starts_on(world: World, tmp_path: Path) -> None:
    ci = await world.ci("ACME", "web-01")
    path = tmp_path / "alerts.json"
    path.write_text(
        "[\n"
        + f'  {{"ci": {ci.id}, "metric": "backup", "value": "success"}},\n'
        + '  {"ci": "web-01",\n   "metric": "cpu_percent", "value": 500}\n'
        + "]\n"
    )
    result = keel("alerts", "replay", str(path))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "keel: 2 alert(s) received, 0 breached, 0 incident(s) opened, 0 joined, 1 ignored, 1 refused",
        "  line 3: value: cpu_percent must be a number from 0 to 100",
    ]
