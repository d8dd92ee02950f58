"""The caller's name: "c'est Jean Dupont", "Dupont Jean", "monsieur Martin", "Marie-Claire N'Diaye".

Written by hand: no kept library extracts a person's name from French speech-to-text
without a downloaded model. A compact list of common first names decides the order of
"Dupont Jean" (and "Le Goff Yannick"); particles (de, du, d', Le, La, N') stay attached to
the last name; "madame Lucie Moreau" keeps its first name; a spelled-out repeat
("Dupont, d u p o n t") is dropped; "mon prénom c'est Alain et mon nom c'est Dupuis" is
read by its labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.engine.nlu.normalize import analyse, fold

FIRST_NAMES = frozenset(
    ["jean", "pierre", "michel", "philippe", "alain", "nicolas", "patrick", "christophe", "christian", "daniel", "bernard", "eric", "frederic", "laurent", "stephane", "david", "olivier", "thierry", "pascal", "sebastien", "julien", "francois", "jacques", "vincent", "gerard", "andre", "thomas", "alexandre", "antoine", "dominique", "rene", "serge", "marc", "claude", "yves", "louis", "guillaume", "maxime", "romain", "mathieu", "matthieu", "kevin", "anthony", "jerome", "didier", "bruno", "franck", "gilles", "patrice", "luc", "paul", "henri", "raymond", "robert", "roger", "marcel", "georges", "lucas", "hugo", "leo", "gabriel", "arthur", "raphael", "jules", "adam", "noah", "ethan", "nathan", "enzo", "theo", "tom", "mathis", "timothee", "victor", "samuel", "benjamin", "florian", "cedric", "fabrice", "arnaud", "damien", "benoit", "emmanuel", "hubert", "xavier", "yann", "yannick", "jeremy", "mickael", "loic", "gael", "erwan", "ronan", "mohamed", "ahmed", "karim", "mehdi", "youssef", "rachid", "omar", "ali", "samir", "marie", "nathalie", "isabelle", "sylvie", "catherine", "martine", "christine", "francoise", "monique", "valerie", "sandrine", "veronique", "sophie", "stephanie", "nicole", "celine", "chantal", "anne", "patricia", "julie", "aurelie", "caroline", "sandra", "emilie", "laurence", "corinne", "brigitte", "camille", "lea", "manon", "chloe", "emma", "ines", "sarah", "laura", "marine", "pauline", "claire", "mathilde", "lucie", "juliette", "louise", "alice", "jade", "lina", "rose", "anna", "mia", "zoe", "clara", "charlotte", "elise", "eloise", "agathe", "margaux", "oceane", "justine", "marion", "audrey", "elodie", "virginie", "helene", "jacqueline", "michele", "danielle", "genevieve", "josette", "simone", "suzanne", "yvette", "odile", "colette", "denise", "therese", "madeleine", "jeanne", "lucienne", "annie", "agnes", "beatrice", "florence", "delphine", "laetitia", "severine", "karine", "fatima", "aicha", "nadia", "samira", "leila", "yasmine", "amina", "myriam", "sonia", "nora", "sabrina", "jessica", "vanessa", "marie-claire", "marie-france", "marie-christine", "anne-marie", "jean-pierre", "jean-claude", "jean-paul", "jean-luc", "jean-marc", "jean-francois", "jean-michel", "jean-louis", "jean-baptiste", "pierre-yves", "marc-antoine", "jean-jacques", "jean-yves", "anne-sophie", "marie-laure", "marie-helene", "marie-anne", "paul-henri"]
)
TITLES = frozenset({"monsieur", "madame", "mademoiselle", "m", "mme", "mlle", "mr", "docteur", "dr", "maitre"})
PARTICLES = frozenset({"de", "du", "des", "d'", "le", "la", "van", "von", "der", "den", "di", "da", "del", "dos", "el", "al", "ben"})
INTROS = (
    r"je m'appelle", r"je m appelle", r"moi c'est", r"c'est", r"c est", r"mon nom c'est", r"mon nom est",
    r"mon nom de famille c'est", r"mon nom de famille est", r"mon nom", r"je suis", r"au nom de", r"ici",
    r"c'est pour", r"ce serait au nom de", r"ce sera au nom de", r"a mon nom", r"le nom c'est", r"nom",
)
LEAD = frozenset({"oui", "bonjour", "bonsoir", "alors", "donc", "euh", "heu", "hum", "ben", "bah", "bien", "sur", "ok",
                  "voila", "allo", "eh", "moi"})
TRAIL = frozenset({"merci", "voila", "svp", "s'il", "vous", "plait", "euh", "hum", "bonjour", "bonsoir", "revoir", "au"})
# Words between a label and its value: "mon prénom c'est", "mon nom de famille est".
LABEL_GLUE = frozenset({"de", "famille", "c'est", "c", "est", "mon", "ma", "et", "alors", "euh", "hum", "donc"})
# Words that never belong to a name: a sentence, not a name, was said.
NOT_NAME = frozenset(
    ["je", "tu", "il", "elle", "on", "nous", "vous", "ils", "elles", "me", "te", "se", "sais", "pas", "sait", "savoir", "pourquoi", "quoi", "comment", "qui", "quand", "combien", "oui", "non", "rien", "ca", "cela", "ceci", "est", "sont", "suis", "es", "etes", "a", "ai", "as", "avons", "avez", "ont", "veux", "voudrais", "voulez", "peux", "pouvez", "dois", "faut", "rendez-vous", "rendez", "rdv", "prendre", "annuler", "deplacer", "matin", "apres-midi", "midi", "soir", "demain", "aujourd'hui", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche", "premier", "deuxieme", "troisieme", "dernier", "heure", "heures", "h", "et", "ou", "mais", "donc", "or", "ni", "car", "un", "une", "des", "les", "au", "aux", "avec", "pour", "par", "sur", "sous", "dans", "en", "y", "ne", "plus", "tres", "bien", "mal", "merci", "bonjour", "au-revoir", "demandez", "demande", "dire", "dit", "appelle", "nom", "prenom", "telephone", "numero", "docteur", "medecin", "cabinet", "personne", "quelqu'un", "quelqu", "parler", "aucun", "aucune", "autre", "creneau", "creneaux", "accord", "d'accord", "attendez", "attends", "pardon", "excusez", "repetez", "comprends", "compris", "mon", "ma", "mes", "ton", "ta", "ses", "leur", "euh", "hum", "bah", "ben", "allo", "faire", "fait", "fais", "peut-etre", "bof", "zut", "mince"]
)
_SPELLED = re.compile(r"^(?:[a-z] ){2,}[a-z]$")
_LETTER = re.compile(r"^[a-z]$")


@dataclass(frozen=True, slots=True)
class Name:
    """A caller's name; ``first`` is None when only a title and last name were given."""

    first: str | None
    last: str


