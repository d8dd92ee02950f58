"""One conversation as a chat: the caller's words, the assistant's replies, and under each
turn what the engine did (state changes, slot messages and their length, booking attempts
and results, barge-ins, recovery prompts), from the stored timeline.

Events are stored in order, each turn's after its ``TurnReceived``; an event kind this table
does not know is still shown, by its name and values, so a new engine event is never hidden.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from service.console import french
from service.engine import events as ev
from service.engine.states import TransferReason
from telemetry import names as n


@dataclass(frozen=True, slots=True)
class Note:
    """One thing the engine did during a turn, in French; ``kind`` styles it."""

    kind: str
    text: str
    tone: str = "info"  # "info", "good", "warn" or "bad"


@dataclass(slots=True)
class Turn:
    """One caller turn and the assistant's reply."""

    number: int
    at: datetime
    text: str
    reply: str
    state_before: str
    state_after: str
    interrupted: bool
    action: str | None
    notes: list[Note] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Attempt:
    """A booking attempt and what the store answered."""

    slot: str
    slot_idx: int | None
    retry: int
    result: str
    result_label: str


@dataclass(frozen=True, slots=True)
class Booking:
    """An appointment this conversation booked (or cancelled)."""

    booking_id: str
    name: str
    slot: str
    cancelled: bool


@dataclass(frozen=True, slots=True)
class Conversation:
    """What the conversation page shows."""

    conv_id: str
    channel: str
    state: str
    outcome: str | None
    outcome_label: str
    live: bool
    created: datetime
    last_seen: datetime
    duration: str
    ended_reason: str | None
    caller_phone: str | None
    vapi_call_id: str | None
    trace_id: str | None
    trace_url: str | None
    turn_count: int
    turns: tuple[Turn, ...]
    trailing: tuple[Note, ...]
    attempts: tuple[Attempt, ...]
    bookings: tuple[Booking, ...]
    slot_lengths: tuple[int, ...]
    long_slot_limit: int
    barge_ins: int
    recovery_prompts: int
    report: Mapping[str, Any] | None
    stamp: str


def _when(value: Any, tz: ZoneInfo) -> str:
    if not isinstance(value, str) or not value:
        return "?"
    try:
        return french.stamp(datetime.fromisoformat(value).astimezone(tz))
    except ValueError:
        return value


NoteMaker = Callable[[Mapping[str, Any], ZoneInfo], Note | None]


def _slots(d: Mapping[str, Any], tz: ZoneInfo) -> Note:
    length = int(d.get("length") or len(str(d.get("message", ""))))
    long = length > n.LONG_SLOT_MESSAGE_CHARS
    text = f"Créneaux proposés ({french.channel(d.get('channel'))}) : message de {length} caractères"
    if long:
        text += f", au-delà de {n.LONG_SLOT_MESSAGE_CHARS}"
    return Note("slots", text, "warn" if long else "info")


def _result(d: Mapping[str, Any], tz: ZoneInfo) -> Note:
    result = str(d.get("result"))
    tone = "good" if result == "success" else "bad"
    return Note("booking",
                f"Réservation {french.BOOKING_RESULTS.get(result, result)} ({_when(d.get('slot_start'), tz)})", tone)


def _ended(d: Mapping[str, Any], tz: ZoneInfo) -> Note:
    reason = d.get("reason")
    text = f"Fin de la conversation : {french.outcome(d.get('outcome'))} en {d.get('state')}"
    return Note("ended", text + (f" ({reason})" if reason else ""), "info")


# One entry per engine event kind the page explains; TurnReceived only delimits turns.
# Why a call was handed over (the engine's transfer reasons), in French.
TRANSFER_REASONS: Final[Mapping[str, str]] = {
    TransferReason.CALLER_ASKED.value: "à la demande de l'appelant",
    TransferReason.RECOVERY_LIMIT.value: "réponses non comprises",
    TransferReason.NO_SLOT.value: "aucun créneau libre",
    TransferReason.SLOT_TAKEN.value: "créneaux pris plusieurs fois",
    TransferReason.BOOKING_ERROR.value: "erreur de réservation",
    TransferReason.STORE_UNAVAILABLE.value: "service indisponible",
    TransferReason.ANTI_LOOP.value: "trop de tours",
    TransferReason.NOT_VERIFIED.value: "numéro non vérifié",
}

