"""One conversation's facts (what the checklist looks at) and their fold from the store's rows and events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.engine import events as ev
from service.engine.states import BookingResult, Field, Outcome, OverrideIntent, State, purpose_of
from telemetry import names as n

# The status of a conversation that has no outcome yet (also a cause: ``Cause.IN_PROGRESS``).
IN_PROGRESS = "in_progress"

# Event kinds (the engine's event class names, as the store keeps them) the answers read.
EVENT_KINDS: tuple[str, ...] = tuple(
    cls.__name__
    for cls in (
        ev.TurnReceived, ev.StateChanged, ev.SlotsSent, ev.BookingResulted, ev.BookingRetried,
        ev.Interrupted, ev.AppointmentConfirmed, ev.AntiLoopTriggered, ev.SessionExpired,
        ev.RecoveryStepped, ev.RecoveryLimitReached, ev.IntentOverridden, ev.FaqAnswered,
        ev.FillerDetected, ev.BookingCancelled, ev.Transferred,
    )
)


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



def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _apply_event(facts: CallFacts, kind: str, data: Mapping[str, Any]) -> None:
    """Fold one stored event (``kind`` is the engine event's class name) into the facts."""
    if kind == ev.TurnReceived.__name__:
        facts.states_seen.add(str(data.get("state")))
        if data.get("interrupted"):
            facts.cut_turns += 1
    elif kind == ev.StateChanged.__name__:
        facts.states_seen.add(str(data.get("to_state")))
    elif kind == ev.SlotsSent.__name__:
        length = data.get("length")
        facts.slot_lengths.append(length if isinstance(length, int) else len(str(data.get("message", ""))))
    elif kind == ev.BookingResulted.__name__:
        facts.booking_results.append(str(data.get("result")))
    elif kind == ev.BookingRetried.__name__:
        facts.booking_retries += 1
    elif kind == ev.Interrupted.__name__:
        facts.interruptions += 1
    elif kind == ev.AppointmentConfirmed.__name__:
        facts.confirmed_logged = True
    elif kind == ev.AntiLoopTriggered.__name__:
        facts.anti_loop = True
    elif kind == ev.SessionExpired.__name__:
        facts.expired = True
    elif kind == ev.RecoveryStepped.__name__:
        facts.recovery_steps += 1
    elif kind == ev.RecoveryLimitReached.__name__:
        facts.recovery_limits.append(str(data.get("field")))
    elif kind == ev.IntentOverridden.__name__:
        if data.get("intent") == OverrideIntent.HUMAN:
            facts.human_requested = True
    elif kind == ev.FaqAnswered.__name__:
        facts.faq_states.append(str(data.get("state")))
    elif kind == ev.FillerDetected.__name__:
        facts.fillers += 1
    elif kind == ev.BookingCancelled.__name__:
        facts.cancelled_logged = True
    elif kind == ev.Transferred.__name__:
        facts.transfer_reason = str(data.get("reason"))


def facts_from_store(rows: Iterable[Mapping[str, Any]], events: Iterable[Any]) -> list[CallFacts]:
    """Facts of the conversations in ``rows`` (``conversations_seen_since``) from their events
    (``EventRecord``s, oldest first); events of other conversations are ignored."""
    by_id: dict[str, CallFacts] = {}
    for row in rows:
        conv_id = str(row["conv_id"])
        by_id[conv_id] = CallFacts(
            conv_id=conv_id,
            channel=row.get("channel"),
            final_state=row.get("state"),
            outcome=row.get("outcome"),
            turns=int(row.get("turn_count") or 0),
            ended_reason=row.get("ended_reason"),
            last_seen_at=_when(row.get("last_seen_at")),
            synthetic=bool(row.get("synthetic")) or n.is_synthetic(conv_id),
        )
    for event in events:
        facts = by_id.get(event.conv_id)
        if facts is not None:
            _apply_event(facts, event.kind, event.data)
    return list(by_id.values())

