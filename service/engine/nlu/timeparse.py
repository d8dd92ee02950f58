"""Clock times in folded, digit-converted French ("14h30", "17 heures", "midi", "dix heures et
demie", "9 heures moins le quart") and the date a day number designates. Written by hand for
the reasons given in ``preference``; days themselves are read in :mod:`when`.
"""

from __future__ import annotations

import re
from datetime import date, time

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre",
          "octobre", "novembre", "decembre")

_TIME = re.compile(
    r"\b(\d{1,2})\s*(?:heures?\b|h)"
    r"(?:\s*(\d{1,2})\b|\s+et\s+(demie?|quart)\b|\s+moins\s+(?:le\s+)?(quart|\d{1,2})\b)?"
    r"(?!\s*(?:minutes?\s+)?(?:de\s+(?:route|trajet)))"
)
_MIDI = re.compile(r"(?<!apres-)(?<!apres )\bmidi(?:\s+et\s+(demie?|quart)|\s+moins\s+(?:le\s+)?(quart))?\b")


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
