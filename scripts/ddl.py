"""Print the frozen CREATE TABLE/INDEX statements of Piccolo tables for a hand-written migration.

    .venv/bin/python scripts/ddl.py release.tables:ReleaseTable release.tables:ReleaseRFCTable

Prints `SQLITE = [...]` and `POSTGRES = [...]` ready to paste into a migration that runs them
through `manager.add_raw` (see cmdb/piccolo_migrations). SQLite ids get AUTOINCREMENT so a
deleted row's id is never reused; add unique and composite indexes by hand in a `BOTH` list.
"""

from __future__ import annotations

import importlib
import pprint
import sys

from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine


def statements(tables: list[type], engine: object) -> list[str]:
    out: list[str] = []
    for table in tables:
        table._meta.db = engine  # type: ignore[attr-defined]
        ddl = table.create_table().ddl  # type: ignore[attr-defined]
        out.extend(ddl if isinstance(ddl, list) else [ddl])
    if isinstance(engine, SQLiteEngine):
        out = [
            s.replace('"id" INTEGER PRIMARY KEY NOT NULL,', '"id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,')
            for s in out
        ]
    return out


def main(argv: list[str]) -> None:
    tables = []
    for spec in argv:
        module, name = spec.split(":")
        tables.append(getattr(importlib.import_module(module), name))
    print("SQLITE = " + pprint.pformat(statements(tables, SQLiteEngine(path="/tmp/ddl.sqlite")), width=110))
    print()
    print("POSTGRES = " + pprint.pformat(statements(tables, PostgresEngine(config={})), width=110))


if __name__ == "__main__":
    main(sys.argv[1:])
