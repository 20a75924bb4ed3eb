"""Piccolo tables of monitoring alerts. Only `incident/alerts_repository.py` queries them."""

from __future__ import annotations

from piccolo.table import Table

TABLES: list[type[Table]] = []
