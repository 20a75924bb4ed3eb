"""Piccolo tables of problem. Only `problem/repository.py` queries them.

Incident and release ids are plain integers, not foreign keys: those tables belong to other
packages and their migrations; the repository checks the references when it writes them.
"""

from __future__ import annotations

from piccolo.columns import Boolean, ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table

from change.tables import RFCTable
from cmdb.tables import CITable, CustomerTable, PersonTable


class ProblemTable(Table, tablename="problem"):
    id = Serial(primary_key=True)
    key = Varchar(length=20, unique=True)
    tenant = ForeignKey(references=CustomerTable, on_delete=OnDelete.restrict, index=True, null=False)
    title = Varchar(length=300)
    description = Text(default="")
    status = Varchar(length=24, default="open", index=True)
    origin = Varchar(length=16, default="manual")
    root_cause = Text(default="")
    workaround = Text(default="")
    known_error = Boolean(default=False)
    rfc = ForeignKey(references=RFCTable, on_delete=OnDelete.set_null, null=True, default=None)
    resolution = Text(default="")
    # The release whose incident spike proposed this problem: one proposal per release, ever.
    source_release = Integer(null=True, default=None, unique=True)
    created_by = ForeignKey(references=PersonTable, on_delete=OnDelete.set_null, null=True, default=None)
    version = Integer(default=1)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class ProblemIncidentTable(Table, tablename="problem_incident"):
    id = Serial(primary_key=True)
    problem = ForeignKey(references=ProblemTable, on_delete=OnDelete.cascade, index=True, null=False)
    incident = Integer(index=True)


class ProblemCITable(Table, tablename="problem_ci"):
    id = Serial(primary_key=True)
    problem = ForeignKey(references=ProblemTable, on_delete=OnDelete.cascade, index=True, null=False)
    ci = ForeignKey(references=CITable, on_delete=OnDelete.restrict, index=True, null=False)


TABLES: list[type[Table]] = [ProblemTable, ProblemIncidentTable, ProblemCITable]
