"""Typed attributes of each CI class, and their validation. Pure.

A class's attributes are a closed set: an unknown attribute is refused rather than stored,
so a typo never becomes a silent second field. Controlled attributes are the ones configuration
control watches: changing one needs an approved RFC, or it is recorded as unauthorized.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cmdb.errors import FieldProblem
from cmdb.models import CIClass


class AttrType(StrEnum):
    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    STRING_LIST = "string_list"


@dataclass(frozen=True)
class AttributeSpec:
    name: str
    type: AttrType
    label: str
    controlled: bool = False
    max_length: int = 500


def _spec(name: str, type_: AttrType, label: str, controlled: bool = False) -> AttributeSpec:
    return AttributeSpec(name=name, type=type_, label=label, controlled=controlled)


S, T, INT, N, B, D, L = (
    AttrType.STRING,
    AttrType.TEXT,
    AttrType.INTEGER,
    AttrType.NUMBER,
    AttrType.BOOLEAN,
    AttrType.DATE,
    AttrType.STRING_LIST,
)

# The inventory fields domain.md asks of every inventory CI.
_INVENTORY = (
    _spec("serial_number", S, "Serial number", controlled=True),
    _spec("make", S, "Make"),
    _spec("model", S, "Model"),
    _spec("hardware_config", T, "Hardware configuration", controlled=True),
    _spec("software_config", T, "Software configuration", controlled=True),
    _spec("applications", L, "Associated applications"),
    _spec("warranty_expires", D, "Warranty expiry date"),
    _spec("software_agreements", L, "Software agreements"),
    _spec("migration_date", D, "Managed-services migration date"),
    _spec("location", S, "Location"),
    _spec("asset_tag", S, "Asset tag"),
)
_NETWORKED = (
    _spec("ip_address", S, "IP address", controlled=True),
    _spec("hostname", S, "Host name"),
)
_SOFTWARE = (
    _spec("vendor", S, "Vendor"),
    _spec("version", S, "Version", controlled=True),
    _spec("patch_level", S, "Patch level", controlled=True),
    _spec("software_agreements", L, "Software agreements"),
    _spec("license_key_ref", S, "Licence reference"),
    _spec("support_expires", D, "Vendor support expiry date"),
    _spec("migration_date", D, "Managed-services migration date"),
    _spec("software_config", T, "Configuration", controlled=True),
)
_VIRTUAL = (
    _spec("vcpus", INT, "Virtual CPUs", controlled=True),
    _spec("memory_gb", N, "Memory (GB)", controlled=True),
    _spec("disk_gb", N, "Disk (GB)", controlled=True),
    _spec("hypervisor", S, "Hypervisor"),
    _spec("software_config", T, "Software configuration", controlled=True),
    _spec("migration_date", D, "Managed-services migration date"),
    *_NETWORKED,
)

CLASS_ATTRIBUTES: dict[CIClass, tuple[AttributeSpec, ...]] = {
    CIClass.SERVER: (
        *_INVENTORY,
        *_NETWORKED,
        _spec("cpu_cores", INT, "CPU cores"),
        _spec("memory_gb", N, "Memory (GB)"),
    ),
    CIClass.DESKTOP: (*_INVENTORY, *_NETWORKED, _spec("assigned_to", S, "Assigned to")),
    CIClass.NETWORK_DEVICE: (
        *_INVENTORY,
        *_NETWORKED,
        _spec("firmware", S, "Firmware", controlled=True),
        _spec("ports", INT, "Ports"),
    ),
    CIClass.STORAGE: (
        *_INVENTORY,
        _spec("capacity_tb", N, "Capacity (TB)"),
        _spec("raid_level", S, "RAID level", controlled=True),
    ),
    CIClass.UPS: (
        *_INVENTORY,
        _spec("capacity_va", INT, "Capacity (VA)"),
        _spec("battery_replaced", D, "Battery last replaced"),
    ),
    CIClass.VIRTUAL_MACHINE: _VIRTUAL,
    CIClass.CLUSTER: (
        _spec("hypervisor", S, "Hypervisor"),
        _spec("node_count", INT, "Nodes"),
        _spec("version", S, "Version", controlled=True),
    ),
    CIClass.OPERATING_SYSTEM: _SOFTWARE,
    CIClass.APPLICATION: (*_SOFTWARE, _spec("url", S, "URL")),
    CIClass.DATABASE: (
        *_SOFTWARE,
        _spec("engine", S, "Engine"),
        _spec("size_gb", N, "Size (GB)"),
        _spec("backup_policy", T, "Backup policy", controlled=True),
    ),
    CIClass.SERVICE: (
        _spec("business_owner", S, "Business owner"),
        _spec("service_hours", S, "Service hours"),
        _spec("users", INT, "Users"),
        _spec("sla_tier", S, "SLA tier", controlled=True),
    ),
    CIClass.DOCUMENT: (
        _spec("url", S, "Location / URL"),
        _spec("version", S, "Version", controlled=True),
        _spec("review_date", D, "Next review"),
    ),
    CIClass.PROCEDURE: (
        _spec("steps", T, "Steps", controlled=True),
        _spec("version", S, "Version", controlled=True),
        _spec("review_date", D, "Next review"),
    ),
    CIClass.TEST_ENVIRONMENT: (
        _spec("represents", L, "Production CIs it represents"),
        _spec("purpose", T, "Purpose"),
        _spec("refreshed_at", D, "Last refreshed from production"),
    ),
}


def specs_for(ci_class: CIClass) -> dict[str, AttributeSpec]:
    return {spec.name: spec for spec in CLASS_ATTRIBUTES[ci_class]}


def controlled_attributes(ci_class: CIClass) -> frozenset[str]:
    return frozenset(spec.name for spec in CLASS_ATTRIBUTES[ci_class] if spec.controlled)


def _coerce(spec: AttributeSpec, value: Any) -> tuple[Any, str | None]:
    """Returns (normalized value, None) or (None, reason). Strings from CSV are accepted for
    numbers, booleans and dates; JSON values must already have the right type otherwise."""
    kind = spec.type
    if kind in (AttrType.STRING, AttrType.TEXT):
        if not isinstance(value, str):
            return None, f"must be text, got {type(value).__name__}"
        limit = spec.max_length if kind is AttrType.STRING else 20_000
        if len(value) > limit:
            return None, f"must be at most {limit} characters"
        return value, None
    if kind is AttrType.INTEGER:
        if isinstance(value, bool):
            return None, "must be a whole number, got true/false"
        if isinstance(value, int):
            return value, None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip()), None
        return None, "must be a whole number"
    if kind is AttrType.NUMBER:
        if isinstance(value, bool):
            return None, "must be a number, got true/false"
        if isinstance(value, int | float):
            return value, None
        if isinstance(value, str):
            try:
                return float(value), None
            except ValueError:
                pass
        return None, "must be a number"
    if kind is AttrType.BOOLEAN:
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.strip().lower() in {"true", "false", "yes", "no", "1", "0"}:
            return value.strip().lower() in {"true", "yes", "1"}, None
        return None, "must be true or false"
    if kind is AttrType.DATE:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value.strip()).isoformat(), None
            except ValueError:
                pass
        return None, "must be a date as YYYY-MM-DD"
    if kind is AttrType.STRING_LIST:
        if isinstance(value, str):
            # CSV cells carry lists separated by semicolons.
            return [part.strip() for part in value.split(";") if part.strip()], None
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value), None
        return None, "must be a list of texts"
    raise AssertionError(f"unhandled attribute type {kind}")


def validate_attributes(
    ci_class: CIClass, attributes: Mapping[str, Any], *, prefix: str = "attributes"
) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Checks every attribute against the class; returns the normalized attributes and every
    problem found. A None or empty-string value removes the attribute."""
    specs = specs_for(ci_class)
    clean: dict[str, Any] = {}
    problems: list[FieldProblem] = []
    for name, value in attributes.items():
        spec = specs.get(name)
        if spec is None:
            known = ", ".join(sorted(specs))
            problems.append(
                FieldProblem(f"{prefix}.{name}", f"is not an attribute of class {ci_class.value} (known: {known})")
            )
            continue
        if value is None or value == "":
            continue
        normalized, reason = _coerce(spec, value)
        if reason is not None:
            problems.append(FieldProblem(f"{prefix}.{name}", reason))
        else:
            clean[name] = normalized
    return clean, problems


def changed_controlled(ci_class: CIClass, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Controlled attributes whose value differs between two attribute sets."""
    return sorted(name for name in controlled_attributes(ci_class) if before.get(name) != after.get(name))
