"""Failed sign-in attempts per username, shared by every worker, to slow password guessing."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-22T03:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Sign-in throttling"

SQLITE = (
    'CREATE TABLE "sign_in_attempt" ("username" VARCHAR(100) PRIMARY KEY NOT NULL, '
    '"failures" INTEGER NOT NULL DEFAULT 0, "locked_until" TIMESTAMPTZ DEFAULT null)'
)
POSTGRES = SQLITE


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="cmdb", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        await engine.run_ddl(SQLITE if engine.engine_type == "sqlite" else POSTGRES)

    manager.add_raw(run)
    return manager
