"""What the conversation keeps: preferences merged turn after turn, names completed, the slots
proposed for a preference, the context stored and read back (old rows included), and the
practice's security setting."""

from __future__ import annotations

import json
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from service.config import ConfigError, load_practice, parse_practice
from service.engine import proposal
from service.engine.knowledge import merge_person, merge_preference
from service.engine.model import BookingRef, Context, Lookup, Preference, Slot, Window
from service.engine.nlu.extract import PersonName
from service.engine.practice import Practice
from service.storage.codec import context_from_json, context_to_json
from tests.support import NOW, PARIS

THU, FRI = date(2026, 3, 5), date(2026, 3, 6)


@pytest.mark.parametrize(("old", "new", "merged"), [
    # A later day replaces the earlier one; the period stays.
    (Preference("morning", THU, days=(THU,)), Preference(day=FRI, days=(FRI,)),
     Preference("morning", FRI, days=(FRI,))),
    # A later span replaces the earlier one; the day stays.
    (Preference("morning", THU, days=(THU,)), Preference("afternoon"), Preference("afternoon", THU, days=(THU,))),
    # Exclusions add up.
    (Preference(not_weekdays=(0,)), Preference(not_weekdays=(2,)), Preference(not_weekdays=(0, 2))),
    # Excluding the wanted day drops it; wanting it again lifts the exclusion.
    (Preference(day=THU, days=(THU,)), Preference(not_weekdays=(3,)), Preference(not_weekdays=(3,))),
    (Preference(not_weekdays=(3,)), Preference(day=THU, days=(THU,)), Preference(day=THU, days=(THU,))),
    # "Pas de préférence" clears the wanted span, keeps days and exclusions.
    (Preference("morning", THU, days=(THU,), not_weekdays=(0,)), Preference(),
     Preference("any", THU, days=(THU,), not_weekdays=(0,))),
    # Windows replace windows; excluded windows add up.
    (Preference(windows=(Window(time(9), time(11)),), not_windows=(Window(time(12), time(14)),)),
     Preference(windows=(Window(time(16)),), not_windows=(Window(None, time(9)),)),
     Preference(windows=(Window(time(16)),), not_windows=(Window(time(12), time(14)), Window(None, time(9))))),
])
def test_preferences_merge_turn_after_turn(old: Preference, new: Preference, merged: Preference) -> None:
    """Same kind replaces, exclusions accumulate, a day wanted again is no longer excluded."""
    assert merge_preference(old, new) == merged


def test_first_statement_is_kept_as_is() -> None:
    """With nothing known yet the new preference is taken whole."""
    pref = Preference("afternoon", not_days=(THU,))
    assert merge_preference(None, pref) is pref


@pytest.mark.parametrize(("known", "heard", "merged"), [
    ((None, None), PersonName("Jean", "Dupont"), ("Jean", "Dupont")),
    (("Ghislaine", None), PersonName(None, "Brossard"), ("Ghislaine", "Brossard")),
    ((None, "Brossard"), PersonName("Inès", None), ("Inès", "Brossard")),
    (("Jean", "Dupont"), PersonName("Jean", "Dupuis"), ("Jean", "Dupuis")),
    (("Jean", "Dupont"), PersonName(None, "Martin"), (None, "Martin")),
])
def test_names_complete_or_replace(known: tuple[str | None, str | None], heard: PersonName,
                                   merged: tuple[str | None, str | None]) -> None:
    """A last name completes a first name alone (and back); a whole name replaces."""
    assert merge_person(*known, heard) == merged


# -- slots for a preference -----------------------------------------------------------------
def _local(slots: tuple[Slot, ...]) -> list[datetime]:
    return [s.start.astimezone(PARIS) for s in slots]


def test_every_constraint_holds_for_the_proposed_slots(practice: Practice) -> None:
    """Excluded weekdays, an excluded span and a date bound all hold for what is proposed."""
    pref = Preference(not_weekdays=(1, 2), not_windows=(Window(None, time(10)),), from_day=THU)
    found = proposal.find(practice, pref, NOW, frozenset())
    assert len(found.slots) == 3 and not found.nearest
    for moment in _local(found.slots):
        assert moment.weekday() not in (1, 2) and moment.time() >= time(10) and moment.date() >= THU


