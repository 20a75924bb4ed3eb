"""Builders and fakes shared by the integration and web tests (piccolo's ModelBuilder idea,
with Keel's own services so every row is made the way the product makes it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.conf.apps import Finder

from cmdb import db
from cmdb import repository as repo
from cmdb.graphcache import GraphCache
from cmdb.models import Actor, Customer, Person, Role
from cmdb.services import CIInput, CMDBService, ensure_provider, system_actor


class FakeClock:
    def __init__(self, now: dt.datetime) -> None:
        self._now = now

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, **kwargs: float) -> None:
        self._now += dt.timedelta(**kwargs)

    def set(self, now: dt.datetime) -> None:
        self._now = now


def _tables() -> list[Any]:
    return Finder().get_table_classes()


async def migrate_fresh() -> None:
    engine = repo.engine()
    if db.is_sqlite(engine):
        rows = await db.fetch(
            engine, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        async with db.atomic(engine):
            # foreign_keys cannot change inside a transaction; deferring the checks to the
            # commit, when every table is gone, lets a database with data be dropped.
            await engine.run_ddl("PRAGMA defer_foreign_keys = ON")
            for row in rows:
                await engine.run_ddl(f'DROP TABLE IF EXISTS "{row["name"]}"')
    else:
        await engine.run_ddl("DROP SCHEMA public CASCADE")
        await engine.run_ddl("CREATE SCHEMA public")
    result = await run_forwards("all")
    assert result.success, result.message


async def reset_tables() -> None:
    engine = repo.engine()
    names = [table._meta.tablename for table in _tables()]
    async with db.atomic(engine):
        if db.is_sqlite(engine):
            await engine.run_ddl("PRAGMA defer_foreign_keys = ON")
            for name in names:
                await engine.run_ddl(f'DELETE FROM "{name}"')
            await engine.run_ddl("DELETE FROM sqlite_sequence")
        else:
            joined = ", ".join(f'"{name}"' for name in names)
            await engine.run_ddl(f"TRUNCATE {joined} RESTART IDENTITY CASCADE")
        await engine.run_ddl('INSERT INTO "graph_revision" ("id", "revision") VALUES (1, 0)')


def actor_of(person: Person, provider: Customer) -> Actor:
    return Actor(person.id, person.username, person.name, person.tenant_id, provider.id, person.roles)


@dataclass
class World:
    clock: FakeClock
    service: CMDBService
    provider: Customer
    acme: Customer
    globex: Customer
    actors: dict[str, Actor] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def create(cls, clock: FakeClock) -> World:
        # One transaction: the services' own transactions join it, so on PostgreSQL (where the
        # tests run without a pool) the whole world is built on one connection, not dozens.
        async with db.atomic(repo.engine()):
            return await cls._create(clock)

    @classmethod
    async def _create(cls, clock: FakeClock) -> World:
        provider = await ensure_provider(clock, "PROV", "Keel Managed Services")
        service = CMDBService(clock, GraphCache())
        system = system_actor(provider)
        admin = await service.create_person(
            None, {"username": "admin", "name": "Ada Admin", "roles": ["administrator"], "password": "admin-password"}
        )
        admin_actor = actor_of(admin, provider)
        acme = await service.create_customer(
            admin_actor, {"key": "ACME", "name": "Acme Corp", "timezone": "America/New_York", "holiday_region": "US"}
        )
        globex = await service.create_customer(
            admin_actor,
            {"key": "GLOBEX", "name": "Globex Ltd", "timezone": "Europe/London", "holiday_region": "GB-ENG"},
        )
        world = cls(clock, service, provider, acme, globex)
        world.actors["admin"] = admin_actor
        world.actors["system"] = system
        world.passwords["admin"] = "admin-password"
        for username, roles, customer in [
            ("eve", ["engineer"], None),
            ("carl", ["change_manager"], None),
            ("cora", ["change_manager"], None),
            ("kim", ["committee_member"], None),
            ("lee", ["committee_member"], None),
            ("ola", ["committee_member", "engineer"], None),
            ("rita", ["release_manager"], None),
            ("acme-contact", ["customer"], "ACME"),
            ("globex-contact", ["customer"], "GLOBEX"),
            ("sam", ["service_manager"], None),
        ]:
            await world.add_person(username, roles, customer)
        return world

    async def add_person(self, username: str, roles: list[str], customer: str | None = None, **extra: Any) -> Actor:
        password = f"{username}-password"
        person = await self.service.create_person(
            None,
            {
                "username": username,
                "name": username.title(),
                "roles": roles,
                "customer": customer,
                "password": password,
                **extra,
            },
        )
        self.actors[username] = actor_of(person, self.provider)
        self.passwords[username] = password
        return self.actors[username]

    async def ci(self, customer: str, name: str, ci_class: str = "server", **extra: Any) -> Any:
        return await self.service.create_ci(
            self.actors["eve"], CIInput(name=name, customer=customer, ci_class=ci_class, **extra)
        )

    async def link(self, source: Any, target: Any, type_: str = "depends_on") -> Any:
        return await self.service.create_relationship(self.actors["eve"], source, target, type_)


__all__ = ["FakeClock", "Role", "World", "migrate_fresh", "reset_tables"]
