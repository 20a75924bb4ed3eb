"""Monitoring alerts into incidents. Placeholder with the constructor the application wires."""

from __future__ import annotations

from cmdb.services import Clock, CMDBService
from incident.services import IncidentService


class AlertService:
    def __init__(self, clock: Clock, cmdb: CMDBService, incidents: IncidentService) -> None:
        self.clock = clock
        self.cmdb = cmdb
        self.incidents = incidents
