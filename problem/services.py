"""Problem management use cases: raise and work problems, link incidents, record known errors,
raise the RFC that removes the cause, and trend analysis that proposes problems.

Each action loads the problem, works out what the pure workflow cannot know (the incident to
link, the RFC raised), calls `problem.workflow.transition`, and persists the result with a
conditional update in one transaction, appending every event to the history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, cast

from change.services import ChangeService
from cmdb import repository as cmdb_repo
from cmdb.db import atomic
from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound, StaleVersion
from cmdb.models import Actor, HistoryEntry
from cmdb.scheduler import Job
from cmdb.services import Clock, CMDBService, page_bounds, system_actor
from incident.services import IncidentService
from problem import repository as repo
from problem import trends as rules
from problem.models import Event, Problem, ProblemOrigin, ProblemStatus
from problem.workflow import TRANSITIONS, allowed_actions, check, may_act, transition
from release.services import ReleaseService

MAX_TEXT = 20_000
CREATE_FIELDS = ("customer", "title", "description", "incidents", "cis", "root_cause", "workaround")
# Problem events copied into the history of every affected CI, so the next engineer finds them.
ARCHIVED_EVENTS = frozenset({"created", "proposed", "known_error_recorded", "resolved"})
TREND_JOB_EVERY = dt.timedelta(hours=1)
MAX_TREND_DAYS = 366


class WatchPeriodSource(Protocol):
    """What trend analysis needs of release management (``ReleaseService.watch_periods``):
    deployed releases whose watch period overlaps [since, until], each with ``release_id``,
    ``key``, ``tenant_id``, ``deployed_at``, ``watch_until`` and ``ci_ids`` (released CIs and
    their dependents)."""

    async def watch_periods(self, tenant_id: int | None, since: dt.datetime, until: dt.datetime) -> Sequence[Any]: ...


@dataclass(frozen=True)
class ProblemView:
    problem: Problem
    allowed: list[str]


@dataclass(frozen=True)
class TrendReport:
    """Trend analysis for one scope and period; ``as_dict`` is the API's answer."""

    since: dt.datetime
    until: dt.datetime
    days: int
    min_count: int
    rule: rules.SpikeRule
    repeated: rules.Repeated
    spikes: list[rules.Spike]
    incident_keys: Mapping[int, str]
    customer_keys: Mapping[int, str]
    proposals: Mapping[int, tuple[int, str]]
    created: tuple[str, ...] = field(default_factory=tuple)

    def _incidents(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        return [{"id": i, "key": self.incident_keys.get(i)} for i in ids]

    def as_dict(self) -> dict[str, Any]:
        keys = self.customer_keys
        rep = self.repeated
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "days": self.days,
            "min_count": self.min_count,
            "repeated": {
                "by_ci": [
                    {
                        "ci": g.group,
                        "name": g.name,
                        "customer": keys.get(g.tenant_ids[0]) if g.tenant_ids else None,
                        "count": g.count,
                        "incidents": list(g.incident_ids),
                        "incident_keys": [self.incident_keys.get(i) for i in g.incident_ids],
                    }
                    for g in rep.by_ci
                ],
                "by_class": [
                    {
                        "class": g.group,
                        "customers": [keys.get(t) for t in g.tenant_ids],
                        "count": g.count,
                        "incidents": list(g.incident_ids),
                        "incident_keys": [self.incident_keys.get(i) for i in g.incident_ids],
                    }
                    for g in rep.by_class
                ],
                "by_customer": [
                    {
                        "customer": keys.get(int(g.group)),
                        "name": g.name,
                        "count": g.count,
                        "incidents": list(g.incident_ids),
                        "incident_keys": [self.incident_keys.get(i) for i in g.incident_ids],
                    }
                    for g in rep.by_customer
                ],
            },
            "spikes": [
                {
                    "release": s.window.release_id,
                    "key": s.window.key,
                    "customer": keys.get(s.window.tenant_id),
                    "watch_from": s.window.deployed_at.isoformat(),
                    "watch_until": s.window.watch_until.isoformat(),
                    "incidents_in_watch": s.incidents_in_watch,
                    "incidents": list(s.incident_ids),
                    "incident_keys": [self.incident_keys.get(i) for i in s.incident_ids],
                    "days_watched": round(s.days_watched, 3),
                    "rate": round(s.rate, 4),
                    "baseline_incidents": s.baseline_count,
                    "baseline_rate": round(s.baseline_rate, 4),
                    "ratio": round(s.ratio, 2),
                    "flagged": s.flagged,
                    "problem": self.proposals[s.window.release_id][1]
                    if s.window.release_id in self.proposals
                    else None,
                }
                for s in self.spikes
            ],
            "rule": {
                "baseline_days": self.rule.baseline_days,
                "min_incidents": self.rule.min_incidents,
                "ratio": self.rule.ratio,
                "floor_per_day": self.rule.floor_per_day,
            },
            "proposed_now": list(self.created),
        }


