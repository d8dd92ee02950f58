"""What the caller wants: book, cancel, modify, a practical question, a human, yes, no.

Keyword stems with negation scope ("je voudrais pas annuler, je voudrais déplacer" is a
move) and ``rapidfuzz`` for speech-to-text misspellings ("anuler"). Fuzzy scores ignore
negation, so negation is checked on the matched word's position, by hand. Cues are looked
up on the words without their elision too ("l'adresse", "j'annule", "l'annuler").

A question that no FAQ topic answers ("je voudrais savoir à quelle heure est mon
rendez-vous", "est-ce que le docteur fait des visites à domicile") is "faq:other": the
dialogue says the secretariat will answer it. Asking for a slot stays a booking whatever
the frame ("je voulais savoir s'il y avait de la place jeudi"); a practical-question word
told in passing does not beat a booking ("je prends le bus, disons jeudi"); a participle
after its auxiliary tells, it does not ask ("j'ai annulé mon voyage"); "en fait non, je le
garde" takes a cancellation back; "secrétariat de l'EHPAD, je voudrais un rendez-vous" says
who calls, not whom to talk to.
"""

from __future__ import annotations

import itertools
import re
from typing import Literal

from rapidfuzz import fuzz

from service.engine.nlu.filler import filler_of
from service.engine.nlu.lexicon import entries, phrases
from service.engine.nlu.memo import caller_memo
from service.engine.nlu.normalize import (
    Phrases,
    Utterance,
    analyse,
    clean,
    fold,
    has_phrase,
    negated,
    unelide,
)
from service.engine.nlu.yesno import answer_of

INTENTS = (
    "book", "cancel", "modify", "faq:address", "faq:hours", "faq:price", "faq:parking",
    "faq:access", "faq:other", "human", "yes", "no", "filler", "unknown",
)

# Single words that carry an intent (folded); phrases below for multi-word cues.
WORDS = entries("intent_words.txt")
# Verb stems whose every form carries the intent ("supprimez", "je me désiste", "annulerais").
STEMS: dict[str, tuple[str, ...]] = {
    "cancel": ("annul", "decommand", "desist", "supprim"),
    "modify": ("deplac", "decal", "repouss", "reprogramm", "modifi", "avanc", "recul"),
}
# "en avance", "à l'avance", "d'avance": early, not bringing an appointment forward.
NOT_MODIFY = frozenset({"l'avance", "d'avance", "l'avancement"})
# Phrase tables: data/intent_cues.txt, one [section] a table, its comments there.
_INTENT_CUES = phrases("intent_cues.txt")
CANT_COME = _INTENT_CUES["cant_come"]
APPOINTMENT = _INTENT_CUES["appointment"]
MOVE_AFTER_CANT = _INTENT_CUES["move_after_cant"]
# Asking not to talk to a machine is asking for a human, negated or not ("pas à un robot").
MACHINE = frozenset({"robot", "robots", "machine", "automate", "ordinateur", "repondeur", "serveur"})
PHRASES = phrases("intent_phrases.txt")
# Stems checked with fuzzy matching, for words speech-to-text tends to mangle.
FUZZY: dict[str, tuple[str, ...]] = {
    "cancel": ("annuler", "annulation", "decommander"),
    "modify": ("deplacer", "decaler", "reporter", "modifier"),
    "human": ("secretaire", "secretariat"),
}
REFLEXIVE = frozenset({"me", "se", "te", "nous"})
ORDER = ("human", "cancel", "modify", "faq:address", "faq:hours", "faq:price", "faq:parking", "faq:access", "book")
# "faq:other" is not a cue family: a question no FAQ topic answers (see ``QUESTION``).
FUZZY_SCORE = 84
_PHRASES = {name: Phrases(phrases) for name, phrases in PHRASES.items()}
_CANT_COME, _APPOINTMENT, _MOVE_AFTER_CANT = Phrases(CANT_COME), Phrases(APPOINTMENT), Phrases(MOVE_AFTER_CANT)
# "c'est pour quelqu'un d'autre" is the patient, not a wish to talk to someone.
_SOMEONE_ELSE = (("quelqu'un", "d'autre"), ("pour", "quelqu'un"), ("quelqu", "un", "d'autre"))
# The words dropped (at the same positions from the words as said and without elision, so that
# both stay side by side) to see whether a wish for a human remains without them.
_SOMEONE_WORDS = frozenset({"quelqu'un", "quelqu", "d'autre"})


