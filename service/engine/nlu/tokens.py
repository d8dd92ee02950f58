"""A caller turn cut into words once, each with its place in the text as received.

The folded form (lower case, no accents, apostrophes unified) is what the parsers compare;
``start``/``end`` point into the raw text so that every field found can say where it came
from. Folding is done character by character, so offsets survive it. Number words are read
here too ("quatorze", "vingt-deux", "soixante et onze", "quatre-vingt-dix"): ``text2num``
reads a whole run of number words as one number ("quatorze seize" → 1416 in some
settings) and loses the offsets, while a time, a date or a phone group is one number of
at most two digits, which a small table reads exactly.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from service.engine.nlu.memo import caller_memo

MAX_CHARS = 400  # same bound as ``normalize``: longer turns are cut

_APOSTROPHES = {"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"}
# Ligatures that accent folding does not take apart: "sœur", "cœur", "Lætitia".
LIGATURES = {"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"}
_KEEP = re.compile(r"[a-z0-9'\-+]")
_WORD = re.compile(r"[^ ]+")
# Punctuation that closes a clause: a negation or a correction does not reach across it.
_CLAUSE_END = frozenset(".,;:!?()")
_PUNCTUATION = re.compile("[" + re.escape("".join(sorted(_CLAUSE_END))) + "]")
# Punctuation that closes a sentence: the next word is capitalised whatever it is.
_SENTENCE_END = frozenset(".!?:…")

UNITS = {"zero": 0, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7,
         "huit": 8, "neuf": 9}
TEENS = {"dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16}
TENS = {"vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60, "septante": 70,
        "huitante": 80, "octante": 80, "nonante": 90}
# Number words speech-to-text writes as their homophones; read as numbers only before a
# unit or "heures" ("le vin trois", "à vin heures"), never alone ("un verre de vin").
HOMOPHONES = {"vin": "vingt", "vint": "vingt", "vins": "vingt"}
HOUR_WORDS = frozenset({"h", "heure", "heures"})
# The words a number may start with (``number_at``), besides digits and hyphenated compounds.
NUMBER_WORDS = frozenset(UNITS) | frozenset(TEENS) | frozenset(TENS) | frozenset(HOMOPHONES)


@dataclass(frozen=True, slots=True)
class Token:
    """One word: its folded form, its raw form and its offsets ``[start, end)`` in the text."""

    word: str
    raw: str
    start: int
    end: int
    clause: int  # index of the clause (punctuation-delimited) the word belongs to
    opens: bool = False  # the first word of a sentence (of the turn, or after ". ! ? : …")

    @property
    def bare(self) -> str:
        """The word without its elided article or pronoun ("l'apres-midi" → "apres-midi")."""
        head, sep, tail = self.word.partition("'")
        return tail if sep and tail and head in _ELIDED else self.word


_ELIDED = frozenset({"l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu"})


@lru_cache(maxsize=2048)
def _fold_char(ch: str) -> str:
    ch = _APOSTROPHES.get(ch, ch)
    if ch in LIGATURES:
        return LIGATURES[ch]
    low = unicodedata.normalize("NFD", ch.lower())
    return "".join(c for c in low if unicodedata.category(c) != "Mn")


@lru_cache(maxsize=4096)
def _piece(ch: str) -> str:
    """What one character becomes in the folded text: its folded form, each character of
    it kept when it can be part of a word, else a space."""
    return "".join(c if _KEEP.match(c) else " " for c in _fold_char(ch))


def _between_digits(text: str, i: int) -> bool:
    """True when the character at ``i`` stands between two digits ("14:30", "9.15")."""
    return 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()


@caller_memo(maxsize=4096)
def tokenize(text: str) -> tuple[Token, ...]:
    """The words of ``text`` (cut at ``MAX_CHARS``), folded, with raw offsets and clause index."""
    if not isinstance(text, str):
        return ()
    text = text[:MAX_CHARS]
    pieces = list(map(_piece, text))  # one a character: folding may widen one ("œ") or drop one
    ends: list[int] = []  # where each clause ends
    for m in _PUNCTUATION.finditer(text):
        i = m.start()
        if text[i] in ".:" and _between_digits(text, i):
            if text[i] == ":":
                pieces[i] = ":"  # "14:30" is one word
        else:
            ends.append(i)
    flat = "".join(pieces)
    # Where each character's piece starts in ``flat`` (only needed when some piece is not one character).
    starts = None if len(flat) == len(text) and "" not in pieces else list(accumulate(map(len, pieces), initial=0))

    def origin(k: int) -> int:
        """The character of ``text`` that position ``k`` of ``flat`` comes from."""
        return k if starts is None else bisect_right(starts, k) - 1

    out: list[Token] = []
    for m in _WORD.finditer(flat):
        s, e = m.start(), m.end()
        word = m.group()
        # Quotes and dashes around a word are punctuation ("'oui'", "- non").
        while word and word[0] in "'-":
            word, s = word[1:], s + 1
        while word and word[-1] in "'-":
            word, e = word[:-1], e - 1
        if not word:
            continue
        start, end = origin(s), origin(e - 1) + 1
        gap = text[out[-1].end : start] if out else ""
        opens = not out or not _SENTENCE_END.isdisjoint(gap)
        out.append(Token(word, text[start:end], start, end, bisect_right(ends, start), opens))
    return tuple(out)


_HOURS_TOKEN = re.compile(r"^(\d{1,2})(?:h|:)(\d{2})?$")


def number_at(words: tuple[str, ...], i: int) -> tuple[int, int] | None:
    """A number from 0 to 99 starting at word ``i`` (digits or French words, hyphenated or
    not) and the index after it; None when word ``i`` is not a number."""
    if i >= len(words):
        return None
    if words[i] not in NUMBER_WORDS and "-" not in words[i] and not words[i].isdigit():
        return None  # most words: no number word, no compound, no digits
    parts = words[i].split("-")
    if len(parts) > 1 and all(p in UNITS or p in TEENS or p in TENS or p == "et" for p in parts if p):
        value = _compound([p for p in parts if p])
        return None if value is None else (value, i + 1)
    word = words[i]
    if word.isdigit():
        return (int(word), i + 1) if len(word) <= 2 else None
    if word in HOMOPHONES and i + 1 < len(words) and (words[i + 1] in UNITS or words[i + 1] in HOUR_WORDS
                                                      or words[i + 1] == "et"):
        word = HOMOPHONES[word]  # "le vin trois", "à vin heures": speech-to-text's "vingt"
    if word == "quatre" and i + 1 < len(words) and words[i + 1] in ("vingt", "vingts"):
        return _after_tens(80, words, i + 2)
    if word in TENS:
        return _after_tens(TENS[word], words, i + 1)
    if word == "dix" and i + 1 < len(words) and words[i + 1] in ("sept", "huit", "neuf"):
        return 10 + UNITS[words[i + 1]], i + 2
    if word in TEENS:
        return TEENS[word], i + 1
    if word in UNITS:
        return UNITS[word], i + 1
    return None


def _after_tens(tens: int, words: tuple[str, ...], j: int) -> tuple[int, int]:
    """The number that starts with ``tens`` (already read up to word ``j``)."""
    nxt = words[j] if j < len(words) else ""
    if nxt == "et" and j + 1 < len(words) and words[j + 1] in ("un", "une", "onze"):
        return tens + (1 if words[j + 1] != "onze" else 11), j + 2
    if tens in (60, 80) and nxt == "dix" and j + 1 < len(words) and words[j + 1] in ("sept", "huit", "neuf"):
        return tens + 10 + UNITS[words[j + 1]], j + 2
    if tens in (60, 80) and nxt in TEENS:
        return tens + TEENS[nxt], j + 1
    if nxt in UNITS and nxt not in ("zero", "un", "une"):
        return tens + UNITS[nxt], j + 1
    return tens, j


def _compound(parts: list[str]) -> int | None:
    """"vingt-deux", "soixante-dix-huit", "quatre-vingt-onze", "trente-et-un", "dix-sept"."""
    total = 0
    k = 0
    if parts[:2] in (["quatre", "vingt"], ["quatre", "vingts"]):
        total, k = 80, 2
    elif parts[0] in TENS:
        total, k = TENS[parts[0]], 1
    rest = [p for p in parts[k:] if p != "et"]
    if not rest:
        return total if k else None
    if rest[0] == "dix" and len(rest) == 2 and rest[1] in ("sept", "huit", "neuf"):
        value = 10 + UNITS[rest[1]]
    elif len(rest) == 1 and rest[0] in TEENS:
        value = TEENS[rest[0]]
    elif len(rest) == 1 and rest[0] in UNITS:
        value = UNITS[rest[0]]
    else:
        return None
    if k and total not in (60, 80) and value >= 10:
        return None
    result = total + value
    return result if result < 100 else None


def clock_token(word: str) -> tuple[int, int] | None:
    """"14h30", "14h", "9:15" as (hour, minute); None otherwise."""
    m = _HOURS_TOKEN.match(word)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2) or 0)
