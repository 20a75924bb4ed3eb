"""The only module that queries release management's tables. Returns `release.models`
records; every read of one tenant's releases takes the caller's `Scope`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cmdb import db
from cmdb.models import Scope
from cmdb.repository import _json, _utc
from release.models import (
    ACTIVE_STATES,
    MET_STATES,
    Deployment,
    DeploymentOutcome,
    EffectReview,
    Release,
    ReleaseState,
    ReleaseTest,
    TestResult,
)
from release.tables import DeploymentTable, ReleaseRFCTable, ReleaseTable, ReleaseTestTable

_CHUNK = 5000


def engine() -> Any:
    return ReleaseTable._meta.db


def _opt_utc(value: Any) -> dt.datetime | None:
    return None if value is None else _utc(value)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


# ------------------------------------------------------------------------- for patch urgency


async def patch_met_times(rfc_ids: Sequence[int]) -> dict[int, dt.datetime]:
    """For each RFC, the earliest approval time of a release holding it that is approved,
    deploying or deployed: when the patch was "tested and approved for deployment". RFCs with
    no such release are absent from the answer."""
    wanted = sorted(set(rfc_ids))
    met: dict[int, dt.datetime] = {}
    states = sorted(state.value for state in MET_STATES)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = await db.fetch(
            engine(),
            "SELECT rr.rfc AS rfc, MIN(r.approved_at) AS approved_at FROM release_rfc rr "
            "JOIN release r ON r.id = rr.release "
            f"WHERE rr.rfc IN ({_marks(chunk)}) AND r.state IN ({_marks(states)}) AND r.approved_at IS NOT NULL "
            "GROUP BY rr.rfc",
            *chunk,
            *states,
        )
        for row in rows:
            met[int(row["rfc"])] = _utc(row["approved_at"])
    return met


# ----------------------------------------------------------------------------------- releases


def _release(row: Mapping[str, Any], rfc_ids: Sequence[int]) -> Release:
    return Release(
        id=row["id"],
        key=row["key"],
        tenant_id=row["tenant"],
        title=row["title"],
        state=ReleaseState(row["state"]),
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        description=row["description"] or "",
        rfc_ids=tuple(rfc_ids),
        test_environment_id=row["test_environment"],
        represents=tuple(int(i) for i in _json(row["represents"], [])),
        test_round=int(row["test_round"]),
        created_by=row["created_by"],
        approved_by=row["approved_by"],
        approved_at=_opt_utc(row["approved_at"]),
        deploy_started_at=_opt_utc(row["deploy_started_at"]),
        deployed_at=_opt_utc(row["deployed_at"]),
        backed_out_at=_opt_utc(row["backed_out_at"]),
        backout_reason=row["backout_reason"] or "",
        watch_days=int(row["watch_days"]),
        watch_until=_opt_utc(row["watch_until"]),
        version=int(row["version"]),
    )


def _values(release: Release) -> dict[Any, Any]:
    return {
        ReleaseTable.tenant: release.tenant_id,
        ReleaseTable.title: release.title,
        ReleaseTable.description: release.description,
        ReleaseTable.state: release.state.value,
        ReleaseTable.test_environment: release.test_environment_id,
        ReleaseTable.represents: json.dumps(list(release.represents)),
        ReleaseTable.test_round: release.test_round,
        ReleaseTable.created_by: release.created_by,
        ReleaseTable.approved_by: release.approved_by,
        ReleaseTable.approved_at: release.approved_at,
        ReleaseTable.deploy_started_at: release.deploy_started_at,
        ReleaseTable.deployed_at: release.deployed_at,
        ReleaseTable.backed_out_at: release.backed_out_at,
        ReleaseTable.backout_reason: release.backout_reason,
        ReleaseTable.watch_days: release.watch_days,
        ReleaseTable.watch_until: release.watch_until,
        ReleaseTable.version: release.version,
        ReleaseTable.updated_at: release.updated_at,
    }


async def _rfc_ids(release_ids: Sequence[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {release_id: [] for release_id in release_ids}
    for start in range(0, len(release_ids), _CHUNK):
        chunk = list(release_ids[start : start + _CHUNK])
        rows = (
            await ReleaseRFCTable.select(ReleaseRFCTable.release, ReleaseRFCTable.rfc)
            .where(ReleaseRFCTable.release.is_in(chunk))
            .order_by(ReleaseRFCTable.id)
        )
        for row in rows:
            found[row["release"]].append(row["rfc"])
    return found


async def _hydrate(rows: Sequence[Mapping[str, Any]]) -> list[Release]:
    links = await _rfc_ids([row["id"] for row in rows])
    return [_release(row, links[row["id"]]) for row in rows]


async def get_release(scope: Scope, ref: int | str) -> Release | None:
    """The release by id or key, or None when missing or not visible to `scope`."""
    where = ReleaseTable.id == ref if isinstance(ref, int) else ReleaseTable.key == ref.upper()
    rows = await ReleaseTable.select().where(where)
    if not rows or not scope.can_see(rows[0]["tenant"]):
        return None
    return (await _hydrate(rows))[0]


async def list_releases(
    scope: Scope,
    *,
    tenant_id: int | None = None,
    states: Sequence[str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Release], int]:
    conditions: list[Any] = []
    if not scope.is_provider:
        conditions.append(ReleaseTable.tenant == scope.tenant_id)
    if tenant_id is not None:
        conditions.append(ReleaseTable.tenant == tenant_id)
    if states:
        conditions.append(ReleaseTable.state.is_in(list(states)))
    query = (
        ReleaseTable.select()
        .order_by(ReleaseTable.created_at, ascending=False)
        .order_by(ReleaseTable.id, ascending=False)
    )
    count = ReleaseTable.count()
    if conditions:
        query, count = query.where(*conditions), count.where(*conditions)
    rows = await query.limit(limit).offset(offset)
    return await _hydrate(rows), await count


async def insert_release(release: Release, key: str) -> int:
    values = {column._meta.name: value for column, value in _values(release).items()}
    rows = await ReleaseTable.insert(ReleaseTable(**values, key=key, created_at=release.created_at)).returning(
        ReleaseTable.id
    )
    release_id = int(rows[0]["id"])
    for rfc_id in release.rfc_ids:
        await link_rfc(release_id, rfc_id, release.created_at)
    return release_id


async def update_release(release: Release, expected_version: int) -> bool:
    """Writes the release if nobody changed it since `expected_version`: of two simultaneous
    actions exactly one matches the WHERE and wins, on SQLite and PostgreSQL alike. A release
    that reaches backed_out or cancelled lets go of its RFCs (rows kept, no longer active)."""
    rows = (
        await ReleaseTable.update(_values(release))
        .where((ReleaseTable.id == release.id) & (ReleaseTable.version == expected_version))
        .returning(ReleaseTable.id)
    )
    if rows and release.state not in ACTIVE_STATES:
        await ReleaseRFCTable.update({ReleaseRFCTable.active: False}).where(
            (ReleaseRFCTable.release == release.id) & (ReleaseRFCTable.active == True)  # noqa: E712
        )
    return bool(rows)


async def current_version(release_id: int) -> tuple[int, str] | None:
    rows = await ReleaseTable.select(ReleaseTable.version, ReleaseTable.state).where(ReleaseTable.id == release_id)
    return (int(rows[0]["version"]), str(rows[0]["state"])) if rows else None


class RFCInActiveRelease(Exception):
    """The unique index refused a second active release for this RFC: a concurrent writer
    added it elsewhere after our check. On PostgreSQL the transaction is then unusable, so the
    caller can only roll back and report."""

    def __init__(self, rfc_id: int) -> None:
        super().__init__(f"RFC {rfc_id} is already in another active release")
        self.rfc_id = rfc_id


def _is_unique_violation(error: BaseException) -> bool:
    import sqlite3

    if isinstance(error, sqlite3.IntegrityError):
        return "UNIQUE" in str(error).upper()
    try:
        from asyncpg.exceptions import UniqueViolationError
    except ImportError:  # pragma: no cover - asyncpg is a dependency, but SQLite needs none of it
        return False
    return isinstance(error, UniqueViolationError)


async def link_rfc(release_id: int, rfc_id: int, at: dt.datetime) -> None:
    """Raises `RFCInActiveRelease` when another active release holds the RFC (index
    `release_rfc_one_active`), whatever the caller checked before."""
    try:
        await ReleaseRFCTable.insert(ReleaseRFCTable(release=release_id, rfc=rfc_id, added_at=at, active=True))
    except Exception as error:
        if _is_unique_violation(error):
            raise RFCInActiveRelease(rfc_id) from error
        raise


async def unlink_rfc(release_id: int, rfc_id: int) -> None:
    await ReleaseRFCTable.delete().where((ReleaseRFCTable.release == release_id) & (ReleaseRFCTable.rfc == rfc_id))


async def active_releases_holding(rfc_ids: Sequence[int], *, excluding: int | None = None) -> dict[int, str]:
    """For each RFC already in an active release (other than `excluding`), that release's key."""
    if not rfc_ids:
        return {}
    states = sorted(state.value for state in ACTIVE_STATES)
    sql = (
        "SELECT rr.rfc AS rfc, r.key AS key FROM release_rfc rr JOIN release r ON r.id = rr.release "
        f"WHERE rr.rfc IN ({_marks(rfc_ids)}) AND r.state IN ({_marks(states)})"
    )
    args: list[Any] = [*rfc_ids, *states]
    if excluding is not None:
        sql += " AND r.id <> ?"
        args.append(excluding)
    rows = await db.fetch(engine(), sql, *args)
    return {int(row["rfc"]): str(row["key"]) for row in rows}


