"""The RFC workflow (change.workflow): every action from every state, roles, inputs, the committee's
decision rules, emergencies, standard changes, tenancy, and random action sequences."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from change.models import (
    REQUIRED_FOR_SUBMIT,
    RFC,
    TERMINAL_STATES,
    ChangeType,
    Event,
    ImpactClass,
    Origin,
    Outcome,
    Priority,
    RFCState,
    Urgency,
    VoteChoice,
    missing_for_submit,
)
from change.workflow import (
    ACTIONS,
    EVENT_KINDS,
    TRANSITIONS,
    DecisionRule,
    actions_in_state,
    allowed_actions,
    transition,
)
from cmdb.errors import Conflict, Forbidden, InvalidInput
from cmdb.models import Actor, Role

S = RFCState
PROVIDER, TENANT, OTHER_TENANT = 1, 2, 3
NOW = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
PALETTE = {"green", "blue", "orange", "red", "grey", "purple", "yellow"}
PROPERTY = settings(max_examples=100, deadline=None)
SEQUENCES = settings(max_examples=150, deadline=None)


def staff(person_id: int, name: str, *roles: Role) -> Actor:
    return Actor(person_id, name, name.title(), PROVIDER, PROVIDER, frozenset(roles))


def contact(person_id: int, name: str, tenant: int, *roles: Role) -> Actor:
    return Actor(person_id, name, name.title(), tenant, PROVIDER, frozenset(roles or {Role.CUSTOMER}))


# The originator holds no role that would allow anything by itself, so the matrix shows what
# being the originator allows.
ORIGINATOR = staff(10, "oona", Role.SERVICE_MANAGER)
ACTORS: dict[str, Actor] = {
    "originator": ORIGINATOR,
    "engineer": staff(11, "eric", Role.ENGINEER),
    "change_manager": staff(20, "carla", Role.CHANGE_MANAGER),
    "release_manager": staff(30, "rita", Role.RELEASE_MANAGER),
    "committee": staff(41, "kofi", Role.COMMITTEE_MEMBER),
    "service_manager": staff(70, "sam", Role.SERVICE_MANAGER),
    "administrator": staff(80, "ada", Role.ADMINISTRATOR),
    "customer": contact(50, "cate", TENANT),
    "other_customer": contact(60, "otto", OTHER_TENANT),
}
CM = ACTORS["change_manager"]
RM = ACTORS["release_manager"]
CUSTOMER = ACTORS["customer"]
MEMBERS = [staff(41 + i, f"member{i}", Role.COMMITTEE_MEMBER) for i in range(4)]

# The specification, written out independently of the module's table.
EXPECTED: dict[str, dict[RFCState, RFCState]] = {
    "submit": {S.DRAFT: S.SUBMITTED, S.NEEDS_INFORMATION: S.SUBMITTED},
    "request-info": {S.SUBMITTED: S.NEEDS_INFORMATION},
    "set-priority": {
        s: s for s in (S.SUBMITTED, S.NEEDS_INFORMATION, S.AUTHORIZED, S.IN_REVIEW, S.APPROVED, S.SCHEDULED)
    },
    "authorize": {S.SUBMITTED: S.AUTHORIZED},
    "reject": {S.SUBMITTED: S.REJECTED, S.AUTHORIZED: S.REJECTED, S.IN_REVIEW: S.REJECTED},
    "refer-to-committee": {S.AUTHORIZED: S.IN_REVIEW},
    "vote": {S.IN_REVIEW: S.IN_REVIEW},  # one vote, quorum 3: no decision yet
    "approve": {S.AUTHORIZED: S.APPROVED},
    "customer-approve": {S.AUTHORIZED: S.AUTHORIZED, S.IN_REVIEW: S.IN_REVIEW, S.APPROVED: S.APPROVED},
    "schedule": {S.APPROVED: S.SCHEDULED, S.SCHEDULED: S.SCHEDULED},
    "withdraw": {
        s: S.WITHDRAWN
        for s in (S.DRAFT, S.SUBMITTED, S.NEEDS_INFORMATION, S.AUTHORIZED, S.IN_REVIEW, S.APPROVED, S.SCHEDULED)
    },
    "implement": {S.SCHEDULED: S.IMPLEMENTING},
    "complete": {S.IMPLEMENTING: S.COMPLETED},
    "fail": {S.IMPLEMENTING: S.FAILED},
    "back-out": {S.FAILED: S.BACKED_OUT, S.IMPLEMENTING: S.BACKED_OUT},
}
WHO: dict[str, set[str]] = {
    "submit": {"originator", "engineer", "change_manager", "customer"},
    "request-info": {"change_manager"},
    "set-priority": {"change_manager"},
    "authorize": {"change_manager"},
    "reject": {"change_manager"},
    "refer-to-committee": {"change_manager"},
    "vote": {"committee"},
    "approve": {"change_manager"},
    "customer-approve": {"customer"},
    "schedule": {"change_manager", "release_manager"},
    "withdraw": {"originator", "change_manager"},
    "implement": {"release_manager", "engineer"},
    "complete": {"release_manager", "engineer"},
    "fail": {"release_manager", "engineer"},
    "back-out": {"release_manager", "engineer"},
}
NEEDS: dict[str, set[str]] = {
    "request-info": {"comment"},
    "set-priority": {"priority", "reason"},
    "authorize": {"release_requirements"},
    "reject": {"comment"},
    "vote": {"vote", "comment"},
    "schedule": {"planned_start", "planned_end"},
    "fail": {"comment"},
    "back-out": {"comment"},
}
ACTOR_FOR = {action: ACTORS[sorted(names)[0]] for action, names in WHO.items()}


def make_rfc(state: RFCState = S.DRAFT, **changes: Any) -> RFC:
    """A complete RFC of TENANT raised by ORIGINATOR; scheduled and later states have a window
    that has already started at NOW."""
    base = RFC(
        id=7,
        key="RFC-2026-0042",
        tenant_id=TENANT,
        title="Patch the mail server",
        type=ChangeType.NORMAL,
        state=state,
        priority=Priority.MEDIUM,
        origin=Origin.INTERNAL,
        originator_id=ORIGINATOR.person_id,
        created_at=NOW - timedelta(days=3),
        updated_at=NOW - timedelta(days=1),
        need="Outlook clients lose their connection",
        desired_result="Stable connections",
        ci_ids=(101, 102),
        plan="Install the cumulative update",
        backout_plan="Uninstall the update and restore the snapshot",
        cost=Decimal("400.00"),
        version=5,
    )
    if state in (S.SCHEDULED, S.IMPLEMENTING, S.FAILED, S.COMPLETED, S.BACKED_OUT):
        base = replace(base, planned_start=NOW - timedelta(hours=1), planned_end=NOW + timedelta(hours=2))
    return replace(base, **changes)


def good_params(action: str, rfc: RFC) -> dict[str, Any]:
    """Inputs and facts with which the action succeeds (with its allowed actor)."""
    table: dict[str, dict[str, Any]] = {
        "submit": {},
        "request-info": {"comment": "Which database version?"},
        "set-priority": {
            "priority": "critical" if rfc.priority is not Priority.CRITICAL else "low",
            "reason": "Customer escalated",
        },
        "authorize": {"release_requirements": ["test evidence"]},
        "reject": {"comment": "Not worth the risk"},
        "refer-to-committee": {},
        "vote": {"vote": "approve", "comment": "Looks fine", "votes": {}, "rule": DecisionRule()},
        "approve": {"committee_required": False},
        "customer-approve": {},
        "schedule": {
            "planned_start": NOW + timedelta(days=1),
            "planned_end": NOW + timedelta(days=1, hours=2),
            "schedule_violations": [],
        },
        "withdraw": {},
        "implement": {},
        "complete": {},
        "fail": {"comment": "Service did not come back"},
        "back-out": {"comment": "Restored the snapshot"},
    }
    return dict(table[action])


def facts_only(action: str, rfc: RFC) -> dict[str, Any]:
    facts = TRANSITIONS[action].facts
    return {k: v for k, v in good_params(action, rfc).items() if k in facts}


def rfc_for(action: str, state: RFCState) -> RFC:
    if action == "customer-approve":
        return make_rfc(state, customer_approval_required=True)
    return make_rfc(state)


def problem_fields(exc: InvalidInput) -> set[str]:
    return {p.field for p in exc.problems}


# ------------------------------------------------------------------------- table and states


class TestTable:
    def test_the_table_is_the_specification(self) -> None:
        assert set(TRANSITIONS) == set(EXPECTED) == set(ACTIONS) == set(EVENT_KINDS)
        for action, row in TRANSITIONS.items():
            assert row.sources == set(EXPECTED[action]), action
            assert set(row.needs) == NEEDS.get(action, set()), action

    def test_terminal_states(self) -> None:
        assert {S.COMPLETED, S.BACKED_OUT, S.REJECTED, S.WITHDRAWN} == TERMINAL_STATES == Outcome
        assert not S.FAILED.is_terminal
        for state in TERMINAL_STATES:
            assert actions_in_state(make_rfc(state)) == []
            assert not any(state in row.sources for row in TRANSITIONS.values())

    @pytest.mark.parametrize(
        "enum", [RFCState, ChangeType, Priority, Origin, Urgency, ImpactClass, VoteChoice], ids=lambda e: e.__name__
    )
    def test_every_choice_has_a_label_and_a_known_colour(self, enum: Any) -> None:
        for member in enum:
            assert member.label and member.label[0].isupper()
            assert member.colour in PALETTE, member

    def test_labels(self) -> None:
        assert S.NEEDS_INFORMATION.label == "Needs information"
        assert S.BACKED_OUT.label == "Backed out"
        assert Urgency.SERVICE_RELEASE.label == "Service release"
        assert S.FAILED.colour == "red" and S.COMPLETED.colour == "green"


ALL_CASES = [(action, state) for action in EXPECTED for state in RFCState]


@pytest.mark.parametrize(("action", "state"), ALL_CASES, ids=[f"{a}-{s.value}" for a, s in ALL_CASES])
def test_every_action_from_every_state(action: str, state: RFCState) -> None:
    rfc = rfc_for(action, state)
    actor = ACTOR_FOR[action]
    if state in EXPECTED[action]:
        new, events = transition(rfc, action, actor, NOW, **good_params(action, rfc))
        assert new.state is EXPECTED[action][state]
        assert new.version == rfc.version + 1
        assert new.updated_at == NOW
        assert new.created_at == rfc.created_at
        assert events
        first = events[0]
        assert isinstance(first, Event)
        assert (first.actor_id, first.actor_name, first.at) == (actor.person_id, actor.name, NOW)
        assert first.data["action"] == action and first.data["from"] == state.value
        assert first.comment == (good_params(action, rfc).get("comment") or good_params(action, rfc).get("reason", ""))
    else:
        with pytest.raises(Conflict) as info:
            transition(rfc, action, actor, NOW, **good_params(action, rfc))
        assert info.value.state == state.value
        assert list(info.value.allowed) == actions_in_state(rfc)
        assert state.value in info.value.detail
        for allowed in info.value.allowed:
            assert allowed in info.value.detail


def test_conflict_lists_actions_allowed_now() -> None:
    with pytest.raises(Conflict) as info:
        transition(make_rfc(S.DRAFT), "authorize", CM, NOW, release_requirements=[])
    assert info.value.allowed == ("submit", "withdraw")
    assert info.value.detail == "Cannot authorize: RFC-2026-0042 is draft. Actions allowed now: submit, withdraw."


def test_terminal_conflict_says_nothing_is_allowed() -> None:
    with pytest.raises(Conflict) as info:
        transition(make_rfc(S.COMPLETED), "withdraw", CM, NOW)
    assert info.value.allowed == ()
    assert "No action is allowed" in info.value.detail


def test_unknown_action_and_naive_time() -> None:
    with pytest.raises(InvalidInput) as info:
        transition(make_rfc(), "launch", CM, NOW)
    assert problem_fields(info.value) == {"action"}
    with pytest.raises(ValueError, match="timezone"):
        transition(make_rfc(), "submit", CM, NOW.replace(tzinfo=None))


# ------------------------------------------------------------------------------------ roles

ROLE_CASES = [(action, name) for action in EXPECTED for name in ACTORS]


@pytest.mark.parametrize(("action", "who"), ROLE_CASES, ids=[f"{a}-{w}" for a, w in ROLE_CASES])
def test_who_may_take_each_action(action: str, who: str) -> None:
    state = next(iter(EXPECTED[action]))
    rfc = rfc_for(action, state)
    actor = ACTORS[who]
    if who in WHO[action]:
        new, _ = transition(rfc, action, actor, NOW, **good_params(action, rfc))
        assert new.version == rfc.version + 1
        assert action in allowed_actions(rfc, actor)
    else:
        with pytest.raises(Forbidden):
            transition(rfc, action, actor, NOW, **good_params(action, rfc))
        assert action not in allowed_actions(rfc, actor)


def test_forbidden_names_who_may() -> None:
    with pytest.raises(Forbidden, match="Only a change manager may authorize RFC-2026-0042"):
        transition(make_rfc(S.SUBMITTED), "authorize", RM, NOW, release_requirements=[])
    with pytest.raises(Forbidden, match="Only an engineer or a release manager may implement"):
        transition(make_rfc(S.SCHEDULED), "implement", CM, NOW)


def test_a_person_with_several_roles_may_do_what_each_allows() -> None:
    both = staff(21, "bo", Role.CHANGE_MANAGER, Role.RELEASE_MANAGER)
    assert "authorize" in allowed_actions(make_rfc(S.SUBMITTED), both)
    assert "implement" in allowed_actions(make_rfc(S.SCHEDULED), both)


def test_state_conflict_comes_before_role() -> None:
    with pytest.raises(Conflict):
        transition(make_rfc(S.DRAFT), "authorize", RM, NOW, release_requirements=[])


# ----------------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("action", sorted(NEEDS))
def test_missing_inputs_are_named_all_at_once(action: str) -> None:
    state = next(iter(EXPECTED[action]))
    rfc = rfc_for(action, state)
    with pytest.raises(InvalidInput) as info:
        transition(rfc, action, ACTOR_FOR[action], NOW, **facts_only(action, rfc))
    assert problem_fields(info.value) == NEEDS[action]
    for name in NEEDS[action]:
        assert name in info.value.detail


@pytest.mark.parametrize("action", ["request-info", "reject", "fail", "back-out"])
def test_a_blank_comment_is_missing(action: str) -> None:
    rfc = rfc_for(action, next(iter(EXPECTED[action])))
    with pytest.raises(InvalidInput) as info:
        transition(rfc, action, ACTOR_FOR[action], NOW, comment="   ")
    assert problem_fields(info.value) == {"comment"}


def test_malformed_inputs() -> None:
    rfc = make_rfc(S.SUBMITTED)
    with pytest.raises(InvalidInput) as info:
        transition(rfc, "set-priority", CM, NOW, priority="urgent", reason=42)
    assert {p.field: p.reason for p in info.value.problems} == {
        "priority": "must be one of critical, high, medium, low",
        "reason": "must be text",
    }
    with pytest.raises(InvalidInput) as info:
        transition(rfc, "authorize", CM, NOW, release_requirements="test evidence")
    assert problem_fields(info.value) == {"release_requirements"}
    with pytest.raises(InvalidInput) as info:
        transition(rfc, "authorize", CM, NOW, release_requirements=["ok", " "])
    assert info.value.problems[0].reason == "item 2 must be a non-blank text"
    with pytest.raises(InvalidInput) as info:
        transition(make_rfc(S.IN_REVIEW), "vote", MEMBERS[0], NOW, vote="maybe", comment="x", votes={})
    assert problem_fields(info.value) == {"vote"}


def test_schedule_times_must_be_aware_and_in_order() -> None:
    rfc = make_rfc(S.APPROVED)
    with pytest.raises(InvalidInput) as info:
        transition(
            rfc,
            "schedule",
            CM,
            NOW,
            planned_start=datetime(2026, 3, 20, 22),
            planned_end="soon",
            schedule_violations=[],
        )
    assert problem_fields(info.value) == {"planned_start", "planned_end"}
    with pytest.raises(InvalidInput) as info:
        transition(rfc, "schedule", CM, NOW, planned_start=NOW, planned_end=NOW, schedule_violations=[])
    assert [(p.field, p.reason) for p in info.value.problems] == [("planned_end", "must be after planned_start")]
    new, _ = transition(
        rfc,
        "schedule",
        CM,
        NOW,
        planned_start="2026-03-21T22:00:00+00:00",
        planned_end="2026-03-22T02:00:00+00:00",
        schedule_violations=[],
    )
    assert new.planned_start == datetime(2026, 3, 21, 22, tzinfo=UTC)


def test_facts_must_come_from_the_service() -> None:
    with pytest.raises(TypeError, match="committee_required"):
        transition(make_rfc(S.AUTHORIZED), "approve", CM, NOW)
    with pytest.raises(TypeError, match="schedule_violations"):
        transition(make_rfc(S.APPROVED), "schedule", CM, NOW, planned_start=NOW, planned_end=NOW + timedelta(hours=1))
    with pytest.raises(TypeError, match="votes"):
        transition(make_rfc(S.IN_REVIEW), "vote", MEMBERS[0], NOW, vote="approve", comment="ok")


# ----------------------------------------------------------------------------------- submit


class TestSubmit:
    def test_lists_every_missing_field_together(self) -> None:
        draft = make_rfc(need="", desired_result=" ", plan="", backout_plan="", ci_ids=())
        assert missing_for_submit(draft) == list(REQUIRED_FOR_SUBMIT)
        with pytest.raises(InvalidInput) as info:
            transition(draft, "submit", ORIGINATOR, NOW)
        assert [p.field for p in info.value.problems] == ["need", "desired_result", "plan", "backout_plan", "ci_ids"]

    def test_lists_only_what_is_missing(self) -> None:
        with pytest.raises(InvalidInput) as info:
            transition(make_rfc(backout_plan="  "), "submit", ORIGINATOR, NOW)
        assert problem_fields(info.value) == {"backout_plan"}

    def test_resubmission_after_a_request_for_information(self) -> None:
        asked, events = transition(make_rfc(S.SUBMITTED), "request-info", CM, NOW, comment="Add the backout steps")
        assert asked.state is S.NEEDS_INFORMATION
        assert events[0].kind == "information_requested" and events[0].comment == "Add the backout steps"
        again, events = transition(asked, "submit", ORIGINATOR, NOW + timedelta(hours=1), comment="Added")
        assert again.state is S.SUBMITTED and again.version == asked.version + 1
        assert events[0].kind == "resubmitted"

    def test_customers_submit_their_own_tenants_rfcs(self) -> None:
        new, events = transition(make_rfc(originator_id=None), "submit", CUSTOMER, NOW)
        assert new.state is S.SUBMITTED and events[0].actor_id == CUSTOMER.person_id


# --------------------------------------------------------------------- screening by the manager


class TestScreening:
    def test_set_priority_records_before_and_after(self) -> None:
        rfc = make_rfc(S.AUTHORIZED)
        new, events = transition(rfc, "set-priority", CM, NOW, priority="high", reason="Customer escalated")
        assert new.priority is Priority.HIGH and new.state is S.AUTHORIZED
        (event,) = events
        assert event.kind == "priority_changed"
        assert event.data["before"] == "medium" and event.data["after"] == "high"
        assert event.data["reason"] == "Customer escalated" and event.comment == "Customer escalated"

    def test_set_priority_to_the_same_priority_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match="already medium"):
            transition(make_rfc(S.SUBMITTED), "set-priority", CM, NOW, priority="medium", reason="x")

    def test_authorize_states_release_requirements_and_freezes_impact(self) -> None:
        new, events = transition(
            make_rfc(S.SUBMITTED),
            "authorize",
            CM,
            NOW,
            release_requirements=[" test evidence ", "test evidence", "UAT"],
        )
        assert new.state is S.AUTHORIZED and new.impact_frozen
        assert new.release_requirements == ("test evidence", "UAT")
        assert events[0].data["release_requirements"] == ["test evidence", "UAT"]

    def test_release_requirements_may_be_empty_but_must_be_given(self) -> None:
        new, _ = transition(make_rfc(S.SUBMITTED), "authorize", CM, NOW, release_requirements=[])
        assert new.release_requirements == () and new.impact_frozen

    def test_rejected_is_closed_for_good(self) -> None:
        new, events = transition(make_rfc(S.SUBMITTED), "reject", CM, NOW, comment="Out of scope")
        assert new.state is S.REJECTED and events[0].kind == "rejected"
        for actor in ACTORS.values():
            assert allowed_actions(new, actor) == []


# ---------------------------------------------------------------------------- the committee


class TestDecisionRule:
    A, R, X = VoteChoice.APPROVE, VoteChoice.REJECT, VoteChoice.ABSTAIN

    def test_quorum_not_reached(self) -> None:
        assert DecisionRule(quorum=3).decide({1: self.A, 2: self.A}) is None

    def test_simple_majority(self) -> None:
        assert DecisionRule(quorum=3).decide({1: self.A, 2: self.A, 3: self.R}) == "approve"
        assert DecisionRule(quorum=3).decide({1: self.A, 2: self.R, 3: self.R}) == "reject"

    def test_a_tie_rejects(self) -> None:
        assert DecisionRule(quorum=2).decide({1: self.A, 2: self.R}) == "reject"

    def test_abstentions_count_for_quorum_not_majority(self) -> None:
        rule = DecisionRule(quorum=3)
        assert rule.decide({1: self.A, 2: self.X, 3: self.X}) == "approve"
        assert rule.decide({1: self.X, 2: self.X, 3: self.X}) is None

    def test_qualified_majority(self) -> None:
        rule = DecisionRule(quorum=3, majority=2 / 3)
        assert rule.decide({1: self.A, 2: self.A, 3: self.R}) == "reject"  # exactly 2/3 is not more
        assert rule.decide({1: self.A, 2: self.A, 3: self.A, 4: self.R}) == "approve"

    def test_veto(self) -> None:
        rule = DecisionRule(quorum=3, veto=True)
        assert rule.decide({1: self.R}) == "reject"  # at once, before quorum
        assert rule.decide({1: self.A, 2: self.A, 3: self.A, 4: self.R}) == "reject"
        assert rule.decide({1: self.A, 2: self.A, 3: self.X}) == "approve"

    def test_accepts_plain_strings(self) -> None:
        assert DecisionRule(quorum=1).decide({1: "approve"}) == "approve"

    @pytest.mark.parametrize("kwargs", [{"quorum": 0}, {"quorum": True}, {"majority": 1.0}, {"majority": -0.1}])
    def test_bad_rules_are_refused(self, kwargs: dict[str, Any]) -> None:
        with pytest.raises(ValueError):
            DecisionRule(**kwargs)

    def test_from_terms(self) -> None:
        assert DecisionRule.from_terms(None) == DecisionRule()
        assert DecisionRule.from_terms({"quorum": 2, "veto": True}) == DecisionRule(quorum=2, veto=True)
        with pytest.raises(InvalidInput) as info:
            DecisionRule.from_terms({"quorum": "3", "majority": 2, "veto": "yes", "chair": 1})
        assert problem_fields(info.value) == {
            "committee_rule.quorum",
            "committee_rule.majority",
            "committee_rule.veto",
            "committee_rule.chair",
        }

    @given(votes=st.dictionaries(st.integers(1, 20), st.sampled_from(VoteChoice), max_size=12))
    @PROPERTY
    def test_veto_never_approves_with_a_reject(self, votes: dict[int, VoteChoice]) -> None:
        decision = DecisionRule(quorum=1, veto=True).decide(votes)
        if VoteChoice.REJECT in votes.values():
            assert decision == "reject"


class TestVote:
    def test_originator_cannot_vote_on_their_own_rfc(self) -> None:
        member_originator = staff(ORIGINATOR.person_id or 0, "oona", Role.COMMITTEE_MEMBER)
        rfc = make_rfc(S.IN_REVIEW)
        assert "vote" not in allowed_actions(rfc, member_originator)
        with pytest.raises(Forbidden, match="originator"):
            transition(rfc, "vote", member_originator, NOW, vote="approve", comment="mine", votes={})

    def test_no_decision_stays_in_review(self) -> None:
        new, events = transition(make_rfc(S.IN_REVIEW), "vote", MEMBERS[0], NOW, vote="approve", comment="ok", votes={})
        assert new.state is S.IN_REVIEW and new.version == 6
        (event,) = events
        assert event.kind == "voted" and event.data["vote"] == "approve"
        assert event.data["tally"] == {"approve": 1, "reject": 0, "abstain": 0}

    def test_quorum_reached_approves(self) -> None:
        votes = {MEMBERS[0].person_id: VoteChoice.APPROVE, MEMBERS[1].person_id: VoteChoice.REJECT}
        new, events = transition(
            make_rfc(S.IN_REVIEW), "vote", MEMBERS[2], NOW, vote="approve", comment="ok", votes=votes
        )
        assert new.state is S.APPROVED
        assert [e.kind for e in events] == ["voted", "committee_approved"]
        assert events[1].data["tally"] == {"approve": 2, "reject": 1, "abstain": 0}
        assert events[1].data["from"] == "in_review" and events[1].data["to"] == "approved"

    def test_quorum_reached_rejects(self) -> None:
        votes = {MEMBERS[0].person_id: "reject", MEMBERS[1].person_id: "abstain"}
        new, events = transition(
            make_rfc(S.IN_REVIEW), "vote", MEMBERS[2], NOW, vote="reject", comment="no", votes=votes
        )
        assert new.state is S.REJECTED and events[-1].kind == "committee_rejected"

    def test_veto_rejects_on_the_first_reject(self) -> None:
        new, _ = transition(
            make_rfc(S.IN_REVIEW),
            "vote",
            MEMBERS[0],
            NOW,
            vote="reject",
            comment="unsafe",
            votes={},
            rule=DecisionRule(veto=True),
        )
        assert new.state is S.REJECTED

    def test_voting_again_replaces_the_earlier_vote(self) -> None:
        member = MEMBERS[0]
        votes = {member.person_id: VoteChoice.REJECT, MEMBERS[1].person_id: VoteChoice.APPROVE}
        new, events = transition(
            make_rfc(S.IN_REVIEW), "vote", member, NOW, vote="approve", comment="convinced", votes=votes
        )
        assert new.state is S.IN_REVIEW  # two voters: quorum 3 not reached
        assert events[0].data["replaces"] == "reject"
        assert events[0].data["tally"] == {"approve": 2, "reject": 0, "abstain": 0}


# ---------------------------------------------------------------------------------- approve


class TestApprove:
    def test_low_impact_goes_straight_to_release(self) -> None:
        new, events = transition(make_rfc(S.AUTHORIZED), "approve", CM, NOW, committee_required=False)
        assert new.state is S.APPROVED and events[0].data["committee_required"] is False

    def test_high_impact_normal_change_needs_the_committee(self) -> None:
        with pytest.raises(Conflict, match="committee") as info:
            transition(make_rfc(S.AUTHORIZED), "approve", CM, NOW, committee_required=True)
        assert info.value.state == "authorized"
        assert "refer-to-committee" in info.value.allowed

    def test_standard_change_is_approved_without_the_committee(self) -> None:
        rfc = make_rfc(S.AUTHORIZED, type=ChangeType.STANDARD, template="Server restart")
        new, _ = transition(rfc, "approve", CM, NOW, committee_required=True)
        assert new.state is S.APPROVED

    def test_standard_change_cannot_go_to_the_committee(self) -> None:
        rfc = make_rfc(S.AUTHORIZED, type=ChangeType.STANDARD)
        assert "refer-to-committee" not in actions_in_state(rfc)
        assert "refer-to-committee" not in allowed_actions(rfc, CM)
        with pytest.raises(Conflict, match="standard changes") as info:
            transition(rfc, "refer-to-committee", CM, NOW)
        assert "refer-to-committee" not in info.value.allowed

    def test_emergency_needs_the_ecab_decision(self) -> None:
        rfc = make_rfc(S.AUTHORIZED, type=ChangeType.EMERGENCY)
        with pytest.raises(InvalidInput) as info:
            transition(rfc, "approve", CM, NOW, committee_required=True)
        assert problem_fields(info.value) == {"emergency_reason"}
        new, events = transition(
            rfc, "approve", CM, NOW, committee_required=True, emergency_reason="ECAB call 02:10: exploit in the wild"
        )
        assert new.state is S.APPROVED
        assert new.emergency_reason == "ECAB call 02:10: exploit in the wild"
        assert new.post_implementation_review_required
        assert events[0].data["ecab"] is True


# --------------------------------------------------------------------------------- schedule


class TestSchedule:
    START = NOW + timedelta(days=2)
    END = START + timedelta(hours=3)

    def test_violations_refuse_a_normal_change(self) -> None:
        with pytest.raises(InvalidInput) as info:
            transition(
                make_rfc(S.APPROVED),
                "schedule",
                CM,
                NOW,
                planned_start=self.START,
                planned_end=self.END,
                schedule_violations=["outside the Saturday window of mail01", "inside the year-end freeze"],
            )
        assert [(p.field, p.reason) for p in info.value.problems] == [
            ("planned_start", "outside the Saturday window of mail01"),
            ("planned_start", "inside the year-end freeze"),
        ]

    def test_emergency_outside_windows_is_recorded_and_needs_a_review(self) -> None:
        class Violation:  # what cmdb.windows.check_schedule returns
            detail = "inside the year-end freeze"

        rfc = make_rfc(S.APPROVED, type=ChangeType.EMERGENCY)
        new, events = transition(
            rfc,
            "schedule",
            RM,
            NOW,
            planned_start=self.START,
            planned_end=self.END,
            schedule_violations=[Violation()],
        )
        assert new.state is S.SCHEDULED and new.post_implementation_review_required
        assert (new.planned_start, new.planned_end) == (self.START, self.END)
        assert events[0].data["schedule_violations"] == ["inside the year-end freeze"]
        assert events[0].data["emergency"] is True

    def test_inside_windows_needs_no_review(self) -> None:
        new, events = transition(
            make_rfc(S.APPROVED, type=ChangeType.EMERGENCY),
            "schedule",
            CM,
            NOW,
            planned_start=self.START,
            planned_end=self.END,
            schedule_violations=[],
        )
        assert not new.post_implementation_review_required
        assert events[0].kind == "scheduled"

    def test_rescheduling_records_the_old_window(self) -> None:
        rfc = make_rfc(S.SCHEDULED)
        new, events = transition(
            rfc, "schedule", CM, NOW, planned_start=self.START, planned_end=self.END, schedule_violations=[]
        )
        assert new.state is S.SCHEDULED and events[0].kind == "rescheduled"
        assert rfc.planned_start is not None
        assert events[0].data["before"]["planned_start"] == rfc.planned_start.isoformat()

    def test_customer_approval_comes_first_when_required(self) -> None:
        rfc = make_rfc(S.APPROVED, customer_approval_required=True)
        assert "schedule" not in allowed_actions(rfc, CM)
        with pytest.raises(Conflict, match="customer must approve"):
            transition(rfc, "schedule", CM, NOW, **good_params("schedule", rfc))
        approved, events = transition(rfc, "customer-approve", CUSTOMER, NOW, comment="OK from our side")
        assert approved.customer_approved_by == CUSTOMER.person_id and approved.state is S.APPROVED
        assert events[0].kind == "customer_approved"
        assert "customer-approve" not in actions_in_state(approved)
        scheduled, _ = transition(approved, "schedule", CM, NOW, **good_params("schedule", approved))
        assert scheduled.state is S.SCHEDULED

    def test_customer_approve_only_when_required(self) -> None:
        with pytest.raises(Conflict, match="does not need"):
            transition(make_rfc(S.AUTHORIZED), "customer-approve", CUSTOMER, NOW)


# ----------------------------------------------------------------------------- implementation


class TestImplementation:
    def test_not_before_the_planned_start(self) -> None:
        rfc = make_rfc(S.SCHEDULED, planned_start=NOW + timedelta(hours=1), planned_end=NOW + timedelta(hours=3))
        with pytest.raises(Conflict, match="planned start") as info:
            transition(rfc, "implement", RM, NOW)
        assert info.value.state == "scheduled"
        new, _ = transition(rfc, "implement", RM, NOW + timedelta(hours=1))
        assert new.state is S.IMPLEMENTING

    def test_emergency_may_start_early(self) -> None:
        rfc = make_rfc(
            S.SCHEDULED,
            type=ChangeType.EMERGENCY,
            planned_start=NOW + timedelta(hours=1),
            planned_end=NOW + timedelta(hours=3),
        )
        new, events = transition(rfc, "implement", ACTORS["engineer"], NOW)
        assert new.state is S.IMPLEMENTING and events[0].data["early"] is True

    def test_fail_then_back_out(self) -> None:
        failed, events = transition(make_rfc(S.IMPLEMENTING), "fail", RM, NOW, comment="Mail store corrupt")
        assert failed.state is S.FAILED and events[0].comment == "Mail store corrupt"
        assert actions_in_state(failed) == ["back-out"]
        backed, events = transition(failed, "back-out", RM, NOW, comment="Snapshot restored")
        assert backed.state is S.BACKED_OUT and events[0].kind == "backed_out"


class TestWithdraw:
    @pytest.mark.parametrize("state", [S.IMPLEMENTING, S.FAILED, *sorted(TERMINAL_STATES)])
    def test_not_once_implementation_began(self, state: RFCState) -> None:
        with pytest.raises(Conflict):
            transition(make_rfc(state), "withdraw", CM, NOW)

    def test_a_customer_withdraws_only_their_own(self) -> None:
        own = make_rfc(S.SUBMITTED, originator_id=CUSTOMER.person_id)
        new, _ = transition(own, "withdraw", CUSTOMER, NOW, comment="No longer needed")
        assert new.state is S.WITHDRAWN
        with pytest.raises(Forbidden):
            transition(make_rfc(S.SUBMITTED), "withdraw", CUSTOMER, NOW)


# ---------------------------------------------------------------------------------- tenancy


class TestTenancy:
    @pytest.mark.parametrize("action", list(EXPECTED))
    def test_a_customer_may_not_touch_another_tenants_rfc(self, action: str) -> None:
        state = next(iter(EXPECTED[action]))
        rfc = rfc_for(action, state)
        outsider = replace(CUSTOMER, tenant_id=OTHER_TENANT)
        with pytest.raises(Forbidden, match="another customer"):
            transition(rfc, action, outsider, NOW, **good_params(action, rfc))
        assert allowed_actions(rfc, outsider) == []

    def test_even_as_its_originator(self) -> None:
        outsider = ACTORS["other_customer"]
        rfc = make_rfc(originator_id=outsider.person_id)
        with pytest.raises(Forbidden):
            transition(rfc, "withdraw", outsider, NOW)

    def test_a_customer_contact_counts_only_as_a_customer(self) -> None:
        odd = contact(51, "odd", TENANT, Role.CUSTOMER, Role.CHANGE_MANAGER)
        rfc = make_rfc(S.SUBMITTED)
        assert allowed_actions(rfc, odd) == []
        with pytest.raises(Forbidden):
            transition(rfc, "authorize", odd, NOW, release_requirements=[])

    def test_what_customers_may_do(self) -> None:
        for state in RFCState:
            for action in allowed_actions(rfc_for("customer-approve", state), CUSTOMER):
                assert action in {"submit", "customer-approve"}
            own = make_rfc(state, originator_id=CUSTOMER.person_id, customer_approval_required=True)
            for action in allowed_actions(own, CUSTOMER):
                assert action in {"submit", "withdraw", "customer-approve"}

    def test_provider_staff_act_on_any_tenant(self) -> None:
        rfc = make_rfc(S.SUBMITTED, tenant_id=OTHER_TENANT)
        new, _ = transition(rfc, "authorize", CM, NOW, release_requirements=[])
        assert new.state is S.AUTHORIZED


# ------------------------------------------------------------------------ random sequences

PLAYERS = [*ACTORS.values(), *MEMBERS[1:]]
VOTES = ["approve", "reject", "abstain"]


@given(
    data=st.data(),
    change_type=st.sampled_from(ChangeType),
    committee_required=st.booleans(),
    customer_approval=st.booleans(),
    veto=st.booleans(),
    complete=st.booleans(),
)
@SEQUENCES
def test_random_action_sequences(
    data: st.DataObject,
    change_type: ChangeType,
    committee_required: bool,
    customer_approval: bool,
    veto: bool,
    complete: bool,
) -> None:
    rfc = make_rfc(
        type=change_type,
        customer_approval_required=customer_approval,
        plan="Install the update" if complete else "",
    )
    rule = DecisionRule(quorum=2, veto=veto)
    votes: dict[int, VoteChoice] = {}
    now = NOW
    for _ in range(data.draw(st.integers(0, 25), label="steps")):
        # Mostly one of the (action, actor) pairs allowed now, mostly forward, so that the RFC gets
        # deep into the workflow; otherwise any action by anyone.
        pairs = [(a, p) for p in PLAYERS for a in allowed_actions(rfc, p)]
        forward = [(a, p) for a, p in pairs if a not in ("withdraw", "reject", "request-info")]
        how = data.draw(st.sampled_from(["forward", "forward", "forward", "allowed", "any"]), label="how")
        pool = forward if how == "forward" and forward else pairs
        if how == "any" or not pool:
            action = data.draw(st.sampled_from(ACTIONS), label="action")
            actor = data.draw(st.sampled_from(PLAYERS), label="actor")
        else:
            action, actor = data.draw(st.sampled_from(pool), label="pair")
        good = data.draw(st.integers(0, 5), label="good") > 0
        params = good_params(action, rfc) if good else facts_only(action, rfc)
        if action == "vote":
            params.update(votes=votes, rule=rule)
            if good:
                params["vote"] = data.draw(st.sampled_from(VOTES), label="vote")
        if action == "approve":
            params.update(committee_required=committee_required)
            if good:
                params["emergency_reason"] = "ECAB decision"
        if action == "schedule" and good:
            params.update(planned_start=now + timedelta(minutes=30), planned_end=now + timedelta(hours=2))
        listed = action in allowed_actions(rfc, actor)
        try:
            new, events = transition(rfc, action, actor, now, **params)
        except (Conflict, Forbidden, InvalidInput) as exc:
            if rfc.state in TERMINAL_STATES or not listed:
                assert isinstance(exc, Conflict | Forbidden)
            else:
                assert not isinstance(exc, Forbidden)
            if isinstance(exc, Conflict):
                assert exc.state == rfc.state.value
            now += timedelta(minutes=20)
            continue
        assert listed, (action, rfc.state)
        assert rfc.state not in TERMINAL_STATES
        assert new.state in RFCState
        assert new.version == rfc.version + 1
        assert new.updated_at == now
        assert events and all(e.at == now and e.actor_id == actor.person_id for e in events)
        if action == "vote":
            votes[actor.person_id or 0] = VoteChoice(params["vote"])
        rfc = new
        now += timedelta(minutes=20)
    if rfc.state in TERMINAL_STATES:
        for player in PLAYERS:
            assert allowed_actions(rfc, player) == []
        for action in ACTIONS:
            with pytest.raises((Conflict, Forbidden)):
                transition(rfc, action, CM, now, **good_params(action, rfc))
