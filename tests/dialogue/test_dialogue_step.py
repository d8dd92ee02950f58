"""The pure ``step()`` for each behaviour of the dialogue: what it says, where it goes, which
events and actions it returns. No store, no HTTP: actions are answered by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

import pytest

from service.engine import replies
from service.engine.events import FaqAnswered, RecoveryStepped, SlotsSent, StateChanged
from service.engine.model import (
    Book,
    BookingAt,
    BookingDone,
    BookingRef,
    BookingsFound,
    CallerSaid,
    CancelBooking,
    Conversation,
    Decision,
    FindBookingAt,
    FindBookings,
    Limits,
    Slot,
)
from service.engine.practice import Practice
from service.engine.states import BookingResult, Channel, Field, State
from service.engine.step import needs_calendar, step
from service.engine.table import SKIPS, TRANSITIONS, check
from tests.support import NOW, PARIS

PHONE = "+33612345678"
S = State


def say(conv: Conversation, text: str, limits: Limits, practice: Practice) -> Decision:
    """One caller turn, no action answered."""
    return step(conv, CallerSaid(text), NOW, limits, practice)


def talk(conv: Conversation, texts: list[str], limits: Limits, practice: Practice) -> Conversation:
    """Several caller turns; bookings succeed."""
    for text in texts:
        decision = say(conv, text, limits, practice)
        if isinstance(decision.action, Book):
            decision = step(decision.conversation, BookingDone(BookingResult.SUCCESS, "b1"), NOW, limits, practice)
        conv = decision.conversation
    return conv


def new(phone: str | None = PHONE) -> Conversation:
    return Conversation.new("conv_s", Channel.TEXT, NOW, caller_phone=phone)


def slots_of(decision: Decision) -> tuple[datetime, ...]:
    sent = [e for e in decision.events if isinstance(e, SlotsSent)]
    assert sent, decision.reply
    return tuple(s.astimezone(PARIS) for s in sent[-1].slot_starts)


def local(hour: int, day: int = 5, minute: int = 0) -> Slot:
    start = datetime(2026, 3, day, hour, minute, tzinfo=PARIS)
    return Slot(start, start + timedelta(minutes=30))


# -- the table ---------------------------------------------------------------------------
def test_skip_transitions_are_in_the_table_and_it_still_checks() -> None:
    """Every "skip what is known" transition is allowed, and the table keeps its invariants."""
    check(TRANSITIONS)
    for source, target in SKIPS:
        assert target in TRANSITIONS[source], (source, target)


def test_calendar_is_loaded_wherever_slots_may_come() -> None:
    """An opening may be answered with slots: every live state loads the calendar."""
    assert needs_calendar(new()) and not needs_calendar(replace(new(), state=S.CONFIRMED))


# -- information given early ------------------------------------------------------------
def test_opening_with_everything_proposes_slots(text_limits: Limits, practice: Practice) -> None:
    """Intent, name and preference in the opening: START → WAIT_CONFIRM, the slots honour it."""
    decision = say(new(), "Bonjour, je m'appelle Jean Dupont, je voudrais un rendez-vous jeudi après-midi",
                   text_limits, practice)
    assert decision.conversation.state is S.WAIT_CONFIRM
    assert StateChanged(S.START, S.WAIT_CONFIRM, NOW) in decision.events
    assert all(s.weekday() == 3 and s.hour >= 12 for s in slots_of(decision))
    assert decision.conversation.context.last_name == "Dupont"


def test_opening_with_intent_and_name_asks_the_preference(text_limits: Limits, practice: Practice) -> None:
    """Intent and name: START → QUALIF_PREF, greeting the caller by name."""
    decision = say(new(), "je voudrais prendre rendez-vous, c'est Jean Dupont", text_limits, practice)
    assert decision.conversation.state is S.QUALIF_PREF and "Jean" in decision.reply


def test_name_and_preference_together_propose_slots(text_limits: Limits, practice: Practice) -> None:
    """QUALIF_NAME → WAIT_CONFIRM when the name comes with the preference."""
    conv = talk(new(), ["je voudrais un rendez-vous"], text_limits, practice)
    decision = say(conv, "Jean Dupont, le matin de préférence", text_limits, practice)
    assert decision.conversation.state is S.WAIT_CONFIRM
    assert all(s.hour < 12 for s in slots_of(decision))


def test_preference_given_early_is_not_asked(text_limits: Limits, practice: Practice) -> None:
    """A preference said in the opening skips QUALIF_PREF once the name comes."""
    conv = talk(new(), ["je voudrais un rendez-vous vendredi"], text_limits, practice)
    assert conv.state is S.QUALIF_NAME
    decision = say(conv, "Jean Dupont", text_limits, practice)
    assert decision.conversation.state is S.WAIT_CONFIRM
    assert all(s.weekday() == 4 for s in slots_of(decision))


# -- corrections, exclusions, windows ------------------------------------------------------
def test_new_day_while_choosing_replaces_the_old(text_limits: Limits, practice: Practice) -> None:
    """"Plutôt samedi" in WAIT_CONFIRM after "jeudi": new slots, all on Saturday."""
    conv = talk(new(), ["je voudrais un rendez-vous jeudi, c'est Jean Dupont"], text_limits, practice)
    decision = say(conv, "plutôt samedi finalement", text_limits, practice)
    assert all(s.weekday() == 5 for s in slots_of(decision))


def test_exclusions_accumulate_across_turns(text_limits: Limits, practice: Practice) -> None:
    """"Sauf mardi" then "et pas mercredi non plus": neither day is proposed again."""
    conv = talk(new(), ["je voudrais un rendez-vous, c'est Jean Dupont", "n'importe quand sauf le mardi"],
                text_limits, practice)
    decision = say(conv, "aucun, et pas le mercredi non plus", text_limits, practice)
    assert all(s.weekday() not in (1, 2) for s in slots_of(decision))
    pref = decision.conversation.context.preference
    assert pref is not None and set(pref.not_weekdays) >= {1, 2}


def test_window_outside_opening_hours_is_said_with_the_nearest(text_limits: Limits, practice: Practice) -> None:
    """"Après 19h": the practice closes before, so the nearest slots come with the reason."""
    conv = talk(new(), ["je voudrais un rendez-vous, c'est Jean Dupont"], text_limits, practice)
    decision = say(conv, "après 19h", text_limits, practice)
    assert decision.reply.startswith(replies.SLOTS_INTRO_CLOSED[0])
    starts = slots_of(decision)
    assert len(starts) == 3 and all(s.hour >= 17 for s in starts)


# -- names --------------------------------------------------------------------------------
def test_refusal_is_explained_once_then_counted(text_limits: Limits, practice: Practice) -> None:
    """A first refusal hears why the name is needed, uncounted; the next one counts."""
    conv = talk(new(), ["je voudrais un rendez-vous"], text_limits, practice)
    first = say(conv, "c'est privé", text_limits, practice)
    assert replies.NAME_WHY in first.reply and not any(isinstance(e, RecoveryStepped) for e in first.events)
    second = say(first.conversation, "non, je ne veux pas le dire", text_limits, practice)
    assert RecoveryStepped(Field.NAME, 1) in second.events
    assert second.conversation.state is S.QUALIF_NAME


def test_first_name_alone_asks_the_last_name(text_limits: Limits, practice: Practice) -> None:
    """"Alice" → "Alice comment ?" (no failure counted), then "Martin" completes it."""
    conv = talk(new(), ["je voudrais un rendez-vous"], text_limits, practice)
    first = say(conv, "Alice", text_limits, practice)
    assert first.conversation.state is S.QUALIF_NAME and "Alice" in first.reply
    assert not any(isinstance(e, RecoveryStepped) for e in first.events)
    second = say(first.conversation, "Martin", text_limits, practice)
    assert second.conversation.state is S.QUALIF_PREF
    assert second.conversation.context.full_name == "Alice Martin"


def test_a_word_surname_is_a_name_not_a_question(text_limits: Limits, practice: Practice) -> None:
    """"Prix" answering the name question is a surname, never the price FAQ."""
    conv = talk(new(), ["je voudrais un rendez-vous"], text_limits, practice)
    decision = say(conv, "Prix", text_limits, practice)
    assert not any(isinstance(e, FaqAnswered) for e in decision.events)
    assert decision.conversation.context.last_name == "Prix"


def test_read_back_elides_before_a_vowel(text_limits: Limits, practice: Practice) -> None:
    """"au nom d'Alice Martin" (elision), with the day, the date and the time."""
    conv = talk(new(), ["je voudrais un rendez-vous, c'est Alice Martin", "jeudi à 15h"], text_limits, practice)
    decision = say(conv, "le premier", text_limits, practice)
    done = step(decision.conversation, BookingDone(BookingResult.SUCCESS, "b1"), NOW, text_limits, practice)
    assert "C'est noté : jeudi 5 mars à 15h, au nom d'Alice Martin." in done.reply


# -- someone else ---------------------------------------------------------------------------
def test_relation_without_a_name_asks_the_patients_name(text_limits: Limits, practice: Practice) -> None:
    """"Pour ma fille" → "Quel est le nom de votre fille ?", never a transfer."""
    decision = say(new(), "je voudrais un rendez-vous pour ma fille", text_limits, practice)
    assert decision.conversation.state is S.QUALIF_NAME
    assert decision.reply == "Quel est le nom de votre fille ?"


def test_someone_elses_appointment_is_in_their_name_with_the_callers_number(
    text_limits: Limits, practice: Practice,
) -> None:
    """The booking carries the patient's name and the caller's number; the read-back says "pour"."""
    conv = talk(new(), ["je voudrais un rendez-vous pour ma fille", "Inès Brossard", "le matin"], text_limits, practice)
    decision = say(conv, "le premier", text_limits, practice)
    assert isinstance(decision.action, Book)
    assert (decision.action.name, decision.action.phone) == ("Inès Brossard", PHONE)
    done = step(decision.conversation, BookingDone(BookingResult.SUCCESS, "b1"), NOW, text_limits, practice)
    assert ", pour Inès Brossard." in done.reply


def test_someone_else_is_not_a_transfer(text_limits: Limits, practice: Practice) -> None:
    """"C'est pour quelqu'un d'autre" asks the patient's name instead of handing over."""
    decision = say(new(), "bonjour c'est pour quelqu'un d'autre", text_limits, practice)
    assert decision.conversation.state is S.QUALIF_NAME and decision.directive is None


