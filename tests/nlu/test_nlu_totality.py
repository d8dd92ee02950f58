"""Totality: every public NLU function answers any string with a value or None, never raising."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.config import load_practice
from service.engine import nlu
from service.engine.nlu.extract import ExtractContext, Extraction, extract
from service.engine.practice import Practice
from service.tools.understand import extraction_json
from tests.nlu.nlu_data import E164

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 3, 3, 9, 0, tzinfo=PARIS)
SLOTS = [
    nlu.SlotRef(datetime(2026, 3, 5, 9, 30, tzinfo=PARIS), "jeudi 5 à 9h30"),
    nlu.SlotRef(datetime(2026, 3, 5, 14, 0, tzinfo=PARIS), "jeudi 5 à 14h"),
    nlu.SlotRef(datetime(2026, 3, 6, 11, 0, tzinfo=PARIS), "vendredi 6 à 11h"),
]
PRACTICE = load_practice(None)
MENU = {"book", "cancel_or_modify", "question", "human", None}

# Words the parsers react to, so that generated text reaches deep branches, not only the early exits.
VOCABULARY = ["euh", "oui", "non", "pas", "le", "la", "premier", "deuxieme", "dernier", "aucun", "14h", "quatorze",
              "heures", "vers", "apres", "avant", "entre", "et", "midi", "demain", "apres-demain", "lundi", "mardi",
              "vendredi", "matin", "apres-midi", "fin", "debut", "de", "matinee", "le", "31", "fevrier", "mars", "zero",
              "six", "douze", "soixante-dix-huit", "quatre", "vingt", "dix", "+33", "06", "monsieur", "madame", "c'est",
              "je", "m'appelle", "jean", "dupont", "n'diaye", "annuler", "deplacer", "rendez-vous", "adresse",
              "parking", "combien", "quelqu'un", "d'", "l'", "-", "'", "?", "septante", "nonante", "mille", "cent",
              "milliard", "99999999999999999999", "0", "00", "h", "24h", "99h", "12h60", "dans", "jours", "semaine",
              "prochaine"]
TEXTS = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
    st.lists(st.sampled_from(VOCABULARY), max_size=25).map(" ".join),
    st.lists(st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=4)), max_size=20).map(" ".join),
)
DATETIMES = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from([UTC, PARIS])
)
SLOT_LISTS = st.lists(
    st.builds(nlu.SlotRef, DATETIMES, st.text(max_size=20)), max_size=5
)

EXTREMES = [
    "", " ", "\x00" * 50, "\r\n\t\x0b\x0c", "a" * 10_000, "euh " * 5_000, "🙂" * 2_000, "👍",
    "日本語のテキストです", "مرحبا بكم", "Привет, меня зовут Иван", "\u202eeuh", "\ufeffoui", "e\u0301" * 3_000,
    "\ud800", "oui\udfff", "0" * 10_000, "9" * 400, "neuf " * 2_000, "le " * 3_000, "quatre vingt " * 1_000,
    "mille milliards de milliards", "+" * 100, "'" * 100, "-" * 100, "le 99999999999999999999",
    "99999999999999999999 heures", "le 0 mars", "le 31 février", "à 25h61", "pas " * 500 + "le premier",
    "zéro six " * 200, "[" * 50 + "]" * 50, "<" * 30, "…" * 100,
]


def check_all(text: Any, now: datetime = NOW, slots: list[nlu.SlotRef] = SLOTS) -> None:
    """Call every public function on ``text`` and check each answer's type."""
    assert nlu.intent(text) in nlu.INTENTS
    found = nlu.name(text)
    assert found is None or (isinstance(found, nlu.Name) and isinstance(found.last, str) and found.last)
    pref = nlu.preference(text, now)
    assert pref is None or (isinstance(pref, nlu.Preference) and pref.period in ("morning", "afternoon", "any"))
    if pref is not None and pref.after is not None and pref.before is not None:
        assert pref.after < pref.before
    choice = nlu.slot_choice(text, slots)
    assert choice is None or choice == "none" or (isinstance(choice, int) and 0 <= choice < len(slots))
    assert nlu.yes_no(text) in ("yes", "no", None)
    number = nlu.phone(text)
    assert number is None or (E164.match(number) and phonenumbers.is_valid_number(phonenumbers.parse(number)))
    assert isinstance(nlu.is_filler(text), bool)
    assert nlu.menu_choice(text) in MENU


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_every_function_is_total_on_any_string(text: str) -> None:
    """Random text of any script, control characters included, and vocabulary soups."""
    check_all(text)


@settings(max_examples=150, deadline=None)
@given(TEXTS, DATETIMES, SLOT_LISTS)
def test_preference_and_slot_choice_are_total_for_any_context(text: str, now: datetime,
                                                             slots: list[nlu.SlotRef]) -> None:
    """Any reference date (year 1 to 9999) and any list of slots, empty included."""
    check_all(text, now, slots)


@pytest.mark.parametrize("text", EXTREMES, ids=[f"extreme{i}" for i in range(len(EXTREMES))])
def test_extreme_inputs(text: str) -> None:
    """Empty, 10,000 characters, emoji, other scripts, controls, lone surrogates, absurd numbers."""
    check_all(text)


@pytest.mark.parametrize("value", [None, 42, b"oui", ["oui"], {"text": "oui"}])
def test_non_strings_are_answered_not_raised(value: Any) -> None:
    """A caller of the API passing something that is not a string still gets an answer."""
    check_all(value)


