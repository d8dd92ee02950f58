"""The text-only part of an extraction is read once per text (and per "a name was asked", or
per day for what it says of when): a turn read again, in another state or at another moment,
gives what a first reading gives."""

from __future__ import annotations

import importlib
from datetime import datetime
from zoneinfo import ZoneInfo

from service.engine.nlu import ExtractContext, SlotRef, extract

extract_module = importlib.import_module("service.engine.nlu.extract")
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=PARIS)
SLOT = datetime(2026, 3, 5, 14, 0, tzinfo=PARIS)
TEXTS = (
    "Pierre Lundi", "Brossard", "je m'appelle Jean Dupont, jeudi matin", "oui", "non merci", "euh", "le premier",
    "c'est pour ma fille Inès Brossard", "zéro six douze trente-quatre cinquante-six soixante-dix-huit",
    "je voudrais annuler mon rendez-vous de vendredi", "Martin non Martinez", "demain à 10h, enfin non, 11h",
)
CONTEXTS = (
    ExtractContext("QUALIF_NAME", NOW),
    ExtractContext("START", NOW),
    ExtractContext("WAIT_CONFIRM", NOW, (SlotRef(SLOT, "jeudi 5 à 14h"),)),
    ExtractContext("CANCEL_IDENTIFY", NOW.replace(day=20)),
)


def _fresh(text: str, context: ExtractContext) -> object:
    extract_module._wording.cache_clear()
    extract_module._phone_of.cache_clear()
    extract_module._when_of.cache_clear()
    return extract(text, context)


def test_a_text_read_again_in_any_context_reads_as_the_first_time() -> None:
    for text in TEXTS:
        first = {context: _fresh(text, context) for context in CONTEXTS}
        for context in reversed(CONTEXTS):  # every other context's reading cached before this one
            for other in CONTEXTS:
                extract(text, other)
            assert extract(text, context) == first[context]


def test_whether_a_name_was_asked_is_part_of_the_reading() -> None:
    asked = _fresh("Brossard", ExtractContext("QUALIF_NAME", NOW))
    told = extract("Brossard", ExtractContext("START", NOW))  # a word alone is a name only when one was asked
    assert asked.name is not None and asked.name.last == "Brossard"
    assert told.name is None


def test_what_a_text_says_of_when_is_read_for_its_day() -> None:
    monday = _fresh("demain", ExtractContext("QUALIF_PREF", NOW))
    tuesday = extract("demain", ExtractContext("QUALIF_PREF", NOW.replace(day=3)))
    assert monday.preference is not None and tuesday.preference is not None
    assert (monday.preference.day, tuesday.preference.day) == (NOW.date().replace(day=3), NOW.date().replace(day=4))
