"""Demo data: a managed-services provider and four customers, for `keel demo` and the README.

Everything is created through `CMDBService` and `ChangeService` (the same validation, workflow,
history and graph log as the web and the API), from a fixed random seed, with dates relative to
the injected clock: the same clock gives the same data set, and "warranty expires in three
weeks" stays true whenever the demo is seeded.

The data set has a past: records are written with a `SeedClock` that starts `HISTORY_DAYS`
before the injected clock's now (the estate is recorded then) and that the later steps move to
the time of each event, never past now. So an RFC completed two weeks ago was scheduled into a
change window two weeks ago and implemented after it opened, and its history says so.

Idempotent: if any of the demo customers already exists, `seed_demo` creates nothing and
returns a summary of what is there (`created=False`).

`seed_demo` runs `STEPS` in order, each a small named coroutine taking the `DemoContext`. Later
work (incidents, problems, releases, a finished month to report on) appends steps; a step finds
what earlier steps made in `ctx.cis`, `ctx.people`, `ctx.customers`, `ctx.actors` and
`ctx.rfcs`, uses `ctx.cmdb` and `ctx.change`, and sets `ctx.clock` to when its events happen
(`ChangePlan` shows one way: plan the events, then replay them in time order).

The data set:

- provider (the tenant given by `provider_key`): core switch pair, firewalls, a SAN and its DR
  replica, backup appliance, data-centre UPS pair, a shared VMware cluster of eight hosts with
  the provider's own VMs, and four services customers rely on (shared virtualization, backup,
  monitoring, shared web hosting), with runbooks and procedures ("Standard server imaging");
- ACME Manufacturing (New York, US), Globex Retail (London, GB-ENG), Initech Insurance (Berlin,
  DE-BE) and Southern Cross Logistics (Sydney, AU-NSW), each with SLA terms, a business
  calendar, site network and power, on-premises servers, applications on VMs of the shared
  cluster with their databases and operating systems, business services, desktops, runbooks,
  procedures and a test environment that represents production;
- Initech's CRM, document management and policy administration depend on each other in a
  circle (a real CMDB has such cycles);
- a person in every role (sign-ins in `DemoSummary.sign_ins`), CI owners and support staff;
- change windows per customer and for a few critical CIs, a blackout per customer;
- RFCs in every workflow state across the tenants (see `CHANGE_STORIES`): standard, normal and
  emergency changes; customer-raised ones by the customer contacts and internal ones; patch RFCs
  of several urgency levels; a high-impact SAN firmware upgrade in committee review; an
  emergency firewall hotfix under way outside the windows (post-implementation review flagged);
  completed, failed and backed-out changes in past windows; a rejected RFC and the new one that
  refers to it; two RFCs scheduled in overlapping windows whose impact shares the ACME ERP
  application (a scheduling conflict); CI updates recorded under completed RFCs (authorized);
- a few CI updates after creation, most of them to controlled attributes without an approved
  RFC (some cite an RFC that is not approved yet), so the configuration audit has something to
  show;
- releases, patch deadlines, incidents, monitoring alerts, problems, the finished month's
  reports and escalations (see `web.demo_operations`).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from change.models import RFC, RFCState
from change.services import ChangeService, RFCAuthority
from cmdb import repository as repo
from cmdb.db import atomic
from cmdb.errors import Conflict, NotFound
from cmdb.models import CI, Actor, CIClass, Customer, Person
from cmdb.models import RelationshipType as Rel
from cmdb.services import CIInput, Clock, CMDBService, system_actor
from cmdb.windows import Blackout, ChangeWindow, blackouts_hit, next_fitting_start
from web.demo_operations import (
    OPERATION_STORIES,
    OperationsFigures,
    issue_monthly_reports,
    operations_figures,
    raise_escalations,
)

DEMO_SEED = 20261102
LIVE, PLANNED, UNDER_CHANGE, RETIRED = "live", "planned", "under_change", "retired"
LOW, MEDIUM, HIGH, CRITICAL = "low", "medium", "high", "critical"


# ------------------------------------------------------------------------------- the summary


@dataclass(frozen=True)
class SignIn:
    username: str
    password: str
    roles: tuple[str, ...]
    customer: str  # customer key; the provider's key for provider staff
    name: str


@dataclass(frozen=True)
class DemoSummary:
    """What the demo holds. `counts` maps customer key (the provider included) to CI class to
    number of CIs. `relationships` is what this run created, or (created=False) every
    relationship in the CMDB."""

    created: bool
    message: str
    customers: dict[str, str]  # key -> name, provider first
    counts: dict[str, dict[str, int]]
    relationships: int
    sign_ins: list[SignIn]
    windows: int = 0
    blackouts: int = 0
    updates: int = 0
    unauthorized_changes: int = 0
    seconds: float = 0.0
    steps: list[tuple[str, float]] = field(default_factory=list)
    rfcs: dict[str, int] = field(default_factory=dict)  # state -> number of RFCs, in workflow order
    conflicts: int = 0  # pairs of scheduled RFCs in conflict over the next 60 days
    rfc_keys: dict[str, str] = field(default_factory=dict)  # demo name -> RFC key (created runs only)
    history_from: dt.datetime | None = None  # when the run dated its first records (created runs only)
    operations: OperationsFigures | None = None  # releases, incidents, alerts, problems, reports

    @property
    def total_cis(self) -> int:
        return sum(sum(by_class.values()) for by_class in self.counts.values())

    def class_totals(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for by_class in self.counts.values():
            totals.update(by_class)
        return dict(sorted(totals.items()))

    def describe(self) -> str:
        """The summary as text for the command line (`keel demo` prints it)."""
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        """The summary as text, one line each."""
        out = [self.message]
        out.append(f"CIs: {self.total_cis}, relationships: {self.relationships}")
        for key, name in self.customers.items():
            by_class = self.counts.get(key, {})
            detail = ", ".join(f"{cls} {n}" for cls, n in sorted(by_class.items()))
            out.append(f"  {key:<8} {name:<28} {sum(by_class.values()):>4} CIs: {detail}")
        if self.created:
            out.append(
                f"Change windows: {self.windows}, blackouts: {self.blackouts}, CI updates: {self.updates} "
                f"({self.unauthorized_changes} unauthorized, see the configuration audit)"
            )
        if self.rfcs:
            states = ", ".join(f"{state.replace('_', ' ')} {n}" for state, n in self.rfcs.items() if n)
            out.append(
                f"RFCs: {sum(self.rfcs.values())} ({states}); "
                f"scheduling conflicts in the next 60 days: {self.conflicts}"
            )
        if self.operations is not None:
            out += self.operations.lines()
        if self.created:
            if self.history_from is not None:
                out.append(f"History from {self.history_from:%Y-%m-%d %H:%M} UTC (the estate recorded) to now")
            out.append(f"Seeded in {self.seconds:.1f} s")
        out.append("Sign in with (username / password: roles, customer):")
        width = max((len(s.username) for s in self.sign_ins), default=8)
        pwidth = max((len(s.password) for s in self.sign_ins), default=8)
        for s in self.sign_ins:
            out.append(f"  {s.username:<{width}} / {s.password:<{pwidth}}  {', '.join(s.roles)}, {s.customer}")
        return out


# ------------------------------------------------------------------------------ the people


@dataclass(frozen=True)
class StaffSpec:
    username: str
    name: str
    roles: tuple[str, ...]
    expertise: tuple[str, ...] = ()
    phone: str = ""
    availability: str = "Mon-Fri 08:00-17:00 UTC"

    @property
    def password(self) -> str:
        return f"{self.username}-demo"

    @property
    def email(self) -> str:
        return f"{self.username}@keel-msp.example"


STAFF: tuple[StaffSpec, ...] = (
    StaffSpec("admin", "Ada Lindqvist", ("administrator",), (), "+44 20 7946 0101"),
    StaffSpec(
        "eve",
        "Eve Okafor",
        ("engineer",),
        ("server", "virtual_machine", "cluster", "operating_system"),
        "+44 20 7946 0102",
        "Mon-Fri 07:00-16:00 UTC, on call every third week",
    ),
    StaffSpec(
        "raj",
        "Raj Patel",
        ("engineer",),
        ("network_device", "storage", "ups", "desktop"),
        "+44 20 7946 0103",
        "Mon-Fri 09:00-18:00 UTC, on call every third week",
    ),
    StaffSpec(
        "mia",
        "Mia Hoffmann",
        ("engineer",),
        ("application", "database", "service", "test_environment"),
        "+49 30 901820 04",
        "Mon-Fri 08:00-17:00 Europe/Berlin, on call every third week",
    ),
    StaffSpec("carl", "Carl Mendes", ("change_manager",), (), "+44 20 7946 0105"),
    StaffSpec(
        "nina", "Nina Kowalczyk", ("committee_member",), ("network_device", "storage", "ups"), "+44 20 7946 0106"
    ),
    StaffSpec("omar", "Omar Haddad", ("committee_member",), ("application", "database", "service"), "+44 20 7946 0107"),
    StaffSpec(
        "tess",
        "Tess Nakamura",
        ("committee_member",),
        ("server", "virtual_machine", "cluster", "operating_system"),
        "+61 2 5550 0108",
        "Mon-Fri 08:00-17:00 Australia/Sydney",
    ),
    StaffSpec("rita", "Rita Alvarez", ("release_manager",), ("test_environment", "application"), "+44 20 7946 0109"),
    StaffSpec("sam", "Sam Whitfield", ("service_manager",), ("service",), "+44 20 7946 0110"),
)

# Who records, owns and supports CIs of each class (the engineers by expertise).
_CREATOR = {
    CIClass.SERVER: "eve",
    CIClass.VIRTUAL_MACHINE: "eve",
    CIClass.CLUSTER: "eve",
    CIClass.OPERATING_SYSTEM: "eve",
    CIClass.NETWORK_DEVICE: "raj",
    CIClass.STORAGE: "raj",
    CIClass.UPS: "raj",
    CIClass.DESKTOP: "raj",
    CIClass.APPLICATION: "mia",
    CIClass.DATABASE: "mia",
    CIClass.SERVICE: "mia",
    CIClass.DOCUMENT: "mia",
    CIClass.PROCEDURE: "mia",
    CIClass.TEST_ENVIRONMENT: "mia",
}
_OWNER = {**_CREATOR, CIClass.PROCEDURE: "carl", CIClass.TEST_ENVIRONMENT: "rita"}
_SUPPORT: dict[CIClass, tuple[str, ...]] = {
    CIClass.SERVER: ("raj",),
    CIClass.VIRTUAL_MACHINE: ("mia",),
    CIClass.CLUSTER: ("raj", "tess"),
    CIClass.OPERATING_SYSTEM: ("mia",),
    CIClass.NETWORK_DEVICE: ("eve", "nina"),
    CIClass.STORAGE: ("eve", "nina"),
    CIClass.UPS: ("eve",),
    CIClass.DESKTOP: ("eve",),
    CIClass.APPLICATION: ("eve", "omar"),
    CIClass.DATABASE: ("eve",),
    CIClass.SERVICE: ("sam",),
    CIClass.DOCUMENT: (),
    CIClass.PROCEDURE: ("eve", "raj", "mia"),
    CIClass.TEST_ENVIRONMENT: ("mia",),
}


# --------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class OSSpec:
    product: str
    vendor: str
    version: str
    patch_levels: tuple[str, ...]  # current first; older ones are the estate's patch lag
    support_expires: str
    windows: bool


OS: dict[str, OSSpec] = {
    "win2022": OSSpec(
        "Windows Server 2022 Datacenter",
        "Microsoft",
        "21H2 (build 20348)",
        (
            "2026-10 cumulative update (20348.2762)",
            "2026-09 cumulative update (20348.2700)",
            "2026-06 cumulative update (20348.2527)",
        ),
        "2031-10-14",
        True,
    ),
    "win2019": OSSpec(
        "Windows Server 2019 Standard",
        "Microsoft",
        "1809 (build 17763)",
        ("2026-10 cumulative update (17763.6414)", "2026-08 cumulative update (17763.6189)"),
        "2029-01-09",
        True,
    ),
    "rhel9": OSSpec(
        "Red Hat Enterprise Linux 9.4",
        "Red Hat",
        "9.4",
        ("kernel 5.14.0-427.42.1.el9_4", "kernel 5.14.0-427.37.1.el9_4", "kernel 5.14.0-427.24.1.el9_4"),
        "2032-05-31",
        False,
    ),
    "sles15": OSSpec(
        "SUSE Linux Enterprise Server 15 SP5 for SAP Applications",
        "SUSE",
        "15 SP5",
        ("kernel 5.14.21-150500.55.83", "kernel 5.14.21-150500.55.73"),
        "2027-12-31",
        False,
    ),
    "ubuntu22": OSSpec(
        "Ubuntu Server 22.04 LTS",
        "Canonical",
        "22.04.5",
        ("linux 5.15.0-124-generic", "linux 5.15.0-119-generic"),
        "2027-04-30",
        False,
    ),
    "esxi8": OSSpec(
        "VMware ESXi 8.0 Update 2",
        "Broadcom (VMware)",
        "8.0 U2",
        ("ESXi80U2d-24585300", "ESXi80U2b-23305546"),
        "2027-10-11",
        False,
    ),
}


@dataclass(frozen=True)
class HardwareSpec:
    make: str
    model: str
    hardware_config: str
    serial_style: str


HARDWARE: dict[str, HardwareSpec] = {
    "esx_host": HardwareSpec(
        "Dell",
        "PowerEdge R750",
        "2x Intel Xeon Gold 6338 (64 cores), 1 TB RAM, 2x 480 GB BOSS-S2 boot, 4x 25 GbE, 2x 32 Gb FC",
        "dell",
    ),
    "server": HardwareSpec(
        "HPE",
        "ProLiant DL380 Gen10 Plus",
        "2x Intel Xeon Silver 4314 (32 cores), 256 GB RAM, 6x 1.92 TB SSD RAID 10, 4x 10 GbE",
        "hpe",
    ),
    "small_server": HardwareSpec(
        "Dell",
        "PowerEdge R450",
        "1x Intel Xeon Silver 4310 (12 cores), 64 GB RAM, 2x 960 GB SSD RAID 1, 2x 10 GbE",
        "dell",
    ),
    "old_server": HardwareSpec(
        "HPE", "ProLiant DL360 Gen9", "2x Intel Xeon E5-2620 v4, 128 GB RAM, 8x 1.2 TB SAS RAID 6", "hpe"
    ),
    "core_switch": HardwareSpec("Cisco", "Nexus 93180YC-FX", "48x 25 GbE SFP28, 6x 100 GbE QSFP28, dual PSU", "cisco"),
    "mgmt_switch": HardwareSpec("Cisco", "Catalyst 9300-48T", "48x 1 GbE, 4x 10 GbE uplinks", "cisco"),
    "access_switch": HardwareSpec(
        "Cisco", "Catalyst 9300-48P", "48x 1 GbE PoE+, 4x 10 GbE uplinks, StackWise", "cisco"
    ),
    "dc_firewall": HardwareSpec("Palo Alto Networks", "PA-3220", "12x 1 GbE, 4x 10 GbE SFP+, HA pair", "paloalto"),
    "site_firewall": HardwareSpec("Fortinet", "FortiGate 100F", "22x 1 GbE, 4x 10 GbE SFP+, SD-WAN", "fortinet"),
    "san": HardwareSpec("NetApp", "AFF A400", "2 controllers, 24x 7.6 TB NVMe SSD, 4x 32 Gb FC, 4x 25 GbE", "netapp"),
    "san_dr": HardwareSpec("NetApp", "AFF A250", "2 controllers, 24x 3.8 TB NVMe SSD, 4x 25 GbE", "netapp"),
    "backup_appliance": HardwareSpec("Dell", "PowerProtect DD6900", "288 TB usable, 4x 25 GbE, DD Boost", "dell"),
    "nas": HardwareSpec("Synology", "RackStation RS3621xs+", "12x 8 TB HDD RAID 6, 2x 10 GbE", "synology"),
    "dc_ups": HardwareSpec("Eaton", "93PM 50 kW", "50 kVA, 2 battery cabinets, N+1, network card", "eaton"),
    "site_ups": HardwareSpec("APC", "Smart-UPS SRT 5000VA", "5 kVA online double conversion, NMC3 card", "apc"),
    "desktop_lenovo": HardwareSpec(
        "Lenovo", "ThinkCentre M90q Gen 4", "Intel Core i7-13700T, 32 GB RAM, 1 TB SSD", "lenovo"
    ),
    "desktop_dell": HardwareSpec("Dell", "OptiPlex 7010 Micro", "Intel Core i5-13500T, 16 GB RAM, 512 GB SSD", "dell"),
    "desktop_hp": HardwareSpec("HP", "EliteDesk 800 G9 Mini", "Intel Core i5-12500T, 16 GB RAM, 512 GB SSD", "hp"),
}

_ALNUM = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
_DIGITS = "0123456789"


# ------------------------------------------------------------------------------ customers


@dataclass(frozen=True)
class DbSpec:
    engine: str
    vendor: str
    version: str
    patch_levels: tuple[str, ...]
    size_gb: int
    os: str = "win2022"


@dataclass(frozen=True)
class AppSpec:
    code: str  # the name is "<prefix>-<code>"
    title: str  # for runbook names: "ACME ERP runbook"
    product: str
    vendor: str
    version: str
    patch_level: str
    vms: int = 1  # application VMs on the shared cluster (0 with `server` or `hosted`)
    os: str = "win2022"
    vcpus: int = 4
    memory_gb: int = 16
    server: str | None = None  # runs on this on-premises server (code) instead of VMs
    hosted: bool = False  # runs on the provider's shared web hosting
    db: DbSpec | None = None
    depends: tuple[str, ...] = ()  # other applications (codes) of the customer
    url: str | None = None
    criticality: str = HIGH


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    apps: tuple[str, ...]  # the first provides the service, the others it depends on
    criticality: str
    users: int
    hours: str
    tier: str
    business_owner: str


@dataclass(frozen=True)
class ServerSpec:
    code: str
    role: str
    hardware: str
    os: str
    criticality: str = MEDIUM
    status: str = LIVE


@dataclass(frozen=True)
class WindowSpec:
    name: str
    days: tuple[int, ...]
    start: str
    duration_minutes: int
    ci: str | None = None  # a CI's own window; None for the customer's


@dataclass(frozen=True)
class CustomerSpec:
    key: str
    name: str
    short: str  # for document names
    prefix: str  # for CI names
    domain: str
    timezone: str
    holiday_region: str
    location: str
    net: int  # 10.<net>.x.x
    onboarded_days_ago: int
    working_days: tuple[int, ...]
    opens: str
    closes: str
    closures: tuple[tuple[int, int, int], ...]  # (years from now, month, day)
    sla: Mapping[str, Any]
    contact: StaffSpec
    apps: tuple[AppSpec, ...]
    services: tuple[ServiceSpec, ...]
    servers: tuple[ServerSpec, ...]
    desktops: int
    desktop_apps: tuple[str, ...]
    staff_names: tuple[str, ...]
    procedures: tuple[tuple[str, str, tuple[str, ...]], ...]  # (name, steps, app codes it documents)
    windows: tuple[WindowSpec, ...]
    blackout: tuple[str, tuple[int, int], tuple[int, int]]  # reason, (month, day) first and last day
    test_app: str  # the application its test environment represents
    soon_expiring: tuple[str, ...]  # CI names (without prefix) whose warranty runs out within weeks


_MSSQL19 = DbSpec("Microsoft SQL Server", "Microsoft", "2019 Enterprise (15.0)", ("CU28", "CU27", "CU25"), 420)
_MSSQL22 = DbSpec("Microsoft SQL Server", "Microsoft", "2022 Standard (16.0)", ("CU15", "CU14"), 260)
_ORACLE19 = DbSpec(
    "Oracle Database", "Oracle", "19c Enterprise Edition", ("19.25 RU", "19.24 RU", "19.22 RU"), 1800, "rhel9"
)
_PG15 = DbSpec("PostgreSQL", "PostgreSQL Global Development Group", "15", ("15.8", "15.7"), 120, "rhel9")
_PG16 = DbSpec("PostgreSQL", "PostgreSQL Global Development Group", "16", ("16.4", "16.3"), 90, "ubuntu22")
_MYSQL8 = DbSpec("MySQL", "Oracle", "8.0 Community", ("8.0.39", "8.0.37"), 340, "ubuntu22")
_HANA = DbSpec("SAP HANA", "SAP", "2.0 SPS07", ("rev. 73", "rev. 71"), 2400, "sles15")

_AD = AppSpec(
    "ad",
    "Active Directory",
    "Active Directory Domain Services",
    "Microsoft",
    "Windows Server 2022",
    "functional level 2016",
    vms=0,
    server="dc-01",
    criticality=CRITICAL,
)
_EXCHANGE = AppSpec(
    "mail",
    "Email",
    "Microsoft Exchange Server 2019",
    "Microsoft",
    "2019",
    "CU14 + 2026-10 SU",
    vms=2,
    vcpus=8,
    memory_gb=64,
    depends=("ad",),
)


def _closures(*days: tuple[int, int, int]) -> tuple[tuple[int, int, int], ...]:
    return days


CUSTOMERS: tuple[CustomerSpec, ...] = (
    CustomerSpec(
        key="ACME",
        name="ACME Manufacturing",
        short="ACME",
        prefix="acme",
        domain="ad.acme-mfg.example",
        timezone="America/New_York",
        holiday_region="US",
        location="Detroit plant, Michigan",
        net=20,
        onboarded_days_ago=1850,
        working_days=(1, 2, 3, 4, 5),
        opens="07:00",
        closes="19:00",
        closures=_closures((0, 12, 24), (0, 12, 31), (1, 7, 6), (1, 7, 7), (1, 7, 8), (1, 7, 9), (1, 7, 10)),
        sla={
            "response_template": "priority",
            "impact_thresholds": {"medium": 10, "high": 50},
            "watch_days": 7,
            "escalation_share": 0.75,
            "committee_rule": {"quorum": 2, "majority": 0.5},  # two of the three members decide
            "excluded_classes": ["desktop"],
            "contract": "MSA-ACME-2021-004",
        },
        contact=StaffSpec("pat", "Pat Kowalski", ("customer",), (), "+1 313 555 0142", "Mon-Fri 07:00-17:00 Eastern"),
        apps=(
            _AD,
            AppSpec(
                "erp",
                "ERP",
                "SAP S/4HANA",
                "SAP",
                "2023 FPS01",
                "SPS 02",
                vms=2,
                os="sles15",
                vcpus=16,
                memory_gb=128,
                db=_HANA,
                depends=("ad",),
                url="https://erp.acme-mfg.example",
                criticality=CRITICAL,
            ),
            AppSpec(
                "mes",
                "Manufacturing execution",
                "Siemens Opcenter Execution Discrete",
                "Siemens",
                "2401",
                "Update 3",
                vms=0,
                server="mes-srv-01",
                db=_MSSQL19,
                depends=("erp", "ad"),
                criticality=CRITICAL,
            ),
            _EXCHANGE,
            AppSpec(
                "files",
                "File services",
                "Windows File Server with DFS Namespaces",
                "Microsoft",
                "2022",
                "2026-10",
                vms=0,
                server="fs-01",
                depends=("ad",),
                criticality=MEDIUM,
            ),
            AppSpec(
                "portal",
                "Supplier portal",
                "Liferay DXP",
                "Liferay",
                "7.4",
                "U112",
                vms=2,
                os="rhel9",
                db=_PG15,
                depends=("erp",),
                url="https://suppliers.acme-mfg.example",
            ),
            AppSpec(
                "plm",
                "Product lifecycle",
                "PTC Windchill",
                "PTC",
                "12.1",
                "12.1.2.9",
                vms=1,
                os="win2019",
                vcpus=8,
                memory_gb=48,
                db=_ORACLE19,
                depends=("files", "ad"),
            ),
        ),
        services=(
            ServiceSpec("ACME ERP", ("erp",), CRITICAL, 640, "24x7", "gold", "Karen Miller, CFO"),
            ServiceSpec(
                "ACME Manufacturing Execution",
                ("mes", "erp"),
                CRITICAL,
                210,
                "24x7 (three shifts)",
                "gold",
                "Dwayne Brooks, Plant Manager",
            ),
            ServiceSpec("ACME Email", ("mail",), HIGH, 820, "24x7", "silver", "Linda Chen, IT Director"),
            ServiceSpec(
                "ACME File Services",
                ("files",),
                MEDIUM,
                800,
                "Mon-Fri 07:00-19:00",
                "bronze",
                "Linda Chen, IT Director",
            ),
            ServiceSpec(
                "ACME Supplier Portal",
                ("portal", "erp"),
                HIGH,
                1400,
                "24x7",
                "silver",
                "Marcus Reed, Head of Procurement",
            ),
            ServiceSpec(
                "ACME Product Lifecycle",
                ("plm", "files"),
                HIGH,
                120,
                "Mon-Fri 07:00-19:00",
                "silver",
                "Priya Nair, VP Engineering",
            ),
        ),
        servers=(
            ServerSpec("dc-01", "Domain controller", "small_server", "win2022", CRITICAL),
            ServerSpec(
                "mes-srv-01", "MES application and database server on the plant floor", "server", "win2022", CRITICAL
            ),
            ServerSpec("fs-01", "File server", "server", "win2022", MEDIUM),
            ServerSpec("fs-old-01", "Old file server, replaced by fs-01", "old_server", "win2019", LOW, RETIRED),
        ),
        desktops=16,
        desktop_apps=("mail", "erp"),
        staff_names=(
            "Tom Becker",
            "Angela Ruiz",
            "Jamal Carter",
            "Megan O'Neil",
            "Steve Novak",
            "Rosa Delgado",
            "Kevin Wu",
            "Heather Price",
            "Brian Schultz",
            "Dana Fox",
            "Luis Ortega",
            "Amy Zhang",
            "Greg Howard",
            "Nicole Grant",
            "Omar Siddiqui",
            "Julia Park",
        ),
        procedures=(
            (
                "ACME new starter desktop setup",
                "1. Image with the standard desktop build. 2. Join ad.acme-mfg.example. 3. Install the SAP GUI and "
                "Outlook profile. 4. Hand over with the acceptable-use form.",
                (),
            ),
            (
                "ACME ERP month-end close support",
                "1. Freeze ERP transports from the 25th. 2. Extra HANA log backups during close. 3. Engineer on "
                "standby until the CFO signs off.",
                ("erp",),
            ),
        ),
        windows=(
            WindowSpec("ACME weekly maintenance", (6,), "22:00", 360),
            WindowSpec("ACME ERP database window", (7,), "02:00", 180, ci="erp-db"),
        ),
        blackout=("Fiscal year-end close", (12, 20), (1, 4)),
        test_app="erp",
        soon_expiring=("ups-02", "fs-01"),
    ),
    CustomerSpec(
        key="GLOBEX",
        name="Globex Retail",
        short="Globex",
        prefix="globex",
        domain="corp.globex-retail.example",
        timezone="Europe/London",
        holiday_region="GB-ENG",
        location="London head office, Canary Wharf",
        net=30,
        onboarded_days_ago=1200,
        working_days=(1, 2, 3, 4, 5, 6),
        opens="08:00",
        closes="20:00",
        closures=_closures((1, 1, 2), (1, 3, 15)),
        sla={
            "response_template": "levels",
            "impact_thresholds": {"medium": 15, "high": 60},
            "watch_days": 14,
            "escalation_share": 0.75,
            "committee_rule": {"quorum": 3, "majority": 0.5},  # every member votes
            "excluded_classes": [],
            "contract": "MSA-GLOBEX-2023-011",
        },
        contact=StaffSpec("gwen", "Gwen Harris", ("customer",), (), "+44 20 7946 0900", "Mon-Sat 08:00-18:00 UK"),
        apps=(
            _AD,
            AppSpec(
                "shop",
                "Web shop",
                "Adobe Commerce",
                "Adobe",
                "2.4.7",
                "2.4.7-p3",
                vms=3,
                os="rhel9",
                vcpus=8,
                memory_gb=32,
                db=_MYSQL8,
                depends=("paygw", "loyalty"),
                url="https://www.globex-retail.example",
                criticality=CRITICAL,
            ),
            AppSpec(
                "pos",
                "Point of sale",
                "Oracle Retail Xstore Point of Service",
                "Oracle",
                "22.0",
                "22.0.2",
                vms=2,
                os="rhel9",
                db=_ORACLE19,
                depends=("paygw", "ad"),
                criticality=CRITICAL,
            ),
            AppSpec(
                "paygw",
                "Payment gateway",
                "Adyen payment connector",
                "Adyen",
                "4.12",
                "4.12.3",
                vms=2,
                os="ubuntu22",
                criticality=CRITICAL,
            ),
            AppSpec(
                "wms",
                "Warehouse management",
                "Manhattan Active Warehouse Management",
                "Manhattan Associates",
                "2023.1",
                "2023.1.14",
                vms=2,
                db=_MSSQL22,
                depends=("ad",),
            ),
            AppSpec(
                "loyalty",
                "Loyalty",
                "Globex Rewards (in-house .NET)",
                "Globex Retail",
                "3.4",
                "3.4.2",
                vms=1,
                db=_PG16,
                depends=("ad",),
                criticality=MEDIUM,
            ),
            _EXCHANGE,
            AppSpec(
                "www",
                "Corporate website",
                "WordPress",
                "WordPress.org",
                "6.6",
                "6.6.2",
                vms=0,
                hosted=True,
                url="https://about.globex-retail.example",
                criticality=LOW,
            ),
        ),
        services=(
            ServiceSpec(
                "Globex Web Shop",
                ("shop", "paygw", "loyalty"),
                CRITICAL,
                250000,
                "24x7",
                "gold",
                "Hannah Wright, Chief Digital Officer",
            ),
            ServiceSpec(
                "Globex Point of Sale",
                ("pos", "paygw"),
                CRITICAL,
                1800,
                "Mon-Sun 07:00-23:00",
                "gold",
                "Oliver Bennett, Retail Operations Director",
            ),
            ServiceSpec(
                "Globex Warehouse", ("wms",), HIGH, 340, "24x7", "silver", "Fiona Clarke, Supply Chain Director"
            ),
            ServiceSpec(
                "Globex Loyalty", ("loyalty",), MEDIUM, 90000, "24x7", "bronze", "Hannah Wright, Chief Digital Officer"
            ),
            ServiceSpec("Globex Email", ("mail",), HIGH, 2100, "24x7", "silver", "James Cooper, Head of IT"),
            ServiceSpec("Globex Corporate Website", ("www",), LOW, 5000, "24x7", "bronze", "Amelia Hughes, Head of PR"),
        ),
        servers=(
            ServerSpec("dc-01", "Domain controller", "small_server", "win2022", CRITICAL),
            ServerSpec(
                "store-srv-01", "Flagship store server (Xstore edge, printers)", "small_server", "win2022", HIGH
            ),
            ServerSpec("print-01", "Print server", "small_server", "win2019", LOW),
        ),
        desktops=14,
        desktop_apps=("mail", "pos"),
        staff_names=(
            "Sophie Turner",
            "Harry Evans",
            "Chloe Walker",
            "Jack Robinson",
            "Emily Thompson",
            "George Wood",
            "Isla Green",
            "Noah Hall",
            "Grace Lewis",
            "Leo Harris",
            "Mia Scott",
            "Oscar Young",
            "Ruby King",
            "Alfie Baker",
        ),
        procedures=(
            (
                "Globex new starter desktop setup",
                "1. Image with the standard desktop build. 2. Join corp.globex-retail.example. 3. Enrol in Intune. "
                "4. Hand over.",
                (),
            ),
            (
                "Globex till replacement",
                "1. Swap the till from the spares pool. 2. Register it in Xstore. 3. Pair the payment terminal. "
                "4. Test a sale and a refund.",
                ("pos", "paygw"),
            ),
        ),
        windows=(
            WindowSpec("Globex overnight maintenance", (2, 3), "01:00", 180),
            WindowSpec("Globex POS database window", (1,), "02:00", 120, ci="pos-db"),
        ),
        blackout=("Peak trading freeze (Black Friday to New Year)", (11, 20), (1, 3)),
        test_app="shop",
        soon_expiring=("nas-01",),
    ),
    CustomerSpec(
        key="INITECH",
        name="Initech Insurance",
        short="Initech",
        prefix="initech",
        domain="corp.initech-versicherung.example",
        timezone="Europe/Berlin",
        holiday_region="DE-BE",
        location="Berlin, Friedrichstrasse",
        net=40,
        onboarded_days_ago=900,
        working_days=(1, 2, 3, 4, 5),
        opens="08:00",
        closes="17:00",
        closures=_closures((0, 12, 24), (0, 12, 31), (1, 6, 12)),
        sla={
            "response_template": "priority",
            "impact_thresholds": {"medium": 5, "high": 25},
            "watch_days": 10,
            "escalation_share": 0.6,
            "committee_rule": {"quorum": 2, "veto": True},  # any reject vote rejects
            "customer_approval": True,  # Initech approves every change on its side before scheduling
            "excluded_classes": ["desktop", "ups"],
            "contract": "RV-INITECH-2024-002",
        },
        contact=StaffSpec("bill", "Bill Lumbergh", ("customer",), (), "+49 30 5557 0200", "Mon-Fri 08:00-17:00 Berlin"),
        apps=(
            _AD,
            # crm -> dms -> policy -> crm: the dependency cycle.
            AppSpec(
                "policy",
                "Policy administration",
                "Guidewire PolicyCenter",
                "Guidewire",
                "10.2",
                "10.2.4",
                vms=2,
                os="rhel9",
                vcpus=8,
                memory_gb=64,
                db=_ORACLE19,
                depends=("crm", "ad"),
                criticality=CRITICAL,
            ),
            AppSpec(
                "claims",
                "Claims",
                "Guidewire ClaimCenter",
                "Guidewire",
                "10.2",
                "10.2.4",
                vms=2,
                os="rhel9",
                vcpus=8,
                memory_gb=64,
                db=_ORACLE19,
                depends=("policy", "dms", "ad"),
                criticality=CRITICAL,
            ),
            AppSpec(
                "crm",
                "CRM",
                "Microsoft Dynamics 365 Customer Engagement (on-premises)",
                "Microsoft",
                "9.1",
                "9.1.28",
                vms=2,
                db=_MSSQL19,
                depends=("dms", "ad"),
            ),
            AppSpec(
                "dms",
                "Document management",
                "OpenText Documentum",
                "OpenText",
                "23.4",
                "23.4 P07",
                vms=1,
                os="rhel9",
                db=_PG15,
                depends=("policy",),
            ),
            _EXCHANGE,
            AppSpec(
                "tps",
                "TPS reports",
                "TPS report generator (in-house Java)",
                "Initech",
                "2.3",
                "2.3.1",
                vms=1,
                os="ubuntu22",
                memory_gb=8,
                depends=("policy",),
                criticality=LOW,
            ),
        ),
        services=(
            ServiceSpec(
                "Initech Policy Administration",
                ("policy", "dms"),
                CRITICAL,
                450,
                "Mon-Sat 07:00-20:00",
                "gold",
                "Dr. Sabine Krause, COO",
            ),
            ServiceSpec(
                "Initech Claims",
                ("claims", "dms", "policy"),
                CRITICAL,
                380,
                "24x7",
                "gold",
                "Thomas Weber, Head of Claims",
            ),
            ServiceSpec(
                "Initech CRM", ("crm",), HIGH, 300, "Mon-Fri 08:00-18:00", "silver", "Julia Schmidt, Head of Sales"
            ),
            ServiceSpec(
                "Initech Document Management",
                ("dms",),
                HIGH,
                520,
                "Mon-Sat 07:00-20:00",
                "silver",
                "Dr. Sabine Krause, COO",
            ),
            ServiceSpec("Initech Email", ("mail",), HIGH, 560, "24x7", "silver", "Frank Meyer, IT-Leiter"),
            ServiceSpec(
                "Initech TPS Reports", ("tps",), LOW, 40, "Mon-Fri 08:00-17:00", "bronze", "Bill Lumbergh, Division VP"
            ),
        ),
        servers=(
            ServerSpec("dc-01", "Domain controller", "small_server", "win2022", CRITICAL),
            ServerSpec("print-01", "Print and scan server", "small_server", "win2019", LOW),
            ServerSpec(
                "scan-01", "Mailroom scanning server (planned replacement)", "small_server", "win2022", MEDIUM, PLANNED
            ),
        ),
        desktops=14,
        desktop_apps=("mail", "crm"),
        staff_names=(
            "Peter Gibbons",
            "Michael Bolton",
            "Samir Nagheenanajar",
            "Milton Waddams",
            "Joanna Klein",
            "Lukas Fischer",
            "Anna Wagner",
            "Felix Becker",
            "Lea Hoffmann",
            "Jonas Schulz",
            "Marie Koch",
            "Paul Richter",
            "Emma Wolf",
            "Tom Smykowski",
        ),
        procedures=(
            (
                "Initech new starter desktop setup",
                "1. Image with the standard desktop build. 2. Join the domain. 3. Install the Guidewire client "
                "certificates. 4. Hand over with the data-protection briefing.",
                (),
            ),
            (
                "Initech year-end closing support",
                "1. Freeze changes to policy and claims. 2. Extra Oracle archive-log backups. 3. Standby engineer "
                "for the actuarial runs.",
                ("policy", "claims"),
            ),
        ),
        windows=(
            WindowSpec("Initech weekend maintenance", (6,), "20:00", 480),
            WindowSpec("Initech policy database window", (7,), "06:00", 240, ci="policy-db"),
        ),
        blackout=("Year-end closing (Jahresabschluss)", (12, 14), (1, 10)),
        test_app="policy",
        soon_expiring=("dc-01",),
    ),
    CustomerSpec(
        key="SCL",
        name="Southern Cross Logistics",
        short="SCL",
        prefix="scl",
        domain="corp.scl-logistics.example",
        timezone="Australia/Sydney",
        holiday_region="AU-NSW",
        location="Sydney, Port Botany depot",
        net=50,
        onboarded_days_ago=420,
        working_days=(1, 2, 3, 4, 5),
        opens="07:30",
        closes="17:30",
        closures=_closures((0, 12, 24), (1, 1, 2)),
        sla={
            "response_template": "priority",
            "impact_thresholds": {"medium": 10, "high": 40},
            "watch_days": 7,
            "escalation_share": 0.75,
            "committee_rule": {"quorum": 2, "majority": 0.5},
            "excluded_classes": [],
            "contract": "MSA-SCL-2025-001",
        },
        contact=StaffSpec("liam", "Liam O'Brien", ("customer",), (), "+61 2 5550 0300", "Mon-Fri 07:30-17:30 Sydney"),
        apps=(
            _AD,
            AppSpec(
                "fleet",
                "Fleet tracking",
                "Descartes Route Planner",
                "Descartes",
                "24.1",
                "24.1.3",
                vms=2,
                os="rhel9",
                db=_PG15,
                depends=("ad",),
                criticality=CRITICAL,
            ),
            AppSpec(
                "dispatch",
                "Dispatch",
                "SCL Dispatch (in-house)",
                "Southern Cross Logistics",
                "5.2",
                "5.2.7",
                vms=2,
                db=_MSSQL19,
                depends=("fleet", "ad"),
                criticality=CRITICAL,
            ),
            AppSpec(
                "payroll",
                "Payroll",
                "Micropay Payroll",
                "Access Group",
                "2023.2",
                "2023.2.5",
                vms=1,
                db=_MSSQL22,
                depends=("ad",),
            ),
            _EXCHANGE,
            AppSpec(
                "www",
                "Website",
                "WordPress",
                "WordPress.org",
                "6.6",
                "6.6.2",
                vms=0,
                hosted=True,
                url="https://www.scl-logistics.example",
                criticality=LOW,
            ),
        ),
        services=(
            ServiceSpec("SCL Fleet Tracking", ("fleet",), CRITICAL, 160, "24x7", "gold", "Mick Taylor, Fleet Manager"),
            ServiceSpec(
                "SCL Dispatch", ("dispatch", "fleet"), CRITICAL, 120, "24x7", "gold", "Sarah Nguyen, Operations Manager"
            ),
            ServiceSpec(
                "SCL Payroll", ("payroll",), HIGH, 30, "Mon-Fri 07:30-17:30", "silver", "Chris Walsh, Finance Manager"
            ),
            ServiceSpec("SCL Email", ("mail",), HIGH, 260, "24x7", "silver", "Sarah Nguyen, Operations Manager"),
            ServiceSpec("SCL Website", ("www",), LOW, 2000, "24x7", "bronze", "Chris Walsh, Finance Manager"),
        ),
        servers=(
            ServerSpec("dc-01", "Domain controller", "small_server", "win2022", CRITICAL),
            ServerSpec("depot-srv-01", "Depot server (scanners, label printing)", "small_server", "win2022", HIGH),
        ),
        desktops=10,
        desktop_apps=("mail", "dispatch"),
        staff_names=(
            "Jack Mitchell",
            "Chloe Anderson",
            "Ethan Wilson",
            "Zoe Martin",
            "Liam Kelly",
            "Ava Thompson",
            "Noah White",
            "Isabella Ryan",
            "Cooper Walsh",
            "Matilda Brown",
        ),
        procedures=(
            (
                "SCL new starter desktop setup",
                "1. Image with the standard desktop build. 2. Join the domain. 3. Install the dispatch client. "
                "4. Hand over.",
                (),
            ),
            (
                "SCL depot failover to 4G",
                "1. Confirm the fibre outage with the carrier. 2. Switch the FortiGate SD-WAN rule to the 4G link. "
                "3. Check dispatch and scanners. 4. Switch back when the fibre is restored.",
                ("dispatch",),
            ),
        ),
        windows=(
            WindowSpec("SCL Sunday maintenance", (7,), "00:00", 360),
            WindowSpec("SCL dispatch database window", (6,), "23:00", 180, ci="dispatch-db"),
        ),
        blackout=("Christmas peak freight", (12, 1), (12, 24)),
        test_app="dispatch",
        soon_expiring=("fw-01", "ups-01"),
    ),
)

PROVIDER_WINDOWS = (
    WindowSpec("Provider data-centre maintenance", (2, 4), "22:00", 240),
    WindowSpec("SAN maintenance", (7,), "03:00", 180, ci="san-01"),
)


# ------------------------------------------------------------------------------ the context

#: How far back the demo's history starts: the estate is recorded in Keel this many days before
#: the injected clock's now, and the change activity (RFCs raised, voted on, implemented, failed,
#: backed out) and the configuration drift happen in between.
HISTORY_DAYS = 60


class SeedClock:
    """The clock a demo run writes its records with, set from the injected clock.

    `keel demo` injects the real clock, but a believable data set needs a past: an RFC completed
    two weeks ago must have been scheduled into a change window two weeks ago and implemented
    after that window opened (the workflow refuses an implementation before the planned start),
    and its events must carry those times. So the run reads the injected clock once
    (`present`), starts this clock `HISTORY_DAYS` before it (when the CMDB steps record the
    estate), and the later steps move it to the moment of each event they replay. It never goes
    past `present`: nothing in the data set is dated in the future, except what is planned
    (scheduled windows, deadlines). Used only while seeding; the services the application runs
    with keep their own clock.
    """

    def __init__(self, present: dt.datetime, start: dt.datetime) -> None:
        self.present = present
        self._at = min(start, present)

    def now(self) -> dt.datetime:
        return self._at

    def set(self, at: dt.datetime) -> None:
        self._at = min(at, self.present)


@dataclass
class DemoContext:
    """What the steps share: the services, the clock, the random source, and what earlier
    steps made (CIs by (customer key, name), people and their actors by username, RFCs by their
    demo name)."""

    cmdb: CMDBService
    clock: SeedClock
    provider: Customer
    rng: random.Random
    today: dt.date
    customers: dict[str, Customer] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    actors: dict[str, Actor] = field(default_factory=dict)
    sign_ins: list[SignIn] = field(default_factory=list)
    existing_people: dict[str, Person] = field(default_factory=dict)  # reused, not created
    cis: dict[tuple[str, str], CI] = field(default_factory=dict)
    edges: set[tuple[int, int, str]] = field(default_factory=set)
    hosts: list[CI] = field(default_factory=list)
    windows: int = 0
    blackouts: int = 0
    updates: int = 0
    rfcs: dict[str, RFC] = field(default_factory=dict)  # by demo name, as the last step left them
    operations: Any = None  # web.demo_operations.Operations: its services on this clock, built on first use
    _host_turn: int = 0
    _ips: Counter[tuple[int, int]] = field(default_factory=Counter)
    _change: ChangeService | None = None

    @property
    def now(self) -> dt.datetime:
        """The present of the data set: the injected clock's time when the run started."""
        return self.clock.present

    @property
    def change(self) -> ChangeService:
        """Change management on the same CMDB service and seeding clock."""
        if self._change is None:
            self._change = ChangeService(self.clock, self.cmdb)
        return self._change

    @property
    def pkey(self) -> str:
        return self.provider.key

    def ci(self, customer: str, name: str) -> CI:
        return self.cis[(customer, name)]

    def p(self, name: str) -> CI:
        """A provider CI."""
        return self.cis[(self.pkey, name)]

    def date(self, days: int) -> str:
        return (self.today + dt.timedelta(days=days)).isoformat()

    def ip(self, net: int, subnet: int) -> str:
        self._ips[(net, subnet)] += 1
        return f"10.{net}.{subnet}.{10 + self._ips[(net, subnet)]}"

    def serial(self, style: str) -> str:
        pick = self.rng.choice

        def run(alphabet: str, n: int) -> str:
            return "".join(pick(alphabet) for _ in range(n))

        year = self.rng.randint(19, 25)
        return {
            "dell": lambda: run(_ALNUM, 7),
            "hpe": lambda: "CZJ" + run(_DIGITS, 7),
            "cisco": lambda: f"FDO{year}{run(_DIGITS, 2)}" + run(_ALNUM, 4),
            "paloalto": lambda: "0130" + run(_DIGITS, 8),
            "fortinet": lambda: "FG100FTK" + run(_DIGITS, 8),
            "netapp": lambda: "7219" + run(_DIGITS, 8),
            "synology": lambda: f"{year}A0RSN" + run(_DIGITS, 6),
            "eaton": lambda: "BH" + run(_DIGITS, 3) + "ATT" + run(_DIGITS, 3),
            "apc": lambda: f"AS{year}" + run(_DIGITS, 8),
            "lenovo": lambda: "PF" + run(_ALNUM, 6),
            "hp": lambda: "CZC" + run(_DIGITS, 3) + run(_ALNUM, 4),
        }[style]()

    def next_host(self) -> CI:
        """Spreads VMs over the live hosts of the shared cluster, deterministically."""
        host = self.hosts[self._host_turn % len(self.hosts)]
        self._host_turn += 1 + (self.rng.random() < 0.3)
        return host

    async def add_ci(
        self,
        customer: str,
        name: str,
        ci_class: CIClass,
        *,
        status: str = LIVE,
        criticality: str = MEDIUM,
        description: str = "",
        owner: str | None = None,
        support: Sequence[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> CI:
        owner = owner or _OWNER[ci_class]
        support_refs: list[int | str] = [
            self.people[u].id for u in (_SUPPORT[ci_class] if support is None else support) if u != owner
        ]
        ci = await self.cmdb.create_ci(
            self.actors[_CREATOR[ci_class]],
            CIInput(
                name=name,
                customer=customer,
                ci_class=ci_class.value,
                status=status,
                criticality=criticality,
                description=description,
                owner=self.people[owner].id,
                support=support_refs,
                attributes=dict(attributes or {}),
            ),
        )
        self.cis[(customer, name)] = ci
        return ci

    async def link(self, source: CI, type_: Rel, target: CI, note: str = "") -> None:
        key = (source.id, target.id, type_.value)
        if key in self.edges:
            return
        actor = self.actors[_CREATOR[source.ci_class]]
        await self.cmdb.create_relationship(actor, source.id, target.id, type_.value, note=note)
        self.edges.add(key)

    # --- attribute builders -----------------------------------------------------------------

    def hardware(
        self,
        kind: str,
        *,
        warranty_days: int | None = None,
        migrated_days_ago: int = 900,
        status: str = LIVE,
        location: str = "",
    ) -> dict[str, Any]:
        spec = HARDWARE[kind]
        if warranty_days is None:
            warranty_days = -self.rng.randint(60, 700) if status == RETIRED else self.rng.randint(90, 1400)
        migrated = (
            self.rng.randint(30, 120) if status == PLANNED else -max(1, migrated_days_ago - self.rng.randint(0, 300))
        )
        return {
            "serial_number": self.serial(spec.serial_style),
            "make": spec.make,
            "model": spec.model,
            "hardware_config": spec.hardware_config,
            "warranty_expires": self.date(warranty_days),
            "migration_date": self.date(migrated),
            "location": location,
            "asset_tag": f"AT-{self.rng.randint(10000, 99999)}",
        }

    def os_attributes(self, key: str, migrated_days_ago: int, status: str = LIVE) -> dict[str, Any]:
        spec = OS[key]
        # Most systems are current; some lag a patch or two behind.
        lag = self.rng.choices(range(len(spec.patch_levels)), weights=[6, 3, 1][: len(spec.patch_levels)])[0]
        return {
            "vendor": spec.vendor,
            "version": spec.version,
            "patch_level": spec.patch_levels[lag],
            "support_expires": spec.support_expires,
            "software_agreements": [
                "Microsoft SPLA (per-core)" if spec.windows else f"{spec.vendor} subscription (managed by provider)"
            ],
            "license_key_ref": f"LIC-{key.upper()}-{self.rng.randint(1000, 9999)}",
            "migration_date": self.date(
                self.rng.randint(30, 90) if status == PLANNED else -max(1, migrated_days_ago - self.rng.randint(0, 200))
            ),
        }


Step = Callable[[DemoContext], Awaitable[None]]


# ------------------------------------------------------------------------------- the steps


def _person_data(spec: StaffSpec, customer: str | None) -> dict[str, Any]:
    return {
        "username": spec.username,
        "name": spec.name,
        "roles": list(spec.roles),
        "customer": customer,
        "password": spec.password,
        "email": spec.email if customer is None else f"{spec.username}@{customer.lower()}.example",
        "phone": spec.phone or None,
        "availability": spec.availability,
        "expertise": list(spec.expertise),
    }


def _actor(person: Person, provider: Customer) -> Actor:
    return Actor(person.id, person.username, person.name, person.tenant_id, provider.id, person.roles)


async def _add_person(ctx: DemoContext, spec: StaffSpec, customer: str | None) -> None:
    person = ctx.existing_people.get(spec.username)
    password = spec.password
    if person is None:
        person = await ctx.cmdb.create_person(ctx.actors.get("admin"), _person_data(spec, customer))
    else:
        password = "(unchanged)"
    ctx.people[spec.username] = person
    ctx.actors[spec.username] = _actor(person, ctx.provider)
    ctx.sign_ins.append(SignIn(spec.username, password, tuple(sorted(spec.roles)), customer or ctx.pkey, spec.name))


async def add_provider_staff(ctx: DemoContext) -> None:
    """The administrator first (created as the operator would, from the command line), then the
    rest of the provider's staff by the administrator. A compatible account that exists already
    (an `admin` made with `keel user add`) is used as it is, password unchanged."""
    for spec in STAFF:
        await _add_person(ctx, spec, None)


async def add_customers(ctx: DemoContext) -> None:
    admin = ctx.actors["admin"]
    for spec in CUSTOMERS:
        customer = await ctx.cmdb.create_customer(
            admin,
            {
                "key": spec.key,
                "name": spec.name,
                "timezone": spec.timezone,
                "holiday_region": spec.holiday_region,
                "calendar": {
                    "working_days": list(spec.working_days),
                    "opens": spec.opens,
                    "closes": spec.closes,
                    "closure_days": sorted(
                        dt.date(ctx.today.year + years, month, day).isoformat() for years, month, day in spec.closures
                    ),
                },
                "sla": dict(spec.sla),
            },
        )
        ctx.customers[spec.key] = customer


async def add_customer_contacts(ctx: DemoContext) -> None:
    for spec in CUSTOMERS:
        await _add_person(ctx, spec.contact, spec.key)


async def add_provider_network(ctx: DemoContext) -> None:
    """Data-centre power, the core switch pair, firewalls and the management switch."""
    pk, loc = ctx.pkey, "London DC1, hall B"
    for n in (1, 2):
        await ctx.add_ci(
            pk,
            f"dc-ups-0{n}",
            CIClass.UPS,
            criticality=CRITICAL,
            description=f"Data-centre UPS, feed {'A' if n == 1 else 'B'}",
            attributes={
                **ctx.hardware("dc_ups", migrated_days_ago=2400, location=loc),
                "capacity_va": 50000,
                "battery_replaced": ctx.date(-ctx.rng.randint(200, 700)),
            },
        )
    for n in (1, 2):
        sw = await ctx.add_ci(
            pk,
            f"core-sw-0{n}",
            CIClass.NETWORK_DEVICE,
            criticality=CRITICAL,
            description="Core switch (vPC pair) of the shared data centre",
            attributes={
                **ctx.hardware("core_switch", migrated_days_ago=2100, location=loc),
                "ip_address": f"10.0.0.{n + 1}",
                "hostname": f"core-sw-0{n}.mgmt.keel-msp.example",
                "firmware": "NX-OS 10.3(4a)",
                "ports": 54,
                "software_config": "vPC domain 10, VLANs 100-399 per customer, OSPF area 0",
            },
        )
        await ctx.link(sw, Rel.DEPENDS_ON, ctx.p("dc-ups-01"))
        await ctx.link(sw, Rel.DEPENDS_ON, ctx.p("dc-ups-02"))
    await ctx.link(ctx.p("core-sw-02"), Rel.CONNECTED_TO, ctx.p("core-sw-01"), "vPC peer link")
    for n in (1, 2):
        fw = await ctx.add_ci(
            pk,
            f"dc-fw-0{n}",
            CIClass.NETWORK_DEVICE,
            criticality=CRITICAL,
            description="Perimeter firewall (HA pair), terminates customer site VPNs",
            attributes={
                **ctx.hardware("dc_firewall", migrated_days_ago=1500, location=loc),
                "ip_address": f"10.0.0.{n + 10}",
                "hostname": f"dc-fw-0{n}.mgmt.keel-msp.example",
                "firmware": "PAN-OS 11.1.4-h7",
                "ports": 16,
            },
        )
        await ctx.link(fw, Rel.CONNECTED_TO, ctx.p(f"core-sw-0{n}"))
        await ctx.link(fw, Rel.DEPENDS_ON, ctx.p(f"dc-ups-0{n}"))
    mgmt = await ctx.add_ci(
        pk,
        "mgmt-sw-01",
        CIClass.NETWORK_DEVICE,
        criticality=MEDIUM,
        description="Out-of-band management switch",
        attributes={
            **ctx.hardware("mgmt_switch", migrated_days_ago=1500, location=loc),
            "ip_address": "10.0.0.20",
            "hostname": "mgmt-sw-01.mgmt.keel-msp.example",
            "firmware": "IOS XE 17.9.5",
            "ports": 52,
        },
    )
    await ctx.link(mgmt, Rel.CONNECTED_TO, ctx.p("core-sw-01"))
    await ctx.link(mgmt, Rel.DEPENDS_ON, ctx.p("dc-ups-01"))


async def add_provider_storage(ctx: DemoContext) -> None:
    pk, loc = ctx.pkey, "London DC1, hall B"
    san = await ctx.add_ci(
        pk,
        "san-01",
        CIClass.STORAGE,
        criticality=CRITICAL,
        description="Primary SAN: datastores of the shared VMware cluster, all customers",
        attributes={
            **ctx.hardware("san", migrated_days_ago=1300, location=loc),
            "capacity_tb": 182.4,
            "raid_level": "RAID-TEC",
            "software_config": "ONTAP 9.14.1P6, SnapMirror to san-02 every 15 min",
        },
    )
    dr = await ctx.add_ci(
        pk,
        "san-02",
        CIClass.STORAGE,
        criticality=HIGH,
        description="DR replica of san-01 (London DC2)",
        attributes={
            **ctx.hardware("san_dr", migrated_days_ago=1300, location="London DC2, hall A"),
            "capacity_tb": 91.2,
            "raid_level": "RAID-DP",
            "software_config": "ONTAP 9.14.1P6, SnapMirror target",
        },
    )
    dd = await ctx.add_ci(
        pk,
        "backup-dd-01",
        CIClass.STORAGE,
        criticality=HIGH,
        description="Backup target appliance (DD Boost)",
        attributes={
            **ctx.hardware("backup_appliance", migrated_days_ago=1100, location=loc),
            "capacity_tb": 288.0,
            "raid_level": "RAID 6",
            "software_config": "DDOS 7.13, retention lock governance mode",
        },
    )
    for device in (san, dr, dd):
        await ctx.link(device, Rel.CONNECTED_TO, ctx.p("core-sw-01"))
        await ctx.link(device, Rel.CONNECTED_TO, ctx.p("core-sw-02"))
    for device in (san, dd):
        await ctx.link(device, Rel.DEPENDS_ON, ctx.p("dc-ups-01"))
        await ctx.link(device, Rel.DEPENDS_ON, ctx.p("dc-ups-02"))
    await ctx.link(dr, Rel.DEPENDS_ON, san, "SnapMirror replication source")


async def add_provider_cluster(ctx: DemoContext) -> None:
    """The shared VMware cluster and its eight hosts (one still being racked)."""
    pk, loc = ctx.pkey, "London DC1, hall B"
    cluster = await ctx.add_ci(
        pk,
        "vmw-shared-cl01",
        CIClass.CLUSTER,
        criticality=CRITICAL,
        description="Shared VMware vSphere cluster hosting customer and provider VMs",
        attributes={"hypervisor": "VMware vSphere", "node_count": 8, "version": "8.0 Update 2"},
    )
    await ctx.link(cluster, Rel.DEPENDS_ON, ctx.p("san-01"))
    for n in range(1, 9):
        status = PLANNED if n == 8 else LIVE
        warranty = 19 if n == 7 else None  # one host's warranty runs out in under three weeks
        host = await ctx.add_ci(
            pk,
            f"esx-0{n}",
            CIClass.SERVER,
            status=status,
            criticality=HIGH,
            description="Host of the shared cluster" + (" (racked, not yet in the cluster)" if n == 8 else ""),
            attributes={
                **ctx.hardware(
                    "esx_host", warranty_days=warranty, migrated_days_ago=1300 - 60 * n, status=status, location=loc
                ),
                "ip_address": f"10.0.10.{10 + n}",
                "hostname": f"esx-0{n}.mgmt.keel-msp.example",
                "cpu_cores": 64,
                "memory_gb": 1024,
                "software_config": "VMware ESXi 8.0 U2, HA and DRS",
                "applications": ["VMware ESXi"],
                "software_agreements": ["VMware Cloud Foundation subscription VCF-2024-118"],
            },
        )
        os_ci = await ctx.add_ci(
            pk,
            f"esx-0{n}-os",
            CIClass.OPERATING_SYSTEM,
            status=status,
            criticality=HIGH,
            description=f"{OS['esxi8'].product} on esx-0{n}",
            attributes=ctx.os_attributes("esxi8", 1300 - 60 * n, status),
        )
        await ctx.link(os_ci, Rel.INSTALLED_ON, host)
        if status == LIVE:
            await ctx.link(host, Rel.MEMBER_OF, cluster)
            ctx.hosts.append(host)
        await ctx.link(host, Rel.CONNECTED_TO, ctx.p("core-sw-01"))
        await ctx.link(host, Rel.CONNECTED_TO, ctx.p("core-sw-02"))
        await ctx.link(host, Rel.DEPENDS_ON, ctx.p("san-01"))
        await ctx.link(host, Rel.DEPENDS_ON, ctx.p(f"dc-ups-0{1 + n % 2}"))


async def _add_vm(
    ctx: DemoContext,
    customer: str,
    name: str,
    *,
    net: int,
    subnet: int,
    os_key: str,
    vcpus: int,
    memory_gb: int,
    disk_gb: int,
    criticality: str,
    migrated_days_ago: int,
    domain: str,
    status: str = LIVE,
    description: str = "",
    managed: bool = True,
) -> CI:
    """A VM of the shared cluster with its operating system, on SAN storage; `managed` VMs are
    also backed up and monitored by the provider's services (once live)."""
    host = ctx.next_host()
    datastore = f"san-01-ds{ctx.rng.randint(1, 6):02d}"
    vm = await ctx.add_ci(
        customer,
        name,
        CIClass.VIRTUAL_MACHINE,
        status=status,
        criticality=criticality,
        description=description,
        attributes={
            "vcpus": vcpus,
            "memory_gb": memory_gb,
            "disk_gb": disk_gb,
            "hypervisor": "VMware vSphere 8.0 U2",
            "ip_address": ctx.ip(net, subnet),
            "hostname": f"{name}.{domain}",
            "software_config": f"{OS[os_key].product}; VMware Tools 12.4; datastore {datastore}",
            "migration_date": ctx.date(
                ctx.rng.randint(20, 90) if status == PLANNED else -max(1, migrated_days_ago - ctx.rng.randint(0, 250))
            ),
        },
    )
    os_ci = await ctx.add_ci(
        customer,
        f"{name}-os",
        CIClass.OPERATING_SYSTEM,
        status=status,
        criticality=criticality,
        description=f"{OS[os_key].product} on {name}",
        attributes=ctx.os_attributes(os_key, migrated_days_ago, status),
    )
    await ctx.link(os_ci, Rel.INSTALLED_ON, vm)
    await ctx.link(os_ci, Rel.DOCUMENTED_BY, ctx.p("Standard server imaging"))
    await ctx.link(vm, Rel.HOSTED_ON, host)
    await ctx.link(vm, Rel.DEPENDS_ON, ctx.p("san-01"))
    if managed and status != PLANNED:
        await ctx.link(vm, Rel.DEPENDS_ON, ctx.p("Backup service"))
        await ctx.link(vm, Rel.DEPENDS_ON, ctx.p("Monitoring service"))
    await ctx.link(vm, Rel.DOCUMENTED_BY, ctx.p("VM provisioning"))
    return vm


async def add_provider_documentation(ctx: DemoContext) -> None:
    """Runbooks and procedures: created before the CIs they document."""
    pk = ctx.pkey
    wiki = "https://wiki.keel-msp.example/ops"
    for name, slug in (
        ("ESXi host patching runbook", "esxi-patching"),
        ("SAN failover runbook", "san-failover"),
        ("Backup and restore runbook", "backup-restore"),
        ("Data-centre network diagram", "dc-network"),
        ("Monitoring alert handling runbook", "alert-handling"),
        ("Shared hosting runbook", "shared-hosting"),
    ):
        await ctx.add_ci(
            pk,
            name,
            CIClass.DOCUMENT,
            criticality=MEDIUM,
            attributes={
                "url": f"{wiki}/{slug}",
                "version": f"{ctx.rng.randint(1, 4)}.{ctx.rng.randint(0, 9)}",
                "review_date": ctx.date(ctx.rng.randint(20, 300)),
            },
        )
    for name, steps, status in (
        (
            "Standard server imaging",
            "1. Deploy the golden image of the OS (Windows Server 2022, RHEL 9, Ubuntu 22.04, SLES 15). 2. Apply the "
            "CIS level 1 baseline. 3. Install the monitoring and backup agents. 4. Register the OS CI in Keel with its "
            "patch level. 5. Hand over after the build checklist.",
            LIVE,
        ),
        (
            "VM provisioning",
            "1. Check capacity of vmw-shared-cl01. 2. Create the VM from the template on san-01. 3. Tag the customer's "
            "VLAN. 4. Add the VM to its backup job and monitoring. 5. Record the VM CI and its relationships.",
            LIVE,
        ),
        (
            "Emergency change procedure",
            "1. The on-call engineer raises an emergency RFC. 2. The change manager authorizes by phone. 3. Implement "
            "and record. 4. The committee reviews at the next meeting.",
            LIVE,
        ),
        (
            "Host decommissioning",
            "1. Evacuate VMs. 2. Remove from the cluster. 3. Wipe disks (NIST 800-88). 4. Retire the CI.",
            PLANNED,
        ),
    ):
        await ctx.add_ci(
            pk,
            name,
            CIClass.PROCEDURE,
            status=status,
            criticality=MEDIUM,
            attributes={
                "steps": steps,
                "version": f"{ctx.rng.randint(1, 3)}.{ctx.rng.randint(0, 9)}",
                "review_date": ctx.date(ctx.rng.randint(30, 365)),
            },
        )


async def add_provider_services(ctx: DemoContext) -> None:
    """The provider's own VMs, applications and databases, and the services customers rely on."""
    pk, domain = ctx.pkey, "ops.keel-msp.example"
    vms: dict[str, CI] = {}
    for name, os_key, vcpus, mem, disk in (
        ("vcenter-01", "rhel9", 8, 32, 700),
        ("veeam-01", "win2022", 8, 32, 400),
        ("veeam-proxy-01", "win2022", 8, 16, 200),
        ("zabbix-01", "rhel9", 4, 16, 120),
        ("zabbix-db-01", "rhel9", 4, 32, 500),
        ("hosting-lb-01", "ubuntu22", 2, 4, 40),
        ("hosting-web-01", "ubuntu22", 4, 8, 200),
        ("hosting-web-02", "ubuntu22", 4, 8, 200),
        ("hosting-db-01", "ubuntu22", 4, 16, 400),
        ("jump-01", "win2022", 2, 8, 100),
    ):
        vms[name] = await _add_vm(
            ctx,
            pk,
            name,
            net=0,
            subnet=20,
            os_key=os_key,
            vcpus=vcpus,
            memory_gb=mem,
            disk_gb=disk,
            criticality=HIGH,
            migrated_days_ago=1200,
            domain=domain,
            managed=False,
        )
    # The backup and monitoring servers do not back up or watch themselves through the service.
    zabbix_db = await ctx.add_ci(
        pk,
        "zabbix-pg",
        CIClass.DATABASE,
        criticality=HIGH,
        description="Monitoring history database",
        attributes={
            "engine": "PostgreSQL",
            "vendor": "PostgreSQL Global Development Group",
            "version": "16",
            "patch_level": "16.4",
            "size_gb": 310,
            "backup_policy": "Nightly pg_basebackup, WAL archiving",
        },
    )
    hosting_db = await ctx.add_ci(
        pk,
        "hosting-mysql",
        CIClass.DATABASE,
        criticality=HIGH,
        description="Shared hosting databases",
        attributes={
            "engine": "MySQL",
            "vendor": "Oracle",
            "version": "8.0 Community",
            "patch_level": "8.0.39",
            "size_gb": 180,
            "backup_policy": "Nightly dump, binlog every 10 min, 30-day retention",
        },
    )
    await ctx.link(zabbix_db, Rel.RUNS_ON, vms["zabbix-db-01"])
    await ctx.link(hosting_db, Rel.RUNS_ON, vms["hosting-db-01"])
    apps: dict[str, CI] = {}
    for code, product, vendor, version, patch, hosts, docs in (
        (
            "vcenter",
            "VMware vCenter Server",
            "Broadcom (VMware)",
            "8.0 U2",
            "8.0.2.00300",
            ("vcenter-01",),
            "ESXi host patching runbook",
        ),
        (
            "veeam",
            "Veeam Backup & Replication",
            "Veeam",
            "12.2",
            "12.2.0.334",
            ("veeam-01", "veeam-proxy-01"),
            "Backup and restore runbook",
        ),
        ("zabbix", "Zabbix", "Zabbix LLC", "7.0 LTS", "7.0.5", ("zabbix-01",), "Monitoring alert handling runbook"),
        (
            "hosting",
            "Plesk Obsidian shared hosting",
            "WebPros",
            "18.0",
            "18.0.64",
            ("hosting-lb-01", "hosting-web-01", "hosting-web-02"),
            "Shared hosting runbook",
        ),
    ):
        app = await ctx.add_ci(
            pk,
            f"{code}-app",
            CIClass.APPLICATION,
            criticality=CRITICAL if code != "hosting" else HIGH,
            description=product,
            attributes={
                "vendor": vendor,
                "version": version,
                "patch_level": patch,
                "software_agreements": [f"{vendor} support contract"],
                "support_expires": ctx.date(ctx.rng.randint(200, 900)),
                "migration_date": ctx.date(-1200),
            },
        )
        for host in hosts:
            await ctx.link(app, Rel.RUNS_ON, vms[host])
        await ctx.link(app, Rel.DOCUMENTED_BY, ctx.p(docs))
        apps[code] = app
    await ctx.link(apps["veeam"], Rel.DEPENDS_ON, ctx.p("backup-dd-01"))
    await ctx.link(apps["zabbix"], Rel.DEPENDS_ON, zabbix_db)
    await ctx.link(apps["hosting"], Rel.DEPENDS_ON, hosting_db)
    await ctx.link(apps["vcenter"], Rel.DEPENDS_ON, ctx.p("vmw-shared-cl01"))
    for name, app_code, extra, tier, users in (
        ("Shared virtualization", "vcenter", ("vmw-shared-cl01", "san-01"), "gold", 4),
        ("Backup service", "veeam", ("backup-dd-01", "san-02"), "gold", 4),
        ("Monitoring service", "zabbix", (), "gold", 4),
        ("Shared web hosting", "hosting", (), "silver", 2),
    ):
        svc = await ctx.add_ci(
            pk,
            name,
            CIClass.SERVICE,
            criticality=CRITICAL if name != "Shared web hosting" else HIGH,
            owner="sam",
            support=("eve", "raj", "mia"),
            attributes={
                "business_owner": "Sam Whitfield, Service Manager",
                "service_hours": "24x7",
                "users": users,
                "sla_tier": tier,
            },
        )
        await ctx.link(svc, Rel.PROVIDES, apps[app_code])
        for target in extra:
            await ctx.link(svc, Rel.DEPENDS_ON, ctx.p(target))
    # The provider's VMs are backed up and monitored too, except that the backup servers are not
    # watched through the monitoring service (whose database the backup service protects):
    # that would close a loop of mutual dependencies.
    await ctx.link(zabbix_db, Rel.DEPENDS_ON, ctx.p("Backup service"))
    await ctx.link(hosting_db, Rel.DEPENDS_ON, ctx.p("Backup service"))
    for name, vm in vms.items():
        if not name.startswith("veeam"):
            await ctx.link(vm, Rel.DEPENDS_ON, ctx.p("Backup service"))
        if not name.startswith(("veeam", "zabbix")):
            await ctx.link(vm, Rel.DEPENDS_ON, ctx.p("Monitoring service"))
    for n in (1, 2, 3):
        ws = await ctx.add_ci(
            pk,
            f"noc-ws-0{n}",
            CIClass.DESKTOP,
            criticality=LOW,
            description="Network operations centre workstation",
            attributes={
                **ctx.hardware("desktop_dell", migrated_days_ago=700, location="London NOC"),
                "ip_address": f"10.0.100.{10 + n}",
                "hostname": f"noc-ws-0{n}.{domain}",
                "assigned_to": ("NOC shift A", "NOC shift B", "NOC shift C")[n - 1],
                "software_config": "Windows 11 Enterprise 23H2",
            },
        )
        await ctx.link(ws, Rel.CONNECTED_TO, ctx.p("mgmt-sw-01"))
        await ctx.link(ws, Rel.DEPENDS_ON, vms["jump-01"])


async def document_provider_infrastructure(ctx: DemoContext) -> None:
    for name in ("core-sw-01", "core-sw-02", "dc-fw-01", "dc-fw-02", "mgmt-sw-01"):
        await ctx.link(ctx.p(name), Rel.DOCUMENTED_BY, ctx.p("Data-centre network diagram"))
    for name in ("san-01", "san-02"):
        await ctx.link(ctx.p(name), Rel.DOCUMENTED_BY, ctx.p("SAN failover runbook"))
    await ctx.link(ctx.p("backup-dd-01"), Rel.DOCUMENTED_BY, ctx.p("Backup and restore runbook"))
    await ctx.link(ctx.p("vmw-shared-cl01"), Rel.DOCUMENTED_BY, ctx.p("ESXi host patching runbook"))
    for n in range(1, 9):
        await ctx.link(ctx.p(f"esx-0{n}"), Rel.DOCUMENTED_BY, ctx.p("ESXi host patching runbook"))
        await ctx.link(ctx.p(f"esx-0{n}-os"), Rel.DOCUMENTED_BY, ctx.p("Standard server imaging"))
    await ctx.link(ctx.p("esx-08"), Rel.DOCUMENTED_BY, ctx.p("Host decommissioning"), "replaces esx-01 next year")


def _onboarded(spec: CustomerSpec) -> int:
    return spec.onboarded_days_ago


async def add_customer_documentation(ctx: DemoContext) -> None:
    for spec in CUSTOMERS:
        wiki = f"https://wiki.keel-msp.example/customers/{spec.prefix}"
        docs = [f"{spec.short} {app.title} runbook" for app in spec.apps]
        docs += [f"{spec.short} network diagram", f"{spec.short} disaster recovery plan"]
        for name in docs:
            await ctx.add_ci(
                spec.key,
                name,
                CIClass.DOCUMENT,
                criticality=LOW if "runbook" in name else MEDIUM,
                attributes={
                    "url": f"{wiki}/{name.lower().replace(' ', '-')}",
                    "version": f"{ctx.rng.randint(1, 5)}.{ctx.rng.randint(0, 9)}",
                    "review_date": ctx.date(ctx.rng.randint(-30, 330)),
                },
            )
        for name, steps, _apps in spec.procedures:
            await ctx.add_ci(
                spec.key,
                name,
                CIClass.PROCEDURE,
                criticality=MEDIUM,
                attributes={
                    "steps": steps,
                    "version": f"1.{ctx.rng.randint(0, 9)}",
                    "review_date": ctx.date(ctx.rng.randint(30, 365)),
                },
            )


async def add_customer_sites(ctx: DemoContext) -> None:
    """Site power, firewall (VPN to the provider's data centre), access switches and NAS."""
    for spec in CUSTOMERS:
        k, p, net = spec.key, spec.prefix, spec.net
        expiring = {name: ctx.rng.randint(8, 40) for name in spec.soon_expiring}
        diagram = ctx.ci(k, f"{spec.short} network diagram")
        for n in (1, 2):
            name = f"ups-0{n}"
            await ctx.add_ci(
                k,
                f"{p}-{name}",
                CIClass.UPS,
                criticality=HIGH,
                description="Server room UPS",
                attributes={
                    **ctx.hardware(
                        "site_ups",
                        warranty_days=expiring.get(name),
                        migrated_days_ago=_onboarded(spec),
                        location=spec.location,
                    ),
                    "capacity_va": 5000,
                    "battery_replaced": ctx.date(-ctx.rng.randint(100, 1000)),
                },
            )
        fw = await ctx.add_ci(
            k,
            f"{p}-fw-01",
            CIClass.NETWORK_DEVICE,
            criticality=CRITICAL,
            description="Site firewall and SD-WAN edge",
            attributes={
                **ctx.hardware(
                    "site_firewall",
                    warranty_days=expiring.get("fw-01"),
                    migrated_days_ago=_onboarded(spec),
                    location=spec.location,
                ),
                "ip_address": f"10.{net}.1.1",
                "hostname": f"{p}-fw-01.{spec.domain}",
                "firmware": ctx.rng.choice(("FortiOS 7.4.5", "FortiOS 7.4.4", "FortiOS 7.2.10")),
                "ports": 26,
            },
        )
        await ctx.link(fw, Rel.CONNECTED_TO, ctx.p("dc-fw-01"), "IPsec VPN to the provider data centre")
        await ctx.link(fw, Rel.CONNECTED_TO, ctx.p("dc-fw-02"), "IPsec VPN, standby tunnel")
        await ctx.link(fw, Rel.DEPENDS_ON, ctx.ci(k, f"{p}-ups-01"))
        await ctx.link(fw, Rel.DOCUMENTED_BY, diagram)
        for n in (1, 2):
            sw = await ctx.add_ci(
                k,
                f"{p}-sw-0{n}",
                CIClass.NETWORK_DEVICE,
                criticality=HIGH,
                description="Access switch stack member",
                attributes={
                    **ctx.hardware("access_switch", migrated_days_ago=_onboarded(spec), location=spec.location),
                    "ip_address": f"10.{net}.1.{1 + n}",
                    "hostname": f"{p}-sw-0{n}.{spec.domain}",
                    "firmware": "IOS XE 17.9.5",
                    "ports": 52,
                },
            )
            await ctx.link(sw, Rel.CONNECTED_TO, fw)
            await ctx.link(sw, Rel.DEPENDS_ON, ctx.ci(k, f"{p}-ups-0{n}"))
            await ctx.link(sw, Rel.DOCUMENTED_BY, diagram)
        nas = await ctx.add_ci(
            k,
            f"{p}-nas-01",
            CIClass.STORAGE,
            criticality=MEDIUM,
            description="Site NAS for scans and local shares",
            attributes={
                **ctx.hardware(
                    "nas",
                    warranty_days=expiring.get("nas-01"),
                    migrated_days_ago=_onboarded(spec),
                    location=spec.location,
                ),
                "capacity_tb": 80.0,
                "raid_level": "RAID 6",
                "software_config": "DSM 7.2.2",
            },
        )
        await ctx.link(nas, Rel.CONNECTED_TO, ctx.ci(k, f"{p}-sw-01"))
        await ctx.link(nas, Rel.DEPENDS_ON, ctx.ci(k, f"{p}-ups-02"))
        await ctx.link(nas, Rel.DEPENDS_ON, ctx.p("Backup service"))


async def add_customer_servers(ctx: DemoContext) -> None:
    """On-premises physical servers with their operating systems."""
    for spec in CUSTOMERS:
        k, p = spec.key, spec.prefix
        for server in spec.servers:
            name = f"{p}-{server.code}"
            warranty = ctx.rng.randint(8, 40) if server.code in spec.soon_expiring else None
            apps = [a.product for a in spec.apps if a.server == server.code]
            dbs = [f"{a.db.engine} {a.db.version}" for a in spec.apps if a.server == server.code and a.db]
            ci = await ctx.add_ci(
                k,
                name,
                CIClass.SERVER,
                status=server.status,
                criticality=server.criticality,
                description=server.role,
                attributes={
                    **ctx.hardware(
                        server.hardware,
                        warranty_days=warranty,
                        status=server.status,
                        migrated_days_ago=_onboarded(spec),
                        location=spec.location,
                    ),
                    "ip_address": ctx.ip(spec.net, 10),
                    "hostname": f"{name}.{spec.domain}",
                    "cpu_cores": 32 if server.hardware == "server" else 12,
                    "memory_gb": 256 if server.hardware == "server" else 64,
                    "software_config": OS[server.os].product,
                    "applications": apps + dbs,
                    "software_agreements": ["Microsoft SPLA (per-core)"] if OS[server.os].windows else [],
                },
            )
            os_ci = await ctx.add_ci(
                k,
                f"{name}-os",
                CIClass.OPERATING_SYSTEM,
                status=server.status,
                criticality=server.criticality,
                description=f"{OS[server.os].product} on {name}",
                attributes=ctx.os_attributes(server.os, _onboarded(spec), server.status),
            )
            await ctx.link(os_ci, Rel.INSTALLED_ON, ci)
            await ctx.link(os_ci, Rel.DOCUMENTED_BY, ctx.p("Standard server imaging"))
            if server.status == RETIRED:
                continue  # unplugged: kept for its history only
            await ctx.link(ci, Rel.CONNECTED_TO, ctx.ci(k, f"{p}-sw-01"))
            await ctx.link(ci, Rel.CONNECTED_TO, ctx.ci(k, f"{p}-sw-02"))
            await ctx.link(ci, Rel.DEPENDS_ON, ctx.ci(k, f"{p}-ups-01"))
            if server.status == LIVE:
                await ctx.link(ci, Rel.DEPENDS_ON, ctx.p("Monitoring service"))
                await ctx.link(ci, Rel.DEPENDS_ON, ctx.p("Backup service"))


async def add_customer_applications(ctx: DemoContext) -> None:
    """Applications on VMs of the shared cluster (or on-premises servers, or shared hosting),
    their databases, and the dependencies between applications (Initech's form a cycle)."""
    for spec in CUSTOMERS:
        k, p = spec.key, spec.prefix
        for app in spec.apps:
            runbook = ctx.ci(k, f"{spec.short} {app.title} runbook")
            hosts: list[CI] = []
            for i in range(1, app.vms + 1):
                hosts.append(
                    await _add_vm(
                        ctx,
                        k,
                        f"{p}-{app.code}-app-{i:02d}",
                        net=spec.net,
                        subnet=20,
                        os_key=app.os,
                        vcpus=app.vcpus,
                        memory_gb=app.memory_gb,
                        disk_gb=ctx.rng.choice((80, 120, 200)),
                        criticality=app.criticality,
                        migrated_days_ago=_onboarded(spec),
                        domain=spec.domain,
                        description=f"{app.product} application server {i}",
                    )
                )
            if app.code == spec.test_app:
                # Scale-out VM ordered but not built yet.
                hosts.append(
                    await _add_vm(
                        ctx,
                        k,
                        f"{p}-{app.code}-app-{app.vms + 1:02d}",
                        net=spec.net,
                        subnet=20,
                        os_key=app.os,
                        vcpus=app.vcpus,
                        memory_gb=app.memory_gb,
                        disk_gb=120,
                        criticality=app.criticality,
                        migrated_days_ago=0,
                        domain=spec.domain,
                        status=PLANNED,
                        description=f"{app.product} application server {app.vms + 1} (capacity increase)",
                    )
                )
            if app.server:
                hosts.append(ctx.ci(k, f"{p}-{app.server}"))
            application = await ctx.add_ci(
                k,
                f"{p}-{app.code}",
                CIClass.APPLICATION,
                criticality=app.criticality,
                description=app.product,
                attributes={
                    "vendor": app.vendor,
                    "version": app.version,
                    "patch_level": app.patch_level,
                    "software_agreements": [f"{app.vendor} maintenance"],
                    "license_key_ref": f"LIC-{k}-{app.code.upper()}-{ctx.rng.randint(100, 999)}",
                    "support_expires": ctx.date(ctx.rng.randint(120, 1000)),
                    "migration_date": ctx.date(-max(1, _onboarded(spec) - ctx.rng.randint(0, 200))),
                    **({"url": app.url} if app.url else {}),
                },
            )
            for host in hosts:
                await ctx.link(application, Rel.RUNS_ON, host)
                await ctx.link(host, Rel.DOCUMENTED_BY, runbook)
            if app.hosted:
                await ctx.link(application, Rel.DEPENDS_ON, ctx.p("Shared web hosting"))
            else:
                await ctx.link(application, Rel.DEPENDS_ON, ctx.p("Monitoring service"), "application monitoring")
            await ctx.link(application, Rel.DOCUMENTED_BY, runbook)
            if app.db is not None:
                await _add_database(ctx, spec, app, application, runbook)
        for app in spec.apps:
            for other in app.depends:
                await ctx.link(ctx.ci(k, f"{p}-{app.code}"), Rel.DEPENDS_ON, ctx.ci(k, f"{p}-{other}"))


async def _add_database(ctx: DemoContext, spec: CustomerSpec, app: AppSpec, application: CI, runbook: CI) -> None:
    assert app.db is not None
    k, p, db = spec.key, spec.prefix, app.db
    if app.server:
        host = ctx.ci(k, f"{p}-{app.server}")
    else:
        host = await _add_vm(
            ctx,
            k,
            f"{p}-{app.code}-db-01",
            net=spec.net,
            subnet=20,
            os_key=db.os,
            vcpus=8 if db.size_gb > 1000 else 4,
            memory_gb=256 if db.engine == "SAP HANA" else 32,
            disk_gb=int(db.size_gb * 1.5),
            criticality=CRITICAL if app.criticality == CRITICAL else HIGH,
            migrated_days_ago=_onboarded(spec),
            domain=spec.domain,
            description=f"{db.engine} server for {app.product}",
        )
        await ctx.link(host, Rel.DOCUMENTED_BY, runbook)
    lag = ctx.rng.choices(range(len(db.patch_levels)), weights=[5, 3, 2][: len(db.patch_levels)])[0]
    database = await ctx.add_ci(
        k,
        f"{p}-{app.code}-db",
        CIClass.DATABASE,
        criticality=CRITICAL if app.criticality == CRITICAL else HIGH,
        description=f"{app.product} database",
        attributes={
            "engine": db.engine,
            "vendor": db.vendor,
            "version": db.version,
            "patch_level": db.patch_levels[lag],
            "size_gb": db.size_gb + ctx.rng.randint(-db.size_gb // 5, db.size_gb // 5),
            "backup_policy": "Nightly full 01:00 local, log backups every 15 minutes, 35-day retention",
            "software_agreements": [f"{db.vendor} support"],
            "migration_date": ctx.date(-max(1, _onboarded(spec) - ctx.rng.randint(0, 200))),
        },
    )
    await ctx.link(database, Rel.RUNS_ON, host)
    await ctx.link(database, Rel.DEPENDS_ON, ctx.p("Backup service"))
    await ctx.link(database, Rel.DOCUMENTED_BY, runbook)
    await ctx.link(application, Rel.DEPENDS_ON, database)


async def add_domain_membership(ctx: DemoContext) -> None:
    """Windows systems of a customer are members of its Active Directory domain."""
    for spec in CUSTOMERS:
        ad = ctx.ci(spec.key, f"{spec.prefix}-ad")
        domain_controllers = {f"{spec.prefix}-dc-01-os"}
        for (key, name), ci in list(ctx.cis.items()):
            if (
                key == spec.key
                and ci.ci_class is CIClass.OPERATING_SYSTEM
                and ci.attributes.get("vendor") == "Microsoft"
                and ci.status != RETIRED
                and name not in domain_controllers
            ):
                await ctx.link(ci, Rel.DEPENDS_ON, ad, "domain member")


async def add_customer_services(ctx: DemoContext) -> None:
    for spec in CUSTOMERS:
        k, p = spec.key, spec.prefix
        dr_plan = ctx.ci(k, f"{spec.short} disaster recovery plan")
        titles = {app.code: app.title for app in spec.apps}
        for svc_spec in spec.services:
            svc = await ctx.add_ci(
                k,
                svc_spec.name,
                CIClass.SERVICE,
                criticality=svc_spec.criticality,
                owner=spec.contact.username,
                support=("mia", "sam"),
                description=f"{titles[svc_spec.apps[0]]} for {spec.name}",
                attributes={
                    "business_owner": svc_spec.business_owner,
                    "service_hours": svc_spec.hours,
                    "users": svc_spec.users,
                    "sla_tier": svc_spec.tier,
                },
            )
            first, *rest = svc_spec.apps
            await ctx.link(svc, Rel.PROVIDES, ctx.ci(k, f"{p}-{first}"))
            if any(app.vms for app in spec.apps if app.code in svc_spec.apps):
                await ctx.link(svc, Rel.DEPENDS_ON, ctx.p("Shared virtualization"))
            for code in rest:
                await ctx.link(svc, Rel.DEPENDS_ON, ctx.ci(k, f"{p}-{code}"))
            await ctx.link(svc, Rel.DOCUMENTED_BY, ctx.ci(k, f"{spec.short} {titles[first]} runbook"))
            if svc_spec.criticality in (HIGH, CRITICAL):
                await ctx.link(svc, Rel.DOCUMENTED_BY, dr_plan)
        for name, _steps, codes in spec.procedures:
            for code in codes:
                await ctx.link(ctx.ci(k, f"{p}-{code}"), Rel.DOCUMENTED_BY, ctx.ci(k, name))


async def add_customer_desktops(ctx: DemoContext) -> None:
    kinds = ("desktop_lenovo", "desktop_dell", "desktop_hp")
    for spec in CUSTOMERS:
        k, p = spec.key, spec.prefix
        setup = ctx.ci(k, f"{spec.short} new starter desktop setup")
        for n in range(1, spec.desktops + 1):
            status = RETIRED if n == spec.desktops else PLANNED if n == spec.desktops - 1 else LIVE
            name = f"{p}-ws-{n:03d}"
            ws = await ctx.add_ci(
                k,
                name,
                CIClass.DESKTOP,
                status=status,
                criticality=LOW,
                owner=spec.contact.username,
                support=("raj", "eve"),
                description="Office desktop",
                attributes={
                    **ctx.hardware(
                        kinds[n % 3], status=status, migrated_days_ago=_onboarded(spec), location=spec.location
                    ),
                    "ip_address": ctx.ip(spec.net, 100),
                    "hostname": f"{name}.{spec.domain}",
                    "assigned_to": spec.staff_names[(n - 1) % len(spec.staff_names)] if status == LIVE else "",
                    "software_config": "Windows 11 Enterprise 23H2, Microsoft 365 Apps",
                    "applications": [
                        "Microsoft 365 Apps",
                        *(a.product for a in spec.apps if a.code in spec.desktop_apps),
                    ],
                },
            )
            if status == RETIRED:
                continue
            await ctx.link(ws, Rel.CONNECTED_TO, ctx.ci(k, f"{p}-sw-0{1 + n % 2}"))
            await ctx.link(ws, Rel.DOCUMENTED_BY, setup)
            for code in ("ad", *spec.desktop_apps):
                await ctx.link(ws, Rel.DEPENDS_ON, ctx.ci(k, f"{p}-{code}"))


async def add_test_environments(ctx: DemoContext) -> None:
    """Per customer, a test environment that represents the production CIs of one application."""
    for spec in CUSTOMERS:
        k, p = spec.key, spec.prefix
        app = next(a for a in spec.apps if a.code == spec.test_app)
        represented = [f"{p}-{app.code}", *(f"{p}-{app.code}-app-{i:02d}" for i in range(1, app.vms + 1))]
        if app.db is not None:
            represented += [f"{p}-{app.code}-db", f"{p}-{app.code}-db-01"]
        env = await ctx.add_ci(
            k,
            f"{p}-test",
            CIClass.TEST_ENVIRONMENT,
            criticality=MEDIUM,
            description=f"Test environment for {app.product}, refreshed from production monthly",
            attributes={
                "represents": represented,
                "purpose": f"Release testing of {app.product} patches and changes before production",
                "refreshed_at": ctx.date(-ctx.rng.randint(3, 40)),
            },
        )
        tst_app = await _add_vm(
            ctx,
            k,
            f"{p}-{app.code}-tst-01",
            net=spec.net,
            subnet=30,
            os_key=app.os,
            vcpus=max(2, app.vcpus // 2),
            memory_gb=max(8, app.memory_gb // 2),
            disk_gb=120,
            criticality=LOW,
            migrated_days_ago=_onboarded(spec),
            domain=spec.domain,
            description=f"{app.product} test application server",
        )
        await ctx.link(env, Rel.DEPENDS_ON, tst_app)
        if app.db is not None:
            tst_db = await _add_vm(
                ctx,
                k,
                f"{p}-{app.code}-tst-db-01",
                net=spec.net,
                subnet=30,
                os_key=app.db.os,
                vcpus=4,
                memory_gb=64 if app.db.engine == "SAP HANA" else 16,
                disk_gb=app.db.size_gb,
                criticality=LOW,
                migrated_days_ago=_onboarded(spec),
                domain=spec.domain,
                description=f"{app.db.engine} test server",
            )
            await ctx.link(env, Rel.DEPENDS_ON, tst_db)
        await ctx.link(env, Rel.DOCUMENTED_BY, ctx.ci(k, f"{spec.short} {app.title} runbook"))


async def add_change_windows(ctx: DemoContext) -> None:
    carl = ctx.actors["carl"]
    plan: list[tuple[str, str, str, WindowSpec]] = [(ctx.pkey, "", "UTC", w) for w in PROVIDER_WINDOWS]
    plan += [(spec.key, f"{spec.prefix}-", spec.timezone, w) for spec in CUSTOMERS for w in spec.windows]
    for key, prefix, tz, window in plan:
        data = {
            "name": window.name,
            "days": list(window.days),
            "start": window.start,
            "duration_minutes": window.duration_minutes,
            "timezone": tz,
        }
        ci = ctx.ci(key, f"{prefix}{window.ci}").id if window.ci else None
        await ctx.cmdb.add_window(carl, key, data, ci)
        ctx.windows += 1


def _blackout_bounds(
    today: dt.date, tz: str, first: tuple[int, int], last: tuple[int, int]
) -> tuple[dt.datetime, dt.datetime]:
    """The next blackout from `first` to `last` (inclusive, local days) that has not ended yet."""
    zone = ZoneInfo(tz)
    for year in (today.year - 1, today.year, today.year + 1):
        start = dt.date(year, *first)
        end = dt.date(year + (1 if last < first else 0), *last) + dt.timedelta(days=1)
        if end > today:
            return (
                dt.datetime.combine(start, dt.time(), zone).astimezone(dt.UTC),
                dt.datetime.combine(end, dt.time(), zone).astimezone(dt.UTC),
            )
    raise AssertionError("unreachable: next year's blackout always ends after today")


async def add_blackouts(ctx: DemoContext) -> None:
    carl = ctx.actors["carl"]
    for spec in CUSTOMERS:
        reason, first, last = spec.blackout
        start, end = _blackout_bounds(ctx.today, spec.timezone, first, last)
        await ctx.cmdb.add_blackout(carl, spec.key, start, end, reason)
        ctx.blackouts += 1


@dataclass(frozen=True)
class UpdateSpec:
    customer: str | None  # None = the provider
    ci: str
    changes: Mapping[str, Any]
    by: str
    rfc: str | None = None  # a reference as the engineer typed it (a customer's own change number)
    comment: str = ""
    days_ago: float = 1.0  # when it happened, counted back from the present of the data set
    demo_rfc: str | None = None  # the demo RFC (its name in the change stories) the update cites


# Most of these cite no RFC, or one that does not authorize the change (still in review, only
# submitted, backed out): the configuration audit lists them.
UPDATES: tuple[UpdateSpec, ...] = (
    UpdateSpec(
        None,
        "core-sw-01",
        {"attributes": {"firmware": "NX-OS 10.3(5)"}},
        "raj",
        None,
        "Firmware upgraded in the maintenance window; the RFC is still waiting for the committee",
        days_ago=3.1,
        demo_rfc="core-switch-nxos",
    ),
    UpdateSpec(
        None,
        "esx-04",
        {
            "status": UNDER_CHANGE,
            "description": "Host of the shared cluster; DIMM replacement in progress, in maintenance mode",
        },
        "eve",
        None,
        "Faulty DIMM B3 reported by iDRAC",
        days_ago=1.2,
    ),
    UpdateSpec(
        "ACME",
        "acme-erp-app-01",
        {"attributes": {"memory_gb": 192}},
        "eve",
        "ACME-CHG-4471",
        "Memory raised for month-end close at the customer's request (their change number)",
        days_ago=19.3,
    ),
    UpdateSpec(
        "ACME",
        "acme-fs-01-os",
        {"attributes": {"patch_level": "2026-10 out-of-band update (20348.2766)"}},
        "eve",
        None,
        "Emergency patch installed by the night shift",
        days_ago=9.4,
    ),
    UpdateSpec(
        "ACME",
        "acme-mes-srv-01",
        {"attributes": {"location": "Detroit plant, Michigan, rack C4"}},
        "raj",
        None,
        "Rack position recorded after the audit walk",
        days_ago=30.2,
    ),
    UpdateSpec(
        "GLOBEX",
        "globex-pos-db",
        {"attributes": {"patch_level": "19.26 RU"}},
        "mia",
        None,
        "Release update applied ahead of approval",
        days_ago=4.2,
        demo_rfc="globex-pos-ru",
    ),
    UpdateSpec(
        "GLOBEX",
        "globex-ws-005",
        {"attributes": {"assigned_to": "Lily Adams"}},
        "raj",
        None,
        "Reassigned to a new starter",
        days_ago=12.3,
    ),
    UpdateSpec(
        "INITECH",
        "initech-crm-app-01",
        {"attributes": {"vcpus": 8}},
        "eve",
        None,
        "CPU added after performance complaints",
        days_ago=15.4,
    ),
    UpdateSpec(
        "INITECH",
        "Initech Claims runbook",
        {"attributes": {"version": "6.0"}},
        "mia",
        None,
        "Restore steps rewritten after the failed ClaimCenter upgrade",
        days_ago=2.3,
        demo_rfc="initech-claimcenter",
    ),
    UpdateSpec(
        "INITECH", "initech-dms", {"status": UNDER_CHANGE}, "mia", None, "Upgrade to 24.2 under way", days_ago=2.1
    ),
    UpdateSpec(
        "SCL",
        "scl-dispatch",
        {"attributes": {"version": "5.3", "patch_level": "5.3.0"}},
        "mia",
        None,
        "New dispatch release deployed by the customer's developers",
        days_ago=3.4,
        demo_rfc="scl-dispatch-53",
    ),
    UpdateSpec(
        "SCL",
        "scl-ws-008",
        {"status": RETIRED, "attributes": {"assigned_to": None}},
        "raj",
        None,
        "Screen and mainboard failed; replaced by a spare",
        days_ago=6.2,
    ),
)


async def add_configuration_drift(ctx: DemoContext) -> None:
    """Updates after creation, so histories are not empty; most change controlled attributes
    without an approved RFC and show up in the configuration audit. Each happens `days_ago`
    before the present, and after the RFC it cites has reached the state it is in."""
    planned = []
    for update in UPDATES:
        at = _minute(ctx.now - dt.timedelta(days=update.days_ago))
        cited = ctx.rfcs.get(update.demo_rfc) if update.demo_rfc else None
        if cited is not None:
            at = max(at, cited.updated_at + dt.timedelta(hours=2))
        planned.append((at, update, cited.key if cited is not None else update.rfc))
    for at, update, rfc in sorted(planned, key=lambda item: item[0]):
        key = update.customer or ctx.pkey
        ci = ctx.ci(key, update.ci)
        ctx.clock.set(at)
        updated = await ctx.cmdb.update_ci(
            ctx.actors[update.by], ci.id, update.changes, rfc=rfc, comment=update.comment
        )
        ctx.cis[(key, update.ci)] = updated
        ctx.updates += 1
    ctx.clock.set(ctx.now)


# ---------------------------------------------------------------------------- change activity


def _minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _window(record: Any) -> ChangeWindow:
    return ChangeWindow.from_dict(
        {
            "name": record.name,
            "days": list(record.days),
            "start": record.start,
            "duration_minutes": record.duration_minutes,
            "timezone": record.timezone,
        }
    )


def _fitting_starts(
    windows_by_ci: Sequence[Sequence[ChangeWindow]],
    blackouts: Sequence[Blackout],
    lo: dt.datetime,
    hi: dt.datetime,
    length: dt.timedelta,
) -> list[dt.datetime]:
    """Starts in [lo, hi - length] where a change of `length` fits the windows of every CI and
    no blackout: the first moment of each fitting occurrence (at most one a day)."""
    found: list[dt.datetime] = []
    at = lo
    while at + length <= hi:
        start = at
        for _ in range(50):  # move forward until every CI's windows admit the same start
            moved = start
            for windows in windows_by_ci:
                fits = next_fitting_start(moved, length, windows)
                if fits is None:
                    return found
                moved = fits
            if moved == start:
                break
            start = moved
        else:
            return found
        if start + length > hi:
            break
        hit = blackouts_hit(start, start + length, blackouts)
        if hit:
            at = max(b.end for b in hit)
            continue
        found.append(start)
        at = start + dt.timedelta(days=1)
    return found


Run = Callable[[], Awaitable[None]]


@dataclass
class ChangePlan:
    """The demo's change activity: planned story by story, then replayed in time order.

    A story names its RFC (`name`, the key into `ctx.rfcs`) and says who does what, when. While
    planning, CI names become ids and change-window slots are found (the windows and blackouts
    are in the CMDB by then); each RFC's own events are kept in order, a minute apart at least,
    between the start of the history and the present. `run` replays every event sorted by time,
    setting the seeding clock to each first, so RFC keys follow the order RFCs were raised and
    every timeline, vote and CI history reads in order.
    """

    ctx: DemoContext
    earliest: dt.datetime
    events: list[tuple[dt.datetime, int, Run]] = field(default_factory=list)
    _last: dict[str, dt.datetime] = field(default_factory=dict)
    _rules: dict[str, tuple[list[Any], list[Any]]] = field(default_factory=dict)

    # --- times ------------------------------------------------------------------------------

    def day(self, days_ago: int, hhmm: str, tz: str = "UTC") -> dt.datetime:
        """`hhmm` local time in `tz`, `days_ago` days before the present's local date."""
        return self.office(self.ctx.now - dt.timedelta(days=days_ago), hhmm, tz)

    def office(self, moment: dt.datetime, hhmm: str, tz: str = "UTC") -> dt.datetime:
        """`hhmm` local time in `tz` on the local date of `moment`."""
        zone = ZoneInfo(tz)
        hours, minutes = (int(part) for part in hhmm.split(":"))
        return dt.datetime.combine(moment.astimezone(zone).date(), dt.time(hours, minutes), zone).astimezone(dt.UTC)

    def business(self, moment: dt.datetime, days: int) -> dt.datetime:
        """`days` working days (Monday to Friday, UTC) after `moment` (before it when negative),
        at the same time of day: office work in the stories that lead up to a change window."""
        step = dt.timedelta(days=1 if days >= 0 else -1)
        left = abs(days)
        while left or moment.weekday() >= 5:
            moment += step
            if moment.weekday() < 5:
                left = max(left - 1, 0)
        return moment

    def ago(self, **delta: float) -> dt.datetime:
        return _minute(self.ctx.now - dt.timedelta(**delta))

    def _add(self, name: str, at: dt.datetime, run: Run) -> dt.datetime:
        at = max(_minute(at), self.earliest)
        if name in self._last:
            at = max(at, self._last[name] + dt.timedelta(minutes=1))
        at = min(at, self.ctx.now)
        self._last[name] = at
        self.events.append((at, len(self.events), run))
        return at

    # --- slots ------------------------------------------------------------------------------

    async def _slots(
        self, customer: str, cis: Sequence[str], minutes: int, lo: dt.datetime, hi: dt.datetime
    ) -> list[dt.datetime]:
        """Slot starts that pass the scheduling rule the service applies: every CI's own windows
        (the customer's when it has none) and the customer's blackouts."""
        if customer not in self._rules:
            carl = self.ctx.actors["carl"]
            self._rules[customer] = (
                list(await self.ctx.cmdb.windows(carl, customer)),
                list(await self.ctx.cmdb.blackouts(carl, customer)),
            )
        records, blackout_records = self._rules[customer]
        ids = [self.ctx.ci(customer, name).id for name in cis]
        customer_wide = [_window(r) for r in records if r.ci_id is None]
        windows = [[_window(r) for r in records if r.ci_id == ci] or customer_wide for ci in ids]
        blackouts = [
            Blackout(start=b.start, end=b.end, reason=b.reason)
            for b in blackout_records
            if b.ci_id is None or b.ci_id in ids
        ]
        # From a whole hour, so the slots found start when a window opens or on the hour.
        lo = _minute(lo) + dt.timedelta(minutes=(60 - lo.minute) % 60)
        return _fitting_starts(windows, blackouts, lo, hi, dt.timedelta(minutes=minutes))

    async def next_slot(
        self, customer: str, cis: Sequence[str], minutes: int, after: dt.datetime
    ) -> tuple[dt.datetime, dt.datetime]:
        """The first slot of `minutes` from `after` on (up to four months ahead)."""
        starts = await self._slots(customer, cis, minutes, after, after + dt.timedelta(days=120))
        if not starts:
            raise Conflict(f"The demo finds no change window for {', '.join(cis)} of {customer} in four months.")
        return starts[0], starts[0] + dt.timedelta(minutes=minutes)

    async def last_slot(
        self, customer: str, cis: Sequence[str], minutes: int, before: dt.datetime
    ) -> tuple[dt.datetime, dt.datetime]:
        """The latest slot of `minutes` that ends by `before` and starts two weeks or more after
        the history begins (so the RFC has time to be raised and approved before it)."""
        starts = await self._slots(customer, cis, minutes, self.earliest + dt.timedelta(days=14), before)
        if not starts:
            raise Conflict(f"The demo finds no past change window for {', '.join(cis)} of {customer}.")
        return starts[-1], starts[-1] + dt.timedelta(minutes=minutes)

    # --- what people do ---------------------------------------------------------------------

    def create(
        self,
        name: str,
        at: dt.datetime,
        by: str,
        customer: str,
        title: str,
        cis: Sequence[str],
        *,
        refers_to: str | None = None,
        **fields: Any,
    ) -> dt.datetime:
        ctx = self.ctx
        data = {"customer": customer, "title": title, "cis": [ctx.ci(customer, ci).id for ci in cis], **fields}

        async def run() -> None:
            body = dict(data)
            if refers_to is not None:
                body["refers_to"] = ctx.rfcs[refers_to].key
            ctx.rfcs[name] = await ctx.change.create(ctx.actors[by], body)

        return self._add(name, at, run)

    def act(self, name: str, at: dt.datetime, by: str, action: str, **params: Any) -> dt.datetime:
        ctx = self.ctx

        async def run() -> None:
            ctx.rfcs[name] = await ctx.change.act(ctx.actors[by], ctx.rfcs[name].id, action, params)

        return self._add(name, at, run)

    def edit(self, name: str, at: dt.datetime, by: str, **changes: Any) -> dt.datetime:
        ctx = self.ctx

        async def run() -> None:
            ctx.rfcs[name] = await ctx.change.update(ctx.actors[by], ctx.rfcs[name].id, changes)

        return self._add(name, at, run)

    def add_impact(self, name: str, at: dt.datetime, by: str, customer: str, ci: str, reason: str) -> dt.datetime:
        ctx = self.ctx
        ci_id = ctx.ci(customer, ci).id

        async def run() -> None:
            actor = ctx.actors[by]
            await ctx.change.adjust_impact(actor, ctx.rfcs[name].id, ci_id, "add", reason)
            ctx.rfcs[name] = (await ctx.change.get(actor, ctx.rfcs[name].id)).rfc

        return self._add(name, at, run)

    def record(
        self, name: str, at: dt.datetime, by: str, customer: str, ci: str, changes: Mapping[str, Any], comment: str
    ) -> dt.datetime:
        """A CI update citing the RFC: authorized when the RFC is approved or further on."""
        ctx = self.ctx

        async def run() -> None:
            updated = await ctx.cmdb.update_ci(
                ctx.actors[by], ctx.ci(customer, ci).id, changes, rfc=ctx.rfcs[name].key, comment=comment
            )
            ctx.cis[(customer, ci)] = updated
            ctx.updates += 1

        return self._add(name, at, run)

    async def run(self) -> None:
        for at, _, run in sorted(self.events, key=lambda event: (event[0], event[1])):
            self.ctx.clock.set(at)
            await run()
        self.ctx.clock.set(self.ctx.now)


async def _provider_changes(plan: ChangePlan) -> None:
    ctx, pk, day, ago = plan.ctx, plan.ctx.pkey, plan.day, plan.ago

    # High impact (every customer's datastores): in committee review, two of three votes cast.
    san_start, _ = await plan.next_slot(pk, ["san-01"], 150, ctx.now + dt.timedelta(days=4))
    plan.create(
        "san-firmware",
        day(9, "10:15"),
        "raj",
        pk,
        "Upgrade san-01 to ONTAP 9.15.1P3",
        ["san-01"],
        priority="high",
        need=(
            "NetApp's October security advisory rates the NFS/SMB denial-of-service flaw in ONTAP 9.14.1 before P8 as "
            "important. san-01 runs 9.14.1P6 and holds the datastores of the shared cluster for every customer."
        ),
        desired_result="Both san-01 controllers on ONTAP 9.15.1P3, SnapMirror to san-02 healthy, no datastore outage.",
        plan=(
            "1. Run Active IQ Upgrade Advisor and attach its report. 2. Back up the cluster configuration and pause "
            "SnapMirror. 3. Non-disruptive upgrade: take over node A, upgrade it, give back; then node B. 4. Check "
            "path redundancy on every ESXi host. 5. Resume SnapMirror and check the lag is under 15 minutes again."
        ),
        backout_plan=(
            "Revert node by node to 9.14.1P6 (kept on the boot device) with the same takeover and giveback. If a "
            "datastore is lost, fail over to san-02 with the SAN failover runbook."
        ),
        deadline=san_start + dt.timedelta(days=7),
        patch_components=["san-01 node A: ONTAP 9.14.1P6", "san-01 node B: ONTAP 9.14.1P6"],
        vulnerability=(
            "Vendor advisory: a crafted NFSv4.1 or SMB request can make an ONTAP node panic (denial of service); "
            "the storage network carries every customer's VMs."
        ),
        patch_description="ONTAP 9.15.1P3 image for AFF A400 (about 2.6 GB), served from the cluster's web server.",
        urgency="important",
        available_at=day(23, "17:00"),
        proposed_deployment=san_start,
        testing_done="The same upgrade ran on the DR replica san-02 without takeover problems.",
    )
    plan.act("san-firmware", day(9, "10:40"), "raj", "submit")
    plan.act(
        "san-firmware",
        day(8, "09:30"),
        "carl",
        "authorize",
        release_requirements=[
            "Upgrade Advisor report attached",
            "Customers notified five working days ahead",
            "SnapMirror lag checked before and after",
        ],
    )
    plan.act(
        "san-firmware",
        day(8, "09:35"),
        "carl",
        "refer-to-committee",
        comment="Touches the datastores of every customer: the committee decides.",
    )
    plan.act(
        "san-firmware",
        day(7, "14:05"),
        "nina",
        "vote",
        vote="approve",
        comment="Upgrade path checked against the interoperability matrix; san-02 went through it cleanly.",
    )
    plan.act(
        "san-firmware",
        day(6, "11:20"),
        "tess",
        "vote",
        vote="approve",
        comment="All eight hosts have two active paths per datastore; fine with a takeover during the window.",
    )

    # Authorized, waiting to be referred to the committee (and already carried out: see the audit).
    plan.create(
        "core-switch-nxos",
        day(8, "15:20"),
        "raj",
        pk,
        "Upgrade the core switch pair to NX-OS 10.3(5)",
        ["core-sw-01", "core-sw-02"],
        priority="medium",
        origin="incident",
        need=(
            "NX-OS 10.3(4a) on the core pair has the vPC peer-link bug that suspended the Globex VLANs for 40 seconds "
            "last month; Cisco fixed it in 10.3(5)."
        ),
        desired_result="Both core switches on NX-OS 10.3(5), vPC consistent, no customer VLAN down over a second.",
        plan=(
            "1. Stage the image on both bootflash. 2. Check ISSU compatibility. 3. Upgrade core-sw-02 with ISSU and "
            "check vPC. 4. Upgrade core-sw-01. 5. Check routing adjacencies, customer VLANs and the firewall HA links."
        ),
        backout_plan="Boot the previous image (kept on bootflash) on the switch that misbehaves; its vPC peer carries "
        "the traffic meanwhile.",
        patch_components=["core-sw-01: NX-OS 10.3(4a)", "core-sw-02: NX-OS 10.3(4a)"],
        vulnerability="Functional flaw: the vPC peer link flaps under MAC move storms and suspends member ports.",
        patch_description="nxos64-cs.10.3.5.M.bin (about 2.1 GB), copied to bootflash by SCP.",
        urgency="moderate",
        available_at=day(40, "09:00"),
    )
    plan.act("core-switch-nxos", day(8, "15:30"), "raj", "submit")
    plan.act(
        "core-switch-nxos",
        day(7, "10:10"),
        "carl",
        "authorize",
        release_requirements=["Cisco ISSU compatibility report", "Previous image kept on bootflash"],
        comment="Referral to the committee after the SAN upgrade is decided.",
    )

    # Emergency: exploited flaw, approved on the ECAB's word, outside the windows, under way now.
    start = ctx.now.replace(second=0, microsecond=0) - dt.timedelta(minutes=ctx.now.minute % 5 + 60)
    end = start + dt.timedelta(hours=3)
    plan.create(
        "firewall-hotfix",
        ago(hours=5),
        "raj",
        pk,
        "Emergency: install the PAN-OS hotfix for the exploited GlobalProtect flaw on dc-fw-01/02",
        ["dc-fw-01", "dc-fw-02"],
        type="emergency",
        priority="critical",
        need=(
            "Palo Alto Networks reports active exploitation of a GlobalProtect portal flaw that allows command "
            "execution without authentication. Our portal on dc-fw-01/02 faces the internet and the pair terminates "
            "every customer's site VPN."
        ),
        desired_result="Both firewalls on PAN-OS 11.1.4-h12, HA pair in sync, every customer site VPN up.",
        plan=(
            "1. Apply the vendor's threat-prevention signature as an interim block. 2. Download the hotfix and check "
            "its checksum. 3. Suspend HA on dc-fw-02 (passive), install, reboot, resume. 4. Fail over and repeat on "
            "dc-fw-01. 5. Check every customer's IPsec tunnel and the GlobalProtect portal."
        ),
        backout_plan="Reinstall PAN-OS 11.1.4-h7 (kept on the device) on the affected member and fail back; the "
        "interim signature stays.",
        patch_components=["dc-fw-01: PAN-OS 11.1.4-h7", "dc-fw-02: PAN-OS 11.1.4-h7"],
        vulnerability="Command injection in the GlobalProtect portal, exploited in the wild (vendor rating critical).",
        patch_description="PAN-OS 11.1.4-h12 hotfix, about 1.1 GB per firewall.",
        urgency="critical",
        available_at=ago(hours=26),
        proposed_deployment=start,
        testing_done="Installed on the lab VM-Series firewall this morning; portal sign-in and IPsec tunnels tested.",
    )
    plan.act("firewall-hotfix", ago(hours=4, minutes=50), "raj", "submit")
    plan.act(
        "firewall-hotfix",
        ago(hours=4, minutes=35),
        "carl",
        "authorize",
        release_requirements=["Hotfix checksum checked against the vendor portal"],
    )
    plan.act(
        "firewall-hotfix",
        ago(hours=4, minutes=30),
        "carl",
        "approve",
        emergency_reason=(
            "ECAB by phone (Carl Mendes, Sam Whitfield, Nina Kowalczyk): the flaw is exploited in the wild and our "
            "portal is exposed; it cannot wait for the next maintenance window. Customers told by the service desk."
        ),
    )
    plan.act(
        "firewall-hotfix",
        ago(hours=4),
        "rita",
        "schedule",
        planned_start=start,
        planned_end=end,
        comment="Emergency change outside the maintenance window, as the ECAB agreed.",
    )
    plan.act(
        "firewall-hotfix", start + dt.timedelta(minutes=5), "raj", "implement", comment="Interim signature active."
    )

    # Completed through the committee, then the CMDB updated under the RFC (authorized changes).
    hosts = ["esx-05", "esx-06", "esx-07"]
    cis = [*hosts, *(f"{host}-os" for host in hosts)]
    start, end = await plan.last_slot(pk, cis, 240, ctx.now - dt.timedelta(days=9))
    created = plan.office(plan.business(start, -13), "09:40")
    plan.create(
        "esx-patch",
        created,
        "eve",
        pk,
        "Patch ESXi hosts esx-05 to esx-07 to 8.0 U2 build 24585300",
        cis,
        priority="high",
        need="Three hosts of the shared cluster lag a patch behind the others and miss the vendor's fixes for VM "
        "escape flaws in the USB and network controllers.",
        desired_result="esx-05, esx-06 and esx-07 on ESXi80U2d-24585300 like the rest of the cluster, no VM outage.",
        plan=(
            "One host at a time: 1. Enter maintenance mode (DRS moves the VMs). 2. Remediate with the vLCM image. "
            "3. Reboot, check hardware health and paths to san-01. 4. Exit maintenance mode; next host."
        ),
        backout_plan="Roll the host back to the previous image from the boot bank (Shift+R at boot) and return it to "
        "the cluster.",
        patch_components=[f"{host}: ESXi80U2b-23305546" for host in hosts],
        vulnerability="Vendor advisory (important): VM escape through the emulated USB and network controllers.",
        patch_description="vLCM cluster image ESXi80U2d-24585300, about 600 MB.",
        urgency="important",
        available_at=created - dt.timedelta(days=6),
        testing_done="Image already runs on esx-01 to esx-04 since last month.",
    )
    plan.act("esx-patch", created + dt.timedelta(minutes=25), "eve", "submit")
    plan.act("esx-patch", plan.business(created, 1), "carl", "authorize", release_requirements=[])
    plan.act("esx-patch", plan.business(created, 1) + dt.timedelta(minutes=5), "carl", "refer-to-committee")
    for days, hours, member, comment in (
        (2, 0, "tess", "Rolling remediation with DRS, as on the other hosts."),
        (2, 3, "nina", "No storage or network change involved."),
        (3, 0, "omar", "Application owners informed; no guest restarts expected."),
    ):
        at = plan.business(created, days) + dt.timedelta(hours=hours)
        plan.act("esx-patch", at, member, "vote", vote="approve", comment=comment)
    plan.act(
        "esx-patch",
        plan.business(created, 3) + dt.timedelta(hours=2),
        "rita",
        "schedule",
        planned_start=start,
        planned_end=end,
    )
    plan.act("esx-patch", start + dt.timedelta(minutes=5), "eve", "implement")
    done = plan.act(
        "esx-patch",
        end - dt.timedelta(minutes=25),
        "eve",
        "complete",
        comment="All three hosts patched and back in the cluster; DRS rebalanced; no VM restarted.",
    )
    for host in hosts:
        plan.record(
            "esx-patch",
            done + dt.timedelta(minutes=10),
            "eve",
            pk,
            f"{host}-os",
            {"attributes": {"patch_level": "ESXi80U2d-24585300"}},
            "Build checked in vCenter after the RFC's implementation",
        )

    # A draft that lacks its plan.
    plan.create(
        "esx-08-replaces-esx-01",
        day(2, "16:45"),
        "eve",
        pk,
        "Bring esx-08 into the shared cluster and retire esx-01",
        ["esx-08", "esx-01", "vmw-shared-cl01"],
        priority="low",
        need="esx-01 is the oldest host of the cluster and its support contract ends next year; esx-08 is racked and "
        "imaged.",
        desired_result="esx-08 in the cluster with the same image and networking, esx-01 evacuated and retired.",
    )


async def _acme_changes(plan: ChangePlan) -> None:
    ctx, day = plan.ctx, plan.day
    ny = "America/New_York"

    # Two scheduled RFCs in overlapping windows whose impacted sets share the ERP application.
    app_cis = ["acme-erp-app-01", "acme-erp-app-02", "acme-erp-app-01-os", "acme-erp-app-02-os"]
    after = ctx.now + dt.timedelta(days=1)
    for _ in range(8):
        window_open, _ = await plan.next_slot("ACME", app_cis, 300, after)
        kernel = (window_open + dt.timedelta(hours=1), window_open + dt.timedelta(hours=5))
        hana = await plan.next_slot("ACME", ["acme-erp-db"], 150, window_open)
        if hana[0] < kernel[1]:
            break
        after = window_open + dt.timedelta(days=1)
    plan.create(
        "acme-erp-kernel",
        day(6, "10:20"),
        "eve",
        "ACME",
        "Apply the SLES kernel update to the ERP application servers",
        app_cis,
        priority="high",
        need="The ERP application servers run kernel 5.14.21-150500.55.83 and miss SUSE's fixes for a local "
        "privilege escalation in the netfilter code.",
        desired_result="Both ERP application servers on kernel 5.14.21-150500.55.88, SAP instances back within "
        "30 minutes of the start.",
        plan=(
            "1. Stop the SAP application instances (ACME basis team). 2. zypper patch on both servers. 3. Reboot, "
            "check the kernel and the SAP host agent. 4. Start the instances; ACME key users test order entry."
        ),
        backout_plan="Boot the previous kernel (kept by multiversion) from the boot menu and start the instances.",
        patch_components=["acme-erp-app-01-os", "acme-erp-app-02-os"],
        vulnerability="Local privilege escalation in netfilter (SUSE rating important).",
        patch_description="SUSE kernel-default 5.14.21-150500.55.88 maintenance update, about 80 MB.",
        urgency="important",
        available_at=day(16, "09:00"),
        proposed_deployment=kernel[0],
        testing_done="Installed on acme-erp-tst-01 last week; SAP kernel checks passed.",
    )
    plan.act("acme-erp-kernel", day(6, "10:30"), "eve", "submit")
    plan.act(
        "acme-erp-kernel", day(5, "09:40"), "carl", "authorize", release_requirements=["Test evidence from acme-test"]
    )
    plan.act("acme-erp-kernel", day(5, "09:45"), "carl", "refer-to-committee")
    plan.act("acme-erp-kernel", day(4, "13:00"), "tess", "vote", vote="approve", comment="Tested on the test server.")
    plan.act("acme-erp-kernel", day(4, "15:30"), "omar", "vote", vote="approve", comment="SAP notes checked.")
    plan.act("acme-erp-kernel", day(2, "10:00"), "carl", "schedule", planned_start=kernel[0], planned_end=kernel[1])

    plan.create(
        "acme-hana-revision",
        day(5, "11:00"),
        "mia",
        "ACME",
        "Update SAP HANA on the ERP database to 2.0 SPS07 revision 76",
        ["acme-erp-db"],
        priority="high",
        need="HANA revision 73 has the delta-merge memory leak that made the ERP database restart during the last "
        "month-end close.",
        desired_result="HANA 2.0 SPS07 revision 76 on acme-erp-db, system replication in sync, no data loss.",
        plan=(
            "1. Full data backup and log backup. 2. hdblcm update of the HANA system. 3. Restart, check the "
            "services and the replication to the DR site. 4. ACME basis team checks the ERP connects."
        ),
        backout_plan="Restore the full backup taken in step 1 and replay the logs up to the start of the change.",
        patch_components=["acme-erp-db: SAP HANA 2.0 SPS07 rev. 73"],
        vulnerability="Functional flaw: memory leak in the delta merge (SAP note), restarts under month-end load.",
        patch_description="SAP HANA 2.0 SPS07 revision 76 database server, about 3.5 GB.",
        urgency="important",
        available_at=day(21, "08:00"),
        proposed_deployment=hana[0],
        testing_done="Updated on acme-erp-tst-db-01; month-end close job replayed without a restart.",
    )
    plan.act("acme-hana-revision", day(5, "11:10"), "mia", "submit")
    plan.act(
        "acme-hana-revision",
        day(4, "09:20"),
        "carl",
        "authorize",
        release_requirements=["Full backup verified before the change"],
    )
    plan.act("acme-hana-revision", day(4, "09:25"), "carl", "refer-to-committee")
    plan.act("acme-hana-revision", day(3, "10:15"), "omar", "vote", vote="approve", comment="Fixes the leak we saw.")
    plan.act("acme-hana-revision", day(3, "14:40"), "tess", "vote", vote="approve", comment="DB host has headroom.")
    plan.act("acme-hana-revision", day(1, "09:30"), "rita", "schedule", planned_start=hana[0], planned_end=hana[1])

    # Raised by the customer, waiting for the change manager's screening.
    plan.create(
        "acme-mail-quota",
        day(1, "09:40", ny),
        "pat",
        "ACME",
        "Raise the mailbox quota of the finance team to 100 GB",
        ["acme-mail"],
        priority="low",
        customer_ref="ACME-CHG-4502",
        need="Finance mailboxes reach the 50 GB quota during month-end close and Outlook stops sending.",
        desired_result="The 24 mailboxes of the Finance group at 100 GB; every other mailbox unchanged.",
        plan="Raise the send and receive quotas of the Finance group's mailboxes; check the database has room.",
        backout_plan="Set the quotas of the Finance group back to 50 GB.",
    )
    plan.act("acme-mail-quota", day(1, "09:45", ny), "pat", "submit")

    # Sent back to the customer for missing information.
    plan.create(
        "acme-label-printers",
        day(3, "10:05", ny),
        "pat",
        "ACME",
        "Allow the new MES label printers to receive jobs from the MES server",
        ["acme-fw-01"],
        priority="medium",
        customer_ref="ACME-CHG-4498",
        need="Eight new label printers on the plant floor must receive print jobs from the MES server.",
        desired_result="Labels print from MES at every packing station.",
        plan="Add a rule on acme-fw-01 from the MES server to the printers.",
        backout_plan="Remove the rule.",
    )
    plan.act("acme-label-printers", day(3, "10:10", ny), "pat", "submit")
    plan.act(
        "acme-label-printers",
        day(2, "11:15"),
        "carl",
        "request-info",
        comment="Which addresses and VLAN do the printers use, and is TCP 9100 the only port? The rule must name them.",
    )

    # Withdrawn: overtaken by the customer's own change.
    plan.create(
        "acme-erp-memory",
        day(22, "13:10"),
        "eve",
        "ACME",
        "Raise acme-erp-app-01 memory to 192 GB for month-end close",
        ["acme-erp-app-01"],
        priority="medium",
        need="The ERP application server swaps during month-end close with 128 GB.",
        desired_result="acme-erp-app-01 with 192 GB, no swapping during the close.",
        plan="Shut the VM down in the window, raise the memory, start it and check SAP's memory parameters.",
        backout_plan="Set the memory back to 128 GB.",
    )
    plan.act("acme-erp-memory", day(22, "13:20"), "eve", "submit")
    plan.act(
        "acme-erp-memory",
        day(18, "09:05"),
        "eve",
        "withdraw",
        comment="The memory was raised at ACME's request under their own change ACME-CHG-4471 before this RFC was "
        "decided; the configuration audit shows it.",
    )

    # A standard change from the catalogue (pre-approved, plan and backout from the template),
    # carried out, then the new patch level recorded on the CI under the RFC.
    test_server = ["acme-erp-tst-01", "acme-erp-tst-01-os"]
    start, end = await plan.last_slot("ACME", test_server, 120, ctx.now - dt.timedelta(days=4))
    created = plan.office(plan.business(start, -9), "10:05")
    plan.create(
        "acme-test-reimage",
        created,
        "eve",
        "ACME",
        "Re-image the ERP test application server acme-erp-tst-01",
        test_server,
        type="standard",
        template="server-imaging",
        priority="medium",
        need="acme-erp-tst-01 drifted from production after months of trial installs; test results no longer "
        "predict what production does.",
        desired_result="acme-erp-tst-01 rebuilt from the current SLES for SAP golden image, like the production "
        "ERP servers.",
        cost="480.00",
    )
    plan.act("acme-test-reimage", created + dt.timedelta(minutes=15), "eve", "submit")
    plan.act("acme-test-reimage", plan.business(created, 1), "carl", "authorize", release_requirements=[])
    plan.act("acme-test-reimage", plan.business(created, 1) + dt.timedelta(minutes=5), "carl", "approve")
    plan.act("acme-test-reimage", plan.business(created, 2), "rita", "schedule", planned_start=start, planned_end=end)
    plan.act("acme-test-reimage", start + dt.timedelta(minutes=10), "eve", "implement")
    done = plan.act(
        "acme-test-reimage",
        start + dt.timedelta(minutes=95),
        "eve",
        "complete",
        comment="Imaged, SAP role playbook applied, smoke tests passed; ACME basis team informed.",
    )
    plan.record(
        "acme-test-reimage",
        done + dt.timedelta(minutes=5),
        "eve",
        "ACME",
        "acme-erp-tst-01-os",
        {"attributes": {"patch_level": "kernel 5.14.21-150500.55.88"}},
        "Golden image level after the re-imaging",
    )

    # Approved, waiting to be scheduled.
    plan.create(
        "acme-portal-update",
        day(5, "14:30"),
        "mia",
        "ACME",
        "Apply Liferay DXP 7.4 update U120 to the supplier portal",
        ["acme-portal"],
        priority="low",
        need="The portal is eight updates behind; U120 fixes the broken supplier invoice upload.",
        desired_result="Supplier portal on U120, invoice upload working.",
        plan="Deploy U120 on both portal servers one after the other behind the load balancer; smoke test.",
        backout_plan="Redeploy U112 from the release archive.",
        patch_components=["acme-portal: Liferay DXP 7.4 U112"],
        vulnerability="Minor functional flaw: invoice upload fails for PDFs over 10 MB.",
        patch_description="Liferay DXP 7.4 U120 bundle, about 1.2 GB.",
        urgency="low",
        available_at=day(30, "12:00"),
    )
    plan.act("acme-portal-update", day(5, "14:40"), "mia", "submit")
    plan.act(
        "acme-portal-update",
        day(4, "10:30"),
        "carl",
        "authorize",
        release_requirements=["Smoke test evidence from acme-test"],
    )
    plan.act("acme-portal-update", day(4, "10:35"), "carl", "approve")


async def _globex_changes(plan: ChangePlan) -> None:
    ctx, day = plan.ctx, plan.day
    london = "Europe/London"

    # In committee review with one vote of the three the quorum needs (and applied already: audit).
    plan.create(
        "globex-pos-ru",
        day(10, "10:00"),
        "mia",
        "GLOBEX",
        "Apply Oracle 19.26 RU to the point-of-sale database",
        ["globex-pos-db"],
        priority="high",
        need="The POS database runs 19.25; Oracle's quarterly patch fixes flaws in the listener and in Java in the "
        "database.",
        desired_result="globex-pos-db on 19.26 RU with datapatch applied, tills trading normally the next morning.",
        plan="1. RMAN backup. 2. opatch apply on the Oracle home. 3. datapatch. 4. Check invalid objects and the "
        "Xstore connection pools.",
        backout_plan="opatch rollback and datapatch -rollback; restore from the RMAN backup if datapatch fails.",
        patch_components=["globex-pos-db: Oracle Database 19.25 RU"],
        vulnerability="Oracle critical patch update: remotely exploitable flaws in the listener and OJVM.",
        patch_description="Oracle Database 19.26 release update, about 1.7 GB.",
        urgency="important",
        available_at=day(28, "20:00"),
    )
    plan.act("globex-pos-ru", day(10, "10:10"), "mia", "submit")
    plan.act("globex-pos-ru", day(9, "09:15"), "carl", "authorize", release_requirements=["Test evidence"])
    plan.act("globex-pos-ru", day(9, "09:20"), "carl", "refer-to-committee")
    plan.act(
        "globex-pos-ru", day(8, "16:10"), "omar", "vote", vote="approve", comment="Datapatch tested on the shop DB."
    )

    # A customer's draft.
    plan.create(
        "globex-apple-pay",
        day(2, "10:30", london),
        "gwen",
        "GLOBEX",
        "Offer Apple Pay at the web shop checkout",
        ["globex-shop", "globex-paygw"],
        customer_ref="GLX-IT-8841",
        need="A third of our web shop visitors use iPhones; competitors offer Apple Pay.",
        desired_result="Apple Pay at checkout for the UK shop before the spring campaign.",
    )

    # Rejected, and a new RFC that refers to it.
    plan.create(
        "globex-rdp",
        day(17, "09:10", london),
        "gwen",
        "GLOBEX",
        "Open RDP from the internet to the print server for the print vendor",
        ["globex-print-01"],
        priority="medium",
        need="The print vendor must log on to globex-print-01 to fix the label driver.",
        desired_result="The vendor can work on the print server from their office.",
        plan="Forward TCP 3389 on globex-fw-01 to globex-print-01.",
        backout_plan="Remove the forwarding rule.",
    )
    plan.act("globex-rdp", day(17, "09:15", london), "gwen", "submit")
    plan.act(
        "globex-rdp",
        day(16, "11:30"),
        "carl",
        "reject",
        comment="RDP open to the internet breaks the security baseline of MSA-GLOBEX-2023-011. We will give the "
        "vendor supervised access through our jump host instead: see the follow-up RFC.",
    )
    start, end = await plan.next_slot("GLOBEX", ["globex-print-01"], 60, ctx.now + dt.timedelta(days=1))
    plan.create(
        "globex-vendor-access",
        day(16, "14:00"),
        "eve",
        "GLOBEX",
        "Supervised vendor access to globex-print-01 through the provider's jump host",
        ["globex-print-01"],
        refers_to="globex-rdp",
        priority="medium",
        need="The print vendor must fix the label driver on globex-print-01; direct RDP was rejected.",
        desired_result="The vendor fixes the driver in a supervised session; no inbound rule from the internet.",
        plan="Time-limited vendor account on jump-01, session recorded, an engineer watching; account disabled after.",
        backout_plan="Disable the vendor account and roll the driver back to the previous version.",
    )
    plan.act("globex-vendor-access", day(16, "14:10"), "eve", "submit")
    plan.act("globex-vendor-access", day(15, "09:30"), "carl", "authorize", release_requirements=[])
    plan.act("globex-vendor-access", day(15, "09:35"), "carl", "approve")
    plan.act("globex-vendor-access", day(14, "10:00"), "carl", "schedule", planned_start=start, planned_end=end)

    # Critical security patch: priority raised, the whole committee approves, scheduled.
    shop = ["globex-shop", "globex-shop-app-01", "globex-shop-app-02", "globex-shop-app-03"]
    start, end = await plan.next_slot("GLOBEX", shop, 120, ctx.now + dt.timedelta(hours=12))
    plan.create(
        "globex-commerce-patch",
        day(3, "08:40"),
        "eve",
        "GLOBEX",
        "Apply the Adobe Commerce 2.4.7-p4 security patch to the web shop",
        shop,
        priority="high",
        need="Adobe's bulletin for 2.4.7-p3 lists a flaw attackers use to skim card data from checkout pages.",
        desired_result="The web shop on 2.4.7-p4, checkout tested with a real card payment.",
        plan="1. Maintenance mode. 2. composer update on the three web nodes. 3. setup:upgrade, reindex, flush cache. "
        "4. Test checkout with Adyen test and live cards.",
        backout_plan="Restore the code release and database snapshot taken before the change.",
        affected_people=["Hannah Wright (Chief Digital Officer)"],
        patch_components=[f"globex-shop-app-0{n}: Adobe Commerce 2.4.7-p3" for n in (1, 2, 3)],
        vulnerability="Adobe security bulletin (critical): exploited flaw allowing card skimming at checkout.",
        patch_description="Adobe Commerce 2.4.7-p4 composer packages, about 300 MB.",
        urgency="critical",
        available_at=day(4, "16:00"),
        proposed_deployment=start,
    )
    plan.act("globex-commerce-patch", day(3, "08:50"), "eve", "submit")
    plan.act(
        "globex-commerce-patch",
        day(3, "09:30"),
        "carl",
        "set-priority",
        priority="critical",
        reason="Exploited against shops like Globex's; card payments go through it.",
    )
    plan.act(
        "globex-commerce-patch",
        day(3, "09:35"),
        "carl",
        "authorize",
        release_requirements=["Test evidence from globex-test", "Database snapshot before the change"],
    )
    plan.act("globex-commerce-patch", day(3, "09:40"), "carl", "refer-to-committee")
    plan.act("globex-commerce-patch", day(3, "11:00"), "omar", "vote", vote="approve", comment="Tested in test.")
    plan.act("globex-commerce-patch", day(3, "13:30"), "tess", "vote", vote="approve", comment="Web nodes ready.")
    plan.act("globex-commerce-patch", day(2, "09:15"), "nina", "vote", vote="approve", comment="No network change.")
    plan.act("globex-commerce-patch", day(2, "10:00"), "rita", "schedule", planned_start=start, planned_end=end)


async def _initech_changes(plan: ChangePlan) -> None:
    ctx, day = plan.ctx, plan.day
    berlin = "Europe/Berlin"

    # Raised by the customer, sent back for information, corrected, resubmitted, approved on both
    # sides (Initech's SLA asks for the customer's approval) and scheduled.
    start, end = await plan.next_slot("INITECH", ["initech-tps"], 120, ctx.now + dt.timedelta(days=1))
    plan.create(
        "initech-tps",
        day(14, "09:20", berlin),
        "bill",
        "INITECH",
        "Upgrade the TPS report generator to 2.4 with the new cover sheet",
        ["initech-tps"],
        priority="low",
        customer_ref="INI-AEND-2026-117",
        need="Every TPS report must carry the new cover sheet (see last week's memo); version 2.3 cannot print it.",
        desired_result="TPS reports from version 2.4, with the new cover sheet by default.",
        plan="Install 2.4 on the TPS server and restart the service.",
        backout_plan="Reinstall 2.3.1.",
    )
    plan.act("initech-tps", day(14, "09:25", berlin), "bill", "submit")
    plan.act(
        "initech-tps",
        day(13, "10:00"),
        "carl",
        "request-info",
        comment="Has Initech tested 2.4 in initech-test, and does 2.4 change the database? Please add the steps.",
    )
    plan.edit(
        "initech-tps",
        day(12, "15:30", berlin),
        "bill",
        plan=(
            "1. Back up the TPS configuration and templates. 2. Install 2.4.0 on initech-tps-app-01 (no database "
            "change per the release notes). 3. Import the new cover sheet template. 4. Peter Gibbons prints a test "
            "report and signs it off."
        ),
        testing_done="Initech QA printed 40 reports with the new cover sheet in initech-test.",
    )
    plan.act("initech-tps", day(12, "15:35", berlin), "bill", "submit")
    plan.act("initech-tps", day(11, "09:00"), "carl", "authorize", release_requirements=[])
    plan.act("initech-tps", day(11, "09:05"), "carl", "approve")
    plan.act("initech-tps", day(10, "08:45", berlin), "bill", "customer-approve", comment="Approved for Initech.")
    plan.act("initech-tps", day(10, "10:00"), "rita", "schedule", planned_start=start, planned_end=end)

    # Rejected by the committee (Initech's rule: any reject vote vetoes), then re-raised as a draft.
    plan.create(
        "initech-policy-ru",
        day(27, "10:30"),
        "mia",
        "INITECH",
        "Apply Oracle 19.26 RU to the policy administration database",
        ["initech-policy-db"],
        priority="high",
        need="The policy database runs 19.24 and misses two quarterly security patches.",
        desired_result="initech-policy-db on 19.26 RU with datapatch applied, PolicyCenter batch jobs running.",
        plan="1. RMAN backup. 2. opatch apply. 3. datapatch. 4. PolicyCenter smoke test by Initech.",
        backout_plan="opatch rollback and datapatch -rollback; restore from the RMAN backup if needed.",
        patch_components=["initech-policy-db: Oracle Database 19.24 RU"],
        vulnerability="Oracle critical patch updates: remotely exploitable flaws in the listener and OJVM.",
        patch_description="Oracle Database 19.26 release update, about 1.7 GB.",
        urgency="important",
        available_at=day(33, "20:00"),
    )
    plan.act("initech-policy-ru", day(27, "10:40"), "mia", "submit")
    plan.act("initech-policy-ru", day(26, "09:10"), "carl", "authorize", release_requirements=["Test evidence"])
    plan.act("initech-policy-ru", day(26, "09:15"), "carl", "refer-to-committee")
    plan.act("initech-policy-ru", day(25, "14:00"), "nina", "vote", vote="approve", comment="Backups are in place.")
    plan.act(
        "initech-policy-ru",
        day(24, "10:20"),
        "omar",
        "vote",
        vote="reject",
        comment="The RU has not run in initech-test and the renewals batch starts next week; re-raise after testing.",
    )
    plan.create(
        "initech-policy-ru-again",
        day(23, "11:00"),
        "mia",
        "INITECH",
        "Apply Oracle 19.26 RU to the policy database after a test run",
        ["initech-policy-db"],
        refers_to="initech-policy-ru",
        priority="high",
        need="As the rejected RFC: two quarterly security patches missing on the policy database.",
        desired_result="19.26 RU tested in initech-test first, then applied to initech-policy-db.",
        testing_done="Test run in initech-test booked for after the renewals batch.",
    )

    # Failed during implementation and backed out.
    cis = ["initech-claims", "initech-claims-app-01", "initech-claims-app-02"]
    start, end = await plan.last_slot("INITECH", cis, 300, ctx.now - dt.timedelta(days=5))
    created = plan.office(plan.business(start, -12), "08:50")
    plan.create(
        "initech-claimcenter",
        created,
        "mia",
        "INITECH",
        "Upgrade Guidewire ClaimCenter to 10.2.5",
        cis,
        priority="high",
        need="ClaimCenter 10.2.4 miscalculates the reserve on split claims; Guidewire fixed it in 10.2.5.",
        desired_result="ClaimCenter 10.2.5 on both application servers, reserves correct on split claims.",
        plan="1. RMAN backup of the claims database. 2. Stop ClaimCenter. 3. Deploy 10.2.5 and run the database "
        "upgrade. 4. Start, Initech claims team runs the acceptance test.",
        backout_plan="Restore the claims database from the backup of step 1, redeploy 10.2.4, start and test.",
        affected_people=["Thomas Weber (Head of Claims)"],
        cost="12500.00",
        budget="15000.00",
    )
    plan.act("initech-claimcenter", created + dt.timedelta(minutes=20), "mia", "submit")
    plan.act(
        "initech-claimcenter",
        plan.business(created, 1),
        "carl",
        "authorize",
        release_requirements=["Test evidence from initech-test", "RMAN backup verified before the change"],
    )
    plan.act("initech-claimcenter", plan.business(created, 1) + dt.timedelta(minutes=5), "carl", "refer-to-committee")
    plan.act("initech-claimcenter", plan.business(created, 2), "omar", "vote", vote="approve", comment="Tested.")
    plan.act("initech-claimcenter", plan.business(created, 3), "tess", "vote", vote="approve", comment="Capacity ok.")
    plan.act(
        "initech-claimcenter",
        plan.business(created, 4),
        "bill",
        "customer-approve",
        comment="Approved; Thomas Weber's team stands by for the acceptance test.",
    )
    plan.act(
        "initech-claimcenter",
        plan.business(created, 4) + dt.timedelta(hours=3),
        "rita",
        "schedule",
        planned_start=start,
        planned_end=end,
    )
    plan.act("initech-claimcenter", start + dt.timedelta(minutes=10), "mia", "implement")
    plan.act(
        "initech-claimcenter",
        start + dt.timedelta(hours=3),
        "mia",
        "fail",
        comment="The database upgrade stopped at step 14 of 31 on the claims schema (constraint violation in "
        "legacy split claims). Vendor case opened.",
    )
    plan.act(
        "initech-claimcenter",
        start + dt.timedelta(hours=4, minutes=20),
        "mia",
        "back-out",
        comment="Claims database restored from the pre-change backup, 10.2.4 redeployed; the claims team confirmed "
        "it works.",
    )

    # Authorized, waiting for the change manager's approval.
    plan.create(
        "initech-exchange-cu",
        day(2, "09:50"),
        "eve",
        "INITECH",
        "Install Exchange Server 2019 CU15 on the Initech mail servers",
        ["initech-mail"],
        priority="medium",
        need="CU14 leaves support when the next security update ships; CU15 is the last cumulative update of 2019.",
        desired_result="Both mail servers on CU15 with the latest security update, no mail lost.",
        plan="One server at a time: drain with maintenance mode, run the CU15 setup, reboot, reactivate.",
        backout_plan="Restore the server from the pre-change VM snapshot and reseed its database copies.",
        patch_components=["initech-mail-app-01", "initech-mail-app-02"],
        patch_description="Exchange Server 2019 CU15 ISO, about 6 GB.",
        urgency="service_release",
        available_at=day(45, "18:00"),
    )
    plan.act("initech-exchange-cu", day(2, "10:00"), "eve", "submit")
    plan.act(
        "initech-exchange-cu",
        day(1, "09:10"),
        "carl",
        "authorize",
        release_requirements=["Test evidence", "Pre-change snapshot of both servers"],
    )


async def _scl_changes(plan: ChangePlan) -> None:
    ctx, day = plan.ctx, plan.day
    sydney = "Australia/Sydney"

    # Raised by the customer, waiting for screening (and deployed meanwhile: see the audit).
    plan.create(
        "scl-dispatch-53",
        day(6, "09:30", sydney),
        "liam",
        "SCL",
        "Deploy SCL Dispatch 5.3",
        ["scl-dispatch"],
        priority="high",
        customer_ref="SCL-CR-0193",
        need="Dispatch 5.3 adds the depot codes of the Port Botany extension, which opens on the first of the month.",
        desired_result="Dispatch 5.3 in production before the extension opens.",
        plan="Our developers deploy the 5.3 build to both dispatch servers; the provider runs the database script.",
        backout_plan="Redeploy 5.2.7 and run the rollback script.",
    )
    plan.act("scl-dispatch-53", day(6, "09:35", sydney), "liam", "submit")

    # Failed in the last window; the backout is still to run.
    cis = ["scl-fleet", "scl-fleet-app-01", "scl-fleet-app-02"]
    start, end = await plan.last_slot("SCL", cis, 300, ctx.now - dt.timedelta(days=1))
    created = plan.office(plan.business(start, -10), "09:15")
    plan.create(
        "scl-fleet-upgrade",
        created,
        "eve",
        "SCL",
        "Upgrade fleet tracking to Descartes Route Planner 24.2",
        cis,
        priority="high",
        need="Descartes ends support for 24.1 at the end of the quarter; 24.2 adds the heavy-vehicle routing SCL asked "
        "for.",
        desired_result="Fleet tracking on 24.2 on both servers, routes for the next day computed by 05:00.",
        plan="1. Backup of the fleet database. 2. Install 24.2 side by side on app-01, switch over. 3. Same on "
        "app-02. 4. SCL dispatchers check live vehicle positions.",
        backout_plan="Switch both servers back to 24.1 (still installed) and restore the database backup.",
        cost="8600.00",
    )
    plan.add_impact(
        "scl-fleet-upgrade",
        created + dt.timedelta(minutes=30),
        "eve",
        "SCL",
        "scl-depot-srv-01",
        "Depot label printing calls the fleet API; the dependency is not in the CMDB yet.",
    )
    plan.act("scl-fleet-upgrade", created + dt.timedelta(minutes=40), "eve", "submit")
    plan.act("scl-fleet-upgrade", plan.business(created, 1), "carl", "authorize", release_requirements=[])
    plan.act("scl-fleet-upgrade", plan.business(created, 1) + dt.timedelta(minutes=5), "carl", "refer-to-committee")
    plan.act("scl-fleet-upgrade", plan.business(created, 2), "tess", "vote", vote="approve", comment="Ok.")
    plan.act(
        "scl-fleet-upgrade",
        plan.business(created, 2) + dt.timedelta(hours=4),
        "omar",
        "vote",
        vote="approve",
        comment="Ok.",
    )
    plan.act("scl-fleet-upgrade", plan.business(created, 3), "rita", "schedule", planned_start=start, planned_end=end)
    plan.act("scl-fleet-upgrade", start + dt.timedelta(minutes=10), "eve", "implement")
    plan.act(
        "scl-fleet-upgrade",
        start + dt.timedelta(hours=2, minutes=40),
        "eve",
        "fail",
        comment="The route optimisation service does not start on 24.2: the licence server rejects the new key. "
        "Vendor case open; app-02 still serves on 24.1. Backout in the next window unless the vendor fixes the key.",
    )

    # Completed, then the new patch level recorded on the CI under the RFC.
    start, end = await plan.last_slot("SCL", ["scl-dispatch-db"], 120, ctx.now - dt.timedelta(days=8))
    created = plan.office(plan.business(start, -8), "14:20")
    plan.create(
        "scl-sql-cu",
        created,
        "mia",
        "SCL",
        "Install SQL Server 2019 CU29 on the dispatch database",
        ["scl-dispatch-db"],
        priority="medium",
        need="CU28 has the query-store flaw that made dispatch lookups time out twice last month.",
        desired_result="scl-dispatch-db on CU29, dispatch lookups under 200 ms again.",
        plan="Back up, install CU29, reboot, check the SQL Agent jobs and the dispatch application.",
        backout_plan="Uninstall CU29 from Programs and Features (back to CU28) and reboot.",
        patch_components=["scl-dispatch-db: SQL Server 2019 CU28"],
        vulnerability="Functional flaw: query store cleanup blocks queries under load.",
        patch_description="SQL Server 2019 CU29 (KB article package), about 900 MB.",
        urgency="important",
        available_at=created - dt.timedelta(days=12),
        testing_done="Installed on scl-dispatch-tst-db-01; the dispatch regression suite passed.",
    )
    plan.act("scl-sql-cu", created + dt.timedelta(minutes=15), "mia", "submit")
    plan.act("scl-sql-cu", plan.business(created, 1), "carl", "authorize", release_requirements=["Test evidence"])
    plan.act("scl-sql-cu", plan.business(created, 1) + dt.timedelta(minutes=5), "carl", "refer-to-committee")
    plan.act("scl-sql-cu", plan.business(created, 2), "omar", "vote", vote="approve", comment="Tested.")
    plan.act(
        "scl-sql-cu", plan.business(created, 2) + dt.timedelta(hours=2), "tess", "vote", vote="approve", comment="Fine."
    )
    plan.act("scl-sql-cu", plan.business(created, 3), "rita", "schedule", planned_start=start, planned_end=end)
    plan.act("scl-sql-cu", start + dt.timedelta(minutes=5), "mia", "implement")
    done = plan.act(
        "scl-sql-cu", start + dt.timedelta(minutes=70), "mia", "complete", comment="CU29 installed, jobs running."
    )
    plan.record(
        "scl-sql-cu",
        done + dt.timedelta(minutes=5),
        "mia",
        "SCL",
        "scl-dispatch-db",
        {"attributes": {"patch_level": "CU29"}},
        "Patch level after the RFC's implementation",
    )


#: The change stories, by tenant (the provider's first).
CHANGE_STORIES: tuple[Callable[[ChangePlan], Awaitable[None]], ...] = (
    _provider_changes,
    _acme_changes,
    _globex_changes,
    _initech_changes,
    _scl_changes,
    # Releases, incidents and problems move and raise RFCs: replayed in the same time order.
    *OPERATION_STORIES,
)


async def add_rfcs(ctx: DemoContext) -> None:
    """RFCs in every state across the customers, raised and worked through `ChangeService` over
    the weeks before the present (see `ChangePlan`)."""
    # Impact is computed (and frozen at authorization) from the graph cache, inside the run's one
    # transaction: refuse rather than store impacts of a graph that misses this run's edits.
    index = await ctx.cmdb.graph.current()
    if index.edge_count < len(ctx.edges):
        raise Conflict(
            f"The graph cache sees {index.edge_count} of the {len(ctx.edges)} relationships this run made: it reads "
            "outside the open transaction, and RFC impacts would be computed from the wrong graph."
        )
    plan = ChangePlan(ctx, earliest=ctx.clock.now() + dt.timedelta(hours=1))
    for story in CHANGE_STORIES:
        await story(plan)
    await plan.run()


STEPS: list[tuple[str, Step]] = [
    ("provider staff", add_provider_staff),
    ("customers", add_customers),
    ("customer contacts", add_customer_contacts),
    ("provider network", add_provider_network),
    ("provider storage", add_provider_storage),
    ("provider cluster", add_provider_cluster),
    ("provider documentation", add_provider_documentation),
    ("provider services", add_provider_services),
    ("provider documentation links", document_provider_infrastructure),
    ("customer documentation", add_customer_documentation),
    ("customer sites", add_customer_sites),
    ("customer servers", add_customer_servers),
    ("customer applications", add_customer_applications),
    ("domain membership", add_domain_membership),
    ("customer services", add_customer_services),
    ("customer desktops", add_customer_desktops),
    ("test environments", add_test_environments),
    ("change windows", add_change_windows),
    ("blackouts", add_blackouts),
    ("RFCs", add_rfcs),
    # After the RFCs: some updates cite them (and are unauthorized all the same).
    ("configuration drift", add_configuration_drift),
    # After the whole past: the finished month is reported, then what is overdue now escalates.
    ("monthly reports", issue_monthly_reports),
    ("escalations", raise_escalations),
]


# ------------------------------------------------------------------------------- the entry


def demo_sign_ins(provider_key: str) -> list[SignIn]:
    staff = [SignIn(s.username, s.password, tuple(sorted(s.roles)), provider_key, s.name) for s in STAFF]
    contacts = [SignIn(c.contact.username, c.contact.password, ("customer",), c.key, c.contact.name) for c in CUSTOMERS]
    return staff + contacts


async def _existing_people(cmdb: CMDBService, system: Actor, provider: Customer) -> dict[str, Person]:
    """Demo usernames that exist already and can stand in for the demo's person (provider staff
    with at least the demo's roles, say an `admin` made with `keel user add`). Any other clash
    refuses the run before anything is written, so a failed run leaves no half-made data set."""
    reusable: dict[str, Person] = {}
    clashes = []
    for spec, is_staff in [*((s, True) for s in STAFF), *((c.contact, False) for c in CUSTOMERS)]:
        try:
            person = await cmdb.get_person(system, spec.username)
        except NotFound:
            continue
        if is_staff and person.tenant_id == provider.id and {r.value for r in person.roles} >= set(spec.roles):
            reusable[spec.username] = person
        else:
            clashes.append(spec.username)
    if clashes:
        raise Conflict(
            f"The demo needs the usernames {', '.join(clashes)}, which already belong to other people in this "
            "database; seed the demo into an empty database."
        )
    return reusable


async def _rfc_figures(change: ChangeService, actor: Actor) -> tuple[dict[str, int], int]:
    """RFCs per state (every state, in workflow order) and the scheduling conflicts over the
    next 60 days."""
    counts = {}
    for state in RFCState:
        _, counts[state.value] = await change.list_rfcs(actor, states=[state.value], limit=1)
    now = change.clock.now()
    conflicts = await change.conflicts(actor, now, now + dt.timedelta(days=60))
    return counts, len(conflicts)


async def _existing_summary(
    cmdb: CMDBService, clock: Clock, system: Actor, provider: Customer, present: list[str]
) -> DemoSummary:
    customers = {provider.key: provider.name}
    counts: dict[str, dict[str, int]] = {}
    for key in [provider.key, *present]:
        customer = await cmdb.get_customer(system, key)
        customers[key] = customer.name
        by_class: Counter[str] = Counter()
        offset = 0
        while True:
            cis, total = await cmdb.list_cis(
                system, customer=key, ci_class=None, status=None, q=None, limit=500, offset=offset
            )
            by_class.update(ci.ci_class.value for ci in cis)
            offset += len(cis)
            if not cis or offset >= total:
                break
        counts[key] = dict(sorted(by_class.items()))
    index = await cmdb.index()
    sign_ins = []
    for sign_in in demo_sign_ins(provider.key):
        try:
            await cmdb.get_person(system, sign_in.username)
        except NotFound:
            continue
        sign_ins.append(sign_in)
    _, unauthorized = await cmdb.audit(system, customer=None, since=None, limit=1, offset=0)
    rfcs, conflicts = await _rfc_figures(ChangeService(clock, cmdb), system)
    return DemoSummary(
        created=False,
        message=f"Demo data is already there (customers {', '.join(present)}); nothing was created.",
        customers=customers,
        counts=counts,
        relationships=index.edge_count,
        sign_ins=sign_ins,
        unauthorized_changes=unauthorized,
        rfcs=rfcs,
        conflicts=conflicts,
        operations=await operations_figures(clock, cmdb, system),
    )


@asynccontextmanager
async def _connection_pool() -> AsyncIterator[None]:
    """Piccolo's PostgreSQL engine opens a new connection for every query unless a pool runs
    (the web app starts one; the command line does not): with some 20,000 queries that is the
    difference between seconds and minutes. Starts a small pool for the run if none is open."""
    engine: Any = repo.engine()
    if engine.engine_type != "postgres" or getattr(engine, "pool", None) is not None:
        yield
        return
    await engine.start_connection_pool(min_size=1, max_size=4)
    try:
        yield
    finally:
        await engine.close_connection_pool()


async def seed_demo(cmdb: CMDBService, clock: Clock, *, provider_key: str) -> DemoSummary:
    """Seeds the demo data set (see the module docstring) unless it is there already."""
    async with _connection_pool():
        return await _seed(cmdb, clock, provider_key=provider_key)


async def _seed(cmdb: CMDBService, clock: Clock, *, provider_key: str) -> DemoSummary:
    started = time.perf_counter()
    provider = await cmdb.provider()
    if provider.key != provider_key:
        raise Conflict(
            f"The provider tenant of this database is {provider.key}, not {provider_key}; "
            "set KEEL_PROVIDER_KEY to match it."
        )
    system = system_actor(provider)
    # One transaction around the whole run, which the services' own transactions join: the demo
    # appears completely or not at all (a failed run leaves nothing behind that would make the
    # next run think the demo is there), and it commits once instead of some 2,000 times, which
    # on SQLite with synchronous=FULL is most of the time.
    async with atomic(repo.engine()):
        present = []
        for spec in CUSTOMERS:
            try:
                await cmdb.get_customer(system, spec.key)
            except NotFound:
                continue
            present.append(spec.key)
        if present:
            return await _existing_summary(cmdb, clock, system, provider, present)
        # The records are written with a seeding clock that starts HISTORY_DAYS back and that the
        # steps move (see SeedClock), through a CMDB service on that clock and on the same graph
        # cache, whose configuration control asks change management whether an RFC authorizes
        # an update (as the application's does).
        now = clock.now()
        seed_clock = SeedClock(now, now - dt.timedelta(days=HISTORY_DAYS))
        ctx = DemoContext(
            cmdb=CMDBService(seed_clock, cmdb.graph, RFCAuthority()),
            clock=seed_clock,
            provider=provider,
            rng=random.Random(DEMO_SEED),
            today=now.date(),
            customers={provider.key: provider},
            existing_people=await _existing_people(cmdb, system, provider),
        )
        history_from = seed_clock.now()
        timings: list[tuple[str, float]] = []
        for name, step in STEPS:
            step_started = time.perf_counter()
            await step(ctx)
            timings.append((name, time.perf_counter() - step_started))
        _, unauthorized = await cmdb.audit(system, customer=None, since=None, limit=1, offset=0)
        rfcs, conflicts = await _rfc_figures(ChangeService(clock, cmdb), system)
        figures = await operations_figures(clock, cmdb, system)

    counts: dict[str, dict[str, int]] = {}
    for (key, _name), ci in ctx.cis.items():
        counts.setdefault(key, {})
        counts[key][ci.ci_class.value] = counts[key].get(ci.ci_class.value, 0) + 1
    return DemoSummary(
        created=True,
        message=f"Demo data created: {len(CUSTOMERS)} customers besides {provider.key} (seed {DEMO_SEED}).",
        customers={key: customer.name for key, customer in ctx.customers.items()},
        counts={key: dict(sorted(by_class.items())) for key, by_class in counts.items()},
        relationships=len(ctx.edges),
        sign_ins=ctx.sign_ins,
        windows=ctx.windows,
        blackouts=ctx.blackouts,
        updates=ctx.updates,
        unauthorized_changes=unauthorized,
        seconds=time.perf_counter() - started,
        steps=timings,
        rfcs=rfcs,
        conflicts=conflicts,
        rfc_keys={name: rfc.key for name, rfc in ctx.rfcs.items()},
        history_from=history_from,
        operations=figures,
    )


__all__ = [
    "CHANGE_STORIES",
    "CUSTOMERS",
    "DEMO_SEED",
    "HISTORY_DAYS",
    "STAFF",
    "STEPS",
    "UPDATES",
    "ChangePlan",
    "DemoContext",
    "DemoSummary",
    "SeedClock",
    "SignIn",
    "seed_demo",
]
