"""When the caller can come, as constraints: wanted and excluded days, windows, date bounds.

The turn's words are read once into *mentions* — a date, a weekday, a period, a window of
the day, a range of dates, "as soon as possible" — each with its words' positions. Then,
on that structure:

0. what is said of the practice's hours ("vous êtes fermés le mercredi après-midi, alors
   mercredi matin") is no wish;
1. a self-correction drops the earlier of two mentions of the same kind ("mardi euh non
   pardon mercredi", "à dix heures enfin non plutôt onze heures"; a strong marker reaches
   further: "samedi… ah non, je me suis trompé, je voulais dire lundi"); a value said
   again is confirmed, not taken back ("Mercredi 16… c'est un mercredi"), unless said
   again to be turned down ("Aujourd'hui… enfin, aujourd'hui c'est trop juste");
2. a negation before ("pas le lundi", "sauf le mercredi", "ni le mardi ni le jeudi",
   "tout sauf le matin", "plutôt que vendredi", "à part") or an unavailability around
   ("le vendredi je peux pas", "je travaille le matin", "c'est non") excludes the
   mentions it reaches, never across another mention unless listed with it; "par contre
   oui", "ne … que le samedi" and "je ne travaille pas le mercredi" make them wanted; a
   negated bound is flipped ("pas avant dix heures" is after ten). The article decides
   what is excluded: "pas lundi" is the coming Monday (``not_days``), "pas le lundi"
   every Monday (``not_weekdays``);
3. times that describe the caller's own schedule ("parce que je travaille jusqu'à dix-sept
   heures trente", "j'ai un rendez-vous à 10h", "mon train arrive à 15h") count only when
   no wanted window or period was said, and then by what they leave free (after 17:30).

Windows follow the issue's conventions: "vers 10h" / "à 10h" is 10:00–11:00, "entre 14 et
16 heures" 14:00–16:00, "en fin de matinée" 10:30–12:00, "en début d'après-midi"
14:00–15:30, "en fin d'après-midi" after 16:00, "en début de soirée" after 17:30, "le
soir" after 17:00, "entre midi et deux" and "à l'heure du déjeuner" 12:00–14:00. "Dès
l'ouverture" is :data:`OPENING`, the first slot, a window relative to each day's opening
that the calendar resolves. Written by hand: ``dateparser`` misses "mardi prochain" and "demain
après-midi", reads "après 17 heures" as 03:00 the next day and takes "je" for jeudi; no
kept library knows negation scope or corrections in French.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Literal

from service.engine.frozen import replace
from service.engine.model import Preference, Window
from service.engine.nlu.timeparse import resolve_day as _resolve_day
from service.engine.nlu.tokens import NUMBER_WORDS, Token, clock_token, number_at

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
PLURAL_WEEKDAYS = {w + "s": i for i, w in enumerate(WEEKDAYS)}
MONTHS = ("janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre",
          "octobre", "novembre", "decembre")
NOON = time(12, 0)
# Right at the day's opening ("dès l'ouverture", "à l'ouverture"): the first slot, a window
# whose bounds count from the opening, not from midnight. The calendar resolves it per day
# (and widens it to one slot when slots are longer).
OPENING = Window(time(0, 0), time(0, 30))
MORNING = Window(None, NOON)
AFTERNOON = Window(NOON, None)

Kind = Literal["date", "weekday", "period", "window", "dates", "asap", "any"]
Bound = Literal["at", "after", "before", "between"]


@dataclass(frozen=True, slots=True)
class Mention:
    """One thing said about when: its kind, value and word positions ``[first, last)``."""

    kind: Kind
    first: int
    last: int
    day: date | None = None  # date
    weekday: int | None = None  # weekday; or the weekday a date was named by ("mardi")
    period: str | None = None  # "morning" / "afternoon"
    window: Window | None = None
    bound: Bound = "at"
    from_day: date | None = None
    until_day: date | None = None
    own: str | None = None  # the caller's own schedule: "busy" or "free" (what the time marks)
    negated: bool = False
    coming: bool = False  # a date named by its weekday alone ("mardi": the coming Tuesday)
    exception: bool = False  # negated as an exception to anything ("sauf mardi", "hormis mardi")


# ----------------------------------------------------------------------------- words

CORRECTION_WORDS = frozenset({"non", "pardon", "enfin", "plutot", "trompe", "trompee", "attendez", "attends",
                              "correction", "oups", "pardonnez", "rectification"})
CORRECTION_PHRASES = (("je", "veux", "dire"), ("je", "voulais", "dire"), ("ou", "plutot"), ("ah", "non"))
# Markers that take a value back even several words later ("samedi… ah non, je me suis
# trompé, je voulais dire lundi"); "plutôt" or "attendez" alone only close by.
STRONG_CORRECTIONS = frozenset({"non", "pardon", "trompe", "trompee", "correction", "oups", "pardonnez",
                                "rectification"})
# A negation before a mention: "pas le lundi", "sauf le matin", "ni mardi ni jeudi".
PRE_NEGATORS = frozenset({"pas", "sauf", "ni", "excepte", "hormis", "hors", "jamais", "evitez", "eviter", "evite",
                          "dehors"})
# Negations that make an exception to anything ("n'importe quand sauf mardi"): every such weekday.
EXCEPTIONS = frozenset({"sauf", "excepte", "hormis", "hors", "dehors", "part", "jamais"})
# Unavailability: excludes the mentions of its clause, before or after it.
UNAVAILABLE = (("peux", "pas"), ("pourrai", "pas"), ("pourrais", "pas"), ("pas", "possible"), ("impossible",),
               ("va", "pas"), ("ira", "pas"), ("arrange", "pas"), ("m'arrange", "pas"), ("convient", "pas"),
               ("suis", "pas", "dispo"), ("suis", "pas", "disponible"), ("suis", "pas", "libre"),
               ("suis", "indisponible"), ("suis", "pris"), ("suis", "prise"), ("travaille",), ("bosse",),
               ("au", "travail"), ("au", "boulot"), ("suis", "occupe"), ("suis", "occupee"), ("pas", "dispo"),
               ("pas", "disponible"), ("pas", "libre"), ("complique",), ("pas", "le", "temps"), ("trop", "juste"),
               ("trop", "tot"), ("trop", "tard"), ("c'est", "non"), ("c", "est", "non"), ("jamais",),
               ("peux", "plus"), ("pourrai", "plus"), ("empechement",), ("coince",), ("coincee",))
# Said of the practice, not of the caller: "vous êtes fermés le mercredi après-midi".
PRACTICE_TALK = (("vous", "etes", "ferme"), ("vous", "etes", "fermes"), ("vous", "fermez"), ("vous", "ouvrez"),
                 ("c'est", "ferme"), ("vous", "etes", "ouvert"), ("vous", "etes", "ouverts"), ("vous", "n'ouvrez"),
                 ("le", "cabinet", "est"), ("vous", "ne", "travaillez"), ("vous", "travaillez"))
# Words that end what practice talk or a negation reaches: "… vous êtes fermés, alors mercredi matin".
CONNECTORS = frozenset({"alors", "donc", "mais", "sinon", "plutot", "contre", "revanche", "coup"})
# Words that end a negation's reach and start a wanted part: "pas lundi mais mardi".
POSITIVE = frozenset({"mais", "plutot", "sinon", "prefere", "preferais", "preference", "donc", "alors", "par",
                      "peux", "pourrais", "pourrai", "voudrais", "veux", "faire", "possible", "dispo",
                      "disponible", "libre", "ok", "oui", "bien", "parfait", "arrange", "conviendrait",
                      "convient", "irait", "va"})
# Words a pre-negation reaches across (besides other mentions and their words).
NEG_GLUE = frozenset({"le", "la", "les", "l'", "de", "du", "des", "d'", "en", "au", "aux", "a", "un", "une", "trop",
                      "surtout", "et", "ou", "ni", "euh", "heu", "ce", "cet", "cette", "ces", "non", "plus", "tout",
                      "venir", "y", "aller", "passer", "me", "dans", "pendant", "jour", "jours", "journee", "moment",
                      "creneau", "vraiment", "forcement", "mon", "ma", "sur", "pour", "fois", "semaine",
                      "prochain", "prochaine", "possible", "que", "qu'en", "je", "ne", "n'", "suis", "peux", "heures",
                      "heure", "h"})
# Words that put a time in the caller's own schedule ("je travaille jusqu'à 17h30").
OWN_BUSY = frozenset({"travaille", "bosse", "boulot", "travail", "cours", "reunion", "occupe", "occupee", "pris",
                      "prise"})
# "j'ai un rendez-vous à 10h à l'hôpital": a time the caller already holds.
OWN_NOUNS = frozenset({"rendez-vous", "rdv", "reunion", "cours", "dentiste", "kine", "examen", "ecole", "creche",
                       "dialyse", "train", "avion", "vol", "travail", "boulot", "entretien"})
OWN_END = frozenset({"finis", "fini", "termine", "sors", "quitte", "debauche", "libere", "arrive", "arrivee",
                     "rentre", "atterris", "atterrit"})
OWN_START = frozenset({"commence", "embauche", "attaque", "reprends"})
BECAUSE = frozenset({"parce", "car", "puisque", "comme"})
# Away until a date: "en vacances jusqu'au 15", "absent jusqu'à mardi".
AWAY = frozenset({"vacances", "absent", "absente", "parti", "partie", "hospitalise", "hospitalisee", "deplacement",
                  "etranger", "conge", "conges", "indisponible", "travaille", "bosse", "pris", "prise"})

AFTER_LEADS = (("a", "partir", "de"), ("a", "partir", "d'"), ("partir", "de"), ("apres",), ("des",), ("passe",),
               ("passees",), ("passe", "de"), ("au-dela", "de"), ("plus", "tard", "que"), ("au", "plus", "tot"),
               ("a", "compter", "de"))
BEFORE_LEADS = (("avant",), ("jusqu'a",), ("jusque",), ("jusqu", "a"), ("au", "plus", "tard"),
                ("plus", "tot", "que"), ("d'ici",), ("d'ici", "a"))
AT_LEADS = (("vers",), ("vers", "les"), ("a",), ("autour", "de"), ("aux", "alentours", "de"),
            ("sur", "les", "coups", "de"),
            ("pour",), ("des", "environs", "de"), ("environ",))
ANY_PHRASES = (("pas", "de", "preference"), ("peu", "importe"), ("n'importe",), ("indifferent",),
               ("comme", "vous", "voulez"), ("quand", "vous", "voulez"), ("ca", "m'est", "egal"), ("m'est", "egal"),
               ("pas", "d'importance"), ("tout", "me", "va"), ("aucune", "preference"), ("comme", "ca", "vous"),
               ("egal",), ("libre",), ("quand", "c'est", "possible"), ("n'importe", "quel"),
               ("toute", "la", "semaine"), ("tous", "les", "jours"), ("comme", "vous", "pouvez"))
ASAP_PHRASES = (("le", "plus", "tot"), ("au", "plus", "vite"), ("des", "que", "possible"), ("plus", "vite"),
                ("le", "plus", "rapidement"), ("rapidement",), ("le", "premier", "disponible"),
                ("la", "premiere", "disponibilite"), ("urgence",), ("urgent",), ("vite",), ("asap",),
                ("le", "premier", "creneau"), ("premiere", "dispo"), ("au", "plus", "tot"))
MORNING_WORDS = frozenset({"matin", "matinee", "matins", "matinees"})
AFTERNOON_WORDS = frozenset({"apres-midi", "aprem", "apres-midis", "apm", "aprems"})
EVENING_WORDS = frozenset({"soir", "soiree", "soirs", "soirees"})
SKIP = frozenset({"euh", "heu", "hum", "ben", "bah", "disons", "genre"})


def _by_last_word(phrases: tuple[tuple[str, ...], ...]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """The phrases by their last word, longest first ("à partir de" before "de")."""
    return {last: tuple(p for p in sorted(phrases, key=len, reverse=True) if p[-1] == last)
            for last in {p[-1] for p in phrases}}


# The leads of a time by the bound they give: only those ending with the word before can lead it.
_LEADS: tuple[tuple[dict[str, tuple[tuple[str, ...], ...]], Bound], ...] = (
    (_by_last_word(AFTER_LEADS), "after"), (_by_last_word(BEFORE_LEADS), "before"), (_by_last_word(AT_LEADS), "at"))


def _ends_at(words: tuple[str, ...], j: int, phrase: tuple[str, ...]) -> bool:
    """True when ``phrase`` ends right before word ``j``."""
    n = len(phrase)
    return j - n >= 0 and words[j - n : j] == phrase


def _find(words: tuple[str, ...], phrase: tuple[str, ...], lo: int = 0, hi: int | None = None) -> int:
    """Where ``phrase`` first starts in ``words[lo:hi]``, or -1."""
    hi = len(words) if hi is None else hi
    n = len(phrase)
    first = phrase[0]
    if first not in words:  # the usual case, told without raising ValueError
        return -1
    start = lo
    while True:
        try:  # tuple.index scans in C: most phrases' first word is absent
            i = words.index(first, start, max(start, hi - n + 1))
        except ValueError:
            return -1
        if n == 1 or words[i : i + n] == phrase:
            return i
        start = i + 1


# ----------------------------------------------------------------------------- clock times

# The words a clock time may start with, besides digits and hyphenated numbers.
_CLOCK_WORDS = frozenset({"midi", "minuit"}) | NUMBER_WORDS


def clock_at(words: tuple[str, ...], i: int) -> tuple[time, int] | None:
    """A clock time starting at word ``i`` ("14h30", "quatorze heures trente", "dix heures
    et demie", "midi moins le quart", "9 heures du matin") and the index after it."""
    if i >= len(words):
        return None
    word = words[i]
    if word not in _CLOCK_WORDS and "-" not in word and not word[:1].isdigit():
        return None  # most words: neither digits, nor "midi", nor a number word
    hm = clock_token(word)
    j = i + 1
    if hm is not None:
        hour, minute = hm
        if minute == 0 and word.endswith("h"):
            minute, j = _minutes(words, j, minute)
    elif word in ("midi", "minuit") and not (i > 0 and words[i - 1] == "apres"):
        hour, minute = (12 if word == "midi" else 0), 0
        minute, j = _minutes(words, j, minute, allow_number=True)
        if minute < 0:
            hour, minute = hour - 1, 60 + minute
    else:
        found = number_at(words, i)
        if found is None or found[1] >= len(words) or words[found[1]] not in ("h", "heure", "heures"):
            return None
        hour, j = found[0], found[1] + 1
        minute, j = _minutes(words, j, 0, allow_number=True)
    if minute < 0:
        hour, minute = hour - 1, 60 + minute
    suffix = words[j : j + 2]
    if suffix in (("du", "matin"), ("le", "matin")):
        j += 2
    elif suffix in (("du", "soir"), ("de", "l'apres-midi"), ("l'apres-midi",)) or suffix[:1] == ("l'apres-midi",):
        j += 2 if suffix[0] != "l'apres-midi" else 1
        if hour < 12:
            hour += 12
    elif 1 <= hour <= 7:  # nobody books 3 a.m.: "trois heures" is 15:00
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return time(hour, minute), j


def _minutes(words: tuple[str, ...], j: int, minute: int, allow_number: bool = True) -> tuple[int, int]:
    """Minutes after "heures": "trente", "30", "et demie", "et quart", "moins le quart"
    (returned negative), "pile"."""
    nxt = words[j] if j < len(words) else ""
    if nxt == "et" and j + 1 < len(words) and words[j + 1] in ("demie", "demi", "quart"):
        return (30 if words[j + 1].startswith("demi") else 15), j + 2
    if nxt == "moins":
        if words[j + 1 : j + 3] == ("le", "quart"):
            return -15, j + 3
        if j + 1 < len(words) and words[j + 1] == "quart":
            return -15, j + 2
        found = number_at(words, j + 1)
        if found is not None and 0 < found[0] < 60:
            return -found[0], found[1]
        return minute, j
    if nxt == "pile":
        return minute, j + 1
    if allow_number:
        found = number_at(words, j)
        if found is not None and 0 <= found[0] <= 59:
            after = words[found[1]] if found[1] < len(words) else ""
            if after not in ("h", "heure", "heures", "jours", "jour", "minutes", "min") and after not in MONTHS:
                return found[0], found[1]
    return minute, j


def _bare_hour(words: tuple[str, ...], i: int) -> tuple[time, int] | None:
    """A number alone standing for an hour in a range: "entre quatorze et seize heures"."""
    found = number_at(words, i)
    if found is None or not 0 <= found[0] <= 23:
        return None
    if found[0] == 0:
        return None
    hour = found[0] + 12 if 1 <= found[0] <= 7 else found[0]
    return time(hour), found[1]


# Units after a number that make it something other than an hour.
NOT_HOURS = frozenset({"jours", "jour", "semaines", "semaine", "ans", "an", "mois", "minutes", "min", "euros", "fois",
                       "personnes", "kilos"})


def _plus_hour(moment: time) -> time | None:
    return time(moment.hour + 1, moment.minute) if moment.hour < 23 else None


# ----------------------------------------------------------------------------- finders


class _Reader:
    """Reads the mentions of one turn; ``taken`` marks words already used by a mention."""

    def __init__(self, tokens: tuple[Token, ...], today: date) -> None:
        self.tokens = tokens
        self.words = tuple(t.word for t in tokens)
        self.bare = tuple(t.bare for t in tokens)
        self.today = today
        self.taken = [False] * len(tokens)
        self.found: list[Mention] = []

    def add(self, mention: Mention) -> None:
        for k in range(mention.first, mention.last):
            self.taken[k] = True
        self.found.append(mention)

    def free(self, lo: int, hi: int) -> bool:
        return not any(self.taken[lo:hi])

    # -- windows of the day
    def lead(self, i: int) -> tuple[Bound, int]:
        """The bound that the words right before word ``i`` give a time, and where they start."""
        words = self.words
        j = i
        while j > 0 and words[j - 1] in SKIP:
            j -= 1
        if j > 0:
            for leads, bound in _LEADS:
                for phrase in leads.get(words[j - 1], ()):
                    if _ends_at(words, j, phrase):
                        return bound, j - len(phrase)
        return "at", i

    def windows(self) -> None:
        words = self.words
        i = 0
        while i < len(words):
            if self.taken[i]:
                i += 1
                continue
            # "entre X et Y", "de X à Y", "du X au Y": a range, one of the two being a clock time.
            if words[i] in ("entre", "de", "d'", "des") or (words[i] == "a" and words[i + 1 : i + 2] == ("partir",)):
                got = self.range_at(i)
                if got is not None:
                    i = got
                    continue
            found = clock_at(words, i)
            if found is None:
                i += 1
                continue
            moment, j = found
            bound, start = self.lead(i)
            if start < i and not self.free(start, i):
                start = i
            if bound == "after":
                window = Window(moment, None)
            elif bound == "before":
                window = Window(None, moment)
            else:
                window = Window(moment, _plus_hour(moment))
            self.add(Mention("window", start, j, window=window, bound=bound, own=self.own(start, bound)))
            i = j

    def range_at(self, i: int) -> int | None:
        words = self.words
        k = i + 1
        if words[i] == "a":  # "à partir de X jusqu'à Y"
            return None
        first = clock_at(words, k) or _bare_hour(words, k)
        if first is None:
            return None
        a, j = first
        join = words[j] if j < len(words) else ""
        if join not in ("et", "a", "jusqu'a", "au", "-"):
            return None
        second_at = j + 1
        if join == "jusqu" and words[j + 1 : j + 2] == ("a",):
            second_at = j + 2
        second = clock_at(words, second_at)
        explicit_first = clock_at(words, k) is not None
        if second is None:
            second = _bare_hour(words, second_at)
            if second is None:
                return None
            after = words[second[1]] if second[1] < len(words) else ""
            if not explicit_first and (words[i] != "entre" or after in MONTHS or after in NOT_HOURS
                                       or not 7 <= a.hour <= 20 or not 8 <= second[0].hour <= 21):
                return None  # "entre 9 et 10" is hours; "entre le 9 et le 10", "entre 2 et 3 jours" are not
        b, end = second
        if b <= a and b.hour + 12 <= 23 and time(b.hour + 12, b.minute) > a:
            b = time(b.hour + 12, b.minute)  # "de 10 à 2 heures" is 10:00–14:00
        if a.hour >= 12 and not explicit_first and b.hour < 12:
            return None
        if b <= a:
            return None
        self.add(Mention("window", i, end, window=Window(a, b), bound="between", own=self.own(i, "between")))
        return end

    def own(self, start: int, bound: Bound) -> str | None:
        """"busy"/"free" when the time at ``start`` tells the caller's own schedule: the verb
        decides before the noun ("je finis le travail à 16h30" frees, "je travaille à 14h" busies)."""
        words = self.bare
        clause = self.tokens[start].clause if start < len(self.tokens) else 0
        lo = max(0, start - 6)
        seen: list[int] = []
        for k in range(start - 1, lo - 1, -1):
            if self.tokens[k].clause != clause and words[k] not in BECAUSE:
                break
            seen.append(k)
        if any(words[k] in OWN_END for k in seen):
            return "free"
        if any(words[k] in OWN_START for k in seen):
            return "busy"
        for k in seen:
            if words[k] in OWN_BUSY:
                return "free" if bound == "before" else "busy"
            if words[k] in OWN_NOUNS and (words[k - 1 : k] in (("j'ai",), ("ai",)) or (
                    k > 1 and words[k - 1] in ("un", "une", "le", "la", "l'", "mon", "ma")
                    and words[k - 2] in ("j'ai", "ai"))):
                return "busy"  # "j'ai un rendez-vous à 10h"
            if words[k] in BECAUSE:
                return "busy"
        return None

    def named_windows(self) -> None:
        """Named spans of the day: "en fin de matinée", "entre midi et deux", "le soir"."""
        words, bare = self.words, self.bare
        n = len(words)
        for i in range(n):
            if self.taken[i]:
                continue
            w, b = words[i], bare[i]
            if w in ("fin", "debut", "milieu") or b in ("fin", "debut", "milieu"):
                which = b
                tail = [x.rsplit("'", 1)[-1] for x in words[i + 1 : i + 4]]
                target = next((x for x in tail if x in MORNING_WORDS | AFTERNOON_WORDS | EVENING_WORDS
                               | {"journee", "semaine", "mois", "apres", "aprem"}), None)
                if target is None:
                    continue
                span_end = i + 1 + tail.index(target) + 1
                if target == "apres":
                    if span_end < n and words[span_end] == "midi":
                        span_end += 1
                        target = "apres-midi"
                    else:
                        continue
                self.named(which, target, i, span_end)
            elif w == "entre" and words[i + 1 : i + 4] == ("midi", "et", "deux"):
                self.add(Mention("window", i, i + 4, window=Window(NOON, time(14, 0)), bound="between"))
            elif b in ("heure", "pause", "moment") and (words[i + 1 : i + 3] == ("du", "dejeuner")
                                                       or words[i + 1 : i + 2] == ("dejeuner",)):
                end = i + 3 if words[i + 1] == "du" else i + 2
                self.add(Mention("window", i, end, window=Window(NOON, time(14, 0)), bound="between"))
            elif w in ("ouvrez", "ouvre") and words[max(0, i - 3) : i] in (("des", "que", "vous"), ("quand", "vous"),
                                                                          ("des", "qu'il"), ("des", "que", "ca")):
                self.add(Mention("window", i - 3 if words[i - 3 : i - 2] == ("des",) else i - 2, i + 1,
                                 window=OPENING, bound="between"))  # "dès que vous ouvrez"
            elif b == "ouverture" and i > 0 and words[i - 1] in ("des", "a", "l'", "de", "l"):
                first = i - 2 if i > 1 and words[i - 1] == "l" and words[i - 2] in ("des", "a") else i - 1
                self.add(Mention("window", first, i + 1, window=OPENING, bound="between"))
            elif w == "premiere" and words[i + 1 : i + 2] == ("heure",):
                self.add(Mention("window", i, i + 2, window=OPENING, bound="between"))
            elif w in ("tot", "tard") and i > 0 and words[i - 1] in ("trop", "tres") and i > 1 \
                    and words[i - 2] == "pas":
                # "pas trop tôt" wants after ten, "pas trop tard" before five (in the morning: noon).
                evening = i + 1 < n and bare[i + 1 : i + 3] and any(x in EVENING_WORDS for x in bare[i + 1 : i + 3])
                window = Window(time(10, 0), None) if w == "tot" else Window(None, time(18 if evening else 17, 0))
                last = i + 1
                if w == "tot" and bare[i + 1 : i + 3] and any(x in MORNING_WORDS for x in bare[i + 1 : i + 3]):
                    last = i + 1 + next(k for k, x in enumerate(bare[i + 1 : i + 3]) if x in MORNING_WORDS) + 1
                    # "pas trop tôt le matin": not early in the morning, not mornings only
                self.add(Mention("window", i - 2, last, window=window, bound="after" if w == "tot" else "before"))
            elif w == "tot" and (any(x in MORNING_WORDS for x in bare[i + 1 : i + 3])
                                 or (i > 0 and bare[i - 1] in MORNING_WORDS)):
                self.add(Mention("window", i, i + 1, window=Window(None, time(10, 0)), bound="before",
                                 period="morning"))
            elif w == "tard" and any(x in AFTERNOON_WORDS | EVENING_WORDS for x in bare[i + 1 : i + 3]):
                self.add(Mention("window", i, i + 1, window=Window(time(16, 0), None), bound="after",
                                 period="afternoon"))

    def named(self, which: str, target: str, first: int, last: int) -> None:
        if target in MORNING_WORDS:
            window = {"fin": Window(time(10, 30), NOON), "debut": Window(None, time(10, 0)),
                      "milieu": Window(time(9, 30), time(11, 30))}[which]
            self.add(Mention("window", first, last, window=window, bound="between", period="morning"))
        elif target in AFTERNOON_WORDS or target == "aprem":
            window = {"fin": Window(time(16, 0), None), "debut": Window(time(14, 0), time(15, 30)),
                      "milieu": Window(time(14, 30), time(16, 30))}[which]
            self.add(Mention("window", first, last, window=window, bound="between", period="afternoon"))
        elif target in EVENING_WORDS:
            window = Window(time(17, 30), None) if which == "debut" else Window(time(17, 0), None)
            self.add(Mention("window", first, last, window=window, bound="after", period="afternoon"))
        elif target == "journee":
            window = {"fin": Window(time(16, 0), None), "debut": Window(None, time(10, 0)),
                      "milieu": Window(time(11, 0), time(15, 0))}[which]
            self.add(Mention("window", first, last, window=window, bound="between",
                             period={"fin": "afternoon", "debut": "morning"}.get(which)))
        elif target == "semaine":
            days = {"fin": (3, 4, 5), "debut": (0, 1), "milieu": (2,)}[which]
            nxt = self.words[last : last + 1]
            if nxt in (("prochaine",), ("suivante",), ("d'apres",)):  # "en début de semaine prochaine"
                monday = self.today + timedelta(days=7 - self.today.weekday())
                self.add(Mention("dates", last, last + 1, from_day=monday, until_day=monday + timedelta(days=6)))
            for d in days:
                self.add(Mention("weekday", first, last, weekday=d))

    def periods(self) -> None:
        words, bare = self.words, self.bare
        for i, b in enumerate(bare):
            if self.taken[i]:
                continue
            if b in MORNING_WORDS:
                self.add(Mention("period", i, i + 1, period="morning"))
            elif b in AFTERNOON_WORDS or (b == "apres" and words[i + 1 : i + 2] == ("midi",)):
                self.add(Mention("period", i, i + 2 if b == "apres" else i + 1, period="afternoon"))
            elif b in EVENING_WORDS:
                self.add(Mention("window", i, i + 1, window=Window(time(17, 0), None), bound="after",
                                 period="afternoon"))

    # -- days
    def days(self) -> None:
        words = self.words
        today = self.today
        n = len(words)
        i = 0
        while i < n:
            if self.taken[i]:
                i += 1
                continue
            w = words[i]
            b = self.bare[i]
            if w == "apres-demain" or (w == "apres" and words[i + 1 : i + 2] == ("demain",)):
                self.add_day(today + timedelta(days=2), i, i + (1 if w == "apres-demain" else 2))
            elif w == "demain":
                self.add_day(today + timedelta(days=1), i, i + 1)
            elif w in ("aujourd'hui", "aujourdhui") or (w == "aujourd" and words[i + 1 : i + 2] == ("hui",)) or (
                w in ("ce", "cet", "cette") and i + 1 < n
                and (self.bare[i + 1] in MORNING_WORDS | EVENING_WORDS or words[i + 1] in ("apres-midi", "aprem")
                     or words[i + 1 : i + 3] == ("apres", "midi"))
            ):
                self.add_day(today, i, i + (2 if w == "aujourd" else 1))
            elif w in WEEKDAYS or w in PLURAL_WEEKDAYS:
                i = self.weekday_at(i)
                continue
            elif w in ("week-end", "weekend") or (w == "week" and words[i + 1 : i + 2] == ("end",)):
                self.add(Mention("weekday", i, i + 1, weekday=5))
            elif (w == "semaine" or b == "semaine") and i > 0 and words[i - 1] == "en":
                for d in range(5):  # "en semaine": Monday to Friday
                    self.add(Mention("weekday", i - 1, i + 1, weekday=d))
            elif w == "semaine" or b == "semaine":
                self.week_at(i)
            elif w in ("celui", "celle") and (words[i + 1 : i + 2] == ("d'apres",)
                                               or words[i + 1 : i + 3] == ("d", "apres")):
                self.one_after(i, i + (2 if words[i + 1] == "d'apres" else 3))
            elif w == "dans":
                self.in_days(i)
            elif w in ("le", "du", "au", "ce", "l'", "jusqu'au") or w.endswith("'au"):
                got = self.date_number(i + 1, i)
                if got is not None:
                    i = got
                    continue
            else:
                got = self.date_number(i, i, need_month=True)
                if got is not None:
                    i = got
                    continue
            i += 1

    def one_after(self, first: int, last: int) -> None:
        """"mardi prochain, enfin non, celui d'après": the day named before, a week later."""
        before = [m for m in self.found if m.kind == "date" and m.day is not None and m.last <= first]
        if before:
            named = max(before, key=lambda m: m.last)
            assert named.day is not None
            self.add_day(named.day + timedelta(days=7), first, last, named.weekday)

    def add_day(self, day: date | None, first: int, last: int, weekday: int | None = None) -> None:
        if day is not None:
            self.add(Mention("date", first, last, day=day, weekday=weekday))

    def weekday_at(self, i: int) -> int:
        words = self.words
        w = words[i]
        plural = w in PLURAL_WEEKDAYS
        weekday = PLURAL_WEEKDAYS[w] if plural else WEEKDAYS.index(w)
        after_article = i > 0 and words[i - 1] in ("ce", "le", "les", "un", "tous", "du") and self.free(i - 1, i)
        first = i - 1 if after_article else i
        j = i + 1
        number = None
        if j < len(words) and words[j] == "le":
            j += 1
        found = number_at(words, j) if j < len(words) else None
        if found is None and j < len(words) and words[j] in ("1er", "premier"):
            found = (1, j + 1)
        if found is not None and 1 <= found[0] <= 31:
            after = words[found[1]] if found[1] < len(words) else ""
            if after not in ("h", "heure", "heures") and clock_token(words[j]) is None:
                number, j = found
        else:
            j = i + 1
        month = None
        if number is not None and j < len(words) and words[j] in MONTHS:
            month, j = MONTHS.index(words[j]) + 1, j + 1
        if number is not None:
            self.add_day(_resolve_day(self.today, number, month), first, j, weekday)
            return j
        nxt = words[j : j + 4]
        if nxt[:1] in (("prochain",), ("suivant",)) or nxt[:2] == ("qui", "vient"):
            last = j + (2 if nxt[:1] == ("qui",) else 1)
            self.add_day(_next_weekday(self.today, weekday), first, last, weekday)
            return last
        if nxt[:3] in (("de", "la", "semaine"),) and words[j + 3 : j + 4] in (("prochaine",), ("suivante",),
                                                                             ("d'apres",)):
            start = self.today + timedelta(days=7 - self.today.weekday())
            self.add_day(start + timedelta(days=weekday), first, j + 4, weekday)
            return j + 4
        coming = _next_weekday(self.today, weekday)
        if nxt[:2] == ("en", "huit") and coming is not None:
            self.add_day(coming + timedelta(days=7), first, j + 2, weekday)
            return j + 2
        # "le lundi", "les lundis", "du lundi", "un lundi": Mondays; "lundi", "ce lundi": the coming one
        generic = plural or (first < i and words[first] in ("le", "les", "tous", "du", "un"))
        if generic:
            self.add(Mention("weekday", first, i + 1, weekday=weekday))
        else:
            day = _next_weekday(self.today, weekday)
            if day is not None:
                self.add(Mention("date", first, i + 1, day=day, weekday=weekday, coming=True))
        return i + 1

    def week_at(self, i: int) -> None:
        words = self.words
        nxt = words[i + 1 : i + 2]
        prev = words[max(0, i - 2) : i]
        monday = self.today + timedelta(days=7 - self.today.weekday())
        if nxt in (("prochaine",), ("suivante",), ("d'apres",)) or prev[-1:] == ("prochaine",):
            first = i - 1 if i > 0 and words[i - 1] in ("la", "cette") else i
            # "la prochaine semaine" said last: the mention ends with the words.
            end = min(i + 2, len(words))
            self.add(Mention("dates", first, end, from_day=monday, until_day=monday + timedelta(days=6)))
        elif i > 0 and words[i - 1] == "cette":
            self.add(Mention("dates", i - 1, i + 1, from_day=self.today,
                             until_day=self.today + timedelta(days=6 - self.today.weekday())))
        elif nxt == ("du",) or (nxt == ("de",) and words[i + 2 : i + 3] and words[i + 2] != "la"):
            found = number_at(words, i + 2)
            if found is not None and 1 <= found[0] <= 31:
                start = _resolve_day(self.today, found[0], None)
                if start is not None:
                    self.add(Mention("dates", i, found[1], from_day=start, until_day=start + timedelta(days=6)))

    def in_days(self, i: int) -> None:
        words = self.words
        found = number_at(words, i + 1)
        if found is None and words[i + 1 : i + 2] in (("un",), ("une",)):
            found = (1, i + 2)
        if found is None or found[1] >= len(words):
            return
        unit = words[found[1]]
        count = found[0]
        if unit.startswith("jour"):
            days = 14 if count == 15 else count
        elif unit.startswith("semaine"):
            days = 7 * count
        else:
            return
        try:
            self.add_day(self.today + timedelta(days=days), i, found[1] + 1)
        except OverflowError:
            return

    def date_number(self, k: int, first: int, need_month: bool = False) -> int | None:
        words = self.words
        if k >= len(words):
            return None
        if words[k] in ("1er", "premier", "1ere"):
            if (words[k + 1 : k + 2] and words[k + 1] not in MONTHS) or k + 1 >= len(words):
                return None  # "le premier" alone is the first slot, not the 1st of the month
            found: tuple[int, int] | None = (1, k + 1)
        else:
            found = number_at(words, k)
            if found is not None and words[k].isdigit() is False and "-" not in words[k] and found[1] == k + 1 \
                    and words[k] in ("un", "une"):
                found = None
        if found is None or not 1 <= found[0] <= 31:
            return None
        j = found[1]
        after = words[j] if j < len(words) else ""
        if after in ("h", "heure", "heures", "minutes", "min", "jours", "semaines", "ans", "euros", "fois") \
                or clock_token(words[k]) is not None or after.isdigit():
            return None  # "c'est le 06 12 34…" is a phone number, not the 6th
        month = None
        if after in MONTHS:
            month, j = MONTHS.index(after) + 1, j + 1
        elif need_month:
            return None
        if month is None and k > 0 and words[k - 1] == "ce":
            return None
        self.add_day(_resolve_day(self.today, found[0], month), first, j)
        return j

    # -- date bounds and wishes
    def day_bounds(self) -> None:
        """"à partir de jeudi", "avant vendredi", "d'ici le 15": a date becomes a bound."""
        words = self.words
        out: list[Mention] = []
        for m in self.found:
            if m.kind != "date" or m.day is None:
                out.append(m)
                continue
            bound, start = self.lead(m.first)
            if words[m.first] in ("jusqu'au", "jusqu'a"):  # "jusqu'au 15 mars"
                bound, start = "before", m.first
            elif start == m.first or bound == "at" or not self.free(start, m.first):
                out.append(m)
                continue
            if bound == "before" and self.away(m.first):
                # "je suis en vacances jusqu'au 15 mars": free from the day after
                out.append(replace(m, kind="dates", first=start, from_day=m.day + timedelta(days=1), day=None))
            elif bound == "after":
                word = words[start]
                day = m.day + timedelta(days=1) if word == "apres" else m.day
                out.append(replace(m, kind="dates", first=start, from_day=day, day=None))
            else:
                strict = words[start] == "avant"
                out.append(replace(m, kind="dates", first=start, day=None,
                                   until_day=m.day - timedelta(days=1) if strict else m.day))
            for k in range(start, m.first):
                self.taken[k] = True
        self.found = out

    def away(self, at: int) -> bool:
        """True when the caller says they are away up to the date at ``at``."""
        clause = self.tokens[at].clause
        before = [self.bare[k] for k in range(max(0, at - 6), at) if self.tokens[k].clause == clause]
        return any(w in AWAY for w in before)

    def wishes(self) -> None:
        words = self.words
        said = frozenset(words)
        for phrase in ASAP_PHRASES:
            at = _find(words, phrase) if phrase[0] in said else -1
            if at >= 0 and self.free(at, at + len(phrase)) and not (at > 0 and words[at - 1] in ("pas", "rien")):
                self.add(Mention("asap", at, at + len(phrase)))
                break
        for phrase in ANY_PHRASES:
            at = _find(words, phrase) if phrase[0] in said else -1
            if at >= 0 and self.free(at, at + len(phrase)):
                self.add(Mention("any", at, at + len(phrase)))
                break


def _next_weekday(today: date, weekday: int) -> date | None:
    ahead = (weekday - today.weekday()) % 7 or 7
    try:
        return today + timedelta(days=ahead)
    except OverflowError:
        return None


# ----------------------------------------------------------------------------- structure


def corrections(mentions: list[Mention], words: tuple[str, ...]) -> tuple[list[Mention], bool]:
    """Drop each mention the caller corrected: same kind, a correction marker between."""
    def family(m: Mention) -> str:
        if m.kind in ("date", "weekday"):
            return "day"
        if m.kind == "window" and m.period is None:
            return "time"
        if m.kind == "window":
            return "period"  # "le matin, enfin plutôt en début d'après-midi"
        return m.kind

    ordered = sorted(mentions, key=lambda m: m.first)
    dropped: set[int] = set()
    for a_index, a in enumerate(ordered):
        for b in ordered[a_index + 1 :]:
            if family(b) != family(a):
                continue
            between = words[a.last : b.first]
            strong = any(w in STRONG_CORRECTIONS for w in between) or any(
                _find(between, p) >= 0 for p in CORRECTION_PHRASES)
            if 0 < len(between) <= (15 if strong else 7) and is_correction(between) \
                    and ("mais" not in between or strong) and _find(between, ("plutot", "que")) < 0 \
                    and "pas" not in words[max(0, a.first - 2) : a.first]:
                if not _repeats(a, b):
                    dropped.add(id(a))
                elif strong:  # "vendredi ou samedi… non, samedi seulement": the other alternative goes
                    dropped.update(id(c) for c in ordered[:a_index] if family(c) == family(a)
                                   and "ou" in words[c.last : a.first] and a.first - c.last <= 3)
            break
    kept = [m for m in mentions if id(m) not in dropped]
    return kept, bool(dropped)


def retractions(mentions: list[Mention], words: tuple[str, ...]) -> tuple[list[Mention], bool]:
    """"Aujourd'hui… enfin, aujourd'hui c'est trop juste": a value said again to be turned
    down takes the first saying back."""
    ordered = sorted(mentions, key=lambda m: m.first)
    dropped = {id(a) for a, b in itertools.pairwise(ordered)
               if _repeats(a, b) and b.negated and not a.negated and is_correction(words[a.last : b.first])}
    return [m for m in mentions if id(m) not in dropped], bool(dropped)


def _repeats(a: Mention, b: Mention) -> bool:
    """"Mercredi 16… enfin je crois que c'est un mercredi": said again, not taken back."""
    if a.kind == "date" and b.kind == "weekday":
        return a.weekday is not None and a.weekday == b.weekday
    return a.kind == b.kind and a.day is not None and a.day == b.day


def is_correction(between: tuple[str, ...]) -> bool:
    """True when these words, said between two values, take the first one back."""
    if any(w in CORRECTION_WORDS for w in between):
        return True
    return any(_find(between, p) >= 0 for p in CORRECTION_PHRASES)


def negations(mentions: list[Mention], words: tuple[str, ...], tokens: tuple[Token, ...]) -> list[Mention]:
    """Mark every mention a negation or an unavailability reaches."""
    covered = sorted((m for m in mentions), key=lambda m: m.first)
    inside = [False] * len(words)
    for m in covered:
        for k in range(m.first, m.last):
            inside[k] = True
    hits = _unavailabilities(words)
    out: list[Mention] = []
    for m in covered:
        if words[m.last : m.last + 2] in (("par", "contre"), ("en", "revanche")):
            out.append(m)  # "pas demain, je peux pas; lundi par contre oui"
            continue
        negator = _pre_negated(m, words, inside, tokens)
        out.append(replace(m, negated=bool(negator) or _unavailable(m, words, tokens, inside, hits),
                           exception=negator in EXCEPTIONS))
    return out


def _unavailabilities(words: tuple[str, ...]) -> list[tuple[int, tuple[str, ...]]]:
    """Where each unavailability phrase stands in the turn, in order."""
    hits: list[tuple[int, tuple[str, ...]]] = []
    present = set(words)
    for phrase in UNAVAILABLE:
        if phrase[0] not in present:
            continue
        at = _find(words, phrase)
        while at >= 0:
            hits.append((at, phrase))
            at = _find(words, phrase, at + 1)
    return sorted(hits)


def practice_talk(mentions: list[Mention], words: tuple[str, ...], tokens: tuple[Token, ...]) -> list[Mention]:
    """Drop what the caller says of the practice's hours ("vous êtes fermés le mercredi
    après-midi, alors mercredi matin": only Wednesday morning is a wish)."""
    spans: list[tuple[int, int]] = []
    for phrase in PRACTICE_TALK:
        at = _find(words, phrase)
        while at >= 0:
            end = at + len(phrase)
            while end < len(words) and tokens[end].clause == tokens[at].clause and words[end] not in CONNECTORS:
                end += 1
            spans.append((at, end))
            at = _find(words, phrase, at + 1)
    if not spans:
        return mentions
    return [m for m in mentions if not any(lo <= m.first < hi for lo, hi in spans)]


def _pre_negated(m: Mention, words: tuple[str, ...], inside: list[bool], tokens: tuple[Token, ...]) -> str:
    """The negation word before the mention that reaches it ("" when none)."""
    k = m.first - 1
    clause = tokens[m.first].clause
    while k >= 0 and (tokens[k].clause == clause or words[k] in ("ni", "et", "ou")):
        w = words[k]
        if inside[k]:
            if w in PRE_NEGATORS:
                return ""  # the negation belongs to another mention ("pas trop tôt le matin")
            k -= 1
            continue
        if w in ("que", "qu'"):  # "plutôt que vendredi" turns it down; "pas … que le samedi" is "only"
            return "plutot" if k > 0 and words[k - 1] == "plutot" else ""
        if w == "part" and k > 0 and words[k - 1] == "a":
            return "part"  # "à part le lundi"
        if w in PRE_NEGATORS:
            if w == "pas" and k > 0 and words[k - 1] in ("travaille", "bosse", "taffe"):
                return ""  # "je ne travaille pas le mercredi": free then
            return "" if w == "pas" and k > 0 and words[k - 1] == "ou" else w  # "ou pas"
        if w in NEG_GLUE:
            k -= 1
            continue
        return ""
    return ""


_SUBJECT = frozenset({"c'est", "c", "est", "ca", "ce", "n'est", "me", "m'", "je", "j'"})


def _unavailable(m: Mention, words: tuple[str, ...], tokens: tuple[Token, ...], inside: list[bool],
                 hits: list[tuple[int, tuple[str, ...]]]) -> bool:
    """True when the mention's clause says the caller cannot come then (not across another
    mention, unless listed with it: "lundi et mardi je peux pas")."""
    clause = tokens[m.first].clause
    lo = m.first
    while lo > 0 and tokens[lo - 1].clause == clause:
        lo -= 1
    hi = m.last
    while hi < len(tokens) and tokens[hi].clause == clause:
        hi += 1
    for at, phrase in hits:
        if not lo <= at <= hi - len(phrase):
            continue
        if any(inside[at : at + len(phrase)]) or _denied(words, at, phrase):
            continue  # "pas trop tôt" is a window; "je ne travaille pas le mercredi" frees it
        if at >= m.last:
            gap = words[m.last : at]
            listed = all(w in NEG_GLUE or w in WEEKDAYS or w in _SUBJECT or w in PLURAL_WEEKDAYS
                         for w in gap)  # "lundi et mardi c'est…"
            crossed = any(inside[m.last : at])
            if not any(w in ("mais", "donc", "alors", "sinon", "plutot") or w in BECAUSE for w in gap) and (
                listed or not (crossed or any(w in ("et", "ou") for w in gap))
            ):
                return True
        elif at + len(phrase) <= m.first:
            end = at + len(phrase)
            gap = words[end : m.first]
            stopped = any(w in ("mais", "donc", "alors", "sinon", "plutot", "prefere", "parce", "car", "que", "qu'")
                          for w in gap)
            crossed = any(inside[end : m.first]) and not _listed_before(words, inside, end, m.first)
            if len(gap) <= 6 and not stopped and not crossed:
                return True
    return False


def _denied(words: tuple[str, ...], at: int, phrase: tuple[str, ...]) -> bool:
    """"je ne travaille pas", "je bosse pas": an unavailability turned down is availability."""
    if phrase not in (("travaille",), ("bosse",)):
        return False
    return words[at + 1 : at + 2] in (("pas",), ("plus",)) or (at > 0 and words[at - 1] in ("ne", "n'"))


def _listed_before(words: tuple[str, ...], inside: list[bool], lo: int, hi: int) -> bool:
    """"je ne peux ni demain ni vendredi": mentions listed after the unavailability."""
    return all(inside[k] or words[k] in NEG_GLUE or words[k] in ("ni", "et", "ou") for k in range(lo, hi))


# ----------------------------------------------------------------------------- assembly


@dataclass(frozen=True, slots=True)
class When:
    """The preference read from a turn, the word range it came from, and whether a correction
    was applied."""

    preference: Preference | None
    first: int
    last: int
    corrected: bool
    mentions: tuple[Mention, ...] = ()


def read_when(tokens: tuple[Token, ...], today: date, assembled: bool = True) -> When | None:
    """Every constraint on when the caller can come, or None when they said nothing of it
    (``assembled``: also build the preference, which the extraction pass builds itself)."""
    reader = _Reader(tokens, today)
    reader.windows()
    reader.named_windows()
    reader.periods()
    reader.days()
    reader.day_bounds()
    reader.wishes()
    if not reader.found:
        return None
    words = reader.words
    found = practice_talk(reader.found, words, tokens)
    kept, corrected = corrections(found, words)
    marked = negations(kept, words, tokens)
    marked, retracted = retractions(marked, words)
    corrected |= retracted
    if not marked:
        return None
    first = min(m.first for m in marked)
    last = max(m.last for m in marked)
    return When(assemble(marked) if assembled else None, first, last, corrected, tuple(marked))


def assemble(mentions: list[Mention]) -> Preference | None:
    """The :class:`Preference` these (corrected, negation-marked) mentions make."""
    days: list[date] = []
    weekdays: list[int] = []
    not_days: list[date] = []
    not_weekdays: list[int] = []
    windows: list[Window] = []
    not_windows: list[Window] = []
    own: list[Mention] = []
    periods: list[str] = []
    not_periods: list[str] = []
    from_day: date | None = None
    until_day: date | None = None
    asap = anything = False
    ordered = sorted(mentions, key=lambda m: m.first)
    pairs = [(a, b) for a, b in itertools.pairwise(ordered)
             if a.negated and b.negated and a.kind in ("date", "weekday") and b.kind == "period" and b.first == a.last]
    day_bound = {id(b) for _, b in pairs}
    wanted = {m.day for m in mentions if m.kind == "date" and not m.negated}
    # "pas dispo jeudi matin mais jeudi aprem oui": Thursday stays, its afternoon is the wish
    kept_days = {id(a) for a, _ in pairs if a.kind == "date" and a.day in wanted}
    for m in mentions:
        if id(m) in day_bound or id(m) in kept_days:
            continue  # "sauf le mercredi après-midi": Wednesday is out, not every afternoon
        if m.kind == "date" and m.day is not None:
            # "pas lundi", "ni vendredi": that day (the coming one); "pas le lundi": Mondays (a weekday);
            # "(n'importe quand) sauf mardi": an exception to anything, Tuesdays
            if m.negated and m.coming and m.exception and m.weekday is not None:
                not_weekdays.append(m.weekday)
            else:
                (not_days if m.negated else days).append(m.day)
        elif m.kind == "weekday" and m.weekday is not None:
            (not_weekdays if m.negated else weekdays).append(m.weekday)
        elif m.kind == "period" and m.period:
            (not_periods if m.negated else periods).append(m.period)
        elif m.kind == "window" and m.window is not None:
            if m.own is not None:
                own.append(m)
                continue
            if m.negated:
                flipped = _flip(m)
                if flipped is not None:
                    windows.append(flipped)
                else:
                    not_windows.append(m.window)
                    if m.period:
                        not_periods.append(m.period)
            else:
                windows.append(m.window)
                if m.period:
                    periods.append(m.period)
        elif m.kind == "dates" and not m.negated:
            from_day = m.from_day or from_day
            until_day = m.until_day or until_day
        elif m.kind == "asap":
            asap = True
        elif m.kind == "any":
            anything = True
    if not windows and not periods and own:  # "j'ai un rendez-vous à 10h, donc l'après-midi": the wish wins
        windows.extend(w for w in (_free_from(m) for m in own) if w is not None)
    for p in not_periods:
        not_windows.append(MORNING if p == "morning" else AFTERNOON)
    period = _period(periods, not_periods)
    windows = _merge(windows)
    after, before = _bounds(windows)
    day = days[0] if len(set(days)) == 1 else None
    pref = Preference(
        period=period,
        day=day,
        after=after,
        before=before,
        days=tuple(sorted(set(days))),
        weekdays=tuple(sorted(set(weekdays) - set(not_weekdays))),
        not_days=tuple(sorted(set(not_days))),
        not_weekdays=tuple(sorted(set(not_weekdays))),
        windows=tuple(windows),
        not_windows=tuple(dict.fromkeys(not_windows)),
        from_day=from_day,
        until_day=until_day,
        asap=asap,
    )
    if pref == Preference() and not (anything or asap):
        return None
    return pref


def _flip(m: Mention) -> Window | None:
    """A negated bound turned around: "pas avant 10h" is after 10:00."""
    assert m.window is not None
    if m.bound == "before" and m.window.end is not None and m.window.start is None:
        return Window(m.window.end, None)
    if m.bound == "after" and m.window.start is not None and m.window.end is None:
        return Window(None, m.window.start)
    return None


def _free_from(m: Mention) -> Window | None:
    """What a time of the caller's own schedule leaves free."""
    assert m.window is not None
    w = m.window
    if m.own == "free":  # "je finis à 17h", "je travaille jusqu'à 17h30": after it
        moment = w.end if m.bound == "before" else w.start
        return Window(moment, None) if moment is not None else None
    if m.bound == "after" and w.start is not None:  # "je travaille à partir de 14h": before it
        return Window(None, w.start)
    if m.bound == "at" and w.start is not None:  # "je commence à 9h": before it
        return Window(None, w.start)
    return None


def _period(periods: list[str], not_periods: list[str]) -> Literal["morning", "afternoon", "any"]:
    wanted = set(periods)
    if len(wanted) == 1:
        return "morning" if "morning" in wanted else "afternoon"
    if wanted:
        return "morning" if periods[-1] == "morning" else "afternoon"
    excluded = set(not_periods)
    if excluded == {"morning"}:
        return "afternoon"
    if excluded == {"afternoon"}:
        return "morning"
    return "any"


def _merge(windows: list[Window]) -> list[Window]:
    """Wanted windows: an open bound and a closed one in the same turn make one window
    ("après 9h et avant 11h"); others stay alternatives."""
    out: list[Window] = []
    for w in dict.fromkeys(windows):
        if out and (w.start is None) != (out[-1].start is None) and (w.end is None) != (out[-1].end is None):
            prev = out[-1]
            start = w.start if w.start is not None else prev.start
            end = w.end if w.end is not None else prev.end
            if start is not None and end is not None and start < end:
                out[-1] = Window(start, end)
                continue
        if out and out[-1].start is not None and out[-1].end is None and w.start is not None and w.end is not None \
                and w.start >= out[-1].start:
            out[-1] = w  # "l'après-midi … vers 16h": the narrower one
            continue
        if out and out[-1].start is not None and out[-1].end is not None and w.start is not None \
                and w.end is not None and out[-1].start < w.start < out[-1].end < w.end:
            out[-1] = Window(out[-1].start, w.end)  # "vers 16h, 16h30": either, one window
            continue
        if out and w.start is not None and w.end is None and any(
                o.start is not None and o.end is not None and o.start >= w.start for o in out):
            continue  # "à vingt heures le soir": the hour said first, the evening around it
        out.append(w)
    return out


def _bounds(windows: list[Window]) -> tuple[time | None, time | None]:
    """The first-wave after/before of the wanted windows (relative windows have none)."""
    real = [w for w in windows if w != OPENING]
    if not real:
        return None, None
    w = real[-1]
    after, before = w.start, w.end
    if after is not None and before is not None and before <= after:
        before = None
    return after, before
