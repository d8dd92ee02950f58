"""Why a conversation did not book: the causes, their precedence and the manual's recommendations."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from service.config import MIN_SLOTS_MESSAGE_MAX_CHARS
from service.engine.model import Limits as ChannelLimits
from service.engine.states import BookingResult, Channel, Field, Outcome, State, TransferReason
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


# --------------------------------------------------------------------------- advice
Limits = Mapping[Channel, ChannelLimits]


@dataclass(frozen=True, slots=True)
class Advice:
    """A setting as it is in force and the change to try (None: nothing left to change)."""

    current: str
    suggestion: str | None


def _current(values: Mapping[Channel, object]) -> str:
    """What is in force, per channel: ``text 25, voice 40``."""
    return ", ".join(f"{c.value} {v}" for c, v in values.items())


def _var(name: str, channel: Channel) -> str:
    """The channel's own variable (``NAME_VOICE``): it wins over ``NAME``, whichever is set."""
    return f"{name}_{channel.value.upper()}"


def _raise(name: str, values: Mapping[Channel, int | None], new: Callable[[int | None], int | None],
           verb: str = "raise") -> Advice:
    """``raise NAME_TEXT from a to b`` for the channels of ``values``; a channel whose value
    cannot change any more is left out (no suggestion at all when none can)."""
    steps = []
    for channel, old in values.items():
        to = new(old)
        if to is not None and to != old:
            var = _var(name, channel)
            steps.append(f"{verb} {var} from {old} to {to}" if old is not None else f"set {var}={to}")
    return Advice(_current(values), " and ".join(steps) or None)


