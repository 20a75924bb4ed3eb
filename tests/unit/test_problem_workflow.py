"""The problem workflow: every action from every status, roles, inputs and the RFC rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from cmdb.errors import Conflict, Forbidden, InvalidInput
from cmdb.models import Actor, Role
from problem.models import Problem, ProblemOrigin, ProblemStatus
from problem.workflow import ACTIONS, TRANSITIONS, actions_in_state, allowed_actions, transition

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)
PROVIDER, ACME = 1, 2
ENGINEER = Actor(10, "eve", "Eve", PROVIDER, PROVIDER, frozenset({Role.ENGINEER}))
SERVICE_MANAGER = Actor(11, "sam", "Sam", PROVIDER, PROVIDER, frozenset({Role.SERVICE_MANAGER}))
CHANGE_MANAGER = Actor(12, "carl", "Carl", PROVIDER, PROVIDER, frozenset({Role.CHANGE_MANAGER}))
CUSTOMER = Actor(20, "acme-contact", "Acme", ACME, PROVIDER, frozenset({Role.CUSTOMER}))


def problem(status: ProblemStatus = ProblemStatus.OPEN, **changes: Any) -> Problem:
    base = Problem(
        id=1,
        key="PRB-2026-0001",
        tenant_id=ACME,
        title="Mail queue stalls",
        status=status,
        origin=ProblemOrigin.MANUAL,
        created_at=NOW,
        updated_at=NOW,
        ci_ids=(5,),
    )
    return replace(base, **changes)


# The inputs and facts that make each action succeed from a status it allows.
GOOD: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "investigate": ({}, {}, {}),
    "update": ({"title": "Mail queue stalls nightly"}, {}, {}),
    "link-incident": ({}, {"incident_id": 7, "incident_key": "INC-2026-0007", "incident_ci_ids": [5, 6]}, {}),
    "known-error": ({"root_cause": "Disk full", "workaround": "Purge the spool"}, {}, {}),
    "raise-rfc": ({}, {"rfc_id": 3, "rfc_key": "RFC-2026-0003", "rfc_state": "draft"}, {}),
    "resolve": ({"resolution": "Vendor fixed it upstream; no change needed here."}, {}, {}),
    "close": ({}, {}, {}),
    "reopen": ({"comment": "It came back"}, {}, {}),
}


@pytest.mark.parametrize("status", list(ProblemStatus))
@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_from_every_status(action: str, status: ProblemStatus) -> None:
    inputs, facts, changes = GOOD[action]
    record = problem(status, **changes)
    if status in TRANSITIONS[action].sources:
        new, events = transition(record, action, ENGINEER, NOW, inputs, facts)
        assert new.status is (TRANSITIONS[action].to or status)
        assert new.version == record.version + 1
        assert events[0].data["action"] == action
        assert events[0].data["from"] == status.value
    else:
        with pytest.raises(Conflict) as caught:
            transition(record, action, ENGINEER, NOW, inputs, facts)
        assert caught.value.state == status.value
        assert list(caught.value.allowed) == actions_in_state(record)


def test_statuses_lead_open_to_closed() -> None:
    record = problem()
    for action in ("investigate", "known-error", "resolve", "close"):
        inputs, facts, _ = GOOD[action]
        record, _ = transition(record, action, SERVICE_MANAGER, NOW, inputs, facts)
    assert record.status is ProblemStatus.CLOSED
    assert record.known_error
    assert actions_in_state(record) == []


@pytest.mark.parametrize("actor", [CUSTOMER, CHANGE_MANAGER])
def test_only_engineers_and_service_managers_act(actor: Actor) -> None:
    with pytest.raises(Forbidden):
        transition(problem(), "investigate", actor, NOW)
    assert allowed_actions(problem(), actor) == []
    assert "investigate" in allowed_actions(problem(), ENGINEER)


def test_known_error_names_each_missing_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        transition(problem(ProblemStatus.INVESTIGATING), "known-error", ENGINEER, NOW, {"root_cause": " "})
    assert {p.field for p in caught.value.problems} == {"root_cause", "workaround"}


def test_known_error_uses_what_the_record_already_holds() -> None:
    record = problem(ProblemStatus.INVESTIGATING, root_cause="Disk full")
    new, events = transition(record, "known-error", ENGINEER, NOW, {"workaround": "Purge"})
    assert (new.root_cause, new.workaround, new.known_error) == ("Disk full", "Purge", True)
    assert events[0].kind == "known_error_recorded"


def test_link_incident_adds_the_incident_and_its_cis_once() -> None:
    facts = {"incident_id": 7, "incident_key": "INC-2026-0007", "incident_ci_ids": [5, 6]}
    new, events = transition(problem(), "link-incident", ENGINEER, NOW, {}, facts)
    assert new.incident_ids == (7,) and new.ci_ids == (5, 6)
    assert events[0].data["cis_added"] == [6]
    with pytest.raises(InvalidInput) as caught:
        transition(new, "link-incident", ENGINEER, NOW, {}, facts)
    assert caught.value.problems[0].field == "incident"


def test_facts_must_come_from_the_service() -> None:
    with pytest.raises(TypeError):
        transition(problem(), "link-incident", ENGINEER, NOW, {}, {})


def test_unknown_input_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        transition(problem(), "investigate", ENGINEER, NOW, {"status": "closed"})
    assert caught.value.problems[0].field == "status"


def test_update_needs_a_change_and_a_title() -> None:
    with pytest.raises(InvalidInput):
        transition(problem(), "update", ENGINEER, NOW, {"title": "Mail queue stalls"})
    with pytest.raises(InvalidInput) as caught:
        transition(problem(), "update", ENGINEER, NOW, {"title": "  "})
    assert caught.value.problems[0].field == "title"


def test_raise_rfc_only_once_while_the_rfc_may_succeed() -> None:
    record = problem(ProblemStatus.KNOWN_ERROR, rfc_id=3, rfc_key="RFC-2026-0003", rfc_state="scheduled")
    assert "raise-rfc" not in actions_in_state(record)
    with pytest.raises(Conflict) as caught:
        transition(record, "raise-rfc", ENGINEER, NOW, {}, GOOD["raise-rfc"][1])
    assert caught.value.state == "known_error"
    rejected = replace(record, rfc_state="rejected")
    new, events = transition(
        rejected, "raise-rfc", ENGINEER, NOW, {}, {"rfc_id": 4, "rfc_key": "R4", "rfc_state": "draft"}
    )
    assert new.rfc_id == 4 and events[0].data["replaces"] == "RFC-2026-0003"


def test_resolve_waits_for_the_rfc_to_complete() -> None:
    record = problem(ProblemStatus.KNOWN_ERROR, rfc_id=3, rfc_key="RFC-2026-0003", rfc_state="implementing")
    assert "resolve" not in actions_in_state(record)
    with pytest.raises(Conflict) as caught:
        transition(record, "resolve", ENGINEER, NOW)
    assert "must be completed" in caught.value.detail
    done = replace(record, rfc_state="completed")
    new, events = transition(done, "resolve", ENGINEER, NOW)
    assert new.status is ProblemStatus.RESOLVED and events[0].data["rfc"] == "RFC-2026-0003"


def test_resolve_without_a_completed_rfc_needs_a_resolution_note() -> None:
    with pytest.raises(InvalidInput) as caught:
        transition(problem(ProblemStatus.INVESTIGATING), "resolve", ENGINEER, NOW)
    assert caught.value.problems[0].field == "resolution"
    withdrawn = problem(ProblemStatus.INVESTIGATING, rfc_id=3, rfc_key="RFC-2026-0003", rfc_state="withdrawn")
    with pytest.raises(InvalidInput):
        transition(withdrawn, "resolve", ENGINEER, NOW)
    new, _ = transition(withdrawn, "resolve", ENGINEER, NOW, {"resolution": "Config change, no RFC needed"})
    assert new.resolution == "Config change, no RFC needed"


def test_reopen_needs_a_comment() -> None:
    with pytest.raises(InvalidInput) as caught:
        transition(problem(ProblemStatus.RESOLVED), "reopen", ENGINEER, NOW)
    assert caught.value.problems[0].field == "comment"


def test_unknown_action() -> None:
    with pytest.raises(InvalidInput):
        transition(problem(), "explode", ENGINEER, NOW)


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError):
        transition(problem(), "investigate", ENGINEER, NOW.replace(tzinfo=None))
