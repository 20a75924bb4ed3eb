"""Piccolo tables of monitoring alerts. Only `incident/alerts_repository.py` queries them.

Incident ids are plain integers, not foreign keys: the alert tables live beside the incident
tables without depending on their migration, and an alert outlives any clean-up of incidents.
"""

from __future__ import annotations

from piccolo.columns import Boolean, DoublePrecision, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.table import Table


class AlertTable(Table, tablename="alert"):
    """Every alert received, breached or not: the monthly report counts them and what they caused."""

    id = Serial(primary_key=True)
    tenant = Integer()
    ci = Integer(index=True)
    metric = Varchar(length=32)
    value = Text(default="")
    duration_s = DoublePrecision(null=True, default=None)
    message = Text(default="")
    observed_at = Timestamptz()
    received_at = Timestamptz()
    breached = Boolean(default=False)
    incident = Integer(null=True, default=None, index=True)
    outcome = Varchar(length=16, default="ignored")


class AlertOpenTable(Table, tablename="alert_open"):
    """The incident an alert on one (CI, metric) last opened. Its unique (ci, metric) index is
    the claim that lets exactly one of many concurrent identical alerts open the incident."""

    id = Serial(primary_key=True)
    tenant = Integer(index=True)
    ci = Integer()
    metric = Varchar(length=32)
    incident = Integer(null=True, default=None, index=True)
    incident_key = Varchar(length=32, default="")
    opened_at = Timestamptz()
    # When the incident's timeline last heard of this alert (its opening, or a repeat noted).
    noted_at = Timestamptz(null=True, default=None)


TABLES: list[type[Table]] = [AlertTable, AlertOpenTable]
