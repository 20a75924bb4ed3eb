"""The CMDB's HTTP API: customers, people, CIs, history, impact, paths, relationships.

Thin on purpose: parse, call a service, render JSON. Rules live in the services.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from cmdb.accounts import Accounts
from cmdb.errors import InvalidInput
from cmdb.models import Actor
from cmdb.services import CIInput, CMDBService, ImpactRow
from web.auth import ADMIN_GUARD, CI_WRITER_GUARD
from web.deps import if_match, parse_ref
from web.presenters import (
    ci_brief,
    ci_json,
    customer_json,
    history_json,
    hop_json,
    person_json,
    relationship_json,
)

Limit = Annotated[int, Parameter(ge=1, le=500, description="Page size, up to 500")]
Offset = Annotated[int, Parameter(ge=0)]


class TokenRequest(msgspec.Struct):
    username: str
    password: str


class CustomerIn(msgspec.Struct, omit_defaults=True):
    key: str | None = None
    name: str | None = None
    timezone: str | None = None
    holiday_region: str | None = None
    calendar: dict[str, Any] | None = None
    sla: dict[str, Any] | None = None


class PersonIn(msgspec.Struct):
    username: str | None = None
    name: str | None = None
    roles: list[str] | None = None
    customer: int | str | None = None
    password: str | None = None
    email: str | None = None
    phone: str | None = None
    availability: str | None = None
    expertise: list[str] | None = None


class CIIn(msgspec.Struct):
    name: str | None = None
    customer: int | str | None = None
    ci_class: str | None = msgspec.field(default=None, name="class")
    status: str = "live"
    criticality: str = "medium"
    description: str = ""
    owner: int | str | None = None
    support: list[int | str] = msgspec.field(default_factory=list)
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)


class RelationshipIn(msgspec.Struct):
    source: int | str | None = None
    target: int | str | None = None
    type: str | None = None
    note: str = ""
    rfc: str | None = None


class WindowIn(msgspec.Struct):
    name: str | None = None
    days: list[int] | None = None
    start: str | None = None
    duration_minutes: int | None = None
    timezone: str | None = None
    ci: int | str | None = None


class BlackoutIn(msgspec.Struct):
    start: dt.datetime
    end: dt.datetime
    reason: str = ""
    ci: int | str | None = None


def _required(**values: Any) -> None:
    missing = [name for name, value in values.items() if value is None or value == ""]
    if missing:
        from cmdb.errors import FieldProblem

        raise InvalidInput([FieldProblem(name, "is required") for name in missing])


class AuthController(Controller):
    path = "/api/auth"
    tags = ["auth"]

    @post(
        "/token", status_code=200, exclude_from_auth=True, summary="Exchange a username and password for a bearer token"
    )
    async def token(self, data: TokenRequest, accounts: Accounts) -> dict[str, Any]:
        token, expires, actor = await accounts.sign_in(data.username, data.password, "api")
        return {"token": token, "expires_at": expires.isoformat(), "username": actor.username}

    @delete("/token", status_code=HTTP_204_NO_CONTENT, summary="Revoke the bearer token of this request")
    async def revoke(self, request: Request[Actor, Any, Any], accounts: Accounts) -> None:
        kind, token = request.auth
        await accounts.sign_out(token, kind)

    @get("/me", summary="Who the token belongs to")
    async def me(self, actor: Actor) -> dict[str, Any]:
        return {
            "id": actor.person_id,
            "username": actor.username,
            "name": actor.name,
            "roles": sorted(r.value for r in actor.roles),
            "provider_staff": actor.is_provider_staff,
        }


class CustomerController(Controller):
    path = "/api/customers"
    tags = ["customers"]

    @get("/")
    async def list_customers(
        self, cmdb: CMDBService, actor: Actor, limit: Limit = 50, offset: Offset = 0
    ) -> dict[str, Any]:
        items, total = await cmdb.list_customers(actor, limit, offset)
        return {"items": [customer_json(c) for c in items], "total": total}

    @post("/", guards=[ADMIN_GUARD], status_code=HTTP_201_CREATED)
    async def create_customer(self, cmdb: CMDBService, actor: Actor, data: CustomerIn) -> dict[str, Any]:
        fields = msgspec.structs.asdict(data)
        return customer_json(await cmdb.create_customer(actor, fields))

    @get("/{ref:str}")
    async def get_customer(self, cmdb: CMDBService, actor: Actor, ref: str) -> dict[str, Any]:
        return customer_json(await cmdb.get_customer(actor, parse_ref(ref)))

    @patch("/{ref:str}", guards=[ADMIN_GUARD])
    async def update_customer(
        self, cmdb: CMDBService, actor: Actor, ref: str, data: dict[str, Any], request: Request[Any, Any, Any]
    ) -> dict[str, Any]:
        version = if_match(request)
        changes = dict(data)
        body_version = changes.pop("version", None)
        if version is None and isinstance(body_version, int):
            version = body_version
        return customer_json(await cmdb.update_customer(actor, parse_ref(ref), changes, version))

    @get("/{ref:str}/windows")
    async def windows(self, cmdb: CMDBService, actor: Actor, ref: str) -> dict[str, Any]:
        windows = await cmdb.windows(actor, parse_ref(ref))
        items = [
            {
                "id": w.id,
                "ci": w.ci_id,
                "name": w.name,
                "days": list(w.days),
                "start": w.start,
                "duration_minutes": w.duration_minutes,
                "timezone": w.timezone,
            }
            for w in windows
        ]
        return {"items": items, "total": len(items)}

    @post("/{ref:str}/windows", status_code=HTTP_201_CREATED)
    async def add_window(self, cmdb: CMDBService, actor: Actor, ref: str, data: WindowIn) -> dict[str, Any]:
        fields = msgspec.structs.asdict(data)
        ci = fields.pop("ci")
        window_id = await cmdb.add_window(actor, parse_ref(ref), {k: v for k, v in fields.items() if v is not None}, ci)
        return {"id": window_id, **fields, "ci": ci}

    @get("/{ref:str}/blackouts")
    async def blackouts(self, cmdb: CMDBService, actor: Actor, ref: str) -> dict[str, Any]:
        items = [
            {"id": b.id, "ci": b.ci_id, "start": b.start.isoformat(), "end": b.end.isoformat(), "reason": b.reason}
            for b in await cmdb.blackouts(actor, parse_ref(ref))
        ]
        return {"items": items, "total": len(items)}

    @post("/{ref:str}/blackouts", status_code=HTTP_201_CREATED)
    async def add_blackout(self, cmdb: CMDBService, actor: Actor, ref: str, data: BlackoutIn) -> dict[str, Any]:
        blackout_id = await cmdb.add_blackout(actor, parse_ref(ref), data.start, data.end, data.reason, data.ci)
        return {"id": blackout_id, "start": data.start.isoformat(), "end": data.end.isoformat(), "reason": data.reason}


class PeopleController(Controller):
    path = "/api/people"
    tags = ["people"]

    @get("/")
    async def list_people(
        self,
        cmdb: CMDBService,
        actor: Actor,
        customer: str | None = None,
        role: str | None = None,
        expertise: str | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        items, total = await cmdb.list_people(
            actor,
            customer=parse_ref(customer) if customer else None,
            role=role,
            expertise=expertise,
            limit=limit,
            offset=offset,
        )
        keys = await cmdb.customer_keys({p.tenant_id for p in items})
        return {"items": [person_json(p, keys) for p in items], "total": total}

    @post("/", guards=[ADMIN_GUARD], status_code=HTTP_201_CREATED)
    async def create_person(self, cmdb: CMDBService, actor: Actor, data: PersonIn) -> dict[str, Any]:
        person = await cmdb.create_person(actor, msgspec.structs.asdict(data))
        return person_json(person, await cmdb.customer_keys({person.tenant_id}))

    @get("/{ref:str}")
    async def get_person(self, cmdb: CMDBService, actor: Actor, ref: str) -> dict[str, Any]:
        person = await cmdb.get_person(actor, parse_ref(ref))
        return person_json(person, await cmdb.customer_keys({person.tenant_id}))


class CIController(Controller):
    path = "/api/cis"
    tags = ["configuration items"]

    @get("/")
    async def list_cis(
        self,
        cmdb: CMDBService,
        actor: Actor,
        customer: str | None = None,
        ci_class: Annotated[str | None, Parameter(query="class")] = None,
        status: str | None = None,
        q: str | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        items, total = await cmdb.list_cis(
            actor,
            customer=parse_ref(customer) if customer else None,
            ci_class=ci_class,
            status=status,
            q=q,
            limit=limit,
            offset=offset,
        )
        keys = await cmdb.customer_keys({ci.tenant_id for ci in items})
        return {"items": [ci_json(ci, keys) for ci in items], "total": total}

    @post("/", guards=[CI_WRITER_GUARD], status_code=HTTP_201_CREATED)
    async def create_ci(self, cmdb: CMDBService, actor: Actor, data: CIIn) -> dict[str, Any]:
        _required(name=data.name, customer=data.customer, **{"class": data.ci_class})
        ci = await cmdb.create_ci(
            actor,
            CIInput(
                name=str(data.name),
                customer=data.customer,  # type: ignore[arg-type]
                ci_class=str(data.ci_class),
                status=data.status,
                criticality=data.criticality,
                description=data.description,
                owner=data.owner,
                support=list(data.support),
                attributes=dict(data.attributes),
            ),
        )
        return ci_json(ci, await cmdb.customer_keys({ci.tenant_id}))

    @get("/audit", summary="Configuration audit: changes to controlled attributes without an approved RFC")
    async def audit(
        self,
        cmdb: CMDBService,
        actor: Actor,
        customer: str | None = None,
        since: dt.datetime | None = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        entries, total = await cmdb.audit(
            actor, customer=parse_ref(customer) if customer else None, since=since, limit=limit, offset=offset
        )
        return {"items": [history_json(e) for e in entries], "total": total}

    @get("/{ref:str}")
    async def get_ci(self, cmdb: CMDBService, actor: Actor, ref: str) -> dict[str, Any]:
        ci = await cmdb.get_ci(actor, parse_ref(ref))
        return ci_json(ci, await cmdb.customer_keys({ci.tenant_id}))

    @patch("/{ref:str}", guards=[CI_WRITER_GUARD])
    async def update_ci(
        self, cmdb: CMDBService, actor: Actor, ref: str, data: dict[str, Any], request: Request[Any, Any, Any]
    ) -> dict[str, Any]:
        changes = dict(data)
        version = if_match(request)
        body_version = changes.pop("version", None)
        if version is None and isinstance(body_version, int):
            version = body_version
        rfc = changes.pop("rfc", None)
        comment = changes.pop("comment", "") or ""
        if "class" in changes:
            raise InvalidInput.field("class", "cannot be changed; create a new CI of the other class")
        ci = await cmdb.update_ci(
            actor, parse_ref(ref), changes, expected_version=version, rfc=rfc, comment=str(comment)
        )
        return ci_json(ci, await cmdb.customer_keys({ci.tenant_id}))

    @get("/{ref:str}/history")
    async def history(
        self, cmdb: CMDBService, actor: Actor, ref: str, limit: Limit = 100, offset: Offset = 0
    ) -> dict[str, Any]:
        ci, entries, total = await cmdb.history(actor, parse_ref(ref), limit, offset)
        return {"ci": ci.id, "items": [history_json(e) for e in entries], "total": total}

    @get("/{ref:str}/relationships")
    async def relationships(self, cmdb: CMDBService, actor: Actor, ref: str) -> dict[str, Any]:
        ci = await cmdb.get_ci(actor, parse_ref(ref))
        rows = await cmdb.relationships_of(actor, ci)
        keys = await cmdb.customer_keys({r.tenant_id for r, _, _ in rows} | {ci.tenant_id})
        items = [
            {**relationship_json(r, keys), "source_ci": ci_brief(s, keys), "target_ci": ci_brief(t, keys)}
            for r, s, t in rows
        ]
        return {"items": items, "total": len(items)}

    @get("/{ref:str}/impact")
    async def impact(
        self,
        cmdb: CMDBService,
        actor: Actor,
        ref: str,
        direction: str = "down",
        depth: int | None = None,
        types: str | None = None,
        limit: Annotated[int, Parameter(ge=1, le=10_000)] = 500,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        result = await cmdb.impact(
            actor,
            parse_ref(ref),
            direction=direction,
            depth=depth,
            types=[t for t in types.split(",") if t] if types else None,
            limit=limit,
            offset=offset,
        )
        keys = await cmdb.customer_keys({r.ci.tenant_id for r in result.items if r.ci} | {result.root.tenant_id})
        return {
            "root": ci_brief_root(result.root, keys),
            "direction": result.direction,
            "depth": result.depth,
            "items": [{"ci": ci_brief(r, keys), "depth": r.depth, "via": r.via} for r in result.items],
            "total": result.total,
        }

    @get("/{ref:str}/path/{other:str}")
    async def dependency_path(
        self, cmdb: CMDBService, actor: Actor, ref: str, other: str, types: str | None = None
    ) -> dict[str, Any]:
        hops = await cmdb.path(
            actor, parse_ref(ref), parse_ref(other), types=[t for t in types.split(",") if t] if types else None
        )
        keys = await cmdb.customer_keys(
            {h.source.ci.tenant_id for h in hops if h.source.ci} | {h.target.ci.tenant_id for h in hops if h.target.ci}
        )
        return {"hops": [hop_json(h, keys) for h in hops], "length": len(hops)}


def ci_brief_root(ci: Any, keys: dict[int, str]) -> dict[str, Any]:
    return ci_brief(ImpactRow(ci.id, ci.ci_class, 0, 0, ci), keys)


class RelationshipController(Controller):
    path = "/api/relationships"
    tags = ["relationships"]

    @post("/", guards=[CI_WRITER_GUARD], status_code=HTTP_201_CREATED)
    async def create_relationship(self, cmdb: CMDBService, actor: Actor, data: RelationshipIn) -> dict[str, Any]:
        relationship = await cmdb.create_relationship(
            actor, data.source, data.target, data.type, note=data.note, rfc=data.rfc
        )
        return relationship_json(relationship, await cmdb.customer_keys({relationship.tenant_id}))

    @get("/{rel_id:int}")
    async def get_relationship(self, cmdb: CMDBService, actor: Actor, rel_id: int) -> dict[str, Any]:
        relationship = await cmdb.get_relationship(actor, rel_id)
        return relationship_json(relationship, await cmdb.customer_keys({relationship.tenant_id}))

    @delete("/{rel_id:int}", guards=[CI_WRITER_GUARD], status_code=HTTP_204_NO_CONTENT)
    async def delete_relationship(
        self, cmdb: CMDBService, actor: Actor, rel_id: int, rfc: str | None = None, comment: str = ""
    ) -> None:
        await cmdb.delete_relationship(actor, rel_id, rfc=rfc, comment=comment)
