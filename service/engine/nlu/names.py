"""People's names: "c'est Jean Dupont", "Dupont Jean", "monsieur Martin", "Nguyen Van Minh",
"Martin non Martinez", "Lefèvre, l e f e b v r e", and what is not a name ("c'est privé",
"pourquoi faire ?").

No kept library extracts a person's name from French speech-to-text without a downloaded
model, so the reading is written by hand; what it needs to know about names comes from
data: ``data/first_names_fr.tsv``, derived from names-dataset (Apache 2.0 by the licence file it ships, MIT by its metadata; see the licence file
beside it and ``tools/derive_first_names.py``), gives each first name its popularity rank
as a first name and as a last name among French callers. Comparing the two tells
"Dupont Marie" from "Marie Dupont" and "c'est Ghislaine" (a first name alone) from "c'est
Martin". A surname that is also a French word or a day ("Lundi", "Petit", "Marchand") is a
name when a name was asked; in an opening sentence a name needs its introduction ("c'est",
"je m'appelle", "ici", "moi c'est", "de la part de"…) and must look like a name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from rapidfuzz import fuzz

from service.engine.nlu.tokens import TEENS, TENS, UNITS, Token, tokenize

NameIssue = Literal["refused", "question", "first_only"]


@dataclass(frozen=True, slots=True)
class Name:
    """A caller's name; ``first`` is None when only a title and last name were given."""

    first: str | None
    last: str


@dataclass(frozen=True, slots=True)
class Person:
    """A name as read: either part may be missing (a first name alone has no ``last``)."""

    first: str | None
    last: str | None


@dataclass(frozen=True, slots=True)
class NameFound:
    """A name read from a turn, the words it came from, and how it was read."""

    person: Person | None
    issue: NameIssue | None
    first: int
    last: int
    corrected: bool = False


def _load() -> dict[str, tuple[int, int]]:
    table: dict[str, tuple[int, int]] = {}
    text = resources.files("service.engine.nlu").joinpath("data/first_names_fr.tsv").read_text("utf-8")
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, first, last = line.split("\t")
            table[name] = (int(first), int(last))
    return table


FIRST_RANKS = _load()
NEVER_LAST = 60000  # the rank given to a first name never seen as a last name

TITLES = frozenset({"monsieur", "madame", "mademoiselle", "m", "mme", "mlle", "mr", "docteur", "dr", "maitre"})
PARTICLES = frozenset({"de", "du", "des", "d'", "le", "la", "van", "von", "der", "den", "di", "da", "del", "dos", "el",
                       "al", "ben", "bin", "mac", "mc", "ter", "ten", "y", "abou", "ould"})
INTROS = (
    ("je", "m'appelle"), ("je", "m", "appelle"), ("moi", "c'est"), ("mon", "nom", "c'est"), ("mon", "nom", "est"),
    ("mon", "nom", "de", "famille", "c'est"), ("mon", "nom", "de", "famille", "est"), ("mon", "nom", "de", "famille"),
    ("mon", "nom"), ("le", "nom", "c'est"), ("le", "nom"), ("au", "nom", "de"), ("au", "nom", "d'"),
    ("ce", "serait", "au", "nom", "de"), ("ce", "sera", "au", "nom", "de"), ("a", "mon", "nom"),
    ("de", "la", "part", "de"), ("de", "la", "part", "d'"), ("c'est", "de", "la", "part", "de"), ("je", "suis"),
    ("ici",), ("c'est",), ("c", "est"), ("nom",), ("c'est", "moi"), ("c'est", "pour"), ("c", "est", "pour"),
)
# Intros that open a name on their own, even in a first sentence.
STRONG_INTROS = frozenset({("je", "m'appelle"), ("je", "m", "appelle"), ("moi", "c'est"), ("mon", "nom", "c'est"),
                           ("mon", "nom", "est"), ("mon", "nom", "de", "famille", "c'est"), ("de", "la", "part", "de"),
                           ("de", "la", "part", "d'"), ("c'est", "de", "la", "part", "de"), ("au", "nom", "de"),
                           ("mon", "nom", "de", "famille", "est")})