# The cue words and stems of every intent, looked up together: one pass over the turn's
# words finds them all, and most words carry no intent at all.
_CUES = {name: frozenset(WORDS.get(name, ())) for name in ORDER}
_CUE_WORDS = frozenset().union(*_CUES.values())
_STEMS = {name: STEMS.get(name) or ("\0",) for name in ORDER}  # "\0" starts no word: no stem
_ALL_STEMS = tuple(stem for name in ORDER for stem in STEMS.get(name, ()))
_PHRASE_FIRSTS = frozenset().union(*(_PHRASES[name].firsts for name in ORDER if name in _PHRASES))


def _positions(utt: Utterance, name: str) -> list[int]:
    """Where the cues of ``name`` stand in the turn (computed once per turn and name)."""
    return _all_positions(utt).get(name, [])


@caller_memo(maxsize=256)
def _all_positions(utt: Utterance) -> dict[str, list[int]]:
    """Where the cues of every intent stand in the turn: its cue words, its phrases, else
    its misheard words, less the uses that ask for nothing."""
    words = utt.words
    found = _cue_hits(utt)
    said = _PHRASE_FIRSTS.intersection(words)
    if said:
        for name, cues in found.items():
            phrases = _PHRASES.get(name)
            if phrases is not None and not said.isdisjoint(phrases.firsts):
                cues.extend(phrases.positions(words))
    long = _long_words(utt.bare)
    return {name: _kept(utt, name, cues or _misheard(name, long)) for name, cues in found.items()}


def _cue_hits(utt: Utterance) -> dict[str, list[int]]:
    """Each intent's positions of its cue words (as said or without their elision) and
    stems, in order, read in one pass over the turn (``words`` and ``bare`` side by side)."""
    hits: dict[str, list[int]] = {name: [] for name in ORDER}
    for i, (w, b) in enumerate(zip(utt.words, utt.bare, strict=True)):
        if w in _CUE_WORDS or b in _CUE_WORDS or b.startswith(_ALL_STEMS):
            for name in ORDER:
                cues = _CUES[name]
                if w in cues or b in cues or b.startswith(_STEMS[name]):
                    hits[name].append(i)
    return hits


def _long_words(bare: tuple[str, ...]) -> dict[str, list[tuple[int, str]]]:
    """The words long enough to be a misheard cue ("anuler"), by first letter, in order."""
    out: dict[str, list[tuple[int, str]]] = {}
    for i, w in enumerate(bare):
        if len(w) >= 6:
            out.setdefault(w[0], []).append((i, w))
    return out


def _misheard(name: str, long: dict[str, list[tuple[int, str]]]) -> list[int]:
    """Where a word close to one of ``name``'s fuzzy stems stands ("anuler")."""
    found: list[int] = []
    for stem in FUZZY.get(name, ()):  # a misheard word keeps its first letter: "anuler", not "recommandé"
        if stem[0] in long:
            found.extend(i for i, w in long[stem[0]] if fuzz.ratio(w, stem) >= FUZZY_SCORE)
    return found


def _kept(utt: Utterance, name: str, found: list[int]) -> list[int]:
    """The cues of ``name`` at ``found`` that ask for it ("ma carte vitale", "dès
    l'ouverture", "me déplacer", "j'ai annulé mon voyage" do not)."""
    if not found:
        return found
    words, bare = utt.words, utt.bare
    if name.startswith("faq:"):  # "je cherche ma carte vitale", "ma voiture": the caller's own, not a question
        found = [i for i in found if not {"ma", "mon", "mes"} & set(words[max(0, i - 2) : i])]
    if name == "faq:hours":  # "dès l'ouverture", "à l'ouverture lundi": a time, not a question on the hours
        found = [i for i in found if not (bare[i] == "ouverture" and i and (words[i - 1] in ("des", "a", "l")
                                                                            or (words[i].startswith("l'")
                                                                                and words[i - 1] in ("des", "a"))))
                 and not (words[i] in ("ouvrez", "ouvre") and {"des", "quand"} & set(words[max(0, i - 3) : i]))]
    if name == "modify":  # "je peux me déplacer l'après-midi" is travelling, not moving the appointment
        found = [i for i in found if not (i and words[i - 1] in REFLEXIVE and bare[i].startswith("deplac"))
                 and not (i and words[i - 1] in ("en", "a") and bare[i].startswith("avanc"))
                 and words[i] not in NOT_MODIFY]
    if name in ("cancel", "modify"):  # "j'ai annulé mon voyage": told, not asked
        found = [i for i in found if not _narrated(words, i)]
    return found


