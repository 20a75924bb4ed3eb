"""The monthly report's executive summary: plain sentences from the figures, no jargon."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from problem.report_summary import (
    SummaryFigures,
    jargon_in,
    month_bounds_local,
    month_label,
    percent,
    summary_sentences,
    summary_text,
)
from problem.reports import figure_changes, key_figures


def figures(**values: object) -> SummaryFigures:
    return SummaryFigures(customer_name="Acme Corp", month="2026-10", **values)  # type: ignore[arg-type]


def test_a_busy_month_reads_as_plain_sentences() -> None:
    text = summary_text(
        figures(
            incidents=12,
            urgent_incidents=1,
            response_met=11,
            response_measured=12,
            resolution_met=9,
            resolution_measured=10,
            incidents_open_at_end=2,
            alerts_received=40,
            alerts_acted_on=5,
            changes_completed=3,
            changes_open_at_end=4,
            changes_reversed=1,
            patches_due=5,
            patches_on_time=4,
            problems_investigated=2,
            problems_solved=1,
        )
    )
    assert text.startswith(
        "In October 2026 we handled 12 incidents for Acme Corp, one of which was urgent "
        "(a service or site stopped working). 11 of 12 were answered within the agreed time (91 %). "
        "Nine of ten were fixed within the agreed time (90 %). Two were still being worked on"
    )
    assert "Our monitoring sent 40 warnings about your systems; five needed action from our engineers." in text
    assert "We completed three planned changes, and four are under way or waiting for approval." in text
    assert "One planned change did not work as expected and was stopped or reversed safely." in text
    assert (
        "Of five security or software updates due this month, four were tested and approved on schedule (80 %)." in text
    )
    assert "underlying cause of two recurring issues" in text
    assert "We removed the cause of one recurring issue." in text
    assert jargon_in(text) == []


def test_a_quiet_month_says_so() -> None:
    assert summary_sentences(figures()) == [
        "In October 2026 there were no reported faults or interruptions on Acme Corp's systems."
    ]


def test_all_none_and_single_attainment_are_worded_naturally() -> None:
    assert "All three were answered within the agreed time (100 %)." in summary_text(
        figures(incidents=3, response_met=3, response_measured=3)
    )
    assert "None of the three were fixed within the agreed time (0 %)." in summary_text(
        figures(incidents=3, resolution_met=0, resolution_measured=3)
    )
    single = summary_text(figures(incidents=1, response_met=0, response_measured=1))
    assert "we handled one incident for Acme Corp." in single
    assert "It was not answered within the agreed time." in single
    assert "The one security or software update due this month was tested and approved on schedule." in summary_text(
        figures(patches_due=1, patches_on_time=1)
    )
    assert "No planned changes were completed this month; two are under way" in summary_text(
        figures(changes_open_at_end=2)
    )


def test_unknown_patch_figures_leave_their_sentence_out() -> None:
    assert "update" not in summary_text(figures(incidents=2, patches_due=None, patches_on_time=None))
    assert "update" not in summary_text(figures(incidents=2, patches_due=0, patches_on_time=0))


@given(
    st.integers(0, 5000),
    st.integers(0, 5000),
    st.integers(0, 5000),
    st.integers(0, 300),
    st.integers(0, 300),
)
def test_no_figures_ever_produce_jargon_or_empty_text(
    incidents: int, measured: int, alerts: int, changes: int, patches: int
) -> None:
    met = measured // 2
    text = summary_text(
        figures(
            incidents=incidents,
            response_met=met,
            response_measured=measured,
            resolution_met=met,
            resolution_measured=measured,
            alerts_received=alerts,
            alerts_acted_on=alerts // 3,
            changes_completed=changes,
            changes_open_at_end=changes // 2,
            patches_due=patches,
            patches_on_time=patches // 2,
        )
    )
    assert text and jargon_in(text) == []
    assert not re.search(r"\b(1|one) (incidents|warnings|planned changes)\b", text)


def test_percent_rounds_down_and_knows_nothing_of_nothing() -> None:
    assert percent(0, 0) is None
    assert percent(199, 200) == 99
    assert percent(2, 3) == 66
    assert percent(5, 5) == 100


def test_month_helpers() -> None:
    assert month_label("2026-01") == "January 2026"
    assert month_bounds_local("2026-12")[1].isoformat() == "2027-01-01"
    assert month_bounds_local("2026-02")[0].isoformat() == "2026-02-01"


def test_what_changed_since_lists_only_figures_that_differ() -> None:
    issued = {
        "incidents": {"total": 3, "resolved": 2, "by_priority": {"critical": 0, "high": 1}},
        "sla": {"response": {"met": 2, "measured": 3}, "resolution": {"met": 1, "measured": 2}},
        "rfcs": {"counts": {"open_at_end": 4, "completed": 1, "reversed": 0}},
        "health": {"alerts": {"received": 10}},
    }
    live = {
        "incidents": {"total": 4, "resolved": 2, "by_priority": {"critical": 1, "high": 1}},
        "sla": {"response": {"met": 2, "measured": 3}, "resolution": {"met": 1, "measured": 2}},
        "rfcs": {"counts": {"open_at_end": 4, "completed": 1, "reversed": 0}},
        "health": {"alerts": {"received": 10}},
    }
    assert figure_changes(issued, live) == [
        {"figure": "Incidents", "issued": 3, "now": 4},
        {"figure": "Critical incidents", "issued": 0, "now": 1},
    ]
    assert figure_changes(live, live) == []
    assert key_figures({})["Incidents"] == 0


def test_stored_timestamps_become_iso_8601_quickly_and_correctly() -> None:
    import datetime as dt

    from problem.reports import _iso

    assert _iso("2026-10-03 10:00:00+00:00") == "2026-10-03T10:00:00+00:00"
    assert _iso("2026-10-03 10:00:00.250000+00:00") == "2026-10-03T10:00:00.250000+00:00"
    assert _iso(dt.datetime(2026, 10, 3, 6, 0, tzinfo=dt.timezone(dt.timedelta(hours=-4)))) == (
        "2026-10-03T10:00:00+00:00"
    )


def test_two_of_two_and_none_of_two_read_naturally() -> None:
    from problem.report_summary import _attainment

    assert _attainment(2, 2, "answered") == "Both were answered within the agreed time."
    assert _attainment(0, 2, "answered") == "Neither was answered within the agreed time."
    assert _attainment(3, 3, "answered") == "All three were answered within the agreed time (100 %)."
