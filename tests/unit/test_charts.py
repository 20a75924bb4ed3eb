"""The report's SVG charts: well-formed, escaped, and only safe colours."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from problem.charts import Series, attainment_bars, colour, simple_bars, stacked_bars

SVG = "{http://www.w3.org/2000/svg}"
NASTY = '<script>alert(1)</script>"&\' <img src="file:///etc/passwd">'


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises if the markup is not well-formed XML


def texts(root: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]


def test_stacked_bars_draw_each_non_zero_value_and_a_legend() -> None:
    svg = stacked_bars(
        "Incidents per week",
        ["1 Oct", "5 Oct"],
        [Series("Critical", "critical", [1, 0]), Series("High", "high", [2, 3])],
    )
    root = parse(svg)
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 3  # the zero is not drawn
    assert "1 Oct" in texts(root) and "High" in texts(root)
    assert root.find(f"{SVG}title").text == "Incidents per week"  # type: ignore[union-attr]
    assert 'fill="#c0392b"' in svg  # the palette's critical colour


def test_tenant_text_is_escaped_everywhere() -> None:
    for svg in (
        stacked_bars(NASTY, [NASTY], [Series(NASTY, "high", [1])]),
        attainment_bars(NASTY, [(NASTY, 1, 2)]),
        simple_bars(NASTY, [(NASTY, 3, "green")]),
    ):
        root = parse(svg)
        assert "<script" not in svg and "<img" not in svg
        assert not list(root.iter(f"{SVG}script")) and not list(root.iter("img"))
        assert any(NASTY in text for text in texts(root))


def test_colours_outside_the_palette_fall_back_to_grey() -> None:
    assert colour("red") == "#c0392b"
    assert colour("#123abc") == "#123abc"
    assert colour('red" onload="alert(1)') == "#7f8c8d"
    assert colour("url(http://attacker.test/x)") == "#7f8c8d"
    svg = simple_bars("States", [("Approved", 2, 'x" onclick="evil()')])
    assert "onclick" not in svg


def test_attainment_bars_show_shares_and_a_target() -> None:
    root = parse(attainment_bars("Within the agreed times", [("Answered", 9, 10), ("Fixed", 0, 0)], target=95))
    shown = texts(root)
    assert "90 %" in shown and "none measured" in shown and "target 95 %" in shown


def test_empty_charts_still_render() -> None:
    parse(stacked_bars("Nothing", [], []))
    assert "nothing to show" in simple_bars("Nothing", [])


@given(st.lists(st.integers(0, 100_000), min_size=1, max_size=6))
def test_bars_never_leave_the_plot(values: list[int]) -> None:
    root = parse(stacked_bars("t", [str(i) for i in range(len(values))], [Series("a", "low", values)]))
    height = float(root.get("height"))  # type: ignore[arg-type]
    for rect in root.iter(f"{SVG}rect"):
        y, h = float(rect.get("y", 0)), float(rect.get("height", 0))
        assert y >= -0.5 and y + h <= height + 0.5
