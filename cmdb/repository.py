"""The only module that queries the CMDB's tables. Returns `cmdb.models` records.

Every read that can reach tenant data takes a `Scope`: provider staff see every tenant, a
customer contact only their own. Another tenant's row answers exactly like a missing one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from piccolo.columns.combination import Combinable, WhereRaw
from piccolo.engine.base import Engine

from cmdb import db
from cmdb.models import (
    CI,
    BlackoutRecord,
    ChangeWindowRecord,
    CIClass,
    CIStatus,
    Criticality,
    Customer,
    HistoryEntry,
    Person,
    Relationship,
    RelationshipType,
    Role,
    Scope,
)
from cmdb.tables import (
    BlackoutTable,
    ChangeWindowTable,
    CISupportTable,
    CITable,
    CredentialTable,
    CustomerTable,
    GraphLogTable,
    GraphRevisionTable,
    HistoryTable,
    PersonTable,
    RelationshipTable,
    SignInAttemptTable,
)


def engine() -> Engine:
    return CITable._meta.db


def _json(value: Any, default: Any) -> Any:
    if value is None:
        return default
    if isinstance(value, str):
        return json.loads(value) if value else default
    return value


def _utc(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    if value.utcoffset() == dt.timedelta(0):
        return value  # type: ignore[no-any-return]
    return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


# --- customers ---------------------------------------------------------------------------


def _customer(row: Mapping[str, Any]) -> Customer:
    return Customer(
        id=row["id"],
        key=row["key"],
        name=row["name"],
        is_provider=bool(row["is_provider"]),
        timezone=row["timezone"],
        holiday_region=row["holiday_region"],
        calendar=_json(row["calendar"], {}),
        sla=_json(row["sla"], {}),
        version=row["version"],
        created_at=_utc(row["created_at"]),
    )


async def provider() -> Customer | None:
    rows = await CustomerTable.select().where(CustomerTable.is_provider.eq(True)).limit(1)
    return _customer(rows[0]) if rows else None


async def get_customer(scope: Scope, ref: int | str) -> Customer | None:
    where = CustomerTable.id == ref if isinstance(ref, int) else CustomerTable.key == ref
    rows = await CustomerTable.select().where(where)
    if not rows or not scope.can_see(rows[0]["id"]):
        return None
    return _customer(rows[0])


async def customers_by_ids(ids: Iterable[int]) -> dict[int, Customer]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await CustomerTable.select().where(CustomerTable.id.is_in(wanted))
    return {row["id"]: _customer(row) for row in rows}


async def list_customers(scope: Scope, limit: int, offset: int) -> tuple[list[Customer], int]:
    where: Combinable | None = None if scope.is_provider else CustomerTable.id == scope.tenant_id
    query = CustomerTable.select().order_by(CustomerTable.key).limit(limit).offset(offset)
    count = CustomerTable.count()
    if where is not None:
        query, count = query.where(where), count.where(where)
    return [_customer(row) for row in await query], await count


async def insert_customer(values: Mapping[str, Any]) -> int:
    rows = await CustomerTable.insert(CustomerTable(**values)).returning(CustomerTable.id)
    return int(rows[0]["id"])


async def update_customer(customer_id: int, expected_version: int, values: Mapping[Any, Any]) -> bool:
    rows = (
        await CustomerTable.update({**values, CustomerTable.version: expected_version + 1})
        .where((CustomerTable.id == customer_id) & (CustomerTable.version == expected_version))
        .returning(CustomerTable.id)
    )
    return bool(rows)


async def customer_key_exists(key: str) -> bool:
    return bool(await CustomerTable.exists().where(CustomerTable.key == key))


# --- people and credentials --------------------------------------------------------------


def _person(row: Mapping[str, Any]) -> Person:
    return Person(
        id=row["id"],
        username=row["username"],
        name=row["name"],
        tenant_id=row["tenant"],
        roles=frozenset(Role(r) for r in _json(row["roles"], [])),
        email=row["email"],
        phone=row["phone"],
        availability=row["availability"],
        expertise=frozenset(_json(row["expertise"], [])),
        active=bool(row["active"]),
        version=row["version"],
    )


async def get_person(scope: Scope, ref: int | str) -> Person | None:
    query = PersonTable.select()
    query = query.where(PersonTable.id == ref) if isinstance(ref, int) else query.where(PersonTable.username == ref)
    rows = await query
    if not rows or not scope.can_see(rows[0]["tenant"]):
        return None
    return _person(rows[0])


async def person_with_password(username: str) -> tuple[Person, str | None] | None:
    rows = await PersonTable.select().where(PersonTable.username == username)
    return (_person(rows[0]), rows[0]["password_hash"]) if rows else None


async def people_by_ids(ids: Iterable[int]) -> dict[int, Person]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await PersonTable.select().where(PersonTable.id.is_in(wanted))
    return {row["id"]: _person(row) for row in rows}


async def list_people(
    scope: Scope, *, tenant_id: int | None, role: str | None, expertise: str | None, limit: int, offset: int
) -> tuple[list[Person], int]:
    conditions: list[Combinable] = []
    if not scope.is_provider:
        conditions.append(PersonTable.tenant == scope.tenant_id)
    if tenant_id is not None:
        conditions.append(PersonTable.tenant == tenant_id)
    # JSON lists searched as text: portable across SQLite and PostgreSQL's jsonb.
    if role:
        conditions.append(WhereRaw("CAST(roles AS TEXT) LIKE {}", f'%"{role}"%'))
    if expertise:
        conditions.append(WhereRaw("CAST(expertise AS TEXT) LIKE {}", f'%"{expertise}"%'))
    query = PersonTable.select().order_by(PersonTable.username).limit(limit).offset(offset)
    count = PersonTable.count()
    if conditions:
        query, count = query.where(*conditions), count.where(*conditions)
    return [_person(row) for row in await query], await count


async def insert_person(values: Mapping[str, Any]) -> int:
    rows = await PersonTable.insert(PersonTable(**values)).returning(PersonTable.id)
    return int(rows[0]["id"])


async def username_exists(username: str) -> bool:
    return bool(await PersonTable.exists().where(PersonTable.username == username))


async def set_password_hash(person_id: int, password_hash: str) -> None:
    await PersonTable.update({PersonTable.password_hash: password_hash}).where(PersonTable.id == person_id)


async def insert_credential(token_hash: str, person_id: int, kind: str, now: dt.datetime, expires: dt.datetime) -> None:
    await CredentialTable.insert(
        CredentialTable(token_hash=token_hash, person=person_id, kind=kind, created_at=now, expires_at=expires)
    )


async def person_for_credential(token_hash: str, kind: str, now: dt.datetime) -> Person | None:
    rows = await db.fetch(
        engine(),
        "SELECT p.* FROM credential c JOIN person p ON p.id = c.person "
        "WHERE c.token_hash = ? AND c.kind = ? AND c.expires_at > ? AND p.active",
        token_hash,
        kind,
        now,
    )
    return _person(rows[0]) if rows else None


async def sign_in_lock(username: str) -> tuple[int, dt.datetime | None]:
    rows = await SignInAttemptTable.select().where(SignInAttemptTable.username == username)
    if not rows:
        return 0, None
    locked = rows[0]["locked_until"]
    return int(rows[0]["failures"]), _utc(locked) if locked is not None else None


async def record_sign_in_failure(username: str, failures: int, locked_until: dt.datetime | None) -> None:
    updated = (
        await SignInAttemptTable.update(
            {SignInAttemptTable.failures: failures, SignInAttemptTable.locked_until: locked_until}
        )
        .where(SignInAttemptTable.username == username)
        .returning(SignInAttemptTable.username)
    )
    if not updated:
        await SignInAttemptTable.insert(
            SignInAttemptTable(username=username, failures=failures, locked_until=locked_until)
        )


async def clear_sign_in_failures(username: str) -> None:
    await SignInAttemptTable.delete().where(SignInAttemptTable.username == username)


async def delete_credential(token_hash: str) -> None:
    await CredentialTable.delete().where(CredentialTable.token_hash == token_hash)


# --- configuration items -----------------------------------------------------------------


_CLASS = CIClass._value2member_map_
_STATUS = CIStatus._value2member_map_
_CRITICALITY = Criticality._value2member_map_


def _ci(row: Mapping[str, Any], support: Sequence[int] = ()) -> CI:
    # Hot path (every list page builds 50): plain dict lookups instead of Enum calls.
    return CI(
        id=row["id"],
        tenant_id=row["tenant"],
        name=row["name"],
        ci_class=_CLASS[row["ci_class"]],  # type: ignore[arg-type]
        status=_STATUS[row["status"]],  # type: ignore[arg-type]
        criticality=_CRITICALITY[row["criticality"]],  # type: ignore[arg-type]
        attributes=_json(row["attributes"], {}),
        version=row["version"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        description=row["description"] or "",
        owner_id=row["owner"],
        support_ids=tuple(support),
    )


def _visible(scope: Scope) -> Combinable | None:
    return None if scope.is_provider else (CITable.tenant == scope.tenant_id)


async def find_ci(scope: Scope, ref: int | str, tenant_id: int | None = None) -> list[CI]:
    """CIs matching an id or a name (a name may be qualified as CUSTOMER:name). Several come
    back only when provider staff name a CI whose name several customers use."""
    query = CITable.select()
    if isinstance(ref, int):
        query = query.where(CITable.id == ref)
    else:
        name = ref
        if ":" in ref and tenant_id is None:
            key, _, rest = ref.partition(":")
            customer = await get_customer(scope, key)
            if customer is not None:
                tenant_id, name = customer.id, rest
        query = query.where(CITable.name == name)
        if tenant_id is not None:
            query = query.where(CITable.tenant == tenant_id)
    visible = _visible(scope)
    if visible is not None:
        query = query.where(visible)
    rows = await query
    if len(rows) == 1:
        support = await support_of(rows[0]["id"])
        return [_ci(rows[0], support)]
    return [_ci(row) for row in rows]


async def support_of(ci_id: int) -> list[int]:
    rows = await CISupportTable.select(CISupportTable.person).where(CISupportTable.ci == ci_id)
    return [row["person"] for row in rows]


async def cis_by_ids(ids: Iterable[int]) -> dict[int, CI]:
    """Unscoped on purpose: graph answers fetch their nodes here and the service redacts."""
    wanted = list(set(ids))
    found: dict[int, CI] = {}
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start : start + 5000]
        rows = await CITable.select().where(CITable.id.is_in(chunk))
        found.update((row["id"], _ci(row)) for row in rows)
    return found


async def tenant_ci_refs(
    tenant_id: int, ids: Sequence[int], names: Sequence[str]
) -> tuple[dict[int, int], dict[str, int]]:
    """Which of these ids and names are CIs of this tenant, in one read."""
    if not ids and not names:
        return {}, {}
    conditions = []
    args: list[Any] = [tenant_id]
    if ids:
        conditions.append(f"id IN ({', '.join('?' for _ in ids)})")
        args += list(ids)
    if names:
        conditions.append(f"name IN ({', '.join('?' for _ in names)})")
        args += list(names)
    rows = await db.fetch(engine(), f"SELECT id, name FROM ci WHERE tenant = ? AND ({' OR '.join(conditions)})", *args)
    wanted_ids = set(ids)
    return (
        {row["id"]: row["id"] for row in rows if row["id"] in wanted_ids},
        {row["name"]: row["id"] for row in rows},
    )


async def ci_tenants(ids: Iterable[int]) -> dict[int, int]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = await CITable.select(CITable.id, CITable.tenant).where(CITable.id.is_in(wanted))
    return {row["id"]: row["tenant"] for row in rows}


async def list_cis(
    scope: Scope,
    *,
    tenant_id: int | None,
    ci_class: str | None,
    status: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> tuple[list[CI], int]:
    # Plain SQL: the busiest read of the product, and Piccolo's query building costs more
    # than the query itself here. Ordered by the (name, id) index.
    conditions: list[str] = []
    args: list[Any] = []
    if not scope.is_provider:
        conditions.append("tenant = ?")
        args.append(scope.tenant_id)
    if tenant_id is not None:
        conditions.append("tenant = ?")
        args.append(tenant_id)
    if ci_class:
        conditions.append("ci_class = ?")
        args.append(ci_class)
    if status:
        conditions.append("status = ?")
        args.append(status)
    if q:
        # SQLite's LIKE ignores ASCII case already; PostgreSQL needs ILIKE. The user's own
        # wildcards are escaped: a search for "50%" means the text "50%".
        like = "LIKE" if db.is_sqlite(engine()) else "ILIKE"
        conditions.append(f"(name {like} ? ESCAPE '\\' OR description {like} ? ESCAPE '\\')")
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        args += [pattern, pattern]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await db.fetch(engine(), f"SELECT * FROM ci{where} ORDER BY name, id LIMIT ? OFFSET ?", *args, limit, offset)
    if len(rows) < limit and (offset == 0 or rows):
        total = offset + len(rows)
    else:
        total = int((await db.fetch(engine(), f"SELECT COUNT(*) AS n FROM ci{where}", *args))[0]["n"])
    return [_ci(row) for row in rows], total


async def ci_name_taken(tenant_id: int, name: str, exclude_id: int | None = None) -> bool:
    query = CITable.exists().where((CITable.tenant == tenant_id) & (CITable.name == name))
    if exclude_id is not None:
        query = query.where(CITable.id != exclude_id)
    return bool(await query)


async def insert_ci(values: Mapping[str, Any]) -> int:
    rows = await CITable.insert(CITable(**values)).returning(CITable.id)
    return int(rows[0]["id"])


async def update_ci(ci_id: int, expected_version: int, values: Mapping[Any, Any]) -> bool:
    rows = (
        await CITable.update({**values, CITable.version: expected_version + 1})
        .where((CITable.id == ci_id) & (CITable.version == expected_version))
        .returning(CITable.id)
    )
    return bool(rows)


async def replace_support(ci_id: int, person_ids: Sequence[int]) -> None:
    await CISupportTable.delete().where(CISupportTable.ci == ci_id)
    if person_ids:
        await CISupportTable.insert(*[CISupportTable(ci=ci_id, person=p, role="support") for p in person_ids])


# --- relationships -----------------------------------------------------------------------


def _relationship(row: Mapping[str, Any]) -> Relationship:
    return Relationship(
        id=row["id"],
        tenant_id=row["tenant"],
        source_id=row["source"],
        target_id=row["target"],
        type=RelationshipType(row["type"]),
        created_at=_utc(row["created_at"]),
        note=row["note"] or "",
    )


async def get_relationship(scope: Scope, rel_id: int) -> Relationship | None:
    rows = await RelationshipTable.select().where(RelationshipTable.id == rel_id)
    if not rows or not scope.can_see(rows[0]["tenant"]):
        return None
    return _relationship(rows[0])


async def relationships_of(ci_id: int) -> list[Relationship]:
    rows = (
        await RelationshipTable.select()
        .where((RelationshipTable.source == ci_id) | (RelationshipTable.target == ci_id))
        .order_by(RelationshipTable.id)
    )
    return [_relationship(row) for row in rows]


async def relationship_exists(source_id: int, target_id: int, type_: str) -> bool:
    return bool(
        await RelationshipTable.exists().where(
            (RelationshipTable.source == source_id)
            & (RelationshipTable.target == target_id)
            & (RelationshipTable.type == type_)
        )
    )


async def insert_relationship(values: Mapping[str, Any]) -> int:
    rows = await RelationshipTable.insert(RelationshipTable(**values)).returning(RelationshipTable.id)
    return int(rows[0]["id"])


async def delete_relationship(rel_id: int) -> None:
    await RelationshipTable.delete().where(RelationshipTable.id == rel_id)


async def graph_arrays() -> tuple[list[Any], list[Any]]:
    """Every CI (id, tenant) and relationship (id, source, target, type code) as integer
    columns, for a full graph build. Type codes follow the order of `EDGE_TYPES`."""
    from cmdb.graph import EDGE_TYPES

    cases = " ".join(f"WHEN '{name}' THEN {code}" for code, name in enumerate(EDGE_TYPES))
    # "+ 0" drops the declared column type, so SQLite skips Piccolo's per-value Python
    # converter for INTEGER columns (seconds at a million rows).
    nodes = await db.fetch_int_columns(engine(), "SELECT id + 0, tenant + 0 FROM ci", 2)
    edges = await db.fetch_int_columns(
        engine(), f"SELECT id + 0, source + 0, target + 0, CASE type {cases} END FROM relationship", 4
    )
    return nodes, edges


# --- history -----------------------------------------------------------------------------


def _history(row: Mapping[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        id=row["id"],
        tenant_id=row["tenant"],
        entity=row["entity"],
        entity_id=row["entity_id"],
        ci_id=row["ci_id"],
        other_ci_id=row["other_ci_id"],
        action=row["action"],
        actor_id=row["actor_id"],
        actor_name=row["actor_name"],
        at=_utc(row["at"]),
        before=_json(row["before"], None),
        after=_json(row["after"], None),
        rfc=row["rfc"],
        unauthorized_fields=tuple(_json(row["unauthorized_fields"], [])),
        comment=row["comment"] or "",
    )


def history_row(
    *,
    tenant_id: int,
    entity: str,
    entity_id: int,
    action: str,
    actor_id: int | None,
    actor_name: str,
    at: dt.datetime,
    ci_id: int | None = None,
    other_ci_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    rfc: str | None = None,
    unauthorized_fields: Sequence[str] = (),
    comment: str = "",
) -> HistoryTable:
    return HistoryTable(
        tenant=tenant_id,
        entity=entity,
        entity_id=entity_id,
        ci_id=ci_id,
        other_ci_id=other_ci_id,
        action=action,
        actor_id=actor_id,
        actor_name=actor_name,
        at=at,
        before=json.dumps(before, default=str) if before is not None else None,
        after=json.dumps(after, default=str) if after is not None else None,
        rfc=rfc,
        unauthorized=bool(unauthorized_fields),
        unauthorized_fields=json.dumps(list(unauthorized_fields)),
        comment=comment,
    )


async def append_history(rows: Sequence[HistoryTable]) -> None:
    for start in range(0, len(rows), 500):
        await HistoryTable.insert(*rows[start : start + 500])


async def history_for_ci(ci_id: int, limit: int, offset: int) -> tuple[list[HistoryEntry], int]:
    where = (HistoryTable.ci_id == ci_id) | (HistoryTable.other_ci_id == ci_id)
    rows = (
        await HistoryTable.select()
        .where(where)
        .order_by(HistoryTable.at, ascending=False)
        .order_by(HistoryTable.id, ascending=False)
        .limit(limit)
        .offset(offset)
    )
    total = await HistoryTable.count().where(where)
    return [_history(row) for row in rows], total


async def history_for_entity(entity: str, entity_id: int, limit: int = 500) -> list[HistoryEntry]:
    """A record's own timeline (an RFC's events, say), oldest first, without the copies
    archived on its CIs."""
    rows = (
        await HistoryTable.select()
        .where((HistoryTable.entity == entity) & (HistoryTable.entity_id == entity_id) & HistoryTable.ci_id.is_null())
        .order_by(HistoryTable.at)
        .order_by(HistoryTable.id)
        .limit(limit)
    )
    return [_history(row) for row in rows]


async def unauthorized_changes(
    scope: Scope, *, tenant_id: int | None, since: dt.datetime | None, limit: int, offset: int
) -> tuple[list[HistoryEntry], int]:
    conditions: list[Combinable] = [HistoryTable.unauthorized == True]  # noqa: E712 - Piccolo builds SQL from it
    if not scope.is_provider:
        conditions.append(HistoryTable.tenant == scope.tenant_id)
    if tenant_id is not None:
        conditions.append(HistoryTable.tenant == tenant_id)
    if since is not None:
        conditions.append(HistoryTable.at >= since)
    rows = (
        await HistoryTable.select()
        .where(*conditions)
        .order_by(HistoryTable.at, ascending=False)
        .limit(limit)
        .offset(offset)
    )
    total = await HistoryTable.count().where(*conditions)
    return [_history(row) for row in rows], total


# --- graph revision and log --------------------------------------------------------------


async def bump_graph_revision(steps: int) -> int:
    """Reserves `steps` revisions; the row lock it takes orders concurrent graph writers."""
    rows = (
        await GraphRevisionTable.update({GraphRevisionTable.revision: GraphRevisionTable.revision + steps})
        .where(GraphRevisionTable.id == 1)
        .returning(GraphRevisionTable.revision)
    )
    return int(rows[0]["revision"])


async def append_graph_log(entries: Sequence[Mapping[str, Any]]) -> None:
    for start in range(0, len(entries), 500):
        await GraphLogTable.insert(*[GraphLogTable(**entry) for entry in entries[start : start + 500]])


async def graph_revision() -> int:
    rows = await db.fetch(engine(), "SELECT revision FROM graph_revision WHERE id = 1")
    return int(rows[0]["revision"]) if rows else 0


async def graph_log_since(revision: int, limit: int) -> list[dict[str, Any]]:
    return await db.fetch(
        engine(),
        "SELECT revision, op, ci_id, tenant_id, rel_id, source_id, target_id, type FROM graph_log "
        "WHERE revision > ? ORDER BY revision LIMIT ?",
        revision,
        limit,
    )


# --- change windows and blackouts --------------------------------------------------------


async def insert_window(values: Mapping[str, Any]) -> int:
    rows = await ChangeWindowTable.insert(ChangeWindowTable(**values)).returning(ChangeWindowTable.id)
    return int(rows[0]["id"])


async def windows_for(tenant_id: int, ci_ids: Sequence[int] | None = None) -> list[ChangeWindowRecord]:
    query = ChangeWindowTable.select().where(ChangeWindowTable.tenant == tenant_id)
    if ci_ids is not None:
        query = query.where(ChangeWindowTable.ci.is_in(list(ci_ids)) | ChangeWindowTable.ci.is_null())
    return [
        ChangeWindowRecord(
            id=row["id"],
            tenant_id=row["tenant"],
            ci_id=row["ci"],
            name=row["name"],
            days=tuple(_json(row["days"], [])),
            start=row["start"],
            duration_minutes=row["duration_minutes"],
            timezone=row["timezone"],
        )
        for row in await query.order_by(ChangeWindowTable.id)
    ]


async def insert_blackout(values: Mapping[str, Any]) -> int:
    rows = await BlackoutTable.insert(BlackoutTable(**values)).returning(BlackoutTable.id)
    return int(rows[0]["id"])


async def blackouts_for(tenant_id: int) -> list[BlackoutRecord]:
    rows = await BlackoutTable.select().where(BlackoutTable.tenant == tenant_id).order_by(BlackoutTable.starts_at)
    return [
        BlackoutRecord(
            id=row["id"],
            tenant_id=row["tenant"],
            ci_id=row["ci"],
            start=_utc(row["starts_at"]),
            end=_utc(row["ends_at"]),
            reason=row["reason"],
        )
        for row in rows
    ]


# --- human keys and the scheduler lease --------------------------------------------------


async def next_in_sequence(name: str) -> int:
    """The next number of a human-key sequence (RFC-2026 -> 42), inside the caller's transaction.
    One upsert, so two transactions taking the first number of a new year cannot both insert."""
    async with db.atomic(engine()):
        rows = await db.fetch(
            engine(),
            'INSERT INTO "key_sequence" ("name", "last_value") VALUES (?, 1) '
            'ON CONFLICT ("name") DO UPDATE SET "last_value" = "key_sequence"."last_value" + 1 '
            'RETURNING "last_value"',
            name,
        )
    return int(rows[0]["last_value"])


__all__ = ["engine"]


# --- bulk import ---------------------------------------------------------------------------

from collections.abc import AsyncIterator  # noqa: E402 - kept with the section that needs it
from contextlib import asynccontextmanager  # noqa: E402

# Raw SQL through `db.executemany` and `db.fetch`: building 100,000s of Piccolo objects costs
# more than the inserts themselves, and one multi-row INSERT would hit asyncpg's bind limit.

BULK_CHUNK = 5000
# IN (...) lists stay well under SQLite's host-parameter limit (32,766 since 3.32).
_IN_CHUNK = 900

_CI_COLUMNS = (
    "tenant",
    "name",
    "ci_class",
    "status",
    "criticality",
    "description",
    "attributes",
    "version",
    "created_at",
    "updated_at",
)
_RELATIONSHIP_COLUMNS = ("tenant", "source", "target", "type", "note", "created_at")
HISTORY_COLUMNS = (
    "tenant",
    "entity",
    "entity_id",
    "ci_id",
    "other_ci_id",
    "action",
    "actor_id",
    "actor_name",
    "at",
    "before",
    "after",
    "rfc",
    "unauthorized",
    "unauthorized_fields",
    "comment",
)


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    names = ", ".join(f'"{column}"' for column in columns)
    marks = ", ".join("?" for _ in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES ({marks})'


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def bulk_timestamp(at: dt.datetime) -> Any:
    """A timestamp parameter for raw bulk SQL. On SQLite the text Piccolo's registered adapter
    would write (str of the UTC datetime), made once instead of once per row; PostgreSQL's
    driver takes the aware datetime itself."""
    if at.tzinfo is None:
        raise ValueError("bulk timestamps must be timezone-aware")
    at = at.astimezone(dt.UTC)
    return str(at) if db.is_sqlite(engine()) else at


async def ci_ids_by_name(tenant_id: int, names: Iterable[str]) -> dict[str, int]:
    """Ids of the tenant's CIs with these names (those that exist)."""
    wanted = sorted(set(names))
    found: dict[str, int] = {}
    for chunk in _chunks(wanted, _IN_CHUNK):
        marks = ", ".join("?" for _ in chunk)
        rows = await db.fetch(
            engine(), f"SELECT id, name FROM ci WHERE tenant = ? AND name IN ({marks})", tenant_id, *chunk
        )
        found.update((row["name"], int(row["id"])) for row in rows)
    return found


