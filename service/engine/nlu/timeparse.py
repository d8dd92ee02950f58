"""Clock times and day references in folded, digit-converted French: "14h30", "17 heures", "midi",
"dix heures et demie", "9 heures moins le quart"; "demain", "lundi 16", "jeudi de la semaine
prochaine", "dans trois jours", "le 14 (mars)". Written by hand for the reasons given in
``preference``; weekdays after "sauf" or "pas" are excluded, not chosen.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre",
          "octobre", "novembre", "decembre")

_TIME = re.compile(
    r"\b(\d{1,2})\s*(?:heures?\b|h)"
    r"(?:\s*(\d{1,2})\b|\s+et\s+(demie?|quart)\b|\s+moins\s+(?:le\s+)?(quart|\d{1,2})\b)?"
    r"(?!\s*(?:minutes?\s+)?(?:de\s+(?:route|trajet)))"
)
_MIDI = re.compile(r"(?<!apres-)(?<!apres )\bmidi(?:\s+et\s+(demie?|quart)|\s+moins\s+(?:le\s+)?(quart))?\b")
_DAY_NUM = re.compile(r"\b(?:le|du|au)\s+(\d{1,2})(?:er|eme)?(?:\s+(" + "|".join(MONTHS) + r"))?\b(?!\s*(?:h|heures?)\b)")
# "lundi 16", "mercredi 11 mars", "jeudi le 12": a weekday with its date.
_WEEKDAY_NUM = re.compile(
    r"\b(?:" + "|".join(WEEKDAYS) + r")\s+(?:le\s+)?(\d{1,2})(?:er|eme)?(?:\s+(" + "|".join(MONTHS) + r"))?\b"
    r"(?!\s*(?:h|heures?)\b)"
)
_IN_DAYS = re.compile(r"\bdans\s+(\d{1,2}|une|un)\s+(jours?|semaines?)\b")


def time_spans(text: str) -> list[tuple[int, int, time]]:
    """Every clock time in ``text`` with its start and end; afternoon implied for 1–7 o'clock."""
    found: list[tuple[int, int, time]] = []
    for m in _TIME.finditer(text):
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        if m.group(3):
            minute = 30 if m.group(3).startswith("demi") else 15
        elif m.group(4):  # "9 heures moins le quart" is 8:45
            hour, minute = hour - 1, 60 - (15 if m.group(4) == "quart" else int(m.group(4)))
        if 1 <= hour <= 7:  # nobody books 3 a.m.: "trois heures" is 15:00
            hour += 12
        if 0 <= hour <= 23 and 0 <= minute <= 59:
            found.append((m.start(), m.end(), time(hour, minute)))
    for m in _MIDI.finditer(text):
        extra = m.group(1)
        if m.group(2):
            moment = time(11, 45)
        else:
            moment = time(12, 30 if extra and extra.startswith("demi") else 15 if extra else 0)
        found.append((m.start(), m.end(), moment))
    found.sort()
    return found


def times_in(text: str) -> list[tuple[int, time]]:
    """Every clock time in ``text`` with its position; afternoon implied for 1–7 o'clock."""
    return [(start, moment) for start, _, moment in time_spans(text)]


def next_weekday(today: date, weekday: int, allow_today: bool = False) -> date:
    """The next date with ``weekday`` strictly after ``today`` (or today if allowed)."""
    ahead = (weekday - today.weekday()) % 7
    if ahead == 0 and not allow_today:
        ahead = 7
    return today + timedelta(days=ahead)


def weekdays_in(words: tuple[str, ...]) -> list[int]:
    """Weekdays named and not excluded ("le matin sauf le lundi", "pas mardi")."""
    named = []
    for i, word in enumerate(words):
        if word in WEEKDAYS and not any(w in ("sauf", "pas", "excepte", "hors") for w in words[max(0, i - 2) : i]):
            named.append(WEEKDAYS.index(word))
    return named


def day_in(words: tuple[str, ...], text: str, today: date) -> date | None:
    """The day the caller names: aujourd'hui, demain, après-demain, a weekday, "le 14 (mars)"."""
    if "apres-demain" in words or ("apres" in words and "demain" in words and text.find("apres demain") >= 0):
        return today + timedelta(days=2)
    if "demain" in words:
        return today + timedelta(days=1)
    if "aujourd'hui" in words or ("ce" in words and ("matin" in words or "soir" in words)) or "cet" in words:
        return today
    m = _IN_DAYS.search(text)
    if m:
        count = 1 if m.group(1) in ("un", "une") else int(m.group(1))
        days = count * 7 if m.group(2).startswith("semaine") else (14 if count == 15 else count)  # quinze jours
        return today + timedelta(days=days)
    m = _WEEKDAY_NUM.search(text)
    if m and 1 <= int(m.group(1)) <= 31:
        return resolve_day(today, int(m.group(1)), MONTHS.index(m.group(2)) + 1 if m.group(2) else None)
    named = weekdays_in(words)
    if named:
        if "semaine" in words and ("prochaine" in words or "suivante" in words):
            # "jeudi de la semaine prochaine": that weekday in next calendar week.
            return today + timedelta(days=7 - today.weekday() + named[0])
        return next_weekday(today, named[0])
    m = _DAY_NUM.search(text)
    if m:
        number = int(m.group(1))
        month_name = m.group(2)
        if 1 <= number <= 31:
            candidate = resolve_day(today, number, MONTHS.index(month_name) + 1 if month_name else None)
            return candidate
    return None


def resolve_day(today: date, number: int, month: int | None) -> date | None:
    """The first date on or after ``today`` with that day number (and month, if given)."""
    year, mon = today.year, month or today.month
    for _ in range(14):
        try:
            candidate = date(year, mon, number)
        except ValueError:
            candidate = None
        if candidate is not None and candidate >= today:
            return candidate
        if month is not None:
            year += 1
        else:
            mon += 1
            if mon > 12:
                mon, year = 1, year + 1
        if year > 9999:
            return None
    return None
