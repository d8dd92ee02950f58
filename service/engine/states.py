"""Conversation states, outcomes and channels: the engine's closed vocabularies."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a conversation stands; the values are the seed's log spelling."""

    START = "START"
    QUALIF_NAME = "QUALIF_NAME"
    QUALIF_PREF = "QUALIF_PREF"
    WAIT_CONFIRM = "WAIT_CONFIRM"
    QUALIF_PHONE = "QUALIF_PHONE"
    CONFIRMED = "CONFIRMED"
    CANCEL_IDENTIFY = "CANCEL_IDENTIFY"
    CANCEL_CONFIRM = "CANCEL_CONFIRM"
    CANCELLED = "CANCELLED"
    MODIFY_IDENTIFY = "MODIFY_IDENTIFY"
    MODIFY_CONFIRM = "MODIFY_CONFIRM"
    TRANSFERRED = "TRANSFERRED"
    INTENT_ROUTER = "INTENT_ROUTER"


TERMINAL: frozenset[State] = frozenset({State.CONFIRMED, State.CANCELLED, State.TRANSFERRED})

# The happy path in the order the seed's section 5.2 shows it: the funnel's order.
FUNNEL: tuple[State, ...] = (
    State.START,
    State.QUALIF_NAME,
    State.QUALIF_PREF,
    State.WAIT_CONFIRM,
    State.QUALIF_PHONE,
    State.CONFIRMED,
)


class Outcome(StrEnum):
    """How a conversation ended; exactly one per conversation."""

    CONFIRMED = "confirmed"
    TRANSFERRED = "transferred"
    INTENT_ROUTER = "intent_router"
    ABANDONED = "abandoned"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Channel(StrEnum):
    """Where the caller talks to us: a phone call through Vapi, or text."""

    VOICE = "voice"
    TEXT = "text"


class Field(StrEnum):
    """The pieces of information that have a recovery limit."""

    NAME = "name"
    SLOT_CHOICE = "slot_choice"
    PHONE = "phone"


class BookingResult(StrEnum):
    """What the store answered to a booking attempt."""

    SUCCESS = "success"
    SLOT_TAKEN = "slot_taken"
    ERROR = "error"


class TransferReason(StrEnum):
    """Why a conversation was handed over to a human (the ``reason`` label of transfers)."""

    CALLER_ASKED = "caller_asked"
    RECOVERY_LIMIT = "recovery_limit"
    NO_SLOT = "no_slot"
    SLOT_TAKEN = "slot_taken"
    BOOKING_ERROR = "booking_error"
    STORE_UNAVAILABLE = "store_unavailable"
    ANTI_LOOP = "anti_loop"
    NOT_VERIFIED = "not_verified"


class OverrideIntent(StrEnum):
    """Intents that pre-empt the current state (a FAQ answers and resumes)."""

    CANCEL = "cancel"
    MODIFY = "modify"
    HUMAN = "human"
    FAQ = "faq"


TERMINAL_OUTCOME: dict[State, Outcome] = {
    State.CONFIRMED: Outcome.CONFIRMED,
    State.CANCELLED: Outcome.CANCELLED,
    State.TRANSFERRED: Outcome.TRANSFERRED,
}
