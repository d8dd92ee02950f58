"""The appointment is for someone else: "c'est pour ma fille", "pour mon mari Paul Leroy",
"c'est pas pour moi c'est pour ma mère", "il s'appelle Tom Delaunay", "pour une résidente,
madame Simone Arnaud", "je suis la fille de monsieur Petitjean", "le nom de l'enfant ?
Nathan Fournier", "c'est pour quelqu'un d'autre" — the relation and the patient's name.

The relation is one of the words the dialogue knows: "fille", "fils",
"mari", "femme", "mère", "père", "enfant", or "autre" for everyone else (a sister, a
neighbour, a grandmother, a resident of a care home). Written by hand: the relation is a
closed set of French words after a possessive ("ma grand mère" without its hyphen is the
grandmother, not the mother); the caller may name themselves by their role instead ("je
suis la maman de Lina", "le fils de madame Guillot": the patient is the child, the mother);
an "enfant" becomes "fils" or "fille" when a pronoun says which ("mon bébé, il a huit
mois"); negation and "pour moi" decide which one holds ("pas pour moi, pour ma mère"); a
correction marker before the relation ("non, pour mon fils") makes it a self-correction.
The patient's name is the name said right after the relation, or after "il s'appelle",
"le nom de l'enfant", "pour monsieur …"; the name reader (:mod:`names`) reads it, and its
words are then no longer the caller's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.engine.nlu.firstnames import is_first_name
from service.engine.nlu.lexicon import grouped_words
from service.engine.nlu.names import Person, person_of
from service.engine.nlu.namescan import (
    FEMALE_TITLES,
    MALE_TITLES,
    MARKER_PHRASES,
    MARKER_WORDS,
    NameScan,
    Run,
    Word,
    scan_names,
)
from service.engine.nlu.tokens import Token

# Folded relation word → the relation the dialogue knows (data/relations.txt).
RELATIONS = {word: relation for relation, words in grouped_words("relations.txt").items() for word in words}
# Two words for one relation, as speech-to-text writes them without the hyphen.
COMPOUNDS = {("grand", "mere"): "autre", ("grand", "pere"): "autre", ("petite", "fille"): "autre",
             ("petit", "fils"): "autre", ("beau", "pere"): "autre", ("belle", "mere"): "autre",
             ("beau", "frere"): "autre", ("belle", "soeur"): "autre", ("belle", "fille"): "autre",
             ("petits", "enfants"): "autre"}
# Said before a relation word without changing it: "ma grande fille", "mon petit garçon".
ADJECTIVES = frozenset({"petit", "petite", "grand", "grande", "jeune", "vieux", "vieille", "cher", "chere", "fils",
                        "propre", "tout", "toute", "deuxieme", "premier", "premiere", "aine", "ainee", "cadet",
                        "cadette", "dernier", "derniere", "deux", "trois", "quatre", "2", "3", "4"})
POSSESSIVES = frozenset({"ma", "mon", "mes", "notre", "nos", "sa", "son", "ses"})
# Who someone is to a care home or a nurse: "pour une résidente", "un de mes patients".
INSTITUTION = frozenset({"patient", "patiente", "resident", "residente", "beneficiaire", "client", "cliente", "eleve"})
OTHER = (("quelqu'un", "d'autre"), ("quelqu", "un", "d'autre"), ("une", "autre", "personne"),
         ("pas", "pour", "moi"), ("un", "tiers"), ("pour", "quelqu'un"), ("quelqu'un", "de", "ma", "famille"))
THIRD_PERSON = (("il", "s'appelle"), ("elle", "s'appelle"), ("il", "s", "appelle"), ("elle", "s", "appelle"),
                ("son", "nom", "c'est"), ("son", "nom", "est"), ("son", "nom"), ("son", "prenom", "c'est"),
                ("son", "prenom"), ("le", "patient", "c'est"), ("la", "patiente", "c'est"),
                ("est", "au", "nom", "de"), ("est", "au", "nom", "d'"), ("etait", "au", "nom", "de"))
SELF = (("pour", "moi"), ("pour", "moi-meme"), ("c'est", "moi"))
# The caller names themselves by their role to the patient: "je suis la maman de Lina".
ROLES = {"fils": "parent", "fille": "parent", "mere": "child", "maman": "child", "pere": "child", "papa": "child",
         "mari": "femme", "epoux": "femme", "femme": "mari", "epouse": "mari"}
ROLE_LEADS = (("je", "suis"), ("c'est",), ("c", "est"), ("moi", "c'est"), ("ici",))
# Words between a relation and the patient's name that end the search: the caller speaks of themselves.
CALLER = frozenset({"moi", "je", "j'", "m'appelle", "j'appelle", "suis"})
PATIENT_GAP = 10  # tokens between the relation and the patient's name, at most


@dataclass(frozen=True, slots=True)
class Someone:
    """Who the appointment is for when it is not the caller, and where it was said."""

    relation: str | None
    patient: Person | None
    first: int
    last: int
    claimed: frozenset[int] = frozenset()  # the tokens of the patient's name
    corrected: bool = False  # a correction marker changed who it is for


@dataclass(frozen=True, slots=True)
class _Mention:
    """A relation said in the turn: where, which, and where its name may start."""

    first: int
    last: int
    relation: str


def _find_all(words: tuple[str, ...], phrase: tuple[str, ...]) -> list[int]:
    if phrase[0] not in words:
        return []
    n = len(phrase)
    return [i for i in range(len(words) - n + 1) if words[i] == phrase[0] and words[i : i + n] == phrase]


def _said(phrases: tuple[tuple[str, ...], ...], said: frozenset[str]) -> list[tuple[str, ...]]:
    """The phrases whose first word is among the words ``said`` (no other can be found)."""
    return [p for p in phrases if p[0] in said]


NEGATION_GLUE = frozenset({"pour", "celui", "celle", "de", "du", "d'", "le", "la", "les", "rendez-vous", "rdv",
                           "c'est", "ce", "n'est", "est"})


def _negated(words: tuple[str, ...], i: int) -> bool:
    """True for "pas pour ma fille", "ce n'est pas pour mon mari", "pas celui de ma fille"."""
    for k in range(i - 1, max(-1, i - 5), -1):
        if words[k] == "pas":
            return True
        if words[k] not in NEGATION_GLUE:
            return False
    return False


def _relations(tokens: tuple[Token, ...], words: tuple[str, ...]) -> list[_Mention]:
    """Every relation said after a possessive ("ma fille", "mon petit garçon", "ma grand mère")."""
    found: list[_Mention] = []
    n = len(words)
    i = 0
    while i < n:
        pair = (words[i], words[i + 1]) if i + 1 < n else None
        if pair in COMPOUNDS:
            relation, end = COMPOUNDS[pair], i + 2
        elif tokens[i].bare in RELATIONS:
            relation, end = RELATIONS[tokens[i].bare], i + 1
        else:
            i += 1
            continue
        owner = i - 1
        while owner >= 0 and words[owner] in ADJECTIVES and owner >= i - 2:
            owner -= 1
        w = words[i]
        own = owner >= 0 and words[owner] in POSSESSIVES
        institution = owner >= 0 and words[owner] in ("un", "une") and w in INSTITUTION \
            and "pour" in words[max(0, owner - 2) : owner]
        if not (own or institution) or (w in ("petit", "petite") and end < n and tokens[end].bare in RELATIONS):
            i += 1
            continue
        if own and words[owner] in ("sa", "son", "ses") and "pour" not in words[max(0, owner - 2) : owner]:
            i = end
            continue  # "sa fille" of a third person: not said of the caller's own
        if not _negated(words, owner):
            found.append(_Mention(owner, end, relation))
        i = end
    return found


def _role_of(words: tuple[str, ...], tokens: tuple[Token, ...], scan: NameScan) -> tuple[_Mention, Run] | None:
    """"je suis la maman de Lina Haddou", "c'est le fils de madame Guillot": the caller's
    role to the patient named after "de"; the relation is the patient's to the caller."""
    for i in range(len(tokens)):
        elided = words[i].startswith("d'") and len(words[i]) > 2  # "la maman d'Inès"
        if (words[i] not in ("de", "d'") and not elided) or i < 2:
            continue
        role = tokens[i - 1].bare
        # "la maman", "l'infirmière", "l'aide soignante": the article before the role
        lead = next((k for k in range(i - 1, max(-1, i - 4), -1)
                     if tokens[k].word in ("le", "la", "l'") or tokens[k].word.startswith("l'")), -1)
        if lead < 0:
            continue
        before = words[max(0, lead - 2) : lead]
        if not any(before[-len(p):] == p for p in ROLE_LEADS if len(p) <= len(before)):
            continue
        start = i if elided else i + 1
        run = next((r for r in scan.runs if r.first == start
                    or (r.first == start + 1 and words[start] in ("la", "le"))),
                   None)
        if run is None:
            continue
        kind = ROLES.get(role)
        title = run.title or ""
        if kind == "parent":
            relation = "mère" if title in FEMALE_TITLES else "père" if title in MALE_TITLES else "autre"
        elif kind == "child":
            relation = "enfant"
        elif kind is not None:
            relation = kind
        else:
            relation = "autre"  # "l'infirmière de monsieur Roux"
        return _Mention(lead, i + 1, relation), run
    return None


