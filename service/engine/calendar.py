"""Free-slot search: opening hours, slot length, lead time, horizon, holidays, bookings.

Every constraint of the caller's :class:`Preference` holds for a proposed slot: wanted and
excluded dates and weekdays and the date bounds are checked once per day, before its slots
are built; periods, bounds and windows per slot. A window fits a slot that starts at or
after its start and ends at or before its end; a window starting at midnight
(:data:`RELATIVE`, e.g. "dès l'ouverture" = 00:00–00:30, the first slot) counts from the
day's first opening instead, and holds at least one slot. Slots are proposed so that they are real alternatives: at most one per
half-day first, then others at least an hour apart, before falling back to whatever is
left; "as soon as possible" proposes the earliest slot and the next ones an hour apart.

``serves`` says whether the practice's hours can meet a preference at all (the dialogue
then says so, "outside_hours"), ``nearest`` finds the closest slots when they cannot.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from service.engine.holidays import is_public_holiday
from service.engine.model import Preference, Slot, Window
from service.engine.practice import Practice

NOON = time(12, 0)
RELATIVE = time(0, 0)  # a window starting at midnight counts from the day's first opening
SPREAD = timedelta(hours=1)
PROPOSED = 3


def is_open_day(practice: Practice, day: date) -> bool:
    """True when the practice receives on ``day`` (weekday hours, no closure, no holiday)."""
    if not practice.hours.get(day.weekday()):
        return False
    if day in practice.closed_dates:
        return False
    return not (practice.public_holidays and is_public_holiday(day))


def day_starts(practice: Practice, day: date) -> Iterator[tuple[datetime, datetime]]:
    """(UTC, local) start of every slot of an open day, in order, within its opening spans.

    The UTC form is what the calendar compares and looks up: an aware datetime in UTC hashes
    and compares some twenty times faster than one in a ``ZoneInfo`` zone, and a busy
    calendar checks thousands of starts against the taken ones. A span never crosses a
    clock change (they happen at night), so both forms advance by the slot length.
    """
    if not is_open_day(practice, day):
        return
    length = timedelta(minutes=practice.slot_minutes)
    for span in practice.hours.get(day.weekday(), ()):
        local = datetime.combine(day, span.start, practice.timezone)
        last = datetime.combine(day, span.end, practice.timezone) - length
        utc = local.astimezone(UTC)
        while local <= last:
            yield utc, local
            utc += length
            local += length


def day_fits(pref: Preference, day: date) -> bool:
    """True when ``day`` meets the preference's date constraints."""
    if pref.day is not None and day != pref.day:
        return False
    if pref.days and day not in pref.days:
        return False
    if pref.weekdays and day.weekday() not in pref.weekdays:
        return False
    if day in pref.not_days or day.weekday() in pref.not_weekdays:
        return False
    if pref.from_day is not None and day < pref.from_day:
        return False
    return not (pref.until_day is not None and day > pref.until_day)


