"""Change windows and blackouts (cmdb.windows)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb.windows import (
    Blackout,
    ChangeWindow,
    ScheduleViolation,
    blackouts_hit,
    check_schedule,
    fits_windows,
    next_fitting_start,
    occurrences,
    validate_window_dict,
)

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
PROPERTY = settings(max_examples=200, deadline=None)

SATURDAY_NIGHT_LONDON = ChangeWindow(
    name="Saturday night",
    days=frozenset({6}),
    start=time(22, 0),
    duration=timedelta(hours=6),
    timezone="Europe/London",
)
FRIDAY_LATE_NY = ChangeWindow(
    name="Friday late",
    days=frozenset({5}),
    start=time(22, 0),
    duration=timedelta(hours=4),
    timezone="America/New_York",
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


class TestOccurrences:
    def test_ordinary_weeks_in_utc(self) -> None:
        occ = occurrences(SATURDAY_NIGHT_LONDON, utc(2026, 3, 16), utc(2026, 3, 23))
        assert occ == [(utc(2026, 3, 21, 22), utc(2026, 3, 22, 4))]

    def test_spring_forward_night_is_an_hour_shorter(self) -> None:
        # Clocks go forward in London at 01:00 GMT on Sunday 2026-03-29; the window still ends 04:00 local.
        occ = occurrences(SATURDAY_NIGHT_LONDON, utc(2026, 3, 28), utc(2026, 4, 6))
        assert occ == [
            (utc(2026, 3, 28, 22), utc(2026, 3, 29, 3)),
            (utc(2026, 4, 4, 21), utc(2026, 4, 5, 3)),
        ]

    def test_fall_back_night_is_an_hour_longer(self) -> None:
        occ = occurrences(SATURDAY_NIGHT_LONDON, utc(2026, 10, 24), utc(2026, 10, 26))
        assert occ == [(utc(2026, 10, 24, 21), utc(2026, 10, 25, 4))]
        assert occ[0][1] - occ[0][0] == timedelta(hours=7)

    def test_window_starting_in_the_skipped_hour_opens_at_the_jump(self) -> None:
        early = ChangeWindow("Early Sunday", frozenset({7}), time(1, 30), timedelta(hours=1), "Europe/London")
        occ = occurrences(early, utc(2026, 3, 29), utc(2026, 3, 30))
        assert occ == [(utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30))]

    def test_window_crossing_midnight_reaches_into_the_range(self) -> None:
        # The Friday 22:00 occurrence is still open at 01:00 on Saturday.
        occ = occurrences(FRIDAY_LATE_NY, ny(2026, 6, 6, 1, 0), ny(2026, 6, 6, 1, 30))
        assert occ == [(ny(2026, 6, 5, 22, 0), ny(2026, 6, 6, 2, 0))]

    def test_touching_the_range_is_not_overlapping(self) -> None:
        assert occurrences(FRIDAY_LATE_NY, ny(2026, 6, 6, 2, 0), ny(2026, 6, 6, 5, 0)) == []
        assert occurrences(FRIDAY_LATE_NY, ny(2026, 6, 5, 20, 0), ny(2026, 6, 5, 22, 0)) == []

    def test_validity_bounds_apply_to_the_start_date(self) -> None:
        w = ChangeWindow(
            "Summer only",
            frozenset({6}),
            time(22, 0),
            timedelta(hours=6),
            "Europe/London",
            valid_from=date(2026, 6, 1),
            valid_until=date(2026, 6, 13),
        )
        starts = [s for s, _ in occurrences(w, utc(2026, 5, 1), utc(2026, 7, 31))]
        assert [s.astimezone(LONDON).date() for s in starts] == [date(2026, 6, 6), date(2026, 6, 13)]

    def test_seven_day_window_is_always_open(self) -> None:
        w = ChangeWindow("Always", frozenset({1}), time(0, 0), timedelta(days=7), "UTC")
        assert fits_windows(utc(2026, 6, 1, 3), utc(2026, 6, 14, 5), [w])


class TestFitsWindows:
    def test_no_windows_means_no_restriction(self) -> None:
        assert fits_windows(utc(2026, 6, 3, 12), utc(2026, 6, 3, 13), [])

    def test_inside_a_midnight_crossing_occurrence(self) -> None:
        assert fits_windows(ny(2026, 6, 6, 1, 0), ny(2026, 6, 6, 2, 0), [FRIDAY_LATE_NY])
        assert fits_windows(ny(2026, 6, 5, 22, 0), ny(2026, 6, 6, 2, 0), [FRIDAY_LATE_NY])

    def test_overrunning_the_occurrence_does_not_fit(self) -> None:
        assert not fits_windows(ny(2026, 6, 6, 1, 0), ny(2026, 6, 6, 2, 1), [FRIDAY_LATE_NY])
        assert not fits_windows(ny(2026, 6, 5, 21, 59), ny(2026, 6, 5, 23, 0), [FRIDAY_LATE_NY])

    def test_any_of_several_windows_will_do(self) -> None:
        weekday_lunch = ChangeWindow(
            "Lunch", frozenset({1, 2, 3, 4, 5}), time(12, 0), timedelta(hours=1), "America/New_York"
        )
        assert fits_windows(ny(2026, 6, 3, 12, 15), ny(2026, 6, 3, 12, 45), [FRIDAY_LATE_NY, weekday_lunch])

    def test_touching_occurrences_form_one_open_period(self) -> None:
        weekend = ChangeWindow("Weekend", frozenset({6, 7}), time(0, 0), timedelta(hours=24), "Europe/London")
        sat_23 = datetime(2026, 6, 6, 23, 0, tzinfo=LONDON)
        assert fits_windows(sat_23, sat_23 + timedelta(hours=2), [weekend])
        assert not fits_windows(sat_23 + timedelta(hours=24), sat_23 + timedelta(hours=26), [weekend])

    def test_naive_datetimes_are_refused(self) -> None:
        with pytest.raises(ValueError, match="naive"):
            fits_windows(datetime(2026, 6, 6, 1), datetime(2026, 6, 6, 2), [FRIDAY_LATE_NY])

    def test_next_fitting_start_suggests_the_next_occurrence(self) -> None:
        start = next_fitting_start(ny(2026, 6, 6, 3, 0), timedelta(hours=2), [FRIDAY_LATE_NY])
        assert start == ny(2026, 6, 12, 22, 0)
        assert next_fitting_start(ny(2026, 6, 6, 3, 0), timedelta(hours=5), [FRIDAY_LATE_NY]) is None


class TestBlackouts:
    FREEZE = Blackout(start=utc(2026, 12, 20), end=utc(2027, 1, 4), reason="Year-end freeze")

    def test_touching_edges_are_not_overlap(self) -> None:
        assert blackouts_hit(utc(2026, 12, 19, 22), utc(2026, 12, 20), [self.FREEZE]) == []
        assert blackouts_hit(utc(2027, 1, 4), utc(2027, 1, 4, 2), [self.FREEZE]) == []

    def test_any_overlap_hits(self) -> None:
        for start, end in [
            (utc(2026, 12, 19, 23), utc(2026, 12, 20, 0, 1)),
            (utc(2027, 1, 3, 23, 59), utc(2027, 1, 4, 1)),
            (utc(2026, 12, 24), utc(2026, 12, 25)),
            (utc(2026, 12, 1), utc(2027, 2, 1)),
        ]:
            assert blackouts_hit(start, end, [self.FREEZE]) == [self.FREEZE]

    def test_blackout_must_end_after_it_starts(self) -> None:
        with pytest.raises(ValueError, match=r"^end:"):
            Blackout(start=utc(2026, 1, 2), end=utc(2026, 1, 2), reason="empty")
        with pytest.raises(ValueError, match="naive"):
            Blackout(start=datetime(2026, 1, 2), end=utc(2026, 1, 3), reason="naive")


class TestCheckSchedule:
    def test_one_violation_per_ci_outside_its_windows(self) -> None:
        start, end = ny(2026, 6, 3, 14, 0), ny(2026, 6, 3, 15, 0)
        violations = check_schedule(
            start,
            end,
            {"db01": [FRIDAY_LATE_NY], "web01": [SATURDAY_NIGHT_LONDON], "no-windows": []},
            [],
        )
        assert [(v.kind, v.ci) for v in violations] == [
            ("outside_window", "db01"),
            ("outside_window", "web01"),
        ]
        assert "db01" in violations[0].detail
        assert "Friday late" in violations[0].detail
        assert "next slot that fits starts Fri 2026-06-05 22:00 America/New_York" in violations[0].detail

    def test_allowed_schedule_has_no_violations(self) -> None:
        start, end = ny(2026, 6, 5, 22, 30), ny(2026, 6, 6, 1, 0)
        assert check_schedule(start, end, {"db01": [FRIDAY_LATE_NY], "app": []}, []) == []

    def test_blackout_is_reported_even_inside_the_window(self) -> None:
        freeze = Blackout(ny(2026, 6, 5, 0, 0), ny(2026, 6, 8, 0, 0), reason="Quarter close")
        start, end = ny(2026, 6, 5, 22, 30), ny(2026, 6, 6, 1, 0)
        violations = check_schedule(start, end, {"db01": [FRIDAY_LATE_NY]}, [freeze])
        assert violations == [
            ScheduleViolation(
                kind="blackout",
                ci=None,
                detail=(
                    "The planned window 2026-06-06 02:30 UTC to 2026-06-06 05:00 UTC overlaps the blackout "
                    '"Quarter close" (2026-06-05 04:00 UTC to 2026-06-08 04:00 UTC); plan it to end by '
                    "2026-06-05 04:00 UTC or to start at 2026-06-08 04:00 UTC or later."
                ),
            )
        ]

    def test_window_and_blackout_violations_together(self) -> None:
        freeze = Blackout(utc(2026, 6, 1), utc(2026, 6, 30), reason="Migration")
        violations = check_schedule(
            utc(2026, 6, 3, 12), utc(2026, 6, 3, 13), {"a": [FRIDAY_LATE_NY], "b": [FRIDAY_LATE_NY]}, [freeze]
        )
        assert [(v.kind, v.ci) for v in violations] == [
            ("outside_window", "a"),
            ("outside_window", "b"),
            ("blackout", None),
        ]

    def test_empty_planned_window_is_an_error(self) -> None:
        with pytest.raises(ValueError, match=r"^end:"):
            check_schedule(utc(2026, 6, 3, 12), utc(2026, 6, 3, 12), {}, [])


class TestWindowValidation:
    GOOD = {
        "name": "Weekend",
        "days": [6, 7],
        "start": "22:00",
        "duration_minutes": 360,
        "timezone": "Europe/London",
    }

    def test_good_dict_round_trips(self) -> None:
        assert validate_window_dict(self.GOOD) == []
        window = ChangeWindow.from_dict(self.GOOD)
        assert window.duration == timedelta(hours=6)
        assert ChangeWindow.from_dict(window.to_dict()) == window

    @pytest.mark.parametrize(
        ("patch", "field"),
        [
            ({"name": ""}, "name"),
            ({"days": []}, "days"),
            ({"days": [0, 1]}, "days"),
            ({"days": [True]}, "days"),
            ({"start": "25:00"}, "start"),
            ({"start": "7:00"}, "start"),
            ({"duration_minutes": 0}, "duration_minutes"),
            ({"duration_minutes": 1.5}, "duration_minutes"),
            ({"duration_minutes": 7 * 24 * 60 + 1}, "duration_minutes"),
            ({"timezone": "Europe/Atlantis"}, "timezone"),
            ({"valid_from": "2026-02-30"}, "valid_from"),
            ({"valid_from": "2026-06-02", "valid_until": "2026-06-01"}, "valid_until"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_bad_field_is_named(self, patch: dict[str, object], field: str) -> None:
        problems = validate_window_dict({**self.GOOD, **patch})
        assert [f for f, _ in problems] == [field]
        with pytest.raises(ValueError, match=field):
            ChangeWindow.from_dict({**self.GOOD, **patch})

    def test_missing_fields_are_named(self) -> None:
        assert {f for f, _ in validate_window_dict({})} == {
            "name",
            "days",
            "start",
            "duration_minutes",
            "timezone",
        }
        assert validate_window_dict("nope") == [("window", "must be a JSON object")]

    def test_constructor_validates_too(self) -> None:
        with pytest.raises(ValueError, match=r"^duration:"):
            ChangeWindow("x", frozenset({1}), time(1), timedelta(days=8), "UTC")
        with pytest.raises(ValueError, match=r"^timezone:"):
            ChangeWindow("x", frozenset({1}), time(1), timedelta(hours=1), "Nowhere")


# ---------------------------------------------------------------------------------- properties

windows = st.builds(
    ChangeWindow,
    name=st.just("w"),
    days=st.frozensets(st.integers(1, 7), min_size=1),
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    duration=st.integers(1, 3 * 24 * 60).map(lambda m: timedelta(minutes=m)),
    timezone=st.sampled_from(["UTC", "America/New_York", "Europe/London", "Australia/Sydney", "Asia/Tokyo"]),
)


def _clock_changes(zones: list[str]) -> list[datetime]:
    found: list[datetime] = []
    for key in zones:
        tz = ZoneInfo(key)
        t = datetime(2024, 1, 1, tzinfo=UTC)
        while t.year < 2031:
            if (t + timedelta(hours=1)).astimezone(tz).utcoffset() != t.astimezone(tz).utcoffset():
                found.append(t + timedelta(hours=1))
            t += timedelta(hours=1)
    return found


range_starts = st.one_of(
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)).map(
        lambda d: d.replace(second=0, microsecond=0)
    ),
    # Uniform draws almost never reach a clock-change night.
    st.builds(
        lambda t, m: t + timedelta(minutes=m),
        st.sampled_from(_clock_changes(["America/New_York", "Europe/London", "Australia/Sydney"])),
        st.integers(-4 * 24 * 60, 24 * 60),
    ),
)


def wall_exists(day: date, wall: time, tz: ZoneInfo) -> bool:
    naive = datetime.combine(day, wall)
    return datetime.combine(day, wall, tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive


class TestWindowProperties:
    @PROPERTY
    @given(window=windows, range_start=range_starts, days=st.integers(1, 10))
    def test_occurrences_start_on_window_days_at_window_time(
        self, window: ChangeWindow, range_start: datetime, days: int
    ) -> None:
        range_end = range_start + timedelta(days=days)
        occ = occurrences(window, range_start, range_end)
        assert occ == sorted(occ)
        for s, e in occ:
            assert s.tzinfo == UTC and e.tzinfo == UTC
            assert s < range_end and range_start < e
            local_start = s.astimezone(window.tz)
            assert local_start.isoweekday() in window.days
            # Equal to the window length except on a clock-change night (one hour, or half an hour
            # on Lord Howe, either way).
            assert abs((e - s) - window.duration) <= timedelta(hours=1)
            if wall_exists(local_start.date(), window.start, window.tz):
                assert local_start.time() == window.start
            else:
                # A start in the skipped hour opens when the clocks jump, i.e. just after the gap.
                before = s - timedelta(minutes=1)
                assert before.astimezone(window.tz).utcoffset() != local_start.utcoffset()
            if window.timezone in ("UTC", "Asia/Tokyo"):
                assert e - s == window.duration

    @PROPERTY
    @given(window=windows, range_start=range_starts, a=st.floats(0, 1), b=st.floats(0, 1))
    def test_every_part_of_an_occurrence_fits(
        self, window: ChangeWindow, range_start: datetime, a: float, b: float
    ) -> None:
        occ = occurrences(window, range_start, range_start + timedelta(days=8))
        s, e = occ[0]
        lo, hi = sorted((a, b))
        start = s + (e - s) * lo
        end = max(s + (e - s) * hi, start + timedelta(microseconds=1))
        if end <= e:
            assert fits_windows(start, end, [window])

    @PROPERTY
    @given(window=windows, range_start=range_starts)
    def test_running_past_the_open_period_does_not_fit(self, window: ChangeWindow, range_start: datetime) -> None:
        occ = occurrences(window, range_start, range_start + timedelta(days=8))
        s, e = occ[0]
        # The open period may continue into a following occurrence; find where it really ends.
        end_of_open = e
        for s2, e2 in occurrences(window, s, s + timedelta(days=30)):
            if s2 <= end_of_open:
                end_of_open = max(end_of_open, e2)
        if end_of_open - s < timedelta(days=20):
            assert fits_windows(s, end_of_open, [window])
            assert not fits_windows(s, end_of_open + timedelta(minutes=1), [window])

    @PROPERTY
    @given(
        start=range_starts,
        minutes=st.integers(1, 600),
        offset=st.integers(-700, 700),
        b_minutes=st.integers(1, 600),
    )
    def test_blackout_overlap_is_half_open_interval_intersection(
        self, start: datetime, minutes: int, offset: int, b_minutes: int
    ) -> None:
        end = start + timedelta(minutes=minutes)
        b_start = start + timedelta(minutes=offset)
        blackout = Blackout(b_start, b_start + timedelta(minutes=b_minutes), "b")
        hit = blackouts_hit(start, end, [blackout]) == [blackout]
        assert hit == (max(start, blackout.start) < min(end, blackout.end))
        violations = check_schedule(start, end, {}, [blackout])
        assert (len(violations) == 1) == hit
