"""Piccolo tables of the CMDB. Only `cmdb/repository.py` queries them.

Tables carry no `db=` argument: the engine comes from `piccolo_conf.py` (KEEL_DATABASE_URL) and
`web.app` may rebind it, so a test's database choice is never silently ignored.
"""

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


class CustomerTable(Table, tablename="customer"):
    id = Serial(primary_key=True)
    key = Varchar(length=32, unique=True)
    name = Varchar(length=200)
    is_provider = Boolean(default=False)
    timezone = Varchar(length=64, default="UTC")
    holiday_region = Varchar(length=16, null=True, default=None)
    calendar = JSONB(default="{}")
    sla = JSONB(default="{}")
    version = Integer(default=1)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class PersonTable(Table, tablename="person"):
    id = Serial(primary_key=True)
    username = Varchar(length=100, unique=True)
    name = Varchar(length=200)
    tenant = ForeignKey(references=CustomerTable, on_delete=OnDelete.restrict, index=True, null=False)
    roles = JSONB(default="[]")
    email = Varchar(length=200, null=True, default=None)
    phone = Varchar(length=50, null=True, default=None)
    availability = Varchar(length=200, null=True, default=None)
    expertise = JSONB(default="[]")
    password_hash = Varchar(length=200, null=True, default=None)
    active = Boolean(default=True)
    version = Integer(default=1)
    created_at = Timestamptz()


class CredentialTable(Table, tablename="credential"):
    """API tokens and browser sessions. Only a hash of the secret is stored."""

    id = Serial(primary_key=True)
    token_hash = Varchar(length=64, unique=True)
    person = ForeignKey(references=PersonTable, on_delete=OnDelete.cascade, index=True, null=False)
    kind = Varchar(length=16)
    created_at = Timestamptz()
    expires_at = Timestamptz()


class CITable(Table, tablename="ci"):
    id = Serial(primary_key=True)
    tenant = ForeignKey(references=CustomerTable, on_delete=OnDelete.restrict, index=True, null=False)
    name = Varchar(length=200)
    ci_class = Varchar(length=32, index=True)
    status = Varchar(length=16, index=True)
    criticality = Varchar(length=16, default="medium")
    description = Text(default="")
    owner = ForeignKey(references=PersonTable, on_delete=OnDelete.set_null, null=True, default=None)
    attributes = JSONB(default="{}")
    version = Integer(default=1)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class CISupportTable(Table, tablename="ci_support"):
    id = Serial(primary_key=True)
    ci = ForeignKey(references=CITable, on_delete=OnDelete.cascade, index=True, null=False)
    person = ForeignKey(references=PersonTable, on_delete=OnDelete.cascade, index=True, null=False)
    role = Varchar(length=16, default="support")


class RelationshipTable(Table, tablename="relationship"):
    id = Serial(primary_key=True)
    tenant = ForeignKey(references=CustomerTable, on_delete=OnDelete.restrict, index=True, null=False)
    source = ForeignKey(references=CITable, on_delete=OnDelete.restrict, index=True, null=False)
    target = ForeignKey(references=CITable, on_delete=OnDelete.restrict, index=True, null=False)
    type = Varchar(length=32)
    note = Text(default="")
    created_at = Timestamptz()


class HistoryTable(Table, tablename="history"):
    """Append-only: the repository offers no update or delete of these rows."""

    id = Serial(primary_key=True)
    tenant = Integer(index=True)
    entity = Varchar(length=32)
    entity_id = Integer()
    ci_id = Integer(null=True, default=None, index=True)
    other_ci_id = Integer(null=True, default=None, index=True)
    action = Varchar(length=32)
    actor_id = Integer(null=True, default=None)
    actor_name = Varchar(length=200)
    at = Timestamptz(index=True)
    before = JSONB(null=True, default=None)
    after = JSONB(null=True, default=None)
    rfc = Varchar(length=32, null=True, default=None)
    unauthorized = Boolean(default=False, index=True)
    unauthorized_fields = JSONB(default="[]")
    comment = Text(default="")


