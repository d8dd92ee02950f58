"""The store interface: conversations, turns, events, bookings and Vapi call reports.

Two Protocols, both served by SQLite (a file or memory) and PostgreSQL: :class:`Store`, what
the turn path and the service's upkeep write and read, and :class:`OperatorReads`, the answers
operators read (timelines, conversation summaries, event scans), with named shapes.
:class:`Backend` is both. Booking is a conditional insert guarded by a uniqueness constraint
(never read-then-write), so of many callers racing for one slot exactly one gets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NotRequired, Protocol, TypedDict

import orjson

from service.engine.model import BookingRef, Conversation, RdvError, Slot


class StoreError(RdvError):
    """The store could not do what was asked (unreachable, timed out, corrupted)."""


class ConcurrentTurnError(StoreError):
    """Another request saved this conversation first (optimistic concurrency lost)."""


class DuplicateTurnError(StoreError):
    """A turn with this request key is already stored for the conversation."""


class SlotTakenError(StoreError):
    """The booking a turn carried lost its slot to another booking: nothing was written."""


class BookingGoneError(StoreError):
    """The appointment a turn cancels (or moves) is no longer active: nothing was written."""


@dataclass(frozen=True, slots=True)
class StoredConversation:
    """A conversation as loaded, with its row version and the shell's telemetry metadata."""

    conversation: Conversation
    version: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One handled caller turn, appended before its reply is returned."""

    conv_id: str
    turn: int
    request_key: str | None
    text: str
    reply: str
    state_before: str
    state_after: str
    at: datetime
    interrupted: bool = False
    directive: str | None = None
    trace_id: str | None = None


class EventRecord:
    """An engine event as stored for timelines and stats (``kind`` is the event class name).
    ``encoded``, when set, is ``data`` as the JSON text to store (the codec encodes an
    engine event once); a store encodes ``data`` itself otherwise. A record may be made
    from its text alone (``data=None``): ``data`` is then read from it when first asked
    for (a turn's save writes the text and never reads it). Records compare by conversation,
    moment, kind and data."""

    __slots__ = ("_data", "at", "conv_id", "encoded", "kind")

    def __init__(self, conv_id: str, at: datetime, kind: str, data: dict[str, Any] | None,
                 encoded: str | None = None) -> None:
        if data is None and encoded is None:
            raise ValueError("an event record needs its data or their JSON text")
        self.conv_id = conv_id
        self.at = at
        self.kind = kind
        self._data = data
        self.encoded = encoded

    @property
    def data(self) -> dict[str, Any]:
        """The event's plain JSON values."""
        data = self._data
        if data is None:
            assert self.encoded is not None
            data = self._data = orjson.loads(self.encoded)
        return data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventRecord):
            return NotImplemented
        return (self.conv_id, self.at, self.kind, self.data) == (other.conv_id, other.at, other.kind, other.data)

    __hash__ = None  # type: ignore[assignment]  # (its data is a dict)

    def __repr__(self) -> str:
        return f"EventRecord(conv_id={self.conv_id!r}, at={self.at!r}, kind={self.kind!r}, data={self.data!r})"


@dataclass(frozen=True, slots=True)
class BookingWrite:
    """A booking made by a turn, written in the turn's own version-checked transaction:
    the caller hears it confirmed if and only if it is stored. ``replaces`` (a move) is
    cancelled in that same transaction."""

    booking_id: str
    slot: Slot
    conv_id: str
    name: str
    phone: str | None
    at: datetime
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class CancelWrite:
    """An appointment cancelled by a turn, in the turn's own transaction."""

    booking_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class UnconfirmedBooking:
    """An active booking that no stored turn of its conversation read back to the caller."""

    booking_id: str
    conv_id: str
    slot_start: datetime
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReplaySource:
    """What ``rdv replay`` reads, in three queries: the conversations of a window (their
    stored rows), their turns in order, and every booking whose slot starts in or after it
    (to rebuild the calendar as it was at each turn)."""

    conversations: list[Conversation]
    ended_reasons: dict[str, str | None]
    turns: list[TurnRecord]
    bookings: list[BookingRow]


@dataclass(frozen=True, slots=True)
class BookingRow:
    """One stored booking with its life span (datetimes tz-aware UTC)."""

    booking_id: str
    conv_id: str
    slot: Slot
    name: str
    phone: str | None
    created_at: datetime
    cancelled_at: datetime | None


