"""The monthly report's reads: aggregated SQL over the tables of every process.

The report spans incident, alert, change, release and problem records, so it reads them with
raw, read-only SQL (`cmdb.db.fetch`, `?` placeholders, SQLite and PostgreSQL alike) rather than
through each package's repository: one GROUP BY per figure instead of loading ten thousand
incidents into Python. Times are UTC instants; the caller turns the customer's local month into
[start, end). Writes touch only `monthly_report`, this package's own table.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from change.models import TERMINAL_STATES, RFCState
from cmdb import db
from cmdb import repository as cmdb_repo
from cmdb.models import Scope
from problem.report_tables import MonthlyReportTable

PRIORITY_ORDER = ("critical", "high", "normal", "low")
TERMINAL_RFC_STATES = tuple(sorted(state.value for state in TERMINAL_STATES))
RFC_STATES = tuple(RFCState.values())
CLOSED_PROBLEM_STATES = ("resolved", "closed")
NOTABLE_INCIDENTS = 50
REPEAT_THRESHOLD = 3


def engine() -> Any:
    return MonthlyReportTable._meta.db


def _ts(at: dt.datetime) -> Any:
    return cmdb_repo.bulk_timestamp(at)


def _opt_utc(value: Any) -> dt.datetime | None:
    return None if value is None else cmdb_repo._utc(value)


def _chunks(items: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


async def _fetch(sql: str, *args: Any) -> list[dict[str, Any]]:
    return await db.fetch(engine(), sql, *args)


async def _rows(sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Rows as plain tuples: for the reads of thousands of rows, where a dict per row shows."""
    return await db.fetch_tuples(engine(), sql, *args)


def _stored_text(column: str) -> str:
    """A timestamp column read as stored. On SQLite that is the text Piccolo wrote (UTC,
    "2026-10-03 10:00:00+00:00"): an expression has no declared type, so the driver hands it
    over as is instead of parsing it into a datetime that the report would only format back
    (`reports._iso` does that in one step). PostgreSQL's driver returns datetimes either way."""
    return f"+{column}" if db.is_sqlite(engine()) else column


# --- incidents -----------------------------------------------------------------------------

_RESPONDED = "COALESCE(responded_at, acknowledged_at)"


async def incident_buckets(
    tenant_id: int, start: dt.datetime, end: dt.datetime, week_starts: Sequence[dt.datetime], now: dt.datetime
) -> list[dict[str, Any]]:
    """Incidents raised in [start, end) grouped by priority and week (index into week_starts),
    with the agreed-time counts. Response is measured once answered or once its due time has
    passed (`now`); likewise resolution. `resolved` counts those resolved by the month's end."""
    week_case = "CASE " + " ".join(f"WHEN created_at < ? THEN {i}" for i in range(len(week_starts) - 1))
    week_case += f" ELSE {max(len(week_starts) - 1, 0)} END"
    week_args = [_ts(w) for w in week_starts[1:]]
    # The flags are worked out per incident in a subquery that SQLite keeps apart (LIMIT -1):
    # its GROUP BY then sorts small rows of numbers instead of every timestamp the flags read,
    # a third less time for a month of ten thousand incidents. PostgreSQL needs no such fence.
    fence = " LIMIT -1" if db.is_sqlite(engine()) else ""
    sql = f"""
        SELECT priority, week, COUNT(*) AS total, SUM(response_met) AS response_met,
            SUM(response_measured) AS response_measured, SUM(resolution_met) AS resolution_met,
            SUM(resolution_measured) AS resolution_measured, SUM(resolved) AS resolved,
            SUM(reopened) AS reopened, SUM(from_alerts) AS from_alerts
        FROM (SELECT priority, {week_case} AS week,
            CASE WHEN {_RESPONDED} IS NOT NULL AND response_due IS NOT NULL
                 AND {_RESPONDED} <= response_due THEN 1 ELSE 0 END AS response_met,
            CASE WHEN response_due IS NOT NULL AND ({_RESPONDED} IS NOT NULL OR response_due < ?)
                THEN 1 ELSE 0 END AS response_measured,
            CASE WHEN resolved_at IS NOT NULL AND resolution_due IS NOT NULL
                 AND resolved_at <= resolution_due THEN 1 ELSE 0 END AS resolution_met,
            CASE WHEN resolution_due IS NOT NULL AND (resolved_at IS NOT NULL OR resolution_due < ?)
                THEN 1 ELSE 0 END AS resolution_measured,
            CASE WHEN resolved_at IS NOT NULL AND resolved_at < ? THEN 1 ELSE 0 END AS resolved,
            CASE WHEN reopen_count > 0 THEN 1 ELSE 0 END AS reopened,
            CASE WHEN source = 'alert' THEN 1 ELSE 0 END AS from_alerts
            FROM incident
            WHERE tenant = ? AND created_at >= ? AND created_at < ?{fence}) AS flagged
        GROUP BY priority, week
    """
    rows = await _fetch(sql, *week_args, _ts(now), _ts(now), _ts(min(end, now)), tenant_id, _ts(start), _ts(end))
    return [{k: (int(v) if k != "priority" and v is not None else v) for k, v in row.items()} for row in rows]


