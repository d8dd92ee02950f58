"""Which slots to propose for a preference: every constraint honoured, else the nearest ones.

The calendar finds and spreads free slots; this module makes sure that every constraint of
the caller's :class:`~service.engine.model.Preference` holds for what is proposed (a slot on
an excluded day is never offered), and, when nothing fits, picks the free slots nearest to
what was asked — keeping every exclusion — and says whether the practice simply never
receives at that time (a window outside its opening hours) or is full then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from service.engine import calendar
from service.engine.model import Preference, Slot, Window
from service.engine.practice import Practice

NOON = time(12, 0)
DAY_MINUTES = 24 * 60


@dataclass(frozen=True, slots=True)
class Proposal:
    """The slots found; ``nearest`` when they only come close to the preference, and
    ``closed`` when the practice never receives in the window asked for."""

    slots: tuple[Slot, ...]
    nearest: bool = False
    closed: bool = False


def _minutes(moment: time) -> int:
    return moment.hour * 60 + moment.minute


def _in_window(start: time, end: time, window: Window) -> bool:
    return (window.start is None or start >= window.start) and (window.end is None or end <= window.end)


def _overlaps(start: time, end: time, window: Window) -> bool:
    return (window.end is None or start < window.end) and (window.start is None or end > window.start)


def _end_time(local_start: datetime, local_end: datetime) -> time:
    # A slot ending at midnight ends "at 24:00", after every window.
    return time.max if local_end.date() > local_start.date() else local_end.time()


def excluded(local_start: datetime, local_end: datetime, pref: Preference) -> bool:
    """True when the slot falls on an excluded day, weekday or span, or outside the date bounds."""
    day, start, end = local_start.date(), local_start.time(), _end_time(local_start, local_end)
    if day in pref.not_days or day.weekday() in pref.not_weekdays:
        return True
    if pref.from_day is not None and day < pref.from_day:
        return True
    if pref.until_day is not None and day > pref.until_day:
        return True
    return any(_overlaps(start, end, w) for w in pref.not_windows)


def wanted(local_start: datetime, local_end: datetime, pref: Preference) -> bool:
    """True when the slot is on a wanted day and in a wanted span (first-wave fields included)."""
    day, start, end = local_start.date(), local_start.time(), _end_time(local_start, local_end)
    if pref.day is not None and day != pref.day:
        return False
    if pref.days and day not in pref.days:
        return False
    if pref.weekdays and day.weekday() not in pref.weekdays:
        return False
    if pref.period == "morning" and start >= NOON:
        return False
    if pref.period == "afternoon" and start < NOON:
        return False
    if pref.after is not None and start < pref.after:
        return False
    if pref.before is not None and start >= pref.before:
        return False
    return not pref.windows or any(_in_window(start, end, w) for w in pref.windows)


def fits(slot: Slot, pref: Preference, practice: Practice) -> bool:
    """True when ``slot`` honours every constraint of ``pref``."""
    local_start, local_end = slot.start.astimezone(practice.timezone), slot.end.astimezone(practice.timezone)
    return wanted(local_start, local_end, pref) and not excluded(local_start, local_end, pref)


def exclusions_only(pref: Preference) -> Preference:
    """What must hold whatever happens: the exclusions and date bounds, nothing wanted."""
    return Preference(
        not_days=pref.not_days, not_weekdays=pref.not_weekdays, not_windows=pref.not_windows,
        from_day=pref.from_day, until_day=pref.until_day,
    )


def _misfits(
    practice: Practice, pref: Preference, now: datetime, taken: frozenset[datetime], skip: frozenset[datetime],
) -> frozenset[datetime]:
    """Free starts the calendar would offer for ``pref`` that break one of its constraints."""
    return frozenset(
        s.start for s in calendar.candidates(practice, pref, now, taken, skip) if not fits(s, pref, practice)
    )


def _day_gap(day: date, pref: Preference) -> int:
    wanted_days = [d for d in (pref.day, *pref.days) if d is not None]
    gaps = [abs((day - d).days) for d in wanted_days]
    gaps += [min((day.weekday() - w) % 7, (w - day.weekday()) % 7) for w in pref.weekdays]
    return min(gaps) if gaps else 0


def _time_gap(start: time, end: time, pref: Preference) -> int:
    """Minutes between the slot and the wanted span of the day (0 inside it)."""
    spans: list[tuple[int, int]] = []
    low, high = 0, DAY_MINUTES
    if pref.period == "morning":
        high = _minutes(NOON)
    elif pref.period == "afternoon":
        low = _minutes(NOON)
    if pref.after is not None:
        low = max(low, _minutes(pref.after))
    if pref.before is not None:
        high = min(high, _minutes(pref.before))
    spans.append((low, high))
    for w in pref.windows:
        spans.append((_minutes(w.start) if w.start else 0, _minutes(w.end) if w.end else DAY_MINUTES))
    begin, finish = _minutes(start), (DAY_MINUTES if end == time.max else _minutes(end))
    return min(max(0, lo - begin) + max(0, finish - hi) for lo, hi in spans)


def _nearest(practice: Practice, pref: Preference, candidates: Iterable[Slot], count: int) -> tuple[Slot, ...]:
    tz = practice.timezone

    def distance(slot: Slot) -> tuple[int, datetime]:
        start, end = slot.start.astimezone(tz), slot.end.astimezone(tz)
        gap = _day_gap(start.date(), pref) * DAY_MINUTES + _time_gap(start.time(), _end_time(start, end), pref)
        return gap, slot.start

    best = sorted(candidates, key=distance)[:count]
    return tuple(sorted(best, key=lambda s: s.start))


def never_served(practice: Practice, pref: Preference, now: datetime) -> bool:
    """True when no opening slot of the horizon is in the wanted days and spans, busy or not:
    the practice does not receive then ("après 20h", "le dimanche")."""
    today = now.astimezone(practice.timezone).date()
    length = timedelta(minutes=practice.slot_minutes)
    for offset in range(practice.horizon_days + 1):
        for _, local in calendar.day_starts(practice, today + timedelta(days=offset)):
            if wanted(local, local + length, pref):
                return False
    return True


def find(
    practice: Practice,
    pref: Preference,
    now: datetime,
    taken: frozenset[datetime],
    skip: frozenset[datetime] = frozenset(),
    held: frozenset[datetime] = frozenset(),
    count: int = calendar.PROPOSED,
) -> Proposal:
    """Up to ``count`` free slots honouring ``pref``; else the nearest free ones that honour
    its exclusions, flagged ``nearest`` (and ``closed`` when the practice never receives then)."""
    strict = skip | _misfits(practice, pref, now, taken, skip)
    slots = calendar.find_slots(practice, pref, now, taken, strict, count=count, held=held)
    if slots:
        return Proposal(slots)
    floor = exclusions_only(pref)
    pool = [
        s for s in calendar.candidates(practice, floor, now, taken, skip)
        if fits(s, floor, practice)
    ]
    if not pool:
        return Proposal(())
    free = [s for s in pool if s.start not in held]
    chosen = _nearest(practice, pref, free if len(free) >= count else pool, count)
    return Proposal(chosen, nearest=True, closed=never_served(practice, pref, now))
