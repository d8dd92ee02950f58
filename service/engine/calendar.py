"""Free-slot search: opening hours, slot length, lead time, horizon, holidays, bookings.

Slots are proposed so that they are real alternatives: at most one per half-day first,
then others at least an hour apart, before falling back to whatever is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from service.engine.holidays import is_public_holiday
from service.engine.model import Preference, Slot
from service.engine.practice import Practice

NOON = time(12, 0)
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


def matches(slot: Slot, pref: Preference, tz_day: date) -> bool:
    """True when a slot fits the caller's preference."""
    local = slot.start.timetz().replace(tzinfo=None)
    if pref.day is not None and tz_day != pref.day:
        return False
    if pref.period == "morning" and local >= NOON:
        return False
    if pref.period == "afternoon" and local < NOON:
        return False
    if pref.after is not None and local < pref.after:
        return False
    return not (pref.before is not None and local >= pref.before)


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
        if pref.day is not None and day != pref.day:
            continue
        for utc, local in day_starts(practice, day):
            # A Slot is built only for a start that is free: a busy calendar is mostly taken.
            if utc < earliest or utc in taken or utc in excluded or utc in held:
                continue
            slot = Slot(local, local + length)
            if matches(slot, pref, day):
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
