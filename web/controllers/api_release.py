"""The release API: releases, their workflow actions and history, and what is installed on a CI."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED

from cmdb.models import Actor
from cmdb.services import CMDBService
from release.models import Deployment, Release, ReleaseTest
from release.services import ReleaseService, ReleaseView
from web.deps import expected_version, json_object, parse_ref
from web.presenters import history_json

Limit = Annotated[int, Parameter(ge=1, le=500)]
Offset = Annotated[int, Parameter(ge=0)]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def test_json(test: ReleaseTest) -> dict[str, Any]:
    return {
        "id": test.id,
        "round": test.round,
        "name": test.name,
        "result": test.result.value,
        "covers": list(test.covers),
        "negative_effects": test.negative_effects,
        "recorded_by": test.recorded_by,
        "recorded_at": test.recorded_at.isoformat(),
        "review": (
            {
                "outcome": test.review.value,
                "justification": test.review_justification,
                "by": test.reviewed_by,
                "at": _iso(test.reviewed_at),
            }
            if test.review is not None
            else None
        ),
    }


def deployment_json(row: Deployment, release_keys: dict[int, str], ci_names: dict[int, str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "release": row.release_id,
        "release_key": release_keys.get(row.release_id),
        "ci": row.ci_id,
        "ci_name": ci_names.get(row.ci_id),
        "rfc": row.rfc_id,
        "version": row.version,
        "deployed_at": row.deployed_at.isoformat(),
        "deployed_by": row.deployed_by,
        "outcome": row.outcome.value,
    }


def release_summary_json(release: Release, customer_keys: dict[int, str], rfc_keys: dict[int, str]) -> dict[str, Any]:
    return {
        "id": release.id,
        "key": release.key,
        "customer": customer_keys.get(release.tenant_id, release.tenant_id),
        "title": release.title,
        "description": release.description,
        "state": release.state.value,
        "rfcs": list(release.rfc_ids),
        "rfc_keys": [rfc_keys.get(i) for i in release.rfc_ids],
        "test_environment": release.test_environment_id,
        "represents": list(release.represents),
        "test_round": release.test_round,
        "created_at": release.created_at.isoformat(),
        "approved_at": _iso(release.approved_at),
        "deploy_started_at": _iso(release.deploy_started_at),
        "deployed_at": _iso(release.deployed_at),
        "backed_out_at": _iso(release.backed_out_at),
        "backout_reason": release.backout_reason or None,
        "watch_days": release.watch_days,
        "watch_until": _iso(release.watch_until),
        "version": release.version,
    }


def release_json(view: ReleaseView) -> dict[str, Any]:
    release = view.release
    rfc_keys = {r.id: r.key for r in view.rfcs}
    body = release_summary_json(release, {release.tenant_id: view.customer_key}, rfc_keys)
    tests = [test_json(t) for t in view.tests]
    names = dict(view.ci_names)
    body.update(
        test_environment_name=view.test_environment.name if view.test_environment else None,
        tests=tests,
        negative_effects=[
            {
                "test": t["id"],
                "test_name": t["name"],
                "round": t["round"],
                "effects": t["negative_effects"],
                "review": t["review"],
            }
            for t in tests
            if t["negative_effects"].strip()
        ],
        requirements=[
            {
                "text": r.text,
                "rfcs": list(r.rfc_keys),
                "satisfied": r.satisfied,
                "test": r.test_id,
                "test_name": r.test_name,
            }
            for r in view.evidence.requirements
        ],
        missing_for_approval=list(view.evidence.missing),
        has_critical_patch=view.has_critical_patch,
        deployments=[deployment_json(d, {release.id: release.key}, names) for d in view.deployments],
        allowed_actions=list(view.allowed),
    )
    return body


class ReleaseController(Controller):
    path = "/api/releases"
    tags = ["releases"]

    @get("/")
    async def list_releases(
        self,
        releases: ReleaseService,
        cmdb: CMDBService,
        actor: Actor,
        customer: str | None = None,
        state_filter: Annotated[str | None, Parameter(query="state", description="comma-separated states")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        items, total = await releases.list_releases(
            actor,
            customer=parse_ref(customer) if customer else None,
            states=[s for s in state_filter.split(",") if s] if state_filter else None,
            limit=limit,
            offset=offset,
        )
        keys = await cmdb.customer_keys({r.tenant_id for r in items})
        rfc_keys = await releases.rfc_keys([i for r in items for i in r.rfc_ids])
        return {"items": [release_summary_json(r, keys, rfc_keys) for r in items], "total": total}

    @post("/", status_code=HTTP_201_CREATED)
    async def create_release(self, releases: ReleaseService, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
        release = await releases.create(actor, data)
        return release_json(await releases.get(actor, release.id))

    @get("/{ref:str}")
    async def get_release(self, releases: ReleaseService, actor: Actor, ref: str) -> dict[str, Any]:
        return release_json(await releases.get(actor, parse_ref(ref)))

    @get("/{ref:str}/history", summary="Every change to the release, oldest first")
    async def history(self, releases: ReleaseService, actor: Actor, ref: str) -> dict[str, Any]:
        entries = await releases.history(actor, parse_ref(ref))
        return {"items": [history_json(e) for e in entries], "total": len(entries)}

    @post(
        "/{ref:str}/actions/{action:str}",
        status_code=200,
        summary="add-rfc, remove-rfc, set-test-environment, start-testing, record-test, conclude-testing, "
        "review-effect, approve, deploy, complete, back-out, cancel",
    )
    async def act(
        self, releases: ReleaseService, actor: Actor, ref: str, action: str, request: Request[Any, Any, Any]
    ) -> dict[str, Any]:
        body = await json_object(request)
        version = expected_version(request, body)
        release = await releases.act(actor, parse_ref(ref), action, body, expected_version=version)
        return release_json(await releases.get(actor, release.id))


@get("/api/cis/{ref:str}/deployments", tags=["releases"], summary="What releases installed on this CI, newest first")
async def ci_deployments(
    releases: ReleaseService, actor: Actor, ref: str, limit: Limit = 50, offset: Offset = 0
) -> dict[str, Any]:
    ci, rows, keys, total = await releases.deployments_on_ci(actor, parse_ref(ref), limit=limit, offset=offset)
    return {"ci": ci.id, "items": [deployment_json(d, keys, {ci.id: ci.name}) for d in rows], "total": total}


HANDLERS: list[Any] = [ReleaseController, ci_deployments]
