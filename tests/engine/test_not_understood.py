"""The engine reports every caller turn it could not use (``NotUnderstood``), and only those."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.config import load_practice, load_settings
from service.engine.events import NotUnderstood
from service.engine.model import CallerSaid, Conversation
from service.engine.states import Channel, MissField, MissReason, State
from service.engine.step import step
from tests.support import NOW

BOOK = "bonjour je voudrais prendre rendez-vous"
SETTINGS = load_settings({})
PRACTICE = load_practice(SETTINGS.practice_file)
S, F, R = State, MissField, MissReason


def misses(*texts: str, phone: str | None = "+33612345678") -> list[list[NotUnderstood]]:
    """The NotUnderstood events of each caller turn of one text conversation."""
    conv = Conversation.new("c", Channel.TEXT, NOW, caller_phone=phone)
    out = []
    for i, text in enumerate(texts):
        decision = step(conv, CallerSaid(text), NOW + timedelta(seconds=20 * i), SETTINGS.limits[Channel.TEXT],
                        PRACTICE)
        conv = decision.conversation
        out.append([e for e in decision.events if isinstance(e, NotUnderstood)])
    return out


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        ((BOOK, "je sais pas"), NotUnderstood(S.QUALIF_NAME, F.NAME, R.NOTHING_FOUND, 2)),
        ((BOOK, "c'est privé", "non je refuse"), NotUnderstood(S.QUALIF_NAME, F.NAME, R.REFUSED, 3)),
        ((BOOK, "Alice", "Alice"), NotUnderstood(S.QUALIF_NAME, F.NAME, R.FIRST_NAME_ONLY, 3)),
        ((BOOK, "Jean Dupont", "bof"), NotUnderstood(S.QUALIF_PREF, F.PREFERENCE, R.NOTHING_FOUND, 3)),
        ((BOOK, "Jean Dupont", "le matin", "oui"), NotUnderstood(S.WAIT_CONFIRM, F.SLOT_CHOICE, R.AMBIGUOUS, 4)),
        ((BOOK, "Jean Dupont", "le matin", "le cinquième"),
         NotUnderstood(S.WAIT_CONFIRM, F.SLOT_CHOICE, R.NOTHING_FOUND, 4)),
        (("blabla",), NotUnderstood(S.START, F.INTENT, R.NOTHING_FOUND, 1)),
        (("blabla", "tralala"), NotUnderstood(S.START, F.INTENT, R.NOTHING_FOUND, 2, S.INTENT_ROUTER)),
        (("blabla", "tralala", "xyz"), NotUnderstood(S.INTENT_ROUTER, F.MENU, R.NOTHING_FOUND, 3)),
        (("blabla", "tralala", "xyz", "xyz"),
         NotUnderstood(S.INTENT_ROUTER, F.MENU, R.NOTHING_FOUND, 4, S.TRANSFERRED)),
        ((BOOK, "je sais pas", "rien"),
         NotUnderstood(S.QUALIF_NAME, F.NAME, R.NOTHING_FOUND, 3, S.TRANSFERRED)),
    ],
)
def test_the_last_turn_is_reported_not_understood(texts: tuple[str, ...], expected: NotUnderstood) -> None:
    """The turn the engine could not use carries its state, field, reason, turn number and,
    at a recovery limit or the menu's end, where the call went."""
    assert misses(*texts)[-1] == [expected]


def test_understood_turns_and_fillers_report_nothing() -> None:
    """A booking answered one question at a time, a filler and a practical question are no miss."""
    turns = misses(BOOK, "euh", "Jean Dupont", "c'est où votre cabinet", "le matin", "le premier")
    assert turns == [[]] * 6
