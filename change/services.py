"""Change management use cases: create and edit RFCs, move them through the workflow, compute
and freeze their impact, find scheduling conflicts.

Each action loads the RFC, computes what the pure workflow cannot know (impact, votes,
schedule violations), calls `change.workflow.transition`, and persists the result with a
conditional update in one transaction, appending every event to the history and archiving
outcomes on the affected CIs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from change import repository as repo
from change.catalogue import CATALOGUE
from change.conflicts import ConflictPair, ScheduledChange, find_conflicts
from change.models import RFC, ChangeType, Event, Origin, Priority, RFCState, Urgency, VoteChoice
from change.risk import ImpactThresholds, assess, classify, committee_required, summarize
from change.workflow import TRANSITIONS, DecisionRule, actions_in_state, allowed_actions, transition
from cmdb import repository as cmdb_repo
from cmdb.db import atomic
from cmdb.errors import Conflict, FieldProblem, InvalidInput, NotFound, StaleVersion
from cmdb.models import CI, Actor, CIClass, Criticality, Customer, HistoryEntry, Person, Role, Scope
from cmdb.services import Clock, CMDBService, page_bounds
from cmdb.windows import Blackout, ChangeWindow, check_schedule

# States from which an RFC counts as authorizing changes to its CIs (configuration control).
AUTHORIZING_STATES = (RFCState.APPROVED, RFCState.SCHEDULED, RFCState.IMPLEMENTING, RFCState.COMPLETED)
# Outcomes archived in the history of every affected CI, so the next engineer finds them.
ARCHIVED_EVENTS = frozenset(
    {
        "approved",
        "rejected",
        "withdrawn",
        "implementation_started",
        "completed",
        "failed",
        "backed_out",
        "committee_approved",
        "committee_rejected",
    }
)
OPEN_STATES = tuple(s.value for s in RFCState if not s.is_terminal)
SCHEDULED_STATES = (RFCState.SCHEDULED.value, RFCState.IMPLEMENTING.value)
EDITABLE_STATES = (RFCState.DRAFT, RFCState.NEEDS_INFORMATION)
MAX_IMPACT_LISTED = 1000
RFC_EDITABLE_FIELDS = (
    "title",
    "type",
    "priority",
    "origin",
    "origin_ref",
    "need",
    "desired_result",
    "affected_people",
    "cis",
    "plan",
    "backout_plan",
    "deadline",
    "cost",
    "budget",
    "customer_ref",
    "refers_to",
    "template",
    "patch_components",
    "vulnerability",
    "patch_description",
    "urgency",
    "available_at",
    "proposed_deployment",
    "testing_done",
)


@dataclass(frozen=True)
class RFCImpact:
    cis: tuple[int, ...]
    services: tuple[int, ...]
    customers: tuple[int, ...]
    impact_class: str
    committee_required: bool
    risk: dict[str, Any]
    frozen: bool
    computed_at: dt.datetime
    adjustments: tuple[dict[str, Any], ...] = ()
    total: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "cis": list(self.cis),
            "services": list(self.services),
            "customers": list(self.customers),
            "class": self.impact_class,
            "committee_required": self.committee_required,
            "risk": self.risk,
            "frozen": self.frozen,
            "computed_at": self.computed_at.isoformat(),
            "adjustments": list(self.adjustments),
            "total": self.total,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RFCImpact:
        return cls(
            cis=tuple(data["cis"]),
            services=tuple(data["services"]),
            customers=tuple(data["customers"]),
            impact_class=data["class"],
            committee_required=bool(data["committee_required"]),
            risk=dict(data["risk"]),
            frozen=bool(data.get("frozen", False)),
            computed_at=dt.datetime.fromisoformat(data["computed_at"]),
            adjustments=tuple(data.get("adjustments", ())),
            total=int(data.get("total", len(data["cis"]))),
        )


@dataclass(frozen=True)
class RFCView:
    rfc: RFC
    impact: RFCImpact | None
    allowed: list[str]


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str, sort_keys=True)


class IncidentHistory(Protocol):
    """Incident management tells change management how many incidents hit some CIs lately,
    which raises an RFC's risk (the app wires the IncidentService in)."""

    async def incidents_on(self, ci_ids: Sequence[int], since: dt.datetime) -> int: ...


