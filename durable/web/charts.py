"""Inline SVG charts for the metrics page: no JavaScript, no CDN."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, PAD = 640, 180, 28


@dataclass(frozen=True)
class Point:
    label: str
    value: float


def bar_chart(points: Sequence[Point], *, unit: str = "", title: str = "") -> SafeString:
    """Vertical bars with a label under every few bars and the value as a tooltip."""
    top = max((p.value for p in points), default=0) or 1
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / max(len(points), 1)
    every = max(1, len(points) // 8)
    bars = []
    for i, point in enumerate(points):
        h = inner_h * point.value / top
        x = PAD + i * step
        bars.append(
            format_html(
                '<rect class="bar" x="{}" y="{}" width="{}" height="{}">'
                "<title>{}: {}{}</title></rect>",
                round(x + 1, 1),
                round(PAD + inner_h - h, 1),
                round(max(step - 2, 1), 1),
                round(h, 1),
                point.label,
                _number(point.value),
                unit,
            )
        )
        if i % every == 0:
            bars.append(
                format_html(
                    '<text class="axis" x="{}" y="{}">{}</text>',
                    round(x, 1),
                    HEIGHT - 8,
                    point.label,
                )
            )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<text class="axis" x="4" y="{}">{}{}</text>'
        '<line class="base" x1="{}" y1="{}" x2="{}" y2="{}"/>{}</svg>',
        WIDTH,
        HEIGHT,
        title,
        PAD - 10,
        _number(top),
        unit,
        PAD,
        PAD + inner_h,
        WIDTH - PAD,
        PAD + inner_h,
        format_html_join("", "{}", ((b,) for b in bars)),
    )


def hbar_chart(
    points: Sequence[Point], *, maximum: float | None = None, unit: str = ""
) -> SafeString:
    """Horizontal bars, one row per point (e.g. per workflow)."""
    top = maximum or max((p.value for p in points), default=0) or 1
    row_h, label_w = 22, 180
    height = max(len(points), 1) * row_h + 4
    rows = []
    for i, point in enumerate(points):
        y = 2 + i * row_h
        w = (WIDTH - label_w - 70) * point.value / top
        rows.append(
            format_html(
                '<text class="axis" x="0" y="{}">{}</text>'
                '<rect class="bar" x="{}" y="{}" width="{}" height="{}"/>'
                '<text class="value" x="{}" y="{}">{}{}</text>',
                y + 15,
                point.label[:28],
                label_w,
                y + 3,
                round(max(w, 1), 1),
                row_h - 6,
                round(label_w + w + 6, 1),
                y + 15,
                _number(point.value),
                unit,
            )
        )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img">{}</svg>',
        WIDTH,
        height,
        format_html_join("", "{}", ((r,) for r in rows)),
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.2f}"