def _cap(word: str) -> str:
    """"marie-claire" → "Marie-Claire", "n'diaye" → "N'Diaye", "d'artagnan" → "d'Artagnan"."""
    def one(part: str) -> str:
        if "'" in part:
            head, _, tail = part.partition("'")
            if head == "d":
                return "d'" + one(tail)
            return head.capitalize() + "'" + one(tail)
        return part[:1].upper() + part[1:]

    return "-".join(one(p) for p in word.split("-"))


def _strip_intro(text: str) -> str:
    for intro in sorted(INTROS, key=len, reverse=True):
        at = text.find(intro + " ")
        if at >= 0 and (at == 0 or text[at - 1] == " "):
            return text[at + len(intro) + 1 :]
    return text


def _tokens(raw: str) -> list[str]:
    """Lower-case name tokens with accents kept (for display), punctuation dropped."""
    lowered = raw.lower().replace("’", "'")
    lowered = re.sub(r"[^\w'\- ]+", " ", lowered)
    return [t.strip("'-") for t in lowered.split() if t.strip("'-")]


def _acceptable(pairs: list[tuple[str, str]]) -> bool:
    """True when the (folded, display) tokens can be a name: no sentence word, no stray letter."""
    if not pairs or len(pairs) > 5 or all(f in PARTICLES for f, _ in pairs):
        return False
    if any((f in NOT_NAME or f in TITLES) and f not in PARTICLES for f, _ in pairs):
        return False
    return not any(len(f) < 2 and f != "d'" for f, _ in pairs if f not in PARTICLES)


