"""Operator answers: booking stats, the seed's target table and its diagnosis checklist.

Pure functions, no I/O and no clock: callers pass the store's rows and events (or the lines
of a log file) and the time. The same per-conversation facts are built from either source,
so ``GET /api/stats/bookings``, ``GET /api/diagnose`` and ``rdv diagnose --logs`` agree.

Definitions (seed §5.5, over conversations whose ``last_seen_at`` falls in the window):

* ``total_sessions``: conversations in the window;
* ``confirmed_bookings``, ``transferred``, ``intent_router``: conversations by outcome
  (a conversation still waiting in the fallback menu counts as ``intent_router``);
* ``conversion_rate`` = confirmed / ``booking_sessions``, in percent, where the booking
  sessions are the conversations whose purpose is in ``telemetry.names.CONVERSION_PURPOSES``
  (book, move, or ended before saying what for): cancellations and information-only calls are
  not failed bookings and are reported apart (``cancellations``, ``information_calls``); the
  alerts and the dashboard use the same population;
* ``conversion_rate_all_sessions`` = confirmed / total, in percent: the manual's own figure;
* test conversations (``rdv probe``, ``rdv simulate``: ids starting ``synthetic-``) are left out
  of every figure and only counted (``synthetic_sessions``);
* ``abandon_rate`` = abandoned / total, in percent, where abandoned means the call ended
  (the caller hung up) or expired without any other outcome. Cancelled appointments and
  conversations still in progress are neither conversions nor abandons.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from service.engine import events as ev
from service.engine.model import RdvError
from service.engine.states import (
    BookingResult,
    Field,
    Outcome,
    OverrideIntent,
    Purpose,
    State,
    TransferReason,
    purpose_of,
)
from telemetry import names as n

DEFAULT_WINDOW = "24h"
MAX_WINDOW = timedelta(days=31)
EVENTS_LOOKBACK = timedelta(days=1)
_WINDOW = re.compile(r"(\d{1,5})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}

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


class StatsError(RdvError):
    """An operator input (window, log file) the answers cannot use; the message says why."""


# --------------------------------------------------------------------------- windows
@dataclass(frozen=True, slots=True)
class Window:
    """A look-back period such as ``24h``: the conversations last seen in it are counted."""

    label: str
    duration: timedelta

    def since(self, until: datetime) -> datetime:
        """The start of the window ending at ``until``."""
        return until - self.duration


def parse_window(raw: str | None, default: str = DEFAULT_WINDOW) -> Window:
    """``30m``, ``1h``, ``24h``, ``7d``… (at most 31 days); anything else is a StatsError."""
    text = (raw if raw is not None else default).strip().lower()
    match = _WINDOW.fullmatch(text)
    if match is None:
        raise StatsError(
            f"window {raw!r} is not a duration like 1h, 24h or 7d (a number followed by m, h or d)"
        )
    amount = int(match.group(1))
    duration = timedelta(**{_UNITS[match.group(2)]: amount})
    if amount == 0 or duration > MAX_WINDOW:
        raise StatsError(f"window {raw!r} must be longer than zero and at most 31 days")
    return Window(text, duration)


def events_since(rows: Sequence[Mapping[str, Any]], since: datetime) -> datetime:
    """Where to start reading events so that conversations of the window are seen whole:
    the oldest start among them, but no more than a day before the window (a call or chat
    lasts minutes; an older start is a conversation kept open, not worth a long scan)."""
    starts: list[datetime] = [r["created_at"] for r in rows if isinstance(r.get("created_at"), datetime)]
    earliest: datetime = min([since, *starts])
    return max(earliest, since - EVENTS_LOOKBACK)


# --------------------------------------------------------------------------- causes
class Cause(StrEnum):
    """Why a conversation did not end in a confirmed appointment (or that it did)."""

    # The seven failure patterns of the seed's checklist (§2, §5.4).
    SLOT_TAKEN = "slot_taken"
    ANTI_LOOP = "anti_loop"
    PHONE_RECOVERY = "phone_recovery"
    RECOVERY_LIMIT = "recovery_limit"
    LONG_SLOT_MESSAGE = "long_slot_message"
    FAQ_WAIT_CONFIRM = "faq_wait_confirm"
    SESSION_EXPIRED = "session_expired"
    # Other ways a call is lost, reported but without a seed recipe.
    BOOKING_ERROR = "booking_error"
    NO_SLOT = "no_slot"
    TRANSFERRED_OTHER = "transferred_other"
    MENU = "menu"
    CALLER_HUNG_UP = "caller_hung_up"
    UNKNOWN = "unknown"
    # Not failures.
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    NOT_A_BOOKING = "not_a_booking"
    IN_PROGRESS = "in_progress"


# In order of precedence: the first that applies names the conversation's cause.
PATTERNS: tuple[Cause, ...] = (
    Cause.SLOT_TAKEN,
    Cause.ANTI_LOOP,
    Cause.PHONE_RECOVERY,
    Cause.RECOVERY_LIMIT,
    Cause.LONG_SLOT_MESSAGE,
    Cause.FAQ_WAIT_CONFIRM,
    Cause.SESSION_EXPIRED,
)
NOT_FAILURES = frozenset({Cause.CONFIRMED, Cause.CANCELLED, Cause.NOT_A_BOOKING, Cause.IN_PROGRESS})
# Every failure cause, the seed's patterns first: the order that breaks ties in the ranking.
FAILURE_CAUSES: tuple[Cause, ...] = (*PATTERNS, *(c for c in Cause if c not in PATTERNS and c not in NOT_FAILURES))
# A transfer's reason (the engine's ``Transferred`` event) names its cause directly.
TRANSFER_CAUSES: Mapping[str, Cause] = {
    TransferReason.NO_SLOT.value: Cause.NO_SLOT,
    TransferReason.SLOT_TAKEN.value: Cause.SLOT_TAKEN,
    TransferReason.ANTI_LOOP.value: Cause.ANTI_LOOP,
    TransferReason.BOOKING_ERROR.value: Cause.BOOKING_ERROR,
    TransferReason.STORE_UNAVAILABLE.value: Cause.BOOKING_ERROR,
}


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What the seed tells the operator to do about one failure pattern."""

    label: str
    action: str
    constant: str | None
    default: str | None
    suggestion: str | None
    seed: str


