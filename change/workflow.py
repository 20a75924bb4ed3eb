"""The RFC workflow: a table of transitions and one function that applies them.

Pure: the standard library, :mod:`cmdb.models`, :mod:`cmdb.errors` and :mod:`change.models` only.
Whatever needs the database or the CI graph (the impact class, the committee's votes so far, the
change-window check) the service computes first and passes in as a parameter.

:data:`TRANSITIONS` is the whole machine, one row per action: the states it may start from, the
state it leads to, who may take it and which parameters the caller must give.
:func:`transition` applies one action and returns the new record plus the events to append to
its history; :func:`allowed_actions` lists what an actor may do now (the buttons on the page).

Checks run in this order, and the first that fails raises:

1. a customer contact acting on another tenant's RFC: :class:`~cmdb.errors.Forbidden`;
2. the current state does not allow the action, or the record does not (a standard change and
   the committee, customer approval not needed...): :class:`~cmdb.errors.Conflict` with the
   current state and the actions the state allows now;
3. the actor's roles do not allow it: :class:`~cmdb.errors.Forbidden`;
4. the parameters: :class:`~cmdb.errors.InvalidInput` listing every problem at once;
5. the rules of the step itself (the committee must review a high-impact change, implementation
   not before the planned start): :class:`~cmdb.errors.Conflict`.

Parameters come in two kinds. *Inputs* come from the person acting (``comment``, ``priority``,
``reason``, ``release_requirements``, ``vote``, ``emergency_reason``, ``planned_start``,
``planned_end``); a missing or malformed input is an :class:`~cmdb.errors.InvalidInput`.
*Facts* are computed by the service and must never be taken from a client's request body
(``committee_required`` for approve, ``votes`` and ``rule`` for vote, ``schedule_violations`` for
schedule); a missing fact is a programming error and raises :class:`TypeError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput
from cmdb.models import Actor, Role

from .models import (
    RFC,
    ChangeType,
    Event,
    Priority,
    RFCState,
    VoteChoice,
    missing_for_submit,
)

__all__ = [
    "ACTIONS",
    "BEFORE_IMPLEMENTATION",
    "EVENT_KINDS",
    "MAX_TEXT",
    "TRANSITIONS",
    "DecisionRule",
    "Party",
    "Transition",
    "actions_in_state",
    "allowed_actions",
    "transition",
]

#: The longest free text a step accepts (a comment, a reason).
MAX_TEXT = 20_000

Decision = Literal["approve", "reject"]


class Party(StrEnum):
    """Who may act besides a role: the person who raised the RFC."""

    ORIGINATOR = "originator"


Who = Role | Party


@dataclass(frozen=True)
class Transition:
    """One row of the table.

    ``to`` is None when the action leaves the state as it is (``set-priority``,
    ``customer-approve``) or when a rule decides it (``vote``: approved, rejected or still in
    review). ``by`` lists the roles (and :class:`Party`) any one of which allows the action.
    ``needs`` are the inputs the caller must give; ``accepts`` optional inputs besides
    ``comment``, which every action accepts; ``facts`` what the service must compute and pass.
    """

    action: str
    sources: frozenset[RFCState]
    to: RFCState | None
    by: frozenset[Who]
    needs: tuple[str, ...] = ()
    accepts: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    not_by_originator: bool = False


def _row(
    action: str,
    sources: Iterable[RFCState],
    to: RFCState | None,
    by: Iterable[Who],
    needs: tuple[str, ...] = (),
    *,
    accepts: tuple[str, ...] = (),
    facts: tuple[str, ...] = (),
    not_by_originator: bool = False,
) -> Transition:
    return Transition(action, frozenset(sources), to, frozenset(by), needs, accepts, facts, not_by_originator)


S = RFCState
CM, RM, ENG = Role.CHANGE_MANAGER, Role.RELEASE_MANAGER, Role.ENGINEER
COMMITTEE, CUSTOMER, ORIGINATOR = Role.COMMITTEE_MEMBER, Role.CUSTOMER, Party.ORIGINATOR

#: The states from which an RFC may still be withdrawn: anything before implementation.
BEFORE_IMPLEMENTATION = frozenset(
    {S.DRAFT, S.SUBMITTED, S.NEEDS_INFORMATION, S.AUTHORIZED, S.IN_REVIEW, S.APPROVED, S.SCHEDULED}
)
#: Where the change manager may still change the priority.
_PRIORITY_STATES = frozenset({S.SUBMITTED, S.NEEDS_INFORMATION, S.AUTHORIZED, S.IN_REVIEW, S.APPROVED, S.SCHEDULED})

# fmt: off
TRANSITIONS: Mapping[str, Transition] = {row.action: row for row in (
    #    action                from                                      to
    #                          by                                        needs (inputs the actor must give)
    _row("submit",             {S.DRAFT, S.NEEDS_INFORMATION},           S.SUBMITTED,
                               {ORIGINATOR, ENG, CM, CUSTOMER}),
    _row("request-info",       {S.SUBMITTED},                            S.NEEDS_INFORMATION,
                               {CM},                                     ("comment",)),
    _row("set-priority",       _PRIORITY_STATES,                         None,  # stays
                               {CM},                                     ("priority", "reason")),
    _row("authorize",          {S.SUBMITTED},                            S.AUTHORIZED,
                               {CM},                                     ("release_requirements",)),
    _row("reject",             {S.SUBMITTED, S.AUTHORIZED, S.IN_REVIEW}, S.REJECTED,
                               {CM},                                     ("comment",)),
    _row("refer-to-committee", {S.AUTHORIZED},                           S.IN_REVIEW,
                               {CM}),
    _row("vote",               {S.IN_REVIEW},                            None,  # the rule decides
                               {COMMITTEE},                              ("vote", "comment"),
         facts=("votes", "rule"), not_by_originator=True),
    _row("approve",            {S.AUTHORIZED},                           S.APPROVED,
                               {CM},
         accepts=("emergency_reason",), facts=("committee_required",)),
    _row("customer-approve",   {S.AUTHORIZED, S.IN_REVIEW, S.APPROVED},  None,  # stays
                               {CUSTOMER}),
    _row("schedule",           {S.APPROVED, S.SCHEDULED},                S.SCHEDULED,
                               {CM, RM},                                 ("planned_start", "planned_end"),
         facts=("schedule_violations",)),
    _row("withdraw",           BEFORE_IMPLEMENTATION,                    S.WITHDRAWN,
                               {ORIGINATOR, CM}),
    _row("implement",          {S.SCHEDULED},                            S.IMPLEMENTING,
                               {RM, ENG}),
    _row("complete",           {S.IMPLEMENTING},                         S.COMPLETED,
                               {RM, ENG}),
    _row("fail",               {S.IMPLEMENTING},                         S.FAILED,
                               {RM, ENG},                                ("comment",)),
    _row("back-out",           {S.FAILED, S.IMPLEMENTING},               S.BACKED_OUT,
                               {RM, ENG},                                ("comment",)),
)}
# fmt: on

#: Every action name, in table order (the order buttons are shown in).
ACTIONS: tuple[str, ...] = tuple(TRANSITIONS)

#: The history event each action records (``vote`` may add a ``committee_approved`` or
#: ``committee_rejected`` event; ``submit`` from needs_information records ``resubmitted``;
#: ``schedule`` from scheduled records ``rescheduled``).
EVENT_KINDS: Mapping[str, str] = {
    "submit": "submitted",
    "request-info": "information_requested",
    "set-priority": "priority_changed",
    "authorize": "authorized",
    "reject": "rejected",
    "refer-to-committee": "referred_to_committee",
    "vote": "voted",
    "approve": "approved",
    "customer-approve": "customer_approved",
    "schedule": "scheduled",
    "withdraw": "withdrawn",
    "implement": "implementation_started",
    "complete": "completed",
    "fail": "failed",
    "back-out": "backed_out",
}

_PARTY_NAMES: Mapping[Who, str] = {
    ORIGINATOR: "the originator",
    ENG: "an engineer",
    CM: "a change manager",
    RM: "a release manager",
    COMMITTEE: "a review committee member",
    CUSTOMER: "a customer contact of the RFC's customer",
}


# ----------------------------------------------------------------------------------- committee


@dataclass(frozen=True)
class DecisionRule:
    """How the review committee's votes decide (domain, "Change" step 5).

    - ``veto``: when true, a single ``reject`` vote rejects at once, quorum or not.
    - ``quorum``: no decision until at least this many members have voted (abstentions count
      towards the quorum: the member took part).
    - ``majority``: once the quorum is reached, the change is approved when the share of
      ``approve`` among the approve and reject votes is *strictly more* than ``majority``,
      otherwise rejected. With the default 0.5 a tie rejects. If everyone abstained there is no
      decision yet; the RFC stays in review (the change manager may still reject or withdraw it).

    The decision is taken on the vote that reaches the quorum; later votes cannot change it,
    because the RFC has left review by then.
    """

    quorum: int = 3
    majority: float = 0.5
    veto: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.quorum, bool) or not isinstance(self.quorum, int) or self.quorum < 1:
            raise ValueError("quorum: must be a whole number of at least 1")
        if not isinstance(self.majority, int | float) or isinstance(self.majority, bool):
            raise ValueError("majority: must be a number between 0 and 1")
        if not (0 <= self.majority < 1) or math.isnan(self.majority):
            raise ValueError("majority: must be at least 0 and less than 1")

    @classmethod
    def from_terms(cls, terms: Mapping[str, Any] | None, field_name: str = "committee_rule") -> DecisionRule:
        """Read a rule from SLA terms such as ``{"quorum": 2, "majority": 0.66, "veto": true}``;
        missing keys take the defaults. Refuses unknown keys and bad values, naming them."""
        if not terms:
            return cls()
        problems: list[FieldProblem] = []
        for key in terms:
            if key not in ("quorum", "majority", "veto"):
                problems.append(FieldProblem(f"{field_name}.{key}", "unknown; use quorum, majority or veto"))
        quorum, majority, veto = terms.get("quorum", 3), terms.get("majority", 0.5), terms.get("veto", False)
        if isinstance(quorum, bool) or not isinstance(quorum, int) or quorum < 1:
            problems.append(FieldProblem(f"{field_name}.quorum", "must be a whole number of at least 1"))
        if (
            isinstance(majority, bool)
            or not isinstance(majority, int | float)
            or math.isnan(majority)
            or not 0 <= majority < 1
        ):
            problems.append(FieldProblem(f"{field_name}.majority", "must be a number from 0 up to (not including) 1"))
        if not isinstance(veto, bool):
            problems.append(FieldProblem(f"{field_name}.veto", "must be true or false"))
        if problems:
            raise InvalidInput(problems)
        return cls(quorum=quorum, majority=float(majority), veto=veto)

    def decide(self, votes: Mapping[int, VoteChoice | str]) -> Decision | None:
        """``"approve"``, ``"reject"`` or None (no decision yet) for the votes cast so far."""
        cast = [VoteChoice(v) for v in votes.values()]
        rejects = cast.count(VoteChoice.REJECT)
        if self.veto and rejects:
            return "reject"
        if len(cast) < self.quorum:
            return None
        approves = cast.count(VoteChoice.APPROVE)
        decisive = approves + rejects
        if decisive == 0:
            return None
        return "approve" if approves / decisive > self.majority else "reject"

    def describe(self) -> str:
        text = f"quorum {self.quorum}, approved with more than {self.majority:.0%} of approve/reject votes"
        return text + (", any reject vote vetoes" if self.veto else "")


def _tally(votes: Mapping[int, VoteChoice]) -> dict[str, int]:
    return {choice.value: sum(1 for v in votes.values() if v == choice) for choice in VoteChoice}


# ------------------------------------------------------------------------------ who may act


def _parties(rfc: RFC, actor: Actor) -> frozenset[Who]:
    """The roles that count for this actor on this RFC. A customer contact counts only as a
    customer (whatever else their record says) and only on their own tenant's RFCs."""
    held: set[Who]
    if actor.is_provider_staff:
        held = set(actor.roles)
    elif actor.tenant_id == rfc.tenant_id:
        held = set(actor.roles & {Role.CUSTOMER})
    else:
        return frozenset()
    if actor.person_id is not None and actor.person_id == rfc.originator_id:
        held.add(ORIGINATOR)
    return frozenset(held)


