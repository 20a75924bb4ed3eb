"""Patch urgency: due times, states, escalation and compliance of patch RFCs.

Placeholder with the constructor the application wires; issue 4 fills it in."""

from __future__ import annotations

from cmdb.notifications import NotificationService
from cmdb.scheduler import Job
from cmdb.services import Clock, CMDBService


class PatchService:
    def __init__(self, clock: Clock, cmdb: CMDBService, notifications: NotificationService) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.notifications = notifications

    def jobs(self) -> list[Job]:
        return []
