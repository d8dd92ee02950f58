"""People's names as callers say them: "c'est Jean Dupont", "Dupont Jean", "Durand, Michel",
"monsieur Martin", "madame Lopes Maria", "Nguyen Van Minh", "Ferreira, Joaquim Ferreira",
"Martin non Martinez", "Kerouac, K E R O U A C, Yann", "Benoît tout court, c'est mon nom
de famille. Le prénom c'est Sandrine", and what is not a name ("c'est privé", "pourquoi
faire ?", "comme la couleur").

No kept library extracts a person's name from French speech-to-text without a downloaded
model, so the reading is written by hand, on the turn's tokens, in one scan:

1. *name words* are found by their shape: capitalised mid-sentence when the transcript is
   cased (a lower-case word of a cased transcript is a name only if it is a known name),
   otherwise any word that is not a sentence word; titles ("madame"), particles ("Le",
   "de", "Ben"), spellings (:mod:`spelling`), comments on the spelling ("avec un B", "comme
   la couleur", "pas Moreaux"), labels ("prénom …", "… c'est le nom de famille") and
   correction markers ("non", "pardon", "enfin") are marked; consecutive name words in
   one clause make a *run*;
2. a spelling confirms the word it spells (kept as heard, accents included) or replaces
   it when the letters differ; a label gives its run a role (first or last name);
3. the runs that are the caller's are chosen: all of them when a name was asked, else
   those introduced ("c'est", "je m'appelle", "au nom de", a title, "… à l'appareil") or
   shaped like a name; runs that belong to someone else (the patient) are left out;
4. a correction marker between two runs takes the earlier back (a full name replaces it
   all, one word replaces the most similar word); a run said again inside a fuller one
   ("Ferreira, Joaquim Ferreira") is read once;
5. the order is decided by labels, else by what the first-name data says of each word
   and how they were said ("Nom, Prénom" after a comma, after a title, a surname framing
   the first name: "Le Gall Anne Le Gall").

What the reading needs to know about names comes from data: ``data/first_names_fr.tsv``,
derived from names-dataset (Apache 2.0 by the licence file it ships, MIT by its
metadata; see the licence file beside it and ``tools/derive_first_names.py``), gives each
first name its popularity rank as a first name and as a last name among French callers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from importlib import resources
from typing import Literal

from rapidfuzz import fuzz

from service.engine.nlu.spelling import Spelled, spelled_runs
from service.engine.nlu.tokens import TEENS, TENS, UNITS, Token, tokenize

NameIssue = Literal["refused", "question", "first_only"]
Role = Literal["first", "last", "old"]


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
    strong: bool = False  # introduced, titled or of two words or more: not a stray word
    used: frozenset[int] = frozenset()  # the tokens of the name's words


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

TITLES = frozenset({"monsieur", "madame", "mademoiselle", "mme", "mlle", "mr", "docteur", "dr", "maitre",
                    "professeur"})
FEMALE_TITLES = frozenset({"madame", "mme", "mademoiselle", "mlle"})
MALE_TITLES = frozenset({"monsieur", "mr"})
PARTICLES = frozenset({"de", "du", "des", "d'", "le", "la", "van", "von", "der", "den", "di", "da", "del", "dos", "el",
                       "al", "ben", "bin", "mac", "mc", "ter", "ten", "y", "abou", "ould"})
INTROS = (
    ("je", "m'appelle"), ("je", "m", "appelle"), ("moi", "c'est"), ("moi", "c", "est"), ("mon", "nom", "c'est"),
    ("mon", "nom", "est"), ("mon", "nom", "c", "est"), ("mon", "nom", "de", "famille", "c'est"),
    ("mon", "nom", "de", "famille", "est"), ("mon", "nom", "de", "famille"), ("au", "nom", "de"), ("au", "nom", "d'"),
    ("je", "me", "nomme"), ("a", "mon", "nom"), ("de", "la", "part", "de"), ("de", "la", "part", "d'"),
    ("je", "suis"), ("ici",), ("c'est",), ("c", "est"), ("c'est", "moi"), ("c", "est", "moi"), ("c'est", "pour"),
    ("au", "nom"), ("de", "la", "part"),
    ("c", "est", "pour"), ("vous", "avez"), ("vous", "etes"), ("ca", "sera"), ("ce", "sera"),
)
# Intros that open a name on their own, even in a first sentence.
STRONG_INTROS = frozenset({("je", "m'appelle"), ("je", "m", "appelle"), ("moi", "c'est"), ("moi", "c", "est"),
                           ("mon", "nom", "c'est"), ("mon", "nom", "est"), ("mon", "nom", "c", "est"),
                           ("mon", "nom", "de", "famille", "c'est"), ("mon", "nom", "de", "famille", "est"),
                           ("mon", "nom", "de", "famille"), ("de", "la", "part", "de"), ("de", "la", "part", "d'"),
                           ("au", "nom", "de"), ("au", "nom", "d'"), ("je", "me", "nomme"), ("a", "mon", "nom"),
                           ("au", "nom"), ("de", "la", "part")})
_INTROS_LONGEST_FIRST = tuple(sorted(INTROS, key=len, reverse=True))
# Said before a name (or between an introduction and the name) without being part of it.
LEAD = frozenset({"oui", "bonjour", "bonsoir", "alors", "donc", "euh", "heu", "hum", "ben", "bah", "bien", "sur", "ok",
                  "voila", "allo", "eh", "ah", "oh", "et", "bon", "d'accord", "hello", "salut", "excusez-moi", "pardon",
                  "enfin", "madame", "monsieur", "moi", "ouais", "tout", "simplement"})
# A name is not the caller's when a preposition or an article stands right before it:
# "voir le docteur Martin", "depuis la Toussaint", "en France".
NOT_AFTER = frozenset({"le", "la", "les", "l'", "un", "une", "des", "du", "au", "aux", "en", "a", "dans", "chez", "par",
                       "sur", "vers", "avec", "depuis", "mon", "ma", "mes", "ton", "ta", "tes", "son", "sa", "ses",
                       "notre", "votre", "nos", "vos", "leur", "leurs", "de", "d'", "pour", "comme"})
# Words that never belong to a name: a sentence, not a name, was said. (A vocabulary of
# French function words and the booking's own words, not a list of names.)
NOT_NAME = frozenset(
    ["je", "tu", "il", "elle", "on", "nous", "vous", "ils", "elles", "me", "te", "se", "sais", "pas", "sait", "savoir", "pourquoi", "quoi", "comment", "qui", "quand", "combien", "oui", "non", "rien", "ca", "cela", "ceci", "est", "sont", "suis", "es", "etes", "a", "ai", "as", "avons", "avez", "ont", "veux", "voudrais", "voulez", "voudrait", "souhaite", "souhaiterais", "aimerais", "peux", "pouvez", "dois", "faut", "rendez-vous", "rendez", "rdv", "prendre", "annuler", "deplacer", "decaler", "changer", "reporter", "matin", "apres-midi", "midi", "soir", "demain", "aujourd'hui", "premier", "deuxieme", "troisieme", "dernier", "heure", "heures", "h", "et", "ou", "mais", "donc", "or", "ni", "car", "un", "une", "des", "les", "au", "aux", "avec", "pour", "par", "sur", "sous", "dans", "en", "y", "ne", "plus", "tres", "bien", "mal", "merci", "bonjour", "au-revoir", "demandez", "demande", "dire", "dit", "appelle", "appelais", "nom", "prenom", "telephone", "numero", "docteur", "medecin", "cabinet", "personne", "quelqu'un", "quelqu", "parler", "aucun", "aucune", "autre", "creneau", "creneaux", "accord", "d'accord", "attendez", "attends", "pardon", "excusez", "repetez", "comprends", "compris", "mon", "ma", "mes", "ton", "ta", "ses", "leur", "euh", "hum", "bah", "ben", "allo", "faire", "fait", "fais", "peut-etre", "bof", "zut", "mince", "prive", "privee", "confidentiel", "secret", "necessaire", "obligatoire", "utile", "besoin", "prefere", "preferais", "envie", "question", "parfait", "bon", "bonne", "note", "ok", "voila", "exact", "exactement", "correct", "c'est", "c", "que", "qu'", "ce", "cet", "cette", "ces", "son", "sa", "lui", "moi", "toi", "fille", "fils", "mari", "femme", "mere", "pere", "enfant", "enfants", "maman", "papa", "bebe", "frere", "soeur", "ami", "amie", "voisin", "voisine", "rappeler", "rappelle", "appeler", "urgent", "urgence", "consultation", "visite", "seance", "controle", "vaccin", "ordonnance", "disponible", "dispo", "libre", "possible", "impossible", "semaine", "mois", "jour", "jours", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "janvier", "fevrier", "mars", "avril", "mai", "juin", "juillet", "aout", "septembre", "octobre", "novembre", "decembre", "l'adresse", "adresse", "parking", "prix", "tarif", "horaires", "ouvert", "ferme", "vite", "tot", "tard", "plutot", "vers", "entre", "avant", "apres", "chez", "ici", "la-bas", "j'aimerais", "j'ai", "j'voudrais", "aimerait", "j'appelle", "j'appelais", "d'autre", "autres", "malade", "malades", "tout", "tous", "toute", "toutes", "meme", "aussi", "encore", "deja", "jamais", "toujours", "vraiment", "juste"]
) | frozenset(UNITS) | frozenset(TEENS) | frozenset(TENS)
# More sentence words: the words callers put around a name and its spelling.
STOP = NOT_NAME | frozenset(
    ["appareil", "l'appareil", "hein", "tiret", "apostrophe", "trema", "accent", "aigu", "grave", "circonflexe",
     "cedille", "lettre", "lettres", "mot", "mots", "fin", "debut", "famille", "jeune", "patient", "patiente",
     "bonsoir", "salut", "alors", "enfin", "desole", "desolee", "rigole", "plait", "s'il", "svp", "ouais", "voir",
     "passer", "appeler", "portable", "fixe", "ans", "an", "court", "simplement", "comme", "sans", "forme",
     "compose", "composee", "epelle", "epeler", "l'epelle", "maintenant", "ecrit", "s'ecrit", "ecrire", "prononce",
     "inverse", "francais", "francaise", "moi-meme", "abord", "d'abord", "dites-moi", "dites", "place", "fois",
     "dirai", "donne", "donner", "donnerai", "vois", "peut", "veut", "va", "vais", "sera", "serait", "etait",
     "avait", "mets", "met", "mettez", "appelez", "rappelez", "prends", "prend", "habite", "viens", "vient",
     "venir", "aller", "parle", "entend", "entends", "regarde", "cherche", "pense", "crois", "connais", "voulais",
     "voulait", "faudrait", "presse", "aide", "domicile", "collegue", "infirmiere", "infirmier", "secretaire",
     "secretariat", "ehpad", "creche", "ecole", "travail", "boulot", "hopital", "pharmacie", "mutuelle",
     "assurance", "bus", "train", "voiture", "marche", "genou", "dos", "tete", "ventre", "gorge", "fievre",
     "angine", "toux", "mal", "douleur", "bebe", "garcon", "gamin", "gamine", "grand", "grande", "petite",
     "mari", "epoux", "epouse", "maman", "papa", "beau-pere", "belle-mere", "grand-mere", "grand-pere", "tante",
     "oncle", "cousin", "cousine", "neveu", "niece", "voisin", "voisine", "ami", "amie", "copain", "copine",
     "resident", "residente", "beneficiaire", "beneficiaires", "client", "cliente", "medecin", "docteure",
     "juste", "bien", "sinon", "ensuite", "puis", "apres", "avant", "vers", "jusqu'a", "partir", "dispo",
     "matinee", "aprem", "soiree", "midi", "minuit", "heure", "heures", "prochain", "prochaine", "dernier",
     "derniere", "hier", "semaine", "week-end", "weekend", "matin", "soir", "nuit", "ce", "cet", "cette", "quel",
     "quelle", "quels", "quelles", "lequel", "laquelle", "celui", "celle", "ceux", "ou", "la-bas", "ici",
     "alle", "allee", "fait", "faites", "pu", "vu", "eu", "ete", "oublie", "note", "noter", "ecoutez", "merci",
     "revoir", "journee", "bonne", "beaucoup", "peu", "trop", "assez", "tres", "pas", "plus", "moins", "encore",
     "deja", "vraiment", "surtout", "seulement", "aujourd", "hui", "demain", "l'apres-midi", "apres-midi",
     "rendez", "vous", "rendez-vous", "rdv", "annulez", "annule", "deplace", "decale", "avance", "avancer",
     "repousse", "repousser", "recule", "reculer", "garde", "garder", "confirme", "confirmer", "verifier",
     "l'adresse", "l'heure", "ordonnance", "renouvellement", "visite", "visites", "tousse", "enceinte",
     "etudiant", "etudiante", "mois", "numero", "sms", "message", "rappel", "agenda", "calendrier", "mme",
     "tard", "tot", "possible", "possibles", "libre", "libres", "occupe", "occupee", "rien", "tout", "tous",
     "toute", "toutes", "chose", "autre", "autres", "meme", "memes", "facon", "maniere", "cas", "coup", "fois",
     "pris", "prise", "compte", "enregistre", "enregistree", "internet", "ligne", "site", "hier", "mien",
     "mienne", "miens", "tien", "tienne", "sien", "sienne", "notre", "votre", "leur", "nous", "eux"]
)
STOP |= LEAD | frozenset({"si", "quand", "lorsque", "puisque", "dont", "parce", "aussi", "ainsi", "voici", "souvent",
                          "parfois", "chaque", "quelque", "quelques", "plusieurs", "certains", "certaines", "tel",
                          "telle", "ca", "cela", "ceci", "hui"})
# Words that French uses as surnames and are common words too: names when a name is asked.
WORD_SURNAMES_OK = frozenset({"lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "petit", "prix",
                              "juin", "mars", "avril", "mai", "bon", "bonne", "leblanc", "noel", "aout", "chevalier",
                              "marchand", "boulanger", "fontaine", "blanc", "roux", "brun", "lebrun", "leroy", "rose",
                              "parfait", "juste", "toussaint", "pascal", "frere", "grand", "bien"})
REFUSALS = (("prive",), ("privee",), ("confidentiel",), ("secret",), ("anonyme",), ("je", "prefere", "pas"),
            ("je", "prefere", "ne", "pas"), ("je", "ne", "prefere", "pas"), ("prefere", "ne", "pas"),
            ("je", "veux", "pas"), ("je", "ne", "veux", "pas"), ("ne", "vous", "regarde"), ("vous", "regarde", "pas"),
            ("je", "refuse"), ("pas", "question"), ("non", "merci"), ("je", "ne", "le", "donne"),
            ("je", "le", "donne", "pas"), ("je", "ne", "donne", "pas"), ("pas", "envie"), ("ne", "souhaite", "pas"),
            ("souhaite", "pas"), ("sans", "nom"), ("garder", "pour", "moi"), ("je", "ne", "dirai"),
            ("dirai", "pas"), ("pas", "besoin", "de", "mon", "nom"), ("aucune", "raison"), ("le", "donne", "a", "la"),
            ("le", "donnerai"), ("le", "dirai"), ("d'abord",), ("plus", "tard"), ("le", "direz"))
QUESTIONS = (("pourquoi",), ("c'est", "necessaire"), ("c", "est", "necessaire"), ("necessaire",), ("obligatoire",),
             ("vous", "avez", "besoin"), ("faut", "il"), ("il", "faut"), ("a", "quoi", "ca", "sert"),
             ("ca", "sert", "a", "quoi"), ("pour", "quoi", "faire"), ("c'est", "pour", "quoi"), ("vraiment",),
             ("est-ce", "que", "je", "dois"), ("je", "dois"), ("utile",), ("vous", "etes", "qui"),
             ("qui", "etes", "vous"), ("etes-vous",), ("qui", "est", "a", "l'appareil"), ("qui", "parle"))
# Said between two names, these take the first back: "Martin non Martinez", "Julien, ah non pardon, Julie".
MARKER_WORDS = frozenset({"non", "pardon", "enfin", "plutot", "pardonnez-moi", "oups", "trompe", "trompee",
                          "rectification", "correction", "excusez-moi"})
MARKER_PHRASES = (("je", "veux", "dire"), ("je", "voulais", "dire"), ("ou", "plutot"), ("ah", "non"),
                  ("je", "me", "suis", "trompe"), ("je", "me", "suis", "trompee"), ("je", "rigole"),
                  ("excusez", "moi"), ("en", "fait"))
# A word said after these is talked about, not given: "comme la couleur", "avec un B", "sans X".
COMMENTS = frozenset({"comme", "avec", "sans", "prononce", "prononcer", "s'ecrit", "ecrit"})
# Words a label reaches across to its name: "le prénom c'est Lan", "mon nom de famille : Dupont".
LABEL_GLUE = frozenset({"de", "famille", "c'est", "c", "est", "mon", "ma", "le", "la", "euh", "hum", "alors", "donc",
                        "du", "patient", "patiente", "son", "sa", "bah", "ben"})
# Between two runs of one name, these do not end the name: punctuation aside, only they.
NAME_GLUE = LEAD | MARKER_WORDS | LABEL_GLUE | TITLES | frozenset(
    {"c'est", "c", "est", "et", "le", "la", "mon", "ma", "nom", "prenom", "de", "famille", "maintenant", "jeune",
     "fille", "tout", "court", "simplement", "voila", "non", "je", "veux", "voulais", "dire", "me", "suis",
     "trompe", "trompee", "rigole", "excusez", "moi", "ah", "en", "fait", "plutot", "ou", "deux", "mots", "un",
     "mot", "vous", "l'epelle", "epelle", "attendez", "ca", "s'ecrit"})
KIN = frozenset({"fille", "fils", "mere", "pere", "maman", "papa", "mari", "femme", "epoux", "epouse", "enfant",
                 "voisin", "voisine", "infirmiere", "infirmier", "aide", "tante", "oncle", "soeur", "frere",
                 "petite-fille", "petit-fils", "niece", "neveu", "belle-fille", "gendre", "compagne", "compagnon"})
_ELIDED = frozenset({"l", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu"})
# Words after which "de" may open a last name ("c'est de La Tour", "je m'appelle de Vries").
_PARTICLE_AFTER = frozenset({"c'est", "est", "m'appelle", "appelle", "suis", "ici", "nomme", "moi"})
_VIETNAMESE_MIDDLE = frozenset({"van", "thi", "thanh", "duc", "ngoc", "minh"})
# "le nom de l'enfant", "le nom du patient": the name that follows is the patient's.
PATIENT_NOUNS = frozenset({"patient", "patiente", "l'enfant", "enfant", "petit", "petite", "malade", "personne"})


# ----------------------------------------------------------------------------- scoring


def first_rank(word: str) -> int | None:
    """The word's best rank as a first name (a hyphenated name by its rarer part), or None."""
    entry = FIRST_RANKS.get(word)
    if entry is not None:
        return entry[0]
    parts = [p for p in word.split("-") if p]
    if len(parts) > 1 and all(p in FIRST_RANKS for p in parts):
        return max(FIRST_RANKS[p][0] for p in parts)
    return None


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


