"""The console's pure parts: French words for every declared value, masking of callers'
words, the periods and the chart's geometry, the inbox's grouping and export."""

from __future__ import annotations

import json
import typing
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from service import stats
from service.console import chart, french, masking, misses, overview, periods, transcript
from service.engine import events as ev
from service.engine.states import BookingResult, Channel, Field, Outcome
from telemetry import names as n

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 3, 9, 0, tzinfo=PARIS)


def test_every_declared_value_has_its_french_words() -> None:
    """Outcomes, causes, fields, channels, booking results and target rows: none is missing."""
    assert {o.value for o in Outcome} | {french.IN_PROGRESS} == set(french.OUTCOMES)
    assert set(stats.Cause) == set(french.CAUSES)
    assert {f.value for f in Field} == set(french.FIELDS)
    assert {c.value for c in Channel} == set(french.CHANNELS)
    assert {r.value for r in BookingResult} == set(french.BOOKING_RESULTS)
    assert [t.key for t in stats.TARGETS] == list(french.TARGETS)


def test_every_engine_event_has_a_note_on_the_conversation_page() -> None:
    """A new event kind gets its French note here (an unknown one still shows, raw)."""
    kinds = {cls.__name__ for cls in typing.get_args(ev.Event)}
    assert kinds == set(transcript.NOTES)
    unknown = transcript.note("SomethingNew", {"x": 1}, PARIS)
    assert unknown is not None and unknown.text == 'SomethingNew {"x": 1}'


@pytest.mark.parametrize(("text", "state", "names", "masked"), [
    ("je m'appelle Jean Dupont", "QUALIF_NAME", (), "je m'appelle J*** D***"),
    ("euh c'est nguyen-ba", "QUALIF_NAME", (), "euh c'est n***"),
    ("c'est pour ma fille Inès Brossard", "START", (), "c'est pour m*** f*** I*** B***"),
    ("mon numéro c'est le 06 12 34 56 78", "QUALIF_PHONE", (), "mon numéro c'est le ## ## ## ## ##"),
    ("zéro six douze trente-quatre", "QUALIF_PHONE", (), "z*** s*** d*** t***"),
    ("rappelez le 0612345678 svp", "WAIT_CONFIRM", (), "rappelez le ########## svp"),
    ("le deuxième pour dupont", "WAIT_CONFIRM", ("Jean Dupont",), "le deuxième pour d***"),
    ("pas le premier, le troisième", "WAIT_CONFIRM", (), "pas le premier, le troisième"),
    ("plutôt mardi après-midi", "QUALIF_PREF", (), "plutôt mardi après-midi"),
    ("Le matin, Martin voudrait le 12", "QUALIF_PREF", (), "Le matin, M*** voudrait le 12"),
])
def test_callers_words_are_masked(text: str, state: str, names: tuple[str, ...], masked: str) -> None:
    """Names (found, known, capitalised, or anything answering the name question) and phone
    numbers (long digit runs, anything answering the number question) are hidden."""
    assert masking.mask_utterance(text, state, NOW, names) == masked


def test_today_starts_at_midnight_where_the_practice_is() -> None:
    """``today`` is since local midnight, hourly; ``7d`` is the stats' 7-day window, daily."""
    now = datetime(2026, 3, 29, 10, 30, tzinfo=UTC)  # the day clocks go forward in Paris
    today = periods.period("today", now, PARIS)
    assert today.since == datetime(2026, 3, 29, 0, 0, tzinfo=PARIS) and today.hourly
    hours = periods.buckets(today, PARIS)
    assert [h.hour for h in hours][:3] == [0, 1, 3] and hours[-1].hour == 12  # 02:00 does not exist
    week = periods.period("7d", now, PARIS)
    assert week.window == stats.parse_window("7d") and not week.hourly
    assert periods.buckets(week, PARIS)[0].date() == date(2026, 3, 22)
    assert periods.period("anything", now, PARIS).key == periods.TODAY


def test_the_chart_draws_rates_with_gaps_and_the_declared_lines() -> None:
    """A bucket without conversations breaks the line; target and floor come from names.py."""
    points = [chart.Point("9h", 4, 3, 75.0), chart.Point("10h", 0, 0, None), chart.Point("11h", 2, 1, 50.0),
              chart.Point("12h", 2, 2, 100.0)]
    drawn = chart.conversion_chart(points)
    assert len(drawn.paths) == 2 and drawn.paths[1].count("L") == 1
    assert drawn.dots[0].title == "9h : 75 % (3/4)"
    guides = {g.kind: g for g in drawn.guides}
    plot = drawn.height - drawn.top - drawn.bottom
    assert guides["target"].y == round(drawn.top + plot * (1 - n.CONVERSION_TARGET), 1)
    assert guides["floor"].y == round(drawn.top + plot * (1 - n.CONVERSION_FLOOR), 1)
    assert len(drawn.bars) == 3


