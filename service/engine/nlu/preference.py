"""When the caller would like to come: period, day, and time bounds.

Written by hand on top of text2num's digits: dateparser misses "mardi prochain" and
"demain après-midi", reads "après 17 heures" as 03:00 the next day, and takes "je" for
jeudi. The reference date is an argument; nothing here reads the clock.

Conventions: the period comes from period words only ("après 17 heures" is any period
after 17:00); "vers 10h" or "à 10h" is 10:00–11:00; "entre 9h et 11h", "de 14h à 16h" a
range; the word nearest a time decides its bound ("pas après 16h" is before 16:00); "en fin
de matinée" is after 10:30, "en début de matinée" before 10:00, "en début d'après-midi"
before 15:30, "en fin d'après-midi / de journée" after 16:00, "le soir" after 17:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Literal

from service.engine.nlu.normalize import analyse, has_phrase
from service.engine.nlu.timeparse import day_in, time_spans

Period = Literal["morning", "afternoon", "any"]


@dataclass(frozen=True, slots=True)
class Preference:
    """Period (morning / afternoon / any), optional day and time bounds."""

    period: Period
    day: date | None
    after: time | None
    before: time | None


ANY = (("pas", "de", "preference"), ("peu", "importe"), ("n'importe",), ("indifferent",), ("comme", "vous", "voulez"),
       ("le", "plus", "tot"), ("au", "plus", "vite"), ("des", "que", "possible"), ("quand", "vous", "voulez"),
       ("ca", "m'est", "egal"), ("m'est", "egal"), ("pas", "d'importance"), ("tout", "me", "va"),
       ("n'importe", "quand"), ("aucune", "preference"), ("comme", "ca", "vous", "arrange"),
       ("le", "premier", "disponible"), ("le", "plus", "rapidement"), ("rapidement",), ("quand", "c'est", "possible"),
       ("egal",), ("libre",), ("plus", "vite"), ("plus", "tot"), ("n'importe", "quel"))
MORNING = ("matin", "matinee", "matins")
AFTERNOON = ("apres-midi", "aprem", "apres-midis", "soir", "soiree", "apm")
EVENING = frozenset({"soir", "soiree", "soirs"})
# What the word nearest before a clock time makes of it; the longest key wins a tie, so
# "pas après" beats "après". Keys are matched on " " + the 22 characters before the time.
BOUND_KEYS: tuple[tuple[str, str], ...] = (
    ("apres", "after"), ("a partir", "after"), ("a partir de", "after"), ("pas avant", "after"),
    ("plus tard que", "after"),
    ("passe", "after"), ("des ", "after"), ("pas plus tot que", "after"), ("au plus tot", "after"),
    ("avant", "before"), ("au plus tard", "before"), ("pas apres", "before"), ("jusqu", "before"),
    ("pas plus tard que", "before"), ("plus tot que", "before"),
    ("entre", "range"), (" de ", "range"), ("vers", "at"), (" a ", "at"), ("autour de", "at"), ("alentours de", "at"),
)
# What may stand between the two times of a range: "entre 9h et 11h", "de 14h à 16h".
RANGE_JOINS = frozenset({"et", "a", "jusqu'a", "jusqu a", "-"})


def _period(words: tuple[str, ...], text: str) -> Period | None:
    words = tuple(w.rsplit("'", 1)[-1] for w in words)  # "l'apres-midi" → "apres-midi"
    morning = [i for i, w in enumerate(words) if w in MORNING]
    afternoon = [i for i, w in enumerate(words) if w in AFTERNOON]
    afternoon += [i for i in range(len(words) - 1) if words[i] == "apres" and words[i + 1] == "midi"]

    def negated(i: int) -> bool:
        return "pas" in words[max(0, i - 3) : i] or "sauf" in words[max(0, i - 3) : i]

    m = [i for i in morning if not negated(i)]
    a = [i for i in afternoon if not negated(i)]
    if m and not a:
        return "morning"
    if a and not m:
        return "afternoon"
    if m and a:
        return "morning" if m[-1] > a[-1] else "afternoon"
    if morning and not afternoon:
        return "afternoon"  # "pas le matin"
    if afternoon and not morning:
        return "morning"  # "pas l'après-midi"
    return None


def _kind(lead: str) -> str:
    """The bound the nearest key before a time gives it: after, before, range, or at."""
    best = (-1, 0, "at")
    for key, kind in BOUND_KEYS:
        at = lead.rfind(key)
        if at >= 0:
            best = max(best, (at + len(key.rstrip()), len(key), kind))
    return best[2]


def _bounds(digits: str, after: time | None, before: time | None) -> tuple[time | None, time | None]:
    """Time bounds from every clock time in ``digits``, over the period's own bounds."""
    previous: tuple[int, time, str] | None = None  # end, moment and kind of the last time
    for start, end, moment in time_spans(digits):
        if previous is not None and previous[2] in ("range", "at") and digits[previous[0] : start].strip() in RANGE_JOINS:
            after, before = previous[1], moment
            previous = (end, moment, "closed")
            continue
        kind = _kind(" " + digits[max(0, start - 22) : start])
        if kind == "after":
            after = moment
        elif kind == "before":
            before = moment
        else:
            after, before = moment, time(min(moment.hour + 1, 23), moment.minute)
        previous = (end, moment, kind)
    return after, before


def preference_of(text: str, now: datetime) -> Preference | None:
    """The caller's preference, or None when they expressed none we can use."""
    utt = analyse(text)
    words, digits = utt.words, utt.digit_text
    # "après-midi" is a period, not a clock time: keep its "midi" away from the time parser.
    digits = digits.replace("apres-midi", "aprem").replace("apres midi", "aprem")
    if not words:
        return None
    today = now.date()
    period = _period(words, utt.text)
    day = day_in(words, digits, today)
    after: time | None = None
    before: time | None = None
    text = utt.text
    if "fin" in words and ("matinee" in words or "matin" in words):
        period, after = "morning", time(10, 30)
    elif ("debut" in words or "tot" in words) and ("matinee" in words or "matin" in words):
        period, before = "morning", time(10, 0)
    elif any(w.startswith("debut") or w.endswith("debut") for w in words) and period == "afternoon":
        before = time(15, 30)
    elif "fin" in words and (period == "afternoon" or has_phrase(words, ("fin", "de", "journee")) >= 0):
        period, after = "afternoon", time(16, 0)
    lunch = has_phrase(words, ("entre", "midi", "et", "deux")) >= 0 or has_phrase(words, ("pause", "dejeuner")) >= 0
    if lunch:
        after, before = time(12, 0), time(14, 0)
    if not lunch:
        after, before = _bounds(digits, after, before)
    if period == "afternoon" and after is None and before is None and EVENING & set(utt.bare):
        after = time(17, 0)  # "ce soir", "en soirée": the last hours of the day
    if after is not None and before is not None and before <= after:
        before = None
    if period is None and day is None and after is None and before is None:
        if any(has_phrase(words, p) >= 0 for p in ANY):
            return Preference("any", None, None, None)
        if has_phrase(words, ("semaine", "prochaine")) >= 0 or has_phrase(words, ("cette", "semaine")) >= 0:
            return Preference("any", None, None, None)
        return None
    return Preference(period or "any", day, after, before)


def preference(text: str, now: datetime) -> Preference | None:
    """When the caller would like to come (``now`` is the reference, tz-aware); never raises."""
    if not isinstance(text, str) or not isinstance(now, datetime):
        return None
    try:
        return preference_of(text, now)
    except (ValueError, OverflowError):
        return None