def shown_of(raw: str) -> str:
    """A heard word as written on the appointment: as the transcript wrote it when it
    capitalised it ("Le Floc'h", "D'Angelo"), else capitalised ("dupont" → "Dupont")."""
    raw = raw.replace("’", "'")
    if any(c.isupper() for c in raw) and not (raw.isupper() and len(raw) > 2):
        return raw[:1].upper() + raw[1:]
    return cap(raw.lower())


# ----------------------------------------------------------------------------- the scan


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a name: folded, as it will be written, its token, and what it is when a
    label or a spelling said so."""

    folded: str
    shown: str
    at: int
    role: Role | None = None
    spelled: bool = False


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive name words of one clause (its title included in ``[first, last)``)."""

    words: tuple[Word, ...]
    first: int
    last: int
    title: str | None
    clause: int


@dataclass(frozen=True, slots=True)
class NameScan:
    """A turn read for names: a kind per token and the runs of name words."""

    tokens: tuple[Token, ...]
    words: tuple[str, ...]
    kinds: tuple[str, ...]
    runs: tuple[Run, ...]
    cased: bool
    patient_labels: tuple[int, ...]  # "le nom de l'enfant": where each such label ends


def _namey(word: str) -> bool:
    if len(word) < 2 or not word[0].isalpha() or not word[-1].isalpha():
        return False
    return all(c.isalpha() or c in "-'" for c in word)


