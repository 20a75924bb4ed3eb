"""Sign-in: passwords to API tokens and browser sessions, and back to the person."""

from __future__ import annotations

import datetime as dt
import time

from cmdb import repository as repo
from cmdb.db import atomic
from cmdb.errors import TooManyAttempts, Unauthenticated
from cmdb.models import Actor, Person
from cmdb.security import new_token, token_digest, verify_password
from cmdb.services import Clock

# A credential lookup per request costs a query; a few seconds of memory spares most of them.
# A revoked credential may still work for this long in *other* processes.
CACHE_SECONDS = 5.0
# Password guessing: after this many consecutive failures for one username, sign-in is refused
# for a while, whatever the password. Kept in the database, so every worker counts together.
MAX_FAILURES = 5
LOCK_MINUTES = 15


class Accounts:
    def __init__(self, clock: Clock, *, session_hours: int = 12, token_days: int = 30) -> None:
        self.clock = clock
        self.session_life = dt.timedelta(hours=session_hours)
        self.token_life = dt.timedelta(days=token_days)
        self._cache: dict[str, tuple[float, Actor]] = {}

    async def _actor(self, person: Person) -> Actor:
        provider = await repo.provider()
        assert provider is not None
        return Actor(person.id, person.username, person.name, person.tenant_id, provider.id, person.roles)

    async def sign_in(self, username: str, password: str, kind: str) -> tuple[str, dt.datetime, Actor]:
        """A new secret for every sign-in, so a session id known before sign-in is worthless."""
        now = self.clock.now()
        failures, locked_until = await repo.sign_in_lock(username)
        if locked_until is not None and locked_until > now:
            minutes = max(1, int((locked_until - now).total_seconds() // 60) + 1)
            raise TooManyAttempts(
                f"Too many failed sign-ins for {username}; try again in {minutes} minute(s) or ask an administrator."
            )
        found = await repo.person_with_password(username)
        person, password_hash = found if found else (None, None)
        if not verify_password(password_hash, password) or person is None or not person.active:
            failures += 1
            lock = now + dt.timedelta(minutes=LOCK_MINUTES) if failures >= MAX_FAILURES else None
            async with atomic(repo.engine()):
                await repo.record_sign_in_failure(username[:100], 0 if lock else failures, lock)
            raise Unauthenticated("Unknown username or wrong password.")
        if failures:
            async with atomic(repo.engine()):
                await repo.clear_sign_in_failures(username)
        token = new_token()
        expires = now + (self.token_life if kind == "api" else self.session_life)
        async with atomic(repo.engine()):
            await repo.insert_credential(token_digest(token), person.id, kind, now, expires)
        return token, expires, await self._actor(person)

    async def actor_for(self, token: str, kind: str) -> Actor | None:
        digest = token_digest(token)
        key = f"{kind}:{digest}"
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        person = await repo.person_for_credential(digest, kind, self.clock.now())
        if person is None:
            self._cache.pop(key, None)
            return None
        actor = await self._actor(person)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + CACHE_SECONDS, actor)
        return actor

    async def sign_out(self, token: str, kind: str) -> None:
        digest = token_digest(token)
        self._cache.pop(f"{kind}:{digest}", None)
        async with atomic(repo.engine()):
            await repo.delete_credential(digest)
