"""Why a conversation did not book: the causes, their precedence and the manual's recommendations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from service.engine.states import BookingResult, Field, Outcome, State, TransferReason
from service.stats.facts import IN_PROGRESS, CallFacts
from telemetry import names as n


class Cause(StrEnum):
    """Why a conversation did not end in a confirmed appointment (or that it did)."""

    # The seven failure patterns of the seed's checklist (§2, §5.4).
    SLOT_TAKEN = "slot_taken"
    ANTI_LOOP = "anti_loop"
    PHONE_RECOVERY = "phone_recovery"
    RECOVERY_LIMIT = "recovery_limit"
    LONG_SLOT_MESSAGE = "long_slot_message"
    FAQ_WAIT_CONFIRM = "faq_wait_confirm"
    SESSION_EXPIRED = "session_expired"
    # Other ways a call is lost, reported but without a seed recipe.
    BOOKING_ERROR = "booking_error"
    NO_SLOT = "no_slot"
    TRANSFERRED_OTHER = "transferred_other"
    MENU = "menu"
    CALLER_HUNG_UP = "caller_hung_up"
    UNKNOWN = "unknown"
    # Not failures.
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    NOT_A_BOOKING = "not_a_booking"
    IN_PROGRESS = IN_PROGRESS


# In order of precedence: the first that applies names the conversation's cause.
PATTERNS: tuple[Cause, ...] = (
    Cause.SLOT_TAKEN,
    Cause.ANTI_LOOP,
    Cause.PHONE_RECOVERY,
    Cause.RECOVERY_LIMIT,
    Cause.LONG_SLOT_MESSAGE,
    Cause.FAQ_WAIT_CONFIRM,
    Cause.SESSION_EXPIRED,
)
NOT_FAILURES = frozenset({Cause.CONFIRMED, Cause.CANCELLED, Cause.NOT_A_BOOKING, Cause.IN_PROGRESS})
# Every failure cause, the seed's patterns first: the order that breaks ties in the ranking.
FAILURE_CAUSES: tuple[Cause, ...] = (*PATTERNS, *(c for c in Cause if c not in PATTERNS and c not in NOT_FAILURES))
# A transfer's reason (the engine's ``Transferred`` event) names its cause directly.
TRANSFER_CAUSES: Mapping[str, Cause] = {
    TransferReason.NO_SLOT.value: Cause.NO_SLOT,
    TransferReason.SLOT_TAKEN.value: Cause.SLOT_TAKEN,
    TransferReason.ANTI_LOOP.value: Cause.ANTI_LOOP,
    TransferReason.BOOKING_ERROR.value: Cause.BOOKING_ERROR,
    TransferReason.STORE_UNAVAILABLE.value: Cause.BOOKING_ERROR,
}


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What the seed tells the operator to do about one failure pattern."""

    label: str
    action: str
    constant: str | None
    default: str | None
    suggestion: str | None
    seed: str


RECOMMENDATIONS: Mapping[Cause, Recommendation] = {
    Cause.LONG_SLOT_MESSAGE: Recommendation(
        label="long slot messages, interrupted or cut by the voice",
        action=(
            f"Slot messages over {n.LONG_SLOT_MESSAGE_CHARS} characters precede lost calls: use the "
            "compact voice wording by lowering the spoken-message budget, and check in Vapi's "
            "dashboard that the whole reply was spoken."
        ),
        constant="SLOTS_MESSAGE_MAX_CHARS",
        default="350 (voice)",
        suggestion="SLOTS_MESSAGE_MAX_CHARS_VOICE=300",
        seed="§2.2, §5.4, §5.7",
    ),
    Cause.SLOT_TAKEN: Recommendation(
        label="slot taken between proposal and confirmation",
        action=(
            "Lost races are re-proposed automatically and the next loss transfers: check the "
            "[BOOKING_RETRY] lines and whether the practice's own calendar books the same slots; "
            "check that proposed slots are held for concurrent callers (RDV_SLOT_HOLD_SECONDS, "
            "120 by default, 0 turns it off) and allow more re-proposals if callers are "
            "transferred after lost races."
        ),
        constant="BOOKING_RETRY_MAX",
        default="2",
        suggestion="BOOKING_RETRY_MAX=3",
        seed="§2.5, §5.4, §5.7",
    ),
    Cause.PHONE_RECOVERY: Recommendation(
        label="call-back number not understood (phone recovery limit)",
        action=(
            "Callers without caller id fail to give a number the assistant understands: allow "
            "one more attempt, and listen to a few calls for digits lost by speech-to-text."
        ),
        constant="RECOVERY_LIMITS",
        default="phone=3",
        suggestion="RECOVERY_LIMITS=name=2,slot_choice=2,phone=4",
        seed="§2.6, §5.4, §5.7",
    ),
    Cause.ANTI_LOOP: Recommendation(
        label="anti-loop guard (too many turns)",
        action="Conversations hit the turn limit before booking: raise the limit for voice calls.",
        constant="MAX_TURNS_ANTI_LOOP",
        default="25 (text), 40 (voice)",
        suggestion="MAX_TURNS_ANTI_LOOP_VOICE=40",
        seed="§2.1, §3, §5.4, §5.7",
    ),
    Cause.SESSION_EXPIRED: Recommendation(
        label="session expired (idle longer than the TTL)",
        action="Calls outlive the session TTL: lengthen it for the voice channel.",
        constant="SESSION_TTL_MINUTES",
        default="15 (text), 30 (voice)",
        suggestion="SESSION_TTL_MINUTES_VOICE=30",
        seed="§2.4, §3",
    ),
    Cause.FAQ_WAIT_CONFIRM: Recommendation(
        label="practical question (FAQ) during the slot choice",
        action=(
            "Callers ask a question while choosing a slot and do not book: check that the "
            "answer is short and the three slots are offered again (intent_override "
            "state=WAIT_CONFIRM intent=faq), and shorten the practice file's [faq] answers."
        ),
        constant=None,
        default=None,
        suggestion="practice file [faq]",
        seed="§2.3",
    ),
    Cause.RECOVERY_LIMIT: Recommendation(
        label="transferred after recovery limits (name, slot choice)",
        action=(
            "Callers are handed over after names or slot choices were not understood: raise "
            "the recovery limits to 3, and the free re-ask of a slot choice if needed."
        ),
        constant="RECOVERY_LIMITS",
        default="name=2, slot_choice=2 (CONFIRM_RETRY_MAX=1)",
        suggestion="RECOVERY_LIMITS=name=3,slot_choice=3,phone=3",
        seed="§2.6, §3",
    ),
}

