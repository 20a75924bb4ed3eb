"""Problem management and trends. Placeholder with the constructor the application wires; issue 5 fills it in."""

from __future__ import annotations

from change.services import ChangeService
from cmdb.services import Clock, CMDBService
from incident.services import IncidentService
from release.services import ReleaseService


class ProblemService:
    def __init__(
        self,
        clock: Clock,
        cmdb: CMDBService,
        change: ChangeService,
        releases: ReleaseService,
        incidents: IncidentService,
    ) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.change = change
        self.releases = releases
        self.incidents = incidents
