"""A CI neighbourhood drawn as an SVG picture, server-side, in pure Python.

The layout is layered left to right: every relationship `source -> target` (A depends on B)
points rightwards, so what relies on a CI stands to its left and what it relies on to its
right. Steps, in the spirit of Sugiyama's method but kept small:

1. break cycles (depth-first search; back edges count reversed for layering only),
2. longest-path layering, then pull sources rightwards next to their first successor,
3. order each layer by the barycentre of its neighbours (a few sweeps, fewer crossings),
4. wrap a tall layer into several sub-columns so a hub with many neighbours stays compact.

A picture has a node cap: `select` keeps the root, then the CIs nearest to it (impacted ones
first) and reports how many were left out. All text is escaped here; the result is safe to
embed in a page as is.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from itertools import pairwise

NODE_WIDTH = 168
NODE_HEIGHT = 48
ROW_GAP = 14
COLUMN_GAP = 26
LAYER_GAP = 96
MARGIN = 16
MAX_LABEL = 22
DEFAULT_MAX_NODES = 60
DEFAULT_MAX_PER_COLUMN = 12

# Choice colours (cmdb.models) to (fill, stroke): light fills keep the dark text readable.
PALETTE: dict[str, tuple[str, str]] = {
    "green": ("#e7f4ea", "#2e7d32"),
    "blue": ("#e4effb", "#1f5fa8"),
    "orange": ("#fdf0e1", "#c25e00"),
    "red": ("#fde8e8", "#b3261e"),
    "grey": ("#f0f1f3", "#5f6368"),
    "purple": ("#f1e8f8", "#6a3d9a"),
    "yellow": ("#fdf7dc", "#8a6d00"),
}
ROOT_STROKE = "#0b2e5c"
IMPACT_MARK = "#b3261e"
EDGE_STROKE = "#6b7280"


@dataclass(frozen=True)
class Node:
    id: int
    label: str
    sublabel: str = ""
    colour: str = "grey"
    href: str | None = None
    root: bool = False
    impacted: bool = False
    redacted: bool = False
    tooltip: str = ""


@dataclass(frozen=True)
class Edge:
    source: int
    target: int
    label: str


@dataclass(frozen=True)
class Placed:
    node: Node
    x: float
    y: float
    layer: int
    sub: int = 0  # sub-column inside a wrapped layer, 0 = leftmost
    row: int = 0

    @property
    def cx(self) -> float:
        return self.x + NODE_WIDTH / 2

    @property
    def cy(self) -> float:
        return self.y + NODE_HEIGHT / 2


@dataclass(frozen=True)
class LayerBox:
    """Where one layer sits: its x extent, its rows' top and count, its sub-columns."""

    left: float
    right: float
    top: float
    rows: int
    subs: int

    def row_top(self, row: int) -> float:
        return self.top + row * (NODE_HEIGHT + ROW_GAP)

    @property
    def bottom(self) -> float:
        return self.top + self.rows * NODE_HEIGHT + max(self.rows - 1, 0) * ROW_GAP

    def free_y(self, wanted: float) -> float:
        """The nearest height at which a line crosses this layer without touching a box."""
        if self.rows == 0 or wanted < self.top - 4 or wanted > self.bottom + 4:
            return wanted
        lanes = [self.top - ROW_GAP / 2, self.bottom + ROW_GAP / 2]
        lanes += [self.row_top(r) + NODE_HEIGHT + ROW_GAP / 2 for r in range(self.rows - 1)]
        return min(lanes, key=lambda lane: (abs(lane - wanted), lane))


@dataclass
class Layout:
    placed: dict[int, Placed]
    edges: list[Edge]
    width: float
    height: float
    layers: list[LayerBox] = field(default_factory=list)

    @property
    def layer_gaps(self) -> dict[int, float]:
        """Layer -> x of the middle of the gap after it."""
        return {i: box.right + LAYER_GAP / 2 for i, box in enumerate(self.layers)}


@dataclass(frozen=True)
class Drawing:
    svg: str
    drawn: int
    omitted: int
    edges: int


# --- choosing what to draw --------------------------------------------------------------------


def distances(root: int, node_ids: Iterable[int], edges: Sequence[Edge]) -> dict[int, int]:
    """Hop distance from the root, ignoring direction; unreachable nodes are left out."""
    ids = set(node_ids)
    adjacent: dict[int, list[int]] = {n: [] for n in ids}
    for edge in edges:
        if edge.source in ids and edge.target in ids:
            adjacent[edge.source].append(edge.target)
            adjacent[edge.target].append(edge.source)
    seen = {root: 0} if root in ids else {}
    queue = deque(seen)
    while queue:
        current = queue.popleft()
        for other in sorted(adjacent[current]):
            if other not in seen:
                seen[other] = seen[current] + 1
                queue.append(other)
    return seen


