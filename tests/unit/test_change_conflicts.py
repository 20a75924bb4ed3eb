"""Schedule conflicts between RFCs (change.conflicts): the sparse method against the pairwise
reference on random schedules, and a worked example through a CI graph."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from change.conflicts import (
    ConflictPair,
    ScheduledChange,
    conflicting_rfcs,
    conflicts_for,
    find_conflicts,
    find_conflicts_naive,
)
from cmdb.graph import GraphIndex

T0 = datetime(2026, 3, 6, 20, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)

# Small dense ids (used as matrix columns directly) and sparse huge ones (which need a vocabulary).
DENSE_POOL = list(range(1, 25))
SPARSE_POOL = [-(2**40), -7, 0, 3, 5, 11, 99, 2**33, 2**33 + 1, 2**62, 123_456_789]


@st.composite
def schedules(draw: st.DrawFn) -> list[ScheduledChange]:
    pool = draw(st.sampled_from([DENSE_POOL, SPARSE_POOL]))
    count = draw(st.integers(0, 14))
    rfc_ids = draw(st.lists(st.integers(-5, 10**9), min_size=count, max_size=count, unique=True))
    changes = []
    for rfc_id in rfc_ids:
        # A coarse grid of hours makes touching ends and equal starts common.
        start = T0 + draw(st.integers(0, 12)) * HOUR
        end = start + draw(st.integers(1, 5)) * HOUR
        cis = draw(st.lists(st.sampled_from(pool), max_size=8))  # duplicates allowed
        as_array = draw(st.booleans())
        impacted = np.array(cis, dtype=np.int64) if as_array else frozenset(cis)
        changes.append(ScheduledChange(rfc_id, start, end, impacted))
    return changes


def ids(c: ScheduledChange) -> set[int]:
    return {int(x) for x in c.impacted}


@settings(max_examples=300, deadline=None)
@given(schedules(), st.integers(0, 4))
def test_fast_equals_naive(changes, max_shared):
    fast = find_conflicts(changes, max_shared=max_shared)
    assert fast == find_conflicts_naive(changes, max_shared=max_shared)

    by_id = {c.rfc_id: c for c in changes}
    seen = set()
    for pair in fast:
        assert pair.a < pair.b  # ordered, and so never a self-pair
        assert (pair.a, pair.b) not in seen
        seen.add((pair.a, pair.b))
        first, second = by_id[pair.a], by_id[pair.b]
        assert first.start < second.end and second.start < first.end
        common = sorted(ids(first) & ids(second))
        assert pair.shared_count == len(common) > 0
        assert list(pair.shared) == common[:max_shared]
    assert [(p.a, p.b) for p in fast] == sorted(seen)


def change(rfc_id, start_h, end_h, cis):
    return ScheduledChange(rfc_id, T0 + start_h * HOUR, T0 + end_h * HOUR, frozenset(cis))


def test_touching_windows_do_not_overlap():
    assert find_conflicts([change(1, 0, 2, {5}), change(2, 2, 4, {5})]) == []
    assert find_conflicts([change(1, 0, 2, {5}), change(2, 1, 4, {5})]) == [ConflictPair(1, 2, (5,), 1)]
    # Same start, one inside the other.
    assert find_conflicts([change(2, 0, 8, {5, 6}), change(1, 0, 1, {6})]) == [ConflictPair(1, 2, (6,), 1)]


def test_shared_list_is_capped_but_counted():
    a = change(7, 0, 3, range(100))
    b = change(3, 1, 2, range(50, 200))
    [pair] = find_conflicts([a, b], max_shared=5)
    assert (pair.a, pair.b, pair.shared, pair.shared_count) == (3, 7, (50, 51, 52, 53, 54), 50)
    [pair] = find_conflicts([a, b], max_shared=0)
    assert pair.shared == () and pair.shared_count == 50
    assert pair.as_dict() == {"rfcs": [3, 7], "shared_cis": [], "shared_count": 50}


def test_no_common_ci_no_conflict():
    assert find_conflicts([change(1, 0, 5, {1, 2}), change(2, 0, 5, {3}), change(3, 0, 5, set())]) == []
    assert find_conflicts([]) == [] and find_conflicts([change(1, 0, 1, {1})]) == []


def test_helpers():
    pairs = find_conflicts(
        [change(1, 0, 5, {1}), change(2, 1, 2, {1, 2}), change(3, 3, 4, {1, 2}), change(4, 0, 9, {9})]
    )
    assert [(p.a, p.b) for p in pairs] == [(1, 2), (1, 3)]
    assert conflicts_for(3, pairs) == [pairs[1]]
    assert conflicts_for(4, pairs) == []
    assert conflicting_rfcs(pairs) == {1, 2, 3}
    assert pairs[0].other(1) == 2 and pairs[0].rfcs == (1, 2)
    with pytest.raises(ValueError):
        pairs[0].other(3)


def test_bad_input_refused():
    with pytest.raises(ValueError, match="end after it starts"):
        change(1, 2, 2, {1})
    with pytest.raises(ValueError, match="more than once"):
        find_conflicts([change(1, 0, 1, {1}), change(1, 0, 1, {1})])
    naive = ScheduledChange(2, datetime(2026, 3, 6, 20), datetime(2026, 3, 6, 22), frozenset({1}))
    with pytest.raises(ValueError, match="naive"):
        find_conflicts([change(1, 0, 1, {1}), naive])
    with pytest.raises(ValueError, match="max_shared"):
        find_conflicts([], max_shared=-1)
    with pytest.raises(ValueError):
        ConflictPair(2, 1, (), 0)
    with pytest.raises(ValueError):
        ScheduledChange(1, T0, T0 + HOUR, np.zeros((2, 2), dtype=np.int64))


def test_naive_times_work_when_all_naive():
    a = ScheduledChange(1, datetime(2026, 3, 6, 20), datetime(2026, 3, 6, 22), frozenset({1}))
    b = ScheduledChange(2, datetime(2026, 3, 6, 21), datetime(2026, 3, 6, 23), frozenset({1}))
    assert find_conflicts([a, b]) == find_conflicts_naive([a, b]) == [ConflictPair(1, 2, (1,), 1)]


# ---------------------------------------------------------------------------- through the graph

ACME = 2
SERVER, DATABASE, APP, SERVICE, REPORTING, OTHER_SERVER = 100, 200, 300, 400, 500, 600


@pytest.fixture
def graph() -> GraphIndex:
    """The app runs on the server and depends on the database; the service depends on the app.
    A reporting job depends only on the database; another server stands alone."""
    nodes = [(ci, ACME) for ci in (SERVER, DATABASE, APP, SERVICE, REPORTING, OTHER_SERVER)]
    edges = [
        (1, APP, SERVER, "runs_on"),
        (2, APP, DATABASE, "depends_on"),
        (3, SERVICE, APP, "depends_on"),
        (4, REPORTING, DATABASE, "depends_on"),
    ]
    return GraphIndex.build(nodes, edges)


def scheduled(graph: GraphIndex, rfc_id: int, cis: list[int], start: datetime, hours: int) -> ScheduledChange:
    impacted = graph.impact_many(cis, "down", 3)
    return ScheduledChange(rfc_id, start, start + hours * HOUR, frozenset(impacted))


def test_rfcs_on_different_cis_meet_downstream(graph):
    server_patch = scheduled(graph, 1, [SERVER], T0, 4)
    database_upgrade = scheduled(graph, 2, [DATABASE], T0 + 2 * HOUR, 4)
    assert server_patch.impacted == {SERVER, APP, SERVICE}
    assert database_upgrade.impacted == {DATABASE, APP, SERVICE, REPORTING}
    # The two RFCs share no affected CI, but the app and the service depend on both.
    pairs = find_conflicts([server_patch, database_upgrade])
    assert pairs == [ConflictPair(1, 2, (APP, SERVICE), 2)]
    assert pairs == find_conflicts_naive([server_patch, database_upgrade])
    assert pairs[0].as_dict() == {"rfcs": [1, 2], "shared_cis": [APP, SERVICE], "shared_count": 2}


def test_same_rfcs_in_separate_windows_do_not_conflict(graph):
    server_patch = scheduled(graph, 1, [SERVER], T0, 4)
    database_upgrade = scheduled(graph, 2, [DATABASE], T0 + 4 * HOUR, 4)  # starts as the other ends
    assert find_conflicts([server_patch, database_upgrade]) == []


def test_unrelated_ci_no_conflict(graph):
    server_patch = scheduled(graph, 1, [SERVER], T0, 4)
    other = scheduled(graph, 3, [OTHER_SERVER], T0, 4)
    assert find_conflicts([server_patch, other]) == []