# -- slot choice ----------------------------------------------------------------------------
def test_repeat_reads_the_slots_again_without_counting(text_limits: Limits, practice: Practice) -> None:
    """"Vous pouvez répéter ?" reads the same slots again: no search, no recovery step."""
    conv = talk(new(), ["je voudrais un rendez-vous, c'est Jean Dupont", "le matin"], text_limits, practice)
    decision = say(conv, "vous pouvez répéter ?", text_limits, practice)
    assert decision.reply.startswith("Je répète")
    assert not any(isinstance(e, SlotsSent | RecoveryStepped) for e in decision.events)
    assert decision.conversation.context.proposed == conv.context.proposed


# -- cancel and move ------------------------------------------------------------------------
def ref(booking_id: str, slot: Slot, name: str = "Jean Dupont") -> BookingRef:
    return BookingRef(booking_id, slot, name)


def test_withheld_number_is_transferred_without_any_lookup(text_limits: Limits, practice: Practice) -> None:
    """No caller id (even with a number dictated earlier): no lookup, the security sentence."""
    conv = replace(new(None), context=replace(new(None).context, phone=PHONE, first_name="Jean", last_name="Dupont"))
    decision = say(conv, "je voudrais annuler mon rendez-vous", text_limits, practice)
    assert decision.action is None
    assert decision.conversation.state is S.TRANSFERRED and decision.reply == replies.SECURE_TRANSFER