def reachable(root: int, edges: Sequence[Edge], direction: str, depth: int | None = None) -> set[int]:
    """CIs impacted within the picture: "down" follows edges backwards (who relies on the
    root), "up" forwards (what the root relies on). The root itself is not included."""
    step: dict[int, list[int]] = {}
    for edge in edges:
        a, b = (edge.target, edge.source) if direction == "down" else (edge.source, edge.target)
        step.setdefault(a, []).append(b)
    seen = {root: 0}
    queue = deque([root])
    while queue:
        current = queue.popleft()
        if depth is not None and seen[current] >= depth:
            continue
        for other in step.get(current, ()):
            if other not in seen:
                seen[other] = seen[current] + 1
                queue.append(other)
    seen.pop(root)
    return set(seen)


def select(
    nodes: Sequence[Node], edges: Sequence[Edge], root: int, max_nodes: int = DEFAULT_MAX_NODES
) -> tuple[list[Node], list[Edge], int]:
    """At most `max_nodes` nodes: the root, then the nearest to it, impacted before others,
    then by id. Returns the kept nodes, the edges among them, and how many were left out."""
    if max_nodes < 1:
        raise ValueError("max_nodes must be at least 1")
    by_id = {node.id: node for node in nodes}
    hops = distances(root, by_id, edges)
    far = len(by_id) + 1

    def rank(node: Node) -> tuple[int, int, int, int]:
        return (0 if node.id == root else 1, hops.get(node.id, far), 0 if node.impacted else 1, node.id)

    kept = sorted(by_id.values(), key=rank)[:max_nodes]
    kept_ids = {node.id for node in kept}
    kept_edges = [e for e in _unique_edges(edges) if e.source in kept_ids and e.target in kept_ids]
    return kept, kept_edges, len(by_id) - len(kept)


def _unique_edges(edges: Iterable[Edge]) -> list[Edge]:
    seen: set[tuple[int, int, str]] = set()
    unique = []
    for edge in edges:
        key = (edge.source, edge.target, edge.label)
        if key not in seen and edge.source != edge.target:
            seen.add(key)
            unique.append(edge)
    return unique


# --- layout -----------------------------------------------------------------------------------


def _acyclic(ids: list[int], edges: Sequence[Edge]) -> list[tuple[int, int]]:
    """The edges as (a, b) pairs with each back edge of a depth-first search reversed."""
    out: dict[int, list[int]] = {n: [] for n in ids}
    for edge in edges:
        out[edge.source].append(edge.target)
    state: dict[int, int] = {}  # 1 on the stack, 2 done
    back: set[tuple[int, int]] = set()
    for start in ids:
        if start in state:
            continue
        stack: list[tuple[int, Iterable[int]]] = [(start, iter(sorted(out[start])))]
        state[start] = 1
        while stack:
            current, children = stack[-1]
            advanced = False
            for child in children:
                if state.get(child) == 1:
                    back.add((current, child))
                elif child not in state:
                    state[child] = 1
                    stack.append((child, iter(sorted(out[child]))))
                    advanced = True
                    break
            if not advanced:
                state[current] = 2
                stack.pop()
    pairs = []
    for edge in edges:
        pair = (edge.source, edge.target)
        pairs.append((pair[1], pair[0]) if pair in back else pair)
    return pairs


def _layers(ids: list[int], pairs: list[tuple[int, int]]) -> dict[int, int]:
    succ: dict[int, set[int]] = {n: set() for n in ids}
    pred: dict[int, set[int]] = {n: set() for n in ids}
    for a, b in pairs:
        succ[a].add(b)
        pred[b].add(a)
    # Kahn's order, then longest path from the sources.
    indegree = {n: len(pred[n]) for n in ids}
    queue = deque(n for n in ids if indegree[n] == 0)
    order = []
    while queue:
        current = queue.popleft()
        order.append(current)
        for other in sorted(succ[current]):
            indegree[other] -= 1
            if indegree[other] == 0:
                queue.append(other)
    layer = {n: 0 for n in ids}
    for current in order:
        for other in succ[current]:
            layer[other] = max(layer[other], layer[current] + 1)
    # A source hangs just left of its nearest successor instead of at the far left edge.
    for current in reversed(order):
        if not pred[current] and succ[current]:
            layer[current] = min(layer[other] for other in succ[current]) - 1
    low = min(layer.values(), default=0)
    return {n: value - low for n, value in layer.items()}