class GraphRevisionTable(Table, tablename="graph_revision"):
    """One row: the revision of the CI graph. Every graph write bumps it in its transaction."""

    id = Integer(primary_key=True)
    revision = Integer(default=0)


class GraphLogTable(Table, tablename="graph_log"):
    """Append-only log of graph edits, read by every process to catch its cache up."""

    revision = Integer(primary_key=True)
    op = Varchar(length=16)
    ci_id = Integer(null=True, default=None)
    tenant_id = Integer(null=True, default=None)
    rel_id = Integer(null=True, default=None)
    source_id = Integer(null=True, default=None)
    target_id = Integer(null=True, default=None)
    type = Varchar(length=32, null=True, default=None)


class ChangeWindowTable(Table, tablename="change_window"):
    id = Serial(primary_key=True)
    tenant = ForeignKey(references=CustomerTable, on_delete=OnDelete.restrict, index=True, null=False)
    ci = ForeignKey(references=CITable, on_delete=OnDelete.cascade, null=True, default=None, index=True)
    name = Varchar(length=200)
    days = JSONB(default="[]")
    start = Varchar(length=5)
    duration_minutes = Integer()
    timezone = Varchar(length=64)


class BlackoutTable(Table, tablename="blackout"):
    id = Serial(primary_key=True)
    tenant = ForeignKey(references=CustomerTable, on_delete=OnDelete.restrict, index=True, null=False)
    ci = ForeignKey(references=CITable, on_delete=OnDelete.cascade, null=True, default=None, index=True)
    starts_at = Timestamptz()
    ends_at = Timestamptz()
    reason = Text(default="")


class KeySequenceTable(Table, tablename="key_sequence"):
    """Counters for human keys (RFC-2026-0042): one row per prefix and year."""

    name = Varchar(length=32, primary_key=True)
    last_value = Integer(default=0)


class SchedulerLeaseTable(Table, tablename="scheduler_lease"):
    """Who runs scheduled jobs: one holder at a time across all processes."""

    name = Varchar(length=64, primary_key=True)
    holder = Varchar(length=100)
    expires_at = Timestamptz()


class SignInAttemptTable(Table, tablename="sign_in_attempt"):
    """Consecutive failed sign-ins per username; a lock once they pile up."""

    username = Varchar(length=100, primary_key=True)
    failures = Integer(default=0)
    locked_until = Timestamptz(null=True, default=None)


class NotificationTable(Table, tablename="notification"):
    """A message to one person: their in-product inbox, and an email when SMTP is configured.
    `email_state` is the outbox: pending rows are sent by the scheduler, outside the
    transaction that created them, so a slow mail server never holds a database write."""

    id = Serial(primary_key=True)
    person = ForeignKey(references=PersonTable, on_delete=OnDelete.cascade, index=True, null=False)
    tenant = Integer(index=True)
    kind = Varchar(length=48)
    subject = Varchar(length=300)
    body = Text(default="")
    link = Varchar(length=300, default="")
    created_at = Timestamptz()
    read_at = Timestamptz(null=True, default=None)
    email_state = Varchar(length=16, default="none", index=True)
    emailed_at = Timestamptz(null=True, default=None)


class EscalationTable(Table, tablename="escalation"):
    """One row per escalation ever raised. The unique (subject_kind, subject_id, level) index
    is what makes an escalation happen exactly once, whichever process gets there first."""

    id = Serial(primary_key=True)
    subject_kind = Varchar(length=32)
    subject_id = Integer()
    level = Varchar(length=48)
    tenant = Integer(index=True)
    created_at = Timestamptz()
    detail = Text(default="")


CMDB_TABLES: list[type[Table]] = [
    CustomerTable,
    PersonTable,
    CredentialTable,
    CITable,
    CISupportTable,
    RelationshipTable,
    HistoryTable,
    GraphRevisionTable,
    GraphLogTable,
    ChangeWindowTable,
    BlackoutTable,
    KeySequenceTable,
    SchedulerLeaseTable,
    SignInAttemptTable,
    NotificationTable,
    EscalationTable,
]