def _labelled(raw: str) -> Name | None:
    """"mon prénom c'est Alain et mon nom c'est Dupuis": both labels given, read by label."""
    parts: dict[str, list[tuple[str, str]]] = {"prenom": [], "nom": []}
    label: str | None = None
    for token in _tokens(raw):
        folded = fold(token)
        if folded in parts:
            label = folded
        elif label is not None:
            # "nom de famille": glue before the value; "de" after it is a particle ("Dupuis de Brie").
            glue = LABEL_GLUE - PARTICLES if parts[label] else LABEL_GLUE
            if folded not in glue:
                parts[label].append((folded, token))
    first, last = parts["prenom"], parts["nom"]
    if not (_acceptable(first) and _acceptable(last)) or len(first) > 2:
        return None
    return Name(" ".join(_cap(t) for _, t in first), _join_last([_cap(t) for _, t in last], [f for f, _ in last]))


def _unspell(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop a spelled-out repeat ("dupont d u p o n t"); join a name given only spelled."""
    end = len(pairs)
    start = end
    while start > 0 and _LETTER.match(pairs[start - 1][0]):
        start -= 1
    if end - start < 3:
        return pairs
    spelled = "".join(f for f, _ in pairs[start:end])
    if start == 0:
        return [(spelled, spelled)]
    if fold(pairs[start - 1][0]).replace("-", "").replace("'", "") == spelled:
        return pairs[:start]
    return pairs


def name(text: str) -> Name | None:
    """The caller's name from what they said, or None when no name was given."""
    if not isinstance(text, str):
        return None
    utt = analyse(text)
    if not utt.words or len(utt.words) > 12 or any(ch.isdigit() for ch in utt.digit_text):
        return None
    if "prenom" in utt.words:
        # Both labels, or a first name alone: a last name is what the booking needs.
        return _labelled(utt.raw) if "nom" in utt.words else None
    folded_text = _strip_intro(" ".join(utt.words))
    tokens = _tokens(utt.raw)
    # Align display tokens with folded ones: keep the tail that survived the intro strip.
    folded_tokens = folded_text.split()
    if len(folded_tokens) > len(tokens):
        return None
    tokens = tokens[len(tokens) - len(folded_tokens) :]
    pairs = [(fold(t), t) for t in tokens]
    while pairs and pairs[0][0] in LEAD:
        pairs.pop(0)
    while pairs and pairs[-1][0] in TRAIL:
        pairs.pop()
    if _SPELLED.match(" ".join(f for f, _ in pairs)):
        pairs = [("".join(f for f, _ in pairs), "".join(t for _, t in pairs))]
    title = False
    if len(pairs) > 1 and pairs[0][0] in TITLES:
        title = True
        pairs.pop(0)
    pairs = _unspell(pairs)
    if not _acceptable(pairs):
        return None
    words = [_cap(t) for _, t in pairs]
    folded = [f for f, _ in pairs]
    if len(words) == 1:
        return Name(None, words[0])
    if title and folded[0] not in FIRST_NAMES:
        return Name(None, _join_last(words, folded))  # "monsieur de la Tour"; "madame Lucie Moreau" goes on
    # "Dupont Jean", "Le Goff Yannick": last name first, when only the final word is a known first name.
    if folded[-1] in FIRST_NAMES and folded[0] not in FIRST_NAMES:
        return Name(words[-1], _join_last(words[:-1], folded[:-1]))
    if folded[0] in PARTICLES:
        return Name(None, _join_last(words, folded))  # "Le Goff", "de La Fontaine": a last name alone
    return Name(words[0], _join_last(words[1:], folded[1:]))


def _join_last(words: list[str], folded: list[str]) -> str:
    """Last-name words joined, particles in their usual case ("de La Tour", "Le Gall")."""
    out = []
    for i, (w, f) in enumerate(zip(words, folded)):
        if f in ("de", "du", "des", "d'") and i < len(words) - 1:
            out.append(f)
        else:
            out.append(w)
    return " ".join(out).replace("d' ", "d'")
