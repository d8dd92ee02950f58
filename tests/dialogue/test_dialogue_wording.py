"""What the caller hears: the move flow says how it found the appointment (by the number
calling), and a bare "oui" to a question asked again is the caller getting ready to answer,
never a failure that ends in a transfer. Direct ``step()`` tests, then one HTTP call each."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from service.engine import replies
from service.engine.events import RecoveryLimitReached, RecoveryStepped
from service.engine.model import (
    Book,
    BookingRef,
    BookingsFound,
    CallerSaid,
    Conversation,
    Decision,
    FindBookings,
    Limits,
    Slot,
)
from service.engine.practice import Practice
from service.engine.states import Channel, Field, State
from service.engine.step import step
from tests.support import NOW, PARIS

PHONE = "+33612345678"
S = State
FOUND_BY_NUMBER = "au numéro qui appelle"


def new(phone: str | None = PHONE, channel: Channel = Channel.VOICE) -> Conversation:
    return Conversation.new("conv_w", channel, NOW, caller_phone=phone)


def say(conv: Conversation, text: str, limits: Limits, practice: Practice) -> Decision:
    return step(conv, CallerSaid(text), NOW, limits, practice)


def talk(conv: Conversation, texts: list[str], limits: Limits, practice: Practice) -> Decision:
    decision = None
    for text in texts:
        decision = say(conv, text, limits, practice)
        conv = decision.conversation
    assert decision is not None
    return decision


def ref(booking_id: str, day: int, hour: int) -> BookingRef:
    start = datetime(2026, 3, day, hour, tzinfo=PARIS)
    return BookingRef(booking_id, Slot(start, start + timedelta(minutes=30)), "Jean Dupont")


def looked_up(text: str, found: tuple[BookingRef, ...], limits: Limits, practice: Practice) -> Decision:
    """The caller asks to move; the store answers the calling number's appointments."""
    asked = say(new(), text, limits, practice)
    assert isinstance(asked.action, FindBookings) and asked.action.phone == PHONE
    return step(asked.conversation, BookingsFound(found), NOW, limits, practice)


# -- the move flow says how it found the appointment -------------------------------------------
def test_move_says_it_found_the_appointment_by_the_calling_number(voice_limits: Limits, practice: Practice) -> None:
    """One appointment under the number: "J'ai trouvé votre rendez-vous du mardi 10 mars à
    10h, au numéro qui appelle. Souhaitez-vous le déplacer ?"."""
    decision = looked_up("je voudrais déplacer mon rendez-vous", (ref("a", 10, 10),), voice_limits, practice)
    assert decision.conversation.state is S.MODIFY_CONFIRM
    assert decision.reply == replies.MODIFY_FOUND.format(slot="mardi 10 mars à 10h")
    assert decision.reply.startswith("J'ai trouvé votre rendez-vous du mardi 10 mars à 10h, au numéro qui appelle.")


def test_move_with_a_new_wish_says_how_it_found_it_before_the_slots(voice_limits: Limits, practice: Practice) -> None:
    """The new day already said: the slots come after the same sentence."""
    decision = looked_up("je voudrais déplacer mon rendez-vous à jeudi", (ref("a", 10, 10),), voice_limits, practice)
    assert decision.conversation.state is S.WAIT_CONFIRM
    assert decision.reply.startswith(
        "J'ai trouvé votre rendez-vous du mardi 10 mars à 10h, au numéro qui appelle. Pour le déplacer"
    )


def test_move_among_several_says_where_they_were_found(voice_limits: Limits, practice: Practice) -> None:
    """Two appointments: both are listed as found under the calling number; once one is
    picked, the question is not prefixed again."""
    found = looked_up("je voudrais déplacer mon rendez-vous", (ref("a", 10, 10), ref("b", 12, 15)),
                      voice_limits, practice)
    assert found.conversation.state is S.MODIFY_IDENTIFY
    assert found.reply.startswith(f"J'ai trouvé deux rendez-vous {FOUND_BY_NUMBER} : mardi 10 à 10h et jeudi 12 à 15h")
    picked = say(found.conversation, "celui de jeudi", voice_limits, practice)
    assert picked.conversation.state is S.MODIFY_CONFIRM
    assert picked.reply == replies.MODIFY_CONFIRM.format(slot="jeudi 12 mars à 15h")


