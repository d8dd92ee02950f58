"""Conversation states, outcomes and channels: the engine's closed vocabularies."""

from __future__ import annotations

from collections.abc import Iterable
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


class MissField(StrEnum):
    """What the engine asked for and could not use (the not-understood inbox's fields)."""

    INTENT = "intent"
    NAME = "name"
    PREFERENCE = "preference"
    SLOT_CHOICE = "slot_choice"
    PHONE = "phone"
    MENU = "menu"
    YES_NO = "yes_no"


class MissReason(StrEnum):
    """Why a caller turn could not be used."""

    NOTHING_FOUND = "nothing_found"  # nothing of what was asked was heard
    REFUSED = "refused"  # the caller declined, or asked why, after the explanation
    FIRST_NAME_ONLY = "first_name_only"  # a first name again, the last name still missing
    AMBIGUOUS = "ambiguous"  # a bare "oui" while three slots are proposed


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


class Intent(StrEnum):
    """What the caller asks for, as understood from one turn (stored in a conversation's
    context by value: "book", "cancel", "modify"). ``FAQ_*`` are practical questions, their
    topic in :data:`FAQ_TOPIC`."""

    BOOK = "book"
    CANCEL = "cancel"
    MODIFY = "modify"
    HUMAN = "human"
    FAQ_ADDRESS = "faq:address"
    FAQ_HOURS = "faq:hours"
    FAQ_PRICE = "faq:price"
    FAQ_PARKING = "faq:parking"
    FAQ_ACCESS = "faq:access"
    FAQ_OTHER = "faq:other"


# The practice's FAQ entry (``[faq]`` in its file) each practical question reads.
FAQ_TOPIC: dict[Intent, str] = {
    Intent.FAQ_ADDRESS: "address",
    Intent.FAQ_HOURS: "hours",
    Intent.FAQ_PRICE: "price",
    Intent.FAQ_PARKING: "parking",
    Intent.FAQ_ACCESS: "access",
    Intent.FAQ_OTHER: "other",
}


class Retry(StrEnum):
    """The counters of a conversation's misunderstandings and retries (stored in its context
    by value; reset when the question is answered)."""

    ANTI_LOOP = "anti_loop"  # times the anti-loop guard fired
    INTENT = "intent"  # openings without a request
    MENU = "menu"  # menu answers not understood
    NAME = "name"  # Field.NAME
    NAME_WHY = "name_why"  # the explanation of why the name is needed (given once, not counted)
    PREFERENCE = "preference"  # preference answers not understood
    WHICH = "which"  # a bare "oui" while several slots are proposed (asked once which)
    CONFIRM = "confirm"  # slot-choice answers not understood, before the recovery counts
    SLOT_CHOICE = "slot_choice"  # Field.SLOT_CHOICE
    PHONE = "phone"  # Field.PHONE
    # A bare "oui" heard after a question was asked again, one free per re-ask (not failures).
    ACK_NAME = "ack_name"
    ACK_SLOT_CHOICE = "ack_slot_choice"
    ACK_PHONE = "ack_phone"
    ACK_MENU = "ack_menu"


TERMINAL_OUTCOME: dict[State, Outcome] = {
    State.CONFIRMED: Outcome.CONFIRMED,
    State.CANCELLED: Outcome.CANCELLED,
    State.TRANSFERRED: Outcome.TRANSFERRED,
}


class Purpose(StrEnum):
    """What a conversation was for, as far as it went: the population of each business rate."""

    BOOK = "book"
    MOVE = "move"
    CANCEL = "cancel"
    INFORMATION = "information"  # only practical questions (FAQ) were answered
    UNDECLARED = "undeclared"  # ended before saying what it wanted (greeting, a human at once)


# The states that show a purpose; the strongest purpose seen wins (a move goes through the
# booking states, a cancellation that turns into a new booking is a booking).
STATE_PURPOSE: dict[State, Purpose] = {
    State.MODIFY_IDENTIFY: Purpose.MOVE,
    State.MODIFY_CONFIRM: Purpose.MOVE,
    State.QUALIF_NAME: Purpose.BOOK,
    State.QUALIF_PREF: Purpose.BOOK,
    State.WAIT_CONFIRM: Purpose.BOOK,
    State.QUALIF_PHONE: Purpose.BOOK,
    State.CONFIRMED: Purpose.BOOK,
    State.CANCEL_IDENTIFY: Purpose.CANCEL,
    State.CANCEL_CONFIRM: Purpose.CANCEL,
}
PURPOSE_STRENGTH: tuple[Purpose, ...] = (
    Purpose.UNDECLARED, Purpose.INFORMATION, Purpose.CANCEL, Purpose.BOOK, Purpose.MOVE,
)


def stronger(a: Purpose, b: Purpose) -> Purpose:
    """The stronger of two purposes (see :data:`PURPOSE_STRENGTH`)."""
    return a if PURPOSE_STRENGTH.index(a) >= PURPOSE_STRENGTH.index(b) else b


def purpose_of(states: Iterable[str], faq_answered: bool) -> Purpose:
    """The purpose shown by the states a conversation visited and whether a FAQ was answered."""
    found = Purpose.INFORMATION if faq_answered else Purpose.UNDECLARED
    for state in states:
        shown = STATE_PURPOSE.get(State(state)) if state in State.__members__ else None
        if shown is not None:
            found = stronger(found, shown)
    return found
