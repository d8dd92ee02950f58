"""Slot labels for the ear and for the eye, and the slot message within its budget.

Voice labels are short and speakable ("vendredi 7 à 14h"); the message is built from
the longest wording that fits ``SLOTS_MESSAGE_MAX_CHARS`` and never cuts a slot.
Written by hand: Babel's French date formats are for the eye ("7 févr. 2026"),
not for a text-to-speech voice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from service.engine.model import Slot
from service.engine.states import Channel

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)


def spoken_time(moment: datetime) -> str:
    """"14h", "9h30", "midi"."""
    if moment.hour == 12 and moment.minute == 0:
        return "midi"
    return f"{moment.hour}h" if moment.minute == 0 else f"{moment.hour}h{moment.minute:02d}"


def day_number(moment: datetime) -> str:
    """"1er" for the first of the month, else the number."""
    return "1er" if moment.day == 1 else str(moment.day)


def voice_label(moment: datetime) -> str:
    """"vendredi 7 à 14h": what a voice can say and a caller can repeat."""
    return f"{WEEKDAYS[moment.weekday()]} {day_number(moment)} à {spoken_time(moment)}"


def compact_label(moment: datetime) -> str:
    """"ven 7, 14h": the shortest form, used only when the budget demands it."""
    return f"{WEEKDAYS[moment.weekday()][:3]} {day_number(moment)}, {spoken_time(moment)}"


def full_label(moment: datetime) -> str:
    """"vendredi 7 février à 14h": for text channels and the confirmation read-back."""
    return (
        f"{WEEKDAYS[moment.weekday()]} {day_number(moment)} {MONTHS[moment.month - 1]}"
        f" à {spoken_time(moment)}"
    )


def log_label(moment: datetime) -> str:
    """"vendredi 7 février 14h": the seed's ``[RDV_CONFIRMED] slot=`` form."""
    return (
        f"{WEEKDAYS[moment.weekday()]} {day_number(moment)} {MONTHS[moment.month - 1]}"
        f" {spoken_time(moment)}"
    )


def same_day_labels(moments: Sequence[datetime], label: Callable[[datetime], str]) -> list[str]:
    """Labels where a repeated day is said once: "vendredi 7 à 14h, à 16h"."""
    out: list[str] = []
    previous: datetime | None = None
    for moment in moments:
        if previous is not None and previous.date() == moment.date():
            out.append(f"à {spoken_time(moment)}")
        else:
            out.append(label(moment))
        previous = moment
    return out


def enumerate_fr(items: Sequence[str]) -> str:
    """"a, b ou c"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " ou " + items[-1]


def slot_message(
    slots: Sequence[Slot],
    channel: Channel,
    budget: int | None,
    intro: str,
    question: str,
    tz_convert: Callable[[datetime], datetime],
) -> str:
    """The proposal sentence: the richest wording that fits ``budget`` characters."""
    moments = [tz_convert(s.start) for s in slots]
    if channel is Channel.TEXT:
        listed = "\n".join(f"{i}. {full_label(m)}" for i, m in enumerate(moments, 1))
        return f"{intro}\n{listed}\n{question}"
    wordings = [
        f"{intro} {enumerate_fr([voice_label(m) for m in moments])}. {question}",
        f"{intro} {enumerate_fr(same_day_labels(moments, voice_label))}. {question}",
        f"{enumerate_fr(same_day_labels(moments, voice_label))}. {question}",
        f"{enumerate_fr(same_day_labels(moments, compact_label))} ?",
    ]
    if budget is None:
        return wordings[0]
    for text in wordings:
        if len(text) <= budget:
            return text
    return wordings[-1]
