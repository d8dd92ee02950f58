"""One extraction pass per caller turn: every piece of information the turn holds.

``extract(text, context)`` returns an :class:`Extraction` with each field the caller gave
(intent, their name or a refusal, the patient when the appointment is for someone else,
the preference as constraints, a phone number, a slot choice, which existing appointment
they speak of), each with the span of the text it came from. The engine reads every field
on every turn, keeps what it learned and asks only for what is still missing.

The state the assistant is in (``context.state``) says what was just asked: a word that is
a surname when a name was asked ("Lundi", "Petit") is a date or an adjective elsewhere.
This module is the contract between understanding and the dialogue; the field extractors
live in the sibling modules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal

from service.engine import calendar
from service.engine.frozen import replace
from service.engine.model import Preference
from service.engine.nlu.choice import SlotRef, read_choice
from service.engine.nlu.filler import filler_of
from service.engine.nlu.intent import intent_corrected, intent_read
from service.engine.nlu.memo import caller_memo
from service.engine.nlu.names import NameFound, read_name
from service.engine.nlu.namescan import PARTICLES, scan_names
from service.engine.nlu.normalize import Utterance, analyse
from service.engine.nlu.phone import read_phone
from service.engine.nlu.someone import Someone, read_someone
from service.engine.nlu.target import read_target
from service.engine.nlu.tokens import Token, number_at, tokenize
from service.engine.nlu.when import When, assemble, read_when
from service.engine.nlu.yesno import answer_of
from service.engine.practice import Practice
from service.engine.states import Intent

NameIssue = Literal["refused", "question", "first_only"]
Choice = int | Literal["none", "repeat"]


@dataclass(frozen=True, slots=True)
class Span:
    """Character offsets ``[start, end)`` in the text as received."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PersonName:
    """A person's name as it must be written on the appointment."""

    first: str | None
    last: str | None

    @property
    def full(self) -> str:
        """"Inès Brossard", or the one part known."""
        return " ".join(p for p in (self.first, self.last) if p)


@dataclass(frozen=True, slots=True)
class BookingHint:
    """What the caller says of an existing appointment: "celui de mardi", "le rendez-vous du
    8", "celui de dix heures", "celui de ma fille". Every field set must match."""

    day: date | None = None
    weekday: int | None = None
    day_of_month: int | None = None
    at: time | None = None
    relation: str | None = None
    patient: PersonName | None = None


@dataclass(frozen=True, slots=True)
class ExtractContext:
    """What the assistant knows when the caller speaks: the state (what was just asked),
    the practice-local ``now``, the slots just read out (WAIT_CONFIRM), and the practice
    (optional: with it, ``outside_hours`` says when a wanted window cannot be served)."""

    state: str
    now: datetime
    slots: tuple[SlotRef, ...] = ()
    practice: Practice | None = None


@dataclass(frozen=True, slots=True)
class Extraction:
    """Everything one caller turn gave; a field is None (or empty / False) when absent.

    - ``intent``: "book", "cancel", "modify", "human", "faq:<topic>", or None;
    - ``yes_no``: "yes" / "no" when the turn answers a yes/no question;
    - ``filler``: nothing but hesitation or noise;
    - ``name``: the caller's own name (or the only name given); ``name_issue`` when the turn
      answers the name question without a usable name (a refusal, a question back, a first
      name alone);
    - ``patient`` / ``relation``: the appointment is for someone else ("pour ma fille Inès
      Brossard"): the patient's name when given, the relation word ("fille", "fils", "mari",
      "femme", "mère", "père", "enfant", "autre");
    - ``preference``: the constraints on when to come (see :class:`Preference`);
      ``outside_hours`` when a wanted window cannot be served by the practice;
    - ``phone``: a valid number in E.164;
    - ``choice``: a 0-based index among ``context.slots``, "none" (all turned down, a new
      preference may come with it) or "repeat" (read them again);
    - ``target``: which existing appointment the caller speaks of;
    - ``corrected``: the turn held a self-correction, already applied to the fields;
    - ``spans``: field name → where in the text it was found.
    """

    text: str
    intent: Intent | None = None
    yes_no: Literal["yes", "no"] | None = None
    filler: bool = False
    name: PersonName | None = None
    name_issue: NameIssue | None = None
    patient: PersonName | None = None
    relation: str | None = None
    preference: Preference | None = None
    outside_hours: bool = False
    phone: str | None = None
    choice: Choice | None = None
    target: BookingHint | None = None
    corrected: bool = False
    spans: Mapping[str, Span] = field(default_factory=dict)


NAME_STATES = frozenset({"QUALIF_NAME", "CANCEL_IDENTIFY", "MODIFY_IDENTIFY"})
CHANGE_STATES = frozenset({"CANCEL_IDENTIFY", "CANCEL_CONFIRM", "MODIFY_IDENTIFY", "MODIFY_CONFIRM"})
# Asked which appointment: every day and time said names it ("jeudi"). Not while asked
# whether to move one: "oui, plutôt vendredi" is where to.
IDENTIFY_STATES = frozenset({"CANCEL_IDENTIFY", "CANCEL_CONFIRM", "MODIFY_IDENTIFY"})
NOT_INTENTS = frozenset({"unknown", "yes", "no", "filler"})


