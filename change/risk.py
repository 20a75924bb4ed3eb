"""An RFC's impact class and risk score (domain, "Change" step 4).

Pure: the standard library, :mod:`cmdb.models`, :mod:`cmdb.errors` and :mod:`change.models`.
The service walks the CI graph (the RFC's affected CIs and everything downstream of them),
looks up each impacted CI's class, criticality and tenant, and counts the earlier failed
changes and recent incidents on those CIs; the functions here turn that into:

- an :class:`ImpactSummary` (:func:`summarize`): the impacted CIs, services and customers;
- an :class:`~change.models.ImpactClass` (:func:`classify`) against the customer's
  :class:`ImpactThresholds` (SLA term ``impact_thresholds``);
- whether the review committee must see it (:func:`committee_required`);
- a :class:`Risk` (:func:`assess`): a score from 0 to 100 with the factors that make it up,
  each in a sentence a change manager can act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cmdb.errors import FieldProblem, InvalidInput
from cmdb.models import CIClass, Criticality

from .models import ChangeType, ImpactClass

__all__ = [
    "HIGH_RISK",
    "MEDIUM_RISK",
    "ImpactSummary",
    "ImpactThresholds",
    "Risk",
    "RiskFactor",
    "assess",
    "classify",
    "committee_required",
    "risk_level",
    "summarize",
]


# ------------------------------------------------------------------------------- thresholds


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class ImpactThresholds:
    """When an RFC's impact is medium or high (see :func:`classify`). Per customer: the SLA term
    ``impact_thresholds`` overrides the defaults.

    - ``medium``: this many impacted CIs (the affected ones included) or more make it medium;
    - ``high``: this many or more make it high;
    - ``critical_ci_is_high``: any impacted CI of criticality ``critical`` makes it high.
    """

    medium: int = 10
    high: int = 50
    critical_ci_is_high: bool = True

    def __post_init__(self) -> None:
        if not _whole(self.medium) or self.medium < 1:
            raise ValueError("medium: must be a whole number of at least 1")
        if not _whole(self.high) or self.high < 1:
            raise ValueError("high: must be a whole number of at least 1")
        if self.medium > self.high:
            raise ValueError("medium: must not be more than high")
        if not isinstance(self.critical_ci_is_high, bool):
            raise ValueError("critical_ci_is_high: must be true or false")

    @classmethod
    def from_terms(cls, sla: Mapping[str, Any] | None) -> ImpactThresholds:
        """Read ``sla["impact_thresholds"]``, e.g. ``{"medium": 5, "high": 20}`` (and optionally
        ``"critical_ci_is_high": false``); missing keys, a missing term or no SLA at all take
        the defaults. Refuses unknown keys and bad values with
        :class:`~cmdb.errors.InvalidInput`, naming each field (``sla.impact_thresholds.medium``)."""
        base = "sla.impact_thresholds"
        terms = (sla or {}).get("impact_thresholds")
        if terms is None:
            return cls()
        if not isinstance(terms, Mapping):
            raise InvalidInput.field(base, 'must be an object such as {"medium": 10, "high": 50}')
        problems: list[FieldProblem] = []
        for key in terms:
            if key not in ("medium", "high", "critical_ci_is_high"):
                problems.append(FieldProblem(f"{base}.{key}", "unknown; use medium, high or critical_ci_is_high"))
        medium = terms.get("medium", cls.medium)
        high = terms.get("high", cls.high)
        critical = terms.get("critical_ci_is_high", cls.critical_ci_is_high)
        medium_ok = _whole(medium) and medium >= 1
        high_ok = _whole(high) and high >= 1
        if not medium_ok:
            problems.append(FieldProblem(f"{base}.medium", "must be a whole number of at least 1"))
        if not high_ok:
            problems.append(FieldProblem(f"{base}.high", "must be a whole number of at least 1"))
        if medium_ok and high_ok and medium > high:
            problems.append(FieldProblem(f"{base}.medium", f"must not be more than high ({high})"))
        if not isinstance(critical, bool):
            problems.append(FieldProblem(f"{base}.critical_ci_is_high", "must be true or false"))
        if problems:
            raise InvalidInput(problems)
        return cls(medium=medium, high=high, critical_ci_is_high=critical)


# ----------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class ImpactSummary:
    """What an RFC reaches: ``cis`` the impacted CI ids, the affected ones included (ascending);
    ``services`` those of class ``service``; ``customers`` the tenant ids they belong to;
    ``max_criticality`` the highest criticality among them (``low`` when there are none);
    ``critical_count`` how many are ``critical``; ``high_count`` how many are ``high``.

    ``provider_tenant_id``, when known, is the provider's own tenant: it is listed among the
    ``customers`` touched but does not count as a customer for the multi-customer rule (a
    change to a provider host that one customer relies on touches one customer).
    """

    cis: tuple[int, ...]
    services: tuple[int, ...]
    customers: tuple[int, ...]
    max_criticality: Criticality
    critical_count: int
    high_count: int = 0
    provider_tenant_id: int | None = None

    @property
    def ci_count(self) -> int:
        return len(self.cis)

    @property
    def customer_count(self) -> int:
        """Customers touched, the provider's own tenant not counted."""
        return sum(1 for t in self.customers if t != self.provider_tenant_id)