def _upper(token: Token) -> bool:
    raw = token.raw
    if raw[:1].isupper():
        return True
    _, sep, tail = raw.partition("'")
    return bool(sep) and tail[:1].isupper()


def _kind(token: Token, asked: bool, cased: bool, previous: str) -> str:
    """What one token is for names: "title", "particle", "name" or "word" (``previous``:
    the kind of the token before)."""
    word = token.word
    if word in TITLES:
        return "title"
    if word in PARTICLES:
        return "particle"
    if not _namey(word):
        return "word"
    head, sep, tail = word.partition("'")
    if sep and head in _ELIDED and not (head == "n" and (_upper(token) or previous == "name")):
        return "word"  # "l'EHPAD", "c'est", "n'importe"; not "N'Diaye"
    if sep and head == "d" and not (_upper(token) or previous in ("name", "title")) and (tail in STOP or not cased):
        return "word"  # "d'appeler", "d'abord"; not "Jean-Baptiste d'Arnoult"
    upper = _upper(token)
    if word in STOP:
        if not cased:
            return "name" if asked and word in WORD_SURNAMES_OK else "word"
        if upper and (not token.opens or (asked and word in WORD_SURNAMES_OK and word not in LEAD)):
            return "name"  # capitalised mid-sentence ("c'est Mardi"), or "Vendredi." when a name was asked
        return "word"
    if cased and not upper and word not in FIRST_RANKS:
        return "word"  # "c'est polonais": a cased transcript writes names with a capital
    return "name"


