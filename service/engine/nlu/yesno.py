"""Yes or no, as callers say it: "ouais", "c'est ça", "d'accord", "pas du tout", "euh oui".

Written by hand: no kept library reads French assent. A yes word or phrase under a
negation is a no ("pas d'accord", "ce n'est pas ça", "ça ne me va pas"), except the
few fixed phrases whose negation is the assent ("pas de problème", "pourquoi pas").
"""

from __future__ import annotations

from typing import Literal

from service.engine.nlu.normalize import SOFT_FILLERS, Phrases, Utterance, analyse

YES_WORDS = frozenset(
    {"oui", "ouais", "ouai", "ouaip", "yes", "ok", "okay", "oki", "d'accord", "daccord", "dac", "exactement",
     "parfait", "volontiers", "absolument", "certainement", "entendu", "impeccable", "super", "carrement",
     "affirmatif", "evidemment", "effectivement", "voila", "nickel", "banco", "confirme", "bien", "top", "si",
     "exact", "correct", "yep", "ouaips", "certes"}
)
YES_PHRASES = (("c'est", "ca"), ("c", "est", "ca"), ("tout", "a", "fait"), ("bien", "sur"), ("c'est", "bon"),
               ("ca", "marche"), ("ca", "me", "va"), ("allez", "y"), ("je", "confirme"), ("tres", "bien"),
               ("c'est", "parfait"), ("ca", "me", "convient"), ("ca", "roule"), ("vas", "y"), ("allez-y",),
               ("bien", "ca"), ("aucun", "probleme"), ("sans", "probleme"), ("avec", "plaisir"), ("si", "si"),
               ("ca", "m'arrange"))
# Assent phrases that contain a negation word: checked before any no.
YES_FIRST = (("pas", "de", "probleme"), ("pas", "de", "souci"), ("pas", "de", "soucis"), ("pourquoi", "pas"),
             ("ca", "ne", "me", "derange", "pas"), ("pas", "d'objection"))
NO_WORDS = frozenset({"non", "nan", "nope", "negatif", "jamais"})
NO_PHRASES = (("pas", "du", "tout"), ("surtout", "pas"), ("pas", "vraiment"), ("pas", "question"),
              ("certainement", "pas"), ("absolument", "pas"), ("ne", "l'annulez", "pas"), ("laissez", "tomber"),
              ("je", "ne", "veux", "pas"), ("je", "veux", "pas"), ("ca", "ira", "pas"), ("pas", "la", "peine"),
              ("pense", "pas"), ("crois", "pas"), ("me", "va", "pas"), ("me", "convient", "pas"),
              ("m'arrange", "pas"), ("me", "vont", "pas"), ("ne", "prefere", "pas"), ("prefere", "pas"),
              ("que", "non"), ("pas", "forcement"))
_YES_FIRST, _NO_PHRASES, _YES_PHRASES = Phrases(YES_FIRST), Phrases(NO_PHRASES), Phrases(YES_PHRASES)
# What "pas" denies when it comes right before: "pas d'accord", "pas ça", "pas bon".
DENIED = frozenset({"d'accord", "daccord", "ca", "bon", "correct", "exact", "ok", "possible"})
# Yes words that say yes wherever they stand ("bien", "si", "top" say other things too).
_PLAIN_YES = YES_WORDS - {"bien", "si", "top"}
# After "oui mais …" the caller goes on to say something else: not a plain yes.
BUT = frozenset({"mais", "sauf", "plutot", "par", "contre"})


def yes_no(text: str) -> Literal["yes", "no"] | None:
    """``"yes"``, ``"no"`` or None when the answer is neither or more than that."""
    return answer_of(analyse(text if isinstance(text, str) else ""))


def answer_of(utt: Utterance) -> Literal["yes", "no"] | None:
    """:func:`yes_no` of an analysed turn."""
    words = tuple(w for w in utt.words if w not in SOFT_FILLERS)
    if not words or len(words) > 12:
        return None
    if not BUT.isdisjoint(words[1:]) and (words[0] in YES_WORDS or words[0] in NO_WORDS):
        return None
    if _YES_FIRST.found(words):
        return "yes"
    if "pas" in words and any(words[i] == "pas" and words[i + 1] in DENIED for i in range(len(words) - 1)):
        return "no"
    if _NO_PHRASES.found(words):
        return "no"
    if words[0] in NO_WORDS:
        return "no"
    if words[0] in YES_WORDS and words[0] not in ("bien", "si", "top"):
        return "yes"
    if _YES_PHRASES.found(words):
        return "yes"
    if not NO_WORDS.isdisjoint(words):
        return "no"
    if not _PLAIN_YES.isdisjoint(words):
        return "yes"
    if words in (("si",), ("top",)):
        return "yes"
    return None
