"""Callers' words with their names and phone numbers hidden, for the not-understood inbox.

What was *not* understood is exactly what the understanding layer could not find, so its
spans are not enough: the masking here is conservative and needs no understanding to work.

* the spans the extraction pass found for a name, a patient or a phone number are hidden;
* names this conversation is known by (its bookings, its confirmation) are hidden anywhere;
* a capitalised word that does not open a sentence is hidden (speech-to-text capitalises names;
  it capitalises every sentence's first word too, so a name opening a sentence, outside the
  name question, is hidden only when the extraction or the conversation knows it);
* any run of six digits or more is hidden; where the caller was asked a number, every digit
  and every number word is;
* where the caller was asked a name, every word is hidden but the dialogue words of
  :data:`SAFE_IN_NAME_ANSWERS`, so an unread name cannot show through.

Hidden words keep their first letter (``D***``), as the logs do; digits become ``#``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from service.engine.nlu import ExtractContext, extract
from service.engine.states import State

NAME_STATES: Final = frozenset({State.QUALIF_NAME.value, State.CANCEL_IDENTIFY.value, State.MODIFY_IDENTIFY.value})
PHONE_STATES: Final = frozenset({State.QUALIF_PHONE.value})
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
LONG_DIGITS = re.compile(r"\+?\d(?:[\s.\-]?\d){5,}")
SENTENCE_END = re.compile(r"[.!?…]\s*$")

def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


NUMBER_WORDS: Final = _words(
    "zero un une deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize "
    "vingt vingts trente quarante cinquante soixante cent cents mille et"
)
# Words that are the dialogue, not a person: shown even where a name was asked.
SAFE_IN_NAME_ANSWERS: Final = _words(
    """oui non ouais bonjour bonsoir merci pardon euh heu hum ben bah alors donc voila ok d'accord
    je j' m' me moi mon ma mes c' c'est ce cest est s'appelle m'appelle appelle appelais appelle
    nom prenom prénom famille de du des la le les l' et ou en a à au aux pour par avec sans
    madame monsieur mademoiselle docteur mme m mr
    pas ne n' rien personne quoi comment pourquoi necessaire nécessaire obligatoire prefere préfère
    vous tu il elle on nous dire dit epeler épeler epelle épelle comme tiret apostrophe double
    fille fils mari femme mere mère pere père enfant bebe bébé autre quelqu'un
    rendez-vous rdv annuler deplacer déplacer changer repeter répéter attendez allo allô
    qui que quel quelle s'il plait plaît svp"""
)


def _fold(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")


SAFE_FOLDED: Final = frozenset(_fold(w) for w in SAFE_IN_NAME_ANSWERS)


def _hide_word(word: str) -> str:
    return word[:1] + "***"


def _name_tokens(names: Iterable[str]) -> set[str]:
    return {_fold(part) for name in names for part in WORD.findall(name) if len(part) > 1}


def mask_utterance(text: str, state: str, now: datetime, known_names: Iterable[str] = ()) -> str:
    """``text`` (said in ``state`` at ``now``) with names and phone numbers hidden."""
    hidden = [False] * len(text)

    def hide(start: int, end: int) -> None:
        for i in range(max(start, 0), min(end, len(text))):
            hidden[i] = True

    found = extract(text, ExtractContext(state=state, now=now))
    for key in ("name", "patient", "phone"):
        span = found.spans.get(key)
        if span is not None:
            hide(span.start, span.end)
    for match in LONG_DIGITS.finditer(text):
        hide(match.start(), match.end())
    names = _name_tokens(known_names)
    asked_name, asked_phone = state in NAME_STATES, state in PHONE_STATES
    for match in WORD.finditer(text):
        word, folded = match.group(0), _fold(match.group(0))
        opening = match.start() == 0 or bool(SENTENCE_END.search(text[: match.start()]))
        if (
            folded in names
            or (word[:1].isupper() and not opening and folded not in SAFE_FOLDED)
            or (asked_name and folded not in SAFE_FOLDED)
            or (asked_phone and all(part in NUMBER_WORDS for part in re.split(r"['’-]", folded)))
        ):
            hide(match.start(), match.end())
    out: list[str] = []
    i = 0
    while i < len(text):
        if not hidden[i]:
            out.append(text[i])
            i += 1
            continue
        j = i
        while j < len(text) and hidden[j]:
            j += 1
        out.append(_mask_run(text[i:j]))
        i = j
    masked = "".join(out)
    return re.sub(r"\d", "#", masked) if asked_phone else masked


def _mask_run(run: str) -> str:
    """A hidden stretch: words keep their first letter, digits become ``#``, spacing stays."""
    return WORD.sub(lambda m: _hide_word(m.group(0)), re.sub(r"\d", "#", run))