def _mark_phrases(tokens: tuple[Token, ...], words: tuple[str, ...], kinds: list[str]) -> None:
    """Correction markers and comments on the spelling (a comment runs to the clause end)."""
    n = len(words)
    for i, w in enumerate(words):
        if kinds[i] != "word":
            continue
        if w in MARKER_WORDS:
            kinds[i] = "marker"
        for phrase in MARKER_PHRASES:
            if words[i : i + len(phrase)] == phrase and all(k == "word" for k in kinds[i : i + len(phrase)]):
                for k in range(i, i + len(phrase)):
                    kinds[k] = "marker"
    for i, w in enumerate(words):
        if kinds[i] not in ("word", "marker"):
            continue
        if w in COMMENTS or (w == "pas" and i + 1 < n and kinds[i + 1] == "word" and words[i + 1] not in STOP):
            kinds[i] = "comment"
            if w == "pas":
                kinds[i + 1] = "comment"  # "Moreau, pas Moreaux"
                continue
            k = i + 1
            while k < n and words[k] not in ("prenom", "nom", "et") and kinds[k] != "spell" \
                    and tokens[k].clause == tokens[i].clause:
                kinds[k] = "comment"
                k += 1


def _runs(tokens: tuple[Token, ...], kinds: list[str], cased: bool) -> list[Run]:
    """Consecutive name words (and particles) of one clause."""
    runs: list[Run] = []
    n = len(tokens)
    i = 0
    while i < n:
        if kinds[i] not in ("name", "particle"):
            i += 1
            continue
        clause = tokens[i].clause
        j = i
        while j < n and kinds[j] in ("name", "particle") and tokens[j].clause == clause:
            j += 1
        lo, hi = i, j
        while hi > lo and kinds[hi - 1] == "particle":
            hi -= 1
        while lo < hi and kinds[lo] == "particle" and cased and not _upper(tokens[lo]) \
                and tokens[lo].word not in ("de", "du", "des", "d'"):
            lo += 1  # "depuis la Toussaint": a lower-case article, not "Le Gall"
        while lo < hi and lo > 0 and kinds[lo] == "particle" and tokens[lo].word in ("de", "du", "des", "d'") \
                and kinds[lo - 1] != "title" and tokens[lo - 1].word not in LEAD | _PARTICLE_AFTER:
            lo += 1  # "de la part de Jeanne Martin", "celui de jeudi": a preposition, not "de La Tour"
        if any(kinds[k] == "name" for k in range(lo, hi)):
            words: list[Word] = []
            for k in range(lo, hi):
                if words and words[-1].folded == tokens[k].word:
                    continue  # "rose rose Boucher": said twice in a row
                raw = tokens[k].raw
                lower = tokens[k].word in ("de", "du", "des", "d'") and raw.islower()  # "Jean de La Fontaine"
                folded = tokens[k].word
                if k == lo and folded.startswith("d'") and k > 0 and kinds[k - 1] not in ("name", "title", "particle"):
                    folded, raw = folded[2:], raw[2:]  # "celui d'Albert", "la maman d'Inès": the preposition "de"
                words.append(Word(folded, raw if lower else shown_of(raw), k))
            start = lo
            back = lo - 1
            while back >= 0 and tokens[back].word in ("euh", "heu", "hum"):
                back -= 1
            title = None
            if back >= 0 and kinds[back] == "title":
                title, start = tokens[back].word, back
            runs.append(Run(tuple(words), start, hi, title, clause))
        i = j
    return runs


