"""Notifications: a person's in-product inbox, an email outbox, and escalations raised once.

Domain services call `notify` or `escalate_once` inside their own transaction, so a message
exists exactly when the change that caused it was saved. Email goes out later through the
scheduler's `deliver-email` job (`deliver_email`), never inside a database transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import smtplib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from cmdb import repository as repo
from cmdb.db import atomic
from cmdb.errors import NotFound
from cmdb.models import Actor, Role, Scope
from cmdb.scheduler import Job
from cmdb.services import Clock, page_bounds
from cmdb.tables import CustomerTable, EscalationTable, NotificationTable, PersonTable

log = logging.getLogger("keel.notifications")

SERVICE_MANAGER = "service_manager"
EXECUTIVE = "executive"
ESCALATION_AUDIENCES = (SERVICE_MANAGER, EXECUTIVE)


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True)
class SmtpMailer:
    """Plain smtplib in a worker thread: the standard library speaks SMTP well enough, and a
    thread keeps the event loop free while a slow server answers."""

    host: str
    port: int = 25
    sender: str = "keel@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 20.0

    @classmethod
    def from_env(cls) -> SmtpMailer | None:
        host = os.environ.get("KEEL_SMTP_HOST")
        if not host:
            return None
        return cls(
            host=host,
            port=int(os.environ.get("KEEL_SMTP_PORT", "25")),
            sender=os.environ.get("KEEL_SMTP_FROM", "keel@localhost"),
            username=os.environ.get("KEEL_SMTP_USER") or None,
            password=os.environ.get("KEEL_SMTP_PASSWORD") or None,
            starttls=os.environ.get("KEEL_SMTP_STARTTLS", "").lower() in {"1", "true", "yes", "on"},
        )

    def _send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)

    async def send(self, to: str, subject: str, body: str) -> None:
        await asyncio.to_thread(self._send, to, subject, body)


@dataclass(frozen=True)
class Notification:
    id: int
    person_id: int
    tenant_id: int
    kind: str
    subject: str
    body: str
    link: str
    created_at: dt.datetime
    read_at: dt.datetime | None
    email_state: str


@dataclass(frozen=True)
class Escalation:
    id: int
    subject_kind: str
    subject_id: int
    level: str
    tenant_id: int
    created_at: dt.datetime
    detail: str


def _notification(row: dict[str, Any]) -> Notification:
    return Notification(
        id=row["id"],
        person_id=row["person"],
        tenant_id=row["tenant"],
        kind=row["kind"],
        subject=row["subject"],
        body=row["body"],
        link=row["link"],
        created_at=repo._utc(row["created_at"]),
        read_at=repo._utc(row["read_at"]) if row["read_at"] is not None else None,
        email_state=row["email_state"],
    )


class NotificationService:
    def __init__(self, clock: Clock, mailer: Mailer | None = None) -> None:
        self.clock = clock
        self.mailer = mailer

    # --- writing (inside the caller's transaction) -----------------------------------------

    async def notify(
        self,
        person_ids: Iterable[int],
        *,
        tenant_id: int,
        kind: str,
        subject: str,
        body: str = "",
        link: str = "",
    ) -> list[int]:
        """One inbox message per distinct person; queued for email when SMTP is configured
        and the person has an address. Joins the caller's transaction."""
        ids = sorted(set(person_ids))
        if not ids:
            return []
        now = self.clock.now()
        people = await repo.people_by_ids(ids)
        rows = [
            NotificationTable(
                person=person_id,
                tenant=tenant_id,
                kind=kind,
                subject=subject[:300],
                body=body,
                link=link[:300],
                created_at=now,
                email_state="pending" if self.mailer is not None and people[person_id].email else "none",
            )
            for person_id in ids
            if person_id in people and people[person_id].active
        ]
        if not rows:
            return []
        async with atomic(repo.engine()):
            inserted = await NotificationTable.insert(*rows).returning(NotificationTable.id)
        return [row["id"] for row in inserted]

    async def escalate_once(
        self,
        *,
        subject_kind: str,
        subject_id: int,
        level: str,
        tenant_id: int,
        audience: str,
        subject: str,
        body: str = "",
        link: str = "",
        detail: str = "",
        extra_people: Sequence[int] = (),
    ) -> bool:
        """Raise the escalation `level` of one record once in its life: True if this call
        raised it (and notified `audience`), False if it had been raised before, by this
        process or any other. The unique index decides; the loser's transaction adds nothing."""
        now = self.clock.now()
        async with atomic(repo.engine()):
            created = (
                await EscalationTable.insert(
                    EscalationTable(
                        subject_kind=subject_kind,
                        subject_id=subject_id,
                        level=level,
                        tenant=tenant_id,
                        created_at=now,
                        detail=detail,
                    )
                )
                .on_conflict(action="DO NOTHING")
                .returning(EscalationTable.id)
            )
            if not created:
                return False
            recipients = [*await self.audience(tenant_id, audience), *extra_people]
            await self.notify(
                recipients, tenant_id=tenant_id, kind=f"{subject_kind}.{level}", subject=subject, body=body, link=link
            )
        return True

    async def audience(self, tenant_id: int, audience: str) -> list[int]:
        """Who receives an escalation for a customer. `service_manager`: the provider's
        service managers, or the usernames the customer's SLA names in `service_managers`.
        `executive`: the usernames in the SLA's `executives`, else the provider's
        administrators (the executive level of a small provider)."""
        if audience not in ESCALATION_AUDIENCES:
            raise ValueError(f"unknown escalation audience {audience!r}")
        customer = await CustomerTable.select(CustomerTable.sla).where(CustomerTable.id == tenant_id).first()
        sla = repo._json(customer["sla"], {}) if customer else {}
        named = sla.get("service_managers" if audience == SERVICE_MANAGER else "executives") or []
        if named:
            rows = await PersonTable.select(PersonTable.id).where(
                PersonTable.username.is_in(list(named)) & (PersonTable.active == True)  # noqa: E712
            )
            if rows:
                return [row["id"] for row in rows]
        provider = await repo.provider()
        if provider is None:
            return []
        role = Role.SERVICE_MANAGER if audience == SERVICE_MANAGER else Role.ADMINISTRATOR
        people, _ = await repo.list_people(
            Scope.everything(provider.id), tenant_id=provider.id, role=role.value, expertise=None, limit=500, offset=0
        )
        return [person.id for person in people if person.active]

    # --- reading ---------------------------------------------------------------------------

    async def inbox(
        self, actor: Actor, *, unread_only: bool = False, limit: int = 50, offset: int = 0
    ) -> tuple[list[Notification], int, int]:
        """The actor's own messages, newest first, with the total and the unread count."""
        limit, offset = page_bounds(limit, offset)
        if actor.person_id is None:
            return [], 0, 0
        mine = NotificationTable.person == actor.person_id
        where = mine & NotificationTable.read_at.is_null() if unread_only else mine
        rows = (
            await NotificationTable.select()
            .where(where)
            .order_by(NotificationTable.id, ascending=False)
            .limit(limit)
            .offset(offset)
        )
        total = await NotificationTable.count().where(where)
        unread = await NotificationTable.count().where(mine & NotificationTable.read_at.is_null())
        return [_notification(row) for row in rows], total, unread

    async def unread_count(self, actor: Actor) -> int:
        if actor.person_id is None:
            return 0
        return int(
            await NotificationTable.count().where(
                (NotificationTable.person == actor.person_id) & NotificationTable.read_at.is_null()
            )
        )

    async def mark_read(self, actor: Actor, notification_id: int) -> Notification:
        """Someone else's message is as absent as a missing one."""
        now = self.clock.now()
        async with atomic(repo.engine()):
            row = (
                await NotificationTable.select()
                .where((NotificationTable.id == notification_id) & (NotificationTable.person == actor.person_id))
                .first()
            )
            if row is None:
                raise NotFound("notification", notification_id)
            if row["read_at"] is None:
                await NotificationTable.update({NotificationTable.read_at: now}).where(
                    NotificationTable.id == notification_id
                )
                row["read_at"] = now
        return _notification(row)

    async def escalations(self, subject_kind: str, subject_ids: Sequence[int]) -> dict[int, list[Escalation]]:
        """Escalations raised on the given records, oldest first, for their pages and JSON."""
        found: dict[int, list[Escalation]] = {subject_id: [] for subject_id in subject_ids}
        if not subject_ids:
            return found
        rows = (
            await EscalationTable.select()
            .where((EscalationTable.subject_kind == subject_kind) & EscalationTable.subject_id.is_in(list(subject_ids)))
            .order_by(EscalationTable.id)
        )
        for row in rows:
            found.setdefault(row["subject_id"], []).append(
                Escalation(
                    id=row["id"],
                    subject_kind=row["subject_kind"],
                    subject_id=row["subject_id"],
                    level=row["level"],
                    tenant_id=row["tenant"],
                    created_at=repo._utc(row["created_at"]),
                    detail=row["detail"],
                )
            )
        return found

    # --- the email outbox --------------------------------------------------------------------

    async def deliver_email(self, now: dt.datetime, batch: int = 200) -> int:
        """Send pending emails; a failure is recorded on the row and not retried blindly
        (the inbox copy remains). Runs under the scheduler lease, one process at a time."""
        if self.mailer is None:
            return 0
        pending = (
            await NotificationTable.select(
                NotificationTable.id,
                NotificationTable.subject,
                NotificationTable.body,
                NotificationTable.link,
                NotificationTable.person.email,
            )
            .where(NotificationTable.email_state == "pending")
            .order_by(NotificationTable.id)
            .limit(batch)
        )
        sent = 0
        for row in pending:
            address = row["person.email"]
            state = "failed"
            if address:
                body = row["body"] + (f"\n\n{row['link']}" if row["link"] else "")
                try:
                    await self.mailer.send(address, row["subject"], body)
                    state = "sent"
                    sent += 1
                except Exception:
                    log.warning("email to %s failed", address, exc_info=True)
            async with atomic(repo.engine()):
                await NotificationTable.update(
                    {NotificationTable.email_state: state, NotificationTable.emailed_at: now}
                ).where(NotificationTable.id == row["id"])
        return sent

    def jobs(self) -> list[Job]:
        return [Job("deliver-email", dt.timedelta(minutes=1), self.deliver_email)]