RECOMMENDATIONS: Mapping[Cause, Recommendation] = {
    Cause.LONG_SLOT_MESSAGE: Recommendation(
        label="long slot messages, interrupted or cut by the voice",
        action=(
            f"Slot messages over {n.LONG_SLOT_MESSAGE_CHARS} characters precede lost calls: use the "
            "compact voice wording by lowering the spoken-message budget, and check in Vapi's "
            "dashboard that the whole reply was spoken."
        ),
        constant="SLOTS_MESSAGE_MAX_CHARS",
        default="350 (voice)",
        suggestion="SLOTS_MESSAGE_MAX_CHARS_VOICE=300",
        seed="§2.2, §5.4, §5.7",
    ),
    Cause.SLOT_TAKEN: Recommendation(
        label="slot taken between proposal and confirmation",
        action=(
            "Lost races are re-proposed automatically and the next loss transfers: check the "
            "[BOOKING_RETRY] lines and whether the practice's own calendar books the same slots; "
            "check that proposed slots are held for concurrent callers (RDV_SLOT_HOLD_SECONDS, "
            "120 by default, 0 turns it off) and allow more re-proposals if callers are "
            "transferred after lost races."
        ),
        constant="BOOKING_RETRY_MAX",
        default="2",
        suggestion="BOOKING_RETRY_MAX=3",
        seed="§2.5, §5.4, §5.7",
    ),
    Cause.PHONE_RECOVERY: Recommendation(
        label="call-back number not understood (phone recovery limit)",
        action=(
            "Callers without caller id fail to give a number the assistant understands: allow "
            "one more attempt, and listen to a few calls for digits lost by speech-to-text."
        ),
        constant="RECOVERY_LIMITS",
        default="phone=3",
        suggestion="RECOVERY_LIMITS=name=2,slot_choice=2,phone=4",
        seed="§2.6, §5.4, §5.7",
    ),
    Cause.ANTI_LOOP: Recommendation(
        label="anti-loop guard (too many turns)",
        action="Conversations hit the turn limit before booking: raise the limit for voice calls.",
        constant="MAX_TURNS_ANTI_LOOP",
        default="25 (text), 40 (voice)",
        suggestion="MAX_TURNS_ANTI_LOOP_VOICE=40",
        seed="§2.1, §3, §5.4, §5.7",
    ),
    Cause.SESSION_EXPIRED: Recommendation(
        label="session expired (idle longer than the TTL)",
        action="Calls outlive the session TTL: lengthen it for the voice channel.",
        constant="SESSION_TTL_MINUTES",
        default="15 (text), 30 (voice)",
        suggestion="SESSION_TTL_MINUTES_VOICE=30",
        seed="§2.4, §3",
    ),
    Cause.FAQ_WAIT_CONFIRM: Recommendation(
        label="practical question (FAQ) during the slot choice",
        action=(
            "Callers ask a question while choosing a slot and do not book: check that the "
            "answer is short and the three slots are offered again (intent_override "
            "state=WAIT_CONFIRM intent=faq), and shorten the practice file's [faq] answers."
        ),
        constant=None,
        default=None,
        suggestion="practice file [faq]",
        seed="§2.3",
    ),
    Cause.RECOVERY_LIMIT: Recommendation(
        label="transferred after recovery limits (name, slot choice)",
        action=(
            "Callers are handed over after names or slot choices were not understood: raise "
            "the recovery limits to 3, and the free re-ask of a slot choice if needed."
        ),
        constant="RECOVERY_LIMITS",
        default="name=2, slot_choice=2 (CONFIRM_RETRY_MAX=1)",
        suggestion="RECOVERY_LIMITS=name=3,slot_choice=3,phone=3",
        seed="§2.6, §3",
    ),
}

