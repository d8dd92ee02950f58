"""THE telemetry contract: every metric, label, log tag, span name, attribute and threshold.

Dashboards, alert rules, runbooks and tests are generated from or checked against this
module; nothing else in the code base spells a telemetry name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from service.engine.states import (
    TERMINAL,
    BookingResult,
    Channel,
    Field,
    MissField,
    MissReason,
    Outcome,
    OverrideIntent,
    Purpose,
    State,
    TransferReason,
)

PREFIX: Final = "rdv_"

# --------------------------------------------------------------------------- labels
L_CHANNEL: Final = "channel"
L_OUTCOME: Final = "outcome"
L_FROM: Final = "from_state"
L_TO: Final = "to_state"
L_STATE: Final = "state"
L_RESULT: Final = "result"
L_FIELD: Final = "field"
L_INTENT: Final = "intent"
L_CATEGORY: Final = "category"
L_VERSION: Final = "version"
L_ENGINE_REVISION: Final = "engine_revision"
L_REASON: Final = "reason"
L_PURPOSE: Final = "purpose"
L_CODE: Final = "code"
L_OPERATION: Final = "operation"

CHANNELS: Final = tuple(c.value for c in Channel)
OUTCOMES: Final = tuple(o.value for o in Outcome)
STATES: Final = tuple(s.value for s in State)
RESULTS: Final = tuple(r.value for r in BookingResult)
FIELDS: Final = tuple(f.value for f in Field)
INTENTS: Final = tuple(i.value for i in OverrideIntent)
MISS_FIELDS: Final = tuple(f.value for f in MissField)
MISS_REASONS: Final = tuple(r.value for r in MissReason)
TRANSFER_REASONS: Final = tuple(r.value for r in TransferReason)
PURPOSES: Final = tuple(p.value for p in Purpose)
CODES: Final = ("2xx", "4xx", "5xx")
# THE conversion population, for stats, recording rules, dashboards and alerts alike: the
# conversations that came to book or move an appointment, and those that ended before saying
# what they wanted (a caller lost at the greeting may have wanted to book: excluding them would
# hide a broken greeting). Cancellations and information-only calls are counted apart.
CONVERSION_PURPOSES: Final = (Purpose.BOOK.value, Purpose.MOVE.value, Purpose.UNDECLARED.value)
# What rdv asks the practice's external calendar (CalDAV or a read-only iCalendar feed), and how
# each request ended: ``conflict`` is a slot found taken (a lost race, not a failure).
CALENDAR_OPERATIONS: Final = (
    "discover", "ctag", "sync", "list", "fetch", "check", "create", "get", "delete", "feed",
)
CALENDAR_OK: Final = "ok"
CALENDAR_CONFLICT: Final = "conflict"
CALENDAR_FAILURES: Final = ("error", "timeout", "unreachable")
CALENDAR_RESULTS: Final = (CALENDAR_OK, CALENDAR_CONFLICT, *CALENDAR_FAILURES)

# Vapi ended reasons grouped by meaning (vapi-protocol.md §3); unknown strings are "other".
ENDED_REASON_CATEGORIES: Final = (
    "caller_hung_up",
    "assistant_ended",
    "timeout",
    "transfer",
    "voicemail",
    "not_reached",
    "custom_llm_error",
    "provider_error",
    "setup_error",
    "admin",
    "other",
)


@dataclass(frozen=True)
class Metric:
    """One Prometheus metric: its full exposed name, kind, help and label names."""

    name: str
    kind: str  # "counter" | "histogram" | "gauge"
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def series(self) -> tuple[str, ...]:
        """Every series name this metric exposes (what PromQL may reference)."""
        if self.kind == "counter":
            return (self.name,)
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


# Slot-message length buckets: an edge exactly on every policy threshold (200, 300, 350, 400).
SLOTS_MESSAGE_BUCKETS: Final = (100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 500.0, 750.0, 1000.0)
TURN_LATENCY_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)
CALENDAR_LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TURNS_BUCKETS: Final = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0)

CONVERSATIONS_STARTED: Final = Metric(
    "rdv_conversations_started_total", "counter",
    "Conversations started, by channel.", (L_CHANNEL,))
CONVERSATIONS_ENDED: Final = Metric(
    "rdv_conversations_ended_total", "counter",
    "Conversations ended, by channel, outcome (exactly one outcome each) and purpose (book, move, "
    "cancel, information, undeclared).",
    (L_CHANNEL, L_OUTCOME, L_PURPOSE))
CONVERSATIONS_STOPPED: Final = Metric(
    "rdv_conversations_stopped_total", "counter",
    "Conversations that ended without a result of their own (caller hung up, session expired), "
    "by channel, outcome (abandoned, expired) and the state they stopped in.",
    (L_CHANNEL, L_OUTCOME, L_STATE))
STATE_TRANSITIONS: Final = Metric(
    "rdv_state_transitions_total", "counter",
    "State transitions, by channel, from-state and to-state.", (L_CHANNEL, L_FROM, L_TO))
BOOKING_ATTEMPTS: Final = Metric(
    "rdv_booking_attempts_total", "counter",
    "Booking attempts, by channel and result (success, slot_taken, error).",
    (L_CHANNEL, L_RESULT))
BOOKING_RETRIES: Final = Metric(
    "rdv_booking_retries_total", "counter",
    "Re-proposals of slots after a lost booking race.", (L_CHANNEL,))
ANTI_LOOP: Final = Metric(
    "rdv_anti_loop_total", "counter",
    "Conversations switched to the fallback menu by the anti-loop guard.", (L_CHANNEL,))
RECOVERY_LIMITS: Final = Metric(
    "rdv_recovery_limit_reached_total", "counter",
    "Recovery limits reached, by field (name, slot_choice, phone).", (L_CHANNEL, L_FIELD))
RECOVERY_PROMPTS: Final = Metric(
    "rdv_recovery_prompts_total", "counter",
    "Clarifying re-asks of a field that was not understood.", (L_CHANNEL, L_FIELD))
INTERRUPTIONS: Final = Metric(
    "rdv_interruptions_total", "counter",
    "Positive barge-ins: a slot chosen while the list was being spoken.", (L_CHANNEL,))
INTENT_OVERRIDES: Final = Metric(
    "rdv_intent_overrides_total", "counter",
    "Strong intents or FAQ questions that pre-empted the current state.",
    (L_CHANNEL, L_STATE, L_INTENT))
FILLERS: Final = Metric(
    "rdv_fillers_total", "counter",
    "Caller turns that were only a filler (euh, allô, silence).", (L_CHANNEL,))
SESSION_EXPIRIES: Final = Metric(
    "rdv_session_expiries_total", "counter",
    "Conversations that expired after SESSION_TTL_MINUTES idle.", (L_CHANNEL,))
TRANSFERS: Final = Metric(
    "rdv_transfers_total", "counter",
    "Calls handed over to a human, by channel and reason (caller_asked, recovery_limit, no_slot, "
    "slot_taken, booking_error, store_unavailable, anti_loop, not_verified).",
    (L_CHANNEL, L_REASON))
VAPI_ENDED_REASONS: Final = Metric(
    "rdv_vapi_ended_reasons_total", "counter",
    "Vapi end-of-call reasons, grouped by category.", (L_CATEGORY,))
SLOTS_MESSAGE_LENGTH: Final = Metric(
    "rdv_slots_message_length_characters", "histogram",
    "Length of every slot-proposal message, in characters.", (L_CHANNEL,),
    SLOTS_MESSAGE_BUCKETS)
TURN_DURATION: Final = Metric(
    "rdv_turn_duration_seconds", "histogram",
    "Time to answer one caller turn, from request to reply, in seconds.", (L_CHANNEL,),
    TURN_LATENCY_BUCKETS)
CONVERSATION_TURNS: Final = Metric(
    "rdv_conversation_turns", "histogram",
    "Caller turns per ended conversation.", (L_CHANNEL, L_OUTCOME), TURNS_BUCKETS)
ACTIVE_CONVERSATIONS: Final = Metric(
    "rdv_active_conversations", "gauge",
    "Conversations not yet ended, as last counted in the store by the one replica that holds "
    "the count's lease (the others report 0, so sum() over replicas counts each once).", (L_CHANNEL,))
UNDERSTANDING_MISSES: Final = Metric(
    "rdv_understanding_misses_total", "counter",
    "Caller turns the engine could not use (a re-ask, a help or menu prompt, a recovery limit), "
    "by channel, state, field asked and reason.", (L_CHANNEL, L_STATE, L_FIELD, L_REASON))
TURN_RESPONSES: Final = Metric(
    "rdv_turn_responses_total", "counter",
    "Caller turns answered, by channel and HTTP status class (2xx, 4xx, 5xx).", (L_CHANNEL, L_CODE))
STORE_UNAVAILABLE: Final = Metric(
    "rdv_store_unavailable_total", "counter",
    "Store calls that failed or passed RDV_STORE_TIMEOUT_SECONDS (answered 503, or a spoken "
    "apology and a transfer).")
SYNTHETIC_CONVERSATIONS: Final = Metric(
    "rdv_synthetic_conversations_total", "counter",
    "Test conversations (rdv probe, rdv simulate) ended, by channel and outcome; they count in no "
    "other conversation series.", (L_CHANNEL, L_OUTCOME))
BUILD_INFO: Final = Metric(
    "rdv_build_info", "gauge",
    "Build information; always 1. engine_revision: a hash of the engine's and understanding's sources.",
    (L_VERSION, L_ENGINE_REVISION))
CALENDAR_REQUESTS: Final = Metric(
    "rdv_calendar_requests_total", "counter",
    "Requests to the practice's external calendar, by operation and result "
    "(ok, conflict, error, timeout, unreachable).", (L_OPERATION, L_RESULT))
CALENDAR_DURATION: Final = Metric(
    "rdv_calendar_request_duration_seconds", "histogram",
    "Time of one request to the practice's external calendar, by operation, in seconds.",
    (L_OPERATION,), CALENDAR_LATENCY_BUCKETS)
SPANS_DROPPED: Final = Metric(
    "rdv_spans_dropped_total", "counter",
    "Spans not exported because the span exporter process lagged or was gone (the turn never "
    "waits for it).")

METRICS: Final = (
    CONVERSATIONS_STARTED, CONVERSATIONS_ENDED, CONVERSATIONS_STOPPED, STATE_TRANSITIONS, BOOKING_ATTEMPTS,
    BOOKING_RETRIES, ANTI_LOOP, RECOVERY_LIMITS, RECOVERY_PROMPTS, INTERRUPTIONS,
    INTENT_OVERRIDES, FILLERS, SESSION_EXPIRIES, TRANSFERS, VAPI_ENDED_REASONS, SLOTS_MESSAGE_LENGTH,
    TURN_DURATION, CONVERSATION_TURNS, ACTIVE_CONVERSATIONS, SYNTHETIC_CONVERSATIONS, TURN_RESPONSES,
    STORE_UNAVAILABLE, BUILD_INFO, CALENDAR_REQUESTS, CALENDAR_DURATION, UNDERSTANDING_MISSES,
    SPANS_DROPPED,
)

# Known label values, pre-initialised to 0 so that ratios exist before the first event.
# Outcomes that say where a call stopped rather than what it achieved, and the states a call
# can stop in (every state but the terminal ones).
STOPPED_OUTCOMES: Final = (Outcome.ABANDONED.value, Outcome.EXPIRED.value)
STOP_STATES: Final = tuple(s.value for s in State if s not in TERMINAL)

# The questions of the booking path, where misses happen every day: their "nothing found" series
# start at 0 (the others appear as they happen).
MISS_SITES: Final = (
    (State.START.value, MissField.INTENT.value),
    (State.QUALIF_NAME.value, MissField.NAME.value),
    (State.QUALIF_PREF.value, MissField.PREFERENCE.value),
    (State.WAIT_CONFIRM.value, MissField.SLOT_CHOICE.value),
    (State.QUALIF_PHONE.value, MissField.PHONE.value),
    (State.INTENT_ROUTER.value, MissField.MENU.value),
)
MISS_SITE_REASON: Final = MissReason.NOTHING_FOUND.value

LABEL_VALUES: Final[dict[str, tuple[str, ...]]] = {
    L_CHANNEL: CHANNELS,
    L_OUTCOME: OUTCOMES,
    L_RESULT: RESULTS,
    L_FIELD: FIELDS,
    L_INTENT: INTENTS,
    L_REASON: TRANSFER_REASONS,
    L_PURPOSE: PURPOSES,
    L_CODE: CODES,
    L_CATEGORY: ENDED_REASON_CATEGORIES,
    L_STATE: STATES,
    L_FROM: STATES,
    L_TO: STATES,
    L_OPERATION: CALENDAR_OPERATIONS,
}
# Metrics whose ``result`` label takes other values than booking results.
RESULT_VALUES: Final[dict[str, tuple[str, ...]]] = {CALENDAR_REQUESTS.name: CALENDAR_RESULTS}


# Prometheus' own series of a scrape target, and the job that scrapes rdv (deploy/prometheus.yml).
SCRAPE_UP: Final = "up"
SCRAPE_JOB: Final = "rdv"


def all_series() -> frozenset[str]:
    """Every series name a dashboard or rule may reference, recording rules excluded."""
    return frozenset(s for m in METRICS for s in m.series) | {SCRAPE_UP}


# Printed by `rdv probe --prometheus` (synthetic monitoring), not exposed by the service.
PROBE_SUCCESS: Final = Metric(
    "rdv_probe_success", "gauge", "1 when the probe's step succeeded, else 0.", ("step",))
PROBE_DURATION: Final = Metric(
    "rdv_probe_duration_seconds", "gauge", "Duration of the whole synthetic call, in seconds.")

# --------------------------------------------------------------------------- thresholds
# The seed's target table (section 5.7) and paging floor; one place for dashboards and alerts.
CONVERSION_TARGET: Final = 0.70
CONVERSION_FLOOR: Final = 0.50
SLOT_TAKEN_MAX: Final = 0.05
ANTI_LOOP_MAX: Final = 0.02
PHONE_RECOVERY_MAX: Final = 0.10
LONG_SLOT_MESSAGE_CHARS: Final = 350
LONG_SLOT_MESSAGE_SHARE_MAX: Final = 0.20
# Service health (not in the seed's table): the p99 of a turn's answer time (a bucket edge), the
# share of turns answered 5xx, Vapi calls ended because rdv did not answer in a window.
TURN_LATENCY_P99_BUDGET_SECONDS: Final = 1.0
SERVER_ERROR_SHARE_MAX: Final = 0.05
VAPI_LLM_ERRORS_MAX: Final = 2
# Not in the seed's table: callers transferred because no free slot matched their preference.
NO_SLOT_TRANSFER_SHARE_MAX: Final = 0.10
# Past this share of failed calendar requests every booking call is transferred: page.
CALENDAR_FAILURE_MAX: Final = 0.10  # not in the seed's table
# Not-understood share of turns: alert when it is this many times the share of the same hour a
# week earlier, with at least this many turns in both hours; a week-old share under the floor
# counts as the floor (a quiet week must not make every miss look like a doubling).
MISS_SHARE_GROWTH: Final = 2.0
MISS_SHARE_BASELINE_FLOOR: Final = 0.02
MISS_MIN_TURNS: Final = 100

# --------------------------------------------------------------------------- log tags
# The seed's grep patterns, byte for byte.
LOG_FLOW: Final = "[FLOW]"
LOG_STATE_CHANGE: Final = "[STATE_CHANGE]"
LOG_SLOTS_SENT: Final = "[SLOTS_SENT]"
LOG_BOOKING_ATTEMPT: Final = "[BOOKING_ATTEMPT]"
LOG_BOOKING_RESULT: Final = "[BOOKING_RESULT]"
LOG_BOOKING_RETRY: Final = "[BOOKING_RETRY]"
LOG_INTERRUPTION: Final = "[INTERRUPTION]"
LOG_RDV_CONFIRMED: Final = "[RDV_CONFIRMED]"
LOG_ANTI_LOOP: Final = "[ANTI_LOOP]"
# rdv's own tags, in the seed's format.
LOG_NO_SLOT: Final = "[NO_SLOT]"
LOG_TRANSFERRED: Final = "[TRANSFER]"
LOG_SESSION_EXPIRED: Final = "SESSION_EXPIRED"
LOG_RECOVERY_LIMIT: Final = "recovery_limit_reached"
LOG_RECOVERY_STEP: Final = "recovery_step"
LOG_INTENT_OVERRIDE: Final = "intent_override"
LOG_FILLER: Final = "filler_detected"
LOG_CONVERSATION_ENDED: Final = "conversation_ended"
LOG_CONVERSATION_STARTED: Final = "conversation_started"
LOG_VAPI_CALL_ENDED: Final = "vapi_call_ended"
LOG_FAQ_ANSWERED: Final = "faq_answered"
LOG_BOOKING_CANCELLED: Final = "booking_cancelled"
LOG_NOT_UNDERSTOOD: Final = "not_understood"
# Service-level lines (not about one engine event).
LOG_CONFIG_WARNING: Final = "config_warning"
LOG_DRAINING: Final = "draining"
LOG_VAPI_STORE_UNAVAILABLE: Final = "vapi_store_unavailable"
LOG_VAPI_HANG: Final = "vapi_hang"
LOG_VAPI_EVENT_IGNORED: Final = "vapi_event_ignored"
LOG_UNCONFIRMED_BOOKINGS: Final = "unconfirmed_bookings"
LOG_CALENDAR_UNAVAILABLE: Final = "calendar_unavailable"
LOG_CALENDAR_MISMATCH: Final = "calendar_mismatch"
LOG_CALENDAR_REPAIRED: Final = "calendar_repaired"
LOG_CALENDAR_COMPENSATION_FAILED: Final = "calendar_compensation_failed"

SLOTS_SENT_PREVIEW_CHARS: Final = 200

# --------------------------------------------------------------------------- spans
SPAN_CONVERSATION: Final = "conversation"
SPAN_STATE_PREFIX: Final = "state "  # "state WAIT_CONFIRM"
SPAN_TURN: Final = "turn"
SPAN_BOOK_SLOT: Final = "book_slot"
# A Vapi server message (status update, end-of-call report…): a server span in its call's trace.
SPAN_VAPI_EVENT: Final = "POST /vapi/events"


def state_span_name(state: str) -> str:
    """The bounded name of a state span, e.g. ``state WAIT_CONFIRM``."""
    return SPAN_STATE_PREFIX + state


# Attribute keys: OpenTelemetry GenAI conventions where they fit, domain keys under rdv.*
A_CONVERSATION_ID: Final = "gen_ai.conversation.id"
A_CHANNEL: Final = "rdv.channel"
A_VAPI_CALL_ID: Final = "rdv.vapi.call_id"
A_VAPI_EVENT_TYPE: Final = "rdv.vapi.event_type"
A_OUTCOME: Final = "rdv.outcome"
A_TURNS: Final = "rdv.turns"
A_STATE: Final = "rdv.state"
A_STATE_NEXT: Final = "rdv.state.next"
A_TURN_NUMBER: Final = "rdv.turn.number"
A_SLOT_START: Final = "rdv.slot.start"
A_BOOKING_RESULT: Final = "rdv.booking.result"
A_BOOKING_RETRY: Final = "rdv.booking.retry"
A_CALLER_PHONE_HASH: Final = "rdv.caller.phone_hash"
A_ENDED_REASON: Final = "rdv.vapi.ended_reason"
A_INTERRUPTED: Final = "rdv.turn.interrupted"
A_ERROR_TYPE: Final = "error.type"
A_CALENDAR_OPERATION: Final = "rdv.calendar.operation"
# OpenTelemetry HTTP client conventions; the URL is the calendar's (no patient data: event
# names are hashes of the practice and the slot).
A_HTTP_METHOD: Final = "http.request.method"
A_HTTP_STATUS: Final = "http.response.status_code"
A_SERVER_ADDRESS: Final = "server.address"
A_SERVER_PORT: Final = "server.port"
A_URL_FULL: Final = "url.full"

SERVICE_NAME: Final = "rdv"

# --------------------------------------------------------------------------- synthetic traffic
# Conversation ids (text API) and Vapi call ids of `rdv probe` and `rdv simulate` start with this:
# such conversations are stored with ``synthetic`` set and counted only in SYNTHETIC_CONVERSATIONS
# (``grep -v -F "synthetic-"`` keeps them out of the manual's recipes too).
SYNTHETIC_PREFIX: Final = "synthetic-"


def is_synthetic(conv_id: str) -> bool:
    """True for the id of a test conversation (``rdv probe``, ``rdv simulate``)."""
    return conv_id.startswith(SYNTHETIC_PREFIX)