NOTES: Final[Mapping[str, NoteMaker]] = {
    ev.ConversationStarted.__name__: lambda d, tz: Note("start", f"Début ({french.channel(d.get('channel'))})"),
    ev.TurnReceived.__name__: lambda d, tz: None,
    ev.StateChanged.__name__: lambda d, tz: Note("state", f"{d.get('from_state')} → {d.get('to_state')}"),
    ev.SlotsSent.__name__: _slots,
    ev.BookingAttempted.__name__: lambda d, tz: Note(
        "booking", f"Tentative de réservation : créneau n°{d.get('slot_idx')} ({_when(d.get('slot_start'), tz)})"
        + (f", nouvel essai {d.get('retry')}" if d.get("retry") else "")),
    ev.BookingResulted.__name__: _result,
    ev.BookingRetried.__name__: lambda d, tz: Note(
        "booking",
        f"Nouvelle proposition après créneau pris (essai {d.get('retry')}, préférence {d.get('preference')})",
        "warn"),
    ev.Interrupted.__name__: lambda d, tz: Note(
        "barge-in", f"Interruption : créneau n°{d.get('slot_idx')} choisi pendant la lecture", "good"),
    ev.AppointmentConfirmed.__name__: lambda d, tz: Note(
        "confirmed", f"Rendez-vous confirmé : {d.get('slot_label')}, au nom de {d.get('name')}", "good"),
    ev.AntiLoopTriggered.__name__: lambda d, tz: Note(
        "anti-loop", f"Anti-boucle : tour {d.get('turn')} au-delà de {d.get('max_turns')}, menu proposé", "bad"),
    ev.SessionExpired.__name__: lambda d, tz: Note(
        "expired", f"Session expirée en {d.get('state')} après {french.duration(d.get('idle_seconds'))} sans message",
        "bad"),
    ev.RecoveryStepped.__name__: lambda d, tz: Note(
        "recovery", f"Relance : {french.field(d.get('field'))} non compris (tentative {d.get('attempt')})", "warn"),
    ev.RecoveryLimitReached.__name__: lambda d, tz: Note(
        "recovery", f"Limite de relance atteinte : {french.field(d.get('field'))} après {d.get('attempts')} "
        f"tentatives → {d.get('to_state')}", "bad"),
    ev.NotUnderstood.__name__: lambda d, tz: Note(
        "recovery", f"Non compris : {french.field(d.get('field'))} en {d.get('state')} ({d.get('reason')})"
        + (f" → {d.get('fallback')}" if d.get("fallback") else ""), "warn"),
    ev.IntentOverridden.__name__: lambda d, tz: Note(
        "override", f"Intention prioritaire « {d.get('intent')} » en {d.get('state')} → {d.get('to_state')}"),
    ev.FillerDetected.__name__: lambda d, tz: Note("filler", "Hésitation : question reposée brièvement"),
    ev.FaqAnswered.__name__: lambda d, tz: Note("faq", f"Question pratique ({d.get('topic')}) répondue"),
    ev.BookingCancelled.__name__: lambda d, tz: Note(
        "cancelled", f"Rendez-vous annulé ({_when(d.get('slot_start'), tz)})", "warn"),
    ev.Transferred.__name__: lambda d, tz: Note(
        "transferred", f"Transfert au secrétariat ({TRANSFER_REASONS.get(str(d.get('reason')), d.get('reason'))})",
        "warn"),
    ev.ConversationEnded.__name__: _ended,
}


def note(kind: str, data: Mapping[str, Any], tz: ZoneInfo) -> Note | None:
    """The French note of one stored event (unknown kinds shown by name and values)."""
    maker = NOTES.get(kind)
    if maker is None:
        return Note("other", f"{kind} {json.dumps(data, ensure_ascii=False, sort_keys=True)[:300]}")
    return maker(data, tz)


def _attempts(events: Sequence[Mapping[str, Any]], tz: ZoneInfo) -> tuple[Attempt, ...]:
    out: list[Attempt] = []
    pending: Mapping[str, Any] | None = None
    for e in events:
        data = e.get("data") or {}
        if e.get("kind") == ev.BookingAttempted.__name__:
            pending = data
        elif e.get("kind") == ev.BookingResulted.__name__:
            result = str(data.get("result"))
            idx = pending.get("slot_idx") if pending else None
            out.append(Attempt(_when(data.get("slot_start"), tz), idx if isinstance(idx, int) else None,
                               int(data.get("retry") or 0), result, french.BOOKING_RESULTS.get(result, result)))
            pending = None
    return tuple(out)


