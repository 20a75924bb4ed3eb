"""Business time in a customer's calendar (cmdb.calendar).

Worked examples from the domain rules first, then properties that must hold for any start, in
several zones (with and without daylight saving) and holiday regions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cmdb.calendar import (
    END_OF_DAY,
    BusinessCalendar,
    add_months,
    local_to_utc,
    validate_calendar_dict,
)

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
TOKYO = ZoneInfo("Asia/Tokyo")
SYDNEY = ZoneInfo("Australia/Sydney")

US_NY = BusinessCalendar(timezone="America/New_York", holiday_region="US")
GB_LONDON = BusinessCalendar(timezone="Europe/London", holiday_region="GB-ENG", closes=time(17, 30))
JP_TOKYO = BusinessCalendar(timezone="Asia/Tokyo", holiday_region="JP", closes=time(18, 0))
AU_SYDNEY = BusinessCalendar(timezone="Australia/Sydney", holiday_region="AU-NSW", opens=time(8, 30))

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


# ----------------------------------------------------------------------------- worked examples


class TestPatchUrgencyExamples:
    def test_critical_three_business_days_from_friday_afternoon_is_wednesday(self) -> None:
        due = US_NY.add_business_days(local(NY, 2026, 6, 5, 15, 0), 3)
        assert due == local(NY, 2026, 6, 10, 15, 0)
        assert due.tzinfo == UTC

    def test_start_on_saturday_counts_from_monday_opening(self) -> None:
        saturday = local(NY, 2026, 6, 6, 11, 20)
        assert US_NY.next_opening(saturday) == local(NY, 2026, 6, 8, 9, 0)
        assert US_NY.add_business_days(saturday, 3) == local(NY, 2026, 6, 11, 9, 0)

    def test_start_after_closing_counts_from_next_opening(self) -> None:
        assert US_NY.add_business_days(local(NY, 2026, 6, 5, 18, 0), 3) == local(NY, 2026, 6, 11, 9, 0)

    def test_start_before_opening_counts_from_same_day_opening(self) -> None:
        assert US_NY.add_business_days(local(NY, 2026, 6, 3, 7, 45), 1) == local(NY, 2026, 6, 4, 9, 0)

    def test_observed_independence_day_2026_is_skipped(self) -> None:
        # July 4th 2026 is a Saturday; the federal holiday is observed on Friday July 3rd.
        assert not US_NY.is_business_day(date(2026, 7, 3))
        due = US_NY.add_business_days(local(NY, 2026, 7, 2, 15, 0), 3)
        assert due == local(NY, 2026, 7, 8, 15, 0)

    def test_spring_forward_week_keeps_local_three_pm(self) -> None:
        start = local(NY, 2026, 3, 6, 15, 0)  # EST, UTC-5
        due = US_NY.add_business_days(start, 3)  # clocks go forward Sunday March 8th
        assert due == local(NY, 2026, 3, 11, 15, 0)
        assert due.astimezone(NY).hour == 15
        assert start.astimezone(UTC).hour == 20 and due.hour == 19
        assert due - start == timedelta(days=5) - timedelta(hours=1)

    def test_fall_back_week_keeps_local_three_pm(self) -> None:
        due = US_NY.add_business_days(local(NY, 2026, 10, 30, 15, 0), 3)
        assert due == local(NY, 2026, 11, 4, 15, 0)
        assert due.hour == 20  # EST, UTC-5

    def test_important_ten_business_days_over_thanksgiving(self) -> None:
        due = US_NY.add_business_days(local(NY, 2026, 11, 20, 10, 0), 10)
        # Thanksgiving (Nov 26) is skipped; the day after is an ordinary working day.
        assert due == local(NY, 2026, 12, 7, 10, 0)

    def test_gb_christmas_and_boxing_day_observed(self) -> None:
        # 2026: Christmas Friday, Boxing Day Saturday observed on Monday the 28th.
        assert not GB_LONDON.is_business_day(date(2026, 12, 25))
        assert not GB_LONDON.is_business_day(date(2026, 12, 28))
        due = GB_LONDON.add_business_days(local(LONDON, 2026, 12, 24, 10, 0), 3)
        assert due == local(LONDON, 2026, 12, 31, 10, 0)

    def test_gb_christmas_2027_both_days_observed_on_weekdays(self) -> None:
        # 2027: 25th Saturday and 26th Sunday, observed Monday 27th and Tuesday 28th.
        assert not GB_LONDON.is_business_day(date(2027, 12, 27))
        assert not GB_LONDON.is_business_day(date(2027, 12, 28))
        due = GB_LONDON.add_business_days(local(LONDON, 2027, 12, 24, 16, 0), 1)
        assert due == local(LONDON, 2027, 12, 29, 16, 0)

    def test_gb_bank_holiday_is_not_a_us_holiday(self) -> None:
        assert not GB_LONDON.is_business_day(date(2026, 8, 31))  # late summer bank holiday
        assert US_NY.is_business_day(date(2026, 8, 31))

    def test_tokyo_customer_deadline_is_in_tokyo_time(self) -> None:
        start = datetime(2026, 6, 5, 6, 0, tzinfo=UTC)  # Friday 15:00 in Tokyo
        assert JP_TOKYO.add_business_days(start, 3) == local(TOKYO, 2026, 6, 10, 15, 0)
        # The same instant is Friday 02:00 in New York: before opening, so it counts from 09:00.
        assert US_NY.add_business_days(start, 3) == local(NY, 2026, 6, 10, 9, 0)

    def test_sydney_easter_and_end_of_daylight_saving(self) -> None:
        # Good Friday and Easter Monday are holidays; clocks go back on Sunday April 5th.
        due = AU_SYDNEY.add_business_days(local(SYDNEY, 2026, 4, 2, 15, 0), 3)
        assert due == local(SYDNEY, 2026, 4, 9, 15, 0)
        assert due.astimezone(SYDNEY).utcoffset() == timedelta(hours=10)

    def test_customer_closure_day_is_skipped(self) -> None:
        cal = BusinessCalendar(timezone="America/New_York", closure_days=frozenset({date(2026, 6, 8)}))
        assert cal.add_business_days(local(NY, 2026, 6, 5, 15, 0), 1) == local(NY, 2026, 6, 9, 15, 0)

    def test_one_month_from_january_31st_is_end_of_february(self) -> None:
        assert US_NY.add_months_rolled(local(NY, 2025, 1, 31, 10, 0), 1) == local(NY, 2025, 2, 28, 10, 0)
        assert US_NY.add_months_rolled(local(NY, 2028, 1, 31, 10, 0), 1) == local(NY, 2028, 2, 29, 10, 0)
        # 2026-02-28 is a Saturday: roll forward to Monday.
        assert US_NY.add_months_rolled(local(NY, 2026, 1, 31, 10, 0), 1) == local(NY, 2026, 3, 2, 10, 0)

    def test_six_months_landing_on_saturday_moves_to_monday(self) -> None:
        due = US_NY.add_months_rolled(local(NY, 2026, 3, 12, 14, 0), 6)  # Sat Sep 12th
        assert due == local(NY, 2026, 9, 14, 14, 0)

    def test_six_months_landing_before_labor_day_moves_to_tuesday(self) -> None:
        due = US_NY.add_months_rolled(local(NY, 2026, 3, 5, 14, 0), 6)  # Sat Sep 5th, Mon Labor Day
        assert due == local(NY, 2026, 9, 8, 14, 0)

    def test_one_year_from_leap_day(self) -> None:
        due = US_NY.add_years_rolled(local(NY, 2028, 2, 29, 11, 0), 1)
        assert due == local(NY, 2029, 2, 28, 11, 0)


class TestBusinessHours:
    def test_two_business_hours_late_friday_finish_monday_morning(self) -> None:
        assert US_NY.add_business_hours(local(NY, 2026, 6, 5, 16, 30), 2) == local(NY, 2026, 6, 8, 10, 30)

    def test_target_used_up_at_closing_is_due_at_closing(self) -> None:
        assert US_NY.add_business_hours(local(NY, 2026, 6, 5, 15, 0), 2) == local(NY, 2026, 6, 5, 17, 0)

    def test_hours_accept_timedelta_and_float(self) -> None:
        start = local(NY, 2026, 6, 3, 9, 0)
        assert US_NY.add_business_hours(start, 1.5) == US_NY.add_business_hours(start, timedelta(minutes=90))

    def test_one_business_day_of_hours_crosses_the_holiday(self) -> None:
        assert US_NY.add_business_hours(local(NY, 2026, 7, 2, 13, 0), 8) == local(NY, 2026, 7, 6, 13, 0)

    def test_business_time_between_counts_only_open_hours(self) -> None:
        a, b = local(NY, 2026, 6, 5, 16, 0), local(NY, 2026, 6, 8, 10, 0)
        assert US_NY.business_time_between(a, b) == timedelta(hours=2)
        assert US_NY.business_time_between(b, a) == timedelta(0)

    def test_seventy_five_percent_of_a_four_hour_target(self) -> None:
        start = local(NY, 2026, 6, 5, 15, 0)
        target = US_NY.add_business_hours(start, 4)
        assert target == local(NY, 2026, 6, 8, 11, 0)
        escalate_at = US_NY.add_business_hours(start, 3)
        assert US_NY.business_time_between(start, escalate_at) / timedelta(hours=4) == 0.75

    def test_open_until_midnight_calendar(self) -> None:
        cal = BusinessCalendar(
            timezone="Europe/London", working_days=frozenset(range(1, 8)), closes=END_OF_DAY, opens=time(0, 0)
        )
        start = local(LONDON, 2026, 6, 5, 23, 0)
        assert cal.add_business_hours(start, 2) == local(LONDON, 2026, 6, 6, 1, 0)
        assert cal.business_time_between(start, start + timedelta(days=3)) == timedelta(days=3)


class TestNextOpening:
    def test_in_business_time_returns_itself_in_utc(self) -> None:
        dt = local(NY, 2026, 6, 3, 12, 34)
        assert US_NY.next_opening(dt) == dt
        assert US_NY.next_opening(dt).tzinfo == UTC

    def test_closing_instant_is_outside_business_time(self) -> None:
        assert not US_NY.is_business_time(local(NY, 2026, 6, 3, 17, 0))
        assert US_NY.is_business_time(local(NY, 2026, 6, 3, 9, 0))
        assert US_NY.next_opening(local(NY, 2026, 6, 3, 17, 0)) == local(NY, 2026, 6, 4, 9, 0)

    def test_next_business_day_start_for_next_business_day_targets(self) -> None:
        assert US_NY.next_business_day_start(date(2026, 7, 2)) == local(NY, 2026, 7, 6, 9, 0)
        assert US_NY.next_business_day(date(2026, 7, 2)) == date(2026, 7, 6)


class TestDstResolution:
    def test_nonexistent_wall_time_moves_to_the_jump(self) -> None:
        # 02:30 does not exist in New York on 2026-03-08; clocks jump 02:00 EST -> 03:00 EDT.
        assert local_to_utc(date(2026, 3, 8), time(2, 30), NY) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)

    def test_ambiguous_wall_time_is_first_occurrence(self) -> None:
        assert local_to_utc(date(2026, 11, 1), time(1, 30), NY) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)

    def test_half_hour_daylight_saving(self) -> None:
        lord_howe = ZoneInfo("Australia/Lord_Howe")
        assert local_to_utc(date(2026, 10, 4), time(2, 15), lord_howe) == datetime(2026, 10, 3, 15, 30, tzinfo=UTC)

    def test_opening_inside_the_gap_opens_at_the_jump(self) -> None:
        cal = BusinessCalendar(
            timezone="America/New_York",
            working_days=frozenset(range(1, 8)),
            opens=time(2, 30),
            closes=time(4, 0),
        )
        opening, closing = cal.business_hours_on(date(2026, 3, 8))  # type: ignore[misc]
        assert opening == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
        assert closing - opening == timedelta(hours=1)
        # A clock that started at 02:45 on an ordinary day is due at the jump on the short day.
        due = cal.add_business_days(local(NY, 2026, 3, 7, 2, 45), 1)
        assert due == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"timezone": "Mars/Olympus"}, "timezone"),
            ({"timezone": ""}, "timezone"),
            ({"holiday_region": "XX"}, "holiday_region"),
            ({"holiday_region": "US-ZZ"}, "holiday_region"),
            ({"opens": time(17, 0), "closes": time(9, 0)}, "closes"),
            ({"opens": time(9, 0), "closes": time(9, 0)}, "closes"),
            ({"working_days": frozenset()}, "working_days"),
            ({"working_days": frozenset({0, 1})}, "working_days"),
        ],
    )
    def test_bad_calendar_names_the_field(self, kwargs: dict[str, object], field: str) -> None:
        with pytest.raises(ValueError, match=f"^{field}:"):
            BusinessCalendar(**kwargs)  # type: ignore[arg-type]

    def test_subdivisions_accepted(self) -> None:
        assert BusinessCalendar(holiday_region="DE-BY").holiday_region == "DE-BY"
        assert BusinessCalendar(holiday_region="gb-ENG").holiday_region == "GB-ENG"

    def test_naive_datetimes_are_refused(self) -> None:
        naive = datetime(2026, 6, 5, 15, 0)
        for call in (
            lambda: US_NY.add_business_days(naive, 1),
            lambda: US_NY.add_business_hours(naive, 1),
            lambda: US_NY.next_opening(naive),
            lambda: US_NY.is_business_time(naive),
            lambda: US_NY.add_months_rolled(naive, 1),
            lambda: US_NY.business_time_between(naive, naive),
        ):
            with pytest.raises(ValueError, match="naive"):
                call()

    def test_negative_amounts_are_refused(self) -> None:
        start = local(NY, 2026, 6, 5, 15, 0)
        with pytest.raises(ValueError, match=r"^n:"):
            US_NY.add_business_days(start, -1)
        with pytest.raises(ValueError, match=r"^hours:"):
            US_NY.add_business_hours(start, -0.5)
        with pytest.raises(ValueError, match=r"^months:"):
            US_NY.add_months_rolled(start, -1)

    def test_calendar_without_business_days_stops_searching(self) -> None:
        mondays = frozenset(date(2026, 1, 5) + timedelta(weeks=w) for w in range(52 * 5))
        cal = BusinessCalendar(working_days=frozenset({1}), closure_days=mondays)
        with pytest.raises(ValueError, match="no business day"):
            cal.next_opening(datetime(2026, 1, 1, tzinfo=UTC))
        with pytest.raises(ValueError, match="no business day"):
            cal.add_months_rolled(datetime(2026, 1, 1, tzinfo=UTC), 1)

    def test_date_helpers_refuse_datetimes(self) -> None:
        with pytest.raises(TypeError):
            US_NY.is_business_day(datetime(2026, 6, 5, tzinfo=UTC))

    def test_dict_round_trip(self) -> None:
        cal = BusinessCalendar(
            timezone="Europe/London",
            working_days=frozenset({1, 2, 3, 4}),
            opens=time(8, 30),
            closes=END_OF_DAY,
            holiday_region="GB-ENG",
            closure_days=frozenset({date(2026, 12, 24), date(2026, 12, 31)}),
        )
        data = cal.to_dict()
        assert data == {
            "timezone": "Europe/London",
            "working_days": [1, 2, 3, 4],
            "opens": "08:30",
            "closes": "24:00",
            "holiday_region": "GB-ENG",
            "closure_days": ["2026-12-24", "2026-12-31"],
        }
        assert BusinessCalendar.from_dict(data) == cal
        assert BusinessCalendar.from_dict({}) == BusinessCalendar()

    def test_validate_calendar_dict_names_every_bad_field(self) -> None:
        problems = validate_calendar_dict(
            {
                "timezone": "Nowhere/Land",
                "working_days": [1, 8],
                "opens": "9am",
                "holiday_region": "US-XX",
                "closure_days": ["2026-13-01"],
                "timezon": "UTC",
            }
        )
        fields = {f for f, _ in problems}
        assert fields == {"timezone", "working_days", "opens", "holiday_region", "closure_days", "timezon"}
        assert all(reason for _, reason in problems)

    def test_validate_calendar_dict_checks_hour_order(self) -> None:
        assert validate_calendar_dict({"opens": "18:00"}) == [
            ("closes", "closing time 17:00 must be after opening time 18:00")
        ]
        assert validate_calendar_dict({"opens": "08:00", "closes": "24:00"}) == []
        assert validate_calendar_dict([]) == [("calendar", "must be a JSON object")]
        with pytest.raises(ValueError, match="working_days"):
            BusinessCalendar.from_dict({"working_days": []})

    def test_holidays_are_loaded_lazily(self) -> None:
        from cmdb import calendar as module

        module._holidays_in_year.cache_clear()
        cal = BusinessCalendar(timezone="Europe/Berlin", holiday_region="DE-BY")
        assert module._holidays_in_year.cache_info().currsize == 0
        assert not cal.is_business_day(date(2026, 1, 6))  # Epiphany in Bavaria
        assert module._holidays_in_year.cache_info().currsize == 1


# ---------------------------------------------------------------------------------- properties

CALENDARS = [
    US_NY,
    GB_LONDON,
    JP_TOKYO,
    AU_SYDNEY,
    BusinessCalendar(
        timezone="Europe/Berlin",
        holiday_region="DE-BY",
        opens=time(7, 45),
        closes=time(16, 15),
        closure_days=frozenset(date(y, 12, d) for y in range(2024, 2034) for d in (24, 31)),
    ),
    BusinessCalendar(timezone="Asia/Jerusalem", holiday_region="IL", working_days=frozenset({7, 1, 2, 3, 4})),
    # Every day, with opening hours around the New York clock changes at 02:00.
    BusinessCalendar(
        timezone="America/New_York",
        working_days=frozenset(range(1, 8)),
        opens=time(1, 30),
        closes=time(3, 30),
    ),
    BusinessCalendar(
        timezone="America/New_York", working_days=frozenset(range(1, 8)), opens=time(2, 30), closes=time(4, 0)
    ),
    BusinessCalendar(
        timezone="Europe/London",
        holiday_region="GB-ENG",
        working_days=frozenset(range(1, 8)),
        opens=time(0, 0),
        closes=END_OF_DAY,
    ),
    BusinessCalendar(timezone="UTC", working_days=frozenset({3})),
]

calendars = st.sampled_from(CALENDARS)


def _transitions(zones: list[str]) -> list[datetime]:
    """UTC instants at which one of ``zones`` changes its offset, 2024-2030 (found hour by hour)."""
    found: list[datetime] = []
    for key in zones:
        tz = ZoneInfo(key)
        t = datetime(2024, 1, 1, tzinfo=UTC)
        while t.year < 2031:
            if (t + timedelta(hours=1)).astimezone(tz).utcoffset() != t.astimezone(tz).utcoffset():
                found.append(t + timedelta(hours=1))
            t += timedelta(hours=1)
    return found


TRANSITIONS = _transitions(["America/New_York", "Europe/London", "Australia/Sydney", "Europe/Berlin"])

uniform_instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
# Uniform draws almost never land on a clock-change night, where the interesting cases are.
near_clock_change = st.builds(
    lambda t, minutes: t + timedelta(minutes=minutes),
    st.sampled_from(TRANSITIONS),
    st.integers(-3 * 24 * 60, 3 * 24 * 60),
)
instants = st.one_of(uniform_instants, near_clock_change)


def oracle_is_business_day(cal: BusinessCalendar, day: date) -> bool:
    """Independent of the module's cache: ask the holidays package directly."""
    if day.isoweekday() not in cal.working_days or day in cal.closure_days:
        return False
    if cal.holiday_region is None:
        return True
    country, _, subdiv = cal.holiday_region.partition("-")
    table = holidays.country_holidays(country.upper(), subdiv=subdiv or None, years=range(day.year - 1, day.year + 2))
    return day not in table


