"""The engine's one entry point: ``step(conversation, input, now, limits, practice, taken)``.

Pure: it reads no clock, does no I/O and logs nothing. Side effects come back as an
:class:`~service.engine.model.Action` the shell performs; its result is the next input.
A step accumulates what it decides in a :class:`~service.engine.turn.Turn`. Every caller turn is
understood at most once (:mod:`service.engine.understand`); what holds for every state
(expiry, anti-loop, fillers, strong intents, practical questions) is the ordered checks of
:mod:`service.engine.checks`, the rest the state's handler (:mod:`service.engine.handlers`):
taking an appointment in :mod:`service.engine.booking_flow`, cancelling or moving one in
:mod:`service.engine.appointments`. Results of the shell's actions (a booking, appointments
found, a cancellation) and the ends of calls are decided here.
"""

from __future__ import annotations

from datetime import datetime

from service.engine import appointments, checks, labels, replies
from service.engine.events import (
    AppointmentConfirmed,
    BookingResulted,
    BookingRetried,
    SessionExpired,
)
from service.engine.frozen import replace
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
    TurnInput,
)
from service.engine.nlu import SlotRef
from service.engine.practice import Practice
from service.engine.states import (
    TERMINAL,
    BookingResult,
    Outcome,
    State,
    TransferReason,
)
from service.engine.turn import Turn
from service.engine.understand import understand

S = State
APPOINTMENT_STATES = frozenset({S.CANCEL_IDENTIFY, S.MODIFY_IDENTIFY, S.CANCEL_CONFIRM, S.MODIFY_CONFIRM})


def _refs(t: Turn) -> tuple[SlotRef, ...]:
    """What the caller may be choosing among: the proposed slots, or their appointments."""
    state = t.state
    if state is S.WAIT_CONFIRM:
        return t.slot_refs()
    if state in APPOINTMENT_STATES and state is not S.MODIFY_CONFIRM:
        # Not while asking whether to move one: "oui, plutôt vendredi" is where to, not which.
        return appointments.refs(t)
    return ()


# --------------------------------------------------------------------------- caller turns
def _caller_said(t: Turn, said: CallerSaid) -> None:
    checks.open_turn(t, said)
    state = t.state
    heard = checks.Heard(said, lambda: understand(said.text, state, t.local(t.now), _refs(t), t.practice))
    checks.answer(t, heard)


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
        if moved:
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
        outcome = Outcome.INTENT_ROUTER if t.state is S.INTENT_ROUTER else Outcome.ABANDONED
        t.end(outcome, turn.reason)
    elif isinstance(turn, Expire) and t.outcome is None:
        t.emit(SessionExpired(t.state, (now - t.conv.last_seen_at).total_seconds()))
        t.end(Outcome.EXPIRED)
    return t.decision()


def needs_calendar(conversation: Conversation) -> bool:
    """True when the next caller turn may propose slots, so the shell loads taken slots: any
    state that is not over, since what is known is never asked again (an opening that gives
    the name and the preference is answered with slots)."""
    return conversation.state not in TERMINAL


