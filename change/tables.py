"""Piccolo tables of change management. Only `change/repository.py` queries them."""

from __future__ import annotations

from piccolo.columns import (
    JSONB,
    Boolean,
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


class RFCTable(Table, tablename="rfc"):
    id = Serial(primary_key=True)
    key = Varchar(length=20, unique=True)
    tenant = ForeignKey(references=CustomerTable, on_delete=OnDelete.restrict, index=True, null=False)
    title = Varchar(length=300)
    type = Varchar(length=16, default="normal")
    state = Varchar(length=24, default="draft", index=True)
    priority = Varchar(length=16, default="medium")
    origin = Varchar(length=16, default="internal")
    origin_ref = Varchar(length=40, null=True, default=None)
    originator = ForeignKey(references=PersonTable, on_delete=OnDelete.set_null, null=True, default=None)
    need = Text(default="")
    desired_result = Text(default="")
    affected_people = JSONB(default="[]")
    plan = Text(default="")
    backout_plan = Text(default="")
    deadline = Timestamptz(null=True, default=None)
    # Money as text: exact decimals on both engines, no float rounding.
    cost = Varchar(length=32, null=True, default=None)
    budget = Varchar(length=32, null=True, default=None)
    customer_ref = Varchar(length=100, null=True, default=None)
    refers_to = Varchar(length=20, null=True, default=None)
    template = Varchar(length=100, null=True, default=None)
    planned_start = Timestamptz(null=True, default=None, index=True)
    planned_end = Timestamptz(null=True, default=None)
    release_requirements = JSONB(default="[]")
    impact_frozen = Boolean(default=False)
    impact = JSONB(null=True, default=None)
    impact_adjustments = JSONB(default="[]")
    post_implementation_review_required = Boolean(default=False)
    emergency_reason = Text(default="")
    customer_approval_required = Boolean(default=False)
    customer_approved_by = Integer(null=True, default=None)
    patch_components = JSONB(default="[]")
    vulnerability = Text(default="")
    patch_description = Text(default="")
    urgency = Varchar(length=24, null=True, default=None)
    available_at = Timestamptz(null=True, default=None)
    proposed_deployment = Timestamptz(null=True, default=None)
    testing_done = Text(default="")
    version = Integer(default=1)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class RFCCITable(Table, tablename="rfc_ci"):
    """The affected CIs of an RFC, so "what changes touched this CI" is one indexed read."""

    id = Serial(primary_key=True)
    rfc = ForeignKey(references=RFCTable, on_delete=OnDelete.cascade, index=True, null=False)
    ci = ForeignKey(references=CITable, on_delete=OnDelete.restrict, index=True, null=False)


class VoteTable(Table, tablename="rfc_vote"):
    id = Serial(primary_key=True)
    rfc = ForeignKey(references=RFCTable, on_delete=OnDelete.cascade, index=True, null=False)
    member = ForeignKey(references=PersonTable, on_delete=OnDelete.restrict, null=False)
    vote = Varchar(length=16)
    comment = Text(default="")
    at = Timestamptz()


CHANGE_TABLES: list[type[Table]] = [RFCTable, RFCCITable, VoteTable]
