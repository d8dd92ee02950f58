"""The target table, declared once: the operators' manual's (§5.7) and rdv's own.

Each :class:`Target` says which share it watches (:data:`telemetry.promql.SHARES`), the
threshold and its direction, the alerts on it (severity, hence window; traffic floor), the
settings an operator changes and, for the manual's rows, what to do. From it come the stats' target table
(``service.stats.TARGETS``, the manual's rows), the alert rules (:data:`ALERT_SPECS`), the
runbooks' headings and the dashboard's panel titles; the numbers themselves are the contract's
(:mod:`telemetry.names`).

Texts may hold ``{threshold}`` (the alert's or target's threshold in percent) and ``{chars}``
(the long slot message's length); Prometheus templates (``{{ $labels.channel }}``) pass through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from service.engine.states import Channel
from telemetry import names as n

SEVERITY_PAGE: Final = "critical"
SEVERITY_WARNING: Final = "warning"
SEVERITY_NONE: Final = "none"
# One-sided 95 % confidence: the bound is on one side of the threshold only.
Z_ONE_SIDED_95: Final = 1.645
RUNBOOK_DIR_NAME: Final = "alerts/runbooks"


@dataclass(frozen=True)
class RuleParams:
    """Windows, ``for:`` durations and traffic floors of the rules; the defaults are production's.

    A paging alert judges ``page_window`` and the last ``page_short_window`` too, a warning
    ``warning_window``."""

    page_window: str = "1h"
    page_short_window: str = "15m"
    warning_window: str = "6h"
    page_for: str = "5m"
    warning_for: str = "15m"
    min_conversations_page: int = 10
    min_conversations_warning: int = 20
    min_booking_attempts: int = 20
    min_phone_requests: int = 10
    min_slot_messages: int = 20
    min_calendar_requests: int = 20
    misses_window: str = "1h"
    misses_baseline_offset: str = "7d"
    misses_for: str = "15m"
    min_turns_misses: int = n.MISS_MIN_TURNS
    z: float = Z_ONE_SIDED_95
    runbook_base: str = RUNBOOK_DIR_NAME
    # Service health: windows, ``for:`` durations and the turn floor of the latency and 5xx alerts.
    service_window: str = "5m"
    down_for: str = "2m"
    latency_for: str = "10m"
    errors_for: str = "5m"
    store_for: str = "1m"
    vapi_window: str = "15m"
    min_turns: int = 20


def percent(ratio: float) -> str:
    """``0.05`` → ``5 %``, as the manual writes a threshold."""
    return f"{ratio * 100:g} %"


def fill(text: str, threshold: float) -> str:
    """``text`` with its ``{threshold}`` and ``{chars}`` markers written out."""
    return text.replace("{threshold}", percent(threshold)).replace("{chars}", str(n.LONG_SLOT_MESSAGE_CHARS))


@dataclass(frozen=True)
class Alert:
    """One alert on a target: the share past ``threshold`` (in the target's direction) with
    enough traffic (``volume``) fires it at ``severity``."""

    name: str
    threshold: float
    severity: str
    volume: Callable[[RuleParams], int]
    summary: str
    description: str
    heading: str  # the runbook's title, after "name —"


@dataclass(frozen=True)
class Row:
    """How the stats report a target of the manual's table (``GET /api/stats/bookings``)."""

    key: str
    label: str
    numerator: str
    denominator: str
    action: str


@dataclass(frozen=True)
class Target:
    """One line of the target table."""

    share: str  # a key of telemetry.promql.SHARES
    above: bool  # True: the share must stay above the threshold (conversion); else below
    threshold: float
    subject: str  # the dashboard panel's subject: "<subject> vs <threshold>"
    constants: tuple[str, ...]  # SPEC §1 settings an operator changes, the main one first
    alerts: tuple[Alert, ...]
    row: Row | None = None  # a row of the manual's table (§5.7), reported by the stats
    floor: float | None = None  # a paging floor under the target (conversion)
    channel: str | None = None  # alerted on this channel only (where the TTS reads the message)

    @property
    def comparison(self) -> str:
        """``>`` or ``<``: how the share must compare with the threshold."""
        return ">" if self.above else "<"

    @property
    def panel(self) -> str:
        """The dashboard panel's title, e.g. ``Slot-taken share of booking attempts vs 5 %``."""
        subject = fill(self.subject, self.threshold)
        if self.floor is not None:
            return f"{subject} vs {percent(self.threshold)} target and {percent(self.floor)} floor"
        return f"{subject} vs {percent(self.threshold)}"


CONVERSION_CONSTANTS: Final = (
    "SESSION_TTL_MINUTES", "MAX_TURNS_ANTI_LOOP", "CONFIRM_RETRY_MAX", "RECOVERY_LIMITS",
    "BOOKING_RETRY_MAX", "SLOTS_MESSAGE_MAX_CHARS",
)

CONVERSION: Final = Target(
    "conversion", True, n.CONVERSION_TARGET, "Conversion (alert windows)", CONVERSION_CONSTANTS,
    (
        Alert(
            "RdvConversionBelowFloor", n.CONVERSION_FLOOR, SEVERITY_PAGE, lambda p: p.min_conversations_page,
            "Conversion below the {threshold} floor on {{ $labels.channel }}",
            "Only {{ $value | humanizePercentage }} of the {{ $labels.channel }} conversations ended "
            "in a confirmed appointment over the last {{ $labels.window }} (floor {threshold}, confident "
            "upper bound below it, last short window too).",
            "conversion under the {threshold} floor",
        ),
        Alert(
            "RdvConversionBelowTarget", n.CONVERSION_TARGET, SEVERITY_WARNING,
            lambda p: p.min_conversations_warning,
            "Conversion below the {threshold} target on {{ $labels.channel }}",
            "{{ $value | humanizePercentage }} of the {{ $labels.channel }} conversations ended in a "
            "confirmed appointment over the last {{ $labels.window }} (target {threshold}, confident upper "
            "bound below it).",
            "conversion under the {threshold} target",
        ),
    ),
    row=Row("confirmation_rate", "confirmation rate", "confirmed booking conversations",
            "conversations that came to book or move", "analyse the abandons (seed §5.3)"),
    floor=n.CONVERSION_FLOOR,
)
SLOT_TAKEN: Final = Target(
    "slot_taken", False, n.SLOT_TAKEN_MAX, "Slot-taken share of booking attempts",
    ("BOOKING_RETRY_MAX", "RDV_SLOT_HOLD_SECONDS"),
    (Alert(
        "RdvSlotTakenHigh", n.SLOT_TAKEN_MAX, SEVERITY_WARNING, lambda p: p.min_booking_attempts,
        "Slots taken between proposal and booking on {{ $labels.channel }}",
        "{{ $value | humanizePercentage }} of the {{ $labels.channel }} booking attempts lost the "
        "slot over the last {{ $labels.window }} (target below {threshold}).",
        "slots taken between proposal and booking over {threshold}",
    ),),
    row=Row("slot_taken_rate", "slot taken (success=False)", "booking attempts that lost the slot",
            "booking attempts", "retry is in place; watch [BOOKING_RETRY] (BOOKING_RETRY_MAX)"),
)
ANTI_LOOP: Final = Target(
    "anti_loop", False, n.ANTI_LOOP_MAX, "Anti-loop share of conversations", ("MAX_TURNS_ANTI_LOOP",),
    (Alert(
        "RdvAntiLoopHigh", n.ANTI_LOOP_MAX, SEVERITY_WARNING, lambda p: p.min_conversations_warning,
        "Anti-loop menu reached too often on {{ $labels.channel }}",
        "The anti-loop guard switched {{ $value | humanizePercentage }} of the "
        "{{ $labels.channel }} conversations to the fallback menu over the last "
        "{{ $labels.window }} (target below {threshold}).",
        "anti-loop menu reached by over {threshold} of the conversations",
    ),),
    row=Row("anti_loop_rate", "anti-loop triggered", "conversations that hit the anti-loop",
            "conversations", "raise MAX_TURNS_ANTI_LOOP"),
)
PHONE_RECOVERY: Final = Target(
    "phone_recovery", False, n.PHONE_RECOVERY_MAX, "Phone recovery share",
    ("RECOVERY_LIMITS", "RDV_RECOVERY_FALLBACK"),
    (Alert(
        "RdvPhoneRecoveryHigh", n.PHONE_RECOVERY_MAX, SEVERITY_WARNING, lambda p: p.min_phone_requests,
        "Phone numbers not understood on {{ $labels.channel }}",
        "{{ $value | humanizePercentage }} of the {{ $labels.channel }} callers asked for a "
        "number reached the phone recovery limit over the last {{ $labels.window }} "
        "(target below {threshold}).",
        "phone numbers not understood for over {threshold} of the callers asked",
    ),),
    row=Row("phone_recovery_rate", "phone recovery limit reached",
            "conversations that reached the phone recovery limit", "conversations asked for a phone number",
            "listen for digits lost by speech-to-text, then RECOVERY_LIMITS phone"),
)
LONG_SLOT_MESSAGES: Final = Target(
    "long_slot_messages", False, n.LONG_SLOT_MESSAGE_SHARE_MAX, "Slot messages over {chars} characters",
    ("SLOTS_MESSAGE_MAX_CHARS",),
    (Alert(
        "RdvLongSlotMessages", n.LONG_SLOT_MESSAGE_SHARE_MAX, SEVERITY_WARNING, lambda p: p.min_slot_messages,
        "Spoken slot messages too long on {{ $labels.channel }}",
        "{{ $value | humanizePercentage }} of the {{ $labels.channel }} slot messages were longer "
        "than {chars} characters over the last {{ $labels.window }} (target below {threshold}): the TTS "
        "may cut them.",
        "over {threshold} of the spoken slot messages longer than {chars} characters",
    ),),
    row=Row("long_slot_message_rate", "slot messages over {chars} chars", "slot messages over {chars} characters",
            "slot messages", "compact slot wording (SLOTS_MESSAGE_MAX_CHARS)"),
    channel=Channel.VOICE.value,
)
CALENDAR_FAILURES: Final = Target(
    "calendar_failures", False, n.CALENDAR_FAILURE_MAX, "Failed calendar requests",
    ("RDV_CALENDAR_TIMEOUT_SECONDS",),
    (Alert(
        "RdvCalendarFailing", n.CALENDAR_FAILURE_MAX, SEVERITY_PAGE, lambda p: p.min_calendar_requests,
        "The practice's calendar is failing",
        "{{ $value | humanizePercentage }} of the requests to the practice's calendar failed over "
        "the last {{ $labels.window }} (page above {threshold}, last short window too): booking callers "
        "hear an apology and are transferred instead of booked.",
        "over {threshold} of the requests to the practice's calendar failing",
    ),),
)
NO_SLOT: Final = Target(
    "no_slot", False, n.NO_SLOT_TRANSFER_SHARE_MAX, "No-slot transfers share of conversations",
    ("RDV_PRACTICE_FILE",),
    (Alert(
        "RdvNoSlotTransfersHigh", n.NO_SLOT_TRANSFER_SHARE_MAX, SEVERITY_WARNING,
        lambda p: p.min_conversations_warning,
        "Callers transferred because no slot is free on {{ $labels.channel }}",
        "{{ $value | humanizePercentage }} of the {{ $labels.channel }} conversations were "
        "transferred because no free slot matched their preference over the last "
        "{{ $labels.window }} (target below {threshold}): the calendar is full "
        "or the horizon too short.",
        "over {threshold} of the callers transferred because no slot is free",
    ),),
)

TARGETS: Final = (CONVERSION, SLOT_TAKEN, ANTI_LOOP, PHONE_RECOVERY, LONG_SLOT_MESSAGES, CALENDAR_FAILURES, NO_SLOT)
# The manual's table (§5.7), in its order: what the stats report.
MANUAL_TABLE: Final = tuple(t for t in TARGETS if t.row is not None)


@dataclass(frozen=True)
class AlertSpec:
    """One alert of the target table as the rules need it (:func:`alert_specs`)."""

    name: str
    ratio: str
    above: bool  # fires when the share is above the threshold (else below)
    threshold: float
    severity: str
    min_events: Callable[[RuleParams], int]
    summary: str
    description: str
    heading: str
    panel: str  # the dashboard panel the runbook starts from
    constants: tuple[str, ...]  # SPEC §1 constants the runbook may change
    channel: str | None = None  # only this channel (e.g. voice, where the TTS reads the message)

    @property
    def page(self) -> bool:
        """True for the paging alert, which also needs the short window to agree."""
        return self.severity == SEVERITY_PAGE

    @property
    def runbook_heading(self) -> str:
        """The first line of the alert's runbook."""
        severity = "critical, pages" if self.page else self.severity
        return f"# {self.name} — {self.heading} ({severity})"


def alert_specs() -> tuple[AlertSpec, ...]:
    """Every alert of the target table, in the table's order."""
    return tuple(
        AlertSpec(
            alert.name, target.share, not target.above, alert.threshold, alert.severity, alert.volume,
            fill(alert.summary, alert.threshold), fill(alert.description, alert.threshold),
            fill(alert.heading, alert.threshold), target.panel,
            target.constants, target.channel,
        )
        for target in TARGETS
        for alert in target.alerts
    )


ALERT_SPECS: Final = alert_specs()