AUXILIARIES = frozenset({"ai", "j'ai", "a", "avons", "avez", "ont", "avais", "j'avais", "avait", "l'ai", "l'a",
                         "l'avez", "l'avais", "m'a", "m'avez", "on"})
# What is cancelled or moved when it is not an appointment: "j'ai annulé mon voyage".
NOT_APPOINTMENTS = frozenset({"voyage", "vacances", "train", "vol", "avion", "reunion", "travail", "conge", "conges",
                              "deplacement", "sortie", "cours", "match", "diner", "repas", "sejour"})


def _narrated(words: tuple[str, ...], i: int) -> bool:
    """"j'ai annulé mon voyage", "je l'ai pas annulé": a participle after its auxiliary tells
    what happened, it asks nothing; and a trip cancelled is not an appointment."""
    if any(w in NOT_APPOINTMENTS for w in words[i + 1 : i + 3]):
        return True
    word = unelide(words[i])
    participle = word.endswith(("e", "es", "ee", "ees")) and word[:5] in ("annul", "decal", "depla", "repou", "avanc",
                                                                          "recul", "modif", "repor")
    return participle and any(w in AUXILIARIES for w in words[max(0, i - 2) : i])


def _present(utt: Utterance, name: str) -> bool:
    """True when a cue of ``name`` appears and at least one occurrence is not negated."""
    return _affirmed(utt.words, _positions(utt, name))


def _affirmed(words: tuple[str, ...], positions: list[int]) -> bool:
    """True when at least one of the cues at ``positions`` is not negated."""
    return any(not negated(words, i) for i in positions)


def intent_of(utt: Utterance) -> str:
    """The caller's intent among INTENTS."""
    return intent_read(utt, filler_of(utt), answer_of(utt))


def intent_read(utt: Utterance, filler: bool, answer: Literal["yes", "no"] | None) -> str:
    """:func:`intent_of` given what the turn's filler and yes/no readers said of it
    (``filler_of(utt)``, ``answer_of(utt)``), for a caller that reads those anyway."""
    if filler:
        return "filler"
    present = {name for name, positions in _all_positions(utt).items() if _affirmed(utt.words, positions)}
    if "human" in present and any(has_phrase(utt.words, p) >= 0 for p in _SOMEONE_ELSE) \
            and not {"parler", "passer", "passez"} & set(utt.words):
        kept = [i for i, w in enumerate(utt.words) if w not in _SOMEONE_WORDS]
        without = Utterance(utt.raw, tuple(utt.words[i] for i in kept), utt.digits, tuple(utt.bare[i] for i in kept))
        if not _present(without, "human"):
            present.discard("human")
    cant = _CANT_COME.positions(utt.words)
    if (cant and "cancel" not in present and _cant_on_a_day(utt.words, min(cant))
            and _MOVE_AFTER_CANT.positions(utt.words[min(cant) + 3 :])):
        present.add("modify")
    elif cant and _APPOINTMENT.found(utt.words):
        present.add("cancel")
    if any(w in MACHINE for w in utt.words):
        present.add("human")
    if "human" in present and has_phrase(utt.words, ("pas", "besoin")) >= 0:
        present.discard("human")
    if "cancel" in present and "modify" in present:
        later = _taken_back(utt)
        # "annuler et en reprendre un autre", "annuler ou déplacer": a move; but "déplacer, non, annuler" cancels
        present.discard("modify" if later == "cancel" else "cancel")
    words = utt.words
    if present & {"cancel", "modify"} and _RETRACT.found(words):
        present -= {"cancel", "modify"}  # "je voulais annuler mais en fait non, je garde le rendez-vous"
    if "human" in present and present & {"book", "cancel", "modify"} and not (_TALK & set(words)) \
            and not any(w in MACHINE for w in words):
        present.discard("human")  # "secrétariat de l'EHPAD, je voudrais un rendez-vous": who calls, not whom to talk to
    if "modify" in present:
        present.discard("book")
    question = _QUESTION.found(words)
    asking = question or "?" in utt.raw
    topics = {name for name in present if name.startswith("faq:")}
    if topics and "book" in present and not asking and not _FAQ_ASK.found(words):
        present -= topics  # "je prends le bus, disons jeudi": a booking told with its story
    if topics and any(w in ("donc", "alors") for w in words[min(_positions(utt, min(topics))) + 1 :]):
        present -= topics  # "vous êtes fermés le samedi après-midi ? alors samedi matin": the wish that follows
    if not present & {"human", "cancel", "modify"} and not topics and question and not _NEW_BOOKING.found(words):
        return "faq:other"  # "je voudrais savoir à quelle heure est mon rendez-vous"
    if not present and question and _NEW_BOOKING.found(words):
        return "book"  # "je voulais savoir si demain matin c'est possible"
    for name in ORDER:
        if name in present:
            return name
    if answer is not None:
        return answer
    return "unknown"


