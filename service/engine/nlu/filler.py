"""Fillers: "euh", "allô ?", "attendez", "vous m'entendez ?", "pardon, vous pouvez répéter ?",
silence markers, empty input — not an answer at all, so the engine asks its question again.
"""

from __future__ import annotations

import re

from service.engine.nlu.normalize import FILLER_WORDS, Utterance, analyse, has_phrase

_MARKERS = re.compile(r"\[[^\]]*\]|<[^>]*>|\.\.\.|…")
# Words that only make a filler next to a real one ("un instant", "je réfléchis"): alone,
# "un" is the menu's first entry, "la" may be a choice, "entendu" and "compris" are a yes.
_WEAK = frozenset({"un", "une", "petit", "petite", "moi", "la", "je", "me", "ne", "pas", "vous", "s'il", "plait",
                   "plais", "ca", "mon", "ma", "mes", "entendu", "compris", "ai", "mal", "bien"})
# Holding phrases with a number in them: "deux secondes" holds the line, "deux" alone is a choice.
_HOLDS = (("deux", "secondes"), ("2", "secondes"), ("deux", "minutes"), ("2", "minutes"), ("une", "seconde"),
          ("une", "minute"), ("1", "seconde"), ("1", "minute"))
_HOLD_FIRSTS = frozenset(phrase[0] for phrase in _HOLDS)
MAX_WORDS = 10


def filler_of(utt: Utterance) -> bool:
    """True when nothing but filler words, markers or punctuation was said."""
    if not utt.words:
        return True
    if len(utt.words) > MAX_WORDS:
        return False
    stripped = _MARKERS.sub(" ", utt.raw)
    words = analyse(stripped).words if stripped != utt.raw else utt.words
    if not words:
        return True
    words = tuple(part for w in words for part in w.split("-") if part)  # "excusez-moi", "pouvez-vous"
    held = False
    if not _HOLD_FIRSTS.isdisjoint(words):  # a number said: "deux secondes"?
        for phrase in _HOLDS:
            at = has_phrase(words, phrase)
            if at >= 0:
                words, held = words[:at] + words[at + len(phrase) :], True
    if not words:
        return held
    return all(w in FILLER_WORDS for w in words) and (held or any(w not in _WEAK for w in words))


def is_filler(text: str) -> bool:
    """True for "euh", "hum", "allô ?", "attendez", "pardon ?", empty or punctuation-only input."""
    return filler_of(analyse(text if isinstance(text, str) else ""))