def _resolve(window: Window, opening: time | None, length: int = 0) -> tuple[time | None, time | None]:
    """The window's bounds on a day whose first opening is ``opening``; a relative window
    holds at least one slot of ``length`` minutes ("dès l'ouverture": the first slot)."""
    if window.start != RELATIVE or opening is None:
        return window.start, window.end
    base = opening.hour * 60 + opening.minute
    end = max(window.end.hour * 60 + window.end.minute, length) if window.end is not None else None
    return opening, (None if end is None else time(min(23, (base + end) // 60), (base + end) % 60))


def _minutes(start: time, end: time) -> int:
    return (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)


def _inside(window: Window, start: time, end: time, opening: time | None) -> bool:
    lo, hi = _resolve(window, opening, _minutes(start, end))
    return (lo is None or start >= lo) and (hi is None or end <= hi)


def _overlaps(window: Window, start: time, end: time, opening: time | None) -> bool:
    lo, hi = _resolve(window, opening, _minutes(start, end))
    return (lo is None or end > lo) and (hi is None or start < hi)


def time_fits(pref: Preference, start: time, end: time, opening: time | None = None) -> bool:
    """True when a slot from ``start`` to ``end`` (local) meets the time-of-day constraints."""
    if pref.period == "morning" and start >= NOON:
        return False
    if pref.period == "afternoon" and start < NOON:
        return False
    if pref.after is not None and start < pref.after:
        return False
    if pref.before is not None and start >= pref.before:
        return False
    if pref.windows and not any(_inside(w, start, end, opening) for w in pref.windows):
        return False
    return not any(_overlaps(w, start, end, opening) for w in pref.not_windows)


def matches(slot: Slot, pref: Preference, tz_day: date, opening: time | None = None) -> bool:
    """True when a slot fits the caller's preference."""
    start = slot.start.timetz().replace(tzinfo=None)
    end = slot.end.timetz().replace(tzinfo=None)
    if end <= start:  # a slot ending at midnight
        end = time(23, 59)
    return day_fits(pref, tz_day) and time_fits(pref, start, end, opening)


def _opening(practice: Practice, day: date) -> time | None:
    spans = practice.hours.get(day.weekday(), ())
    return min((s.start for s in spans), default=None)


def candidates(
    practice: Practice,
    pref: Preference,
    now: datetime,
    taken: frozenset[datetime],
    excluded: frozenset[datetime] = frozenset(),
    held: frozenset[datetime] = frozenset(),
) -> Iterator[Slot]:
    """Every free slot matching ``pref`` between ``now`` + lead time and the horizon."""
    earliest = (now + timedelta(minutes=practice.min_lead_minutes)).astimezone(UTC)
    today = now.astimezone(practice.timezone).date()
    length = timedelta(minutes=practice.slot_minutes)
    for offset in range(practice.horizon_days + 1):
        day = today + timedelta(days=offset)
        if not day_fits(pref, day):
            continue
        opening = _opening(practice, day)
        for utc, local in day_starts(practice, day):
            # A Slot is built only for a start that is free: a busy calendar is mostly taken.
            if utc < earliest or utc in taken or utc in excluded or utc in held:
                continue
            slot = Slot(local, local + length)
            if matches(slot, pref, day, opening):
                yield slot


def find_slots(
    practice: Practice,
    pref: Preference,
    now: datetime,
    taken: frozenset[datetime],
    excluded: frozenset[datetime] = frozenset(),
    count: int = PROPOSED,
    held: frozenset[datetime] = frozenset(),
) -> tuple[Slot, ...]:
    """The next ``count`` free slots for ``pref``, spread to be real alternatives; slots
    ``held`` (proposed to another caller right now) only when too few others are free."""
    if held:
        free = _find_slots(practice, pref, now, taken, excluded, count, held)
        if len(free) == count:
            return free
    return _find_slots(practice, pref, now, taken, excluded, count)


def _find_slots(
    practice: Practice,
    pref: Preference,
    now: datetime,
    taken: frozenset[datetime],
    excluded: frozenset[datetime],
    count: int,
    held: frozenset[datetime] = frozenset(),
) -> tuple[Slot, ...]:
    if pref.asap:
        return _earliest(candidates(practice, pref, now, taken, excluded, held), count)
    pool: list[Slot] = []
    half_days: set[tuple[date, bool]] = set()
    for slot in candidates(practice, pref, now, taken, excluded, held):
        pool.append(slot)
        local = slot.start.astimezone(practice.timezone)
        half_days.add((local.date(), local.time() < NOON))
        # One slot per half-day is the best spread: as soon as there are enough half-days,
        # the first pass below returns without looking further.
        if len(half_days) >= count:
            break
    chosen: list[Slot] = []
    seen: set[tuple[date, bool]] = set()
    for slot in pool:
        local = slot.start.astimezone(practice.timezone)
        key = (local.date(), local.time() < NOON)
        if key not in seen:
            seen.add(key)
            chosen.append(slot)
        if len(chosen) == count:
            return tuple(sorted(chosen, key=lambda s: s.start))
    for slot in pool:
        if len(chosen) == count:
            break
        if slot not in chosen and all(abs(slot.start - c.start) >= SPREAD for c in chosen):
            chosen.append(slot)
    for slot in pool:
        if len(chosen) == count:
            break
        if slot not in chosen:
            chosen.append(slot)
    return tuple(sorted(chosen, key=lambda s: s.start))


def _earliest(found: Iterator[Slot], count: int) -> tuple[Slot, ...]:
    """The earliest slot, then the next ones at least an hour after the previous one."""
    chosen: list[Slot] = []
    rest: list[Slot] = []
    for slot in found:
        if not chosen or slot.start - chosen[-1].start >= SPREAD:
            chosen.append(slot)
        elif len(rest) < count:
            rest.append(slot)
        if len(chosen) == count:
            break
    chosen.extend(rest[: count - len(chosen)])
    return tuple(sorted(chosen, key=lambda s: s.start))


def serves(practice: Practice, pref: Preference) -> bool:
    """True when the practice's opening hours can meet the preference's times of day on a
    wanted weekday (bookings, closures and the horizon aside): "à 7h", "après 20h" or
    "mercredi après-midi" in a practice closed then cannot be served."""
    weekdays = set(range(7))
    if pref.weekdays:
        weekdays &= set(pref.weekdays)
    wanted_days = set(pref.days) | ({pref.day} if pref.day else set())
    if wanted_days:
        weekdays &= {d.weekday() for d in wanted_days}
    weekdays -= set(pref.not_weekdays)
    length = timedelta(minutes=practice.slot_minutes)
    for weekday in sorted(weekdays):
        spans = practice.hours.get(weekday, ())
        opening = min((s.start for s in spans), default=None)
        for span in spans:
            at = datetime.combine(date(2000, 1, 3), span.start)
            last = datetime.combine(date(2000, 1, 3), span.end) - length
            while at <= last:
                if time_fits(pref, at.time(), (at + length).time(), opening):
                    return True
                at += length
    return False


def _distance(pref: Preference, start: time) -> int:
    """Minutes between a slot start and the nearest edge of what the caller wanted."""
    minutes = start.hour * 60 + start.minute
    edges = [w for w in pref.windows if w.start != RELATIVE]
    bounds = [(w.start, w.end) for w in edges] or [(pref.after, pref.before)]
    if pref.period == "morning":
        bounds = [(lo, hi if hi is not None else NOON) for lo, hi in bounds]
    elif pref.period == "afternoon":
        bounds = [(lo if lo is not None else NOON, hi) for lo, hi in bounds]
    best = 24 * 60
    for lo, hi in bounds:
        lo_m = lo.hour * 60 + lo.minute if lo is not None else 0
        hi_m = hi.hour * 60 + hi.minute if hi is not None else 24 * 60
        best = min(best, max(0, lo_m - minutes, minutes - hi_m))
    return best


def nearest(
    practice: Practice,
    pref: Preference,
    now: datetime,
    taken: frozenset[datetime],
    excluded: frozenset[datetime] = frozenset(),
    count: int = PROPOSED,
) -> tuple[Slot, ...]:
    """When ``pref`` cannot be met, the free slots nearest to it: its date constraints kept,
    its times of day relaxed, the closest times first (then the earliest days)."""
    relaxed = Preference(day=pref.day, days=pref.days, weekdays=pref.weekdays, not_days=pref.not_days,
                         not_weekdays=pref.not_weekdays, from_day=pref.from_day, until_day=pref.until_day)
    pool = []
    for slot in candidates(practice, relaxed, now, taken, excluded):
        pool.append(slot)
        if len(pool) >= 400:
            break
    if not pool:
        pool = list(candidates(practice, Preference(), now, taken, excluded))[:400]
    ranked = sorted(pool, key=lambda s: (_distance(pref, s.start.astimezone(practice.timezone).time()), s.start))
    chosen: list[Slot] = []
    for slot in ranked:
        if all(abs(slot.start - c.start) >= SPREAD for c in chosen):
            chosen.append(slot)
        if len(chosen) == count:
            break
    return tuple(sorted(chosen, key=lambda s: s.start))