def test_lookup_uses_only_the_verified_caller_id(text_limits: Limits, practice: Practice) -> None:
    """The caller id is looked up, never the dictated number, never a name."""
    conv = replace(new(), context=replace(new().context, phone="+33699999999"))
    decision = say(conv, "je voudrais annuler mon rendez-vous", text_limits, practice)
    assert decision.action == FindBookings(PHONE)


def test_no_appointment_under_the_number_reads_nothing(text_limits: Limits, practice: Practice) -> None:
    """An empty lookup transfers with the security sentence."""
    asked = say(new(), "je voudrais annuler mon rendez-vous", text_limits, practice)
    decision = step(asked.conversation, BookingsFound(()), NOW, text_limits, practice)
    assert decision.conversation.state is S.TRANSFERRED and decision.reply == replies.SECURE_TRANSFER


def test_two_appointments_are_listed_and_one_picked(text_limits: Limits, practice: Practice) -> None:
    """Two appointments: "Vous avez deux rendez-vous : … Lequel ?"; "celui de jeudi" picks it."""
    tuesday, thursday = ref("a", local(10, day=10)), ref("b", local(15, day=12))
    asked = say(new(), "je voudrais annuler mon rendez-vous", text_limits, practice)
    listed = step(asked.conversation, BookingsFound((tuesday, thursday)), NOW, text_limits, practice)
    assert listed.reply == "Vous avez deux rendez-vous : mardi 10 à 10h et jeudi 12 à 15h. Lequel ?"
    picked = say(listed.conversation, "celui de jeudi", text_limits, practice)
    assert picked.conversation.state is S.CANCEL_CONFIRM and "jeudi 12 mars à 15h" in picked.reply
    done = say(picked.conversation, "oui", text_limits, practice)
    assert done.action == CancelBooking("b")