DATE_WORDS = frozenset({"lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "demain", "matin",
                        "janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre",
                        "octobre", "novembre", "decembre"})


def _capital(tokens: tuple[Token, ...], run: Run) -> bool:
    return all(tokens[w.at].raw[:1].isupper() or "'" in tokens[w.at].raw for w in run.words)


def _with_repeat(scan: NameScan, run: Run) -> list[Run]:
    """A name and its repetition right after ("madame Guillot, Odile Guillot")."""
    keys = {w.folded for w in run.words}
    later = next((r for r in scan.runs if r.first >= run.last and r.first - run.last <= 1), None)
    if later is not None and keys & {w.folded for w in later.words}:
        return [run, later]
    return [run]


def _gender(words: tuple[str, ...], start: int) -> str | None:
    """"fils" or "fille" when a pronoun soon after says which ("il a huit mois", "pour elle")."""
    for w in words[start : start + 12]:
        if w in ("il", "lui"):
            return "fils"
        if w in ("elle",):
            return "fille"
    return None


def _name_after(scan: NameScan, start: int, claimed: set[int]) -> list[Run]:
    """The runs of the name said from word ``start`` on (a block glued by commas and
    spellings), when nothing in between says the caller is now speaking of themselves."""
    words = scan.words
    block: list[Run] = []
    for run in scan.runs:
        if run.first < start or any(w.at in claimed for w in run.words):
            continue
        if not block:
            gap = words[start : run.first]
            if run.first - start > PATIENT_GAP or any(w in CALLER for w in gap) or any(
                (words[k], words[k + 1]) in COMPOUNDS or (words[k] in RELATIONS and k > start)
                for k in range(start, run.first - 1)
            ):
                return []
            block.append(run)
            continue
        between = words[block[-1].last : run.first]
        if all(w in ("c'est", "euh") for w in between) and run.clause - block[-1].clause <= 2:  # "Tom et Léa": two
            block.append(run)
        else:
            break
    return block