class TimelineTurn(TypedDict):
    """One caller turn in a timeline (``at`` ISO with offset; ``action`` the directive)."""

    turn: int
    at: str
    text: str
    reply: str
    state_before: str
    state_after: str
    interrupted: bool
    action: str | None
    trace_id: str | None


class TimelineEvent(TypedDict):
    """One engine event in a timeline (``kind`` the event class name)."""

    at: str
    kind: str
    data: dict[str, Any]


class TimelineBooking(TypedDict):
    """One booking of the conversation in a timeline (times as fixed-width UTC ISO text)."""

    id: str
    conv_id: str
    slot_start: str
    slot_end: str
    name: str
    phone: str | None
    created_at: str
    cancelled_at: str | None


class Timeline(TypedDict):
    """One conversation and everything that happened in it, in order: the answer of
    ``GET /api/conversations/{conv_id}`` and of the console's conversation page (the route
    adds ``trace_id`` and ``trace_url``)."""

    conv_id: str
    channel: str
    state: str
    outcome: str | None
    turn_count: int
    epoch: int
    created_at: str
    last_seen_at: str
    vapi_call_id: str | None
    caller_phone: str | None
    ended_reason: str | None
    turns: list[TimelineTurn]
    events: list[TimelineEvent]
    bookings: list[TimelineBooking]
    call_report: dict[str, Any] | None


class TracedTimeline(Timeline):
    """A timeline as operators read it: with its trace id, and the trace link when
    ``RDV_TRACE_UI_URL`` is set."""

    trace_id: str
    trace_url: NotRequired[str]


class ConversationSummary(TypedDict):
    """A conversation as operator scans count it (datetimes tz-aware UTC)."""

    conv_id: str
    channel: str
    state: str
    outcome: str | None
    turn_count: int
    created_at: datetime
    last_seen_at: datetime
    ended_reason: str | None
    synthetic: bool


