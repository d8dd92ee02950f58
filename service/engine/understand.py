"""The turn's extraction as the dialogue reads it: ``nlu.extract`` once per caller turn.

The understanding layer owns :func:`~service.engine.nlu.extract.extract`; this module builds
its context (the state, the practice-local time, the slots or appointments just read out)
and fills, for the fields of the contract the extraction still leaves empty, a few narrow
stopgaps. Each runs only when its field came back empty, so it steps aside as the
understanding layer fills the field itself:

- ``relation`` / ``patient``: "pour ma fille (Inès Brossard)", "pour quelqu'un d'autre"
  (which is not a request to talk to someone);
- ``name`` outside the name question ("Bonjour, je m'appelle Jean Dupont, …"), and a name
  followed by its preference ("Jean Dupont, jeudi matin");
- ``name_issue``: a refusal or a question instead of a name; a known first name alone;
- ``choice`` "repeat": "vous pouvez répéter ?" while slots are on the table;
- ``target``: the day and time that single out an existing appointment, read from the
  preference fields where the state says an appointment is being designated.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, time

from service.engine import nlu
from service.engine.model import Preference
from service.engine.nlu.extract import BookingHint, ExtractContext, Extraction, PersonName, extract
from service.engine.nlu.names import FIRST_NAMES, NOT_NAME
from service.engine.nlu.normalize import fold
from service.engine.states import State

S = State
NAME_STATES = frozenset({S.QUALIF_NAME, S.CANCEL_IDENTIFY, S.MODIFY_IDENTIFY})
APPOINTMENT_STATES = frozenset({S.CANCEL_IDENTIFY, S.MODIFY_IDENTIFY, S.CANCEL_CONFIRM, S.MODIFY_CONFIRM})

RELATION_WORDS = {
    "fille": "fille", "fils": "fils", "fiston": "fils", "mari": "mari", "femme": "femme", "epouse": "femme",
    "conjoint": "autre", "conjointe": "autre", "mere": "mere", "maman": "mere", "pere": "pere", "papa": "pere",
    "enfant": "enfant", "bebe": "enfant", "fillette": "fille", "garcon": "fils",
}
_RELATION = re.compile(r"\b(?:pour|de|d')\s*(?:ma|mon|notre)\s+(" + "|".join(RELATION_WORDS) + r")\b(.*)$")
_SOMEONE = re.compile(r"\bpour\s+(?:quelqu'un\s+d'autre|quelqu un d autre|une\s+autre\s+personne|un\s+proche)\b")
_INTRO = re.compile(
    r"\b(?:je m'appelle|je m appelle|moi c'est|mon nom est|mon nom c'est|au nom de|c'est)\s+(.+)$", re.IGNORECASE
)
_CAPITALISED = re.compile(r"^[A-ZÀ-Ý]")
_REFUSAL = ("prive", "personnel", "je ne veux pas", "je veux pas", "je prefere pas", "je ne prefere pas",
            "je ne souhaite pas", "ca vous regarde", "je refuse", "pas envie", "je ne vous le dirai pas",
            "je prefere ne pas")
_QUESTION = ("pourquoi", "a quoi ca sert", "a quoi bon", "c'est necessaire", "c'est obligatoire", "vous avez besoin")
_REPEAT = ("repet", "redire", "redites", "reprendre", "pas entendu", "pas bien entendu", "pas compris",
           "c'etait quoi", "c etait quoi", "quels etaient", "vous avez dit quoi", "rappeler les")
# Words that start the preference part of "Jean Dupont, jeudi matin".
_PREF_START = frozenset({"lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "demain",
                         "matin", "apres-midi", "aprem", "plutot", "cette", "semaine", "si", "pas", "vers",
                         "avant", "apres", "en", "dans", "aujourd'hui", "ce", "quand", "au", "qui", "elle", "il",
                         "pour", "a", "j'aimerais", "j'ai", "s'il", "merci", "svp", "rendez-vous", "rdv"})
# Particles that belong to a last name ("Le Goff", "de La Tour") and so never end one.
_PARTICLES = frozenset({"de", "du", "des", "d'", "le", "la", "van", "von", "der", "den", "di", "da", "del", "ben"})
_POINTER = re.compile(r"\b(?:celui|celle|l'autre|rendez-vous|rendez vous|rdv)\b")
_OF_DAY = re.compile(r"\b(?:de|du|d')\s*(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|\d)")


def understand(
    text: str, state: State, now: datetime, slots: tuple[nlu.SlotRef, ...] = (),
) -> Extraction:
    """Everything the caller's turn gives, for the dialogue in ``state`` (``now`` practice-local)."""
    x = extract(text, ExtractContext(state.value, now, slots))
    x = _relation(x, text)
    x = _name(x, text, state)
    x = _name_issue(x, state)
    x = _repeat(x, state, slots)
    return _target(x, state)