def wall_exists(day: date, wall: time, tz: ZoneInfo) -> bool:
    naive = datetime.combine(day, wall)
    return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive


def wall_time_runs_backwards(cal: BusinessCalendar, a: datetime, b: datetime) -> bool:
    """True if the clocks of ``a <= b`` fall on the same local day with b's wall time earlier.

    That happens only in the repeated hour of a fall-back night, when business hours include it;
    "same local time of day" then cannot be monotonic, and the rule wins.
    """
    ca, cb = (cal.next_opening(x).astimezone(cal.tz) for x in (a, b))
    return ca.date() == cb.date() and cb.time() < ca.time()


class TestAddBusinessDaysProperties:
    @PROPERTY
    @given(cal=calendars, start=instants, n=st.integers(0, 30))
    def test_due_is_n_business_days_later_at_the_same_wall_time(
        self, cal: BusinessCalendar, start: datetime, n: int
    ) -> None:
        clock = cal.next_opening(start)
        due = cal.add_business_days(start, n)
        assert due.tzinfo == UTC
        assert due >= start
        clock_local, due_local = clock.astimezone(cal.tz), due.astimezone(cal.tz)
        if cal.opens <= clock_local.time() < cal.closes:
            # Not guaranteed otherwise: an instant in the repeated hour of a fall-back night can be
            # business time while its wall time (say 01:10 the second time round) is before opening.
            assert cal.is_business_time(due)
        assert oracle_is_business_day(cal, due_local.date())
        assert (due_local.date() - clock_local.date()).days >= n
        counted = sum(
            oracle_is_business_day(cal, clock_local.date() + timedelta(days=k))
            for k in range(1, (due_local.date() - clock_local.date()).days + 1)
        )
        assert counted == n
        if wall_exists(due_local.date(), clock_local.time(), cal.tz):
            assert due_local.time() == clock_local.time()

    @PROPERTY
    @given(cal=calendars, start=instants)
    def test_zero_days_is_the_clock_start(self, cal: BusinessCalendar, start: datetime) -> None:
        assert cal.add_business_days(start, 0) == cal.next_opening(start)

    @PROPERTY
    @given(cal=calendars, a=instants, b=instants, n=st.integers(0, 15))
    def test_monotonic_in_start(self, cal: BusinessCalendar, a: datetime, b: datetime, n: int) -> None:
        a, b = min(a, b), max(a, b)
        assume(not wall_time_runs_backwards(cal, a, b))
        assert cal.add_business_days(a, n) <= cal.add_business_days(b, n)

    @PROPERTY
    @given(
        cal=calendars,
        start=instants,
        delta=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
        n=st.integers(0, 10),
    )
    def test_monotonic_for_nearby_starts(
        self, cal: BusinessCalendar, start: datetime, delta: timedelta, n: int
    ) -> None:
        # Random pairs are usually far apart; close pairs exercise same-day and DST-night orderings.
        assume(not wall_time_runs_backwards(cal, start, start + delta))
        assert cal.add_business_days(start, n) <= cal.add_business_days(start + delta, n)