def _half_more(value: int | None) -> int | None:
    return None if value is None else max(value + 1, (value * 3 + 1) // 2)


def _one_more(value: int | None) -> int | None:
    return None if value is None else value + 1


def _recovery(limits: Limits, channels: Sequence[Channel], raised: tuple[Field, ...]) -> Advice:
    """``raise RECOVERY_LIMITS_VOICE phone from 3 to 4: RECOVERY_LIMITS_VOICE=name=2,…,phone=4``:
    the ``raised`` fields one higher, the whole value written (a field left out would fall back to
    its default, not to what is in force)."""
    def spell(values: Mapping[Field, int]) -> str:
        return ",".join(f"{f.value}={values[f]}" for f in Field)

    steps = []
    for channel in channels:
        now = limits[channel].recovery_limits
        var = _var("RECOVERY_LIMITS", channel)
        more = " and ".join(f"{f.value} from {now[f]} to {now[f] + 1}" for f in raised)
        steps.append(f"raise {var} {more}: {var}={spell({f: v + 1 if f in raised else v for f, v in now.items()})}")
    return Advice(_current({c: spell(limits[c].recovery_limits) for c in channels}), "; ".join(steps))


def _shorter_slots(limits: Limits, channels: Sequence[Channel]) -> Advice:
    # The voice only: a chat widget shows full labels, the TTS may cut a long message.
    def lower(value: int | None) -> int | None:
        ceiling = n.LONG_SLOT_MESSAGE_CHARS if value is None else min(value, n.LONG_SLOT_MESSAGE_CHARS)
        to = max(MIN_SLOTS_MESSAGE_MAX_CHARS, ceiling - 50)
        return to if value is None or to < value else None

    voice = {Channel.VOICE: limits[Channel.VOICE].slots_message_max_chars}
    return _raise("SLOTS_MESSAGE_MAX_CHARS", voice, lower, "lower")


def _more_retries(limits: Limits, channels: Sequence[Channel]) -> Advice:
    return _raise("BOOKING_RETRY_MAX", {c: limits[c].booking_retry_max for c in channels}, _one_more)


def _more_turns(limits: Limits, channels: Sequence[Channel]) -> Advice:
    return _raise("MAX_TURNS_ANTI_LOOP", {c: limits[c].max_turns_anti_loop for c in channels}, _half_more)


def _longer_sessions(limits: Limits, channels: Sequence[Channel]) -> Advice:
    return _raise("SESSION_TTL_MINUTES", {c: limits[c].session_ttl_minutes for c in channels}, _half_more)


@dataclass(frozen=True, slots=True)
class Recommendation:
    """What the seed tells the operator to do about one failure pattern; ``advise`` reads the
    settings in force and names the change to try (``setting``: what to edit when it is not a
    constant)."""

    label: str
    action: str
    constant: str | None
    seed: str
    advise: Callable[[Limits, Sequence[Channel]], Advice] | None = None
    setting: str | None = None


RECOMMENDATIONS: Mapping[Cause, Recommendation] = {
    Cause.LONG_SLOT_MESSAGE: Recommendation(
        label="long slot messages, interrupted or cut by the voice",
        action=(
            f"Slot messages over {n.LONG_SLOT_MESSAGE_CHARS} characters precede lost calls: use the "
            "compact voice wording by lowering the spoken-message budget, and check in Vapi's "
            "dashboard that the whole reply was spoken."
        ),
        constant="SLOTS_MESSAGE_MAX_CHARS",
        seed="§2.2, §5.4, §5.7",
        advise=_shorter_slots,
    ),
    Cause.SLOT_TAKEN: Recommendation(
        label="slot taken between proposal and confirmation",
        action=(
            "Lost races are re-proposed automatically and the next loss transfers: check the "
            "[BOOKING_RETRY] lines and whether the practice's own calendar books the same slots; "
            "check that proposed slots are held for concurrent callers (RDV_SLOT_HOLD_SECONDS, "
            "0 turns it off) and allow more re-proposals if callers are transferred after lost races."
        ),
        constant="BOOKING_RETRY_MAX",
        seed="§2.5, §5.4, §5.7",
        advise=_more_retries,
    ),
    Cause.PHONE_RECOVERY: Recommendation(
        label="call-back number not understood (phone recovery limit)",
        action=(
            "Callers without caller id fail to give a number the assistant understands: allow "
            "one more attempt, and listen to a few calls for digits lost by speech-to-text."
        ),
        constant="RECOVERY_LIMITS",
        seed="§2.6, §5.4, §5.7",
        advise=lambda limits, channels: _recovery(limits, channels, (Field.PHONE,)),
    ),
    Cause.ANTI_LOOP: Recommendation(
        label="anti-loop guard (too many turns)",
        action="Conversations hit the turn limit before booking: raise the limit of their channel.",
        constant="MAX_TURNS_ANTI_LOOP",
        seed="§2.1, §3, §5.4, §5.7",
        advise=_more_turns,
    ),
    Cause.SESSION_EXPIRED: Recommendation(
        label="session expired (idle longer than the TTL)",
        action="Calls outlive the session TTL: lengthen it for their channel.",
        constant="SESSION_TTL_MINUTES",
        seed="§2.4, §3",
        advise=_longer_sessions,
    ),
    Cause.FAQ_WAIT_CONFIRM: Recommendation(
        label="practical question (FAQ) during the slot choice",
        action=(
            "Callers ask a question while choosing a slot and do not book: check that the "
            "answer is short and the three slots are offered again (intent_override "
            "state=WAIT_CONFIRM intent=faq), and shorten the practice file's [faq] answers."
        ),
        constant=None,
        seed="§2.3",
        setting="practice file [faq]",
    ),
    Cause.RECOVERY_LIMIT: Recommendation(
        label="transferred after recovery limits (name, slot choice)",
        action=(
            "Callers are handed over after names or slot choices were not understood: allow one "
            "more attempt at each, and the free re-ask of a slot choice (CONFIRM_RETRY_MAX) if needed."
        ),
        constant="RECOVERY_LIMITS",
        seed="§2.6, §3",
        advise=lambda limits, channels: _recovery(limits, channels, (Field.NAME, Field.SLOT_CHOICE)),
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
        setting="practice file: [hours], horizon_days, slot_minutes, min_lead_minutes",
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


def advice(cause: Cause, limits: Limits, channels: Iterable[str | None] = ()) -> dict[str, Any]:
    """What the manual says about ``cause``, with the change to try built from the settings in
    force (``limits``) for the ``channels`` of its conversations (both when none is known):
    ``current`` is what is set, ``suggestion`` never the value already in force."""
    both = (Channel.TEXT, Channel.VOICE)
    seen = [c for c in both if c.value in set(channels)] or list(both)
    rec = RECOMMENDATIONS.get(cause) or OTHER_RECOMMENDATIONS.get(cause)
    if rec is None:
        rec = Recommendation(
            label=OTHER_LABELS[cause],
            action="The manual has no recipe for this cause: read the timelines of these conversations.",
            constant=None, seed="not in the manual",
        )
    told = rec.advise(limits, seen) if rec.advise is not None else Advice("", rec.setting)
    return {
        "pattern": cause.value,
        "in_manual": cause in RECOMMENDATIONS,
        "label": rec.label,
        "action": rec.action,
        "constant": rec.constant,
        "current": told.current or None,
        "suggestion": told.suggestion,
        "seed": rec.seed,
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