async def ci_refs_by_ids(ids: Iterable[int]) -> dict[int, tuple[int, str]]:
    """id -> (tenant, name) for the CIs that exist. Unscoped: the caller checks visibility."""
    wanted = sorted(set(ids))
    found: dict[int, tuple[int, str]] = {}
    for chunk in _chunks(wanted, _IN_CHUNK):
        marks = ", ".join("?" for _ in chunk)
        rows = await db.fetch(engine(), f"SELECT id, tenant, name FROM ci WHERE id IN ({marks})", *chunk)
        found.update((int(row["id"]), (int(row["tenant"]), row["name"])) for row in rows)
    return found


async def edges_from(source_ids: Iterable[int]) -> set[tuple[int, int, str]]:
    """(source, target, type) of every relationship leaving these CIs."""
    wanted = sorted(set(source_ids))
    found: set[tuple[int, int, str]] = set()
    for chunk in _chunks(wanted, _IN_CHUNK):
        marks = ", ".join("?" for _ in chunk)
        rows = await db.fetch(
            engine(), f"SELECT source, target, type FROM relationship WHERE source IN ({marks})", *chunk
        )
        found.update((int(row["source"]), int(row["target"]), row["type"]) for row in rows)
    return found


async def max_ci_id() -> int:
    rows = await db.fetch(engine(), "SELECT COALESCE(MAX(id), 0) AS top FROM ci")
    return int(rows[0]["top"])


