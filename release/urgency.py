"""The patch urgency schedule: when a patch must be tested and approved, and how it stands.

Pure rules: the standard library, :mod:`cmdb.calendar` and the vocabularies of :mod:`cmdb.models`
and :mod:`change.models`; no database, no framework. See ``docs/urgency.md`` for the rules in
prose.

Domain ("Release and the patch urgency schedule"): a software update has one of five urgency
levels (moderate and low share a deadline) and must be tested and approved for deployment within
Critical 3 business days, Important 10 business days, Moderate and Low 3 months, Service release
6 months, Major revision 1 year. A customer's SLA may override any of them (``patch_schedule``)
and the share of the time after which a patch counts as at risk (``patch_at_risk_share``,
default 75 %). The clock starts when the update became available (the vendor's release date) or,
if that is unknown, when the RFC was recorded.

Deadlines are computed in the customer's business calendar. N business days: the clock starts
at the next opening if the start is outside business hours, and the deadline is the N-th
business day after the clock's local date, at the clock's local time of day (exactly
:meth:`cmdb.calendar.BusinessCalendar.add_business_days`). Months and years: calendar months are
added to the start's local date (clamped to the month's end: 31 March + 3 months is 30 June),
a date that is not a business day moves forward to the next business day (the date
:meth:`cmdb.calendar.BusinessCalendar.add_months_rolled` lands on), and the deadline is that
day's closing time. Not the start's time of day: with clamping, 30 March 21:00 and 31 March
00:00 both land on 30 June, and keeping their times would make the later start due earlier.
Closing time keeps deadlines monotonic in the start and reads as people say it ("due on
1 February" means by close of business that day).

The share of the time used is measured in business time for business-day deadlines (a weekend
does not eat into a 3-day critical window) and in wall time for month and year deadlines.

Evaluating tens of thousands of patches at once is the hot path of the urgency board, so
:class:`BusinessTimeline` memoises a customer's business days over the range of dates a batch
touches, with cumulative business time, and answers every question with a few bisections on
integer microseconds. The property tests check it against :class:`BusinessCalendar`.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from change.models import Urgency
from cmdb.calendar import END_OF_DAY, SEARCH_LIMIT_DAYS, BusinessCalendar, add_months, local_to_utc, require_aware
from cmdb.models import Choice

__all__ = [
    "DEFAULT_AT_RISK_SHARE",
    "DEFAULT_SCHEDULE",
    "BusinessTimeline",
    "CustomerUrgency",
    "Deadline",
    "LackingCI",
    "PatchCompliance",
    "PatchFacts",
    "PatchSchedule",
    "PatchState",
    "UrgencyView",
    "calendar_of",
    "clock_start",
    "due_time",
    "evaluate",
    "micros",
    "timeline_for",
    "validate_patch_terms",
]

#: Share of the allowed time after which an unmet patch is at risk, unless the SLA says otherwise.
DEFAULT_AT_RISK_SHARE = 0.75

#: Upper bounds of an override: beyond them the value is surely a typo (a year of business days).
MAX_BUSINESS_DAYS = 260
MAX_MONTHS = 120
MAX_YEARS = 10

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_DAY = 86_400_000_000


class PatchState(Choice):
    """Where a patch stands against its deadline."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OVERDUE = "overdue"
    MET = "met"

    @property
    def label(self) -> str:
        return _STATE_LABELS[self]

    @property
    def colour(self) -> str:
        return _STATE_COLOURS[self]


_STATE_LABELS: dict[StrEnum, str] = {
    PatchState.ON_TRACK: "On track",
    PatchState.AT_RISK: "At risk",
    PatchState.OVERDUE: "Overdue",
    PatchState.MET: "Met",
}
_STATE_COLOURS: dict[StrEnum, str] = {
    PatchState.ON_TRACK: "green",
    PatchState.AT_RISK: "orange",
    PatchState.OVERDUE: "red",
    PatchState.MET: "blue",
}