def test_extreme_reference_dates() -> None:
    """Dates at the ends of the calendar: "après-demain" on 31 December 9999 is None, not an overflow."""
    last = datetime(9999, 12, 31, 12, tzinfo=UTC)
    first = datetime(1, 1, 1, 12, tzinfo=UTC)
    for text in ("après-demain", "demain", "le 31", "mardi prochain", "le 2 janvier", "dans trois jours",
                 "jeudi de la semaine prochaine", "lundi 16"):
        check_all(text, last)
        check_all(text, first)
    naive = datetime(2026, 3, 3, 9)
    check_all("demain matin", naive)
    assert nlu.preference("demain", datetime(2026, 3, 3, 9, tzinfo=timezone(timedelta(hours=14)))) is not None
    assert nlu.preference("demain", "2026-03-03") is None  # type: ignore[arg-type]
    assert date(2026, 3, 4) == nlu.preference("demain", NOW).day  # type: ignore[union-attr]


def test_long_input_is_bounded() -> None:
    """10,000 characters are cut to a bounded turn and every task still answers (its cost is a
    figure of ``make bench``: ``understanding_us_long_input``)."""
    text = "je voudrais prendre rendez-vous " * 400
    check_all(text)


STATES = ["START", "QUALIF_NAME", "QUALIF_PREF", "WAIT_CONFIRM", "QUALIF_PHONE", "CANCEL_IDENTIFY", "MODIFY_IDENTIFY",
          "MODIFY_CONFIRM", "INTENT_ROUTER"]
TURN_VOCABULARY = [*VOCABULARY, "non", "pardon", "enfin", "plutot", "je", "veux", "dire", "sauf", "ni", "surtout",
                   "ma", "fille", "pour", "quelqu'un", "d'autre", "il", "s'appelle", "celui", "du", "milieu", "autre",
                   "repetez", "tiret", "apostrophe", "comme", "deux", "n", "l", "e", "prive", "pourquoi", "travaille",
                   "jusqu'a", "ouverture", "des", "semaine", "d'apres", "peux", "venir", "annuler", "decaler", "8"]
TURN_TEXTS = st.one_of(TEXTS, st.lists(st.sampled_from(TURN_VOCABULARY), max_size=30).map(" ".join))


def check_extract(text: Any, state: str = "START", now: datetime = NOW, slots: tuple[nlu.SlotRef, ...] = (),
                  practice: Practice | None = None) -> None:
    """The one extraction pass answers with an Extraction whose fields keep their contract."""
    found = extract(text, ExtractContext(state, now, slots, practice))
    assert isinstance(found, Extraction)
    assert found.intent is None or found.intent in nlu.INTENTS
    assert found.name is None or found.name.first or found.name.last
    assert found.choice is None or found.choice in ("none", "repeat") or 0 <= found.choice < len(slots)
    assert all(0 <= s.start <= s.end <= len(found.text) for s in found.spans.values())
    if found.preference is not None:
        pref = found.preference
        assert not set(pref.weekdays) & set(pref.not_weekdays)
        assert all(w.start is None or w.end is None or w.start < w.end for w in pref.windows)
    extraction_json(found)  # serialisable as the CLI answers it


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TURN_TEXTS, st.sampled_from(STATES))
def test_extract_is_total_on_any_string(text: str, state: str) -> None:
    """Random text and vocabulary soups in every state give an Extraction, never an exception."""
    check_extract(text, state, NOW, tuple(SLOTS), PRACTICE)


@settings(max_examples=100, deadline=None)
@given(TURN_TEXTS, DATETIMES, SLOT_LISTS)
def test_extract_is_total_for_any_context(text: str, now: datetime, slots: list[nlu.SlotRef]) -> None:
    """Any reference date (year 1 to 9999) and any slots."""
    check_extract(text, "WAIT_CONFIRM", now, tuple(slots))


@pytest.mark.parametrize("text", EXTREMES, ids=[f"extreme{i}" for i in range(len(EXTREMES))])
def test_extract_extreme_inputs(text: str) -> None:
    """Empty, huge, other scripts, controls, lone surrogates, absurd numbers."""
    check_extract(text, "QUALIF_NAME", NOW, tuple(SLOTS), PRACTICE)
    check_extract(None)


@pytest.mark.parametrize("text", ["le secrétariat pour quelqu'un d'autre decaller",
                                  "je voudrais parler a quelqu'un d'autre pour anuler"])
def test_someone_else_with_a_misheard_cue_is_read_not_raised(text: str) -> None:
    """"quelqu'un d'autre" is dropped from the words as said and without elision at the same
    places: the cues after it (a misheard "décaler", "annuler") are read at their own
    positions, and the intent and the menu answer (they raised IndexError before)."""
    assert nlu.intent(text) == "human"
    assert nlu.menu_choice(text) == "human"


def test_an_appointment_for_someone_else_keeps_its_relation_whatever_follows() -> None:
    """The extraction of a turn whose intent reading once raised keeps who it is for."""
    found = extract("le secrétariat pour quelqu'un d'autre decaller", ExtractContext("START", NOW, (), PRACTICE))
    assert found.relation == "autre"


@pytest.mark.parametrize("text", ["prochaine semaine", "la prochaine semaine", "rappelez moi la prochaine semaine"])
def test_next_week_said_last_is_read_not_raised(text: str) -> None:
    """"(la) prochaine semaine" as the last words: the week is read (its mention once ran past
    the end of the words and raised IndexError)."""
    nlu.preference(text, NOW)
    found = extract(text, ExtractContext("QUALIF_PREF", NOW, (), PRACTICE))
    assert found.preference is not None
    assert (found.preference.from_day, found.preference.until_day) == (date(2026, 3, 9), date(2026, 3, 15))
