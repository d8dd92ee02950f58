"""Every sentence the assistant says, in natural spoken French.

Variants are picked by a counter the engine passes in (turn or attempt number), never
at random, so a conversation replays identically.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.engine.states import Field


def pick(variants: Sequence[str], n: int) -> str:
    """The ``n``-th variant, cycling."""
    return variants[n % len(variants)]


ASK_NAME = (
    "Très bien. C'est à quel nom, s'il vous plaît ?",
    "Avec plaisir. Puis-je avoir votre nom et votre prénom ?",
)
ASK_PREF = (
    "Merci{who}. Vous préférez plutôt le matin ou l'après-midi ?",
    "Merci{who}. Plutôt le matin, l'après-midi, ou peu importe ?",
)
SLOTS_INTRO = ("Très bien. J'ai trois créneaux :", "Voici ce que je vous propose :")
SLOTS_INTRO_OTHER = ("D'accord, j'ai d'autres créneaux :", "Je vous propose plutôt :")
SLOTS_INTRO_RETRY = (
    "Désolée, ce créneau vient d'être pris. J'en ai d'autres :",
    "Ce créneau n'est malheureusement plus libre. Voici d'autres possibilités :",
)
SLOTS_QUESTION = "Lequel vous convient ?"
SLOTS_QUESTION_TEXT = "Lequel vous convient (1, 2 ou 3) ?"
ASK_PHONE = (
    "Parfait. À quel numéro pouvons-nous vous joindre en cas de besoin ?",
    "Entendu. Quel est votre numéro de téléphone ?",
)
CONFIRMED = "C'est noté : {slot}, {who}. Au revoir et bonne journée !"
CONFIRMED_MOVED = "C'est noté : {slot}, {who} ; l'ancien rendez-vous est annulé. Au revoir et bonne journée !"
TRANSFER = (
    "Je vous transfère à un membre du cabinet, ne quittez pas.",
    "Je vous mets en relation avec le secrétariat, un instant s'il vous plaît.",
)
TRANSFER_AFTER_FAILURES = "Je préfère vous passer le secrétariat, qui pourra vous aider. Ne quittez pas."
TRANSFER_NO_SLOT = (
    "Je n'ai plus de créneau disponible qui corresponde. Je vous passe le secrétariat, ne quittez pas."
)
TRANSFER_ERROR = "Je rencontre un souci technique. Je vous passe le secrétariat, ne quittez pas."
MENU = (
    "Je vous propose un petit menu. Dites 1 pour prendre rendez-vous, 2 pour annuler ou déplacer "
    "un rendez-vous, 3 pour poser une question, ou 4 pour parler à quelqu'un."
)
MENU_SHORT = "Dites 1 pour un rendez-vous, 2 pour annuler ou déplacer, 3 pour une question, 4 pour parler à quelqu'un."
MENU_QUESTION = "Je vous écoute, quelle est votre question ?"
START_HELP = "Je peux vous aider à prendre, annuler ou déplacer un rendez-vous. Que souhaitez-vous ?"
START_NO = "D'accord. Que puis-je faire pour vous ?"
EXPIRED = "Notre échange précédent a expiré, reprenons depuis le début."
CALL_OVER = "Cet appel est terminé. Au revoir et bonne journée !"
RESUMED_AFTER_END = "Reprenons depuis le début."
CLOSED_CONFIRMED = "Votre rendez-vous est bien enregistré. Au revoir et bonne journée !"
CLOSED_CANCELLED = "Votre rendez-vous est bien annulé. Au revoir et bonne journée !"
ASK_WHICH_SLOT = "Lequel préférez-vous : le premier, le deuxième ou le troisième ?"
ASK_PREF_AGAIN = "Vous préférez le matin, l'après-midi, ou un jour en particulier ?"
CANCEL_CONFIRM = "Vous avez rendez-vous {slot}. Je l'annule ?"
MODIFY_CONFIRM = "Vous avez rendez-vous {slot}. Souhaitez-vous le déplacer ? Sinon je peux aussi l'annuler."
MODIFY_FOUND = (
    "J'ai trouvé votre rendez-vous du {slot}, au numéro qui appelle. "
    "Souhaitez-vous le déplacer ? Sinon je peux aussi l'annuler."
)
CANCELLED = "C'est fait, votre rendez-vous {slot} est annulé. Au revoir et bonne journée !"
CANCEL_KEPT = "Très bien, je ne touche à rien."
MODIFY_ASK_PREF = "D'accord, déplaçons-le. Vous préférez plutôt le matin ou l'après-midi ?"
YES_NO_AGAIN = "Pardon, est-ce oui ou non ?"

# -- names: the caller's, or the patient's when the appointment is for someone else ----------
ASK_LAST_NAME = ("{first} comment, s'il vous plaît ?", "Et votre nom de famille, {first} ?")
ASK_PATIENT_LAST_NAME = ("{first} comment, s'il vous plaît ?", "Et son nom de famille ?")
ASK_PATIENT_NAME = "Quel est le nom de {whom} ?"
NAME_WHY = "C'est pour enregistrer le rendez-vous dans le dossier du praticien."
ASK_NAME_AGAIN = "Quel est votre nom, s'il vous plaît ?"
NAME_NEEDED = "Sans nom, je ne peux pas enregistrer le rendez-vous. Pouvez-vous me le donner ?"
NAME_NOTED = "Très bien, {who}."
RELATION_OTHER = "la personne qui consulte"

# -- slots --------------------------------------------------------------------------------
SLOTS_INTRO_NEAREST = ("Je n'ai rien de libre à ce moment-là. Les créneaux les plus proches :",)
SLOTS_INTRO_CLOSED = ("Le cabinet ne reçoit pas à ces horaires-là. Les créneaux les plus proches :",)
MOVE_INTRO = "Pour déplacer votre rendez-vous {old}, je vous propose :"
# The move flow says how it found the appointment: by the number calling, never by a name.
MOVE_FOUND_INTRO = "J'ai trouvé votre rendez-vous du {old}, au numéro qui appelle. Pour le déplacer, je vous propose :"
REPEAT_SLOTS = "Je répète : {labels}. Lequel vous convient ?"

# -- existing appointments ------------------------------------------------------------------
SECURE_TRANSFER = (
    "Pour votre sécurité, je ne peux modifier un rendez-vous que depuis le numéro qui l'a pris ; "
    "je vous passe le secrétariat."
)
IDENTIFY_OTHER_NUMBER = (
    "Pour annuler depuis un autre numéro, j'ai besoin du prénom et du nom du patient, "
    "et du jour et de l'heure du rendez-vous."
)
IDENTIFY_MISSING = "Il me manque {missing}."
MISSING_NAME = "le prénom et le nom du patient"
MISSING_DAY = "le jour du rendez-vous"
MISSING_TIME = "l'heure du rendez-vous"
WHICH_BOOKING = "Vous avez {count} rendez-vous : {labels}. Lequel ?"
WHICH_BOOKING_FOUND = ("J'ai trouvé {count} rendez-vous au numéro qui appelle : {labels}. "
                       "Lequel souhaitez-vous déplacer ?")
WHICH_BOOKING_AGAIN = "Pardon, lequel : {labels} ?"
NOT_THAT_ONE = "Je ne trouve pas ce rendez-vous-là."
COUNTS = {2: "deux", 3: "trois", 4: "quatre", 5: "cinq"}


def elide(word: str, before: str) -> str:
    """"au nom de" + "Alice" → "au nom d'Alice": French elision before a vowel or a mute h."""
    if before.endswith(" de") and word[:1].lower() in "aàâeéèêiîoôuyh":
        return f"{before[:-1]}'{word}"
    return f"{before} {word}"


def for_whom(name: str, someone_else: bool) -> str:
    """"au nom de Jean Dupont", "au nom d'Alice Martin", or "pour Inès Brossard"."""
    return f"pour {name}" if someone_else else elide(name, "au nom de")


def relation_words(relation: str | None) -> str:
    """"votre fille", "votre mère" (the relation word as the understanding layer gives it), or
    "la personne qui consulte" for anyone else."""
    return f"votre {relation}" if relation and relation != "autre" else RELATION_OTHER

FILLER = {
    Field.NAME: "Je vous écoute : votre nom ?",
    Field.SLOT_CHOICE: "Prenez votre temps. Le premier, le deuxième ou le troisième ?",
    Field.PHONE: "Je vous écoute : votre numéro ?",
}
FILLER_DEFAULT = "Je vous écoute."

# A bare "oui" to a question asked again ("Pouvez-vous le redire ?" — "Oui."): the caller is
# about to answer; invite the answer, nothing is counted against them.
REASK_ACK = {
    Field.NAME: "Je vous écoute : votre prénom et votre nom ?",
    Field.PHONE: "Je vous écoute : votre numéro, deux chiffres par deux chiffres ?",
    Field.SLOT_CHOICE: "Je vous écoute : le premier, le deuxième ou le troisième ?",
}
REASK_ACK_PATIENT = "Je vous écoute : le prénom et le nom de {whom} ?"
REASK_ACK_WHICH_BOOKING = "Je vous écoute : lequel, {labels} ?"
REASK_ACK_MENU = "Je vous écoute : dites 1, 2, 3 ou 4."

CLARIFY: dict[Field, tuple[str, ...]] = {
    Field.NAME: (
        "Pardon, je n'ai pas bien compris votre nom. Pouvez-vous me le redire ?",
        "Excusez-moi, pouvez-vous me dire votre prénom puis votre nom ?",
        "Pouvez-vous m'épeler votre nom de famille ?",
    ),
    Field.SLOT_CHOICE: (
        "Pardon, lequel des trois créneaux préférez-vous ?",
        "Dites simplement le premier, le deuxième ou le troisième.",
        "Vous pouvez aussi me dire l'heure du créneau qui vous convient.",
    ),
    Field.PHONE: (
        "Je n'ai pas bien saisi le numéro. Pouvez-vous le redire, deux chiffres par deux chiffres ?",
        "Pardon, pouvez-vous répéter votre numéro, par exemple zéro six, douze, trente-quatre… ?",
        "Excusez-moi, il me manque des chiffres. Votre numéro, s'il vous plaît ?",
    ),
}

CONFIRM_RETRY = "Excusez-moi, je n'ai pas compris votre choix. {slots}"

FAQ_UNKNOWN = "Je n'ai pas cette information, le secrétariat pourra vous répondre."

RESUME = {
    "START": "Souhaitez-vous prendre rendez-vous ?",
    "QUALIF_NAME": "Et c'est à quel nom ?",
    "QUALIF_PREF": "Vous préférez plutôt le matin ou l'après-midi ?",
    "QUALIF_PHONE": "Et votre numéro de téléphone ?",
    "INTENT_ROUTER": MENU_SHORT,
    "CANCEL_IDENTIFY": "De quel rendez-vous s'agit-il ?",
    "MODIFY_IDENTIFY": "De quel rendez-vous s'agit-il ?",
    "CANCEL_CONFIRM": "Je l'annule ?",
    "MODIFY_CONFIRM": "Souhaitez-vous le déplacer ?",
}
RESUME_SLOTS = "Pour votre rendez-vous, je vous rappelle les créneaux : {labels}. Lequel vous convient ?"
