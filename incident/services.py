"""Incident management. Placeholder with the constructor the application wires; issue 5 fills it in."""

from __future__ import annotations

from change.services import ChangeService
from cmdb.notifications import NotificationService
from cmdb.scheduler import Job
from cmdb.services import Clock, CMDBService
from release.services import ReleaseService


class IncidentService:
    def __init__(
        self,
        clock: Clock,
        cmdb: CMDBService,
        change: ChangeService,
        releases: ReleaseService,
        notifications: NotificationService,
    ) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.change = change
        self.releases = releases
        self.notifications = notifications

    def jobs(self) -> list[Job]:
        return []
