"""The release workflow as a pure state machine: every action from every state, who may act,
the evidence approval needs, the review of negative effects."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from cmdb.errors import Conflict, Forbidden, InvalidInput
from cmdb.models import Actor, Role
from release.models import (
    EffectReview,
    MissingEvidence,
    Release,
    ReleaseState,
    ReleaseTest,
    TestResult,
)
from release.workflow import (
    ACTIONS,
    TRANSITIONS,
    actions_in_state,
    allowed_actions,
    evidence,
    review_problem,
    transition,
)

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
PROVIDER = 1
S = ReleaseState


def actor(*roles: Role, tenant: int = PROVIDER) -> Actor:
    return Actor(7, "someone", "Someone", tenant, PROVIDER, frozenset(roles))


RM = actor(Role.RELEASE_MANAGER)
ADMIN = actor(Role.ADMINISTRATOR)
ENG = actor(Role.ENGINEER)
CM = actor(Role.CHANGE_MANAGER)
CUSTOMER = actor(Role.CUSTOMER, tenant=2)


def release(state: ReleaseState = S.TESTING, **changes: object) -> Release:
    base = Release(
        id=1,
        key="REL-2026-0001",
        tenant_id=2,
        title="Nov",
        state=state,
        created_at=NOW,
        updated_at=NOW,
        rfc_ids=(10,),
        test_environment_id=50,
        represents=(51,),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def a_test(
    result: TestResult = TestResult.PASSED,
    covers: tuple[str, ...] = ("regression test",),
    effects: str = "",
    review: EffectReview | None = None,
    round: int = 1,
    id: int = 1,
) -> ReleaseTest:
    return ReleaseTest(id, 1, round, f"t{id}", result, covers, effects, 7, NOW, review=review)


REQ = {"regression test": ["RFC-2026-0001"]}

#: For each action, the states it may start from (the table, spelled out again on purpose).
EXPECTED_SOURCES = {
    "add-rfc": {S.PLANNED, S.TESTING, S.FAILED},
    "remove-rfc": {S.PLANNED, S.TESTING, S.FAILED},
    "set-test-environment": {S.PLANNED, S.TESTING, S.FAILED},
    "start-testing": {S.PLANNED, S.FAILED},
    "record-test": {S.PLANNED, S.TESTING, S.FAILED},
    "conclude-testing": {S.TESTING},
    "review-effect": {S.TESTING, S.PASSED, S.FAILED},
    "approve": {S.PLANNED, S.TESTING, S.PASSED, S.FAILED},
    "deploy": {S.APPROVED},
    "complete": {S.DEPLOYING},
    "back-out": {S.DEPLOYING, S.DEPLOYED},
    "cancel": {S.PLANNED, S.TESTING, S.PASSED, S.FAILED, S.APPROVED},
}


def _args(action: str) -> dict[str, object]:
    return {
        "tests": [a_test()],
        "requirements": REQ,
        "reason": "broke checkout",
        "watch_days": 7,
    }


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", list(ReleaseState))
def test_every_action_from_every_state(action: str, state: ReleaseState) -> None:
    subject = release(state)
    if state in EXPECTED_SOURCES[action]:
        if action == "approve" and state in (S.PLANNED, S.FAILED):
            # Let through only so the evidence check can say what is missing.
            tests = [a_test(TestResult.FAILED)] if state is S.FAILED else []
            with pytest.raises(MissingEvidence):
                transition(subject, action, RM, NOW, tests=tests, requirements=REQ)
            return
        new, data = transition(subject, action, RM, NOW, **_args(action))  # type: ignore[arg-type]
        assert new.version == subject.version + 1 and new.updated_at == NOW
        assert data["action"] == action and data["from"] == state.value and data["to"] == new.state.value
        row = TRANSITIONS[action]
        if row.to is not None:
            assert new.state is row.to
    else:
        with pytest.raises(Conflict) as caught:
            transition(subject, action, RM, NOW, **_args(action))  # type: ignore[arg-type]
        assert caught.value.state == state.value
        assert list(caught.value.allowed) == actions_in_state(subject)


def test_the_table_matches_the_documented_sources() -> None:
    assert {a: set(row.sources) for a, row in TRANSITIONS.items()} == EXPECTED_SOURCES


def test_terminal_states_allow_nothing() -> None:
    for state in (S.BACKED_OUT, S.CANCELLED):
        assert actions_in_state(release(state)) == []


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (RM, True),
        (ADMIN, True),
        (ENG, False),
        (CM, False),
        (CUSTOMER, False),
        (actor(Role.RELEASE_MANAGER, Role.CUSTOMER, tenant=2), False),
    ],
)
def test_who_may_approve(who: Actor, allowed: bool) -> None:
    if allowed:
        assert (
            transition(release(S.PASSED), "approve", who, NOW, tests=[a_test()], requirements=REQ)[0].state
            is S.APPROVED
        )
    else:
        with pytest.raises(Forbidden):
            transition(release(S.PASSED), "approve", who, NOW, tests=[a_test()], requirements=REQ)


def test_engineers_record_tests_and_set_the_environment_only() -> None:
    assert set(allowed_actions(release(S.TESTING), ENG)) == {"set-test-environment", "record-test"}
    assert allowed_actions(release(S.TESTING), CUSTOMER) == []
    assert "approve" in allowed_actions(release(S.TESTING), RM)
    assert "approve" not in allowed_actions(release(S.PLANNED), RM)
    assert "approve" not in allowed_actions(release(S.FAILED), RM)


def test_unknown_action_names_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        transition(release(), "launch", RM, NOW)
    assert caught.value.problems[0].field == "action"


def test_record_test_moves_planned_to_testing_and_a_failure_fails_the_release() -> None:
    assert transition(release(S.PLANNED), "record-test", ENG, NOW, tests=[a_test()])[0].state is S.TESTING
    failed = transition(release(S.TESTING), "record-test", ENG, NOW, tests=[a_test(), a_test(TestResult.FAILED, id=2)])
    assert failed[0].state is S.FAILED
    # A failure from an earlier round no longer counts.
    again = transition(
        release(S.TESTING, test_round=2),
        "record-test",
        ENG,
        NOW,
        tests=[a_test(TestResult.FAILED), a_test(round=2, id=2)],
    )
    assert again[0].state is S.TESTING


def test_conclude_testing_decides_from_the_current_round() -> None:
    assert transition(release(), "conclude-testing", RM, NOW, tests=[a_test()])[0].state is S.PASSED
    assert transition(release(), "conclude-testing", RM, NOW, tests=[a_test(TestResult.FAILED)])[0].state is S.FAILED
    with pytest.raises(MissingEvidence) as caught:
        transition(release(test_round=2), "conclude-testing", RM, NOW, tests=[a_test()])
    assert caught.value.missing == ("at least one test",)


def test_start_testing_after_a_failure_opens_a_new_round() -> None:
    new, data = transition(release(S.FAILED), "start-testing", RM, NOW)
    assert new.state is S.TESTING and new.test_round == 2 and data["round"] == 2
    assert transition(release(S.PLANNED), "start-testing", RM, NOW)[0].test_round == 1


def test_approval_needs_every_piece_of_evidence() -> None:
    bare = release(S.TESTING, rfc_ids=(), test_environment_id=None)
    found = evidence(bare, [], REQ)
    assert found.missing == (
        "at least one RFC",
        "a test environment (a CI of class test_environment) representing production",
        "at least one passed test",
        "test evidence for the requirement 'regression test' (RFC-2026-0001): no passed test covers it",
    )
    with pytest.raises(MissingEvidence) as caught:
        transition(bare, "approve", RM, NOW, tests=[], requirements=REQ)
    assert caught.value.missing == found.missing and caught.value.state == "testing"
    # Covering is by text, whatever the case and spacing.
    assert evidence(release(), [a_test(covers=("Regression   Test",))], REQ).complete
    # A failed test covers nothing; an unreviewed negative effect blocks; a review unblocks.
    assert not evidence(release(), [a_test(TestResult.FAILED)], REQ).complete
    blocked = evidence(release(), [a_test(effects="slower")], REQ)
    assert blocked.missing == ("a review of the negative effects found by test 't1' (#1)",)
    assert evidence(release(), [a_test(effects="slower", review=EffectReview.RESOLVED)], REQ).complete
    statuses = evidence(release(), [a_test()], {**REQ, "load test": ["RFC-2026-0002"]}).requirements
    assert [(s.text, s.satisfied, s.test_id) for s in statuses] == [
        ("regression test", True, 1),
        ("load test", False, None),
    ]


def test_approval_records_who_and_when() -> None:
    new, data = transition(release(S.PASSED), "approve", RM, NOW, tests=[a_test()], requirements=REQ)
    assert new.approved_at == NOW and new.approved_by == 7 and data["tests"] == [1]


def test_accepting_an_effect_needs_a_critical_patch_and_a_justification() -> None:
    effect = a_test(effects="slower")
    review_problem(effect, EffectReview.RESOLVED, "", False, release())
    review_problem(effect, EffectReview.ACCEPTED, "worm spreading", True, release())
    with pytest.raises(Conflict) as caught:
        review_problem(effect, EffectReview.ACCEPTED, "because", False, release())
    assert "critical patch" in caught.value.detail
    with pytest.raises(InvalidInput) as problem:
        review_problem(effect, EffectReview.ACCEPTED, "  ", True, release())
    assert problem.value.problems[0].field == "justification"
    with pytest.raises(Conflict):
        review_problem(a_test(), EffectReview.RESOLVED, "", True, release())


def test_complete_sets_the_watch_period_and_back_out_needs_a_reason() -> None:
    new, data = transition(release(S.DEPLOYING), "complete", RM, NOW, watch_days=3)
    assert new.deployed_at == NOW and new.watch_until == NOW + dt.timedelta(days=3) and new.watch_days == 3
    assert new.watching_at(NOW + dt.timedelta(days=2)) and not new.watching_at(NOW + dt.timedelta(days=4))
    with pytest.raises(InvalidInput) as caught:
        transition(release(S.DEPLOYED), "back-out", RM, NOW, reason=" ")
    assert caught.value.problems[0].field == "reason"
    backed, data = transition(release(S.DEPLOYED), "back-out", RM, NOW, reason="errors")
    assert backed.backed_out_at == NOW and backed.backout_reason == "errors" and data["reason"] == "errors"
    assert not backed.watching_at(NOW)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError):
        transition(release(), "start-testing", RM, dt.datetime(2026, 11, 22))