# Causes the seed has no recipe for: still named (and ranked) with what to look at.
OTHER_RECOMMENDATIONS: Mapping[Cause, Recommendation] = {
    Cause.NO_SLOT: Recommendation(
        label="no free slot matched the caller's preference ([NO_SLOT])",
        action=(
            "Callers are transferred because the calendar has nothing free for their preference "
            "within the horizon: check the [NO_SLOT] lines (preference=, state=), free or add "
            "slots, widen the opening hours or the booking horizon, and check closed dates."
        ),
        constant=None,
        default=None,
        suggestion="practice file: [hours], horizon_days, slot_minutes, min_lead_minutes",
        seed="not in the manual (rdv's [NO_SLOT] line, rdv_transfers_total{reason=\"no_slot\"})",
    ),
}

OTHER_LABELS: Mapping[Cause, str] = {
    Cause.BOOKING_ERROR: "the store failed to book",
    Cause.NO_SLOT: OTHER_RECOMMENDATIONS[Cause.NO_SLOT].label,
    Cause.TRANSFERRED_OTHER: "transferred (caller asked for a human or other reason)",
    Cause.MENU: "left in the fallback menu",
    Cause.CALLER_HUNG_UP: "caller hung up with no failure logged",
    Cause.UNKNOWN: "no outcome recorded",
    Cause.CONFIRMED: "confirmed",
    Cause.CANCELLED: "appointment cancelled",
    Cause.NOT_A_BOOKING: "a cancellation or information call that did not end in one (not a booking)",
    Cause.IN_PROGRESS: "still in progress",
}


def cause_label(cause: Cause) -> str:
    """A short human description of a cause."""
    rec = RECOMMENDATIONS.get(cause)
    return rec.label if rec is not None else OTHER_LABELS[cause]


# --------------------------------------------------------------------------- facts
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
        return Cause.IN_PROGRESS.value

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