def _span(tokens: tuple[Token, ...], first: int, last: int) -> Span | None:
    if not tokens or first >= last or first >= len(tokens):
        return None
    return Span(tokens[first].start, tokens[min(last, len(tokens)) - 1].end)


def extract(text: str, context: ExtractContext) -> Extraction:
    """Every field ``text`` gives in ``context``. Total: never raises on any string."""
    if not isinstance(text, str):
        text = ""
    try:
        return _extract(text, context)
    except (ValueError, OverflowError, IndexError, KeyError, TypeError, AttributeError):
        return Extraction(text=text)  # a parser bug must not break a turn: nothing understood


@dataclass(frozen=True, slots=True)
class _Wording:
    """What a turn's words say whatever the moment and the slots read out: its intent, filler,
    yes/no and names (these read nothing but the text and whether a name was asked)."""

    tokens: tuple[Token, ...]
    utt: Utterance
    filler: bool
    answer: Literal["yes", "no"] | None
    intent: Intent | None
    intent_corrected: bool
    someone: Someone | None
    named: NameFound | None


@caller_memo(maxsize=4096)
def _wording(text: str, asked: bool) -> _Wording:
    """The text's :class:`_Wording`, read once per text: like ``analyse`` and ``tokenize``,
    cached, since callers say the same few answers ("oui", "le premier", "le matin") again
    and again. Every reader here is a pure function of its arguments and returns frozen
    values, so a cached reading is the reading."""
    tokens = tokenize(text)
    utt = analyse(text)
    filler = filler_of(utt)
    answer = answer_of(utt)
    found_intent = intent_read(utt, filler, answer)
    intent = None if found_intent in NOT_INTENTS else Intent(found_intent)
    corrected = intent_corrected(utt)
    # Names: everywhere when a name was asked, else only when introduced.
    scan = scan_names(tokens, asked)
    someone = read_someone(tokens, scan)
    named = read_name(tokens, asked, scan, someone.claimed if someone is not None else frozenset())
    return _Wording(tokens, utt, filler, answer, intent, corrected, someone, named)


@caller_memo(maxsize=4096)
def _phone_of(text: str) -> tuple[str | None, bool, tuple[int, int] | None]:
    """``read_phone(text)``, read once per text (see :func:`_wording`)."""
    return read_phone(text)


@caller_memo(maxsize=4096)
def _when_of(text: str, today: date) -> When | None:
    """The text's mentions of when, as said on ``today``, and the preference they make: read
    once per text and day (see :func:`_wording`; a day's callers answer "le matin",
    "l'après-midi" again and again)."""
    return read_when(tokenize(text), today)


