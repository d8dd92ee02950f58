"""The engine's one entry point: ``step(conversation, input, now, limits, practice, taken)``.

Pure: it reads no clock, does no I/O and logs nothing. Side effects come back as an
:class:`~service.engine.model.Action` the shell performs; its result is the next input.
State handlers are looked up in a table keyed by state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from service.engine import calendar, labels, nlu, replies
from service.engine.events import (
    AntiLoopTriggered,
    AppointmentConfirmed,
    BookingAttempted,
    BookingCancelled,
    BookingResulted,
    BookingRetried,
    ConversationEnded,
    ConversationStarted,
    Event,
    FaqAnswered,
    FillerDetected,
    IntentOverridden,
    Interrupted,
    RecoveryLimitReached,
    RecoveryStepped,
    SessionExpired,
    SlotsSent,
    StateChanged,
    TurnReceived,
)
from service.engine.model import (
    Action,
    Book,
    BookingDone,
    BookingsFound,
    CallEnded,
    CallerSaid,
    CancelBooking,
    CancelDone,
    Context,
    Conversation,
    Decision,
    Directive,
    EngineInvariantError,
    Expire,
    FindBookings,
    Limits,
    Preference,
    Slot,
    TurnInput,
)
from service.engine.practice import Practice
from service.engine.states import (
    TERMINAL,
    TERMINAL_OUTCOME,
    BookingResult,
    Channel,
    Field,
    Outcome,
    OverrideIntent,
    State,
)
from service.engine.table import allowed

S = State
STRONG = {"cancel": OverrideIntent.CANCEL, "modify": OverrideIntent.MODIFY, "human": OverrideIntent.HUMAN}
# Extra turns allowed after the fallback menu before the guard hands over to a human.
ANTI_LOOP_GRACE = 10
PREF_RETRIES = 1
MENU_RETRIES = 2


class _Turn:
    """Accumulates what one step decides; local to one call of :func:`step`."""

    def __init__(
        self,
        conv: Conversation,
        now: datetime,
        limits: Limits,
        practice: Practice,
        taken: frozenset[datetime],
        held: frozenset[datetime] = frozenset(),
    ) -> None:
        self.conv = conv
        self.now = now
        self.limits = limits
        self.practice = practice
        self.taken = taken
        self.held = held
        self.events: list[Event] = []
        self.replies: list[str] = []
        self.action: Action | None = None
        self.directive: Directive | None = None

    # -- helpers -----------------------------------------------------------------
    @property
    def ctx(self) -> Context:
        return self.conv.context

    def set_ctx(self, ctx: Context) -> None:
        self.conv = replace(self.conv, context=ctx)

    def say(self, text: str) -> None:
        self.replies.append(text)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def go(self, to: State) -> None:
        """Move to ``to`` (checked against the table); ends the conversation on a terminal state."""
        current = self.conv.state
        if to == current:
            return
        if not allowed(current, to):
            raise EngineInvariantError(f"transition {current} → {to} is not in the table")
        self.emit(StateChanged(current, to, self.now))
        self.conv = replace(self.conv, state=to, state_entered_at=self.now)
        if to in TERMINAL:
            self.end(TERMINAL_OUTCOME[to])
        if to is S.TRANSFERRED:
            self.directive = "transfer"

    def end(self, outcome: Outcome, reason: str | None = None) -> None:
        if self.conv.outcome is not None:
            return
        self.conv = replace(self.conv, outcome=outcome)
        self.emit(
            ConversationEnded(self.conv.channel, outcome, self.conv.state, self.conv.turn_count, reason)
        )

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.practice.timezone)

    def nth(self) -> int:
        return self.conv.turn_count

    def known_phone(self) -> str | None:
        return self.ctx.phone or self.conv.caller_phone

    def decision(self) -> Decision:
        return Decision(
            conversation=self.conv,
            reply=" ".join(r for r in self.replies if r),
            events=tuple(self.events),
            action=self.action,
            directive=self.directive,
        )

    # -- shared behaviours ---------------------------------------------------------
    def transfer(self, text: str) -> None:
        self.say(text)
        self.go(S.TRANSFERRED)

    def menu(self) -> None:
        self.set_ctx(self.ctx.without_fail("menu"))
        self.say(replies.MENU)
        self.go(S.INTENT_ROUTER)

    def fail(self, fld: Field) -> None:
        """Count a failure of ``fld``: clarify, or at the limit fall back (transfer or menu)."""
        key = fld.value
        self.set_ctx(self.ctx.with_fail(key))
        attempts = self.ctx.failed(key)
        limit = self.limits.recovery_limits.get(fld, 2)
        if attempts >= limit:
            to = self.limits.recovery_fallback
            self.emit(RecoveryLimitReached(fld, attempts, to))
            self.set_ctx(self.ctx.without_fail(key))
            if to is S.INTENT_ROUTER:
                self.menu()
            else:
                self.transfer(replies.TRANSFER_AFTER_FAILURES)
            return
        self.emit(RecoveryStepped(fld, attempts))
        self.say(replies.pick(replies.CLARIFY[fld], attempts - 1))

    def propose(
        self,
        pref: Preference,
        intro: tuple[str, ...],
        *,
        exclude_current: bool = False,
    ) -> bool:
        """Find three slots for ``pref`` and say them; False when none is left."""
        excluded = set(self.ctx.excluded)
        if exclude_current:
            excluded.update(s.start for s in self.ctx.proposed)
        slots = calendar.find_slots(
            self.practice, pref, self.now, self.taken, frozenset(excluded), held=self.held
        )
        if not slots and (pref.day or pref.after or pref.before or pref.period != "any"):
            # Nothing matches exactly: widen to the whole horizon rather than give up.
            slots = calendar.find_slots(
                self.practice, Preference(), self.now, self.taken, frozenset(excluded), held=self.held
            )
        if not slots:
            return False
        question = replies.SLOTS_QUESTION_TEXT if self.conv.channel is Channel.TEXT else replies.SLOTS_QUESTION
        message = labels.slot_message(
            slots,
            self.conv.channel,
            self.limits.slots_message_max_chars,
            replies.pick(intro, self.nth()),
            question,
            self.local,
        )
        self.set_ctx(
            replace(
                self.ctx,
                preference=pref,
                proposed=slots,
                excluded=tuple(sorted(excluded)),
                chosen=None,
                slots_message=message,
            )
        )
        self.emit(SlotsSent(self.conv.channel, message, tuple(s.start for s in slots)))
        self.say(message)
        return True

    def propose_or_transfer(self, pref: Preference, intro: tuple[str, ...], **kw: bool) -> None:
        if self.propose(pref, intro, **kw):
            self.go(S.WAIT_CONFIRM)
        else:
            self.transfer(replies.TRANSFER_NO_SLOT)

    def book(self, idx: int) -> None:
        slot = self.ctx.proposed[idx]
        self.set_ctx(replace(self.ctx, chosen=idx))
        retry = self.ctx.booking_retries
        self.emit(BookingAttempted(idx + 1, slot.start, retry))
        self.action = Book(
            slot=slot,
            name=self.ctx.full_name,
            phone=self.known_phone(),
            slot_idx=idx + 1,
            retry=retry,
            replaces=self.ctx.modifying.booking_id if self.ctx.modifying else None,
        )

    def choose(self, idx: int, interrupted: bool) -> None:
        if interrupted:
            self.emit(Interrupted(idx + 1))
        self.set_ctx(replace(self.ctx.without_fail(Field.SLOT_CHOICE.value, "confirm"), chosen=idx))
        if self.known_phone() is None:
            self.say(replies.pick(replies.ASK_PHONE, self.nth()))
            self.go(S.QUALIF_PHONE)
        else:
            self.book(idx)

    def resume(self) -> None:
        """Ask again the question pending in the current state (after a FAQ or filler)."""
        state = self.conv.state
        if state is S.WAIT_CONFIRM and self.ctx.proposed:
            spoken = labels.enumerate_fr([labels.voice_label(self.local(s.start)) for s in self.ctx.proposed])
            self.say(replies.RESUME_SLOTS.format(labels=spoken))
        else:
            self.say(replies.RESUME.get(state.value, ""))

    def find_bookings(self) -> None:
        self.action = FindBookings(phone=self.known_phone(), name=self.ctx.full_name or None)


# --------------------------------------------------------------------------- state handlers
Handler = Callable[[_Turn, str, bool], None]


def _start(t: _Turn, text: str, interrupted: bool) -> None:
    intent = nlu.intent(text)
    if intent in ("book", "yes"):
        t.say(replies.pick(replies.ASK_NAME, t.nth()))
        t.go(S.QUALIF_NAME)
    elif intent == "no":
        t.say(replies.START_NO)
    else:
        t.set_ctx(t.ctx.with_fail("intent"))
        if t.ctx.failed("intent") >= MENU_RETRIES:
            t.menu()
        else:
            t.say(replies.START_HELP)


def _qualif_name(t: _Turn, text: str, interrupted: bool) -> None:
    name = nlu.name(text)
    if name is None:
        t.fail(Field.NAME)
        return
    t.set_ctx(replace(t.ctx.without_fail(Field.NAME.value), first_name=name.first, last_name=name.last))
    who = f" {name.first}" if name.first else f" {name.last}"
    t.say(replies.pick(replies.ASK_PREF, t.nth()).format(who=who))
    t.go(S.QUALIF_PREF)


def _as_pref(parsed: nlu.Preference) -> Preference:
    return Preference(parsed.period, parsed.day, parsed.after, parsed.before)


def _qualif_pref(t: _Turn, text: str, interrupted: bool) -> None:
    parsed = nlu.preference(text, t.local(t.now))
    if parsed is None:
        t.set_ctx(t.ctx.with_fail("preference"))
        if t.ctx.failed("preference") <= PREF_RETRIES:
            t.say(replies.ASK_PREF_AGAIN)
            return
        parsed = nlu.Preference("any", None, None, None)
    t.set_ctx(t.ctx.without_fail("preference"))
    t.propose_or_transfer(_as_pref(parsed), replies.SLOTS_INTRO)


def _other_slots(t: _Turn, text: str) -> None:
    """The caller turned the proposed slots down: three others (with any new preference)."""
    pref = t.ctx.preference or Preference()
    parsed = nlu.preference(text, t.local(t.now))
    if parsed is not None:
        pref = _as_pref(parsed)
    if not t.propose(pref, replies.SLOTS_INTRO_OTHER, exclude_current=True):
        t.transfer(replies.TRANSFER_NO_SLOT)


def _wait_confirm(t: _Turn, text: str, interrupted: bool) -> None:
    refs = [nlu.SlotRef(t.local(s.start), labels.voice_label(t.local(s.start))) for s in t.ctx.proposed]
    choice = nlu.slot_choice(text, refs)
    if isinstance(choice, int) and 0 <= choice < len(t.ctx.proposed):
        t.choose(choice, interrupted)
        return
    if choice == "none":
        _other_slots(t, text)
        return
    parsed = nlu.preference(text, t.local(t.now))
    if parsed is not None and (parsed.period != "any" or parsed.day is not None):
        # "plutôt l'après-midi" while slots are on the table: a new preference, new slots.
        t.propose(_as_pref(parsed), replies.SLOTS_INTRO_OTHER)
        return
    if nlu.yes_no(text) == "yes" and t.ctx.failed("which") == 0:
        t.set_ctx(t.ctx.with_fail("which"))
        t.say(replies.ASK_WHICH_SLOT)
        return
    if t.ctx.failed("confirm") < t.limits.confirm_retry_max:
        t.set_ctx(t.ctx.with_fail("confirm"))
        t.say(replies.CONFIRM_RETRY.format(slots=replies.ASK_WHICH_SLOT))
        return
    t.fail(Field.SLOT_CHOICE)


def _qualif_phone(t: _Turn, text: str, interrupted: bool) -> None:
    number = nlu.phone(text)
    if number is None:
        t.fail(Field.PHONE)
        return
    t.set_ctx(replace(t.ctx.without_fail(Field.PHONE.value), phone=number))
    if t.ctx.chosen is None:
        t.propose_or_transfer(t.ctx.preference or Preference(), replies.SLOTS_INTRO)
        return
    t.book(t.ctx.chosen)


def _identify(t: _Turn, text: str, interrupted: bool) -> None:
    number = nlu.phone(text)
    name = nlu.name(text)
    if number is None and name is None:
        t.fail(Field.NAME)
        return
    ctx = t.ctx
    if number is not None:
        ctx = replace(ctx, phone=number)
    if name is not None:
        ctx = replace(ctx, first_name=name.first, last_name=name.last)
    t.set_ctx(ctx)
    t.action = FindBookings(phone=number, name=ctx.full_name or None)


def _cancel_confirm(t: _Turn, text: str, interrupted: bool) -> None:
    answer = nlu.yes_no(text)
    target = t.ctx.found[0] if t.ctx.found else None
    if answer == "yes" and target is not None:
        t.action = CancelBooking(target.booking_id)
    elif answer == "no":
        t.say(replies.CANCEL_KEPT)
        t.menu()
    else:
        t.say(replies.YES_NO_AGAIN)


def _modify_confirm(t: _Turn, text: str, interrupted: bool) -> None:
    target = t.ctx.found[0] if t.ctx.found else None
    if target is None:
        t.menu()
        return
    intent = nlu.intent(text)
    answer = nlu.yes_no(text)
    if intent == "cancel":
        t.action = CancelBooking(target.booking_id)
    elif answer == "yes" or intent == "modify":
        name = target.name.split(" ", 1)
        first, last = (name[0], name[1]) if len(name) == 2 else (None, name[0])
        t.set_ctx(replace(t.ctx, modifying=target, first_name=t.ctx.first_name or first,
                          last_name=t.ctx.last_name or last))
        t.say(replies.MODIFY_ASK_PREF)
        t.go(S.QUALIF_PREF)
    elif answer == "no":
        t.say(replies.CANCEL_KEPT)
        t.menu()
    else:
        t.say(replies.YES_NO_AGAIN)


def _intent_router(t: _Turn, text: str, interrupted: bool) -> None:
    choice = nlu.menu_choice(text)
    if choice == "book":
        t.set_ctx(t.ctx.without_fail("menu"))
        if t.ctx.last_name:
            t.say(replies.pick(replies.ASK_PREF, t.nth()).format(who=""))
            t.go(S.QUALIF_PREF)
        else:
            t.say(replies.pick(replies.ASK_NAME, t.nth()))
            t.go(S.QUALIF_NAME)
    elif choice == "cancel_or_modify":
        _enter_identify(t, S.MODIFY_IDENTIFY if nlu.intent(text) != "cancel" else S.CANCEL_IDENTIFY)
    elif choice == "question":
        t.say(replies.MENU_QUESTION)
    elif choice == "human":
        t.transfer(replies.pick(replies.TRANSFER, t.nth()))
    else:
        t.set_ctx(t.ctx.with_fail("menu"))
        if t.ctx.failed("menu") >= MENU_RETRIES:
            t.transfer(replies.TRANSFER_AFTER_FAILURES)
        else:
            t.say(replies.MENU_SHORT)


def _terminal(t: _Turn, text: str, interrupted: bool) -> None:
    if t.conv.state is S.TRANSFERRED:
        t.say(replies.pick(replies.TRANSFER, t.nth()))
        t.directive = "transfer"
    elif t.conv.state is S.CANCELLED:
        t.say(replies.CLOSED_CANCELLED)
        t.directive = "end"
    else:
        t.say(replies.CLOSED_CONFIRMED)
        t.directive = "end"


HANDLERS: dict[State, Handler] = {
    S.START: _start,
    S.QUALIF_NAME: _qualif_name,
    S.QUALIF_PREF: _qualif_pref,
    S.WAIT_CONFIRM: _wait_confirm,
    S.QUALIF_PHONE: _qualif_phone,
    S.CANCEL_IDENTIFY: _identify,
    S.MODIFY_IDENTIFY: _identify,
    S.CANCEL_CONFIRM: _cancel_confirm,
    S.MODIFY_CONFIRM: _modify_confirm,
    S.INTENT_ROUTER: _intent_router,
    S.CONFIRMED: _terminal,
    S.CANCELLED: _terminal,
    S.TRANSFERRED: _terminal,
}

# States whose handler parses the caller's answer to a yes/no or a name themselves, so an
# intent detector must not pre-empt them for that same intent.
_OWN_INTENTS: dict[State, frozenset[str]] = {
    S.CANCEL_IDENTIFY: frozenset({"cancel"}),
    S.CANCEL_CONFIRM: frozenset({"cancel"}),
    S.MODIFY_IDENTIFY: frozenset({"modify"}),
    S.MODIFY_CONFIRM: frozenset({"modify", "cancel"}),
}

FILLER_FIELD = {S.QUALIF_NAME: Field.NAME, S.WAIT_CONFIRM: Field.SLOT_CHOICE, S.QUALIF_PHONE: Field.PHONE}


def _enter_identify(t: _Turn, to: State) -> None:
    t.set_ctx(replace(t.ctx, found=(), modifying=None, proposed=(), chosen=None))
    t.go(to)
    if t.known_phone() is not None or t.ctx.last_name:
        t.find_bookings()
    else:
        t.say(replies.ASK_CANCEL_WHO)


# --------------------------------------------------------------------------- caller turns
def _caller_said(t: _Turn, said: CallerSaid) -> None:
    conv = t.conv
    restart: str | None = None
    if conv.turn_count > 0 and conv.outcome is None and conv.state not in TERMINAL:
        idle = t.now - conv.last_seen_at
        if idle > timedelta(minutes=t.limits.session_ttl_minutes):
            t.emit(SessionExpired(conv.state, idle.total_seconds()))
            t.end(Outcome.EXPIRED)
            restart = replies.EXPIRED
    elif conv.outcome is not None and conv.state not in TERMINAL:
        restart = replies.RESUMED_AFTER_END
    if restart is not None:
        t.conv = Conversation.new(
            conv.conv_id, conv.channel, t.now,
            caller_phone=conv.caller_phone, vapi_call_id=conv.vapi_call_id, epoch=conv.epoch + 1,
        )
        t.say(restart)
    if t.conv.turn_count == 0:
        t.emit(ConversationStarted(t.conv.channel))
    t.emit(TurnReceived(t.conv.state, t.conv.turn_count, said.interrupted))
    t.conv = replace(t.conv, turn_count=t.conv.turn_count + 1, last_seen_at=t.now)
    state = t.conv.state
    text = said.text

    if state in TERMINAL:
        _terminal(t, text, said.interrupted)
        return

    hits = t.ctx.failed("anti_loop")
    threshold = t.limits.max_turns_anti_loop + hits * ANTI_LOOP_GRACE
    if t.conv.turn_count > threshold:
        t.emit(AntiLoopTriggered(t.conv.turn_count, t.limits.max_turns_anti_loop, state))
        t.set_ctx(t.ctx.with_fail("anti_loop"))
        if hits == 0 and state is not S.INTENT_ROUTER:
            t.menu()
        else:
            t.transfer(replies.TRANSFER_AFTER_FAILURES)
        return

    if nlu.is_filler(text):
        t.emit(FillerDetected(state))
        fld = FILLER_FIELD.get(state)
        if state is S.START:
            t.say(replies.START_HELP)
        else:
            t.say(replies.FILLER.get(fld, replies.FILLER_DEFAULT) if fld else replies.FILLER_DEFAULT)
            if fld is None:
                t.resume()
        return

    intent = nlu.intent(text)
    if intent in STRONG and intent not in _OWN_INTENTS.get(state, frozenset()):
        # A choice among proposed slots wins over a stray "non"/"annuler" inside it.
        if state is S.WAIT_CONFIRM and intent != "human":
            refs = [nlu.SlotRef(t.local(s.start), "") for s in t.ctx.proposed]
            if isinstance(nlu.slot_choice(text, refs), int):
                HANDLERS[state](t, text, said.interrupted)
                return
            # "je voudrais changer de jour" while slots are on the table means other slots,
            # not moving an appointment the caller does not mention.
            if intent == "modify" and not nlu.mentions_own_appointment(text):
                _other_slots(t, text)
                return
        to = {"cancel": S.CANCEL_IDENTIFY, "modify": S.MODIFY_IDENTIFY, "human": S.TRANSFERRED}[intent]
        if state not in (S.START, S.INTENT_ROUTER):
            t.emit(IntentOverridden(state, STRONG[intent].value, to))
        if to is S.TRANSFERRED:
            t.transfer(replies.pick(replies.TRANSFER, t.nth()))
        else:
            _enter_identify(t, to)
        return

    if intent.startswith("faq:"):
        topic = intent.split(":", 1)[1]
        if state is not S.START:
            t.emit(IntentOverridden(state, OverrideIntent.FAQ.value, state))
        t.emit(FaqAnswered(topic, state))
        t.say(t.practice.faq.get(topic, replies.FAQ_UNKNOWN))
        t.resume()
        return

    HANDLERS[state](t, text, said.interrupted)


def _booking_done(t: _Turn, done: BookingDone) -> None:
    idx = t.ctx.chosen
    if idx is None or idx >= len(t.ctx.proposed):
        raise EngineInvariantError("booking result without a chosen slot")
    slot = t.ctx.proposed[idx]
    retry = t.ctx.booking_retries
    t.emit(BookingResulted(done.result, slot.start, retry))
    if done.result is BookingResult.SUCCESS:
        local = t.local(slot.start)
        name = t.ctx.full_name
        t.emit(AppointmentConfirmed(labels.log_label(local), name, slot.start))
        t.set_ctx(replace(t.ctx, modifying=None))
        t.say(replies.CONFIRMED.format(slot=labels.full_label(local), name=name))
        t.go(S.CONFIRMED)
        t.directive = "end"
        return
    if done.result is BookingResult.ERROR:
        t.transfer(replies.TRANSFER_ERROR)
        return
    if retry >= t.limits.booking_retry_max:
        t.transfer(replies.TRANSFER_NO_SLOT)
        return
    pref = t.ctx.preference or Preference()
    t.set_ctx(replace(t.ctx, booking_retries=retry + 1, excluded=(*t.ctx.excluded, slot.start)))
    t.emit(BookingRetried(retry + 1, pref.label()))
    t.propose_or_transfer(pref, replies.SLOTS_INTRO_RETRY)


def _bookings_found(t: _Turn, found: BookingsFound) -> None:
    if not found.bookings:
        t.fail(Field.NAME)
        if t.conv.state in (S.CANCEL_IDENTIFY, S.MODIFY_IDENTIFY):
            t.replies[-1:] = [replies.NOT_FOUND]
        return
    t.set_ctx(replace(t.ctx.without_fail(Field.NAME.value), found=found.bookings))
    label = labels.full_label(t.local(found.bookings[0].slot.start))
    if t.conv.state is S.CANCEL_IDENTIFY:
        t.say(replies.CANCEL_CONFIRM.format(slot=label))
        t.go(S.CANCEL_CONFIRM)
    else:
        t.say(replies.MODIFY_CONFIRM.format(slot=label))
        t.go(S.MODIFY_CONFIRM)


def _cancel_done(t: _Turn, done: CancelDone) -> None:
    target = t.ctx.found[0] if t.ctx.found else None
    if not done.ok or target is None:
        t.transfer(replies.TRANSFER_ERROR)
        return
    t.emit(BookingCancelled(target.slot.start))
    t.say(replies.CANCELLED.format(slot=labels.full_label(t.local(target.slot.start))))
    t.go(S.CANCELLED)
    t.directive = "end"


def step(
    conversation: Conversation,
    turn: TurnInput,
    now: datetime,
    limits: Limits,
    practice: Practice,
    taken: frozenset[datetime] = frozenset(),
    held: frozenset[datetime] = frozenset(),
) -> Decision:
    """Decide the next reply, state and events for one input. Never raises on caller input.

    ``taken`` are booked slot starts; ``held`` those proposed to other callers right now,
    offered only when nothing else fits (fewer lost booking races).
    """
    t = _Turn(conversation, now, limits, practice, taken, held)
    if isinstance(turn, CallerSaid):
        _caller_said(t, turn)
    elif isinstance(turn, BookingDone):
        _booking_done(t, turn)
    elif isinstance(turn, BookingsFound):
        _bookings_found(t, turn)
    elif isinstance(turn, CancelDone):
        _cancel_done(t, turn)
    elif isinstance(turn, CallEnded):
        outcome = Outcome.INTENT_ROUTER if t.conv.state is S.INTENT_ROUTER else Outcome.ABANDONED
        t.end(outcome, turn.reason)
    elif isinstance(turn, Expire) and t.conv.outcome is None:
        t.emit(SessionExpired(t.conv.state, (now - t.conv.last_seen_at).total_seconds()))
        t.end(Outcome.EXPIRED)
    return t.decision()


def needs_calendar(conversation: Conversation) -> bool:
    """True when the next caller turn may propose slots, so the shell loads taken slots."""
    return conversation.state in (S.QUALIF_PREF, S.WAIT_CONFIRM, S.QUALIF_PHONE)


def slots_of(conversation: Conversation) -> tuple[Slot, ...]:
    """The slots currently proposed to the caller."""
    return conversation.context.proposed
