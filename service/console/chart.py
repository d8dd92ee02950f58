"""The conversion chart as inline SVG geometry: no script, no library, readable offline.

Pure: points in, coordinates out; the template draws them. The target and floor lines come
from :mod:`telemetry.names`, as in the dashboards and the alert rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from telemetry import names as n

WIDTH: Final = 720
HEIGHT: Final = 240
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 34


@dataclass(frozen=True, slots=True)
class Point:
    """One bucket: its label, how many conversations, and the conversion rate (None if none)."""

    label: str
    total: int
    confirmed: int
    rate: float | None


@dataclass(frozen=True, slots=True)
class Dot:
    """A drawn point of the line, with the text a screen reader or a tooltip gives."""

    x: float
    y: float
    title: str


@dataclass(frozen=True, slots=True)
class Bar:
    """A volume bar under the line."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Guide:
    """A horizontal line (target, floor, grid) with its label."""

    y: float
    label: str
    kind: str


@dataclass(frozen=True, slots=True)
class Tick:
    """An x-axis label."""

    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything the template draws."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    paths: tuple[str, ...]
    dots: tuple[Dot, ...]
    bars: tuple[Bar, ...]
    guides: tuple[Guide, ...]
    ticks: tuple[Tick, ...]
    points: tuple[Point, ...]


def _y(rate: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - rate / 100)


def _pct(ratio: float) -> str:
    return f"{ratio * 100:g} %"


def conversion_chart(points: Sequence[Point], max_ticks: int = 12) -> Chart:
    """The line of conversion rates (gaps where a bucket had no conversation), the volume
    bars, and the target and floor lines."""
    count = max(len(points), 1)
    plot_w = WIDTH - LEFT - RIGHT
    step = plot_w / count
    plot_h = HEIGHT - TOP - BOTTOM
    most = max((p.total for p in points), default=0) or 1
    paths: list[str] = []
    segment: list[str] = []
    dots: list[Dot] = []
    bars: list[Bar] = []
    ticks: list[Tick] = []
    every = max(1, -(-count // max_ticks))
    for i, point in enumerate(points):
        cx = LEFT + step * (i + 0.5)
        if point.total:
            height = plot_h * 0.35 * point.total / most
            bars.append(Bar(round(cx - step * 0.3, 1), round(TOP + plot_h - height, 1), round(step * 0.6, 1),
                            round(height, 1)))
        if point.rate is None:
            if segment:
                paths.append(" ".join(segment))
                segment = []
        else:
            y = _y(point.rate)
            segment.append(f"{'M' if not segment else 'L'}{cx:.1f},{y:.1f}")
            dots.append(Dot(round(cx, 1), round(y, 1),
                            f"{point.label} : {point.rate:g} % ({point.confirmed}/{point.total})"))
        if i % every == 0:
            ticks.append(Tick(round(cx, 1), point.label))
    if segment:
        paths.append(" ".join(segment))
    marks = {n.CONVERSION_TARGET * 100, n.CONVERSION_FLOOR * 100}
    guides = [Guide(round(_y(v), 1), f"{v:g} %", "grid") for v in (0.0, 25.0, 100.0) if v not in marks]
    guides += [
        Guide(round(_y(n.CONVERSION_TARGET * 100), 1), _pct(n.CONVERSION_TARGET), "target"),
        Guide(round(_y(n.CONVERSION_FLOOR * 100), 1), _pct(n.CONVERSION_FLOOR), "floor"),
    ]
    return Chart(WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM, tuple(paths), tuple(dots), tuple(bars),
                 tuple(guides), tuple(ticks), tuple(points))