def _other_tenant(rfc: RFC, actor: Actor) -> bool:
    return not actor.is_provider_staff and actor.tenant_id != rfc.tenant_id


def _refusal(rfc: RFC, actor: Actor, row: Transition) -> str | None:
    """Why the actor may not take this action on this RFC, or None when they may."""
    if _other_tenant(rfc, actor):
        return f"{rfc.key} belongs to another customer."
    parties = _parties(rfc, actor)
    if row.not_by_originator and ORIGINATOR in parties:
        return f"The originator of {rfc.key} may not {row.action} on it."
    if not parties & row.by:
        names = [_PARTY_NAMES[w] for w in sorted(row.by, key=lambda w: list(_PARTY_NAMES).index(w))]
        who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        return f"Only {who} may {row.action} {rfc.key}."
    return None


# ------------------------------------------------------------------ what the record allows


def _guard(rfc: RFC, action: str) -> str | None:
    """Why the record itself (not the state alone) does not allow the action now, or None."""
    if action == "refer-to-committee" and rfc.type is ChangeType.STANDARD:
        return "standard changes are pre-approved and never go to the review committee"
    if action == "customer-approve":
        if not rfc.customer_approval_required:
            return "it does not need the customer's approval"
        if rfc.customer_approved_by is not None:
            return "the customer has already approved it"
    if action == "schedule" and rfc.customer_approval_required and rfc.customer_approved_by is None:
        return "the customer must approve it (customer-approve) before it is scheduled"
    return None


