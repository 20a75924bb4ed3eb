"""The only module that queries the alert tables. Raw SQL through `cmdb.db` on the hot path:
an alert costs a handful of statements, and building Piccolo queries would cost more than
running them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from piccolo.engine.base import Engine

from cmdb import db
from cmdb import repository as cmdb_repo
from incident.alert_tables import AlertTable


def engine() -> Engine:
    return AlertTable._meta.db


@dataclass
class OpenClaim:
    """The alert_open row of one (CI, metric), locked for the caller's transaction.
    `claimed` says this transaction inserted it (its incident is still to be opened);
    `incident_open` whether the incident it leads to exists and is not closed."""

    row_id: int
    incident_id: int | None
    incident_key: str
    claimed: bool
    noted_at: dt.datetime | None = None
    incident_open: bool = False
    unnoted: int = 0  # repeats joined in this transaction since noted_at, not yet stored


@dataclass(frozen=True)
class StoredAlert:
    id: int
    tenant_id: int
    ci_id: int
    metric: str
    value: str
    duration_s: float | None
    message: str
    observed_at: dt.datetime
    received_at: dt.datetime
    breached: bool
    incident_id: int | None
    outcome: str


async def _rows(sql: str, *args: Any) -> list[dict[str, Any]]:
    """`db.fetch`, but one trip to SQLite's worker thread instead of three inside a
    transaction (execute, fetch and close at once): an alert is a few statements, and on
    SQLite the trips, not the statements, are most of its cost."""
    engine_ = engine()
    transaction = engine_.current_transaction.get()
    if transaction is not None and isinstance(engine_, db.KeelSQLiteEngine):
        return list(await transaction.connection.execute_fetchall(sql, args))  # type: ignore[arg-type]
    return await db.fetch(engine_, sql, *args)


def _timestamp(engine_: Engine, at: dt.datetime) -> Any:
    # SQLite: the text Piccolo's adapter writes, so raw and Piccolo rows compare alike.
    return str(at.astimezone(dt.UTC)) if db.is_sqlite(engine_) else at


# The incident's status comes with the claim: one read instead of a second query per alert.
# It is IncidentService.is_open's rule (status other than closed; a missing incident is not open).
_CLAIM_SELECT = (
    "SELECT o.id, o.ci, o.metric, o.incident, o.incident_key, o.noted_at, i.status "
    "FROM alert_open o LEFT JOIN incident i ON i.id = o.incident WHERE "
)


def _claim(row: dict[str, Any], claimed: bool = False) -> OpenClaim:
    incident = row["incident"]
    return OpenClaim(
        int(row["id"]),
        int(incident) if incident is not None else None,
        row["incident_key"] or "",
        claimed,
        cmdb_repo._utc(row["noted_at"]) if row["noted_at"] is not None else None,
        row["status"] is not None and row["status"] != "closed",
    )


async def claim_open(keys: Sequence[tuple[int, int, str]], now: dt.datetime) -> dict[tuple[int, str], OpenClaim]:
    """Inside the caller's transaction: the alert_open rows of these (tenant, CI, metric),
    locked, inserting those missing. Keys are taken in (CI, metric) order, so two transactions
    never wait on each other's rows in a cycle.

    PostgreSQL: per key, SELECT ... FOR UPDATE, or when missing INSERT ... ON CONFLICT DO
    NOTHING: a concurrent inserter of the same key waits on the unique index until the first
    commits, then inserts nothing and reads the committed row FOR UPDATE. SQLite runs one
    writer at a time (BEGIN IMMEDIATE): one read for all keys, then the inserts."""
    engine_ = engine()
    ordered = sorted(set(keys), key=lambda key: (key[1], key[2]))
    found: dict[tuple[int, str], OpenClaim] = {}
    if db.is_sqlite(engine_):
        ci_ids = sorted({ci for _, ci, _ in ordered})
        for start in range(0, len(ci_ids), 900):
            chunk = ci_ids[start : start + 900]
            marks = ", ".join("?" for _ in chunk)
            for row in await _rows(f"{_CLAIM_SELECT}o.ci IN ({marks})", *chunk):
                found[(int(row["ci"]), row["metric"])] = _claim(row)
    else:
        select = f"{_CLAIM_SELECT}o.ci = ? AND o.metric = ? FOR UPDATE OF o"
        for _, ci_id, metric in ordered:
            rows = await _rows(select, ci_id, metric)
            if rows:
                found[(ci_id, metric)] = _claim(rows[0])
    claims: dict[tuple[int, str], OpenClaim] = {}
    for tenant_id, ci_id, metric in ordered:
        claim = found.get((ci_id, metric))
        if claim is None:
            claim = await _insert_claim(tenant_id, ci_id, metric, now)
        claims[(ci_id, metric)] = claim
    return claims


async def _insert_claim(tenant_id: int, ci_id: int, metric: str, now: dt.datetime) -> OpenClaim:
    engine_ = engine()
    inserted = await _rows(
        "INSERT INTO alert_open (tenant, ci, metric, incident, incident_key, opened_at) "
        "VALUES (?, ?, ?, NULL, '', ?) ON CONFLICT (ci, metric) DO NOTHING RETURNING id",
        tenant_id,
        ci_id,
        metric,
        _timestamp(engine_, now),
    )
    if inserted:
        return OpenClaim(int(inserted[0]["id"]), None, "", True)
    lock = "" if db.is_sqlite(engine_) else " FOR UPDATE OF o"
    rows = await _rows(f"{_CLAIM_SELECT}o.ci = ? AND o.metric = ?{lock}", ci_id, metric)
    return _claim(rows[0])


async def point_open(row_id: int, incident_id: int, incident_key: str, now: dt.datetime) -> None:
    """The (CI, metric) now leads to this newly opened incident; the opening counts as its
    last timeline note."""
    stamp = _timestamp(engine(), now)
    await _rows(
        "UPDATE alert_open SET incident = ?, incident_key = ?, opened_at = ?, noted_at = ? WHERE id = ? RETURNING id",
        incident_id,
        incident_key,
        stamp,
        stamp,
        row_id,
    )


async def mark_noted(row_id: int, now: dt.datetime) -> None:
    await _rows("UPDATE alert_open SET noted_at = ? WHERE id = ? RETURNING id", _timestamp(engine(), now), row_id)


async def joined_since(incident_id: int, since: dt.datetime) -> int:
    """Repeats joined to the incident since `since` (received time), for the timeline's note."""
    rows = await _rows(
        "SELECT count(*) AS n FROM alert WHERE incident = ? AND outcome = 'joined' AND received_at > ?",
        incident_id,
        _timestamp(engine(), since),
    )
    return int(rows[0]["n"])