def test_nothing_free_in_the_window_gives_the_nearest_keeping_exclusions(practice: Practice) -> None:
    """Thursday afternoon fully booked: the nearest slots, never on an excluded Friday."""
    taken = frozenset(
        datetime(2026, 3, 5, 14, 0, tzinfo=PARIS) + timedelta(minutes=30 * i) for i in range(9)
    )
    pref = Preference("afternoon", THU, days=(THU,), not_weekdays=(4,))
    found = proposal.find(practice, pref, NOW, taken)
    assert found.nearest and not found.closed and len(found.slots) == 3
    assert all(m.weekday() != 4 for m in _local(found.slots))


def test_a_window_the_practice_never_serves_is_flagged(practice: Practice) -> None:
    """Sunday, or after 19h: the practice never receives then (``closed``), nearest slots given."""
    for pref in (Preference(weekdays=(6,)), Preference(after=time(19), windows=(Window(time(19)),))):
        found = proposal.find(practice, pref, NOW, frozenset())
        assert found.nearest and found.closed and len(found.slots) == 3


# -- the context as stored --------------------------------------------------------------------
def test_context_with_every_new_field_round_trips() -> None:
    """Patient, relation, intent, lookup, target and a constrained preference survive the store."""
    start = datetime(2026, 3, 5, 15, 0, tzinfo=PARIS)
    ctx = Context(
        first_name="Jean", last_name="Dupont", intent="cancel", patient_first="Inès", patient_last="Brossard",
        relation="fille", lookup=Lookup(weekday=3, at=time(15), patient="Inès Brossard"),
        target=BookingRef("b1", Slot(start, start + timedelta(minutes=30)), "Inès Brossard"),
        preference=Preference("morning", not_weekdays=(0,), windows=(Window(time(9), time(11)),)),
    )
    assert context_from_json(context_to_json(ctx)) == ctx


def test_first_wave_context_still_loads() -> None:
    """A context stored before these fields existed loads with them empty."""
    old = json.dumps({
        "first_name": "Jean", "last_name": "Dupont", "phone": None,
        "preference": {"period": "morning", "day": None, "after": None, "before": None},
        "proposed": [], "excluded": [], "chosen": None, "fails": {"name": 1}, "booking_retries": 0,
        "booked": None, "found": [], "modifying": None, "slots_message": None,
    })
    ctx = context_from_json(old)
    assert ctx.full_name == "Jean Dupont" and ctx.preference == Preference("morning")
    assert (ctx.patient_name, ctx.relation, ctx.lookup, ctx.target, ctx.intent) == ("", None, None, None, None)


# -- the practice setting ------------------------------------------------------------------------
def _practice_with(tmp_path: Path, security: str) -> Path:
    example = Path(__file__).resolve().parents[2] / "service" / "practice.example.toml"
    text = example.read_text("utf-8")
    text = text[: text.index("[security]")] + security
    path = tmp_path / "practice.toml"
    path.write_text(text, "utf-8")
    return path


def test_cancel_from_other_number_is_off_by_default(tmp_path: Path) -> None:
    """The example practice, and a practice without [security], do not allow it."""
    assert load_practice(None).cancel_from_other_number is False
    assert load_practice(_practice_with(tmp_path, "")).cancel_from_other_number is False


def test_cancel_from_other_number_opt_in_is_read(tmp_path: Path) -> None:
    """``[security] cancel_from_other_number = true`` turns it on."""
    path = _practice_with(tmp_path, "[security]\ncancel_from_other_number = true\n")
    assert load_practice(path).cancel_from_other_number is True


@pytest.mark.parametrize(("security", "message"), [
    ("[security]\ncancel_from_other_number = \"yes\"\n", "security.cancel_from_other_number"),
    ("[security]\ncancel_from_other_numbers = true\n", "security.cancel_from_other_numbers: unknown setting"),
])
def test_a_bad_security_setting_stops_start_up(tmp_path: Path, security: str, message: str) -> None:
    """A wrong type or an unknown key is a start-up error naming the setting."""
    with pytest.raises(ConfigError, match=message):
        load_practice(_practice_with(tmp_path, security))
    data = tomllib.loads(_practice_with(tmp_path, "").read_text("utf-8"))
    with pytest.raises(ConfigError, match=r"\[security\] must be a table"):
        parse_practice({**data, "security": 1})