class Store(Protocol):
    """What the turn path and the service's upkeep (migrations, purge, ``rdv forget``, the
    reaper's lease, request signatures, readiness) persist and read. All datetimes are
    tz-aware (stored as UTC)."""

    @property
    def enforces_timeout(self) -> bool:
        """True when the store bounds its own calls by its timeout (SQLite: inline, or on its
        writer thread when the file is locked): the turn path then sets no timer per call."""

    async def open(self) -> None:
        """Connect and apply schema migrations (safe from two replicas at once)."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> None:
        """Raise :class:`StoreError` when the store cannot answer."""

    async def warnings(self) -> list[str]:
        """What the operator should change in the database's own configuration for rdv to
        stay fast, each as one sentence (none: nothing). Read once the store is open."""

    async def schema_version(self) -> int:
        """The last schema step applied (``rdv migrate`` reports it)."""

    async def purge_before(self, cutoff: datetime) -> int:
        """Delete ended conversations last seen before ``cutoff`` (their turns, events and Vapi
        reports) and bookings whose slot ended before it, after adding each conversation to the
        anonymous ``daily_counts`` (day, channel, outcome, synthetic); how many were purged."""

    async def forget_caller(self, phone: str) -> tuple[int, int]:
        """Erase what identifies the caller ``phone`` (E.164): the number and the names in their
        conversations (caller id or number given), the words of their turns, Vapi's reports,
        and the name and number on their bookings (the slots stay taken). States, outcomes and
        events stay, so counts do not change. The conversations' versions move, so a turn
        loaded before and saved after is a conflict and cannot write the erased data back.
        Returns (conversations, bookings) touched."""

    async def load(self, conv_id: str) -> StoredConversation | None:
        """The conversation with this id, or None."""

    async def find_turn(self, conv_id: str, request_key: str) -> TurnRecord | None:
        """The stored turn with this request key (idempotent retries), or None."""

    async def save_turn(
        self,
        conversation: Conversation,
        expected_version: int | None,
        meta: dict[str, Any],
        turn: TurnRecord | None,
        events: list[EventRecord],
        *,
        booking: BookingWrite | None = None,
        cancel: CancelWrite | None = None,
    ) -> int:
        """Upsert the conversation, append the turn and events, and write the turn's booking
        or cancellation, in one durable transaction: all of it or nothing.

        ``expected_version`` is None for a new conversation (insert; an existing row raises
        :class:`ConcurrentTurnError`), otherwise the version loaded (mismatch raises
        :class:`ConcurrentTurnError`). A turn whose request key exists raises
        :class:`DuplicateTurnError`; a booking whose slot is taken raises
        :class:`SlotTakenError`; a cancellation (or the booking a move replaces) that is no
        longer active raises :class:`BookingGoneError`. Nothing is written then. Returns the
        new version.
        """

    async def taken_slots(self, start: datetime, end: datetime) -> frozenset[datetime]:
        """Start times of active bookings in ``[start, end)``."""

    async def held_slots(self, since: datetime, except_conv: str) -> frozenset[datetime]:
        """Starts of the slots proposed to other conversations still choosing (state
        WAIT_CONFIRM, no outcome) last seen since ``since``."""

    async def find_bookings(self, phone: str, after: datetime) -> tuple[BookingRef, ...]:
        """Active bookings starting after ``after`` made from ``phone``, by start (with the
        patient's name). Only a verified caller id is passed: names never find appointments."""

    async def booking_at(self, start: datetime) -> BookingRef | None:
        """The active booking starting at ``start``, or None (the opt-in identification from
        another number: the engine compares the name and reads nothing out unless it matches)."""

    async def booking_active(self, booking_id: str) -> bool:
        """True while this appointment is booked and not cancelled."""

    async def release_bookings(self, booking_ids: list[str], at: datetime) -> int:
        """Cancel these active bookings (the repair of :meth:`unconfirmed_bookings`); how many."""

    async def save_call_report(self, conv_id: str, report: dict[str, Any], at: datetime) -> bool:
        """Store (or replace) Vapi's end-of-call report; True when it is the first one."""

    async def idle_conversations(self, idle_before: datetime, channel: str) -> list[StoredConversation]:
        """Not-ended conversations of ``channel`` whose ``last_seen_at`` is before ``idle_before``."""

    async def try_lock(self, name: str, holder: str, until: datetime, now: datetime) -> bool:
        """Take or renew a named lease (one reaper among replicas); False if someone else holds it."""

    async def remember_signature(self, key: str, now: datetime, forget_before: datetime) -> bool:
        """Record an accepted request signature; False when it was already recorded (a replay).
        Signatures recorded before ``forget_before`` are forgotten in the same transaction."""

    async def probe_write(self, instance: str, now: datetime, deadline: float) -> None:
        """Prove that a turn could be written now: a committed write through the path turns
        take, within about ``deadline`` seconds, without holding the event loop; raise
        :class:`StoreError` saying why not (locked, disk full, read-only…)."""

    async def active_counts(self) -> dict[str, int]:
        """How many conversations have no outcome yet, per channel (the gauge's count, read by
        the replica holding its lease)."""


class OperatorReads(Protocol):
    """What operators read (the console, ``/api/stats``, ``rdv stats``/``misses``/``replay``,
    the start-up check of unconfirmed bookings): never on the turn path."""

    async def unconfirmed_bookings(self) -> list[UnconfirmedBooking]:
        """Active bookings whose conversation never read them back to the caller (no stored
        ``AppointmentConfirmed`` event for that slot): left by a crash of an older version."""

    async def conversation_ids_by_call(self, vapi_call_id: str) -> str | None:
        """The conversation id of a Vapi call id, or None."""

    async def timeline(self, conv_id: str) -> Timeline | None:
        """Turns, events, bookings and call report of one conversation, in order; None if unknown."""

    async def conversations_seen_since(self, since: datetime) -> list[ConversationSummary]:
        """The summaries of conversations whose ``last_seen_at`` >= ``since``."""

    async def events_since(self, since: datetime, kinds: tuple[str, ...]) -> list[EventRecord]:
        """Events of these kinds at or after ``since``, oldest first."""

    async def replay_source(self, since: datetime, until: datetime, conv_id: str | None = None) -> ReplaySource:
        """Conversations last seen in ``[since, until)`` (or the one ``conv_id``), their turns
        and the bookings whose slots start after ``since`` minus a day; reads only."""

    async def daily_counts(self) -> list[tuple[str, str, str, bool, int]]:
        """The anonymous counts of purged conversations: (day, channel, outcome, synthetic, n)."""



class Backend(Store, OperatorReads, Protocol):
    """A store as the service opens it: the turn path and the operators' reads."""