async def incident_scalars(tenant_id: int, start: dt.datetime, end: dt.datetime, cut: dt.datetime) -> dict[str, int]:
    """In one round trip: incidents of the customer (of any month) unresolved at `cut`; the
    month's incidents that were escalated; minutes logged on the month's incidents."""
    rows = await _fetch(
        "SELECT "
        "(SELECT COUNT(*) FROM incident WHERE tenant = ? AND created_at < ? "
        " AND (resolved_at IS NULL OR resolved_at >= ?) AND (closed_at IS NULL OR closed_at >= ?)) AS open_at_end, "
        "(SELECT COUNT(DISTINCT e.subject_id) FROM escalation e JOIN incident i ON i.id = e.subject_id "
        " WHERE e.subject_kind = 'incident' AND i.tenant = ? AND i.created_at >= ? AND i.created_at < ?) AS escalated, "
        "(SELECT COALESCE(SUM(t.minutes), 0) FROM incident i JOIN incident_time t ON t.incident = i.id "
        " WHERE i.tenant = ? AND i.created_at >= ? AND i.created_at < ?) AS minutes_worked",
        tenant_id,
        _ts(cut),
        _ts(cut),
        _ts(cut),
        tenant_id,
        _ts(start),
        _ts(end),
        tenant_id,
        _ts(start),
        _ts(end),
    )
    return {name: int(value or 0) for name, value in rows[0].items()}


async def notable_incidents(
    tenant_id: int, start: dt.datetime, end: dt.datetime, limit: int = NOTABLE_INCIDENTS
) -> list[dict[str, Any]]:
    """The month's incidents most worth a line in the report: most urgent first, then oldest."""
    # Pick the ids from the covering index first, then read only those rows, in one round
    # trip; the pick's order is restored here (an outer ORDER BY would sort them all again).
    rows = await _fetch(
        "SELECT id, key, title, priority, status, created_at, responded_at, acknowledged_at, resolved_at, "
        "response_due, resolution_due, reopen_count, closure FROM incident WHERE id IN (SELECT id FROM incident "
        "WHERE tenant = ? AND created_at >= ? AND created_at < ? ORDER BY CASE priority WHEN 'critical' THEN 0 "
        "WHEN 'high' THEN 1 WHEN 'normal' THEN 2 ELSE 3 END, created_at, id LIMIT ?)",
        tenant_id,
        _ts(start),
        _ts(end),
        limit,
    )
    rank = {priority: n for n, priority in enumerate(PRIORITY_ORDER)}
    rows.sort(key=lambda row: (rank.get(row["priority"], 3), cmdb_repo._utc(row["created_at"]), row["id"]))
    items = []
    for row in rows:
        closure = cmdb_repo._json(row["closure"], None) or {}
        responded = _opt_utc(row["responded_at"]) or _opt_utc(row["acknowledged_at"])
        resolved = _opt_utc(row["resolved_at"])
        response_due = _opt_utc(row["response_due"])
        resolution_due = _opt_utc(row["resolution_due"])
        items.append(
            {
                "id": row["id"],
                "key": row["key"],
                "title": row["title"],
                "priority": row["priority"],
                "status": row["status"],
                "created_at": cmdb_repo._utc(row["created_at"]).isoformat(),
                "resolved_at": resolved.isoformat() if resolved else None,
                "resolution": str(closure.get("actions_taken") or closure.get("details") or ""),
                "response_met": (responded <= response_due) if responded and response_due else None,
                "resolution_met": (resolved <= resolution_due) if resolved and resolution_due else None,
                "reopened": int(row["reopen_count"] or 0) > 0,
            }
        )
    return items