class NoIncidentHistory:
    async def incidents_on(self, ci_ids: Sequence[int], since: dt.datetime) -> int:
        return 0


#: How far back incidents on an RFC's CIs count towards its risk.
INCIDENT_LOOKBACK = dt.timedelta(days=90)


class RFCAuthority:
    """Configuration control asks change management whether an RFC authorizes a CI change."""

    async def authorizes(self, rfc_ref: str, tenant_id: int, ci_id: int) -> bool:
        return await repo.rfc_authorizing(rfc_ref, tenant_id, ci_id, [s.value for s in AUTHORIZING_STATES])


class ChangeService:
    def __init__(self, clock: Clock, cmdb: CMDBService) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.incident_history: IncidentHistory = NoIncidentHistory()

    # --- reading ---------------------------------------------------------------------------

    async def _load(self, actor: Actor, ref: int | str) -> tuple[RFC, dict[str, Any]]:
        found = await repo.get_rfc(actor.scope, ref)
        if found is None:
            raise NotFound("RFC", ref)
        return found

    async def get(self, actor: Actor, ref: int | str) -> RFCView:
        rfc, extra = await self._load(actor, ref)
        impact = RFCImpact.from_json(extra["impact"]) if extra["impact"] and rfc.impact_frozen else None
        return RFCView(rfc, impact, allowed_actions(rfc, actor))

    async def list_rfcs(
        self,
        actor: Actor,
        *,
        customer: int | str | None = None,
        states: Sequence[str] | None = None,
        ci: int | str | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[RFC], int]:
        limit, offset = page_bounds(limit, offset)
        unknown = [s for s in states or () if s not in RFCState.values()]
        if unknown:
            raise InvalidInput.field(
                "state", f"unknown states {', '.join(unknown)}; known: {', '.join(RFCState.values())}"
            )
        tenant_id = (await self.cmdb.get_customer(actor, customer)).id if customer is not None else None
        ci_id = (await self.cmdb.get_ci(actor, ci)).id if ci is not None else None
        rows, total = await repo.list_rfcs(
            actor.scope, tenant_id=tenant_id, states=states, ci_id=ci_id, q=q, limit=limit, offset=offset
        )
        return [rfc for rfc, _ in rows], total

    async def timeline(self, actor: Actor, ref: int | str) -> list[HistoryEntry]:
        rfc, _ = await self._load(actor, ref)
        return await cmdb_repo.history_for_entity("rfc", rfc.id)

    async def votes(self, actor: Actor, ref: int | str) -> list[dict[str, Any]]:
        rfc, _ = await self._load(actor, ref)
        return await repo.votes(rfc.id)

    # --- creating and editing --------------------------------------------------------------

    async def _parse_fields(
        self, actor: Actor, tenant: Customer, data: Mapping[str, Any], problems: list[FieldProblem]
    ) -> dict[str, Any]:
        """Validates the editable fields present in `data`; returns RFC field values."""
        values: dict[str, Any] = {}
        for name in (
            "title",
            "need",
            "desired_result",
            "plan",
            "backout_plan",
            "vulnerability",
            "patch_description",
            "testing_done",
        ):
            if name in data:
                text = data[name]
                if text is not None and not isinstance(text, str):
                    problems.append(FieldProblem(name, "must be text"))
                elif text is not None and len(text) > 20_000:
                    problems.append(FieldProblem(name, "must be at most 20,000 characters"))
                else:
                    values[name] = (text or "").strip() if name == "title" else (text or "")
        if "title" in values and not values["title"]:
            problems.append(FieldProblem("title", "is required"))
        for name, enum in (("type", ChangeType), ("priority", Priority), ("origin", Origin)):
            if name in data and data[name] is not None:
                try:
                    values[name] = enum(data[name])
                except ValueError:
                    problems.append(
                        FieldProblem(name, f"unknown {name} {data[name]!r}; known: {', '.join(enum.values())}")
                    )
        if "urgency" in data:
            if data["urgency"] is None:
                values["urgency"] = None
            else:
                try:
                    values["urgency"] = Urgency(data["urgency"])
                except ValueError:
                    problems.append(
                        FieldProblem(
                            "urgency",
                            f"unknown urgency level {data['urgency']!r}; known: {', '.join(Urgency.values())}",
                        )
                    )
        for name in ("origin_ref", "customer_ref", "refers_to", "template"):
            if name in data:
                value = data[name]
                if value is not None and (not isinstance(value, str) or len(value) > 100):
                    problems.append(FieldProblem(name, "must be text of at most 100 characters"))
                else:
                    values[name] = value or None
        for name in ("affected_people", "patch_components"):
            if name in data:
                value = data[name] or []
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    problems.append(FieldProblem(name, "must be a list of texts"))
                else:
                    values[name] = tuple(value)
        for name in ("deadline", "available_at", "proposed_deployment"):
            if name in data:
                values[name] = _moment(data[name], name, problems)
        if values.get("available_at") and values["available_at"] > self.clock.now():
            problems.append(
                FieldProblem("available_at", "is in the future: the clock starts when the update is available")
            )
        for name in ("cost", "budget"):
            if name in data:
                raw = data[name]
                if raw is None:
                    values[name] = None
                    continue
                try:
                    amount = Decimal(str(raw))
                    if not amount.is_finite() or amount < 0:
                        raise InvalidOperation
                    values[name] = amount.quantize(Decimal("0.01"))
                except (InvalidOperation, ValueError):
                    problems.append(FieldProblem(name, "must be an amount of 0 or more"))
        if "cis" in data:
            refs = data["cis"]
            if not isinstance(refs, list):
                problems.append(FieldProblem("cis", "must be a list of CI ids or names"))
            else:
                # One read for all references: ids, names within the customer, CUSTOMER:name.
                names = [
                    ref.partition(":")[2] if ref.startswith(f"{tenant.key}:") else ref
                    for ref in refs
                    if isinstance(ref, str) and not ref.isdigit()
                ]
                numbers = [int(ref) for ref in refs if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit())]
                by_id, by_name = await cmdb_repo.tenant_ci_refs(tenant.id, numbers, names)
                ci_ids = []
                for ref in refs:
                    if isinstance(ref, bool) or not isinstance(ref, int | str):
                        problems.append(FieldProblem("cis", f"{ref!r} is not a CI id or name"))
                        continue
                    if isinstance(ref, int) or ref.isdigit():
                        found = by_id.get(int(ref))
                    else:
                        found = by_name.get(ref.partition(":")[2] if ref.startswith(f"{tenant.key}:") else ref)
                    if found is None:
                        problems.append(FieldProblem("cis", f"no CI {ref} of {tenant.key}"))
                    else:
                        ci_ids.append(found)
                values["ci_ids"] = tuple(sorted(set(ci_ids)))
        return values

    async def create(self, actor: Actor, data: Mapping[str, Any]) -> RFC:
        problems: list[FieldProblem] = []
        customer_ref = data.get("customer")
        tenant = await cmdb_repo.get_customer(actor.scope, customer_ref) if customer_ref is not None else None
        if customer_ref is None:
            problems.append(FieldProblem("customer", "is required"))
        elif tenant is None:
            problems.append(FieldProblem("customer", f"no customer {customer_ref}"))
        if not actor.has_any(
            Role.ENGINEER, Role.CHANGE_MANAGER, Role.CUSTOMER, Role.ADMINISTRATOR, Role.SERVICE_MANAGER
        ):
            from cmdb.errors import Forbidden

            raise Forbidden("Engineers, change managers and customer contacts raise RFCs.")
        if "title" not in data:
            problems.append(FieldProblem("title", "is required"))
        if "cis" not in data:
            problems.append(FieldProblem("cis", "is required (a list of affected CIs, may be empty in a draft)"))
        unknown = set(data) - {*RFC_EDITABLE_FIELDS, "customer", "planned_start", "planned_end"}
        problems += [FieldProblem(name, "is not a field of an RFC") for name in sorted(unknown)]
        values = await self._parse_fields(actor, tenant, data, problems) if tenant is not None else {}
        planned: dict[str, Any] = {}
        for name in ("planned_start", "planned_end"):
            if data.get(name) is not None:
                planned[name] = _moment(data[name], name, problems)
        if values.get("type") is ChangeType.STANDARD and tenant is not None:
            await self._apply_template(values, problems)
        if problems:
            raise InvalidInput(problems)
        assert tenant is not None
        now = self.clock.now()
        origin = values.pop("origin", Origin.INTERNAL if actor.is_provider_staff else Origin.CUSTOMER)
        rfc = RFC(
            id=0,
            key="",
            tenant_id=tenant.id,
            title=values.pop("title"),
            type=values.pop("type", ChangeType.NORMAL),
            state=RFCState.DRAFT,
            priority=values.pop("priority", Priority.MEDIUM),
            origin=origin,
            originator_id=actor.person_id,
            created_at=now,
            updated_at=now,
            customer_approval_required=bool(tenant.sla.get("customer_approval", False)) and not tenant.is_provider,
            **values,
            **planned,
        )
        async with atomic(cmdb_repo.engine()):
            number = await cmdb_repo.next_in_sequence(f"RFC-{now.year}")
            key = f"RFC-{now.year}-{number:04d}"
            rfc_id = await repo.insert_rfc(rfc, key)
            rfc = replace(rfc, id=rfc_id, key=key)
            await self._record(rfc, [Event("created", actor.person_id, actor.username, now, "", {"key": key})])
        return rfc

    async def _apply_template(self, values: dict[str, Any], problems: list[FieldProblem]) -> None:
        """A standard change comes from the catalogue: it names a template, takes the template's
        plan and backout plan unless it gives its own, and touches only CIs of its classes."""
        template = CATALOGUE.get(values.get("template") or "")
        if template is None:
            problems.append(
                FieldProblem(
                    "template", f"a standard change names a catalogue template: {', '.join(sorted(CATALOGUE))}"
                )
            )
            return
        values["plan"] = values.get("plan") or template.plan
        values["backout_plan"] = values.get("backout_plan") or template.backout_plan
        cis = await cmdb_repo.cis_by_ids(values.get("ci_ids", ()))
        wrong = sorted(ci.name for ci in cis.values() if ci.ci_class not in template.ci_classes)
        if wrong:
            classes = ", ".join(sorted(c.value for c in template.ci_classes))
            problems.append(FieldProblem("cis", f"{', '.join(wrong)}: template {template.key} covers only {classes}"))

    async def suggest_committee(self, actor: Actor, ref: int | str) -> list[tuple[Person, list[str]]]:
        """Committee members with expertise in the classes of the CIs an RFC touches, best
        match first; the originator is never suggested (they cannot vote on their own RFC)."""
        rfc, _ = await self._load(actor, ref)
        impact = await self.impact(actor, rfc.id)
        cis = await cmdb_repo.cis_by_ids({*rfc.ci_ids, *impact.cis[:200]})
        classes = {ci.ci_class.value for ci in cis.values()}
        provider = await self.cmdb.provider()
        members, _ = await cmdb_repo.list_people(
            Scope.everything(provider.id),
            tenant_id=provider.id,
            role=Role.COMMITTEE_MEMBER.value,
            expertise=None,
            limit=500,
            offset=0,
        )
        ranked = [
            (person, sorted(classes & person.expertise))
            for person in members
            if person.id != rfc.originator_id and person.active
        ]
        ranked.sort(key=lambda item: (-len(item[1]), item[0].username))
        return ranked

    async def update(
        self, actor: Actor, ref: int | str, changes: Mapping[str, Any], expected_version: int | None = None
    ) -> RFC:
        rfc, _ = await self._load(actor, ref)
        if rfc.state not in EDITABLE_STATES:
            raise Conflict(
                f"{rfc.key} is {rfc.state.value}: only drafts and RFCs sent back for information can be edited.",
                state=rfc.state.value,
                allowed=actions_in_state(rfc),
            )
        from cmdb.errors import Forbidden

        if not (actor.person_id == rfc.originator_id or actor.has_any(Role.CHANGE_MANAGER, Role.ENGINEER)):
            raise Forbidden("Only the originator, an engineer or a change manager edits an RFC.")
        if not actor.is_provider_staff and actor.tenant_id != rfc.tenant_id:
            raise NotFound("RFC", ref)
        problems: list[FieldProblem] = []
        unknown = set(changes) - set(RFC_EDITABLE_FIELDS)
        problems += [FieldProblem(name, "cannot be changed here") for name in sorted(unknown)]
        tenant = await self.cmdb.get_customer(actor, rfc.tenant_id) if actor.scope.can_see(rfc.tenant_id) else None
        assert tenant is not None
        values = await self._parse_fields(actor, tenant, changes, problems)
        if problems:
            raise InvalidInput(problems)
        version = expected_version if expected_version is not None else rfc.version
        if version != rfc.version:
            raise StaleVersion("RFC", rfc.key, rfc.version)
        now = self.clock.now()
        updated = replace(rfc, **values, version=rfc.version + 1, updated_at=now)
        changed = {
            k: (_plain(getattr(rfc, k)), _plain(getattr(updated, k)))
            for k in values
            if getattr(rfc, k) != getattr(updated, k)
        }
        async with atomic(cmdb_repo.engine()):
            if not await repo.update_rfc(updated, version):
                current = await repo.current_version(rfc.id)
                raise StaleVersion("RFC", rfc.key, current[0] if current else version)
            if "ci_ids" in values:
                await repo.replace_cis(rfc.id, updated.ci_ids)
            await self._record(
                updated,
                [
                    Event(
                        "updated",
                        actor.person_id,
                        actor.username,
                        now,
                        "",
                        {
                            "before": {k: v[0] for k, v in changed.items()},
                            "after": {k: v[1] for k, v in changed.items()},
                        },
                    )
                ],
            )
        return updated

    # --- impact ----------------------------------------------------------------------------

    async def compute_impact(self, rfc: RFC, adjustments: Sequence[Mapping[str, Any]] = ()) -> RFCImpact:
        """Impact from the CI graph now: everything downstream of the affected CIs (what is hit
        if they change or fail), plus CIs added by hand, minus CIs removed by hand."""
        index = await self.cmdb.graph.current()
        roots = [ci for ci in rfc.ci_ids if index.has_node(ci)]
        impacted = set(index.impact_many(roots, "down")) if roots else set()
        for adjustment in adjustments:
            if adjustment["action"] == "add":
                impacted.add(int(adjustment["ci"]))
            else:
                impacted.discard(int(adjustment["ci"]))
        cis = await cmdb_repo.cis_by_ids(impacted)
        provider = await self.cmdb.provider()
        summary = summarize(
            {ci_id: (ci.ci_class, ci.criticality, ci.tenant_id) for ci_id, ci in cis.items()},
            provider_tenant_id=provider.id,
        )
        tenant = (await cmdb_repo.customers_by_ids([rfc.tenant_id]))[rfc.tenant_id]
        thresholds = ImpactThresholds.from_terms(tenant.sla)
        impact_class = classify(summary, thresholds)
        needs_committee = committee_required(impact_class, rfc.type)
        failed = await repo.outcomes_on_cis(list(rfc.ci_ids), [RFCState.FAILED.value, RFCState.BACKED_OUT.value])
        now = self.clock.now()
        lead = rfc.planned_start - now if rfc.planned_start else None
        incidents = await self.incident_history.incidents_on(list(rfc.ci_ids), now - INCIDENT_LOOKBACK)
        risk = assess(summary, impact_class, rfc.type, lead, failed, incidents)
        ordered = sorted(cis, key=lambda ci_id: (-cis[ci_id].criticality.weight, ci_id))
        return RFCImpact(
            cis=tuple(ordered[:MAX_IMPACT_LISTED]),
            services=tuple(summary.services[:MAX_IMPACT_LISTED]),
            customers=tuple(summary.customers),
            impact_class=impact_class.value,
            committee_required=needs_committee,
            risk={
                "score": risk.score,
                "level": risk.level,
                "factors": [{"name": f.name, "points": f.points, "detail": f.detail} for f in risk.factors],
            },
            frozen=False,
            computed_at=now,
            adjustments=tuple(dict(a) for a in adjustments),
            total=len(cis),
        )

    async def impact(self, actor: Actor, ref: int | str) -> RFCImpact:
        rfc, extra = await self._load(actor, ref)
        if rfc.impact_frozen and extra["impact"]:
            return RFCImpact.from_json(extra["impact"])
        return await self.compute_impact(rfc, extra["impact_adjustments"])

    async def adjust_impact(
        self, actor: Actor, ref: int | str, ci_ref: int | str, action: str, reason: str
    ) -> RFCImpact:
        """People may add or remove CIs from the impacted set by hand, with a reason; the
        adjustments are kept apart from the computed set and shown with it."""
        from cmdb.errors import Forbidden

        if not actor.has_any(Role.CHANGE_MANAGER, Role.ENGINEER):
            raise Forbidden("Only change managers and engineers adjust an RFC's impact.")
        rfc, extra = await self._load(actor, ref)
        problems = []
        if action not in ("add", "remove"):
            problems.append(FieldProblem("action", "must be add or remove"))
        if not reason or not reason.strip():
            problems.append(FieldProblem("reason", "is required"))
        ci = await self.cmdb.get_ci(actor, ci_ref)
        if problems:
            raise InvalidInput(problems)
        adjustments = [
            *extra["impact_adjustments"],
            {
                "action": action,
                "ci": ci.id,
                "reason": reason.strip(),
                "by": actor.username,
                "at": self.clock.now().isoformat(),
            },
        ]
        impact = await self.compute_impact(rfc, adjustments)
        frozen = replace(impact, frozen=rfc.impact_frozen)
        now = self.clock.now()
        updated = replace(rfc, version=rfc.version + 1, updated_at=now)
        async with atomic(cmdb_repo.engine()):
            extra_values: dict[str, Any] = {"impact_adjustments": _dumps(adjustments)}
            if rfc.impact_frozen:
                extra_values["impact"] = _dumps(frozen.as_json())
            if not await repo.update_rfc(updated, rfc.version, extra_values):
                current = await repo.current_version(rfc.id)
                raise StaleVersion("RFC", rfc.key, current[0] if current else rfc.version)
            await self._record(
                updated,
                [
                    Event(
                        "impact_adjusted",
                        actor.person_id,
                        actor.username,
                        now,
                        reason,
                        {"action": action, "ci": ci.id, "ci_name": ci.name},
                    )
                ],
            )
        return frozen

    # --- the workflow ----------------------------------------------------------------------

    async def act(
        self,
        actor: Actor,
        ref: int | str,
        action: str,
        params: Mapping[str, Any],
        *,
        expected_version: int | None = None,
    ) -> RFC:
        rfc, extra = await self._load(actor, ref)
        if expected_version is not None and expected_version != rfc.version:
            raise StaleVersion("RFC", rfc.key, rfc.version)
        row = TRANSITIONS.get(action)
        if row is None:
            raise InvalidInput.field("action", f"unknown action {action!r}; known: {', '.join(TRANSITIONS)}")
        inputs = {k: v for k, v in params.items() if k in {*row.needs, *row.accepts, "comment"}}
        unknown = sorted(set(params) - {*row.needs, *row.accepts, "comment"})
        if unknown:
            raise InvalidInput([FieldProblem(name, f"is not an input of {action}") for name in unknown])
        facts: dict[str, Any] = {}
        now = self.clock.now()
        impact: RFCImpact | None = None
        if "committee_required" in row.facts or action == "authorize":
            impact = (
                RFCImpact.from_json(extra["impact"])
                if rfc.impact_frozen and extra["impact"]
                else await self.compute_impact(rfc, extra["impact_adjustments"])
            )
            facts["committee_required"] = impact.committee_required
        if "votes" in row.facts:
            tenant = (await cmdb_repo.customers_by_ids([rfc.tenant_id]))[rfc.tenant_id]
            existing = {v["member"]: v["vote"] for v in await repo.votes(rfc.id)}
            if actor.person_id is not None and "vote" in inputs:
                with contextlib.suppress(ValueError):  # the workflow names the field and the reason
                    existing[actor.person_id] = VoteChoice(inputs["vote"])
            facts["votes"] = existing
            facts["rule"] = DecisionRule.from_terms(tenant.sla.get("committee_rule"))
        if "schedule_violations" in row.facts:
            facts["schedule_violations"] = await self._schedule_violations(rfc, inputs)
        new, events = transition(rfc, action, actor, now, **inputs, **facts)
        extra_values: dict[str, Any] = {}
        if action == "authorize":
            assert impact is not None
            extra_values["impact"] = _dumps(replace(impact, frozen=True).as_json())
        async with atomic(cmdb_repo.engine()):
            if not await repo.update_rfc(new, rfc.version, extra_values):
                current = await repo.current_version(rfc.id)
                version, state = current if current else (rfc.version, rfc.state.value)
                raise Conflict(
                    f"{rfc.key} changed while you were acting (now {state}, version {version}); reload it.",
                    state=state,
                )
            if action == "vote" and actor.person_id is not None:
                await repo.record_vote(
                    rfc.id, actor.person_id, str(inputs["vote"]), str(inputs.get("comment", "")), now
                )
            # History names people by username everywhere (the workflow's events carry display names).
            await self._record(new, [replace(e, actor_name=actor.username) for e in events])
        return new

    async def _schedule_violations(self, rfc: RFC, inputs: Mapping[str, Any]) -> list[str]:
        problems: list[FieldProblem] = []
        start = _moment(inputs.get("planned_start"), "planned_start", problems)
        end = _moment(inputs.get("planned_end"), "planned_end", problems)
        if problems or start is None or end is None or end <= start:
            return []  # the workflow reports missing or inverted times by field
        records = await cmdb_repo.windows_for(rfc.tenant_id, list(rfc.ci_ids))
        cis = await cmdb_repo.cis_by_ids(rfc.ci_ids)
        customer_wide = [ChangeWindow.from_dict(_window_dict(w)) for w in records if w.ci_id is None]
        windows_by_ci: dict[str, list[ChangeWindow]] = {}
        for ci_id in rfc.ci_ids:
            own = [ChangeWindow.from_dict(_window_dict(w)) for w in records if w.ci_id == ci_id]
            windows_by_ci[cis[ci_id].name if ci_id in cis else str(ci_id)] = own or customer_wide
        blackouts = [
            Blackout(start=b.start, end=b.end, reason=b.reason)
            for b in await cmdb_repo.blackouts_for(rfc.tenant_id)
            if b.ci_id is None or b.ci_id in rfc.ci_ids
        ]
        return [v.detail for v in check_schedule(start, end, windows_by_ci, blackouts)]

    async def _record(self, rfc: RFC, events: Sequence[Event]) -> None:
        """The RFC's timeline, and its outcomes archived in the history of every affected CI."""
        rows = []
        for event in events:
            common: dict[str, Any] = {
                "tenant_id": rfc.tenant_id,
                "entity": "rfc",
                "entity_id": rfc.id,
                "actor_id": event.actor_id,
                "actor_name": event.actor_name,
                "at": event.at,
                "rfc": rfc.key,
                "comment": event.comment,
            }
            rows.append(
                cmdb_repo.history_row(action=event.kind, after={**event.data, "state": rfc.state.value}, **common)
            )
            if event.kind in ARCHIVED_EVENTS:
                summary = {"rfc": rfc.key, "title": rfc.title, "state": rfc.state.value, "outcome": event.kind}
                rows += [
                    cmdb_repo.history_row(action=f"rfc_{event.kind}", ci_id=ci, after=summary, **common)
                    for ci in rfc.ci_ids
                ]
        await cmdb_repo.append_history(rows)

    # --- the change manager's day ----------------------------------------------------------

    async def queue(self, actor: Actor, limit: int = 100) -> list[tuple[RFC, list[str]]]:
        """What waits for the change managers: submitted RFCs to screen, authorized ones to
        approve or refer, approved ones to schedule; by priority, then oldest first."""
        waiting = [RFCState.SUBMITTED.value, RFCState.AUTHORIZED.value, RFCState.APPROVED.value]
        rows, _ = await repo.list_rfcs(actor.scope, states=waiting, limit=min(limit * 5, 500), oldest_first=True)
        order = {p: i for i, p in enumerate((Priority.CRITICAL, Priority.HIGH, Priority.MEDIUM, Priority.LOW))}
        ranked = sorted((rfc for rfc, _ in rows), key=lambda r: (order[r.priority], r.created_at))
        return [(rfc, allowed_actions(rfc, actor)) for rfc in ranked[:limit]]

    async def conflicts(
        self, actor: Actor, start: dt.datetime, end: dt.datetime, depth: int | None = 3
    ) -> list[tuple[RFC, RFC, ConflictPair]]:
        """Pairs of scheduled RFCs whose windows overlap and whose impacted sets (the affected
        CIs and everything within `depth` downstream) share a CI."""
        if end <= start:
            raise InvalidInput.field("to", "must be after from")
        rfcs = await repo.scheduled_in(start, end, SCHEDULED_STATES)
        index = await self.cmdb.graph.current()
        changes = []
        for rfc in rfcs:
            roots = [ci for ci in rfc.ci_ids if index.has_node(ci)]
            impacted = frozenset(index.impact_many(roots, "down", depth=depth)) if roots else frozenset()
            assert rfc.planned_start and rfc.planned_end
            changes.append(ScheduledChange(rfc.id, rfc.planned_start, rfc.planned_end, impacted))
        by_id = {rfc.id: rfc for rfc in rfcs}
        scope = actor.scope
        return [
            (by_id[pair.a], by_id[pair.b], pair)
            for pair in find_conflicts(changes)
            if scope.can_see(by_id[pair.a].tenant_id) and scope.can_see(by_id[pair.b].tenant_id)
        ]


def _window_dict(record: Any) -> dict[str, Any]:
    return {
        "name": record.name,
        "days": list(record.days),
        "start": record.start,
        "duration_minutes": record.duration_minutes,
        "timezone": record.timezone,
    }


def _moment(raw: Any, name: str, problems: list[FieldProblem]) -> dt.datetime | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, dt.datetime):
        value = raw
    elif isinstance(raw, str):
        try:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            problems.append(FieldProblem(name, "must be a date and time in ISO 8601 with an offset"))
            return None
    else:
        problems.append(FieldProblem(name, "must be a date and time in ISO 8601 with an offset"))
        return None
    if value.tzinfo is None:
        problems.append(FieldProblem(name, "needs a UTC offset, e.g. 2026-11-21T22:00:00+00:00"))
        return None
    return value.astimezone(dt.UTC)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "value"):
        return value.value
    return value


__all__ = ["CI", "CIClass", "ChangeService", "Criticality", "RFCAuthority", "RFCImpact", "RFCView", "Scope"]
