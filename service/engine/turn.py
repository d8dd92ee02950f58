"""One step of the engine in the making: what it says, emits and does, and the behaviours the
state handlers share (moving through the table, recovery, proposing and booking slots)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from service.engine import labels, proposal, replies
from service.engine.events import (
    BookingAttempted,
    ConversationEnded,
    Event,
    Interrupted,
    NotUnderstood,
    RecoveryLimitReached,
    RecoveryStepped,
    SlotsSent,
    StateChanged,
    Transferred,
)
from service.engine.frozen import replace
from service.engine.model import (
    Action,
    Book,
    Context,
    Conversation,
    Decision,
    Directive,
    EngineInvariantError,
    Limits,
    Preference,
)
from service.engine.nlu import SlotRef
from service.engine.practice import Practice
from service.engine.states import (
    STATE_PURPOSE,
    TERMINAL,
    TERMINAL_OUTCOME,
    Channel,
    Field,
    MissField,
    MissReason,
    Outcome,
    Purpose,
    Retry,
    State,
    TransferReason,
    stronger,
)
from service.engine.table import allowed

S = State


class Turn:
    """Accumulates what one step decides; local to one call of ``step``.

    The conversation's changes (its context, state, outcome) are gathered and copied into it
    once, when :attr:`conv` is read: a step changes its context several times and reads the
    whole conversation seldom. :attr:`ctx`, :attr:`state` and :attr:`outcome` are always
    current and cost no copy.
    """

    __slots__ = (
        "_conv", "_ctx", "_outcome", "_pending", "_state", "action", "directive", "events", "held", "limits", "now",
        "practice", "replies", "taken",
    )

    def __init__(
        self,
        conv: Conversation,
        now: datetime,
        limits: Limits,
        practice: Practice,
        taken: frozenset[datetime],
        held: frozenset[datetime] = frozenset(),
    ) -> None:
        self._conv = conv
        self._ctx = conv.context
        self._state = conv.state
        self._outcome = conv.outcome
        self._pending: dict[str, Any] = {}  # fields of the conversation changed since last copied
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
    def conv(self) -> Conversation:
        """The conversation as decided so far."""
        if self._pending:
            self._conv = replace(self._conv, **self._pending)
            self._pending = {}
        return self._conv

    @conv.setter
    def conv(self, conv: Conversation) -> None:
        self._conv = conv
        self._ctx = conv.context
        self._state = conv.state
        self._outcome = conv.outcome
        self._pending = {}

    @property
    def ctx(self) -> Context:
        """The conversation's context as decided so far."""
        return self._ctx

    @property
    def state(self) -> State:
        """The conversation's state as decided so far."""
        return self._state

    @property
    def outcome(self) -> Outcome | None:
        """The conversation's outcome as decided so far."""
        return self._outcome

    @property
    def caller_phone(self) -> str | None:
        """The caller id (never changed by a step)."""
        return self._conv.caller_phone

    def set_ctx(self, ctx: Context) -> None:
        """Replace the context."""
        self._ctx = ctx
        self._pending["context"] = ctx

    def say(self, text: str) -> None:
        """Add a sentence to the reply."""
        self.replies.append(text)

    def emit(self, event: Event) -> None:
        """Report a fact to telemetry."""
        self.events.append(event)

    def go(self, to: State) -> None:
        """Move to ``to`` (checked against the table); ends the conversation on a terminal state."""
        current = self._state
        if to == current:
            return
        if not allowed(current, to):
            raise EngineInvariantError(f"transition {current} → {to} is not in the table")
        self.emit(StateChanged(current, to, self.now))
        self._state = to
        self._pending["state"] = to
        self._pending["state_entered_at"] = self.now
        self.show_purpose(STATE_PURPOSE.get(to))
        if to in TERMINAL:
            self.end(TERMINAL_OUTCOME[to])
        if to is S.TRANSFERRED:
            self.directive = "transfer"

    def end(self, outcome: Outcome, reason: str | None = None) -> None:
        """Give the conversation its one outcome (a second call changes nothing)."""
        if self.outcome is not None:
            return
        self._outcome = outcome
        self._pending["outcome"] = outcome
        self.show_purpose(STATE_PURPOSE.get(self._state))
        conv = self._conv  # its channel and turn count: never pending
        self.emit(ConversationEnded(conv.channel, outcome, self._state, conv.turn_count, reason, self._ctx.purpose))

    def show_purpose(self, shown: Purpose | None) -> None:
        """Note what the conversation is for (the strongest purpose shown so far wins)."""
        if shown is not None and stronger(self._ctx.purpose, shown) is not self._ctx.purpose:
            self.set_ctx(replace(self._ctx, purpose=shown))

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the practice's time zone."""
        return moment.astimezone(self.practice.timezone)

    def nth(self) -> int:
        """The turn number, which picks the wording variant."""
        return self._conv.turn_count

    def known_phone(self) -> str | None:
        """The contact number: one given during the call, else the caller id."""
        return self._ctx.phone or self._conv.caller_phone

    def slot_refs(self) -> tuple[SlotRef, ...]:
        """The proposed slots as the understanding layer refers to them."""
        moments = [s.start.astimezone(self.practice.timezone) for s in self._ctx.proposed]
        return tuple(SlotRef(m, labels.voice_label(m)) for m in moments)

    def booking_name(self) -> str:
        """The name the appointment is booked under: the patient's (someone else, or the
        appointment being moved), else the caller's."""
        if self.ctx.modifying is not None:
            return self.ctx.modifying.name
        if self.ctx.for_someone_else and self.ctx.patient_name:
            return self.ctx.patient_name
        return self.ctx.full_name

    def for_whom(self) -> str:
        """"au nom de Jean Dupont", "au nom d'Alice Martin", "pour Inès Brossard"."""
        someone_else = self.ctx.modifying is None and self.ctx.for_someone_else
        return replies.for_whom(self.booking_name(), someone_else)

    def decision(self) -> Decision:
        """What was decided, as the engine's answer."""
        return Decision(
            conversation=self.conv,
            reply=" ".join(filter(None, self.replies)),
            events=tuple(self.events),
            action=self.action,
            directive=self.directive,
        )

    # -- shared behaviours ---------------------------------------------------------
    def transfer(self, text: str, reason: TransferReason, pref: Preference | None = None) -> None:
        """Say ``text`` and hand the call over to the practice, reporting ``reason`` (and the
        preference in force: ``pref``, else the conversation's)."""
        self.say(text)
        pref = pref or self.ctx.preference or Preference()
        self.emit(Transferred(reason, self._state, pref.label()))
        self.go(S.TRANSFERRED)

    def counted(self, key: Retry, limit: int) -> bool:
        """Count one more failure of ``key``; True when the count reaches ``limit``."""
        self.set_ctx(self.ctx.with_fail(key))
        return self.ctx.failed(key) >= limit

    def menu(self) -> None:
        """Offer the fallback menu (INTENT_ROUTER)."""
        self.set_ctx(self.ctx.without_fail(Retry.MENU))
        self.say(replies.MENU)
        self.go(S.INTENT_ROUTER)

    def miss(self, fld: MissField, reason: MissReason = MissReason.NOTHING_FOUND,
             fallback: State | None = None) -> None:
        """Report that this caller turn could not be used for ``fld`` (the not-understood inbox)."""
        self.emit(NotUnderstood(self._state, fld, reason, self._conv.turn_count, fallback))

    def fail(self, fld: Field, text: str | None = None, reason: MissReason = MissReason.NOTHING_FOUND) -> None:
        """Count a failure of ``fld``: clarify (with ``text`` when given), or at the limit fall
        back (transfer or menu)."""
        key = Retry(fld.value)
        reached = self.counted(key, self.limits.recovery_limits.get(fld, 2))
        attempts = self.ctx.failed(key)
        if reached:
            to = self.limits.recovery_fallback
            self.miss(MissField(fld.value), reason, to)
            self.emit(RecoveryLimitReached(fld, attempts, to))
            self.set_ctx(self.ctx.without_fail(key))
            if to is S.INTENT_ROUTER:
                self.menu()
            else:
                self.transfer(replies.TRANSFER_AFTER_FAILURES, TransferReason.RECOVERY_LIMIT)
            return
        self.miss(MissField(fld.value), reason)
        self.emit(RecoveryStepped(fld, attempts))
        self.say(text or replies.pick(replies.CLARIFY[fld], attempts - 1))

    def propose(
        self,
        pref: Preference,
        intro: tuple[str, ...],
        *,
        exclude_current: bool = False,
        lead: str | None = None,
    ) -> bool:
        """Find three slots for ``pref`` and say them (or the nearest, saying so); False when
        none is left. ``lead`` replaces the intro (a move names the appointment it moves)."""
        excluded = set(self.ctx.excluded)
        if exclude_current:
            excluded.update(s.start for s in self.ctx.proposed)
        found = proposal.find(
            self.practice, pref, self.now, self.taken, frozenset(excluded), held=self.held
        )
        if not found.slots:
            return False
        if found.nearest:
            intro = replies.SLOTS_INTRO_CLOSED if found.closed else replies.SLOTS_INTRO_NEAREST
        opening = replies.pick(intro, self.nth())
        if lead is not None:
            opening = lead if not found.nearest else f"{lead} {opening}"
        channel = self._conv.channel
        question = replies.SLOTS_QUESTION_TEXT if channel is Channel.TEXT else replies.SLOTS_QUESTION
        message = labels.slot_message(
            found.slots, channel, self.limits.slots_message_max_chars, opening, question, self.local,
        )
        self.set_ctx(
            replace(
                self.ctx,
                preference=pref,
                proposed=found.slots,
                excluded=tuple(sorted(excluded)),
                chosen=None,
                slots_message=message,
            )
        )
        self.emit(SlotsSent(channel, message, tuple(s.start for s in found.slots)))
        self.say(message)
        return True

    def propose_or_transfer(
        self, pref: Preference, intro: tuple[str, ...], *, exclude_current: bool = False, lead: str | None = None,
    ) -> None:
        """Propose slots and wait for a choice, or hand over when none is left."""
        if self.propose(pref, intro, exclude_current=exclude_current, lead=lead):
            self.go(S.WAIT_CONFIRM)
        else:
            self.no_slot(pref)

    def no_slot(self, pref: Preference) -> None:
        """Nothing free matches ``pref`` in the horizon: hand over, naming the cause."""
        self.transfer(replies.TRANSFER_NO_SLOT, TransferReason.NO_SLOT, pref)

    def book(self, idx: int) -> None:
        """Ask the shell to book proposed slot ``idx`` (replacing the appointment being moved)."""
        slot = self.ctx.proposed[idx]
        if self.ctx.chosen != idx:
            self.set_ctx(replace(self.ctx, chosen=idx))
        retry = self.ctx.booking_retries
        self.emit(BookingAttempted(idx + 1, slot.start, retry))
        self.action = Book(
            slot=slot,
            name=self.booking_name(),
            phone=self.known_phone(),
            slot_idx=idx + 1,
            retry=retry,
            replaces=self.ctx.modifying.booking_id if self.ctx.modifying else None,
        )

    def choose(self, idx: int, interrupted: bool) -> None:
        """The caller chose slot ``idx``: book it, or first ask a number to reach them."""
        if interrupted:
            self.emit(Interrupted(idx + 1))
        self.set_ctx(replace(self.ctx.without_fail(Retry.SLOT_CHOICE, Retry.CONFIRM), chosen=idx))
        if self.known_phone() is None:
            self.say(replies.pick(replies.ASK_PHONE, self.nth()))
            self.go(S.QUALIF_PHONE)
        else:
            self.book(idx)

    def spoken_slots(self) -> str:
        """The proposed slots as said again: "mardi 3 à 14h, jeudi 5 à 9h ou vendredi 6 à 10h"."""
        return labels.enumerate_fr([labels.voice_label(self.local(s.start)) for s in self.ctx.proposed])

    def resume(self) -> None:
        """Ask again the question pending in the current state (after a FAQ or filler)."""
        state = self._state
        if state is S.WAIT_CONFIRM and self.ctx.proposed:
            self.say(replies.RESUME_SLOTS.format(labels=self.spoken_slots()))
        else:
            self.say(replies.RESUME.get(state.value, ""))
