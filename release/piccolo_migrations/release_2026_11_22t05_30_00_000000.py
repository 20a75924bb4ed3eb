"""One active release per RFC, guaranteed by the database.

`release_rfc.active` is true while the release holds the RFC (any state but backed_out and
cancelled; the repository clears it when the release reaches one of those). The partial unique
index lets at most one active row per RFC exist, so two simultaneous `add-rfc` of one RFC to
two releases cannot both commit, on PostgreSQL as on SQLite. Rows of closed releases stay as
history. Frozen DDL written by hand for both dialects.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-22T05:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "One active release per RFC"

SQLITE = [
    'ALTER TABLE "release_rfc" ADD COLUMN "active" BOOLEAN NOT NULL DEFAULT 1',
]

POSTGRES = [
    'ALTER TABLE "release_rfc" ADD COLUMN "active" BOOLEAN NOT NULL DEFAULT true',
]

BOTH = [
    'UPDATE "release_rfc" SET "active" = (1 = 0) WHERE "release" IN '
    '(SELECT "id" FROM "release" WHERE "state" IN (\'backed_out\', \'cancelled\'))',
    # Should an RFC already sit in two active releases (the race this closes), the later rows
    # step aside rather than fail the migration; the release pages still list them.
    'UPDATE "release_rfc" SET "active" = (1 = 0) WHERE "active" AND EXISTS (SELECT 1 FROM "release_rfc" older '
    'WHERE older."rfc" = "release_rfc"."rfc" AND older."active" AND older."id" < "release_rfc"."id")',
    'CREATE UNIQUE INDEX release_rfc_one_active ON "release_rfc" ("rfc") WHERE "active"',
]


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="release", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        statements = SQLITE if engine.engine_type == "sqlite" else POSTGRES
        for statement in [*statements, *BOTH]:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
