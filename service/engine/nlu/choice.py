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
from datetime import date, datetime, time, timedelta
from typing import Literal

from service.engine.nlu.normalize import Phrases, analyse, has_phrase
from service.engine.nlu.timeparse import WEEKDAYS, times_in
from service.engine.nlu.tokens import Token, number_at, tokenize
from service.engine.nlu.when import CONNECTORS, PRACTICE_TALK


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
          ("pas", "ceux", "la"), ("aucun", "des", "trois"), ("non", "merci"), ("rien", "de", "tout"),
          ("rien", "d'autre"), ("autre", "chose"),
          ("vous", "auriez", "pas"), ("vous", "n'auriez", "pas"), ("vous", "avez", "pas"))
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


RELATIVE_DAYS = {"aujourd'hui": 0, "aujourdhui": 0, "demain": 1, "apres-demain": 2}
# Said right after a day or a period, these turn it down: "le mercredi je peux pas", "le jeudi non plus".
DAY_REFUSED = (*REFUSED, ("peux", "pas"), ("pourrai", "pas"), ("non", "plus"), ("pas", "dispo"), ("suis", "pas"),
               ("travaille",), ("c'est", "non"))
DAY_NEGATORS = frozenset({"pas", "ni", "sauf", "hors", "excepte"})


def _turned_down(tokens: tuple[Token, ...], pos: int, end: int) -> bool:
    """True when the words ``[pos, end)`` (a day or a period) are negated in their clause:
    "pas aujourd'hui", "ni jeudi", "le mercredi je peux pas"."""
    clause = tokens[pos].clause
    words = [t.word for t in tokens]
    before = [words[k] for k in range(max(0, pos - 3), pos) if tokens[k].clause == clause]
    if any(w in DAY_NEGATORS for w in before):
        return True
    after = tuple(words[k] for k in range(end, min(len(words), end + 5)) if tokens[k].clause == clause)
    return _DAY_REFUSED.found(after)


def _practice_talk(tokens: tuple[Token, ...]) -> set[int]:
    """The words said of the practice's hours ("vous êtes fermés le jeudi"), to the clause end."""
    words = tuple(t.word for t in tokens)
    out: set[int] = set()
    for phrase in PRACTICE_TALK:
        at = has_phrase(words, phrase)
        if at >= 0:
            end = at
            while end < len(tokens) and tokens[end].clause == tokens[at].clause and words[end] not in CONNECTORS:
                out.add(end)
                end += 1
    return out


def _days(tokens: tuple[Token, ...], slots: Sequence[SlotRef], today: date | None) -> tuple[set[int], set[int], bool]:
    """The slots named by their day ("vendredi", "demain", "le 21", "cet après-midi"), those
    whose day was turned down, and whether any day was named."""
    words = [t.word for t in tokens]
    named = False
    wanted: set[int] = set()
    refused: set[int] = set()
    talk = _practice_talk(tokens)
    for i, token in enumerate(tokens):
        if i in talk:
            continue  # "vous êtes fermés le jeudi après-midi ? alors vendredi"
        w = token.bare  # "celui d'après-demain"
        nxt = words[i + 1] if i + 1 < len(words) else ""
        end = i + 1
        if w in WEEKDAYS:
            hit = {k for k, s in enumerate(slots) if s.start.weekday() == WEEKDAYS.index(w)}
        elif today is not None and (w in RELATIVE_DAYS or (w, nxt) in (("aujourd", "hui"), ("apres", "demain"))):
            offset = RELATIVE_DAYS.get(w, 2 if w == "apres" else 0)
            end = i + (1 if w in RELATIVE_DAYS else 2)
            hit = {k for k, s in enumerate(slots) if s.start.date() == today + timedelta(days=offset)}
        elif today is not None and w in ("cet", "ce", "cette", "sept") and (
                nxt in ("apres-midi", "aprem", "matin", "soir", "l'apres-midi")
                or (nxt == "apres" and words[i + 2 : i + 3] == ["midi"])):
            hit = {k for k, s in enumerate(slots) if s.start.date() == today}  # "sept après-midi": "cet"
        elif w in ("le", "du", "au") and (found := number_at(tuple(words), i + 1)) is not None \
                and words[found[1] : found[1] + 1] not in (["h"], ["heure"], ["heures"]) \
                and (found[0] > len(slots) or w == "du") and 1 <= found[0] <= 31:
            end = found[1]
            hit = {k for k, s in enumerate(slots) if s.start.day == found[0]}  # "le 21", "celui du dix-huit"
        else:
            continue
        named = True
        (refused if _turned_down(tokens, i, end) else wanted).update(hit)
    return wanted, refused - wanted, named


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
    return _REFUSED.found(after)


def _period(tokens: tuple[Token, ...]) -> str | None:
    """"morning" or "afternoon" when the caller names one period (and does not exclude it)."""
    named: set[str] = set()
    talk = _practice_talk(tokens)
    for i, token in enumerate(tokens):
        word = token.bare
        if i in talk:
            continue
        if word in MORNING:
            which = "morning"
        elif word in AFTERNOON or word == "apres-midi" or (word == "midi" and i > 0 and tokens[i - 1].bare == "apres"):
            which = "afternoon"
        else:
            continue
        if not _turned_down(tokens, i - (1 if word == "midi" else 0), i + 1):
            named.add(which)
    return named.pop() if len(named) == 1 else None


