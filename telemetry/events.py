"""The event registry: what each engine event means to telemetry, said once.

One entry per event type (:data:`EVENTS`), in the manner of Starlette's ``CONVERTOR_TYPES``:

* ``kind``: the name the store keeps the event under (its class name);
* ``lines``: the log lines it writes, each a tag, a function building the line's fields and,
  back, a function turning a parsed line's values into the event's stored form;
* ``count``: its metric update;
* ``fold``: what it tells about the call, read from the stored form into
  :class:`telemetry.facts.CallFacts`. The store's events and a log file's lines (normalised to
  the stored form by their line's ``parse``) go through the same fold;
* ``in_row``: what it tells is kept in the conversation's row too, so the store's answers need
  not read it (``EVENT_KINDS``).

A line's fields and a metric's labels take the engine's enum members as they are: they are
``StrEnum`` members, strings equal to their values, so the line templates, the JSON encoder and
prometheus-client write their values (``.value``, a property written in Python, costs more
than the rest of a field on the turn path).

:meth:`telemetry.observer.Telemetry.observe` looks an event up and calls its entry;
:mod:`service.stats` folds with :func:`fold`. ``tests/telemetry/test_event_registry.py`` fails
when an engine event has no entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, TypeVar

from service.engine import events as ev
from service.engine.states import BookingResult, OverrideIntent, State, TransferReason
from telemetry import names as n
from telemetry.facts import CallFacts

E = TypeVar("E")
# An event's stored form: its fields as JSON values (enums by value, datetimes ISO), plus
# ``length`` for slot messages; what a parsed log line is normalised to.
Data = Mapping[str, Any]
# A parsed log line's ``key=value`` pairs.
Values = Mapping[str, str]


class Meter(Protocol):
    """What an event's metric update writes to (:class:`telemetry.metrics.Metrics`, or the
    counters of a test conversation)."""

    @property
    def started(self) -> Mapping[str, Any]:
        """The pre-bound ``rdv_conversations_started_total`` child of each channel."""

    def inc(self, metric: n.Metric, *labels: str) -> None:
        """Add one to ``metric``'s series of ``labels``."""

    def observe(self, metric: n.Metric, value: float, trace_id: str | None, *labels: str) -> None:
        """Record ``value`` in a histogram, with the trace id as exemplar."""


@dataclass(frozen=True, slots=True)
class VapiCallEnded:
    """Vapi reported the end of a call (not an engine event: the Vapi adapter's)."""

    reason: str | None
    category: str


@dataclass(frozen=True, slots=True)
class Line(Generic[E]):
    """One log line an event writes: its tag, its fields (None: not written for this event),
    and a parsed line's values back to the event's stored form."""

    tag: str
    fields: Callable[[E], dict[str, Any] | None]
    parse: Callable[[Values], dict[str, Any]]


# (event, meter, channel, trace id): the conversation's trace id, the histograms' exemplar
# ("": none).
Count = Callable[[E, Meter, str, str], None]
Fold = Callable[[CallFacts, Data], None]


@dataclass(frozen=True, slots=True)
class EventSpec(Generic[E]):
    """Everything telemetry and the stats know about one event type."""

    event: type[E]
    lines: tuple[Line[E], ...]
    count: Count[E] | None = None
    fold: Fold | None = None
    in_row: bool = False

    @property
    def kind(self) -> str:
        """The stored kind: the event's class name."""
        return self.event.__name__


def preview(message: str) -> str:
    """The seed's ``msg=`` field: the first 200 characters, on one line, quotes escaped."""
    text = " ".join(message[: n.SLOTS_SENT_PREVIEW_CHARS].split())
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _dash(value: str | None) -> str | None:
    """A logged ``-`` (no value) as None."""
    return None if not value or value == "-" else value


# --------------------------------------------------------------------------- folds
def _turn(f: CallFacts, d: Data) -> None:
    state, turn = d.get("state"), d.get("turn")
    if turn == 0:
        # A first turn: a new conversation, or one restarted after expiry under the same id.
        f.outcome = None
    if state:
        f.states_seen.add(str(state))
        f.final_state = str(state)
    if isinstance(turn, int):
        f.turns = turn + 1 if turn == 0 else max(f.turns, turn + 1)
    if d.get("interrupted"):
        f.cut_turns += 1


def _state_changed(f: CallFacts, d: Data) -> None:
    if d.get("to_state"):
        f.states_seen.add(str(d["to_state"]))
        f.final_state = str(d["to_state"])


