"""Pure trend analysis: repeated incidents per CI, class and customer; spikes after a release."""

from __future__ import annotations

import datetime as dt

import pytest

from problem.trends import CIInfo, IncidentRow, SpikeRule, WatchWindow, repeated, spike, spikes

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
ACME, GLOBEX = 2, 3
CIS = {
    1: CIInfo(1, "mail01", "server", ACME),
    2: CIInfo(2, "db01", "database", ACME),
    3: CIInfo(3, "web01", "server", GLOBEX),
}


def inc(i: int, tenant: int, *cis: int, at: dt.datetime = T0) -> IncidentRow:
    return IncidentRow(i, f"INC-2026-{i:04d}", tenant, at, cis)


def test_repeated_counts_per_ci_class_and_customer() -> None:
    rows = [inc(1, ACME, 1), inc(2, ACME, 1, 2), inc(3, ACME, 1), inc(4, GLOBEX, 3), inc(5, ACME, 2)]
    found = repeated(rows, CIS, min_count=2, customer_names={ACME: "Acme", GLOBEX: "Globex"})
    assert [(g.group, g.count, g.incident_ids) for g in found.by_ci] == [(1, 3, (1, 2, 3)), (2, 2, (2, 5))]
    # incident 2 touches two CIs but counts once for the class "server"; globex's web01 too.
    assert [(g.group, g.count, g.tenant_ids) for g in found.by_class] == [
        ("server", 4, (ACME, GLOBEX)),
        ("database", 2, (ACME,)),
    ]
    assert [(g.group, g.name, g.count) for g in found.by_customer] == [(ACME, "Acme", 4)]


def test_repeated_below_the_minimum_is_not_listed() -> None:
    found = repeated([inc(1, ACME, 1), inc(2, ACME, 2)], CIS, min_count=2)
    assert found.by_ci == () and found.by_class == ()
    assert [g.count for g in found.by_customer] == [2]
    with pytest.raises(ValueError):
        repeated([], CIS, min_count=0)


WINDOW = WatchWindow(10, "REL-2026-0001", ACME, T0, T0 + dt.timedelta(days=7), (1, 2))
RULE = SpikeRule(baseline_days=30, min_incidents=3, ratio=2.0, floor_per_day=0.1)


def test_spike_against_a_quiet_baseline_is_flagged() -> None:
    rows = [
        inc(1, ACME, 1, at=T0 - dt.timedelta(days=20)),  # baseline: 1 in 30 days
        inc(2, ACME, 1, at=T0 + dt.timedelta(days=1)),
        inc(3, ACME, 2, at=T0 + dt.timedelta(days=2)),
        inc(4, ACME, 1, at=T0 + dt.timedelta(days=3)),
        inc(5, ACME, 3, at=T0 + dt.timedelta(days=3)),  # not a watched CI
        inc(6, GLOBEX, 1, at=T0 + dt.timedelta(days=3)),  # another customer's incident
    ]
    found = spike(WINDOW, rows, T0 + dt.timedelta(days=4), RULE)
    assert found.incident_ids == (2, 3, 4)
    assert found.days_watched == pytest.approx(4.0)
    assert found.rate == pytest.approx(0.75)
    assert found.baseline_count == 1
    assert found.baseline_rate == pytest.approx(1 / 30)
    assert found.ratio == pytest.approx(7.5)  # against the floor of 0.1 a day
    assert found.flagged


def test_no_spike_below_the_minimum_count() -> None:
    rows = [inc(1, ACME, 1, at=T0 + dt.timedelta(hours=2)), inc(2, ACME, 2, at=T0 + dt.timedelta(hours=3))]
    found = spike(WINDOW, rows, T0 + dt.timedelta(hours=5), RULE)
    assert found.rate == pytest.approx(2.0)  # counted over at least one day
    assert not found.flagged


def test_no_spike_when_the_rate_matches_the_baseline() -> None:
    before = [inc(100 + d, ACME, 1, at=T0 - dt.timedelta(days=d, hours=1)) for d in range(30)]
    after = [inc(200 + d, ACME, 1, at=T0 + dt.timedelta(days=d, hours=1)) for d in range(6)]
    found = spike(WINDOW, before + after, T0 + dt.timedelta(days=7), RULE)
    assert found.incidents_in_watch == 6
    assert found.baseline_rate == pytest.approx(1.0)
    assert not found.flagged  # 6/7 a day is not twice 1 a day


def test_incidents_after_the_watch_period_do_not_count() -> None:
    rows = [inc(i, ACME, 1, at=T0 + dt.timedelta(days=8 + i)) for i in range(5)]
    found = spike(WINDOW, rows, T0 + dt.timedelta(days=20), RULE)
    assert found.incidents_in_watch == 0 and found.days_watched == pytest.approx(7.0)


def test_spikes_list_flagged_first() -> None:
    quiet = WatchWindow(11, "REL-2026-0002", ACME, T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=8), (9,))
    rows = [inc(i, ACME, 1, at=T0 + dt.timedelta(hours=i)) for i in range(1, 5)]
    found = spikes([quiet, WINDOW], rows, T0 + dt.timedelta(days=2), RULE)
    assert [(s.window.key, s.flagged) for s in found] == [("REL-2026-0001", True), ("REL-2026-0002", False)]


def test_rule_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        SpikeRule(ratio=0)