@dataclass(frozen=True)
class NewAlert:
    tenant_id: int
    ci_id: int
    metric: str
    value: str
    duration_s: float | None
    message: str
    observed_at: dt.datetime
    received_at: dt.datetime
    breached: bool
    incident_id: int | None
    outcome: str


_INSERT_COLUMNS = (
    "tenant, ci, metric, value, duration_s, message, observed_at, received_at, breached, incident, outcome"
)
# 11 parameters a row: well under SQLite's 32,766 and asyncpg's 32,767 per statement.
_INSERT_CHUNK = 500


async def insert_alerts(alerts: Sequence[NewAlert]) -> list[int]:
    """Stores the alerts with one statement per 500, inside the caller's transaction; their
    ids in the same order. Ids of one statement are handed out in row order (SQLite's rowid,
    PostgreSQL's sequence as it evaluates VALUES), so sorting what RETURNING gives maps them."""
    engine_ = engine()
    ids: list[int] = []
    for start in range(0, len(alerts), _INSERT_CHUNK):
        chunk = alerts[start : start + _INSERT_CHUNK]
        marks = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in chunk)
        args: list[Any] = []
        for alert in chunk:
            args += [
                alert.tenant_id,
                alert.ci_id,
                alert.metric,
                alert.value,
                alert.duration_s,
                alert.message,
                _timestamp(engine_, alert.observed_at),
                _timestamp(engine_, alert.received_at),
                alert.breached,
                alert.incident_id,
                alert.outcome,
            ]
        rows = await _rows(f"INSERT INTO alert ({_INSERT_COLUMNS}) VALUES {marks} RETURNING id", *args)
        ids += sorted(int(row["id"]) for row in rows)
    return ids


_ALERT_COLUMNS = (
    "id, tenant, ci, metric, value, duration_s, message, observed_at, received_at, breached, incident, outcome"
)


def _alert(row: dict[str, Any]) -> StoredAlert:
    return StoredAlert(
        id=int(row["id"]),
        tenant_id=int(row["tenant"]),
        ci_id=int(row["ci"]),
        metric=row["metric"],
        value=row["value"],
        duration_s=row["duration_s"],
        message=row["message"],
        observed_at=cmdb_repo._utc(row["observed_at"]),
        received_at=cmdb_repo._utc(row["received_at"]),
        breached=bool(row["breached"]),
        incident_id=int(row["incident"]) if row["incident"] is not None else None,
        outcome=row["outcome"],
    )


async def list_alerts(
    *,
    tenant_id: int | None,
    ci_id: int | None,
    incident_id: int | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[StoredAlert], int]:
    """Newest first. `tenant_id` None means every tenant (provider staff)."""
    engine_ = engine()
    conditions: list[str] = []
    args: list[Any] = []
    for column, value in (("tenant", tenant_id), ("ci", ci_id), ("incident", incident_id)):
        if value is not None:
            conditions.append(f"{column} = ?")
            args.append(value)
    if since is not None:
        conditions.append("observed_at >= ?")
        args.append(_timestamp(engine_, since))
    if until is not None:
        conditions.append("observed_at < ?")
        args.append(_timestamp(engine_, until))
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    total = await db.fetch(engine_, f"SELECT count(*) AS n FROM alert{where}", *args)
    rows = await db.fetch(
        engine_,
        f"SELECT {_ALERT_COLUMNS} FROM alert{where} ORDER BY observed_at DESC, id DESC LIMIT ? OFFSET ?",
        *args,
        limit,
        offset,
    )
    return [_alert(row) for row in rows], int(total[0]["n"])


async def outcome_counts(tenant_id: int, since: dt.datetime, until: dt.datetime) -> dict[str, int]:
    """Alerts observed in [since, until) by outcome, for the monthly report."""
    engine_ = engine()
    rows = await db.fetch(
        engine_,
        "SELECT outcome, count(*) AS n FROM alert WHERE tenant = ? AND observed_at >= ? AND observed_at < ? "
        "GROUP BY outcome",
        tenant_id,
        _timestamp(engine_, since),
        _timestamp(engine_, until),
    )
    return {row["outcome"]: int(row["n"]) for row in rows}


async def open_claims(ci_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The (CI, metric) -> incident rows of these CIs."""
    if not ci_ids:
        return []
    marks = ", ".join("?" for _ in ci_ids)
    return await db.fetch(
        engine(),
        f"SELECT ci, metric, incident, incident_key FROM alert_open WHERE ci IN ({marks}) ORDER BY ci, metric",
        *ci_ids,
    )


__all__ = [
    "NewAlert",
    "OpenClaim",
    "StoredAlert",
    "claim_open",
    "insert_alerts",
    "list_alerts",
    "outcome_counts",
    "point_open",
]
