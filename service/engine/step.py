"""The engine's one entry point: ``step(conversation, input, now, limits, practice, taken)``.

Pure: it reads no clock, does no I/O and logs nothing. Side effects come back as an
:class:`~service.engine.model.Action` the shell performs; its result is the next input.
Every caller turn is understood once (:mod:`service.engine.understand`); what holds for every
state (expiry, anti-loop, fillers, strong intents, practical questions) is decided here, the
rest by the state's handler: taking an appointment in :mod:`service.engine.booking_flow`,
cancelling or moving one in :mod:`service.engine.appointments`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from service.engine import appointments, booking_flow, labels, nlu, replies
from service.engine.events import (
    AntiLoopTriggered,
    AppointmentConfirmed,
    BookingResulted,
    BookingRetried,
    ConversationStarted,
    FaqAnswered,
    FillerDetected,
    IntentOverridden,
    SessionExpired,
    TurnReceived,
)
from service.engine.model import (
    BookingAt,
    BookingDone,
    BookingsFound,
    CallEnded,
    CallerSaid,
    CancelDone,
    Conversation,
    Decision,
    EngineInvariantError,
    Expire,
    Limits,
    Preference,
    Slot,
    TurnInput,
)
from service.engine.nlu import SlotRef
from service.engine.nlu.extract import Extraction
from service.engine.practice import Practice
from service.engine.states import (
    TERMINAL,
    BookingResult,
    Field,
    Outcome,
    OverrideIntent,
    Purpose,
    State,
    TransferReason,
)
from service.engine.turn import Turn
from service.engine.understand import understand

S = State
STRONG = {"cancel": OverrideIntent.CANCEL, "modify": OverrideIntent.MODIFY, "human": OverrideIntent.HUMAN}
# Extra turns allowed after the fallback menu before the guard hands over to a human.
ANTI_LOOP_GRACE = 10
APPOINTMENT_STATES = frozenset({S.CANCEL_IDENTIFY, S.MODIFY_IDENTIFY, S.CANCEL_CONFIRM, S.MODIFY_CONFIRM})


def _enter_identify(t: Turn, to: State, x: Extraction | None = None) -> None:
    appointments.enter(t, to, x if x is not None else Extraction(text=""))


def _intent_router(t: Turn, x: Extraction, interrupted: bool) -> None:
    booking_flow.intent_router(t, x, interrupted, lambda turn, to: _enter_identify(turn, to, x))


def _terminal(t: Turn, x: Extraction, interrupted: bool) -> None:
    if t.conv.state is S.TRANSFERRED:
        t.say(replies.pick(replies.TRANSFER, t.nth()))
        t.directive = "transfer"
    elif t.conv.state is S.CANCELLED:
        t.say(replies.CLOSED_CANCELLED)
        t.directive = "end"
    else:
        t.say(replies.CLOSED_CONFIRMED)
        t.directive = "end"


HANDLERS: dict[State, booking_flow.Handler] = {
    S.START: booking_flow.start,
    S.QUALIF_NAME: booking_flow.qualif_name,
    S.QUALIF_PREF: booking_flow.qualif_pref,
    S.WAIT_CONFIRM: booking_flow.wait_confirm,
    S.QUALIF_PHONE: booking_flow.qualif_phone,
    S.CANCEL_IDENTIFY: appointments.identify,
    S.MODIFY_IDENTIFY: appointments.identify,
    S.CANCEL_CONFIRM: appointments.cancel_confirm,
    S.MODIFY_CONFIRM: appointments.modify_confirm,
    S.INTENT_ROUTER: _intent_router,
    S.CONFIRMED: _terminal,
    S.CANCELLED: _terminal,
    S.TRANSFERRED: _terminal,
}

# States whose handler parses the caller's answer to a yes/no or a name themselves, so an
# intent detector must not pre-empt them for that same intent.
_OWN_INTENTS: dict[State, frozenset[str]] = {
    S.CANCEL_IDENTIFY: frozenset({"cancel"}),
    S.CANCEL_CONFIRM: frozenset({"cancel"}),
    S.MODIFY_IDENTIFY: frozenset({"modify"}),
    S.MODIFY_CONFIRM: frozenset({"modify", "cancel"}),
}
# States that asked for a name: a name there is an answer, never a practical question
# ("Prix", "Parking" are surnames too).
_NAME_ANSWERS = frozenset({S.QUALIF_NAME, S.CANCEL_IDENTIFY, S.MODIFY_IDENTIFY})

FILLER_FIELD = {S.QUALIF_NAME: Field.NAME, S.WAIT_CONFIRM: Field.SLOT_CHOICE, S.QUALIF_PHONE: Field.PHONE}


def _refs(t: Turn) -> tuple[SlotRef, ...]:
    """What the caller may be choosing among: the proposed slots, or their appointments."""
    state = t.conv.state
    if state is S.WAIT_CONFIRM:
        return t.slot_refs()
    if state in APPOINTMENT_STATES and state is not S.MODIFY_CONFIRM:
        # Not while asking whether to move one: "oui, plutôt vendredi" is where to, not which.
        return appointments.refs(t)
    return ()


# --------------------------------------------------------------------------- caller turns
def _caller_said(t: Turn, said: CallerSaid) -> None:
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
        t.conv = Conversation.new(
            conv.conv_id, conv.channel, t.now,
            caller_phone=conv.caller_phone, vapi_call_id=conv.vapi_call_id, epoch=conv.epoch + 1,
        )
        t.say(restart)
    if t.conv.turn_count == 0:
        t.emit(ConversationStarted(t.conv.channel))
    t.emit(TurnReceived(t.conv.state, t.conv.turn_count, said.interrupted))
    t.conv = replace(t.conv, turn_count=t.conv.turn_count + 1, last_seen_at=t.now)
    state = t.conv.state
    text = said.text

    if state in TERMINAL:
        _terminal(t, Extraction(text=text), said.interrupted)
        return

    hits = t.ctx.failed("anti_loop")
    threshold = t.limits.max_turns_anti_loop + hits * ANTI_LOOP_GRACE
    if t.conv.turn_count > threshold:
        t.emit(AntiLoopTriggered(t.conv.turn_count, t.limits.max_turns_anti_loop, state))
        t.set_ctx(t.ctx.with_fail("anti_loop"))
        if hits == 0 and state is not S.INTENT_ROUTER:
            t.menu()
        else:
            t.transfer(replies.TRANSFER_AFTER_FAILURES, TransferReason.ANTI_LOOP)
        return

    x = understand(text, state, t.local(t.now), _refs(t), t.practice)
    if state is S.WAIT_CONFIRM and x.choice == "repeat":
        t.say(replies.REPEAT_SLOTS.format(labels=t.spoken_slots()))
        return

    if x.filler:
        t.emit(FillerDetected(state))
        fld = FILLER_FIELD.get(state)
        if state is S.START:
            t.say(replies.START_HELP)
        else:
            t.say(replies.FILLER.get(fld, replies.FILLER_DEFAULT) if fld else replies.FILLER_DEFAULT)
            if fld is None:
                t.resume()
        return

    intent = x.intent or ""
    if intent in STRONG and intent not in _OWN_INTENTS.get(state, frozenset()):
        # A choice among proposed slots wins over a stray "non"/"annuler" inside it.
        if state is S.WAIT_CONFIRM and intent != "human":
            if isinstance(x.choice, int):
                HANDLERS[state](t, x, said.interrupted)
                return
            # "je voudrais changer de jour" while slots are on the table means other slots,
            # not moving an appointment the caller does not mention.
            if intent == "modify" and not nlu.mentions_own_appointment(text):
                booking_flow.other_slots(t, x)
                return
        to = {"cancel": S.CANCEL_IDENTIFY, "modify": S.MODIFY_IDENTIFY, "human": S.TRANSFERRED}[intent]
        if state not in (S.START, S.INTENT_ROUTER):
            t.emit(IntentOverridden(state, STRONG[intent].value, to))
        if to is S.TRANSFERRED:
            t.transfer(replies.pick(replies.TRANSFER, t.nth()), TransferReason.CALLER_ASKED)
        else:
            _enter_identify(t, to, x)
        return

    if intent.startswith("faq:") and not (state in _NAME_ANSWERS and (x.name is not None or x.patient is not None)):
        topic = intent.split(":", 1)[1]
        if state is not S.START:
            t.emit(IntentOverridden(state, OverrideIntent.FAQ.value, state))
        t.emit(FaqAnswered(topic, state))
        t.show_purpose(Purpose.INFORMATION)
        t.say(t.practice.faq.get(topic, replies.FAQ_UNKNOWN))
        t.resume()
        return

    HANDLERS[state](t, x, said.interrupted)


def _booking_done(t: Turn, done: BookingDone) -> None:
    idx = t.ctx.chosen
    if idx is None or idx >= len(t.ctx.proposed):
        raise EngineInvariantError("booking result without a chosen slot")
    slot = t.ctx.proposed[idx]
    retry = t.ctx.booking_retries
    t.emit(BookingResulted(done.result, slot.start, retry))
    if done.result is BookingResult.SUCCESS:
        local = t.local(slot.start)
        name, who, moved = t.booking_name(), t.for_whom(), t.ctx.modifying is not None
        t.emit(AppointmentConfirmed(labels.log_label(local), name, slot.start))
        t.set_ctx(replace(t.ctx, modifying=None))
        template = replies.CONFIRMED_MOVED if moved else replies.CONFIRMED
        t.say(template.format(slot=labels.full_label(local), who=who))
        t.go(S.CONFIRMED)
        t.directive = "end"
        return
    if done.result is BookingResult.ERROR:
        t.transfer(replies.TRANSFER_ERROR, TransferReason.BOOKING_ERROR)
        return
    if retry >= t.limits.booking_retry_max:
        t.transfer(replies.TRANSFER_NO_SLOT, TransferReason.SLOT_TAKEN)
        return
    pref = t.ctx.preference or Preference()
    t.set_ctx(replace(t.ctx, booking_retries=retry + 1, excluded=(*t.ctx.excluded, slot.start)))
    t.emit(BookingRetried(retry + 1, pref.label()))
    t.propose_or_transfer(pref, replies.SLOTS_INTRO_RETRY)


def step(
    conversation: Conversation,
    turn: TurnInput,
    now: datetime,
    limits: Limits,
    practice: Practice,
    taken: frozenset[datetime] = frozenset(),
    held: frozenset[datetime] = frozenset(),
) -> Decision:
    """Decide the next reply, state and events for one input. Never raises on caller input.

    ``taken`` are booked slot starts; ``held`` those proposed to other callers right now,
    offered only when nothing else fits (fewer lost booking races).
    """
    t = Turn(conversation, now, limits, practice, taken, held)
    if isinstance(turn, CallerSaid):
        _caller_said(t, turn)
    elif isinstance(turn, BookingDone):
        _booking_done(t, turn)
    elif isinstance(turn, BookingsFound):
        appointments.bookings_found(t, turn)
    elif isinstance(turn, BookingAt):
        appointments.booking_at(t, turn)
    elif isinstance(turn, CancelDone):
        appointments.cancel_done(t, turn)
    elif isinstance(turn, CallEnded):
        outcome = Outcome.INTENT_ROUTER if t.conv.state is S.INTENT_ROUTER else Outcome.ABANDONED
        t.end(outcome, turn.reason)
    elif isinstance(turn, Expire) and t.conv.outcome is None:
        t.emit(SessionExpired(t.conv.state, (now - t.conv.last_seen_at).total_seconds()))
        t.end(Outcome.EXPIRED)
    return t.decision()


def needs_calendar(conversation: Conversation) -> bool:
    """True when the next caller turn may propose slots, so the shell loads taken slots: any
    state that is not over, since what is known is never asked again (an opening that gives
    the name and the preference is answered with slots)."""
    return conversation.state not in TERMINAL


def slots_of(conversation: Conversation) -> tuple[Slot, ...]:
    """The slots currently proposed to the caller."""
    return conversation.context.proposed