def _text(data: Mapping[str, Any], name: str, problems: list[FieldProblem], limit: int = MAX_TEXT) -> str:
    raw = data.get(name)
    if raw is None:
        return ""
    if not isinstance(raw, str):
        problems.append(FieldProblem(name, "must be text"))
        return ""
    if len(raw.strip()) > limit:
        problems.append(FieldProblem(name, f"must be at most {limit:,} characters"))
        return ""
    return raw.strip()


class ProblemService:
    def __init__(
        self,
        clock: Clock,
        cmdb: CMDBService,
        change: ChangeService,
        releases: ReleaseService,
        incidents: IncidentService,
    ) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.change = change
        self.releases = releases
        self.incidents = incidents
        # Trend analysis reads watch periods through this narrow protocol (tests may swap it).
        self.watch_source: WatchPeriodSource = cast(WatchPeriodSource, releases)
        self.spike_rule = rules.SpikeRule()

    def jobs(self) -> list[Job]:
        return [Job("trend-analysis", TREND_JOB_EVERY, self.analyse_trends)]

    # --- reading ---------------------------------------------------------------------------

    async def _load(self, actor: Actor, ref: int | str) -> Problem:
        found = await repo.get_problem(actor.scope, ref)
        if found is None:
            raise NotFound("problem", ref)
        return found

    async def get(self, actor: Actor, ref: int | str) -> ProblemView:
        problem = await self._load(actor, ref)
        return ProblemView(problem, allowed_actions(problem, actor))

    async def list_problems(
        self,
        actor: Actor,
        *,
        customer: int | str | None = None,
        statuses: Sequence[str] | None = None,
        q: str | None = None,
        incident: int | str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Problem], int]:
        limit, offset = page_bounds(limit, offset)
        unknown = [s for s in statuses or () if s not in ProblemStatus.values()]
        if unknown:
            raise InvalidInput.field(
                "status", f"unknown statuses {', '.join(unknown)}; known: {', '.join(ProblemStatus.values())}"
            )
        tenant_id = (await self.cmdb.get_customer(actor, customer)).id if customer is not None else None
        incident_id: int | None = None
        if incident is not None:
            found = await repo.find_incident(incident)
            if found is None or not actor.scope.can_see(found["tenant_id"]):
                raise NotFound("incident", incident)
            incident_id = found["id"]
        return await repo.list_problems(
            actor.scope,
            tenant_id=tenant_id,
            statuses=statuses,
            q=q,
            incident_id=incident_id,
            limit=limit,
            offset=offset,
        )

    async def history(self, actor: Actor, ref: int | str) -> list[HistoryEntry]:
        problem = await self._load(actor, ref)
        return await cmdb_repo.history_for_entity("problem", problem.id)

    async def linked_incidents(self, actor: Actor, problem: Problem) -> list[dict[str, Any]]:
        """The linked incidents as plain rows (id, key, title, status, priority, created_at)."""
        if not actor.scope.can_see(problem.tenant_id):
            raise NotFound("problem", problem.key)
        return await repo.incidents_by_ids(problem.incident_ids)

    async def ci_names(self, actor: Actor, ci_ids: Sequence[int]) -> dict[int, str]:
        infos = await repo.ci_infos(ci_ids)
        return {i: info.name for i, info in infos.items() if actor.scope.can_see(info.tenant_id)}

    # --- creating --------------------------------------------------------------------------

    async def _incident_ids(
        self, tenant_id: int, tenant_key: str, refs: Any, problems: list[FieldProblem]
    ) -> tuple[list[int], set[int]]:
        if not isinstance(refs, list):
            problems.append(FieldProblem("incidents", "must be a list of incident ids or keys"))
            return [], set()
        ids: list[int] = []
        cis: set[int] = set()
        for ref in refs:
            if isinstance(ref, bool) or not isinstance(ref, int | str):
                problems.append(FieldProblem("incidents", f"{ref!r} is not an incident id or key"))
                continue
            found = await repo.find_incident(int(ref) if isinstance(ref, str) and ref.isdigit() else ref)
            if found is None or found["tenant_id"] != tenant_id:
                problems.append(FieldProblem("incidents", f"no incident {ref} of {tenant_key}"))
                continue
            ids.append(found["id"])
            cis.update(found["ci_ids"])
        return sorted(set(ids)), cis

    async def _ci_ids(self, tenant_id: int, tenant_key: str, refs: Any, problems: list[FieldProblem]) -> list[int]:
        if not isinstance(refs, list):
            problems.append(FieldProblem("cis", "must be a list of CI ids or names"))
            return []
        names = [r for r in refs if isinstance(r, str) and not r.isdigit()]
        numbers = [int(r) for r in refs if not isinstance(r, bool) and (isinstance(r, int) or str(r).isdigit())]
        by_id, by_name = await cmdb_repo.tenant_ci_refs(tenant_id, numbers, names)
        found: list[int] = []
        for ref in refs:
            if isinstance(ref, bool) or not isinstance(ref, int | str):
                problems.append(FieldProblem("cis", f"{ref!r} is not a CI id or name"))
                continue
            ci_id = by_id.get(int(ref)) if isinstance(ref, int) or ref.isdigit() else by_name.get(ref)
            if ci_id is None:
                problems.append(FieldProblem("cis", f"no CI {ref} of {tenant_key}"))
            else:
                found.append(ci_id)
        return sorted(set(found))

    async def create(self, actor: Actor, data: Mapping[str, Any]) -> Problem:
        if not may_act(actor):
            raise Forbidden("Engineers and service managers of the provider raise problems.")
        problems: list[FieldProblem] = []
        problems += [FieldProblem(n, "is not a field of a problem") for n in sorted(set(data) - set(CREATE_FIELDS))]
        customer_ref = data.get("customer")
        tenant = None
        if customer_ref is None or customer_ref == "":
            problems.append(FieldProblem("customer", "is required"))
        elif not isinstance(customer_ref, int | str) or isinstance(customer_ref, bool):
            problems.append(FieldProblem("customer", "must be a customer id or key"))
        else:
            ref = int(customer_ref) if isinstance(customer_ref, str) and customer_ref.isdigit() else customer_ref
            tenant = await cmdb_repo.get_customer(actor.scope, ref)
            if tenant is None:
                problems.append(FieldProblem("customer", f"no customer {customer_ref}"))
        title = _text(data, "title", problems, 300)
        if not title and not any(p.field == "title" for p in problems):
            problems.append(FieldProblem("title", "is required"))
        values = {name: _text(data, name, problems) for name in ("description", "root_cause", "workaround")}
        incident_ids: list[int] = []
        ci_ids: set[int] = set()
        if tenant is not None:
            incident_ids, incident_cis = await self._incident_ids(
                tenant.id, tenant.key, data.get("incidents", []), problems
            )
            ci_ids = set(await self._ci_ids(tenant.id, tenant.key, data.get("cis", []), problems))
            ci_ids |= await self._tenant_cis(tenant.id, incident_cis)
        if problems:
            raise InvalidInput(problems)
        assert tenant is not None
        now = self.clock.now()
        problem = Problem(
            id=0,
            key="",
            tenant_id=tenant.id,
            title=title,
            status=ProblemStatus.OPEN,
            origin=ProblemOrigin.MANUAL,
            created_at=now,
            updated_at=now,
            incident_ids=tuple(incident_ids),
            ci_ids=tuple(sorted(ci_ids)),
            created_by=actor.person_id,
            description=values["description"],
            root_cause=values["root_cause"],
            workaround=values["workaround"],
        )
        async with atomic(repo.engine()):
            key = await self._next_key(now)
            problem_id = await repo.insert_problem(problem, key)
            assert problem_id is not None
            problem = replace(problem, id=problem_id, key=key)
            event = Event("created", actor.person_id, actor.username, now, "", {"key": key, "to": "open"})
            await self._record(problem, [event], linked=problem.incident_ids)
        return problem

    async def _tenant_cis(self, tenant_id: int, ci_ids: Sequence[int] | set[int]) -> set[int]:
        infos = await repo.ci_infos(ci_ids)
        return {i for i, info in infos.items() if info.tenant_id == tenant_id}

    @staticmethod
    async def _next_key(now: dt.datetime) -> str:
        number = await cmdb_repo.next_in_sequence(f"PRB-{now.year}")
        return f"PRB-{now.year}-{number:04d}"

    # --- the workflow ----------------------------------------------------------------------

    async def act(
        self,
        actor: Actor,
        ref: int | str,
        action: str,
        params: Mapping[str, Any],
        *,
        expected_version: int | None = None,
    ) -> Problem:
        problem = await self._load(actor, ref)
        if expected_version is not None and expected_version != problem.version:
            raise StaleVersion("problem", problem.key, problem.version)
        check(problem, action, actor)
        inputs = dict(params)
        facts: dict[str, Any] = {}
        now = self.clock.now()
        if action == "link-incident":
            incident_ref = inputs.pop("incident", None)
            if incident_ref is None or incident_ref == "" or isinstance(incident_ref, bool):
                raise InvalidInput.field("incident", "is required: the id or key of an incident of the same customer")
            if isinstance(incident_ref, str) and incident_ref.isdigit():
                incident_ref = int(incident_ref)
            found = await repo.find_incident(incident_ref) if isinstance(incident_ref, int | str) else None
            if found is None or found["tenant_id"] != problem.tenant_id:
                raise InvalidInput.field("incident", f"no incident {incident_ref} of this problem's customer")
            facts.update(
                incident_id=found["id"],
                incident_key=found["key"],
                incident_ci_ids=sorted(await self._tenant_cis(problem.tenant_id, found["ci_ids"])),
            )
        async with atomic(repo.engine()):
            if action == "raise-rfc":
                # Validate the inputs first, so a refusal creates no RFC; the transaction undoes
                # the RFC anyway if anything after it fails.
                transition(problem, action, actor, now, inputs, {"rfc_id": 0, "rfc_key": "", "rfc_state": "draft"})
                rfc = await self.change.create(actor, await self._rfc_data(problem))
                facts.update(rfc_id=rfc.id, rfc_key=rfc.key, rfc_state=rfc.state.value)
            new, events = transition(problem, action, actor, now, inputs, facts)
            links_changed = new.incident_ids != problem.incident_ids or new.ci_ids != problem.ci_ids
            if not await repo.update_problem(new, problem.version, links_changed):
                current = await repo.current_version(problem.id)
                version, status = current if current else (problem.version, problem.status.value)
                raise Conflict(
                    f"{problem.key} changed while you were acting (now {status}, version {version}); reload it.",
                    state=status,
                )
            linked = (facts["incident_id"],) if action == "link-incident" else ()
            await self._record(new, events, linked=linked)
        return new

    async def _rfc_data(self, problem: Problem) -> dict[str, Any]:
        cis = sorted(await self._tenant_cis(problem.tenant_id, problem.ci_ids))
        title = f"Remove the cause of {problem.key}: {problem.title}"
        return {
            "customer": problem.tenant_id,
            "title": title[:300],
            "cis": cis,
            "origin": "problem",
            "origin_ref": problem.key,
            "need": problem.root_cause or problem.description or problem.title,
            "desired_result": f"The root cause of {problem.key} is removed and its incidents do not recur.",
        }

    async def _record(self, problem: Problem, events: Sequence[Event], linked: Sequence[int] = ()) -> None:
        """The problem's history; some events archived on its CIs; links noted on incidents."""
        rows = []
        for event in events:
            common: dict[str, Any] = {
                "tenant_id": problem.tenant_id,
                "actor_id": event.actor_id,
                "actor_name": event.actor_name,
                "at": event.at,
                "rfc": problem.rfc_key,
                "comment": event.comment,
            }
            after = {**event.data, "status": problem.status.value}
            rows.append(
                cmdb_repo.history_row(entity="problem", entity_id=problem.id, action=event.kind, after=after, **common)
            )
            if event.kind in ARCHIVED_EVENTS:
                summary = {"problem": problem.key, "title": problem.title, "status": problem.status.value}
                rows += [
                    cmdb_repo.history_row(
                        entity="problem",
                        entity_id=problem.id,
                        action=f"problem_{event.kind}",
                        ci_id=ci,
                        after=summary,
                        **common,
                    )
                    for ci in problem.ci_ids
                ]
        for incident_id in linked:
            rows.append(
                cmdb_repo.history_row(
                    entity="incident",
                    entity_id=incident_id,
                    action="problem_linked",
                    after={"problem": problem.key, "title": problem.title},
                    tenant_id=problem.tenant_id,
                    actor_id=events[0].actor_id if events else None,
                    actor_name=events[0].actor_name if events else "system",
                    at=events[0].at if events else self.clock.now(),
                )
            )
        await cmdb_repo.append_history(rows)

    # --- trends ----------------------------------------------------------------------------

    async def trends(
        self, actor: Actor, *, customer: int | str | None = None, days: int = 30, min_count: int = 3
    ) -> TrendReport:
        """Repeated incidents and post-release spikes for what the actor may see. A customer
        contact sees their own tenant only. Flagged spikes get their proposed problem here."""
        problems = []
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TREND_DAYS:
            problems.append(FieldProblem("days", f"must be a whole number from 1 to {MAX_TREND_DAYS}"))
        if isinstance(min_count, bool) or not isinstance(min_count, int) or not 1 <= min_count <= 10_000:
            problems.append(FieldProblem("min_count", "must be a whole number from 1 to 10,000"))
        if problems:
            raise InvalidInput(problems)
        tenant_id: int | None = None
        if customer is not None:
            tenant_id = (await self.cmdb.get_customer(actor, customer)).id
        elif not actor.is_provider_staff:
            tenant_id = actor.tenant_id
        return await self._analyse(tenant_id, days, min_count)

    async def analyse_trends(self, now: dt.datetime) -> int:
        """The scheduler's job: propose problems for every flagged spike; answers how many."""
        report = await self._analyse(None, 30, 3)
        return len(report.created)

    async def _analyse(self, tenant_id: int | None, days: int, min_count: int) -> TrendReport:
        now = self.clock.now()
        since = now - dt.timedelta(days=days)
        rule = self.spike_rule
        incidents = await repo.incidents_between(since, now, tenant_id=tenant_id)
        periods = await self.watch_source.watch_periods(tenant_id, since, now)
        windows = [
            rules.WatchWindow(
                release_id=int(p.release_id),
                key=str(p.key),
                tenant_id=int(p.tenant_id),
                deployed_at=p.deployed_at,
                watch_until=p.watch_until or now,
                ci_ids=tuple(p.ci_ids),
            )
            for p in periods
            if p.deployed_at is not None and (tenant_id is None or p.tenant_id == tenant_id)
        ]
        found: list[rules.Spike] = []
        seen_incidents: dict[int, rules.IncidentRow] = {i.id: i for i in incidents}
        for window in windows:
            rows = await repo.incidents_between(
                window.deployed_at - dt.timedelta(days=rule.baseline_days),
                min(window.watch_until, now),
                tenant_id=window.tenant_id,
                ci_ids=window.ci_ids,
            )
            seen_incidents.update({r.id: r for r in rows})
            found.append(rules.spike(window, rows, now, rule))
        found.sort(key=lambda s: (not s.flagged, -s.window.deployed_at.timestamp(), s.window.key))
        cis = await repo.ci_infos({c for i in incidents for c in i.ci_ids})
        tenants = {i.tenant_id for i in incidents} | {w.tenant_id for w in windows}
        customers = await cmdb_repo.customers_by_ids(tenants)
        repeated = rules.repeated(incidents, cis, min_count, {t: c.name for t, c in customers.items()})
        created = await self._propose([s for s in found if s.flagged], cis, now)
        proposals = await repo.proposals_for_releases([w.release_id for w in windows])
        return TrendReport(
            since=since,
            until=now,
            days=days,
            min_count=min_count,
            rule=rule,
            repeated=repeated,
            spikes=found,
            incident_keys={i: r.key for i, r in seen_incidents.items()},
            customer_keys={t: c.key for t, c in customers.items()},
            proposals=proposals,
            created=tuple(created),
        )

    async def _propose(
        self, flagged: Sequence[rules.Spike], cis: Mapping[int, rules.CIInfo], now: dt.datetime
    ) -> list[str]:
        """One proposed problem per flagged release, ever: created here in one transaction;
        a release that already has its proposal is skipped (the unique index backs this)."""
        if not flagged:
            return []
        existing = await repo.proposals_for_releases([s.window.release_id for s in flagged])
        todo = [s for s in flagged if s.window.release_id not in existing]
        if not todo:
            return []
        system = system_actor(await self.cmdb.provider())
        created: list[str] = []
        async with atomic(repo.engine()):
            for spike in todo:
                window = spike.window
                incident_cis = await repo.incident_cis(spike.incident_ids)
                watched = set(window.ci_ids)
                touched = {c for ids in incident_cis.values() for c in ids if c in watched}
                ci_ids = await self._tenant_cis(window.tenant_id, touched)
                problem = Problem(
                    id=0,
                    key="",
                    tenant_id=window.tenant_id,
                    title=f"Incident spike after release {window.key}"[:300],
                    status=ProblemStatus.OPEN,
                    origin=ProblemOrigin.TREND,
                    created_at=now,
                    updated_at=now,
                    description=(
                        f"{spike.incidents_in_watch} incidents on the CIs of {window.key} and their dependents "
                        f"in {spike.days_watched:.1f} days of its watch period: {spike.rate:.2f} a day against "
                        f"a baseline of {spike.baseline_rate:.2f} a day over the {self.spike_rule.baseline_days} "
                        f"days before deployment ({spike.ratio:.1f} times the reference rate)."
                    ),
                    incident_ids=spike.incident_ids,
                    ci_ids=tuple(sorted(ci_ids)),
                    source_release_id=window.release_id,
                )
                key = await self._next_key(now)
                problem_id = await repo.insert_problem(problem, key)
                if problem_id is None:  # another process proposed it a moment ago
                    continue
                problem = replace(problem, id=problem_id, key=key)
                data = {
                    "key": key,
                    "to": "open",
                    "release": window.key,
                    "release_id": window.release_id,
                    "incidents_in_watch": spike.incidents_in_watch,
                    "rate": round(spike.rate, 4),
                    "baseline_rate": round(spike.baseline_rate, 4),
                    "ratio": round(spike.ratio, 2),
                }
                event = Event("proposed", system.person_id, system.username, now, "", data)
                await self._record(problem, [event], linked=problem.incident_ids)
                # Flag the release in its own history, so its page and audit show the spike.
                await cmdb_repo.append_history(
                    [
                        cmdb_repo.history_row(
                            tenant_id=window.tenant_id,
                            entity="release",
                            entity_id=window.release_id,
                            action="incident_spike_flagged",
                            actor_id=None,
                            actor_name=system.username,
                            at=now,
                            after={**data, "problem": key},
                            comment=f"Incident spike in the watch period; problem {key} proposed.",
                        )
                    ]
                )
                created.append(key)
        return created


__all__ = ["TRANSITIONS", "ProblemService", "ProblemView", "TrendReport", "WatchPeriodSource"]