async def repeated_cis(tenant_id: int, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """CIs with at least REPEAT_THRESHOLD incidents raised in the month, most first, with
    the open problem (if any) already looking into them."""
    # COUNT(*) is the count of distinct incidents: incident_ci holds a pair once (unique index).
    rows = await _fetch(
        "SELECT top.ci AS ci, top.n AS n, c.name AS name FROM (SELECT ic.ci AS ci, COUNT(*) AS n "
        "FROM incident i JOIN incident_ci ic ON ic.incident = i.id "
        "WHERE i.tenant = ? AND i.created_at >= ? AND i.created_at < ? "
        "GROUP BY ic.ci HAVING COUNT(*) >= ? ORDER BY 2 DESC, 1 LIMIT 10) top "
        "LEFT JOIN ci c ON c.id = top.ci ORDER BY top.n DESC, top.ci",
        tenant_id,
        _ts(start),
        _ts(end),
        REPEAT_THRESHOLD,
    )
    found = [
        {
            "ci": row["ci"],
            "name": row["name"] if row["name"] is not None else f"#{row['ci']}",
            "incidents": int(row["n"]),
            "problem": None,
        }
        for row in rows
    ]
    if found:
        ids = [item["ci"] for item in found]
        problems = await _fetch(
            f"SELECT pc.ci AS ci, p.key AS key FROM problem_ci pc JOIN problem p ON p.id = pc.problem "
            f"WHERE pc.ci IN ({_marks(len(ids))}) AND p.status NOT IN ('resolved', 'closed') ORDER BY p.id",
            *ids,
        )
        keys = {row["ci"]: row["key"] for row in problems}
        for item in found:
            item["problem"] = keys.get(item["ci"])
    return found


async def release_incidents(tenant_id: int, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Releases that incidents raised in the month were linked to (their watch periods)."""
    rows = await _fetch(
        "SELECT r.key AS key, r.title AS title, r.deployed_at AS deployed_at, COUNT(DISTINCT i.id) AS n "
        "FROM incident_release ir JOIN incident i ON i.id = ir.incident JOIN release r ON r.id = ir.release "
        "WHERE i.tenant = ? AND i.created_at >= ? AND i.created_at < ? "
        "GROUP BY r.key, r.title, r.deployed_at ORDER BY 4 DESC, 1 LIMIT 10",
        tenant_id,
        _ts(start),
        _ts(end),
    )
    return [
        {
            "key": row["key"],
            "title": row["title"],
            "deployed_at": _opt_utc(row["deployed_at"]).isoformat() if row["deployed_at"] else None,  # type: ignore[union-attr]
            "incidents": int(row["n"]),
        }
        for row in rows
    ]


# --- alerts --------------------------------------------------------------------------------


async def alert_counts(tenant_id: int, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    rows = await _fetch(
        "SELECT metric, COUNT(*) AS received, "
        "COUNT(CASE WHEN breached THEN 1 END) AS breached, "
        "COUNT(CASE WHEN outcome = 'opened' THEN 1 END) AS opened, "
        "COUNT(CASE WHEN outcome = 'joined' THEN 1 END) AS joined "
        "FROM alert WHERE tenant = ? AND observed_at >= ? AND observed_at < ? GROUP BY metric ORDER BY 2 DESC, 1",
        tenant_id,
        _ts(start),
        _ts(end),
    )
    return [
        {
            "metric": row["metric"],
            "received": int(row["received"]),
            "breached": int(row["breached"] or 0),
            "opened": int(row["opened"] or 0),
            "joined": int(row["joined"] or 0),
        }
        for row in rows
    ]


# --- planned changes -------------------------------------------------------------------------


RFC_ROW = ("id", "key", "title", "state", "priority", "type", "urgency", "created_at")
"""The first columns, in order, of the RFC rows `rfc_outcomes` and `rfcs_open_at` answer
(tuples: two thousand RFCs a month are enough for a dict per row to show); `created_at` as
stored. A row may carry more columns after these."""


def _rfc_columns(alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    names = ", ".join(f"{prefix}{name}" for name in RFC_ROW[:-1])
    return f"{names}, {_stored_text(prefix + 'created_at')}"


async def rfc_outcomes(
    tenant_id: int, start: dt.datetime, end: dt.datetime, actions: Sequence[str]
) -> list[tuple[Any, ...]]:
    """RFCs whose history records one of `actions` in [start, end): RFC_ROW followed by the
    action and its first time, in time order (one per RFC: its earliest such action). The
    time is as stored (SQLite's text sorts as the instants do: it is how the SQL compares)."""
    # Every such entry, not a GROUP BY for the earliest: an RFC has one or two, and picking
    # here costs less than the database sorting them all first.
    rows = await _rows(
        f"SELECT {_rfc_columns('r')}, h.action, {_stored_text('h.at')} FROM history h JOIN rfc r ON r.id = h.entity_id "
        f"WHERE h.tenant = ? AND h.action IN ({_marks(len(actions))}) AND h.at >= ? AND h.at < ? "
        "AND h.entity = 'rfc' AND h.ci_id IS NULL",
        tenant_id,
        *actions,
        _ts(start),
        _ts(end),
    )
    first: dict[int, tuple[Any, ...]] = {}
    for row in rows:
        current = first.get(row[0])
        if current is None or row[9] < current[9]:
            first[row[0]] = row
    return sorted(first.values(), key=lambda row: (row[9], row[0]))


async def rfcs_open_at(tenant_id: int, end: dt.datetime) -> list[tuple[Any, ...]]:
    """RFCs not in a terminal state at `end` (RFC_ROW, with the state at `end`), by id.
    Candidates are the RFCs open now and those with history since `end`, in one read; for the
    latter the state at `end` is rebuilt from the history (each entry records the state after
    it). An RFC untouched since `end` still has the state it had then."""
    open_states = [state for state in RFC_STATES if state not in TERMINAL_RFC_STATES]
    # Each candidate with a flag: changed since `end` (its state now may not be its state then).
    select = f"SELECT {_rfc_columns()}, CASE WHEN updated_at >= ? THEN 1 ELSE 0 END AS moved FROM rfc "
    rows = await _rows(
        f"{select} WHERE tenant = ? AND state IN ({_marks(len(open_states))}) AND created_at < ? "
        f"UNION ALL {select} WHERE tenant = ? AND created_at < ? AND id IN (SELECT entity_id FROM history "
        "WHERE tenant = ? AND at >= ? AND entity = 'rfc' AND ci_id IS NULL)",
        _ts(end),
        tenant_id,
        *open_states,
        _ts(end),
        _ts(end),
        tenant_id,
        _ts(end),
        tenant_id,
        _ts(end),
    )
    candidates = {row[0]: row for row in rows}  # an RFC open now and touched since is in both
    moved = [rfc_id for rfc_id, row in candidates.items() if row[-1]]
    state_then: dict[int, str] = {}
    for chunk in _chunks(moved):
        history = await _fetch(
            f"SELECT entity_id, after FROM history WHERE entity = 'rfc' AND ci_id IS NULL AND at < ? "
            f"AND entity_id IN ({_marks(len(chunk))}) ORDER BY entity_id, id",
            _ts(end),
            *chunk,
        )
        for entry in history:
            after = cmdb_repo._json(entry["after"], {}) or {}
            if isinstance(after, dict) and after.get("state"):
                state_then[entry["entity_id"]] = str(after["state"])
    result = []
    for _, row in sorted(candidates.items()):
        if not row[-1]:  # as it was then; the trailing flag is past RFC_ROW and harmless
            if row[3] not in TERMINAL_RFC_STATES:
                result.append(row)
            continue
        state = state_then.get(row[0], row[3])
        if state not in TERMINAL_RFC_STATES:
            result.append((*row[:3], state, *row[4:-1]))
    return result


# --- problems ------------------------------------------------------------------------------


async def problems_of_month(tenant_id: int, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Problems opened in the month, still open at its end, or resolved during it."""
    rows = await _fetch(
        "SELECT id, key, title, status, known_error, root_cause, workaround, created_at, updated_at FROM problem "
        "WHERE tenant = ? AND created_at < ? AND (status NOT IN ('resolved', 'closed') OR updated_at >= ?) "
        "ORDER BY id",
        tenant_id,
        _ts(end),
        _ts(start),
    )
    return [
        {
            **row,
            "known_error": bool(row["known_error"]),
            "created_at": cmdb_repo._utc(row["created_at"]),
            "updated_at": cmdb_repo._utc(row["updated_at"]),
        }
        for row in rows
    ]


# --- people --------------------------------------------------------------------------------


async def report_contacts(tenant_id: int, usernames: Sequence[str]) -> list[int]:
    """Active people of the tenant named in `usernames`, or, when none are named, its customer contacts."""
    people, _ = await cmdb_repo.list_people(
        Scope.everything(0),
        tenant_id=tenant_id,
        role=None if usernames else "customer",
        expertise=None,
        limit=500,
        offset=0,
    )
    wanted = set(usernames)
    return [person.id for person in people if person.active and (not wanted or person.username in wanted)]


# --- the frozen copies -------------------------------------------------------------------------


async def issued(tenant_id: int, month: str) -> dict[str, Any] | None:
    row = (
        await MonthlyReportTable.select()
        .where((MonthlyReportTable.tenant == tenant_id) & (MonthlyReportTable.month == month))
        .first()
    )
    if row is None:
        return None
    return {
        "issued_at": cmdb_repo._utc(row["issued_at"]),
        "issued_by": row["issued_by"],
        "data": cmdb_repo._json(row["data"], {}),
    }


async def issued_tenants(months: Sequence[str]) -> set[tuple[int, str]]:
    if not months:
        return set()
    rows = await MonthlyReportTable.select(MonthlyReportTable.tenant, MonthlyReportTable.month).where(
        MonthlyReportTable.month.is_in(list(months))
    )
    return {(row["tenant"], row["month"]) for row in rows}


async def insert_issued(
    tenant_id: int, month: str, issued_at: dt.datetime, issued_by: str, data: dict[str, Any]
) -> bool:
    """Freeze a report; False if one was issued for this customer and month already (the
    unique index decides, so concurrent issuers cannot both win)."""
    created = (
        await MonthlyReportTable.insert(
            MonthlyReportTable(
                tenant=tenant_id,
                month=month,
                issued_at=issued_at,
                issued_by=issued_by,
                data=json.dumps(data, default=str, sort_keys=True),
            )
        )
        .on_conflict(action="DO NOTHING")
        .returning(MonthlyReportTable.id)
    )
    return bool(created)