@dataclass(frozen=True)
class Deadline:
    """A deadline of ``business_days`` business days, or of ``months`` calendar months (a year is
    12 months). Exactly one of the two is positive."""

    business_days: int = 0
    months: int = 0

    def __post_init__(self) -> None:
        if (self.business_days > 0) == (self.months > 0) or self.business_days < 0 or self.months < 0:
            raise ValueError("a deadline is either a positive number of business days or of months")

    @property
    def in_business_days(self) -> bool:
        return self.business_days > 0

    def describe(self) -> str:
        if self.business_days:
            return f"{self.business_days} business day{'s' if self.business_days != 1 else ''}"
        if self.months % 12 == 0:
            years = self.months // 12
            return f"{years} year{'s' if years != 1 else ''}"
        return f"{self.months} month{'s' if self.months != 1 else ''}"

    def as_dict(self) -> dict[str, int]:
        return {"business_days": self.business_days} if self.business_days else {"months": self.months}


DEFAULT_SCHEDULE: Mapping[Urgency, Deadline] = {
    Urgency.CRITICAL: Deadline(business_days=3),
    Urgency.IMPORTANT: Deadline(business_days=10),
    Urgency.MODERATE: Deadline(months=3),
    Urgency.LOW: Deadline(months=3),
    Urgency.SERVICE_RELEASE: Deadline(months=6),
    Urgency.MAJOR_REVISION: Deadline(months=12),
}


# ------------------------------------------------------------------------------ SLA overrides


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _deadline_problems(path: str, value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, Mapping):
        return [(path, 'must be an object such as {"business_days": 3} or {"months": 3}')]
    units = {"business_days": MAX_BUSINESS_DAYS, "months": MAX_MONTHS, "years": MAX_YEARS}
    problems = [
        (f"{path}.{key}", "unknown unit; use business_days, months or years") for key in value if key not in units
    ]
    given = [key for key in value if key in units]
    if len(given) != 1:
        if not problems:
            problems.append((path, "give exactly one of business_days, months or years"))
        return problems
    unit = given[0]
    amount = value[unit]
    if not _whole(amount) or not 1 <= amount <= units[unit]:
        problems.append((f"{path}.{unit}", f"must be a whole number from 1 to {units[unit]}"))
    return problems


