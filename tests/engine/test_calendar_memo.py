"""The memoised free-slot search answers exactly what the plain scan answers, whatever the
calendar's fill, the preference, the held and excluded slots, and however the taken sets
follow one another (the per-day memo is kept for one taken set at a time)."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from service.config import load_practice
from service.engine import calendar
from service.engine.model import Preference, Window
from service.engine.practice import Practice
from tests.engine import calendar_reference as reference
from tests.support import PARIS

BENCH_PRACTICE = load_practice(Path(__file__).resolve().parents[2] / "bench" / "practice.toml")
EXAMPLE_PRACTICE = load_practice(None)
START = datetime(2026, 3, 2, 7, 10, tzinfo=PARIS)
times = st.sampled_from([time(8), time(9, 30), time(11), time(12), time(14), time(16, 40), time(18)])
days = st.dates(date(2026, 3, 1), date(2026, 6, 10))
windows = st.builds(Window, start=st.one_of(st.none(), times, st.just(calendar.RELATIVE)),
                    end=st.one_of(st.none(), times))
preferences = st.builds(
    Preference,
    period=st.sampled_from(["morning", "afternoon", "any"]),
    day=st.one_of(st.none(), days),
    after=st.one_of(st.none(), times),
    before=st.one_of(st.none(), times),
    days=st.lists(days, max_size=3).map(tuple),
    weekdays=st.lists(st.integers(0, 6), max_size=3).map(tuple),
    not_days=st.lists(days, max_size=2).map(tuple),
    not_weekdays=st.lists(st.integers(0, 6), max_size=2).map(tuple),
    windows=st.lists(windows, max_size=2).map(tuple),
    not_windows=st.lists(windows, max_size=1).map(tuple),
    from_day=st.one_of(st.none(), days),
    until_day=st.one_of(st.none(), days),
    asap=st.booleans(),
)


def _horizon(practice: Practice, now: datetime) -> list[datetime]:
    today = now.astimezone(practice.timezone).date()
    return [utc for n in range(practice.horizon_days + 1)
            for utc, _ in reference.day_starts(practice, today + timedelta(days=n))]


def _fill(starts: list[datetime], share: float, mode: str, seed: int) -> frozenset[datetime]:
    """Taken starts: the nearest ones first, scattered, or whole days."""
    n = int(len(starts) * share)
    if mode == "nearest":
        return frozenset(starts[:n])
    rng = random.Random(seed)
    if mode == "scattered":
        return frozenset(rng.sample(starts, n))
    by_day: dict[date, list[datetime]] = {}
    for s in starts:
        by_day.setdefault(s.date(), []).append(s)
    chosen = rng.sample(sorted(by_day), int(len(by_day) * share))
    return frozenset(s for d in chosen for s in by_day[d])


@settings(max_examples=300, deadline=None)
@given(
    bench=st.booleans(),
    pref=preferences,
    minutes=st.integers(0, 60 * 24 * 20),
    share=st.sampled_from([0.0, 0.3, 0.7, 0.95, 1.0]),
    mode=st.sampled_from(["nearest", "scattered", "days"]),
    seed=st.integers(0, 1000),
    picks=st.lists(st.integers(0, 4000), max_size=6),
)
def test_memoised_search_agrees_with_the_plain_scan(
    bench: bool, pref: Preference, minutes: int, share: float, mode: str, seed: int, picks: list[int]
) -> None:
    """find_slots and nearest give the plain scan's answer, on the first call for a taken set
    (memo built) and on the second (memo used), and after a booking and cancellations made
    new sets from it (memo carried over for the days they do not touch)."""
    practice = BENCH_PRACTICE if bench else EXAMPLE_PRACTICE
    now = START + timedelta(minutes=minutes)
    starts = _horizon(practice, now)
    taken = _fill(starts, share, mode, seed)
    free = [s for s in starts if s not in taken] or starts
    held = frozenset(free[p % len(free)] for p in picks[:3])
    excluded = frozenset(free[p % len(free)] for p in picks[3:])
    grown = calendar.TakenSlots.after(taken, [free[seed % len(free)]])
    shrunk = calendar.TakenSlots.after(grown, removed=[starts[p % len(starts)] for p in picks[:2]])
    # Two changes in a row, the set between them never searched (skipped over by the memo).
    unseen = calendar.TakenSlots.after(shrunk, [free[(seed + 7) % len(free)]], [starts[seed % len(starts)]])
    skipped = calendar.TakenSlots.after(unseen, removed=[starts[p % len(starts)] for p in picks[2:4]])
    for current in (taken, taken, grown, grown, shrunk, skipped):
        assert calendar.find_slots(practice, pref, now, current, excluded, held=held) == reference.find_slots(
            practice, pref, now, current, excluded, held=held
        )
        assert calendar.nearest(practice, pref, now, current, excluded) == reference.nearest(
            practice, pref, now, current, excluded
        )
        assert list(calendar.candidates(practice, pref, now, current, excluded, held)) == list(
            reference.candidates(practice, pref, now, current, excluded, held)
        )


def test_a_full_day_is_skipped_and_freed_again() -> None:
    """A day whose every slot is taken has no free slot; the same day with one booking
    cancelled (another taken set) offers exactly that slot."""
    practice = EXAMPLE_PRACTICE
    day = date(2026, 3, 10)
    slots = calendar.day_slots(practice, day).slots
    assert slots, "the example practice receives on Tuesdays"
    full = frozenset(s.utc for s in slots)
    assert calendar.free_slots(practice, day, full) == ()
    one_left = full - {slots[5].utc}
    assert calendar.free_slots(practice, day, one_left) == (slots[5],)
    assert calendar.free_slots(practice, day, frozenset()) == slots
    ask = Preference(day=day)
    assert [s.start for s in calendar.find_slots(practice, ask, START, one_left)] == [slots[5].local]
    assert calendar.find_slots(practice, ask, START, full) == ()


def test_a_set_no_search_used_is_skipped_over() -> None:
    """A taken set made from one no search has used names the set that one was made from,
    with both changes (so the memo of the last searched set carries over); once searched, a
    set is named as it is, and each set names one other only."""
    practice = EXAMPLE_PRACTICE
    slots = calendar.day_slots(practice, date(2026, 3, 10)).slots
    a, b, c = (s.utc for s in slots[:3])
    searched = calendar.TakenSlots.after(frozenset({a}), [b])
    calendar.free_slots(practice, date(2026, 3, 10), searched)
    unseen = calendar.TakenSlots.after(searched, [c])
    later = calendar.TakenSlots.after(unseen, removed=[a])
    assert later == {b, c}
    assert later.base is searched and later.changed == {a, c}
    assert unseen.base is None and searched.base is None
    calendar.free_slots(practice, date(2026, 3, 10), later)
    last = calendar.TakenSlots.after(later, removed=[b])
    assert last == {c} and last.base is later and last.changed == {b}
