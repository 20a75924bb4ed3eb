"""Change management's vocabulary: the request for change (RFC), its states and its events.

Pure Python: the standard library and :mod:`cmdb.models` only, no framework, no database.

An RFC records (domain, "Change: the request for change"): a human key (``RFC-2026-0042``); the
need; the desired result; who is affected (derived from the CIs, plus people named by hand); the
affected CIs; the implementation plan; the proposed deadline; the backout plan; the cost; the
budget for approval and sign-off; the priority; the origin (internal maintenance, customer
request, incident, problem); the originator; and the customer's own change reference. A patch RFC
adds the components to patch, the vulnerability or flaw, a description of the patch, its urgency
level, when the update became available, the proposed deployment time and the testing done.

The record is frozen: the workflow (:mod:`change.workflow`) returns a new one made with
:func:`dataclasses.replace`, plus the :class:`Event` list the service appends to the history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cmdb.models import Choice

__all__ = [
    "REQUIRED_FOR_SUBMIT",
    "RFC",
    "TERMINAL_STATES",
    "ChangeChoice",
    "ChangeType",
    "Event",
    "ImpactClass",
    "Origin",
    "Outcome",
    "Priority",
    "RFCState",
    "Urgency",
    "VoteChoice",
    "missing_for_submit",
]


class ChangeChoice(Choice):
    """A :class:`~cmdb.models.Choice` whose labels and colours live in this module's own maps.

    Colours are the palette names the stylesheet knows: green, blue, orange, red, grey, purple,
    yellow.
    """

    @property
    def label(self) -> str:
        return _LABELS.get(self, self.value.replace("_", " ").capitalize())

    @property
    def colour(self) -> str:
        return _COLOURS.get(self, "grey")


class RFCState(ChangeChoice):
    """Where an RFC stands. See ``docs/change-workflow.md`` for the diagram."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    NEEDS_INFORMATION = "needs_information"
    AUTHORIZED = "authorized"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    IMPLEMENTING = "implementing"
    COMPLETED = "completed"
    FAILED = "failed"
    BACKED_OUT = "backed_out"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"

    @property
    def is_terminal(self) -> bool:
        """True for the outcomes that accept no further action."""
        return self in TERMINAL_STATES


#: The terminal states: once there, an RFC accepts no further action. ``failed`` is not among
#: them: a failed implementation still has its backout plan to run (``back-out``).
TERMINAL_STATES: frozenset[RFCState] = frozenset(
    {RFCState.COMPLETED, RFCState.BACKED_OUT, RFCState.REJECTED, RFCState.WITHDRAWN}
)
#: Another name for :data:`TERMINAL_STATES`: the outcomes archived on the CIs for good.
Outcome = TERMINAL_STATES


class ChangeType(ChangeChoice):
    """Standard: pre-approved from the catalogue, never goes to the committee. Normal: the full
    workflow. Emergency: may be approved by the change manager on an ECAB decision and scheduled
    outside the change windows, both recorded, and then needs a post-implementation review."""

    STANDARD = "standard"
    NORMAL = "normal"
    EMERGENCY = "emergency"


class Priority(ChangeChoice):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Origin(ChangeChoice):
    """Why the RFC exists: internal maintenance, a customer's request, an incident or a problem."""

    INTERNAL = "internal"
    CUSTOMER = "customer"
    INCIDENT = "incident"
    PROBLEM = "problem"


class Urgency(ChangeChoice):
    """A software update's urgency level (domain, "Release and the patch urgency schedule")."""

    CRITICAL = "critical"
    IMPORTANT = "important"
    MODERATE = "moderate"
    LOW = "low"
    SERVICE_RELEASE = "service_release"
    MAJOR_REVISION = "major_revision"


class ImpactClass(ChangeChoice):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class VoteChoice(ChangeChoice):
    APPROVE = "approve"
    REJECT = "reject"
    ABSTAIN = "abstain"


