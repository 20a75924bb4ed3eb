"""The change API: RFCs, their workflow actions, impact and scheduling conflicts."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED

from change.services import ChangeService
from cmdb.errors import InvalidInput
from cmdb.models import Actor
from cmdb.services import CMDBService
from web.deps import expected_version, json_object, parse_ref
from web.presenters import history_json, rfc_json

Limit = Annotated[int, Parameter(ge=1, le=500)]
Offset = Annotated[int, Parameter(ge=0)]


class RFCController(Controller):
    path = "/api/rfcs"
    tags = ["changes"]

    @get("/")
    async def list_rfcs(
        self,
        change: ChangeService,
        cmdb: CMDBService,
        actor: Actor,
        customer: str | None = None,
        state_filter: Annotated[str | None, Parameter(query="state", description="comma-separated states")] = None,
        ci: str | None = None,
        q: str | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        items, total = await change.list_rfcs(
            actor,
            customer=parse_ref(customer) if customer else None,
            states=[s for s in state_filter.split(",") if s] if state_filter else None,
            ci=parse_ref(ci) if ci else None,
            q=q,
            limit=limit,
            offset=offset,
        )
        keys = await cmdb.customer_keys({r.tenant_id for r in items})
        return {"items": [rfc_json(r, keys) for r in items], "total": total}

    @post("/", status_code=HTTP_201_CREATED)
    async def create_rfc(
        self, change: ChangeService, cmdb: CMDBService, actor: Actor, data: dict[str, Any]
    ) -> dict[str, Any]:
        rfc = await change.create(actor, data)
        return rfc_json(rfc, await cmdb.customer_keys({rfc.tenant_id}))

    @get("/conflicts", summary="Pairs of scheduled RFCs whose windows and impacted CIs overlap")
    async def conflicts(
        self,
        change: ChangeService,
        cmdb: CMDBService,
        actor: Actor,
        from_: Annotated[dt.datetime | None, Parameter(query="from")] = None,
        to: dt.datetime | None = None,
        depth: Annotated[int, Parameter(ge=0, le=10)] = 3,
    ) -> dict[str, Any]:
        now = change.clock.now()
        start = from_ or now
        end = to or start + dt.timedelta(days=31)
        for name, value in (("from", start), ("to", end)):
            if value.tzinfo is None:
                raise InvalidInput.field(name, "needs a UTC offset")
        pairs = await change.conflicts(actor, start, end, depth=depth or None)
        return {
            "items": [
                {
                    "rfcs": [a.key, b.key],
                    "ids": [a.id, b.id],
                    "shared_cis": list(pair.shared),
                    "shared_count": pair.shared_count,
                    "windows": [
                        [
                            a.planned_start.isoformat() if a.planned_start else None,
                            a.planned_end.isoformat() if a.planned_end else None,
                        ],
                        [
                            b.planned_start.isoformat() if b.planned_start else None,
                            b.planned_end.isoformat() if b.planned_end else None,
                        ],
                    ],
                }
                for a, b, pair in pairs
            ],
            "total": len(pairs),
            "from": start.isoformat(),
            "to": end.isoformat(),
        }

    @get("/catalogue", summary="The standard change catalogue: pre-approved templates")
    async def catalogue(self) -> dict[str, Any]:
        from change.catalogue import CATALOGUE

        items = [
            {
                "key": t.key,
                "title": t.title,
                "description": t.description,
                "plan": t.plan,
                "backout_plan": t.backout_plan,
                "ci_classes": sorted(c.value for c in t.ci_classes),
            }
            for t in CATALOGUE.values()
        ]
        return {"items": items, "total": len(items)}

    @get("/{ref:str}/committee", summary="Suggested committee members, votes so far and the decision rule")
    async def committee(self, change: ChangeService, cmdb: CMDBService, actor: Actor, ref: str) -> dict[str, Any]:
        view = await change.get(actor, parse_ref(ref))
        suggested = await change.suggest_committee(actor, view.rfc.id) if actor.is_provider_staff else []
        votes = await change.votes(actor, view.rfc.id)
        tenant = await cmdb.get_customer(actor, view.rfc.tenant_id)
        from change.workflow import DecisionRule

        return {
            "suggested": [
                {"id": p.id, "username": p.username, "name": p.name, "matching_expertise": m} for p, m in suggested
            ],
            "votes": [
                {"member": v["member"], "vote": v["vote"].value, "comment": v["comment"], "at": v["at"].isoformat()}
                for v in votes
            ],
            "rule": DecisionRule.from_terms(tenant.sla.get("committee_rule")).describe(),
        }

    @get("/{ref:str}")
    async def get_rfc(self, change: ChangeService, cmdb: CMDBService, actor: Actor, ref: str) -> dict[str, Any]:
        view = await change.get(actor, parse_ref(ref))
        body = rfc_json(view.rfc, await cmdb.customer_keys({view.rfc.tenant_id}))
        body["allowed_actions"] = view.allowed
        return body

    @patch("/{ref:str}")
    async def update_rfc(
        self,
        change: ChangeService,
        cmdb: CMDBService,
        actor: Actor,
        ref: str,
        data: dict[str, Any],
        request: Request[Any, Any, Any],
    ) -> dict[str, Any]:
        changes = dict(data)
        version = expected_version(request, changes)
        rfc = await change.update(actor, parse_ref(ref), changes, version)
        return rfc_json(rfc, await cmdb.customer_keys({rfc.tenant_id}))

    @post("/{ref:str}/actions/{action:str}", status_code=200)
    async def act(
        self,
        change: ChangeService,
        cmdb: CMDBService,
        actor: Actor,
        ref: str,
        action: str,
        request: Request[Any, Any, Any],
    ) -> dict[str, Any]:
        body = await json_object(request)
        version = expected_version(request, body)
        rfc = await change.act(actor, parse_ref(ref), action, body, expected_version=version)
        result = rfc_json(rfc, await cmdb.customer_keys({rfc.tenant_id}))
        from change.workflow import allowed_actions

        result["allowed_actions"] = allowed_actions(rfc, actor)
        return result

    @get("/{ref:str}/impact")
    async def impact(self, change: ChangeService, actor: Actor, ref: str) -> dict[str, Any]:
        impact = await change.impact(actor, parse_ref(ref))
        body = impact.as_json()
        if not actor.is_provider_staff:
            # A customer sees their own CIs and how many customers a change touches, not who.
            body["customers"] = [c for c in body["customers"] if c == actor.tenant_id]
        return body

    @post("/{ref:str}/impact/adjustments", status_code=200)
    async def adjust_impact(
        self, change: ChangeService, actor: Actor, ref: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        ci = data.get("ci")
        if ci is None:
            raise InvalidInput.field("ci", "is required")
        impact = await change.adjust_impact(
            actor, parse_ref(ref), ci, str(data.get("action", "")), str(data.get("reason") or "")
        )
        return impact.as_json()

    @get("/{ref:str}/timeline")
    async def timeline(self, change: ChangeService, actor: Actor, ref: str) -> dict[str, Any]:
        entries = await change.timeline(actor, parse_ref(ref))
        return {"items": [history_json(e) for e in entries], "total": len(entries)}


HANDLERS = [RFCController]