LEAD = frozenset({"oui", "bonjour", "bonsoir", "alors", "donc", "euh", "heu", "hum", "ben", "bah", "bien", "sur", "ok",
                  "voila", "allo", "eh", "moi", "ah", "oh", "madame", "monsieur", "et", "bon", "d'accord", "hello",
                  "salut", "excusez-moi", "pardon"})
TRAIL = frozenset({"merci", "voila", "svp", "s'il", "vous", "plait", "euh", "hum", "bonjour", "bonsoir", "revoir",
                   "au", "beaucoup"})
LABEL_GLUE = frozenset({"de", "famille", "c'est", "c", "est", "mon", "ma", "et", "alors", "euh", "hum", "donc"})
# Words that never belong to a name: a sentence, not a name, was said. (A vocabulary of
# French function words and the booking's own words, not a list of names.)
NOT_NAME = frozenset(
    ["je", "tu", "il", "elle", "on", "nous", "vous", "ils", "elles", "me", "te", "se", "sais", "pas", "sait", "savoir", "pourquoi", "quoi", "comment", "qui", "quand", "combien", "oui", "non", "rien", "ca", "cela", "ceci", "est", "sont", "suis", "es", "etes", "a", "ai", "as", "avons", "avez", "ont", "veux", "voudrais", "voulez", "voudrait", "souhaite", "souhaiterais", "aimerais", "peux", "pouvez", "dois", "faut", "rendez-vous", "rendez", "rdv", "prendre", "annuler", "deplacer", "decaler", "changer", "reporter", "matin", "apres-midi", "midi", "soir", "demain", "aujourd'hui", "premier", "deuxieme", "troisieme", "dernier", "heure", "heures", "h", "et", "ou", "mais", "donc", "or", "ni", "car", "un", "une", "des", "les", "au", "aux", "avec", "pour", "par", "sur", "sous", "dans", "en", "y", "ne", "plus", "tres", "bien", "mal", "merci", "bonjour", "au-revoir", "demandez", "demande", "dire", "dit", "appelle", "appelais", "nom", "prenom", "telephone", "numero", "docteur", "medecin", "cabinet", "personne", "quelqu'un", "quelqu", "parler", "aucun", "aucune", "autre", "creneau", "creneaux", "accord", "d'accord", "attendez", "attends", "pardon", "excusez", "repetez", "comprends", "compris", "mon", "ma", "mes", "ton", "ta", "ses", "leur", "euh", "hum", "bah", "ben", "allo", "faire", "fait", "fais", "peut-etre", "bof", "zut", "mince", "prive", "privee", "confidentiel", "secret", "necessaire", "obligatoire", "utile", "besoin", "prefere", "preferais", "envie", "question", "parfait", "bon", "bonne", "note", "ok", "voila", "exact", "exactement", "correct", "c'est", "c", "que", "qu'", "ce", "cet", "cette", "ces", "son", "sa", "lui", "moi", "toi", "fille", "fils", "mari", "femme", "mere", "pere", "enfant", "enfants", "maman", "papa", "bebe", "frere", "soeur", "ami", "amie", "voisin", "voisine", "rappeler", "rappelle", "appeler", "urgent", "urgence", "consultation", "visite", "seance", "controle", "vaccin", "ordonnance", "disponible", "dispo", "libre", "possible", "impossible", "semaine", "mois", "jour", "jours", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre", "octobre", "novembre", "decembre", "l'adresse", "adresse", "parking", "prix", "tarif", "horaires", "ouvert", "ferme", "vite", "tot", "tard", "plutot", "vers", "entre", "avant", "apres", "chez", "ici", "la-bas", "j'aimerais", "j'ai", "j'voudrais", "aimerait", "j'appelle", "j'appelais", "d'autre", "autres", "malade", "malades", "tout", "tous", "toute", "toutes", "meme", "aussi", "encore", "deja", "jamais", "toujours", "vraiment", "juste"]
) | frozenset(UNITS) | frozenset(TEENS) | frozenset(TENS)
# Words that French uses as surnames and are common words too: names when a name is asked.
WORD_SURNAMES_OK = frozenset({"lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "petit", "prix",
                              "juin", "mars", "avril", "mai", "bon", "bonne", "leblanc", "noel", "aout", "chevalier",
                              "marchand", "boulanger", "fontaine", "blanc", "roux", "brun", "lebrun", "leroy", "rose",
                              "parfait", "juste", "toussaint", "pascal"})
REFUSALS = (("prive",), ("privee",), ("confidentiel",), ("secret",), ("anonyme",), ("je", "prefere", "pas"),
            ("je", "prefere", "ne", "pas"), ("je", "ne", "prefere", "pas"), ("prefere", "ne", "pas"),
            ("je", "veux", "pas"), ("je", "ne", "veux", "pas"), ("ne", "vous", "regarde"), ("vous", "regarde", "pas"),
            ("je", "refuse"), ("pas", "question"), ("non", "merci"), ("je", "ne", "le", "donne"),
            ("je", "le", "donne", "pas"), ("je", "ne", "donne", "pas"), ("pas", "envie"), ("ne", "souhaite", "pas"),
            ("souhaite", "pas"), ("sans", "nom"), ("garder", "pour", "moi"), ("je", "ne", "dirai"),
            ("je", "dirai", "pas"), ("pas", "besoin", "de", "mon", "nom"), ("aucune", "raison"))
QUESTIONS = (("pourquoi",), ("c'est", "necessaire"), ("c", "est", "necessaire"), ("necessaire",), ("obligatoire",),
             ("vous", "avez", "besoin"), ("faut", "il"), ("il", "faut"), ("a", "quoi", "ca", "sert"),
             ("ca", "sert", "a", "quoi"), ("pour", "quoi", "faire"), ("c'est", "pour", "quoi"), ("vraiment",),
             ("est-ce", "que", "je", "dois"), ("je", "dois"), ("utile",))
CORRECTION_WORDS = frozenset({"non", "pardon", "enfin", "plutot", "pardonnez-moi", "oups", "trompe", "trompee"})
CORRECTION_PHRASES = (("je", "veux", "dire"), ("je", "voulais", "dire"), ("ou", "plutot"), ("ah", "non"),
                      ("je", "me", "suis", "trompe"), ("je", "me", "suis", "trompee"))
SPELLING_WORDS = {"tiret": "-", "trait": "-", "apostrophe": "'", "espace": " "}
LETTER_NAMES = {"ache": "h", "double-v": "w", "zed": "z", "i-grec": "y", "ix": "x", "ka": "k", "esse": "s",
                "emme": "m", "enne": "n", "elle": "l", "erre": "r", "effe": "f", "ji": "j", "ku": "q"}
DOUBLES = frozenset({"deux", "double", "2"})


# ----------------------------------------------------------------------------- scoring


def first_score(word: str) -> float:
    """How much more a first name than a last name ``word`` is (log of the rank ratio); a
    word never seen as a first name scores -3, a hyphenated one by its weakest part."""
    entry = FIRST_RANKS.get(word)
    if entry is None:
        parts = [p for p in word.split("-") if p]
        if len(parts) > 1 and all(p in FIRST_RANKS for p in parts):
            return min(first_score(p) for p in parts)
        return -3.0
    first, last = entry
    return math.log((last or NEVER_LAST) / first)


def is_first_name(word: str) -> bool:
    """True for a known first name that is more often a first than a last name."""
    return first_score(word) > 0.5 and FIRST_RANKS.get(word.split("-")[0], (NEVER_LAST, 0))[0] <= 5000


# ----------------------------------------------------------------------------- display


def cap(word: str) -> str:
    """"marie-claire" → "Marie-Claire", "n'diaye" → "N'Diaye", "d'artagnan" → "d'Artagnan"."""
    def one(part: str) -> str:
        if "'" in part:
            head, _, tail = part.partition("'")
            if head == "d":
                return "d'" + one(tail)
            return head.capitalize() + "'" + one(tail)
        return part[:1].upper() + part[1:]

    return "-".join(one(p) for p in word.replace("’", "'").split("-"))


def join_last(words: list[str], folded: list[str]) -> str:
    """Last-name words joined, particles in their usual case ("de La Tour", "Le Gall")."""
    out = []
    for i, (w, f) in enumerate(zip(words, folded, strict=True)):
        out.append(f if f in ("de", "du", "des", "d'") and i < len(words) - 1 else w)
    return " ".join(out).replace("d' ", "d'")


# ----------------------------------------------------------------------------- pieces


@dataclass(frozen=True, slots=True)
class _Piece:
    folded: str
    shown: str  # display form, accents kept, lower case


def _phrase_at(words: tuple[str, ...], i: int, phrase: tuple[str, ...]) -> bool:
    return words[i : i + len(phrase)] == phrase


def _find(words: tuple[str, ...], phrase: tuple[str, ...]) -> int:
    for i in range(len(words) - len(phrase) + 1):
        if words[i : i + len(phrase)] == phrase:
            return i
    return -1


def _spelled(pieces: list[_Piece]) -> tuple[int, str] | None:
    """A spelling at the end of ``pieces`` ("l e f e b v r e", "deux n", "n comme Nicolas",
    "tiret", "o apostrophe"): where it starts and the letters it spells."""
    out: list[str] = []
    start = len(pieces)
    i = len(pieces) - 1
    letters = 0
    while i >= 0:
        f = pieces[i].folded
        if len(f) == 1 and f.isalpha():
            if i > 0 and pieces[i - 1].folded in DOUBLES:
                out.insert(0, f * 2)
                i -= 2
            else:
                out.insert(0, f)
                i -= 1
            letters += 1
            start = i + 1
            continue
        if f in LETTER_NAMES:
            out.insert(0, LETTER_NAMES[f])
            letters += 1
            i -= 1
            start = i + 1
            continue
        if f in SPELLING_WORDS and letters:
            out.insert(0, SPELLING_WORDS[f])
            i -= 1
            start = i + 1
            continue
        if i >= 2 and pieces[i - 1].folded == "comme" and len(pieces[i - 2].folded) == 1:
            out.insert(0, pieces[i - 2].folded)
            letters += 1
            i -= 3
            start = i + 1
            continue
        if "-" in f and all(len(p) == 1 for p in f.split("-") if p) and len(f) >= 5:
            out.insert(0, f.replace("-", ""))
            letters += len(f.replace("-", ""))
            i -= 1
            start = i + 1
            continue
        break
    if letters < 3:
        return None
    word = "".join(out).strip()
    return start, word


def _apply_spelling(pieces: list[_Piece]) -> list[_Piece]:
    found = _spelled(pieces)
    if found is None:
        return pieces
    start, spelled = found
    head = pieces[:start]
    piece = _Piece(spelled, spelled)
    if not head:
        return [piece]
    # The spelling replaces the heard words it spells (the most similar, the last by default):
    # one word ("Lefèvre, l e f e b v r e") or the last few ("Le Goff, l e tiret g o deux f").
    target = spelled.replace("-", "").replace(" ", "")
    options = [(fuzz.ratio(p.folded.replace("-", ""), target), k, k + 1) for k, p in enumerate(head)]
    options += [(fuzz.ratio("".join(p.folded for p in head[k:]).replace("-", ""), target), k, len(head))
                for k in range(len(head) - 1)]
    score, lo, hi = max(options, key=lambda o: (o[0], o[2] - o[1], o[1]))
    if score < 40:
        lo, hi = len(head) - 1, len(head)
    return [*head[:lo], piece, *head[hi:]]


def _split_correction(pieces: list[_Piece]) -> tuple[list[_Piece], bool]:
    """"Martin non Martinez", "Jean Dupond pardon Dupont": the words after the marker win."""
    words = tuple(p.folded for p in pieces)
    cut = -1
    end = -1
    for i, w in enumerate(words):
        if w in CORRECTION_WORDS and i > 0:
            cut, end = i, i + 1
        for phrase in CORRECTION_PHRASES:
            if i > 0 and _phrase_at(words, i, phrase):
                cut, end = i, i + len(phrase)
    if cut < 0:
        return pieces, False
    before = pieces[:cut]
    after = [p for p in pieces[end:] if p.folded not in CORRECTION_WORDS and p.folded not in ("euh", "c'est", "je")]
    if not after:
        return before, False
    if len(after) >= 2 or len(before) <= 1:
        return after, True
    scores = [fuzz.ratio(p.folded, after[0].folded) for p in before]
    best = max(range(len(before)), key=lambda k: (scores[k], k))
    return [*before[:best], after[0], *before[best + 1 :]], True


def _acceptable(pieces: list[_Piece], asked: bool) -> bool:
    """True when the pieces can be a name: no sentence word, no stray letter."""
    if not pieces or len(pieces) > 5 or all(p.folded in PARTICLES for p in pieces):
        return False
    for p in pieces:
        f = p.folded
        if f in PARTICLES:
            continue
        if any(ch.isdigit() for ch in f) or (len(f) < 2 and f != "d'"):
            return False
        if f in TITLES or (f in NOT_NAME and not (asked and f in WORD_SURNAMES_OK)):
            return False
    return True


def person_of(pieces: list[_Piece], title: bool = False) -> Person:
    """First and last name from name words in the order said."""
    shown = [cap(p.shown) for p in pieces]
    folded = [p.folded for p in pieces]
    if len(pieces) == 1:
        if not title and is_first_name(folded[0]) and folded[0] not in WORD_SURNAMES_OK:
            return Person(shown[0], None)
        return Person(None, shown[0])
    if folded[0] in PARTICLES:
        # "Le Goff Yannick", "Van Damme Jean-Claude": a last name said first.
        if len(folded) >= 3 and is_first_name(folded[-1]):
            return Person(shown[-1], join_last(shown[:-1], folded[:-1]))
        return Person(None, join_last(shown, folded))
    if len(folded) == 3 and folded[1] in ("van", "thi", "thanh", "duc", "ngoc") and first_score(folded[0]) < -1:
        return Person(" ".join(shown[1:]), shown[0])  # "Nguyen Van Minh": family name first
    if title and not is_first_name(folded[0]):
        return Person(None, join_last(shown, folded))  # "monsieur de la Tour"
    inner = next((k for k in range(1, len(folded) - 1) if folded[k] in PARTICLES), None)
    if inner is not None:  # "Karim Ben Ali", "Jean de La Fontaine": the particle opens the last name
        return Person(" ".join(shown[:inner]), join_last(shown[inner:], folded[inner:]))
    head, tail = first_score(folded[0]), first_score(folded[-1])
    if tail - head > 1.0 and tail > 1.0:
        return Person(shown[-1], join_last(shown[:-1], folded[:-1]))  # "Dupont Marie"
    return Person(shown[0], join_last(shown[1:], folded[1:]))


# ----------------------------------------------------------------------------- reading


def _pieces(tokens: tuple[Token, ...], lo: int, hi: int) -> list[_Piece]:
    return [_Piece(t.word, t.raw.lower().replace("’", "'")) for t in tokens[lo:hi]]


_INTROS_LONGEST_FIRST = tuple(sorted(INTROS, key=len, reverse=True))


def _intros(words: tuple[str, ...]) -> list[tuple[int, int, bool]]:
    """Every name introduction in ``words``: where it starts, where the name starts, and
    whether it is strong enough to open a name in a first sentence."""
    found: list[tuple[int, int, bool]] = []
    for i in range(len(words)):
        if found and i < found[-1][1]:
            continue
        for phrase in _INTROS_LONGEST_FIRST:
            if _phrase_at(words, i, phrase):
                found.append((i, i + len(phrase), phrase in STRONG_INTROS))
                break
    return found


def _candidate_end(words: tuple[str, ...], start: int, asked: bool) -> int:
    """Where the name that starts at ``start`` ends: at the first sentence word."""
    end = start
    while end < len(words):
        w = words[end]
        if w in CORRECTION_WORDS or any(_phrase_at(words, end, p) for p in CORRECTION_PHRASES) or (
            len(w) == 1 and w.isalpha() and end > start
        ):
            end += 1
            continue
        if (w in NOT_NAME and not (asked and w in WORD_SURNAMES_OK)) or w in TRAIL or any(ch.isdigit() for ch in w):
            if w in PARTICLES or w in ("comme", "tiret", "apostrophe") or w in DOUBLES or w in TITLES:
                end += 1
                continue
            break
        end += 1
    return end


def refusal(words: tuple[str, ...]) -> NameIssue | None:
    """"refused" or "question" when the turn turns the name question down or asks back."""
    if any(_find(words, p) >= 0 for p in REFUSALS):
        return "refused"
    if any(_find(words, p) >= 0 for p in QUESTIONS):
        return "question"
    return None


def _labelled(tokens: tuple[Token, ...]) -> Person | None:
    """"mon prénom c'est Alain et mon nom c'est Dupuis": read by label."""
    parts: dict[str, list[_Piece]] = {"prenom": [], "nom": []}
    label: str | None = None
    for t in tokens:
        if t.word in parts:
            label = t.word
        elif label is not None:
            glue = LABEL_GLUE - PARTICLES if parts[label] else LABEL_GLUE
            if t.word not in glue and t.word not in TRAIL:
                parts[label].append(_Piece(t.word, t.raw.lower()))
    first, last = parts["prenom"], parts["nom"]
    if not _acceptable(first, True) or len(first) > 2:
        return None
    first_shown = " ".join(cap(p.shown) for p in first)
    if not last:
        return Person(first_shown, None)
    if not _acceptable(last, True):
        return None
    return Person(first_shown, join_last([cap(p.shown) for p in last], [p.folded for p in last]))


def read_name(tokens: tuple[Token, ...], asked: bool, strict_words: bool = False) -> NameFound | None:
    """The name a turn gives. ``asked``: the assistant just asked for a name, so any words
    that can be a name are one; otherwise a name needs its introduction."""
    words = tuple(t.word for t in tokens)
    if not words or len(words) > 40:
        return None
    if asked and "prenom" in words:
        labelled = _labelled(tokens)
        if labelled is not None:
            return NameFound(labelled, "first_only" if labelled.last is None else None, 0, len(tokens))
    intros = _intros(words)
    strong = [i for i in intros if i[2]]
    weak = [i for i in intros if not i[2]]
    starts: list[tuple[int, tuple[int, int, bool] | None]] = [(i[1], i) for i in strong[-1:]]
    if asked:
        starts.append((0, None))
    starts.extend((i[1], i) for i in reversed(weak))
    found: NameFound | None = None
    for start, used in starts:
        found = _read_from(tokens, words, start, used, asked, strict_words)
        if found is not None and found.person is not None:
            return found
    return found


def _read_from(tokens: tuple[Token, ...], words: tuple[str, ...], start: int,
               intro: tuple[int, int, bool] | None, asked: bool, strict_words: bool) -> NameFound | None:
    """The name that starts at word ``start`` (after ``intro``, if any)."""
    while start < len(words) and words[start] in LEAD and not (start + 1 < len(words) and words[start] in TITLES):
        start += 1
    title = False
    if start < len(words) and words[start] in TITLES:
        title, start = True, start + 1
    end = _candidate_end(words, start, asked and not strict_words)
    while end > start and words[end - 1] in TRAIL:
        end -= 1
    pieces = _pieces(tokens, start, end)
    pieces, corrected = _split_correction(pieces)
    seen = [p.folded for p in pieces]
    again = next((k for k in range(len(seen)) if len(seen[k]) > 1 and seen[k] in seen[:k]), None)
    if again is not None and len(seen) > 2:
        pieces = pieces[seen.index(seen[again]) + 1 :]  # "Rigaud. Hélène Rigaud.": said again in full
    pieces = _apply_spelling(pieces)
    if not _acceptable(pieces, asked):
        turned_down = refusal(words) if asked else None
        return NameFound(None, turned_down, 0, len(tokens)) if turned_down else None
    if intro is None or not intro[2]:
        # Without a strong introduction the words must look like a name.
        if not asked and not _looks_like_name(tokens, start, end, title):
            return None
        if asked and intro is None and len(pieces) > 4:
            return None
    person = person_of(pieces, title)
    issue: NameIssue | None = "first_only" if person.last is None else None
    return NameFound(person, issue, start - (1 if title else 0), end, corrected)


def _looks_like_name(tokens: tuple[Token, ...], start: int, end: int, title: bool) -> bool:
    """In a first sentence: a title, a known first name first, or capitals mid-sentence."""
    if start >= end:
        return False
    if title:
        return True
    if is_first_name(tokens[start].word):
        return True
    return all(t.raw[:1].isupper() for t in tokens[start:end]) and start > 0


def name(text: str) -> Name | None:
    """The caller's name when a name was asked, or None when no full-enough name was given
    (a first name alone, a refusal, a question back)."""
    if not isinstance(text, str):
        return None
    found = read_name(tokenize(text), asked=True)
    if found is None or found.person is None or found.person.last is None:
        return None
    return Name(found.person.first, found.person.last)
