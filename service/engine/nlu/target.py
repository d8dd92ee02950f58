"""Which existing appointment the caller speaks of when cancelling or moving: "celui de
mardi", "le rendez-vous du 8", "celui de dix heures", "celui de ma fille", and in "je peux
pas venir mardi, est-ce qu'on peut faire jeudi" the Tuesday one (Thursday is the new wish).

Read on the mentions of :mod:`when`: a mention introduced by "celui de", "(mon) rendez-vous
de/du", "prévu", or excluded by "je (ne) peux pas venir", names the appointment; the other
mentions are the new preference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from service.engine.nlu.tokens import Token, number_at
from service.engine.nlu.when import MONTHS, Mention

POINTERS = frozenset({"celui", "celle", "rendez-vous", "rdv", "prevu", "prevue", "consultation", "rendez"})
WISHES = frozenset({"plutot", "mettre", "faire", "voudrais", "prefere", "preferais", "pour", "a", "vers", "avancer",
                    "reporter", "decaler", "deplacer"})

@dataclass(frozen=True, slots=True)
class Target:
    """What identifies the appointment: each field set must match it."""

    day: date | None
    weekday: int | None
    day_of_month: int | None
    at: time | None
    mentions: tuple[Mention, ...]


def _led(words: tuple[str, ...], m: Mention) -> bool:
    """True when a word pointing at an existing appointment ("celui", "rendez-vous",
    "prévu") stands in the few words before the mention, with no new wish in between."""
    for k in range(m.first - 1, max(-1, m.first - 6), -1):
        if words[k] in POINTERS:
            return True
        if words[k] in WISHES:
            return False
    return False


def read_target(tokens: tuple[Token, ...], mentions: tuple[Mention, ...], cant_come: bool) -> Target | None:
    """The appointment named by these mentions, or None when none names it."""
    words = tuple(t.word for t in tokens)
    chosen = []
    for m in mentions:
        if m.kind not in ("date", "window", "weekday"):
            continue
        if _led(words, m) or (cant_come and m.negated):
            chosen.append(m)
    if not chosen:
        return None
    day: date | None = None
    weekday: int | None = None
    dom: int | None = None
    at: time | None = None
    for m in chosen:
        if m.kind == "date" and m.day is not None:
            numbered, month = _has_number(words, m), _has_month(words, m)
            if month or not (numbered or m.weekday is not None):
                day = m.day  # "le 8 mars", "demain": that date
            if numbered:
                dom = m.day.day  # "le rendez-vous du 8"
            if m.weekday is not None:
                weekday = m.weekday  # "celui de mardi": any Tuesday the caller holds
        elif m.kind == "weekday":
            weekday = m.weekday
        elif m.kind == "window" and m.window is not None and m.window.start is not None and m.bound == "at":
            at = m.window.start
    return Target(day, weekday, dom, at, tuple(chosen))


def _has_number(words: tuple[str, ...], m: Mention) -> bool:
    return any(number_at(words, k) is not None or words[k] in ("1er", "premier") for k in range(m.first, m.last))


def _has_month(words: tuple[str, ...], m: Mention) -> bool:
    return any(words[k] in MONTHS for k in range(m.first, m.last))
