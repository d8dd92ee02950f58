"""Past-tense facts the engine reports; the only output telemetry observes.

Each event carries what the seed's log line, its span and its metric need, and nothing
that would let telemetry steer the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.engine.states import (
    BookingResult,
    Channel,
    Field,
    MissField,
    MissReason,
    Outcome,
    Purpose,
    State,
    TransferReason,
)


@dataclass(frozen=True, slots=True)
class ConversationStarted:
    """A new conversation heard its first caller turn."""

    channel: Channel


@dataclass(frozen=True, slots=True)
class TurnReceived:
    """A caller turn is being handled (the seed's ``[FLOW]`` line)."""

    state: State
    turn: int
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The conversation moved from one state to another at ``at``."""

    from_state: State
    to_state: State
    at: datetime


@dataclass(frozen=True, slots=True)
class SlotsSent:
    """Three slots were proposed; ``message`` is the whole sentence read to the caller."""

    channel: Channel
    message: str
    slot_starts: tuple[datetime, ...]

    @property
    def length(self) -> int:
        """Characters in the slot message (what the TTS must say)."""
        return len(self.message)


@dataclass(frozen=True, slots=True)
class BookingAttempted:
    """The engine asked the store to book a slot (1-based ``slot_idx`` as the seed logs it)."""

    slot_idx: int
    slot_start: datetime
    retry: int


@dataclass(frozen=True, slots=True)
class BookingResulted:
    """The store answered a booking attempt."""

    result: BookingResult
    slot_start: datetime
    retry: int

    @property
    def success(self) -> bool:
        """True when the slot is now the caller's."""
        return self.result is BookingResult.SUCCESS


@dataclass(frozen=True, slots=True)
class BookingRetried:
    """A lost race led to new slots with the same preference."""

    retry: int
    preference: str


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The caller chose a slot while the list was being spoken (positive barge-in)."""

    slot_idx: int


@dataclass(frozen=True, slots=True)
class AppointmentConfirmed:
    """The appointment is booked and read back."""

    slot_label: str
    name: str
    slot_start: datetime


@dataclass(frozen=True, slots=True)
class AntiLoopTriggered:
    """Too many turns: the fallback menu was offered."""

    turn: int
    max_turns: int
    state: State


@dataclass(frozen=True, slots=True)
class SessionExpired:
    """The conversation was idle longer than its TTL."""

    state: State
    idle_seconds: float


@dataclass(frozen=True, slots=True)
class RecoveryStepped:
    """A field was not understood and is asked again with a clarifying message."""

    field: Field
    attempt: int


@dataclass(frozen=True, slots=True)
class RecoveryLimitReached:
    """A field failed ``attempts`` times: the call goes to ``to_state``."""

    field: Field
    attempts: int
    to_state: State


@dataclass(frozen=True, slots=True)
class NotUnderstood:
    """The engine could not use what the caller said in ``state`` for ``field``: a re-ask, a
    help or menu prompt, or (``fallback`` set) the recovery limit's transfer or menu.

    ``turn`` is the caller turn's number, as stored with its text (the not-understood inbox
    joins on it rather than copying the words)."""

    state: State
    field: MissField
    reason: MissReason
    turn: int
    fallback: State | None = None


@dataclass(frozen=True, slots=True)
class IntentOverridden:
    """A strong intent or a FAQ question pre-empted ``state``."""

    state: State
    intent: str
    to_state: State


@dataclass(frozen=True, slots=True)
class FillerDetected:
    """The caller said only a filler; the question is asked again briefly."""

    state: State


@dataclass(frozen=True, slots=True)
class FaqAnswered:
    """A practical question was answered from the practice's configuration."""

    topic: str
    state: State


@dataclass(frozen=True, slots=True)
class BookingCancelled:
    """An existing appointment was cancelled at the caller's request."""

    slot_start: datetime


@dataclass(frozen=True, slots=True)
class Transferred:
    """The call is handed over to a human from ``state``, for ``reason``; ``preference`` is
    the slot preference known then (what no slot matched, for ``no_slot``)."""

    reason: TransferReason
    state: State
    preference: str


@dataclass(frozen=True, slots=True)
class ConversationEnded:
    """The conversation got its one outcome."""

    channel: Channel
    outcome: Outcome
    state: State
    turns: int
    reason: str | None = None
    purpose: Purpose = Purpose.UNDECLARED


Event = (
    ConversationStarted
    | TurnReceived
    | StateChanged
    | SlotsSent
    | BookingAttempted
    | BookingResulted
    | BookingRetried
    | Interrupted
    | AppointmentConfirmed
    | AntiLoopTriggered
    | SessionExpired
    | RecoveryStepped
    | RecoveryLimitReached
    | NotUnderstood
    | IntentOverridden
    | FillerDetected
    | FaqAnswered
    | BookingCancelled
    | Transferred
    | ConversationEnded
)