# Causes the seed has no recipe for: still named (and ranked) with what to look at.
OTHER_RECOMMENDATIONS: Mapping[Cause, Recommendation] = {
    Cause.NO_SLOT: Recommendation(
        label="no free slot matched the caller's preference ([NO_SLOT])",
        action=(
            "Callers are transferred because the calendar has nothing free for their preference "
            "within the horizon: check the [NO_SLOT] lines (preference=, state=), free or add "
            "slots, widen the opening hours or the booking horizon, and check closed dates."
        ),
        constant=None,
        default=None,
        suggestion="practice file: [hours], horizon_days, slot_minutes, min_lead_minutes",
        seed="not in the manual (rdv's [NO_SLOT] line, rdv_transfers_total{reason=\"no_slot\"})",
    ),
}

OTHER_LABELS: Mapping[Cause, str] = {
    Cause.BOOKING_ERROR: "the store failed to book",
    Cause.NO_SLOT: OTHER_RECOMMENDATIONS[Cause.NO_SLOT].label,
    Cause.TRANSFERRED_OTHER: "transferred (caller asked for a human or other reason)",
    Cause.MENU: "left in the fallback menu",
    Cause.CALLER_HUNG_UP: "caller hung up with no failure logged",
    Cause.UNKNOWN: "no outcome recorded",
    Cause.CONFIRMED: "confirmed",
    Cause.CANCELLED: "appointment cancelled",
    Cause.NOT_A_BOOKING: "a cancellation or information call that did not end in one (not a booking)",
    Cause.IN_PROGRESS: "still in progress",
}


def cause_label(cause: Cause) -> str:
    """A short human description of a cause."""
    rec = RECOMMENDATIONS.get(cause)
    return rec.label if rec is not None else OTHER_LABELS[cause]



def cause_of(facts: CallFacts) -> Cause:
    """The cause of a conversation's result, by the checklist's precedence."""
    status = facts.status
    if status == Outcome.CONFIRMED:
        return Cause.CONFIRMED
    if status == Outcome.CANCELLED:
        return Cause.CANCELLED
    if status == Cause.IN_PROGRESS:
        return Cause.IN_PROGRESS
    if not facts.books:
        return Cause.NOT_A_BOOKING
    by_reason = TRANSFER_CAUSES.get(facts.transfer_reason or "")
    if status == Outcome.TRANSFERRED and by_reason is not None:
        return by_reason
    if facts.slot_taken:
        return Cause.SLOT_TAKEN
    if facts.anti_loop:
        return Cause.ANTI_LOOP
    if Field.PHONE.value in facts.recovery_limits:
        return Cause.PHONE_RECOVERY
    if facts.recovery_limits:
        return Cause.RECOVERY_LIMIT
    if facts.long_slot_messages:
        return Cause.LONG_SLOT_MESSAGE
    if State.WAIT_CONFIRM.value in facts.faq_states:
        return Cause.FAQ_WAIT_CONFIRM
    if facts.expired or status == Outcome.EXPIRED:
        return Cause.SESSION_EXPIRED
    if BookingResult.ERROR.value in facts.booking_results:
        return Cause.BOOKING_ERROR
    if status == Outcome.TRANSFERRED:
        if not facts.slot_lengths and State.QUALIF_PREF.value in facts.states_seen and not facts.human_requested:
            return Cause.NO_SLOT
        return Cause.TRANSFERRED_OTHER
    if status == Outcome.INTENT_ROUTER:
        return Cause.MENU
    if status == Outcome.ABANDONED:
        return Cause.CALLER_HUNG_UP
    return Cause.UNKNOWN