async def releases_of_rfcs(rfc_ids: Sequence[int]) -> dict[int, list[tuple[int, str, str]]]:
    """Each RFC's releases as (id, key, state), oldest first: for the RFC page."""
    if not rfc_ids:
        return {}
    rows = await db.fetch(
        engine(),
        "SELECT rr.rfc AS rfc, r.id AS id, r.key AS key, r.state AS state FROM release_rfc rr "
        f"JOIN release r ON r.id = rr.release WHERE rr.rfc IN ({_marks(rfc_ids)}) ORDER BY r.id",
        *rfc_ids,
    )
    found: dict[int, list[tuple[int, str, str]]] = {}
    for row in rows:
        found.setdefault(int(row["rfc"]), []).append((int(row["id"]), str(row["key"]), str(row["state"])))
    return found


async def deployed_releases(tenant_id: int | None, *, since: dt.datetime, until: dt.datetime) -> list[Release]:
    """Deployed releases whose watch period overlaps [since, until]."""
    conditions: list[Any] = [
        ReleaseTable.state == ReleaseState.DEPLOYED.value,
        ReleaseTable.deployed_at.is_not_null(),
        ReleaseTable.deployed_at <= until,
        ReleaseTable.watch_until >= since,
    ]
    if tenant_id is not None:
        conditions.append(ReleaseTable.tenant == tenant_id)
    rows = await ReleaseTable.select().where(*conditions).order_by(ReleaseTable.deployed_at)
    return await _hydrate(rows)


