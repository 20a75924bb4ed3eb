"""Monitoring thresholds: which alerts breach, and the priority of the incident they open.

Pure rules: no database, no framework. The defaults are domain.md's; a customer may override
them per metric in its SLA terms, ``customer.sla["alert_thresholds"]``, for example::

    {"cpu_percent": {"above": 95, "for_s": 600},
     "event_log": {"levels": ["critical"], "priority": "high"},
     "firewall_attack": {"enabled": false}}

Four kinds of metric:

- ``above``: a number that breaches when strictly above ``above`` for at least ``for_s``
  seconds (cpu_percent, memory_percent);
- ``below``: a number that breaches when strictly below ``below`` for at least ``for_s``
  seconds (disk_system_free_gb, disk_data_free_percent);
- ``level``: one of a few named levels; those listed in ``levels`` breach (event_log, backup, ups);
- ``detection``: anything detected breaches (virus, firewall_attack): ``true``, a non-empty
  text (the threat's name) or a count above zero; ``false``, ``0``, ``""``, ``"none"`` or
  ``"clean"`` say nothing was found.

Default priorities (docs/alerts.md): virus, firewall attack, UPS critical and event log
critical are ``high`` (one system or site at risk now); processor, memory, disks, backup
failure, UPS warning and event log error are ``normal``; event log warning is ``low``.
A customer may set ``priority`` per metric (a level metric also takes one per level).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cmdb.errors import FieldProblem, InvalidInput

Kind = Literal["above", "below", "level", "detection"]
PRIORITIES = ("critical", "high", "normal", "low")
TERMS = "alert_thresholds"
NOT_DETECTED = frozenset({"", "none", "clean", "no", "false", "0", "ok"})


@dataclass(frozen=True)
class Metric:
    """A metric monitoring may report, with the bounds of a sane value and its defaults."""

    name: str
    label: str
    kind: Kind
    unit: str = ""
    minimum: float = 0.0
    maximum: float | None = None
    # level metrics: every value accepted, most severe first
    levels: tuple[str, ...] = ()
    default_limit: float | None = None
    default_for_s: float = 0.0
    default_levels: tuple[str, ...] = ()
    # the priority of a breach: per level for level metrics, else under the key ""
    default_priority: Mapping[str, str] = field(default_factory=dict)


METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric(
            "cpu_percent",
            "Processor",
            "above",
            "%",
            maximum=100,
            default_limit=90,
            default_for_s=300,
            default_priority={"": "normal"},
        ),
        Metric(
            "memory_percent", "Memory", "above", "%", maximum=100, default_limit=80, default_priority={"": "normal"}
        ),
        Metric(
            "disk_system_free_gb", "System disk free", "below", "GB", default_limit=2, default_priority={"": "normal"}
        ),
        Metric(
            "disk_data_free_percent",
            "Data disk free",
            "below",
            "%",
            maximum=100,
            default_limit=10,
            default_priority={"": "normal"},
        ),
        Metric(
            "event_log",
            "Event log",
            "level",
            levels=("critical", "error", "warning", "information", "verbose", "ok"),
            # domain.md names critical and warning; error lies between them, so it breaches too.
            default_levels=("critical", "error", "warning"),
            default_priority={"critical": "high", "error": "normal", "warning": "low"},
        ),
        Metric(
            "backup",
            "Backup",
            "level",
            levels=("failure", "warning", "success"),
            default_levels=("failure",),
            default_priority={"failure": "normal", "warning": "low"},
        ),
        Metric(
            "ups",
            "UPS",
            "level",
            levels=("critical", "warning", "ok"),
            default_levels=("critical", "warning"),
            default_priority={"critical": "high", "warning": "normal"},
        ),
        Metric("virus", "Virus detected", "detection", default_priority={"": "high"}),
        Metric("firewall_attack", "Firewall attack", "detection", default_priority={"": "high"}),
    )
}


@dataclass(frozen=True)
class Threshold:
    """The rule one metric is judged by for one customer."""

    metric: str
    kind: Kind
    limit: float | None = None
    for_s: float = 0.0
    levels: tuple[str, ...] = ()
    priority: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    source: Literal["default", "customer"] = "default"

    @classmethod
    def default(cls, metric: Metric) -> Threshold:
        return cls(
            metric=metric.name,
            kind=metric.kind,
            limit=metric.default_limit,
            for_s=metric.default_for_s,
            levels=metric.default_levels,
            priority=dict(metric.default_priority),
        )

    def priority_for(self, level: str = "") -> str:
        return self.priority.get(level) or self.priority.get("") or "normal"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"metric": self.metric, "kind": self.kind}
        if self.kind in ("above", "below"):
            data[self.kind] = _number(self.limit)
            data["for_s"] = _number(self.for_s)
            data["priority"] = self.priority_for()
        elif self.kind == "level":
            data["levels"] = list(self.levels)
            data["priority"] = {level: self.priority_for(level) for level in self.levels}
        else:
            data["priority"] = self.priority_for()
        data["enabled"] = self.enabled
        data["source"] = self.source
        return data

    def describe(self) -> str:
        if not self.enabled:
            return "never breaches (turned off for this customer)"
        unit = METRICS[self.metric].unit
        if self.kind in ("above", "below"):
            text = f"{self.kind} {_number(self.limit)} {unit}".rstrip()
            return text + (f" for at least {_number(self.for_s)} s" if self.for_s else "")
        if self.kind == "level":
            return " or ".join(self.levels)
        return "any detection"


@dataclass(frozen=True)
class Reading:
    """A validated alert value: ``number`` for numeric metrics, ``level`` for level metrics,
    ``detected`` (and ``text``, the threat named) for detections. ``stored`` is the text kept."""

    metric: str
    stored: str
    number: float | None = None
    level: str | None = None
    detected: bool | None = None
    text: str = ""


@dataclass(frozen=True)
class Evaluation:
    breached: bool
    priority: str | None
    title: str
    symptoms: str


@dataclass(frozen=True)
class AlertThresholds:
    """Every metric's threshold for one customer: the defaults, overridden by its SLA terms."""

    by_metric: Mapping[str, Threshold]

    @classmethod
    def defaults(cls) -> AlertThresholds:
        return cls({name: Threshold.default(metric) for name, metric in METRICS.items()})

    def __getitem__(self, metric: str) -> Threshold:
        return self.by_metric[metric]

    @classmethod
    def from_terms(cls, sla: Mapping[str, Any] | None) -> AlertThresholds:
        """Strict: refuses unknown metrics, keys and bad values with InvalidInput naming each
        field (``sla.alert_thresholds.cpu_percent.above``). For checking terms as they are set."""
        thresholds, problems = cls.resolve(sla)
        if problems:
            raise InvalidInput(problems)
        return thresholds

    @classmethod
    def resolve(cls, sla: Mapping[str, Any] | None) -> tuple[AlertThresholds, list[FieldProblem]]:
        """Lenient: a metric whose override is faulty keeps its default, and the problems come
        back beside the thresholds. Alerts keep flowing when a customer's terms are wrong."""
        base = f"sla.{TERMS}"
        defaults = cls.defaults()
        terms = (sla or {}).get(TERMS)
        if terms is None:
            return defaults, []
        if not isinstance(terms, Mapping):
            return defaults, [FieldProblem(base, 'must be an object such as {"cpu_percent": {"above": 95}}')]
        problems: list[FieldProblem] = []
        chosen = dict(defaults.by_metric)
        for name, override in terms.items():
            metric = METRICS.get(name)
            if metric is None:
                problems.append(FieldProblem(f"{base}.{name}", f"unknown metric; known: {', '.join(METRICS)}"))
                continue
            found: list[FieldProblem] = []
            threshold = _override(metric, chosen[name], override, f"{base}.{name}", found)
            if found:
                problems += found
            else:
                chosen[name] = threshold
        return cls(chosen), problems

    def as_dict(self) -> dict[str, Any]:
        return {name: threshold.as_dict() for name, threshold in self.by_metric.items()}