def _attach_spellings(runs: list[Run], spelled: tuple[Spelled, ...], tokens: tuple[Token, ...],
                      kinds: list[str]) -> list[Run]:
    """Each spelling confirms the word it spells, corrects it, or is a name word of its own."""
    for s in spelled:
        target = s.letters.replace("-", "").replace("'", "").replace(" ", "")
        best: tuple[float, float, int, int, int] | None = None
        for r, run in enumerate(runs):
            distance = s.first - run.last if run.last <= s.first else run.first - s.last + 0.5
            options = [(k, k + 1) for k in range(len(run.words))]
            if "-" in s.letters or " " in s.letters:
                options += [(k, k + 2) for k in range(len(run.words) - 1)]
            for lo, hi in options:
                heard = "".join(w.folded for w in run.words[lo:hi]).replace("-", "").replace("'", "")
                option = (fuzz.ratio(heard, target), -distance, r, lo, hi)
                if best is None or option[:2] > best[:2]:
                    best = option
        if best is not None and best[0] >= 60:
            _, _, r, lo, hi = best
            run = runs[r]
            heard_words = run.words[lo:hi]
            same = " ".join(w.folded for w in heard_words) == s.letters
            shown = " ".join(w.shown for w in heard_words) if same else cap(s.shown)
            word = Word(s.letters if not same else " ".join(w.folded for w in heard_words), shown,
                        heard_words[0].at, heard_words[0].role, True)
            runs[r] = replace(run, words=(*run.words[:lo], word, *run.words[hi:]))
            continue
        back = s.first - 1
        title = tokens[back].word if back >= 0 and kinds[back] == "title" else None
        alone = Run((Word(s.letters, cap(s.shown), s.first, None, True),), back if title else s.first, s.last, title,
                    tokens[s.first].clause)
        runs.append(alone)
        runs.sort(key=lambda r: r.first)
    return runs


def _with_role(run: Run, role: Role) -> Run:
    return replace(run, words=tuple(replace(w, role=role) for w in run.words))


