"""What the caller wants: book, cancel, modify, a practical question, a human, yes, no.

Keyword stems with negation scope ("je voudrais pas annuler, je voudrais déplacer" is a
move) and ``rapidfuzz`` for speech-to-text misspellings ("anuler"). Fuzzy scores ignore
negation, so negation is checked on the matched word's position, by hand. Cues are looked
up on the words without their elision too ("l'adresse", "j'annule", "l'annuler").
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz

from service.engine.nlu.normalize import (
    Phrases,
    Utterance,
    analyse,
    clean,
    fold,
    has_phrase,
    negated,
)
from service.engine.nlu.yesno import yes_no

INTENTS = (
    "book", "cancel", "modify", "faq:address", "faq:hours", "faq:price", "faq:parking",
    "faq:access", "human", "yes", "no", "filler", "unknown",
)

# Single words that carry an intent (folded); phrases below for multi-word cues.
WORDS: dict[str, tuple[str, ...]] = {
    "cancel": ("annuler", "annule", "annulez", "annulation", "decommander", "decommande", "desister", "supprimer"),
    "modify": ("deplacer", "deplace", "deplacez", "decaler", "decale", "decalez", "reporter", "reporte",
               "modifier", "modifie", "changer", "change", "avancer", "avancez", "repousser", "reprogrammer"),
    "human": ("humain", "humaine", "secretaire", "secretariat", "standardiste", "operateur", "operatrice",
              "conseiller", "conseillere", "receptionniste", "accueil", "transferer", "transferez", "transfere"),
    "faq:address": ("adresse", "situe", "situes", "situee", "localisation", "trouvez"),
    "faq:hours": ("horaire", "horaires", "ouvert", "ouverts", "ouverte", "ouvertes", "ouvrez", "ouvre", "ouvrent",
                  "ouverture", "fermez", "ferme", "fermes", "fermee", "fermees", "ferment", "fermeture"),
    "faq:price": ("prix", "tarif", "tarifs", "coute", "coutent", "cout", "rembourse", "remboursement", "remboursee",
                  "honoraires", "depassement", "mutuelle", "vitale", "payer", "paiement", "euros", "secteur",
                  "cheque", "cheques", "especes", "liquide", "cb", "conventionne", "conventionnee"),
    "faq:parking": ("parking", "garer", "stationner", "stationnement", "voiture", "se garer"),
    "faq:access": ("acces", "accessible", "accessibilite", "handicape", "handicapes", "handicapee", "handicap",
                   "fauteuil", "ascenseur", "pmr", "metro", "bus", "tram", "tramway", "escalier", "escaliers", "etage",
                   "rez-de-chaussee"),
    "book": ("rdv", "consultation", "consulter", "reserver", "creneau", "creneaux", "disponibilite",
             "disponibilites", "dispo"),
}
# Verb stems whose every form carries the intent ("supprimez", "je me désiste", "annulerais").
STEMS: dict[str, tuple[str, ...]] = {
    "cancel": ("annul", "decommand", "desist", "supprim"),
    "modify": ("deplac", "decal", "repouss", "reprogramm", "modifi"),
}
# "Je ne pourrai pas venir à mon rendez-vous": cancelling, when the appointment is named.
# Alone, "je ne peux pas venir le matin" answers the preference question: not a cancel.
CANT_COME = (("pourrai", "pas", "venir"), ("pourrais", "pas", "venir"), ("peux", "pas", "venir"),
             ("pourrai", "pas", "y"), ("pourrais", "pas", "y"), ("peux", "pas", "y"), ("viendrai", "pas"),
             ("serai", "pas", "la"), ("pourrai", "pas", "etre"), ("pourrai", "pas", "honorer"),
             ("empechement",), ("pourrai", "plus", "venir"), ("peux", "plus", "venir"), ("pourrais", "plus", "venir"))
APPOINTMENT = (("mon", "rendez-vous"), ("mon", "rendez", "vous"), ("mon", "rdv"), ("ce", "rendez-vous"),
               ("le", "rendez-vous"), ("au", "rendez-vous"), ("pas", "y"), ("ai", "un", "rendez-vous"),
               ("ai", "rendez-vous"), ("ai", "un", "rendez", "vous"), ("ai", "un", "rdv"), ("j'ai", "un", "rendez-vous"),
               ("j'ai", "rendez-vous"), ("j'ai", "un", "rendez", "vous"), ("j'ai", "un", "rdv"), ("celui", "de"),
               ("celui", "du"), ("son", "rendez-vous"), ("notre", "rendez-vous"))
# After "I can't come (then)", asking for another time is a move: "je peux pas venir mardi,
# est-ce qu'on peut faire jeudi", "… on pourrait le mettre jeudi".
MOVE_AFTER_CANT = (("on", "peut"), ("on", "pourrait"), ("vous", "pouvez"), ("vous", "pourriez"), ("plutot",),
                   ("a", "la", "place"), ("mettre",), ("faire",), ("reprendre",), ("un", "autre"), ("une", "autre"),
                   ("possible", "de"), ("decaler",), ("deplacer",))
# Asking not to talk to a machine is asking for a human, negated or not ("pas à un robot").
MACHINE = frozenset({"robot", "robots", "machine", "automate", "ordinateur", "repondeur", "serveur"})
PHRASES: dict[str, tuple[tuple[str, ...], ...]] = {
    "human": (("parler", "a", "quelqu", "un"), ("parler", "a", "quelqu'un"), ("quelqu'un",), ("une", "personne"),
              ("vraie", "personne"), ("parler", "au", "docteur"), ("parler", "au", "medecin"),
              ("parler", "a", "la", "secretaire"), ("parler", "a", "une", "personne"), ("un", "vrai"),
              ("parler", "a", "un"), ("passer", "le", "secretariat"), ("passez", "moi"), ("passez-moi",),
              ("en", "relation"), ("parler", "a", "madame"), ("parler", "a", "monsieur"), ("parler", "a", "la"),
              ("parler", "au", "secretariat"), ("parler", "avec", "quelqu'un"), ("parler", "avec", "un"),
              ("parler", "avec", "une")),
    "faq:address": (("c'est", "ou"), ("c", "est", "ou"), ("ou", "se", "trouve"), ("ou", "etes", "vous"),
                    ("ou", "est", "le", "cabinet"), ("ou", "vous", "etes"), ("ou", "ca", "se", "trouve"),
                    ("vous", "etes", "ou"), ("quelle", "rue"), ("se", "trouve"), ("se", "situe")),
    "faq:hours": (("quelle", "heure", "vous"), ("jusqu'a", "quelle", "heure"), ("a", "quelle", "heure", "vous"),
                  ("quels", "jours"), ("heures", "d'ouverture")),
    "faq:price": (("combien", "ca"), ("combien", "c'est"), ("combien", "coute"), ("combien", "pour"),
                  ("carte", "vitale"), ("c'est", "combien"), ("c", "est", "combien"), ("tiers", "payant"),
                  ("carte", "bleue"), ("carte", "bancaire")),
    "faq:parking": (("se", "garer"), ("ou", "me", "garer"), ("ou", "se", "garer")),
    "faq:access": (("comment", "venir"), ("comment", "y", "aller"), ("comment", "acceder"), ("comment", "on", "vient"),
                   ("rez", "de", "chaussee"), ("transports", "en", "commun")),
    "book": (("rendez", "vous"), ("rendez-vous",), ("prendre", "un", "rendez"), ("voir", "le", "docteur"),
             ("voir", "le", "medecin"), ("prendre", "rendez"), ("une", "place"), ("me", "faire", "soigner"),
             ("venir", "consulter"), ("un", "rendez"), ("voir", "un", "medecin"), ("voir", "un", "docteur"),
             ("voir", "la", "docteure"), ("de", "la", "place"), ("des", "places"), ("me", "recevoir"),
             ("nous", "recevoir"), ("la", "recevoir"), ("le", "recevoir")),
    # Cancelling to take another appointment, or putting "it" elsewhere, is moving it.
    "modify": (("reprendre", "un"), ("en", "reprendre"), ("le", "mettre", "un", "autre"), ("la", "mettre", "un", "autre"),
               ("le", "remettre"), ("mettre", "mon", "rendez-vous"), ("mettre", "le", "rendez-vous"),
               ("mettre", "mon", "rdv"), ("changer", "de", "creneau"), ("changer", "l'heure"), ("changer", "la", "date"),
               ("changer", "le", "jour")),
}
# Stems checked with fuzzy matching, for words speech-to-text tends to mangle.
FUZZY: dict[str, tuple[str, ...]] = {
    "cancel": ("annuler", "annulation", "decommander"),
    "modify": ("deplacer", "decaler", "reporter", "modifier"),
    "human": ("secretaire", "secretariat"),
}
REFLEXIVE = frozenset({"me", "se", "te", "nous"})
ORDER = ("human", "cancel", "modify", "faq:address", "faq:hours", "faq:price", "faq:parking", "faq:access", "book")
FUZZY_SCORE = 84
_PHRASES = {name: Phrases(phrases) for name, phrases in PHRASES.items()}
_CANT_COME, _APPOINTMENT, _MOVE_AFTER_CANT = Phrases(CANT_COME), Phrases(APPOINTMENT), Phrases(MOVE_AFTER_CANT)
# "c'est pour quelqu'un d'autre" is the patient, not a wish to talk to someone.
_SOMEONE_ELSE = (("quelqu'un", "d'autre"), ("pour", "quelqu'un"), ("quelqu", "un", "d'autre"))
_NO_PHRASES = Phrases(())


def _positions(utt: Utterance, name: str) -> list[int]:
    words, bare = utt.words, utt.bare
    cues, stems = WORDS.get(name, ()), STEMS.get(name, ())
    found = [i for i, (w, b) in enumerate(zip(words, bare)) if w in cues or b in cues or b.startswith(stems or ("\0",))]
    found.extend(_PHRASES.get(name, _NO_PHRASES).positions(words))
    if not found:
        for stem in FUZZY.get(name, ()):
            found.extend(i for i, w in enumerate(bare) if len(w) >= 6 and fuzz.ratio(w, stem) >= FUZZY_SCORE)
    if name == "modify":  # "je peux me déplacer l'après-midi" is travelling, not moving the appointment
        found = [i for i in found if i == 0 or words[i - 1] not in REFLEXIVE]
    return found


def _present(utt: Utterance, name: str) -> bool:
    """True when a cue of ``name`` appears and at least one occurrence is not negated."""
    positions = _positions(utt, name)
    return any(not negated(utt.words, i) for i in positions)


def intent_of(utt: Utterance) -> str:
    """The caller's intent among INTENTS."""
    from service.engine.nlu.filler import filler_of

    if filler_of(utt):
        return "filler"
    present = {name for name in ORDER if _present(utt, name)}
    if "human" in present and any(has_phrase(utt.words, p) >= 0 for p in _SOMEONE_ELSE) \
            and not {"parler", "passer", "passez"} & set(utt.words):
        without = Utterance(utt.raw, _drop_someone(utt.words), utt.digits, _drop_someone(utt.bare))
        if not _present(without, "human"):
            present.discard("human")
    cant = _CANT_COME.positions(utt.words)
    if cant and "cancel" not in present and _cant_on_a_day(utt.words, min(cant)) and _MOVE_AFTER_CANT.positions(utt.words[min(cant) + 3 :]):
        present.add("modify")
    elif cant and _APPOINTMENT.found(utt.words):
        present.add("cancel")
    if any(w in MACHINE for w in utt.words):
        present.add("human")
    if "human" in present and has_phrase(utt.words, ("pas", "besoin")) >= 0:
        present.discard("human")
    if "cancel" in present and "modify" in present:
        present.discard("cancel")  # "annuler et en reprendre un autre", "annuler ou déplacer": a move
    if "modify" in present:
        present.discard("book")
    for name in ORDER:
        if name in present:
            return name
    answer = yes_no(utt.raw)
    if answer is not None:
        return answer
    return "unknown"


DAY_WORDS = frozenset({"lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "demain", "aujourd'hui",
                       "apres-demain"})


def _cant_on_a_day(words: tuple[str, ...], at: int) -> bool:
    """True when the "I can't come" at ``at`` names a day ("je peux pas venir mardi")."""
    return any(w in DAY_WORDS or w.isdigit() for w in words[at : at + 6])


def _drop_someone(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(w for w in words if w not in ("quelqu'un", "quelqu", "d'autre"))


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
