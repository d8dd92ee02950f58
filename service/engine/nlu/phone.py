"""Phone numbers as callers say or type them, as E.164 (validated by ``phonenumbers``).

"zéro six douze trente-quatre cinquante-six soixante-dix-huit", "06 12 34 56 78",
"+33 6 12 34 56 78", digits split oddly by speech-to-text. A number with its leading
zero dropped is refused (phonenumbers would accept it): ten national digits are required.

A French number is spoken as a run of groups of at most two digits, and ``text2num``
reads a run of number words as one number: "quatre-vingts quatre-vingt-un" comes out
"84 20 1". So spoken groups are read by hand first (0–99 each, septante/huitante/nonante
included), and text2num's digits are the fallback (groups of hundreds, "mille"). A number
said twice in a row ("… je répète …") counts once.
"""

from __future__ import annotations

import re

import phonenumbers

from service.engine.nlu.normalize import Utterance, analyse
from service.engine.nlu.tokens import Token, tokenize

_DIGITS = re.compile(r"\d+")
UNITS = {"zero": 0, "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "six": 6, "sept": 7,
         "huit": 8, "neuf": 9}
TEENS = {"dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16}
TENS = {"vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60, "septante": 70,
        "huitante": 80, "octante": 80, "nonante": 90}
# The words a spoken group starts with (besides digits).
GROUP_WORDS = frozenset(UNITS) | frozenset(TEENS) | frozenset(TENS)
# Number words the group reader does not handle: leave those turns to text2num.
LARGE = frozenset({"cent", "cents", "mille", "million", "millions"})


class _Words:
    """Spoken tokens with their hyphenation: "quarante-quatre vingt-deux" is 44 22, not 40 82."""

    def __init__(self, text: str) -> None:
        self.tokens: list[str] = []
        self.joined: list[bool] = []  # hyphen-attached to the previous token
        for word in text.split():
            parts = [p for p in word.split("-") if p] if "-" in word else (word,)
            for k, part in enumerate(parts):
                if self.tokens and self.tokens[-1] == "double":  # "double zéro" is "00"
                    self.tokens[-1], self.joined[-1] = part, False
                self.tokens.append(part)
                self.joined.append(k > 0)

    def at(self, i: int) -> str:
        return self.tokens[i] if 0 <= i < len(self.tokens) else ""

    def continues(self, i: int) -> bool:
        """True when token ``i`` may belong to the group before it: hyphen-attached, or a
        plain word that does not open a hyphenated compound of its own."""
        if i >= len(self.tokens):
            return False
        return self.joined[i] or not (i + 1 < len(self.tokens) and self.joined[i + 1])


def _teen(words: _Words, i: int) -> tuple[int, int] | None:
    """A number from 10 to 19 at token ``i`` ("dix", "dix-sept", "seize") and the next index."""
    word = words.at(i)
    if word == "dix" and words.at(i + 1) in ("sept", "huit", "neuf") and words.continues(i + 1):
        return 10 + UNITS[words.at(i + 1)], i + 2
    if word in TEENS:
        return TEENS[word], i + 1
    return None


def _group(words: _Words, i: int) -> tuple[str, int] | None:
    """One spoken group (0–99) starting at token ``i``, as digits, and the next index."""
    word = words.at(i)
    if word.isdigit():
        return word, i + 1
    if word == "quatre" and words.at(i + 1) in ("vingt", "vingts") and words.continues(i + 1):
        tens, j = 80, i + 2
    elif word in TENS:
        tens, j = TENS[word], i + 1
    else:
        teen = _teen(words, i)
        if teen is not None:
            return str(teen[0]), teen[1]
        if word in UNITS:
            return str(UNITS[word]), i + 1
        return None
    nxt = words.at(j)
    if words.at(j - 1) == "vingts" or not words.continues(j):
        return str(tens), j  # "quatre-vingts" is complete; a new compound starts the next group
    if nxt == "quatre" and words.at(j + 1) in ("vingt", "vingts") and not words.joined[j]:
        return str(tens), j  # "quatre" before "vingt" starts the next group
    if nxt == "et" and words.continues(j + 1):  # "vingt et un", "soixante et onze"
        after = words.at(j + 1)
        if after in ("un", "une"):
            return str(tens + 1), j + 2
        if after == "onze" and tens in (60, 80):
            return str(tens + 11), j + 2
    if tens in (60, 80):  # "soixante-dix-huit", "quatre-vingt-treize"
        teen = _teen(words, j)
        if teen is not None:
            return str(tens + teen[0]), teen[1]
    if nxt in UNITS and nxt != "zero":
        return str(tens + UNITS[nxt]), j + 1
    return str(tens), j


def spoken_digits(utt: Utterance) -> str | None:
    """The digits of the spoken groups, in order; None when the turn has words beyond 99."""
    runs = spoken_runs(utt)
    return None if runs is None else "".join(runs)


# Said inside a number without breaking it: "zéro six, euh, douze…".
HESITATIONS = frozenset({"euh", "heu", "hum", "ben", "bah"})


def spoken_runs(utt: Utterance) -> list[str] | None:
    """The digits of each run of spoken groups (a word that is not a number ends a run:
    "jeudi 3 à 15 heures et mon portable c'est zéro six…" has three); None when the turn
    has words beyond 99."""
    words = _Words(utt.text.replace("+", " "))  # the folded raw text: analyse folded it once
    tokens = words.tokens
    if not LARGE.isdisjoint(tokens):
        return None
    runs: list[str] = [""]
    i = 0
    while i < len(tokens):
        word = tokens[i]
        group = _group(words, i) if word.isdigit() or word in GROUP_WORDS else None
        if group is None or (word in ("un", "une") and not (_numeric(words.at(i - 1)) or _numeric(words.at(i + 1)))):
            if word not in HESITATIONS and runs[-1]:
                runs.append("")
            i += 1  # a word, or an article: "c'est une ligne fixe"
            continue
        runs[-1] += group[0]
        i = group[1]
    return [r for r in runs if r]


def _numeric(token: str) -> bool:
    """True for digits and number words."""
    return token.isdigit() or token in UNITS or token in TEENS or token in TENS or token == "et"


def _validate(digits: str, plus: bool) -> str | None:
    """E.164 of these digits when they make a valid number, else None."""
    if len(digits) in (20, 22, 26) and digits[: len(digits) // 2] == digits[len(digits) // 2 :]:
        digits = digits[: len(digits) // 2]  # said twice
    if plus:
        candidate = "+" + digits
    elif digits.startswith("0033"):
        candidate = "+" + digits[2:]
    elif digits.startswith("33") and len(digits) == 11:
        candidate = "+" + digits
    elif len(digits) == 10 and digits.startswith("0"):
        candidate = digits
    else:
        return None
    if not 8 <= len(candidate.lstrip("+")) <= 15:
        return None
    try:
        number = phonenumbers.parse(candidate, "FR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if number.country_code == 33 and len(str(number.national_number)) != 9:
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone(text: str) -> str | None:
    """E.164 of a valid French (or international, with +) number, else None."""
    if not isinstance(text, str) or not text.strip():
        return None
    utt = analyse(text)
    at = utt.words.index("plus") if "plus" in utt.words else -1
    plus = "+" in utt.raw or (0 <= at < len(utt.words) - 1 and _numeric(utt.words[at + 1].split("-")[0]))
    converted = "".join(_DIGITS.findall(utt.digit_text))
    runs = spoken_runs(utt)
    spoken = None if runs is None else "".join(runs)
    # No digit in text2num's reading, no run of digits in it either.
    candidates = [spoken, converted, *sorted(runs or (), key=len, reverse=True),
                  *(_digit_runs(utt.digit_text) if converted else ())]
    for digits in candidates:
        if digits:
            found = _validate(digits, plus)
            if found is not None:
                return found
    return None


def _digit_runs(text: str) -> list[str]:
    """The digits of each run of numbers in text2num's reading, longest first."""
    runs: list[str] = [""]
    for word in text.split():
        if word.isdigit():
            runs[-1] += word
        elif word not in HESITATIONS and runs[-1]:
            runs.append("")
    return sorted((r for r in runs if r), key=len, reverse=True)


def warm() -> None:
    """Load phonenumbers' metadata now rather than during the first caller's turn."""
    phonenumbers.is_valid_number(phonenumbers.parse("0612345678", "FR"))


# Said between two runs of digits, these take the first run back (or its last groups):
# "zéro six vingt… non zéro six trente…", "… cinquante-six, pardon, cinquante-sept".
CORRECTIONS = frozenset({"non", "pardon", "enfin", "plutot", "trompe", "trompee", "oups", "attendez", "correction",
                         "rectification", "reprends", "recommence", "reprend"})


def _digits_of(text: str) -> str:
    """The digits a piece of a turn says (spoken groups first, else text2num's reading)."""
    utt = analyse(text)
    spoken = spoken_digits(utt)
    if spoken:
        return spoken
    return "".join(_DIGITS.findall(utt.digit_text))


def _number_span(tokens: tuple[Token, ...]) -> tuple[int, int] | None:
    numeric = [t for t in tokens if any(c.isdigit() for c in t.word) or all(_numeric(p) for p in t.word.split("-"))]
    numeric = [t for t in numeric if t.word not in ("et", "un", "une")] or numeric
    return (numeric[0].start, numeric[-1].end) if numeric else None


def read_phone(text: str) -> tuple[str | None, bool, tuple[int, int] | None]:
    """The number a turn gives (E.164), whether a self-correction was applied, and where the
    number was said; never raises."""
    if not isinstance(text, str) or not text.strip():
        return None, False, None
    tokens = tokenize(text)
    marks = [i for i, t in enumerate(tokens) if t.word in CORRECTIONS]
    for at in reversed(marks):
        before, after = tokens[:at], tokens[at + 1 :]
        if not after or not before:
            continue
        head, tail = text[: tokens[at].start], text[tokens[at].end :]
        later = _digits_of(tail)
        if len(later) < 2:
            continue  # no number after the marker: what came before it does not matter
        earlier = _digits_of(head)
        if len(earlier) < 2:
            continue
        found = phone(tail)
        if found is not None:
            return found, True, _number_span(after)
        if len(later) < len(earlier):
            spliced = earlier[: max(0, min(len(earlier), 10) - len(later))] + later
            found = _validate(spliced, "+" in head)
            if found is not None:
                return found, True, _number_span(tokens)
    found = phone(text)
    return found, False, (_number_span(tokens) if found else None)
