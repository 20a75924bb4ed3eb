"""The only module that queries change management's tables. Returns `change.models` records;
every read of tenant data takes the caller's `Scope`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from change.models import RFC, ChangeType, Origin, Priority, RFCState, Urgency, VoteChoice
from change.tables import RFCCITable, RFCTable, VoteTable
from cmdb import db
from cmdb.models import Scope
from cmdb.repository import _json, _utc

_STATE = RFCState._value2member_map_
_TYPE = ChangeType._value2member_map_
_PRIORITY = Priority._value2member_map_
_ORIGIN = Origin._value2member_map_
_URGENCY = Urgency._value2member_map_


def engine() -> Any:
    return RFCTable._meta.db


def _opt_utc(value: Any) -> dt.datetime | None:
    return None if value is None else _utc(value)


def _rfc(row: Mapping[str, Any], ci_ids: Sequence[int]) -> RFC:
    return RFC(
        id=row["id"],
        key=row["key"],
        tenant_id=row["tenant"],
        title=row["title"],
        type=_TYPE[row["type"]],  # type: ignore[arg-type]
        state=_STATE[row["state"]],  # type: ignore[arg-type]
        priority=_PRIORITY[row["priority"]],  # type: ignore[arg-type]
        origin=_ORIGIN[row["origin"]],  # type: ignore[arg-type]
        originator_id=row["originator"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        origin_ref=row["origin_ref"],
        need=row["need"] or "",
        desired_result=row["desired_result"] or "",
        affected_people=tuple(_json(row["affected_people"], [])),
        ci_ids=tuple(ci_ids),
        plan=row["plan"] or "",
        backout_plan=row["backout_plan"] or "",
        deadline=_opt_utc(row["deadline"]),
        cost=Decimal(row["cost"]) if row["cost"] is not None else None,
        budget=Decimal(row["budget"]) if row["budget"] is not None else None,
        customer_ref=row["customer_ref"],
        refers_to=row["refers_to"],
        template=row["template"],
        planned_start=_opt_utc(row["planned_start"]),
        planned_end=_opt_utc(row["planned_end"]),
        release_requirements=tuple(_json(row["release_requirements"], [])),
        impact_frozen=bool(row["impact_frozen"]),
        post_implementation_review_required=bool(row["post_implementation_review_required"]),
        emergency_reason=row["emergency_reason"] or "",
        customer_approval_required=bool(row["customer_approval_required"]),
        customer_approved_by=row["customer_approved_by"],
        patch_components=tuple(_json(row["patch_components"], [])),
        vulnerability=row["vulnerability"] or "",
        patch_description=row["patch_description"] or "",
        urgency=_URGENCY[row["urgency"]] if row["urgency"] else None,  # type: ignore[arg-type]
        available_at=_opt_utc(row["available_at"]),
        proposed_deployment=_opt_utc(row["proposed_deployment"]),
        testing_done=row["testing_done"] or "",
        version=row["version"],
    )


def rfc_values(rfc: RFC) -> dict[str, Any]:
    """Column values of an RFC (without id, key, created_at, version)."""
    return {
        "tenant": rfc.tenant_id,
        "title": rfc.title,
        "type": rfc.type.value,
        "state": rfc.state.value,
        "priority": rfc.priority.value,
        "origin": rfc.origin.value,
        "origin_ref": rfc.origin_ref,
        "originator": rfc.originator_id,
        "need": rfc.need,
        "desired_result": rfc.desired_result,
        "affected_people": json.dumps(list(rfc.affected_people)),
        "plan": rfc.plan,
        "backout_plan": rfc.backout_plan,
        "deadline": rfc.deadline,
        "cost": str(rfc.cost) if rfc.cost is not None else None,
        "budget": str(rfc.budget) if rfc.budget is not None else None,
        "customer_ref": rfc.customer_ref,
        "refers_to": rfc.refers_to,
        "template": rfc.template,
        "planned_start": rfc.planned_start,
        "planned_end": rfc.planned_end,
        "release_requirements": json.dumps(list(rfc.release_requirements)),
        "impact_frozen": rfc.impact_frozen,
        "post_implementation_review_required": rfc.post_implementation_review_required,
        "emergency_reason": rfc.emergency_reason,
        "customer_approval_required": rfc.customer_approval_required,
        "customer_approved_by": rfc.customer_approved_by,
        "patch_components": json.dumps(list(rfc.patch_components)),
        "vulnerability": rfc.vulnerability,
        "patch_description": rfc.patch_description,
        "urgency": rfc.urgency.value if rfc.urgency else None,
        "available_at": rfc.available_at,
        "proposed_deployment": rfc.proposed_deployment,
        "testing_done": rfc.testing_done,
        "updated_at": rfc.updated_at,
    }


async def _ci_ids(rfc_ids: Sequence[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {rfc_id: [] for rfc_id in rfc_ids}
    for start in range(0, len(rfc_ids), 5000):
        chunk = list(rfc_ids[start : start + 5000])
        rows = await RFCCITable.select(RFCCITable.rfc, RFCCITable.ci).where(RFCCITable.rfc.is_in(chunk))
        for row in rows:
            found[row["rfc"]].append(row["ci"])
    for ids in found.values():
        ids.sort()
    return found


async def get_rfc(scope: Scope, ref: int | str) -> tuple[RFC, dict[str, Any]] | None:
    """The RFC and its stored impact (frozen or last computed), or None if missing or not visible."""
    where = RFCTable.id == ref if isinstance(ref, int) else RFCTable.key == ref
    rows = await RFCTable.select().where(where)
    if not rows or not scope.can_see(rows[0]["tenant"]):
        return None
    row = rows[0]
    cis = await _ci_ids([row["id"]])
    extra = {
        "impact": _json(row["impact"], None),
        "impact_adjustments": _json(row["impact_adjustments"], []),
    }
    return _rfc(row, cis[row["id"]]), extra


async def list_rfcs(
    scope: Scope,
    *,
    tenant_id: int | None = None,
    states: Sequence[str] | None = None,
    ci_id: int | None = None,
    scheduled_between: tuple[dt.datetime, dt.datetime] | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
    oldest_first: bool = False,
) -> tuple[list[tuple[RFC, dict[str, Any]]], int]:
    conditions: list[Any] = []
    if not scope.is_provider:
        conditions.append(RFCTable.tenant == scope.tenant_id)
    if tenant_id is not None:
        conditions.append(RFCTable.tenant == tenant_id)
    if states:
        conditions.append(RFCTable.state.is_in(list(states)))
    if ci_id is not None:
        conditions.append(RFCTable.id.is_in(RFCCITable.select(RFCCITable.rfc).where(RFCCITable.ci == ci_id)))
    if scheduled_between is not None:
        start, end = scheduled_between
        conditions.append(RFCTable.planned_start < end)
        conditions.append(RFCTable.planned_end > start)
    if q:
        pattern = f"%{q}%"
        conditions.append(RFCTable.title.ilike(pattern) | RFCTable.key.ilike(pattern))
    query = RFCTable.select().order_by(RFCTable.created_at, ascending=oldest_first).order_by(RFCTable.id)
    count = RFCTable.count()
    if conditions:
        query, count = query.where(*conditions), count.where(*conditions)
    rows = await query.limit(limit).offset(offset)
    cis = await _ci_ids([row["id"] for row in rows])
    items = [(_rfc(row, cis[row["id"]]), {"impact": _json(row["impact"], None)}) for row in rows]
    return items, await count


async def insert_rfc(rfc: RFC, key: str) -> int:
    values = rfc_values(rfc)
    rows = await RFCTable.insert(RFCTable(**values, key=key, created_at=rfc.created_at, version=rfc.version)).returning(
        RFCTable.id
    )
    rfc_id = int(rows[0]["id"])
    if rfc.ci_ids:
        await RFCCITable.insert(*[RFCCITable(rfc=rfc_id, ci=ci) for ci in sorted(set(rfc.ci_ids))])
    return rfc_id


async def replace_cis(rfc_id: int, ci_ids: Iterable[int]) -> None:
    await RFCCITable.delete().where(RFCCITable.rfc == rfc_id)
    wanted = sorted(set(ci_ids))
    if wanted:
        await RFCCITable.insert(*[RFCCITable(rfc=rfc_id, ci=ci) for ci in wanted])


async def update_rfc(rfc: RFC, expected_version: int, extra: Mapping[str, Any] | None = None) -> bool:
    """Writes the RFC if nobody changed it since `expected_version`; the guard that lets exactly
    one of two simultaneous actions win, on SQLite and PostgreSQL alike."""
    values: dict[Any, Any] = {**rfc_values(rfc), RFCTable.version: rfc.version, **(extra or {})}
    rows = (
        await RFCTable.update(values)
        .where((RFCTable.id == rfc.id) & (RFCTable.version == expected_version))
        .returning(RFCTable.id)
    )
    return bool(rows)


async def current_version(rfc_id: int) -> tuple[int, str] | None:
    rows = await RFCTable.select(RFCTable.version, RFCTable.state).where(RFCTable.id == rfc_id)
    return (int(rows[0]["version"]), str(rows[0]["state"])) if rows else None


async def votes(rfc_id: int) -> list[dict[str, Any]]:
    rows = await VoteTable.select().where(VoteTable.rfc == rfc_id).order_by(VoteTable.at)
    return [
        {"member": row["member"], "vote": VoteChoice(row["vote"]), "comment": row["comment"], "at": _utc(row["at"])}
        for row in rows
    ]


async def record_vote(rfc_id: int, member_id: int, vote: str, comment: str, at: dt.datetime) -> None:
    await VoteTable.delete().where((VoteTable.rfc == rfc_id) & (VoteTable.member == member_id))
    await VoteTable.insert(VoteTable(rfc=rfc_id, member=member_id, vote=vote, comment=comment, at=at))


async def outcomes_on_cis(ci_ids: Sequence[int], states: Sequence[str]) -> int:
    """How many RFCs touching these CIs ended in one of `states` (failed changes feed the risk)."""
    if not ci_ids:
        return 0
    rows = await db.fetch(
        engine(),
        f"SELECT COUNT(DISTINCT r.id) AS n FROM rfc r JOIN rfc_ci c ON c.rfc = r.id "
        f"WHERE c.ci IN ({', '.join('?' for _ in ci_ids)}) AND r.state IN ({', '.join('?' for _ in states)})",
        *ci_ids,
        *states,
    )
    return int(rows[0]["n"])


async def scheduled_in(start: dt.datetime, end: dt.datetime, states: Sequence[str]) -> list[RFC]:
    rows = (
        await RFCTable.select()
        .where(
            RFCTable.planned_start.is_not_null(),
            RFCTable.planned_start < end,
            RFCTable.planned_end > start,
            RFCTable.state.is_in(list(states)),
        )
        .order_by(RFCTable.planned_start)
    )
    cis = await _ci_ids([row["id"] for row in rows])
    return [_rfc(row, cis[row["id"]]) for row in rows]


async def rfc_authorizing(ref: str, tenant_id: int, ci_id: int, states: Sequence[str]) -> bool:
    rows = await db.fetch(
        engine(),
        "SELECT 1 AS ok FROM rfc r JOIN rfc_ci c ON c.rfc = r.id WHERE r.key = ? AND r.tenant = ? AND c.ci = ? "
        f"AND r.state IN ({', '.join('?' for _ in states)})",
        ref,
        tenant_id,
        ci_id,
        *states,
    )
    return bool(rows)