async def max_relationship_id() -> int:
    rows = await db.fetch(engine(), "SELECT COALESCE(MAX(id), 0) AS top FROM relationship")
    return int(rows[0]["top"])


async def bulk_insert_cis(rows: Sequence[Sequence[Any]]) -> None:
    """Rows in `_CI_COLUMNS` order, inside the caller's transaction."""
    sql = _insert_sql("ci", _CI_COLUMNS)
    for chunk in _chunks(rows, BULK_CHUNK):
        await db.executemany(engine(), sql, chunk)


async def inserted_ids(table: str, after: int, count: int) -> list[int] | None:
    """The ids of the `count` rows just inserted into `table` (all above `after`), in insertion
    order, when one cheap read can prove them; else None and the caller reads rows back.

    Ids only grow, one per inserted row in order (AUTOINCREMENT on SQLite, a sequence on
    PostgreSQL). If exactly `count` rows lie above `after` and their ids are consecutive, they
    are ours and the n-th row inserted has the n-th id. A concurrent writer on PostgreSQL leaves
    a gap or an extra row, and the proof fails safely."""
    if table not in ("ci", "relationship"):
        raise ValueError(f"no bulk ids for table {table!r}")
    rows = await db.fetch(
        engine(), f'SELECT COUNT(*) AS n, MIN(id) AS lo, MAX(id) AS hi FROM "{table}" WHERE id > ?', after
    )
    found, low, high = int(rows[0]["n"]), rows[0]["lo"], rows[0]["hi"]
    if count == 0:
        return [] if found == 0 else None
    if found == count and int(high) - int(low) + 1 == count:
        return list(range(int(low), int(high) + 1))
    return None


