"""The not-understood inbox: the caller turns the engine could not use, grouped for an operator.

Read from the store, never from logs: every ``NotUnderstood`` event of the window (its state,
field, reason and turn number), joined on the stored turn it belongs to for the caller's words
(the words are stored once, with the turn), on its conversation for the outcome, and on the
last ``SlotsSent`` before it for the slots the caller was choosing among. Grouped by state and
field: how many, their share of the turns heard in that state, the reasons, how the
conversations ended, and example utterances with names and phone numbers masked unless the
operator asks otherwise.

The export is ``rdv understand``'s input (task ``turn``) with its context (state, the
practice-local time, the proposed slots) and ``expected: null``, ready to be labelled.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, TypedDict, TypeVar
from zoneinfo import ZoneInfo

from service import stats
from service.engine import events as ev
from service.engine import labels
from service.engine.model import RdvError
from service.engine.states import MissField, State
from service.storage.base import EventRecord, OperatorReads, ReplaySource, TurnRecord
from telemetry.logs import mask_name, mask_phone

MISS_KIND: Final = ev.NotUnderstood.__name__
SLOTS_KIND: Final = ev.SlotsSent.__name__
EVENT_KINDS: Final = (MISS_KIND, SLOTS_KIND)
EXAMPLES: Final = 5
YEARS: Final = (2000, 2999)
# Slots are proposed at most a call's length before a choice is missed: look that far back.
SLOTS_LOOKBACK: Final = timedelta(hours=2)
# States where the caller was asked a name or a number: there, every word that is not plain
# dialogue may be the name, every digit the number.
NAME_STATES: Final = frozenset({State.QUALIF_NAME.value, State.CANCEL_IDENTIFY.value, State.MODIFY_IDENTIFY.value})
PHONE_STATES: Final = frozenset({State.QUALIF_PHONE.value})
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_DIGITS = re.compile(r"\d")
_DIGIT_RUN = re.compile(r"\+?\d(?:[\s.\-]?\d){5,}")
_NUMBER_WORDS: Final = frozenset(
    ["zéro", "zero", "un", "une", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
     "douze", "treize", "quatorze", "quinze", "seize", "dix-sept", "dix-huit", "dix-neuf", "vingt", "trente",
     "quarante", "cinquante", "soixante", "soixante-dix", "quatre-vingt", "quatre-vingts", "quatre-vingt-dix", "cent"]
)
# Dialogue words shown even where a name was asked: what is left says why it was not understood.
_DIALOGUE_WORDS: Final = frozenset(
    ["oui", "non", "ouais", "bonjour", "bonsoir", "merci", "pardon", "euh", "heu", "hum", "ben", "bah", "alors", "donc",
     "voilà", "voila", "ok", "d'accord", "je", "j'", "me", "moi", "mon", "ma", "mes", "c'est", "ce", "est", "suis",
     "s'appelle", "m'appelle", "appelle", "nom", "prénom", "prenom", "famille", "de", "du", "des", "la", "le", "les",
     "l'", "et", "ou", "en", "à", "a", "au", "aux", "pour", "par", "avec", "sans", "madame", "monsieur", "mademoiselle",
     "docteur", "pas", "ne", "n'", "rien", "quoi", "comment", "pourquoi", "nécessaire", "necessaire", "obligatoire",
     "vous", "tu", "il", "elle", "on", "nous", "dire", "dit", "épeler", "epeler", "comme", "fille", "fils", "mari",
     "femme", "mère", "mere", "père", "pere", "enfant", "autre", "quelqu'un", "rendez-vous", "annuler", "déplacer",
     "deplacer", "changer", "répéter", "repeter", "attendez", "allô", "allo", "qui", "que", "quel", "quelle", "s'il",
     "plaît", "plait", "privé", "prive", "préfère", "prefere", "veux", "voudrais", "peux", "dois", "sais", "besoin"]
)


class MissesError(RdvError):
    """A bad question to the inbox (a window, a state or a field it does not know)."""


@dataclass(frozen=True, slots=True)
class Miss:
    """One caller turn the engine could not use, with its words and its context."""

    conv_id: str
    channel: str
    at: datetime
    turn: int
    state: str
    field: str
    reason: str
    fallback: str | None
    text: str
    outcome: str
    slots: tuple[datetime, ...] = ()
    names: tuple[str, ...] = ()


class Example(TypedDict):
    """One utterance shown in a group."""

    conv_id: str
    turn: int
    at: str
    reason: str
    text: str


class Group(TypedDict):
    """The misses of one field asked in one state."""

    state: str
    field: str
    misses: int
    turns: int
    share: float
    fallbacks: int
    conversations: int
    reasons: dict[str, int]
    outcomes: dict[str, int]
    examples: list[Example]


class Inbox(TypedDict):
    """``GET /api/understanding/misses`` and ``rdv misses``: the whole answer."""

    since: str
    until: str
    turns: int
    misses: int
    share: float
    masked: bool
    groups: list[Group]


@dataclass
class _Slots:
    """The last slot proposal seen per conversation, swept forward through the events."""

    last: dict[str, tuple[datetime, ...]] = field(default_factory=dict)

    def see(self, event: EventRecord) -> None:
        starts = event.data.get("slot_starts") or []
        self.last[event.conv_id] = tuple(datetime.fromisoformat(s) for s in starts)


# --------------------------------------------------------------------------- parameters
def moment(raw: str | None, default: datetime, name: str) -> datetime:
    """An ISO time with a zone, or a look-back like ``24h`` / ``7d`` before ``default``."""
    if raw is None or not raw.strip():
        return default
    text = raw.strip()
    try:
        return stats.parse_window(text).since(default)
    except stats.StatsError:
        pass
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise MissesError(f"{name} {raw!r} is neither an ISO time nor a look-back like 24h or 7d") from None
    if found.tzinfo is None:
        raise MissesError(f"{name} {raw!r} needs a time zone (Z or +01:00)")
    if not YEARS[0] <= found.year <= YEARS[1]:
        raise MissesError(f"{name} {raw!r} is not between the years {YEARS[0]} and {YEARS[1]}")
    return found


def check_filters(state: str | None, fld: str | None) -> None:
    """Refuse a state or a field the engine does not know, naming the ones it does."""
    if state is not None and state not in {s.value for s in State}:
        raise MissesError(f"state {state!r} is not one of {', '.join(s.value for s in State)}")
    if fld is not None and fld not in {f.value for f in MissField}:
        raise MissesError(f"field {fld!r} is not one of {', '.join(f.value for f in MissField)}")


# --------------------------------------------------------------------------- reading
def _names_of(source: ReplaySource) -> dict[str, tuple[str, ...]]:
    """Every name each conversation knows: the caller's, the patient's, its bookings'."""
    names: dict[str, list[str]] = {}
    for conv in source.conversations:
        ctx = conv.context
        known = [ctx.first_name, ctx.last_name, ctx.patient_first, ctx.patient_last]
        known += [ref.name for ref in (ctx.booked, ctx.modifying, ctx.target, *ctx.found) if ref is not None]
        names[conv.conv_id] = [n for n in known if n]
    for booking in source.bookings:
        names.setdefault(booking.conv_id, []).append(booking.name)
    return {k: tuple(v) for k, v in names.items()}


