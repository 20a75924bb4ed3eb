"""Release management: releases, their RFCs, test evidence and deployments per CI.

Frozen DDL per dialect generated from release/tables.py on 2026-11-22 and reviewed by hand
(AUTOINCREMENT on SQLite so ids are never reused; an RFC joins a release once).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-22T05:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Release management"

SQLITE = [
    'CREATE TABLE "release" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "key" VARCHAR(20) UNIQUE NOT NULL '
    'DEFAULT \'\', "tenant" INTEGER NOT NULL REFERENCES "customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE '
    "DEFAULT null, \"title\" VARCHAR(300) NOT NULL DEFAULT '', \"description\" TEXT NOT NULL DEFAULT '', "
    '"state" VARCHAR(16) NOT NULL DEFAULT \'planned\', "test_environment" INTEGER REFERENCES "ci" ("id") ON '
    'DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "represents" JSONB NOT NULL DEFAULT \'[]\', "test_round" '
    'INTEGER NOT NULL DEFAULT 1, "created_by" INTEGER REFERENCES "person" ("id") ON DELETE SET NULL ON UPDATE '
    'CASCADE DEFAULT null, "approved_by" INTEGER REFERENCES "person" ("id") ON DELETE SET NULL ON UPDATE '
    'CASCADE DEFAULT null, "approved_at" TIMESTAMPTZ DEFAULT null, "deploy_started_at" TIMESTAMPTZ DEFAULT '
    'null, "deployed_at" TIMESTAMPTZ DEFAULT null, "backed_out_at" TIMESTAMPTZ DEFAULT null, "backout_reason" '
    'TEXT NOT NULL DEFAULT \'\', "watch_days" INTEGER NOT NULL DEFAULT 7, "watch_until" TIMESTAMPTZ DEFAULT '
    'null, "version" INTEGER NOT NULL DEFAULT 1, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
    '"updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)',
    'CREATE INDEX release_tenant ON "release" ("tenant")',
    'CREATE INDEX release_state ON "release" ("state")',
    'CREATE INDEX release_watch_until ON "release" ("watch_until")',
    'CREATE TABLE "release_rfc" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "release" INTEGER NOT NULL '
    'REFERENCES "release" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "rfc" INTEGER NOT NULL '
    'REFERENCES "rfc" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "added_at" TIMESTAMPTZ NOT NULL '
    "DEFAULT current_timestamp)",
    'CREATE INDEX release_rfc_release ON "release_rfc" ("release")',
    'CREATE INDEX release_rfc_rfc ON "release_rfc" ("rfc")',
    'CREATE TABLE "release_test" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "release" INTEGER NOT NULL '
    'REFERENCES "release" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "round" INTEGER NOT NULL '
    'DEFAULT 1, "name" VARCHAR(300) NOT NULL DEFAULT \'\', "result" VARCHAR(16) NOT NULL DEFAULT \'\', "covers" '
    "JSONB NOT NULL DEFAULT '[]', \"negative_effects\" TEXT NOT NULL DEFAULT '', \"recorded_by\" INTEGER "
    'REFERENCES "person" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "recorded_at" TIMESTAMPTZ '
    'NOT NULL DEFAULT current_timestamp, "review" VARCHAR(16) DEFAULT null, "review_justification" TEXT NOT '
    'NULL DEFAULT \'\', "reviewed_by" INTEGER REFERENCES "person" ("id") ON DELETE SET NULL ON UPDATE CASCADE '
    'DEFAULT null, "reviewed_at" TIMESTAMPTZ DEFAULT null)',
    'CREATE INDEX release_test_release ON "release_test" ("release")',
    'CREATE TABLE "deployment" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "release" INTEGER NOT NULL '
    'REFERENCES "release" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "tenant" INTEGER NOT NULL '
    'REFERENCES "customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "ci" INTEGER NOT NULL '
    'REFERENCES "ci" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "rfc" INTEGER REFERENCES "rfc" '
    '("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "version" VARCHAR(300) NOT NULL DEFAULT \'\', '
    '"deployed_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "deployed_by" INTEGER REFERENCES "person" '
    '("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "outcome" VARCHAR(16) NOT NULL DEFAULT '
    "'deployed')",
    'CREATE INDEX deployment_release ON "deployment" ("release")',
    'CREATE INDEX deployment_ci ON "deployment" ("ci")',
]

POSTGRES = [
    'CREATE TABLE "release" ("id" SERIAL PRIMARY KEY NOT NULL, "key" VARCHAR(20) UNIQUE NOT NULL DEFAULT \'\', '
    '"tenant" INTEGER NOT NULL REFERENCES "customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, '
    '"title" VARCHAR(300) NOT NULL DEFAULT \'\', "description" TEXT NOT NULL DEFAULT \'\', "state" VARCHAR(16) '
    'NOT NULL DEFAULT \'planned\', "test_environment" INTEGER REFERENCES "ci" ("id") ON DELETE RESTRICT ON '
    'UPDATE CASCADE DEFAULT null, "represents" JSONB NOT NULL DEFAULT \'[]\', "test_round" INTEGER NOT NULL '
    'DEFAULT 1, "created_by" INTEGER REFERENCES "person" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT '
    'null, "approved_by" INTEGER REFERENCES "person" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, '
    '"approved_at" TIMESTAMPTZ DEFAULT null, "deploy_started_at" TIMESTAMPTZ DEFAULT null, "deployed_at" '
    'TIMESTAMPTZ DEFAULT null, "backed_out_at" TIMESTAMPTZ DEFAULT null, "backout_reason" TEXT NOT NULL DEFAULT '
    '\'\', "watch_days" INTEGER NOT NULL DEFAULT 7, "watch_until" TIMESTAMPTZ DEFAULT null, "version" INTEGER '
    'NOT NULL DEFAULT 1, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "updated_at" TIMESTAMPTZ '
    "NOT NULL DEFAULT current_timestamp)",
    'CREATE INDEX release_tenant ON "release" USING btree ("tenant")',
    'CREATE INDEX release_state ON "release" USING btree ("state")',
    'CREATE INDEX release_watch_until ON "release" USING btree ("watch_until")',
    'CREATE TABLE "release_rfc" ("id" SERIAL PRIMARY KEY NOT NULL, "release" INTEGER NOT NULL REFERENCES '
    '"release" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "rfc" INTEGER NOT NULL REFERENCES "rfc" '
    '("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "added_at" TIMESTAMPTZ NOT NULL DEFAULT '
    "current_timestamp)",
    'CREATE INDEX release_rfc_release ON "release_rfc" USING btree ("release")',
    'CREATE INDEX release_rfc_rfc ON "release_rfc" USING btree ("rfc")',
    'CREATE TABLE "release_test" ("id" SERIAL PRIMARY KEY NOT NULL, "release" INTEGER NOT NULL REFERENCES '
    '"release" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "round" INTEGER NOT NULL DEFAULT 1, '
    '"name" VARCHAR(300) NOT NULL DEFAULT \'\', "result" VARCHAR(16) NOT NULL DEFAULT \'\', "covers" JSONB NOT '
    "NULL DEFAULT '[]', \"negative_effects\" TEXT NOT NULL DEFAULT '', \"recorded_by\" INTEGER REFERENCES "
    '"person" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "recorded_at" TIMESTAMPTZ NOT NULL '
    'DEFAULT current_timestamp, "review" VARCHAR(16) DEFAULT null, "review_justification" TEXT NOT NULL DEFAULT '
    '\'\', "reviewed_by" INTEGER REFERENCES "person" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, '
    '"reviewed_at" TIMESTAMPTZ DEFAULT null)',
    'CREATE INDEX release_test_release ON "release_test" USING btree ("release")',
    'CREATE TABLE "deployment" ("id" SERIAL PRIMARY KEY NOT NULL, "release" INTEGER NOT NULL REFERENCES '
    '"release" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "tenant" INTEGER NOT NULL REFERENCES '
    '"customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "ci" INTEGER NOT NULL REFERENCES "ci" '
    '("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "rfc" INTEGER REFERENCES "rfc" ("id") ON DELETE '
    'SET NULL ON UPDATE CASCADE DEFAULT null, "version" VARCHAR(300) NOT NULL DEFAULT \'\', "deployed_at" '
    'TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "deployed_by" INTEGER REFERENCES "person" ("id") ON DELETE '
    "SET NULL ON UPDATE CASCADE DEFAULT null, \"outcome\" VARCHAR(16) NOT NULL DEFAULT 'deployed')",
    'CREATE INDEX deployment_release ON "deployment" USING btree ("release")',
    'CREATE INDEX deployment_ci ON "deployment" USING btree ("ci")',
]

BOTH = [
    'CREATE UNIQUE INDEX release_rfc_pair ON "release_rfc" ("release", "rfc")',
    'CREATE INDEX release_tenant_state ON "release" ("tenant", "state")',
    'CREATE INDEX deployment_ci_at ON "deployment" ("ci", "deployed_at")',
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