def _name_part(rest: str) -> str:
    """The leading words of ``rest`` that can be a name: up to a punctuation mark or a word
    that belongs to a sentence ("Inès Brossard, jeudi matin", "Jean Dupont et je voudrais…")."""
    kept: list[str] = []
    for word in rest.split():
        folded = fold(word)
        if folded not in _PARTICLES and (folded in _PREF_START or folded in NOT_NAME):
            break
        kept.append(word)
        if word[-1:] in ",.;!?":
            break
    return " ".join(kept).strip(",.;!? ")


def _person(parsed: nlu.Name | None) -> PersonName | None:
    """A parsed name, a lone well-known first name read as a first name ("Inès")."""
    if parsed is None:
        return None
    if parsed.first is None and " " not in parsed.last and fold(parsed.last) in FIRST_NAMES:
        return PersonName(parsed.last, None)
    return PersonName(parsed.first, parsed.last)


def _relation(x: Extraction, text: str) -> Extraction:
    if x.relation is not None:
        return x
    folded = fold(text)
    found = _RELATION.search(folded)
    if found is None:
        if _SOMEONE.search(folded):
            return replace(x, relation="autre", intent=None if x.intent == "human" else x.intent)
        return x
    relation = RELATION_WORDS[found.group(1)]
    patient = x.patient
    if patient is None:
        # The name right after the relation word, in the text as written (names keep their case).
        words = text.split()
        tail = " ".join(words[len(folded[: found.start(2)].split()):])
        part = _name_part(tail)
        patient = _person(nlu.name(part)) if part else None
    intent = None if x.intent == "human" else x.intent
    return replace(x, relation=relation, patient=patient, intent=intent)


def _name(x: Extraction, text: str, state: State) -> Extraction:
    if x.name is not None or x.patient is not None:
        return x
    found = _INTRO.search(text)
    candidate = ""
    if found:
        candidate = _name_part(found.group(1))
        if fold(found.group(0)).startswith("c'est") and not _CAPITALISED.match(candidate):
            candidate = ""  # "c'est pour…", "c'est bon": only "C'est Jean Dupont" introduces a name
    elif state in NAME_STATES:
        # "Jean Dupont, jeudi matin": the name is what comes before the preference.
        candidate = _name_part(text)
        if candidate == text.strip(",.;!? "):
            candidate = ""  # nothing follows the name: the understanding layer already said no
    person = _person(nlu.name(candidate)) if candidate else None
    return x if person is None else replace(x, name=person)


def _name_issue(x: Extraction, state: State) -> Extraction:
    if x.name_issue is not None:
        return x
    if state is S.QUALIF_NAME and x.patient is None:
        # "C'est privé", "pourquoi faire ?": an answer about the question, not a name ("Privé").
        folded = fold(x.text)
        if any(q in folded for q in _QUESTION):
            return replace(x, name=None, name_issue="question")
        if any(r in folded.split() or (" " in r and r in folded) for r in _REFUSAL):
            return replace(x, name=None, name_issue="refused")
    name = x.name
    if name is not None and name.first is None and name.last and " " not in name.last:
        if fold(name.last) in FIRST_NAMES:
            return replace(x, name=PersonName(name.last, None), name_issue="first_only")
        return x
    if name is not None and not name.last:
        return replace(x, name_issue="first_only")
    return x


def _repeat(x: Extraction, state: State, slots: tuple[nlu.SlotRef, ...]) -> Extraction:
    if x.choice is not None or state is not S.WAIT_CONFIRM or not slots:
        return x
    folded = fold(x.text)
    return replace(x, choice="repeat") if any(r in folded for r in _REPEAT) else x


def _hint_of(pref: Preference) -> BookingHint | None:
    at: time | None = None
    if pref.after is not None and pref.before is not None and (
        pref.before.hour * 60 + pref.before.minute - pref.after.hour * 60 - pref.after.minute == 60
    ):
        at = pref.after  # "à 10h" reads as 10:00–11:00
    day = pref.day or (pref.days[0] if len(pref.days) == 1 else None)
    weekday = pref.weekdays[0] if len(pref.weekdays) == 1 and day is None else None
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
    hint = _hint_of(x.preference) if x.preference is not None else None
    if x.relation is not None and x.patient is None:
        hint = replace(hint or BookingHint(), relation=x.relation)
    if hint is None:
        return x
    # What singles out an appointment is not a wish for a new one.
    return replace(x, target=hint, preference=None)