def _order(ids: list[int], layer: dict[int, int], pairs: list[tuple[int, int]], sweeps: int = 4) -> list[list[int]]:
    count = max(layer.values(), default=-1) + 1
    columns: list[list[int]] = [[] for _ in range(count)]
    for n in ids:
        columns[layer[n]].append(n)
    neighbours: dict[int, list[int]] = {n: [] for n in ids}
    for a, b in pairs:
        neighbours[a].append(b)
        neighbours[b].append(a)
    for sweep in range(sweeps):
        forward = sweep % 2 == 0
        sequence = range(1, count) if forward else range(count - 2, -1, -1)
        for index in sequence:
            fixed = columns[index - 1] if forward else columns[index + 1]
            position = {n: i for i, n in enumerate(fixed)}
            current = columns[index]

            def barycentre(n: int, position: dict[int, int] = position, current: list[int] = current) -> float:
                near = [position[m] for m in neighbours[n] if m in position]
                if not near:
                    return float(current.index(n))
                return sum(near) / len(near)

            columns[index] = sorted(current, key=lambda n: (barycentre(n), n))
    return columns


def layout(nodes: Sequence[Node], edges: Sequence[Edge], *, max_per_column: int = DEFAULT_MAX_PER_COLUMN) -> Layout:
    """Positions for every node (top-left corner of its box) and the edges among them."""
    if max_per_column < 1:
        raise ValueError("max_per_column must be at least 1")
    by_id = {node.id: node for node in nodes}
    ids = sorted(by_id, key=lambda n: (not by_id[n].root, n))
    kept = [e for e in _unique_edges(edges) if e.source in by_id and e.target in by_id]
    pairs = _acyclic(ids, kept)
    layer = _layers(ids, pairs)
    columns = _order(ids, layer, pairs)

    shapes = []  # per layer: (sub-columns, rows)
    for column in columns:
        subs = max(1, math.ceil(len(column) / max_per_column))
        shapes.append((subs, math.ceil(len(column) / subs) if column else 0))
    tallest = max((rows for _, rows in shapes), default=1)
    height = 2 * MARGIN + tallest * NODE_HEIGHT + max(tallest - 1, 0) * ROW_GAP

    placed: dict[int, Placed] = {}
    boxes: list[LayerBox] = []
    x = float(MARGIN)
    for index, (column, (subs, rows)) in enumerate(zip(columns, shapes, strict=True)):
        block = rows * NODE_HEIGHT + max(rows - 1, 0) * ROW_GAP
        top = (height - block) / 2
        for i, n in enumerate(column):
            row, sub = divmod(i, subs)
            placed[n] = Placed(
                by_id[n], x + sub * (NODE_WIDTH + COLUMN_GAP), top + row * (NODE_HEIGHT + ROW_GAP), index, sub, row
            )
        right = x + subs * NODE_WIDTH + (subs - 1) * COLUMN_GAP
        boxes.append(LayerBox(x, right, top, rows, subs))
        x = right + LAYER_GAP
    width = x - LAYER_GAP + MARGIN if columns else 2 * MARGIN
    return Layout(placed, kept, width, float(height), boxes)


# --- drawing ----------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


Point = tuple[float, float]
Segment = tuple[Point, Point, Point, Point]


def _s_curve(p: Point, q: Point) -> Segment:
    """A cubic bezier leaving and entering horizontally (a straight line when level)."""
    dx = (q[0] - p[0]) / 2
    return p, (p[0] + dx, p[1]), (q[0] - dx, q[1]), q


