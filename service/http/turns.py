"""The turn loop: load, step, perform actions, step again with the result, save, reply.

The turn is saved (conversation, turn, events) in one durable transaction before its
reply is returned; telemetry observes each engine step as it happens.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from service.clock import Clock
from service.config import Settings
from service.engine import replies
from service.engine.events import Event
from service.engine.model import (
    Action,
    Book,
    BookingAt,
    BookingDone,
    BookingsFound,
    CallEnded,
    CallerSaid,
    CancelBooking,
    CancelDone,
    Conversation,
    Decision,
    Directive,
    Expire,
    FindBookingAt,
    FindBookings,
    Limits,
    RdvError,
    TurnInput,
)
from service.engine.practice import Practice
from service.engine.states import TERMINAL, BookingResult, Channel, State
from service.engine.step import needs_calendar, step
from service.storage.base import (
    ConcurrentTurnError,
    DuplicateTurnError,
    EventRecord,
    Store,
    StoredConversation,
    StoreError,
    TurnRecord,
)
from service.storage.sqlite import SqliteStore
from telemetry import Telemetry

T = TypeVar("T")
SAVE_ATTEMPTS = 3
# Vapi's user-interrupted message marks the conversation (in its stored meta, so any replica
# sees it); the next turn within this many seconds is treated as a barge-in.
BARGE_IN_KEY = "barge_in_at"
BARGE_IN_SECONDS = 30.0


class StoreUnavailableError(RdvError):
    """The store did not answer in time; the caller gets a graceful fallback."""


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """One caller turn as an adapter hands it over."""

    conv_id: str
    text: str
    channel: Channel
    route: str
    caller_phone: str | None = None
    vapi_call_id: str | None = None
    interrupted: bool = False
    request_key: str | None = None
    # What the caller actually heard of the previous reply (Vapi re-sends the spoken part of
    # an interrupted reply); a slot list heard only in part makes this turn a barge-in.
    heard: str | None = None
    # False for a call that is over on the telephony side: a late turn must not start it again.
    reopen: bool = True


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What the adapter serialises back to the caller."""

    conv_id: str
    turn: int
    state: State
    reply: str
    ended: bool
    directive: Directive | None
    trace_id: str
    replayed: bool = False


