"""The turn loop: load, step, perform actions, step again with the result, save, reply.

The turn is saved (conversation, turn, events, and the booking or cancellation it made) in
one durable, version-checked transaction before its reply is returned: an appointment
exists if and only if the caller is told it is booked. A booking is decided optimistically
(the engine hears "booked" and says so) and written with the turn; when the slot turns out
to be taken, nothing is written and the turn is decided again from the moment before the
booking with "slot taken" (the manual's ``[BOOKING_RESULT] … success=False`` then
``[BOOKING_RETRY]``). Two overlapping turns of one conversation cannot both book: the
version check lets exactly one commit, and the other's booking rolls back with it.
With the practice's external calendar (:mod:`service.calendars`) its busy times join the taken
slots, and the turn's event is written (re-checked live) just before the save and undone when
the save fails; a slot found taken there is the same lost race.
Telemetry records each engine step as it happens and emits it once the turn is saved.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from service.calendars import (
    Appointment,
    BuiltinCalendar,
    Calendar,
    CalendarBusyError,
    CalendarError,
    Written,
)
from service.clock import Clock
from service.config import Settings
from service.engine import replies
from service.engine.events import Event
from service.engine.model import (
    Action,
    Book,
    BookingAt,
    BookingDone,
    BookingRef,
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
    BookingGoneError,
    BookingWrite,
    CancelWrite,
    ConcurrentTurnError,
    DuplicateTurnError,
    SlotTakenError,
    Store,
    StoredConversation,
    TurnRecord,
)
from service.storage.codec import event_records
from service.storage.guarded import StoreUnavailableError, guard
from service.vapi.bargein import slot_list_cut_short
from telemetry import Telemetry, names
from telemetry.observer import TurnScope

T = TypeVar("T")
SAVE_ATTEMPTS = 3
PURGE_EVERY = timedelta(hours=1)
# Vapi's user-interrupted message marks the conversation (in its stored meta, so any replica
# sees it); the next turn within this many seconds is treated as a barge-in.
BARGE_IN_KEY = "barge_in_at"
BARGE_IN_SECONDS = 30.0


class ForeignConversationError(RdvError):
    """The turn addresses a conversation of a Vapi call it does not come from (the text API
    never reaches a voice call): nothing is read back or changed."""


def _check_owner(req: TurnRequest, stored: StoredConversation | None) -> None:
    if stored is not None and stored.conversation.vapi_call_id not in (None, req.vapi_call_id):
        raise ForeignConversationError(f"conversation {req.conv_id!r} belongs to a Vapi call")


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


def _seconds_since(iso: str, now: datetime) -> float:
    try:
        return (now - datetime.fromisoformat(iso)).total_seconds()
    except (ValueError, TypeError):
        return float("inf")


@dataclass(slots=True)
class _Writes:
    """The appointment writes a turn makes, saved in its transaction, and the appointments
    they concern (whose events an external calendar holds)."""

    booking: BookingWrite | None = None
    cancel: CancelWrite | None = None
    cancelled: BookingRef | None = None
    replaced: BookingRef | None = None


def _ref(conv: Conversation, booking_id: str) -> BookingRef | None:
    """The appointment ``booking_id`` as the conversation found it (cancel or move)."""
    ctx = conv.context
    for ref in (ctx.modifying, *ctx.found, ctx.booked):
        if ref is not None and ref.booking_id == booking_id:
            return ref
    return None


@dataclass(frozen=True, slots=True)
class _BeforeBooking:
    """The engine steps of a turn up to the one that asked to book, and how many steps the
    telemetry had recorded then: where the turn is decided again when the slot is taken."""

    decisions: tuple[Decision, ...]
    recorded: int

    def retry(
        self,
        scope: TurnScope,
        taken: frozenset[datetime],
        held: frozenset[datetime],
        now: datetime,
        limits: Limits,
        practice: Practice,
    ) -> Decision:
        scope.keep(self.recorded)
        return step(self.decisions[-1].conversation, BookingDone(BookingResult.SLOT_TAKEN), now, limits, practice,
                    taken, held)


@dataclass(frozen=True, slots=True)
class _Plan:
    """A decided turn, not yet saved: its engine steps and appointment writes."""

    decisions: tuple[Decision, ...]
    writes: _Writes
    before_booking: _BeforeBooking | None

    @property
    def conv(self) -> Conversation:
        return self.decisions[-1].conversation

    @property
    def reply(self) -> str:
        return " ".join(d.reply for d in self.decisions if d.reply)

    @property
    def directive(self) -> Directive | None:
        found: Directive | None = None
        for d in self.decisions:
            found = d.directive or found
        return found

    @property
    def events(self) -> list[Event]:
        return [e for d in self.decisions for e in d.events]


class Turns:
    """Runs caller turns, call ends and expiries against one store, engine and telemetry."""

    def __init__(
        self,
        store: Store,
        telemetry: Telemetry,
        practice: Practice,
        settings: Settings,
        clock: Clock,
        calendar: Calendar | None = None,
    ) -> None:
        self.store = store
        self.calendar: Calendar = calendar or BuiltinCalendar()
        self.telemetry = telemetry
        self._purged_at: datetime | None = None
        self._windows: tuple[tuple[object, ...], tuple[datetime, datetime]] | None = None
        self.practice = practice
        self.settings = settings
        self.clock = clock
        self.timeout = settings.store_timeout_seconds
        # A store that bounds its own calls (SQLite: inline, or on its writer thread when the
        # file is locked) needs no timer task per call on the turn path.
        self.self_timed = store.enforces_timeout

    def limits(self, channel: Channel) -> Limits:
        """The SPEC constants that apply to ``channel``."""
        return self.settings.limits[channel]

    def _store(self, awaitable: Awaitable[T]) -> Awaitable[T]:
        """A turn-path store call within the store timeout, without the timer for a store that
        bounds its own calls (the guarded call itself, awaited by the caller: no coroutine of
        its own to go through)."""
        return guard(awaitable, self.timeout, self.telemetry.store_unavailable, timer=not self.self_timed)

    async def _calendar(self, awaitable: Awaitable[T]) -> T:
        """A call to the external calendar; its failure is the store's (the caller hears the
        apology and is transferred), a busy slot is a lost race."""
        try:
            return await awaitable
        except CalendarBusyError:
            raise SlotTakenError("the slot is taken in the practice's calendar") from None
        except CalendarError as exc:
            self.telemetry.log_event(names.LOG_CALENDAR_UNAVAILABLE, error=str(exc))
            raise StoreUnavailableError(f"calendar: {exc}") from exc

    def _window(self, now: datetime) -> tuple[datetime, datetime]:
        """The taken slots' window at ``now``: wider than the calendar needs, on whole hours and
        days, so consecutive turns ask the store the same question (and a store may answer
        from its cache); worked out once per hour."""
        hour = (now.year, now.month, now.day, now.hour, now.tzinfo, now.fold)
        known = self._windows
        if known is not None and known[0] == hour:
            return known[1]
        start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
        end = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=self.practice.horizon_days + 3)
        self._windows = (hour, (start, end))
        return start, end

    async def _taken(self, now: datetime, scope: TurnScope) -> frozenset[datetime]:
        start, end = self._window(now)
        if not self.calendar.external:
            return await self._store(self.store.taken_slots(start, end))
        with scope.under_state():
            booked, busy = await asyncio.gather(
                self._store(self.store.taken_slots(start, end)), self._calendar(self.calendar.taken(start, end))
            )
        return booked | busy

    async def _write_calendar(self, plan: _Plan, scope: TurnScope, done: list[Written]) -> None:
        """Write the turn's appointment changes into the external calendar before the turn is
        saved (``done`` gets each write, to be undone if the save fails): the new event
        first (a busy slot raises SlotTakenError), then the removal of the old one."""
        writes = plan.writes
        steps = plan.before_booking.recorded if plan.before_booking is not None else None
        with scope.under_state(steps):
            if writes.booking is not None:
                b = writes.booking
                done.append(await self._calendar(self.calendar.book(
                    Appointment(b.booking_id, b.slot, b.conv_id, b.name, b.phone, b.at)
                )))
            gone = writes.cancelled or writes.replaced
            if gone is not None:
                removed = await self._calendar(self.calendar.remove(gone.booking_id, gone.slot))
                if removed is not None:
                    done.append(removed)

    async def _undo(self, done: list[Written]) -> None:
        """Compensate the calendar writes of a turn that was not saved (newest first); what
        cannot be undone now is left to the consistency check, and said in the logs."""
        while done:
            written = done.pop()
            try:
                await self.calendar.undo(written)
            except CalendarError as exc:
                self.telemetry.log_event(names.LOG_CALENDAR_COMPENSATION_FAILED, error=str(exc))

    async def _held(self, conv_id: str, now: datetime) -> frozenset[datetime]:
        """Slots proposed to other callers within RDV_SLOT_HOLD_SECONDS (none when off)."""
        hold = self.settings.slot_hold_seconds
        if hold <= 0:
            return frozenset()
        return await self._store(self.store.held_slots(now - timedelta(seconds=hold), conv_id))

    async def _perform(self, action: Action, conv: Conversation, now: datetime, writes: _Writes) -> TurnInput:
        """The result of ``action``: reads happen now; a booking or a cancellation is only
        noted in ``writes`` (it is written with the turn) and assumed to succeed."""
        if isinstance(action, Book):
            writes.booking = BookingWrite(
                uuid.uuid4().hex, action.slot, conv.conv_id, action.name, action.phone, now, action.replaces
            )
            writes.replaced = _ref(conv, action.replaces) if action.replaces else None
            return BookingDone(BookingResult.SUCCESS, writes.booking.booking_id)
        if isinstance(action, FindBookings):
            found = await self._store(self.store.find_bookings(action.phone, now))
            return BookingsFound(found)
        if isinstance(action, FindBookingAt):
            return BookingAt(await self._store(self.store.booking_at(action.start)))
        if isinstance(action, CancelBooking):
            active = await self._store(self.store.booking_active(action.booking_id))
            if active:
                writes.cancel = CancelWrite(action.booking_id, now)
                writes.cancelled = _ref(conv, action.booking_id)
            return CancelDone(active)
        raise RdvError(f"unknown action {action!r}")

    async def _replay(self, req: TurnRequest, key: str) -> TurnResult | None:
        conv_id = req.conv_id
        record = await self._store(self.store.find_turn(conv_id, key))
        if record is None:
            return None
        stored = await self._store(self.store.load(conv_id))
        _check_owner(req, stored)
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
        """Answer one caller turn; idempotent per ``request_key``; durable before returning.
        A conversation of a Vapi call only hears turns of that call (ForeignConversationError)."""
        if req.request_key:
            replayed = await self._replay(req, req.request_key)
            if replayed is not None:
                return replayed
        for _ in range(SAVE_ATTEMPTS):
            stored = await self._store(self.store.load(req.conv_id))
            _check_owner(req, stored)
            try:
                return await self._run(req, stored)
            except (ConcurrentTurnError, BookingGoneError):
                # Another turn of this conversation (or of the appointment it cancels) saved
                # first: decide this one again on what is stored now.
                continue
            except DuplicateTurnError:
                assert req.request_key is not None
                replayed = await self._replay(req, req.request_key)
                if replayed is not None:
                    return replayed
        raise StoreUnavailableError("the conversation kept changing under this turn")

    async def _run(self, req: TurnRequest, stored: StoredConversation | None) -> TurnResult:
        now = self.clock.now()
        if stored is None:
            conv = Conversation.new(
                req.conv_id, req.channel, now,
                caller_phone=req.caller_phone, vapi_call_id=req.vapi_call_id,
                synthetic=names.is_synthetic(req.conv_id),
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
            taken = await self._taken(now, scope) if calendar else frozenset()
            held = await self._held(conv.conv_id, now) if calendar else frozenset()
            said = CallerSaid(req.text, interrupted)
            plan = await self._decide(scope, step(conv, said, now, limits, self.practice, taken, held), now, limits,
                                      taken, held)
            while True:
                after, reply, directive = plan.conv, plan.reply, plan.directive
                record = TurnRecord(
                    conv_id=after.conv_id,
                    turn=after.turn_count,
                    request_key=req.request_key,
                    text=req.text,
                    reply=reply,
                    state_before=before.state.value,
                    state_after=after.state.value,
                    at=now,
                    interrupted=interrupted,
                    directive=directive,
                    trace_id=scope.trace_id,
                )
                written: list[Written] = []
                try:
                    if self.calendar.external:
                        await self._write_calendar(plan, scope, written)
                    await self._store(
                        self.store.save_turn(
                            after, version, scope.meta, record, event_records(after.conv_id, plan.events, now),
                            booking=plan.writes.booking, cancel=plan.writes.cancel,
                        )
                    )
                    break
                except BaseException as exc:
                    # Not saved: the caller hears nothing booked, so the calendar holds nothing.
                    await self._undo(written)
                    if not isinstance(exc, SlotTakenError):
                        raise
                    # Lost the race for the slot (in the store or in the practice's calendar):
                    # nothing was written. Decide the turn again from the moment before the
                    # booking, with the slot taken.
                    assert plan.before_booking is not None
                    taken = await self._taken(now, scope)
                    held = await self._held(conv.conv_id, now)
                    plan = await self._decide(
                        scope, plan.before_booking.retry(scope, taken, held, now, limits, self.practice),
                        now, limits, taken, held, base=plan.before_booking,
                    )
            scope.commit()
            status = 200
        finally:
            scope.close(status)
        return TurnResult(
            conv_id=after.conv_id,
            turn=after.turn_count,
            state=after.state,
            reply=reply,
            ended=after.ended,
            directive=directive,
            trace_id=scope.trace_id,
        )

    async def _decide(
        self,
        scope: TurnScope,
        decision: Decision,
        now: datetime,
        limits: Limits,
        taken: frozenset[datetime],
        held: frozenset[datetime],
        *,
        base: _BeforeBooking | None = None,
    ) -> _Plan:
        """Run ``decision``'s actions until the engine asks for none; the turn's plan."""
        steps = list(base.decisions) if base is not None else []
        scope.observe(decision.conversation, decision.events)
        steps.append(decision)
        writes = _Writes()
        before_booking: _BeforeBooking | None = None
        while decision.action is not None:
            if isinstance(decision.action, Book):
                before_booking = _BeforeBooking(tuple(steps), scope.recorded)
            result = await self._perform(decision.action, decision.conversation, now, writes)
            decision = step(decision.conversation, result, now, limits, self.practice, taken, held)
            scope.observe(decision.conversation, decision.events)
            steps.append(decision)
        return _Plan(tuple(steps), writes, before_booking)

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
            start = self.telemetry.ensure_meta_for(decision.conversation, dict(stored.meta))
            meta, planned = self.telemetry.plan_meta(decision.conversation, decision.events, start)
            await self._store(
                self.store.save_turn(
                    decision.conversation, stored.version, meta, None,
                    event_records(conv.conv_id, decision.events, now),
                )
            )
            self.telemetry.observe(decision.conversation, decision.events, start, planned=planned)
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

    async def purge(self, now: datetime) -> int:
        """Purge conversations older than RDV_RETENTION_DAYS (anonymous counts kept); at most once
        an hour per process; how many were purged."""
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY:
            return 0
        self._purged_at = now
        cutoff = now - timedelta(days=self.settings.retention_days)
        return await guard(self.store.purge_before(cutoff), self.timeout * 10, self.telemetry.store_unavailable)

    async def reap(self, holder: str) -> int:
        """Close conversations idle past their TTL (one replica at a time); returns how many.
        The replica that reaps also purges what is past the retention period."""
        now = self.clock.now()
        interval = timedelta(seconds=self.settings.reaper_interval_seconds)
        if not await self._store(self.store.try_lock("reaper", holder, now + interval * 2, now)):
            return 0
        await self.purge(now)
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
