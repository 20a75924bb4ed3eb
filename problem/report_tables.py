"""Piccolo table of issued monthly reports. Only `problem/reports.py` queries it.

A report, once issued, is frozen: `data` holds the whole report as it was computed at
`issued_at`, so later edits to incidents or RFCs never shift what the customer was sent.
"""

from __future__ import annotations

from piccolo.columns import JSONB, ForeignKey, OnDelete, Serial, Timestamptz, Varchar
from piccolo.table import Table

from cmdb.tables import CustomerTable


class MonthlyReportTable(Table, tablename="monthly_report"):
    id = Serial(primary_key=True)
    tenant = ForeignKey(references=CustomerTable, on_delete=OnDelete.restrict, index=True, null=False)
    month = Varchar(length=7)  # "YYYY-MM", in the customer's time zone
    issued_at = Timestamptz()
    issued_by = Varchar(length=150, default="")
    data = JSONB(default="{}")


REPORT_TABLES: list[type[Table]] = [MonthlyReportTable]