def choice_of(text: str, slots: Sequence[SlotRef], today: date | None = None) -> int | Literal["none"] | None:
    """0-based index of the chosen slot, "none" for a rejection, None if not understood
    (``today``, when known, reads "demain", "aujourd'hui", "cet après-midi")."""
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
    excluded_ordinals = {idx for pos, idx in mentions if _excluded(words, pos)}
    if len(excluded_ordinals) == count - 1 and count > 1:
        return next(i for i in range(count) if i not in excluded_ordinals)  # "ni le premier ni le dernier"
    bare = [w for w in words if w not in POLITE]
    if len(bare) == 1 and bare[0] in CARDINALS and CARDINALS[bare[0]] < count:
        return CARDINALS[bare[0]]  # "2", "trois": a bare number answers "lequel ?"
    # "le plus tôt" is the earliest slot; "rien de plus tôt ?" is not a choice.
    earliest = _EARLIEST.found(words)
    latest = _LATEST.found(words)
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
            hit = [i for i, s in enumerate(slots)
                   if (s.start.hour, s.start.minute) == (moment.hour - 12, moment.minute)]
        position = len(utt.digit_text[:start].split())
        if _excluded(digit_words, position):
            ruled_out.update(hit)
            continue
        times.append(moment)
        matches.update(hit)
    tokens = tokenize(text)
    by_day, refused_days, days = _days(tokens, slots, today)
    if days and by_day:
        matches = (matches & by_day) if matches else by_day
    elif days and not matches:
        matches = set()
    ruled_out |= refused_days
    period = _period(tokens)
    other = bool({"autre", "l'autre"} & set(words)) and bool(ruled_out)
    if period is not None and (times or days or other or POINTERS & set(words)):
        pool = matches if (times or days) else set(range(count)) - ruled_out
        matches = {i for i in pool if (slots[i].start.hour < 12) == (period == "morning")}
    elif other and not matches:
        matches = set(range(count)) - ruled_out  # "pas celui de neuf heures, l'autre"
    matches -= ruled_out
    if len(matches) == 1:
        return next(iter(matches))
    if _REJECT.found(words):
        return "none"
    return None


# Asking to hear a slot again beats naming it: "vous pouvez répéter le deuxième ?", "le
# premier, c'était à quelle heure déjà ?".
REPEAT_FIRST = (("repetez",), ("repeter",), ("redire",), ("redites",), ("quelle", "heure", "deja"),
                ("c'etait", "a", "quelle", "heure"), ("c'etait", "quand"), ("c'etait", "quel", "jour"),
                ("quel", "jour", "deja"), ("c'est", "a", "quelle", "heure"))
REPEAT = (("repetez",), ("repeter",), ("redire",), ("redites",), ("pas", "compris"), ("pas", "entendu"),
          ("pas", "bien", "compris"), ("c'etait", "quoi"), ("c'etait", "lesquels"), ("encore", "une", "fois"),
          ("rappeler", "les"), ("rappelez",), ("relire",), ("relisez",), ("reprendre", "les"), ("vous", "avez", "dit"),
          ("quels", "etaient"), ("lesquels",), ("repetes",), ("redis",))


# The phrase tables indexed by their first word (``Phrases``): a turn is matched against the
# few phrases that can start with one of its words.
_REPEAT_FIRST, _REPEAT, _REJECT = Phrases(REPEAT_FIRST), Phrases(REPEAT), Phrases(REJECT)
_REFUSED, _DAY_REFUSED = Phrases(REFUSED), Phrases(DAY_REFUSED)
# "le plus tôt" is the earliest slot, "le plus tard" the latest.
_EARLIEST = Phrases(tuple((article, "plus", soon) for article in ("le", "la")
                          for soon in ("tot", "rapide", "vite", "proche")))
_LATEST = Phrases((("le", "plus", "tard"), ("la", "plus", "tard")))

# Said between two choices, these take the first back: "le premier, euh non, le deuxième".
MARKERS = frozenset({"non", "pardon", "rectification", "attendez", "plutot"})


def read_choice(text: str, slots: Sequence[SlotRef],
                today: date | None = None) -> tuple[int | Literal["none", "repeat"] | None, bool]:
    """The slot choice of the extraction pass (:func:`slot_choice`, or "repeat" when the
    caller asks to hear the slots again) and whether a self-correction chose it; never raises."""
    if not isinstance(text, str) or not slots:
        return None, False
    words = analyse(text).words
    if _REPEAT_FIRST.found(words):
        return "repeat", False
    corrected = _corrected_choice(text, slots, today)
    if corrected is not None:
        return corrected, True
    found = _safe(text, slots, today)
    if found is not None:
        return found, False
    if _REPEAT.found(words):
        return "repeat", False
    return None, False


def _corrected_choice(text: str, slots: Sequence[SlotRef], today: date | None) -> int | None:
    """"le premier euh non le deuxième", "celui de 16h. Ah non attendez, … le mercredi
    plutôt": what follows the last correction marker, when what precedes it chose too."""
    tokens = tokenize(text)
    for k in range(len(tokens) - 1, 0, -1):
        if tokens[k].word not in MARKERS:
            continue
        before, after = text[: tokens[k].start], text[tokens[k].end :]
        earlier, later = _safe(before, slots, today), _safe(after, slots, today)
        if isinstance(later, int) and isinstance(earlier, int) and earlier != later:
            return later
    return None


def _safe(text: str, slots: Sequence[SlotRef], today: date | None) -> int | Literal["none"] | None:
    try:
        return choice_of(text, slots, today)
    except (ValueError, AttributeError, TypeError, OverflowError):
        return None


def slot_choice(text: str, slots: Sequence[SlotRef]) -> int | Literal["none"] | None:
    """Which proposed slot the caller takes; never raises."""
    if not isinstance(text, str):
        return None
    try:
        return choice_of(text, slots)
    except (ValueError, AttributeError, TypeError):
        return None