# -------------------------------------------------------------------------------------- tests


def _test(row: Mapping[str, Any]) -> ReleaseTest:
    return ReleaseTest(
        id=row["id"],
        release_id=row["release"],
        round=int(row["round"]),
        name=row["name"],
        result=TestResult(row["result"]),
        covers=tuple(_json(row["covers"], [])),
        negative_effects=row["negative_effects"] or "",
        recorded_by=row["recorded_by"],
        recorded_at=_utc(row["recorded_at"]),
        review=EffectReview(row["review"]) if row["review"] else None,
        review_justification=row["review_justification"] or "",
        reviewed_by=row["reviewed_by"],
        reviewed_at=_opt_utc(row["reviewed_at"]),
    )


async def tests_of(release_id: int) -> list[ReleaseTest]:
    rows = await ReleaseTestTable.select().where(ReleaseTestTable.release == release_id).order_by(ReleaseTestTable.id)
    return [_test(row) for row in rows]


async def insert_test(test: ReleaseTest) -> int:
    rows = await ReleaseTestTable.insert(
        ReleaseTestTable(
            release=test.release_id,
            round=test.round,
            name=test.name,
            result=test.result.value,
            covers=json.dumps(list(test.covers)),
            negative_effects=test.negative_effects,
            recorded_by=test.recorded_by,
            recorded_at=test.recorded_at,
        )
    ).returning(ReleaseTestTable.id)
    return int(rows[0]["id"])


