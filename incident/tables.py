"""Piccolo tables of incident. Only `incident/repository.py` queries them.

`incident_release.release` is a plain integer, not a foreign key: release management's tables
live in another app whose migration may run in any order relative to this one's.
"""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    ForeignKey,
    Integer,
    OnDelete,
    Serial,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

from cmdb.tables import CITable, CustomerTable, PersonTable


class IncidentTable(Table, tablename="incident"):
    id = Serial(primary_key=True)
    key = Varchar(length=20, unique=True)
    tenant = ForeignKey(references=CustomerTable, on_delete=OnDelete.restrict, index=True, null=False)
    title = Varchar(length=300)
    status = Varchar(length=24, default="new", index=True)
    priority = Varchar(length=16, default="normal")
    source = Varchar(length=16, default="manual")
    created_at = Timestamptz()
    updated_at = Timestamptz()
    acknowledged_at = Timestamptz(null=True, default=None)
    responded_at = Timestamptz(null=True, default=None)
    resolved_at = Timestamptz(null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)
    response_due = Timestamptz(null=True, default=None, index=True)
    resolution_due = Timestamptz(null=True, default=None, index=True)
    # The nearest target still to meet (response until responded, then resolution; null once
    # closed), stored so the work queue is one index scan with LIMIT.
    next_due = Timestamptz(null=True, default=None, index=True)
    assignee = ForeignKey(references=PersonTable, on_delete=OnDelete.set_null, null=True, default=None, index=True)
    reopen_count = Integer(default=0)
    parent = Integer(null=True, default=None, index=True)
    reported_by = Varchar(length=200, default="")
    contact = Varchar(length=300, default="")
    received_by = Integer(null=True, default=None)
    symptoms = Text(default="")
    errors = Text(default="")
    steps_to_reproduce = Text(default="")
    environment_changes = Text(default="")
    classification = Varchar(length=100, default="")
    sla_template = Varchar(length=16, default="priorities")
    response_level = Varchar(length=16, null=True, default=None)
    waiting_for = Varchar(length=16, null=True, default=None)
    paused_since = Timestamptz(null=True, default=None)
    pauses = JSONB(default="[]")
    closure = JSONB(null=True, default=None)
    rfc_key = Varchar(length=20, null=True, default=None)
    # When the escalation job must next look at this incident (the next 75 % or breach point);
    # null while nothing is pending. Lets the job read only incidents that are due, not all.
    next_escalation_at = Timestamptz(null=True, default=None, index=True)
    version = Integer(default=1)


class IncidentCITable(Table, tablename="incident_ci"):
    """The affected CIs of an incident, so "incidents on this CI" is one indexed read."""

    id = Serial(primary_key=True)
    incident = ForeignKey(references=IncidentTable, on_delete=OnDelete.cascade, index=True, null=False)
    ci = ForeignKey(references=CITable, on_delete=OnDelete.restrict, index=True, null=False)


class IncidentReleaseTable(Table, tablename="incident_release"):
    """Incidents raised during a release's watch period on its released CIs or their dependents."""

    id = Serial(primary_key=True)
    incident = ForeignKey(references=IncidentTable, on_delete=OnDelete.cascade, index=True, null=False)
    release = Integer(index=True)
    linked_at = Timestamptz()


class IncidentTimeTable(Table, tablename="incident_time"):
    id = Serial(primary_key=True)
    incident = ForeignKey(references=IncidentTable, on_delete=OnDelete.cascade, index=True, null=False)
    person = ForeignKey(references=PersonTable, on_delete=OnDelete.restrict, index=True, null=False)
    minutes = Integer()
    estimated_minutes = Integer(null=True, default=None)
    at = Timestamptz()
    note = Text(default="")


class IncidentCommunicationTable(Table, tablename="incident_communication"):
    id = Serial(primary_key=True)
    incident = ForeignKey(references=IncidentTable, on_delete=OnDelete.cascade, index=True, null=False)
    channel = Varchar(length=24)
    direction = Varchar(length=16)
    party = Varchar(length=200, default="")
    summary = Text(default="")
    person = Integer(null=True, default=None)
    at = Timestamptz()


TABLES: list[type[Table]] = [
    IncidentTable,
    IncidentCITable,
    IncidentReleaseTable,
    IncidentTimeTable,
    IncidentCommunicationTable,
]
