"""Free-slot search never proposes an invalid slot and spreads its proposals."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.engine.calendar import find_slots, is_open_day, nearest, serves
from service.engine.holidays import is_public_holiday
from service.engine.model import Preference, Slot, Window
from service.engine.practice import Practice
from tests.support import NOW, PARIS

preferences = st.builds(
    Preference,
    period=st.sampled_from(["morning", "afternoon", "any"]),
    day=st.one_of(st.none(), st.dates(date(2026, 3, 1), date(2026, 4, 15))),
    after=st.one_of(st.none(), st.sampled_from([time(9), time(10, 30), time(15), time(17)])),
    before=st.one_of(st.none(), st.sampled_from([time(10), time(12), time(16), time(18)])),
)
nows = st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 20)).map(lambda d: d.replace(tzinfo=PARIS))


def _valid(practice: Practice, pref: Preference, now: datetime, taken: frozenset[datetime],
           slot_start: datetime) -> None:
    local = slot_start.astimezone(PARIS)
    assert slot_start >= now + timedelta(minutes=practice.min_lead_minutes), "inside the lead time"
    assert local.date() <= (now.astimezone(PARIS) + timedelta(days=practice.horizon_days)).date()
    assert is_open_day(practice, local.date()), "closed day"
    assert not is_public_holiday(local.date())
    assert local.date() not in practice.closed_dates
    assert slot_start not in taken, "already booked"
    spans = practice.hours[local.weekday()]
    end = (local + timedelta(minutes=practice.slot_minutes)).time()
    assert any(s.start <= local.time() and end <= s.end for s in spans), "outside opening hours or in a break"
    if pref.period == "morning":
        assert local.time() < time(12)
    if pref.period == "afternoon":
        assert local.time() >= time(12)
    if pref.day is not None:
        assert local.date() == pref.day


@settings(max_examples=150, deadline=None)
@given(pref=preferences, now=nows, taken_n=st.integers(0, 40))
def test_never_proposes_an_invalid_slot(practice: Practice, pref: Preference, now: datetime, taken_n: int) -> None:
    """Whatever the preference, time and bookings, every proposal is a free, open, future slot."""
    first = find_slots(practice, pref, now, frozenset())
    taken = frozenset(s.start for s in first[: taken_n % 4])
    for slot in find_slots(practice, pref, now, taken):
        _valid(practice, pref, now, taken, slot.start)


def test_three_slots_spread_over_half_days(practice: Practice) -> None:
    """With no preference, the three proposals are in three different half-days, in order."""
    slots = find_slots(practice, Preference(), NOW, frozenset())
    assert len(slots) == 3
    halves = {(s.start.date(), s.start.astimezone(PARIS).hour < 12) for s in slots}
    assert len(halves) == 3
    assert list(slots) == sorted(slots, key=lambda s: s.start)


def test_one_day_preference_spreads_by_an_hour(practice: Practice) -> None:
    """On a named day, proposals are at least an hour apart."""
    day = date(2026, 3, 5)
    slots = find_slots(practice, Preference(day=day), NOW, frozenset())
    assert len(slots) == 3
    starts = sorted(s.start for s in slots)
    assert all(b - a >= timedelta(hours=1) for a, b in itertools.pairwise(starts))


def test_holiday_and_closed_dates_are_skipped(practice: Practice) -> None:
    """Easter Monday 2026 and a configured closed date never get slots."""
    assert not is_open_day(practice, date(2026, 4, 6))
    assert not find_slots(practice, Preference(day=date(2026, 4, 6)), NOW, frozenset())
    assert not is_open_day(practice, date(2026, 12, 24))


def test_booked_slot_is_not_proposed_again(practice: Practice) -> None:
    """A taken slot disappears from the proposals."""
    first = find_slots(practice, Preference(period="afternoon"), NOW, frozenset())
    again = find_slots(practice, Preference(period="afternoon"), NOW, frozenset({first[0].start}))
    assert first[0].start not in {s.start for s in again}


def test_full_calendar_gives_nothing(practice: Practice) -> None:
    """When every slot of a day is taken, that day offers nothing."""
    day = date(2026, 3, 5)
    all_slots = find_slots(practice, Preference(day=day), NOW, frozenset(), count=100)
    taken = frozenset(s.start for s in all_slots)
    assert find_slots(practice, Preference(day=day), NOW, taken) == ()


def test_held_slots_are_offered_only_when_nothing_else_fits(practice: Practice) -> None:
    """Slots proposed to another caller right now are avoided while three others are free,
    and offered again when they are all that is left."""
    day = date(2026, 3, 5)
    pref = Preference(day=day)
    first = find_slots(practice, pref, NOW, frozenset())
    held = frozenset(s.start for s in first)
    other = find_slots(practice, pref, NOW, frozenset(), held=held)
    assert len(other) == 3 and not held & {s.start for s in other}
    everything = find_slots(practice, pref, NOW, frozenset(), count=100)
    taken = frozenset(s.start for s in everything) - held
    assert {s.start for s in find_slots(practice, pref, NOW, taken, held=held)} == held


# ----------------------------------------------------------------------------- constraints

def _local(slots: tuple[Slot, ...]) -> list[datetime]:
    return [s.start.astimezone(PARIS) for s in slots]


CONSTRAINTS = [
    (Preference(days=(date(2026, 3, 5), date(2026, 3, 9))),
     lambda t: t.date() in (date(2026, 3, 5), date(2026, 3, 9))),
    (Preference(weekdays=(1,)), lambda t: t.weekday() == 1),
    (Preference(not_weekdays=(0, 1, 2)), lambda t: t.weekday() not in (0, 1, 2)),
    (Preference(not_days=(date(2026, 3, 3), date(2026, 3, 4))), lambda t: t.date() not in (date(2026, 3, 3),
                                                                                        date(2026, 3, 4))),
    (Preference(windows=(Window(time(14), time(16)),)),
     lambda t: time(14) <= t.time() and (t + timedelta(minutes=30)).time() <= time(16)),
    (Preference(windows=(Window(time(10, 30), time(12)), Window(time(16), None))),
     lambda t: time(10, 30) <= t.time() < time(12) or t.time() >= time(16)),
    (Preference(not_windows=(Window(None, time(12)),)), lambda t: t.time() >= time(12)),
    (Preference(not_windows=(Window(time(12), time(13)),), period="morning"), lambda t: t.time() < time(12)),
    (Preference(from_day=date(2026, 3, 9)), lambda t: t.date() >= date(2026, 3, 9)),
    (Preference(until_day=date(2026, 3, 4)), lambda t: t.date() <= date(2026, 3, 4)),
    (Preference(from_day=date(2026, 3, 9), until_day=date(2026, 3, 15), period="morning"),
     lambda t: date(2026, 3, 9) <= t.date() <= date(2026, 3, 15) and t.time() < time(12)),
    (Preference(windows=(Window(time(0), time(1)),)),  # relative to the opening: the day's first hour
     lambda t: t.time() < (time(9, 30) if t.weekday() < 5 else time(10))),
    (Preference(windows=(Window(time(0), time(0, 30)),)),  # "dès l'ouverture": the day's first slot
     lambda t: t.time() == (time(8, 30) if t.weekday() < 5 else time(9))),
    (Preference(weekdays=(3,), windows=(Window(time(17, 30), None),)),
     lambda t: t.weekday() == 3 and t.time() >= time(17, 30)),
]


@pytest.mark.parametrize(("pref", "holds"), CONSTRAINTS, ids=[f"constraint{i}" for i in range(len(CONSTRAINTS))])
def test_every_constraint_holds_for_every_proposal(practice: Practice, pref: Preference,
                                                   holds: Callable[[datetime], bool]) -> None:
    """Wanted and excluded dates and weekdays, windows (slot inside), excluded windows (no
    overlap), date bounds and the relative opening window each hold for all proposals."""
    slots = find_slots(practice, pref, NOW, frozenset())
    assert len(slots) == 3
    assert all(holds(t) for t in _local(slots)), _local(slots)
    many = find_slots(practice, pref, NOW, frozenset(), count=40)
    assert all(holds(t) for t in _local(many))


def test_asap_proposes_the_earliest_slot_first(practice: Practice) -> None:
    """"Le plus tôt possible": the first free slot, then the next ones an hour apart, same day allowed."""
    earliest = find_slots(practice, Preference(), NOW, frozenset(), count=100)[0]
    slots = find_slots(practice, Preference(asap=True), NOW, frozenset())
    assert slots[0] == earliest
    starts = [s.start for s in slots]
    assert all(b - a >= timedelta(hours=1) for a, b in itertools.pairwise(starts))
    assert starts[-1] - starts[0] < timedelta(days=1)


def test_serves_knows_the_opening_hours(practice: Practice) -> None:
    """Before opening, after closing and Wednesday afternoon cannot be served; the rest can."""
    assert serves(practice, Preference(windows=(Window(time(10), time(11)),)))
    assert not serves(practice, Preference(windows=(Window(time(7), time(8)),)))
    assert not serves(practice, Preference(windows=(Window(time(19), None),)))
    assert not serves(practice, Preference(weekdays=(2,), period="afternoon"))
    assert serves(practice, Preference(weekdays=(2,), period="morning"))
    assert not serves(practice, Preference(days=(date(2026, 3, 4),), windows=(Window(time(14), time(16)),)))


def test_nearest_offers_the_closest_times_when_the_wish_cannot_be_met(practice: Practice) -> None:
    """After 19:00 is closed: the nearest slots are the last ones of the day, still after 17:30."""
    pref = Preference(windows=(Window(time(19), None),))
    assert find_slots(practice, pref, NOW, frozenset()) == ()
    near = nearest(practice, pref, NOW, frozenset())
    assert len(near) == 3
    assert all(t.time() >= time(16, 30) for t in _local(near)), _local(near)