def _apply_labels(runs: list[Run], words: tuple[str, ...], kinds: list[str]) -> tuple[list[Run], tuple[int, ...]]:
    """"prénom X", "le nom c'est X", "X c'est le nom de famille": the labelled run's role."""
    patient: list[int] = []
    for k, w in enumerate(words):
        if w not in ("nom", "prenom") or kinds[k] == "spell":
            continue
        if k > 0 and words[k - 1] == "au":
            continue  # "au nom de Dupont" introduces the name
        after = words[k + 1 : k + 4]
        if after[:1] in (("du",), ("de",), ("d'",)) and len(after) > 1 and (
            after[1] in PATIENT_NOUNS or after[1] in ("mon", "ma", "la", "sa", "son") and after[1:3] != ("la", "part")
            and (len(after) < 3 or after[2] in PATIENT_NOUNS or after[2] in KIN)
        ):
            patient.append(k + 1)
            continue
        role: Role = "first" if w == "prenom" else "last"
        if after[:3] == ("de", "jeune", "fille"):
            role = "old"  # "Bonnet, c'est mon nom de jeune fille": no longer the name
        whole = w == "nom" and after[:2] != ("de", "famille")  # "mon nom c'est Nathalie Roux": the whole name
        backward = k >= 2 and words[k - 1] in ("mon", "le", "son") and words[k - 2] in ("c'est", "est")
        if backward:
            lo = k - 2 if words[k - 2] == "c'est" else k - 3 if words[k - 3 : k - 1] == ("c", "est") else k - 2
            for r in range(len(runs) - 1, -1, -1):
                run = runs[r]
                if run.last <= lo and all(words[g] in NAME_GLUE or kinds[g] in ("comment", "spell")
                                          for g in range(run.last, lo)) and lo - run.last <= 4:
                    if role == "old":
                        runs.pop(r)
                    elif not (whole and len(_units(list(run.words))) > 1):
                        runs[r] = _with_role(run, role)
                    break
            continue
        for r, run in enumerate(runs):
            if run.first > k and run.first - k <= 6 and all(
                words[g] in LABEL_GLUE or words[g] in ("famille", "nom") for g in range(k + 1, run.first)
            ):
                if role != "old" and not (whole and len(_units(list(run.words))) > 1):
                    runs[r] = _with_role(run, role)
                break
    return runs, tuple(patient)


def scan_names(tokens: tuple[Token, ...], asked: bool) -> NameScan:
    """The turn's tokens read for names (see the module docstring)."""
    words = tuple(t.word for t in tokens)
    kinds = ["word"] * len(tokens)
    spelled = spelled_runs(tokens)
    for s in spelled:
        for k in range(s.first, s.last):
            kinds[k] = "spell"
    _mark_phrases(tokens, words, kinds)
    cased = any(_upper(t) for t in tokens)
    for i, token in enumerate(tokens):
        if kinds[i] == "word" and words[i] not in ("nom", "prenom"):
            kinds[i] = _kind(token, asked, cased, kinds[i - 1] if i else "")
    runs = _runs(tokens, kinds, cased)
    runs = _attach_spellings(runs, spelled, tokens, kinds)
    runs, patient = _apply_labels(runs, words, kinds)
    return NameScan(tokens, words, tuple(kinds), tuple(runs), cased, patient)


# ----------------------------------------------------------------------------- whose runs


def _introduced(words: tuple[str, ...], start: int) -> str | None:
    """"strong" or "weak" when an introduction ends right before word ``start`` (greetings
    and a role in between allowed: "moi je suis sa fille, Leïla"), else None."""
    k = start
    while k > 0 and words[k - 1] in LEAD:
        k -= 1
    if k >= 2 and words[k - 2] in ("sa", "son", "ses", "le", "la", "l'") and words[k - 1] in KIN:
        k -= 2
        while k > 0 and words[k - 1] in LEAD:
            k -= 1
    for phrase in _INTROS_LONGEST_FIRST:
        n = len(phrase)
        if k >= n and words[k - n : k] == phrase:
            return "strong" if phrase in STRONG_INTROS else "weak"
    return None


def _after_preposition(scan: NameScan, run: Run) -> bool:
    before = run.first - 1
    return before >= 0 and scan.words[before] in NOT_AFTER and scan.kinds[before] != "spell"


def _capitalised(scan: NameScan, run: Run) -> bool:
    return scan.cased and all(_upper(scan.tokens[w.at]) or w.spelled for w in run.words
                              if w.folded not in PARTICLES)


def _shaped(scan: NameScan, run: Run) -> bool:
    """Shaped like a name: a title, a first name first, or capitals mid-sentence."""
    if run.title is not None or is_first_name(run.words[0].folded):
        return True
    return _capitalised(scan, run) and not scan.tokens[run.first].opens


def _whole_clause(scan: NameScan, run: Run) -> bool:
    """"Bonjour, Wei Chen, je voudrais…": a capitalised name that is a clause of its own."""
    if len(run.words) < 2 or not _capitalised(scan, run):
        return False
    tokens = scan.tokens
    inside = [k for k, t in enumerate(tokens) if t.clause == run.clause]
    return all(run.first <= k < run.last or scan.words[k] in LEAD for k in inside)


def _opening(scan: NameScan, run: Run) -> bool:
    """"oui allo bonjour Fatoumata Diallo j'appelle…": a first name and a name right after
    the greetings, or capitalised mid-sentence."""
    if len(run.words) < 2 or not (is_first_name(run.words[0].folded) or _first_like(run.words[0].folded)):
        return False
    k = run.first
    while k > 0 and scan.words[k - 1] in LEAD:
        k -= 1
    return k == 0 or (_capitalised(scan, run) and not _after_preposition(scan, run))


def _first_like(word: str) -> bool:
    rank = first_rank(word)
    return rank is not None and rank <= 3000 and first_score(word) > 0


