"""CMDB: tenants, people and credentials, CIs and relationships, history, the graph log,
change windows, blackouts, key sequences and the scheduler lease.

Frozen DDL per dialect, generated from cmdb/tables.py on 2026-11-22 and reviewed by hand:
SQLite ids use AUTOINCREMENT so a deleted relationship's id is never reused (history and the
graph log refer to ids); CI names are unique per tenant; an edge is unique per type.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-22T00:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "CMDB foundation"

SQLITE = ['CREATE TABLE "customer" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "key" VARCHAR(32) UNIQUE NOT '
 'NULL DEFAULT \'\', "name" VARCHAR(200) NOT NULL DEFAULT \'\', "is_provider" BOOLEAN NOT NULL DEFAULT '
 'false, "timezone" VARCHAR(64) NOT NULL DEFAULT \'UTC\', "holiday_region" VARCHAR(16) DEFAULT null, '
 '"calendar" JSONB NOT NULL DEFAULT \'{}\', "sla" JSONB NOT NULL DEFAULT \'{}\', "version" INTEGER NOT NULL '
 'DEFAULT 1, "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL '
 'DEFAULT current_timestamp)',
 'CREATE TABLE "person" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "username" VARCHAR(100) UNIQUE NOT '
 'NULL DEFAULT \'\', "name" VARCHAR(200) NOT NULL DEFAULT \'\', "tenant" INTEGER NOT NULL REFERENCES '
 '"customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "roles" JSONB NOT NULL DEFAULT '
 '\'[]\', "email" VARCHAR(200) DEFAULT null, "phone" VARCHAR(50) DEFAULT null, "availability" VARCHAR(200) '
 'DEFAULT null, "expertise" JSONB NOT NULL DEFAULT \'[]\', "password_hash" VARCHAR(200) DEFAULT null, '
 '"active" BOOLEAN NOT NULL DEFAULT true, "version" INTEGER NOT NULL DEFAULT 1, "created_at" TIMESTAMPTZ NOT '
 'NULL DEFAULT current_timestamp)',
 'CREATE INDEX person_tenant ON "person" ("tenant")',
 'CREATE TABLE "credential" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "token_hash" VARCHAR(64) '
 'UNIQUE NOT NULL DEFAULT \'\', "person" INTEGER NOT NULL REFERENCES "person" ("id") ON DELETE CASCADE ON '
 'UPDATE CASCADE DEFAULT null, "kind" VARCHAR(16) NOT NULL DEFAULT \'\', "created_at" TIMESTAMPTZ NOT NULL '
 'DEFAULT current_timestamp, "expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)',
 'CREATE INDEX credential_person ON "credential" ("person")',
 'CREATE TABLE "ci" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "tenant" INTEGER NOT NULL REFERENCES '
 '"customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "name" VARCHAR(200) NOT NULL DEFAULT '
 '\'\', "ci_class" VARCHAR(32) NOT NULL DEFAULT \'\', "status" VARCHAR(16) NOT NULL DEFAULT \'\', '
 '"criticality" VARCHAR(16) NOT NULL DEFAULT \'medium\', "description" TEXT NOT NULL DEFAULT \'\', "owner" '
 'INTEGER REFERENCES "person" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "attributes" JSONB '
 'NOT NULL DEFAULT \'{}\', "version" INTEGER NOT NULL DEFAULT 1, "created_at" TIMESTAMPTZ NOT NULL DEFAULT '
 'current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)',
 'CREATE INDEX ci_tenant ON "ci" ("tenant")',
 'CREATE INDEX ci_ci_class ON "ci" ("ci_class")',
 'CREATE INDEX ci_status ON "ci" ("status")',
 'CREATE TABLE "ci_support" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "ci" INTEGER NOT NULL '
 'REFERENCES "ci" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "person" INTEGER NOT NULL '
 'REFERENCES "person" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "role" VARCHAR(16) NOT NULL '
 "DEFAULT 'support')",
 'CREATE INDEX ci_support_ci ON "ci_support" ("ci")',
 'CREATE INDEX ci_support_person ON "ci_support" ("person")',
 'CREATE TABLE "relationship" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "tenant" INTEGER NOT NULL '
 'REFERENCES "customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "source" INTEGER NOT NULL '
 'REFERENCES "ci" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "target" INTEGER NOT NULL '
 'REFERENCES "ci" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "type" VARCHAR(32) NOT NULL '
 'DEFAULT \'\', "note" TEXT NOT NULL DEFAULT \'\', "created_at" TIMESTAMPTZ NOT NULL DEFAULT '
 'current_timestamp)',
 'CREATE INDEX relationship_tenant ON "relationship" ("tenant")',
 'CREATE INDEX relationship_source ON "relationship" ("source")',
 'CREATE INDEX relationship_target ON "relationship" ("target")',
 'CREATE TABLE "history" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "tenant" INTEGER NOT NULL DEFAULT '
 '0, "entity" VARCHAR(32) NOT NULL DEFAULT \'\', "entity_id" INTEGER NOT NULL DEFAULT 0, "ci_id" INTEGER '
 'DEFAULT null, "other_ci_id" INTEGER DEFAULT null, "action" VARCHAR(32) NOT NULL DEFAULT \'\', "actor_id" '
 'INTEGER DEFAULT null, "actor_name" VARCHAR(200) NOT NULL DEFAULT \'\', "at" TIMESTAMPTZ NOT NULL DEFAULT '
 'current_timestamp, "before" JSONB DEFAULT null, "after" JSONB DEFAULT null, "rfc" VARCHAR(32) DEFAULT '
 'null, "unauthorized" BOOLEAN NOT NULL DEFAULT false, "unauthorized_fields" JSONB NOT NULL DEFAULT \'[]\', '
 '"comment" TEXT NOT NULL DEFAULT \'\')',
 'CREATE INDEX history_tenant ON "history" ("tenant")',
 'CREATE INDEX history_ci_id ON "history" ("ci_id")',
 'CREATE INDEX history_other_ci_id ON "history" ("other_ci_id")',
 'CREATE INDEX history_at ON "history" ("at")',
 'CREATE INDEX history_unauthorized ON "history" ("unauthorized")',
 'CREATE TABLE "graph_revision" ("id" INTEGER PRIMARY KEY NOT NULL DEFAULT 0, "revision" INTEGER NOT NULL '
 'DEFAULT 0)',
 'CREATE TABLE "graph_log" ("revision" INTEGER PRIMARY KEY NOT NULL DEFAULT 0, "op" VARCHAR(16) NOT NULL '
 'DEFAULT \'\', "ci_id" INTEGER DEFAULT null, "tenant_id" INTEGER DEFAULT null, "rel_id" INTEGER DEFAULT '
 'null, "source_id" INTEGER DEFAULT null, "target_id" INTEGER DEFAULT null, "type" VARCHAR(32) DEFAULT null)',
 'CREATE TABLE "change_window" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "tenant" INTEGER NOT NULL '
 'REFERENCES "customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "ci" INTEGER REFERENCES '
 '"ci" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "name" VARCHAR(200) NOT NULL DEFAULT \'\', '
 '"days" JSONB NOT NULL DEFAULT \'[]\', "start" VARCHAR(5) NOT NULL DEFAULT \'\', "duration_minutes" INTEGER '
 'NOT NULL DEFAULT 0, "timezone" VARCHAR(64) NOT NULL DEFAULT \'\')',
 'CREATE INDEX change_window_tenant ON "change_window" ("tenant")',
 'CREATE INDEX change_window_ci ON "change_window" ("ci")',
 'CREATE TABLE "blackout" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "tenant" INTEGER NOT NULL '
 'REFERENCES "customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "ci" INTEGER REFERENCES '
 '"ci" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "starts_at" TIMESTAMPTZ NOT NULL DEFAULT '
 'current_timestamp, "ends_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "reason" TEXT NOT NULL '
 "DEFAULT '')",
 'CREATE INDEX blackout_tenant ON "blackout" ("tenant")',
 'CREATE INDEX blackout_ci ON "blackout" ("ci")',
 'CREATE TABLE "key_sequence" ("name" VARCHAR(32) PRIMARY KEY NOT NULL DEFAULT \'\', "last_value" INTEGER '
 'NOT NULL DEFAULT 0)',
 'CREATE TABLE "scheduler_lease" ("name" VARCHAR(64) PRIMARY KEY NOT NULL DEFAULT \'\', "holder" '
 'VARCHAR(100) NOT NULL DEFAULT \'\', "expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)']

POSTGRES = ['CREATE TABLE "customer" ("id" SERIAL PRIMARY KEY NOT NULL, "key" VARCHAR(32) UNIQUE NOT NULL DEFAULT \'\', '
 '"name" VARCHAR(200) NOT NULL DEFAULT \'\', "is_provider" BOOLEAN NOT NULL DEFAULT false, "timezone" '
 'VARCHAR(64) NOT NULL DEFAULT \'UTC\', "holiday_region" VARCHAR(16) DEFAULT null, "calendar" JSONB NOT NULL '
 'DEFAULT \'{}\', "sla" JSONB NOT NULL DEFAULT \'{}\', "version" INTEGER NOT NULL DEFAULT 1, "created_at" '
 'TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT '
 'current_timestamp)',
 'CREATE TABLE "person" ("id" SERIAL PRIMARY KEY NOT NULL, "username" VARCHAR(100) UNIQUE NOT NULL DEFAULT '
 '\'\', "name" VARCHAR(200) NOT NULL DEFAULT \'\', "tenant" INTEGER NOT NULL REFERENCES "customer" ("id") ON '
 'DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "roles" JSONB NOT NULL DEFAULT \'[]\', "email" '
 'VARCHAR(200) DEFAULT null, "phone" VARCHAR(50) DEFAULT null, "availability" VARCHAR(200) DEFAULT null, '
 '"expertise" JSONB NOT NULL DEFAULT \'[]\', "password_hash" VARCHAR(200) DEFAULT null, "active" BOOLEAN NOT '
 'NULL DEFAULT true, "version" INTEGER NOT NULL DEFAULT 1, "created_at" TIMESTAMPTZ NOT NULL DEFAULT '
 'current_timestamp)',
 'CREATE INDEX person_tenant ON "person" USING btree ("tenant")',
 'CREATE TABLE "credential" ("id" SERIAL PRIMARY KEY NOT NULL, "token_hash" VARCHAR(64) UNIQUE NOT NULL '
 'DEFAULT \'\', "person" INTEGER NOT NULL REFERENCES "person" ("id") ON DELETE CASCADE ON UPDATE CASCADE '
 'DEFAULT null, "kind" VARCHAR(16) NOT NULL DEFAULT \'\', "created_at" TIMESTAMPTZ NOT NULL DEFAULT '
 'current_timestamp, "expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)',
 'CREATE INDEX credential_person ON "credential" USING btree ("person")',
 'CREATE TABLE "ci" ("id" SERIAL PRIMARY KEY NOT NULL, "tenant" INTEGER NOT NULL REFERENCES "customer" '
 '("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "name" VARCHAR(200) NOT NULL DEFAULT \'\', '
 '"ci_class" VARCHAR(32) NOT NULL DEFAULT \'\', "status" VARCHAR(16) NOT NULL DEFAULT \'\', "criticality" '
 'VARCHAR(16) NOT NULL DEFAULT \'medium\', "description" TEXT NOT NULL DEFAULT \'\', "owner" INTEGER '
 'REFERENCES "person" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "attributes" JSONB NOT NULL '
 'DEFAULT \'{}\', "version" INTEGER NOT NULL DEFAULT 1, "created_at" TIMESTAMPTZ NOT NULL DEFAULT '
 'current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)',
 'CREATE INDEX ci_tenant ON "ci" USING btree ("tenant")',
 'CREATE INDEX ci_ci_class ON "ci" USING btree ("ci_class")',
 'CREATE INDEX ci_status ON "ci" USING btree ("status")',
 'CREATE TABLE "ci_support" ("id" SERIAL PRIMARY KEY NOT NULL, "ci" INTEGER NOT NULL REFERENCES "ci" ("id") '
 'ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "person" INTEGER NOT NULL REFERENCES "person" ("id") ON '
 'DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "role" VARCHAR(16) NOT NULL DEFAULT \'support\')',
 'CREATE INDEX ci_support_ci ON "ci_support" USING btree ("ci")',
 'CREATE INDEX ci_support_person ON "ci_support" USING btree ("person")',
 'CREATE TABLE "relationship" ("id" SERIAL PRIMARY KEY NOT NULL, "tenant" INTEGER NOT NULL REFERENCES '
 '"customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "source" INTEGER NOT NULL REFERENCES '
 '"ci" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "target" INTEGER NOT NULL REFERENCES "ci" '
 '("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "type" VARCHAR(32) NOT NULL DEFAULT \'\', "note" '
 'TEXT NOT NULL DEFAULT \'\', "created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)',
 'CREATE INDEX relationship_tenant ON "relationship" USING btree ("tenant")',
 'CREATE INDEX relationship_source ON "relationship" USING btree ("source")',
 'CREATE INDEX relationship_target ON "relationship" USING btree ("target")',
 'CREATE TABLE "history" ("id" SERIAL PRIMARY KEY NOT NULL, "tenant" INTEGER NOT NULL DEFAULT 0, "entity" '
 'VARCHAR(32) NOT NULL DEFAULT \'\', "entity_id" INTEGER NOT NULL DEFAULT 0, "ci_id" INTEGER DEFAULT null, '
 '"other_ci_id" INTEGER DEFAULT null, "action" VARCHAR(32) NOT NULL DEFAULT \'\', "actor_id" INTEGER DEFAULT '
 'null, "actor_name" VARCHAR(200) NOT NULL DEFAULT \'\', "at" TIMESTAMPTZ NOT NULL DEFAULT '
 'current_timestamp, "before" JSONB DEFAULT null, "after" JSONB DEFAULT null, "rfc" VARCHAR(32) DEFAULT '
 'null, "unauthorized" BOOLEAN NOT NULL DEFAULT false, "unauthorized_fields" JSONB NOT NULL DEFAULT \'[]\', '
 '"comment" TEXT NOT NULL DEFAULT \'\')',
 'CREATE INDEX history_tenant ON "history" USING btree ("tenant")',
 'CREATE INDEX history_ci_id ON "history" USING btree ("ci_id")',
 'CREATE INDEX history_other_ci_id ON "history" USING btree ("other_ci_id")',
 'CREATE INDEX history_at ON "history" USING btree ("at")',
 'CREATE INDEX history_unauthorized ON "history" USING btree ("unauthorized")',
 'CREATE TABLE "graph_revision" ("id" INTEGER PRIMARY KEY NOT NULL DEFAULT 0, "revision" INTEGER NOT NULL '
 'DEFAULT 0)',
 'CREATE TABLE "graph_log" ("revision" INTEGER PRIMARY KEY NOT NULL DEFAULT 0, "op" VARCHAR(16) NOT NULL '
 'DEFAULT \'\', "ci_id" INTEGER DEFAULT null, "tenant_id" INTEGER DEFAULT null, "rel_id" INTEGER DEFAULT '
 'null, "source_id" INTEGER DEFAULT null, "target_id" INTEGER DEFAULT null, "type" VARCHAR(32) DEFAULT null)',
 'CREATE TABLE "change_window" ("id" SERIAL PRIMARY KEY NOT NULL, "tenant" INTEGER NOT NULL REFERENCES '
 '"customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "ci" INTEGER REFERENCES "ci" ("id") '
 'ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "name" VARCHAR(200) NOT NULL DEFAULT \'\', "days" JSONB '
 'NOT NULL DEFAULT \'[]\', "start" VARCHAR(5) NOT NULL DEFAULT \'\', "duration_minutes" INTEGER NOT NULL '
 'DEFAULT 0, "timezone" VARCHAR(64) NOT NULL DEFAULT \'\')',
 'CREATE INDEX change_window_tenant ON "change_window" USING btree ("tenant")',
 'CREATE INDEX change_window_ci ON "change_window" USING btree ("ci")',
 'CREATE TABLE "blackout" ("id" SERIAL PRIMARY KEY NOT NULL, "tenant" INTEGER NOT NULL REFERENCES "customer" '
 '("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "ci" INTEGER REFERENCES "ci" ("id") ON DELETE '
 'CASCADE ON UPDATE CASCADE DEFAULT null, "starts_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
 '"ends_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "reason" TEXT NOT NULL DEFAULT \'\')',
 'CREATE INDEX blackout_tenant ON "blackout" USING btree ("tenant")',
 'CREATE INDEX blackout_ci ON "blackout" USING btree ("ci")',
 'CREATE TABLE "key_sequence" ("name" VARCHAR(32) PRIMARY KEY NOT NULL DEFAULT \'\', "last_value" INTEGER '
 'NOT NULL DEFAULT 0)',
 'CREATE TABLE "scheduler_lease" ("name" VARCHAR(64) PRIMARY KEY NOT NULL DEFAULT \'\', "holder" '
 'VARCHAR(100) NOT NULL DEFAULT \'\', "expires_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)']

BOTH = ['CREATE UNIQUE INDEX ci_tenant_name ON "ci" ("tenant", "name")',
 'CREATE UNIQUE INDEX relationship_edge ON "relationship" ("source", "target", "type")',
 'CREATE INDEX history_entity ON "history" ("entity", "entity_id")',
 'CREATE INDEX history_tenant_at ON "history" ("tenant", "at")',
 'INSERT INTO "graph_revision" ("id", "revision") VALUES (1, 0)']


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="cmdb", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        statements = SQLITE if engine.engine_type == "sqlite" else POSTGRES
        for statement in [*statements, *BOTH]:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