class TestNextOpeningProperties:
    @PROPERTY
    @given(cal=calendars, dt=instants)
    def test_next_opening_is_the_first_business_moment(self, cal: BusinessCalendar, dt: datetime) -> None:
        opening = cal.next_opening(dt)
        assert opening >= dt
        assert cal.is_business_time(opening)
        assert cal.business_time_between(dt, opening) == timedelta(0)
        assert cal.next_opening(opening) == opening
        assert cal.is_business_time(dt) == (opening == dt)


class TestBusinessHoursProperties:
    hours = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=80)).map(
        lambda d: timedelta(seconds=int(d.total_seconds()))
    )

    @PROPERTY
    @given(cal=calendars, start=instants, h=hours)
    def test_between_inverts_add(self, cal: BusinessCalendar, start: datetime, h: timedelta) -> None:
        due = cal.add_business_hours(start, h)
        assert due >= start
        assert cal.business_time_between(start, due) == h

    @PROPERTY
    @given(cal=calendars, start=instants, h1=hours, h2=hours)
    def test_monotonic_in_hours(self, cal: BusinessCalendar, start: datetime, h1: timedelta, h2: timedelta) -> None:
        h1, h2 = min(h1, h2), max(h1, h2)
        assert cal.add_business_hours(start, h1) <= cal.add_business_hours(start, h2)

    @PROPERTY
    @given(
        cal=calendars,
        a=instants,
        d1=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)),
        d2=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)),
    )
    def test_between_is_additive_and_bounded(
        self, cal: BusinessCalendar, a: datetime, d1: timedelta, d2: timedelta
    ) -> None:
        b, c = a + d1, a + d1 + d2
        ab, bc, ac = (cal.business_time_between(*p) for p in ((a, b), (b, c), (a, c)))
        assert ab + bc == ac
        assert timedelta(0) <= ac <= c - a