def validate_patch_terms(sla: Any) -> list[tuple[str, str]]:
    """Every problem with the patch terms of an SLA, as ``(field, reason)``; empty means valid.

    ``sla.patch_schedule`` maps urgency levels to ``{"business_days": N}``, ``{"months": N}`` or
    ``{"years": N}``; ``sla.patch_at_risk_share`` is a number strictly between 0 and 1. Other SLA
    keys are not this module's business and are not looked at.
    """
    if not isinstance(sla, Mapping):
        return [("sla", "must be an object")]
    problems: list[tuple[str, str]] = []
    if "patch_schedule" in sla:
        schedule = sla["patch_schedule"]
        if not isinstance(schedule, Mapping):
            problems.append(("sla.patch_schedule", "must be an object mapping urgency levels to deadlines"))
        else:
            known = Urgency.values()
            for level, value in schedule.items():
                path = f"sla.patch_schedule.{level}"
                if level not in known:
                    problems.append((path, f"unknown urgency level; known: {', '.join(known)}"))
                else:
                    problems += _deadline_problems(path, value)
    if "patch_at_risk_share" in sla:
        share = sla["patch_at_risk_share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
            problems.append(("sla.patch_at_risk_share", "must be a number between 0 and 1 (exclusive), e.g. 0.75"))
    return problems


def _deadline_of(value: Mapping[str, Any]) -> Deadline:
    if "business_days" in value:
        return Deadline(business_days=int(value["business_days"]))
    if "months" in value:
        return Deadline(months=int(value["months"]))
    return Deadline(months=12 * int(value["years"]))


@dataclass(frozen=True)
class PatchSchedule:
    """The deadlines and the at-risk share that apply to one customer."""

    deadlines: Mapping[Urgency, Deadline] = field(default_factory=lambda: dict(DEFAULT_SCHEDULE))
    at_risk_share: float = DEFAULT_AT_RISK_SHARE

    @classmethod
    def from_sla(cls, sla: Mapping[str, Any] | None) -> PatchSchedule:
        """The default schedule with the SLA's valid overrides applied. An invalid override is
        ignored here (the default stands) so one bad SLA cannot stop the board or escalation;
        :func:`validate_patch_terms` reports it."""
        deadlines = dict(DEFAULT_SCHEDULE)
        share = DEFAULT_AT_RISK_SHARE
        terms = sla or {}
        schedule = terms.get("patch_schedule")
        if isinstance(schedule, Mapping):
            for level, value in schedule.items():
                if level in Urgency.values() and not _deadline_problems("", value):
                    deadlines[Urgency(level)] = _deadline_of(value)
        raw_share = terms.get("patch_at_risk_share")
        if isinstance(raw_share, int | float) and not validate_patch_terms({"patch_at_risk_share": raw_share}):
            share = float(raw_share)
        return cls(deadlines, share)

    def deadline(self, level: Urgency | str) -> Deadline:
        return self.deadlines[Urgency(level)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "deadlines": {level.value: self.deadlines[level].as_dict() for level in Urgency},
            "at_risk_share": self.at_risk_share,
        }


def calendar_of(calendar: Mapping[str, Any], timezone: str | None, holiday_region: str | None) -> BusinessCalendar:
    """A customer's business calendar from its stored form. The stored calendar was validated
    when saved; if it no longer loads (a time zone dropped from tzdata, say) the deadlines fall
    back to the zone and region alone rather than failing the whole board."""
    merged = {**calendar, "timezone": timezone or calendar.get("timezone") or "UTC", "holiday_region": holiday_region}
    try:
        return BusinessCalendar.from_dict(merged)
    except ValueError:
        try:
            return BusinessCalendar(timezone=merged["timezone"], holiday_region=holiday_region or None)
        except ValueError:
            return BusinessCalendar()


def clock_start(available_at: datetime | None, created_at: datetime) -> datetime:
    """When the clock starts: the update's availability if known, else when it was recorded."""
    return require_aware(available_at if available_at is not None else created_at, "clock_start").astimezone(UTC)


# --------------------------------------------------------------------------- business timeline


def micros(moment: datetime) -> int:
    """Microseconds since the epoch: the exact integer the timeline works in."""
    return (moment - _EPOCH) // _US


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _US


def _instant(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


#: Days computed once per process for every calendar that shares time zone, opening hours,
#: working week and holiday region (customers differ mostly in their closure days only).
_RAW_DAYS: dict[tuple[Any, ...], dict[int, tuple[int, int, int, bool]]] = {}
_TIMELINES: OrderedDict[BusinessCalendar, BusinessTimeline] = OrderedDict()
_CACHE_CALENDARS = 256


def _raw_days(calendar: BusinessCalendar) -> dict[int, tuple[int, int, int, bool]]:
    key = (calendar.timezone, calendar.opens, calendar.closes, calendar.working_days, calendar.holiday_region)
    found = _RAW_DAYS.get(key)
    if found is None:
        if len(_RAW_DAYS) >= _CACHE_CALENDARS:
            _RAW_DAYS.clear()
        found = _RAW_DAYS[key] = {}
    return found


def timeline_for(calendar: BusinessCalendar) -> BusinessTimeline:
    """The process's timeline of ``calendar`` (the least recently used are dropped). Safe to
    share between requests of one event loop: every question is answered without awaiting."""
    timeline = _TIMELINES.get(calendar)
    if timeline is None:
        timeline = _TIMELINES[calendar] = BusinessTimeline(calendar)
        if len(_TIMELINES) > _CACHE_CALENDARS:
            _TIMELINES.popitem(last=False)
    else:
        _TIMELINES.move_to_end(calendar)
    return timeline


class BusinessTimeline:
    """A customer's business days over a range of dates, memoised, with cumulative business time.

    Day ``i`` is the local date ``first + i``. For each day: the UTC instant of local midnight,
    the business interval ``[open, close)`` (empty on a day without business time) and the
    business time before it, all in integer microseconds since the epoch, so that sums and
    comparisons are exact. The range grows in both directions as questions need it.
    """

    _GROW = 64

    def __init__(self, calendar: BusinessCalendar, around: date | None = None) -> None:
        self.calendar = calendar
        self.tz = calendar.tz
        self._first = (around or date(2026, 1, 1)).toordinal()
        self._midnight: list[int] = []
        self._open: list[int] = []
        self._close: list[int] = []
        self._cum: list[int] = [0]  # business time before day i; one longer than the day lists
        self._business: list[int] = []  # indices of the business days, ascending
        self._months_due: dict[tuple[int, int], int] = {}  # (start date ordinal, months) -> due
        self._extend(self._GROW)

    # --- building -------------------------------------------------------------------------

    def _extend(self, days: int) -> None:
        closures = self.calendar.closure_days
        raw = _raw_days(self.calendar)
        for _ in range(days):
            i = len(self._open)
            ordinal = self._first + i
            found = raw.get(ordinal)
            if found is None:
                found = raw[ordinal] = self._raw_day(date.fromordinal(ordinal))
            midnight, start, end, counts = found
            self._midnight.append(midnight)
            # Counting days follows is_business_day, like BusinessCalendar; a business day whose
            # opening hours vanish into a clock change has no business time but still counts.
            if counts and (not closures or date.fromordinal(ordinal) not in closures):
                self._business.append(i)
            else:
                start = end = midnight
            self._open.append(start)
            self._close.append(end)
            self._cum.append(self._cum[-1] + end - start)

    def _raw_day(self, day: date) -> tuple[int, int, int, bool]:
        """Local midnight, opening and closing (UTC microseconds) and whether the day is a
        working day that is no public holiday: all a day needs but the customer's closures."""
        cal = self.calendar
        midnight = self._wall(day, time(0, 0))
        if day.isoweekday() not in cal.working_days or cal.is_holiday(day):
            return midnight, midnight, midnight, False
        start, end = self._wall(day, cal.opens), self._wall(day, cal.closes)
        return (midnight, start, end, True) if end > start else (midnight, midnight, midnight, True)

    def _wall(self, day: date, at: time) -> int:
        """``local_to_utc(day, at)`` in microseconds, with a fast path for the usual case of a
        wall time that is neither skipped nor repeated (both folds give the same offset)."""
        if at == END_OF_DAY:
            return self._wall(day + timedelta(days=1), time(0, 0))
        local = datetime.combine(day, at, tzinfo=self.tz)
        offset = local.utcoffset()
        if offset is not None and offset == local.replace(fold=1).utcoffset():
            return (local.replace(tzinfo=None) - offset - _NAIVE_EPOCH) // _US
        return _micros(local_to_utc(day, at, self.tz))

    def _rebuild_from(self, first: int) -> None:
        last = self._first + len(self._open)
        self._first = first
        self._midnight, self._open, self._close, self._cum, self._business = [], [], [], [0], []
        self._extend(last - first)

    def _index(self, ordinal: int) -> int:
        """Position of the local date with this ordinal, growing the range to include it."""
        if ordinal < self._first:
            # Doubling the range backwards keeps a batch in descending order linear, not quadratic.
            self._rebuild_from(min(ordinal - self._GROW, self._first - len(self._open)))
        i = ordinal - self._first
        if i >= len(self._open):
            self._extend(i - len(self._open) + self._GROW)
        return i

    def _day_of(self, micros: int) -> int:
        """Position of the local date on which instant ``micros`` falls."""
        if micros < self._midnight[0]:
            self._index(_instant(micros).astimezone(self.tz).date().toordinal())
        while micros >= self._midnight[-1]:
            self._extend(self._GROW)
        return bisect_right(self._midnight, micros) - 1

    def _business_at_or_after(self, i: int) -> int:
        """The position in ``_business`` of the first business day on or after day ``i``."""
        limit = i + SEARCH_LIMIT_DAYS
        while True:
            p = bisect_left(self._business, i)
            if p < len(self._business):
                return p
            if len(self._open) > limit:
                raise ValueError(
                    f"closure_days: calendar has no business day in the {SEARCH_LIMIT_DAYS} days after "
                    f"{date.fromordinal(self._first + i).isoformat()} "
                    "(check working_days, holiday_region and closure_days)"
                )
            self._extend(self._GROW)

    def _business_day(self, p: int) -> int:
        """Day index of the ``p``-th business day (0-based), growing the range as needed."""
        while p >= len(self._business):
            self._business_at_or_after(len(self._open))
        return self._business[p]

    # --- questions ------------------------------------------------------------------------

    def cover(self, day: date) -> None:
        """Grow the range to include ``day`` now, so that a batch starting there never renumbers
        the running totals in the middle of an evaluation."""
        self._index(day.toordinal())

    def local_date(self, micros: int) -> date:
        i = self._day_of(micros)  # before reading _first: it may grow the range backwards
        return date.fromordinal(self._first + i)

    def next_opening(self, micros: int) -> int:
        """``micros`` if it is business time, else the next moment business time starts."""
        i = self._day_of(micros)
        if self._open[i] < self._close[i]:
            if micros < self._open[i]:
                return self._open[i]
            if micros < self._close[i]:
                return micros
        p = self._business_at_or_after(i + 1)
        while True:
            j = self._business_day(p)
            if self._open[j] < self._close[j]:
                return self._open[j]
            p += 1

    def elapsed(self, micros: int) -> int:
        """Business time from the start of the range to ``micros``."""
        i = self._day_of(micros)
        return self._cum[i] + min(max(micros - self._open[i], 0), self._close[i] - self._open[i])

    def instant_at(self, elapsed: int) -> int:
        """The first instant at which :meth:`elapsed` reaches ``elapsed`` (> 0): a target used up
        exactly at closing time is reached at closing time, as in ``add_business_hours``."""
        while self._cum[-1] < elapsed:
            self._extend(self._GROW)
        i = bisect_left(self._cum, elapsed) - 1  # the day during which the running total reaches it
        return self._open[i] + (elapsed - self._cum[i])

    def due_after_business_days(self, start: int, n: int) -> int:
        """``n`` (>= 1) business days after ``start``, at the clock's local time of day (all in
        microseconds)."""
        return self.business_deadline(start, n)[0]

    def business_deadline(self, start: int, n: int) -> tuple[int, int, int]:
        """``(due, elapsed at the start, elapsed at the due time)`` for a deadline of ``n``
        business days: the due time and the business time around it in one pass. On days
        without a clock change, local time of day is the distance from local midnight, so the
        due time is a sum; days with one take the exact, slower way."""
        clock = self.next_opening(start)
        i = self._day_of(clock)
        j = self._business_day(self._business_at_or_after(i + 1) + n - 1)
        if j + 1 >= len(self._open):
            self._extend(self._GROW)  # the next midnight, for the length of day j
        midnight, opens, closes, cum = self._midnight, self._open, self._close, self._cum
        if midnight[i + 1] - midnight[i] == _DAY and midnight[j + 1] - midnight[j] == _DAY:
            due = midnight[j] + clock - midnight[i]
        else:
            wall = _instant(clock).astimezone(self.tz).time().replace(fold=0)
            due = self._wall(date.fromordinal(self._first + j), wall)
            j = self._day_of(due)
        at_clock = cum[i] + min(max(clock - opens[i], 0), closes[i] - opens[i])
        at_due = cum[j] + min(max(due - opens[j], 0), closes[j] - opens[j])
        return due, at_clock, at_due

    def due_after_months(self, start: int, months: int) -> int:
        """Closing time of the first business day on or after the start's local date plus
        ``months`` calendar months (see the module docstring for why not the start's time)."""
        i = self._day_of(start)  # before reading _first: it may grow the range backwards
        ordinal = self._first + i
        due = self._months_due.get((ordinal, months))
        if due is None:
            target = self._index(add_months(date.fromordinal(ordinal), months).toordinal())
            day = date.fromordinal(self._first + self._business_day(self._business_at_or_after(target)))
            due = self._months_due[(ordinal, months)] = self._wall(day, self.calendar.closes)
        return due

    def add_business_days(self, start: datetime, n: int) -> datetime:
        """Same answer as :meth:`BusinessCalendar.add_business_days` (n >= 1)."""
        return _instant(self.due_after_business_days(_micros(start), n))

    def add_months_rolled(self, start: datetime, months: int) -> datetime:
        """Same answer as :meth:`BusinessCalendar.add_months_rolled`."""
        local = start.astimezone(self.tz)
        i = self._index(add_months(local.date(), months).toordinal())
        day = date.fromordinal(self._first + self._business_day(self._business_at_or_after(i)))
        return local_to_utc(day, local.time().replace(fold=0), self.tz)

    def close_after_months(self, start: datetime, months: int) -> datetime:
        return _instant(self.due_after_months(_micros(start), months))

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        if b <= a:
            return timedelta(0)
        ma, mb = _micros(a), _micros(b)
        start = self.elapsed(ma)  # first: may grow the range backwards and renumber the totals
        return timedelta(microseconds=self.elapsed(mb) - start)


# ---------------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class PatchFacts:
    """What the rules need to know about one patch RFC."""

    rfc_id: int
    key: str
    tenant_id: int
    level: Urgency
    clock_start: datetime
    met_at: datetime | None = None


@dataclass(frozen=True)
class UrgencyView:
    """A patch's deadline and where it stands. ``share_used`` is the share of the allowed time
    used by now (or by ``met_at`` once met); above 1 when overdue."""

    rfc_id: int
    key: str
    tenant_id: int
    level: Urgency
    deadline: Deadline
    clock_start: datetime
    due: datetime
    state: PatchState
    met_at: datetime | None
    met_on_time: bool | None
    share_used: float
    at_risk_from: datetime
    at_risk_share: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "rfc": self.rfc_id,
            "key": self.key,
            "level": self.level.value,
            "deadline": self.deadline.as_dict(),
            "deadline_text": self.deadline.describe(),
            "clock_start": self.clock_start.isoformat(),
            "due": self.due.isoformat(),
            "state": self.state.value,
            "met_at": self.met_at.isoformat() if self.met_at else None,
            "met_on_time": self.met_on_time,
            "share_used": round(self.share_used, 4),
            "at_risk_from": self.at_risk_from.isoformat(),
            "at_risk_share": self.at_risk_share,
        }


class CustomerUrgency:
    """The urgency rules of one customer: its calendar and schedule, with a memoised timeline.
    Build one per customer per batch; it is not meant to be shared across threads."""

    def __init__(
        self,
        calendar: BusinessCalendar,
        schedule: PatchSchedule | None = None,
        earliest: datetime | None = None,
        timeline: BusinessTimeline | None = None,
    ) -> None:
        """``earliest``: the batch's earliest clock start, so the timeline only grows forward.
        ``timeline``: one shared by customers with the same calendar (it depends on nothing else)."""
        self.calendar = calendar
        self.schedule = schedule or PatchSchedule()
        if timeline is None:
            around = calendar.local_date(earliest) - timedelta(days=1) if earliest is not None else None
            timeline = BusinessTimeline(calendar, around)
        elif timeline.calendar != calendar:
            raise ValueError("timeline: belongs to another calendar")
        self.timeline = timeline

    def due(self, level: Urgency | str, start: datetime) -> datetime:
        require_aware(start, "clock_start")
        return _instant(self._due(self.schedule.deadline(level), _micros(start)))

    def _due(self, deadline: Deadline, start: int) -> int:
        if deadline.business_days:
            return self.timeline.due_after_business_days(start, deadline.business_days)
        return self.timeline.due_after_months(start, deadline.months)

    def assess(self, level: Urgency, start_us: int, met_us: int | None, now_us: int) -> tuple[int, int, PatchState]:
        """The hot path of the board: ``(due, at_risk_from, state)`` in microseconds since the
        epoch, without building a view. :meth:`evaluate` gives the same answer in full."""
        deadline = self.schedule.deadlines[level]
        share = self.schedule.at_risk_share
        if deadline.business_days:
            # Business time, measured from the start: a start outside business hours adds none.
            due_us, base, end = self.timeline.business_deadline(start_us, deadline.business_days)
            risk_us = self.timeline.instant_at(base + max(math.ceil((end - base) * share), 1))
        else:
            due_us = self.timeline.due_after_months(start_us, deadline.months)
            risk_us = start_us + math.ceil((due_us - start_us) * share)
        if met_us is not None:
            return due_us, risk_us, PatchState.MET
        if now_us > due_us:
            return due_us, risk_us, PatchState.OVERDUE
        if now_us >= risk_us:
            return due_us, risk_us, PatchState.AT_RISK
        return due_us, risk_us, PatchState.ON_TRACK

    def evaluate(self, facts: PatchFacts, now: datetime) -> UrgencyView:
        deadline = self.schedule.deadlines[facts.level]
        start, met_at = facts.clock_start, facts.met_at
        start_us = _micros(start)
        now_us = _micros(now)
        met_us = _micros(met_at) if met_at is not None else None
        due_us, risk_us, state = self.assess(facts.level, start_us, met_us, now_us)
        until_us = met_us if met_us is not None else now_us
        if deadline.business_days:
            base = self.timeline.elapsed(start_us)
            total = self.timeline.elapsed(due_us) - base
            used = self.timeline.elapsed(until_us) - base if until_us > start_us else 0
        else:
            total = due_us - start_us
            used = max(until_us - start_us, 0)
        return UrgencyView(
            rfc_id=facts.rfc_id,
            key=facts.key,
            tenant_id=facts.tenant_id,
            level=facts.level,
            deadline=deadline,
            clock_start=start,
            due=_instant(due_us),
            state=state,
            met_at=met_at,
            met_on_time=until_us <= due_us if met_us is not None else None,
            share_used=used / total if total > 0 else 1.0,
            at_risk_from=_instant(risk_us),
            at_risk_share=self.schedule.at_risk_share,
        )


def due_time(
    calendar: BusinessCalendar, level: Urgency | str, start: datetime, schedule: PatchSchedule | None = None
) -> datetime:
    """The deadline of one patch of ``level`` whose clock starts at ``start``."""
    return CustomerUrgency(calendar, schedule).due(level, start)


def evaluate(
    calendar: BusinessCalendar,
    schedule: PatchSchedule | None,
    facts: Sequence[PatchFacts],
    now: datetime,
) -> list[UrgencyView]:
    """Evaluate many patches of one customer at ``now``, sharing one timeline."""
    require_aware(now, "now")
    rules = CustomerUrgency(calendar, schedule, min((item.clock_start for item in facts), default=None))
    return [rules.evaluate(item, now) for item in facts]


# ---------------------------------------------------------------------------------- compliance


@dataclass(frozen=True)
class LackingCI:
    """A CI that still lacks an approved patch past the patch's due time."""

    ci_id: int
    ci_name: str
    rfc_id: int
    rfc_key: str
    level: str
    due: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "ci": self.ci_id,
            "ci_name": self.ci_name,
            "rfc": self.rfc_id,
            "rfc_key": self.rfc_key,
            "level": self.level,
            "due": self.due.isoformat(),
        }


