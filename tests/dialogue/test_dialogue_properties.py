"""Random callers against the pure engine with a store kept in memory: whatever they say, the
security and naming rules hold.

- appointments are looked up only by the verified caller id, never without one (unless the
  practice opted in, and then only by an exact slot);
- nothing is cancelled or replaced that was not found for this caller;
- nothing is booked under a first name alone, and a move never leaves two appointments.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.engine.events import StateChanged
from service.engine.model import (
    Book,
    BookingAt,
    BookingDone,
    BookingRef,
    BookingsFound,
    CallerSaid,
    CancelBooking,
    CancelDone,
    Conversation,
    FindBookingAt,
    FindBookings,
    Limits,
    Slot,
    TurnInput,
)
from service.engine.practice import Practice
from service.engine.states import TERMINAL, BookingResult, Channel, State
from service.engine.step import step
from service.engine.table import allowed
from tests.support import NOW, PARIS

PHONE = "+33612345678"
OTHER = "+33698765432"

SAYINGS = [
    "je voudrais un rendez-vous", "Bonjour, je m'appelle Jean Dupont, je voudrais un rendez-vous jeudi matin",
    "Jean Dupont", "Alice", "Martin", "c'est privé", "pourquoi faire ?", "Prix", "pour ma fille",
    "pour ma fille Inès Brossard", "c'est pour quelqu'un d'autre", "Inès", "Brossard", "le matin",
    "pas le lundi", "après 19h", "entre 9h et 11h", "ah non pas jeudi, vendredi", "le premier", "le deuxième",
    "aucun, plutôt samedi", "vous pouvez répéter ?", "oui", "non", "euh", "je voudrais annuler mon rendez-vous",
    "je voudrais déplacer mon rendez-vous", "celui de jeudi", "celui d'Inès", "jeudi à 8h30", "vendredi à 14h",
    "c'est combien ?", "06 12 34 56 78", "1", "2", "oui, plutôt vendredi après-midi", "le rendez-vous du 6",
]


@dataclass
class Store:
    """Bookings as the shell would keep them: start → (id, name, phone)."""

    rows: dict[datetime, tuple[str, str, str | None]] = field(default_factory=dict)
    found_for: dict[str, set[str]] = field(default_factory=dict)

    def refs(self, phone: str) -> tuple[BookingRef, ...]:
        return tuple(
            BookingRef(i, Slot(start, start), name)
            for start, (i, name, p) in sorted(self.rows.items()) if p == phone
        )


def _answer(store: Store, conv: Conversation, action: object, opted: bool) -> TurnInput:
    """Carry out ``action`` the way the shell does, checking who may see and change what."""
    seen = store.found_for.setdefault(conv.conv_id, set())
    if isinstance(action, FindBookings):
        assert conv.caller_phone is not None and action.phone == conv.caller_phone
        found = store.refs(action.phone)
        seen.update(b.booking_id for b in found)
        return BookingsFound(found)
    if isinstance(action, FindBookingAt):
        assert opted, "an exact-slot lookup without the practice's opt-in"
        row = store.rows.get(action.start)
        if row is None:
            return BookingAt(None)
        seen.add(row[0])
        return BookingAt(BookingRef(row[0], Slot(action.start, action.start), row[1]))
    if isinstance(action, CancelBooking):
        assert action.booking_id in seen, "cancelled an appointment not found for this caller"
        for start, row in list(store.rows.items()):
            if row[0] == action.booking_id:
                del store.rows[start]
                return CancelDone(True)
        return CancelDone(False)
    assert isinstance(action, Book)
    ctx = conv.context
    if ctx.modifying is None:  # a last name is known for whoever the appointment is for
        assert (ctx.patient_last if ctx.for_someone_else else ctx.last_name), ctx
    if action.slot.start in store.rows:
        return BookingDone(BookingResult.SLOT_TAKEN)
    if action.replaces is not None:
        assert action.replaces in seen, "replaced an appointment not found for this caller"
        store.rows = {k: v for k, v in store.rows.items() if v[0] != action.replaces}
    booking_id = f"b{len(store.rows)}-{action.slot.start:%d%H%M}"
    store.rows[action.slot.start] = (booking_id, action.name, action.phone)
    return BookingDone(BookingResult.SUCCESS, booking_id)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    calls=st.lists(
        st.tuples(st.sampled_from([PHONE, OTHER, None]), st.lists(st.sampled_from(SAYINGS), min_size=1, max_size=9)),
        min_size=1, max_size=4,
    ),
    opted=st.booleans(),
)
def test_random_callers_keep_the_rules(
    calls: list[tuple[str | None, list[str]]], opted: bool, text_limits: Limits, practice: Practice,
) -> None:
    """Any sequence of calls: valid transitions, verified lookups only, no foreign change, no
    booking under a first name alone, at most one appointment per slot."""
    practice = replace(practice, cancel_from_other_number=opted)
    store = Store()
    first = datetime(2026, 3, 5, 8, 30, tzinfo=PARIS)
    store.rows[first] = ("seed", "Jean Dupont", PHONE)
    store.found_for = {}
    for n, (phone, sayings) in enumerate(calls):
        conv = Conversation.new(f"conv_{n}", Channel.VOICE, NOW, caller_phone=phone)
        for text in sayings:
            was_terminal = conv.state in TERMINAL
            decision = step(conv, CallerSaid(text), NOW, text_limits, practice, frozenset(store.rows))
            while True:
                for event in decision.events:
                    if isinstance(event, StateChanged):
                        assert allowed(event.from_state, event.to_state)
                if decision.action is None:
                    break
                answer = _answer(store, decision.conversation, decision.action, opted)
                decision = step(decision.conversation, answer, NOW, text_limits, practice, frozenset(store.rows))
            conv = decision.conversation
            if was_terminal:
                assert conv.state in TERMINAL
            if phone is None and not opted:
                assert conv.state not in (State.CANCEL_CONFIRM, State.MODIFY_CONFIRM)
