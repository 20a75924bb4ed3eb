"""Release management: releases of approved RFCs, test evidence, approval, deployment, backout.

Placeholder with the constructor the application wires; issue 4 fills it in."""

from __future__ import annotations

from change.services import ChangeService
from cmdb.notifications import NotificationService
from cmdb.scheduler import Job
from cmdb.services import Clock, CMDBService


class ReleaseService:
    def __init__(
        self, clock: Clock, cmdb: CMDBService, change: ChangeService, notifications: NotificationService
    ) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.change = change
        self.notifications = notifications

    def jobs(self) -> list[Job]:
        return []
