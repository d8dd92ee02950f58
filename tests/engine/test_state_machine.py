"""The engine as a state machine (Hypothesis ``RuleBasedStateMachine``): any sequence of caller
turns, waits, hang-ups and booking outcomes keeps the state table's invariants.

- every transition is in the table, and no state is a dead end: a conversation not in a
  terminal state is still open (no outcome, no end of call) and has a way forward; a terminal
  one has its outcome;
- recovery limits are honoured: no counter is ever left at or past its limit, and the
  anti-loop guard hands over on its second firing;
- an appointment is booked only for a slot the caller was proposed and chose in WAIT_CONFIRM
  (QUALIF_PHONE only completes the number of that choice), and CONFIRMED follows only a
  successful booking.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import hypothesis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from service.config import load_practice, load_settings
from service.engine.booking_flow import MENU_RETRIES, PREF_RETRIES
from service.engine.checks import ANTI_LOOP_GRACE
from service.engine.events import SlotsSent, StateChanged
from service.engine.model import (
    Book,
    BookingAt,
    BookingDone,
    BookingRef,
    BookingsFound,
    CallEnded,
    CallerSaid,
    CancelBooking,
    CancelDone,
    Conversation,
    Decision,
    FindBookingAt,
    FindBookings,
    Limits,
    TurnInput,
)
from service.engine.states import TERMINAL, BookingResult, Channel, Field, Retry, State
from service.engine.step import step
from service.engine.table import TRANSITIONS, allowed
from tests.support import NOW

PHONE = "+33612345678"
SAYINGS = [
    "je voudrais un rendez-vous", "Bonjour, je m'appelle Jean Dupont, je voudrais un rendez-vous jeudi matin",
    "Jean Dupont", "Alice", "Martin", "c'est privé", "pour ma fille Inès Brossard", "le matin", "pas le lundi",
    "après 19h", "le premier", "le deuxième", "le 3", "aucun, plutôt samedi", "vous pouvez répéter ?", "oui", "non",
    "euh", "je sais pas", "blablabla", "je voudrais annuler mon rendez-vous", "je voudrais déplacer mon rendez-vous",
    "celui de jeudi", "c'est où ?", "c'est combien ?", "06 12 34 56 78", "1", "2", "3", "4",
    "je veux parler à quelqu'un", "oui, plutôt vendredi après-midi", "", "???",
]
SCRIPTS = [
    ("je voudrais un rendez-vous", "Jean Dupont", "le matin", "le premier"),
    ("Bonjour, je m'appelle Jean Dupont, je voudrais un rendez-vous jeudi matin", "le deuxième", "06 12 34 56 78"),
    ("je voudrais annuler mon rendez-vous", "oui"),
    ("je voudrais déplacer mon rendez-vous", "oui, plutôt vendredi après-midi", "le premier"),
    ("je voudrais un rendez-vous", "Alice", "Martin", "pas le lundi", "aucun, plutôt samedi", "le 3"),
]
PRACTICE = load_practice(None)
LIMITS = load_settings({}).limits


class Engine(RuleBasedStateMachine):
    """One conversation driven by random inputs, with a shell that keeps bookings in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = Conversation.new("conv_m", Channel.VOICE, NOW)
        self.limits: Limits = LIMITS[Channel.VOICE]
        self.now = NOW
        self.booked: dict[datetime, BookingRef] = {}
        self.offered: set[datetime] = set()  # slots read to the caller in this epoch
        self.last: Decision | None = None
        self.by_caller = False
        self.calls = 0

    @initialize(channel=st.sampled_from(list(Channel)), phone=st.sampled_from([PHONE, None]),
                anti_loop=st.integers(min_value=2, max_value=12))
    def open(self, channel: Channel, phone: str | None, anti_loop: int) -> None:
        # A small anti-loop limit, so that runs reach the guard.
        self.limits = replace(LIMITS[channel], max_turns_anti_loop=anti_loop)
        self.conv = Conversation.new("conv_m", channel, NOW, caller_phone=phone)

    # ------------------------------------------------------------------ the shell
    def _answer(self, action: object, result: BookingResult) -> TurnInput:
        if isinstance(action, Book):
            if action.slot.start in self.booked:
                return BookingDone(BookingResult.SLOT_TAKEN)
            if result is BookingResult.SUCCESS:
                self.booked[action.slot.start] = BookingRef(f"b{len(self.booked)}", action.slot, action.name)
                return BookingDone(result, f"b{len(self.booked) - 1}")
            return BookingDone(result)
        if isinstance(action, FindBookings):
            return BookingsFound(tuple(sorted(self.booked.values(), key=lambda b: b.slot.start)))
        if isinstance(action, FindBookingAt):
            return BookingAt(self.booked.get(action.start))
        assert isinstance(action, CancelBooking)
        gone = [s for s, b in self.booked.items() if b.booking_id == action.booking_id]
        for start in gone:
            del self.booked[start]
        return CancelDone(bool(gone))

    def _run(self, first: TurnInput, result: BookingResult) -> None:
        """Step ``first`` and every action's result, checking each decision."""
        turn: TurnInput = first
        conv = self.conv
        while True:
            decision = step(conv, turn, self.now, self.limits, PRACTICE, frozenset(self.booked))
            if decision.conversation.epoch != conv.epoch:
                self.offered = set()
            self._check_decision(conv, turn, decision)
            conv = decision.conversation
            if decision.action is None:
                break
            turn = self._answer(decision.action, result)
        self.conv, self.last = conv, decision
        hypothesis.event(f"reached {conv.state.value}")  # --hypothesis-show-statistics: what the runs explore

    def _check_decision(self, before: Conversation, turn: TurnInput, decision: Decision) -> None:
        for event in decision.events:
            if isinstance(event, StateChanged):
                assert allowed(event.from_state, event.to_state), event
                if event.to_state is State.CONFIRMED:
                    assert isinstance(turn, BookingDone) and turn.result is BookingResult.SUCCESS
            if isinstance(event, SlotsSent):
                self.offered.update(event.slot_starts)
        action = decision.action
        if isinstance(action, Book):
            ctx = decision.conversation.context
            assert decision.conversation.state in (State.WAIT_CONFIRM, State.QUALIF_PHONE), decision.conversation.state
            assert ctx.chosen is not None and ctx.proposed[ctx.chosen] == action.slot
            assert action.slot.start in self.offered, "booked a slot never proposed to the caller"
            if decision.conversation.state is State.QUALIF_PHONE:
                assert before.state is State.QUALIF_PHONE and before.context.chosen == ctx.chosen

    # ------------------------------------------------------------------ rules
    @rule(text=st.sampled_from(SAYINGS), interrupted=st.booleans(), result=st.sampled_from(list(BookingResult)))
    def caller_says(self, text: str, interrupted: bool, result: BookingResult) -> None:
        self.now += timedelta(seconds=20)
        self.by_caller = True
        self._run(CallerSaid(text, interrupted), result)

    @rule(text=st.text(max_size=30))
    def caller_says_anything(self, text: str) -> None:
        self.caller_says(text, False, BookingResult.SUCCESS)

    @rule(script=st.sampled_from(SCRIPTS), result=st.sampled_from(list(BookingResult)))
    def caller_follows_a_script(self, script: tuple[str, ...], result: BookingResult) -> None:
        """A cooperative caller, so that runs reach the slots, bookings and cancellations."""
        for text in script:
            self.caller_says(text, False, result)

    @rule(text=st.sampled_from(["euh", "attendez", "hmm"]))
    def caller_hesitates(self, text: str) -> None:
        """Fillers change nothing but the turn count: long conversations reach the anti-loop guard."""
        self.caller_says(text, False, BookingResult.SUCCESS)

    @rule(minutes=st.integers(min_value=1, max_value=45))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule()
    def call_ends(self) -> None:
        self.by_caller = False
        self._run(CallEnded("customer-ended-call"), BookingResult.SUCCESS)

    @precondition(lambda self: self.conv.state in TERMINAL)
    @rule(phone=st.sampled_from([PHONE, None]))
    def next_call(self, phone: str | None) -> None:
        """The conversation is over; the next caller (the bookings stay)."""
        self.calls += 1
        self.conv = Conversation.new(f"conv_m{self.calls}", self.conv.channel, self.now, caller_phone=phone)
        self.offered, self.last, self.by_caller = set(), None, False

    # ------------------------------------------------------------------ invariants
    @invariant()
    def no_dead_end(self) -> None:
        conv = self.conv
        if conv.state in TERMINAL:
            assert conv.outcome is not None and not TRANSITIONS[conv.state]
            return
        assert TRANSITIONS[conv.state], f"{conv.state} has no way forward"
        if self.by_caller and self.last is not None:
            assert conv.outcome is None and self.last.directive is None
            assert self.last.reply.strip(), "a caller turn left without an answer"

    @invariant()
    def recovery_limits_are_honoured(self) -> None:
        ctx, limits = self.conv.context, self.limits
        for fld in Field:
            assert ctx.failed(Retry(fld.value)) < limits.recovery_limits[fld], fld
        assert ctx.failed(Retry.PREFERENCE) <= PREF_RETRIES
        assert ctx.failed(Retry.CONFIRM) <= limits.confirm_retry_max
        assert ctx.failed(Retry.WHICH) <= 1
        assert ctx.failed(Retry.INTENT) <= MENU_RETRIES
        if self.conv.state not in TERMINAL:
            assert ctx.failed(Retry.MENU) < MENU_RETRIES
            assert ctx.failed(Retry.ANTI_LOOP) <= 1, "the guard hands over on its second firing"
            assert self.conv.turn_count <= limits.max_turns_anti_loop + ANTI_LOOP_GRACE


TestEngine = Engine.TestCase
TestEngine.settings = settings(max_examples=60, stateful_step_count=50, deadline=None)
