"""Change management: RFCs, their affected CIs and committee votes.

Frozen DDL per dialect generated from change/tables.py on 2026-11-22 and reviewed by hand
(AUTOINCREMENT on SQLite so ids are never reused; one vote per member and RFC).
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-22T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Change management"

SQLITE = ['CREATE TABLE "rfc" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "key" VARCHAR(20) UNIQUE NOT NULL '
 'DEFAULT \'\', "tenant" INTEGER NOT NULL REFERENCES "customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE '
 'DEFAULT null, "title" VARCHAR(300) NOT NULL DEFAULT \'\', "type" VARCHAR(16) NOT NULL DEFAULT \'normal\', '
 '"state" VARCHAR(24) NOT NULL DEFAULT \'draft\', "priority" VARCHAR(16) NOT NULL DEFAULT \'medium\', '
 '"origin" VARCHAR(16) NOT NULL DEFAULT \'internal\', "origin_ref" VARCHAR(40) DEFAULT null, "originator" '
 'INTEGER REFERENCES "person" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "need" TEXT NOT NULL '
 'DEFAULT \'\', "desired_result" TEXT NOT NULL DEFAULT \'\', "affected_people" JSONB NOT NULL DEFAULT '
 '\'[]\', "plan" TEXT NOT NULL DEFAULT \'\', "backout_plan" TEXT NOT NULL DEFAULT \'\', "deadline" '
 'TIMESTAMPTZ DEFAULT null, "cost" VARCHAR(32) DEFAULT null, "budget" VARCHAR(32) DEFAULT null, '
 '"customer_ref" VARCHAR(100) DEFAULT null, "refers_to" VARCHAR(20) DEFAULT null, "template" VARCHAR(100) '
 'DEFAULT null, "planned_start" TIMESTAMPTZ DEFAULT null, "planned_end" TIMESTAMPTZ DEFAULT null, '
 '"release_requirements" JSONB NOT NULL DEFAULT \'[]\', "impact_frozen" BOOLEAN NOT NULL DEFAULT false, '
 '"impact" JSONB DEFAULT null, "impact_adjustments" JSONB NOT NULL DEFAULT \'[]\', '
 '"post_implementation_review_required" BOOLEAN NOT NULL DEFAULT false, "emergency_reason" TEXT NOT NULL '
 'DEFAULT \'\', "customer_approval_required" BOOLEAN NOT NULL DEFAULT false, "customer_approved_by" INTEGER '
 'DEFAULT null, "patch_components" JSONB NOT NULL DEFAULT \'[]\', "vulnerability" TEXT NOT NULL DEFAULT '
 '\'\', "patch_description" TEXT NOT NULL DEFAULT \'\', "urgency" VARCHAR(24) DEFAULT null, "available_at" '
 'TIMESTAMPTZ DEFAULT null, "proposed_deployment" TIMESTAMPTZ DEFAULT null, "testing_done" TEXT NOT NULL '
 'DEFAULT \'\', "version" INTEGER NOT NULL DEFAULT 1, "created_at" TIMESTAMPTZ NOT NULL DEFAULT '
 'current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)',
 'CREATE INDEX rfc_tenant ON "rfc" ("tenant")',
 'CREATE INDEX rfc_state ON "rfc" ("state")',
 'CREATE INDEX rfc_planned_start ON "rfc" ("planned_start")',
 'CREATE TABLE "rfc_ci" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "rfc" INTEGER NOT NULL REFERENCES '
 '"rfc" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "ci" INTEGER NOT NULL REFERENCES "ci" '
 '("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null)',
 'CREATE INDEX rfc_ci_rfc ON "rfc_ci" ("rfc")',
 'CREATE INDEX rfc_ci_ci ON "rfc_ci" ("ci")',
 'CREATE TABLE "rfc_vote" ("id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "rfc" INTEGER NOT NULL '
 'REFERENCES "rfc" ("id") ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "member" INTEGER NOT NULL '
 'REFERENCES "person" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "vote" VARCHAR(16) NOT NULL '
 'DEFAULT \'\', "comment" TEXT NOT NULL DEFAULT \'\', "at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)',
 'CREATE INDEX rfc_vote_rfc ON "rfc_vote" ("rfc")']

POSTGRES = ['CREATE TABLE "rfc" ("id" SERIAL PRIMARY KEY NOT NULL, "key" VARCHAR(20) UNIQUE NOT NULL DEFAULT \'\', '
 '"tenant" INTEGER NOT NULL REFERENCES "customer" ("id") ON DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, '
 '"title" VARCHAR(300) NOT NULL DEFAULT \'\', "type" VARCHAR(16) NOT NULL DEFAULT \'normal\', "state" '
 'VARCHAR(24) NOT NULL DEFAULT \'draft\', "priority" VARCHAR(16) NOT NULL DEFAULT \'medium\', "origin" '
 'VARCHAR(16) NOT NULL DEFAULT \'internal\', "origin_ref" VARCHAR(40) DEFAULT null, "originator" INTEGER '
 'REFERENCES "person" ("id") ON DELETE SET NULL ON UPDATE CASCADE DEFAULT null, "need" TEXT NOT NULL DEFAULT '
 '\'\', "desired_result" TEXT NOT NULL DEFAULT \'\', "affected_people" JSONB NOT NULL DEFAULT \'[]\', "plan" '
 'TEXT NOT NULL DEFAULT \'\', "backout_plan" TEXT NOT NULL DEFAULT \'\', "deadline" TIMESTAMPTZ DEFAULT '
 'null, "cost" VARCHAR(32) DEFAULT null, "budget" VARCHAR(32) DEFAULT null, "customer_ref" VARCHAR(100) '
 'DEFAULT null, "refers_to" VARCHAR(20) DEFAULT null, "template" VARCHAR(100) DEFAULT null, "planned_start" '
 'TIMESTAMPTZ DEFAULT null, "planned_end" TIMESTAMPTZ DEFAULT null, "release_requirements" JSONB NOT NULL '
 'DEFAULT \'[]\', "impact_frozen" BOOLEAN NOT NULL DEFAULT false, "impact" JSONB DEFAULT null, '
 '"impact_adjustments" JSONB NOT NULL DEFAULT \'[]\', "post_implementation_review_required" BOOLEAN NOT NULL '
 'DEFAULT false, "emergency_reason" TEXT NOT NULL DEFAULT \'\', "customer_approval_required" BOOLEAN NOT '
 'NULL DEFAULT false, "customer_approved_by" INTEGER DEFAULT null, "patch_components" JSONB NOT NULL DEFAULT '
 '\'[]\', "vulnerability" TEXT NOT NULL DEFAULT \'\', "patch_description" TEXT NOT NULL DEFAULT \'\', '
 '"urgency" VARCHAR(24) DEFAULT null, "available_at" TIMESTAMPTZ DEFAULT null, "proposed_deployment" '
 'TIMESTAMPTZ DEFAULT null, "testing_done" TEXT NOT NULL DEFAULT \'\', "version" INTEGER NOT NULL DEFAULT 1, '
 '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, "updated_at" TIMESTAMPTZ NOT NULL DEFAULT '
 'current_timestamp)',
 'CREATE INDEX rfc_tenant ON "rfc" USING btree ("tenant")',
 'CREATE INDEX rfc_state ON "rfc" USING btree ("state")',
 'CREATE INDEX rfc_planned_start ON "rfc" USING btree ("planned_start")',
 'CREATE TABLE "rfc_ci" ("id" SERIAL PRIMARY KEY NOT NULL, "rfc" INTEGER NOT NULL REFERENCES "rfc" ("id") ON '
 'DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "ci" INTEGER NOT NULL REFERENCES "ci" ("id") ON DELETE '
 'RESTRICT ON UPDATE CASCADE DEFAULT null)',
 'CREATE INDEX rfc_ci_rfc ON "rfc_ci" USING btree ("rfc")',
 'CREATE INDEX rfc_ci_ci ON "rfc_ci" USING btree ("ci")',
 'CREATE TABLE "rfc_vote" ("id" SERIAL PRIMARY KEY NOT NULL, "rfc" INTEGER NOT NULL REFERENCES "rfc" ("id") '
 'ON DELETE CASCADE ON UPDATE CASCADE DEFAULT null, "member" INTEGER NOT NULL REFERENCES "person" ("id") ON '
 'DELETE RESTRICT ON UPDATE CASCADE DEFAULT null, "vote" VARCHAR(16) NOT NULL DEFAULT \'\', "comment" TEXT '
 'NOT NULL DEFAULT \'\', "at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)',
 'CREATE INDEX rfc_vote_rfc ON "rfc_vote" USING btree ("rfc")']

BOTH = ['CREATE UNIQUE INDEX rfc_ci_pair ON "rfc_ci" ("rfc", "ci")',
 'CREATE UNIQUE INDEX rfc_vote_member ON "rfc_vote" ("rfc", "member")',
 'CREATE INDEX rfc_tenant_state ON "rfc" ("tenant", "state")']


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="change", description=DESCRIPTION)

    async def run() -> None:
        engine = engine_finder()
        assert engine is not None
        statements = SQLITE if engine.engine_type == "sqlite" else POSTGRES
        for statement in [*statements, *BOTH]:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