def cause_of(facts: CallFacts) -> Cause:
    """The cause of a conversation's result, by the checklist's precedence."""
    status = facts.status
    if status == Outcome.CONFIRMED:
        return Cause.CONFIRMED
    if status == Outcome.CANCELLED:
        return Cause.CANCELLED
    if status == Cause.IN_PROGRESS:
        return Cause.IN_PROGRESS
    if not facts.books:
        return Cause.NOT_A_BOOKING
    by_reason = TRANSFER_CAUSES.get(facts.transfer_reason or "")
    if status == Outcome.TRANSFERRED and by_reason is not None:
        return by_reason
    if facts.slot_taken:
        return Cause.SLOT_TAKEN
    if facts.anti_loop:
        return Cause.ANTI_LOOP
    if Field.PHONE.value in facts.recovery_limits:
        return Cause.PHONE_RECOVERY
    if facts.recovery_limits:
        return Cause.RECOVERY_LIMIT
    if facts.long_slot_messages:
        return Cause.LONG_SLOT_MESSAGE
    if State.WAIT_CONFIRM.value in facts.faq_states:
        return Cause.FAQ_WAIT_CONFIRM
    if facts.expired or status == Outcome.EXPIRED:
        return Cause.SESSION_EXPIRED
    if BookingResult.ERROR.value in facts.booking_results:
        return Cause.BOOKING_ERROR
    if status == Outcome.TRANSFERRED:
        if not facts.slot_lengths and State.QUALIF_PREF.value in facts.states_seen and not facts.human_requested:
            return Cause.NO_SLOT
        return Cause.TRANSFERRED_OTHER
    if status == Outcome.INTENT_ROUTER:
        return Cause.MENU
    if status == Outcome.ABANDONED:
        return Cause.CALLER_HUNG_UP
    return Cause.UNKNOWN


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


# --------------------------------------------------------------------------- log lines
@dataclass(frozen=True, slots=True)
class LogRecord:
    """One recognised line of the seed's log format."""

    tag: str
    conv_id: str
    values: Mapping[str, str]
    at: datetime | None = None


_TAGS: tuple[str, ...] = (
    n.LOG_FLOW, n.LOG_STATE_CHANGE, n.LOG_SLOTS_SENT, n.LOG_BOOKING_ATTEMPT, n.LOG_BOOKING_RESULT,
    n.LOG_BOOKING_RETRY, n.LOG_INTERRUPTION, n.LOG_RDV_CONFIRMED, n.LOG_ANTI_LOOP,
    n.LOG_SESSION_EXPIRED, n.LOG_RECOVERY_LIMIT, n.LOG_RECOVERY_STEP, n.LOG_INTENT_OVERRIDE,
    n.LOG_FILLER, n.LOG_FAQ_ANSWERED, n.LOG_BOOKING_CANCELLED, n.LOG_CONVERSATION_ENDED,
    n.LOG_CONVERSATION_STARTED, n.LOG_VAPI_CALL_ENDED, n.LOG_NO_SLOT, n.LOG_TRANSFERRED,
)
_TAG_RE = re.compile(
    "|".join(
        re.escape(t) if t.startswith("[") else rf"(?<![\w\[]){re.escape(t)}(?![\w\]])" for t in _TAGS
    )
)
_EXPIRED_FR = re.compile(r"session expir[ée]e", re.IGNORECASE)
_CONV_KEY = re.compile(r"\bconv(?:_id|ersation_id)?=\"?([^\s,\"]+)")
_CONV_TOKEN = re.compile(r"\b(conv_[A-Za-z0-9_-]+)")
_FIRST_TOKEN = re.compile(r"\s*([^\s,:\"]+)")
_ARROW = re.compile(r"([A-Z_]+)\s*(?:→|->)\s*([A-Z_]+)")
# key=value pairs separated by commas (this engine) or spaces (older ones); quoted values
# may hold commas; an unquoted value runs to the next separator ("name=Jean Dupont").
_KV = re.compile(r"([A-Za-z_]+)=(\"(?:[^\"\\]|\\.)*\"|.*?)(?=\s*,|\s+[A-Za-z_]+=|\s*$)")
_LEADING_TIME = re.compile(
    r"^\s*\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?)"
)


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def parse_log_line(line: str) -> LogRecord | None:
    """The record of one log line (text or JSON mode, any prefix), or None if not one of ours."""
    text = line.strip()
    at: datetime | None = None
    if text.startswith("{"):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if isinstance(body, dict):
            at = _timestamp(str(body.get("timestamp") or body.get("time") or "")) or None
            text = str(body.get("event") or body.get("message") or body.get("msg") or "")
    if at is None:
        stamp = _LEADING_TIME.match(text)
        at = _timestamp(stamp.group(1)) if stamp else None
    match = _TAG_RE.search(text)
    if match is None:
        if _EXPIRED_FR.search(text):
            conv = _CONV_KEY.search(text) or _CONV_TOKEN.search(text)
            if conv is not None:
                return LogRecord(n.LOG_SESSION_EXPIRED, conv.group(1), {}, at)
        return None
    tag = match.group(0)
    rest = text[match.end():]
    first = _FIRST_TOKEN.match(rest)
    conv_id: str | None = None
    if first is not None and "=" not in first.group(1):
        conv_id = first.group(1)
        rest = rest[first.end():]
    else:
        keyed = _CONV_KEY.search(rest)
        conv_id = keyed.group(1) if keyed else None
    if not conv_id:
        return None
    values: dict[str, str] = {}
    if tag == n.LOG_STATE_CHANGE:
        arrow = _ARROW.search(rest)
        if arrow is None:
            return None
        values = {"from_state": arrow.group(1), "to_state": arrow.group(2)}
    else:
        for key, raw in _KV.findall(rest):
            value = raw.strip()
            if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
                value = value[1:-1]
            values.setdefault(key.lower(), value)
    return LogRecord(tag, conv_id, values, at)


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


