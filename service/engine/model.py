"""Frozen values the engine reads and returns: conversation, inputs, decisions and actions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal

from service.engine.events import Event
from service.engine.frozen import replace
from service.engine.states import (
    BookingResult,
    Channel,
    Field,
    Intent,
    Outcome,
    Purpose,
    Retry,
    State,
)


class RdvError(Exception):
    """Base of every error rdv raises on purpose."""


class EngineInvariantError(RdvError):
    """The engine tried a transition its table does not allow: a bug, never caller input."""


@dataclass(frozen=True, slots=True)
class Slot:
    """One appointment slot in the practice's calendar (tz-aware, end exclusive)."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Window:
    """A span of the day: a slot fits when it starts at or after ``start`` and ends at or
    before ``end`` (either bound may be open)."""

    start: time | None = None
    end: time | None = None


@dataclass(frozen=True, slots=True)
class Preference:
    """When the caller would like to come, as a set of constraints the calendar honours.

    ``period``, ``day``, ``after`` and ``before`` are the first-wave fields (kept: logs,
    metrics and stored contexts use them). The constraint fields narrow further; every one
    of them must hold for a slot to be proposed:

    - ``days`` wanted dates (any of), ``weekdays`` wanted weekdays (0 = Monday, any of);
    - ``not_days`` / ``not_weekdays`` excluded dates and weekdays;
    - ``windows`` wanted spans of the day (any of), ``not_windows`` excluded spans;
    - ``from_day`` / ``until_day`` the earliest / latest acceptable date;
    - ``asap`` the earliest free slot first ("le plus tôt possible").
    """

    period: Literal["morning", "afternoon", "any"] = "any"
    day: date | None = None
    after: time | None = None
    before: time | None = None
    days: tuple[date, ...] = ()
    weekdays: tuple[int, ...] = ()
    not_days: tuple[date, ...] = ()
    not_weekdays: tuple[int, ...] = ()
    windows: tuple[Window, ...] = ()
    not_windows: tuple[Window, ...] = ()
    from_day: date | None = None
    until_day: date | None = None
    asap: bool = False

    def label(self) -> str:
        """The short form used in logs and metrics (morning / afternoon / any)."""
        return self.period


@dataclass(frozen=True, slots=True)
class BookingRef:
    """An existing appointment found for a caller (cancel / modify flows); ``name`` is the
    patient's, as booked."""

    booking_id: str
    slot: Slot
    name: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """What the caller said of an appointment they hold ("celui de mardi", "le rendez-vous du
    8 à 10h", "celui de ma fille", "au nom d'Inès Brossard"): every field set must match."""

    day: date | None = None
    weekday: int | None = None
    day_of_month: int | None = None
    at: time | None = None
    relation: str | None = None
    patient: str | None = None

    @property
    def empty(self) -> bool:
        """True when the caller said nothing that singles an appointment out."""
        return self == Lookup()


@dataclass(frozen=True, slots=True)
class Limits:
    """The SPEC's constants as they apply to one channel."""

    session_ttl_minutes: int
    max_turns_anti_loop: int
    confirm_retry_max: int
    booking_retry_max: int
    recovery_limits: Mapping[Field, int]
    slots_message_max_chars: int | None
    recovery_fallback: State = State.TRANSFERRED


@dataclass(frozen=True, slots=True)
class Context:
    """What the engine remembers between turns (persisted as JSON by the store)."""

    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    preference: Preference | None = None
    proposed: tuple[Slot, ...] = ()
    excluded: tuple[datetime, ...] = ()
    chosen: int | None = None
    fails: Mapping[Retry, int] = field(default_factory=dict)
    booking_retries: int = 0
    booked: BookingRef | None = None
    found: tuple[BookingRef, ...] = ()
    modifying: BookingRef | None = None
    slots_message: str | None = None
    # What the caller wants (book, cancel, modify), once said.
    intent: Intent | None = None
    # The appointment is for someone else: the patient's name and the caller's relation to
    # them ("fille", "fils", "autre"…); the caller's number stays the contact.
    patient_first: str | None = None
    patient_last: str | None = None
    relation: str | None = None
    # Cancel / move: what the caller said of the appointment, and the one it designates.
    lookup: Lookup | None = None
    target: BookingRef | None = None
    # What the conversation is for, as shown so far (states entered, FAQ answered).
    purpose: Purpose = Purpose.UNDECLARED

    @property
    def full_name(self) -> str:
        """The caller's name as read back ("Jean Dupont", "Monsieur Martin" → "Martin")."""
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    @property
    def patient_name(self) -> str:
        """The patient's name when the appointment is for someone else ("Inès Brossard")."""
        return " ".join(p for p in (self.patient_first, self.patient_last) if p)

    @property
    def for_someone_else(self) -> bool:
        """True when the caller books for another person (a relation or a patient was named)."""
        return self.relation is not None or self.patient_last is not None or self.patient_first is not None

    def failed(self, key: Retry) -> int:
        """How many times ``key`` was not understood so far."""
        return self.fails.get(key, 0)

    def with_fail(self, key: Retry) -> Context:
        """A copy with one more failure counted for ``key``."""
        fails = dict(self.fails)
        fails[key] = fails.get(key, 0) + 1
        return replace(self, fails=fails)

    def without_fail(self, *keys: Retry) -> Context:
        """A copy with the failure counters of ``keys`` reset (this context when none is set)."""
        if not any(k in self.fails for k in keys):
            return self
        fails = {k: v for k, v in self.fails.items() if k not in keys}
        return replace(self, fails=fails)


