"""Problem management's vocabulary: the problem, its statuses and its events.

Pure Python: the standard library and :mod:`cmdb.models` only, no framework, no database.

A problem (domain, "Problem") is the underlying cause of one or more incidents. It records the
linked incidents (of its own customer only), the affected CIs, the root cause, the workaround,
whether it is a known error, and the RFC that removes the cause. A problem is raised by hand
(``origin`` manual) or proposed by trend analysis when incidents spike on the CIs of a release
during its watch period (``origin`` trend, ``source_release_id`` set; one proposal per release).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cmdb.models import Choice

__all__ = [
    "RFC_FINISHED_WITHOUT_FIX",
    "Event",
    "Problem",
    "ProblemChoice",
    "ProblemOrigin",
    "ProblemStatus",
]


class ProblemChoice(Choice):
    """A :class:`~cmdb.models.Choice` with this module's labels and colours."""

    @property
    def label(self) -> str:
        return _LABELS.get(self, self.value.replace("_", " ").capitalize())

    @property
    def colour(self) -> str:
        return _COLOURS.get(self, "grey")


class ProblemStatus(ProblemChoice):
    """Where a problem stands. ``known_error``: root cause and workaround are recorded."""

    OPEN = "open"
    INVESTIGATING = "investigating"
    KNOWN_ERROR = "known_error"
    RESOLVED = "resolved"
    CLOSED = "closed"


class ProblemOrigin(ProblemChoice):
    MANUAL = "manual"
    TREND = "trend"


_LABELS: dict[StrEnum, str] = {
    ProblemStatus.KNOWN_ERROR: "Known error",
    ProblemOrigin.MANUAL: "Raised by hand",
    ProblemOrigin.TREND: "Proposed by trend analysis",
}
_COLOURS: dict[StrEnum, str] = {
    ProblemStatus.OPEN: "blue",
    ProblemStatus.INVESTIGATING: "orange",
    ProblemStatus.KNOWN_ERROR: "purple",
    ProblemStatus.RESOLVED: "green",
    ProblemStatus.CLOSED: "grey",
    ProblemOrigin.MANUAL: "grey",
    ProblemOrigin.TREND: "yellow",
}

#: RFC states after which the RFC will never remove the cause: another RFC may be raised, and
#: the problem may be resolved with a resolution note instead.
RFC_FINISHED_WITHOUT_FIX: frozenset[str] = frozenset({"rejected", "withdrawn", "backed_out", "failed"})


@dataclass(frozen=True)
class Problem:
    """A problem. ``rfc_key`` and ``rfc_state`` are read with the record from the RFC it links
    (never stored here), so the workflow can tell whether the fix is done. ``resolution`` is the
    note a problem resolved without a completed RFC must carry."""

    id: int
    key: str
    tenant_id: int
    title: str
    status: ProblemStatus
    origin: ProblemOrigin
    created_at: dt.datetime
    updated_at: dt.datetime
    description: str = ""
    incident_ids: tuple[int, ...] = ()
    ci_ids: tuple[int, ...] = ()
    root_cause: str = ""
    workaround: str = ""
    known_error: bool = False
    rfc_id: int | None = None
    rfc_key: str | None = None
    rfc_state: str | None = None
    resolution: str = ""
    source_release_id: int | None = None
    created_by: int | None = None
    version: int = 1

    @property
    def is_closed(self) -> bool:
        return self.status is ProblemStatus.CLOSED


@dataclass(frozen=True)
class Event:
    """One entry of a problem's history as the workflow produced it; the service appends it.
    ``data`` always carries ``action``, ``from`` and ``to`` (status values)."""

    kind: str
    actor_id: int | None
    actor_name: str
    at: dt.datetime
    comment: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
