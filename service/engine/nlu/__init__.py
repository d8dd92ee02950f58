"""French understanding of callers, as speech-to-text writes them: rule-based, pure, fast.

``extract`` is the one pass per turn: the text is tokenised once (``tokens``, with the
character offsets of every word), each field is found with its span (``when`` for dates,
times and windows, ``namescan`` then ``names`` and ``someone`` for the caller and the
patient, ``spelling`` for names spelled out, ``phone``, ``choice``, ``intent``,
``target``), then corrections and negations are resolved on that structure. The first wave's per-task
functions (``intent``, ``name``, ``preference``, ``slot_choice``, ``phone``, ``yes_no``,
``is_filler``) stay, as views over the same readers.

No model, no I/O, no clock (the reference date is an argument). Libraries do what they do
well — ``text2num`` French number words in running text, ``phonenumbers`` validation,
``rapidfuzz`` misspellings and spelled-name matching, ``holidays`` for the calendar,
``unicodedata`` accent folding, and names-dataset's first/last-name ranks (as a compact
derived file, see ``data/``) — and the rest is written by hand: ``dateparser`` misreads
French phone phrasing ("après 17 heures" as 03:00, "je" as jeudi, phone numbers as dates),
and no kept library knows negation scope, self-corrections, kinship words or the slots just
read out. Every function is total: any string gives a value or None, never an exception.
"""

from __future__ import annotations

from service.engine.nlu.choice import SlotRef, slot_choice
from service.engine.nlu.extract import (
    BookingHint,
    ExtractContext,
    Extraction,
    PersonName,
    Span,
    extract,
)
from service.engine.nlu.filler import is_filler
from service.engine.nlu.intent import INTENTS, intent, mentions_own_appointment
from service.engine.nlu.menu import menu_choice
from service.engine.nlu.names import Name, name
from service.engine.nlu.phone import phone
from service.engine.nlu.phone import warm as _warm_phone
from service.engine.nlu.preference import Preference, constraints, preference
from service.engine.nlu.yesno import yes_no


def warm() -> None:
    """Load lazily-initialised data (phone metadata, number parser) before the first caller."""
    _warm_phone()
    intent("bonjour je voudrais prendre rendez-vous")


__all__ = [
    "INTENTS", "BookingHint", "ExtractContext", "Extraction", "Name", "PersonName", "Preference", "SlotRef", "Span",
    "constraints", "extract", "intent", "is_filler", "mentions_own_appointment", "menu_choice", "name",
    "phone", "preference", "slot_choice", "warm", "yes_no",
]