def test_cancel_wording_is_unchanged(voice_limits: Limits, practice: Practice) -> None:
    """Cancelling keeps its read-back question."""
    asked = say(new(), "je voudrais annuler mon rendez-vous", voice_limits, practice)
    decision = step(asked.conversation, BookingsFound((ref("a", 10, 10),)), NOW, voice_limits, practice)
    assert decision.reply == replies.CANCEL_CONFIRM.format(slot="mardi 10 mars à 10h")


# -- "oui" to a re-ask is not a transfer -------------------------------------------------------
def counted(decision: Decision) -> list[Any]:
    return [e for e in decision.events if isinstance(e, RecoveryStepped | RecoveryLimitReached)]


def test_yes_to_the_phone_re_ask_invites_the_number(voice_limits: Limits, practice: Practice) -> None:
    """Withheld number: "Pouvez-vous le redire ?" — "Oui." is not a failed number: invited
    again without counting, twice "oui" still does not transfer, then the number books."""
    slots = talk(new(None), ["je voudrais un rendez-vous", "Jean Dupont", "le matin"], voice_limits, practice)
    asked = talk(slots.conversation, ["le premier", "euh 12"], voice_limits, practice)
    assert asked.conversation.state is S.QUALIF_PHONE and asked.reply == replies.CLARIFY[Field.PHONE][0]
    ack = say(asked.conversation, "oui", voice_limits, practice)
    assert ack.reply == replies.REASK_ACK[Field.PHONE] and counted(ack) == []
    assert ack.conversation.state is S.QUALIF_PHONE
    again = say(ack.conversation, "oui", voice_limits, practice)
    assert again.conversation.state is S.QUALIF_PHONE
    booked = say(again.conversation, "06 12 34 56 78", voice_limits, practice)
    assert isinstance(booked.action, Book) and booked.action.phone == PHONE


def test_yes_to_the_name_re_ask_continues_with_the_name(voice_limits: Limits, practice: Practice) -> None:
    """"Pardon, pouvez-vous me le redire ?" — "Oui." — "Jean Dupont": the preference comes next."""
    reasked = talk(new(), ["je voudrais un rendez-vous", "oui"], voice_limits, practice)
    assert reasked.reply == replies.CLARIFY[Field.NAME][0]
    ack = say(reasked.conversation, "oui", voice_limits, practice)
    assert ack.conversation.state is S.QUALIF_NAME and ack.reply == replies.REASK_ACK[Field.NAME]
    assert counted(ack) == []
    named = say(ack.conversation, "Jean Dupont", voice_limits, practice)
    assert named.conversation.state is S.QUALIF_PREF


def test_yes_to_the_slot_re_ask_keeps_the_slots(voice_limits: Limits, practice: Practice) -> None:
    """Two misunderstood choices, then "oui", "oui": the slots stay on the table; "le premier" books."""
    reasked = talk(new(), ["je voudrais un rendez-vous", "Jean Dupont", "le matin", "blabla machin", "blabla"],
                   voice_limits, practice)
    assert reasked.conversation.state is S.WAIT_CONFIRM
    decision = talk(reasked.conversation, ["oui", "oui"], voice_limits, practice)
    assert decision.conversation.state is S.WAIT_CONFIRM
    assert decision.reply == replies.REASK_ACK[Field.SLOT_CHOICE]
    assert isinstance(say(decision.conversation, "le premier", voice_limits, practice).action, Book)


