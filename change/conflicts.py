"""Schedule conflicts between RFCs (domain, "Change" step 7).

Two RFCs whose planned windows overlap and whose impacted sets share any CI are in conflict,
and both are flagged. The impacted set of an RFC is its affected CIs plus everything impacted
downstream of them through the CI graph (the caller computes it, typically with
:meth:`cmdb.graph.GraphIndex.impact_many` to some depth), so two RFCs on different CIs conflict
when a CI depends on both.

Pure: numpy, scipy and the standard library only; no database, no graph.

Windows are half-open, ``[start, end)``: a change ending at 02:00 and another starting at 02:00
do not overlap. Times may be timezone-aware (the usual case) or all naive, not a mix.

How :func:`find_conflicts` stays fast (``bench/change.py``, 1M-CI graph, impact to depth 3:
about 0.1 s for 2,000 RFCs in a month and 0.5 s for 10,000, against a pairwise comparison in
Python whose cost grows with the square of the count):

1. the RFCs are sorted by start (when no window reaches the next start there is nothing more
   to do);
2. the impacted sets become one sparse boolean incidence matrix ``M`` (RFC x CI, CSR) and
   ``M @ M.T`` (scipy, in compiled code) counts the shared CIs of every pair that shares any;
3. those pairs are kept when their windows overlap (a vectorised comparison);
4. only for the survivors the shared CI lists are read, by marking the larger set of the pair
   in a boolean array and filtering the smaller one through it.

:func:`find_conflicts_naive` is the obvious pairwise comparison, kept as the reference for the
tests and the benchmark (``bench/change.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix, triu

__all__ = [
    "ConflictPair",
    "ScheduledChange",
    "conflicting_rfcs",
    "conflicts_for",
    "find_conflicts",
    "find_conflicts_naive",
]

#: CI ids spread over at most this many columns (or four times the number of incidences, if
#: more) are used as matrix columns directly, saving a sort of every incidence through np.unique.
_DIRECT_COLUMNS = 1 << 22

_EPOCH_AWARE = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)

ImpactedSet = Collection[int] | NDArray[Any]


@dataclass(frozen=True)
class ScheduledChange:
    """An RFC with a planned window and its impacted set: the affected CIs plus everything
    impacted downstream of them (computed by the caller). The window is ``[start, end)`` and
    must not be empty.

    ``impacted`` may be any collection of CI ids (a frozenset, a list) or a 1-d integer numpy
    array; duplicates are allowed. It takes no part in equality or hashing: two records for the
    same RFC and window compare equal.
    """

    rfc_id: int
    start: dt.datetime
    end: dt.datetime
    impacted: ImpactedSet = field(compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"RFC {self.rfc_id}: the planned window must end after it starts")
        if isinstance(self.impacted, np.ndarray) and (
            self.impacted.ndim != 1 or not np.issubdtype(self.impacted.dtype, np.integer)
        ):
            raise ValueError(f"RFC {self.rfc_id}: impacted must be a 1-d array of CI ids")

    def overlaps(self, other: ScheduledChange) -> bool:
        """True when the two windows share a moment (touching ends do not)."""
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class ConflictPair:
    """Two RFCs in conflict, ``a < b`` (RFC ids). ``shared`` holds the shared CI ids in
    ascending order, at most the ``max_shared`` asked for; ``shared_count`` is how many there
    are in all."""

    a: int
    b: int
    shared: tuple[int, ...]
    shared_count: int

    def __post_init__(self) -> None:
        if not self.a < self.b:
            raise ValueError("a conflict pair needs a < b")
        if self.shared_count < len(self.shared):
            raise ValueError("shared_count cannot be less than the shared CIs listed")

    @property
    def rfcs(self) -> tuple[int, int]:
        return (self.a, self.b)

    def other(self, rfc_id: int) -> int:
        """The RFC this one conflicts with."""
        if rfc_id == self.a:
            return self.b
        if rfc_id == self.b:
            return self.a
        raise ValueError(f"RFC {rfc_id} is not part of this pair")

    def as_dict(self) -> dict[str, Any]:
        """The shape of an item of ``GET /api/rfcs/conflicts``."""
        return {"rfcs": [self.a, self.b], "shared_cis": list(self.shared), "shared_count": self.shared_count}


def conflicts_for(rfc_id: int, pairs: Iterable[ConflictPair]) -> list[ConflictPair]:
    """The pairs that involve this RFC, in the order given."""
    return [p for p in pairs if p.a == rfc_id or p.b == rfc_id]


def conflicting_rfcs(pairs: Iterable[ConflictPair]) -> frozenset[int]:
    """Every RFC in at least one conflict: both sides of a pair are flagged."""
    return frozenset(rfc for p in pairs for rfc in (p.a, p.b))


# ---------------------------------------------------------------------------------- the fast way


def find_conflicts(changes: Sequence[ScheduledChange], max_shared: int = 50) -> list[ConflictPair]:
    """Every pair of changes whose windows overlap and whose impacted sets share a CI, sorted
    by ``(a, b)``. Each pair lists up to ``max_shared`` shared CIs (the smallest ids) and counts
    them all. See the module docstring for the method; the answer equals
    :func:`find_conflicts_naive`'s. ValueError if an RFC id appears twice or naive and aware
    times are mixed."""
    if isinstance(max_shared, bool) or not isinstance(max_shared, int) or max_shared < 0:
        raise ValueError("max_shared must be a whole number >= 0")
    _check_unique_ids(changes)
    n = len(changes)
    if n < 2:
        return []

    starts, ends = _times(changes)
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    rfc_ids = np.array([changes[i].rfc_id for i in order.tolist()], dtype=np.int64)

    # Rows follow the start order; a row can only pair with the rows after it that start
    # before it ends. When there is no such row anywhere, nothing overlaps.
    reach = np.searchsorted(starts, ends, side="left")
    if not bool(np.any(reach > np.arange(1, n + 1))):
        return []

    incidence, vocabulary = _incidence([changes[i].impacted for i in order.tolist()])
    if incidence.nnz == 0:
        return []

    # Shared-CI counts of every pair of rows sharing any CI, upper triangle only (row < col).
    counts = triu(incidence @ incidence.T, k=1, format="coo")
    row = counts.row.astype(np.int64)
    col = counts.col.astype(np.int64)
    shared_counts = counts.data.astype(np.int64)
    # Rows are in start order, so col > row means starts[col] >= starts[row]: the windows
    # overlap exactly when the later one starts before the earlier one ends.
    keep = starts[col] < ends[row]
    row, col, shared_counts = row[keep], col[keep], shared_counts[keep]
    if not len(row):
        return []

    pairs = _shared_lists(incidence, vocabulary, row, col, shared_counts, rfc_ids, max_shared)
    pairs.sort(key=lambda p: (p.a, p.b))
    return pairs


def _check_unique_ids(changes: Sequence[ScheduledChange]) -> None:
    seen: set[int] = set()
    for change in changes:
        if change.rfc_id in seen:
            raise ValueError(f"RFC {change.rfc_id} appears more than once")
        seen.add(change.rfc_id)


def _times(changes: Sequence[ScheduledChange]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Starts and ends as whole microseconds since the epoch (exact, unlike float timestamps)."""
    aware = {c.start.tzinfo is not None for c in changes} | {c.end.tzinfo is not None for c in changes}
    if len(aware) > 1:
        raise ValueError("planned windows mix naive and timezone-aware times")
    epoch = _EPOCH_AWARE if aware == {True} else _EPOCH_NAIVE
    starts = np.fromiter(((c.start - epoch) // _MICROSECOND for c in changes), dtype=np.int64, count=len(changes))
    ends = np.fromiter(((c.end - epoch) // _MICROSECOND for c in changes), dtype=np.int64, count=len(changes))
    return starts, ends


def _as_ids(impacted: ImpactedSet) -> NDArray[np.int64]:
    if isinstance(impacted, np.ndarray):
        return impacted.astype(np.int64, copy=False).ravel()
    return np.fromiter(impacted, dtype=np.int64, count=len(impacted))


def _incidence(sets: Sequence[ImpactedSet]) -> tuple[csr_matrix, NDArray[np.int64] | int]:
    """The boolean RFC x CI matrix (int32 ones, canonical CSR: sorted, no duplicates) and how
    to turn a column back into a CI id: either the vocabulary array (column -> id) or an
    offset (id = column + offset) when the ids were dense enough to use as columns."""
    parts = [_as_ids(s) for s in sets]
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    rows = np.repeat(np.arange(len(parts), dtype=np.int32), lengths)
    vocabulary: NDArray[np.int64] | int
    if not len(flat):
        return csr_matrix((len(parts), 0), dtype=np.int32), 0
    low, high = int(flat.min()), int(flat.max())
    span = high - low + 1
    if span <= max(_DIRECT_COLUMNS, 4 * len(flat)):
        cols = flat - low
        vocabulary = low
        width = span
    else:
        vocabulary, inverse = np.unique(flat, return_inverse=True)
        cols = inverse.ravel()
        width = len(vocabulary)
    matrix = csr_matrix(
        (np.ones(len(flat), dtype=np.int32), (rows, cols.astype(np.int32 if width < 2**31 else np.int64))),
        shape=(len(parts), width),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return matrix, vocabulary


def _shared_lists(
    incidence: csr_matrix,
    vocabulary: NDArray[np.int64] | int,
    row: NDArray[np.int64],
    col: NDArray[np.int64],
    shared_counts: NDArray[np.int64],
    rfc_ids: NDArray[np.int64],
    max_shared: int,
) -> list[ConflictPair]:
    """Build the pairs, reading up to ``max_shared`` shared CIs of each. Pairs are grouped by
    their side with the larger impacted set, whose CIs are marked once in a boolean array; the
    other side's (sorted) columns are then filtered through the marks, which keeps them sorted
    and costs the size of the smaller set per pair (a change to a core switch impacts most of
    the estate and may pair with hundreds of small changes)."""
    indptr, indices = incidence.indptr, incidence.indices
    ids_a, ids_b = rfc_ids[row], rfc_ids[col]
    lo = np.minimum(ids_a, ids_b).tolist()
    hi = np.maximum(ids_a, ids_b).tolist()
    counts = shared_counts.tolist()
    if max_shared == 0:
        return [ConflictPair(a, b, (), c) for a, b, c in zip(lo, hi, counts, strict=True)]

    sizes = np.diff(indptr)
    row_larger = sizes[row] >= sizes[col]
    big = np.where(row_larger, row, col)
    small = np.where(row_larger, col, row)
    order = np.argsort(big, kind="stable")
    big_sorted = big[order]
    bounds = np.flatnonzero(np.diff(big_sorted)) + 1
    firsts = [0, *bounds.tolist()]
    lasts = [*bounds.tolist(), len(big_sorted)]
    big_list = big_sorted.tolist()
    order_list = order.tolist()
    small_list = small.tolist()
    ptr = indptr.tolist()
    marks = np.zeros(incidence.shape[1], dtype=np.bool_)
    pairs: list[ConflictPair] = []
    for first, last in zip(firsts, lasts, strict=True):
        r = big_list[first]
        own = indices[ptr[r] : ptr[r + 1]]
        marks[own] = True
        for k in order_list[first:last]:
            c = small_list[k]
            theirs = indices[ptr[c] : ptr[c + 1]]
            shared_cols = theirs[marks[theirs]][:max_shared]
            if isinstance(vocabulary, int):
                shared = (shared_cols.astype(np.int64) + vocabulary).tolist()
            else:
                shared = vocabulary[shared_cols].tolist()
            pairs.append(ConflictPair(lo[k], hi[k], tuple(shared), counts[k]))
        marks[own] = False
    return pairs


# ------------------------------------------------------------------------------ the reference


def find_conflicts_naive(changes: Sequence[ScheduledChange], max_shared: int = 50) -> list[ConflictPair]:
    """The same answer as :func:`find_conflicts`, by comparing every pair with Python sets.
    Quadratic: the reference for tests and the benchmark, not for production."""
    if isinstance(max_shared, bool) or not isinstance(max_shared, int) or max_shared < 0:
        raise ValueError("max_shared must be a whole number >= 0")
    _check_unique_ids(changes)
    sets = [{int(ci) for ci in _as_ids(c.impacted).tolist()} for c in changes]
    pairs: list[ConflictPair] = []
    for i, first in enumerate(changes):
        for j in range(i + 1, len(changes)):
            second = changes[j]
            if not first.overlaps(second):
                continue
            common = sets[i] & sets[j]
            if common:
                a, b = sorted((first.rfc_id, second.rfc_id))
                pairs.append(ConflictPair(a, b, tuple(sorted(common)[:max_shared]), len(common)))
    pairs.sort(key=lambda p: (p.a, p.b))
    return pairs
