"""Conversation ⇄ row: the engine's context as JSON (datetimes ISO with offset, enums by value),
and engine events as stored rows."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import orjson

from service.engine.events import Event
from service.engine.frozen import replace
from service.engine.model import BookingRef, Context, Conversation, Lookup, Preference, Slot, Window
from service.engine.states import Channel, Intent, Outcome, Purpose, Retry, State
from service.storage.base import (
    BookingRow,
    ConversationSummary,
    EventRecord,
    StoredConversation,
    Timeline,
    TurnRecord,
    UnconfirmedBooking,
)

# Enum members by stored value (a dict lookup, where calling the enum walks its metaclass).
# Stored contexts keep counters and intents by value; a value this version does not know
# (a counter retired since) is dropped on load.
_RETRY = {r.value: r for r in Retry}
_INTENT = {i.value: i for i in Intent}
_PURPOSE = {p.value: p for p in Purpose}
_CHANNELS = {c.value: c for c in Channel}
_STATES = {s.value: s for s in State}
_OUTCOMES = {o.value: o for o in Outcome}


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


def _unordered(value: Any) -> Any:
    """What orjson does not encode itself: sets, as lists (as :func:`jsonable` does)."""
    if isinstance(value, frozenset | set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def event_data(event: Event) -> tuple[dict[str, Any] | None, str | None]:
    """One event as the JSON text the store writes, encoded once by orjson (its own encoding
    of dataclasses, enums and datetimes, a tenth of the walk), and as plain JSON values
    (:func:`jsonable`'s result) when they were made on the way: ``length`` is kept for slot
    messages (None: read from the text when asked for, see :class:`EventRecord`). For what
    orjson refuses (a lone surrogate, an integer beyond 64 bits), ``jsonable``'s values and
    no text: the store encodes them itself."""
    try:
        encoded = orjson.dumps(event, default=_unordered, option=orjson.OPT_NON_STR_KEYS)
        if hasattr(event, "length"):
            data: dict[str, Any] = orjson.loads(encoded)
            data["length"] = event.length
            return data, orjson.dumps(data).decode()
    except (TypeError, orjson.JSONEncodeError):
        data = jsonable(event)
        if hasattr(event, "length"):
            data["length"] = event.length
        return data, None
    return None, encoded.decode()


def event_records(conv_id: str, events: Sequence[Event], at: datetime) -> list[EventRecord]:
    """Engine events as store rows, each with its JSON text when orjson could encode it."""
    out: list[EventRecord] = []
    for event in events:
        data, encoded = event_data(event)
        out.append(EventRecord(conv_id, at, type(event).__name__, data, encoded))
    return out


def event_json(record: EventRecord) -> str:
    """An event's data as the JSON text stored: the codec's own encoding when the record
    carries it, else ``data`` encoded here."""
    if record.encoded is not None:
        return record.encoded
    return json.dumps(record.data, ensure_ascii=False)


def meta_json(meta: dict[str, Any]) -> str:
    """A conversation's telemetry metadata as compact JSON (Python's encoder for what orjson
    refuses: a lone surrogate, an integer beyond 64 bits, a key that is not text)."""
    try:
        return orjson.dumps(meta).decode()
    except TypeError:  # orjson.JSONEncodeError included
        return json.dumps(meta, separators=(",", ":"))


def meta_from_json(raw: str | None) -> dict[str, Any]:
    """The metadata back from :func:`meta_json` (``{}`` for none), as the context is read:
    by orjson (an integer beyond 64 bits, never written by the service, reads as a float),
    by Python's json for what orjson refuses."""
    if not raw:
        return {}
    try:
        data: dict[str, Any] = orjson.loads(raw)
    except orjson.JSONDecodeError:  # what orjson refuses and Python's parser reads (a lone surrogate)
        data = json.loads(raw)
    return data


def _slot(data: dict[str, Any]) -> Slot:
    return Slot(datetime.fromisoformat(data["start"]), datetime.fromisoformat(data["end"]))


def _slot_json(slot: Slot) -> dict[str, str]:
    return {"start": slot.start.isoformat(), "end": slot.end.isoformat()}


def _ref(data: dict[str, Any] | None) -> BookingRef | None:
    if not data:
        return None
    return BookingRef(data["booking_id"], _slot(data["slot"]), data["name"])