def _override(metric: Metric, default: Threshold, override: Any, where: str, problems: list[FieldProblem]) -> Threshold:
    if not isinstance(override, Mapping):
        problems.append(FieldProblem(where, "must be an object"))
        return default
    allowed = {"above": ("above", "for_s"), "below": ("below", "for_s"), "level": ("levels",), "detection": ()}[
        metric.kind
    ]
    known = {*allowed, "priority", "enabled"}
    for key in override:
        if key not in known:
            problems.append(FieldProblem(f"{where}.{key}", f"unknown; use {', '.join(sorted(known))}"))
    changes: dict[str, Any] = {"source": "customer"}
    if metric.kind in ("above", "below") and metric.kind in override:
        limit = override[metric.kind]
        if not _is_number(limit) or not _within(metric, float(limit)):
            problems.append(FieldProblem(f"{where}.{metric.kind}", f"must be a number {_bounds(metric)}"))
        else:
            changes["limit"] = float(limit)
    if "for_s" in override and "for_s" in allowed:
        seconds = override["for_s"]
        if not _is_number(seconds) or not 0 <= float(seconds) <= 86_400:
            problems.append(FieldProblem(f"{where}.for_s", "must be a number of seconds from 0 to 86400"))
        else:
            changes["for_s"] = float(seconds)
    if "levels" in override and metric.kind == "level":
        levels = override["levels"]
        if (
            not isinstance(levels, list)
            or not levels
            or not all(isinstance(level, str) and level in metric.levels for level in levels)
        ):
            problems.append(FieldProblem(f"{where}.levels", f"must be a non-empty list of {', '.join(metric.levels)}"))
        else:
            changes["levels"] = tuple(level for level in metric.levels if level in levels)
    if "priority" in override:
        priority = override["priority"]
        if isinstance(priority, str) and priority in PRIORITIES:
            changes["priority"] = {"": priority}
        elif (
            metric.kind == "level"
            and isinstance(priority, Mapping)
            and all(level in metric.levels and value in PRIORITIES for level, value in priority.items())
        ):
            changes["priority"] = {**default.priority, **priority}
        else:
            per_level = " or an object of level -> priority" if metric.kind == "level" else ""
            problems.append(FieldProblem(f"{where}.priority", f"must be one of {', '.join(PRIORITIES)}{per_level}"))
    if "enabled" in override:
        if not isinstance(override["enabled"], bool):
            problems.append(FieldProblem(f"{where}.enabled", "must be true or false"))
        else:
            changes["enabled"] = override["enabled"]
    return replace(default, **changes)


