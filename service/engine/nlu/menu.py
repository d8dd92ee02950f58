"""The fallback menu: 1 prendre rendez-vous, 2 annuler ou déplacer, 3 une question, 4 parler à quelqu'un."""

from __future__ import annotations

from typing import Literal

from service.engine.nlu.normalize import analyse

MenuChoice = Literal["book", "cancel_or_modify", "question", "human"]
NUMBERS: dict[str, MenuChoice] = {
    "1": "book", "un": "book", "premier": "book", "une": "book",
    "2": "cancel_or_modify", "deux": "cancel_or_modify", "deuxieme": "cancel_or_modify",
    "3": "question", "trois": "question", "troisieme": "question",
    "4": "human", "quatre": "human", "quatrieme": "human",
}


def menu_choice(text: str) -> MenuChoice | None:
    """The menu entry the caller picked, by number or by what they want; never raises."""
    from service.engine.nlu.intent import intent_of

    if not isinstance(text, str):
        return None
    utt = analyse(text)
    words = utt.content
    if not words:
        return None
    if "question" in words or "questions" in words or "renseignement" in words or "information" in words:
        return "question"
    for w in words:
        if w in NUMBERS and len(words) <= (2 if w in ("un", "une") else 4):
            return NUMBERS[w]
    wanted = intent_of(utt)
    if wanted == "book":
        return "book"
    if wanted in ("cancel", "modify"):
        return "cancel_or_modify"
    if wanted == "human":
        return "human"
    if wanted.startswith("faq:") or "question" in words or "renseignement" in words or "information" in words:
        return "question"
    return None
