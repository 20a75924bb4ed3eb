"""The service manager's figures. Placeholder with the constructor the application wires."""

from __future__ import annotations

from cmdb.services import Clock, CMDBService


class ServiceDashboard:
    def __init__(self, clock: Clock, cmdb: CMDBService) -> None:
        self.clock = clock
        self.cmdb = cmdb
