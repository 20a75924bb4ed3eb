"""The CI graph engine: impact, paths, neighbourhoods and cycles over all CIs of all tenants.

Pure: numpy, scipy and networkx only. The database stays the source of truth; the cache feeds
this index at start-up (`GraphIndex.from_arrays`) and then replays the change log through the
incremental edits.

Why not one networkx graph for everything: at 1M CIs and 5M relationships networkx holds about
1.5 GB of Python objects, takes ~25 s to build, seconds per full traversal, and every full
garbage collection walks those objects in the middle of a request. The index here keeps the
adjacency as CSR arrays (forward and reverse) with an aligned type-code array; removals flip a
slot's code to a "dead" code in place and additions go to a small dict overlay until `compact()`
folds them in. networkx is used only on small subgraphs (neighbourhood pictures, cycle listing).

Concurrency: queries from several threads are safe with each other (each query takes the shared
visit buffers under a non-blocking lock, or allocates private ones when they are busy). Edits
are not safe against concurrent queries or edits: the owner applies edits from one place,
or swaps in a `compact()`ed copy.
"""

from __future__ import annotations

import gc
import itertools
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, Literal

import networkx as nx
import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

EDGE_TYPES: tuple[str, ...] = (
    "depends_on",
    "runs_on",
    "hosted_on",
    "connected_to",
    "installed_on",
    "documented_by",
    "provides",
    "member_of",
)
_TYPE_CODE: Final[dict[str, int]] = {name: code for code, name in enumerate(EDGE_TYPES)}
# A removed CSR slot gets this code, so one lookup in the per-query type table also rejects
# dead edges (the table's last entry is always False).
_DEAD: Final[int] = len(EDGE_TYPES)
_ALL_TYPES: Final[NDArray[np.bool_]] = np.array([True] * len(EDGE_TYPES) + [False])
_ALL_TYPES.setflags(write=False)

_INT64_MIN: Final[int] = -(2**63)
_INT64_MAX: Final[int] = 2**63 - 1
# Stamps are int32; restart the generation well before it would overflow.
_GEN_LIMIT: Final[int] = 2**31 - 2
# np.isin pays a fixed cost that dominates for the usual {customer, provider} pair.
_SMALL_TENANT_SET: Final[int] = 8
# Impact results up to this size are sorted and built in plain Python: each numpy call costs
# about a microsecond however small its input, and the array path makes several per level.
_SMALL_RESULT: Final[int] = 256

Direction = Literal["down", "up"]
Hop = tuple[int, str, int, int]
IntArray = NDArray[np.integer[Any]]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class ImpactItem:
    """One impacted CI: `depth` is its shortest hop count from the root, `via` the CI it was
    reached from on one such shortest path (the root itself for depth 1)."""

    ci: int
    depth: int
    via: int


@dataclass(slots=True)
class _Level:
    """The CIs first reached at one BFS level, as dense indices, with how they were reached.
    `code`, `rel` and `forward` are only filled when the caller needs the edges (paths)."""

    nodes: NDArray[np.int64]
    via: NDArray[np.int64]
    code: NDArray[np.int8] | None = None
    rel: NDArray[np.int64] | None = None
    forward: BoolArray | None = None


def _in_int64(value: int) -> bool:
    return _INT64_MIN <= value <= _INT64_MAX


def _type_table(types: Collection[str] | None) -> BoolArray:
    if types is None:
        return _ALL_TYPES
    table = np.zeros(len(EDGE_TYPES) + 1, dtype=np.bool_)
    for name in types:
        code = _TYPE_CODE.get(name)
        if code is None:
            raise ValueError(f"unknown relationship type {name!r}")
        table[code] = True
    return table


def _tenant_array(allowed: Collection[int] | None) -> NDArray[np.int64] | None:
    if allowed is None:
        return None
    # A tenant id outside int64 cannot own a node, so dropping it changes nothing.
    return np.fromiter((t for t in allowed if _in_int64(t)), dtype=np.int64)