def _extract(text: str, context: ExtractContext) -> Extraction:
    asked = context.state in NAME_STATES
    wording = _wording(text, asked)
    tokens, utt, filler, answer = wording.tokens, wording.utt, wording.filler, wording.answer
    spans: dict[str, Span] = {}
    corrected = False
    intent = wording.intent
    corrected |= wording.intent_corrected
    person = issue = None
    someone, named = wording.someone, wording.named
    name_words: frozenset[int] = frozenset()
    if named is not None:
        person, issue = named.person, named.issue
        corrected |= named.corrected
        name_words = named.used
        if (where := _span(tokens, named.first, named.last)) is not None:
            spans["name"] = where
    relation = patient = None
    if someone is not None:
        corrected |= someone.corrected
        name_words |= someone.claimed
        relation = someone.relation
        patient = None if someone.patient is None else PersonName(someone.patient.first, someone.patient.last)
        if (relation or patient) and (where := _span(tokens, someone.first, someone.last)) is not None:
            spans["patient" if patient else "relation"] = where
        if intent == "human" and someone.relation == "autre":
            intent = None
    # When: the preference, and the appointment spoken of when cancelling or moving.
    said_when = when = _when_of(text, context.now.date())
    pref = None
    target = None
    if when is not None and name_words:
        # A word is a name or a date, not both: "c'est Mardi, Régis Mardi" names, "jeudi" alone
        # designates an appointment (unless a name was just asked).
        dated = {k for m in when.mentions for k in range(m.first, m.last)}
        own = {k for k in (named.used if named is not None else ()) if tokens[k].word not in PARTICLES}
        if person is not None and own and own <= dated and context.state != "QUALIF_NAME":
            person = issue = None
            spans.pop("name", None)
            name_words -= own
        kept = tuple(m for m in when.mentions if not name_words & set(range(m.first, m.last)))
        when = None if not kept else replace(when, mentions=kept)
    if when is not None:
        corrected |= when.corrected
        mentions = when.mentions
        if intent in ("cancel", "modify") or context.state in CHANGE_STATES:
            # Cancelling or moving, a time the caller cannot make is the appointment's.
            cant = bool(_CANT.search(utt.text)) or intent in ("cancel", "modify")
            every = intent == "cancel" or context.state in IDENTIFY_STATES
            hint = read_target(tokens, mentions, cant, every, context.now.date())
            if hint is not None:
                target = BookingHint(hint.day, hint.weekday, hint.day_of_month, hint.at)
                mentions = tuple(m for m in mentions if m not in hint.mentions)
                spans["target"] = Span(tokens[hint.mentions[0].first].start, tokens[hint.mentions[-1].last - 1].end)
            if intent == "cancel":
                mentions = ()
        if said_when is not None and mentions is said_when.mentions:
            pref = said_when.preference  # every mention said: the preference read with them
        else:
            pref = assemble(list(mentions)) if mentions else None
        if target is not None and (intent == "modify" or context.state.startswith("MODIFY")):
            pref = moved_to(pref, target, tokens)
        if pref is not None and mentions:
            where = _span(tokens, min(m.first for m in mentions), max(m.last for m in mentions))
            if where is not None:
                spans["preference"] = where
    if someone is not None and (intent in ("cancel", "modify") or context.state in CHANGE_STATES):
        base = target or BookingHint()
        target = BookingHint(base.day, base.weekday, base.day_of_month, base.at, relation, patient)
    outside = bool(pref is not None and context.practice is not None and not calendar.serves(context.practice, pref))
    number, phone_corrected, phone_span = _phone_of(text)
    corrected |= phone_corrected
    if phone_span is not None:
        spans["phone"] = Span(*phone_span)
    choice, choice_corrected = read_choice(text, context.slots, context.now.date()) if context.slots else (None, False)
    corrected |= choice_corrected
    if choice is not None:
        spans["choice"] = Span(0, len(text))
        if isinstance(choice, int):  # "celui de 11h", "vendredi": the words pointed at a slot, not a new wish
            pref = None
            outside = False
            spans.pop("preference", None)
    if intent == "faq:other" and context.state != "START" and (
            pref is not None or choice is not None or number or person or patient or relation or target or issue):
        intent = None  # mid-call, "est-ce que le deuxième est bien à 14h ?" answers what was asked
    if corrected and answer == "no" and utt.content[:1] != ("non",):
        answer = None  # "Martin non Martinez": the "non" took a word back, it answers nothing
    return Extraction(
        text=text,
        intent=intent,
        yes_no=answer,
        filler=filler,
        name=None if person is None else PersonName(person.first, person.last),
        name_issue=issue,
        patient=patient,
        relation=relation,
        preference=pref,
        outside_hours=outside,
        phone=number,
        choice=choice,
        target=target,
        corrected=corrected,
        spans=spans,
    )


def moved_to(pref: Preference | None, target: BookingHint, tokens: tuple[Token, ...]) -> Preference | None:
    """The new time of an appointment being moved: "reculer d'une semaine" is a week after
    it; a new time with no day ("plus tard, après 17h", "à 15 heures le même jour") keeps
    its day."""
    day = target.day
    if day is None:
        return pref
    shift = _shift(tokens)
    if shift is not None:
        moved = day + shift
        base = pref or Preference()
        return replace(base, day=moved, days=(moved,))
    if pref is None or pref.day or pref.days or pref.weekdays or pref.from_day or pref.until_day or pref.asap:
        return pref
    same_day = any(t.word in ("meme", "l'heure", "heure", "horaire") for t in tokens)
    if not (pref.windows or pref.after or pref.before or same_day):
        return pref  # "plutôt en matinée": any morning, not that day's
    return replace(pref, day=day, days=(day,))


_UNITS = {"jour": 1, "jours": 1, "semaine": 7, "semaines": 7}
_EARLIER = ("avanc",)


def _shift(tokens: tuple[Token, ...]) -> timedelta | None:
    """"le reculer d'une semaine", "l'avancer de deux jours": how far the appointment moves."""
    words = tuple(t.word for t in tokens)
    for i, token in enumerate(tokens):
        if not token.bare.startswith(("decal", "repouss", "report", "recul", "avanc", "deplac")):
            continue
        for j in range(i + 1, min(len(words), i + 9)):
            if words[j] in _UNITS and j > 0:
                count = 1 if words[j - 1] in ("d'une", "d'un", "une", "un") else None
                if count is None and (found := number_at(words, j - 1)) is not None and found[1] == j:
                    count = found[0]
                if count is None and j > 1 and (found := number_at(words, j - 1)) is None \
                        and words[j - 1] in ("de", "d'"):
                    count = 1
                if count is not None:
                    days = count * _UNITS[words[j]]
                    return timedelta(days=-days if token.bare.startswith(_EARLIER) else days)
    return None


_CANT = re.compile(r"\b(?:peux|pourrai|pourrais|pouvons) (?:pas|plus) (?:venir|etre la|y aller)\b|\bviendrai pas\b")
