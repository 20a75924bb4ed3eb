"""Notifications, exactly-once escalations, the email outbox and the scheduler lease."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
from typing import Any

import pytest

from cmdb import repository as repo
from cmdb.errors import NotFound
from cmdb.notifications import NotificationService, SmtpMailer
from cmdb.scheduler import Job, Scheduler, release_lease, take_lease
from cmdb.tables import NotificationTable
from tests.support import FakeClock, World


class RecordingMailer:
    def __init__(self, fail_for: str | None = None) -> None:
        self.sent: list[tuple[str, str, str]] = []
        self.fail_for = fail_for

    async def send(self, to: str, subject: str, body: str) -> None:
        if to == self.fail_for:
            raise OSError("mail server refused")
        self.sent.append((to, subject, body))


async def _escalate(service: NotificationService, world: World, level: str = "at_risk") -> bool:
    return await service.escalate_once(
        subject_kind="rfc_patch",
        subject_id=42,
        level=level,
        tenant_id=world.acme.id,
        audience="service_manager",
        subject="RFC-2026-0042 is at risk",
        body="Three quarters of the time to deploy the patch has passed.",
        link="/changes/RFC-2026-0042",
    )


async def test_an_escalation_is_raised_once_however_often_it_is_asked(world: World, clock: FakeClock) -> None:
    service = NotificationService(clock)
    assert await _escalate(service, world) is True
    assert await _escalate(service, world) is False
    assert await _escalate(NotificationService(clock), world) is False  # a second process
    sam = world.actors["sam"]
    items, total, unread = await service.inbox(sam)
    assert total == 1 and unread == 1
    assert items[0].kind == "rfc_patch.at_risk" and items[0].link == "/changes/RFC-2026-0042"
    # A different level of the same record is its own escalation.
    assert await _escalate(service, world, level="overdue") is True
    raised = await service.escalations("rfc_patch", [42])
    assert [e.level for e in raised[42]] == ["at_risk", "overdue"]


async def test_concurrent_escalations_of_one_record_notify_once(world: World, clock: FakeClock) -> None:
    services = [NotificationService(clock) for _ in range(10)]
    results = await asyncio.gather(*(_escalate(s, world) for s in services))
    assert results.count(True) == 1
    _, total, _ = await services[0].inbox(world.actors["sam"])
    assert total == 1


async def test_executives_default_to_administrators_and_follow_the_sla(world: World, clock: FakeClock) -> None:
    service = NotificationService(clock)
    admin = world.actors["admin"]
    assert await service.audience(world.acme.id, "executive") == [admin.person_id]
    assert await service.audience(world.acme.id, "service_manager") == [world.actors["sam"].person_id]
    await world.service.update_customer(admin, "ACME", {"sla": {"executives": ["carl"]}}, None)
    assert await service.audience(world.acme.id, "executive") == [world.actors["carl"].person_id]
    with pytest.raises(ValueError):
        await service.audience(world.acme.id, "everyone")


async def test_a_person_reads_and_marks_only_their_own_messages(world: World, clock: FakeClock) -> None:
    service = NotificationService(clock)
    sam, eve = world.actors["sam"], world.actors["eve"]
    [sam_id] = await service.notify([sam.person_id or 0], tenant_id=world.acme.id, kind="note", subject="For Sam")
    with pytest.raises(NotFound):
        await service.mark_read(eve, sam_id)
    clock.advance(minutes=5)
    read = await service.mark_read(sam, sam_id)
    assert read.read_at == clock.now()
    assert await service.unread_count(sam) == 0
    again = await service.mark_read(sam, sam_id)
    assert again.read_at == read.read_at  # reading twice keeps the first time


async def test_email_goes_out_through_the_outbox_once(world: World, clock: FakeClock) -> None:
    admin = world.actors["admin"]
    await world.service.create_person(
        admin, {"username": "sue", "name": "Sue", "roles": ["service_manager"], "email": "sue@example.com"}
    )
    await world.service.create_person(
        admin, {"username": "bob", "name": "Bob", "roles": ["service_manager"], "email": "bob@example.com"}
    )
    mailer = RecordingMailer(fail_for="bob@example.com")
    service = NotificationService(clock, mailer)
    assert await _escalate(service, world)
    rows = await NotificationTable.select(NotificationTable.email_state).order_by(NotificationTable.id)
    # Sam has no address: inbox only. Sue and Bob have one: queued.
    assert sorted(r["email_state"] for r in rows) == ["none", "pending", "pending"]
    assert await service.deliver_email(clock.now()) == 1
    assert [(to, subject) for to, subject, _ in mailer.sent] == [("sue@example.com", "RFC-2026-0042 is at risk")]
    assert "/changes/RFC-2026-0042" in mailer.sent[0][2]
    states = sorted(r["email_state"] for r in await NotificationTable.select(NotificationTable.email_state))
    assert states == ["failed", "none", "sent"]
    assert await service.deliver_email(clock.now()) == 0  # nothing sent twice


async def test_without_smtp_nothing_is_queued_for_email(world: World, clock: FakeClock) -> None:
    admin = world.actors["admin"]
    await world.service.create_person(
        admin, {"username": "sue", "name": "Sue", "roles": ["service_manager"], "email": "sue@example.com"}
    )
    service = NotificationService(clock)
    assert await _escalate(service, world)
    assert {r["email_state"] for r in await NotificationTable.select(NotificationTable.email_state)} == {"none"}
    assert await service.deliver_email(clock.now()) == 0


def _smtp_server() -> tuple[int, list[bytes], threading.Thread]:
    """A one-message SMTP server on loopback, enough to see what smtplib sends."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received: list[bytes] = []

    def serve() -> None:
        connection, _ = listener.accept()
        with connection, connection.makefile("rwb") as stream:

            def reply(line: str) -> None:
                stream.write(line.encode() + b"\r\n")
                stream.flush()

            reply("220 test ESMTP")
            in_data = False
            while True:
                line = stream.readline()
                if not line:
                    break
                if in_data:
                    if line == b".\r\n":
                        in_data = False
                        reply("250 queued")
                    else:
                        received.append(line)
                    continue
                verb = line[:4].upper()
                if verb == b"EHLO":
                    reply("250 test")
                elif verb == b"DATA":
                    in_data = True
                    reply("354 go ahead")
                elif verb == b"QUIT":
                    reply("221 bye")
                    break
                else:
                    reply("250 ok")
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], received, thread