def _timeline() -> dict[str, typing.Any]:
    at = "2026-03-03T08:00:00+00:00"
    turn = {"interrupted": False, "action": None, "trace_id": None, "at": at}
    return {
        "conv_id": "c1", "channel": "text", "state": "QUALIF_PHONE", "outcome": None, "turn_count": 3,
        "created_at": at, "last_seen_at": at, "caller_phone": None, "call_report": None,
        "bookings": [{"id": "b", "name": "Jean Dupont", "slot_start": at, "cancelled_at": None}],
        "turns": [
            {**turn, "turn": 1, "text": "euh", "reply": "Votre nom ?", "state_before": "QUALIF_NAME",
             "state_after": "QUALIF_NAME"},
            {**turn, "turn": 2, "text": "le 06 12", "reply": "Pardon ?", "state_before": "QUALIF_PHONE",
             "state_after": "QUALIF_PHONE"},
            {**turn, "turn": 3, "text": "Dupont au 06 12", "reply": "Pardon ?", "state_before": "QUALIF_PHONE",
             "state_after": "QUALIF_PHONE"},
        ],
        "events": [
            {"at": at, "kind": "TurnReceived", "data": {"state": "QUALIF_NAME", "turn": 0}},
            {"at": at, "kind": "FillerDetected", "data": {"state": "QUALIF_NAME"}},
            {"at": at, "kind": "TurnReceived", "data": {"state": "QUALIF_PHONE", "turn": 1}},
            {"at": at, "kind": "RecoveryStepped", "data": {"field": "phone", "attempt": 1}},
            {"at": at, "kind": "TurnReceived", "data": {"state": "QUALIF_PHONE", "turn": 2}},
            {"at": at, "kind": "RecoveryLimitReached", "data": {"field": "phone", "attempts": 3,
                                                               "to_state": "TRANSFERRED"}},
        ],
    }


def test_misses_are_grouped_by_state_and_field_and_exported_once_each() -> None:
    """Each miss belongs to the turn after its TurnReceived; the export drops duplicates."""
    found = misses.misses_of(_timeline(), PARIS)
    assert [(m.state, m.field, m.kind) for m in found] == [
        ("QUALIF_NAME", "filler", "FillerDetected"),
        ("QUALIF_PHONE", "phone", "RecoveryStepped"),
        ("QUALIF_PHONE", "phone", "RecoveryLimitReached"),
    ]
    assert found[2].text == "D*** au ## ##"  # the booked name is known: hidden anywhere
    groups = misses.groups(found + found)
    assert [(g.state, g.field, g.steps, g.limits, g.fillers) for g in groups] == [
        ("QUALIF_PHONE", "phone", 2, 2, 0), ("QUALIF_NAME", "filler", 0, 0, 2),
    ]
    lines = [json.loads(line) for line in misses.understand_lines(found + found).splitlines()]
    assert lines[0] == {"task": "turn", "text": "euh",
                        "context": {"state": "QUALIF_NAME", "now": "2026-03-03T09:00:00+01:00"}, "expected": None}
    assert len(lines) == 3


def test_a_turn_shows_its_own_notes_not_its_own_state_change() -> None:
    """Notes land under their turn; the turn's state change is already its header."""
    tl = _timeline()
    tl["events"].insert(1, {"at": tl["turns"][0]["at"], "kind": "StateChanged",
                            "data": {"from_state": "QUALIF_NAME", "to_state": "QUALIF_NAME"}})
    conv = transcript.conversation(tl, PARIS)
    assert [[x.kind for x in t.notes] for t in conv.turns] == [["filler"], ["recovery"], ["recovery"]]
    assert conv.live and conv.recovery_prompts == 1 and conv.bookings[0].name == "Jean Dupont"


def test_the_chart_buckets_each_conversation_by_when_it_was_last_seen() -> None:
    """Hourly buckets today, each with the stats' own conversion rate; empty hours have none."""
    now = datetime(2026, 3, 3, 11, 30, tzinfo=PARIS)
    today = periods.period("today", now, PARIS)

    def seen(conv_id: str, hour: int, minute: int, outcome: str) -> stats.CallFacts:
        return stats.CallFacts(conv_id, outcome=outcome, last_seen_at=datetime(2026, 3, 3, hour, minute, tzinfo=PARIS))

    facts = [seen("a", 9, 10, "confirmed"), seen("b", 9, 50, "abandoned"), seen("c", 11, 5, "confirmed")]
    points = {p.label: p for p in overview.series(facts, today, PARIS)}
    assert next(iter(points)) == "0h" and list(points)[-1] == "11h"
    assert (points["9h"].total, points["9h"].rate) == (2, 50.0)
    assert (points["10h"].total, points["10h"].rate) == (0, None)
    assert (points["11h"].total, points["11h"].rate) == (1, 100.0)
