"""Speech-to-text output made comparable: lower case, no accents, numbers as digits.

``text2num`` turns French number words into digits (it knows "soixante-dix-huit",
"quatre vingt dix", "septante"); ``unicodedata`` folds accents. What is written by hand
here is only the glue: apostrophes, punctuation, filler words, and a cache so that the
several questions the engine asks about one utterance normalise it once.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from text_to_num import alpha2digit

MAX_CHARS = 400  # a caller turn longer than this is not a booking answer; keep parsing bounded

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"})
_NON_WORD = re.compile(r"[^a-z0-9'\-+ ]+")
_SPACES = re.compile(r"\s+")
_ZERO = re.compile(r"\bzero\b")

FILLER_WORDS = frozenset(
    {
        "euh", "euhh", "euhhh", "heu", "heuu", "hum", "humm", "hmm", "hm", "mmh", "mmm", "mh", "bah",
        "ben", "beh", "allo", "alo", "attendez", "attends", "attend", "pardon", "hein", "quoi",
        "comment", "silence", "bruit", "inaudible", "noise", "instant", "seconde", "moment",
        "excusez", "excuse", "moi", "un", "une", "petit", "petite", "s'il", "vous", "plait",
        "plais", "oh", "ah", "eh", "ha", "alors", "bon", "voila", "repetez", "repeter", "pouvez",
        "dites", "oups", "la", "je", "reflechis", "laissez", "me", "ne", "quittez", "pas",
    }
)
# Fillers that may surround content without being content themselves.
SOFT_FILLERS = frozenset({"euh", "euhh", "euhhh", "heu", "heuu", "hum", "humm", "hmm", "hm", "mmh", "mmm", "mh", "bah", "ben", "beh"})


def fold(text: str) -> str:
    """Lower case without accents, apostrophes unified, other punctuation turned to spaces."""
    text = unicodedata.normalize("NFD", text.lower().translate(_APOSTROPHES))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


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


@lru_cache(maxsize=4096)
def analyse(text: str) -> Utterance:
    """Normalise once; the engine asks several questions about the same utterance."""
    raw = clean(text)
    lowered = raw.lower().translate(_APOSTROPHES)
    folded = fold(lowered)
    # text2num needs the accented "zéro" and hyphen-free compounds read as numbers.
    spoken = _ZERO.sub("zéro", lowered.replace("-", " "))
    try:
        converted = alpha2digit(spoken, "fr", threshold=0)
    except Exception:  # noqa: BLE001 - a third-party parser must never break a turn
        converted = spoken
    return Utterance(raw=raw.strip(), words=tuple(folded.split()), digits=tuple(fold(converted).split()))


def has_phrase(words: tuple[str, ...], phrase: tuple[str, ...]) -> int:
    """Index where ``phrase`` starts in ``words``, or -1."""
    n = len(phrase)
    for i in range(len(words) - n + 1):
        if words[i : i + n] == phrase:
            return i
    return -1


NEGATIONS = frozenset({"pas", "plus", "jamais"})


def negated(words: tuple[str, ...], index: int, window: int = 3) -> bool:
    """True when a negation word stands within ``window`` words before ``index``."""
    return any(w in NEGATIONS for w in words[max(0, index - window) : index])
