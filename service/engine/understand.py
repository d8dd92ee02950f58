"""The turn's extraction as the dialogue reads it: ``nlu.extract`` once per caller turn.

The understanding layer owns :func:`~service.engine.nlu.extract.extract`; this module gives
it its context (the state, the practice-local time, the slots or appointments just read out,
the practice) and reconciles two things the dialogue relies on, using the fields' spans:

- a name never runs into the words of another field: it stops at the clause where a
  preference starts ("Jean Dupont, jeudi matin"), and words that say which appointment
  ("celui de jeudi") are not a name;
- where the dialogue is about an appointment the caller holds (which one, or whether to
  cancel it), a day and a time said are that appointment (``target``), not a wish for a new
  one ("vendredi à 14h" while identifying it).
"""

from __future__ import annotations

from datetime import datetime, time

from service.engine import nlu
from service.engine.frozen import replace
from service.engine.model import Preference
from service.engine.nlu import SlotRef
from service.engine.nlu.extract import (
    BookingHint,
    ExtractContext,
    Extraction,
    PersonName,
    Span,
    extract,
)
from service.engine.practice import Practice
from service.engine.states import State

S = State
IDENTIFYING = frozenset({S.CANCEL_IDENTIFY, S.MODIFY_IDENTIFY, S.CANCEL_CONFIRM})
CLAUSE_ENDS = ",.;!?"


def understand(
    text: str, state: State, now: datetime, slots: tuple[SlotRef, ...] = (), practice: Practice | None = None,
) -> Extraction:
    """Everything the caller's turn gives, for the dialogue in ``state`` (``now`` practice-local)."""
    x = extract(text, ExtractContext(state.value, now, slots, practice))
    x = _name_apart(x, state)
    return _target(x, state)


def _overlap(a: Span | None, b: Span | None) -> bool:
    return a is not None and b is not None and a.start < b.end and b.start < a.end


def _name_apart(x: Extraction, state: State) -> Extraction:
    """Keep the name off the words of the preference and of the appointment spoken of."""
    name_span = x.spans.get("name")
    if x.name is None or name_span is None:
        return x
    if _overlap(name_span, x.spans.get("target")):
        return replace(x, name=None, name_issue=None)  # "celui de jeudi" designates, it is not a name
    if not _overlap(name_span, x.spans.get("preference")):
        return x
    words = x.text[name_span.start : name_span.end]
    cut = min((words.find(c) for c in CLAUSE_ENDS if c in words), default=-1)
    if cut <= 0:
        if state is S.QUALIF_NAME:
            return replace(x, preference=None)  # "Pierre Lundi" answers the name question
        return replace(x, name=None, name_issue=None)  # "jeudi 12 à 15h": a day, not "Jeudi"
    parsed = nlu.name(words[:cut])
    if parsed is None:
        return x
    return replace(x, name=PersonName(parsed.first, parsed.last), name_issue=None)


def _hint_of(pref: Preference) -> BookingHint | None:
    """What a preference says of an appointment: its day (or weekday) and its time."""
    at: time | None = None
    window = pref.windows[0] if len(pref.windows) == 1 else None
    if window is not None and window.start is not None and window.end is not None and (
        window.end.hour * 60 + window.end.minute - window.start.hour * 60 - window.start.minute == 60
    ):
        at = window.start  # "à 10h" reads as 10:00–11:00
    day = pref.days[0] if len(pref.days) == 1 else pref.day
    weekday = pref.weekdays[0] if len(pref.weekdays) == 1 and day is None else None
    if day is None and weekday is None and at is None:
        return None
    return BookingHint(day=day, weekday=weekday, at=at)


def _target(x: Extraction, state: State) -> Extraction:
    """A day and time said while an existing appointment is being identified designate it."""
    if x.target is not None or state not in IDENTIFYING or x.preference is None:
        return x
    hint = _hint_of(x.preference)
    return x if hint is None else replace(x, target=hint, preference=None)
