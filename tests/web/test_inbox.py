"""The inbox: notifications through the API and the /inbox page, each person seeing their own."""

from __future__ import annotations

from typing import Any

from cmdb.notifications import NotificationService
from tests.support import FakeClock, World
from tests.web.test_pages import browser_sign_in, csrf_from


async def _note_for(world: World, clock: FakeClock, username: str, subject: str, link: str = "") -> int:
    service = NotificationService(clock)
    [note_id] = await service.notify(
        [world.actors[username].person_id or 0], tenant_id=world.acme.id, kind="test.note", subject=subject, link=link
    )
    return note_id


async def test_the_api_lists_and_marks_my_notifications(world: World, clock: FakeClock, sign_in: Any) -> None:
    note = await _note_for(world, clock, "sam", "Patch RFC-2026-0001 is at risk", "/changes/RFC-2026-0001")
    await _note_for(world, clock, "eve", "For Eve only")
    sam = await sign_in("sam")
    listed = (await sam.get("/api/notifications")).json()
    assert listed["total"] == 1 and listed["unread"] == 1
    assert listed["items"][0]["subject"] == "Patch RFC-2026-0001 is at risk"
    eve = await sign_in("eve")
    refused = await eve.post(f"/api/notifications/{note}/actions/read")
    assert refused.status_code == 404 and refused.json()["error"] == "not_found"
    read = await sam.post(f"/api/notifications/{note}/actions/read")
    assert read.status_code == 200 and read.json()["read_at"] is not None
    assert (await sam.get("/api/notifications?unread=true")).json()["total"] == 0


async def test_the_inbox_page_shows_and_opens_messages(world: World, clock: FakeClock, client: Any) -> None:
    note = await _note_for(world, clock, "sam", "Incident INC-2026-0001 breached", "/changes")
    await _note_for(world, clock, "eve", "Eve's secret note")
    await browser_sign_in(client, world, "sam")
    page = await client.get("/inbox")
    assert page.status_code == 200
    assert "Incident INC-2026-0001 breached" in page.text and "Eve&#39;s secret note" not in page.text
    assert "1 unread of 1" in page.text
    assert 'href="/inbox"' in page.text  # the navigation links the inbox
    opened = await client.post(
        f"/inbox/{note}/read", data={"_csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert opened.status_code == 303 and opened.headers["location"] == "/changes"
    assert "0 unread of 1" in (await client.get("/inbox")).text


async def test_an_off_site_link_is_never_followed(world: World, clock: FakeClock, client: Any) -> None:
    note = await _note_for(world, clock, "sam", "Odd link", "//evil.example/phish")
    await browser_sign_in(client, world, "sam")
    page = await client.get("/inbox")
    opened = await client.post(
        f"/inbox/{note}/read", data={"_csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert opened.headers["location"] == "/inbox"
