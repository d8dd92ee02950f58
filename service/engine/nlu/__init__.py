"""French understanding of callers, as speech-to-text writes them: rule-based, pure, fast.

No model, no I/O, no clock (the reference date is an argument). Libraries do what they do
well — ``text2num`` French number words, ``phonenumbers`` validation, ``rapidfuzz``
misspellings, ``unicodedata`` accent folding — and the rest (negation scope, names,
periods and days, slot choices) is written by hand, because no kept library reads French
phone-line phrasing ("pas le premier, le deuxième", "en fin de matinée") correctly.
Every function is total: any string gives a value or None, never an exception.
"""

from __future__ import annotations

from service.engine.nlu.choice import SlotRef, slot_choice
from service.engine.nlu.filler import is_filler
from service.engine.nlu.intent import INTENTS, intent, mentions_own_appointment
from service.engine.nlu.menu import menu_choice
from service.engine.nlu.names import Name, name
from service.engine.nlu.phone import phone
from service.engine.nlu.phone import warm as _warm_phone
from service.engine.nlu.preference import Preference, preference
from service.engine.nlu.yesno import yes_no


def warm() -> None:
    """Load lazily-initialised data (phone metadata, number parser) before the first caller."""
    _warm_phone()
    intent("bonjour je voudrais prendre rendez-vous")


__all__ = [
    "INTENTS", "Name", "Preference", "SlotRef", "intent", "is_filler", "mentions_own_appointment", "menu_choice", "name",
    "phone", "preference", "slot_choice", "warm", "yes_no",
]