def summarize(
    impacted: Mapping[int, tuple[CIClass | str, Criticality | str, int]],
    provider_tenant_id: int | None = None,
) -> ImpactSummary:
    """Summarise the impacted CIs, given as ``{ci_id: (class, criticality, tenant_id)}`` (the
    RFC's affected CIs and everything downstream of them; class and criticality as members or
    their values). Pass ``provider_tenant_id`` so that the provider's own tenant is not counted
    as a customer by :func:`classify`."""
    services: list[int] = []
    tenants: set[int] = set()
    top = Criticality.LOW
    critical = high = 0
    for ci, (ci_class, criticality, tenant) in impacted.items():
        if CIClass(ci_class) is CIClass.SERVICE:
            services.append(ci)
        tenants.add(tenant)
        level = Criticality(criticality)
        if level.weight > top.weight:
            top = level
        if level is Criticality.CRITICAL:
            critical += 1
        elif level is Criticality.HIGH:
            high += 1
    return ImpactSummary(
        cis=tuple(sorted(impacted)),
        services=tuple(sorted(services)),
        customers=tuple(sorted(tenants)),
        max_criticality=top,
        critical_count=critical,
        high_count=high,
        provider_tenant_id=provider_tenant_id,
    )


# ------------------------------------------------------------------------------ impact class


def classify(summary: ImpactSummary, thresholds: ImpactThresholds | None = None) -> ImpactClass:
    """The impact class, by the first rule that holds:

    **high** when
      - the impacted CIs (affected ones included) number ``thresholds.high`` or more, or
      - more than one customer is touched (a provider CI that several customers rely on; the
        provider's own tenant does not count as a customer), or
      - ``thresholds.critical_ci_is_high`` and any impacted CI is of criticality ``critical``;

    **medium** when
      - the impacted CIs number ``thresholds.medium`` or more, or
      - any impacted CI is of criticality ``high`` (or ``critical`` when that alone does not
        make it high), or
      - any service is impacted;

    **low** otherwise.
    """
    limits = thresholds or ImpactThresholds()
    if (
        summary.ci_count >= limits.high
        or summary.customer_count > 1
        or (limits.critical_ci_is_high and summary.critical_count > 0)
    ):
        return ImpactClass.HIGH
    if (
        summary.ci_count >= limits.medium
        or summary.max_criticality.weight >= Criticality.HIGH.weight
        or bool(summary.services)
    ):
        return ImpactClass.MEDIUM
    return ImpactClass.LOW


def committee_required(impact_class: ImpactClass | str, change_type: ChangeType | str) -> bool:
    """True when the review committee must pass the change: high impact and not a standard
    change. Standard changes are pre-approved and never go to the committee; an emergency
    change of high impact still needs the (emergency) committee."""
    return ImpactClass(impact_class) is ImpactClass.HIGH and ChangeType(change_type) is not ChangeType.STANDARD


# -------------------------------------------------------------------------------------- risk

#: A score at or above this is a high risk.
HIGH_RISK = 60
#: A score at or above this (and below :data:`HIGH_RISK`) is a medium risk.
MEDIUM_RISK = 30

# Points per factor. The largest possible sum is 25 + 20 + 15 + 15 + 24 + 15 = 114, so a change
# that is bad on every count reaches the cap of 100; the smallest is 5 - 10 = -5, floored at 0.
_IMPACT_POINTS = {ImpactClass.LOW: 5, ImpactClass.MEDIUM: 15, ImpactClass.HIGH: 25}
_CRITICALITY_POINTS = {Criticality.LOW: 0, Criticality.MEDIUM: 3, Criticality.HIGH: 10, Criticality.CRITICAL: 20}
_EMERGENCY_POINTS = 15
_STANDARD_POINTS = -10
_NOTICE_UNDER_DAY_POINTS = 15
_NOTICE_UNDER_3_DAYS_POINTS = 8
_FAILED_CHANGE_POINTS, _FAILED_CHANGE_CAP = 8, 24
_INCIDENT_POINTS, _INCIDENT_CAP = 3, 15


@dataclass(frozen=True)
class RiskFactor:
    """One reason for (or against) the risk: ``points`` added to the score (negative lowers it)
    and ``detail``, the reason in a sentence."""

    name: str
    points: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "points": self.points, "detail": self.detail}