def jsonable(value: Any) -> Any:
    """Events and contexts as plain JSON values (datetimes ISO, enums by value)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k.value if isinstance(k, enum.Enum) else k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [jsonable(v) for v in value]
    return value


def _seconds_since(iso: str, now: datetime) -> float:
    try:
        return (now - datetime.fromisoformat(iso)).total_seconds()
    except (ValueError, TypeError):
        return float("inf")


def _squash(text: str) -> str:
    return " ".join(text.split()).casefold()


def slot_list_cut_short(slots_message: str | None, heard: str | None) -> bool:
    """True when ``heard`` ends inside ``slots_message``: the list was cut while spoken.

    Vapi's history holds only what text-to-speech actually said of an interrupted reply, so
    the last assistant message then ends with a strict prefix of the slot message.
    """
    if not slots_message or not heard:
        return False
    message, spoken = _squash(slots_message), _squash(heard)
    if message in spoken:
        return False
    anchor = message[: min(20, len(message))]
    at = spoken.rfind(anchor)
    if at < 0:
        return False
    tail = spoken[at:]
    return message.startswith(tail) and len(tail) < len(message)


def event_records(conv_id: str, events: Sequence[Event], at: datetime) -> list[EventRecord]:
    """Engine events as store rows; ``length`` is kept for slot messages."""
    out: list[EventRecord] = []
    for event in events:
        data = jsonable(event)
        if hasattr(event, "length"):
            data["length"] = event.length
        out.append(EventRecord(conv_id, at, type(event).__name__, data))
    return out


class Turns:
    """Runs caller turns, call ends and expiries against one store, engine and telemetry."""

    def __init__(
        self,
        store: Store,
        telemetry: Telemetry,
        practice: Practice,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.store = store
        self.telemetry = telemetry
        self.practice = practice
        self.settings = settings
        self.clock = clock
        self.timeout = settings.store_timeout_seconds
        # SQLite answers inline on the event loop: a timer could never interrupt it, and a
        # task per call (what wait_for costs) is pure overhead on the turn path.
        self.inline = isinstance(store, SqliteStore)

    def limits(self, channel: Channel) -> Limits:
        """The SPEC constants that apply to ``channel``."""
        return self.settings.limits[channel]

    async def guard(self, awaitable: Awaitable[T], timeout: float | None = None, *, timer: bool = True) -> T:
        """Await a store call within the store timeout (or ``timeout``; no timer when
        ``timer`` is False); failures become StoreUnavailableError."""
        try:
            if not timer:
                return await awaitable
            return await asyncio.wait_for(awaitable, timeout or self.timeout)
        except TimeoutError:
            raise StoreUnavailableError("the store did not answer in time") from None
        except (ConcurrentTurnError, DuplicateTurnError):
            raise
        except StoreError as exc:
            raise StoreUnavailableError(str(exc)) from exc
        except OSError as exc:
            raise StoreUnavailableError(str(exc)) from exc

    async def _store(self, awaitable: Awaitable[T]) -> T:
        """A turn-path store call: :meth:`guard`, without the timer for an inline store."""
        return await self.guard(awaitable, timer=not self.inline)

    async def _taken(self, now: datetime) -> frozenset[datetime]:
        # A window wider than the calendar needs, on whole hours and days, so consecutive
        # turns ask the store the same question (and a store may answer from its cache).
        start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
        end = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=self.practice.horizon_days + 3)
        return await self._store(self.store.taken_slots(start, end))

    async def _held(self, conv_id: str, now: datetime) -> frozenset[datetime]:
        """Slots proposed to other callers within RDV_SLOT_HOLD_SECONDS (none when off)."""
        hold = self.settings.slot_hold_seconds
        if hold <= 0:
            return frozenset()
        return await self._store(self.store.held_slots(now - timedelta(seconds=hold), conv_id))

    async def _perform(self, action: Action, conv: Conversation, now: datetime) -> TurnInput:
        if isinstance(action, Book):
            outcome = await self._store(
                self.store.book(action.slot, conv.conv_id, action.name, action.phone, action.replaces)
            )
            return BookingDone(outcome.result, outcome.booking_id)
        if isinstance(action, FindBookings):
            found = await self._store(self.store.find_bookings(action.phone, now))
            return BookingsFound(found)
        if isinstance(action, FindBookingAt):
            return BookingAt(await self._store(self.store.booking_at(action.start)))
        if isinstance(action, CancelBooking):
            ok = await self._store(self.store.cancel_booking(action.booking_id, now))
            return CancelDone(ok)
        raise RdvError(f"unknown action {action!r}")

    async def _replay(self, conv_id: str, key: str) -> TurnResult | None:
        record = await self._store(self.store.find_turn(conv_id, key))
        if record is None:
            return None
        stored = await self._store(self.store.load(conv_id))
        ended = stored is not None and stored.conversation.ended
        return TurnResult(
            conv_id=conv_id,
            turn=record.turn,
            state=State(record.state_after),
            reply=record.reply,
            ended=ended,
            directive=record.directive,  # type: ignore[arg-type]
            trace_id=record.trace_id or "",
            replayed=True,
        )

    async def handle(self, req: TurnRequest) -> TurnResult:
        """Answer one caller turn; idempotent per ``request_key``; durable before returning."""
        if req.request_key:
            replayed = await self._replay(req.conv_id, req.request_key)
            if replayed is not None:
                return replayed
        for _ in range(SAVE_ATTEMPTS):
            stored = await self._store(self.store.load(req.conv_id))
            try:
                return await self._run(req, stored)
            except ConcurrentTurnError:
                continue
            except DuplicateTurnError:
                assert req.request_key is not None
                replayed = await self._replay(req.conv_id, req.request_key)
                if replayed is not None:
                    return replayed
        raise StoreUnavailableError("the conversation kept changing under this turn")

    async def _run(self, req: TurnRequest, stored: StoredConversation | None) -> TurnResult:
        now = self.clock.now()
        if stored is None:
            conv = Conversation.new(
                req.conv_id, req.channel, now,
                caller_phone=req.caller_phone, vapi_call_id=req.vapi_call_id,
            )
            version: int | None = None
            meta: dict[str, Any] = {}
        else:
            conv, version, meta = stored.conversation, stored.version, dict(stored.meta)
            if not req.reopen and conv.outcome is not None and conv.state not in TERMINAL:
                return self._closed(conv)
            if req.caller_phone and not conv.caller_phone:
                conv = replace(conv, caller_phone=req.caller_phone)
        before = conv
        # A barge-in: said so by the adapter, marked by Vapi's user-interrupted message (the
        # mark is used once), or seen in the spoken history.
        marked = meta.pop(BARGE_IN_KEY, None)
        interrupted = (
            req.interrupted
            or (isinstance(marked, str) and _seconds_since(marked, now) <= BARGE_IN_SECONDS)
            or (conv.state is State.WAIT_CONFIRM and slot_list_cut_short(conv.context.slots_message, req.heard))
        )
        limits = self.limits(conv.channel)
        scope = self.telemetry.begin_turn(conv, meta, channel=conv.channel.value, route=req.route)
        status = 500
        try:
            calendar = needs_calendar(conv)
            taken = await self._taken(now) if calendar else frozenset()
            held = await self._held(conv.conv_id, now) if calendar else frozenset()
            decision = step(conv, CallerSaid(req.text, interrupted), now, limits, self.practice, taken, held)
            scope.observe(decision.conversation, decision.events)
            events: list[Event] = list(decision.events)
            replies = [decision.reply]
            directive = decision.directive
            while decision.action is not None:
                result = await self._perform(decision.action, decision.conversation, now)
                if isinstance(result, BookingDone) and result.result is not BookingResult.SUCCESS:
                    taken = await self._taken(now)
                    held = await self._held(conv.conv_id, now)
                decision = step(decision.conversation, result, now, limits, self.practice, taken, held)
                scope.observe(decision.conversation, decision.events)
                events.extend(decision.events)
                replies.append(decision.reply)
                directive = decision.directive or directive
            conv = decision.conversation
            reply = " ".join(r for r in replies if r)
            record = TurnRecord(
                conv_id=conv.conv_id,
                turn=conv.turn_count,
                request_key=req.request_key,
                text=req.text,
                reply=reply,
                state_before=before.state.value,
                state_after=conv.state.value,
                at=now,
                interrupted=interrupted,
                directive=directive,
                trace_id=scope.trace_id,
            )
            await self._store(
                self.store.save_turn(conv, version, scope.meta, record, event_records(conv.conv_id, events, now))
            )
            status = 200
        finally:
            scope.close(status)
        return TurnResult(
            conv_id=conv.conv_id,
            turn=conv.turn_count,
            state=conv.state,
            reply=reply,
            ended=conv.ended,
            directive=directive,
            trace_id=scope.trace_id,
        )

    def _closed(self, conv: Conversation) -> TurnResult:
        """The answer to a late turn of a call already over: goodbye, nothing stored."""
        return TurnResult(
            conv_id=conv.conv_id,
            turn=conv.turn_count,
            state=conv.state,
            reply=replies.CALL_OVER,
            ended=True,
            directive="end",
            trace_id=self.telemetry.trace_id_hex(conv.conv_id, conv.epoch),
        )

    async def _apply(self, stored: StoredConversation, turn: TurnInput) -> Decision:
        """Run a non-caller input (call ended, expiry) and save it; no turn is appended."""
        now = self.clock.now()
        conv = stored.conversation
        decision = step(conv, turn, now, self.limits(conv.channel), self.practice)
        if decision.events:
            meta = self.telemetry.observe(decision.conversation, decision.events, dict(stored.meta))
            await self._store(
                self.store.save_turn(
                    decision.conversation, stored.version, meta, None,
                    event_records(conv.conv_id, decision.events, now),
                )
            )
        return decision

    async def mark_barge_in(self, conv_id: str) -> bool:
        """The caller spoke over the assistant (Vapi ``user-interrupted``): the next turn of
        this conversation is a barge-in. False when the conversation is unknown or over."""
        for _ in range(SAVE_ATTEMPTS):
            stored = await self._store(self.store.load(conv_id))
            if stored is None or stored.conversation.ended:
                return False
            meta = {**stored.meta, BARGE_IN_KEY: self.clock.now().isoformat()}
            try:
                await self._store(self.store.save_turn(stored.conversation, stored.version, meta, None, []))
            except ConcurrentTurnError:
                continue
            return True
        return False

    async def end_call(self, conv_id: str, reason: str | None) -> Conversation | None:
        """The call is over on Vapi's side: close a conversation that has no outcome yet."""
        for _ in range(SAVE_ATTEMPTS):
            stored = await self._store(self.store.load(conv_id))
            if stored is None:
                return None
            if stored.conversation.ended:
                return stored.conversation
            try:
                return (await self._apply(stored, CallEnded(reason))).conversation
            except ConcurrentTurnError:
                continue
        return None

    async def reap(self, holder: str) -> int:
        """Close conversations idle past their TTL (one replica at a time); returns how many."""
        now = self.clock.now()
        interval = timedelta(seconds=self.settings.reaper_interval_seconds)
        if not await self._store(self.store.try_lock("reaper", holder, now + interval * 2, now)):
            return 0
        closed = 0
        for channel in Channel:
            idle_before = now - timedelta(minutes=self.limits(channel).session_ttl_minutes)
            for stored in await self._store(self.store.idle_conversations(idle_before, channel.value)):
                try:
                    decision = await self._apply(stored, Expire())
                except ConcurrentTurnError:
                    continue
                closed += decision.conversation.ended
        return closed
