"""One conversation's facts as telemetry tells them: what the operators' checklist looks at.

Built by :func:`telemetry.events.fold` from the store's events or a log file's lines (the same
fold for both), and read by :mod:`service.stats` (causes, target table, reports) and the console.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from service.engine.states import BookingResult, Field, Outcome, State, purpose_of
from telemetry import names as n

# The status of a conversation that has no outcome yet (also a cause: ``Cause.IN_PROGRESS``).
IN_PROGRESS = "in_progress"


@dataclass(slots=True)
class CallFacts:
    """Everything the checklist looks at for one conversation, from the store or a log."""

    conv_id: str
    channel: str | None = None
    synthetic: bool = False  # rdv probe / rdv simulate: counted apart, in nothing else
    final_state: str | None = None
    outcome: str | None = None
    turns: int = 0
    ended_reason: str | None = None
    last_seen_at: datetime | None = None
    slot_lengths: list[int] = field(default_factory=list)
    booking_results: list[str] = field(default_factory=list)
    booking_retries: int = 0
    interruptions: int = 0  # positive barge-ins: a slot chosen while the list was read
    cut_turns: int = 0  # caller turns that spoke over the assistant (store only)
    anti_loop: bool = False
    expired: bool = False
    recovery_limits: list[str] = field(default_factory=list)
    recovery_steps: int = 0
    faq_states: list[str] = field(default_factory=list)
    human_requested: bool = False
    transfer_reason: str | None = None
    fillers: int = 0
    states_seen: set[str] = field(default_factory=set)
    confirmed_logged: bool = False
    cancelled_logged: bool = False
    # The state of an ``intent_override intent=faq`` whose ``faq_answered`` is still to come: the
    # engine writes both for one question (counted once), older engines only the first.
    faq_override: str | None = field(default=None, repr=False)

    # -- derived -----------------------------------------------------------------
    @property
    def long_slot_messages(self) -> int:
        """Slot messages longer than the seed's 350-character TTS threshold."""
        return sum(1 for length in self.slot_lengths if length > n.LONG_SLOT_MESSAGE_CHARS)

    @property
    def slot_taken(self) -> int:
        """Booking attempts lost because the slot was taken."""
        return self.booking_results.count(BookingResult.SLOT_TAKEN.value)

    @property
    def asked_phone(self) -> bool:
        """True when the caller was asked a call-back number (or failed to give one)."""
        return State.QUALIF_PHONE.value in self.states_seen or Field.PHONE.value in self.recovery_limits

    @property
    def purpose(self) -> str:
        """What the conversation was for (:func:`service.engine.states.purpose_of`)."""
        return purpose_of(self.states_seen, bool(self.faq_states)).value

    @property
    def books(self) -> bool:
        """True when the conversation belongs to the conversion population."""
        return self.purpose in n.CONVERSION_PURPOSES

    @property
    def status(self) -> str:
        """The outcome used by the stats: an :class:`Outcome` value, or ``in_progress``."""
        if self.outcome == Outcome.CONFIRMED or self.final_state == State.CONFIRMED or (
            self.outcome is None and self.confirmed_logged
        ):
            return Outcome.CONFIRMED.value
        if self.outcome is not None:
            return self.outcome
        if self.final_state == State.CANCELLED:
            return Outcome.CANCELLED.value
        if self.final_state == State.TRANSFERRED:
            return Outcome.TRANSFERRED.value
        if self.final_state == State.INTENT_ROUTER:
            return Outcome.INTENT_ROUTER.value
        return IN_PROGRESS

    def signals(self) -> list[str]:
        """The checklist's observations for this conversation, e.g. ``slot_taken x2``."""
        out: list[str] = []
        if self.slot_lengths:
            out.append(f"slots_sent max_length={max(self.slot_lengths)}")
        if self.interruptions:
            out.append(f"interruptions={self.interruptions}")
        if self.cut_turns:
            out.append(f"barge_in_turns={self.cut_turns}")
        if self.slot_taken:
            out.append(f"slot_taken x{self.slot_taken}")
        if self.booking_retries:
            out.append(f"booking_retry x{self.booking_retries}")
        if self.anti_loop:
            out.append("anti_loop")
        if self.expired:
            out.append("session_expired")
        for fld in self.recovery_limits:
            out.append(f"{n.LOG_RECOVERY_LIMIT} field={fld}")
        if self.recovery_steps:
            out.append(f"recovery_steps={self.recovery_steps}")
        for state in self.faq_states:
            out.append(f"faq state={state}")
        if self.human_requested:
            out.append("asked_for_human")
        if self.transfer_reason:
            out.append(f"transfer reason={self.transfer_reason}")
        if self.fillers:
            out.append(f"fillers={self.fillers}")
        return out
