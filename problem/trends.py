"""Trend analysis over plain rows: repeated incidents and post-release incident spikes.

Pure: the standard library only. The service reads the rows (incidents with their CIs, CI names
and classes, the releases' watch periods) and passes them in; nothing here touches a database.

Repeated incidents
    Over a period, count the distinct incidents per CI, per CI class and per customer; keep the
    groups with at least ``min_count`` incidents, most first. An incident on two CIs counts once
    for each CI, and once for a class even when several of its CIs share that class.

Spikes after a release (see docs/problems.md)
    For a deployed release, the *watched CIs* are its released CIs and the CIs that depend on
    them. Only incidents of the release's own customer count.

    - ``incidents_in_watch``: incidents on the watched CIs raised from ``deployed_at`` up to the
      end of the watch period, or up to now while it runs.
    - ``rate``: those incidents per day of watch elapsed (at least ``min_days``, so one incident
      an hour after the deployment is not a rate of 24 a day).
    - ``baseline_rate``: incidents on the same CIs per day over the ``baseline_days`` days
      before the deployment.
    - flagged when ``incidents_in_watch >= min_incidents`` and
      ``rate >= ratio * max(baseline_rate, floor_per_day)``; the floor keeps a CI that never had
      incidents from being flagged for its first one or two.
    - ``ratio`` reported: ``rate / max(baseline_rate, floor_per_day)``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "CIInfo",
    "IncidentRow",
    "Repeated",
    "RepeatedGroup",
    "Spike",
    "SpikeRule",
    "WatchWindow",
    "repeated",
    "spike",
    "spikes",
]

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class IncidentRow:
    id: int
    key: str
    tenant_id: int
    created_at: dt.datetime
    ci_ids: tuple[int, ...]


@dataclass(frozen=True)
class CIInfo:
    id: int
    name: str
    ci_class: str
    tenant_id: int


@dataclass(frozen=True)
class RepeatedGroup:
    """One group of repeated incidents. ``group`` is the CI id, the class name or the
    customer (tenant) id; ``tenant_ids`` the customers whose incidents are counted."""

    group: int | str
    name: str
    tenant_ids: tuple[int, ...]
    count: int
    incident_ids: tuple[int, ...]


@dataclass(frozen=True)
class Repeated:
    by_ci: tuple[RepeatedGroup, ...]
    by_class: tuple[RepeatedGroup, ...]
    by_customer: tuple[RepeatedGroup, ...]


def _groups(
    members: Mapping[int | str, set[int]],
    names: Mapping[int | str, str],
    tenants: Mapping[int | str, set[int]],
    min_count: int,
) -> tuple[RepeatedGroup, ...]:
    found = [
        RepeatedGroup(group, names[group], tuple(sorted(tenants[group])), len(ids), tuple(sorted(ids)))
        for group, ids in members.items()
        if len(ids) >= min_count
    ]
    found.sort(key=lambda g: (-g.count, g.name, str(g.group)))
    return tuple(found)


def repeated(
    incidents: Iterable[IncidentRow],
    cis: Mapping[int, CIInfo],
    min_count: int,
    customer_names: Mapping[int, str] | None = None,
) -> Repeated:
    """Groups of at least ``min_count`` distinct incidents per CI, class and customer. CIs
    missing from ``cis`` still count for their customer, not for a CI or class."""
    if min_count < 1:
        raise ValueError("min_count must be at least 1")
    customer_names = customer_names or {}
    by_ci: dict[int | str, set[int]] = defaultdict(set)
    by_class: dict[int | str, set[int]] = defaultdict(set)
    by_customer: dict[int | str, set[int]] = defaultdict(set)
    ci_tenants: dict[int | str, set[int]] = defaultdict(set)
    class_tenants: dict[int | str, set[int]] = defaultdict(set)
    customer_tenants: dict[int | str, set[int]] = defaultdict(set)
    for incident in incidents:
        by_customer[incident.tenant_id].add(incident.id)
        customer_tenants[incident.tenant_id].add(incident.tenant_id)
        for ci_id in set(incident.ci_ids):
            info = cis.get(ci_id)
            if info is None:
                continue
            by_ci[ci_id].add(incident.id)
            ci_tenants[ci_id].add(incident.tenant_id)
            by_class[info.ci_class].add(incident.id)
            class_tenants[info.ci_class].add(incident.tenant_id)
    ci_names: dict[int | str, str] = {ci_id: cis[ci_id].name for ci_id in by_ci if isinstance(ci_id, int)}
    class_names: dict[int | str, str] = {name: str(name) for name in by_class}
    tenant_names: dict[int | str, str] = {t: customer_names.get(t, str(t)) for t in by_customer if isinstance(t, int)}
    return Repeated(
        by_ci=_groups(by_ci, ci_names, ci_tenants, min_count),
        by_class=_groups(by_class, class_names, class_tenants, min_count),
        by_customer=_groups(by_customer, tenant_names, customer_tenants, min_count),
    )


@dataclass(frozen=True)
class SpikeRule:
    baseline_days: int = 30
    min_incidents: int = 3
    ratio: float = 2.0
    floor_per_day: float = 0.1
    min_days: float = 1.0

    def __post_init__(self) -> None:
        if self.baseline_days < 1:
            raise ValueError("baseline_days must be at least 1")
        if self.min_incidents < 1:
            raise ValueError("min_incidents must be at least 1")
        if self.ratio <= 0 or self.floor_per_day <= 0 or self.min_days <= 0:
            raise ValueError("ratio, floor_per_day and min_days must be more than 0")


@dataclass(frozen=True)
class WatchWindow:
    release_id: int
    key: str
    tenant_id: int
    deployed_at: dt.datetime
    watch_until: dt.datetime
    ci_ids: tuple[int, ...]


@dataclass(frozen=True)
class Spike:
    window: WatchWindow
    incident_ids: tuple[int, ...]
    days_watched: float
    rate: float
    baseline_count: int
    baseline_rate: float
    ratio: float
    flagged: bool

    @property
    def incidents_in_watch(self) -> int:
        return len(self.incident_ids)


def spike(window: WatchWindow, incidents: Iterable[IncidentRow], now: dt.datetime, rule: SpikeRule) -> Spike:
    """The incident rate of one release's watch period against its baseline."""
    watched = set(window.ci_ids)
    end = min(window.watch_until, now)
    baseline_start = window.deployed_at - rule.baseline_days * DAY
    in_watch: list[int] = []
    before = 0
    for incident in incidents:
        if incident.tenant_id != window.tenant_id or not watched.intersection(incident.ci_ids):
            continue
        if window.deployed_at <= incident.created_at <= end:
            in_watch.append(incident.id)
        elif baseline_start <= incident.created_at < window.deployed_at:
            before += 1
    days = max((end - window.deployed_at) / DAY, rule.min_days)
    rate = len(in_watch) / days
    baseline_rate = before / rule.baseline_days
    reference = max(baseline_rate, rule.floor_per_day)
    flagged = len(in_watch) >= rule.min_incidents and rate >= rule.ratio * reference
    return Spike(
        window=window,
        incident_ids=tuple(sorted(set(in_watch))),
        days_watched=days,
        rate=rate,
        baseline_count=before,
        baseline_rate=baseline_rate,
        ratio=rate / reference,
        flagged=flagged,
    )


def spikes(
    windows: Sequence[WatchWindow], incidents: Sequence[IncidentRow], now: dt.datetime, rule: SpikeRule
) -> list[Spike]:
    """:func:`spike` for every watch period, flagged ones first, then the newest deployment."""
    found = [spike(window, incidents, now, rule) for window in windows]
    found.sort(key=lambda s: (not s.flagged, -s.window.deployed_at.timestamp(), s.window.key))
    return found
