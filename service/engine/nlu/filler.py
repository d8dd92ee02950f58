"""Fillers: "euh", "allô ?", "attendez", silence markers, empty input — not an answer at all."""

from __future__ import annotations

import re

from service.engine.nlu.normalize import FILLER_WORDS, Utterance, analyse

_MARKERS = re.compile(r"\[[^\]]*\]|<[^>]*>|\.\.\.|…")
# Words that only make a filler next to a real one ("un instant", "je réfléchis"): alone,
# "un" is the menu's first entry and "la" may be a choice.
_WEAK = frozenset({"un", "une", "petit", "petite", "moi", "la", "je", "me", "ne", "pas", "vous", "s'il", "plait", "plais"})


def filler_of(utt: Utterance) -> bool:
    """True when nothing but filler words, markers or punctuation was said."""
    if not utt.words:
        return True
    if len(utt.words) > 8:
        return False
    stripped = _MARKERS.sub(" ", utt.raw)
    words = analyse(stripped).words if stripped != utt.raw else utt.words
    if not words:
        return True
    return all(w in FILLER_WORDS for w in words) and any(w not in _WEAK for w in words)


def is_filler(text: str) -> bool:
    """True for "euh", "hum", "allô ?", "attendez", "pardon ?", empty or punctuation-only input."""
    return filler_of(analyse(text if isinstance(text, str) else ""))
