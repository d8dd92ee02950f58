"""Which of the proposed slots the caller takes: an ordinal, a time, a weekday, or none.

"le premier", "la deuxième", "le 2", "celui de 14h", "vendredi", "le dernier",
"pas le premier le deuxième", "oui mais plutôt le deuxième"; "aucun ne me va" → "none".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from service.engine.nlu.normalize import analyse, has_phrase
from service.engine.nlu.timeparse import WEEKDAYS, times_in


@dataclass(frozen=True, slots=True)
class SlotRef:
    """A proposed slot (tz-aware start, local time) and how it was read out."""

    start: datetime
    label: str


ORDINALS: dict[str, int] = {
    "premier": 0, "premiere": 0, "1er": 0, "1ere": 0, "1ier": 0,
    "deuxieme": 1, "second": 1, "seconde": 1, "2eme": 1, "2e": 1, "2ieme": 1, "2nd": 1, "2nde": 1,
    "troisieme": 2, "3eme": 2, "3e": 2, "3ieme": 2,
}
CARDINALS = {"1": 0, "un": 0, "une": 0, "2": 1, "deux": 1, "3": 2, "trois": 2}
LAST = frozenset({"dernier", "derniere"})
ARTICLES = frozenset({"le", "la", "numero", "option", "choix", "no", "n", "celui", "celle"})
REJECT = (("aucun",), ("aucune",), ("rien", "ne"), ("ne", "me", "va", "pas"), ("ne", "m'arrange", "pas"),
          ("m'arrange", "pas"), ("me", "convient", "pas"), ("ne", "me", "conviennent"), ("me", "vont", "pas"),
          ("ni", "l'un"), ("d'autres",), ("autre", "chose"), ("autres", "creneaux"), ("autres", "horaires"),
          ("pas", "possible"), ("impossible",), ("je", "peux", "pas"), ("je", "ne", "peux", "pas"),
          ("pas", "dispo"), ("pas", "disponible"), ("un", "autre", "jour"), ("une", "autre", "date"),
          ("pas", "ceux", "la"), ("aucun", "des", "trois"), ("non", "merci"))
NEGATORS = frozenset({"pas", "non", "sauf", "plutot", "mais"})


def _mentions(words: tuple[str, ...], count: int) -> list[tuple[int, int]]:
    """(position, index) of every ordinal or "le 2"-style cardinal in ``words``."""
    found: list[tuple[int, int]] = []
    for i, w in enumerate(words):
        if w in ORDINALS and ORDINALS[w] < count:
            found.append((i, ORDINALS[w]))
        elif w in LAST and count:
            found.append((i, count - 1))
        elif w in CARDINALS and CARDINALS[w] < count and i > 0 and words[i - 1] in ARTICLES:
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if nxt not in ("heures", "heure", "h") and not nxt.isdigit():
                found.append((i, CARDINALS[w]))
    return found


def _excluded(words: tuple[str, ...], pos: int) -> bool:
    """True for "pas le premier": a negation just before the mention."""
    before = words[max(0, pos - 3) : pos]
    return "pas" in before or "sauf" in before


def choice_of(text: str, slots: Sequence[SlotRef]) -> int | Literal["none"] | None:
    """0-based index of the chosen slot, "none" for a rejection, None if not understood."""
    count = len(slots)
    if count == 0:
        return None
    utt = analyse(text)
    words = utt.words
    if not words:
        return None
    mentions = _mentions(words, count)
    positive = [idx for pos, idx in mentions if not _excluded(words, pos)]
    if positive:
        return positive[-1]
    # A clock time: "celui de 14h", "quatorze heures", "14h30".
    times = [t for _, t in times_in(utt.digit_text)]
    matches: set[int] = set()
    for moment in times:
        hit = [i for i, s in enumerate(slots) if (s.start.hour, s.start.minute) == (moment.hour, moment.minute)]
        if not hit:
            hit = [i for i, s in enumerate(slots) if s.start.hour == moment.hour and moment.minute == 0]
        matches.update(hit)
    days = [d for d, name in enumerate(WEEKDAYS) if name in words]
    if days:
        by_day = {i for i, s in enumerate(slots) if s.start.weekday() in days}
        matches = (matches & by_day) if matches else by_day
    if len(matches) == 1:
        return next(iter(matches))
    if any(has_phrase(words, p) >= 0 for p in REJECT):
        return "none"
    if mentions and not positive and len(words) <= 4:
        return None
    return None


def slot_choice(text: str, slots: Sequence[SlotRef]) -> int | Literal["none"] | None:
    """Which proposed slot the caller takes; never raises."""
    if not isinstance(text, str):
        return None
    try:
        return choice_of(text, slots)
    except (ValueError, AttributeError, TypeError):
        return None
