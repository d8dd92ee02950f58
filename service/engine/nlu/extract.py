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

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal

from service.engine.model import Preference
from service.engine.nlu.choice import SlotRef

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
    def complete(self) -> bool:
        """True when the last name is known (a first name alone is not enough to book)."""
        return bool(self.last)

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
    the practice-local ``now``, and the slots just read out (WAIT_CONFIRM)."""

    state: str
    now: datetime
    slots: tuple[SlotRef, ...] = ()


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
    intent: str | None = None
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


def extract(text: str, context: ExtractContext) -> Extraction:
    """Every field ``text`` gives in ``context``. Total: never raises on any string."""
    from service.engine import (
        nlu,  # the sibling extractors (imported late: nlu imports this module)
    )

    state = context.state
    intent = nlu.intent(text)
    parsed_name = nlu.name(text) if state in ("QUALIF_NAME", "CANCEL_IDENTIFY", "MODIFY_IDENTIFY") else None
    pref = nlu.preference(text, context.now)
    choice = nlu.slot_choice(text, list(context.slots)) if context.slots else None
    return Extraction(
        text=text,
        intent=intent if intent not in ("unknown", "yes", "no") else None,
        yes_no=nlu.yes_no(text),
        filler=nlu.is_filler(text),
        name=None if parsed_name is None else PersonName(parsed_name.first, parsed_name.last),
        preference=None if pref is None else Preference(pref.period, pref.day, pref.after, pref.before),
        phone=nlu.phone(text),
        choice=choice,
    )