@asynccontextmanager
async def bulk_write_cache(megabytes: int = 256) -> AsyncIterator[None]:
    """Inside the caller's transaction on SQLite: a larger page cache while bulk rows go in,
    so index pages stay in memory instead of being spilled and re-read mid-transaction; the
    connection's own size is restored after. PostgreSQL needs nothing of the kind."""
    if not db.is_sqlite(engine()):
        yield
        return
    rows = await db.fetch(engine(), "PRAGMA cache_size")
    previous = int(next(iter(rows[0].values())))
    await db.fetch(engine(), f"PRAGMA cache_size = {-1024 * int(megabytes)}")
    try:
        yield
    finally:
        await db.fetch(engine(), f"PRAGMA cache_size = {previous}")


async def cis_after(ci_id: int) -> list[tuple[int, int, str]]:
    """(id, tenant, name) of CIs with an id above `ci_id`: how a bulk insert learns its ids.
    Ids only grow (AUTOINCREMENT on SQLite, a sequence on PostgreSQL), so rows inserted after
    reading the maximum all lie above it; on PostgreSQL others' commits may show up too, and
    the caller matches on (tenant, name), which the unique index makes exact."""
    rows = await db.fetch(engine(), "SELECT id, tenant, name FROM ci WHERE id > ?", ci_id)
    return [(int(row["id"]), int(row["tenant"]), row["name"]) for row in rows]


