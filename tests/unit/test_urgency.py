"""The patch urgency schedule (release.urgency): worked examples from the domain rules, SLA
override validation, and properties of the business-day arithmetic that must hold for any
start: due times in business time, monotonic in the start, across clock changes and holidays,
in each customer's own zone; and the memoised timeline agrees with cmdb.calendar everywhere."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from change.models import Urgency
from cmdb.calendar import END_OF_DAY, BusinessCalendar, local_to_utc
from release.urgency import (
    DEFAULT_SCHEDULE,
    BusinessTimeline,
    CustomerUrgency,
    Deadline,
    PatchFacts,
    PatchSchedule,
    PatchState,
    calendar_of,
    clock_start,
    due_time,
    evaluate,
    validate_patch_terms,
)

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
TOKYO = ZoneInfo("Asia/Tokyo")

US_NY = BusinessCalendar(timezone="America/New_York", holiday_region="US")
GB_LONDON = BusinessCalendar(timezone="Europe/London", holiday_region="GB-ENG", closes=time(17, 30))
JP_TOKYO = BusinessCalendar(timezone="Asia/Tokyo", holiday_region="JP", closes=time(18, 0))

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BUSINESS_DAY_LEVELS = [level for level, d in DEFAULT_SCHEDULE.items() if d.in_business_days]


def local(tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def facts(level: Urgency | str, start: datetime, met_at: datetime | None = None) -> PatchFacts:
    return PatchFacts(1, "RFC-2026-0001", 1, Urgency(level), start, met_at)


# ----------------------------------------------------------------------------- worked examples


class TestDefaultSchedule:
    def test_the_domain_schedule(self) -> None:
        assert {level.value: d.describe() for level, d in DEFAULT_SCHEDULE.items()} == {
            "critical": "3 business days",
            "important": "10 business days",
            "moderate": "3 months",
            "low": "3 months",
            "service_release": "6 months",
            "major_revision": "1 year",
        }

    def test_critical_from_friday_afternoon_is_due_wednesday(self) -> None:
        assert due_time(US_NY, "critical", local(NY, 2026, 6, 5, 15)) == local(NY, 2026, 6, 10, 15)

    def test_important_skips_thanksgiving(self) -> None:
        # Monday 23 November 2026, 10:00: Thanksgiving (26th) is not a business day.
        due = due_time(US_NY, "important", local(NY, 2026, 11, 23, 10))
        assert due == local(NY, 2026, 12, 8, 10)

    def test_start_outside_business_hours_counts_from_the_next_opening(self) -> None:
        assert due_time(GB_LONDON, "critical", local(LONDON, 2026, 6, 6, 11)) == local(LONDON, 2026, 6, 11, 9)

    def test_months_roll_forward_to_the_next_business_day_due_at_its_close(self) -> None:
        # 31 October 2026 + 3 months = Sunday 31 January 2027 -> Monday 1 February, closing 17:30.
        assert due_time(GB_LONDON, "moderate", local(LONDON, 2026, 10, 31, 12)) == local(LONDON, 2027, 2, 1, 17, 30)
        # 30 November + 6 months = Sunday 30 May 2027; Memorial Day 31 May: due 1 June.
        assert due_time(US_NY, "service_release", local(NY, 2026, 11, 30, 8)) == local(NY, 2027, 6, 1, 17)

    def test_month_end_clamping_keeps_later_starts_due_no_earlier(self) -> None:
        # 30 and 31 March both land on 30 June (a Wednesday in 2027): the same deadline.
        assert due_time(US_NY, "moderate", local(NY, 2027, 3, 30, 21)) == local(NY, 2027, 6, 30, 17)
        assert due_time(US_NY, "moderate", local(NY, 2027, 3, 31, 0)) == local(NY, 2027, 6, 30, 17)

    def test_a_year_is_due_at_the_local_close_across_daylight_saving(self) -> None:
        due = due_time(US_NY, "major_revision", local(NY, 2026, 11, 2, 9))
        assert due == local(NY, 2027, 11, 2, 17) and due.utcoffset() == timedelta(0)
        assert due.hour == 21  # EDT on 2 November 2027

    def test_the_same_instant_gives_each_customer_its_own_due_time(self) -> None:
        start = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # 09:00 New York, 14:00 London, 23:00 Tokyo
        assert due_time(US_NY, "critical", start) == local(NY, 2026, 11, 5, 9)
        assert due_time(GB_LONDON, "critical", start) == local(LONDON, 2026, 11, 5, 14)
        # Tokyo is closed at 23:00 and Tuesday 3 November is Culture Day: the clock starts
        # Wednesday 09:00, and three business days later is Monday 9 November.
        assert due_time(JP_TOKYO, "critical", start) == local(TOKYO, 2026, 11, 9, 9)

    def test_clock_start_prefers_the_vendor_release_date(self) -> None:
        created = datetime(2026, 11, 2, 14, tzinfo=UTC)
        assert clock_start(None, created) == created
        assert clock_start(local(NY, 2026, 10, 30, 8), created) == datetime(2026, 10, 30, 12, tzinfo=UTC)
        with pytest.raises(ValueError, match="naive"):
            clock_start(datetime(2026, 10, 30), created)


class TestStates:
    start = local(NY, 2026, 11, 2, 9)  # due Thursday 09:00; at risk from Wednesday 11:00

    def view(self, now: datetime, met_at: datetime | None = None, share: float = 0.75) -> object:
        rules = CustomerUrgency(US_NY, PatchSchedule(at_risk_share=share))
        return rules.evaluate(facts("critical", self.start, met_at), now)

    def test_on_track_at_risk_overdue(self) -> None:
        assert self.view(local(NY, 2026, 11, 4, 10, 59)).state is PatchState.ON_TRACK  # type: ignore[attr-defined]
        at_risk = self.view(local(NY, 2026, 11, 4, 11))
        assert at_risk.state is PatchState.AT_RISK and at_risk.share_used == 0.75  # type: ignore[attr-defined]
        assert at_risk.at_risk_from == local(NY, 2026, 11, 4, 11)  # type: ignore[attr-defined]
        assert self.view(local(NY, 2026, 11, 5, 9)).state is PatchState.AT_RISK  # type: ignore[attr-defined]
        overdue = self.view(local(NY, 2026, 11, 5, 10))
        assert overdue.state is PatchState.OVERDUE and overdue.share_used > 1  # type: ignore[attr-defined]

    def test_the_share_is_business_time_so_a_night_uses_none(self) -> None:
        evening, morning = self.view(local(NY, 2026, 11, 2, 17)), self.view(local(NY, 2026, 11, 3, 9))
        assert evening.share_used == morning.share_used == pytest.approx(1 / 3)  # type: ignore[attr-defined]

    def test_a_configurable_share_moves_the_at_risk_point(self) -> None:
        view = self.view(local(NY, 2026, 11, 3, 10), share=0.3)
        assert view.state is PatchState.AT_RISK  # type: ignore[attr-defined]
        # 30 % of 24 business hours is 7 h 12 min: Monday 16:12.
        assert view.at_risk_from == local(NY, 2026, 11, 2, 16, 12)  # type: ignore[attr-defined]

    def test_met_on_time_or_late(self) -> None:
        on_time = self.view(local(NY, 2026, 11, 9, 9), met_at=local(NY, 2026, 11, 5, 9))
        assert on_time.state is PatchState.MET and on_time.met_on_time is True  # type: ignore[attr-defined]
        assert on_time.share_used == 1.0  # type: ignore[attr-defined]
        late = self.view(local(NY, 2026, 11, 9, 9), met_at=local(NY, 2026, 11, 5, 9, 1))
        assert late.state is PatchState.MET and late.met_on_time is False  # type: ignore[attr-defined]

    def test_month_deadlines_measure_wall_time(self) -> None:
        rules = CustomerUrgency(US_NY)
        start = local(NY, 2026, 1, 5, 9)
        view = rules.evaluate(facts("moderate", start), local(NY, 2026, 1, 6, 9))
        assert view.share_used == pytest.approx(timedelta(days=1) / (view.due - start))
        assert view.at_risk_from - start == pytest.approx(0.75 * (view.due - start), abs=timedelta(microseconds=1))

    def test_as_dict_names_the_contract_fields(self) -> None:
        data = self.view(local(NY, 2026, 11, 4, 12)).as_dict()  # type: ignore[attr-defined]
        for name in ("rfc", "key", "level", "clock_start", "due", "state", "met_at", "share_used", "at_risk_from"):
            assert name in data
        assert data["state"] == "at_risk" and data["level"] == "critical"
        assert data["due"] == "2026-11-05T14:00:00+00:00"

    def test_labels_and_colours_never_rely_on_colour_alone(self) -> None:
        assert [s.label for s in PatchState] == ["On track", "At risk", "Overdue", "Met"]
        assert len({s.colour for s in PatchState}) == 4


class TestSlaTerms:
    def test_valid_terms_have_no_problems(self) -> None:
        sla = {
            "patch_schedule": {
                "critical": {"business_days": 2},
                "moderate": {"months": 2},
                "major_revision": {"years": 2},
            },
            "patch_at_risk_share": 0.8,
            "committee_rule": "anything else is not ours to judge",
        }
        assert validate_patch_terms(sla) == []
        schedule = PatchSchedule.from_sla(sla)
        assert schedule.deadline("critical") == Deadline(business_days=2)
        assert schedule.deadline("moderate") == Deadline(months=2)
        assert schedule.deadline("major_revision") == Deadline(months=24)
        assert schedule.deadline("low") == DEFAULT_SCHEDULE[Urgency.LOW]
        assert schedule.at_risk_share == 0.8

    @pytest.mark.parametrize(
        ("sla", "field"),
        [
            ({"patch_schedule": {"urgent": {"business_days": 2}}}, "sla.patch_schedule.urgent"),
            ({"patch_schedule": {"critical": {"weeks": 2}}}, "sla.patch_schedule.critical.weeks"),
            ({"patch_schedule": {"critical": {"business_days": 0}}}, "sla.patch_schedule.critical.business_days"),
            ({"patch_schedule": {"critical": {"business_days": 2.5}}}, "sla.patch_schedule.critical.business_days"),
            ({"patch_schedule": {"critical": {"business_days": True}}}, "sla.patch_schedule.critical.business_days"),
            ({"patch_schedule": {"critical": {"business_days": 2, "months": 1}}}, "sla.patch_schedule.critical"),
            ({"patch_schedule": {"critical": 3}}, "sla.patch_schedule.critical"),
            ({"patch_schedule": [1, 2]}, "sla.patch_schedule"),
            ({"patch_at_risk_share": 1}, "sla.patch_at_risk_share"),
            ({"patch_at_risk_share": 0}, "sla.patch_at_risk_share"),
            ({"patch_at_risk_share": "75%"}, "sla.patch_at_risk_share"),
            ({"patch_at_risk_share": True}, "sla.patch_at_risk_share"),
            ("not an object", "sla"),
        ],
    )
    def test_bad_terms_name_the_field(self, sla: object, field: str) -> None:
        problems = validate_patch_terms(sla)
        assert [f for f, _ in problems] == [field]

    def test_invalid_overrides_leave_the_default_standing(self) -> None:
        schedule = PatchSchedule.from_sla(
            {"patch_schedule": {"critical": {"business_days": -1}, "urgent": {"months": 1}}, "patch_at_risk_share": 2}
        )
        assert schedule == PatchSchedule()

    def test_calendar_of_falls_back_rather_than_failing(self) -> None:
        cal = calendar_of({"opens": "08:00", "closure_days": ["2026-12-24"]}, "Europe/London", "GB-ENG")
        assert cal.opens == time(8) and cal.timezone == "Europe/London" and date(2026, 12, 24) in cal.closure_days
        assert calendar_of({"opens": "late"}, "Europe/London", None).timezone == "Europe/London"
        assert calendar_of({}, "Mars/Olympus", None) == BusinessCalendar()

    def test_a_deadline_is_one_positive_unit(self) -> None:
        with pytest.raises(ValueError):
            Deadline()
        with pytest.raises(ValueError):
            Deadline(business_days=2, months=1)


# ---------------------------------------------------------------------------------- properties

CALENDARS = [
    US_NY,
    GB_LONDON,
    JP_TOKYO,
    BusinessCalendar(timezone="Australia/Sydney", holiday_region="AU-NSW", opens=time(8, 30)),
    BusinessCalendar(
        timezone="Europe/Berlin",
        holiday_region="DE-BY",
        opens=time(7, 45),
        closes=time(16, 15),
        closure_days=frozenset(date(y, 12, d) for y in range(2024, 2034) for d in (24, 31)),
    ),
    BusinessCalendar(timezone="Asia/Jerusalem", holiday_region="IL", working_days=frozenset({7, 1, 2, 3, 4})),
    # Opening hours around the New York clock changes at 02:00, every day.
    BusinessCalendar(
        timezone="America/New_York", working_days=frozenset(range(1, 8)), opens=time(1, 30), closes=time(3, 30)
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
dst_calendars = st.sampled_from([US_NY, GB_LONDON])


def _transitions(zones: list[str]) -> list[datetime]:
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
near_clock_change = st.builds(
    lambda t, minutes: t + timedelta(minutes=minutes),
    st.sampled_from(TRANSITIONS),
    st.integers(-5 * 24 * 60, 5 * 24 * 60),
)
instants = st.one_of(uniform_instants, near_clock_change)
business_day_deadlines = st.integers(1, 30).map(lambda n: Deadline(business_days=n))
month_deadlines = st.integers(1, 36).map(lambda n: Deadline(months=n))
levels = st.sampled_from(list(Urgency))


def schedule_with(deadline: Deadline) -> PatchSchedule:
    return PatchSchedule({**DEFAULT_SCHEDULE, Urgency.CRITICAL: deadline})


def wall_time_runs_backwards(cal: BusinessCalendar, a: datetime, b: datetime) -> bool:
    """The repeated hour of a fall-back night inside business hours: "same local time of day"
    cannot be monotonic there (see cmdb.calendar.add_business_days), and the rule wins."""
    ca, cb = (cal.next_opening(x).astimezone(cal.tz) for x in (a, b))
    return ca.date() == cb.date() and cb.time() < ca.time()


def ordinary_wall_time(cal: BusinessCalendar, start: datetime) -> bool:
    clock = cal.next_opening(start).astimezone(cal.tz)
    return cal.opens <= clock.time() < cal.closes


class TestDueTimeProperties:
    @PROPERTY
    @given(cal=calendars, start=instants, deadline=business_day_deadlines)
    def test_business_day_deadlines_fall_in_business_time(
        self, cal: BusinessCalendar, start: datetime, deadline: Deadline
    ) -> None:
        due = CustomerUrgency(cal, schedule_with(deadline)).due("critical", start)
        assert due > start
        # Outside ordinary hours only in the repeated hour of a fall-back night (see the calendar).
        if ordinary_wall_time(cal, start):
            assert cal.is_business_time(due)
        assert cal.is_business_day(cal.local_date(due))

    @PROPERTY
    @given(cal=dst_calendars, start=near_clock_change, deadline=business_day_deadlines)
    def test_across_clock_changes_the_local_time_of_day_is_kept(
        self, cal: BusinessCalendar, start: datetime, deadline: Deadline
    ) -> None:
        due = CustomerUrgency(cal, schedule_with(deadline)).due("critical", start)
        clock = cal.next_opening(start).astimezone(cal.tz)
        assert due.astimezone(cal.tz).time() == clock.time()
        assert cal.is_business_time(due)
        business_days = sum(
            cal.is_business_day(clock.date() + timedelta(days=k))
            for k in range(1, (cal.local_date(due) - clock.date()).days + 1)
        )
        assert business_days == deadline.business_days

    @PROPERTY
    @given(cal=calendars, a=instants, b=instants, level=levels)
    def test_monotonic_in_the_start(self, cal: BusinessCalendar, a: datetime, b: datetime, level: Urgency) -> None:
        a, b = min(a, b), max(a, b)
        assume(not wall_time_runs_backwards(cal, a, b))
        rules = CustomerUrgency(cal)
        assert rules.due(level, a) <= rules.due(level, b)

    @PROPERTY
    @given(
        cal=calendars,
        start=instants,
        delta=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4)),
        level=levels,
    )
    def test_monotonic_for_nearby_starts(
        self, cal: BusinessCalendar, start: datetime, delta: timedelta, level: Urgency
    ) -> None:
        assume(not wall_time_runs_backwards(cal, start, start + delta))
        rules = CustomerUrgency(cal)
        assert rules.due(level, start) <= rules.due(level, start + delta)

    @PROPERTY
    @given(
        start=instants,
        zone=st.sampled_from(["America/New_York", "Europe/London", "Asia/Tokyo", "Australia/Sydney", "Asia/Kolkata"]),
        deadline=st.one_of(business_day_deadlines, month_deadlines),
    )
    def test_honours_the_customers_time_zone(self, start: datetime, zone: str, deadline: Deadline) -> None:
        """The same rules in another zone give the same local answer: counting happens on the
        customer's local dates and times, whatever the UTC instant."""
        in_zone = BusinessCalendar(timezone=zone)
        in_utc = BusinessCalendar(timezone="UTC")
        local_start = start.astimezone(ZoneInfo(zone))
        same_wall_in_utc = local_start.replace(tzinfo=UTC)
        due = CustomerUrgency(in_zone, schedule_with(deadline)).due("critical", start)
        reference = CustomerUrgency(in_utc, schedule_with(deadline)).due("critical", same_wall_in_utc)
        wall = reference.replace(tzinfo=None)
        assume(
            datetime.combine(wall.date(), wall.time(), ZoneInfo(zone))
            .astimezone(UTC)
            .astimezone(ZoneInfo(zone))
            .replace(tzinfo=None)
            == wall
        )
        assert due.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == wall

    @PROPERTY
    @given(cal=calendars, start=instants, deadline=month_deadlines)
    def test_month_deadlines_land_on_a_business_day(
        self, cal: BusinessCalendar, start: datetime, deadline: Deadline
    ) -> None:
        due = CustomerUrgency(cal, schedule_with(deadline)).due("critical", start)
        rolled = cal.add_months_rolled(start, deadline.months)
        day = cal.local_date(rolled)
        assert cal.is_business_day(day)
        assert due == local_to_utc(day, cal.closes, cal.tz)