def _patient(block: list[Run], after_relation: bool) -> Person | None:
    """The person a block of runs names; alone after a relation, a name is a first name
    ("ma femme Abena"), unless a title says otherwise ("ma mère, madame Meyer")."""
    if not block:
        return None
    segments: list[list[Word]] = [list(r.words) for r in block]
    words = [w for seg in segments for w in seg]
    title = block[0].title is not None
    if after_relation and len(words) == 1 and not title and words[0].role is None:
        return Person(words[0].shown, None)
    person = person_of(segments, title)
    return None if person.first is None and person.last is None else person


def _marker_before(words: tuple[str, ...], at: int) -> int:
    """Where the last correction marker before word ``at`` stands (-1: none)."""
    last = -1
    for k in range(at):
        if words[k] in MARKER_WORDS or words[k] == "finalement" or any(words[k : k + len(p)] == p
                                                                      for p in MARKER_PHRASES):
            last = k
    return last


def read_someone(tokens: tuple[Token, ...], scan: NameScan | None = None) -> Someone | None:
    """The relation and patient a turn names, or None when the turn says nothing of it."""
    if not tokens:
        return None
    scan = scan if scan is not None else scan_names(tokens, asked=True)
    words = scan.words
    specific = _relations(tokens, words)
    role = _role_of(words, tokens, scan)
    said = frozenset(words)
    other: list[tuple[int, int]] = []
    for phrase in _said(OTHER, said):
        for i in _find_all(words, phrase):
            talk = {"parler", "passer", "passez", "parle"} & set(words[max(0, i - 3) : i])
            if (phrase == ("pas", "pour", "moi") or not _negated(words, i)) and not talk:
                other.append((i, i + len(phrase)))
    replaced = bool(_find_all(words, ("pas", "pour", "moi")))
    taken_back = False  # "pour ma femme, non, pour moi pardon": the relation taken back
    for phrase in _said(SELF, said):  # "c'est pas pour ma fille, c'est pour moi": the caller after all
        for i in _find_all(words, phrase):
            if not (i > 0 and words[i - 1] == "pas") and words[i + 2 : i + 3] != ("meme",):
                replaced |= any(s.first < i for s in specific)
                taken_back |= any(s.first < i and _marker_before(words[s.last : i], len(words[s.last : i])) >= 0
                                  for s in specific)
                specific = [s for s in specific if s.first > i and words[max(0, s.first - 2) : s.first].count("pour")]
                other = [o for o in other if o[0] > i and words[o[0] : o[1]] != ("pas", "pour", "moi")]
    claimed: set[int] = set()
    relation: str | None = None
    patient: Person | None = None
    at = end = -1
    mention: _Mention | None = None
    if specific:
        mention = specific[-1]
    elif role is not None:
        mention = role[0]
    if mention is not None:
        at, end, relation = mention.first, mention.last, mention.relation
        replaced |= len(specific) > 1
    elif other:
        (at, end), relation = max(other, key=lambda o: (o[1], o[1] - o[0])), "autre"
    # The patient's name: after its role, its relation, a label, "il s'appelle", "pour monsieur".
    blocks: list[tuple[list[Run], bool]] = []
    if role is not None and (mention is role[0]):
        blocks.append((_with_repeat(scan, role[1]), True))  # "le papa de Nino": a first name
    for i, w in enumerate(words):  # "celui de Léo", "celui d'Albert": the appointment of someone named
        if w in ("celui", "celle") and i + 1 < len(words) and (words[i + 1] in ("de", "du") or
                                                                words[i + 1].startswith("d'")):
            run = next((r for r in scan.runs if r.first in (i + 1, i + 2)), None)
            if run is not None and not any(x.folded in DATE_WORDS for x in run.words) \
                    and (_capital(tokens, run) or is_first_name(run.words[0].folded)):
                blocks.append(([run], False))
    for label in scan.patient_labels:
        blocks.append((_name_after(scan, label, claimed), False))
    for phrase in _said(THIRD_PERSON, said):
        for i in _find_all(words, phrase):
            blocks.append((_name_after(scan, i + len(phrase), claimed), False))
            if relation is None and phrase[0] in ("il", "elle"):
                relation, at, end = "autre", i, i + len(phrase)
    for run in scan.runs:
        if run.title is not None and run.first > 1 and words[run.first - 1] == "pour" \
                and words[run.first - 2] not in ("rendez-vous", "rdv", "vous", "consultation"):
            blocks.append(([run], False))  # "le rendez-vous est pour monsieur Jacques Tessier"
            if relation is None:
                relation, at, end = "autre", run.first - 1, run.last
    if mention is not None and mention is not (role[0] if role else None):
        blocks.append((_name_after(scan, mention.last, claimed), True))
    for block, after_relation in blocks:
        if block and patient is None:
            patient = _patient(block, after_relation)
            if patient is not None:
                claimed.update(w.at for r in block for w in r.words)
                at = min(at, block[0].first) if at >= 0 else block[0].first
                end = max(end, block[-1].last)
    if relation == "enfant":
        relation = _gender(words, max(end, 0)) or relation
    if relation is None and patient is None:
        return Someone(None, None, 0, 0, frozenset(), True) if taken_back else None
    corrected = False
    if mention is not None or relation is not None:
        marker = _marker_before(words, at if at >= 0 else len(words))
        caller_before = any(r.last <= marker for r in scan.runs if not ({w.at for w in r.words} & claimed))
        corrected = marker >= 0 and (replaced or caller_before)
    first = max(at, 0)
    return Someone(relation, patient, first, max(end, first + 1), frozenset(claimed), corrected)