def _qualifies(scan: NameScan, run: Run, asked: bool) -> tuple[bool, bool]:
    """Whether a run is (part of) the caller's name, and whether strongly so."""
    words = scan.words
    labelled = any(w.role in ("first", "last") for w in run.words)
    intro = _introduced(words, run.first)
    if asked:
        ok = intro is not None or labelled or not _after_preposition(scan, run)
        return ok, ok
    if labelled or intro == "strong":
        return True, True
    if words[run.last : run.last + 2] in (("a", "l'appareil"), ("a", "l"), ("au", "telephone")):
        return True, True
    if run.title is not None and not _after_preposition(scan, run):
        return True, True
    if intro == "weak" and _shaped(scan, run):
        return True, True
    if _after_preposition(scan, run):
        return False, False
    ok = _whole_clause(scan, run) or _opening(scan, run)
    return ok, ok


def _glued(scan: NameScan, lo: int, hi: int) -> bool:
    """True when the tokens ``[lo, hi)`` between two runs do not end the name."""
    return all(scan.words[k] in NAME_GLUE or scan.kinds[k] in ("spell", "comment", "marker", "title")
               for k in range(lo, hi))


def _blocks(scan: NameScan, runs: list[Run]) -> list[list[Run]]:
    """Runs said together (only punctuation, spellings, comments, labels between them)."""
    blocks: list[list[Run]] = []
    for run in runs:
        if blocks and _glued(scan, blocks[-1][-1].last, run.first):
            blocks[-1].append(run)
        else:
            blocks.append([run])
    merged: list[list[Run]] = []
    for block in blocks:  # "Martin, comme le docteur, mais …, Lucie Martin": one name said twice
        keys = {w.folded for r in block for w in r.words if w.folded not in PARTICLES}
        labelled = any(w.role in ("first", "last") for r in block for w in r.words)
        home = next((m for m in merged if labelled or keys & {w.folded for r in m for w in r.words}), None)
        if home is not None:
            home.extend(block)
        else:
            merged.append(block)
    return merged


# ----------------------------------------------------------------------------- assembly


def _replace_one(segments: list[list[Word]], new: Word) -> list[list[Word]]:
    """The word a correction takes back: the most similar one, else the last name said."""
    scored = [(fuzz.ratio(w.folded, new.folded), s, k) for s, seg in enumerate(segments) for k, w in enumerate(seg)]
    score, s, k = max(scored, key=lambda o: (o[0], o[1], o[2]))
    if score < 50:
        s = len(segments) - 1
        k = next((i for i in range(len(segments[s]) - 1, -1, -1) if segments[s][i].role != "first"),
                 len(segments[s]) - 1)
    old = segments[s][k]
    out = [list(seg) for seg in segments]
    out[s][k] = replace(new, role=new.role or old.role)
    return out


def _merge(segments: list[list[Word]]) -> list[list[Word]]:
    """A part said again inside a fuller one ("Ferreira, Joaquim Ferreira") is read once,
    its labels and spellings kept."""
    out = [list(seg) for seg in segments if seg]
    changed = True
    while changed:
        changed = False
        for i, seg in enumerate(out):
            keys = {w.folded for w in seg}
            home = next((j for j, other in enumerate(out) if j != i and keys <= {w.folded for w in other}
                         and (len(other) > len(seg) or j < i)), None)
            if home is None:
                continue
            target = out[home]
            for w in seg:
                for k, t in enumerate(target):
                    if t.folded == w.folded:
                        target[k] = replace(t, role=w.role or t.role, spelled=w.spelled or t.spelled)
            del out[i]
            changed = True
            break
    return out


def _gather(scan: NameScan, runs: list[Run]) -> tuple[list[list[Word]], bool]:
    """The name's words in order, in segments (one per part said apart), corrections applied."""
    segments: list[list[Word]] = []
    corrected = False
    previous: Run | None = None
    for run in runs:
        words = list(run.words)
        if previous is not None and any(scan.kinds[k] == "marker" for k in range(previous.last, run.first)):
            corrected = True
            segments = [words] if len(words) >= 2 else _replace_one(segments, words[0])
        else:
            segments.append(words)
        previous = run
    return _merge(segments), corrected


@dataclass(frozen=True, slots=True)
class _Unit:
    """A name part: one word, or a particle with what follows ("Le Gall", "de La Tour")."""

    words: tuple[Word, ...]

    @property
    def key(self) -> str:
        return " ".join(w.folded for w in self.words)

    @property
    def particle(self) -> bool:
        return len(self.words) > 1 or self.words[0].folded in PARTICLES


def _units(words: list[Word]) -> list[_Unit]:
    units: list[_Unit] = []
    pending: list[Word] = []
    for w in words:
        pending.append(w)
        if w.folded not in PARTICLES:
            units.append(_Unit(tuple(pending)))
            pending = []
    if pending:
        if units:
            units[-1] = _Unit(units[-1].words + tuple(pending))
        else:
            units.append(_Unit(tuple(pending)))
    return units


def _last_text(words: list[Word]) -> str:
    """Last-name words joined, particles in their usual case ("de La Tour", "Le Gall")."""
    return " ".join(w.shown for w in words).replace("d' ", "d'")


def _first_text(units: list[_Unit]) -> str:
    """First names joined: "Jean Robert" is "Jean-Robert" when that is a known first name."""
    words = [w for u in units for w in u.words]
    if len(words) == 2 and f"{words[0].folded}-{words[1].folded}" in FIRST_RANKS:
        return "-".join(w.shown for w in words)
    return " ".join(w.shown for w in words)


def _swap(a: str, b: str, title: bool, comma: bool) -> bool:
    """Whether two name words said "a b" are last name then first name."""
    sa, sb = first_score(a), first_score(b)
    if comma:  # "Durand, Michel": the administrative order unless clearly a first name first
        return not (sa - sb > 1.0 and sa > 0.5)
    if title:  # "madame Lopes Maria"
        return sb - sa > 1.0
    rank = first_rank(a)
    return sb - sa > 1.0 and sb > -0.5 and (rank is None or rank > 300 or sa < -1.5)