def conversation(timeline: Mapping[str, Any], tz: ZoneInfo) -> Conversation:
    """The page of one conversation from its timeline (``GET /api/conversations/{id}``)."""
    turns: dict[int, Turn] = {}
    for t in timeline.get("turns", []):
        number = int(t["turn"])
        turns[number] = Turn(
            number=number, at=datetime.fromisoformat(t["at"]).astimezone(tz), text=t["text"], reply=t["reply"],
            state_before=t["state_before"], state_after=t["state_after"], interrupted=bool(t.get("interrupted")),
            action=t.get("action"),
        )
    trailing: list[Note] = []
    current: Turn | None = None
    events = list(timeline.get("events", []))
    pending_start: list[Note] = []
    for e in events:
        kind, data = str(e.get("kind")), e.get("data") or {}
        if kind == ev.TurnReceived.__name__:
            # Stored turn numbers count from 1; the engine's event counts from 0.
            current = turns.get(int(data.get("turn", -1)) + 1)
            if current is not None and pending_start:
                current.notes.extend(pending_start)
                pending_start = []
            continue
        made = note(kind, data, tz)
        if made is None or (
            current is not None and kind == ev.StateChanged.__name__
            and (data.get("from_state"), data.get("to_state")) == (current.state_before, current.state_after)
        ):
            continue  # nothing to say, or the turn's own state change, already shown with it
        at = e.get("at")
        if current is None:
            pending_start.append(made)
        elif at is not None and datetime.fromisoformat(at) > current.at:
            trailing.append(made)  # after the turn: the reaper, Vapi's end of call
            current = None
        else:
            current.notes.append(made)
    trailing = pending_start + trailing
    created = datetime.fromisoformat(timeline["created_at"]).astimezone(tz)
    last_seen = datetime.fromisoformat(timeline["last_seen_at"]).astimezone(tz)
    report = timeline.get("call_report") or None
    seconds = report.get("durationSeconds") if report else None
    if not isinstance(seconds, int | float):
        seconds = (last_seen - created).total_seconds()
    slot_lengths = tuple(
        int((e.get("data") or {}).get("length") or 0) for e in events if e.get("kind") == ev.SlotsSent.__name__
    )
    outcome = timeline.get("outcome")
    return Conversation(
        conv_id=timeline["conv_id"], channel=french.channel(timeline.get("channel")), state=timeline["state"],
        outcome=outcome, outcome_label=french.outcome(outcome), live=outcome is None,
        created=created, last_seen=last_seen, duration=french.duration(seconds),
        ended_reason=(report or {}).get("endedReason") or timeline.get("ended_reason"),
        caller_phone=timeline.get("caller_phone"), vapi_call_id=timeline.get("vapi_call_id"),
        trace_id=timeline.get("trace_id"), trace_url=timeline.get("trace_url"),
        turn_count=int(timeline.get("turn_count") or 0),
        turns=tuple(turns[k] for k in sorted(turns)), trailing=tuple(trailing),
        attempts=_attempts(events, tz),
        bookings=tuple(
            Booking(str(b.get("id")), str(b.get("name")), _when(b.get("slot_start"), tz), bool(b.get("cancelled_at")))
            for b in timeline.get("bookings", [])
        ),
        slot_lengths=slot_lengths, long_slot_limit=n.LONG_SLOT_MESSAGE_CHARS,
        barge_ins=sum(1 for t in turns.values() if t.interrupted),
        recovery_prompts=sum(1 for e in events if e.get("kind") == ev.RecoveryStepped.__name__),
        report=report, stamp=stamp_of(timeline),
    )


def stamp_of(timeline: Mapping[str, Any]) -> str:
    """What changes when the conversation moves: turns, outcome, last activity, report."""
    return f"{timeline.get('turn_count')}|{timeline.get('outcome')}|{timeline.get('last_seen_at')}|" \
           f"{bool(timeline.get('call_report'))}"
