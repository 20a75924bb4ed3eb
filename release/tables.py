"""Piccolo tables of release management. Only `release/repository.py` queries them."""

from __future__ import annotations

from piccolo.columns import JSONB, Boolean, ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table

from change.tables import RFCTable
from cmdb.tables import CITable, CustomerTable, PersonTable


class ReleaseTable(Table, tablename="release"):
    id = Serial(primary_key=True)
    key = Varchar(length=20, unique=True)
    tenant = ForeignKey(references=CustomerTable, on_delete=OnDelete.restrict, index=True, null=False)
    title = Varchar(length=300)
    description = Text(default="")
    state = Varchar(length=16, default="planned", index=True)
    # The CI of class test_environment the tests ran in, and the production CIs it stands for.
    test_environment = ForeignKey(references=CITable, on_delete=OnDelete.restrict, null=True, default=None)
    represents = JSONB(default="[]")
    # Tests of earlier rounds stay as evidence; only the current round decides the outcome.
    test_round = Integer(default=1)
    created_by = ForeignKey(references=PersonTable, on_delete=OnDelete.set_null, null=True, default=None)
    approved_by = ForeignKey(references=PersonTable, on_delete=OnDelete.set_null, null=True, default=None)
    approved_at = Timestamptz(null=True, default=None)
    deploy_started_at = Timestamptz(null=True, default=None)
    deployed_at = Timestamptz(null=True, default=None)
    backed_out_at = Timestamptz(null=True, default=None)
    backout_reason = Text(default="")
    watch_days = Integer(default=7)
    watch_until = Timestamptz(null=True, default=None, index=True)
    version = Integer(default=1)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class ReleaseRFCTable(Table, tablename="release_rfc"):
    id = Serial(primary_key=True)
    release = ForeignKey(references=ReleaseTable, on_delete=OnDelete.cascade, index=True, null=False)
    rfc = ForeignKey(references=RFCTable, on_delete=OnDelete.restrict, index=True, null=False)
    added_at = Timestamptz()
    # True while the release is active; a partial unique index on (rfc) WHERE active keeps an
    # RFC in one active release at a time (migration 2026-11-22T05:30).
    active = Boolean(default=True)


class ReleaseTestTable(Table, tablename="release_test"):
    id = Serial(primary_key=True)
    release = ForeignKey(references=ReleaseTable, on_delete=OnDelete.cascade, index=True, null=False)
    round = Integer(default=1)
    name = Varchar(length=300)
    result = Varchar(length=16)
    covers = JSONB(default="[]")
    negative_effects = Text(default="")
    recorded_by = ForeignKey(references=PersonTable, on_delete=OnDelete.set_null, null=True, default=None)
    recorded_at = Timestamptz()
    # The release manager's review of the negative effects: resolved or accepted (with reason).
    review = Varchar(length=16, null=True, default=None)
    review_justification = Text(default="")
    reviewed_by = ForeignKey(references=PersonTable, on_delete=OnDelete.set_null, null=True, default=None)
    reviewed_at = Timestamptz(null=True, default=None)


class DeploymentTable(Table, tablename="deployment"):
    """What a release installed on a CI: the CMDB's answer to "what runs where"."""

    id = Serial(primary_key=True)
    release = ForeignKey(references=ReleaseTable, on_delete=OnDelete.cascade, index=True, null=False)
    tenant = ForeignKey(references=CustomerTable, on_delete=OnDelete.restrict, null=False)
    ci = ForeignKey(references=CITable, on_delete=OnDelete.restrict, index=True, null=False)
    rfc = ForeignKey(references=RFCTable, on_delete=OnDelete.set_null, null=True, default=None)
    version = Varchar(length=300)
    deployed_at = Timestamptz()
    deployed_by = ForeignKey(references=PersonTable, on_delete=OnDelete.set_null, null=True, default=None)
    outcome = Varchar(length=16, default="deployed")


TABLES: list[type[Table]] = [ReleaseTable, ReleaseRFCTable, ReleaseTestTable, DeploymentTable]