@pytest.mark.parametrize(("said", "expected"), [
    ("je voudrais annuler mon rendez-vous du 12", "b"),
    ("je voudrais annuler mon rendez-vous de mardi", "a"),
    ("je voudrais annuler mon rendez-vous de 15h", "b"),
])
def test_the_opening_designates_one_appointment(said: str, expected: str, text_limits: Limits,
                                                 practice: Practice) -> None:
    """The day, the date or the time said with the request picks the appointment at once."""
    tuesday, thursday = ref("a", local(10, day=10)), ref("b", local(15, day=12))
    asked = say(new(), said, text_limits, practice)
    found = step(asked.conversation, BookingsFound((tuesday, thursday)), NOW, text_limits, practice)
    assert found.conversation.state is S.CANCEL_CONFIRM
    assert found.conversation.context.target is not None
    assert found.conversation.context.target.booking_id == expected


def test_opt_in_reads_nothing_before_an_exact_match(text_limits: Limits, practice: Practice) -> None:
    """Opt-in: the exact slot is looked up; another name there transfers with nothing read."""
    opted = replace(practice, cancel_from_other_number=True)
    conv = talk(new(None), ["je voudrais annuler mon rendez-vous", "Inès Brossard"], text_limits, opted)
    decision = say(conv, "jeudi 12 à 15h", text_limits, opted)
    start = datetime(2026, 3, 12, 15, 0, tzinfo=PARIS)
    assert decision.action == FindBookingAt(start)
    other = step(decision.conversation, BookingAt(ref("x", Slot(start, start), "Paul Leroy")), NOW, text_limits, opted)
    assert other.conversation.state is S.TRANSFERRED and "Leroy" not in other.reply and "15h" not in other.reply
    same = step(decision.conversation, BookingAt(ref("x", Slot(start, start), "Inès Brossard")), NOW, text_limits,
                opted)
    assert same.conversation.state is S.CANCEL_CONFIRM and "jeudi 12 mars à 15h" in same.reply


def test_opt_in_never_moves(text_limits: Limits, practice: Practice) -> None:
    """The opt-in covers cancellations only: a move from another number is transferred."""
    opted = replace(practice, cancel_from_other_number=True)
    decision = say(new(None), "je voudrais déplacer mon rendez-vous", text_limits, opted)
    assert decision.conversation.state is S.TRANSFERRED


def test_move_books_the_new_slot_replacing_the_old(text_limits: Limits, practice: Practice) -> None:
    """Moving: the new slot's Book replaces the old booking, under the patient's name."""
    old = ref("old", local(10, day=10), "Inès Brossard")
    asked = say(new(), "je voudrais déplacer mon rendez-vous", text_limits, practice)
    found = step(asked.conversation, BookingsFound((old,)), NOW, text_limits, practice)
    assert found.conversation.state is S.MODIFY_CONFIRM
    slots = say(found.conversation, "oui, plutôt vendredi après-midi", text_limits, practice)
    assert slots.conversation.state is S.WAIT_CONFIRM
    assert all(s.weekday() == 4 and s.hour >= 12 for s in slots_of(slots))
    chosen = say(slots.conversation, "le premier", text_limits, practice)
    assert isinstance(chosen.action, Book)
    assert (chosen.action.replaces, chosen.action.name, chosen.action.phone) == ("old", "Inès Brossard", PHONE)


def test_move_with_the_new_time_in_the_request_goes_to_slots(text_limits: Limits, practice: Practice) -> None:
    """MODIFY_IDENTIFY → WAIT_CONFIRM when the one appointment and the new wish are known."""
    old = ref("old", local(10, day=10))
    asked = say(new(), "je voudrais déplacer mon rendez-vous à jeudi après 16h", text_limits, practice)
    decision = step(asked.conversation, BookingsFound((old,)), NOW, text_limits, practice)
    assert decision.conversation.state is S.WAIT_CONFIRM
    assert decision.reply.startswith(
        "J'ai trouvé votre rendez-vous du mardi 10 mars à 10h, au numéro qui appelle. Pour le déplacer"
    )
    assert all(s.weekday() == 3 and s.time() >= time(16) for s in slots_of(decision))


def test_the_new_day_of_a_move_is_not_taken_for_another_appointment(text_limits: Limits,
                                                                      practice: Practice) -> None:
    """"Oui, plutôt vendredi" moves the Tuesday appointment to Friday, even with one on Friday."""
    tuesday, friday = ref("a", local(10, day=10)), ref("b", local(15, day=13))
    asked = say(new(), "je voudrais déplacer mon rendez-vous de mardi", text_limits, practice)
    found = step(asked.conversation, BookingsFound((tuesday, friday)), NOW, text_limits, practice)
    assert found.conversation.state is S.MODIFY_CONFIRM and "mardi 10 mars" in found.reply
    moved = say(found.conversation, "oui, plutôt vendredi", text_limits, practice)
    assert moved.conversation.state is S.WAIT_CONFIRM
    assert moved.conversation.context.modifying == tuesday
    assert all(s.weekday() == 4 for s in slots_of(moved))
