"""The problem workflow: a table of transitions and one function that applies them.

Pure: the standard library, :mod:`cmdb.models`, :mod:`cmdb.errors` and :mod:`problem.models`.
What needs the database (the incident to link and its CIs, the RFC raised) the service works
out first and passes in as *facts*; what the person acting types in are *inputs*.

Statuses: ``open`` -> ``investigating`` -> ``known_error`` -> ``resolved`` -> ``closed``.

- ``investigate``: open -> investigating.
- ``update``: edit title, description, root cause, workaround (any status before resolved).
- ``link-incident``: link an incident of the same customer; its CIs join the problem's CIs.
- ``known-error``: open/investigating -> known_error; needs a root cause and a workaround
  (given now, or already on the record); a refusal names each missing field.
- ``raise-rfc``: records the RFC the service created to remove the cause. Refused while an RFC
  is linked that may still succeed; allowed again once it was rejected, withdrawn, failed or
  backed out.
- ``resolve``: investigating/known_error -> resolved. With a completed RFC nothing more is
  needed. Without one (no RFC, or one that ended without the fix) a ``resolution`` note must
  say why no change is needed. While a linked RFC is still under way: refused (409).
- ``close``: resolved -> closed. ``reopen``: resolved -> investigating, with a comment.

Checks run in this order: the state allows the action (else :class:`Conflict` with the state and
the actions allowed now), the record allows it (same), the actor's roles (:class:`Forbidden`),
the inputs (:class:`InvalidInput` listing every problem at once).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput
from cmdb.models import Actor, Role

from .models import RFC_FINISHED_WITHOUT_FIX, Event, Problem, ProblemStatus

__all__ = [
    "ACTIONS",
    "ACTORS",
    "EVENT_KINDS",
    "MAX_TEXT",
    "TRANSITIONS",
    "Transition",
    "actions_in_state",
    "allowed_actions",
    "check",
    "may_act",
    "transition",
]

MAX_TEXT = 20_000
S = ProblemStatus
ENG, SM = Role.ENGINEER, Role.SERVICE_MANAGER
#: Who works on problems: engineers and service managers of the provider. Customers read.
ACTORS: frozenset[Role] = frozenset({ENG, SM})
_BEFORE_RESOLVED = frozenset({S.OPEN, S.INVESTIGATING, S.KNOWN_ERROR})


@dataclass(frozen=True)
class Transition:
    """One row: the statuses it starts from, where it leads (None: stays), the inputs it
    needs and accepts besides ``comment``, and the facts the service must pass."""

    action: str
    sources: frozenset[ProblemStatus]
    to: ProblemStatus | None
    needs: tuple[str, ...] = ()
    accepts: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()


def _row(
    action: str,
    sources: Iterable[ProblemStatus],
    to: ProblemStatus | None,
    needs: tuple[str, ...] = (),
    accepts: tuple[str, ...] = (),
    facts: tuple[str, ...] = (),
) -> Transition:
    return Transition(action, frozenset(sources), to, needs, accepts, facts)


# fmt: off
TRANSITIONS: Mapping[str, Transition] = {row.action: row for row in (
    _row("investigate",   {S.OPEN},                       S.INVESTIGATING),
    _row("update",        _BEFORE_RESOLVED,               None,
         accepts=("title", "description", "root_cause", "workaround")),
    _row("link-incident", _BEFORE_RESOLVED,               None,
         facts=("incident_id", "incident_key", "incident_ci_ids")),
    _row("known-error",   {S.OPEN, S.INVESTIGATING},      S.KNOWN_ERROR,
         accepts=("root_cause", "workaround")),
    _row("raise-rfc",     _BEFORE_RESOLVED,               None,
         facts=("rfc_id", "rfc_key", "rfc_state")),
    _row("resolve",       {S.INVESTIGATING, S.KNOWN_ERROR}, S.RESOLVED,
         accepts=("resolution",)),
    _row("close",         {S.RESOLVED},                   S.CLOSED),
    _row("reopen",        {S.RESOLVED},                   S.INVESTIGATING,
         needs=("comment",)),
)}
# fmt: on

ACTIONS: tuple[str, ...] = tuple(TRANSITIONS)

EVENT_KINDS: Mapping[str, str] = {
    "investigate": "investigation_started",
    "update": "updated",
    "link-incident": "incident_linked",
    "known-error": "known_error_recorded",
    "raise-rfc": "rfc_raised",
    "resolve": "resolved",
    "close": "closed",
    "reopen": "reopened",
}

_TEXT_INPUTS = ("comment", "title", "description", "root_cause", "workaround", "resolution")


def may_act(actor: Actor) -> bool:
    """Provider engineers and service managers work on problems; customers only read."""
    return actor.is_provider_staff and actor.has_any(*ACTORS)


def _guard(problem: Problem, action: str) -> str | None:
    """Why the record itself (not the status alone) does not allow the action now, or None."""
    rfc_open = problem.rfc_id is not None and problem.rfc_state not in RFC_FINISHED_WITHOUT_FIX
    if action == "raise-rfc" and rfc_open:
        return f"{problem.rfc_key} is already raised to remove the cause ({problem.rfc_state})"
    if action == "resolve" and rfc_open and problem.rfc_state != "completed":
        return f"its RFC {problem.rfc_key} is {problem.rfc_state}; it must be completed first"
    return None


def actions_in_state(problem: Problem) -> list[str]:
    """The actions the status and record allow now, whoever asks, in table order."""
    return [a for a, row in TRANSITIONS.items() if problem.status in row.sources and _guard(problem, a) is None]


def allowed_actions(problem: Problem, actor: Actor) -> list[str]:
    """What this actor may do now: the forms the page shows."""
    return actions_in_state(problem) if may_act(actor) else []


def _conflict(problem: Problem, action: str, reason: str | None = None) -> Conflict:
    allowed = actions_in_state(problem)
    why = f"{problem.key} is {problem.status.value}" + (f" and {reason}" if reason else "")
    now = f"Actions allowed now: {', '.join(allowed)}." if allowed else "No action is allowed on it any more."
    return Conflict(f"Cannot {action}: {why}. {now}", state=problem.status.value, allowed=allowed)


def check(problem: Problem, action: str, actor: Actor) -> Transition:
    """Whether ``actor`` may take ``action`` now, before any input is read: the service calls
    it before doing work the action depends on (creating the RFC for ``raise-rfc``)."""
    row = TRANSITIONS.get(action)
    if row is None:
        raise InvalidInput.field("action", f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if problem.status not in row.sources:
        raise _conflict(problem, action)
    guard = _guard(problem, action)
    if guard is not None:
        raise _conflict(problem, action, guard)
    if not may_act(actor):
        raise Forbidden(f"Only engineers and service managers of the provider may {action} {problem.key}.")
    return row


def _text(name: str, raw: Any, problems: list[FieldProblem]) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        problems.append(FieldProblem(name, "must be text"))
        return None
    text = raw.strip()
    if len(text) > MAX_TEXT:
        problems.append(FieldProblem(name, f"must be at most {MAX_TEXT} characters"))
        return None
    return text


def _fact(facts: Mapping[str, Any], name: str, action: str) -> Any:
    if name not in facts:
        raise TypeError(f"{action} needs the service to pass {name}=")
    return facts[name]


def transition(
    problem: Problem,
    action: str,
    actor: Actor,
    now: datetime,
    inputs: Mapping[str, Any] | None = None,
    facts: Mapping[str, Any] | None = None,
) -> tuple[Problem, list[Event]]:
    """Apply ``action`` as ``actor`` at ``now``: the new record (``version`` + 1) and the events
    for its history. Raises as the module docstring says; nothing changes then."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    inputs = inputs or {}
    facts = facts or {}
    row = check(problem, action, actor)
    for name in row.facts:
        _fact(facts, name, action)
    problems: list[FieldProblem] = []
    unknown = sorted(set(inputs) - {"comment", *row.needs, *row.accepts})
    problems += [FieldProblem(name, f"is not an input of {action}") for name in unknown]
    values: dict[str, str] = {}
    for name in dict.fromkeys(("comment", *row.needs, *row.accepts)):
        text = _text(name, inputs.get(name), problems) if name in _TEXT_INPUTS else None
        if text:
            values[name] = text
        elif name in row.needs:
            problems.append(FieldProblem(name, "required"))

    changes: dict[str, Any] = {}
    data: dict[str, Any] = {}
    to = row.to or problem.status
    if action == "update":
        if "title" in inputs and not values.get("title"):
            problems.append(FieldProblem("title", "must not be blank"))
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for name in ("title", "description", "root_cause", "workaround"):
            if name not in inputs or name in {p.field for p in problems}:
                continue
            given = values.get(name, "")
            if given != getattr(problem, name):
                before[name], after[name] = getattr(problem, name), given
                changes[name] = given
        if not changes and not problems:
            problems.append(FieldProblem("body", "changes nothing: give a field with a new value"))
        data.update(before=before, after=after)
    elif action == "link-incident":
        incident_id = int(facts["incident_id"])
        if incident_id in problem.incident_ids:
            problems.append(FieldProblem("incident", f"{facts['incident_key']} is already linked"))
        else:
            added = sorted(set(facts["incident_ci_ids"]) - set(problem.ci_ids))
            changes["incident_ids"] = tuple(sorted({*problem.incident_ids, incident_id}))
            changes["ci_ids"] = tuple(sorted({*problem.ci_ids, *added}))
            data.update(incident=facts["incident_key"], incident_id=incident_id, cis_added=added)
    elif action == "known-error":
        for name in ("root_cause", "workaround"):
            text = values.get(name) or getattr(problem, name)
            if not text:
                problems.append(FieldProblem(name, "required to record a known error"))
            else:
                changes[name] = text
        changes["known_error"] = True
        data.update(root_cause=changes.get("root_cause", ""), workaround=changes.get("workaround", ""))
    elif action == "raise-rfc":
        changes.update(rfc_id=int(facts["rfc_id"]), rfc_key=facts["rfc_key"], rfc_state=facts["rfc_state"])
        data.update(rfc=facts["rfc_key"], rfc_id=int(facts["rfc_id"]))
        if problem.rfc_key:
            data["replaces"] = problem.rfc_key
    elif action == "resolve":
        fixed = problem.rfc_id is not None and problem.rfc_state == "completed"
        note = values.get("resolution", "")
        if not fixed and not note:
            reason = (
                f"required: {problem.rfc_key} ended {problem.rfc_state} without the fix; say how the cause was removed"
                if problem.rfc_id is not None
                else "required when no completed RFC removed the cause: say why no change is needed"
            )
            problems.append(FieldProblem("resolution", reason))
        changes["resolution"] = note
        data.update(resolution=note, rfc=problem.rfc_key if fixed else None)
    if problems:
        raise InvalidInput(problems)

    new = replace(problem, **changes, status=to, version=problem.version + 1, updated_at=now)
    data = {"action": action, "from": problem.status.value, "to": to.value, **data}
    return new, [Event(EVENT_KINDS[action], actor.person_id, actor.username, now, values.get("comment", ""), data)]
