"""Piccolo tables of problem. Only `problem/repository.py` queries them."""

from __future__ import annotations

from piccolo.table import Table

TABLES: list[type[Table]] = []
