"""Clock times and day references in folded, digit-converted French: "14h30", "17 heures", "midi"."""

from __future__ import annotations

import re
from datetime import date, time, timedelta

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre",
          "octobre", "novembre", "decembre")

_TIME = re.compile(
    r"\b(\d{1,2})\s*(?:h|heures?)\s*(\d{1,2})?\b(?!\s*(?:minutes?\s+)?(?:de\s+(?:route|trajet)))"
)
_MIDI = re.compile(r"\bmidi(?:\s+et\s+(demi|quart))?\b")
_DAY_NUM = re.compile(r"\b(?:le|du|au)\s+(\d{1,2})(?:er|eme)?(?:\s+(" + "|".join(MONTHS) + r"))?\b")


def times_in(text: str) -> list[tuple[int, time]]:
    """Every clock time in ``text`` with its position; afternoon implied for 1–7 o'clock."""
    found: list[tuple[int, time]] = []
    for m in _TIME.finditer(text):
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        if 1 <= hour <= 7:  # nobody books 3 a.m.: "trois heures" is 15:00
            hour += 12
        if 0 <= hour <= 23 and 0 <= minute <= 59:
            found.append((m.start(), time(hour, minute)))
    for m in _MIDI.finditer(text):
        extra = m.group(1)
        minute = 30 if extra == "demi" else 15 if extra == "quart" else 0
        found.append((m.start(), time(12, minute)))
    found.sort()
    return found


def next_weekday(today: date, weekday: int, allow_today: bool = False) -> date:
    """The next date with ``weekday`` strictly after ``today`` (or today if allowed)."""
    ahead = (weekday - today.weekday()) % 7
    if ahead == 0 and not allow_today:
        ahead = 7
    return today + timedelta(days=ahead)


def day_in(words: tuple[str, ...], text: str, today: date) -> date | None:
    """The day the caller names: aujourd'hui, demain, après-demain, a weekday, "le 14 (mars)"."""
    if "apres-demain" in words or ("apres" in words and "demain" in words and text.find("apres demain") >= 0):
        return today + timedelta(days=2)
    if "demain" in words:
        return today + timedelta(days=1)
    if "aujourd'hui" in words or ("ce" in words and ("matin" in words or "soir" in words)) or "cet" in words:
        return today
    for i, day in enumerate(WEEKDAYS):
        if day in words:
            return next_weekday(today, i)
    m = _DAY_NUM.search(text)
    if m:
        number = int(m.group(1))
        month_name = m.group(2)
        if 1 <= number <= 31:
            candidate = _resolve_day(today, number, MONTHS.index(month_name) + 1 if month_name else None)
            return candidate
    return None


def _resolve_day(today: date, number: int, month: int | None) -> date | None:
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
    return None