_TERMINAL_OUTCOMES = {
    State.CONFIRMED.value: Outcome.CONFIRMED.value,
    State.CANCELLED.value: Outcome.CANCELLED.value,
    State.TRANSFERRED.value: Outcome.TRANSFERRED.value,
    State.INTENT_ROUTER.value: Outcome.INTENT_ROUTER.value,
}


def facts_from_log(lines: Iterable[str], since: datetime | None = None) -> list[CallFacts]:
    """Facts of every conversation in a log of the seed's format (this engine or an older one).

    Lines with a timestamp (JSON mode, or a leading ISO time as log platforms add) before
    ``since`` are skipped; lines without one are all read. When the log has no
    ``conversation_ended`` line at all (an older engine), a conversation whose last state is
    not terminal is counted as abandoned; otherwise it is still in progress.
    """
    by_id: dict[str, CallFacts] = {}
    ends_logged = False
    for line in lines:
        record = parse_log_line(line)
        if record is None or (since is not None and record.at is not None and record.at < since):
            continue
        facts = by_id.get(record.conv_id)
        if facts is None:
            facts = by_id[record.conv_id] = CallFacts(
                conv_id=record.conv_id, synthetic=n.is_synthetic(record.conv_id)
            )
        if record.at is not None:
            facts.last_seen_at = record.at
        ends_logged |= _apply_record(facts, record)
    for facts in by_id.values():
        if facts.outcome is None and facts.final_state is not None:
            if facts.final_state in _TERMINAL_OUTCOMES:
                facts.outcome = _TERMINAL_OUTCOMES[facts.final_state]
            elif not ends_logged:
                facts.outcome = Outcome.EXPIRED.value if facts.expired else Outcome.ABANDONED.value
        elif facts.outcome is None and facts.confirmed_logged:
            facts.outcome = Outcome.CONFIRMED.value
    return list(by_id.values())


