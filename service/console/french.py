"""Every French word the console shows for a value of the service's vocabularies.

One table per vocabulary (outcomes, causes, fields, channels, booking results, the seed's
target table); the values and thresholds themselves come from their declarations
(:mod:`service.engine.states`, :mod:`service.stats`, :mod:`telemetry.names`), and a test
checks that every declared value has its French words here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from service.engine.states import BookingResult, Channel, Field, Outcome
from service.stats import Cause

IN_PROGRESS: Final = Cause.IN_PROGRESS.value

OUTCOMES: Final[Mapping[str, str]] = {
    Outcome.CONFIRMED.value: "confirmé",
    Outcome.TRANSFERRED.value: "transféré",
    Outcome.INTENT_ROUTER.value: "menu de secours",
    Outcome.ABANDONED.value: "abandonné",
    Outcome.EXPIRED.value: "expiré",
    Outcome.CANCELLED.value: "annulé",
    IN_PROGRESS: "en cours",
}

CAUSES: Final[Mapping[Cause, str]] = {
    Cause.SLOT_TAKEN: "créneau pris entre proposition et confirmation",
    Cause.ANTI_LOOP: "anti-boucle (trop de tours)",
    Cause.PHONE_RECOVERY: "numéro de rappel non compris",
    Cause.RECOVERY_LIMIT: "limite de relance (nom, choix du créneau)",
    Cause.LONG_SLOT_MESSAGE: "message des créneaux trop long",
    Cause.FAQ_WAIT_CONFIRM: "question pratique pendant le choix du créneau",
    Cause.SESSION_EXPIRED: "session expirée",
    Cause.BOOKING_ERROR: "erreur de réservation",
    Cause.NO_SLOT: "aucun créneau à proposer",
    Cause.TRANSFERRED_OTHER: "transféré (demande d'un humain ou autre)",
    Cause.MENU: "resté dans le menu de secours",
    Cause.CALLER_HUNG_UP: "l'appelant a raccroché",
    Cause.UNKNOWN: "aucun résultat enregistré",
    Cause.CONFIRMED: "confirmé",
    Cause.CANCELLED: "rendez-vous annulé",
    Cause.NOT_A_BOOKING: "annulation ou question pratique (pas une prise de rendez-vous)",
    Cause.IN_PROGRESS: "en cours",
}

FIELDS: Final[Mapping[str, str]] = {
    Field.NAME.value: "nom",
    Field.SLOT_CHOICE.value: "choix du créneau",
    Field.PHONE.value: "téléphone",
}
FILLER: Final = "filler"
FIELD_FILLER: Final = "hésitation (euh, allô…)"

CHANNELS: Final[Mapping[str, str]] = {Channel.VOICE.value: "voix", Channel.TEXT.value: "texte"}

BOOKING_RESULTS: Final[Mapping[str, str]] = {
    BookingResult.SUCCESS.value: "réussie",
    BookingResult.SLOT_TAKEN.value: "créneau déjà pris",
    BookingResult.ERROR.value: "erreur du stockage",
}


@dataclass(frozen=True, slots=True)
class TargetWords:
    """A row of the operators' manual's target table (§5.7) as the manual words it."""

    label: str
    action: str


# Keyed by ``service.stats.TARGETS`` keys; the thresholds are never written here.
TARGETS: Final[Mapping[str, TargetWords]] = {
    "confirmation_rate": TargetWords("Taux de confirmation", "Analyser les abandons (phase 2)"),
    "slot_taken_rate": TargetWords(
        "Créneau pris (success=False)", "Retry déjà en place ; surveiller [BOOKING_RETRY] (BOOKING_RETRY_MAX)"
    ),
    "anti_loop_rate": TargetWords("Anti-loop déclenché", "Augmenter MAX_TURNS_ANTI_LOOP"),
    "phone_recovery_rate": TargetWords("Recovery phone atteint", "RECOVERY_LIMITS phone déjà à 3 tentatives"),
    "long_slot_message_rate": TargetWords(
        "Messages créneaux trop longs (TTS)", "Version compacte des créneaux (SLOTS_MESSAGE_MAX_CHARS)"
    ),
}

WEEKDAYS: Final = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
MONTHS: Final = (
    "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.",
)


def outcome(value: str | None) -> str:
    """The French word of an outcome value (``in_progress`` included)."""
    return OUTCOMES.get(value or IN_PROGRESS, value or "")


def field(value: str | None) -> str:
    """The French word of a recovery field (or of fillers)."""
    if value == FILLER:
        return FIELD_FILLER
    return FIELDS.get(value or "", value or "?")


def channel(value: str | None) -> str:
    """``voix`` or ``texte``."""
    return CHANNELS.get(value or "", value or "?")


def day(moment: datetime) -> str:
    """``mar. 3 mars`` (the date in the zone ``moment`` carries)."""
    return f"{WEEKDAYS[moment.weekday()]} {moment.day} {MONTHS[moment.month - 1]}"


def clock(moment: datetime) -> str:
    """``09:05``."""
    return moment.strftime("%H:%M")


def stamp(moment: datetime) -> str:
    """``mar. 3 mars 09:05``."""
    return f"{day(moment)} {clock(moment)}"


def duration(seconds: float | None) -> str:
    """``2 min 05 s``, ``45 s``, or an empty text."""
    if seconds is None:
        return ""
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def percent(value: float) -> str:
    """``72,5 %`` (French decimal comma)."""
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") + " %"
