"""What the caller wants: book, cancel, modify, a practical question, a human, yes, no.

Keyword stems with negation scope ("je voudrais pas annuler, je voudrais déplacer" is a
move) and ``rapidfuzz`` for speech-to-text misspellings ("anuler"). Fuzzy scores ignore
negation, so negation is checked on the matched word's position, by hand.
"""

from __future__ import annotations

from rapidfuzz import fuzz

from service.engine.nlu.normalize import Utterance, analyse, has_phrase, negated
from service.engine.nlu.yesno import yes_no

INTENTS = (
    "book", "cancel", "modify", "faq:address", "faq:hours", "faq:price", "faq:parking",
    "faq:access", "human", "yes", "no", "filler", "unknown",
)

# Single words that carry an intent (folded); phrases below for multi-word cues.
WORDS: dict[str, tuple[str, ...]] = {
    "cancel": ("annuler", "annule", "annulez", "annulation", "decommander", "decommande", "desister", "supprimer"),
    "modify": ("deplacer", "deplace", "deplacez", "decaler", "decale", "decalez", "reporter", "reporte",
               "modifier", "modifie", "changer", "change", "avancer", "repousser", "reprogrammer"),
    "human": ("humain", "humaine", "secretaire", "secretariat", "standardiste", "operateur", "operatrice",
              "conseiller", "conseillere", "receptionniste", "accueil"),
    "faq:address": ("adresse", "situe", "situes", "situee", "localisation", "trouvez"),
    "faq:hours": ("horaire", "horaires", "ouvert", "ouverts", "ouverte", "ouvrez", "ouverture", "fermez", "ferme", "fermeture"),
    "faq:price": ("prix", "tarif", "tarifs", "coute", "coutent", "cout", "rembourse", "remboursement", "remboursee",
                  "honoraires", "depassement", "mutuelle", "vitale", "payer", "paiement", "euros", "secteur"),
    "faq:parking": ("parking", "garer", "stationner", "stationnement", "voiture", "se garer"),
    "faq:access": ("acces", "accessible", "accessibilite", "handicape", "handicap", "fauteuil", "ascenseur",
                   "pmr", "metro", "bus", "tram", "tramway", "escalier", "escaliers", "etage"),
    "book": ("rdv", "consultation", "reserver", "creneau", "creneaux", "disponibilite", "disponibilites", "dispo"),
}
PHRASES: dict[str, tuple[tuple[str, ...], ...]] = {
    "human": (("parler", "a", "quelqu", "un"), ("parler", "a", "quelqu'un"), ("quelqu'un",), ("une", "personne"),
              ("vraie", "personne"), ("parler", "au", "docteur"), ("parler", "au", "medecin"),
              ("parler", "a", "la", "secretaire"), ("parler", "a", "une", "personne"), ("un", "vrai"),
              ("parler", "a", "un"), ("passer", "le", "secretariat"), ("passez", "moi")),
    "faq:address": (("c'est", "ou"), ("c", "est", "ou"), ("ou", "se", "trouve"), ("ou", "etes", "vous"),
                    ("ou", "est", "le", "cabinet"), ("ou", "vous", "etes"), ("ou", "ca", "se", "trouve"),
                    ("vous", "etes", "ou"), ("quelle", "rue")),
    "faq:hours": (("quelle", "heure", "vous"), ("jusqu'a", "quelle", "heure"), ("a", "quelle", "heure", "vous"),
                  ("quels", "jours"), ("heures", "d'ouverture")),
    "faq:price": (("combien", "ca"), ("combien", "c'est"), ("combien", "coute"), ("combien", "pour"),
                  ("carte", "vitale"), ("c'est", "combien"), ("c", "est", "combien")),
    "faq:parking": (("se", "garer"), ("ou", "me", "garer"), ("ou", "se", "garer")),
    "faq:access": (("comment", "venir"), ("comment", "y", "aller"), ("comment", "acceder"), ("comment", "on", "vient"),
                   ("rez", "de", "chaussee"), ("transports", "en", "commun")),
    "book": (("rendez", "vous"), ("rendez-vous",), ("prendre", "un", "rendez"), ("voir", "le", "docteur"),
             ("voir", "le", "medecin"), ("prendre", "rendez"), ("une", "place"), ("me", "faire", "soigner"),
             ("venir", "consulter"), ("un", "rendez")),
}
# Stems checked with fuzzy matching, for words speech-to-text tends to mangle.
FUZZY: dict[str, tuple[str, ...]] = {
    "cancel": ("annuler", "annulation", "decommander"),
    "modify": ("deplacer", "decaler", "reporter", "modifier"),
    "human": ("secretaire", "secretariat"),
}
ORDER = ("human", "cancel", "modify", "faq:address", "faq:hours", "faq:price", "faq:parking", "faq:access", "book")
FUZZY_SCORE = 84


def _positions(utt: Utterance, name: str) -> list[int]:
    words = utt.words
    found = [i for i, w in enumerate(words) if w in WORDS.get(name, ())]
    for phrase in PHRASES.get(name, ()):
        at = has_phrase(words, phrase)
        if at >= 0:
            found.append(at)
    if not found:
        for stem in FUZZY.get(name, ()):
            found.extend(i for i, w in enumerate(words) if len(w) >= 6 and fuzz.ratio(w, stem) >= FUZZY_SCORE)
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
    for name in ORDER:
        if name == "book" and _present(utt, "modify"):
            continue
        if _present(utt, name):
            if name == "human" and has_phrase(utt.words, ("pas", "besoin")) >= 0:
                continue
            return name
    answer = yes_no(utt.raw)
    if answer is not None:
        return answer
    return "unknown"


def intent(text: str) -> str:
    """The caller's intent among INTENTS; never raises."""
    return intent_of(analyse(text if isinstance(text, str) else ""))