def _apply_record(facts: CallFacts, record: LogRecord) -> bool:
    """Fold one log record into the facts; True when it is a ``conversation_ended`` line."""
    v = record.values
    tag = record.tag
    if tag == n.LOG_FLOW:
        state = v.get("state")
        turn = _int(v.get("turn"))
        if turn == 0:
            # A first turn: a new conversation, or one restarted after expiry under the same id.
            facts.outcome = None
        if state:
            facts.states_seen.add(state)
            facts.final_state = state
        if turn is not None:
            facts.turns = turn + 1 if turn == 0 else max(facts.turns, turn + 1)
    elif tag == n.LOG_STATE_CHANGE:
        facts.states_seen.add(v["to_state"])
        facts.final_state = v["to_state"]
    elif tag == n.LOG_SLOTS_SENT:
        length = _int(v.get("length", v.get("len")))
        facts.slot_lengths.append(length if length is not None else len(v.get("msg", "")))
        if v.get("channel"):
            facts.channel = v["channel"]
    elif tag == n.LOG_BOOKING_RESULT:
        ok = v.get("success", "").strip().lower() in ("true", "1", "yes")
        facts.booking_results.append(BookingResult.SUCCESS.value if ok else BookingResult.SLOT_TAKEN.value)
    elif tag == n.LOG_BOOKING_RETRY:
        facts.booking_retries += 1
    elif tag == n.LOG_INTERRUPTION:
        facts.interruptions += 1
    elif tag == n.LOG_RDV_CONFIRMED:
        facts.confirmed_logged = True
        facts.states_seen.add(State.CONFIRMED.value)
        facts.final_state = State.CONFIRMED.value
    elif tag == n.LOG_ANTI_LOOP:
        facts.anti_loop = True
    elif tag == n.LOG_SESSION_EXPIRED:
        facts.expired = True
    elif tag == n.LOG_RECOVERY_STEP:
        facts.recovery_steps += 1
    elif tag == n.LOG_RECOVERY_LIMIT:
        facts.recovery_limits.append(v.get("field") or "unknown")
    elif tag == n.LOG_INTENT_OVERRIDE:
        if v.get("intent") == OverrideIntent.HUMAN:
            facts.human_requested = True
        elif v.get("intent") == OverrideIntent.FAQ and v.get("state"):
            facts.faq_states.append(v["state"])
    elif tag == n.LOG_FAQ_ANSWERED:
        # This engine logs both intent_override and faq_answered for one FAQ: count it once.
        if v.get("state") and v["state"] not in facts.faq_states:
            facts.faq_states.append(v["state"])
    elif tag == n.LOG_FILLER:
        facts.fillers += 1
    elif tag == n.LOG_BOOKING_CANCELLED:
        facts.cancelled_logged = True
    elif tag == n.LOG_NO_SLOT:
        facts.transfer_reason = TransferReason.NO_SLOT.value
    elif tag == n.LOG_TRANSFERRED:
        facts.transfer_reason = v.get("reason") or facts.transfer_reason
    elif tag == n.LOG_CONVERSATION_STARTED:
        facts.channel = v.get("channel") or facts.channel
    elif tag == n.LOG_CONVERSATION_ENDED:
        facts.outcome = v.get("outcome") or facts.outcome
        facts.final_state = v.get("state") or facts.final_state
        facts.channel = v.get("channel") or facts.channel
        turns = _int(v.get("turns"))
        if turns is not None:
            facts.turns = turns
        reason = v.get("reason")
        if reason and reason != "-":
            facts.ended_reason = reason
        return True
    elif tag == n.LOG_VAPI_CALL_ENDED:
        reason = v.get("reason")
        if reason and reason != "-":
            facts.ended_reason = reason
    return False


# --------------------------------------------------------------------------- answers
def _pct(part: int, whole: int) -> float:
    """``part`` of ``whole`` in percent, two decimals; 0 when ``whole`` is 0."""
    return round(100.0 * part / whole, 2) if whole else 0.0


@dataclass(frozen=True, slots=True)
class Target:
    """One row of the seed's target table (§5.7)."""

    key: str
    label: str
    comparison: str  # ">" or "<"
    threshold: float  # ratio, from telemetry.names
    numerator: str
    denominator: str
    action: str


TARGETS: tuple[Target, ...] = (
    Target("confirmation_rate", "confirmation rate", ">", n.CONVERSION_TARGET,
           "confirmed booking conversations", "conversations that came to book or move",
           "analyse the abandons (seed §5.3)"),
    Target("slot_taken_rate", "slot taken (success=False)", "<", n.SLOT_TAKEN_MAX,
           "booking attempts that lost the slot", "booking attempts",
           "retry is in place; watch [BOOKING_RETRY] (BOOKING_RETRY_MAX)"),
    Target("anti_loop_rate", "anti-loop triggered", "<", n.ANTI_LOOP_MAX,
           "conversations that hit the anti-loop", "conversations", "raise MAX_TURNS_ANTI_LOOP"),
    Target("phone_recovery_rate", "phone recovery limit reached", "<", n.PHONE_RECOVERY_MAX,
           "conversations that reached the phone recovery limit",
           "conversations asked for a phone number", "RECOVERY_LIMITS phone is already 3"),
    Target("long_slot_message_rate", f"slot messages over {n.LONG_SLOT_MESSAGE_CHARS} chars", "<",
           n.LONG_SLOT_MESSAGE_SHARE_MAX, f"slot messages over {n.LONG_SLOT_MESSAGE_CHARS} characters",
           "slot messages", "compact slot wording (SLOTS_MESSAGE_MAX_CHARS)"),
)


