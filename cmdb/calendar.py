"""Business time in a customer's calendar.

Every deadline Keel computes (patch urgency due dates, incident SLA targets, change windows) is
measured in the *customer's* business time, not the provider's: the customer's working week and
opening hours, in the customer's time zone, minus the public holidays of the customer's region
and minus the customer's own closure days.

This module is pure: standard library, ``zoneinfo`` and the ``holidays`` package only. All
datetimes handed in must be timezone-aware (a naive datetime raises ``ValueError``) and every
datetime handed back is in UTC, which is how the rest of Keel stores timestamps.

Local wall times are turned into instants with one rule, used everywhere (see
:func:`local_to_utc`): an ambiguous wall time (the repeated hour when clocks go back) means its
first occurrence, and a wall time that does not exist (the hour skipped when clocks go forward)
means the first real instant after it, i.e. the moment the clocks jump.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "DEFAULT_CLOSES",
    "DEFAULT_OPENS",
    "DEFAULT_WORKING_DAYS",
    "END_OF_DAY",
    "SEARCH_LIMIT_DAYS",
    "BusinessCalendar",
    "add_months",
    "format_hhmm",
    "load_timezone",
    "local_to_utc",
    "parse_hhmm",
    "parse_holiday_region",
    "require_aware",
    "validate_calendar_dict",
]

DEFAULT_WORKING_DAYS: frozenset[int] = frozenset({1, 2, 3, 4, 5})
DEFAULT_OPENS = time(9, 0)
DEFAULT_CLOSES = time(17, 0)

#: ``closes`` value meaning "until midnight at the end of the day" (written "24:00" in JSON).
#: ``datetime.time`` cannot represent 24:00, and closing at 23:59 would lose a minute of business
#: time every day, which would break round-trips like ``business_time_between``.
END_OF_DAY = time.max

#: How far ahead a search for the next business day may go before the calendar is declared to
#: have none. A customer closed for three years is a data-entry error, not a real calendar, and
#: without a bound a misconfigured calendar would hang the caller.
SEARCH_LIMIT_DAYS = 3 * 366

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_CALENDAR_FIELDS = ("timezone", "working_days", "opens", "closes", "holiday_region", "closure_days")


# --------------------------------------------------------------------------- small shared helpers


def require_aware(dt: datetime, name: str = "datetime") -> datetime:
    """Return ``dt`` unchanged if it is timezone-aware; raise ``ValueError`` otherwise.

    A naive datetime has no defined instant, and guessing a zone for it is how deadlines end up
    an ocean off.
    """
    if not isinstance(dt, datetime):
        raise TypeError(f"{name}: expected a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(f"{name}: naive datetime {dt.isoformat()} (a time zone is required)")
    return dt


def load_timezone(key: str) -> ZoneInfo:
    """Return the IANA zone ``key``; raise ``ValueError`` naming the ``timezone`` field if unknown."""
    if not isinstance(key, str) or not key:
        raise ValueError("timezone: must be a non-empty IANA time zone name such as 'Europe/London'")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"timezone: unknown IANA time zone {key!r}") from exc


def local_to_utc(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC instant at which the local clock in ``tz`` shows ``wall`` on ``day``.

    Ambiguous wall times (clocks going back) resolve to the first occurrence (``fold=0``). A wall
    time inside a spring-forward gap does not exist; it resolves to the first valid instant after
    it, which is the transition itself. ``END_OF_DAY`` means midnight at the end of ``day``.
    """
    if wall == END_OF_DAY:
        return local_to_utc(day + timedelta(days=1), time(0, 0), tz)
    local = datetime.combine(day, wall.replace(tzinfo=None, fold=0), tzinfo=tz)
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
        return utc
    # Inside a gap: fold=0 maps with the offset in force before the jump (the later instant) and
    # fold=1 with the offset after it (the earlier one), so the transition lies between the two.
    # tzdata transitions fall on whole seconds, so a bisection on seconds finds it exactly.
    offset_after = local.replace(fold=1).utcoffset()
    lo = math.floor(local.replace(fold=1).timestamp())
    hi = math.ceil(utc.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == offset_after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def parse_hhmm(value: Any, name: str, *, allow_24: bool = False) -> time:
    """Parse ``"HH:MM"`` into a ``time``; ``"24:00"`` gives ``END_OF_DAY`` when ``allow_24``."""
    if isinstance(value, str):
        if allow_24 and value == "24:00":
            return END_OF_DAY
        m = _HHMM.match(value)
        if m:
            return time(int(m.group(1)), int(m.group(2)))
    hint = "'HH:MM' between 00:00 and 24:00" if allow_24 else "'HH:MM' between 00:00 and 23:59"
    raise ValueError(f"{name}: expected {hint}, got {value!r}")


def format_hhmm(value: time) -> str:
    """Inverse of :func:`parse_hhmm` (seconds are not stored)."""
    if value == END_OF_DAY:
        return "24:00"
    return f"{value.hour:02d}:{value.minute:02d}"


def add_months(day: date, months: int) -> date:
    """Add calendar months to ``day``, clamping to the end of a shorter month (Jan 31 + 1 is Feb 28/29)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month0 = divmod(index, 12)
    month = month0 + 1
    next_month_first = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    last_day = (next_month_first - timedelta(days=1)).day
    return date(year, month, min(day.day, last_day))


def parse_holiday_region(region: str) -> tuple[str, str | None]:
    """Split ``"GB-ENG"`` into ``("GB", "ENG")`` and ``"US"`` into ``("US", None)``.

    Only the first dash separates country and subdivision, because some subdivision names
    contain dashes themselves. Raise ``ValueError`` naming ``holiday_region`` if the ``holidays``
    package does not know the country or the subdivision.
    """
    if not isinstance(region, str) or not region.strip():
        raise ValueError("holiday_region: must be a region code such as 'US', 'GB-ENG' or 'DE-BY'")
    country, _, subdiv = region.strip().partition("-")
    country = country.upper()
    result = (country, subdiv or None)
    _check_region(*result)
    return result


@functools.lru_cache(maxsize=256)
def _check_region(country: str, subdiv: str | None) -> None:
    try:
        holidays.country_holidays(country, subdiv=subdiv)
    except NotImplementedError as exc:
        if subdiv is None:
            raise ValueError(f"holiday_region: unknown country {country!r}") from exc
        raise ValueError(f"holiday_region: unknown subdivision {subdiv!r} of {country!r}") from exc


@functools.lru_cache(maxsize=1024)
def _holidays_in_year(country: str, subdiv: str | None, year: int) -> frozenset[date]:
    # A holiday observed on another day can cross the year boundary (New Year's Day 2022, a
    # Saturday, was observed in the US on Friday 2021-12-31), and the ``holidays`` package files
    # such days under either year depending on the country; loading the neighbouring years and
    # filtering by date makes the answer independent of that choice.
    table = holidays.country_holidays(country, subdiv=subdiv, years=range(year - 1, year + 2))
    return frozenset(d for d in table if d.year == year)


# ------------------------------------------------------------------------------------ calendar


@dataclass(frozen=True)
class BusinessCalendar:
    """A customer's business calendar.

    Business time is the part of each *business day* between ``opens`` (inclusive) and ``closes``
    (exclusive), local time in ``timezone``. A business day is a day of the working week
    (``working_days``, ISO numbering 1 = Monday .. 7 = Sunday) that is neither a public holiday
    of ``holiday_region`` (``"US"``, ``"GB-ENG"``, ``"DE-BY"``: country code, then an optional
    subdivision after a dash) nor one of the customer's own ``closure_days``.

    ``closes`` may be ``END_OF_DAY`` ("24:00") for a customer whose business day runs to
    midnight. Opening hours that span midnight are not supported; such a customer is modelled
    as two days.
    """

    timezone: str = "UTC"
    working_days: frozenset[int] = DEFAULT_WORKING_DAYS
    opens: time = DEFAULT_OPENS
    closes: time = DEFAULT_CLOSES
    holiday_region: str | None = None
    closure_days: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        load_timezone(self.timezone)
        # Callers often pass a set or a list; a frozen dataclass must hold hashable values.
        days = frozenset(self.working_days)
        if not days:
            raise ValueError("working_days: the working week must contain at least one day")
        for d in days:
            if not isinstance(d, int) or isinstance(d, bool) or not 1 <= d <= 7:
                raise ValueError(f"working_days: {d!r} is not an ISO weekday (1 = Monday .. 7 = Sunday)")
        object.__setattr__(self, "working_days", days)
        if not isinstance(self.opens, time) or self.opens.tzinfo is not None:
            raise ValueError("opens: must be a local time of day without a time zone")
        if not isinstance(self.closes, time) or self.closes.tzinfo is not None:
            raise ValueError("closes: must be a local time of day without a time zone")
        if self.opens >= self.closes:
            raise ValueError(
                f"closes: closing time {format_hhmm(self.closes)} must be after opening time {format_hhmm(self.opens)}"
            )
        if self.holiday_region is not None:
            # Stored in canonical case so that "gb-ENG" and "GB-ENG" compare equal.
            country, subdiv = parse_holiday_region(self.holiday_region)
            object.__setattr__(self, "holiday_region", f"{country}-{subdiv}" if subdiv else country)
        closures = frozenset(self.closure_days)
        for c in closures:
            if not isinstance(c, date) or isinstance(c, datetime):
                raise ValueError(f"closure_days: {c!r} is not a date")
        object.__setattr__(self, "closure_days", closures)

    # ---------------------------------------------------------------- storage

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BusinessCalendar:
        """Build a calendar from its JSON form; missing keys take the defaults.

        Raises ``ValueError`` whose message starts with the first offending field; use
        :func:`validate_calendar_dict` to get every problem at once.
        """
        problems = validate_calendar_dict(d)
        if problems:
            raise ValueError("; ".join(f"{f}: {r}" for f, r in problems))
        region = d.get("holiday_region")
        return cls(
            timezone=d.get("timezone", "UTC"),
            working_days=frozenset(d.get("working_days", DEFAULT_WORKING_DAYS)),
            opens=parse_hhmm(d["opens"], "opens") if "opens" in d else DEFAULT_OPENS,
            closes=parse_hhmm(d["closes"], "closes", allow_24=True) if "closes" in d else DEFAULT_CLOSES,
            holiday_region=region if region else None,
            closure_days=frozenset(date.fromisoformat(s) for s in d.get("closure_days", ())),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form: times as ``"HH:MM"``, dates as ISO strings, lists sorted for stable storage."""
        return {
            "timezone": self.timezone,
            "working_days": sorted(self.working_days),
            "opens": format_hhmm(self.opens),
            "closes": format_hhmm(self.closes),
            "holiday_region": self.holiday_region,
            "closure_days": [c.isoformat() for c in sorted(self.closure_days)],
        }

    # ---------------------------------------------------------------- days

    @property
    def tz(self) -> ZoneInfo:
        """The customer's zone (``ZoneInfo`` caches instances, so this is cheap)."""
        return ZoneInfo(self.timezone)

    def local_date(self, dt: datetime) -> date:
        """The customer's calendar date at instant ``dt``."""
        return require_aware(dt).astimezone(self.tz).date()

    def is_holiday(self, day: date) -> bool:
        """True if ``day`` is a public holiday (including observed days) in the customer's region."""
        _require_date(day)
        if self.holiday_region is None:
            return False
        country, subdiv = parse_holiday_region(self.holiday_region)
        return day in _holidays_in_year(country, subdiv, day.year)

    def is_business_day(self, day: date) -> bool:
        """A working-week day that is neither a public holiday nor a customer closure."""
        _require_date(day)
        return day.isoweekday() in self.working_days and day not in self.closure_days and not self.is_holiday(day)

    def business_hours_on(self, day: date) -> tuple[datetime, datetime] | None:
        """Business time on ``day`` as a UTC interval ``[open, close)``, or None if there is none.

        On a clocks-change day the interval is an hour shorter or longer than usual; if both
        opening and closing fall into the skipped hour the day has no business time at all.
        """
        if not self.is_business_day(day):
            return None
        start = local_to_utc(day, self.opens, self.tz)
        end = local_to_utc(day, self.closes, self.tz)
        if end <= start:
            return None
        return start, end

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after ``day``."""
        return self._first_business_day(day + timedelta(days=1))

    def next_business_day_start(self, day: date) -> datetime:
        """Opening time (UTC) of the first business day strictly after ``day``.

        This is the usual reading of an incident target of "next business day".
        """
        d = day + timedelta(days=1)
        for _ in range(SEARCH_LIMIT_DAYS):
            hours = self.business_hours_on(d)
            if hours is not None:
                return hours[0]
            d += timedelta(days=1)
        raise self._no_business_day(day)

    def _first_business_day(self, day: date) -> date:
        d = day
        for _ in range(SEARCH_LIMIT_DAYS):
            if self.is_business_day(d):
                return d
            d += timedelta(days=1)
        raise self._no_business_day(day)

    def _no_business_day(self, since: date) -> ValueError:
        return ValueError(
            f"closure_days: calendar has no business day in the {SEARCH_LIMIT_DAYS} days after "
            f"{since.isoformat()} (check working_days, holiday_region and closure_days)"
        )

    # ---------------------------------------------------------------- instants

    def is_business_time(self, dt: datetime) -> bool:
        """True if ``dt`` falls in ``[opens, closes)`` local time on a business day."""
        require_aware(dt)
        hours = self.business_hours_on(self.local_date(dt))
        return hours is not None and hours[0] <= dt < hours[1]

    def next_opening(self, dt: datetime) -> datetime:
        """``dt`` itself (in UTC) if it is business time, else the next moment business time starts."""
        require_aware(dt)
        day = self.local_date(dt)
        hours = self.business_hours_on(day)
        if hours is not None:
            if dt < hours[0]:
                return hours[0]
            if dt < hours[1]:
                return dt.astimezone(UTC)
        return self.next_business_day_start(day)

    def add_business_days(self, start: datetime, n: int) -> datetime:
        """The deadline ``n`` business days after ``start``.

        Domain rule: "A deadline of N business days falls N business days after the clock start,
        at the same local time of day; a start outside business hours counts from the next
        opening." The clock therefore starts at :meth:`next_opening` of ``start``; the deadline is
        the ``n``-th business day after the clock's local date, at the clock's local wall time.
        Wall time is kept across clock changes, so a 15:00 clock start in New York is due at
        15:00 New York time even if daylight saving began or ended in between (the elapsed real
        time is then an hour more or less). ``n = 0`` gives the clock start itself.

        Keeping the wall time has one corner: when business hours include the hour repeated on a
        fall-back night, a later start in that hour can show an earlier wall time (01:10 the
        second time round after 01:50 the first) and so get an earlier deadline. The rule says
        "same local time of day", so the rule wins; ordinary opening hours never meet this.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n: number of business days must be a non-negative integer, got {n!r}")
        clock = self.next_opening(start)
        if n == 0:
            return clock
        local_clock = clock.astimezone(self.tz)
        wall = local_clock.time().replace(fold=0)
        day = local_clock.date()
        for _ in range(n):
            day = self.next_business_day(day)
        return local_to_utc(day, wall, self.tz)

    def add_business_hours(self, start: datetime, hours: float | timedelta) -> datetime:
        """The instant at which ``hours`` of business time have elapsed since ``start``.

        Only business time counts: a 2-business-hour target raised at 16:30 on a Friday with a
        17:00 close is due at 10:30 on Monday. A target that is used up exactly at closing time
        is due at closing time, not at the next opening. ``hours = 0`` gives :meth:`next_opening`.
        Inverse of :meth:`business_time_between`.
        """
        require_aware(start)
        amount = hours if isinstance(hours, timedelta) else timedelta(hours=hours)
        if amount < timedelta(0):
            raise ValueError(f"hours: business time to add must not be negative, got {hours!r}")
        cursor = self.next_opening(start)
        remaining = amount
        while True:
            day = self.local_date(cursor)
            bounds = self.business_hours_on(day)
            if bounds is None or cursor >= bounds[1]:  # pragma: no cover - next_opening guarantees
                raise AssertionError("next_opening returned a moment outside business time")
            available = bounds[1] - cursor
            if remaining <= available:
                return cursor + remaining
            remaining -= available
            cursor = self.next_business_day_start(day)

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """The amount of business time in ``[a, b)``; zero if ``b <= a``.

        Used to measure how much of an SLA target has been consumed (escalation at 75 %).
        """
        require_aware(a, "a")
        require_aware(b, "b")
        if b <= a:
            return timedelta(0)
        total = timedelta(0)
        day = self.local_date(a)
        last = self.local_date(b)
        while day <= last:
            bounds = self.business_hours_on(day)
            if bounds is not None:
                lo, hi = max(bounds[0], a), min(bounds[1], b)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def add_months_rolled(self, start: datetime, months: int) -> datetime:
        """Deadline ``months`` calendar months after ``start``, rolled forward to a business day.

        Domain rule: "A deadline in months or years adds calendar months and then moves forward to
        the next business day." Months are added to the local date (Jan 31 + 1 month is Feb 28,
        or 29 in a leap year), the local time of day is kept, and if that date is not a business
        day the deadline moves forward day by day, at the same local time, to the first one that
        is. The start is *not* moved to the next opening first: the rule for months speaks only of
        calendar months, and a shift of a few hours is immaterial at this scale.
        """
        if isinstance(months, bool) or not isinstance(months, int) or months < 0:
            raise ValueError(f"months: must be a non-negative integer, got {months!r}")
        require_aware(start, "start")
        local = start.astimezone(self.tz)
        target = self._first_business_day(add_months(local.date(), months))
        return local_to_utc(target, local.time().replace(fold=0), self.tz)

    def add_years_rolled(self, start: datetime, years: int) -> datetime:
        """``add_months_rolled`` with ``12 * years`` months (Feb 29 + 1 year is Feb 28)."""
        if isinstance(years, bool) or not isinstance(years, int) or years < 0:
            raise ValueError(f"years: must be a non-negative integer, got {years!r}")
        return self.add_months_rolled(start, 12 * years)


def _require_date(day: date) -> None:
    # A datetime is a date subclass; silently taking its date part would ignore the zone.
    if isinstance(day, datetime) or not isinstance(day, date):
        raise TypeError(f"expected a date, got {type(day).__name__}")


# ------------------------------------------------------------------------------------ validation


def validate_calendar_dict(d: Any) -> list[tuple[str, str]]:
    """Check the JSON form of a calendar and return every problem as ``(field, reason)``.

    An empty list means :meth:`BusinessCalendar.from_dict` will succeed. Unknown keys are reported
    too, so that a misspelt ``"timezon"`` is not silently replaced by the UTC default.
    """
    if not isinstance(d, Mapping):
        return [("calendar", "must be a JSON object")]
    problems: list[tuple[str, str]] = []
    for key in d:
        if key not in _CALENDAR_FIELDS:
            problems.append((str(key), "unknown field"))

    if "timezone" in d:
        problems.extend(_reason(lambda: load_timezone(d["timezone"])))

    if "working_days" in d:
        days = d["working_days"]
        if not isinstance(days, list | tuple):
            problems.append(("working_days", "must be a list of ISO weekdays (1 = Monday .. 7 = Sunday)"))
        elif not days:
            problems.append(("working_days", "the working week must contain at least one day"))
        else:
            bad = [x for x in days if isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 7]
            if bad:
                problems.append(("working_days", f"{bad[0]!r} is not an ISO weekday (1 = Monday .. 7 = Sunday)"))

    opens = closes = None
    if "opens" in d:
        try:
            opens = parse_hhmm(d["opens"], "opens")
        except ValueError as exc:
            problems.append(_split(exc))
    if "closes" in d:
        try:
            closes = parse_hhmm(d["closes"], "closes", allow_24=True)
        except ValueError as exc:
            problems.append(_split(exc))
    if (opens is not None or closes is not None) and not any(f in ("opens", "closes") for f, _ in problems):
        o = opens if opens is not None else DEFAULT_OPENS
        c = closes if closes is not None else DEFAULT_CLOSES
        if o >= c:
            problems.append(("closes", f"closing time {format_hhmm(c)} must be after opening time {format_hhmm(o)}"))

    region = d.get("holiday_region")
    if region is not None and region != "":
        problems.extend(_reason(lambda: parse_holiday_region(region)))

    if "closure_days" in d:
        closures = d["closure_days"]
        if not isinstance(closures, list | tuple):
            problems.append(("closure_days", "must be a list of ISO dates (YYYY-MM-DD)"))
        else:
            for c in closures:
                try:
                    if not isinstance(c, str):
                        raise ValueError
                    date.fromisoformat(c)
                except ValueError:
                    problems.append(("closure_days", f"{c!r} is not an ISO date (YYYY-MM-DD)"))
                    break
    return problems


def _split(exc: ValueError) -> tuple[str, str]:
    field_name, _, reason = str(exc).partition(": ")
    return field_name, reason


def _reason(check: Callable[[], object]) -> Iterable[tuple[str, str]]:
    try:
        check()
    except ValueError as exc:
        return [_split(exc)]
    return []