def _slots_sent(f: CallFacts, d: Data) -> None:
    length = d.get("length")
    f.slot_lengths.append(length if isinstance(length, int) else len(str(d.get("message") or "")))
    if d.get("channel"):
        f.channel = str(d["channel"])


def _confirmed(f: CallFacts, d: Data) -> None:
    f.confirmed_logged = True
    f.states_seen.add(State.CONFIRMED.value)
    f.final_state = State.CONFIRMED.value


def _intent_overridden(f: CallFacts, d: Data) -> None:
    if d.get("intent") == OverrideIntent.HUMAN:
        f.human_requested = True
    elif d.get("intent") == OverrideIntent.FAQ and d.get("state"):
        f.faq_states.append(str(d["state"]))
        f.faq_override = str(d["state"])


def _faq_answered(f: CallFacts, d: Data) -> None:
    # The engine writes intent_override then faq_answered for one question (but only the
    # second in START): count it once.
    state = d.get("state")
    if state and state == f.faq_override:
        f.faq_override = None
    elif state:
        f.faq_states.append(str(state))


def _ended(f: CallFacts, d: Data) -> None:
    f.outcome = d.get("outcome") or f.outcome
    f.final_state = d.get("state") or f.final_state
    f.channel = d.get("channel") or f.channel
    if isinstance(d.get("turns"), int):
        f.turns = d["turns"]
    if _dash(d.get("reason")):
        f.ended_reason = d["reason"]


def _vapi_ended(f: CallFacts, d: Data) -> None:
    if _dash(d.get("reason")):
        f.ended_reason = d["reason"]


def _count_field(attr: str) -> Fold:
    """A fold that adds one to the integer fact ``attr``."""
    def fold(f: CallFacts, d: Data) -> None:
        setattr(f, attr, getattr(f, attr) + 1)
    return fold


def _flag(attr: str) -> Fold:
    """A fold that sets the boolean fact ``attr``."""
    def fold(f: CallFacts, d: Data) -> None:
        setattr(f, attr, True)
    return fold


def _ended_count(e: ev.ConversationEnded, m: Meter, channel: str, trace_id: str) -> None:
    m.inc(n.CONVERSATIONS_ENDED, e.channel, e.outcome, e.purpose)
    if e.outcome in n.STOPPED_OUTCOMES:
        m.inc(n.CONVERSATIONS_STOPPED, e.channel, e.outcome, e.state)
    m.observe(n.CONVERSATION_TURNS, e.turns, trace_id, e.channel, e.outcome)


def _success(value: str | None) -> str:
    ok = (value or "").strip().lower() in ("true", "1", "yes")
    return BookingResult.SUCCESS.value if ok else BookingResult.SLOT_TAKEN.value