@dataclass(frozen=True, slots=True)
class Conversation:
    """One call or chat session, as stored between turns."""

    conv_id: str
    channel: Channel
    state: State
    turn_count: int
    created_at: datetime
    last_seen_at: datetime
    state_entered_at: datetime
    context: Context = Context()
    outcome: Outcome | None = None
    vapi_call_id: str | None = None
    caller_phone: str | None = None
    epoch: int = 0
    # Test traffic (``rdv probe``, ``rdv simulate``): kept out of every business number.
    synthetic: bool = False

    @property
    def ended(self) -> bool:
        """True once the conversation has its one outcome."""
        return self.outcome is not None

    @staticmethod
    def new(
        conv_id: str,
        channel: Channel,
        now: datetime,
        *,
        caller_phone: str | None = None,
        vapi_call_id: str | None = None,
        epoch: int = 0,
        synthetic: bool = False,
    ) -> Conversation:
        """A conversation that has not heard the caller yet."""
        return Conversation(
            conv_id=conv_id,
            channel=channel,
            state=State.START,
            turn_count=0,
            created_at=now,
            last_seen_at=now,
            state_entered_at=now,
            caller_phone=caller_phone,
            vapi_call_id=vapi_call_id,
            epoch=epoch,
            synthetic=synthetic,
        )


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class CallerSaid:
    """A caller turn; ``interrupted`` when it cut the assistant's last reply short."""

    text: str
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class BookingDone:
    """The store's answer to a :class:`Book` action."""

    result: BookingResult
    booking_id: str | None = None


@dataclass(frozen=True, slots=True)
class BookingsFound:
    """The store's answer to a :class:`FindBookings` action."""

    bookings: tuple[BookingRef, ...]


@dataclass(frozen=True, slots=True)
class BookingAt:
    """The store's answer to a :class:`FindBookingAt` action: the active booking at that
    start, or None. The engine compares the name itself and reads nothing out unless it matches."""

    booking: BookingRef | None


@dataclass(frozen=True, slots=True)
class CancelDone:
    """The store's answer to a :class:`CancelBooking` action."""

    ok: bool


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The telephony side ended the call (Vapi status ``ended`` or end-of-call report)."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Expire:
    """The reaper found the conversation idle past its TTL."""


TurnInput = CallerSaid | BookingDone | BookingsFound | BookingAt | CancelDone | CallEnded | Expire

# --------------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Book:
    """Book ``slot`` atomically; ``replaces`` is cancelled in the same transaction."""

    slot: Slot
    name: str
    phone: str | None
    slot_idx: int
    retry: int
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class FindBookings:
    """Look up the future appointments booked from ``phone``: the caller's **verified** number
    (the caller id, never a number dictated during the call). Names never find appointments."""

    phone: str


@dataclass(frozen=True, slots=True)
class FindBookingAt:
    """Look up the active appointment starting at ``start`` (a practice that opted in to
    cancellations from another number checks the patient's full name against it)."""

    start: datetime


@dataclass(frozen=True, slots=True)
class CancelBooking:
    """Cancel one appointment, freeing its slot."""

    booking_id: str


Action = Book | FindBookings | FindBookingAt | CancelBooking

Directive = Literal["transfer", "end"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine decided: the new conversation, what to say, what happened, what to do."""

    conversation: Conversation
    reply: str
    events: tuple[Event, ...] = ()
    action: Action | None = None
    directive: Directive | None = None
