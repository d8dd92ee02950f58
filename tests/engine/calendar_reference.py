"""The free-slot search as it was written first (one scan of every slot start against the
taken ones), kept as the oracle the memoised search in :mod:`service.engine.calendar` must
agree with."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from service.engine.calendar import NOON, PROPOSED, RELATIVE, SPREAD, day_fits, is_open_day, matches
from service.engine.model import Preference, Slot
from service.engine.practice import Practice


def _opening(practice: Practice, day: date) -> time | None:
    spans = practice.hours.get(day.weekday(), ())
    return min((s.start for s in spans), default=None)


def day_starts(practice: Practice, day: date) -> Iterator[tuple[datetime, datetime]]:
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
