"""Which existing appointment the caller speaks of when cancelling or moving: "celui de
mardi", "le rendez-vous du 8", "celui de dix heures", "celui de ma fille", and in "je peux
pas venir mardi, est-ce qu'on peut faire jeudi" the Tuesday one (Thursday is the new wish).

Read on the mentions of :mod:`when`: a mention introduced by "celui de", "(mon) rendez-vous
de/du", "prévu", excluded by "je (ne) peux pas venir" (or any unavailability, when the turn
cancels or moves), or said between a moving verb and its new time ("repousser lundi 9h à
lundi 11h"), names the appointment; the other mentions are the new preference. Where the
caller is asked which appointment, or cancels, every day and time said names it. A weekday
alone is the coming one ("le rendez-vous de mercredi"), as French says it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta

from service.engine.nlu.tokens import Token, number_at
from service.engine.nlu.when import Mention

POINTERS = frozenset({"celui", "celle", "rendez-vous", "rdv", "prevu", "prevue", "consultation", "rendez", "celui-la",
                      "celle-la", "celui-ci", "celle-ci"})
WISHES = frozenset({"plutot", "mettre", "faire", "voudrais", "prefere", "preferais", "pour", "a", "vers", "avancer",
                    "reporter", "decaler", "deplacer"})
# Verbs that move an appointment: what follows them, up to "à"/"pour", is the appointment.
MOVES = ("decal", "deplac", "repouss", "report", "avanc", "recul", "bouger", "change")
JOINERS = frozenset({"a", "au", "pour", "vers", "plutot", "en"})

@dataclass(frozen=True, slots=True)
class Target:
    """What identifies the appointment: each field set must match it."""

    day: date | None
    weekday: int | None
    day_of_month: int | None
    at: time | None
    mentions: tuple[Mention, ...]


def _led(words: tuple[str, ...], m: Mention, mentions: tuple[Mention, ...] = (), moving: bool = False,
         clauses: tuple[int, ...] = ()) -> bool:
    """True when a word pointing at an existing appointment ("celui", "rendez-vous",
    "prévu") stands in the few words before the mention, with no new wish in between ("mon
    rendez-vous de vendredi 10h à 15h": 15h is the wish)."""
    crossed = False
    for k in range(m.first - 1, max(-1, m.first - 6), -1):
        if words[k] in POINTERS:
            return not (moving and crossed and words[m.first] in WISHES)
        if words[k] in WISHES:
            return False
        crossed |= any(o.first <= k < o.last for o in mentions if o is not m)
        if crossed and clauses and clauses[k] != clauses[m.first]:
            return False  # "mon rendez-vous de mardi, lundi si possible": lundi is the wish
    return False


def _moved(tokens: tuple[Token, ...], mentions: tuple[Mention, ...]) -> list[Mention]:
    """"repousser lundi 9h à lundi 11h", "décaler lundi à mardi": the mentions between the
    moving verb and the word that introduces the new time."""
    words = tuple(t.word for t in tokens)
    verb = next((i for i, t in enumerate(tokens) if t.bare.startswith(MOVES)), None)
    if verb is None:
        return []
    after = sorted((m for m in mentions if m.first > verb and m.kind in ("date", "window", "weekday")),
                   key=lambda m: m.first)
    moved: list[Mention] = []
    for m in after:
        gap = words[moved[-1].last if moved else verb + 1 : m.first]
        if moved and (any(w in JOINERS for w in gap) or words[m.first] in JOINERS):
            return moved  # the new time starts here
        if len(gap) > 3:
            break
        moved.append(m)
    return []


def read_target(tokens: tuple[Token, ...], mentions: tuple[Mention, ...], cant_come: bool,
                every: bool = False, today: date | None = None) -> Target | None:
    """The appointment named by these mentions, or None when none names it (``every``: the
    caller is asked which appointment, or cancels: every day and time said names it)."""
    words = tuple(t.word for t in tokens)
    moving = any(t.bare.startswith((*MOVES, "pass", "mett")) for t in tokens)
    clauses = tuple(t.clause for t in tokens)
    chosen = []
    for m in mentions:
        if m.kind not in ("date", "window", "weekday"):
            continue
        if _led(words, m, mentions, moving, clauses) or (cant_come and m.negated):
            chosen.append(m)
    if not chosen:
        chosen = _moved(tokens, mentions)
    if not chosen and every:
        chosen = _until_wish(words, mentions)
    if not chosen:
        return None
    day: date | None = None
    weekday: int | None = None
    dom: int | None = None
    at: time | None = None
    for m in chosen:
        if m.kind == "date" and m.day is not None:
            numbered = _has_number(words, m)
            a_week = today is not None and m.weekday is not None and not numbered and m.day - today == timedelta(days=7)
            if not a_week:
                day = m.day  # "le 8 mars", "demain", "celui de mardi" (the coming Tuesday): that date
            if numbered:
                dom = m.day.day  # "le rendez-vous du 8"
            if m.weekday is not None:
                weekday = m.weekday  # "celui de mardi" said on a Tuesday: today's or next week's
        elif m.kind == "weekday":
            weekday = m.weekday
        elif m.kind == "window" and m.window is not None and m.window.start is not None and m.bound == "at":
            at = m.window.start
    return Target(day, weekday, dom, at, tuple(chosen))


def _until_wish(words: tuple[str, ...], mentions: tuple[Mention, ...]) -> list[Mention]:
    """The day and time mentions said before any new wish ("jeudi", "le lundi 21 à 9h")."""
    out: list[Mention] = []
    for m in sorted(mentions, key=lambda m: m.first):
        if m.kind not in ("date", "window", "weekday"):
            continue
        if out and any(w in WISHES - {"a", "pour", "vers"} for w in words[out[-1].last : m.first]):
            break
        out.append(m)
    return out


def _has_number(words: tuple[str, ...], m: Mention) -> bool:
    return any(number_at(words, k) is not None or words[k] in ("1er", "premier") for k in range(m.first, m.last))