def _target_counts(facts: Sequence[CallFacts]) -> dict[str, tuple[int, int]]:
    total = len(facts)
    results = [r for f in facts for r in f.booking_results]
    lengths = [x for f in facts for x in f.slot_lengths]
    return {
        "confirmation_rate": (
            sum(1 for f in facts if f.books and f.status == Outcome.CONFIRMED), sum(1 for f in facts if f.books),
        ),
        "slot_taken_rate": (results.count(BookingResult.SLOT_TAKEN.value), len(results)),
        "anti_loop_rate": (sum(1 for f in facts if f.anti_loop), total),
        "phone_recovery_rate": (
            sum(1 for f in facts if Field.PHONE.value in f.recovery_limits),
            sum(1 for f in facts if f.asked_phone),
        ),
        "long_slot_message_rate": (
            sum(1 for x in lengths if x > n.LONG_SLOT_MESSAGE_CHARS), len(lengths),
        ),
    }


def targets(facts: Sequence[CallFacts]) -> list[dict[str, Any]]:
    """The seed's target table: each rate in percent and whether it meets its target.

    ``meets`` is None when there is nothing to measure (no conversation, no booking attempt…).
    """
    counts = _target_counts(facts)
    out: list[dict[str, Any]] = []
    for target in TARGETS:
        part, whole = counts[target.key]
        value = _pct(part, whole)
        threshold = round(target.threshold * 100, 2)
        meets: bool | None = None
        if whole:
            meets = value > threshold if target.comparison == ">" else value < threshold
        out.append({
            "key": target.key,
            "label": target.label,
            "value": value,
            "target": f"{target.comparison} {threshold:g} %",
            "comparison": target.comparison,
            "threshold": threshold,
            "meets": meets,
            "count": part,
            "of": whole,
            "numerator": target.numerator,
            "denominator": target.denominator,
            "action": target.action,
        })
    return out


def _window_info(window: Window | None, until: datetime | None) -> dict[str, Any]:
    return {
        "window": window.label if window else "all",
        "since": window.since(until).isoformat() if window and until else None,
        "until": until.isoformat() if until else None,
    }


def bookings(facts: Sequence[CallFacts], window: Window | None, until: datetime | None) -> dict[str, Any]:
    """The ``GET /api/stats/bookings`` answer (definitions in the module docstring)."""
    synthetic = sum(1 for f in facts if f.synthetic)
    facts = [f for f in facts if not f.synthetic]
    statuses = Counter(f.status for f in facts)
    total = len(facts)
    abandoned = statuses[Outcome.ABANDONED.value] + statuses[Outcome.EXPIRED.value]
    abandoned_states = Counter(
        f.final_state or "unknown"
        for f in facts
        if f.status in (Outcome.ABANDONED.value, Outcome.EXPIRED.value)
    )
    reasons = Counter(f.ended_reason for f in facts if f.ended_reason)
    purposes = Counter(f.purpose for f in facts)
    booking = [f for f in facts if f.books]
    return {
        **_window_info(window, until),
        "total_sessions": total,
        "confirmed_bookings": statuses[Outcome.CONFIRMED.value],
        "transferred": statuses[Outcome.TRANSFERRED.value],
        "intent_router": statuses[Outcome.INTENT_ROUTER.value],
        "conversion_rate": _pct(sum(1 for f in booking if f.status == Outcome.CONFIRMED), len(booking)),
        "conversion_rate_all_sessions": _pct(statuses[Outcome.CONFIRMED.value], total),
        "booking_sessions": len(booking),
        "cancellations": purposes[Purpose.CANCEL.value],
        "information_calls": purposes[Purpose.INFORMATION.value],
        "purposes": {p.value: purposes[p.value] for p in Purpose},
        "synthetic_sessions": synthetic,
        "abandon_rate": _pct(abandoned, total),
        "abandoned": abandoned,
        "outcomes": {
            **{o.value: statuses[o.value] for o in Outcome},
            Cause.IN_PROGRESS.value: statuses[Cause.IN_PROGRESS.value],
        },
        "abandoned_by_state": dict(abandoned_states.most_common()),
        "ended_reasons": dict(reasons.most_common()),
        "targets": targets(facts),
    }


