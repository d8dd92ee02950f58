"""Which slots to propose for a preference: every constraint honoured, else the nearest ones.

The calendar finds free slots honouring every constraint of the caller's
:class:`~service.engine.model.Preference`. When none is free, the nearest ones are offered
instead — never on an excluded day or in an excluded span — and the reply says whether the
practice simply never receives at that time (a window outside its opening hours) or is full
then.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from service.engine import calendar
from service.engine.model import Preference, Slot
from service.engine.practice import Practice

_NO_CONSTRAINT = Preference()


@dataclass(frozen=True, slots=True)
class Proposal:
    """The slots found; ``nearest`` when they only come close to the preference, and
    ``closed`` when the practice never receives in the window asked for."""

    slots: tuple[Slot, ...]
    nearest: bool = False
    closed: bool = False


def exclusions_only(pref: Preference) -> Preference:
    """What must hold whatever happens: the exclusions and date bounds, nothing wanted."""
    return Preference(
        not_days=pref.not_days, not_weekdays=pref.not_weekdays, not_windows=pref.not_windows,
        from_day=pref.from_day, until_day=pref.until_day,
    )


def honours(slot: Slot, pref: Preference, practice: Practice) -> bool:
    """True when ``slot`` meets every constraint of ``pref``."""
    local = Slot(slot.start.astimezone(practice.timezone), slot.end.astimezone(practice.timezone))
    return calendar.matches(local, pref, local.start.date())


def _keep(slots: Iterable[Slot], floor: Preference, practice: Practice) -> list[Slot]:
    if floor == _NO_CONSTRAINT:
        return list(slots)  # every slot honours a preference that asks nothing
    return [s for s in slots if honours(s, floor, practice)]


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
    slots = calendar.find_slots(practice, pref, now, taken, skip, count=count, held=held)
    if slots:
        return Proposal(slots)
    floor = exclusions_only(pref)
    near = _keep(calendar.nearest(practice, pref, now, taken, skip, count), floor, practice)
    if len(near) < count:
        # The nearest days are all excluded: the earliest free slots that honour the exclusions.
        extra = [s for s in calendar.find_slots(practice, floor, now, taken, skip, count=count) if s not in near]
        near = sorted(near + extra[: count - len(near)], key=lambda s: s.start)
    if not near:
        return Proposal(())
    return Proposal(tuple(near), nearest=True, closed=not calendar.serves(practice, pref))