class TestAddMonthsProperties:
    @PROPERTY
    @given(cal=calendars, start=instants, months=st.integers(0, 36))
    def test_lands_on_first_business_day_after_the_calendar_date(
        self, cal: BusinessCalendar, start: datetime, months: int
    ) -> None:
        due = cal.add_months_rolled(start, months)
        start_local, due_local = start.astimezone(cal.tz), due.astimezone(cal.tz)
        plain = add_months(start_local.date(), months)
        assert oracle_is_business_day(cal, due_local.date())
        assert due_local.date() >= plain
        assert due_local.date() >= start_local.date()
        gap = (due_local.date() - plain).days
        assert not any(oracle_is_business_day(cal, plain + timedelta(days=k)) for k in range(gap))
        if wall_exists(due_local.date(), start_local.time(), cal.tz):
            assert due_local.time() == start_local.time()

    @given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)), months=st.integers(0, 240))
    def test_add_months_clamps_and_never_undershoots(self, day: date, months: int) -> None:
        result = add_months(day, months)
        assert (result.year - day.year) * 12 + result.month - day.month == months
        assert result.day == day.day or (result.day < day.day and (result + timedelta(days=1)).day == 1)


class TestStorageProperties:
    @PROPERTY
    @given(cal=calendars)
    def test_round_trip(self, cal: BusinessCalendar) -> None:
        data = cal.to_dict()
        assert validate_calendar_dict(data) == []
        assert BusinessCalendar.from_dict(data) == cal