# --------------------------------------------------------------------------- the registry
_SPECS: tuple[EventSpec[Any], ...] = (
    EventSpec(
        ev.ConversationStarted,
        (Line(n.LOG_CONVERSATION_STARTED, lambda e: {"channel": e.channel},
              lambda v: {"channel": v.get("channel")}),),
        count=lambda e, m, c, x: m.started[e.channel].inc(),
        fold=lambda f, d: setattr(f, "channel", d.get("channel") or f.channel),
        in_row=True,
    ),
    EventSpec(
        ev.TurnReceived,
        (Line(n.LOG_FLOW, lambda e: {"state": e.state, "turn": e.turn},
              lambda v: {"state": v.get("state"), "turn": _int(v.get("turn"))}),),
        fold=_turn,
    ),
    EventSpec(
        ev.StateChanged,
        (Line(n.LOG_STATE_CHANGE,
              lambda e: {"from_state": e.from_state, "to_state": e.to_state},
              lambda v: {"from_state": v.get("from_state"), "to_state": v.get("to_state")}),),
        count=lambda e, m, c, x: m.inc(n.STATE_TRANSITIONS, c, e.from_state, e.to_state),
        fold=_state_changed,
    ),
    EventSpec(
        ev.SlotsSent,
        (Line(n.LOG_SLOTS_SENT,
              lambda e: {"channel": e.channel, "length": e.length, "msg": preview(e.message)},
              lambda v: {"channel": v.get("channel"), "length": _int(v.get("length", v.get("len"))),
                         "message": v.get("msg", "")}),),
        count=lambda e, m, c, x: m.observe(n.SLOTS_MESSAGE_LENGTH, e.length, x, c),
        fold=_slots_sent,
    ),
    EventSpec(
        ev.BookingAttempted,
        (Line(n.LOG_BOOKING_ATTEMPT, lambda e: {"slot_idx": e.slot_idx},
              lambda v: {"slot_idx": _int(v.get("slot_idx"))}),),
    ),
    EventSpec(
        ev.BookingResulted,
        (Line(n.LOG_BOOKING_RESULT, lambda e: {"success": e.success},
              lambda v: {"result": _success(v.get("success"))}),),
        count=lambda e, m, c, x: m.inc(n.BOOKING_ATTEMPTS, c, e.result),
        fold=lambda f, d: f.booking_results.append(str(d.get("result"))),
    ),
    EventSpec(
        ev.BookingRetried,
        (Line(n.LOG_BOOKING_RETRY, lambda e: {"retry": e.retry, "preference": e.preference},
              lambda v: {"retry": _int(v.get("retry")), "preference": v.get("preference")}),),
        count=lambda e, m, c, x: m.inc(n.BOOKING_RETRIES, c),
        fold=_count_field("booking_retries"),
    ),
    EventSpec(
        ev.Interrupted,
        (Line(n.LOG_INTERRUPTION, lambda e: {"slot_idx": e.slot_idx},
              lambda v: {"slot_idx": _int(v.get("slot_idx"))}),),
        count=lambda e, m, c, x: m.inc(n.INTERRUPTIONS, c),
        fold=_count_field("interruptions"),
    ),
    EventSpec(
        ev.AppointmentConfirmed,
        (Line(n.LOG_RDV_CONFIRMED, lambda e: {"slot": e.slot_label, "name": e.name},
              lambda v: {"slot_label": v.get("slot"), "name": v.get("name")}),),
        fold=_confirmed,
    ),
    EventSpec(
        ev.AntiLoopTriggered,
        (Line(n.LOG_ANTI_LOOP, lambda e: {"turn": e.turn, "max_turns": e.max_turns},
              lambda v: {"turn": _int(v.get("turn")), "max_turns": _int(v.get("max_turns"))}),),
        count=lambda e, m, c, x: m.inc(n.ANTI_LOOP, c),
        fold=_flag("anti_loop"),
    ),
    EventSpec(
        ev.SessionExpired,
        (Line(n.LOG_SESSION_EXPIRED, lambda e: {"state": e.state, "idle_s": int(e.idle_seconds)},
              lambda v: {"state": v.get("state"), "idle_seconds": _int(v.get("idle_s"))}),),
        count=lambda e, m, c, x: m.inc(n.SESSION_EXPIRIES, c),
        fold=_flag("expired"),
    ),
    EventSpec(
        ev.RecoveryStepped,
        (Line(n.LOG_RECOVERY_STEP, lambda e: {"field": e.field, "attempt": e.attempt},
              lambda v: {"field": v.get("field"), "attempt": _int(v.get("attempt"))}),),
        count=lambda e, m, c, x: m.inc(n.RECOVERY_PROMPTS, c, e.field),
        fold=_count_field("recovery_steps"),
    ),
    EventSpec(
        ev.RecoveryLimitReached,
        (Line(n.LOG_RECOVERY_LIMIT,
              lambda e: {"field": e.field, "attempts": e.attempts, "to": e.to_state},
              lambda v: {"field": v.get("field") or "unknown", "attempts": _int(v.get("attempts")),
                         "to_state": v.get("to")}),),
        count=lambda e, m, c, x: m.inc(n.RECOVERY_LIMITS, c, e.field),
        fold=lambda f, d: f.recovery_limits.append(str(d.get("field"))),
    ),
    EventSpec(
        ev.NotUnderstood,
        (Line(n.LOG_NOT_UNDERSTOOD,
              lambda e: {"state": e.state, "field": e.field, "reason": e.reason,
                         "turn": e.turn},
              lambda v: {"state": v.get("state"), "field": v.get("field"), "reason": v.get("reason"),
                         "turn": _int(v.get("turn"))}),),
        count=lambda e, m, c, x: m.inc(
            n.UNDERSTANDING_MISSES, c, e.state, e.field, e.reason),
    ),
    EventSpec(
        ev.IntentOverridden,
        (Line(n.LOG_INTENT_OVERRIDE,
              lambda e: {"state": e.state, "intent": e.intent, "to": e.to_state},
              lambda v: {"state": v.get("state"), "intent": v.get("intent"), "to_state": v.get("to")}),),
        count=lambda e, m, c, x: m.inc(n.INTENT_OVERRIDES, c, e.state, e.intent),
        fold=_intent_overridden,
    ),
    EventSpec(
        ev.FillerDetected,
        (Line(n.LOG_FILLER, lambda e: {"state": e.state.value}, lambda v: {"state": v.get("state")}),),
        count=lambda e, m, c, x: m.inc(n.FILLERS, c),
        fold=_count_field("fillers"),
    ),
    EventSpec(
        ev.FaqAnswered,
        (Line(n.LOG_FAQ_ANSWERED, lambda e: {"topic": e.topic, "state": e.state},
              lambda v: {"topic": v.get("topic"), "state": v.get("state")}),),
        fold=_faq_answered,
    ),
    EventSpec(
        ev.BookingCancelled,
        (Line(n.LOG_BOOKING_CANCELLED, lambda e: {}, lambda v: {}),),
        fold=_flag("cancelled_logged"),
    ),
    EventSpec(
        ev.Transferred,
        (
            # The manual's [NO_SLOT] line comes first, for that reason only.
            Line(n.LOG_NO_SLOT,
                 lambda e: ({"preference": e.preference, "state": e.state}
                            if e.reason is TransferReason.NO_SLOT else None),
                 lambda v: {"reason": TransferReason.NO_SLOT.value, "state": v.get("state"),
                            "preference": v.get("preference")}),
            Line(n.LOG_TRANSFERRED, lambda e: {"reason": e.reason, "state": e.state},
                 lambda v: {"reason": v.get("reason") or None, "state": v.get("state")}),
        ),
        count=lambda e, m, c, x: m.inc(n.TRANSFERS, c, e.reason),
        fold=lambda f, d: setattr(f, "transfer_reason", d.get("reason") or f.transfer_reason),
    ),
    EventSpec(
        ev.ConversationEnded,
        (Line(n.LOG_CONVERSATION_ENDED,
              lambda e: {"channel": e.channel, "outcome": e.outcome, "state": e.state,
                         "turns": e.turns, "reason": e.reason or "-", "purpose": e.purpose},
              lambda v: {"channel": v.get("channel"), "outcome": v.get("outcome"), "state": v.get("state"),
                         "turns": _int(v.get("turns")), "reason": _dash(v.get("reason")),
                         "purpose": v.get("purpose")}),),
        count=_ended_count,
        fold=_ended,
        in_row=True,
    ),
    EventSpec(
        VapiCallEnded,
        (Line(n.LOG_VAPI_CALL_ENDED, lambda e: {"reason": e.reason or "-", "category": e.category},
              lambda v: {"reason": _dash(v.get("reason")), "category": v.get("category")}),),
        count=lambda e, m, c, x: m.inc(n.VAPI_ENDED_REASONS, e.category),
        fold=_vapi_ended,
        in_row=True,
    ),
)