def _ref_json(ref: BookingRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"booking_id": ref.booking_id, "slot": _slot_json(ref.slot), "name": ref.name}


def _hm(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def _time(value: Any) -> time | None:
    return time.fromisoformat(value) if value else None


def preference_to_json(pref: Preference) -> dict[str, Any]:
    """A preference as JSON; constraint fields only when set (older rows have none)."""
    data: dict[str, Any] = {
        "period": pref.period,
        "day": pref.day.isoformat() if pref.day else None,
        "after": _hm(pref.after),
        "before": _hm(pref.before),
    }
    if pref.days:
        data["days"] = [d.isoformat() for d in pref.days]
    if pref.weekdays:
        data["weekdays"] = list(pref.weekdays)
    if pref.not_days:
        data["not_days"] = [d.isoformat() for d in pref.not_days]
    if pref.not_weekdays:
        data["not_weekdays"] = list(pref.not_weekdays)
    if pref.windows:
        data["windows"] = [[_hm(w.start), _hm(w.end)] for w in pref.windows]
    if pref.not_windows:
        data["not_windows"] = [[_hm(w.start), _hm(w.end)] for w in pref.not_windows]
    if pref.from_day:
        data["from_day"] = pref.from_day.isoformat()
    if pref.until_day:
        data["until_day"] = pref.until_day.isoformat()
    if pref.asap:
        data["asap"] = True
    return data


def preference_from_json(data: dict[str, Any]) -> Preference:
    """The preference back from :func:`preference_to_json` (first-wave rows included)."""
    return Preference(
        period=data.get("period", "any"),
        day=date.fromisoformat(data["day"]) if data.get("day") else None,
        after=_time(data.get("after")),
        before=_time(data.get("before")),
        days=tuple(date.fromisoformat(d) for d in data.get("days", ())),
        weekdays=tuple(int(w) for w in data.get("weekdays", ())),
        not_days=tuple(date.fromisoformat(d) for d in data.get("not_days", ())),
        not_weekdays=tuple(int(w) for w in data.get("not_weekdays", ())),
        windows=tuple(Window(_time(a), _time(b)) for a, b in data.get("windows", ())),
        not_windows=tuple(Window(_time(a), _time(b)) for a, b in data.get("not_windows", ())),
        from_day=date.fromisoformat(data["from_day"]) if data.get("from_day") else None,
        until_day=date.fromisoformat(data["until_day"]) if data.get("until_day") else None,
        asap=bool(data.get("asap", False)),
    )


def lookup_to_json(hint: Lookup | None) -> dict[str, Any] | None:
    """What the caller said of an existing appointment, as JSON (only the fields set)."""
    if hint is None:
        return None
    data: dict[str, Any] = {}
    if hint.day is not None:
        data["day"] = hint.day.isoformat()
    if hint.weekday is not None:
        data["weekday"] = hint.weekday
    if hint.day_of_month is not None:
        data["day_of_month"] = hint.day_of_month
    if hint.at is not None:
        data["at"] = _hm(hint.at)
    if hint.relation is not None:
        data["relation"] = hint.relation
    if hint.patient is not None:
        data["patient"] = hint.patient
    return data


def lookup_from_json(data: dict[str, Any] | None) -> Lookup | None:
    """The lookup back from :func:`lookup_to_json`."""
    if data is None:
        return None
    return Lookup(
        day=date.fromisoformat(data["day"]) if data.get("day") else None,
        weekday=int(data["weekday"]) if data.get("weekday") is not None else None,
        day_of_month=int(data["day_of_month"]) if data.get("day_of_month") is not None else None,
        at=_time(data.get("at")),
        relation=data.get("relation"),
        patient=data.get("patient"),
    )


def context_to_json(ctx: Context) -> str:
    """The engine context as compact JSON."""
    pref = ctx.preference
    data: dict[str, Any] = {
        "first_name": ctx.first_name,
        "last_name": ctx.last_name,
        "phone": ctx.phone,
        "preference": None if pref is None else preference_to_json(pref),
        "proposed": [_slot_json(s) for s in ctx.proposed],
        "excluded": [d.isoformat() for d in ctx.excluded],
        "chosen": ctx.chosen,
        "fails": {str(key): count for key, count in ctx.fails.items()},  # plain str keys (any encoder)
        "booking_retries": ctx.booking_retries,
        "booked": _ref_json(ctx.booked),
        "found": [_ref_json(r) for r in ctx.found],
        "modifying": _ref_json(ctx.modifying),
        "slots_message": ctx.slots_message,
    }
    # Second-wave fields, written only when set: a first-wave row simply lacks them.
    optional: dict[str, Any] = {
        "intent": str(ctx.intent) if ctx.intent is not None else None,
        "patient_first": ctx.patient_first,
        "patient_last": ctx.patient_last,
        "relation": ctx.relation,
        "lookup": lookup_to_json(ctx.lookup),
        "target": _ref_json(ctx.target),
        "purpose": None if ctx.purpose is Purpose.UNDECLARED else ctx.purpose.value,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode()


def context_from_json(raw: str | None) -> Context:
    """The engine context back from :func:`context_to_json`."""
    if not raw:
        return Context()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:  # what orjson refuses and Python's parser reads (a lone surrogate)
        data = json.loads(raw)
    pref = data.get("preference")
    proposed = data.get("proposed")
    excluded = data.get("excluded")
    fails = data.get("fails")
    found = data.get("found")
    return Context(
        first_name=data.get("first_name"),
        last_name=data.get("last_name"),
        phone=data.get("phone"),
        preference=None if pref is None else preference_from_json(pref),
        proposed=tuple([_slot(s) for s in proposed]) if proposed else (),
        excluded=tuple([datetime.fromisoformat(d) for d in excluded]) if excluded else (),
        chosen=data.get("chosen"),
        fails={_RETRY[k]: int(v) for k, v in fails.items() if k in _RETRY} if fails else {},
        booking_retries=int(data.get("booking_retries", 0)),
        booked=_ref(data.get("booked")),
        found=tuple([r for r in [_ref(x) for x in found] if r is not None]) if found else (),
        modifying=_ref(data.get("modifying")),
        slots_message=data.get("slots_message"),
        intent=_INTENT.get(data.get("intent")),
        patient_first=data.get("patient_first"),
        patient_last=data.get("patient_last"),
        relation=data.get("relation"),
        lookup=lookup_from_json(data.get("lookup")),
        purpose=_purpose(data.get("purpose")),
        target=_ref(data.get("target")),
    )


def _purpose(value: Any) -> Purpose:
    """A stored purpose (``undeclared`` when absent); an unknown one fails as ``Purpose`` does."""
    if not value:
        return Purpose.UNDECLARED
    return _PURPOSE.get(value) or Purpose(value)


# What ``rdv forget`` leaves in place of a caller's words and names; the events that carry a name.
FORGOTTEN = "[effacé]"
FORGOTTEN_CONTEXT = "{}"
FORGOTTEN_EVENT = "{}"
NAMED_EVENTS = ("AppointmentConfirmed",)

COLUMNS = (
    "conv_id", "channel", "state", "turn_count", "created_at", "last_seen_at", "state_entered_at",
    "outcome", "vapi_call_id", "caller_phone", "epoch", "context", "synthetic",
)
_COLUMN_COUNT = len(COLUMNS)


# The UTC texts of the last UTC datetimes written: a turn writes its moment several times
# (the turn, its events, the conversation's last seen). Only datetimes in UTC itself are
# kept: two equal datetimes of one other zone may be different instants (a repeated hour).
_UTC_TEXTS: dict[datetime, str] = {}
UTC_TEXTS_KEPT = 256


def utc_text(moment: datetime) -> str:
    """A tz-aware datetime as fixed-width UTC ISO text, so that text order is time order."""
    if moment.tzinfo is not UTC:
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    text = _UTC_TEXTS.get(moment)
    if text is None:
        text = moment.isoformat(timespec="microseconds")
        if len(_UTC_TEXTS) >= UTC_TEXTS_KEPT:
            _UTC_TEXTS.clear()
        _UTC_TEXTS[moment] = text
    return text


def conversation_values(conv: Conversation, when: Callable[[datetime], Any] = utc_text) -> tuple[Any, ...]:
    """A conversation's column values in :data:`COLUMNS` order, its datetimes as ``when``
    makes them (UTC ISO text by default)."""
    outcome = conv.outcome
    return (
        conv.conv_id,
        conv.channel.value,
        conv.state.value,
        conv.turn_count,
        when(conv.created_at),
        when(conv.last_seen_at),
        when(conv.state_entered_at),
        None if outcome is None else outcome.value,
        conv.vapi_call_id,
        conv.caller_phone,
        conv.epoch,
        context_to_json(conv.context),
        conv.synthetic,
    )


def _when(value: Any) -> datetime:
    """A stored moment: a datetime (PostgreSQL) or ISO text (SQLite)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def conversation_from_values(values: Sequence[Any]) -> Conversation:
    """A conversation back from its column values in :data:`COLUMNS` order (datetimes as
    ISO text or datetime objects)."""
    (conv_id, channel, state, turn_count, created_at, last_seen_at, state_entered_at, outcome, vapi_call_id,
     caller_phone, epoch, context, synthetic) = values[:_COLUMN_COUNT]
    return Conversation(
        conv_id=conv_id,
        channel=_CHANNELS.get(channel) or Channel(channel),
        state=_STATES.get(state) or State(state),
        turn_count=int(turn_count),
        created_at=_when(created_at),
        last_seen_at=_when(last_seen_at),
        state_entered_at=_when(state_entered_at),
        context=context_from_json(context),
        outcome=(_OUTCOMES.get(outcome) or Outcome(outcome)) if outcome else None,
        vapi_call_id=vapi_call_id,
        caller_phone=caller_phone,
        epoch=int(epoch),
        synthetic=bool(synthetic),
    )


def conversation_from_row(row: Mapping[str, Any]) -> Conversation:
    """A conversation back from its columns (datetimes as ISO text or datetime objects; a
    row without ``synthetic`` is not)."""
    return conversation_from_values([row.get(c, False) if c == "synthetic" else row[c] for c in COLUMNS])


def turn_from_row(row: dict[str, Any]) -> TurnRecord:
    """A stored turn back from its columns (``at`` as ISO text or a datetime)."""
    return TurnRecord(
        conv_id=row["conv_id"],
        turn=int(row["turn"]),
        request_key=row["request_key"],
        text=row["text"],
        reply=row["reply"],
        state_before=row["state_before"],
        state_after=row["state_after"],
        at=row["at"] if isinstance(row["at"], datetime) else datetime.fromisoformat(row["at"]),
        interrupted=bool(row["interrupted"]),
        directive=row["directive"],
        trace_id=row["trace_id"],
    )


def timeline_dict(
    conv_row: dict[str, Any],
    turns: list[TurnRecord],
    events: list[EventRecord],
    bookings: list[dict[str, Any]],
    report: dict[str, Any] | None,
) -> Timeline:
    """The timeline answer shared by every backend: one conversation, everything in order."""

    # Booking times as SQLite stores them (fixed-width UTC text), whatever the backend.
    def iso(value: Any) -> Any:
        return utc_text(value) if isinstance(value, datetime) else value

    conv = conversation_from_row(conv_row)
    return {
        "conv_id": conv.conv_id,
        "channel": conv.channel.value,
        "state": conv.state.value,
        "outcome": conv.outcome.value if conv.outcome else None,
        "turn_count": conv.turn_count,
        "epoch": conv.epoch,
        "created_at": conv.created_at.isoformat(),
        "last_seen_at": conv.last_seen_at.isoformat(),
        "vapi_call_id": conv.vapi_call_id,
        "caller_phone": conv.caller_phone,
        "ended_reason": conv_row.get("ended_reason"),
        "turns": [
            {
                "turn": t.turn, "at": t.at.isoformat(), "text": t.text, "reply": t.reply,
                "state_before": t.state_before, "state_after": t.state_after,
                "interrupted": t.interrupted, "action": t.directive, "trace_id": t.trace_id,
            }
            for t in turns
        ],
        "events": [{"at": e.at.isoformat(), "kind": e.kind, "data": e.data} for e in events],
        "bookings": [
            {
                "id": b["id"], "conv_id": b["conv_id"], "slot_start": iso(b["slot_start"]),
                "slot_end": iso(b["slot_end"]),
                "name": b["name"], "phone": b["phone"], "created_at": iso(b["created_at"]),
                "cancelled_at": iso(b["cancelled_at"]),
            }
            for b in bookings
        ],
        "call_report": report,
    }


def conversation_summary(row: Mapping[str, Any]) -> ConversationSummary:
    """A conversation's summary from its columns (datetimes as ISO text or datetime objects)."""
    return {
        "conv_id": row["conv_id"],
        "channel": row["channel"],
        "state": row["state"],
        "outcome": row["outcome"],
        "turn_count": row["turn_count"],
        "created_at": _when(row["created_at"]),
        "last_seen_at": _when(row["last_seen_at"]),
        "ended_reason": row["ended_reason"],
        "synthetic": bool(row["synthetic"]),
    }


def utc_starts(texts: Iterable[str | None]) -> frozenset[datetime]:
    """ISO datetimes with offset (slot starts as the codec writes them), in UTC."""
    return frozenset(datetime.fromisoformat(t).astimezone(UTC) for t in texts if t)


def unconfirmed(
    rows: Iterable[tuple[str, str, datetime, datetime, Iterable[str | None]]],
) -> list[UnconfirmedBooking]:
    """Of (booking id, conv id, slot start, created at, slot starts its conversation read
    back), the bookings whose start was never read back."""
    out: list[UnconfirmedBooking] = []
    for booking_id, conv_id, start, created_at, confirmed in rows:
        if start.astimezone(UTC) not in utc_starts(confirmed):
            out.append(UnconfirmedBooking(booking_id, conv_id, start, created_at))
    return out


def booking_row(row: dict[str, Any]) -> BookingRow:
    """A bookings row (ISO text or datetimes) as a :class:`BookingRow`."""

    def when(value: Any) -> datetime:
        return (value if isinstance(value, datetime) else datetime.fromisoformat(value)).astimezone(UTC)

    return BookingRow(
        booking_id=str(row["id"]),
        conv_id=str(row["conv_id"]),
        slot=Slot(when(row["slot_start"]), when(row["slot_end"])),
        name=str(row["name"]),
        phone=row["phone"],
        created_at=when(row["created_at"]),
        cancelled_at=None if row["cancelled_at"] is None else when(row["cancelled_at"]),
    )


class KeptConversations:
    """The conversations a store's turns saved last, as saved: conv_id -> (conversation,
    version, meta as JSON), the most recent ``size`` (the oldest saved first out). A version
    names one content of a conversation (every write of one moves it), so what is kept under
    the version a load finds is what that load would decode, but for the zone of the
    conversation's own moments, put in UTC here as a row reads (the service's clock gives
    UTC: nothing to change; the context's moments compare and read the same in any zone)."""

    __slots__ = ("_convs", "size")

    def __init__(self, size: int = 2048) -> None:
        self.size = size
        self._convs: dict[str, tuple[Conversation, int, str]] = {}

    def keep(self, conv: Conversation, version: int, meta_text: str) -> None:
        """Keep ``conv`` as saved at ``version`` with ``meta_text``."""
        if not (conv.created_at.tzinfo is UTC and conv.last_seen_at.tzinfo is UTC
                and conv.state_entered_at.tzinfo is UTC):
            conv = replace(conv, created_at=conv.created_at.astimezone(UTC),
                           last_seen_at=conv.last_seen_at.astimezone(UTC),
                           state_entered_at=conv.state_entered_at.astimezone(UTC))
        convs = self._convs
        convs.pop(conv.conv_id, None)
        if len(convs) >= self.size:
            del convs[next(iter(convs))]
        convs[conv.conv_id] = (conv, version, meta_text)

    def get(self, conv_id: str, version: int | None = None) -> StoredConversation | None:
        """What was kept of ``conv_id`` (only at ``version`` when given), with a meta of its
        own; None when nothing is."""
        kept = self._convs.get(conv_id)
        if kept is None or (version is not None and kept[1] != version):
            return None
        return StoredConversation(kept[0], kept[1], meta_from_json(kept[2]))

    def drop(self, conv_id: str) -> None:
        """Forget ``conv_id``."""
        self._convs.pop(conv_id, None)

    def clear(self) -> None:
        """Forget them all."""
        self._convs.clear()

    def __contains__(self, conv_id: object) -> bool:
        return conv_id in self._convs
