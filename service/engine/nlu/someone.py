"""The appointment is for someone else: "c'est pour ma fille", "pour mon mari Paul Leroy",
"c'est pas pour moi c'est pour ma mère", "il s'appelle Tom Delaunay", "au nom de madame
Leroy", "c'est pour quelqu'un d'autre" — the relation word and the patient's name.

Written by hand: the relation is a closed set of French kinship words after a possessive,
and negation decides which one holds ("pas pour moi, pour ma mère").
"""

from __future__ import annotations

from dataclasses import dataclass

from service.engine.nlu.names import Person, read_name
from service.engine.nlu.tokens import Token

# Folded relation word → the form the dialogue uses.
RELATIONS = {
    "fille": "fille", "fils": "fils", "mari": "mari", "epoux": "mari", "femme": "femme", "epouse": "femme",
    "mere": "mère", "maman": "mère", "pere": "père", "papa": "père", "enfant": "enfant", "bebe": "enfant",
    "fiston": "fils", "frere": "frère", "soeur": "sœur", "grand-mere": "grand-mère", "grand-pere": "grand-père",
    "mamie": "grand-mère", "papi": "grand-père", "papy": "grand-père", "compagnon": "compagnon",
    "compagne": "compagne", "conjoint": "conjoint", "conjointe": "conjointe", "ami": "ami", "amie": "amie",
    "voisin": "voisin", "voisine": "voisine", "oncle": "oncle", "tante": "tante", "neveu": "neveu", "niece": "nièce",
    "cousin": "cousin", "cousine": "cousine", "petit-fils": "petit-fils", "petite-fille": "petite-fille",
    "belle-mere": "belle-mère", "beau-pere": "beau-père", "enfants": "enfant", "filles": "fille",
    "garcon": "fils", "gamin": "enfant", "gamine": "enfant", "petit": "enfant", "petite": "enfant",
    "patient": "autre", "patiente": "autre",
}
ADJECTIVES = frozenset({"petit", "petite", "grand", "grande", "jeune", "vieux", "vieille", "cher", "chere"})
POSSESSIVES = frozenset({"ma", "mon", "mes", "notre", "nos", "sa", "son", "ses"})
OTHER = (("quelqu'un", "d'autre"), ("quelqu", "un", "d'autre"), ("une", "autre", "personne"),
         ("pas", "pour", "moi"), ("un", "tiers"), ("pour", "quelqu'un"), ("quelqu'un", "de", "ma", "famille"))
THIRD_PERSON = (("il", "s'appelle"), ("elle", "s'appelle"), ("il", "s", "appelle"), ("elle", "s", "appelle"),
                ("son", "nom", "c'est"), ("son", "nom", "est"), ("son", "nom"), ("au", "nom", "de"),
                ("son", "prenom", "c'est"))
SELF = (("pour", "moi"), ("pour", "moi-meme"), ("c'est", "moi"))


@dataclass(frozen=True, slots=True)
class Someone:
    """Who the appointment is for when it is not the caller, and where it was said."""

    relation: str | None
    patient: Person | None
    first: int
    last: int


def _find_all(words: tuple[str, ...], phrase: tuple[str, ...]) -> list[int]:
    n = len(phrase)
    return [i for i in range(len(words) - n + 1) if words[i : i + n] == phrase]


def _negated(words: tuple[str, ...], i: int) -> bool:
    """True for "pas pour ma fille", "ce n'est pas pour mon mari"."""
    window = words[max(0, i - 3) : i]
    return "pas" in window and "pour" in words[max(0, i - 2) : i + 1]


def read_someone(tokens: tuple[Token, ...]) -> Someone | None:
    """The relation and patient a turn names, or None when the turn says nothing of it."""
    words = tuple(t.word for t in tokens)
    specific: list[tuple[int, int, str]] = []  # (start, end, relation)
    other: list[tuple[int, int]] = []
    for i, w in enumerate(words):
        if w not in RELATIONS or i == 0:
            continue
        owner = i - 1 if words[i - 1] in POSSESSIVES else i - 2
        if owner < 0 or words[owner] not in POSSESSIVES or (owner == i - 2 and words[i - 1] not in ADJECTIVES):
            continue
        if w in ("petit", "petite") and i + 1 < len(words) and words[i + 1] in RELATIONS:
            continue  # "mon petit garçon", "ma petite fille": the next word says it
        if _negated(words, owner):
            continue
        if words[owner] in ("sa", "son", "ses") and "pour" not in words[max(0, owner - 2) : owner]:
            continue  # "sa fille" of a third person: not said of the caller's own
        specific.append((owner, i + 1, RELATIONS[w]))
    for phrase in OTHER:
        for i in _find_all(words, phrase):
            talk = {"parler", "passer", "passez", "parle"} & set(words[max(0, i - 3) : i])
            if (phrase == ("pas", "pour", "moi") or not _negated(words, i)) and not talk:
                other.append((i, i + len(phrase)))
    for phrase in SELF:  # "c'est pas pour ma fille, c'est pour moi": the caller after all
        for i in _find_all(words, phrase):
            if not (i > 0 and words[i - 1] == "pas") and words[i + 2 : i + 3] != ("meme",):
                specific = [s for s in specific if s[0] > i]
                other = [o for o in other if o[0] > i and words[o[0] : o[1]] != ("pas", "pour", "moi")]
    relation: str | None = None
    at = end = -1
    if specific:
        at, end, relation = specific[-1]
    elif other:
        (at, end), relation = max(other, key=lambda o: (o[1], o[1] - o[0])), "autre"
    patient = None
    for phrase in THIRD_PERSON:
        for i in _find_all(words, phrase):
            after = i + len(phrase)
            while after < len(words) and words[after] in ("c'est", "est", "euh"):
                after += 1
            found = read_name(tokens[after:], asked=True)
            if found is not None and found.person is not None and found.first <= 1 and found.last <= 5:
                patient = found.person
                end = max(end, after + found.last)
                at = i if at < 0 else at
                if relation is None and phrase[0] in ("il", "elle"):
                    relation = "autre"
    if patient is None and relation is not None and 0 <= end < len(words):
        # "pour ma fille Inès Brossard", "mon fils, Tom": the name right after the relation.
        found = read_name(tokens[end:], asked=True, strict_words=True)
        if found is not None and found.person is not None and found.first <= 1 and found.last - found.first <= 4:
            patient = found.person
            end = end + found.last
    if relation is None and patient is None:
        return None
    first = max(at, 0)
    return Someone(relation, patient, first, max(end, first + 1))
