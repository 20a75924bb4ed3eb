"""incident.workflow: the status table, who may act, inputs, pauses and the closure record."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from cmdb.calendar import BusinessCalendar
from cmdb.errors import Conflict, Forbidden, InvalidInput
from cmdb.models import Actor, Role
from incident.models import Incident, IncidentPriority, IncidentSource, IncidentStatus, WaitingFor
from incident.sla import SLATerms
from incident.workflow import TRANSITIONS, actions_in_state, allowed_actions, transition

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
CAL = BusinessCalendar(timezone="America/New_York", holiday_region="US")
TERMS = SLATerms.from_sla({})
FACTS: dict[str, Any] = {
    "terms": TERMS,
    "calendar": CAL,
    "reporter": "Pat",
    "assignee": (7, "ola"),
    "rfc_key": "RFC-2026-0009",
    "parent_id": 3,
    "parent_key": "INC-2026-0003",
}
ENGINEER = Actor(5, "eve", "Eve", 1, 1, frozenset({Role.ENGINEER}))
CUSTOMER = Actor(9, "pat", "Pat", 2, 1, frozenset({Role.CUSTOMER}))
OUTSIDER = Actor(10, "gus", "Gus", 3, 1, frozenset({Role.CUSTOMER}))
CHANGE_MANAGER = Actor(6, "carl", "Carl", 1, 1, frozenset({Role.CHANGE_MANAGER}))


def make(status: IncidentStatus = IncidentStatus.NEW, **extra: Any) -> Incident:
    created = dt.datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    response, resolution = TERMS.dues(IncidentPriority.NORMAL, created, CAL)
    return Incident(
        id=1,
        key="INC-2026-0001",
        tenant_id=2,
        title="ERP down",
        status=status,
        priority=IncidentPriority.NORMAL,
        source=IncidentSource.MANUAL,
        created_at=created,
        updated_at=created,
        response_due=response,
        resolution_due=resolution,
        **extra,
    )


def act(incident: Incident, action: str, actor: Actor = ENGINEER, **params: Any) -> Incident:
    new, events = transition(incident, action, actor, NOW, params, **FACTS)
    assert events[0].data["action"] == action and events[0].data["to"] == new.status.value
    assert new.version == incident.version + 1 and new.updated_at == NOW
    return new


S = IncidentStatus
EXPECTED_SOURCES = {
    "acknowledge": {S.NEW},
    "confirm": {S.HOLD_RESOLUTION},
    "reopen": {S.HOLD_RESOLUTION},
    "resolve": {S.OPEN, S.HOLD_RESEARCH, S.PENDING_FIX, S.RFC_SUBMITTED},
    "raise-rfc": {S.OPEN, S.HOLD_RESEARCH, S.HOLD_RESOLUTION, S.PENDING_FIX},
}


@pytest.mark.parametrize("action", sorted(EXPECTED_SOURCES))
def test_sources(action: str) -> None:
    assert TRANSITIONS[action].sources == EXPECTED_SOURCES[action]


def test_nothing_but_nothing_from_closed() -> None:
    assert actions_in_state(make(S.CLOSED)) == []
    for action in TRANSITIONS:
        with pytest.raises(Conflict) as caught:
            transition(make(S.CLOSED), action, ENGINEER, NOW, {}, **FACTS)
        assert caught.value.state == "closed" and caught.value.allowed == ()


def test_confirm_only_when_awaiting_confirmation() -> None:
    waiting_customer = make(S.HOLD_RESOLUTION, waiting_for=WaitingFor.CUSTOMER)
    with pytest.raises(Conflict) as caught:
        transition(waiting_customer, "confirm", CUSTOMER, NOW, {}, **FACTS)
    assert caught.value.state == "hold_resolution" and "resume" in caught.value.allowed
    assert "confirm" not in caught.value.allowed
    with pytest.raises(Conflict) as caught:
        transition(make(S.OPEN), "confirm", CUSTOMER, NOW, {}, **FACTS)
    assert caught.value.state == "open"


def test_roles_and_tenancy() -> None:
    with pytest.raises(Forbidden):
        transition(make(), "acknowledge", CUSTOMER, NOW, {}, **FACTS)
    with pytest.raises(Forbidden):
        transition(make(), "acknowledge", CHANGE_MANAGER, NOW, {}, **FACTS)
    awaiting = make(S.HOLD_RESOLUTION, waiting_for=WaitingFor.CONFIRMATION)
    with pytest.raises(Forbidden):
        transition(awaiting, "confirm", OUTSIDER, NOW, {}, **FACTS)
    assert allowed_actions(awaiting, CUSTOMER) == ["confirm", "reopen"]
    assert "resolve" in allowed_actions(make(S.OPEN), ENGINEER)
    assert allowed_actions(make(S.OPEN), CUSTOMER) == []


def test_inputs_are_checked_all_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        transition(make(S.OPEN), "resolve", ENGINEER, NOW, {"sla_covered": "yes", "colour": "red"}, **FACTS)
    assert {p.field for p in caught.value.problems} == {"details", "actions_taken", "sla_covered", "colour"}


def test_hold_reasons_pause_and_resume_moves_the_due() -> None:
    opened = make(S.OPEN, responded_at=NOW)
    research = act(opened, "hold", reason="research")
    assert research.status is S.HOLD_RESEARCH and research.paused_since is None
    with pytest.raises(Conflict):
        act(research, "hold", reason="research")
    waiting = act(research, "hold", reason="customer")
    assert waiting.status is S.HOLD_RESOLUTION and waiting.waiting_for is WaitingFor.CUSTOMER
    assert waiting.paused_since == NOW and len(waiting.pauses) == 1
    later = NOW + dt.timedelta(hours=1)
    resumed, _ = transition(waiting, "resume", ENGINEER, later, {}, **FACTS)
    assert resumed.status is S.OPEN and resumed.paused_since is None
    assert resumed.resolution_due == (opened.resolution_due or NOW) + dt.timedelta(hours=1)
    assert resumed.pauses[0].business_seconds == 3600 and resumed.pauses[0].end == later
    fix = act(opened, "hold", reason="pending_fix")
    assert fix.status is S.PENDING_FIX and fix.paused_since == NOW and fix.waiting_for is None


def test_acknowledge_recomputes_dues_for_the_priority() -> None:
    acked = act(make(), "acknowledge", priority="critical")
    assert acked.status is S.OPEN and acked.priority is IncidentPriority.CRITICAL
    assert acked.response_due == dt.datetime(2026, 11, 2, 15, 0, tzinfo=UTC) and acked.responded_at == NOW
    again = act(acked, "set-priority", priority="low", reason="Only one user")
    assert again.response_due == dt.datetime(2026, 11, 4, 14, 0, tzinfo=UTC)


def test_resolve_builds_the_closure_record_and_close_rules() -> None:
    opened = make(S.OPEN, responded_at=NOW)
    resolved = act(opened, "resolve", details="Disk full", actions_taken="Cleaned", billable_permission=True)
    closure = resolved.closure
    assert closure is not None and resolved.awaiting_confirmation
    assert (closure.reported_by, closure.resolved_by, closure.time_to_resolve_minutes) == ("Pat", "eve", 60)
    assert closure.business_minutes_to_resolve == 60 and closure.sla_covered and closure.billable_permission
    assert resolved.paused_since == NOW  # waiting for the customer's confirmation
    with pytest.raises(Conflict):
        act(resolved, "close")
    reopened = act(resolved, "reopen", CUSTOMER, reason="No")
    assert reopened.reopen_count == 1 and reopened.resolved_at is None and reopened.status is S.OPEN
    confirmed = act(resolved, "confirm", CUSTOMER)
    assert confirmed.status is S.CLOSED and confirmed.closure is not None
    assert confirmed.closure.confirmed_by == "pat" and confirmed.paused_since is None
    referred = act(opened, "close", out_of_sla_reason="Hardware not covered")
    assert referred.closure is not None and referred.closure.referred_to_customer and not referred.closure.sla_covered


def test_assign_take_escalate_and_link() -> None:
    opened = make(S.OPEN)
    taken = act(opened, "take")
    assert taken.assignee_id == 7
    with pytest.raises(Conflict):
        act(taken, "take")  # already yours
    other = replace(taken, assignee_id=8)
    with pytest.raises(Conflict):
        act(other, "take")
    with pytest.raises(InvalidInput):
        act(other, "assign", person="ola")
    moved = act(other, "assign", person="ola", reason="Expertise")
    assert moved.assignee_id == 7
    rfc = act(other, "escalate", to="change_management", reason="Procedure")
    assert rfc.status is S.RFC_SUBMITTED and rfc.rfc_key == "RFC-2026-0009"
    linked = act(opened, "link", parent="INC-2026-0003")
    assert linked.parent_id == 3 and linked.status is S.OPEN