@dataclass(frozen=True)
class PatchCompliance:
    """A customer's patch compliance for a month.

    ``due`` counts the patches whose due time fell in the month (in the customer's time zone)
    and has passed; of those, ``met_on_time`` were approved by their due time, ``met_late``
    after it and ``unmet`` not yet. ``pending`` counts patches due later in the (current)
    month. ``share_met_on_time`` is ``met_on_time / due``, or None when nothing was due.
    ``lacking`` is as of now, not of the month: CIs of unmet patches past due.
    """

    customer_id: int
    customer_key: str
    month: str
    timezone: str
    due: int
    met_on_time: int
    met_late: int
    unmet: int
    pending: int
    lacking: tuple[LackingCI, ...]
    by_level: Mapping[str, Mapping[str, int]]
    computed_at: datetime

    @property
    def share_met_on_time(self) -> float | None:
        return self.met_on_time / self.due if self.due else None

    def as_dict(self) -> dict[str, Any]:
        share = self.share_met_on_time
        return {
            "customer": self.customer_key,
            "customer_id": self.customer_id,
            "month": self.month,
            "timezone": self.timezone,
            "share_met_on_time": round(share, 4) if share is not None else None,
            "counts": {
                "due": self.due,
                "met_on_time": self.met_on_time,
                "met_late": self.met_late,
                "unmet": self.unmet,
                "pending": self.pending,
            },
            "by_level": {level: dict(counts) for level, counts in self.by_level.items()},
            "lacking": [item.as_dict() for item in self.lacking],
            "computed_at": self.computed_at.isoformat(),
        }
