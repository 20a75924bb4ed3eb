"""CMDB use cases: load, decide with the pure rules, persist in one transaction, append history.

Time comes from the injected clock. Roles are checked here (what an actor may do); web guards
only mirror them. Nothing here knows about HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from cmdb import repository as repo
from cmdb.attributes import changed_controlled, validate_attributes
from cmdb.calendar import validate_calendar_dict
from cmdb.db import atomic
from cmdb.errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound, StaleVersion
from cmdb.graph import EDGE_TYPES, GraphIndex
from cmdb.graphcache import GraphCache, log_add_ci, log_add_edge, log_remove_edge, record_graph_changes
from cmdb.models import (
    CI,
    PROVIDER_ROLES,
    Actor,
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
from cmdb.security import MIN_PASSWORD_LENGTH, hash_password
from cmdb.windows import validate_window_dict

CI_WRITERS = (Role.ENGINEER, Role.CHANGE_MANAGER, Role.RELEASE_MANAGER, Role.ADMINISTRATOR)
MAX_PAGE = 500


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class ChangeAuthority(Protocol):
    """Answers whether an RFC authorizes a change to a CI. Change management plugs in here;
    the CMDB cannot import it (it sits below the processes)."""

    async def authorizes(self, rfc_ref: str, tenant_id: int, ci_id: int) -> bool: ...


class NoApprovedChanges:
    """Until change management provides RFCs, no reference can be an approved RFC."""

    async def authorizes(self, rfc_ref: str, tenant_id: int, ci_id: int) -> bool:
        return False


def require(actor: Actor, *roles: Role) -> None:
    if not actor.has_any(*roles):
        names = ", ".join(role.value for role in roles)
        raise Forbidden(f"This needs one of the roles: {names}.")


def page_bounds(limit: int, offset: int, maximum: int = MAX_PAGE) -> tuple[int, int]:
    problems = []
    if not 1 <= limit <= maximum:
        problems.append(FieldProblem("limit", f"must be between 1 and {maximum}"))
    if offset < 0:
        problems.append(FieldProblem("offset", "must be 0 or more"))
    if problems:
        raise InvalidInput(problems)
    return limit, offset


def ci_snapshot(ci: CI) -> dict[str, Any]:
    return {
        "name": ci.name,
        "class": ci.ci_class.value,
        "status": ci.status.value,
        "criticality": ci.criticality.value,
        "description": ci.description,
        "owner": ci.owner_id,
        "support": list(ci.support_ids),
        "attributes": dict(ci.attributes),
    }


@dataclass(frozen=True)
class ImpactRow:
    ci_id: int
    ci_class: CIClass | None
    depth: int
    via: int
    ci: CI | None  # None when redacted: a provider CI shown to a customer


@dataclass(frozen=True)
class ImpactResult:
    root: CI
    items: list[ImpactRow]
    total: int
    direction: str
    depth: int | None


@dataclass(frozen=True)
class PathHop:
    source: ImpactRow
    type: str
    target: ImpactRow
    rel_id: int


@dataclass
class CIInput:
    name: str
    customer: int | str
    ci_class: str
    status: str = CIStatus.LIVE.value
    criticality: str = Criticality.MEDIUM.value
    description: str = ""
    owner: int | str | None = None
    support: list[int | str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)


class CMDBService:
    def __init__(self, clock: Clock, graph: GraphCache, authority: ChangeAuthority | None = None) -> None:
        self.clock = clock
        self.graph = graph
        self.authority: ChangeAuthority = authority or NoApprovedChanges()
        self._customer_keys: dict[int, str] = {}
        # SLA terms belong to the processes above the CMDB (patch schedule, incident targets,
        # alert thresholds); each registers its check here so a customer with terms the
        # process cannot use is refused when saved, not ignored later.
        self.sla_validators: list[Callable[[Mapping[str, Any]], list[FieldProblem]]] = []

    def _entry(self, actor: Actor | None, **fields: Any) -> Any:
        """A history row for something `actor` did now (None: the operator's `keel` command)."""
        return repo.history_row(
            actor_id=actor.person_id if actor else None,
            actor_name=actor.username if actor else "keel-cli",
            at=self.clock.now(),
            **fields,
        )

    # --- customers -------------------------------------------------------------------------

    async def provider(self) -> Customer:
        provider = await repo.provider()
        if provider is None:
            raise Conflict("Keel has no provider tenant yet: run `keel migrate` and create one.")
        return provider

    async def get_customer(self, actor: Actor, ref: int | str) -> Customer:
        customer = await repo.get_customer(actor.scope, ref)
        if customer is None:
            raise NotFound("customer", ref)
        return customer

    async def list_customers(self, actor: Actor, limit: int, offset: int) -> tuple[list[Customer], int]:
        return await repo.list_customers(actor.scope, *page_bounds(limit, offset))

    def _check_customer_fields(self, data: Mapping[str, Any], problems: list[FieldProblem]) -> dict[str, Any]:
        calendar = dict(data.get("calendar") or {})
        if "timezone" in data and data["timezone"] is not None:
            calendar["timezone"] = data["timezone"]
        if "holiday_region" in data:
            calendar["holiday_region"] = data["holiday_region"]
        for field_name, reason in validate_calendar_dict(calendar):
            name = field_name if field_name in ("timezone", "holiday_region") else f"calendar.{field_name}"
            problems.append(FieldProblem(name, reason))
        sla = data.get("sla")
        if sla is not None and not isinstance(sla, dict):
            problems.append(FieldProblem("sla", "must be an object"))
        elif sla:
            for validate in self.sla_validators:
                for problem in validate(sla):
                    name = problem.field if problem.field.startswith("sla") else f"sla.{problem.field}"
                    problems.append(FieldProblem(name, problem.reason))
        return calendar

    async def create_customer(self, actor: Actor, data: Mapping[str, Any]) -> Customer:
        require(actor, Role.ADMINISTRATOR)
        problems: list[FieldProblem] = []
        key = str(data.get("key") or "").strip()
        name = str(data.get("name") or "").strip()
        if not key:
            problems.append(FieldProblem("key", "is required"))
        elif not key.replace("-", "").replace("_", "").isalnum() or len(key) > 32:
            problems.append(FieldProblem("key", "must be up to 32 letters, digits, '-' or '_'"))
        if not name:
            problems.append(FieldProblem("name", "is required"))
        calendar = self._check_customer_fields(data, problems)
        if key and await repo.customer_key_exists(key):
            problems.append(FieldProblem("key", f"customer {key} already exists"))
        if problems:
            raise InvalidInput(problems)
        now = self.clock.now()
        async with atomic(repo.engine()):
            customer_id = await repo.insert_customer(
                {
                    "key": key,
                    "name": name,
                    "is_provider": bool(data.get("is_provider", False)),
                    "timezone": calendar.get("timezone") or "UTC",
                    "holiday_region": calendar.get("holiday_region"),
                    "calendar": _dumps(calendar),
                    "sla": _dumps(data.get("sla") or {}),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            await repo.append_history(
                [
                    self._entry(
                        actor,
                        tenant_id=customer_id,
                        entity="customer",
                        entity_id=customer_id,
                        action="created",
                        after={"key": key, "name": name, "calendar": calendar, "sla": data.get("sla") or {}},
                    )
                ]
            )
        return await self.get_customer(actor, customer_id)

    async def update_customer(
        self, actor: Actor, ref: int | str, changes: Mapping[str, Any], expected_version: int | None
    ) -> Customer:
        require(actor, Role.ADMINISTRATOR)
        customer = await self.get_customer(actor, ref)
        problems: list[FieldProblem] = []
        unknown = set(changes) - {"name", "timezone", "holiday_region", "calendar", "sla"}
        problems += [FieldProblem(name, "cannot be changed") for name in sorted(unknown)]
        merged = {**customer.calendar, **(changes.get("calendar") or {})}
        calendar = self._check_customer_fields(
            {
                "calendar": merged,
                "timezone": changes.get("timezone", customer.timezone),
                "holiday_region": changes.get("holiday_region", customer.holiday_region),
                "sla": {**customer.sla, **changes["sla"]}
                if isinstance(changes.get("sla"), dict)
                else changes.get("sla"),
            },
            problems,
        )
        if "name" in changes and not str(changes["name"] or "").strip():
            problems.append(FieldProblem("name", "must not be empty"))
        if problems:
            raise InvalidInput(problems)
        version = expected_version if expected_version is not None else customer.version
        values: dict[Any, Any] = {
            "calendar": _dumps(calendar),
            "timezone": calendar.get("timezone") or "UTC",
            "holiday_region": calendar.get("holiday_region"),
            "updated_at": self.clock.now(),
        }
        if "name" in changes:
            values["name"] = str(changes["name"]).strip()
        if changes.get("sla") is not None:
            values["sla"] = _dumps({**customer.sla, **changes["sla"]})
        before = {"name": customer.name, "calendar": dict(customer.calendar), "sla": dict(customer.sla)}
        async with atomic(repo.engine()):
            if not await repo.update_customer(customer.id, version, values):
                current = await self.get_customer(actor, customer.id)
                raise StaleVersion("customer", customer.key, current.version)
            after_customer = await self.get_customer(actor, customer.id)
            await repo.append_history(
                [
                    self._entry(
                        actor,
                        tenant_id=customer.id,
                        entity="customer",
                        entity_id=customer.id,
                        action="updated",
                        before=before,
                        after={
                            "name": after_customer.name,
                            "calendar": dict(after_customer.calendar),
                            "sla": dict(after_customer.sla),
                        },
                    )
                ]
            )
        return after_customer

    # --- people ----------------------------------------------------------------------------

    async def get_person(self, actor: Actor, ref: int | str) -> Person:
        person = await repo.get_person(actor.scope, ref)
        if person is None:
            raise NotFound("person", ref)
        return person

    async def list_people(
        self,
        actor: Actor,
        *,
        customer: int | str | None,
        role: str | None,
        expertise: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Person], int]:
        tenant_id = (await self.get_customer(actor, customer)).id if customer is not None else None
        return await repo.list_people(
            actor.scope, tenant_id=tenant_id, role=role, expertise=expertise, **_page(limit, offset)
        )

    async def create_person(self, actor: Actor | None, data: Mapping[str, Any]) -> Person:
        """`actor` None is the command line run by the machine's operator (`keel user add`)."""
        if actor is not None:
            require(actor, Role.ADMINISTRATOR)
        problems: list[FieldProblem] = []
        username = str(data.get("username") or "").strip()
        name = str(data.get("name") or "").strip()
        if not username:
            problems.append(FieldProblem("username", "is required"))
        elif len(username) > 100 or any(ch.isspace() for ch in username):
            problems.append(FieldProblem("username", "must be up to 100 characters without spaces"))
        elif await repo.username_exists(username):
            problems.append(FieldProblem("username", f"{username} is taken"))
        if not name:
            problems.append(FieldProblem("name", "is required"))
        raw_roles = data.get("roles")
        roles: set[Role] = set()
        if not raw_roles or not isinstance(raw_roles, list | tuple):
            problems.append(FieldProblem("roles", f"give at least one of: {', '.join(Role.values())}"))
        else:
            for role in raw_roles:
                if role not in Role.values():
                    problems.append(FieldProblem("roles", f"unknown role {role!r}; known: {', '.join(Role.values())}"))
                else:
                    roles.add(Role(role))
        provider = await self.provider()
        scope = Scope.everything(provider.id)
        tenant = provider
        if data.get("customer") is not None:
            found = await repo.get_customer(scope, data["customer"])
            if found is None:
                problems.append(FieldProblem("customer", f"no customer {data['customer']}"))
            else:
                tenant = found
        if Role.CUSTOMER in roles and tenant.is_provider:
            problems.append(FieldProblem("customer", "a customer contact needs the customer they belong to"))
        if not tenant.is_provider and roles & PROVIDER_ROLES:
            problems.append(FieldProblem("roles", "people of a customer can only have the role customer"))
        expertise = data.get("expertise") or []
        if not isinstance(expertise, list) or any(e not in CIClass.values() for e in expertise):
            problems.append(FieldProblem("expertise", f"must be a list of CI classes: {', '.join(CIClass.values())}"))
        password = data.get("password")
        if password is not None and len(str(password)) < MIN_PASSWORD_LENGTH:
            problems.append(FieldProblem("password", f"must be at least {MIN_PASSWORD_LENGTH} characters"))
        if problems:
            raise InvalidInput(problems)
        now = self.clock.now()
        async with atomic(repo.engine()):
            person_id = await repo.insert_person(
                {
                    "username": username,
                    "name": name,
                    "tenant": tenant.id,
                    "roles": _dumps(sorted(r.value for r in roles)),
                    "email": data.get("email"),
                    "phone": data.get("phone"),
                    "availability": data.get("availability"),
                    "expertise": _dumps(sorted(expertise)),
                    "password_hash": hash_password(str(password)) if password else None,
                    "created_at": now,
                }
            )
            await repo.append_history(
                [
                    self._entry(
                        actor,
                        tenant_id=tenant.id,
                        entity="person",
                        entity_id=person_id,
                        action="created",
                        after={"username": username, "name": name, "roles": sorted(r.value for r in roles)},
                    )
                ]
            )
        return await self.get_person(
            Actor(None, "system", "system", provider.id, provider.id, frozenset(PROVIDER_ROLES)), person_id
        )

    # --- configuration items ---------------------------------------------------------------

    async def get_ci(self, actor: Actor, ref: int | str) -> CI:
        found = await repo.find_ci(actor.scope, ref)
        if not found:
            raise NotFound("CI", ref)
        if len(found) > 1:
            raise InvalidInput.field("id", f"several customers have a CI named {ref}; use its id or CUSTOMER:{ref}")
        return found[0]

    async def list_cis(
        self,
        actor: Actor,
        *,
        customer: int | str | None,
        ci_class: str | None,
        status: str | None,
        q: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[CI], int]:
        problems = []
        if ci_class and ci_class not in CIClass.values():
            problems.append(FieldProblem("class", f"unknown class {ci_class!r}; known: {', '.join(CIClass.values())}"))
        if status and status not in CIStatus.values():
            problems.append(FieldProblem("status", f"unknown status {status!r}; known: {', '.join(CIStatus.values())}"))
        if problems:
            raise InvalidInput(problems)
        tenant_id = (await self.get_customer(actor, customer)).id if customer is not None else None
        return await repo.list_cis(
            actor.scope, tenant_id=tenant_id, ci_class=ci_class, status=status, q=q, **_page(limit, offset)
        )

    async def _resolve_people(
        self, refs: Sequence[int | str], field_name: str, tenant: Customer, problems: list[FieldProblem]
    ) -> list[int]:
        provider = await self.provider()
        ids = []
        for ref in refs:
            person = await repo.get_person(Scope.everything(provider.id), ref)
            if person is None or person.tenant_id not in (tenant.id, provider.id):
                problems.append(FieldProblem(field_name, f"no person {ref} of {tenant.key} or the provider"))
            else:
                ids.append(person.id)
        return ids

    async def create_ci(self, actor: Actor, data: CIInput) -> CI:
        require(actor, *CI_WRITERS)
        problems: list[FieldProblem] = []
        name = data.name.strip()
        if not name:
            problems.append(FieldProblem("name", "is required"))
        elif len(name) > 200:
            problems.append(FieldProblem("name", "must be at most 200 characters"))
        elif ":" in name:
            problems.append(FieldProblem("name", "must not contain ':' (it separates customer and name in references)"))
        tenant = await repo.get_customer(actor.scope, data.customer)
        if tenant is None:
            problems.append(FieldProblem("customer", f"no customer {data.customer}"))
        ci_class = _choice(CIClass, data.ci_class, "class", problems)
        _choice(CIStatus, data.status, "status", problems)
        _choice(Criticality, data.criticality, "criticality", problems)
        attributes: dict[str, Any] = {}
        if ci_class is not None:
            attributes, attribute_problems = validate_attributes(ci_class, data.attributes)
            problems += attribute_problems
        owner_id: int | None = None
        support: list[int] = []
        if tenant is not None:
            if name and await repo.ci_name_taken(tenant.id, name):
                problems.append(FieldProblem("name", f"{tenant.key} already has a CI named {name}"))
            if data.owner is not None:
                owners = await self._resolve_people([data.owner], "owner", tenant, problems)
                owner_id = owners[0] if owners else None
            support = await self._resolve_people(data.support, "support", tenant, problems)
        if problems:
            raise InvalidInput(problems)
        assert tenant is not None and ci_class is not None
        now = self.clock.now()
        async with atomic(repo.engine()):
            ci_id = await repo.insert_ci(
                {
                    "tenant": tenant.id,
                    "name": name,
                    "ci_class": ci_class.value,
                    "status": data.status,
                    "criticality": data.criticality,
                    "description": data.description,
                    "owner": owner_id,
                    "attributes": _dumps(attributes),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            if support:
                await repo.replace_support(ci_id, support)
            created = (await repo.find_ci(Scope.everything(tenant.id), ci_id))[0]
            await repo.append_history(
                [
                    self._entry(
                        actor,
                        tenant_id=tenant.id,
                        entity="ci",
                        entity_id=ci_id,
                        ci_id=ci_id,
                        action="created",
                        after=ci_snapshot(created),
                    )
                ]
            )
            await record_graph_changes([log_add_ci(ci_id, tenant.id)])
        return created

    async def update_ci(
        self,
        actor: Actor,
        ref: int | str,
        changes: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        rfc: str | None = None,
        comment: str = "",
    ) -> CI:
        """A partial update. `attributes` given here are merged into the existing ones; an
        attribute set to null is removed."""
        require(actor, *CI_WRITERS)
        ci = await self.get_ci(actor, ref)
        tenant = await self.get_customer(actor, ci.tenant_id)
        problems: list[FieldProblem] = []
        allowed = {"name", "status", "criticality", "description", "owner", "support", "attributes"}
        problems += [FieldProblem(k, "cannot be changed here") for k in sorted(set(changes) - allowed)]
        values: dict[str, Any] = {}
        if "name" in changes:
            name = str(changes["name"] or "").strip()
            if not name or ":" in name or len(name) > 200:
                problems.append(FieldProblem("name", "must be 1-200 characters without ':'"))
            elif name != ci.name and await repo.ci_name_taken(ci.tenant_id, name, exclude_id=ci.id):
                problems.append(FieldProblem("name", f"{tenant.key} already has a CI named {name}"))
            values["name"] = name
        if "status" in changes and _choice(CIStatus, changes["status"], "status", problems):
            values["status"] = changes["status"]
        if "criticality" in changes and _choice(Criticality, changes["criticality"], "criticality", problems):
            values["criticality"] = changes["criticality"]
        if "description" in changes:
            values["description"] = str(changes["description"] or "")
        if "owner" in changes:
            owners = (
                await self._resolve_people([changes["owner"]], "owner", tenant, problems)
                if changes["owner"] is not None
                else []
            )
            values["owner"] = owners[0] if owners else None
        support: list[int] | None = None
        if "support" in changes:
            support = await self._resolve_people(list(changes["support"] or []), "support", tenant, problems)
        attributes = dict(ci.attributes)
        if "attributes" in changes:
            if not isinstance(changes["attributes"], dict):
                problems.append(FieldProblem("attributes", "must be an object"))
            else:
                incoming = changes["attributes"]
                removed = [k for k, v in incoming.items() if v is None]
                clean, attribute_problems = validate_attributes(
                    ci.ci_class, {k: v for k, v in incoming.items() if v is not None}
                )
                problems += attribute_problems
                attributes.update(clean)
                for key in removed:
                    attributes.pop(key, None)
                values["attributes"] = _dumps(attributes)
        if problems:
            raise InvalidInput(problems)
        version = expected_version if expected_version is not None else ci.version
        if expected_version is not None and expected_version != ci.version:
            raise StaleVersion("CI", ci.name, ci.version)
        unauthorized = changed_controlled(ci.ci_class, ci.attributes, attributes)
        if unauthorized and rfc and await self.authority.authorizes(rfc, ci.tenant_id, ci.id):
            unauthorized = []
        now = self.clock.now()
        async with atomic(repo.engine()):
            if not await repo.update_ci(ci.id, version, {**values, "updated_at": now}):
                current = await repo.find_ci(Scope.everything(ci.tenant_id), ci.id)
                raise StaleVersion("CI", ci.name, current[0].version if current else version)
            if support is not None:
                await repo.replace_support(ci.id, support)
            updated = (await repo.find_ci(Scope.everything(ci.tenant_id), ci.id))[0]
            before, after = ci_snapshot(ci), ci_snapshot(updated)
            changed_keys = [k for k in after if before.get(k) != after.get(k)]
            await repo.append_history(
                [
                    self._entry(
                        actor,
                        tenant_id=ci.tenant_id,
                        entity="ci",
                        entity_id=ci.id,
                        ci_id=ci.id,
                        action="updated",
                        before={k: before[k] for k in changed_keys},
                        after={k: after[k] for k in changed_keys},
                        rfc=rfc,
                        unauthorized_fields=unauthorized,
                        comment=comment,
                    )
                ]
            )
        return updated

    async def history(
        self, actor: Actor, ref: int | str, limit: int, offset: int
    ) -> tuple[CI, list[HistoryEntry], int]:
        ci = await self.get_ci(actor, ref)
        entries, total = await repo.history_for_ci(ci.id, **_page(limit, offset))
        if not actor.scope.is_provider:
            entries = await self._redact_history(actor, entries)
        return ci, entries, total

    async def _redact_history(self, actor: Actor, entries: list[HistoryEntry]) -> list[HistoryEntry]:
        """A customer's CI may rely on a provider CI; the relationship's history names both.
        The customer keeps the fact and the provider CI's id, never its name."""
        others = {e.other_ci_id for e in entries if e.other_ci_id} | {e.ci_id for e in entries if e.ci_id}
        tenants = await repo.ci_tenants(others)
        hidden = {ci_id for ci_id, tenant in tenants.items() if not actor.scope.can_see(tenant)}
        if not hidden:
            return entries
        names = await repo.cis_by_ids(hidden)
        replacements = {ci.name: f"provider CI #{ci_id} ({ci.ci_class.value})" for ci_id, ci in names.items()}

        def scrub(snapshot: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
            if snapshot is None:
                return None
            return {
                key: replacements.get(value, value) if key in ("source", "target") and isinstance(value, str) else value
                for key, value in snapshot.items()
            }

        return [
            replace(entry, before=scrub(entry.before), after=scrub(entry.after))
            if entry.entity == "relationship" and ({entry.ci_id, entry.other_ci_id} & hidden)
            else entry
            for entry in entries
        ]

    async def audit(
        self, actor: Actor, *, customer: int | str | None, since: dt.datetime | None, limit: int, offset: int
    ) -> tuple[list[HistoryEntry], int]:
        tenant_id = (await self.get_customer(actor, customer)).id if customer is not None else None
        return await repo.unauthorized_changes(actor.scope, tenant_id=tenant_id, since=since, **_page(limit, offset))

    async def relationships_of(self, actor: Actor, ci: CI) -> list[tuple[Relationship, ImpactRow, ImpactRow]]:
        relationships = await repo.relationships_of(ci.id)
        rows = await self._rows(actor, {r.source_id for r in relationships} | {r.target_id for r in relationships})
        return [
            (r, rows[r.source_id], rows[r.target_id])
            for r in relationships
            if r.source_id in rows and r.target_id in rows
        ]

    # --- relationships ---------------------------------------------------------------------

    async def _ci_for_field(self, actor: Actor, ref: Any, field_name: str, problems: list[FieldProblem]) -> CI | None:
        if ref is None or ref == "":
            problems.append(FieldProblem(field_name, "is required"))
            return None
        found = await repo.find_ci(actor.scope, ref)
        if len(found) != 1:
            reason = (
                "is ambiguous; use the id or CUSTOMER:name" if found else f"no CI {ref} exists, or you may not see it"
            )
            problems.append(FieldProblem(field_name, reason))
            return None
        return found[0]

    async def create_relationship(
        self, actor: Actor, source: Any, target: Any, type_: Any, *, note: str = "", rfc: str | None = None
    ) -> Relationship:
        require(actor, *CI_WRITERS)
        problems: list[FieldProblem] = []
        source_ci = await self._ci_for_field(actor, source, "source", problems)
        target_ci = await self._ci_for_field(actor, target, "target", problems)
        rel_type = _choice(RelationshipType, type_, "type", problems)
        if source_ci and target_ci:
            problems += await self._edge_problems(source_ci, target_ci, rel_type)
        if problems:
            raise InvalidInput(problems)
        assert source_ci and target_ci and rel_type
        now = self.clock.now()
        async with atomic(repo.engine()):
            rel_id = await repo.insert_relationship(
                {
                    "tenant": source_ci.tenant_id,
                    "source": source_ci.id,
                    "target": target_ci.id,
                    "type": rel_type.value,
                    "note": note,
                    "created_at": now,
                }
            )
            await repo.append_history(
                [
                    self._entry(
                        actor,
                        tenant_id=source_ci.tenant_id,
                        entity="relationship",
                        entity_id=rel_id,
                        ci_id=source_ci.id,
                        other_ci_id=target_ci.id,
                        action="created",
                        after={"source": source_ci.name, "type": rel_type.value, "target": target_ci.name},
                        rfc=rfc,
                        comment=note,
                    )
                ]
            )
            await record_graph_changes([log_add_edge(rel_id, source_ci.id, target_ci.id, rel_type.value)])
        relationship = await repo.get_relationship(actor.scope, rel_id)
        assert relationship is not None
        return relationship

    async def _edge_problems(self, source: CI, target: CI, rel_type: RelationshipType | None) -> list[FieldProblem]:
        problems = []
        if source.id == target.id:
            problems.append(FieldProblem("target", "a CI cannot relate to itself"))
        elif source.tenant_id != target.tenant_id:
            provider = await self.provider()
            if target.tenant_id != provider.id or source.tenant_id == provider.id:
                problems.append(
                    FieldProblem(
                        "target",
                        "CIs of two different customers cannot be related; only a customer's CI may "
                        "rely on a provider CI",
                    )
                )
        if (
            rel_type is not None
            and not problems
            and await repo.relationship_exists(source.id, target.id, rel_type.value)
        ):
            problems.append(FieldProblem("target", f"{source.name} already {rel_type.label} {target.name}"))
        return problems

    async def delete_relationship(
        self, actor: Actor, rel_id: int, *, rfc: str | None = None, comment: str = ""
    ) -> None:
        require(actor, *CI_WRITERS)
        relationship = await repo.get_relationship(actor.scope, rel_id)
        if relationship is None:
            raise NotFound("relationship", rel_id)
        names = await repo.cis_by_ids([relationship.source_id, relationship.target_id])
        async with atomic(repo.engine()):
            await repo.delete_relationship(rel_id)
            await repo.append_history(
                [
                    self._entry(
                        actor,
                        tenant_id=relationship.tenant_id,
                        entity="relationship",
                        entity_id=rel_id,
                        ci_id=relationship.source_id,
                        other_ci_id=relationship.target_id,
                        action="deleted",
                        before={
                            "source": names[relationship.source_id].name,
                            "type": relationship.type.value,
                            "target": names[relationship.target_id].name,
                        },
                        rfc=rfc,
                        comment=comment,
                    )
                ]
            )
            await record_graph_changes([log_remove_edge(rel_id)])

    # --- the graph -------------------------------------------------------------------------

    async def _rows(
        self, actor: Actor, ids: set[int] | list[int], depth_via: Mapping[int, tuple[int, int]] | None = None
    ) -> dict[int, ImpactRow]:
        """CI rows for graph answers: full for what the actor may see, redacted (id and class
        only) for provider CIs shown to a customer, and absent for anything else."""
        cis = await repo.cis_by_ids(ids)
        scope = actor.scope
        rows = {}
        for ci_id, ci in cis.items():
            depth, via = (depth_via or {}).get(ci_id, (0, 0))
            if scope.can_see(ci.tenant_id):
                rows[ci_id] = ImpactRow(ci_id, ci.ci_class, depth, via, ci)
            elif ci.tenant_id == scope.provider_tenant_id:
                rows[ci_id] = ImpactRow(ci_id, ci.ci_class, depth, via, None)
        return rows

    @staticmethod
    def _types(types: Sequence[str] | None) -> list[str] | None:
        if not types:
            return None
        unknown = [t for t in types if t not in EDGE_TYPES]
        if unknown:
            raise InvalidInput.field(
                "types", f"unknown relationship types {', '.join(unknown)}; known: {', '.join(EDGE_TYPES)}"
            )
        return list(types)

    async def index(self) -> GraphIndex:
        return await self.graph.current()

    async def impact(
        self,
        actor: Actor,
        ref: int | str,
        *,
        direction: str = "down",
        depth: int | None = None,
        types: Sequence[str] | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> ImpactResult:
        if direction not in ("down", "up"):
            raise InvalidInput.field("direction", "must be down or up")
        if depth is not None and depth < 1:
            raise InvalidInput.field("depth", "must be 1 or more (omit it for no limit)")
        limit, offset = page_bounds(limit, offset, maximum=10_000)
        edge_types = self._types(types)
        root = await self.get_ci(actor, ref)
        index = await self.graph.current()
        # Arrays, then objects only for the page: a hub's answer can hold most of the estate.
        cis, depths, vias = index.impact_arrays(
            root.id,
            "down" if direction == "down" else "up",
            depth=depth,
            types=edge_types,
            allowed_tenants=actor.scope.graph_tenants(),
        )
        window = [
            (int(ci), int(d), int(v))
            for ci, d, v in zip(
                cis[offset : offset + limit].tolist(),
                depths[offset : offset + limit].tolist(),
                vias[offset : offset + limit].tolist(),
                strict=True,
            )
        ]
        rows = await self._rows(actor, [ci for ci, _, _ in window], {ci: (d, v) for ci, d, v in window})
        return ImpactResult(
            root=root,
            items=[rows[ci] for ci, _, _ in window if ci in rows],
            total=len(cis),
            direction=direction,
            depth=depth,
        )

    async def path(
        self, actor: Actor, source: int | str, target: int | str, *, types: Sequence[str] | None = None
    ) -> list[PathHop]:
        source_ci = await self.get_ci(actor, source)
        target_ci = await self.get_ci(actor, target)
        index = await self.graph.current()
        allowed = actor.scope.graph_tenants()
        edge_types = self._types(types)
        hops = index.path(source_ci.id, target_ci.id, types=edge_types, allowed_tenants=allowed)
        if hops is None:
            # The dependency may run the other way: B depends on A.
            hops = index.path(target_ci.id, source_ci.id, types=edge_types, allowed_tenants=allowed)
        if hops is None:
            raise NotFound("dependency path", f"between {source_ci.name} and {target_ci.name}")
        rows = await self._rows(actor, {h[0] for h in hops} | {h[2] for h in hops})
        return [PathHop(rows[a], kind, rows[b], rel) for a, kind, b, rel in hops]

    async def neighbourhood(
        self, actor: Actor, ref: int | str, depth: int = 2, max_nodes: int = 2000
    ) -> tuple[CI, dict[int, ImpactRow], list[tuple[int, int, str]]]:
        """The CI's neighbourhood for the impact picture: nodes (redacted where needed) and edges."""
        root = await self.get_ci(actor, ref)
        index = await self.graph.current()
        # A hub's two-hop neighbourhood can hold most of the estate; a picture needs far less.
        graph = index.neighbourhood(
            root.id, depth=depth, allowed_tenants=actor.scope.graph_tenants(), max_nodes=max_nodes
        )
        rows = await self._rows(actor, set(graph.nodes))
        edges = [(a, b, str(d.get("type"))) for a, b, d in graph.edges(data=True) if a in rows and b in rows]
        return root, rows, edges

    # --- change windows and blackouts ------------------------------------------------------

    async def add_window(
        self, actor: Actor, customer: int | str, data: Mapping[str, Any], ci: int | str | None = None
    ) -> int:
        require(actor, Role.CHANGE_MANAGER, Role.ADMINISTRATOR)
        tenant = await self.get_customer(actor, customer)
        problems = [FieldProblem(f, r) for f, r in validate_window_dict(dict(data))]
        ci_id = None
        if ci is not None:
            found = await self._ci_for_field(actor, ci, "ci", problems)
            if found is not None and found.tenant_id != tenant.id:
                problems.append(FieldProblem("ci", f"{found.name} is not a CI of {tenant.key}"))
            ci_id = found.id if found else None
        if problems:
            raise InvalidInput(problems)
        async with atomic(repo.engine()):
            window_id = await repo.insert_window(
                {
                    "tenant": tenant.id,
                    "ci": ci_id,
                    "name": data["name"],
                    "days": _dumps(sorted(data["days"])),
                    "start": data["start"],
                    "duration_minutes": int(data["duration_minutes"]),
                    "timezone": data["timezone"],
                }
            )
            await repo.append_history(
                [
                    self._entry(
                        actor,
                        tenant_id=tenant.id,
                        entity="change_window",
                        entity_id=window_id,
                        ci_id=ci_id,
                        action="created",
                        after=dict(data),
                    )
                ]
            )
        return window_id

    async def add_blackout(
        self,
        actor: Actor,
        customer: int | str,
        start: dt.datetime,
        end: dt.datetime,
        reason: str,
        ci: int | str | None = None,
    ) -> int:
        require(actor, Role.CHANGE_MANAGER, Role.ADMINISTRATOR)
        tenant = await self.get_customer(actor, customer)
        problems: list[FieldProblem] = []
        if start.tzinfo is None or end.tzinfo is None:
            problems.append(FieldProblem("start", "times need a UTC offset"))
        elif end <= start:
            problems.append(FieldProblem("end", "must be after start"))
        ci_id = None
        if ci is not None:
            found = await self._ci_for_field(actor, ci, "ci", problems)
            ci_id = found.id if found else None
        if problems:
            raise InvalidInput(problems)
        async with atomic(repo.engine()):
            blackout_id = await repo.insert_blackout(
                {"tenant": tenant.id, "ci": ci_id, "starts_at": start, "ends_at": end, "reason": reason}
            )
            await repo.append_history(
                [
                    self._entry(
                        actor,
                        tenant_id=tenant.id,
                        entity="blackout",
                        entity_id=blackout_id,
                        ci_id=ci_id,
                        action="created",
                        after={"start": start.isoformat(), "end": end.isoformat(), "reason": reason},
                    )
                ]
            )
        return blackout_id

    async def windows(self, actor: Actor, customer: int | str) -> list[ChangeWindowRecord]:
        return await repo.windows_for((await self.get_customer(actor, customer)).id)

    async def blackouts(self, actor: Actor, customer: int | str) -> list[BlackoutRecord]:
        return await repo.blackouts_for((await self.get_customer(actor, customer)).id)

    async def get_relationship(self, actor: Actor, rel_id: int) -> Relationship:
        relationship = await repo.get_relationship(actor.scope, rel_id)
        if relationship is None:
            raise NotFound("relationship", rel_id)
        return relationship

    async def customer_keys(self, tenant_ids: set[int]) -> dict[int, str]:
        """Customer keys never change once created, so a process may remember them for good."""
        missing = tenant_ids - self._customer_keys.keys()
        if missing:
            customers = await repo.customers_by_ids(missing)
            self._customer_keys.update((customer_id, c.key) for customer_id, c in customers.items())
        return {i: self._customer_keys[i] for i in tenant_ids if i in self._customer_keys}


def _choice(enum: Any, value: Any, field_name: str, problems: list[FieldProblem]) -> Any:
    try:
        return enum(value)
    except ValueError:
        problems.append(FieldProblem(field_name, f"unknown {field_name} {value!r}; known: {', '.join(enum.values())}"))
        return None


def _page(limit: int, offset: int) -> dict[str, int]:
    limit, offset = page_bounds(limit, offset)
    return {"limit": limit, "offset": offset}


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str, sort_keys=True)


async def ensure_provider(clock: Clock, key: str, name: str) -> Customer:
    """The provider tenant exists from the first migration on; create it once."""
    existing = await repo.provider()
    if existing is not None:
        return existing
    now = clock.now()
    async with atomic(repo.engine()):
        customer_id = await repo.insert_customer(
            {
                "key": key,
                "name": name,
                "is_provider": True,
                "timezone": "UTC",
                "holiday_region": None,
                "calendar": _dumps({"timezone": "UTC"}),
                "sla": _dumps({}),
                "created_at": now,
                "updated_at": now,
            }
        )
        await repo.append_history(
            [
                repo.history_row(
                    tenant_id=customer_id,
                    entity="customer",
                    entity_id=customer_id,
                    action="created",
                    actor_id=None,
                    actor_name="keel-migrate",
                    at=now,
                    after={"key": key, "name": name, "provider": True},
                )
            ]
        )
    provider = await repo.provider()
    assert provider is not None
    return provider


def system_actor(provider: Customer) -> Actor:
    """The system acting on its own (imports from the CLI, the scheduler)."""
    return Actor(None, "system", "Keel", provider.id, provider.id, frozenset(PROVIDER_ROLES))