EVENTS: Final[Mapping[type[Any], EventSpec[Any]]] = {spec.event: spec for spec in _SPECS}
BY_KIND: Final[Mapping[str, EventSpec[Any]]] = {spec.kind: spec for spec in _SPECS}
# A log tag → the event that writes it and its line.
BY_TAG: Final[Mapping[str, tuple[EventSpec[Any], Line[Any]]]] = {
    line.tag: (spec, line) for spec in _SPECS for line in spec.lines
}
# Every tag of a line an event writes (what a log reader recognises).
LOG_TAGS: Final[tuple[str, ...]] = tuple(BY_TAG)
# The stored kinds the stats read: events that tell something the conversation row does not.
EVENT_KINDS: Final[tuple[str, ...]] = tuple(
    spec.kind for spec in _SPECS if spec.fold is not None and not spec.in_row
)


def from_log(tag: str, values: Values) -> tuple[str, dict[str, Any]]:
    """A parsed log line as (stored kind, stored form); ``tag`` is one of :data:`LOG_TAGS`."""
    spec, line = BY_TAG[tag]
    return spec.kind, line.parse(values)


def fold(facts: CallFacts, kind: str, data: Data) -> None:
    """Fold one event in its stored form into ``facts`` (unknown kinds tell nothing)."""
    spec = BY_KIND.get(kind)
    if spec is not None and spec.fold is not None:
        spec.fold(facts, data)