def actions_in_state(rfc: RFC) -> list[str]:
    """The actions the RFC's state (and record) allows now, whoever asks, in table order."""
    return [a for a, row in TRANSITIONS.items() if rfc.state in row.sources and _guard(rfc, a) is None]


def allowed_actions(rfc: RFC, actor: Actor) -> list[str]:
    """The actions this actor may take on this RFC now: the buttons the page shows.

    An action listed here can still be refused for its parameters, or by a rule that depends on
    them or on the time (approve while the committee is required, implement before the planned
    start).
    """
    return [a for a in actions_in_state(rfc) if _refusal(rfc, actor, TRANSITIONS[a]) is None]


def _state_conflict(rfc: RFC, action: str, reason: str | None = None) -> Conflict:
    allowed = actions_in_state(rfc)
    why = f"{rfc.key} is {rfc.state.value}" + (f" and {reason}" if reason else "")
    now = f"Actions allowed now: {', '.join(allowed)}." if allowed else "No action is allowed on it any more."
    return Conflict(f"Cannot {action}: {why}. {now}", state=rfc.state.value, allowed=allowed)


# ------------------------------------------------------------------------------- parameters


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError("must be text")
    text = raw.strip()
    if len(text) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT} characters")
    return text


def _choice(enum: type[StrEnum]) -> Callable[[Any], StrEnum]:
    def parse(raw: Any) -> StrEnum:
        try:
            return enum(raw)
        except ValueError:
            raise ValueError(f"must be one of {', '.join(m.value for m in enum)}") from None

    return parse


