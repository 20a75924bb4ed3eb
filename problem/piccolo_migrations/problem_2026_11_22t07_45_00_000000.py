"""Monthly reports: a narrow index of the month's incidents per customer.

The report's month reads that need only which incidents were raised (minutes logged, CIs hit
repeatedly, releases followed, the notable few by priority) walked the wide covering index
`report_incident_month`, about 350 bytes an entry. This one holds (tenant, created_at,
priority, id), a seventh of that: a month of ten thousand incidents is a few dozen pages.
Created only when the incident table exists (the incident app's migrations run before) and
only if missing.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-22T07:45:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Monthly reports: narrow month index of incidents"

# (table, statement), the same on SQLite and PostgreSQL: run only when the table exists.
IF_TABLE = [
    (
        "incident",
        'CREATE INDEX IF NOT EXISTS report_incident_raised ON "incident" ("tenant", "created_at", "priority", "id")',
    ),
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="problem", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        sqlite = engine.engine_type == "sqlite"
        for table, statement in IF_TABLE:
            if sqlite:
                found = await engine.run_ddl(
                    f"SELECT name FROM sqlite_master WHERE type = 'table' AND name = '{table}'"
                )
            else:
                found = await engine.run_ddl(f"SELECT to_regclass('public.\"{table}\"') AS name")
                found = [row for row in found or [] if row["name"] is not None]
            if found:
                await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
