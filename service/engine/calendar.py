"""Free-slot search: opening hours, slot length, lead time, horizon, holidays, bookings.

Every constraint of the caller's :class:`Preference` holds for a proposed slot: wanted and
excluded dates and weekdays and the date bounds are checked once per day, before its slots
are built; periods, bounds and windows per slot. A window fits a slot that starts at or
after its start and ends at or before its end; a window starting at midnight
(:data:`RELATIVE`, e.g. "dès l'ouverture" = 00:00–00:30, the first slot) counts from the
day's first opening instead, and holds at least one slot. Slots are proposed so that they are
real alternatives: at most one per half-day first, then others at least an hour apart, before
falling back to whatever is left; "as soon as possible" proposes the earliest slot and the next
ones an hour apart.

``serves`` says whether the practice's hours can meet a preference at all (the dialogue
then says so, "outside_hours"), ``nearest`` finds the closest slots when they cannot.

The search costs the same on an empty calendar and on a full one: a day's slots are built
once per practice (:func:`day_slots`, memoised on the practice and the day), the search goes
straight to the days the preference allows, and the free starts of a day are found with set
operations against the taken ones and memoised for that taken set (a store hands the same
set back while nothing is booked), so a full day costs one set comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain, islice

from service.engine.holidays import is_public_holiday
from service.engine.model import Preference, Slot, Window
from service.engine.practice import Practice

NOON = time(12, 0)
RELATIVE = time(0, 0)  # a window starting at midnight counts from the day's first opening
SPREAD = timedelta(hours=1)
PROPOSED = 3
NEAREST_POOL = 400  # free slots ranked by closeness when a preference cannot be met
# The distance of a start time of day to the spans wanted (``_bounds``), per spans.
_DISTANCES: dict[tuple[tuple[int, int], ...], dict[time, int]] = {}


def is_open_day(practice: Practice, day: date) -> bool:
    """True when the practice receives on ``day`` (weekday hours, no closure, no holiday)."""
    if not practice.hours.get(day.weekday()):
        return False
    if day in practice.closed_dates:
        return False
    return not (practice.public_holidays and is_public_holiday(day))


@dataclass(frozen=True, slots=True)
class SlotStart:
    """One slot of an open day: its start in UTC and local time, and its local start and
    end times of day (an end at midnight is 23:59), as the preference checks read them."""

    utc: datetime
    local: datetime
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class DaySlots:
    """Every slot of one day, in order (none on a closed day), its first opening, and the
    set of its UTC starts."""

    day: date
    opening: time | None
    slots: tuple[SlotStart, ...]
    starts: frozenset[datetime]


def _build_day(practice: Practice, day: date) -> DaySlots:
    opening = _opening(practice, day)
    if not is_open_day(practice, day):
        return DaySlots(day, opening, (), frozenset())
    length = timedelta(minutes=practice.slot_minutes)
    slots: list[SlotStart] = []
    for span in practice.hours.get(day.weekday(), ()):
        local = datetime.combine(day, span.start, practice.timezone)
        last = datetime.combine(day, span.end, practice.timezone) - length
        utc = local.astimezone(UTC)
        while local <= last:
            start, end = local.time(), (local + length).time()
            slots.append(SlotStart(utc, local, start, end if end > start else time(23, 59)))
            utc += length
            local += length
    return DaySlots(day, opening, tuple(slots), frozenset(s.utc for s in slots))


class TakenSlots(frozenset[datetime]):
    """Taken slot starts that name the set they were made from (``base``) and the starts that
    differ (``changed``): the per-day free-slot memo of ``base`` carries over to this set for
    every day no changed start falls on, so one booking or cancellation does not make the
    search look at every day again. A set no search has used (``searched`` is False) is
    skipped over: the next one names the set it was made from, with both changes, so two
    bookings between two searches do not make the search look at every day again either."""

    __slots__ = ("base", "changed", "searched")
    base: frozenset[datetime] | None
    changed: frozenset[datetime]
    searched: bool

    @classmethod
    def after(
        cls, base: frozenset[datetime], added: Iterable[datetime] = (), removed: Iterable[datetime] = ()
    ) -> TakenSlots:
        """``base`` with ``added`` taken and ``removed`` freed.

        Made with two copies of ``base`` at most, not three: a set as large as a full
        calendar costs more to copy than the few starts that change."""
        plus, minus = frozenset(added), frozenset(removed)
        if not minus:
            new = cls(base | plus if plus else base)
        elif not plus:
            new = cls(base - minus)
        else:
            merged = set(base)
            merged -= minus
            merged |= plus
            new = cls(merged)
        new.base, new.changed, new.searched = base, plus | minus, False
        if isinstance(base, TakenSlots):
            if not base.searched and base.base is not None:
                new.base, new.changed = base.base, base.changed | new.changed
            base.base = None  # one link: the sets before stay collectable
        return new


class _Schedule:
    """The memo of one practice: its days' slots, and the free slots of each day for the
    last taken set seen (replaced as a whole when another taken set comes); the runs of days
    searched, and whether its hours serve a preference."""

    __slots__ = ("days", "free", "practice", "runs", "served")

    def __init__(self, practice: Practice) -> None:
        self.practice = practice
        self.days: dict[date, DaySlots] = {}
        self.free: tuple[frozenset[datetime], dict[date, tuple[SlotStart, ...]]] = (frozenset(), {})
        self.runs: dict[tuple[date, date], tuple[date, ...]] = {}
        self.served: dict[Preference, bool] = {}

    def day(self, day: date) -> DaySlots:
        found = self.days.get(day)
        if found is None:
            if len(self.days) > 4096:  # a long-running process walks into new days
                self.days.clear()
            found = self.days[day] = _build_day(self.practice, day)
        return found

    def run(self, first: date, last: date) -> tuple[date, ...]:
        """The days from ``first`` to ``last``, in order."""
        found = self.runs.get((first, last))
        if found is None:
            if len(self.runs) > 64:  # a long-running process sees new todays
                self.runs.clear()
            found = self.runs[first, last] = tuple(first + timedelta(days=n) for n in range((last - first).days + 1))
        return found

    def free_of(self, taken: frozenset[datetime]) -> dict[date, tuple[SlotStart, ...]]:
        """The per-day free slots memo for ``taken`` (the same object, not an equal one:
        comparing two large sets would cost what the memo saves)."""
        memo = self.free
        if memo[0] is not taken:
            days: dict[date, tuple[SlotStart, ...]] = {}
            if isinstance(taken, TakenSlots):
                if taken.base is memo[0]:
                    touched = {start.astimezone(self.practice.timezone).date() for start in taken.changed}
                    days = {day: free for day, free in memo[1].items() if day not in touched}
                taken.searched = True
            memo = self.free = (taken, days)
        return memo[1]


_SCHEDULES: dict[int, _Schedule] = {}


def _schedule(practice: Practice) -> _Schedule:
    """The memo of ``practice`` (by identity: a practice is loaded once and never changes)."""
    found = _SCHEDULES.get(id(practice))
    if found is not None and found.practice is practice:
        return found
    if len(_SCHEDULES) >= 16:  # tests build many practices; a server has one
        _SCHEDULES.clear()
    found = _SCHEDULES[id(practice)] = _Schedule(practice)
    return found


def day_slots(practice: Practice, day: date) -> DaySlots:
    """The slots of ``day`` (memoised per practice and day)."""
    return _schedule(practice).day(day)


def day_starts(practice: Practice, day: date) -> Iterator[tuple[datetime, datetime]]:
    """(UTC, local) start of every slot of an open day, in order, within its opening spans.

    The UTC form is what the calendar compares and looks up: an aware datetime in UTC hashes
    and compares some twenty times faster than one in a ``ZoneInfo`` zone, and a busy
    calendar checks thousands of starts against the taken ones. A span never crosses a
    clock change (they happen at night), so both forms advance by the slot length.
    """
    for slot in day_slots(practice, day).slots:
        yield slot.utc, slot.local


def free_slots(practice: Practice, day: date, taken: frozenset[datetime]) -> tuple[SlotStart, ...]:
    """The slots of ``day`` not in ``taken``, in order (see :func:`_free_of_day`)."""
    schedule = _schedule(practice)
    return _free_of_day(schedule, schedule.free_of(taken), day, taken)


def _free_of_day(
    schedule: _Schedule, memo: dict[date, tuple[SlotStart, ...]], day: date, taken: frozenset[datetime]
) -> tuple[SlotStart, ...]:
    """The free slots of ``day``: an empty or a full day costs one set comparison; kept in
    ``memo``, the per-day "full" index of this taken set."""
    free = memo.get(day)
    if free is None:
        table = schedule.day(day)
        # The taken set's own method: a frozenset's isdisjoint walks the smaller set only when
        # the other one is a plain frozenset, and ``taken`` may be a TakenSlots.
        if taken.isdisjoint(table.starts):
            free = table.slots
        elif table.starts <= taken:
            free = ()
        else:
            free = tuple(s for s in table.slots if s.utc not in taken)
        memo[day] = free
    return free


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


def _days(schedule: _Schedule, pref: Preference, today: date, horizon: int) -> Iterable[date]:
    """The days from ``today`` to the horizon that the preference's dates allow, in order:
    straight to a wanted day, within the date bounds."""
    last = today + timedelta(days=horizon)
    if pref.day is not None or pref.days:
        wanted = sorted({pref.day} if pref.day is not None else set(pref.days))
        return [d for d in wanted if today <= d <= last and day_fits(pref, d)]
    first = max(today, pref.from_day) if pref.from_day is not None else today
    if pref.until_day is not None:
        last = min(last, pref.until_day)
    if last < first:
        return ()
    days = schedule.run(first, last)
    if pref.weekdays or pref.not_days or pref.not_weekdays:
        return (d for d in days if day_fits(pref, d))
    return days


def _free(
    practice: Practice,
    pref: Preference,
    now: datetime,
    taken: frozenset[datetime],
    excluded: frozenset[datetime] = frozenset(),
    held: frozenset[datetime] = frozenset(),
) -> Iterator[SlotStart]:
    """Every free slot matching ``pref`` between ``now`` + lead time and the horizon."""
    earliest = (now + timedelta(minutes=practice.min_lead_minutes)).astimezone(UTC)
    today = now.astimezone(practice.timezone).date()
    schedule = _schedule(practice)
    memo = schedule.free_of(taken)
    timed = pref.period in ("morning", "afternoon") or bool(
        pref.after or pref.before or pref.windows or pref.not_windows
    )
    for day in _days(schedule, pref, today, practice.horizon_days):
        free = memo.get(day)
        if free is None:
            free = _free_of_day(schedule, memo, day, taken)
        if not free or free[-1].utc < earliest:
            continue
        opening = schedule.day(day).opening
        for s in free:
            if s.utc < earliest or s.utc in excluded or s.utc in held:
                continue
            if not timed or time_fits(pref, s.start, s.end, opening):
                yield s


def _pool(
    practice: Practice, pref: Preference, now: datetime, taken: frozenset[datetime], excluded: frozenset[datetime],
) -> Iterator[SlotStart]:
    """The free slots of the days ``pref`` allows, whatever their time of day (``pref`` has
    date constraints only), in order, taken a whole day at a time."""
    earliest = (now + timedelta(minutes=practice.min_lead_minutes)).astimezone(UTC)
    today = now.astimezone(practice.timezone).date()
    schedule = _schedule(practice)
    memo = schedule.free_of(taken)
    # The days an excluded start falls on (only their slots are looked at one by one).
    excluded_days = {start.astimezone(practice.timezone).date() for start in excluded}
    for day in _days(schedule, pref, today, practice.horizon_days):
        free = memo.get(day)
        if free is None:
            free = _free_of_day(schedule, memo, day, taken)
        if not free:
            continue
        if free[0].utc < earliest or day in excluded_days:
            free = tuple(s for s in free if s.utc >= earliest and s.utc not in excluded)
        yield from free


def _slots(practice: Practice, starts: list[SlotStart]) -> tuple[Slot, ...]:
    """``starts`` as slots, in order (a Slot is built only for what is returned)."""
    length = timedelta(minutes=practice.slot_minutes)
    return tuple(Slot(s.local, s.local + length) for s in sorted(starts, key=lambda s: s.local))


def candidates(
    practice: Practice,
    pref: Preference,
    now: datetime,
    taken: frozenset[datetime],
    excluded: frozenset[datetime] = frozenset(),
    held: frozenset[datetime] = frozenset(),
) -> Iterator[Slot]:
    """Every free slot matching ``pref`` between ``now`` + lead time and the horizon."""
    length = timedelta(minutes=practice.slot_minutes)
    for s in _free(practice, pref, now, taken, excluded, held):
        yield Slot(s.local, s.local + length)


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
            return _slots(practice, free)
    return _slots(practice, _find_slots(practice, pref, now, taken, excluded, count))


def _find_slots(
    practice: Practice,
    pref: Preference,
    now: datetime,
    taken: frozenset[datetime],
    excluded: frozenset[datetime],
    count: int,
    held: frozenset[datetime] = frozenset(),
) -> list[SlotStart]:
    found = _free(practice, pref, now, taken, excluded, held)
    if pref.asap:
        return _earliest(found, count)
    pool: list[SlotStart] = []
    chosen: list[SlotStart] = []
    half_days: set[tuple[date, bool]] = set()
    for s in found:
        pool.append(s)
        key = (s.local.date(), s.start < NOON)
        # One slot per half-day is the best spread: as soon as there are enough half-days,
        # the first slot of each is the answer, without looking further.
        if key not in half_days:
            half_days.add(key)
            chosen.append(s)
            if len(chosen) == count:
                return chosen
    for s in pool:
        if len(chosen) == count:
            break
        if s not in chosen and all(abs(s.local - c.local) >= SPREAD for c in chosen):
            chosen.append(s)
    for s in pool:
        if len(chosen) == count:
            break
        if s not in chosen:
            chosen.append(s)
    return chosen


def _earliest(found: Iterator[SlotStart], count: int) -> list[SlotStart]:
    """The earliest slot, then the next ones at least an hour after the previous one."""
    chosen: list[SlotStart] = []
    rest: list[SlotStart] = []
    for s in found:
        if not chosen or s.local - chosen[-1].local >= SPREAD:
            chosen.append(s)
        elif len(rest) < count:
            rest.append(s)
        if len(chosen) == count:
            break
    chosen.extend(rest[: count - len(chosen)])
    return chosen


def serves(practice: Practice, pref: Preference) -> bool:
    """True when the practice's opening hours can meet the preference's times of day on a
    wanted weekday (bookings, closures and the horizon aside): "à 7h", "après 20h" or
    "mercredi après-midi" in a practice closed then cannot be served (memoised per practice
    and preference)."""
    served = _schedule(practice).served
    found = served.get(pref)
    if found is None:
        if len(served) > 4096:
            served.clear()
        found = served[pref] = _serves(practice, pref)
    return found


def _serves(practice: Practice, pref: Preference) -> bool:
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


def _bounds(pref: Preference) -> tuple[tuple[int, int], ...]:
    """The spans of the day the caller wanted, in minutes (what ``nearest`` measures from)."""
    edges = [w for w in pref.windows if w.start != RELATIVE]
    bounds = [(w.start, w.end) for w in edges] or [(pref.after, pref.before)]
    if pref.period == "morning":
        bounds = [(lo, hi if hi is not None else NOON) for lo, hi in bounds]
    elif pref.period == "afternoon":
        bounds = [(lo if lo is not None else NOON, hi) for lo, hi in bounds]
    return tuple(
        (lo.hour * 60 + lo.minute if lo is not None else 0, hi.hour * 60 + hi.minute if hi is not None else 24 * 60)
        for lo, hi in bounds
    )


def _distance(bounds: tuple[tuple[int, int], ...], start: time) -> int:
    """Minutes between a slot start and the nearest edge of what the caller wanted."""
    minutes = start.hour * 60 + start.minute
    return min(24 * 60, *(max(0, lo - minutes, minutes - hi) for lo, hi in bounds))


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
    found = _pool(practice, relaxed, now, taken, excluded)
    first = next(found, None)
    if first is None:
        found = _pool(practice, Preference(), now, taken, excluded)
        first = next(found, None)
        if first is None:
            return ()
    # The pool (the first NEAREST_POOL free slots) ranked by closeness (then by time) and
    # picked an hour apart, the closest first: one pass over the pool per distance. The
    # first pass (distance 0, the least there is) gathers the pool as it goes and mostly
    # suffices, so the pool is mostly gathered only as far as that pass needs.
    bounds = _bounds(pref)
    distance = _DISTANCES.get(bounds)
    if distance is None:
        if len(_DISTANCES) > 1024:
            _DISTANCES.clear()
        distance = _DISTANCES[bounds] = {}
    pool: list[SlotStart] = []
    chosen: list[SlotStart] = []
    for s in chain((first,), islice(found, NEAREST_POOL - 1)):
        pool.append(s)
        level = distance.get(s.start)
        if level is None:
            level = distance[s.start] = _distance(bounds, s.start)
        if level == 0 and all(abs(s.local - c.local) >= SPREAD for c in chosen):
            chosen.append(s)
            if len(chosen) == count:
                return _slots(practice, chosen)
    for level in sorted({distance[s.start] for s in pool} - {0}):
        for s in pool:
            if distance[s.start] == level and all(abs(s.local - c.local) >= SPREAD for c in chosen):
                chosen.append(s)
                if len(chosen) == count:
                    return _slots(practice, chosen)
    return _slots(practice, chosen)
