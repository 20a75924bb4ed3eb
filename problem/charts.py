"""Small SVG charts for the monthly report, built as strings. Pure.

The same markup goes inline into the web page and into the PDF (WeasyPrint draws inline SVG),
so a chart never needs a URL, a script or a font file. Every piece of text that reaches the
markup passes through `_text` (XML escaping); colours come from a fixed palette or are checked
against a strict pattern, so tenant text can never become markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = {
    "critical": "#c0392b",
    "high": "#e67e22",
    "normal": "#2e86c1",
    "low": "#95a5a6",
    "met": "#27ae60",
    "missed": "#c0392b",
    "grey": "#7f8c8d",
    "blue": "#2e86c1",
    "green": "#27ae60",
    "orange": "#e67e22",
    "red": "#c0392b",
    "purple": "#8e44ad",
}
_COLOUR = re.compile(r"^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|[a-z]{3,20})$")
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def colour(name: str) -> str:
    """A palette name or a literal colour; anything that is not plainly a colour falls back to grey."""
    value = PALETTE.get(name, name)
    return value if _COLOUR.match(value) else PALETTE["grey"]


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    values: Sequence[int]


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{_text(title)}"><title>{_text(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _nice_max(value: int) -> int:
    """A round axis maximum at or above `value` (at least 1)."""
    if value <= 5:
        return max(value, 1)
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= value:
            return top
    return value


def _legend(series: Sequence[Series], x: int, y: int) -> list[str]:
    parts: list[str] = []
    for s in series:
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour(s.colour)}"/>')
        parts.append(f'<text x="{x + 14}" y="{y}" font-size="11" {FONT}>{_text(s.label)}</text>')
        x += 24 + 7 * len(s.label)
    return parts


def stacked_bars(
    title: str, categories: Sequence[str], series: Sequence[Series], *, width: int = 560, height: int = 220
) -> str:
    """Vertical bars per category, each stacked from the series (e.g. incidents per week by priority)."""
    left, right, top, bottom = 40, 10, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.values[i] if i < len(s.values) else 0 for s in series) for i in range(len(categories))]
    axis_max = _nice_max(max(totals, default=0))
    body = [f'<text x="{left}" y="16" font-size="13" font-weight="bold" {FONT}>{_text(title)}</text>']
    for tick in (0, axis_max // 2, axis_max) if axis_max > 1 else (0, axis_max):
        y = top + plot_h - plot_h * tick / axis_max
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" {FONT}>{tick}</text>')
    slot = plot_w / max(len(categories), 1)
    bar_w = max(min(slot * 0.6, 48), 2)
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        for s in series:
            value = s.values[i] if i < len(s.values) else 0
            if value <= 0:
                continue
            h = plot_h * value / axis_max
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour(s.colour)}">'
                f"<title>{_text(category)}: {value} {_text(s.label)}</title></rect>"
            )
        body.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 14}" font-size="10" text-anchor="middle" {FONT}>'
            f"{_text(category)}</text>"
        )
    body += _legend(series, left, height - 8)
    return _svg(width, height, title, body)


def attainment_bars(
    title: str, rows: Sequence[tuple[str, int, int]], *, target: int | None = None, width: int = 560
) -> str:
    """Horizontal bars of met / measured per row (e.g. response and resolution within the
    agreed times), with the percentage written at the end and an optional target line."""
    left, right, top, row_h = 150, 60, 30, 28
    height = top + row_h * max(len(rows), 1) + 12
    plot_w = width - left - right
    body = [f'<text x="8" y="16" font-size="13" font-weight="bold" {FONT}>{_text(title)}</text>']
    for i, (label, met, measured) in enumerate(rows):
        y = top + i * row_h
        share = met / measured if measured else 0.0
        body.append(f'<text x="{left - 6}" y="{y + 15}" font-size="11" text-anchor="end" {FONT}>{_text(label)}</text>')
        body.append(f'<rect x="{left}" y="{y + 3}" width="{plot_w}" height="16" fill="#eee"/>')
        if measured:
            body.append(
                f'<rect x="{left}" y="{y + 3}" width="{plot_w * share:.1f}" height="16" fill="{colour("met")}"/>'
            )
        shown = f"{(100 * met) // measured} %" if measured else "none measured"
        body.append(f'<text x="{left + plot_w + 6}" y="{y + 15}" font-size="11" {FONT}>{_text(shown)}</text>')
    if target is not None and 0 <= target <= 100:
        x = left + plot_w * target / 100
        body.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 8}" stroke="#333" stroke-dasharray="3,3"/>'
        )
        body.append(
            f'<text x="{x:.1f}" y="{top - 6}" font-size="10" text-anchor="middle" {FONT}>target {target} %</text>'
        )
    return _svg(width, height, title, body)


def simple_bars(title: str, items: Sequence[tuple[str, int, str]], *, width: int = 560) -> str:
    """One horizontal bar per (label, value, colour), e.g. planned changes by state."""
    left, right, top, row_h = 150, 50, 30, 22
    height = top + row_h * max(len(items), 1) + 8
    plot_w = width - left - right
    axis_max = max((value for _, value, _ in items), default=0) or 1
    body = [f'<text x="8" y="16" font-size="13" font-weight="bold" {FONT}>{_text(title)}</text>']
    if not items:
        body.append(f'<text x="{left}" y="{top + 14}" font-size="11" {FONT}>nothing to show</text>')
    for i, (label, value, fill) in enumerate(items):
        y = top + i * row_h
        w = plot_w * value / axis_max
        body.append(f'<text x="{left - 6}" y="{y + 13}" font-size="11" text-anchor="end" {FONT}>{_text(label)}</text>')
        body.append(f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="14" fill="{colour(fill)}"/>')
        body.append(f'<text x="{left + w + 4:.1f}" y="{y + 13}" font-size="11" {FONT}>{value}</text>')
    return _svg(width, height, title, body)
