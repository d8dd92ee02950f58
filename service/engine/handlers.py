"""The per-state handlers of a caller turn that no global check answered: one row per state.

Taking an appointment is :mod:`service.engine.booking_flow`, cancelling or moving one
:mod:`service.engine.appointments`; a conversation already over only says so.
"""

from __future__ import annotations

from service.engine import appointments, booking_flow, replies
from service.engine.nlu.extract import Extraction
from service.engine.states import State
from service.engine.turn import Turn

S = State


def enter_identify(t: Turn, to: State, x: Extraction | None = None) -> None:
    """Start cancelling (``to`` CANCEL_IDENTIFY) or moving (MODIFY_IDENTIFY) an appointment."""
    appointments.enter(t, to, x if x is not None else Extraction(text=""))


def _intent_router(t: Turn, x: Extraction, interrupted: bool) -> None:
    booking_flow.intent_router(t, x, interrupted, lambda turn, to: enter_identify(turn, to, x))


def terminal(t: Turn, x: Extraction, interrupted: bool) -> None:
    """A turn of a conversation already over: transferred, cancelled or confirmed, again."""
    if t.state is S.TRANSFERRED:
        t.say(replies.pick(replies.TRANSFER, t.nth()))
        t.directive = "transfer"
    elif t.state is S.CANCELLED:
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
    S.CONFIRMED: terminal,
    S.CANCELLED: terminal,
    S.TRANSFERRED: terminal,
}
