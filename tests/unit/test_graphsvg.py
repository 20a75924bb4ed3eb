"""The server-side SVG picture of a CI neighbourhood: layout, edges, escaping, the node cap."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from web import graphsvg
from web.graphsvg import NODE_HEIGHT, NODE_WIDTH, Edge, Node

SVG = "{http://www.w3.org/2000/svg}"


def chain_world() -> tuple[list[Node], list[Edge]]:
    # service -> app -> db -> server; backup also depends on db; a cycle app <-> cache.
    nodes = [
        Node(1, "server"),
        Node(2, "db", root=True),
        Node(3, "app", impacted=True),
        Node(4, "service", impacted=True),
        Node(5, "backup", impacted=True),
        Node(6, "cache"),
    ]
    edges = [
        Edge(2, 1, "runs on"),
        Edge(3, 2, "depends on"),
        Edge(4, 3, "depends on"),
        Edge(5, 2, "depends on"),
        Edge(3, 6, "depends on"),
        Edge(6, 3, "connected to"),
    ]
    return nodes, edges


def overlaps(a: graphsvg.Placed, b: graphsvg.Placed) -> bool:
    return abs(a.x - b.x) < NODE_WIDTH and abs(a.y - b.y) < NODE_HEIGHT


def test_layout_positions_are_finite_distinct_and_inside() -> None:
    nodes, edges = chain_world()
    plan = graphsvg.layout(nodes, edges)
    assert set(plan.placed) == {n.id for n in nodes}
    points = [(p.x, p.y) for p in plan.placed.values()]
    assert all(math.isfinite(x) and math.isfinite(y) for x, y in points)
    assert len(set(points)) == len(points)
    placed = list(plan.placed.values())
    assert not any(overlaps(a, b) for i, a in enumerate(placed) for b in placed[i + 1 :])
    for p in placed:
        assert p.x >= 0 and p.x + NODE_WIDTH <= plan.width
        assert p.y >= 0 and p.y + NODE_HEIGHT <= plan.height


def test_layout_points_dependencies_rightwards() -> None:
    nodes, edges = chain_world()
    plan = graphsvg.layout(nodes, edges)
    x = {n: p.x for n, p in plan.placed.items()}
    assert x[4] < x[3] < x[2] < x[1]  # service -> app -> db -> server
    assert x[5] < x[2]


def test_every_edge_is_drawn_as_an_arrow() -> None:
    nodes, edges = chain_world()
    drawing = graphsvg.render(nodes, edges, root=2)
    tree = ET.fromstring(drawing.svg)
    paths = [p for p in tree.iter(f"{SVG}path") if p.get("class") == "edge"]
    assert len(paths) == len(edges) == drawing.edges
    assert {(int(p.get("data-source", 0)), int(p.get("data-target", 0))) for p in paths} == {
        (e.source, e.target) for e in edges
    }
    assert all(p.get("marker-end") == "url(#ci-arrow)" for p in paths)
    for path in paths:
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
        assert numbers and all(math.isfinite(n) for n in numbers)
    labels = {t.text for t in tree.iter(f"{SVG}text")}
    assert {"depends on", "runs on", "connected to"} <= labels


def test_root_and_impacted_nodes_are_marked() -> None:
    nodes, edges = chain_world()
    svg = graphsvg.render(nodes, edges, root=2).svg
    assert 'class="node root" data-id="2"' in svg
    assert 'class="node impacted" data-id="3"' in svg
    assert 'class="node" data-id="1"' in svg


def test_text_is_escaped() -> None:
    nodes = [
        Node(1, "<script>alert(1)</script>", sublabel='a "quoted" & <b>', root=True, href='/cis/1?x="y"'),
        Node(2, "plain"),
    ]
    drawing = graphsvg.render(nodes, [Edge(2, 1, "<depends>")], root=1, title="<title>")
    assert "<script>" not in drawing.svg and "<b>" not in drawing.svg and "<depends>" not in drawing.svg
    assert "&lt;script&gt;" in drawing.svg
    assert "&lt;depends&gt;" in drawing.svg
    ET.fromstring(drawing.svg)  # still well-formed XML


def test_redacted_nodes_have_no_link() -> None:
    nodes = [
        Node(1, "mine", root=True, href="/cis/1"),
        Node(2, "provider CI #2 (Server)", redacted=True, href="/cis/2"),
    ]
    svg = graphsvg.render(nodes, [Edge(1, 2, "runs on")], root=1).svg
    assert 'href="/cis/1"' in svg and 'href="/cis/2"' not in svg
    assert "stroke-dasharray" in svg


def test_node_cap_keeps_the_root_and_nearest_and_counts_the_rest() -> None:
    hub = Node(0, "hub", root=True)
    leaves = [Node(i, f"leaf-{i}") for i in range(1, 101)]
    far = [Node(1000 + i, f"far-{i}") for i in range(5)]
    edges = [Edge(i, 0, "depends on") for i in range(1, 101)] + [Edge(1000 + i, 1, "depends on") for i in range(5)]
    drawing = graphsvg.render([*far, *leaves, hub], edges, root=0, max_nodes=60)
    assert drawing.drawn == 60 and drawing.omitted == 46
    drawn_ids = {int(i) for i in re.findall(r'<g class="node[^"]*" data-id="(\d+)"', drawing.svg)}
    assert len(drawn_ids) == 60
    assert 0 in drawn_ids and not any(i >= 1000 for i in drawn_ids)
    # Only edges between drawn nodes are drawn.
    assert drawing.edges == 59


def test_select_prefers_impacted_nodes_at_equal_distance() -> None:
    nodes = [Node(0, "root", root=True), Node(1, "a"), Node(2, "b", impacted=True)]
    edges = [Edge(1, 0, "x"), Edge(2, 0, "x")]
    kept, kept_edges, omitted = graphsvg.select(nodes, edges, root=0, max_nodes=2)
    assert [n.id for n in kept] == [0, 2] and omitted == 1 and kept_edges == [Edge(2, 0, "x")]


def test_a_hub_wraps_into_columns_and_stays_compact() -> None:
    nodes = [Node(0, "hub", root=True)] + [Node(i, f"leaf-{i}") for i in range(1, 60)]
    edges = [Edge(i, 0, "connected to") for i in range(1, 60)]
    plan = graphsvg.layout(nodes, edges, max_per_column=12)
    assert plan.height <= 12 * (NODE_HEIGHT + graphsvg.ROW_GAP) + 2 * graphsvg.MARGIN
    placed = list(plan.placed.values())
    assert not any(overlaps(a, b) for i, a in enumerate(placed) for b in placed[i + 1 :])
    assert all(plan.placed[i].x < plan.placed[0].x for i in range(1, 60))


def test_reachable_follows_the_direction() -> None:
    _, edges = chain_world()
    assert graphsvg.reachable(2, edges, "down") == {3, 4, 5, 6}
    assert graphsvg.reachable(2, edges, "down", depth=1) == {3, 5}
    assert graphsvg.reachable(2, edges, "up") == {1}


def test_long_labels_are_shortened_with_the_full_name_in_the_tooltip() -> None:
    name = "a-very-long-configuration-item-name-that-goes-on"
    svg = graphsvg.render([Node(1, name, root=True)], [], root=1).svg
    assert f"<title>{name}</title>" in svg
    assert "\u2026" in svg


def test_empty_edges_and_single_node() -> None:
    drawing = graphsvg.render([Node(7, "alone", root=True)], [], root=7)
    assert drawing.drawn == 1 and drawing.edges == 0 and drawing.omitted == 0
    ET.fromstring(drawing.svg)


def test_bad_caps_are_refused() -> None:
    with pytest.raises(ValueError):
        graphsvg.select([Node(1, "x")], [], root=1, max_nodes=0)
    with pytest.raises(ValueError):
        graphsvg.layout([Node(1, "x")], [], max_per_column=0)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=40).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.sampled_from(["depends on", "runs on"])),
                max_size=80,
            ),
        )
    ),
    st.integers(min_value=1, max_value=15),
)
def test_any_graph_lays_out_without_overlaps(graph: tuple[int, list[tuple[int, int, str]]], per_column: int) -> None:
    count, raw = graph
    nodes = [Node(i, f"n{i}", root=i == 0) for i in range(count)]
    edges = [Edge(a, b, t) for a, b, t in raw]
    plan = graphsvg.layout(nodes, edges, max_per_column=per_column)
    placed = list(plan.placed.values())
    assert len(placed) == count
    assert all(math.isfinite(p.x) and math.isfinite(p.y) for p in placed)
    assert not any(overlaps(a, b) for i, a in enumerate(placed) for b in placed[i + 1 :])
    drawing = graphsvg.render(nodes, edges, root=0, max_per_column=per_column)
    expected = {(a, b, t) for a, b, t in raw if a != b}
    assert drawing.edges == len(expected)
    ET.fromstring(drawing.svg)
