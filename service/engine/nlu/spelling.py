"""Names spelled letter by letter: "L E F E B V R E", "H A deux N E Q U I N", "N comme
Nicolas, O, W comme William", "A, I tréma, T, tiret, A H M E D", "Q U E accent aigu M E N
E R", "D apostrophe A N G E L O", "D-U-P-O-N-T".

A spelled run is read on the tokens: single letters (commas between them are allowed,
callers pause), letter names ("ache", "zed"), "deux"/"double" before a letter, "X comme
Word", the accents said after a letter ("tréma", "accent aigu"…) and the separators
("tiret", "apostrophe"). A letter said right after an article or "avec"/"sans" is a
comment on the spelling ("avec un B", "avec deux n", "sans X"), not part of it. At least
three letters make a spelling: "il y a" is not one. Written by hand: no library reads
French spelling aloud.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from service.engine.nlu.tokens import Token

LETTER_NAMES = {"ache": "h", "double-v": "w", "zed": "z", "i-grec": "y", "ix": "x", "ka": "k", "esse": "s",
                "emme": "m", "enne": "n", "erre": "r", "effe": "f", "ji": "j", "ku": "q"}
DOUBLES = frozenset({"deux", "double", "2"})
SEPARATORS = {"tiret": "-", "trait": "-", "apostrophe": "'"}
# Accents said after the letter they go on, as combining marks.
ACCENTS = {"aigu": "\u0301", "grave": "\u0300", "circonflexe": "\u0302", "trema": "\u0308", "cedille": "\u0327"}
# A letter right after these words is talked about, not spelled: "avec un B", "sans X".
MENTION_LEAD = frozenset({"un", "une", "le", "la", "les", "des", "avec", "sans", "deux", "double", "par", "en", "d'un",
                          "d'une", "l'", "du"})
MIN_LETTERS = 3


@dataclass(frozen=True, slots=True)
class Spelled:
    """A spelled run: token range ``[first, last)``, the letters folded (separators kept:
    "le-goff", "n'diaye") and as said, accents included ("hervé", "aït-ahmed")."""

    first: int
    last: int
    letters: str
    shown: str


def _letter(token: Token) -> str | None:
    """The letter a single-letter token says, accent kept ("É" → "é")."""
    word = token.word
    if len(word) == 1 and word.isalpha():
        raw = token.raw.lower()
        return raw if len(raw) == 1 and raw.isalpha() else word
    return LETTER_NAMES.get(word)


def _accented(letter: str, mark: str) -> str:
    return unicodedata.normalize("NFC", letter + mark)


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _run_at(tokens: tuple[Token, ...], i: int) -> Spelled | None:
    """The spelled run starting at token ``i``, if one starts there."""
    n = len(tokens)
    if i > 0 and tokens[i - 1].word in MENTION_LEAD and tokens[i].word not in SEPARATORS:
        return None
    out: list[str] = []
    letters = 0
    j = i
    last_letter_end = i
    while j < n:
        word = tokens[j].word
        letter = _letter(tokens[j])
        if letter is not None:
            if j + 2 < n and tokens[j + 1].word == "comme" and len(tokens[j + 2].word) > 2 \
                    and tokens[j + 2].word.isalpha() and tokens[j + 2].raw[:1].isupper():
                out.append(letter)  # "N comme Nicolas"
                j += 3
            else:
                out.append(letter)
                j += 1
            letters += 1
            last_letter_end = j
            continue
        if word in DOUBLES and j + 1 < n and (_letter(tokens[j + 1]) is not None):
            if letters == 0 and j > 0 and tokens[j - 1].word in MENTION_LEAD:
                return None
            doubled = _letter(tokens[j + 1]) or ""
            out.append(doubled * 2)
            letters += 2
            j += 2
            last_letter_end = j
            continue
        if "-" in word:  # "D-U-P-O-N-T"
            parts = [p for p in word.split("-") if p]
            if len(parts) < 2 or not all(len(p) == 1 and p.isalpha() for p in parts):
                break
            out.append("".join(parts))
            letters += len(parts)
            j += 1
            last_letter_end = j
            continue
        if letters and word == "accent" and j + 1 < n and tokens[j + 1].word in ACCENTS:
            out[-1] = out[-1][:-1] + _accented(out[-1][-1], ACCENTS[tokens[j + 1].word])
            j += 2
            last_letter_end = j
            continue
        if letters and word in ACCENTS:
            out[-1] = out[-1][:-1] + _accented(out[-1][-1], ACCENTS[word])
            j += 1
            last_letter_end = j
            continue
        if letters and word in SEPARATORS and j + 1 < n and _letter(tokens[j + 1]) is not None:
            out.append(SEPARATORS[word])
            j += 1
            continue
        break
    if letters < MIN_LETTERS:
        return None
    shown = "".join(out)
    return Spelled(i, last_letter_end, _fold(shown), shown)


def spelled_runs(tokens: tuple[Token, ...]) -> tuple[Spelled, ...]:
    """Every spelled run of the turn, in order."""
    out: list[Spelled] = []
    i = 0
    n = len(tokens)
    while i < n:
        found = _run_at(tokens, i) if (_letter(tokens[i]) is not None or tokens[i].word in DOUBLES
                                         or "-" in tokens[i].word) else None
        if found is not None:
            out.append(found)
            i = found.last
        else:
            i += 1
    return tuple(out)
