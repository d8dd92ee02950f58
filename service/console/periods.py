"""The periods the console looks at: today (since midnight where the practice is) or 7 days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from service import stats

TODAY: Final = "today"
WEEK: Final = "7d"
LABELS: Final = {TODAY: "Aujourd'hui", WEEK: "7 jours"}
# How far back the list's day filter reaches: the stats' own limit.
MAX_DAYS_BACK: Final = stats.MAX_WINDOW.days


@dataclass(frozen=True, slots=True)
class Period:
    """A look-back period with its window (as :mod:`service.stats` takes it) and bucket size."""

    key: str
    label: str
    window: stats.Window
    since: datetime
    until: datetime
    hourly: bool  # chart buckets: hours (today, one day) or days (7 days)


def midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of ``day`` in the practice's zone."""
    return datetime.combine(day, time(0), tzinfo=tz)


def period(key: str | None, now: datetime, tz: ZoneInfo) -> Period:
    """``today`` (the default: since local midnight) or ``7d`` (the stats' own 7d window)."""
    if key == WEEK:
        window = stats.parse_window(WEEK)
        return Period(WEEK, LABELS[WEEK], window, window.since(now), now, hourly=False)
    start = midnight(now.astimezone(tz).date(), tz)
    return Period(TODAY, LABELS[TODAY], stats.Window(TODAY, now - start), start, now, hourly=True)


def buckets(p: Period, tz: ZoneInfo) -> list[datetime]:
    """Starts of the chart's buckets, in the practice's zone: every hour (counted in UTC, so
    the hour a clock change skips is skipped and the one it repeats comes twice) or every
    local midnight, from ``since`` to ``until``."""
    out: list[datetime] = []
    if p.hourly:
        moment = p.since.astimezone(UTC)
        while moment <= p.until:
            out.append(moment.astimezone(tz))
            moment += timedelta(hours=1)
        return out
    day = p.since.astimezone(tz).date()
    while day <= p.until.astimezone(tz).date():
        out.append(midnight(day, tz))
        day += timedelta(days=1)
    return out
