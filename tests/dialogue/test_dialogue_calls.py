"""Whole calls through the text API, one table per class of behaviour: information given early,
corrections, exclusions, time windows, names, someone else. Each call must end as expected,
book a slot that honours every constraint the caller gave, read the right name back, and
never ask again what was already answered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from service.engine import replies
from tests.dialogue.calls import Script, run_script

NAME_Q = frozenset({"QUALIF_NAME"})
PREF_Q = frozenset({"QUALIF_PREF"})
PHONE_Q = frozenset({"QUALIF_PHONE"})
MON, TUE, WED, THU, FRI, SAT = range(6)


def morning(m: datetime) -> bool:
    return m.hour < 12


def afternoon(m: datetime) -> bool:
    return m.hour >= 12


def on(*weekdays: int) -> Any:
    return lambda m: m.weekday() in weekdays


def not_on(*weekdays: int) -> Any:
    return lambda m: m.weekday() not in weekdays


EARLY = [
    Script("early_all", ("Bonjour, je m'appelle Jean Dupont, je voudrais un rendez-vous jeudi matin", "le deuxième"),
           fits=lambda m: m.weekday() == THU and morning(m), never=NAME_Q | PREF_Q, slots_in=1),
    Script("early_name", ("Bonjour je voudrais un rendez-vous, c'est Jean Dupont", "plutôt l'après-midi", "le premier"),
           fits=afternoon, never=NAME_Q, slots_in=2),
    Script("early_pref", ("Bonjour, c'est pour un rendez-vous mardi après-midi", "Jean Dupont", "le premier"),
           fits=lambda m: m.weekday() == TUE and afternoon(m), never=PREF_Q, slots_in=2),
    Script("early_no_intent",
           ("Bonjour, je m'appelle Jean Dupont", "je voudrais un rendez-vous le matin", "le premier"),
           fits=morning, never=NAME_Q | PREF_Q, slots_in=2),
    Script("early_phone", ("Bonjour, je suis Jean Dupont, je voudrais un rendez-vous vendredi",
                           "le premier, et mon numéro c'est le 06 12 34 56 78"),
           fits=on(FRI), never=NAME_Q | PREF_Q | PHONE_Q, phone=None, slots_in=1),
    Script("early_number_in_opening", (
        "Bonjour, je suis Jean Dupont, je voudrais un rendez-vous vendredi, mon numéro c'est le 06 12 34 56 78",
        "le premier",
    ), fits=on(FRI), never=NAME_Q | PREF_Q | PHONE_Q, phone=None, slots_in=1),
    Script("early_name_and_pref", ("je voudrais un rendez-vous", "Jean Dupont, jeudi matin", "le premier"),
           fits=lambda m: m.weekday() == THU and morning(m), never=PREF_Q, slots_in=2),
]

CORRECTIONS = [
    Script("fix_day_in_opening",
           ("je voudrais un rendez-vous jeudi, euh non vendredi, c'est Jean Dupont", "le premier"),
           fits=on(FRI), never=NAME_Q | PREF_Q, slots_in=1),
    Script("fix_period",
           ("je voudrais un rendez-vous", "Jean Dupont", "le matin, non plutôt l'après-midi", "le premier"),
           fits=afternoon),
    Script("fix_day_later",
           ("je voudrais un rendez-vous jeudi, c'est Jean Dupont", "ah non pas jeudi, vendredi", "le premier"),
           fits=on(FRI), never=NAME_Q | PREF_Q),
    Script("fix_day_replaces",
           ("je voudrais un rendez-vous jeudi, c'est Jean Dupont", "plutôt samedi finalement", "le premier"),
           fits=on(SAT), never=NAME_Q | PREF_Q),
    Script("fix_name_later",
           ("je voudrais un rendez-vous", "Jean Dupont", "le matin", "pardon, je m'appelle Jean Dupuis",
                              "le premier"), name="Jean Dupuis", fits=morning),
    Script("fix_name_spelled", ("je voudrais un rendez-vous", "Jean Martin, non Martinez", "le matin", "le premier"),
           name="Jean Martinez", fits=morning),
]

EXCLUSIONS = [
    Script("no_monday",
           ("je voudrais un rendez-vous", "Jean Dupont", "n'importe quand mais pas le lundi", "le premier"),
           fits=not_on(MON)),
    Script("morning_but_wednesday",
           ("je voudrais un rendez-vous", "Jean Dupont", "le matin sauf mercredi", "le troisième"),
           fits=lambda m: morning(m) and m.weekday() != WED),
    Script("two_days_out",
           ("je voudrais un rendez-vous", "Jean Dupont", "n'importe quand sauf mardi et jeudi", "le deuxième"),
           fits=not_on(TUE, THU)),
    Script("exclusions_add_up", ("je voudrais un rendez-vous", "Jean Dupont", "n'importe quand sauf le mardi",
                                 "aucun, et pas le mercredi non plus", "le premier"),
           fits=not_on(TUE, WED)),
    Script("no_mornings", ("je voudrais un rendez-vous, c'est Jean Dupont", "pas le matin", "le premier"),
           fits=afternoon),
    Script("excluded_then_day", ("je voudrais un rendez-vous, c'est Jean Dupont", "pas le vendredi", "plutôt le matin",
                                 "le premier"),
           fits=lambda m: morning(m) and m.weekday() != FRI),
]

WINDOWS = [
    Script("after_four", ("je voudrais un rendez-vous, c'est Jean Dupont", "après 16h", "le premier"),
           fits=lambda m: m.hour >= 16),
    Script("nine_to_eleven", ("je voudrais un rendez-vous, c'est Jean Dupont", "entre 9h et 11h", "le deuxième"),
           fits=lambda m: (9, 0) <= (m.hour, m.minute) <= (10, 30)),
    Script("late_morning", ("je voudrais un rendez-vous, c'est Jean Dupont", "en fin de matinée", "le premier"),
           fits=lambda m: (10, 30) <= (m.hour, m.minute) <= (11, 30)),
    Script("before_ten", ("je voudrais un rendez-vous, c'est Jean Dupont", "avant 10h", "le premier"),
           fits=lambda m: (m.hour, m.minute) <= (9, 30)),
    Script("thursday_after_three", ("je voudrais un rendez-vous jeudi après 15h, c'est Jean Dupont", "le premier"),
           fits=lambda m: m.weekday() == THU and m.hour >= 15, never=NAME_Q | PREF_Q),
    Script("after_seven_closed", ("je voudrais un rendez-vous, c'est Jean Dupont", "après 19h", "le premier"),
           fits=lambda m: m.hour >= 17, says=replies.SLOTS_INTRO_CLOSED[0]),
    Script("saturday_afternoon_closed",
           ("je voudrais un rendez-vous samedi après-midi, c'est Jean Dupont", "le premier"),
           fits=on(SAT), says=replies.SLOTS_INTRO_CLOSED[0], last_proposal_fits=True),
]

NAMES = [
    Script("refused_once", ("je voudrais un rendez-vous", "c'est privé", "Jean Dupont", "le matin", "le premier"),
           fits=morning),
    Script("asked_why", ("je voudrais un rendez-vous", "pourquoi faire ?", "Jean Dupont", "le matin", "le premier"),
           fits=morning),
    Script("first_name_alone", ("je voudrais un rendez-vous", "Alice", "Martin", "le matin", "le premier"),
           name="Alice Martin", fits=morning),
    Script("word_surname", ("je voudrais un rendez-vous", "Prix", "le matin", "le premier"), name="Prix", fits=morning),
    Script("weekday_surname", ("je voudrais un rendez-vous", "Paul Mardi", "l'après-midi", "le premier"),
           name="Paul Mardi", fits=afternoon),
    Script("faq_word_surname", ("je voudrais un rendez-vous", "Sophie Prix", "le matin", "le premier"),
           name="Sophie Prix", fits=morning),
    Script("first_name_in_opening",
           ("Bonjour, c'est Ghislaine, je voudrais un rendez-vous le matin", "Brossard", "le premier"),
           name="Ghislaine Brossard", fits=morning, never=PREF_Q),
]

SOMEONE_ELSE = [
    Script("daughter_named",
           ("Bonjour, je voudrais un rendez-vous pour ma fille Inès Brossard", "le matin", "le premier"),
           name="Inès Brossard", someone_else=True, fits=morning, never=NAME_Q),
    Script("daughter_unnamed", ("je voudrais un rendez-vous pour ma fille", "Inès Brossard", "le matin", "le premier"),
           name="Inès Brossard", someone_else=True, fits=morning),
    Script("someone_not_a_transfer",
           ("bonjour c'est pour quelqu'un d'autre", "Paul Leroy", "l'après-midi", "le premier"),
           name="Paul Leroy", someone_else=True, fits=afternoon),
    Script("patient_changes", ("je voudrais un rendez-vous, c'est Jean Dupont", "le matin",
                               "en fait c'est pour mon fils Tom Dupont", "le premier"),
           name="Tom Dupont", someone_else=True, fits=morning),
    Script("husband_first_name",
           ("je voudrais un rendez-vous pour mon mari", "Paul", "Leroy", "le matin", "le premier"),
           name="Paul Leroy", someone_else=True, fits=morning),
    Script("someone_withheld", ("je voudrais un rendez-vous pour ma mère Jeanne Leroy", "l'après-midi", "le premier",
                                "06 98 76 54 32"),
           name="Jeanne Leroy", someone_else=True, fits=afternoon, phone=None),
]


async def _check(make_live: Any, script: Script) -> None:
    async with make_live() as live:
        await run_script(live, script)


@pytest.mark.parametrize("script", EARLY, ids=lambda s: s.id)
async def test_information_given_early_is_not_asked(make_live: Any, script: Script) -> None:
    """A name, a preference or a number said before it is asked is kept and never asked for."""
    await _check(make_live, script)


@pytest.mark.parametrize("script", CORRECTIONS, ids=lambda s: s.id)
async def test_corrections_replace_what_was_said(make_live: Any, script: Script) -> None:
    """A corrected day, period or name replaces the earlier one, in the same turn or later."""
    await _check(make_live, script)


@pytest.mark.parametrize("script", EXCLUSIONS, ids=lambda s: s.id)
async def test_exclusions_are_never_proposed(make_live: Any, script: Script) -> None:
    """Excluded days and periods are never proposed, and exclusions said later add up."""
    await _check(make_live, script)


@pytest.mark.parametrize("script", WINDOWS, ids=lambda s: s.id)
async def test_time_windows_are_honoured(make_live: Any, script: Script) -> None:
    """A window of the day ("après 16h", "entre 9h et 11h", "en fin de matinée") bounds the slots."""
    await _check(make_live, script)


@pytest.mark.parametrize("script", NAMES, ids=lambda s: s.id)
async def test_names_are_asked_well(make_live: Any, script: Script) -> None:
    """Refusals get a reason, a first name alone its last name, a word surname is a name."""
    await _check(make_live, script)


@pytest.mark.parametrize("script", SOMEONE_ELSE, ids=lambda s: s.id)
async def test_booking_for_someone_else(make_live: Any, script: Script) -> None:
    """The appointment carries the patient's name ("pour Inès Brossard") and the caller's number."""
    async with make_live() as live:
        await run_script(live, script)
        contact = script.phone or "+33698765432"  # the caller id, else the number the caller gave
        found = await live.services.store.find_bookings(contact, live.services.clock.now())
        assert [b.name for b in found] == [script.name]