async def test_smtp_mailer_speaks_smtp(monkeypatch: Any) -> None:
    port, received, thread = _smtp_server()
    monkeypatch.setenv("KEEL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("KEEL_SMTP_PORT", str(port))
    monkeypatch.setenv("KEEL_SMTP_FROM", "keel@provider.example")
    mailer = SmtpMailer.from_env()
    assert mailer is not None and mailer.port == port
    await mailer.send("sue@example.com", "Patch overdue", "RFC-2026-0042 is overdue.")
    thread.join(timeout=5)
    text = b"".join(received).decode()
    assert "Subject: Patch overdue" in text and "To: sue@example.com" in text
    assert "From: keel@provider.example" in text and "RFC-2026-0042 is overdue." in text
    monkeypatch.delenv("KEEL_SMTP_HOST")
    assert SmtpMailer.from_env() is None


async def test_one_lease_holder_at_a_time_until_it_expires(db: None) -> None:
    now = dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC)
    assert await take_lease("scheduler", "a", now, 60)
    assert not await take_lease("scheduler", "b", now + dt.timedelta(seconds=30), 60)
    assert await take_lease("scheduler", "a", now + dt.timedelta(seconds=30), 60)  # renewal
    assert not await take_lease("scheduler", "b", now + dt.timedelta(seconds=89), 60)
    assert await take_lease("scheduler", "b", now + dt.timedelta(seconds=91), 60)  # a's lease ran out
    assert not await take_lease("scheduler", "a", now + dt.timedelta(seconds=92), 60)
    await release_lease("scheduler", "b")
    assert await take_lease("scheduler", "a", now + dt.timedelta(seconds=93), 60)


async def test_concurrent_takers_get_one_lease(db: None) -> None:
    now = dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC)
    results = await asyncio.gather(*(take_lease("scheduler", f"p{i}", now, 60) for i in range(8)))
    assert results.count(True) == 1


async def test_the_scheduler_runs_due_jobs_only_while_holding_the_lease(db: None, clock: FakeClock) -> None:
    runs: list[str] = []

    def job(name: str, minutes: int, fail: bool = False) -> Job:
        async def run(now: dt.datetime) -> int:
            runs.append(name)
            if fail:
                raise RuntimeError("broken job")
            return 1

        return Job(name, dt.timedelta(minutes=minutes), run)

    first = Scheduler(clock, [job("often", 1), job("broken", 1, fail=True), job("hourly", 60)], holder="first")
    second = Scheduler(clock, [job("other", 1)], holder="second")
    assert await first.run_due() == {"often": 1, "broken": -1, "hourly": 1}
    assert await second.run_due() is None  # the first holds the lease
    clock.advance(minutes=2)
    assert await first.run_due() == {"often": 1, "broken": -1}
    assert await first.run_due(force=True) == {"often": 1, "broken": -1, "hourly": 1}
    assert runs.count("other") == 0


async def test_notifications_of_inactive_people_are_not_created(world: World, clock: FakeClock) -> None:
    service = NotificationService(clock)
    assert await service.notify([], tenant_id=world.acme.id, kind="note", subject="nobody") == []
    assert await service.notify([987654], tenant_id=world.acme.id, kind="note", subject="ghost") == []
    assert await repo.people_by_ids([987654]) == {}