class TestTimelineAgreesWithTheCalendar:
    @PROPERTY
    @given(
        cal=calendars,
        around=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
        starts=st.lists(instants, min_size=1, max_size=6),
        n=st.integers(1, 25),
    )
    def test_add_business_days(self, cal: BusinessCalendar, around: date, starts: list[datetime], n: int) -> None:
        timeline = BusinessTimeline(cal, around)  # any range: it grows both ways as asked
        for start in starts:
            assert timeline.add_business_days(start, n) == cal.add_business_days(start, n)

    @PROPERTY
    @given(cal=calendars, start=instants, months=st.integers(0, 36))
    def test_add_months_rolled(self, cal: BusinessCalendar, start: datetime, months: int) -> None:
        assert BusinessTimeline(cal).add_months_rolled(start, months) == cal.add_months_rolled(start, months)

    @PROPERTY
    @given(
        cal=calendars,
        around=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
        starts=st.lists(instants, min_size=1, max_size=6),
        months=st.integers(1, 24),
    )
    def test_month_deadlines_on_a_shared_timeline(
        self, cal: BusinessCalendar, around: date, starts: list[datetime], months: int
    ) -> None:
        timeline = BusinessTimeline(cal, around)  # starts in any order: the range grows both ways
        for start in starts:
            day = cal.local_date(cal.add_months_rolled(start, months))
            assert timeline.close_after_months(start, months) == local_to_utc(day, cal.closes, cal.tz)
            assert timeline.local_date((start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)) == (
                cal.local_date(start)
            )

    @PROPERTY
    @given(cal=calendars, a=instants, d=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)))
    def test_business_time_between(self, cal: BusinessCalendar, a: datetime, d: timedelta) -> None:
        timeline = BusinessTimeline(cal, date(2027, 6, 1))
        assert timeline.business_time_between(a, a + d) == cal.business_time_between(a, a + d)

    @PROPERTY
    @given(cal=calendars, start=instants)
    def test_next_opening(self, cal: BusinessCalendar, start: datetime) -> None:
        timeline = BusinessTimeline(cal)
        micros = (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        assert timeline.next_opening(micros) == (
            cal.next_opening(start) - datetime(1970, 1, 1, tzinfo=UTC)
        ) // timedelta(microseconds=1)


class TestStateProperties:
    @PROPERTY
    @given(
        cal=calendars,
        start=instants,
        level=levels,
        steps=st.lists(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=200)), min_size=2, max_size=6),
        share=st.floats(min_value=0.05, max_value=0.95),
    )
    def test_states_only_move_forward_and_the_share_only_grows(
        self, cal: BusinessCalendar, start: datetime, level: Urgency, steps: list[timedelta], share: float
    ) -> None:
        rules = CustomerUrgency(cal, PatchSchedule(at_risk_share=share))
        order = [PatchState.ON_TRACK, PatchState.AT_RISK, PatchState.OVERDUE]
        views = [rules.evaluate(facts(level, start), start + step) for step in sorted(steps)]
        assert [order.index(v.state) for v in views] == sorted(order.index(v.state) for v in views)
        assert [v.share_used for v in views] == sorted(v.share_used for v in views)
        for view, step in zip(views, sorted(steps), strict=True):
            now = start + step
            assert start <= view.at_risk_from <= view.due
            assert (view.state is PatchState.OVERDUE) == (now > view.due)
            assert (view.state is PatchState.AT_RISK) == (view.at_risk_from <= now <= view.due)
            if view.state is PatchState.ON_TRACK:
                assert view.share_used < share + 1e-9

    @PROPERTY
    @given(cal=calendars, starts=st.lists(instants, min_size=1, max_size=20), now=instants)
    def test_a_batch_equals_one_by_one(self, cal: BusinessCalendar, starts: list[datetime], now: datetime) -> None:
        batch = evaluate(cal, None, [facts(Urgency.IMPORTANT, s) for s in starts], now)
        single = [CustomerUrgency(cal).evaluate(facts(Urgency.IMPORTANT, s), now) for s in starts]
        assert batch == single

    @PROPERTY
    @given(
        cal=calendars,
        start=instants,
        deadline=business_day_deadlines,
        share=st.floats(min_value=0.05, max_value=0.95),
    )
    def test_at_risk_point_is_the_share_of_business_time(
        self, cal: BusinessCalendar, start: datetime, deadline: Deadline, share: float
    ) -> None:
        rules = CustomerUrgency(cal, PatchSchedule({**DEFAULT_SCHEDULE, Urgency.CRITICAL: deadline}, share))
        view = rules.evaluate(facts("critical", start), start)
        assert view.due == cal.add_business_days(start, deadline.business_days)
        total = cal.business_time_between(start, view.due)
        used = cal.business_time_between(start, view.at_risk_from)
        assert used == timedelta(microseconds=max(math.ceil(total / timedelta(microseconds=1) * share), 1))
        assert view.at_risk_from == cal.add_business_hours(start, used)
