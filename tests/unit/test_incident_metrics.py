"""The service manager's figures from plain rows, checked against counts worked out by hand."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incident.metrics import (
    Attainment,
    IncidentFacts,
    Rate,
    TimeFacts,
    attainment,
    first_contact_resolution,
    is_first_contact_resolution,
    last_full_month,
    percent,
    reopen_rate,
    service_figures,
    time_per_engineer,
)

T0 = dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def hours(n: float) -> dt.timedelta:
    return dt.timedelta(hours=n)


def incident(number: int, **fields: object) -> IncidentFacts:
    base: dict[str, object] = {
        "id": number,
        "tenant_id": 2,
        "priority": "high",
        "created_at": T0,
        "response_due": T0 + hours(2),
        "resolution_due": T0 + hours(8),
    }
    base.update(fields)
    return IncidentFacts(**base)  # type: ignore[arg-type]


# Six incidents, worked out by hand:
#  1: responded in 1 h, resolved in 4 h, one engineer            -> both met, first contact
#  2: responded in 3 h (late), resolved in 6 h                    -> response missed, resolution met, FCR
#  3: responded in 1 h, resolved in 10 h (late), reassigned once  -> resolution missed, not FCR
#  4: responded, resolved, reopened once, resolved again in time  -> reopened, not FCR
#  5: responded, escalated, not resolved, resolution due passed   -> resolution missed, escalated
#  6: created today, nothing yet, nothing due                      -> both pending
DATASET = [
    incident(1, responded_at=T0 + hours(1), resolved_at=T0 + hours(4)),
    incident(2, responded_at=T0 + hours(3), resolved_at=T0 + hours(6)),
    incident(3, responded_at=T0 + hours(1), resolved_at=T0 + hours(10), reassignments=1),
    incident(4, responded_at=T0 + hours(1), resolved_at=T0 + hours(7), reopen_count=1, priority="critical"),
    incident(5, responded_at=T0 + hours(0.5), escalated=True, priority="critical"),
    incident(
        6,
        created_at=NOW - hours(0.5),
        response_due=NOW + hours(1.5),
        resolution_due=NOW + hours(7.5),
        priority="low",
    ),
]


def test_figures_of_the_hand_computed_dataset() -> None:
    figures = service_figures(DATASET, [], NOW)
    assert figures.incidents == 6
    assert figures.response == Attainment(met=4, missed=1, pending=1)
    assert figures.response.rate == pytest.approx(4 / 5)
    assert figures.resolution == Attainment(met=3, missed=2, pending=1)
    assert figures.resolution.rate == pytest.approx(3 / 5)
    assert figures.escalation == Rate(1, 6)
    assert figures.reopen == Rate(1, 4)  # 1..4 were resolved at least once
    assert figures.first_contact == Rate(2, 4)  # 1 and 2
    assert figures.by_priority["critical"] == (Attainment(2, 0, 0), Attainment(1, 1, 0))
    assert figures.by_priority["low"] == (Attainment(0, 0, 1), Attainment(0, 0, 1))
    assert "normal" not in figures.by_priority
    data = figures.as_dict()
    assert data["response_attainment"] == {"met": 4, "missed": 1, "pending": 1, "rate": pytest.approx(0.8)}
    assert data["first_contact_resolution"] == {"count": 2, "of": 4, "rate": 0.5}


def test_an_undone_target_is_missed_only_once_its_due_time_has_passed() -> None:
    due = T0 + hours(2)
    assert attainment([(due, None)], T0 + hours(1)) == Attainment(0, 0, 1)
    assert attainment([(due, None)], due) == Attainment(0, 0, 1)  # at the due time: not late yet
    assert attainment([(due, None)], due + dt.timedelta(seconds=1)) == Attainment(0, 1, 0)
    assert attainment([(due, due)], NOW) == Attainment(1, 0, 0)  # done exactly at due: met
    assert attainment([(None, None)], NOW) == Attainment(0, 0, 1)  # no target: not counted


def test_first_contact_resolution_needs_resolved_unreassigned_unreopened_unescalated() -> None:
    resolved = incident(1, resolved_at=T0 + hours(1))
    assert is_first_contact_resolution(resolved)
    assert not is_first_contact_resolution(incident(2))  # not resolved
    assert not is_first_contact_resolution(incident(3, resolved_at=T0, reassignments=1))
    assert not is_first_contact_resolution(incident(4, resolved_at=T0, reopen_count=2))
    assert not is_first_contact_resolution(incident(5, resolved_at=T0, escalated=True))
    assert first_contact_resolution([incident(6)]) == Rate(0, 0)
    assert first_contact_resolution([incident(6)]).rate is None


def test_reopen_rate_counts_incidents_resolved_at_least_once() -> None:
    reopened_and_open_again = incident(1, reopen_count=1)  # resolved, refused, back to open
    never_resolved = incident(2)
    assert reopen_rate([reopened_and_open_again, never_resolved]) == Rate(1, 1)


def test_nothing_to_count_is_none_not_zero() -> None:
    figures = service_figures([], [], NOW)
    assert figures.response.rate is None
    assert figures.escalation.rate is None
    assert percent(figures.reopen.rate) == "\u2014"
    assert percent(0.875) == "87.5 %"


def test_estimated_against_actual_per_engineer() -> None:
    entries = [
        TimeFacts(7, "Eve", 1, 90, 60),
        TimeFacts(7, "Eve", 1, 30, None),  # no estimate: in the total only
        TimeFacts(7, "Eve", 2, 45, 60),
        TimeFacts(9, "Sam", 3, 20, 30),
    ]
    eve, sam = time_per_engineer(entries)
    assert (eve.name, eve.incidents, eve.entries, eve.estimated_entries) == ("Eve", 2, 3, 2)
    assert (eve.estimated_minutes, eve.actual_on_estimated_minutes, eve.actual_minutes) == (120, 135, 165)
    assert eve.variance_minutes == 15
    assert eve.accuracy == pytest.approx(135 / 120)
    assert (sam.estimated_minutes, sam.actual_minutes, sam.variance_minutes) == (30, 20, -10)
    only_actuals = time_per_engineer([TimeFacts(3, "Lee", 1, 10, None)])[0]
    assert only_actuals.accuracy is None and only_actuals.as_dict()["actual_minutes"] == 10


def test_default_period_is_the_last_full_month() -> None:
    assert last_full_month(dt.date(2026, 11, 22)) == (dt.date(2026, 10, 1), dt.date(2026, 11, 1))
    assert last_full_month(dt.date(2026, 1, 1)) == (dt.date(2025, 12, 1), dt.date(2026, 1, 1))


pairs = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 100)),
        st.one_of(st.none(), st.integers(0, 100)),
    ),
    max_size=30,
)


@given(pairs, st.integers(0, 100))
def test_attainment_puts_every_incident_in_one_bucket(raw: list[tuple[int | None, int | None]], at: int) -> None:
    def moment(n: int | None) -> dt.datetime | None:
        return None if n is None else T0 + dt.timedelta(minutes=n)

    result = attainment([(moment(due), moment(done)) for due, done in raw], T0 + dt.timedelta(minutes=at))
    assert result.met + result.missed + result.pending == len(raw)
    assert result.rate is None or 0.0 <= result.rate <= 1.0
