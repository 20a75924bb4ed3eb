"""Change windows and blackout periods.

A *change window* is a recurring weekly period, agreed with the customer, during which changes to
a configuration item may be carried out ("Saturdays 22:00 for 6 hours, Europe/London"). A
*blackout* is a one-off period during which no change may be made at all (a year-end freeze, a
product launch).

Scheduling rule (domain, "Change" step 7): a change's planned window must fall inside the change
windows of every CI it touches and outside every blackout, unless it is an emergency change; the
emergency exemption is the caller's decision, not this module's.

Windows are defined in local wall time. An occurrence starts at the window's wall-clock start on
each listed weekday and ends at the wall-clock time ``duration`` later, so "22:00 for 6 hours"
always ends at 04:00 local, even on the night the clocks change (the occurrence then lasts five or
seven real hours). Wall times are resolved with :func:`cmdb.calendar.local_to_utc`: an ambiguous
time means its first occurrence, a skipped time means the moment the clocks jump.

Pure module: standard library, ``zoneinfo`` and :mod:`cmdb.calendar` only. All datetimes must be
timezone-aware; results are in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cmdb.calendar import format_hhmm, load_timezone, local_to_utc, parse_hhmm, require_aware

__all__ = [
    "MAX_WINDOW_DURATION",
    "SUGGESTION_HORIZON",
    "Blackout",
    "ChangeWindow",
    "ScheduleViolation",
    "blackouts_hit",
    "check_schedule",
    "fits_windows",
    "next_fitting_start",
    "occurrences",
    "validate_window_dict",
]

MAX_WINDOW_DURATION = timedelta(days=7)
_MAX_DURATION_MINUTES = int(MAX_WINDOW_DURATION.total_seconds() // 60)
_WINDOW_FIELDS = ("name", "days", "start", "duration_minutes", "timezone", "valid_from", "valid_until")
_DAY_NAMES = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}

#: How far ahead :func:`check_schedule` looks for a slot to suggest when a change does not fit.
SUGGESTION_HORIZON = timedelta(days=62)


@dataclass(frozen=True)
class ChangeWindow:
    """A recurring weekly change window.

    It opens at ``start`` (local wall time in ``timezone``) on each ISO weekday in ``days``
    (1 = Monday .. 7 = Sunday) and stays open for ``duration`` of wall-clock time, which may
    cross midnight and may be up to seven days. ``valid_from`` / ``valid_until`` (inclusive,
    either optional) bound the local dates on which an occurrence may *start*.
    """

    name: str
    days: frozenset[int]
    start: time
    duration: timedelta
    timezone: str
    valid_from: date | None = None
    valid_until: date | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("name: a change window needs a name")
        days = frozenset(self.days)
        if not days:
            raise ValueError("days: a change window needs at least one weekday")
        for d in days:
            if not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 7:
                raise ValueError(f"days: {d!r} is not an ISO weekday (1 = Monday .. 7 = Sunday)")
        object.__setattr__(self, "days", days)
        if not isinstance(self.start, time) or self.start.tzinfo is not None:
            raise ValueError("start: must be a local time of day without a time zone")
        if not isinstance(self.duration, timedelta) or self.duration <= timedelta(0):
            raise ValueError("duration: must be a positive length of time")
        if self.duration > MAX_WINDOW_DURATION:
            raise ValueError("duration: a weekly window cannot last longer than 7 days")
        load_timezone(self.timezone)
        for name in ("valid_from", "valid_until"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
                raise ValueError(f"{name}: must be a date")
        if self.valid_from is not None and self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until: must not be before valid_from")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        """Short human description, e.g. ``"Weekend (Sat 22:00 for 6h, Europe/London)"``."""
        days = ",".join(_DAY_NAMES[d] for d in sorted(self.days))
        length = _format_duration(self.duration)
        return f"{self.name} ({days} {format_hhmm(self.start)} for {length}, {self.timezone})"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ChangeWindow:
        """Build a window from its JSON form (see :func:`validate_window_dict`)."""
        problems = validate_window_dict(d)
        if problems:
            raise ValueError("; ".join(f"{f}: {r}" for f, r in problems))
        return cls(
            name=d["name"],
            days=frozenset(d["days"]),
            start=parse_hhmm(d["start"], "start"),
            duration=timedelta(minutes=d["duration_minutes"]),
            timezone=d["timezone"],
            valid_from=date.fromisoformat(d["valid_from"]) if d.get("valid_from") else None,
            valid_until=date.fromisoformat(d["valid_until"]) if d.get("valid_until") else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form; the duration is stored in whole minutes."""
        return {
            "name": self.name,
            "days": sorted(self.days),
            "start": format_hhmm(self.start),
            "duration_minutes": int(self.duration.total_seconds() // 60),
            "timezone": self.timezone,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }


@dataclass(frozen=True)
class Blackout:
    """A period ``[start, end)`` during which no change may be carried out, whatever the windows say."""

    start: datetime
    end: datetime
    reason: str

    def __post_init__(self) -> None:
        require_aware(self.start, "start")
        require_aware(self.end, "end")
        if self.end <= self.start:
            raise ValueError("end: a blackout must end after it starts")


@dataclass(frozen=True)
class ScheduleViolation:
    """One reason a planned change window is not allowed.

    ``kind`` is ``"outside_window"`` (``ci`` names the CI whose windows it misses) or
    ``"blackout"`` (``ci`` is None: blackouts apply to the whole schedule). ``detail`` is a
    sentence a change manager can act on.
    """

    kind: Literal["outside_window", "blackout"]
    ci: str | None
    detail: str


# ---------------------------------------------------------------------------------- occurrences


def occurrences(window: ChangeWindow, range_start: datetime, range_end: datetime) -> list[tuple[datetime, datetime]]:
    """Every occurrence of ``window`` that overlaps ``[range_start, range_end)``, as UTC pairs.

    Occurrences are returned whole (not clipped to the range), ordered by start. An occurrence
    that the clock change swallows entirely (a short window inside the skipped hour) is omitted.
    """
    require_aware(range_start, "range_start")
    require_aware(range_end, "range_end")
    if range_end <= range_start:
        return []
    tz = window.tz
    # An occurrence that started up to `duration` (plus a day of clock-change slack) before the
    # range can still reach into it.
    first = range_start.astimezone(tz).date() - timedelta(days=window.duration.days + 2)
    last = range_end.astimezone(tz).date() + timedelta(days=1)
    result: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        if _starts_on(window, day):
            wall_start = datetime.combine(day, window.start)
            wall_end = wall_start + window.duration
            occ_start = local_to_utc(day, window.start, tz)
            occ_end = local_to_utc(wall_end.date(), wall_end.time(), tz)
            if occ_start < occ_end and occ_start < range_end and range_start < occ_end:
                result.append((occ_start, occ_end))
        day += timedelta(days=1)
    result.sort()
    return result


def _starts_on(window: ChangeWindow, day: date) -> bool:
    return (
        day.isoweekday() in window.days
        and (window.valid_from is None or day >= window.valid_from)
        and (window.valid_until is None or day <= window.valid_until)
    )


def _open_periods(
    windows: Iterable[ChangeWindow], range_start: datetime, range_end: datetime
) -> list[tuple[datetime, datetime]]:
    """All occurrences of ``windows`` overlapping the range, merged where they overlap or touch."""
    spans = sorted(occ for w in windows for occ in occurrences(w, range_start, range_end))
    merged: list[tuple[datetime, datetime]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def fits_windows(start: datetime, end: datetime, windows: Sequence[ChangeWindow]) -> bool:
    """True if the planned interval ``[start, end)`` lies entirely inside the CI's change windows.

    Rules:

    * No window defined (``windows`` empty) means no restriction: the answer is True. A CI is
      only constrained once someone has agreed windows for it.
    * Otherwise the interval must be covered without a gap by the open time of the windows.
      Occurrences that overlap or touch count as one continuous open period, so a window
      "Sat, Sun 00:00 for 24 hours" admits a change from Saturday 23:00 to Sunday 01:00, and so
      do two distinct windows that meet end to start. In the common case of non-touching
      windows this is exactly "inside one occurrence of some window".
    """
    require_aware(start, "start")
    require_aware(end, "end")
    if end <= start:
        raise ValueError("end: the planned window must end after it starts")
    if not windows:
        return True
    return any(s <= start and end <= e for s, e in _open_periods(windows, start, end))


def next_fitting_start(
    start: datetime,
    duration: timedelta,
    windows: Sequence[ChangeWindow],
    horizon: timedelta = SUGGESTION_HORIZON,
) -> datetime | None:
    """Earliest moment at or after ``start`` where a change of ``duration`` fits the windows.

    Returns None if nothing fits within ``horizon``. With no windows the answer is ``start``.
    Blackouts are not considered here.
    """
    require_aware(start, "start")
    if not windows:
        return start.astimezone(UTC)
    for s, e in _open_periods(windows, start, start + horizon + duration):
        candidate = max(s, start.astimezone(UTC))
        if candidate + duration <= e:
            return candidate
    return None


# ------------------------------------------------------------------------------------ blackouts


def blackouts_hit(start: datetime, end: datetime, blackouts: Sequence[Blackout]) -> list[Blackout]:
    """The blackouts that overlap the half-open interval ``[start, end)``, in the order given.

    Touching is not overlapping: a change ending exactly when a blackout starts (or starting
    exactly when one ends) is allowed.
    """
    require_aware(start, "start")
    require_aware(end, "end")
    return [b for b in blackouts if b.start < end and start < b.end]


# ------------------------------------------------------------------------------------- schedule


def check_schedule(
    start: datetime,
    end: datetime,
    windows_by_ci: Mapping[str, Sequence[ChangeWindow]],
    blackouts: Sequence[Blackout],
) -> list[ScheduleViolation]:
    """Every reason the planned window ``[start, end)`` may not be used; empty means it is allowed.

    One ``outside_window`` violation per CI (in mapping order) whose change windows do not
    contain the planned window (a CI without windows imposes none), then one ``blackout``
    violation per blackout it overlaps. Emergency changes bypass these rules; that decision
    belongs to the caller.
    """
    require_aware(start, "start")
    require_aware(end, "end")
    if end <= start:
        raise ValueError("end: the planned window must end after it starts")
    planned = f"{_fmt_utc(start)} to {_fmt_utc(end)}"
    violations: list[ScheduleViolation] = []
    for ci, windows in windows_by_ci.items():
        if fits_windows(start, end, windows):
            continue
        names = "; ".join(w.describe() for w in windows)
        suggestion = next_fitting_start(start, end - start, windows)
        if suggestion is None:
            advice = (
                f"no slot of that length opens in the next {SUGGESTION_HORIZON.days} days; "
                "shorten the change or agree a longer window"
            )
        else:
            tz = windows[0].tz
            advice = f"the next slot that fits starts {_fmt_local(suggestion, tz)} ({_fmt_utc(suggestion)})"
        violations.append(
            ScheduleViolation(
                kind="outside_window",
                ci=ci,
                detail=(f"The planned window {planned} is outside the change windows of {ci} ({names}); {advice}."),
            )
        )
    for b in blackouts_hit(start, end, blackouts):
        violations.append(
            ScheduleViolation(
                kind="blackout",
                ci=None,
                detail=(
                    f'The planned window {planned} overlaps the blackout "{b.reason}" '
                    f"({_fmt_utc(b.start)} to {_fmt_utc(b.end)}); plan it to end by {_fmt_utc(b.start)} "
                    f"or to start at {_fmt_utc(b.end)} or later."
                ),
            )
        )
    return violations


def _fmt_utc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fmt_local(dt: datetime, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%a %Y-%m-%d %H:%M ") + str(tz.key)


def _format_duration(d: timedelta) -> str:
    minutes = int(d.total_seconds() // 60)
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours}h{mins:02d}"
    return f"{hours}h" if hours else f"{mins}min"


# ------------------------------------------------------------------------------------ validation


def validate_window_dict(d: Any) -> list[tuple[str, str]]:
    """Check the JSON form of a change window; return every problem as ``(field, reason)``.

    Expected: ``{"name": str, "days": [1..7], "start": "HH:MM", "duration_minutes": int > 0,
    "timezone": IANA name}``, optionally ``"valid_from"`` / ``"valid_until"`` as ISO dates. An
    empty list means :meth:`ChangeWindow.from_dict` will succeed.
    """
    if not isinstance(d, Mapping):
        return [("window", "must be a JSON object")]
    problems: list[tuple[str, str]] = [(str(k), "unknown field") for k in d if k not in _WINDOW_FIELDS]
    for required in ("name", "days", "start", "duration_minutes", "timezone"):
        if required not in d:
            problems.append((required, "is required"))

    name = d.get("name")
    if "name" in d and (not isinstance(name, str) or not name.strip()):
        problems.append(("name", "must be a non-empty string"))

    if "days" in d:
        days = d["days"]
        if not isinstance(days, list | tuple) or not days:
            problems.append(("days", "must be a non-empty list of ISO weekdays (1 = Monday .. 7 = Sunday)"))
        else:
            bad = [x for x in days if isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 7]
            if bad:
                problems.append(("days", f"{bad[0]!r} is not an ISO weekday (1 = Monday .. 7 = Sunday)"))

    if "start" in d:
        problems.extend(_check(lambda: parse_hhmm(d["start"], "start")))

    if "duration_minutes" in d:
        minutes = d["duration_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
            problems.append(("duration_minutes", "must be a whole number of minutes greater than 0"))
        elif minutes > _MAX_DURATION_MINUTES:
            problems.append(("duration_minutes", f"must be at most {_MAX_DURATION_MINUTES} (7 days)"))

    if "timezone" in d:
        problems.extend(_check(lambda: load_timezone(d["timezone"])))

    bounds: dict[str, date] = {}
    for key in ("valid_from", "valid_until"):
        value = d.get(key)
        if value is None:
            continue
        try:
            if not isinstance(value, str):
                raise ValueError
            bounds[key] = date.fromisoformat(value)
        except ValueError:
            problems.append((key, f"{value!r} is not an ISO date (YYYY-MM-DD)"))
    if len(bounds) == 2 and bounds["valid_until"] < bounds["valid_from"]:
        problems.append(("valid_until", "must not be before valid_from"))
    return problems


def _check(check: Callable[[], object]) -> list[tuple[str, str]]:
    try:
        check()
    except ValueError as exc:
        field_name, _, reason = str(exc).partition(": ")
        return [(field_name, reason)]
    return []