_LABELS: dict[StrEnum, str] = {
    RFCState.IN_REVIEW: "In committee review",
    RFCState.NEEDS_INFORMATION: "Needs information",
    RFCState.BACKED_OUT: "Backed out",
    Origin.INTERNAL: "Internal maintenance",
    Origin.CUSTOMER: "Customer request",
    VoteChoice.APPROVE: "Approve",
    VoteChoice.REJECT: "Reject",
    VoteChoice.ABSTAIN: "Abstain",
}
_COLOURS: dict[StrEnum, str] = {
    RFCState.DRAFT: "grey",
    RFCState.SUBMITTED: "blue",
    RFCState.NEEDS_INFORMATION: "yellow",
    RFCState.AUTHORIZED: "blue",
    RFCState.IN_REVIEW: "purple",
    RFCState.APPROVED: "green",
    RFCState.SCHEDULED: "blue",
    RFCState.IMPLEMENTING: "orange",
    RFCState.COMPLETED: "green",
    RFCState.FAILED: "red",
    RFCState.BACKED_OUT: "orange",
    RFCState.REJECTED: "red",
    RFCState.WITHDRAWN: "grey",
    ChangeType.STANDARD: "green",
    ChangeType.NORMAL: "blue",
    ChangeType.EMERGENCY: "red",
    Priority.CRITICAL: "red",
    Priority.HIGH: "orange",
    Priority.MEDIUM: "blue",
    Priority.LOW: "grey",
    Origin.INTERNAL: "grey",
    Origin.CUSTOMER: "blue",
    Origin.INCIDENT: "orange",
    Origin.PROBLEM: "purple",
    Urgency.CRITICAL: "red",
    Urgency.IMPORTANT: "orange",
    Urgency.MODERATE: "yellow",
    Urgency.LOW: "grey",
    Urgency.SERVICE_RELEASE: "blue",
    Urgency.MAJOR_REVISION: "purple",
    ImpactClass.LOW: "green",
    ImpactClass.MEDIUM: "yellow",
    ImpactClass.HIGH: "red",
    VoteChoice.APPROVE: "green",
    VoteChoice.REJECT: "red",
    VoteChoice.ABSTAIN: "grey",
}


@dataclass(frozen=True)
class RFC:
    """A request for change. Times are timezone-aware (UTC when they come from storage).

    ``affected_people`` holds only the people named by hand; those derived from the CIs are
    computed, not stored. ``origin_ref`` is the key of the incident or problem the RFC came from;
    ``refers_to`` the key of an earlier RFC (a rejected one, say) this one follows up;
    ``template`` the standard-change catalogue entry it was made from.

    ``impact_frozen`` is set at authorization: from then on the impact computed from the CI graph
    is the one stored with the RFC, not recomputed. ``release_requirements`` are what the change
    manager asked for at authorization (for example "test evidence").
    """

    id: int
    key: str
    tenant_id: int
    title: str
    type: ChangeType
    state: RFCState
    priority: Priority
    origin: Origin
    originator_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    origin_ref: str | None = None
    need: str = ""
    desired_result: str = ""
    affected_people: tuple[str, ...] = ()
    ci_ids: tuple[int, ...] = ()
    plan: str = ""
    backout_plan: str = ""
    deadline: dt.datetime | None = None
    cost: Decimal | None = None
    budget: Decimal | None = None
    customer_ref: str | None = None
    refers_to: str | None = None
    template: str | None = None
    planned_start: dt.datetime | None = None
    planned_end: dt.datetime | None = None
    release_requirements: tuple[str, ...] = ()
    impact_frozen: bool = False
    post_implementation_review_required: bool = False
    emergency_reason: str = ""
    customer_approval_required: bool = False
    customer_approved_by: int | None = None
    # Patch RFCs.
    patch_components: tuple[str, ...] = ()
    vulnerability: str = ""
    patch_description: str = ""
    urgency: Urgency | None = None
    available_at: dt.datetime | None = None
    proposed_deployment: dt.datetime | None = None
    testing_done: str = ""
    version: int = 1

    @property
    def is_patch(self) -> bool:
        return self.urgency is not None

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


#: What a submission must carry (domain: "submitting requires the need, the desired result, the
#: plan, the backout plan and the affected CIs"). Text fields must not be blank; ``ci_ids`` must
#: name at least one CI. A standard change made from a template takes its plan and backout plan
#: from the template: the service copies them in before submitting.
REQUIRED_FOR_SUBMIT: tuple[str, ...] = ("need", "desired_result", "plan", "backout_plan", "ci_ids")


def missing_for_submit(rfc: RFC) -> list[str]:
    """The :data:`REQUIRED_FOR_SUBMIT` fields this RFC lacks, in that order."""
    missing: list[str] = []
    for name in REQUIRED_FOR_SUBMIT:
        value = getattr(rfc, name)
        if isinstance(value, str):
            if not value.strip():
                missing.append(name)
        elif not value:
            missing.append(name)
    return missing


@dataclass(frozen=True)
class Event:
    """One entry of an RFC's history, as the workflow produced it; the service appends it.

    ``kind`` names what happened ("submitted", "priority_changed", "authorized", "voted", ...).
    ``data`` carries the details: always ``action``, ``from`` and ``to`` (state values), plus
    what the step recorded (the old and new priority, the vote, the schedule violations, ...).
    """

    kind: str
    actor_id: int | None
    actor_name: str
    at: dt.datetime
    comment: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