async def bulk_insert_relationships(rows: Sequence[Sequence[Any]]) -> None:
    """Rows in `_RELATIONSHIP_COLUMNS` order, inside the caller's transaction."""
    sql = _insert_sql("relationship", _RELATIONSHIP_COLUMNS)
    for chunk in _chunks(rows, BULK_CHUNK):
        await db.executemany(engine(), sql, chunk)


async def relationships_after(rel_id: int) -> list[tuple[int, int, int, str]]:
    """(id, source, target, type) of relationships with an id above `rel_id` (see `cis_after`)."""
    rows = await db.fetch(engine(), "SELECT id, source, target, type FROM relationship WHERE id > ?", rel_id)
    return [(int(row["id"]), int(row["source"]), int(row["target"]), row["type"]) for row in rows]


async def bulk_append_history(rows: Sequence[Sequence[Any]]) -> None:
    """History rows in `HISTORY_COLUMNS` order (JSON columns as JSON text), in the caller's
    transaction. Append-only like `append_history`."""
    sql = _insert_sql("history", HISTORY_COLUMNS)
    for chunk in _chunks(rows, BULK_CHUNK):
        await db.executemany(engine(), sql, chunk)


def is_integrity_error(error: BaseException) -> bool:
    """A unique or foreign-key violation from either driver: a concurrent writer got there
    between a bulk import's validation and its insert."""
    import sqlite3

    if isinstance(error, sqlite3.IntegrityError):
        return True
    try:
        from asyncpg.exceptions import IntegrityConstraintViolationError
    except ImportError:  # pragma: no cover - asyncpg is a dependency, but SQLite needs none of it
        return False
    return isinstance(error, IntegrityConstraintViolationError)


async def export_cis(scope: Scope, tenant_id: int | None) -> list[CI]:
    """The CIs of one tenant (or of every tenant the scope sees), oldest first."""
    if not scope.is_provider:
        tenant_id = scope.tenant_id
    if tenant_id is None:
        rows = await db.fetch(engine(), "SELECT * FROM ci ORDER BY tenant, id")
    else:
        rows = await db.fetch(engine(), "SELECT * FROM ci WHERE tenant = ? ORDER BY id", tenant_id)
    return [_ci(row) for row in rows]


async def export_relationships(scope: Scope, tenant_id: int | None) -> list[Relationship]:
    """Relationships whose source belongs to the tenant (or to any tenant the scope sees).
    A relationship's tenant is its source's tenant."""
    if not scope.is_provider:
        tenant_id = scope.tenant_id
    if tenant_id is None:
        rows = await db.fetch(engine(), "SELECT * FROM relationship ORDER BY tenant, id")
    else:
        rows = await db.fetch(engine(), "SELECT * FROM relationship WHERE tenant = ? ORDER BY id", tenant_id)
    return [_relationship(row) for row in rows]
