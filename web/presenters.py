"""Records to JSON, in the field names api.md fixes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cmdb.models import CI, Customer, HistoryEntry, Person, Relationship
from cmdb.services import ImpactRow, PathHop


def customer_json(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id,
        "key": customer.key,
        "name": customer.name,
        "is_provider": customer.is_provider,
        "timezone": customer.timezone,
        "holiday_region": customer.holiday_region,
        "calendar": dict(customer.calendar),
        "sla": dict(customer.sla),
        "version": customer.version,
        "created_at": customer.created_at.isoformat(),
    }


def person_json(person: Person, customer_keys: Mapping[int, str]) -> dict[str, Any]:
    return {
        "id": person.id,
        "username": person.username,
        "name": person.name,
        "customer": customer_keys.get(person.tenant_id),
        "roles": sorted(role.value for role in person.roles),
        "email": person.email,
        "phone": person.phone,
        "availability": person.availability,
        "expertise": sorted(person.expertise),
        "active": person.active,
        "version": person.version,
    }


def ci_json(ci: CI, customer_keys: Mapping[int, str]) -> dict[str, Any]:
    return {
        "id": ci.id,
        "name": ci.name,
        "customer": customer_keys.get(ci.tenant_id),
        "customer_id": ci.tenant_id,
        "class": ci.ci_class.value,
        "status": ci.status.value,
        "criticality": ci.criticality.value,
        "description": ci.description,
        "owner": ci.owner_id,
        "support": list(ci.support_ids),
        "attributes": dict(ci.attributes),
        "version": ci.version,
        "created_at": ci.created_at.isoformat(),
        "updated_at": ci.updated_at.isoformat(),
    }


def ci_brief(row: ImpactRow, customer_keys: Mapping[int, str]) -> dict[str, Any]:
    """A CI inside a graph answer; a provider CI shown to a customer keeps only id and class."""
    if row.ci is None:
        return {"id": row.ci_id, "class": row.ci_class.value if row.ci_class else None, "redacted": True}
    return {
        "id": row.ci.id,
        "name": row.ci.name,
        "customer": customer_keys.get(row.ci.tenant_id),
        "class": row.ci.ci_class.value,
        "status": row.ci.status.value,
        "criticality": row.ci.criticality.value,
    }


def relationship_json(relationship: Relationship, customer_keys: Mapping[int, str]) -> dict[str, Any]:
    return {
        "id": relationship.id,
        "source": relationship.source_id,
        "target": relationship.target_id,
        "type": relationship.type.value,
        "customer": customer_keys.get(relationship.tenant_id),
        "note": relationship.note,
        "created_at": relationship.created_at.isoformat(),
    }


def history_json(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "ci": entry.ci_id,
        "other_ci": entry.other_ci_id,
        "action": entry.action,
        "actor": entry.actor_name,
        "actor_id": entry.actor_id,
        "at": entry.at.isoformat(),
        "before": entry.before,
        "after": entry.after,
        "rfc": entry.rfc,
        "unauthorized": entry.unauthorized,
        "unauthorized_fields": list(entry.unauthorized_fields),
        "comment": entry.comment,
    }


def hop_json(hop: PathHop, customer_keys: Mapping[int, str]) -> dict[str, Any]:
    return {
        "source": ci_brief(hop.source, customer_keys),
        "type": hop.type,
        "target": ci_brief(hop.target, customer_keys),
        "relationship": hop.rel_id,
    }


def rfc_json(rfc: Any, customer_keys: Mapping[str, Any] | Mapping[int, str]) -> dict[str, Any]:
    def moment(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": rfc.id,
        "key": rfc.key,
        "customer": customer_keys.get(rfc.tenant_id),  # type: ignore[call-overload]
        "title": rfc.title,
        "type": rfc.type.value,
        "state": rfc.state.value,
        "priority": rfc.priority.value,
        "origin": rfc.origin.value,
        "origin_ref": rfc.origin_ref,
        "originator": rfc.originator_id,
        "need": rfc.need,
        "desired_result": rfc.desired_result,
        "affected_people": list(rfc.affected_people),
        "cis": list(rfc.ci_ids),
        "plan": rfc.plan,
        "backout_plan": rfc.backout_plan,
        "deadline": moment(rfc.deadline),
        "cost": str(rfc.cost) if rfc.cost is not None else None,
        "budget": str(rfc.budget) if rfc.budget is not None else None,
        "customer_ref": rfc.customer_ref,
        "refers_to": rfc.refers_to,
        "template": rfc.template,
        "planned_start": moment(rfc.planned_start),
        "planned_end": moment(rfc.planned_end),
        "release_requirements": list(rfc.release_requirements),
        "impact_frozen": rfc.impact_frozen,
        "post_implementation_review_required": rfc.post_implementation_review_required,
        "emergency_reason": rfc.emergency_reason,
        "customer_approval_required": rfc.customer_approval_required,
        "customer_approved_by": rfc.customer_approved_by,
        "patch_components": list(rfc.patch_components),
        "vulnerability": rfc.vulnerability,
        "patch_description": rfc.patch_description,
        "urgency": rfc.urgency.value if rfc.urgency else None,
        "available_at": moment(rfc.available_at),
        "proposed_deployment": moment(rfc.proposed_deployment),
        "testing_done": rfc.testing_done,
        "version": rfc.version,
        "created_at": moment(rfc.created_at),
        "updated_at": moment(rfc.updated_at),
    }