def route(layout: Layout, edge: Edge) -> list[Segment]:
    """The edge as bezier segments from the source box to the target box. Rightward edges
    leave a wrapped layer along the gap under their row, cross intermediate layers between
    rows and enter a wrapped layer along the gap above their row, so no line runs over a box."""
    a, b = layout.placed[edge.source], layout.placed[edge.target]
    if b.layer > a.layer:
        source_box, target_box = layout.layers[a.layer], layout.layers[b.layer]
        points: list[Point] = [(a.x + NODE_WIDTH, a.cy)]
        if a.sub < source_box.subs - 1:
            lane = a.y + NODE_HEIGHT + ROW_GAP / 2
            points += [(a.x + NODE_WIDTH + COLUMN_GAP / 2, lane), (source_box.right, lane)]
        end_y = b.y - ROW_GAP / 2 if b.sub > 0 else b.cy
        for index in range(a.layer + 1, b.layer):
            box = layout.layers[index]
            x0, y0 = points[-1]
            wanted = y0 + (end_y - y0) * (box.left - x0) / max(target_box.left - x0, 1.0)
            lane = box.free_y(wanted)
            points += [(box.left - 10, lane), (box.right + 10, lane)]
        if b.sub > 0:
            points += [(target_box.left, end_y), (b.x - COLUMN_GAP / 2, end_y)]
        points.append((b.x, b.cy))
        return [_s_curve(p, q) for p, q in pairwise(points)]
    if b.layer < a.layer:  # leftwards: a cycle closing back, drawn as a loop below
        x0, y0, x1, y1 = a.x, a.cy, b.x + NODE_WIDTH, b.cy
        bend = max((x0 - x1) / 2, 24.0)
        return [((x0, y0), (x0 - bend, y0 + 30), (x1 + bend, y1 + 30), (x1, y1))]
    # Same layer: an arc bulging out to the right.
    x0, y0, x1, y1 = a.x + NODE_WIDTH, a.cy, b.x + NODE_WIDTH, b.cy
    bulge = 36 + abs(y1 - y0) / 6
    return [((x0, y0), (x0 + bulge, y0), (x1 + bulge, y1), (x1, y1))]


def _point(segment: Segment, t: float) -> Point:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = segment
    u = 1 - t
    x = u**3 * x0 + 3 * u * u * t * x1 + 3 * u * t * t * x2 + t**3 * x3
    y = u**3 * y0 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t**3 * y3
    return x, y


def _at_x(segments: list[Segment], x: float) -> Point | None:
    """The point where the route crosses the vertical line at x (segments run rightwards)."""
    for segment in segments:
        start, end = segment[0][0], segment[3][0]
        if start <= x <= end and end > start:
            low, high = 0.0, 1.0
            for _ in range(30):
                mid = (low + high) / 2
                if _point(segment, mid)[0] < x:
                    low = mid
                else:
                    high = mid
            return _point(segment, (low + high) / 2)
    return None


def _path_data(segments: list[Segment]) -> str:
    parts = [f"M{_fmt(segments[0][0][0])},{_fmt(segments[0][0][1])}"]
    for _, (x1, y1), (x2, y2), (x3, y3) in segments:
        parts.append(f"C{_fmt(x1)},{_fmt(y1)} {_fmt(x2)},{_fmt(y2)} {_fmt(x3)},{_fmt(y3)}")
    return " ".join(parts)


FAN = 4  # this many edges of one type meeting at one CI get a single label


