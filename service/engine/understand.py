"""The turn's extraction as the dialogue reads it: ``nlu.extract`` once per caller turn.

The understanding layer owns :func:`~service.engine.nlu.extract.extract`; this module builds
its context (the state, the practice-local time, the slots or appointments just read out)
and, for fields of the contract the extraction still leaves empty, fills them from the
understanding layer's own readers or a few narrow rules. Each step runs only when its field
came back empty, so it steps aside as ``extract`` fills the field itself:

- ``name`` / ``name_issue``: the name reader (a name introduced in any sentence, or any words
  that can be a name when one was asked; a refusal, a question back, a first name alone);
- ``relation`` / ``patient``: the someone-else reader ("pour ma fille Inès Brossard");
- ``preference``: every constraint (exclusions, windows…), not only the first-wave fields;
- ``choice`` "repeat": "vous pouvez répéter ?" while slots are on the table;
- ``target``: the day and time that single out an existing appointment, read from the
  preference where the dialogue is about an appointment the caller holds.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, time

from service.engine.model import Preference
from service.engine.nlu import SlotRef
from service.engine.nlu.extract import BookingHint, ExtractContext, Extraction, PersonName, extract
from service.engine.nlu.names import read_name
from service.engine.nlu.normalize import fold
from service.engine.nlu.preference import constraints
from service.engine.nlu.someone import read_someone
from service.engine.nlu.tokens import tokenize
from service.engine.states import State

S = State
NAME_STATES = frozenset({S.QUALIF_NAME, S.CANCEL_IDENTIFY, S.MODIFY_IDENTIFY})
_REPEAT = ("repet", "redire", "redites", "pas entendu", "pas bien entendu", "pas compris",
           "c'etait quoi", "c etait quoi", "quels etaient", "vous avez dit quoi", "rappeler les")
_POINTER = re.compile(r"\b(?:celui|celle|l'autre|rendez-vous|rendez vous|rdv)\b")
_OF_DAY = re.compile(r"\b(?:de|du|d')\s*(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|\d)")
_WEEKDAY = re.compile(r"\b(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)\b")
_DAY_NUMBER = re.compile(r"\b(?:le|du|au|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)\s+(?:1er|\d{1,2})\b(?!\s*h)")


def understand(text: str, state: State, now: datetime, slots: tuple[SlotRef, ...] = ()) -> Extraction:
    """Everything the caller's turn gives, for the dialogue in ``state`` (``now`` practice-local)."""
    x = extract(text, ExtractContext(state.value, now, slots))
    x = _people(x, text, state)
    x = _preference(x, text, now)
    x = _repeat(x, state, slots)
    return _target(x, state)


def _person(first: str | None, last: str | None) -> PersonName:
    return PersonName(first, last)


def _people(x: Extraction, text: str, state: State) -> Extraction:
    """The caller's name (or why there is none) and the patient, from the readers."""
    if x.name is not None or x.name_issue is not None or x.relation is not None or x.patient is not None:
        return x
    tokens = tokenize(text)
    someone = read_someone(tokens)
    if someone is not None:
        patient = someone.patient
        x = replace(
            x, relation=someone.relation,
            patient=_person(patient.first, patient.last) if patient is not None else None,
        )
    found = read_name(tokens, asked=state in NAME_STATES)
    if found is None:
        return x
    if someone is not None and found.first < someone.last and someone.first < found.last:
        return x  # the patient's name, already taken
    person = found.person
    return replace(
        x, name=_person(person.first, person.last) if person is not None else None, name_issue=found.issue,
        corrected=x.corrected or found.corrected,
    )


def _preference(x: Extraction, text: str, now: datetime) -> Extraction:
    """Every constraint of the turn, where the extraction gave only the first-wave view."""
    full = constraints(text, now)
    if full is None:
        return x
    view = Preference(full.period, full.day, full.after, full.before)
    if x.preference is None or x.preference == view:
        return replace(x, preference=full)
    return x


def _repeat(x: Extraction, state: State, slots: tuple[SlotRef, ...]) -> Extraction:
    if x.choice is not None or state is not S.WAIT_CONFIRM or not slots:
        return x
    folded = fold(x.text)
    return replace(x, choice="repeat") if any(r in folded for r in _REPEAT) else x


def _hint_of(pref: Preference, folded: str) -> BookingHint | None:
    at: time | None = None
    if pref.after is not None and pref.before is not None and (
        pref.before.hour * 60 + pref.before.minute - pref.after.hour * 60 - pref.after.minute == 60
    ):
        at = pref.after  # "à 10h" reads as 10:00–11:00
    day = pref.day or (pref.days[0] if len(pref.days) == 1 else None)
    weekday = pref.weekdays[0] if len(pref.weekdays) == 1 and day is None else None
    if day is not None and _WEEKDAY.search(folded) and not _DAY_NUMBER.search(folded):
        # "celui de mardi": any Tuesday, not only the next one (it may be today, or later).
        weekday = day.weekday()
        day = None
    if day is None and weekday is None and at is None:
        return None
    return BookingHint(day=day, weekday=weekday, at=at)


def _target(x: Extraction, state: State) -> Extraction:
    """The appointment the caller speaks of, where the dialogue is about one."""
    if x.target is not None:
        return x
    folded = fold(x.text)
    about_one = state in (S.CANCEL_IDENTIFY, S.MODIFY_IDENTIFY, S.CANCEL_CONFIRM) or x.intent == "cancel" or (
        state is S.MODIFY_CONFIRM and _POINTER.search(folded) is not None
    ) or (x.intent == "modify" and _OF_DAY.search(folded) is not None)
    if not about_one:
        return x
    hint = _hint_of(x.preference, folded) if x.preference is not None else None
    if x.relation is not None and x.patient is None:
        hint = replace(hint or BookingHint(), relation=x.relation)
    if hint is None:
        return x
    # What singles out an appointment is not a wish for a new one.
    return replace(x, target=hint, preference=None)
