"""A person's notifications: `GET /api/notifications`, mark read, and the /inbox page."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template

from cmdb.models import Actor
from cmdb.notifications import Notification, NotificationService
from web.controllers.pages import NAV, NavEntry, page


def notification_json(item: Notification) -> dict[str, Any]:
    return {
        "id": item.id,
        "kind": item.kind,
        "subject": item.subject,
        "body": item.body,
        "link": item.link,
        "created_at": item.created_at.isoformat(),
        "read_at": item.read_at.isoformat() if item.read_at else None,
        "email": item.email_state,
    }


@get("/api/notifications", tags=["notifications"], summary="The signed-in person's notifications, newest first")
async def list_notifications(
    notifications: NotificationService,
    actor: Actor,
    unread: bool = False,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    offset: Annotated[int, Parameter(ge=0)] = 0,
) -> dict[str, Any]:
    items, total, unread_count = await notifications.inbox(actor, unread_only=unread, limit=limit, offset=offset)
    return {"items": [notification_json(n) for n in items], "total": total, "unread": unread_count}


@post("/api/notifications/{notification_id:int}/actions/read", tags=["notifications"], status_code=200)
async def read_notification(notifications: NotificationService, actor: Actor, notification_id: int) -> dict[str, Any]:
    return notification_json(await notifications.mark_read(actor, notification_id))


@get("/inbox", include_in_schema=False)
async def inbox_page(
    notifications: NotificationService,
    actor: Actor,
    unread: bool = False,
    offset: Annotated[int, Parameter(ge=0)] = 0,
) -> Template:
    items, total, unread_count = await notifications.inbox(actor, unread_only=unread, limit=50, offset=offset)
    return page(
        "inbox.html",
        actor,
        section="inbox",
        title="Inbox",
        items=items,
        total=total,
        unread_count=unread_count,
        unread_only=unread,
        offset=offset,
    )


@post("/inbox/{notification_id:int}/read", include_in_schema=False)
async def inbox_read(notifications: NotificationService, actor: Actor, notification_id: int) -> Redirect:
    item = await notifications.mark_read(actor, notification_id)
    # Only Keel's own paths: a link is written by Keel, but never follow it off-site.
    target = item.link if item.link.startswith("/") and not item.link.startswith("//") else "/inbox"
    return Redirect(target, status_code=303)


NAV.append(NavEntry("inbox", "Inbox", "/inbox", lambda actor: actor.person_id is not None))

HANDLERS: list[Any] = [list_notifications, read_notification, inbox_page, inbox_read]
