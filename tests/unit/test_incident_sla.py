"""incident.sla: the templates, targets in the customer's business calendar, the clock and
its pauses, the escalation points."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb.calendar import BusinessCalendar
from incident.models import Incident, IncidentPriority, IncidentSource, IncidentStatus, Pause, WaitingFor
from incident.sla import SLATerms, Target, due_points, sla_clock, validate_terms

UTC = dt.UTC
NY = BusinessCalendar(timezone="America/New_York", holiday_region="US")
# Monday 2 November 2026, 09:00 in New York.
MONDAY_9 = dt.datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


def at_ny(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.timezone(dt.timedelta(hours=-5))).astimezone(UTC)


def incident(priority: str = "normal", created: dt.datetime = MONDAY_9, terms: SLATerms | None = None) -> Incident:
    terms = terms or SLATerms.from_sla({})
    prio = IncidentPriority(priority)
    response, resolution = terms.dues(prio, created, NY)
    return Incident(
        id=1,
        key="INC-2026-0001",
        tenant_id=2,
        title="t",
        status=IncidentStatus.NEW,
        priority=prio,
        source=IncidentSource.MANUAL,
        created_at=created,
        updated_at=created,
        response_due=response,
        resolution_due=resolution,
        sla_template=terms.template,
        response_level=terms.level_for(prio),
    )


def test_target_parsing() -> None:
    assert Target.parse("15m") == Target("minutes", 15)
    assert Target.parse("4h") == Target("minutes", 240)
    assert Target.parse("3bd") == Target("business_days", 3)
    assert Target.parse("NBD") == Target("next_business_day")
    assert Target.parse("90m").describe() == "90 minutes" and Target.parse("2h").describe() == "2 hours"
    for bad in ("", "4 hours", "0m", "-1h", "bd"):
        with pytest.raises(ValueError):
            Target.parse(bad)


@pytest.mark.parametrize(
    ("priority", "response", "resolution"),
    [
        ("critical", at_ny(2, 10), at_ny(2, 13)),
        ("high", at_ny(2, 11), at_ny(2, 17)),
        ("normal", at_ny(3, 17), at_ny(5, 9)),
        ("low", at_ny(4, 9), at_ny(9, 9)),
    ],
)
def test_default_priority_targets(priority: str, response: dt.datetime, resolution: dt.datetime) -> None:
    assert SLATerms.from_sla({}).dues(IncidentPriority(priority), MONDAY_9, NY) == (response, resolution)


def test_targets_count_only_business_time_and_skip_holidays() -> None:
    terms = SLATerms.from_sla({})
    # Friday 16:30 critical: half an hour on Friday, the rest on Monday.
    friday = at_ny(6, 16, 30)
    assert terms.dues(IncidentPriority.CRITICAL, friday, NY)[0] == at_ny(9, 9, 30)
    # Wednesday 25 November, the day before Thanksgiving: next business day is Friday the 27th.
    assert terms.dues(IncidentPriority.NORMAL, at_ny(25, 15), NY)[0] == at_ny(27, 17)
    # Received on a Saturday: the next business day is Monday.
    assert terms.dues(IncidentPriority.NORMAL, at_ny(7, 11), NY)[0] == at_ny(9, 17)


def test_levels_template_and_overrides() -> None:
    terms = SLATerms.from_sla({"incident_template": "levels"})
    assert terms.level_for(IncidentPriority.CRITICAL).value == "level_1"  # type: ignore[union-attr]
    assert terms.level_for(IncidentPriority.NORMAL).value == "level_2"  # type: ignore[union-attr]
    assert terms.level_for(IncidentPriority.LOW).value == "level_3"  # type: ignore[union-attr]
    assert terms.dues(IncidentPriority.CRITICAL, MONDAY_9, NY) == (at_ny(2, 9, 15), None)
    assert terms.dues(IncidentPriority.HIGH, MONDAY_9, NY) == (at_ny(2, 9, 30), at_ny(3, 9))
    assert terms.dues(IncidentPriority.LOW, MONDAY_9, NY) == (at_ny(2, 10), at_ny(4, 9))
    custom = SLATerms.from_sla(
        {
            "incident_template": "levels",
            "incident_levels": {"low": "level_2"},
            "incident_targets": {"level_2": {"resolution": "4h"}, "critical": {"response": "30m"}},
        }
    )
    assert custom.dues(IncidentPriority.LOW, MONDAY_9, NY) == (at_ny(2, 9, 30), at_ny(2, 13))
    assert SLATerms.from_sla({"incident_targets": {"critical": {"response": "30m"}}}).dues(
        IncidentPriority.CRITICAL, MONDAY_9, NY
    ) == (at_ny(2, 9, 30), at_ny(2, 13))
    assert (
        SLATerms.from_sla({"incident_targets": {"low": {"resolution": None}}}).dues(IncidentPriority.LOW, MONDAY_9, NY)[
            1
        ]
        is None
    )


def test_round_the_clock_cover() -> None:
    terms = SLATerms.from_sla({"incident_clock": "24x7"})
    friday_night = at_ny(6, 22)
    assert terms.dues(IncidentPriority.CRITICAL, friday_night, NY) == (at_ny(6, 23), at_ny(7, 2))


def test_validate_terms_names_each_problem() -> None:
    assert validate_terms({}) == []
    problems = dict(
        validate_terms(
            {
                "incident_template": "stars",
                "incident_targets": {"critical": {"response": "soon"}, "urgent": {}},
                "escalation_share": 1.5,
                "recent_change_days": 0,
                "incident_clock": "lunar",
            }
        )
    )
    assert set(problems) == {
        "sla.incident_template",
        "sla.incident_targets.critical.response",
        "sla.incident_targets",
        "sla.escalation_share",
        "sla.recent_change_days",
        "sla.incident_clock",
    }
    # Malformed terms fall back to the defaults rather than stop intake.
    terms = SLATerms.from_sla({"incident_template": "stars", "escalation_share": "lots", "recent_change_days": -3})
    assert (terms.template, terms.escalation_share, terms.recent_change_days) == ("priorities", 0.75, 7)


def test_clock_states_share_and_pause() -> None:
    terms = SLATerms.from_sla({})
    item = incident("critical")
    clock = sla_clock(item, terms, NY, at_ny(2, 9, 30))
    assert clock.response.state == "on_track" and clock.response.elapsed_share == pytest.approx(0.5)
    assert sla_clock(item, terms, NY, at_ny(2, 9, 50)).response.state == "at_risk"
    assert sla_clock(item, terms, NY, at_ny(2, 10, 1)).response.state == "breached"
    responded = replace(item, status=IncidentStatus.OPEN, responded_at=at_ny(2, 9, 40))
    later = sla_clock(responded, terms, NY, at_ny(2, 12))
    assert later.response.state == "met" and later.resolution.elapsed_share == pytest.approx(0.75)
    assert later.elapsed_share == later.resolution.elapsed_share
    paused = replace(
        responded,
        status=IncidentStatus.HOLD_RESOLUTION,
        waiting_for=WaitingFor.CUSTOMER,
        paused_since=at_ny(2, 10),
        pauses=(Pause(at_ny(2, 10), None, "customer"),),
    )
    frozen = sla_clock(paused, terms, NY, at_ny(2, 16))
    assert frozen.paused and frozen.resolution.state == "paused"
    assert frozen.resolution.elapsed_share == pytest.approx(0.25) and frozen.paused_seconds == 6 * 3600
    assert due_points(paused, terms, NY) == []


def test_due_points_account_for_past_pauses() -> None:
    terms = SLATerms.from_sla({"escalation_share": 0.5})
    item = replace(
        incident("high"),
        status=IncidentStatus.OPEN,
        responded_at=at_ny(2, 9, 5),
        resolution_due=at_ny(3, 11),  # 17:00 moved by a 2-hour pause
        pauses=(Pause(at_ny(2, 10), at_ny(2, 12), "customer", 7200),),
    )
    points = {p.level: p for p in due_points(item, terms, NY)}
    assert set(points) == {"resolution_warning", "resolution_breach"}
    assert points["resolution_warning"].at == at_ny(2, 15)  # 4 of 8 hours plus the 2-hour pause
    assert points["resolution_breach"].audience == "executive"
    assert points["resolution_warning"].audience == "service_manager"
    closed = replace(item, status=IncidentStatus.CLOSED)
    assert due_points(closed, terms, NY) == []


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31), timezones=st.just(UTC)),
    priority=st.sampled_from(list(IncidentPriority)),
    share=st.floats(min_value=0.05, max_value=0.95),
)
def test_warning_never_after_breach_and_due_after_start(
    start: dt.datetime, priority: IncidentPriority, share: float
) -> None:
    terms = SLATerms.from_sla({"escalation_share": share})
    item = incident(priority.value, start, terms)
    assert item.response_due is not None and item.response_due > start
    assert item.resolution_due is not None and item.resolution_due >= item.response_due
    points = {p.level: p.at for p in due_points(item, terms, NY)}
    assert points["response_warning"] <= points["response_breach"]
    assert points["resolution_warning"] <= points["resolution_breach"]
    assert sla_clock(item, terms, NY, points["response_warning"]).response.elapsed_share == pytest.approx(
        share, abs=1e-6
    )


def test_level_1_escalates_every_few_business_hours_until_resolved() -> None:
    terms = SLATerms.from_sla({"incident_template": "levels", "ongoing_escalation_hours": 2})
    item = replace(incident("critical", terms=terms), status=IncidentStatus.OPEN, responded_at=at_ny(2, 9, 10))
    assert item.resolution_due is None
    assert [(p.level, p.at) for p in due_points(item, terms, NY)] == [("ongoing_1", at_ny(2, 11))]
    later = due_points(item, terms, NY, at_ny(3, 10))
    # 11:00, 13:00, 15:00, 17:00 (the close), then the first one still ahead: 11:00 next day.
    assert [p.level for p in later] == [f"ongoing_{n}" for n in range(1, 6)]
    assert later[-1].at == at_ny(3, 11) and {p.audience for p in later} == {"service_manager"}
    resolved = replace(item, status=IncidentStatus.HOLD_RESOLUTION, waiting_for=WaitingFor.CONFIRMATION)
    assert due_points(resolved, terms, NY, at_ny(3, 10)) == []
    assert ("sla.ongoing_escalation_hours", "must be a number of business hours above 0") in validate_terms(
        {"ongoing_escalation_hours": 0}
    )
