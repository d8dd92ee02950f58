"""A caller turn read for people's names, once: which words can be names, and how they
were said.

1. *name words* are found by their shape: capitalised mid-sentence when the transcript is
   cased (a lower-case word of a cased transcript is a name only if it is a known name),
   otherwise any word that is not a sentence word; titles ("madame"), particles ("Le",
   "de", "Ben"), spellings (:mod:`spelling`), comments on the spelling ("avec un B", "comme
   la couleur", "pas Moreaux"), labels ("prénom …", "… c'est le nom de famille") and
   correction markers ("non", "pardon", "enfin") are marked; consecutive name words in
   one clause make a *run*;
2. a spelling confirms the word it spells (kept as heard, accents included) or replaces
   it when the letters differ; a label gives its run a role (first or last name, or an
   old name: "Bonnet, c'est mon nom de jeune fille").

:mod:`names` then chooses the caller's runs and orders them; :mod:`someone` the patient's.
The word lists are French function words and the booking's own words, not lists of names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rapidfuzz import fuzz

from service.engine.frozen import replace
from service.engine.nlu.firstnames import FIRST_RANKS, cap, shown_of
from service.engine.nlu.lexicon import phrases, words
from service.engine.nlu.spelling import Spelled, spelled_runs
from service.engine.nlu.tokens import TEENS, TENS, UNITS, Token

Role = Literal["first", "last", "old"]

TITLES = frozenset({"monsieur", "madame", "mademoiselle", "mme", "mlle", "mr", "docteur", "dr", "maitre",
                    "professeur"})
FEMALE_TITLES = frozenset({"madame", "mme", "mademoiselle", "mlle"})
MALE_TITLES = frozenset({"monsieur", "mr"})
PARTICLES = frozenset({"de", "du", "des", "d'", "le", "la", "van", "von", "der", "den", "di", "da", "del", "dos", "el",
                       "al", "ben", "bin", "mac", "mc", "ter", "ten", "y", "abou", "ould"})
# Phrase tables: data/name_phrases.txt, one [section] a table, its comments there.
_NAME_PHRASES = phrases("name_phrases.txt")
INTROS = _NAME_PHRASES["intros"]
STRONG_INTROS = frozenset(_NAME_PHRASES["strong_intros"])
INTROS_LONGEST_FIRST = tuple(sorted(INTROS, key=len, reverse=True))
# Said before a name (or between an introduction and the name) without being part of it.
LEAD = frozenset({"oui", "bonjour", "bonsoir", "alors", "donc", "euh", "heu", "hum", "ben", "bah", "bien", "sur", "ok",
                  "voila", "allo", "eh", "ah", "oh", "et", "bon", "d'accord", "hello", "salut", "excusez-moi", "pardon",
                  "enfin", "madame", "monsieur", "moi", "ouais", "tout", "simplement"})
# A name is not the caller's when a preposition or an article stands right before it:
# "voir le docteur Martin", "depuis la Toussaint", "en France".
NOT_AFTER = frozenset({"le", "la", "les", "l'", "un", "une", "des", "du", "au", "aux", "en", "a", "dans", "chez", "par",
                       "sur", "vers", "avec", "depuis", "mon", "ma", "mes", "ton", "ta", "tes", "son", "sa", "ses",
                       "notre", "votre", "nos", "vos", "leur", "leurs", "de", "d'", "pour", "comme"})
# Words that never belong to a name: a sentence, not a name, was said (data/not_name.txt).
NOT_NAME = frozenset(words("not_name.txt")) | frozenset(UNITS) | frozenset(TEENS) | frozenset(TENS)
# More sentence words: the words callers put around a name and its spelling.
STOP = NOT_NAME | frozenset(words("sentence_words.txt"))
STOP |= LEAD | frozenset({"si", "quand", "lorsque", "puisque", "dont", "parce", "aussi", "ainsi", "voici", "souvent",
                          "parfois", "chaque", "quelque", "quelques", "plusieurs", "certains", "certaines", "tel",
                          "telle", "ca", "cela", "ceci", "hui"})
# Words that French uses as surnames and are common words too: names when a name is asked.
WORD_SURNAMES_OK = frozenset({"lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "petit", "prix",
                              "juin", "mars", "avril", "mai", "bon", "bonne", "leblanc", "noel", "aout", "chevalier",
                              "marchand", "boulanger", "fontaine", "blanc", "roux", "brun", "lebrun", "leroy", "rose",
                              "parfait", "juste", "toussaint", "pascal", "frere", "grand", "bien"})
REFUSALS = _NAME_PHRASES["refusals"]
QUESTIONS = _NAME_PHRASES["questions"]
# Said between two names, these take the first back: "Martin non Martinez", "Julien, ah non pardon, Julie".
MARKER_WORDS = frozenset({"non", "pardon", "enfin", "plutot", "pardonnez-moi", "oups", "trompe", "trompee",
                          "rectification", "correction", "excusez-moi"})
MARKER_PHRASES = (("je", "veux", "dire"), ("je", "voulais", "dire"), ("ou", "plutot"), ("ah", "non"),
                  ("je", "me", "suis", "trompe"), ("je", "me", "suis", "trompee"), ("je", "rigole"),
                  ("excusez", "moi"), ("en", "fait"))
_MARKERS_BY_FIRST = {w: tuple(p for p in MARKER_PHRASES if p[0] == w) for w in {p[0] for p in MARKER_PHRASES}}
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
# "le nom de l'enfant", "le nom du patient": the name that follows is the patient's.
PATIENT_NOUNS = frozenset({"patient", "patiente", "l'enfant", "enfant", "petit", "petite", "malade", "personne"})


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
    """Letters, hyphens and apostrophes, from a letter to a letter."""
    if len(word) < 2 or not word[0].isalpha() or not word[-1].isalpha():
        return False
    return word.replace("-", "").replace("'", "").isalpha()  # never empty: it holds the first letter


def upper(token: Token) -> bool:
    """True when the word was written with a capital ("Dupont", "d'Angelo")."""
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
    if sep and head in _ELIDED and not (head == "n" and (upper(token) or previous == "name")):
        return "word"  # "l'EHPAD", "c'est", "n'importe"; not "N'Diaye"
    if sep and head == "d" and not (upper(token) or previous in ("name", "title")) and (tail in STOP or not cased):
        return "word"  # "d'appeler", "d'abord"; not "Jean-Baptiste d'Arnoult"
    capital = upper(token)
    if word in STOP:
        if not cased:
            return "name" if asked and word in WORD_SURNAMES_OK else "word"
        if capital and (not token.opens or (asked and word in WORD_SURNAMES_OK and word not in LEAD)):
            return "name"  # capitalised mid-sentence ("c'est Mardi"), or "Vendredi." when a name was asked
        return "word"
    if cased and not capital and word not in FIRST_RANKS:
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
        for phrase in _MARKERS_BY_FIRST.get(w, ()):
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
        while lo < hi and kinds[lo] == "particle" and cased and not upper(tokens[lo]) \
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


def _parts(run: Run) -> int:
    """How many name parts a run holds ("Le Gall" is one)."""
    return sum(1 for w in run.words if w.folded not in PARTICLES)


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
            after[1] in PATIENT_NOUNS or (after[1] in ("mon", "ma", "la", "sa", "son") and after[1:3] != ("la", "part")
            and (len(after) < 3 or after[2] in PATIENT_NOUNS or after[2] in KIN))
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
                    elif not (whole and _parts(run) > 1):
                        runs[r] = _with_role(run, role)
                    break
            continue
        for r, run in enumerate(runs):
            if run.first > k and run.first - k <= 6 and all(
                words[g] in LABEL_GLUE or words[g] in ("famille", "nom") for g in range(k + 1, run.first)
            ):
                if role != "old" and not (whole and _parts(run) > 1):
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
    cased = any(upper(t) for t in tokens)
    for i, token in enumerate(tokens):
        if kinds[i] == "word" and words[i] not in ("nom", "prenom"):
            kinds[i] = _kind(token, asked, cased, kinds[i - 1] if i else "")
    runs = _runs(tokens, kinds, cased)
    runs = _attach_spellings(runs, spelled, tokens, kinds)
    runs, patient = _apply_labels(runs, words, kinds)
    return NameScan(tokens, words, tuple(kinds), tuple(runs), cased, patient)