async def review_test(test_id: int, review: EffectReview, justification: str, by: int | None, at: dt.datetime) -> None:
    await ReleaseTestTable.update(
        {
            ReleaseTestTable.review: review.value,
            ReleaseTestTable.review_justification: justification,
            ReleaseTestTable.reviewed_by: by,
            ReleaseTestTable.reviewed_at: at,
        }
    ).where(ReleaseTestTable.id == test_id)


# -------------------------------------------------------------------------------- deployments


def _deployment(row: Mapping[str, Any]) -> Deployment:
    return Deployment(
        id=row["id"],
        release_id=row["release"],
        tenant_id=row["tenant"],
        ci_id=row["ci"],
        rfc_id=row["rfc"],
        version=row["version"],
        deployed_at=_utc(row["deployed_at"]),
        deployed_by=row["deployed_by"],
        outcome=DeploymentOutcome(row["outcome"]),
    )


async def insert_deployments(rows: Iterable[Deployment]) -> None:
    records = [
        DeploymentTable(
            release=d.release_id,
            tenant=d.tenant_id,
            ci=d.ci_id,
            rfc=d.rfc_id,
            version=d.version,
            deployed_at=d.deployed_at,
            deployed_by=d.deployed_by,
            outcome=d.outcome.value,
        )
        for d in rows
    ]
    for start in range(0, len(records), 500):
        await DeploymentTable.insert(*records[start : start + 500])


async def deployments_of(release_ids: Sequence[int]) -> list[Deployment]:
    if not release_ids:
        return []
    rows = (
        await DeploymentTable.select()
        .where(DeploymentTable.release.is_in(list(release_ids)))
        .order_by(DeploymentTable.id)
    )
    return [_deployment(row) for row in rows]


async def deployments_on_ci(ci_id: int, *, limit: int, offset: int) -> tuple[list[Deployment], int]:
    """What was installed on a CI, newest first."""
    rows = (
        await DeploymentTable.select()
        .where(DeploymentTable.ci == ci_id)
        .order_by(DeploymentTable.deployed_at, ascending=False)
        .order_by(DeploymentTable.id, ascending=False)
        .limit(limit)
        .offset(offset)
    )
    total = await DeploymentTable.count().where(DeploymentTable.ci == ci_id)
    return [_deployment(row) for row in rows], int(total)


async def set_deployment_outcome(release_id: int, outcome: DeploymentOutcome) -> None:
    await DeploymentTable.update({DeploymentTable.outcome: outcome.value}).where(DeploymentTable.release == release_id)


async def release_keys(release_ids: Iterable[int]) -> dict[int, str]:
    wanted = list(set(release_ids))
    if not wanted:
        return {}
    rows = await ReleaseTable.select(ReleaseTable.id, ReleaseTable.key).where(ReleaseTable.id.is_in(wanted))
    return {int(row["id"]): str(row["key"]) for row in rows}


async def released_ci_ids(release_ids: Sequence[int]) -> dict[int, set[int]]:
    """Each release's released CIs: the CIs of its RFCs plus the CIs it recorded deployments on
    (the RFC's CIs come from change management's `rfc_ci`, read here in one join)."""
    found: dict[int, set[int]] = {release_id: set() for release_id in release_ids}
    if not release_ids:
        return found
    ids = list(release_ids)
    rows = await db.fetch(
        engine(),
        "SELECT rr.release AS release, c.ci AS ci FROM release_rfc rr JOIN rfc_ci c ON c.rfc = rr.rfc "
        f"WHERE rr.release IN ({_marks(ids)}) "
        f"UNION SELECT d.release AS release, d.ci AS ci FROM deployment d WHERE d.release IN ({_marks(ids)})",
        *ids,
        *ids,
    )
    for row in rows:
        found[int(row["release"])].add(int(row["ci"]))
    return found


async def rfc_keys(rfc_ids: Sequence[int]) -> dict[int, str]:
    """Human keys of RFCs, for release listings (one read of change management's `rfc`)."""
    wanted = sorted(set(rfc_ids))
    keys: dict[int, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = await db.fetch(engine(), f"SELECT id, key FROM rfc WHERE id IN ({_marks(chunk)})", *chunk)
        keys.update((int(row["id"]), str(row["key"])) for row in rows)
    return keys
