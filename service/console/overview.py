"""The overview page's answer: the stats of a period as an operator reads them.

Everything is computed by :mod:`service.stats` (``bookings`` for the numbers and the target
table, the same call ``GET /api/stats/bookings`` makes); this module only arranges it: the
chart's buckets, the funnel in :data:`FUNNEL` order, bars with their links, French words.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from service import stats
from service.console import french
from service.console.chart import Chart, Point, conversion_chart
from service.console.periods import Period, buckets
from service.engine.states import FUNNEL, Outcome
from telemetry import names as n

STOPPED = "stopped"  # the list's filter for abandoned or expired conversations (the stats' abandons)


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of a breakdown: a label, a count, its width in percent, and a list link."""

    key: str
    label: str
    count: int
    width: float
    href: str | None = None


@dataclass(frozen=True, slots=True)
class TargetRow:
    """A row of the operators' manual's target table (§5.7): the figure against its target."""

    key: str
    label: str
    value: str
    target: str
    status: str  # "ok", "bad", or "none" (nothing to measure)
    count: int
    of: int
    numerator: str
    denominator: str
    action: str


@dataclass(frozen=True, slots=True)
class Overview:
    """What the overview page shows for one period."""

    period: Period
    answer: Mapping[str, Any]
    conversion: str
    conversion_status: str  # "ok" (over target), "warn" (under target), "bad" (under floor), "none"
    target: str
    floor: str
    chart: Chart
    outcomes: tuple[Bar, ...]
    funnel: tuple[Bar, ...]
    stops: tuple[Bar, ...]
    reasons: tuple[Bar, ...]
    targets: tuple[TargetRow, ...]


def list_link(period_key: str, **filters: str) -> str:
    """The conversations list filtered like this."""
    return "/console/conversations?" + urlencode({"period": period_key, **filters})


def _bars(counts: Sequence[tuple[str, str, int, str | None]], whole: int | None = None) -> tuple[Bar, ...]:
    top = whole if whole is not None else max((c for _, _, c, _ in counts), default=0)
    return tuple(
        Bar(key, label, count, round(100.0 * count / top, 1) if top else 0.0, href)
        for key, label, count, href in counts
    )


def target_rows(rows: Sequence[Mapping[str, Any]]) -> tuple[TargetRow, ...]:
    """The stats' target table with the manual's French words, each figure ok or bad."""
    out: list[TargetRow] = []
    for row in rows:
        words = french.TARGETS[row["key"]]
        meets = row["meets"]
        out.append(TargetRow(
            key=row["key"], label=words.label, value=french.percent(row["value"]),
            target=f"{row['comparison']} {french.percent(row['threshold'])}",
            status="none" if meets is None else ("ok" if meets else "bad"),
            count=row["count"], of=row["of"], numerator=row["numerator"], denominator=row["denominator"],
            action=words.action,
        ))
    return tuple(out)


def conversion_status(answer: Mapping[str, Any]) -> str:
    """``ok`` above the target, ``warn`` under it, ``bad`` under the paging floor."""
    if not answer["total_sessions"]:
        return "none"
    rate = float(answer["conversion_rate"])
    row = next(r for r in answer["targets"] if r["key"] == "confirmation_rate")
    if row["meets"]:
        return "ok"
    return "bad" if rate < n.CONVERSION_FLOOR * 100 else "warn"


def series(facts: Sequence[stats.CallFacts], p: Period, tz: ZoneInfo) -> list[Point]:
    """Conversion per bucket of the period (hours today, days over a week), each bucket's
    rate computed by ``stats.bookings`` over the conversations last seen in it."""
    starts = buckets(p, tz)
    groups: list[list[stats.CallFacts]] = [[] for _ in starts]
    for f in facts:
        if f.last_seen_at is None or not starts:
            continue
        # The last bucket starting at or before the moment (the first one for anything older).
        groups[max(bisect_right(starts, f.last_seen_at) - 1, 0)].append(f)
    points: list[Point] = []
    for start, group in zip(starts, groups, strict=True):
        answer = stats.bookings(group, None, None)
        label = f"{start.hour}h" if p.hourly else french.day(start)
        total = int(answer["total_sessions"])
        points.append(Point(label, total, int(answer["confirmed_bookings"]),
                            float(answer["conversion_rate"]) if total else None))
    return points


def overview(facts: Sequence[stats.CallFacts], p: Period, tz: ZoneInfo) -> Overview:
    """The overview of ``facts`` (the conversations last seen in the period)."""
    answer = stats.bookings(facts, p.window, p.until)
    total = int(answer["total_sessions"])
    outcome_counts = answer["outcomes"]
    outcomes = _bars(
        [(key, french.outcome(key), int(outcome_counts.get(key, 0)), list_link(p.key, outcome=key))
         for key in (*(o.value for o in Outcome), french.IN_PROGRESS)],
        total,
    )
    reached = [
        sum(1 for f in facts if state.value in f.states_seen) if i else total
        for i, state in enumerate(FUNNEL)
    ]
    funnel = _bars([(s.value, s.value, c, None) for s, c in zip(FUNNEL, reached, strict=True)], total)
    stops = _bars([
        (state, state, int(count), list_link(p.key, outcome=STOPPED, state=state))
        for state, count in answer["abandoned_by_state"].items()
    ])
    reasons = _bars([(r, r, int(c), None) for r, c in answer["ended_reasons"].items()])
    return Overview(
        period=p, answer=answer, conversion=french.percent(float(answer["conversion_rate"])),
        conversion_status=conversion_status(answer),
        target=french.percent(n.CONVERSION_TARGET * 100), floor=french.percent(n.CONVERSION_FLOOR * 100),
        chart=conversion_chart(series(facts, p, tz)),
        outcomes=outcomes, funnel=funnel, stops=stops, reasons=reasons,
        targets=target_rows(answer["targets"]),
    )