QUESTION = _INTENT_CUES["question"]
NEW_BOOKING = _INTENT_CUES["new_booking"]
FAQ_ASK = _INTENT_CUES["faq_ask"]
RETRACT = _INTENT_CUES["retract"]
_QUESTION, _NEW_BOOKING = Phrases(QUESTION), Phrases(NEW_BOOKING)
_FAQ_ASK, _RETRACT = Phrases(FAQ_ASK), Phrases(RETRACT)
# Asking to be put through: "parler au secrétariat", "passez-moi l'accueil".
_TALK = frozenset({"parler", "passer", "passez", "passez-moi", "transferer", "transferez", "joindre", "relation",
                   "quelqu'un", "humain", "personne"})

# Said between two requests, these take the first back: "je voudrais annuler, euh non, déplacer".
INTENT_MARKERS = frozenset({"non", "pardon", "enfin", "plutot", "finalement"})


def _taken_back(utt: Utterance) -> str | None:
    """The request said after a correction marker that takes another one back, if any."""
    words = utt.words
    cues = sorted((i, name) for name in ("cancel", "modify") for i in _positions(utt, name)
                  if not negated(words, i))
    for (i, a), (j, b) in itertools.pairwise(cues):
        if a != b and any(w in INTENT_MARKERS for w in words[i + 1 : j]):
            return b
    return None


def intent_corrected(utt: Utterance) -> bool:
    """True when the caller took a request back in the turn: a request, a correction marker,
    then another request ("annuler, euh non, pas annuler, déplacer"), or a request retracted
    ("je voulais annuler mais en fait non, je le garde")."""
    words = utt.words
    cues = sorted((i, name) for name in ("cancel", "modify", "book") for i in _positions(utt, name))
    for (i, a), (j, b) in itertools.combinations(cues, 2):
        if a != b and any(w in INTENT_MARKERS for w in words[i + 1 : j]):
            return True
    first = min((i for i, name in cues if name in ("cancel", "modify")), default=-1)
    return first >= 0 and any(at > first for at in _RETRACT.positions(words))


DAY_WORDS = frozenset({"lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "demain", "aujourd'hui",
                       "apres-demain"})


def _cant_on_a_day(words: tuple[str, ...], at: int) -> bool:
    """True when the "I can't come" at ``at`` names a day ("je peux pas venir mardi")."""
    return any(w in DAY_WORDS or w.isdigit() for w in words[at : at + 6])




def intent(text: str) -> str:
    """The caller's intent among INTENTS; never raises."""
    return intent_of(analyse(text if isinstance(text, str) else ""))


# "mon rendez-vous", "j'ai un rendez-vous": the caller speaks of an appointment they hold.
_OWN_APPOINTMENT = re.compile(r"\b(mon|notre) (rendez[ -]?vous|rdv)\b|\bj[' ]?ai (un|deja un) (rendez[ -]?vous|rdv)\b")


def mentions_own_appointment(text: object) -> bool:
    """True when the caller speaks of an appointment they already hold ("mon rendez-vous")."""
    if not isinstance(text, str):
        return False
    return _OWN_APPOINTMENT.search(fold(clean(text))) is not None