def _labels(plan: Layout, routes: dict[int, list[Segment]]) -> list[tuple[float, float, str]]:
    """Edge labels in the gaps between layers; a fan of edges of one type into or out of one
    CI (a hub) gets one label next to that CI instead of one per edge."""
    into: dict[tuple[int, str], int] = {}
    out_of: dict[tuple[int, str], int] = {}
    for edge in plan.edges:
        into[(edge.target, edge.label)] = into.get((edge.target, edge.label), 0) + 1
        out_of[(edge.source, edge.label)] = out_of.get((edge.source, edge.label), 0) + 1
    labels: list[tuple[float, float, str]] = []
    grouped: set[tuple[str, int, str]] = set()
    for number, edge in enumerate(plan.edges):
        a, b = plan.placed[edge.source], plan.placed[edge.target]
        segments = routes[number]
        rightwards = b.layer > a.layer
        if rightwards and into[(edge.target, edge.label)] >= FAN:
            key = ("in", edge.target, edge.label)
            if key not in grouped:
                grouped.add(key)
                labels.append((plan.layers[b.layer].left - LAYER_GAP / 2, b.y - 4, edge.label))
            continue
        if rightwards and out_of[(edge.source, edge.label)] >= FAN:
            key = ("out", edge.source, edge.label)
            if key not in grouped:
                grouped.add(key)
                labels.append((plan.layers[a.layer].right + LAYER_GAP / 2, a.y - 4, edge.label))
            continue
        point = _at_x(segments, plan.layers[a.layer].right + LAYER_GAP / 2) if rightwards else None
        if point is None:
            point = _point(segments[len(segments) // 2], 0.5)
        lx, ly = point[0], point[1] - 3
        if not any(text == edge.label and abs(lx - px) < 70 and abs(ly - py) < 13 for px, py, text in labels):
            labels.append((lx, ly, edge.label))
    return labels


def render(
    nodes: Sequence[Node],
    edges: Sequence[Edge],
    root: int,
    *,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_per_column: int = DEFAULT_MAX_PER_COLUMN,
    title: str = "Dependency picture",
    fit_width: float = 1600,
) -> Drawing:
    """The picture as an SVG string (every text escaped) and what it left out. A picture up to
    `fit_width` wide carries the class `fit`, so a page may shrink it to its column."""
    kept, kept_edges, omitted = select(nodes, edges, root, max_nodes)
    plan = layout(kept, kept_edges, max_per_column=max_per_column)
    fit = " fit" if plan.width <= fit_width else ""
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ci-graph{fit}" role="img" '
        f'aria-labelledby="ci-graph-title" viewBox="0 0 {_fmt(plan.width)} {_fmt(plan.height)}" '
        f'width="{_fmt(plan.width)}" height="{_fmt(plan.height)}" '
        'font-family="system-ui, -apple-system, Segoe UI, sans-serif">',
        f'<title id="ci-graph-title">{escape(title)}</title>',
        "<defs>"
        '<marker id="ci-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE_STROKE}"/></marker>'
        "</defs>",
    ]
    routes = {number: route(plan, edge) for number, edge in enumerate(plan.edges)}
    out.append('<g class="edges">')
    for number, edge in enumerate(plan.edges):
        source, target = plan.placed[edge.source].node, plan.placed[edge.target].node
        out.append(
            f'<path class="edge" data-source="{edge.source}" data-target="{edge.target}" '
            f'd="{_path_data(routes[number])}" fill="none" stroke="{EDGE_STROKE}" stroke-width="1.3" '
            'marker-end="url(#ci-arrow)">'
            f"<title>{escape(source.label)} {escape(edge.label)} {escape(target.label)}</title></path>"
        )
    out.append("</g>")
    out.append('<g class="nodes">')
    for placed in sorted(plan.placed.values(), key=lambda p: (p.layer, p.y, p.x)):
        out.append(_node_svg(placed))
    out.append("</g>")
    out.append('<g class="edge-labels" font-size="11" fill="#374151">')
    for lx, ly, text in _labels(plan, routes):
        out.append(
            f'<text x="{_fmt(lx)}" y="{_fmt(ly)}" text-anchor="middle" stroke="#ffffff" stroke-width="4" '
            f'stroke-linejoin="round" paint-order="stroke">{escape(text)}</text>'
        )
    out.append("</g></svg>")
    return Drawing("".join(out), drawn=len(kept), omitted=omitted, edges=len(plan.edges))


def _node_svg(placed: Placed) -> str:
    node = placed.node
    fill, stroke = PALETTE.get(node.colour, PALETTE["grey"])
    classes = ["node"]
    stroke_width = "1.5"
    dash = ""
    if node.root:
        classes.append("root")
        stroke, stroke_width = ROOT_STROKE, "3.5"
    if node.impacted:
        classes.append("impacted")
    if node.redacted:
        classes.append("redacted")
        dash = ' stroke-dasharray="5 3"'
    x, y = placed.x, placed.y
    tooltip = node.tooltip or (f"{node.label} ({node.sublabel})" if node.sublabel else node.label)
    parts = [
        f'<g class="{" ".join(classes)}" data-id="{node.id}">',
        f"<title>{escape(tooltip)}</title>",
        f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="6" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{stroke_width}"{dash}/>',
    ]
    if node.impacted:
        parts.append(
            f'<rect x="{_fmt(x)}" y="{_fmt(y)}" width="7" height="{NODE_HEIGHT}" rx="3" fill="{IMPACT_MARK}"/>'
        )
    weight = ' font-weight="700"' if node.root else ' font-weight="600"'
    parts.append(
        f'<text x="{_fmt(x + 14)}" y="{_fmt(y + 20)}" font-size="13" fill="#111827"{weight}>'
        f"{escape(_short(node.label))}</text>"
    )
    if node.sublabel:
        parts.append(
            f'<text x="{_fmt(x + 14)}" y="{_fmt(y + 37)}" font-size="11" fill="#4b5563">'
            f"{escape(_short(node.sublabel, 28))}</text>"
        )
    parts.append("</g>")
    body = "".join(parts)
    if node.href and not node.redacted:
        return f'<a href="{escape(node.href)}">{body}</a>'
    return body
