"""Which of the proposed slots the caller takes: an ordinal, a time, a weekday, or none.

"le premier", "la deuxième", "le 2", "celui de 14h", "vendredi", "le dernier",
"pas le premier le deuxième", "oui mais plutôt le deuxième"; "aucun ne me va" → "none".
A weekday, a time and a period ("jeudi après-midi", "celui du matin") narrow the slots
together; a choice is made only when exactly one slot is left. Written by hand: the
referents are the slots just read out, which no library knows about.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal

from service.engine.nlu.normalize import analyse, has_phrase
from service.engine.nlu.timeparse import times_in, weekdays_in


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
# Said right after a mention, these refuse it: "le premier, ça ne va pas".
REFUSED = (("va", "pas"), ("vont", "pas"), ("convient", "pas"), ("m'arrange", "pas"), ("arrange", "pas"),
           ("pas", "possible"), ("impossible",))
# Said around a bare number ("euh 2 s'il vous plaît"), these leave it a choice.
POLITE = frozenset({"euh", "heu", "hum", "ben", "bah", "alors", "oui", "merci", "svp", "s'il", "vous", "plait"})
MORNING = frozenset({"matin", "matinee"})
AFTERNOON = frozenset({"apres-midi", "aprem", "soir", "soiree"})
# A period alone picks a slot only when the caller points at one: "celui de l'après-midi"
# does, "plutôt l'après-midi" asks for other slots.
POINTERS = frozenset({"celui", "celle", "creneau", "prends", "prendre", "choisis"})


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
    """True for "pas le premier", "ni le premier", "le premier ça ne va pas": a negation just
    before the mention, or a refusal in the few words after it."""
    before = words[max(0, pos - 3) : pos]
    if "pas" in before or "sauf" in before or "ni" in before or "non" in before[-1:]:
        return True
    after = words[pos + 1 : pos + 6]
    return any(has_phrase(after, phrase) >= 0 for phrase in REFUSED)


def _period(words: tuple[str, ...]) -> str | None:
    """"morning" or "afternoon" when the caller names one period (and does not exclude it)."""
    named: set[str] = set()
    for i, word in enumerate(words):
        if "pas" in words[max(0, i - 2) : i]:
            continue
        if word in MORNING:
            named.add("morning")
        elif word in AFTERNOON or (word == "midi" and i > 0 and words[i - 1] == "apres"):
            named.add("afternoon")
    return named.pop() if len(named) == 1 else None


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
    positive = [(pos, idx) for pos, idx in mentions if not _excluded(words, pos)]
    if positive:
        first, last = positive[0], positive[-1]
        if first[1] != last[1] and "ou" in words[first[0] : last[0]]:
            return None  # "le premier ou le deuxième": the caller has not chosen
        return last[1]
    bare = [w for w in words if w not in POLITE]
    if len(bare) == 1 and bare[0] in CARDINALS and CARDINALS[bare[0]] < count:
        return CARDINALS[bare[0]]  # "2", "trois": a bare number answers "lequel ?"
    # "le plus tôt" is the earliest slot; "rien de plus tôt ?" is not a choice.
    earliest = any(has_phrase(words, (article, "plus", "tot")) >= 0 for article in ("le", "la"))
    latest = any(has_phrase(words, (article, "plus", "tard")) >= 0 for article in ("le", "la"))
    if earliest or latest:
        order = sorted(range(count), key=lambda i: slots[i].start)
        return order[0] if earliest else order[-1]
    if count >= 3 and "milieu" in words:
        return count // 2  # "celui du milieu"
    # A clock time: "celui de 14h", "quatorze heures", "14h30"; "pas celui de 9h" rules one out.
    digit_words = tuple(utt.digit_text.split())
    times: list[time] = []
    ruled_out: set[int] = {idx for pos, idx in mentions if _excluded(words, pos)}
    matches: set[int] = set()
    for start, moment in times_in(utt.digit_text):
        hit = [i for i, s in enumerate(slots) if (s.start.hour, s.start.minute) == (moment.hour, moment.minute)]
        if not hit:
            hit = [i for i, s in enumerate(slots) if s.start.hour == moment.hour and moment.minute == 0]
        if not hit and moment.hour >= 12:  # "neuf heures" said of a morning list stays 9:00; "trois heures" 15:00
            hit = [i for i, s in enumerate(slots) if (s.start.hour, s.start.minute) == (moment.hour - 12, moment.minute)]
        position = len(utt.digit_text[:start].split())
        if _excluded(digit_words, position):
            ruled_out.update(hit)
            continue
        times.append(moment)
        matches.update(hit)
    days = weekdays_in(words)
    if days:
        by_day = {i for i, s in enumerate(slots) if s.start.weekday() in days}
        matches = (matches & by_day) if matches else by_day
    period = _period(utt.bare)
    other = bool({"autre", "l'autre"} & set(words)) and bool(ruled_out)
    if period is not None and (times or days or other or POINTERS & set(words)):
        pool = matches if (times or days) else set(range(count)) - ruled_out
        matches = {i for i in pool if (slots[i].start.hour < 12) == (period == "morning")}
    elif other and not matches:
        matches = set(range(count)) - ruled_out  # "pas celui de neuf heures, l'autre"
    matches -= ruled_out
    if len(matches) == 1:
        return next(iter(matches))
    if any(has_phrase(words, p) >= 0 for p in REJECT):
        return "none"
    return None


REPEAT = (("repetez",), ("repeter",), ("redire",), ("redites",), ("pas", "compris"), ("pas", "entendu"),
          ("pas", "bien", "compris"), ("c'etait", "quoi"), ("c'etait", "lesquels"), ("encore", "une", "fois"),
          ("rappeler", "les"), ("rappelez",), ("relire",), ("relisez",), ("reprendre", "les"), ("vous", "avez", "dit"),
          ("quels", "etaient"), ("lesquels",), ("repetes",), ("redis",))


def read_choice(text: str, slots: Sequence[SlotRef]) -> int | Literal["none", "repeat"] | None:
    """The slot choice of the extraction pass: :func:`slot_choice`, or "repeat" when the
    caller asks to hear the slots again; never raises."""
    found = slot_choice(text, slots)
    if found is not None or not isinstance(text, str):
        return found
    words = analyse(text).words
    if any(has_phrase(words, p) >= 0 for p in REPEAT):
        return "repeat"
    return None


def slot_choice(text: str, slots: Sequence[SlotRef]) -> int | Literal["none"] | None:
    """Which proposed slot the caller takes; never raises."""
    if not isinstance(text, str):
        return None
    try:
        return choice_of(text, slots)
    except (ValueError, AttributeError, TypeError):
        return None