def _recommendation(cause: Cause) -> dict[str, Any]:
    rec = RECOMMENDATIONS.get(cause) or OTHER_RECOMMENDATIONS.get(cause)
    if rec is None:
        rec = Recommendation(
            label=OTHER_LABELS[cause],
            action="The manual has no recipe for this cause: read the timelines of these conversations.",
            constant=None, default=None, suggestion=None, seed="not in the manual",
        )
    return {
        "pattern": cause.value,
        "in_manual": cause in RECOMMENDATIONS,
        "label": rec.label,
        "action": rec.action,
        "constant": rec.constant,
        "default": rec.default,
        "suggestion": rec.suggestion,
        "seed": rec.seed,
    }


def _row(facts: CallFacts, cause: Cause) -> dict[str, Any]:
    return {
        "conv_id": facts.conv_id,
        "channel": facts.channel,
        "final_state": facts.final_state,
        "outcome": facts.status,
        "turns": facts.turns,
        "cause": cause.value,
        "ended_reason": facts.ended_reason,
        "last_seen_at": facts.last_seen_at.isoformat() if facts.last_seen_at else None,
        "signals": facts.signals(),
    }


def diagnose(
    facts: Sequence[CallFacts],
    window: Window | None,
    until: datetime | None,
    *,
    source: str,
    limit: int = 100,
) -> dict[str, Any]:
    """The seed's checklist (§5.8 J+1) automated: per conversation final state, turns and
    cause; final states of non-confirmed conversations; causes; the dominant failure pattern
    with the action and constant the seed recommends; the target table. Test conversations
    (``rdv probe``, ``rdv simulate``) are only counted, as ``synthetic``."""
    synthetic = sum(1 for f in facts if f.synthetic)
    facts = [f for f in facts if not f.synthetic]
    causes = {f.conv_id: cause_of(f) for f in facts}
    failures = [f for f in facts if causes[f.conv_id] not in NOT_FAILURES]
    cause_counts = Counter(causes[f.conv_id] for f in failures)
    final_states = Counter(
        f.final_state or "unknown" for f in facts if causes[f.conv_id] is not Cause.CONFIRMED
    )
    # Every cause known, ranked by its share of the failures: the largest is named even when
    # the manual has no recipe for it (a full calendar must not hide behind a minor pattern).
    patterns: list[dict[str, Any]] = []
    for cause in sorted(
        (c for c in FAILURE_CAUSES if cause_counts[c]), key=lambda c: (-cause_counts[c], FAILURE_CAUSES.index(c))
    ):
        patterns.append({
            **_recommendation(cause),
            "conversations": cause_counts[cause],
            "share": _pct(cause_counts[cause], len(failures)),
        })
    ordered = sorted(
        facts,
        key=lambda f: (f.last_seen_at.timestamp() if f.last_seen_at else float("-inf"), f.conv_id),
        reverse=True,
    )
    confirmed = sum(1 for f in facts if causes[f.conv_id] is Cause.CONFIRMED)
    booking = [f for f in facts if f.books]
    purposes = Counter(f.purpose for f in facts)
    return {
        **_window_info(window, until),
        "source": source,
        "summary": {
            "conversations": len(facts),
            "confirmed": confirmed,
            "not_confirmed": len(facts) - confirmed,
            "failures": len(failures),
            "cancelled": sum(1 for c in causes.values() if c is Cause.CANCELLED),
            "in_progress": sum(1 for c in causes.values() if c is Cause.IN_PROGRESS),
            "booking_sessions": len(booking),
            "cancellations": purposes[Purpose.CANCEL.value],
            "information_calls": purposes[Purpose.INFORMATION.value],
            "conversion_rate": _pct(sum(1 for f in booking if causes[f.conv_id] is Cause.CONFIRMED), len(booking)),
            "conversion_rate_all_sessions": _pct(confirmed, len(facts)),
            "synthetic": synthetic,
        },
        "final_states": dict(final_states.most_common()),
        "causes": {
            c.value: cause_counts[c]
            for c in sorted(cause_counts, key=lambda c: (-cause_counts[c], c.value))
        },
        "patterns": patterns,
        "dominant": patterns[0] if patterns else None,
        "targets": targets(facts),
        "conversations": [_row(f, causes[f.conv_id]) for f in ordered[: max(limit, 0)]],
    }
