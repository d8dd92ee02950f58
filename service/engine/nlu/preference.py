"""When the caller would like to come: period, day, and time bounds.

Written by hand on top of text2num's digits: dateparser misses "mardi prochain" and
"demain après-midi", reads "après 17 heures" as 03:00 the next day, and takes "je" for
jeudi. The reference date is an argument; nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Literal

from service.engine.nlu.normalize import analyse, has_phrase
from service.engine.nlu.timeparse import day_in, times_in

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
       ("egal",), ("libre",))
MORNING = ("matin", "matinee", "matins")
AFTERNOON = ("apres-midi", "aprem", "apres-midis", "soir", "soiree", "apm")


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
    for pos, moment in [] if lunch else times_in(digits):
        lead = digits[max(0, pos - 22) : pos]
        if any(k in lead for k in ("apres", "a partir", "pas avant", "plus tard que", "passe", "des ")):
            after = moment
        elif any(k in lead for k in ("avant", "au plus tard", "pas apres", "jusqu")):
            before = moment
        elif "entre" in lead and after is None:
            after = moment
        elif after is not None and before is None and "et" in lead:
            before = moment
        else:
            after = moment
            before = time(min(moment.hour + 1, 23), moment.minute)
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
