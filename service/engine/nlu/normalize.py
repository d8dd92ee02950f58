"""Speech-to-text output made comparable: lower case, no accents, numbers as digits.

``text2num`` turns French number words into digits (it knows "soixante-dix-huit",
"quatre vingt dix", "septante"); ``unicodedata`` folds accents. What is written by hand
here is only the glue: apostrophes, elisions ("l'adresse" → "adresse"), punctuation, filler
words, the scope of a negation, and a cache so that the several questions the engine asks
about one utterance normalise it once. One text2num quirk is worked around: it keeps
"neuf" as the adjective ("new") after "le matin", so "le matin vers neuf heures" would lose
its hour; "neuf" right before "heure(s)" is written as a digit first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from text_to_num import alpha2digit

from service.engine.nlu.memo import caller_memo

MAX_CHARS = 400  # a caller turn longer than this is not a booking answer; keep parsing bounded

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_APOSTROPHES = {"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"}
_LIGATURES = {"œ": "oe", "æ": "ae", "ß": "ss"}
_NON_WORD = re.compile(r"[^a-z0-9'\-+ ]+")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ZERO = re.compile(r"\bzero\b")
_NEUF = re.compile(r"\bneuf(?=\s+(?:h|heures?)\b)")
# Elided articles and pronouns glued to the next word: "l'adresse", "j'annule", "qu'on".
_ELISION = re.compile(r"^(?:l|d|j|m|n|s|t|c|qu)'(?=.)")

FILLER_WORDS = frozenset(
    {
        "euh", "euhh", "euhhh", "heu", "heuu", "hum", "humm", "hmm", "hm", "mmh", "mmm", "mh", "bah",
        "ben", "beh", "allo", "alo", "attendez", "attends", "attend", "pardon", "hein", "quoi",
        "comment", "silence", "bruit", "inaudible", "noise", "instant", "seconde", "moment",
        "excusez", "excuse", "moi", "un", "une", "petit", "petite", "s'il", "vous", "plait",
        "plais", "oh", "ah", "eh", "ha", "alors", "bon", "voila", "repetez", "repeter", "pouvez",
        "dites", "oups", "la", "je", "reflechis", "laissez", "me", "ne", "quittez", "pas",
        "secondes", "minute", "minutes", "entendez", "m'entendez", "entends", "m'entends", "entendu", "compris",
        "n'ai", "ai", "coupe", "ca", "mal", "regarde", "cherche", "verifie", "agenda", "calendrier", "mon", "ma",
        "mes", "pardonnez", "redire", "recommencer", "prends", "stylo", "crayon", "papier", "noter", "ecoute",
        "bien",
    }
)
# Fillers that may surround content without being content themselves.
SOFT_FILLERS = frozenset({"euh", "euhh", "euhhh", "heu", "heuu", "hum", "humm", "hmm", "hm", "mmh", "mmm", "mh", "bah",
                          "ben", "beh"})


def fold(text: str) -> str:
    """Lower case without accents, apostrophes unified, other punctuation turned to spaces."""
    text = unicodedata.normalize("NFD", _replaced(_replaced(text.lower(), _APOSTROPHES), _LIGATURES))
    if not text.isascii():  # ASCII has no combining mark to drop
        text = _NON_ASCII.sub(_unmarked, text)
    return " ".join(_NON_WORD.sub(" ", text).split())  # only spaces are left between the words


def _replaced(text: str, table: dict[str, str]) -> str:
    """``text`` with each character of ``table`` replaced: ``str.translate``'s result (no
    replacement holds a character of the table), without its per-character lookups."""
    for old, new in table.items():
        text = text.replace(old, new)
    return text


def _unmarked(found: re.Match[str]) -> str:
    """A character, or nothing for a combining mark (an accent NFD took apart)."""
    ch = found.group()
    return "" if unicodedata.category(ch) == "Mn" else ch


def clean(text: object) -> str:
    """Any value as a bounded, printable string (never raises)."""
    if not isinstance(text, str):
        return ""
    return _CONTROL.sub(" ", text[:MAX_CHARS])


@dataclass(frozen=True, slots=True)
class Utterance:
    """One caller turn in the forms the parsers need."""

    raw: str  # cleaned original, case kept (names)
    words: tuple[str, ...]  # folded words, number words kept as words
    digits: tuple[str, ...]  # folded words with number words turned into digits
    bare: tuple[str, ...]  # ``words`` one for one, elided article or pronoun dropped ("l'adresse" → "adresse")

    @property
    def text(self) -> str:
        """The folded text, words separated by one space."""
        return " ".join(self.words)

    @property
    def digit_text(self) -> str:
        """The folded text with numbers as digits."""
        return " ".join(self.digits)

    @property
    def content(self) -> tuple[str, ...]:
        """Folded words without soft fillers (euh, hum…)."""
        return tuple(w for w in self.words if w not in SOFT_FILLERS)


@caller_memo(maxsize=4096)
def analyse(text: str) -> Utterance:
    """Normalise once; the engine asks several questions about the same utterance."""
    raw = clean(text)
    lowered = _replaced(raw.lower(), _APOSTROPHES)
    folded = fold(lowered)
    # text2num needs the accented "zéro" and hyphen-free compounds read as numbers.
    spoken = lowered.replace("-", " ")
    if "zero" in spoken:
        spoken = _ZERO.sub("zéro", spoken)
    if "neuf" in spoken:
        spoken = _NEUF.sub("9", spoken)
    try:
        converted = alpha2digit(spoken, "fr", threshold=0)
    except Exception:  # noqa: BLE001 - a third-party parser must never break a turn
        converted = spoken
    words = tuple(folded.split())
    return Utterance(
        raw=raw.strip(), words=words, digits=tuple(fold(converted).split()), bare=tuple(unelide(w) for w in words)
    )


def unelide(word: str) -> str:
    """The word without its elided article or pronoun: "l'annuler" → "annuler", "qu'on" → "on"."""
    return _ELISION.sub("", word) if "'" in word else word


def has_phrase(words: tuple[str, ...], phrase: tuple[str, ...]) -> int:
    """Index where ``phrase`` starts in ``words``, or -1."""
    if not phrase:
        return -1
    first, n = phrase[0], len(phrase)
    if first not in words:  # the usual case, told without raising ValueError
        return -1
    start = 0
    while True:
        try:  # tuple.index scans in C: most phrases' first word is absent
            i = words.index(first, start)
        except ValueError:
            return -1
        if n == 1 or words[i : i + n] == phrase:
            return i
        start = i + 1


class Phrases:
    """Phrases indexed by their first word, so a caller's few words are matched against the
    handful of phrases that can start with them instead of every phrase in turn."""

    __slots__ = ("by_first", "firsts")

    def __init__(self, phrases: tuple[tuple[str, ...], ...]) -> None:
        by_first: dict[str, list[tuple[str, ...]]] = {}
        for phrase in phrases:
            if phrase:
                by_first.setdefault(phrase[0], []).append(phrase)
        self.by_first = {k: tuple(v) for k, v in by_first.items()}
        self.firsts = frozenset(self.by_first)

    def positions(self, words: tuple[str, ...]) -> list[int]:
        """Where each phrase found in ``words`` first starts (one entry per phrase found)."""
        out: list[int] = []
        for first in self.firsts.intersection(words):
            for phrase in self.by_first[first]:
                at = has_phrase(words, phrase)
                if at >= 0:
                    out.append(at)
        return out

    def found(self, words: tuple[str, ...]) -> bool:
        """True when any of the phrases appears in ``words``."""
        return any(
            has_phrase(words, phrase) >= 0
            for first in self.firsts.intersection(words)
            for phrase in self.by_first[first]
        )


NEGATIONS = frozenset({"pas", "plus", "jamais"})
# Words a negation reaches across: "pas l'annuler", "pas de rendez-vous", "pas prendre de
# rendez-vous", "pas parler à quelqu'un" (articles, pronouns, prepositions and a few neutral
# verbs). Any other word closes its scope: in "je viendrai pas, vous pouvez l'annuler",
# "pouvez" starts a new clause; in "non, pas annuler, déplacer", "annuler" takes the negation.
NEGATION_SPAN = frozenset(
    {"le", "la", "les", "l'", "de", "d'", "du", "des", "un", "une", "a", "au", "aux", "en", "y", "me", "te", "se",
     "lui", "leur", "mon", "ma", "mes", "ton", "ta", "votre", "vos", "ce", "cet", "cette", "ces", "pour", "avec",
     "euh", "heu", "hum", "ben", "bah", "prendre", "parler", "avoir", "faire", "voir", "passer", "venir", "aller",
     "vouloir", "besoin", "encore", "vraiment", "tout"}
)


def negated(words: tuple[str, ...], index: int, window: int = 3) -> bool:
    """True when a negation word stands within ``window`` words before ``index``, with only
    articles, pronouns or prepositions between them."""
    for at in range(index - 1, max(-1, index - window - 1), -1):
        if words[at] in NEGATIONS:
            return True
        if words[at] not in NEGATION_SPAN:
            return False
    return False
