"""What holds for a caller turn in every state, before the state's own handler: an ordered
tuple of small checks (:data:`CHECKS`). Each answers the turn (True) or lets the next one
look at it; the state's handler (:mod:`service.engine.handlers`) answers what none took.

The conversation's opening (expiry, resumption, the turn count) is :func:`open_turn`, run
before any check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from service.engine import booking_flow, nlu, replies
from service.engine.events import (
    AntiLoopTriggered,
    ConversationStarted,
    FaqAnswered,
    FillerDetected,
    IntentOverridden,
    SessionExpired,
    TurnReceived,
)
from service.engine.frozen import replace
from service.engine.handlers import HANDLERS, enter_identify, terminal
from service.engine.model import CallerSaid, Conversation
from service.engine.nlu.extract import Extraction
from service.engine.states import (
    FAQ_TOPIC,
    TERMINAL,
    Field,
    Intent,
    Outcome,
    OverrideIntent,
    Purpose,
    Retry,
    State,
    TransferReason,
)
from service.engine.turn import Turn

S = State
# Intents that pre-empt the state they are heard in: what they are reported as, and where
# they lead.
STRONG: dict[Intent, tuple[OverrideIntent, State]] = {
    Intent.CANCEL: (OverrideIntent.CANCEL, S.CANCEL_IDENTIFY),
    Intent.MODIFY: (OverrideIntent.MODIFY, S.MODIFY_IDENTIFY),
    Intent.HUMAN: (OverrideIntent.HUMAN, S.TRANSFERRED),
}
# Extra turns allowed after the fallback menu before the guard hands over to a human; the
# guard's second firing transfers.
ANTI_LOOP_GRACE = 10
ANTI_LOOP_FIRINGS = 2
# States whose handler parses the caller's answer to a yes/no or a name themselves, so an
# intent detector must not pre-empt them for that same intent.
OWN_INTENTS: dict[State, frozenset[Intent]] = {
    S.CANCEL_IDENTIFY: frozenset({Intent.CANCEL}),
    S.CANCEL_CONFIRM: frozenset({Intent.CANCEL}),
    S.MODIFY_IDENTIFY: frozenset({Intent.MODIFY}),
    S.MODIFY_CONFIRM: frozenset({Intent.MODIFY, Intent.CANCEL}),
}
# States that asked for a name: a name there is an answer, never a practical question
# ("Prix", "Parking" are surnames too).
NAME_ANSWERS = frozenset({S.QUALIF_NAME, S.CANCEL_IDENTIFY, S.MODIFY_IDENTIFY})
FILLER_FIELD = {S.QUALIF_NAME: Field.NAME, S.WAIT_CONFIRM: Field.SLOT_CHOICE, S.QUALIF_PHONE: Field.PHONE}


@dataclass
class Heard:
    """One caller turn as the checks see it; understood once, on first use (a turn the
    anti-loop guard or a closed conversation answers is never parsed)."""

    said: CallerSaid
    understand: Callable[[], Extraction]

    @cached_property
    def x(self) -> Extraction:
        """What the turn says (:func:`service.engine.understand.understand`)."""
        return self.understand()


Check = Callable[[Turn, Heard], bool]


def open_turn(t: Turn, said: CallerSaid) -> None:
    """Count the caller turn in; a conversation left idle past its TTL expires and starts
    again (so does one over that is spoken to again)."""
    conv = t.conv
    restart: str | None = None
    if conv.turn_count > 0 and conv.outcome is None and conv.state not in TERMINAL:
        idle = t.now - conv.last_seen_at
        if idle > timedelta(minutes=t.limits.session_ttl_minutes):
            t.emit(SessionExpired(conv.state, idle.total_seconds()))
            t.end(Outcome.EXPIRED)
            restart = replies.EXPIRED
    elif conv.outcome is not None and conv.state not in TERMINAL:
        restart = replies.RESUMED_AFTER_END
    if restart is not None:
        conv = Conversation.new(
            conv.conv_id, conv.channel, t.now,
            caller_phone=conv.caller_phone, vapi_call_id=conv.vapi_call_id, epoch=conv.epoch + 1,
        )
        t.conv = conv
        t.say(restart)
    if conv.turn_count == 0:
        t.emit(ConversationStarted(conv.channel))
    t.emit(TurnReceived(conv.state, conv.turn_count, said.interrupted))
    t.conv = replace(conv, turn_count=conv.turn_count + 1, last_seen_at=t.now)


def closed(t: Turn, heard: Heard) -> bool:
    """A conversation already over says so."""
    if t.state not in TERMINAL:
        return False
    terminal(t, Extraction(text=heard.said.text), heard.said.interrupted)
    return True


def anti_loop(t: Turn, heard: Heard) -> bool:
    """Past the turn limit: the menu the first time (more turns granted), a human the next."""
    state = t.state
    hits = t.ctx.failed(Retry.ANTI_LOOP)
    if t.conv.turn_count <= t.limits.max_turns_anti_loop + hits * ANTI_LOOP_GRACE:
        return False
    t.emit(AntiLoopTriggered(t.conv.turn_count, t.limits.max_turns_anti_loop, state))
    if t.counted(Retry.ANTI_LOOP, ANTI_LOOP_FIRINGS) or state is S.INTENT_ROUTER:
        t.transfer(replies.TRANSFER_AFTER_FAILURES, TransferReason.ANTI_LOOP)
    else:
        t.menu()
    return True


def repeat(t: Turn, heard: Heard) -> bool:
    """"Vous pouvez répéter ?" while slots are proposed: they are read again."""
    if t.state is not S.WAIT_CONFIRM or heard.x.choice != "repeat":
        return False
    t.say(replies.REPEAT_SLOTS.format(labels=t.spoken_slots()))
    return True


def filler(t: Turn, heard: Heard) -> bool:
    """"Euh…", "attendez": help, or the pending question again."""
    if not heard.x.filler:
        return False
    state = t.state
    t.emit(FillerDetected(state))
    fld = FILLER_FIELD.get(state)
    if state is S.START:
        t.say(replies.START_HELP)
    else:
        t.say(replies.FILLER.get(fld, replies.FILLER_DEFAULT) if fld else replies.FILLER_DEFAULT)
        if fld is None:
            t.resume()
    return True


def strong_intent(t: Turn, heard: Heard) -> bool:
    """Cancel, move or a human, asked in any state that does not parse that itself."""
    x, state = heard.x, t.state
    intent = x.intent
    if intent not in STRONG or intent in OWN_INTENTS.get(state, frozenset()):
        return False
    # A choice among proposed slots wins over a stray "non"/"annuler" inside it.
    if state is S.WAIT_CONFIRM and intent is not Intent.HUMAN:
        if isinstance(x.choice, int):
            HANDLERS[state](t, x, heard.said.interrupted)
            return True
        # "je voudrais changer de jour" while slots are on the table means other slots,
        # not moving an appointment the caller does not mention.
        if intent is Intent.MODIFY and not nlu.mentions_own_appointment(heard.said.text):
            booking_flow.other_slots(t, x)
            return True
    override, to = STRONG[intent]
    if state not in (S.START, S.INTENT_ROUTER):
        t.emit(IntentOverridden(state, override.value, to))
    if to is S.TRANSFERRED:
        t.transfer(replies.pick(replies.TRANSFER, t.nth()), TransferReason.CALLER_ASKED)
    else:
        enter_identify(t, to, x)
    return True


def faq(t: Turn, heard: Heard) -> bool:
    """A practical question: answered, then the pending question again (a name given where
    one was asked is an answer, not a question)."""
    x, state = heard.x, t.state
    topic = FAQ_TOPIC.get(x.intent) if x.intent is not None else None
    if topic is None or (state in NAME_ANSWERS and (x.name is not None or x.patient is not None)):
        return False
    if state is not S.START:
        t.emit(IntentOverridden(state, OverrideIntent.FAQ.value, state))
    t.emit(FaqAnswered(topic, state))
    t.show_purpose(Purpose.INFORMATION)
    t.say(t.practice.faq.get(topic, replies.FAQ_UNKNOWN))
    t.resume()
    return True


# In order: the first that answers the turn ends it.
CHECKS: tuple[Check, ...] = (closed, anti_loop, repeat, filler, strong_intent, faq)


def answer(t: Turn, heard: Heard) -> None:
    """Answer a counted-in caller turn: the first check that takes it, else its state's handler."""
    for check in CHECKS:
        if check(t, heard):
            return
    HANDLERS[t.state](t, heard.x, heard.said.interrupted)
