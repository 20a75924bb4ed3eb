"""The release workflow: a table of transitions, the evidence rules and one function that
applies an action.

Pure: the standard library, :mod:`cmdb.models`, :mod:`cmdb.errors` and :mod:`release.models`
only. What needs the database (the release's tests, its RFCs' requirements, whether it holds a
critical patch) the service loads first and passes in.

Checks run in this order, and the first that fails raises:

1. the current state does not allow the action: :class:`~cmdb.errors.Conflict` with the current
   state and the actions the state allows now;
2. the actor's roles do not allow it: :class:`~cmdb.errors.Forbidden` (release managers and
   administrators act on releases; engineers may also record tests);
3. the rules of the step (approval without the evidence the requirements name, concluding
   testing with no test): :class:`~release.models.MissingEvidence` (a 409) listing what is missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput
from cmdb.models import Actor, Role
from release.models import (
    EffectReview,
    MissingEvidence,
    Release,
    ReleaseState,
    ReleaseTest,
    TestResult,
)

__all__ = [
    "ACTIONS",
    "TRANSITIONS",
    "Evidence",
    "RequirementStatus",
    "Transition",
    "actions_in_state",
    "allowed_actions",
    "check",
    "evidence",
    "review_problem",
    "transition",
]

S = ReleaseState
RM, ENG, ADMIN = Role.RELEASE_MANAGER, Role.ENGINEER, Role.ADMINISTRATOR
#: Where the release's content (its RFCs, its test environment) may still change.
OPEN_STATES = frozenset({S.PLANNED, S.TESTING, S.FAILED})


@dataclass(frozen=True)
class Transition:
    """One row of the table. ``to`` None: the state stays, or a rule decides (record-test,
    conclude-testing)."""

    action: str
    sources: frozenset[ReleaseState]
    to: ReleaseState | None
    by: frozenset[Role]


def _row(action: str, sources: set[ReleaseState], to: ReleaseState | None, by: set[Role]) -> Transition:
    return Transition(action, frozenset(sources), to, frozenset(by | {ADMIN}))


# fmt: off
TRANSITIONS: Mapping[str, Transition] = {row.action: row for row in (
    #    action                   from                                              to            by
    _row("add-rfc",               set(OPEN_STATES),                                 None,         {RM}),
    _row("remove-rfc",            set(OPEN_STATES),                                 None,         {RM}),
    _row("set-test-environment",  set(OPEN_STATES),                                 None,         {RM, ENG}),
    _row("start-testing",         {S.PLANNED, S.FAILED},                            S.TESTING,    {RM}),
    _row("record-test",           {S.PLANNED, S.TESTING, S.FAILED},                 None,         {RM, ENG}),
    _row("conclude-testing",      {S.TESTING},                                      None,         {RM}),
    _row("review-effect",         {S.TESTING, S.PASSED, S.FAILED},                  None,         {RM}),
    _row("approve",               {S.PLANNED, S.TESTING, S.PASSED, S.FAILED},       S.APPROVED,   {RM}),
    _row("deploy",                {S.APPROVED},                                     S.DEPLOYING,  {RM}),
    _row("complete",              {S.DEPLOYING},                                    S.DEPLOYED,   {RM}),
    _row("back-out",              {S.DEPLOYING, S.DEPLOYED},                        S.BACKED_OUT, {RM}),
    _row("cancel",                {S.PLANNED, S.TESTING, S.PASSED, S.FAILED, S.APPROVED},
                                                                                    S.CANCELLED,  {RM}),
)}
# fmt: on

ACTIONS: tuple[str, ...] = tuple(TRANSITIONS)

#: Actions the table lets through only so that the evidence check can say what is missing
#: (approving an untested or failed release): never offered as a button.
_NOT_OFFERED = frozenset({("approve", S.PLANNED), ("approve", S.FAILED)})

_HINTS: Mapping[tuple[str, ReleaseState], str] = {
    ("deploy", S.PLANNED): "only an approved release can be deployed",
    ("deploy", S.TESTING): "only an approved release can be deployed",
    ("deploy", S.PASSED): "only an approved release can be deployed; approve it first",
    ("deploy", S.FAILED): "only an approved release can be deployed",
    ("add-rfc", S.PASSED): "RFCs can join only before testing concludes; start testing again after a change",
    ("add-rfc", S.APPROVED): "an approved release is frozen",
}


def _acts_as(actor: Actor) -> frozenset[Role]:
    """Only provider staff act on releases; a customer contact reads their own, nothing more."""
    return actor.roles if actor.is_provider_staff else frozenset()


def actions_in_state(release: Release) -> list[str]:
    return [
        action
        for action, row in TRANSITIONS.items()
        if release.state in row.sources and (action, release.state) not in _NOT_OFFERED
    ]


def allowed_actions(release: Release, actor: Actor) -> list[str]:
    """What this actor may do now: the forms the release page shows."""
    roles = _acts_as(actor)
    return [a for a in actions_in_state(release) if roles & TRANSITIONS[a].by]


def state_conflict(release: Release, action: str, reason: str | None = None) -> Conflict:
    allowed = actions_in_state(release)
    reason = reason or _HINTS.get((action, release.state))
    why = f"{release.key} is {release.state.value}" + (f"; {reason}" if reason else "")
    now = f"Actions allowed now: {', '.join(allowed)}." if allowed else "No action is allowed on it any more."
    return Conflict(f"Cannot {action}: {why}. {now}", state=release.state.value, allowed=allowed)


def check(release: Release, action: str, actor: Actor) -> Transition:
    """Raise unless the state and the actor's roles allow `action`; the row otherwise."""
    row = TRANSITIONS.get(action)
    if row is None:
        raise InvalidInput.field("action", f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if release.state not in row.sources:
        raise state_conflict(release, action)
    if not _acts_as(actor) & row.by:
        who = "a release manager or an engineer" if ENG in row.by else "a release manager"
        raise Forbidden(f"Only {who} may {action} {release.key}.")
    return row


# ----------------------------------------------------------------------------------- evidence


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class RequirementStatus:
    """One release requirement (set by the change manager at authorization) and the passed test
    of the current round that gives evidence for it, if any."""

    text: str
    rfc_keys: tuple[str, ...]
    satisfied: bool
    test_id: int | None = None
    test_name: str | None = None


@dataclass(frozen=True)
class Evidence:
    """Where the release stands against what approval needs."""

    requirements: tuple[RequirementStatus, ...]
    current_tests: tuple[ReleaseTest, ...]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.missing


def evidence(
    release: Release,
    tests: Sequence[ReleaseTest],
    requirements: Mapping[str, Sequence[str]],
) -> Evidence:
    """What approval still lacks. `requirements` maps each requirement text to the keys of the
    RFCs that asked for it. Only the current testing round counts."""
    current = tuple(t for t in tests if t.round == release.test_round)
    passed = [t for t in current if t.result is TestResult.PASSED]
    missing: list[str] = []
    if not release.rfc_ids:
        missing.append("at least one RFC")
    if release.test_environment_id is None:
        missing.append("a test environment (a CI of class test_environment) representing production")
    if not passed:
        missing.append("at least one passed test")
    failed = [t for t in current if t.result is TestResult.FAILED]
    for test in failed:
        missing.append(f"test '{test.name}' failed; test again in a new round")
    statuses: list[RequirementStatus] = []
    for text, keys in requirements.items():
        covering = next((t for t in passed if _norm(text) in {_norm(c) for c in t.covers}), None)
        statuses.append(
            RequirementStatus(
                text=text,
                rfc_keys=tuple(keys),
                satisfied=covering is not None,
                test_id=covering.id if covering else None,
                test_name=covering.name if covering else None,
            )
        )
        if covering is None:
            missing.append(f"test evidence for the requirement '{text}' ({', '.join(keys)}): no passed test covers it")
    for test in current:
        if test.needs_review:
            missing.append(f"a review of the negative effects found by test '{test.name}' (#{test.id})")
    return Evidence(tuple(statuses), current, tuple(missing))


def review_problem(
    test: ReleaseTest, review: EffectReview, justification: str, has_critical_patch: bool, release: Release
) -> None:
    """Raise unless the release manager may record this review of the test's negative effects.

    An effect may be accepted (deployed as it is) only when the release carries a critical
    patch, and only with a written justification; otherwise it must be resolved."""
    if not test.has_negative_effects:
        raise state_conflict(release, "review-effect", f"test '{test.name}' (#{test.id}) found no negative effects")
    if review is EffectReview.ACCEPTED:
        if not has_critical_patch:
            raise state_conflict(
                release,
                "review-effect",
                "a negative effect may be accepted only for a critical patch and this release holds none; "
                "resolve the effect instead",
            )
        if not justification.strip():
            raise InvalidInput(FieldProblem("justification", "required to accept a negative effect"))


# --------------------------------------------------------------------------------- transition


def transition(
    release: Release,
    action: str,
    actor: Actor,
    now: dt.datetime,
    *,
    tests: Sequence[ReleaseTest] = (),
    requirements: Mapping[str, Sequence[str]] | None = None,
    reason: str = "",
    watch_days: int | None = None,
) -> tuple[Release, dict[str, Any]]:
    """Apply `action` and return the new release (version + 1) and the history data.

    ``tests`` are the release's tests including one just recorded (record-test, conclude-testing,
    approve); ``requirements`` the union of its RFCs' release requirements (approve);
    ``reason`` the back-out reason; ``watch_days`` the customer's watch period (complete).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    row = check(release, action, actor)
    to = row.to or release.state
    changes: dict[str, Any] = {}
    data: dict[str, Any] = {}
    current = [t for t in tests if t.round == release.test_round]

    if action == "start-testing" and release.state is S.FAILED:
        changes["test_round"] = release.test_round + 1
        data["round"] = release.test_round + 1
    elif action == "record-test":
        if any(t.result is TestResult.FAILED for t in current):
            to = S.FAILED
        elif release.state is S.PLANNED:
            to = S.TESTING
    elif action == "conclude-testing":
        if not current:
            raise MissingEvidence(
                f"Cannot conclude testing of {release.key}: no test has been recorded in this round.",
                state=release.state.value,
                allowed=actions_in_state(release),
                missing=["at least one test"],
            )
        to = S.FAILED if any(t.result is TestResult.FAILED for t in current) else S.PASSED
    elif action == "approve":
        found = evidence(release, tests, requirements or {})
        if found.missing:
            raise MissingEvidence(
                f"Cannot approve {release.key}: missing " + "; ".join(found.missing) + ".",
                state=release.state.value,
                allowed=actions_in_state(release),
                missing=found.missing,
            )
        changes.update(approved_at=now, approved_by=actor.person_id)
        data["tests"] = [t.id for t in found.current_tests]
    elif action == "deploy":
        changes["deploy_started_at"] = now
    elif action == "complete":
        days = release.watch_days if watch_days is None else watch_days
        changes.update(deployed_at=now, watch_days=days, watch_until=now + dt.timedelta(days=days))
        data.update(watch_days=days, watch_until=(now + dt.timedelta(days=days)).isoformat())
    elif action == "back-out":
        if not reason.strip():
            raise InvalidInput(FieldProblem("reason", "required: why the release is backed out"))
        changes.update(backed_out_at=now, backout_reason=reason.strip())
        data["reason"] = reason.strip()

    new = replace(release, **changes, state=to, version=release.version + 1, updated_at=now)
    return new, {"action": action, "from": release.state.value, "to": to.value, **data}
