"""The pure engine: barge-in, lost races, call ends, and random callers that never break it."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.engine.events import (
    BookingResulted,
    BookingRetried,
    ConversationEnded,
    Interrupted,
    StateChanged,
    TurnReceived,
)
from service.engine.model import (
    Book,
    BookingDone,
    BookingsFound,
    CallEnded,
    CallerSaid,
    CancelDone,
    Conversation,
    Decision,
    Limits,
)
from service.engine.practice import Practice
from service.engine.states import TERMINAL, BookingResult, Channel, Outcome, Purpose, State
from service.engine.step import step
from service.engine.table import allowed
from tests.support import NOW

PHONE = "+33612345678"


def run(conv: Conversation, text: str, limits: Limits, practice: Practice, *, interrupted: bool = False,
        booking: BookingResult = BookingResult.SUCCESS) -> tuple[Conversation, list[Decision]]:
    """One caller turn with a trivial shell: any booking action gets ``booking``."""
    decisions = [step(conv, CallerSaid(text, interrupted), NOW, limits, practice)]
    while decisions[-1].action is not None:
        action = decisions[-1].action
        if isinstance(action, Book):
            answer = BookingDone(booking, "b1" if booking is BookingResult.SUCCESS else None)
        elif hasattr(action, "phone"):
            answer = BookingsFound(())  # type: ignore[assignment]
        else:
            answer = CancelDone(False)  # type: ignore[assignment]
        decisions.append(step(decisions[-1].conversation, answer, NOW, limits, practice))
    return decisions[-1].conversation, decisions


def at_slots(limits: Limits, practice: Practice, channel: Channel = Channel.VOICE) -> Conversation:
    """A conversation that has just been proposed three slots."""
    conv = Conversation.new("conv_t", channel, NOW, caller_phone=PHONE)
    for text in ("je voudrais un rendez-vous", "Jean Dupont", "pas de préférence"):
        conv, _ = run(conv, text, limits, practice)
    assert conv.state is State.WAIT_CONFIRM
    return conv


def all_events(decisions: list[Decision]) -> list[object]:
    return [e for d in decisions for e in d.events]


def test_barge_in_choice_books_and_reports_interruption(voice_limits: Limits, practice: Practice) -> None:
    """A slot chosen while the list was spoken is an Interrupted event and is booked."""
    conv = at_slots(voice_limits, practice)
    conv, decisions = run(conv, "le deuxième", voice_limits, practice, interrupted=True)
    events = all_events(decisions)
    assert Interrupted(2) in events
    assert conv.state is State.CONFIRMED


def test_third_lost_race_transfers(voice_limits: Limits, practice: Practice) -> None:
    """BOOKING_RETRY_MAX=2 re-proposals after lost races; the third loss transfers."""
    conv = at_slots(voice_limits, practice)
    retries = []
    for _ in range(3):
        conv, decisions = run(conv, "le premier", voice_limits, practice, booking=BookingResult.SLOT_TAKEN)
        events = all_events(decisions)
        assert any(isinstance(e, BookingResulted) and not e.success for e in events)
        retries += [e.retry for e in events if isinstance(e, BookingRetried)]
    assert retries == [1, 2]
    assert conv.state is State.TRANSFERRED
    assert conv.outcome is Outcome.TRANSFERRED


def test_call_ended_mid_flow_is_abandoned_once(voice_limits: Limits, practice: Practice) -> None:
    """A call that ends in WAIT_CONFIRM is abandoned (its purpose was to book); a second end
    changes nothing."""
    conv = at_slots(voice_limits, practice)
    first = step(conv, CallEnded("customer-ended-call"), NOW, voice_limits, practice)
    assert first.conversation.outcome is Outcome.ABANDONED
    ended = [e for e in first.events if isinstance(e, ConversationEnded)]
    assert ended == [
        ConversationEnded(Channel.VOICE, Outcome.ABANDONED, State.WAIT_CONFIRM, 3, "customer-ended-call", Purpose.BOOK)
    ]
    again = step(first.conversation, CallEnded("customer-ended-call"), NOW, voice_limits, practice)
    assert again.events == ()


def test_flow_line_reports_state_and_turn_before_the_turn(text_limits: Limits, practice: Practice) -> None:
    """The [FLOW] event carries the state and turn count as they were when the turn arrived."""
    conv = Conversation.new("conv_f", Channel.TEXT, NOW)
    flows = []
    for text in ("je voudrais un rendez-vous", "Jean Dupont", "le matin"):
        conv, decisions = run(conv, text, text_limits, practice)
        flows += [e for e in all_events(decisions) if isinstance(e, TurnReceived)]
    assert [(f.state, f.turn) for f in flows] == [
        (State.START, 0), (State.QUALIF_NAME, 1), (State.QUALIF_PREF, 2),
    ]


def test_no_clock_inside_the_engine(text_limits: Limits, practice: Practice) -> None:
    """The same inputs at the same ``now`` give the same decision, byte for byte."""
    conv = Conversation.new("conv_det", Channel.TEXT, NOW)
    a = step(conv, CallerSaid("je voudrais un rendez-vous"), NOW, text_limits, practice)
    b = step(conv, CallerSaid("je voudrais un rendez-vous"), NOW, text_limits, practice)
    assert a == b


UTTERANCES = st.one_of(
    st.sampled_from([
        "je voudrais un rendez-vous", "Jean Dupont", "le matin", "le premier", "aucun", "oui", "non",
        "euh", "annuler", "déplacer", "c'est où ?", "combien ça coûte", (
            "zéro six douze trente-quatre cinquante-six soixante-dix-huit"
        ), "1", "4", "je veux parler à quelqu'un", "le 2", "mardi",
        "", "???", "pas de préférence", "après 17 heures",
    ]),
    st.text(max_size=60),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    script=st.lists(st.tuples(UTTERANCES, st.booleans(), st.sampled_from(list(BookingResult))), max_size=30),
    channel=st.sampled_from(list(Channel)),
)
def test_random_callers_never_break_the_engine(
    script: list[tuple[str, bool, BookingResult]], channel: Channel,
    text_limits: Limits, voice_limits: Limits, practice: Practice,
) -> None:
    """Any caller input: no exception, valid transitions, terminal never left, one outcome at most."""
    limits = voice_limits if channel is Channel.VOICE else text_limits
    conv = Conversation.new("conv_p", channel, NOW)
    outcomes = 0
    for text, interrupted, booking in script:
        before = conv
        conv, decisions = run(conv, text, limits, practice, interrupted=interrupted, booking=booking)
        events = all_events(decisions)
        for change in (e for e in events if isinstance(e, StateChanged)):
            assert allowed(change.from_state, change.to_state)
        if before.state in TERMINAL:
            assert conv.state is before.state
        if conv.epoch == before.epoch:
            assert conv.turn_count == before.turn_count + 1
        outcomes += sum(isinstance(e, ConversationEnded) for e in events)
        assert outcomes <= 1 + conv.epoch
        if conv.state in TERMINAL:
            assert conv.outcome is not None
        assert isinstance(conv.state, State)
        assert " ".join(d.reply for d in decisions).strip(), "every caller turn gets an answer"