@dataclass(frozen=True)
class Risk:
    """``score`` from 0 to 100, the sum of the factors' points held within those bounds;
    ``level``: ``high`` from :data:`HIGH_RISK` (60), ``medium`` from :data:`MEDIUM_RISK` (30),
    ``low`` below; ``factors`` every factor that moved the score, largest effect first."""

    score: int
    level: str
    factors: tuple[RiskFactor, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "level": self.level, "factors": [f.as_dict() for f in self.factors]}


def risk_level(score: int) -> str:
    """``high``, ``medium`` or ``low`` for a score (see :class:`Risk`)."""
    if score >= HIGH_RISK:
        return "high"
    if score >= MEDIUM_RISK:
        return "medium"
    return "low"


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _hours(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours < 1:
        return "less than an hour"
    return _plural(hours, "hour")


def assess(
    summary: ImpactSummary,
    impact_class: ImpactClass | str,
    change_type: ChangeType | str,
    lead_time: timedelta | None = None,
    failed_changes_on_cis: int = 0,
    incidents_on_cis: int = 0,
) -> Risk:
    """The risk of a change, as a score with the factors behind it.

    ``lead_time`` is the notice given: planned start minus now (None when unscheduled, which
    adds nothing; a start in the past counts as less than a day). ``failed_changes_on_cis``
    counts earlier RFCs on these CIs that failed or were backed out; ``incidents_on_cis`` the
    incidents on them in the last 90 days.

    Points: impact class low 5, medium 15, high 25; most critical impacted CI medium 3, high 10,
    critical 20; emergency change +15, standard change -10; less than 24 hours' notice +15,
    less than 72 hours +8; 8 per earlier failed change (at most 24); 3 per recent incident (at
    most 15). The score is their sum, held between 0 and 100; see :class:`Risk` for the levels.
    """
    if failed_changes_on_cis < 0 or incidents_on_cis < 0:
        raise ValueError("counts of failed changes and incidents cannot be negative")
    impact = ImpactClass(impact_class)
    kind = ChangeType(change_type)
    factors: list[RiskFactor] = []

    reach = _plural(summary.ci_count, "CI")
    if summary.services:
        reach += f", {_plural(len(summary.services), 'service')} among them"
    if summary.customer_count > 1:
        reach += f", across {summary.customer_count} customers"
    factors.append(RiskFactor("impact", _IMPACT_POINTS[impact], f"The change reaches {reach}: {impact.value} impact."))

    top = summary.max_criticality
    if _CRITICALITY_POINTS[top]:
        if top is Criticality.CRITICAL:
            detail = f"{_plural(summary.critical_count, 'impacted CI is', 'impacted CIs are')} business-critical."
        elif top is Criticality.HIGH and summary.high_count:
            detail = f"{_plural(summary.high_count, 'impacted CI is', 'impacted CIs are')} of high criticality."
        else:
            detail = f"The most critical impacted CI is of {top.value} criticality."
        factors.append(RiskFactor("criticality", _CRITICALITY_POINTS[top], detail))

    if kind is ChangeType.EMERGENCY:
        factors.append(
            RiskFactor(
                "change_type",
                _EMERGENCY_POINTS,
                "Emergency change: less time to plan and test, and it may run outside the change windows.",
            )
        )
    elif kind is ChangeType.STANDARD:
        factors.append(
            RiskFactor(
                "change_type", _STANDARD_POINTS, "Standard change: a pre-approved procedure that has worked before."
            )
        )

    if lead_time is not None:
        if lead_time < timedelta(hours=24):
            when = "It starts in the past or now" if lead_time <= timedelta(0) else f"It starts in {_hours(lead_time)}"
            factors.append(
                RiskFactor("lead_time", _NOTICE_UNDER_DAY_POINTS, f"{when}: less than a day's notice to prepare.")
            )
        elif lead_time < timedelta(hours=72):
            factors.append(
                RiskFactor(
                    "lead_time",
                    _NOTICE_UNDER_3_DAYS_POINTS,
                    f"It starts in {_hours(lead_time)}: less than three days' notice to prepare.",
                )
            )

    if failed_changes_on_cis:
        factors.append(
            RiskFactor(
                "failed_changes",
                min(_FAILED_CHANGE_POINTS * failed_changes_on_cis, _FAILED_CHANGE_CAP),
                f"{_plural(failed_changes_on_cis, 'earlier change')} on these CIs "
                f"{'failed or was' if failed_changes_on_cis == 1 else 'failed or were'} backed out.",
            )
        )
    if incidents_on_cis:
        factors.append(
            RiskFactor(
                "incidents",
                min(_INCIDENT_POINTS * incidents_on_cis, _INCIDENT_CAP),
                f"{_plural(incidents_on_cis, 'incident')} on these CIs in the last 90 days.",
            )
        )

    factors.sort(key=lambda f: -abs(f.points))
    score = max(0, min(100, sum(f.points for f in factors)))
    return Risk(score=score, level=risk_level(score), factors=tuple(factors))
