"""Whole calls through the text API: every form of slot choice books the slot the caller meant;
asking to hear the slots again costs nothing; turning them down with a new wish proposes
slots for that wish."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.dialogue.calls import PHONE, asked_twice, drive
from tests.support import PARIS

OPENING = ("je voudrais un rendez-vous, c'est Jean Dupont", "l'après-midi")


def _starts(call: Any, n: int = 0) -> list[datetime]:
    return [datetime.fromisoformat(s).astimezone(PARIS) for s in call.events("SlotsSent")[n]["slot_starts"]]


@pytest.mark.parametrize(("said", "pick"), [
    ("le deuxième", lambda starts: starts[1]),
    ("oui, le troisième", lambda starts: starts[2]),
    ("pas le premier, le deuxième", lambda starts: starts[1]),
    ("celui de jeudi", lambda starts: next(s for s in starts if s.weekday() == 3)),
    ("le dernier", lambda starts: starts[-1]),
    ("2", lambda starts: starts[1]),
])
async def test_choice_books_the_slot_meant(make_live: Any, said: str, pick: Any) -> None:
    """An ordinal, a number, a weekday, "le dernier" or a corrected choice books that slot."""
    async with make_live() as live:
        call = await drive(live, "conv_choice", (*OPENING, said), caller_phone=PHONE)
        assert call.final["state"] == "CONFIRMED", call.answers
        assert call.booked_start() == pick(_starts(call))
        assert "au nom de Jean Dupont" in call.final["reply"]
        assert not asked_twice(call.path)


async def test_repeat_reads_the_same_slots_without_counting(make_live: Any) -> None:
    """"Vous pouvez répéter ?" reads the same three slots again: no new search, no recovery step."""
    async with make_live() as live:
        call = await drive(live, "conv_repeat", (*OPENING, "pardon, vous pouvez répéter ?", "le premier"),
                           caller_phone=PHONE)
        repeat = call.answers[2]
        assert repeat["state"] == "WAIT_CONFIRM" and repeat["reply"].startswith("Je répète")
        assert len(call.events("SlotsSent")) == 1 and call.events("RecoveryStepped") == []
        assert call.booked_start() == _starts(call)[0]


async def test_none_with_a_new_wish_proposes_for_that_wish(make_live: Any) -> None:
    """"Aucun, plutôt lundi" proposes Monday slots, none of the first three, and books one."""
    async with make_live() as live:
        call = await drive(live, "conv_none", (*OPENING, "aucun ne me va, plutôt lundi", "le premier"),
                           caller_phone=PHONE)
        first, second = _starts(call, 0), _starts(call, 1)
        assert not set(first) & set(second)
        assert all(s.weekday() == 0 for s in second)
        assert call.booked_start() == second[0] and call.final["state"] == "CONFIRMED"


async def test_new_preference_while_choosing_proposes_again(make_live: Any) -> None:
    """"Plutôt le matin" while afternoon slots are on the table proposes morning ones."""
    async with make_live() as live:
        call = await drive(live, "conv_switch", (*OPENING, "finalement plutôt le matin", "le deuxième"),
                           caller_phone=PHONE)
        assert all(s.hour < 12 for s in _starts(call, 1))
        assert call.booked_start() == _starts(call, 1)[1]


async def test_faq_then_choice_keeps_the_slots(make_live: Any) -> None:
    """A practical question while choosing is answered, the same slots stay, the choice books."""
    async with make_live() as live:
        call = await drive(live, "conv_faq_choice", (*OPENING, "c'est combien la consultation ?", "le troisième"),
                           caller_phone=PHONE)
        assert "30 euros" in call.answers[2]["reply"]
        assert len(call.events("SlotsSent")) == 1
        assert call.booked_start() == _starts(call)[2]