def _texts(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str) or not isinstance(raw, Sequence | frozenset | set):
        raise ValueError("must be a list of texts (an empty list if there are none)")
    items: list[str] = []
    for i, item in enumerate(raw, start=1):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"item {i} must be a non-blank text")
        if len(item.strip()) > MAX_TEXT:
            raise ValueError(f"item {i} must be at most {MAX_TEXT} characters")
        if item.strip() not in items:
            items.append(item.strip())
    return tuple(items)


def _moment(raw: Any) -> datetime:
    value = raw
    if isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw.strip())
        except ValueError:
            value = None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be a date and time with a UTC offset, e.g. 2026-03-21T22:00:00+00:00")
    return value


_INPUTS: Mapping[str, Callable[[Any], Any]] = {
    "comment": _text,
    "reason": _text,
    "emergency_reason": _text,
    "priority": _choice(Priority),
    "vote": _choice(VoteChoice),
    "release_requirements": _texts,
    "planned_start": _moment,
    "planned_end": _moment,
}


def _read_inputs(row: Transition, params: Mapping[str, Any], problems: list[FieldProblem]) -> dict[str, Any]:
    """Parse the inputs this action takes; note every missing or malformed one in ``problems``."""
    values: dict[str, Any] = {}
    for name in dict.fromkeys(("comment", *row.needs, *row.accepts)):
        raw = params.get(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if name in row.needs:
                reason = "required (an empty list if there are none)" if name == "release_requirements" else "required"
                problems.append(FieldProblem(name, reason))
            continue
        try:
            values[name] = _INPUTS[name](raw)
        except ValueError as exc:
            problems.append(FieldProblem(name, str(exc)))
    return values


def _fact(params: Mapping[str, Any], name: str, action: str) -> Any:
    if name not in params:
        raise TypeError(f"{action} needs the service to pass {name}=")
    return params[name]


# ------------------------------------------------------------------------------------ steps


@dataclass
class _Step:
    """What one action is working on; the step functions fill in ``changes``, ``data``, ``to``."""

    rfc: RFC
    row: Transition
    actor: Actor
    now: datetime
    values: dict[str, Any]
    params: Mapping[str, Any]
    problems: list[FieldProblem]
    to: RFCState
    kind: str
    changes: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    extra: list[Event] = field(default_factory=list)

    def fact(self, name: str) -> Any:
        return _fact(self.params, name, self.row.action)

    def event(self, kind: str, comment: str = "", **data: Any) -> Event:
        return Event(kind, self.actor.person_id, self.actor.name, self.now, comment, data)


def _submit(step: _Step) -> None:
    for name in missing_for_submit(step.rfc):
        reason = "at least one affected CI is required to submit" if name == "ci_ids" else "required to submit"
        step.problems.append(FieldProblem(name, reason))
    if step.rfc.state is S.NEEDS_INFORMATION:
        step.kind = "resubmitted"


def _set_priority(step: _Step) -> None:
    new = step.values.get("priority")
    if new is not None and new is step.rfc.priority:
        step.problems.append(FieldProblem("priority", f"is already {new.value}"))
    step.values.setdefault("comment", step.values.get("reason", ""))
    if new is not None:
        step.changes["priority"] = new
        step.data.update(before=step.rfc.priority.value, after=new.value, reason=step.values.get("reason", ""))


def _authorize(step: _Step) -> None:
    requirements = step.values.get("release_requirements", ())
    step.changes.update(release_requirements=requirements, impact_frozen=True)
    step.data["release_requirements"] = list(requirements)


def _vote(step: _Step) -> None:
    rule = step.params.get("rule") or DecisionRule()
    if not isinstance(rule, DecisionRule):
        raise TypeError("vote needs rule= as a DecisionRule")
    votes = {int(k): VoteChoice(v) for k, v in step.fact("votes").items()}
    if step.actor.person_id is None:
        raise Forbidden("A vote belongs to a person; this actor is not one.")
    choice = step.values.get("vote")
    if choice is None:
        return
    replaced = votes.get(step.actor.person_id)
    votes[step.actor.person_id] = choice
    tally = _tally(votes)
    step.data.update(vote=choice.value, tally=tally)
    if replaced is not None and replaced is not choice:
        step.data["replaces"] = replaced.value
    decision = rule.decide(votes)
    if decision is None:
        return
    step.to = S.APPROVED if decision == "approve" else S.REJECTED
    verdict = "approved" if decision == "approve" else "rejected"
    counts = ", ".join(f"{n} {k}" for k, n in tally.items())
    step.extra.append(
        step.event(
            f"committee_{verdict}",
            f"The review committee {verdict} {step.rfc.key}: {counts} ({rule.describe()}).",
            action="vote",
            **{"from": S.IN_REVIEW.value, "to": step.to.value},
            decision=decision,
            tally=tally,
            rule={"quorum": rule.quorum, "majority": rule.majority, "veto": rule.veto},
        )
    )


def _approve(step: _Step) -> None:
    committee_required = step.fact("committee_required")
    if not isinstance(committee_required, bool):
        raise TypeError("approve needs committee_required= as a bool")
    rfc = step.rfc
    step.data["committee_required"] = committee_required
    if not committee_required or rfc.type is ChangeType.STANDARD:
        return
    if rfc.type is not ChangeType.EMERGENCY:
        raise _state_conflict(
            rfc,
            "approve",
            "its impact needs the review committee: refer it to the committee, which decides by vote",
        )
    reason = step.values.get("emergency_reason")
    if reason is None:
        step.problems.append(
            FieldProblem(
                "emergency_reason",
                "required: this emergency change would need the review committee; record the emergency "
                "change advisory board's decision",
            )
        )
        return
    step.changes.update(emergency_reason=reason, post_implementation_review_required=True)
    step.data.update(emergency_reason=reason, ecab=True, post_implementation_review_required=True)


def _customer_approve(step: _Step) -> None:
    step.changes["customer_approved_by"] = step.actor.person_id


def _violation_text(violation: Any) -> str:
    detail = getattr(violation, "detail", None)
    return detail if isinstance(detail, str) and detail else str(violation)


def _schedule(step: _Step) -> None:
    violations = [_violation_text(v) for v in step.fact("schedule_violations")]
    start, end = step.values.get("planned_start"), step.values.get("planned_end")
    if start is None or end is None:
        return
    if end <= start:
        step.problems.append(FieldProblem("planned_end", "must be after planned_start"))
        return
    rfc = step.rfc
    if rfc.state is S.SCHEDULED:
        step.kind = "rescheduled"
        step.data["before"] = {
            "planned_start": rfc.planned_start.isoformat() if rfc.planned_start else None,
            "planned_end": rfc.planned_end.isoformat() if rfc.planned_end else None,
        }
    step.changes.update(planned_start=start, planned_end=end)
    step.data.update(planned_start=start.isoformat(), planned_end=end.isoformat())
    if not violations:
        return
    if rfc.type is not ChangeType.EMERGENCY:
        step.problems.extend(FieldProblem("planned_start", v) for v in violations)
        return
    step.changes["post_implementation_review_required"] = True
    step.data.update(schedule_violations=violations, emergency=True, post_implementation_review_required=True)


def _implement(step: _Step) -> None:
    rfc = step.rfc
    if rfc.planned_start is None or step.now >= rfc.planned_start:
        return
    if rfc.type is ChangeType.EMERGENCY:
        step.data.update(early=True, planned_start=rfc.planned_start.isoformat())
        return
    raise _state_conflict(
        rfc, "implement", f"its planned start is {rfc.planned_start.isoformat()}; it may not begin before then"
    )


def _nothing(step: _Step) -> None:
    return None


_STEPS: Mapping[str, Callable[[_Step], None]] = {
    "submit": _submit,
    "request-info": _nothing,
    "set-priority": _set_priority,
    "authorize": _authorize,
    "reject": _nothing,
    "refer-to-committee": _nothing,
    "vote": _vote,
    "approve": _approve,
    "customer-approve": _customer_approve,
    "schedule": _schedule,
    "withdraw": _nothing,
    "implement": _implement,
    "complete": _nothing,
    "fail": _nothing,
    "back-out": _nothing,
}


# --------------------------------------------------------------------------------- transition


def transition(rfc: RFC, action: str, actor: Actor, now: datetime, **params: Any) -> tuple[RFC, list[Event]]:
    """Apply ``action`` to ``rfc`` as ``actor`` at ``now``.

    Returns the new record (state, ``version`` + 1, ``updated_at`` = ``now``) and the events to
    append to its history, the first always the action's own. Raises
    :class:`~cmdb.errors.Forbidden`, :class:`~cmdb.errors.Conflict` or
    :class:`~cmdb.errors.InvalidInput` as the module docstring says; nothing changes then.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    row = TRANSITIONS.get(action)
    if row is None:
        raise InvalidInput.field("action", f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if _other_tenant(rfc, actor):
        raise Forbidden(f"{rfc.key} belongs to another customer.")
    if rfc.state not in row.sources:
        raise _state_conflict(rfc, action)
    guard = _guard(rfc, action)
    if guard is not None:
        raise _state_conflict(rfc, action, guard)
    refusal = _refusal(rfc, actor, row)
    if refusal is not None:
        raise Forbidden(refusal)

    problems: list[FieldProblem] = []
    values = _read_inputs(row, params, problems)
    step = _Step(
        rfc=rfc,
        row=row,
        actor=actor,
        now=now,
        values=values,
        params=params,
        problems=problems,
        to=row.to or rfc.state,
        kind=EVENT_KINDS[action],
    )
    _STEPS[action](step)
    if problems:
        raise InvalidInput(problems)

    new = replace(rfc, **step.changes, state=step.to, version=rfc.version + 1, updated_at=now)
    data = {"action": action, "from": rfc.state.value, "to": step.to.value, **step.data}
    if action == "vote":
        data["to"] = S.IN_REVIEW.value  # the vote itself; a decision event records any move
    first = step.event(step.kind, values.get("comment", ""), **data)
    return new, [first, *step.extra]
