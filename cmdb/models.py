"""The CMDB's vocabulary: plain frozen records and choices. Pure Python, no framework.

Choices carry a label and a colour the way netbox's `ChoiceSet` does, so pages, reports and
the API all name and colour a status the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Choice(StrEnum):
    """A StrEnum whose members also have a human label and a colour (CSS colour names)."""

    @property
    def label(self) -> str:
        return _LABELS.get(self, self.value.replace("_", " ").capitalize())

    @property
    def colour(self) -> str:
        return _COLOURS.get(self, "grey")

    @classmethod
    def values(cls) -> list[str]:
        return [member.value for member in cls]


class Role(Choice):
    ENGINEER = "engineer"
    CHANGE_MANAGER = "change_manager"
    COMMITTEE_MEMBER = "committee_member"
    RELEASE_MANAGER = "release_manager"
    SERVICE_MANAGER = "service_manager"
    CUSTOMER = "customer"
    ADMINISTRATOR = "administrator"


PROVIDER_ROLES = frozenset(Role) - {Role.CUSTOMER}


class CIClass(Choice):
    SERVER = "server"
    DESKTOP = "desktop"
    NETWORK_DEVICE = "network_device"
    STORAGE = "storage"
    UPS = "ups"
    VIRTUAL_MACHINE = "virtual_machine"
    CLUSTER = "cluster"
    OPERATING_SYSTEM = "operating_system"
    APPLICATION = "application"
    DATABASE = "database"
    SERVICE = "service"
    DOCUMENT = "document"
    PROCEDURE = "procedure"
    TEST_ENVIRONMENT = "test_environment"


HARDWARE_CLASSES = frozenset({CIClass.SERVER, CIClass.DESKTOP, CIClass.NETWORK_DEVICE, CIClass.STORAGE, CIClass.UPS})
SOFTWARE_CLASSES = frozenset({CIClass.OPERATING_SYSTEM, CIClass.APPLICATION, CIClass.DATABASE})


class CIStatus(Choice):
    PLANNED = "planned"
    LIVE = "live"
    UNDER_CHANGE = "under_change"
    RETIRED = "retired"


class Criticality(Choice):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def weight(self) -> int:
        return {"low": 1, "medium": 2, "high": 3, "critical": 4}[self.value]


class RelationshipType(Choice):
    """Directed: `source <type> target`. If A depends on B, a change to or outage of B impacts A."""

    DEPENDS_ON = "depends_on"
    RUNS_ON = "runs_on"
    HOSTED_ON = "hosted_on"
    CONNECTED_TO = "connected_to"
    INSTALLED_ON = "installed_on"
    DOCUMENTED_BY = "documented_by"
    PROVIDES = "provides"
    MEMBER_OF = "member_of"


_LABELS: dict[StrEnum, str] = {
    CIClass.UPS: "UPS",
    CIStatus.UNDER_CHANGE: "Under change",
    RelationshipType.DEPENDS_ON: "depends on",
    RelationshipType.RUNS_ON: "runs on",
    RelationshipType.HOSTED_ON: "hosted on",
    RelationshipType.CONNECTED_TO: "connected to",
    RelationshipType.INSTALLED_ON: "installed on",
    RelationshipType.DOCUMENTED_BY: "documented by",
    RelationshipType.PROVIDES: "provides",
    RelationshipType.MEMBER_OF: "member of",
}
_COLOURS: dict[StrEnum, str] = {
    CIStatus.PLANNED: "blue",
    CIStatus.LIVE: "green",
    CIStatus.UNDER_CHANGE: "orange",
    CIStatus.RETIRED: "grey",
    Criticality.LOW: "grey",
    Criticality.MEDIUM: "blue",
    Criticality.HIGH: "orange",
    Criticality.CRITICAL: "red",
}


@dataclass(frozen=True)
class Customer:
    """A tenant. The provider is a tenant too, for its own internal systems and shared hosting."""

    id: int
    key: str
    name: str
    is_provider: bool
    timezone: str
    holiday_region: str | None
    calendar: Mapping[str, Any]
    sla: Mapping[str, Any]
    version: int
    created_at: dt.datetime


@dataclass(frozen=True)
class Person:
    id: int
    username: str
    name: str
    tenant_id: int
    roles: frozenset[Role]
    email: str | None = None
    phone: str | None = None
    availability: str | None = None
    expertise: frozenset[str] = frozenset()
    active: bool = True
    version: int = 1


@dataclass(frozen=True)
class Scope:
    """Which tenants an actor may see. Every repository call takes one, so a forgotten filter
    is a type error rather than a leak.

    `tenant_id` None means provider staff, who see every tenant. A customer contact sees only
    their own tenant; provider CIs their CIs rely on show up redacted in graph answers.
    """

    tenant_id: int | None
    provider_tenant_id: int

    @property
    def is_provider(self) -> bool:
        return self.tenant_id is None

    def can_see(self, tenant_id: int) -> bool:
        return self.tenant_id is None or self.tenant_id == tenant_id

    def graph_tenants(self) -> frozenset[int] | None:
        """Tenants a graph traversal may enter: own plus the provider's shared CIs."""
        if self.tenant_id is None:
            return None
        return frozenset({self.tenant_id, self.provider_tenant_id})

    @classmethod
    def everything(cls, provider_tenant_id: int) -> Scope:
        return cls(tenant_id=None, provider_tenant_id=provider_tenant_id)


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in person, or the system itself (imports, the scheduler)."""

    person_id: int | None
    username: str
    name: str
    tenant_id: int
    provider_tenant_id: int
    roles: frozenset[Role] = frozenset()

    @property
    def is_provider_staff(self) -> bool:
        return self.tenant_id == self.provider_tenant_id and Role.CUSTOMER not in self.roles

    @property
    def scope(self) -> Scope:
        if self.is_provider_staff:
            return Scope.everything(self.provider_tenant_id)
        return Scope(tenant_id=self.tenant_id, provider_tenant_id=self.provider_tenant_id)

    def has_any(self, *roles: Role) -> bool:
        return bool(self.roles & set(roles))


@dataclass(frozen=True)
class CI:
    id: int
    tenant_id: int
    name: str
    ci_class: CIClass
    status: CIStatus
    criticality: Criticality
    attributes: Mapping[str, Any]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    description: str = ""
    owner_id: int | None = None
    support_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Relationship:
    id: int
    tenant_id: int
    source_id: int
    target_id: int
    type: RelationshipType
    created_at: dt.datetime
    note: str = ""


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded change: append-only. `unauthorized_fields` lists controlled attributes that
    changed without an approved RFC behind them (configuration control)."""

    id: int
    tenant_id: int
    entity: str
    entity_id: int
    ci_id: int | None
    other_ci_id: int | None
    action: str
    actor_id: int | None
    actor_name: str
    at: dt.datetime
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    rfc: str | None = None
    unauthorized_fields: tuple[str, ...] = ()
    comment: str = ""

    @property
    def unauthorized(self) -> bool:
        return bool(self.unauthorized_fields)


@dataclass(frozen=True)
class ChangeWindowRecord:
    id: int
    tenant_id: int
    ci_id: int | None
    name: str
    days: tuple[int, ...]
    start: str
    duration_minutes: int
    timezone: str


@dataclass(frozen=True)
class BlackoutRecord:
    id: int
    tenant_id: int
    ci_id: int | None
    start: dt.datetime
    end: dt.datetime
    reason: str


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    extra: Mapping[str, Any] = field(default_factory=dict)