def _order(units: list[_Unit], title: bool, comma: bool) -> tuple[list[_Unit], list[_Unit]]:
    """(first-name units, last-name units) of a name said in this order."""
    n = len(units)
    if n == 1:
        u = units[0]
        if not u.particle and not title and is_first_name(u.key) and u.key not in WORD_SURNAMES_OK:
            return [u], []
        return [], [u]
    if n >= 3 and units[0].key == units[-1].key:
        return units[1:-1], [units[-1]]  # "Le Gall Anne Le Gall": the surname framing the first name
    if n == 2:
        a, b = units
        if a.particle:
            return [b], [a]
        if b.particle:
            return [a], [b]
        return ([b], [a]) if _swap(a.key, b.key, title, comma) else ([a], [b])
    if units[-1].particle or all(not u.particle and (first_rank(u.key) or NEVER_LAST) <= 1000 for u in units[:-1]):
        return units[:-1], units[-1:]
    if not _first_like(units[0].key) and all(_first_like(u.key) for u in units[1:]):
        return units[1:], units[:1]
    return units[:1], units[1:]


def person_of(segments: list[list[Word]], title: bool) -> Person:
    """First and last name from the words of one name, in segments as said."""
    segments = _merge(segments)
    words = [w for seg in segments for w in seg]
    seen: set[str] = set()
    unique = [w for w in words if not (w.folded in seen or seen.add(w.folded))]  # type: ignore[func-returns-value]
    if any(w.role in ("first", "last") for w in unique):
        firsts = [w for w in unique if w.role == "first"]
        lasts = [w for w in unique if w.role == "last"]
        rest = [w for w in unique if w.role not in ("first", "last")]
        if lasts and not firsts:
            firsts = rest
        elif firsts and not lasts:
            lasts = rest
        else:
            lasts += rest
        first_units = [_Unit((w,)) for w in firsts]
        return Person(_first_text(first_units) if firsts else None, _last_text(lasts) if lasts else None)
    folded = [w.folded for w in words]
    if len(words) == 3 and folded[1] in _VIETNAMESE_MIDDLE and first_score(folded[0]) < -1:
        return Person(" ".join(w.shown for w in words[1:]), words[0].shown)  # "Nguyen Van Minh": family name first
    comma = len(segments) == 2 and all(len(_units(seg)) == 1 for seg in segments)
    first_units, last_units = _order(_units(words), title, comma)
    last_words = [w for u in last_units for w in u.words]
    return Person(_first_text(first_units) if first_units else None, _last_text(last_words) if last_words else None)


# ----------------------------------------------------------------------------- reading


def refusal(words: tuple[str, ...]) -> NameIssue | None:
    """"refused" or "question" when the turn turns the name question down or asks back."""
    if any(_find(words, p) >= 0 for p in REFUSALS):
        return "refused"
    if any(_find(words, p) >= 0 for p in QUESTIONS):
        return "question"
    return None


def _find(words: tuple[str, ...], phrase: tuple[str, ...]) -> int:
    for i in range(len(words) - len(phrase) + 1):
        if words[i : i + len(phrase)] == phrase:
            return i
    return -1


def caller_runs(scan: NameScan, asked: bool, claimed: frozenset[int] = frozenset()) -> tuple[list[Run], bool]:
    """The runs that make the caller's own name (none claimed by someone else's name),
    and whether they were given strongly (introduced, titled, asked for)."""
    chosen: list[Run] = []
    strong = False
    for run in scan.runs:
        if any(w.at in claimed for w in run.words):
            continue
        ok, firm = _qualifies(scan, run, asked)
        if ok:
            chosen.append(run)
            strong |= firm
    if not chosen:
        return [], False
    blocks = _blocks(scan, chosen)
    main = blocks[0]
    if len(blocks) > 1 and sum(len(r.words) for r in main) == 1 and not _first_like(main[0].words[0].folded):
        later = blocks[1]
        if sum(len(r.words) for r in later) == 1 and _first_like(later[0].words[0].folded):
            main = main + later  # "Kowalczyk… c'est polonais. Tomasz."
    return main, strong or len(main[0].words) > 1


def read_name(tokens: tuple[Token, ...], asked: bool, scan: NameScan | None = None,
              claimed: frozenset[int] = frozenset()) -> NameFound | None:
    """The caller's name a turn gives. ``asked``: the assistant just asked for a name, so
    any words that can be a name are one; otherwise a name needs its introduction or its
    shape. Words in ``claimed`` belong to someone else's name (the patient's)."""
    if not tokens:
        return None
    scan = scan if scan is not None else scan_names(tokens, asked)
    runs, strong = caller_runs(scan, asked, claimed)
    if not runs:
        turned_down = refusal(scan.words) if asked else None
        return NameFound(None, turned_down, 0, len(tokens)) if turned_down else None
    segments, corrected = _gather(scan, runs)
    if not segments:
        return None
    person = person_of(segments, runs[0].title is not None)
    if person.first is None and person.last is None:
        return None
    issue: NameIssue | None = "first_only" if person.last is None else None
    used = frozenset(w.at for r in runs for w in r.words)
    return NameFound(person, issue, min(r.first for r in runs), max(r.last for r in runs), corrected,
                     strong or asked, used)


def name(text: str) -> Name | None:
    """The caller's name when a name was asked, or None when no full-enough name was given
    (a first name alone, a refusal, a question back)."""
    if not isinstance(text, str):
        return None
    found = read_name(tokenize(text), asked=True)
    if found is None or found.person is None or found.person.last is None:
        return None
    return Name(found.person.first, found.person.last)