def _turn_of(turns: Mapping[tuple[str, int], list[TurnRecord]], conv_id: str, number: int,
             at: datetime) -> TurnRecord | None:
    candidates = turns.get((conv_id, number), [])
    return next((t for t in candidates if t.at == at), candidates[-1] if candidates else None)


def collect(
    source: ReplaySource, events: Iterable[EventRecord], since: datetime, until: datetime,
) -> tuple[list[Miss], Counter[str]]:
    """The misses of ``[since, until)`` and how many caller turns each state heard then."""
    turns: dict[tuple[str, int], list[TurnRecord]] = {}
    heard: Counter[str] = Counter()
    for t in source.turns:
        turns.setdefault((t.conv_id, t.turn), []).append(t)
        if since <= t.at < until:
            heard[t.state_before] += 1
    convs = {c.conv_id: c for c in source.conversations}
    names = _names_of(source)
    slots = _Slots()
    misses: list[Miss] = []
    for event in events:
        if event.kind == SLOTS_KIND:
            slots.see(event)
            continue
        conv = convs.get(event.conv_id)
        if event.kind != MISS_KIND or conv is None or not since <= event.at < until:
            continue
        data = event.data
        turn = _turn_of(turns, event.conv_id, int(data.get("turn", -1)), event.at)
        misses.append(Miss(
            conv_id=event.conv_id, channel=conv.channel.value, at=event.at, turn=int(data.get("turn", -1)),
            state=str(data.get("state")), field=str(data.get("field")), reason=str(data.get("reason")),
            fallback=data.get("fallback"), text=turn.text if turn is not None else "",
            outcome=conv.outcome.value if conv.outcome else "active",
            slots=slots.last.get(event.conv_id, ()) if data.get("state") == State.WAIT_CONFIRM.value else (),
            names=names.get(event.conv_id, ()),
        ))
    return misses, heard


T = TypeVar("T")


