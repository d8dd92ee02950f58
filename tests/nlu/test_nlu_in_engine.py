"""The NLU as the engine uses it: a slot choice inside a yes, a preference while slots are on the table."""

from __future__ import annotations

import pytest

from service.engine.model import Book, CallerSaid, Conversation, Limits
from service.engine.practice import Practice
from service.engine.states import Channel, State
from service.engine.step import step
from tests.support import NOW

PHONE = "+33612345678"


def at_slots(limits: Limits, practice: Practice) -> Conversation:
    """A conversation that has just been proposed three slots."""
    conv = Conversation.new("conv_nlu", Channel.TEXT, NOW, caller_phone=PHONE)
    for text in ("bonjour euh je voudrais un rendez-vous", "c'est jean dupont", "pas de préférence"):
        conv = step(conv, CallerSaid(text), NOW, limits, practice).conversation
    assert conv.state is State.WAIT_CONFIRM
    assert len(conv.context.proposed) == 3
    return conv


@pytest.mark.parametrize(("text", "index"), [
    ("oui mais plutôt le deuxième", 1),
    ("pas le premier le deuxième", 1),
    ("euh le troisième s'il vous plaît", 2),
    ("2", 1),
    ("non pardon le premier", 0),
])
def test_choice_inside_other_words_books_that_slot(text: str, index: int, text_limits: Limits,
                                                    practice: Practice) -> None:
    """"Oui mais plutôt le deuxième" is the second slot, not a yes to be asked again."""
    conv = at_slots(text_limits, practice)
    decision = step(conv, CallerSaid(text), NOW, text_limits, practice)
    assert isinstance(decision.action, Book)
    assert decision.action.slot == conv.context.proposed[index]
    assert decision.action.slot_idx == index + 1  # the engine logs slots 1-based


@pytest.mark.parametrize("text", ["oui", "d'accord", "le premier ou le deuxième", "euh"])
def test_no_choice_stays_on_the_slots(text: str, text_limits: Limits, practice: Practice) -> None:
    """A plain yes, an undecided or a filler answer asks again rather than booking."""
    conv = at_slots(text_limits, practice)
    decision = step(conv, CallerSaid(text), NOW, text_limits, practice)
    assert decision.action is None
    assert decision.conversation.state is State.WAIT_CONFIRM