def test_yes_to_the_menu_re_ask_keeps_the_menu(voice_limits: Limits, practice: Practice) -> None:
    """Menu, "oui" (not a choice: said again), "oui" (the re-ask acknowledged), "1" books."""
    menu = talk(new(), ["zzz", "zzz"], voice_limits, practice)
    assert menu.conversation.state is S.INTENT_ROUTER
    reasked = say(menu.conversation, "oui", voice_limits, practice)
    assert reasked.reply == replies.MENU_SHORT
    ack = say(reasked.conversation, "oui", voice_limits, practice)
    assert ack.conversation.state is S.INTENT_ROUTER and ack.reply == replies.REASK_ACK_MENU
    assert say(ack.conversation, "1", voice_limits, practice).conversation.state is S.QUALIF_NAME


def test_yes_to_which_appointment_re_ask_keeps_asking(voice_limits: Limits, practice: Practice) -> None:
    """"Pardon, lequel : …" — "Oui." — "celui de mardi": that one is read back."""
    found = looked_up("je voudrais déplacer mon rendez-vous", (ref("a", 10, 10), ref("b", 12, 15)),
                      voice_limits, practice)
    reasked = say(found.conversation, "blabla machin", voice_limits, practice)
    assert reasked.conversation.state is S.MODIFY_IDENTIFY and "Pardon, lequel" in reasked.reply
    ack = say(reasked.conversation, "oui", voice_limits, practice)
    assert ack.conversation.state is S.MODIFY_IDENTIFY and ack.reply.startswith("Je vous écoute : lequel")
    assert counted(ack) == []
    assert say(ack.conversation, "celui de mardi", voice_limits, practice).conversation.state is S.MODIFY_CONFIRM


def test_yes_without_end_is_still_bounded(voice_limits: Limits, practice: Practice) -> None:
    """A caller who only ever says "oui" is handed to the practice in the end."""
    decision = talk(new(None), ["je voudrais un rendez-vous", "Jean Dupont", "le matin", "le premier"],
                    voice_limits, practice)
    conv = decision.conversation
    for _ in range(12):
        decision = say(conv, "oui", voice_limits, practice)
        conv = decision.conversation
        if conv.state is S.TRANSFERRED:
            break
    assert conv.state is S.TRANSFERRED


# -- through HTTP ------------------------------------------------------------------------------
async def test_http_move_says_how_it_found_the_appointment(make_live: Any) -> None:
    """A booked caller calls back to move it: the reply names the appointment and the number."""
    async with make_live() as live:
        extra = {"caller_phone": PHONE}
        for text in ("je voudrais un rendez-vous", "Jean Dupont", "pas de préférence"):
            await live.say("conv_book", text, **extra)
        booked = await live.say("conv_book", "le premier", **extra)
        assert booked["state"] == "CONFIRMED"
        answer = await live.say("conv_move", "je voudrais déplacer mon rendez-vous", **extra)
        assert answer["state"] == "MODIFY_CONFIRM"
        assert answer["reply"].startswith("J'ai trouvé votre rendez-vous du ") and FOUND_BY_NUMBER in answer["reply"]
        slot = booked["reply"].removeprefix("C'est noté : ").split(", au nom")[0]
        assert f"du {slot}, {FOUND_BY_NUMBER}" in answer["reply"]


async def test_http_yes_to_a_re_ask_is_not_a_transfer(make_live: Any) -> None:
    """Text API, number not given: a misheard number, "oui", "oui", then the number confirms."""
    async with make_live() as live:
        for text in ("je voudrais un rendez-vous", "Jean Dupont", "pas de préférence", "le premier", "euh 12"):
            answer = await live.say("conv_oui", text)
        assert answer["state"] == "QUALIF_PHONE"
        for _ in range(2):
            answer = await live.say("conv_oui", "oui")
            assert answer["state"] == "QUALIF_PHONE", answer
        answer = await live.say("conv_oui", "06 12 34 56 78")
        assert answer["state"] == "CONFIRMED", answer