async def _direct(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def read(
    store: OperatorReads, since: datetime, until: datetime,
    guard: Callable[[Awaitable[Any]], Awaitable[Any]] = _direct,
) -> tuple[list[Miss], Counter[str]]:
    """The misses of ``[since, until)`` read from ``store`` (each call through ``guard``)."""
    source: ReplaySource = await guard(store.replay_source(since, until))
    events: list[EventRecord] = []
    if source.conversations:
        events = await guard(store.events_since(since - SLOTS_LOOKBACK, EVENT_KINDS))
    return collect(source, events, since, until)


# --------------------------------------------------------------------------- masking
def _hide(word: str) -> str:
    return mask_name(word)


def mask_utterance(text: str, state: str, names: Sequence[str] = ()) -> str:
    """What the caller said with names and phone numbers hidden, the way the logs hide them
    (``J***``, ``+336******78``): the conversation's known names anywhere, capitalised words
    inside a sentence (speech-to-text capitalises names), every word but plain dialogue where
    a name was asked, and every digit and number word where a number was asked."""
    known = {w.casefold() for n in names for w in _WORD.findall(n) if len(w) > 1}
    masked = mask_phone(text)
    masked = _DIGIT_RUN.sub(lambda m: _DIGITS.sub("#", m.group(0)), masked)
    if state in PHONE_STATES:
        masked = _DIGITS.sub("#", masked)
    out: list[str] = []
    last = 0
    for match in _WORD.finditer(masked):
        word = match.group(0)
        before = masked[:match.start()].rstrip()
        opens = not before or before[-1] in ".!?…"
        folded = word.casefold()
        hide = (
            folded in known
            or (state in NAME_STATES and folded not in _DIALOGUE_WORDS)
            or (state in PHONE_STATES and folded in _NUMBER_WORDS)
            or (word[:1].isupper() and not opens and folded not in _DIALOGUE_WORDS)
        )
        out.append(masked[last:match.start()])
        out.append(_hide(word) if hide else word)
        last = match.end()
    out.append(masked[last:])
    return "".join(out)


def shown(miss: Miss, pii: bool) -> str:
    """The utterance as the reader may see it."""
    return miss.text if pii else mask_utterance(miss.text, miss.state, miss.names)


# --------------------------------------------------------------------------- answers
def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def inbox(
    misses: Sequence[Miss], heard: Mapping[str, int], since: datetime, until: datetime, *,
    state: str | None = None, fld: str | None = None, pii: bool = False, examples: int = EXAMPLES,
) -> Inbox:
    """The misses grouped by (state, field), the largest group first, newest examples first."""
    chosen = [m for m in misses if (state is None or m.state == state) and (fld is None or m.field == fld)]
    by_key: dict[tuple[str, str], list[Miss]] = {}
    for miss in sorted(chosen, key=lambda m: m.at, reverse=True):
        by_key.setdefault((miss.state, miss.field), []).append(miss)
    groups: list[Group] = []
    for (st, fd), items in by_key.items():
        outcomes = Counter({m.conv_id: m.outcome for m in items}.values())
        picked: list[Example] = []
        for m in items:
            text = shown(m, pii)
            if len(picked) < examples and text.strip() and all(x["text"] != text for x in picked):
                picked.append(Example(conv_id=m.conv_id, turn=m.turn, at=m.at.isoformat(), reason=m.reason, text=text))
        groups.append(Group(
            state=st, field=fd, misses=len(items), turns=heard.get(st, 0), share=_share(len(items), heard.get(st, 0)),
            fallbacks=sum(1 for m in items if m.fallback), conversations=len({m.conv_id for m in items}),
            reasons=dict(Counter(m.reason for m in items).most_common()), outcomes=dict(outcomes.most_common()),
            examples=picked,
        ))
    groups.sort(key=lambda g: (-g["misses"], g["state"], g["field"]))
    total = sum(heard.values()) if state is None else heard.get(state, 0)
    return Inbox(
        since=since.isoformat(), until=until.isoformat(), turns=total, misses=len(chosen),
        share=_share(len(chosen), total), masked=not pii, groups=groups,
    )


def export_records(misses: Sequence[Miss], zone: ZoneInfo, *, pii: bool = False) -> list[dict[str, Any]]:
    """One ``rdv understand`` record (task ``turn``, ``expected: null``) per distinct (state,
    words, slots), oldest first: the caller's words with the context the engine had."""
    seen: set[tuple[str, str, tuple[datetime, ...]]] = set()
    records: list[dict[str, Any]] = []
    for miss in sorted(misses, key=lambda m: m.at):
        text = shown(miss, pii)
        key = (miss.state, text, miss.slots)
        if key in seen or not text.strip():
            continue
        seen.add(key)
        context: dict[str, Any] = {"state": miss.state, "now": miss.at.astimezone(zone).isoformat()}
        if miss.slots:
            context["slots"] = [
                {"start": s.astimezone(zone).isoformat(), "label": labels.voice_label(s.astimezone(zone))}
                for s in miss.slots
            ]
        records.append({"task": "turn", "text": text, "context": context, "expected": None})
    return records
