"""The problem API: problems, their workflow actions and history, and trend analysis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED

from cmdb.models import Actor
from cmdb.services import CMDBService
from problem.models import Problem
from problem.services import ProblemService
from problem.workflow import allowed_actions
from web.deps import expected_version, json_object, parse_ref
from web.presenters import history_json

Limit = Annotated[int, Parameter(ge=1, le=500)]
Offset = Annotated[int, Parameter(ge=0)]


def problem_json(
    problem: Problem, customer_keys: Mapping[int, str], allowed: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": problem.id,
        "key": problem.key,
        "customer": customer_keys.get(problem.tenant_id),
        "title": problem.title,
        "description": problem.description,
        "status": problem.status.value,
        "origin": problem.origin.value,
        "incidents": list(problem.incident_ids),
        "cis": list(problem.ci_ids),
        "root_cause": problem.root_cause,
        "workaround": problem.workaround,
        "known_error": problem.known_error,
        "rfc": problem.rfc_id,
        "rfc_key": problem.rfc_key,
        "rfc_state": problem.rfc_state,
        "resolution": problem.resolution,
        "source_release": problem.source_release_id,
        "created_by": problem.created_by,
        "version": problem.version,
        "created_at": problem.created_at.isoformat(),
        "updated_at": problem.updated_at.isoformat(),
    }
    if allowed is not None:
        body["allowed_actions"] = allowed
    return body


class ProblemController(Controller):
    path = "/api/problems"
    tags = ["problems"]

    @get("/")
    async def list_problems(
        self,
        problems: ProblemService,
        cmdb: CMDBService,
        actor: Actor,
        customer: str | None = None,
        status_filter: Annotated[str | None, Parameter(query="status", description="comma-separated statuses")] = None,
        incident: str | None = None,
        q: str | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        items, total = await problems.list_problems(
            actor,
            customer=parse_ref(customer) if customer else None,
            statuses=[s for s in status_filter.split(",") if s] if status_filter else None,
            incident=parse_ref(incident) if incident else None,
            q=q,
            limit=limit,
            offset=offset,
        )
        keys = await cmdb.customer_keys({p.tenant_id for p in items})
        return {"items": [problem_json(p, keys, allowed_actions(p, actor)) for p in items], "total": total}

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        description=(
            "Body: customer (key or id), title; optional description, incidents (ids or keys of the "
            "same customer), cis (ids or names), root_cause, workaround."
        ),
    )
    async def create_problem(
        self, problems: ProblemService, cmdb: CMDBService, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        problem = await problems.create(actor, data)
        return problem_json(problem, await cmdb.customer_keys({problem.tenant_id}), allowed_actions(problem, actor))

    @get(
        "/trends",
        summary="Repeated incidents per CI, class and customer; incident spikes after releases",
        description=(
            "Spikes compare the incident rate on a release's CIs (and their dependents) during its "
            "watch period with their rate in the 30 days before deployment. A flagged release gets "
            "one proposed problem (origin trend), created by this analysis if it does not exist yet."
        ),
    )
    async def trends(
        self,
        problems: ProblemService,
        actor: Actor,
        customer: str | None = None,
        days: Annotated[int, Parameter(ge=1, le=366)] = 30,
        min_count: Annotated[int, Parameter(ge=1, le=10_000)] = 3,
    ) -> dict[str, Any]:
        report = await problems.trends(
            actor, customer=parse_ref(customer) if customer else None, days=days, min_count=min_count
        )
        return report.as_dict()

    @get("/{ref:str}")
    async def get_problem(self, problems: ProblemService, cmdb: CMDBService, actor: Actor, ref: str) -> dict[str, Any]:
        view = await problems.get(actor, parse_ref(ref))
        return problem_json(view.problem, await cmdb.customer_keys({view.problem.tenant_id}), view.allowed)

    @get("/{ref:str}/history")
    async def history(self, problems: ProblemService, actor: Actor, ref: str) -> dict[str, Any]:
        entries = await problems.history(actor, parse_ref(ref))
        return {"items": [history_json(e) for e in entries], "total": len(entries)}

    @post("/{ref:str}/actions/{action:str}", status_code=200)
    async def act(
        self,
        problems: ProblemService,
        cmdb: CMDBService,
        actor: Actor,
        ref: str,
        action: str,
        request: Request[Any, Any, Any],
    ) -> dict[str, Any]:
        body = await json_object(request)
        version = expected_version(request, body)
        problem = await problems.act(actor, parse_ref(ref), action, body, expected_version=version)
        return problem_json(problem, await cmdb.customer_keys({problem.tenant_id}), allowed_actions(problem, actor))


HANDLERS: list[Any] = [ProblemController]