class GraphIndex:
    """Compact CSR adjacency (forward and reverse) over all CIs of all tenants, plus a small
    mutable overlay so edits apply without a rebuild.

    Nodes are addressed internally by a dense index: the base nodes (those present at build
    time) sit in CI-id order at 0..n_base-1, so a CI id maps to its index with one binary
    search; nodes added later get the following indices through a dict.
    """

    def __init__(
        self,
        node_ids: NDArray[np.int64],
        node_tenants: NDArray[np.int64],
        fwd_indptr: NDArray[np.int64],
        fwd_nbr: IntArray,
        fwd_code: NDArray[np.int8],
        rel: NDArray[np.int64],
        rev_indptr: NDArray[np.int64],
        rev_nbr: IntArray,
        rev_code: NDArray[np.int8],
        rev_eid: IntArray,
    ) -> None:
        """Internal: use `build` or `from_arrays`. Node ids must be sorted and unique; the edge
        arrays are the forward CSR (slot = edge), the reverse CSR refers to forward slots."""
        n = len(node_ids)
        self._n_base = n
        self._n_nodes = n
        cap = max(n, 16)
        self._ids = np.zeros(cap, dtype=np.int64)
        self._ids[:n] = node_ids
        self._tenants = np.zeros(cap, dtype=np.int64)
        self._tenants[:n] = node_tenants
        self._alive = np.zeros(cap, dtype=np.bool_)
        self._alive[:n] = True
        self._extra_ids: dict[int, int] = {}

        self._fwd_indptr = fwd_indptr
        self._fwd_nbr = fwd_nbr
        self._fwd_code = fwd_code
        self._rel = rel
        # Relationship ids are looked up by binary search through this permutation rather
        # than a dict, which at 5M edges would cost hundreds of MB of Python objects. It stays
        # intp: np.searchsorted converts any other sorter to intp, a full copy on every call.
        self._rel_order = np.argsort(rel, kind="stable")
        if len(rel) > 1 and bool(np.any(rel[self._rel_order[1:]] == rel[self._rel_order[:-1]])):
            raise ValueError("duplicate relationship ids")
        self._rev_indptr = rev_indptr
        self._rev_nbr = rev_nbr
        self._rev_code = rev_code
        self._rev_eid = rev_eid
        rev_slot = np.empty(len(rev_eid), dtype=np.int32)
        rev_slot[rev_eid] = np.arange(len(rev_eid), dtype=np.int32)
        self._rev_slot = rev_slot

        # Overlay: relationships added since the build, by rel id and by endpoint.
        self._x_edges: dict[int, tuple[int, int, int]] = {}
        self._x_out: dict[int, dict[int, tuple[int, int]]] = {}
        self._x_in: dict[int, dict[int, tuple[int, int]]] = {}
        self._has_x_out = np.zeros(cap, dtype=np.bool_)
        self._has_x_in = np.zeros(cap, dtype=np.bool_)

        self._node_count = n
        self._base_edges_alive = len(fwd_nbr)
        self._dead_slots = 0
        self._dead_base_nodes = 0

        # Visit buffers reused between queries: a node counts as visited when its stamp equals
        # the current generation, so no per-query clearing of N entries is needed.
        self._stamp = np.zeros(cap, dtype=np.int32)
        self._scratch = np.zeros(cap, dtype=np.int32)
        self._gen = 0
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(
        cls,
        nodes: Iterable[tuple[int, int]],
        edges: Iterable[tuple[int, int, int, str]],
    ) -> GraphIndex:
        """Build from (ci_id, tenant_id) pairs and (rel_id, source, target, type) tuples."""
        node_list = list(nodes)
        edge_list = list(edges)
        for ci, tenant in node_list:
            if not (_in_int64(ci) and _in_int64(tenant)):
                raise ValueError(f"CI id or tenant id out of range: {ci}, {tenant}")
        codes: list[int] = []
        for rel_id, source, target, kind in edge_list:
            code = _TYPE_CODE.get(kind)
            if code is None:
                raise ValueError(f"unknown relationship type {kind!r}")
            if not (_in_int64(rel_id) and _in_int64(source) and _in_int64(target)):
                raise ValueError(f"relationship {rel_id} has an id out of range")
            codes.append(code)
        return cls.from_arrays(
            np.array([c for c, _ in node_list], dtype=np.int64),
            np.array([t for _, t in node_list], dtype=np.int64),
            np.array([e[0] for e in edge_list], dtype=np.int64),
            np.array([e[1] for e in edge_list], dtype=np.int64),
            np.array([e[2] for e in edge_list], dtype=np.int64),
            np.array(codes, dtype=np.int8),
        )

    @classmethod
    def from_arrays(
        cls,
        node_ids: NDArray[Any],
        node_tenants: NDArray[Any],
        rel_ids: NDArray[Any],
        sources: NDArray[Any],
        targets: NDArray[Any],
        type_codes: NDArray[Any],
    ) -> GraphIndex:
        """Build from parallel arrays (type codes index EDGE_TYPES). The fast path for a full
        load: no Python object per node or edge is created."""
        ids = np.asarray(node_ids, dtype=np.int64)
        tenants = np.asarray(node_tenants, dtype=np.int64)
        rels = np.asarray(rel_ids, dtype=np.int64)
        src = np.asarray(sources, dtype=np.int64)
        tgt = np.asarray(targets, dtype=np.int64)
        codes = np.asarray(type_codes)
        if ids.shape != tenants.shape or ids.ndim != 1:
            raise ValueError("node_ids and node_tenants must be 1-d arrays of equal length")
        if not (rels.shape == src.shape == tgt.shape == codes.shape) or rels.ndim != 1:
            raise ValueError("edge arrays must be 1-d arrays of equal length")
        if len(codes) and (int(codes.min()) < 0 or int(codes.max()) >= len(EDGE_TYPES)):
            raise ValueError("type code out of range")
        codes = codes.astype(np.int8)

        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            tenants = tenants[order]
            if bool(np.any(ids[1:] == ids[:-1])):
                raise ValueError("duplicate CI ids")
        n = len(ids)
        if n >= 2**31 - 1:
            raise ValueError("too many CIs for int32 indices")

        src_d = np.searchsorted(ids, src)
        tgt_d = np.searchsorted(ids, tgt)
        if len(src) and (
            int(src_d.max(initial=0)) >= n
            or int(tgt_d.max(initial=0)) >= n
            or not bool(np.array_equal(ids[src_d], src))
            or not bool(np.array_equal(ids[tgt_d], tgt))
        ):
            raise ValueError("a relationship refers to an unknown CI")
        src_d = src_d.astype(np.int32)
        tgt_d = tgt_d.astype(np.int32)

        # Forward CSR: the slot of an edge in the forward arrays is its edge index.
        fwd_order = np.argsort(src_d, kind="stable")
        fwd_src = src_d[fwd_order]
        fwd_nbr = tgt_d[fwd_order]
        fwd_code = codes[fwd_order]
        fwd_rel = rels[fwd_order]
        fwd_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(fwd_src, minlength=n), out=fwd_indptr[1:])
        del fwd_order, src_d

        rev_order = np.argsort(fwd_nbr, kind="stable")
        rev_nbr = fwd_src[rev_order]
        rev_code = fwd_code[rev_order]
        rev_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(fwd_nbr, minlength=n), out=rev_indptr[1:])
        rev_eid = rev_order.astype(np.int32)
        del rev_order, fwd_src

        return cls(ids, tenants, fwd_indptr, fwd_nbr, fwd_code, fwd_rel, rev_indptr, rev_nbr, rev_code, rev_eid)

    def compact(self) -> GraphIndex:
        """A fresh index with the overlay and the removals folded into the CSR arrays."""
        node_ids, tenants, rels, sources, targets, codes = self.to_arrays()
        return GraphIndex.from_arrays(node_ids, tenants, rels, sources, targets, codes)

    def to_arrays(
        self,
    ) -> tuple[
        NDArray[np.int64],
        NDArray[np.int64],
        NDArray[np.int64],
        NDArray[np.int64],
        NDArray[np.int64],
        NDArray[np.int8],
    ]:
        """The live graph as (node_ids, node_tenants, rel_ids, sources, targets, type_codes),
        the same layout `from_arrays` takes."""
        n = self._n_nodes
        alive = self._alive[:n]
        node_ids = self._ids[:n][alive]
        tenants = self._tenants[:n][alive]

        live = self._fwd_code != _DEAD
        rows = np.repeat(np.arange(self._n_base, dtype=np.int64), np.diff(self._fwd_indptr))
        src_d = rows[live]
        tgt_d = self._fwd_nbr[live].astype(np.int64)
        rels = self._rel[live]
        codes = self._fwd_code[live]
        if self._x_edges:
            x = np.array([(r, s, t, c) for r, (s, t, c) in self._x_edges.items()], dtype=np.int64)
            rels = np.concatenate([rels, x[:, 0]])
            src_d = np.concatenate([src_d, x[:, 1]])
            tgt_d = np.concatenate([tgt_d, x[:, 2]])
            codes = np.concatenate([codes, x[:, 3].astype(np.int8)])
        return node_ids, tenants, rels, self._ids[src_d], self._ids[tgt_d], codes

    # ------------------------------------------------------------------ lookups

    def _dense(self, ci: int) -> int | None:
        """Dense index of a CI id, alive or not; None if never seen."""
        extra = self._extra_ids.get(ci)
        if extra is not None:
            return extra
        if self._n_base == 0 or not _in_int64(ci):
            return None
        i = int(np.searchsorted(self._ids[: self._n_base], ci))
        if i < self._n_base and int(self._ids[i]) == ci:
            return i
        return None

    def _live(self, ci: int) -> int | None:
        d = self._dense(ci)
        if d is None or not self._alive[d]:
            return None
        return d

    def _require(self, ci: int, allowed: NDArray[np.int64] | None) -> int:
        d = self._live(ci)
        # A CI outside the caller's tenants is reported exactly like a missing one, so a
        # query never reveals that another customer's CI exists.
        if d is None or (allowed is not None and not bool(np.any(allowed == self._tenants[d]))):
            raise KeyError(ci)
        return d

    def _base_slot(self, rel_id: int) -> int | None:
        """Forward slot of a relationship loaded at build time (alive or dead)."""
        if len(self._rel) == 0 or not _in_int64(rel_id):
            return None
        i = int(np.searchsorted(self._rel, rel_id, sorter=self._rel_order))
        if i < len(self._rel):
            slot = int(self._rel_order[i])
            if int(self._rel[slot]) == rel_id:
                return slot
        return None

    def has_node(self, ci: int) -> bool:
        return self._live(ci) is not None

    def tenant(self, ci: int) -> int:
        """The tenant owning a CI; KeyError if unknown."""
        d = self._live(ci)
        if d is None:
            raise KeyError(ci)
        return int(self._tenants[d])

    def edge(self, rel_id: int) -> tuple[int, int, str] | None:
        """(source, target, type) of a live relationship, None if unknown or removed."""
        x = self._x_edges.get(rel_id)
        if x is not None:
            s, t, c = x
            return int(self._ids[s]), int(self._ids[t]), EDGE_TYPES[c]
        slot = self._base_slot(rel_id)
        if slot is None or int(self._fwd_code[slot]) == _DEAD:
            return None
        s = int(np.searchsorted(self._fwd_indptr, slot, side="right")) - 1
        t = int(self._fwd_nbr[slot])
        return int(self._ids[s]), int(self._ids[t]), EDGE_TYPES[int(self._fwd_code[slot])]

    @property
    def node_count(self) -> int:
        return self._node_count

    @property
    def edge_count(self) -> int:
        return self._base_edges_alive + len(self._x_edges)

    def overlay_size(self) -> int:
        """Edits not folded into the CSR arrays: added nodes and relationships (held in dicts)
        and removed nodes and relationships (dead slots). The cache compacts past a threshold."""
        return (self._n_nodes - self._n_base) + len(self._x_edges) + self._dead_slots + self._dead_base_nodes

    @property
    def nbytes(self) -> int:
        """Bytes held by the numpy arrays (the overlay dicts are small and not counted)."""
        arrays = (
            self._ids, self._tenants, self._alive, self._fwd_indptr, self._fwd_nbr, self._fwd_code,
            self._rel, self._rel_order, self._rev_indptr, self._rev_nbr, self._rev_code,
            self._rev_eid, self._rev_slot, self._has_x_out, self._has_x_in, self._stamp,
            self._scratch,
        )  # fmt: skip
        return sum(a.nbytes for a in arrays)

    # ------------------------------------------------------------------ edits

    def _grow(self, needed: int) -> None:
        cap = len(self._ids)
        if needed <= cap:
            return
        new_cap = max(needed, cap * 2)

        def grown(a: NDArray[Any]) -> NDArray[Any]:
            b = np.zeros(new_cap, dtype=a.dtype)
            b[:cap] = a
            return b

        self._ids = grown(self._ids)
        self._tenants = grown(self._tenants)
        self._alive = grown(self._alive)
        self._has_x_out = grown(self._has_x_out)
        self._has_x_in = grown(self._has_x_in)
        self._stamp = grown(self._stamp)
        self._scratch = grown(self._scratch)

    def add_node(self, ci: int, tenant: int) -> None:
        """Add a CI, or revive a removed one, or just set the tenant of an existing one."""
        if not (_in_int64(ci) and _in_int64(tenant)):
            raise ValueError(f"CI id or tenant id out of range: {ci}, {tenant}")
        d = self._dense(ci)
        if d is None:
            d = self._n_nodes
            self._grow(d + 1)
            self._ids[d] = ci
            self._extra_ids[ci] = d
            self._n_nodes += 1
        if not self._alive[d]:
            self._alive[d] = True
            self._node_count += 1
            if d < self._n_base:
                self._dead_base_nodes -= 1
        self._tenants[d] = tenant

    def remove_node(self, ci: int) -> None:
        """Remove a CI and every relationship touching it; no-op if unknown."""
        d = self._live(ci)
        if d is None:
            return
        if d < self._n_base:
            out_slots = np.arange(self._fwd_indptr[d], self._fwd_indptr[d + 1])
            in_slots = self._rev_eid[self._rev_indptr[d] : self._rev_indptr[d + 1]]
            slots = np.concatenate([out_slots, in_slots.astype(np.int64)])
            self._kill_slots(np.unique(slots))
            self._dead_base_nodes += 1
        for rel_id in [*self._x_out.get(d, {}), *self._x_in.get(d, {})]:
            self.remove_edge(rel_id)
        self._alive[d] = False
        self._node_count -= 1

    def set_tenant(self, ci: int, tenant: int) -> None:
        d = self._live(ci)
        if d is None:
            raise KeyError(ci)
        if not _in_int64(tenant):
            raise ValueError(f"tenant id out of range: {tenant}")
        self._tenants[d] = tenant

    def _kill_slots(self, slots: IntArray) -> None:
        slots = slots[self._fwd_code[slots] != _DEAD]
        self._fwd_code[slots] = _DEAD
        self._rev_code[self._rev_slot[slots]] = _DEAD
        self._base_edges_alive -= len(slots)
        self._dead_slots += len(slots)

    def add_edge(self, rel_id: int, source: int, target: int, type: str) -> None:
        """Add a relationship; re-adding the same one is a no-op, re-adding a rel id with other
        endpoints or type replaces it. Both CIs must exist (KeyError otherwise)."""
        code = _TYPE_CODE.get(type)
        if code is None:
            raise ValueError(f"unknown relationship type {type!r}")
        if not _in_int64(rel_id):
            raise ValueError(f"relationship id out of range: {rel_id}")
        s = self._live(source)
        if s is None:
            raise KeyError(source)
        t = self._live(target)
        if t is None:
            raise KeyError(target)
        current = self.edge(rel_id)
        if current == (source, target, type):
            return
        if current is not None:
            self.remove_edge(rel_id)
        self._x_edges[rel_id] = (s, t, code)
        self._x_out.setdefault(s, {})[rel_id] = (t, code)
        self._x_in.setdefault(t, {})[rel_id] = (s, code)
        self._has_x_out[s] = True
        self._has_x_in[t] = True

    def remove_edge(self, rel_id: int) -> None:
        """Remove a relationship; no-op if unknown or already removed."""
        x = self._x_edges.pop(rel_id, None)
        if x is not None:
            s, t, _ = x
            for table, mask, node in ((self._x_out, self._has_x_out, s), (self._x_in, self._has_x_in, t)):
                bucket = table[node]
                del bucket[rel_id]
                if not bucket:
                    del table[node]
                    mask[node] = False
            return
        slot = self._base_slot(rel_id)
        if slot is not None:
            self._kill_slots(np.array([slot], dtype=np.int64))

    # ------------------------------------------------------------------ traversal core

    @contextmanager
    def _visit(self) -> Iterator[tuple[NDArray[np.int32], NDArray[np.int32], int]]:
        """Visit buffers (stamp, scratch, generation) for one query."""
        if self._lock.acquire(blocking=False):
            try:
                self._gen += 1
                if self._gen >= _GEN_LIMIT:
                    self._stamp.fill(0)
                    self._gen = 1
                yield self._stamp, self._scratch, self._gen
            finally:
                self._lock.release()
        else:
            # Another thread holds the shared buffers: calloc'd pages cost nothing until
            # touched, so private buffers are cheap for the small queries that dominate.
            cap = len(self._stamp)
            yield np.zeros(cap, dtype=np.int32), np.zeros(cap, dtype=np.int32), 1

    def _tenant_ok(self, nodes: IntArray, allowed: NDArray[np.int64]) -> BoolArray:
        t = self._tenants[nodes]
        if len(allowed) > _SMALL_TENANT_SET:
            return np.isin(t, allowed)
        ok = np.zeros(len(t), dtype=np.bool_)
        for tenant in allowed.tolist():
            ok |= t == tenant
        return ok

    def _expand(
        self,
        frontier: NDArray[np.int64],
        forward: bool,
        type_ok: BoolArray,
        stamp: NDArray[np.int32],
        scratch: NDArray[np.int32],
        gen: int,
        allowed: NDArray[np.int64] | None,
        want_edges: bool,
    ) -> _Level | None:
        """The unvisited, allowed neighbours of the frontier along one direction, each once,
        with a frontier node it came from."""
        if forward:
            indptr, nbr, codes = self._fwd_indptr, self._fwd_nbr, self._fwd_code
            xmap, xmask = self._x_out, self._has_x_out
        else:
            indptr, nbr, codes = self._rev_indptr, self._rev_nbr, self._rev_code
            xmap, xmask = self._x_in, self._has_x_in

        parts: list[_Level] = []
        base = frontier if self._n_nodes == self._n_base else frontier[frontier < self._n_base]
        if len(base):
            starts = indptr[base]
            counts = indptr[base + 1] - starts
            ends = np.cumsum(counts)
            total = int(ends[-1])
            if total:
                # Slot numbers of every edge of every frontier node, without a Python loop:
                # each node's run starts at its CSR offset and counts up.
                slots = np.repeat(starts - (ends - counts), counts)
                slots += np.arange(total, dtype=np.int64)
                nb = nbr[slots]
                ok = stamp[nb] != gen
                # The type table also rejects dead slots; with no filter and no removals
                # every slot passes and the gather can be skipped.
                if type_ok is not _ALL_TYPES or self._dead_slots:
                    ok &= type_ok[codes[slots]]
                pos = np.flatnonzero(ok)
                nodes = nb[pos].astype(np.int64)
                if allowed is not None and len(nodes):
                    keep = self._tenant_ok(nodes, allowed)
                    nodes, pos = nodes[keep], pos[keep]
                # Dedupe before working out parents, so the search runs once per new node
                # rather than once per edge into the next level.
                win = _first_of_each(nodes, scratch)
                nodes, pos = nodes[win], pos[win]
                level = _Level(nodes, base[np.searchsorted(ends, pos, side="right")])
                if want_edges:
                    sel = slots[pos]
                    level.code = codes[sel]
                    level.rel = self._rel[sel] if forward else self._rel[self._rev_eid[sel]]
                parts.append(level)

        if xmap:
            extra: list[tuple[int, int, int, int]] = []
            for u in frontier[xmask[frontier]].tolist():
                for rel_id, (v, code) in xmap[u].items():
                    if type_ok[code] and stamp[v] != gen:
                        extra.append((v, u, code, rel_id))
            if extra:
                x = np.array(extra, dtype=np.int64)
                if allowed is not None:
                    x = x[self._tenant_ok(x[:, 0], allowed)]
                x = x[_first_of_each(x[:, 0], scratch)]
                parts.append(_Level(x[:, 0], x[:, 1], x[:, 2].astype(np.int8), x[:, 3]))

        merged = _merge_levels(parts, want_edges, scratch)
        if merged is None or not len(merged.nodes):
            return None
        if want_edges:
            merged.forward = np.full(len(merged.nodes), forward, dtype=np.bool_)
        return merged

    def _bfs(
        self,
        roots: NDArray[np.int64],
        directions: tuple[bool, ...],
        depth: int | None,
        type_ok: BoolArray,
        allowed: NDArray[np.int64] | None,
        stamp: NDArray[np.int32],
        scratch: NDArray[np.int32],
        gen: int,
        want_edges: bool = False,
        stop_at: int | None = None,
    ) -> list[_Level]:
        """Level-synchronous BFS; returns the levels after the roots (level i = depth i+1),
        each holding distinct nodes. `directions` holds True for following edges forwards,
        False for backwards."""
        stamp[roots] = gen
        frontier = roots
        levels: list[_Level] = []
        hops = 0
        while len(frontier) and (depth is None or hops < depth):
            parts = [
                lv
                for fwd in directions
                if (lv := self._expand(frontier, fwd, type_ok, stamp, scratch, gen, allowed, want_edges)) is not None
            ]
            level = _merge_levels(parts, want_edges, scratch)
            if level is None:
                break
            stamp[level.nodes] = gen
            levels.append(level)
            hops += 1
            if stop_at is not None and stamp[stop_at] == gen:
                break
            frontier = level.nodes
        return levels

    def _roots(self, roots: Iterable[int], allowed: NDArray[np.int64] | None) -> NDArray[np.int64]:
        return np.unique(np.array([self._require(ci, allowed) for ci in roots], dtype=np.int64))

    # ------------------------------------------------------------------ queries

    def _impact_setup(
        self,
        root: int,
        direction: Direction,
        depth: int | None,
        types: Collection[str] | None,
        allowed_tenants: Collection[int] | None,
    ) -> tuple[int, BoolArray, NDArray[np.int64] | None]:
        if depth is not None and depth < 0:
            raise ValueError("depth must be None or >= 0")
        if direction not in ("down", "up"):
            raise ValueError(f"direction must be 'down' or 'up', not {direction!r}")
        allowed = _tenant_array(allowed_tenants)
        type_ok = _type_table(types)
        return self._require(root, allowed), type_ok, allowed

    def impact_arrays(
        self,
        root: int,
        direction: Direction = "down",
        depth: int | None = None,
        types: Collection[str] | None = None,
        allowed_tenants: Collection[int] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        """`impact` as three aligned arrays (ci, depth, via), sorted by (depth, ci). Builds no
        Python object per CI, for callers that count, page or post-filter large results."""
        d, type_ok, allowed = self._impact_setup(root, direction, depth, types, allowed_tenants)
        roots = np.array([d], dtype=np.int64)
        with self._visit() as (stamp, scratch, gen):
            levels = self._bfs(roots, (direction == "up",), depth, type_ok, allowed, stamp, scratch, gen)
            return self._sorted_result(levels, scratch)

    def _sorted_result(
        self, levels: list[_Level], scratch: NDArray[np.int32]
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.int64]]:
        if not levels:
            empty = np.zeros(0, dtype=np.int64)
            return empty, np.zeros(0, dtype=np.int32), empty
        ci_parts: list[NDArray[np.int64]] = []
        via_parts: list[NDArray[np.int64]] = []
        for level in levels:
            nodes = level.nodes
            if self._n_nodes == self._n_base or int(nodes.max()) < self._n_base:
                # Base nodes are numbered in CI-id order, so sorting the dense indices sorts
                # the ids; np.sort is several times faster than argsort, and scratch maps
                # each sorted node back to its position to carry `via` along.
                ordered = np.sort(nodes)
                scratch[nodes] = np.arange(len(nodes), dtype=np.int32)
                ci_parts.append(self._ids[ordered])
                via_parts.append(self._ids[level.via[scratch[ordered]]])
            else:
                ids = self._ids[nodes]
                order = np.argsort(ids)
                ci_parts.append(ids[order])
                via_parts.append(self._ids[level.via[order]])
        depths = np.repeat(np.arange(1, len(levels) + 1, dtype=np.int32), [len(p) for p in ci_parts])
        return np.concatenate(ci_parts), depths, np.concatenate(via_parts)

    def impact(
        self,
        root: int,
        direction: Direction = "down",
        depth: int | None = None,
        types: Collection[str] | None = None,
        allowed_tenants: Collection[int] | None = None,
    ) -> list[ImpactItem]:
        """CIs impacted by (direction "down": those that rely on `root`, following edges
        backwards) or relied on by (direction "up": following edges forwards) the root, within
        `depth` hops (None = unlimited) over the given relationship types (None = all), only
        entering CIs of `allowed_tenants` (None = all). Sorted by (depth, ci); root excluded.
        KeyError if the root is unknown or outside `allowed_tenants`."""
        d, type_ok, allowed = self._impact_setup(root, direction, depth, types, allowed_tenants)
        roots = np.array([d], dtype=np.int64)
        with self._visit() as (stamp, scratch, gen):
            levels = self._bfs(roots, (direction == "up",), depth, type_ok, allowed, stamp, scratch, gen)
            if sum(len(level.nodes) for level in levels) > _SMALL_RESULT:
                cis, depths, vias = self._sorted_result(levels, scratch)
            else:
                ids = self._ids
                return [
                    ImpactItem(c, hop, v)
                    for hop, level in enumerate(levels, start=1)
                    for c, v in sorted(zip(ids[level.nodes].tolist(), ids[level.via].tolist(), strict=True))
                ]
        # Thousands of new objects trigger collections that scan every live object of the
        # process (measured: half the time of an 800k-item result, and most of the p95 of
        # 20k-item ones); none of these objects can form a cycle, so pause the collector.
        paused = gc.isenabled()
        gc.disable()
        try:
            return list(map(ImpactItem, cis.tolist(), depths.tolist(), vias.tolist()))
        finally:
            if paused:
                gc.enable()

    def impact_many(
        self,
        roots: Collection[int],
        direction: Direction = "down",
        depth: int | None = None,
        types: Collection[str] | None = None,
        allowed_tenants: Collection[int] | None = None,
    ) -> set[int]:
        """The union of the impacted CIs of several roots, the roots included (one multi-source
        BFS, so a CI impacted by many roots is expanded once)."""
        if depth is not None and depth < 0:
            raise ValueError("depth must be None or >= 0")
        if direction not in ("down", "up"):
            raise ValueError(f"direction must be 'down' or 'up', not {direction!r}")
        allowed = _tenant_array(allowed_tenants)
        type_ok = _type_table(types)
        start = self._roots(roots, allowed)
        if not len(start):
            return set()
        with self._visit() as (stamp, scratch, gen):
            levels = self._bfs(start, (direction == "up",), depth, type_ok, allowed, stamp, scratch, gen)
        reached = np.concatenate([start, *(lv.nodes for lv in levels)])
        return set(self._ids[reached].tolist())

    def path(
        self,
        source: int,
        target: int,
        types: Collection[str] | None = None,
        allowed_tenants: Collection[int] | None = None,
        directed: bool = True,
    ) -> list[Hop] | None:
        """A shortest path from `source` to `target` as hops (from_ci, type, to_ci, rel_id),
        following relationships forwards (source depends on ... target). With directed=False a
        hop may also walk a relationship backwards; hops are always listed in path order
        (hop[i].to_ci == hop[i+1].from_ci), so for such a hop the stored relationship is
        to_ci --type--> from_ci (see `edge(rel_id)`). [] if source == target, None if no path.
        KeyError if either CI is unknown or outside `allowed_tenants`."""
        allowed = _tenant_array(allowed_tenants)
        type_ok = _type_table(types)
        s = self._require(source, allowed)
        t = self._require(target, allowed)
        if s == t:
            return []
        directions = (True,) if directed else (True, False)
        with self._visit() as (stamp, scratch, gen):
            levels = self._bfs(
                np.array([s], dtype=np.int64), directions, None, type_ok, allowed, stamp, scratch, gen,
                want_edges=True, stop_at=t,
            )  # fmt: skip
            found = bool(levels) and stamp[t] == gen
        if not found:
            return None
        hops: list[Hop] = []
        node = t
        for level in reversed(levels):
            i = int(np.flatnonzero(level.nodes == node)[0])
            assert level.code is not None and level.rel is not None
            prev = int(level.via[i])
            hops.append(
                (
                    int(self._ids[prev]),
                    EDGE_TYPES[int(level.code[i])],
                    int(self._ids[node]),
                    int(level.rel[i]),
                )
            )
            node = prev
        hops.reverse()
        return hops

    def neighbourhood(
        self,
        root: int,
        depth: int = 2,
        allowed_tenants: Collection[int] | None = None,
        types: Collection[str] | None = None,
        max_nodes: int | None = None,
    ) -> nx.DiGraph:
        """The CIs within `depth` hops of the root in either direction and every relationship
        among them, as a networkx DiGraph: nodes carry `tenant` and `depth` (hop distance),
        edges `type` and `rel_id`; `graph.graph["reached"]` counts the CIs within reach before
        any truncation. Mind hubs: two hops from a VM include every VM on the same SAN or
        cluster, hundreds of thousands at 1M CIs, so a caller drawing a picture should pass
        `max_nodes`, which keeps whole inner levels and the smallest CI ids of the last one.
        Parallel relationships between the same two CIs collapse to one edge (DiGraph).
        KeyError if the root is unknown or not allowed."""
        if depth < 0:
            raise ValueError("depth must be >= 0")
        allowed = _tenant_array(allowed_tenants)
        type_ok = _type_table(types)
        d = self._require(root, allowed)
        with self._visit() as (stamp, scratch, gen):
            levels = self._bfs(
                np.array([d], dtype=np.int64), (True, False), depth, type_ok, allowed, stamp, scratch, gen
            )
            node_parts = [np.array([d], dtype=np.int64)]
            depth_parts = [np.zeros(1, dtype=np.int64)]
            kept = 1
            for hop, level in enumerate(levels, start=1):
                nodes = level.nodes
                if max_nodes is not None and kept + len(nodes) > max_nodes:
                    nodes = nodes[np.argsort(self._ids[nodes])][: max(max_nodes - kept, 0)]
                node_parts.append(nodes)
                depth_parts.append(np.full(len(nodes), hop, dtype=np.int64))
                kept += len(nodes)
                if max_nodes is not None and kept >= max_nodes:
                    break
            members = np.concatenate(node_parts)
            if max_nodes is not None:
                # Membership is read from the stamps: only the kept CIs may carry this one.
                for level in levels:
                    stamp[level.nodes] = gen - 1
                stamp[members] = gen
            src, tgt, code, rel = self._edges_within(members, type_ok, lambda a: stamp[a] == gen)
        graph = nx.DiGraph(reached=1 + sum(len(level.nodes) for level in levels))
        graph.add_nodes_from(
            (ci, {"tenant": t, "depth": h})
            for ci, t, h in zip(
                self._ids[members].tolist(),
                self._tenants[members].tolist(),
                np.concatenate(depth_parts).tolist(),
                strict=True,
            )
        )
        graph.add_edges_from(
            (a, b, {"type": EDGE_TYPES[c], "rel_id": r})
            for a, b, c, r in zip(
                self._ids[src].tolist(), self._ids[tgt].tolist(), code.tolist(), rel.tolist(), strict=True
            )
        )
        return graph

    def _edges_within(
        self,
        members: NDArray[np.int64],
        type_ok: BoolArray,
        is_member: Callable[[NDArray[np.int64]], BoolArray],
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int8], NDArray[np.int64]]:
        """Live relationships of the allowed types leaving `members` and ending in the member
        set (`is_member` maps a dense index array to a bool array)."""
        base = members[members < self._n_base]
        starts = self._fwd_indptr[base]
        counts = self._fwd_indptr[base + 1] - starts
        ends = np.cumsum(counts)
        total = int(ends[-1]) if len(ends) else 0
        slots = np.repeat(starts - (ends - counts), counts) + np.arange(total, dtype=np.int64)
        src = np.repeat(base, counts)
        tgt = self._fwd_nbr[slots].astype(np.int64)
        keep = type_ok[self._fwd_code[slots]]
        keep &= is_member(tgt)
        src, tgt, slots = src[keep], tgt[keep], slots[keep]
        code = self._fwd_code[slots]
        rel = self._rel[slots]
        if self._x_out:
            extra = [
                (u, v, c, r)
                for u in members[self._has_x_out[members]].tolist()
                for r, (v, c) in self._x_out[u].items()
                if type_ok[c]
            ]
            if extra:
                x = np.array(extra, dtype=np.int64)
                x = x[is_member(x[:, 1])]
                src = np.concatenate([src, x[:, 0]])
                tgt = np.concatenate([tgt, x[:, 1]])
                code = np.concatenate([code, x[:, 2].astype(np.int8)])
                rel = np.concatenate([rel, x[:, 3]])
        return src, tgt, code, rel

    def cycles(
        self,
        within: Collection[int] | None = None,
        limit: int = 100,
        types: Collection[str] | None = None,
    ) -> list[list[int]]:
        """Up to `limit` dependency cycles, each as CI ids [a, b, ..., z] meaning a -> b -> ...
        -> z -> a, rotated to start at its smallest id, shortest first. Restricted to the
        subgraph induced by `within` (unknown ids ignored) when given, else the whole graph.
        Strongly connected components come from scipy over the whole index; only the
        non-trivial components go to networkx, so a large acyclic graph costs no Python
        objects."""
        if limit <= 0:
            return []
        type_ok = _type_table(types)
        n = self._n_nodes
        if within is None:
            member_mask = self._alive[:n].copy()
        else:
            member_mask = np.zeros(n, dtype=np.bool_)
            dense = [d for ci in within if (d := self._live(ci)) is not None]
            member_mask[np.array(dense, dtype=np.int64)] = True
        members = np.flatnonzero(member_mask).astype(np.int64)
        src, tgt, _, _ = self._edges_within(members, type_ok, lambda a: member_mask[a])

        loops = src == tgt
        found = [[ci] for ci in self._ids[np.unique(src[loops])][:limit].tolist()]
        found.extend(self._cycles_in_sccs(src[~loops], tgt[~loops], limit - len(found)))
        normalised = []
        for cycle in found:
            i = cycle.index(min(cycle))
            normalised.append(cycle[i:] + cycle[:i])
        normalised.sort(key=lambda c: (len(c), c))
        return normalised

    def _cycles_in_sccs(self, src: IntArray, tgt: IntArray, budget: int) -> list[list[int]]:
        """Up to `budget` simple cycles (as CI ids) among these edges (no self-loops), found by
        networkx inside each non-trivial strongly connected component, in order of the
        component's smallest CI id."""
        if budget <= 0 or not len(src):
            return []
        n = self._n_nodes
        adjacency = csr_matrix((np.ones(len(src), dtype=np.int8), (src, tgt)), shape=(n, n))
        _, labels = connected_components(adjacency, directed=True, connection="strong")
        sizes = np.bincount(labels)
        in_cycle = (labels[src] == labels[tgt]) & (sizes[labels[src]] > 1)
        src, tgt = src[in_cycle], tgt[in_cycle]
        if not len(src):
            return []
        comp = labels[src]
        order = np.argsort(comp, kind="stable")
        src, tgt, comp = src[order], tgt[order], comp[order]
        bounds = np.flatnonzero(np.diff(comp)) + 1
        groups = sorted(
            zip(np.split(self._ids[src], bounds), np.split(self._ids[tgt], bounds), strict=True),
            key=lambda group: int(group[0].min()),
        )
        found: list[list[int]] = []
        for g_src, g_tgt in groups:
            sub = nx.DiGraph()
            sub.add_edges_from(zip(g_src.tolist(), g_tgt.tolist(), strict=True))
            found.extend(itertools.islice(nx.simple_cycles(sub), budget - len(found)))
            if len(found) >= budget:
                break
        return found


def _first_of_each(nodes: NDArray[np.int64], scratch: NDArray[np.int32]) -> NDArray[np.intp]:
    """Positions keeping one occurrence of each node. Every occurrence writes its position into
    scratch and exactly one write per node survives; which one does not matter, any is a valid
    parent. O(k), unlike np.unique's sort."""
    positions = np.arange(len(nodes), dtype=np.int32)
    scratch[nodes] = positions
    return np.flatnonzero(scratch[nodes] == positions)


def _merge_levels(parts: list[_Level], want_edges: bool, scratch: NDArray[np.int32]) -> _Level | None:
    """Concatenate per-direction / overlay candidates, keeping each node once."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    nodes = np.concatenate([p.nodes for p in parts])
    win = _first_of_each(nodes, scratch)
    level = _Level(nodes[win], np.concatenate([p.via for p in parts])[win])
    if want_edges:
        level.code = np.concatenate([p.code for p in parts if p.code is not None])[win]
        level.rel = np.concatenate([p.rel for p in parts if p.rel is not None])[win]
        if all(p.forward is not None for p in parts):
            level.forward = np.concatenate([p.forward for p in parts if p.forward is not None])[win]
    return level