# ----------------------------------------------------------------------------------- alerts


def metric_named(name: Any) -> Metric:
    if not isinstance(name, str) or name not in METRICS:
        raise InvalidInput.field("metric", f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return METRICS[name]


def read_value(metric: Metric, value: Any) -> Reading:
    """The alert's value checked against what the metric can be; InvalidInput names `value`."""
    if metric.kind in ("above", "below"):
        if not _is_number(value) or not _within(metric, float(value)):
            raise InvalidInput.field("value", f"{metric.name} must be a number {_bounds(metric)}")
        number = float(value)
        return Reading(metric.name, str(_number(number)), number=number)
    if metric.kind == "level":
        level = value.strip().lower() if isinstance(value, str) else None
        if level not in metric.levels:
            raise InvalidInput.field("value", f"{metric.name} must be one of {', '.join(metric.levels)}")
        return Reading(metric.name, level, level=level)
    # detection: anything that names or counts a finding
    if value is None:
        raise InvalidInput.field("value", f"{metric.name} must say what was detected, or false")
    if isinstance(value, bool):
        return Reading(metric.name, "true" if value else "false", detected=value)
    if _is_number(value):
        return Reading(metric.name, str(_number(float(value))), detected=float(value) > 0)
    if isinstance(value, str):
        text = value.strip()
        return Reading(metric.name, text[:1000], detected=text.lower() not in NOT_DETECTED, text=text[:200])
    if isinstance(value, list | dict):
        text = json.dumps(value, sort_keys=True, default=str)
        return Reading(metric.name, text[:1000], detected=bool(value), text=text[:200])
    raise InvalidInput.field("value", f"{metric.name} must be true/false, a count or a text")


def read_duration(value: Any) -> float:
    if value is None:
        return 0.0
    if not _is_number(value) or not 0 <= float(value) <= 10 * 365 * 86_400:
        raise InvalidInput.field("duration_s", "must be a number of seconds, 0 or more")
    return float(value)


def evaluate(
    threshold: Threshold,
    reading: Reading,
    *,
    duration_s: float,
    ci_name: str,
    observed_at: dt.datetime,
    message: str = "",
) -> Evaluation:
    """Whether the reading breaches the threshold, the incident's priority, title and symptoms."""
    metric = METRICS[reading.metric]
    breached, level = False, ""
    if threshold.enabled:
        if threshold.kind == "above" and reading.number is not None and threshold.limit is not None:
            breached = reading.number > threshold.limit and duration_s >= threshold.for_s
        elif threshold.kind == "below" and reading.number is not None and threshold.limit is not None:
            breached = reading.number < threshold.limit and duration_s >= threshold.for_s
        elif threshold.kind == "level" and reading.level is not None:
            level = reading.level
            breached = level in threshold.levels
        elif threshold.kind == "detection":
            breached = bool(reading.detected)
    title = f"{_headline(metric, reading, duration_s)} on {ci_name}"[:200]
    lines = [
        f"Monitoring alert {metric.name} = {reading.stored}"
        + (f" for {_number(duration_s)} s" if duration_s else "")
        + f", observed {observed_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC.",
        f"Threshold ({threshold.source}): {threshold.describe()}.",
    ]
    if message:
        lines.append(f"Message: {message}")
    return Evaluation(
        breached=breached,
        priority=threshold.priority_for(level) if breached else None,
        title=title,
        symptoms="\n".join(lines),
    )


def repeat_summary(reading: Reading, duration_s: float, observed_at: dt.datetime, message: str = "") -> str:
    text = (
        f"Repeat alert {reading.metric} = {reading.stored}"
        + (f" for {_number(duration_s)} s" if duration_s else "")
        + f" at {observed_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
    )
    return f"{text}: {message}"[:500] if message else text


def _headline(metric: Metric, reading: Reading, duration_s: float) -> str:
    if metric.kind == "above":
        minutes = f" for {_number(round(duration_s / 60, 1))} min" if duration_s else ""
        return f"{metric.label} at {reading.stored} {metric.unit}{minutes}"
    if metric.kind == "below":
        return f"{metric.label} {reading.stored} {metric.unit}"
    if metric.kind == "level":
        return f"{metric.label} {reading.level}"
    return f"{metric.label}: {reading.text}" if reading.text else metric.label


# ----------------------------------------------------------------------------------- helpers


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _within(metric: Metric, value: float) -> bool:
    return value >= metric.minimum and (metric.maximum is None or value <= metric.maximum)


def _bounds(metric: Metric) -> str:
    minimum = _number(metric.minimum)
    if metric.maximum is None:
        return f"of at least {minimum}"
    return f"from {minimum} to {_number(metric.maximum)}"


def _number(value: float | None) -> Any:
    """Whole numbers as ints, so answers read 90 rather than 90.0."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


__all__ = [
    "METRICS",
    "PRIORITIES",
    "AlertThresholds",
    "Evaluation",
    "Metric",
    "Reading",
    "Threshold",
    "evaluate",
    "metric_named",
    "read_duration",
    "read_value",
    "repeat_summary",
]
