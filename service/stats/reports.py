"""The operator answers: ``GET /api/stats/bookings``, ``GET /api/diagnose`` and the target table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.engine.states import BookingResult, Field, Outcome, Purpose
from service.stats.causes import FAILURE_CAUSES, NOT_FAILURES, Cause, Limits, advice, cause_of
from service.stats.facts import CallFacts
from service.stats.windows import Window
from telemetry import names as n
from telemetry import targets as tg


def _pct(part: int, whole: int) -> float:
    """``part`` of ``whole`` in percent, two decimals; 0 when ``whole`` is 0."""
    return round(100.0 * part / whole, 2) if whole else 0.0


@dataclass(frozen=True, slots=True)
class Target:
    """One row of the seed's target table (§5.7), as the stats report it."""

    key: str
    label: str
    comparison: str  # ">" or "<"
    threshold: float  # ratio, from telemetry.names
    numerator: str
    denominator: str
    action: str


# The manual's table (§5.7) as the telemetry contract declares it (telemetry.targets).
TARGETS: tuple[Target, ...] = tuple(
    Target(
        t.row.key, tg.fill(t.row.label, t.threshold), t.comparison, t.threshold,
        tg.fill(t.row.numerator, t.threshold), tg.fill(t.row.denominator, t.threshold), t.row.action,
    )
    for t in tg.MANUAL_TABLE
    if t.row is not None
)


def _target_counts(facts: Sequence[CallFacts]) -> dict[str, tuple[int, int]]:
    total = len(facts)
    results = [r for f in facts for r in f.booking_results]
    lengths = [x for f in facts for x in f.slot_lengths]
    return {
        "confirmation_rate": (
            sum(1 for f in facts if f.books and f.status == Outcome.CONFIRMED), sum(1 for f in facts if f.books),
        ),
        "slot_taken_rate": (results.count(BookingResult.SLOT_TAKEN.value), len(results)),
        "anti_loop_rate": (sum(1 for f in facts if f.anti_loop), total),
        "phone_recovery_rate": (
            sum(1 for f in facts if Field.PHONE.value in f.recovery_limits),
            sum(1 for f in facts if f.asked_phone),
        ),
        "long_slot_message_rate": (
            sum(1 for x in lengths if x > n.LONG_SLOT_MESSAGE_CHARS), len(lengths),
        ),
    }


def targets(facts: Sequence[CallFacts]) -> list[dict[str, Any]]:
    """The seed's target table: each rate in percent and whether it meets its target.

    ``meets`` is None when there is nothing to measure (no conversation, no booking attempt…).
    """
    counts = _target_counts(facts)
    out: list[dict[str, Any]] = []
    for target in TARGETS:
        part, whole = counts[target.key]
        value = _pct(part, whole)
        threshold = round(target.threshold * 100, 2)
        meets: bool | None = None
        if whole:
            meets = value > threshold if target.comparison == ">" else value < threshold
        out.append({
            "key": target.key,
            "label": target.label,
            "value": value,
            "target": f"{target.comparison} {threshold:g} %",
            "comparison": target.comparison,
            "threshold": threshold,
            "meets": meets,
            "count": part,
            "of": whole,
            "numerator": target.numerator,
            "denominator": target.denominator,
            "action": target.action,
        })
    return out


def _window_info(window: Window | None, until: datetime | None) -> dict[str, Any]:
    return {
        "window": window.label if window else "all",
        "since": window.since(until).isoformat() if window and until else None,
        "until": until.isoformat() if until else None,
    }


def bookings(facts: Sequence[CallFacts], window: Window | None, until: datetime | None) -> dict[str, Any]:
    """The ``GET /api/stats/bookings`` answer (definitions in the module docstring)."""
    synthetic = sum(1 for f in facts if f.synthetic)
    facts = [f for f in facts if not f.synthetic]
    statuses = Counter(f.status for f in facts)
    total = len(facts)
    abandoned = statuses[Outcome.ABANDONED.value] + statuses[Outcome.EXPIRED.value]
    abandoned_states = Counter(
        f.final_state or "unknown"
        for f in facts
        if f.status in (Outcome.ABANDONED.value, Outcome.EXPIRED.value)
    )
    reasons = Counter(f.ended_reason for f in facts if f.ended_reason)
    purposes = Counter(f.purpose for f in facts)
    booking = [f for f in facts if f.books]
    return {
        **_window_info(window, until),
        "total_sessions": total,
        "confirmed_bookings": statuses[Outcome.CONFIRMED.value],
        "transferred": statuses[Outcome.TRANSFERRED.value],
        "intent_router": statuses[Outcome.INTENT_ROUTER.value],
        "conversion_rate": _pct(sum(1 for f in booking if f.status == Outcome.CONFIRMED), len(booking)),
        "conversion_rate_all_sessions": _pct(statuses[Outcome.CONFIRMED.value], total),
        "booking_sessions": len(booking),
        "cancellations": purposes[Purpose.CANCEL.value],
        "information_calls": purposes[Purpose.INFORMATION.value],
        "purposes": {p.value: purposes[p.value] for p in Purpose},
        "synthetic_sessions": synthetic,
        "abandon_rate": _pct(abandoned, total),
        "abandoned": abandoned,
        "outcomes": {
            **{o.value: statuses[o.value] for o in Outcome},
            Cause.IN_PROGRESS.value: statuses[Cause.IN_PROGRESS.value],
        },
        "abandoned_by_state": dict(abandoned_states.most_common()),
        "ended_reasons": dict(reasons.most_common()),
        "targets": targets(facts),
    }


def _row(facts: CallFacts, cause: Cause) -> dict[str, Any]:
    return {
        "conv_id": facts.conv_id,
        "channel": facts.channel,
        "final_state": facts.final_state,
        "outcome": facts.status,
        "turns": facts.turns,
        "cause": cause.value,
        "ended_reason": facts.ended_reason,
        "last_seen_at": facts.last_seen_at.isoformat() if facts.last_seen_at else None,
        "signals": facts.signals(),
    }


def diagnose(
    facts: Sequence[CallFacts],
    window: Window | None,
    until: datetime | None,
    *,
    source: str,
    limits: Limits,
    limit: int = 100,
) -> dict[str, Any]:
    """The seed's checklist (§5.8 J+1) automated: per conversation final state, turns and
    cause; final states of non-confirmed conversations; causes; the dominant failure pattern
    with the action and constant the seed recommends and the change to try, built from the
    settings in force (``limits``, per channel); the target table. Test conversations
    (``rdv probe``, ``rdv simulate``) are only counted, as ``synthetic``."""
    synthetic = sum(1 for f in facts if f.synthetic)
    facts = [f for f in facts if not f.synthetic]
    causes = {f.conv_id: cause_of(f) for f in facts}
    failures = [f for f in facts if causes[f.conv_id] not in NOT_FAILURES]
    cause_counts = Counter(causes[f.conv_id] for f in failures)
    final_states = Counter(
        f.final_state or "unknown" for f in facts if causes[f.conv_id] is not Cause.CONFIRMED
    )
    # Every cause known, ranked by its share of the failures: the largest is named even when
    # the manual has no recipe for it (a full calendar must not hide behind a minor pattern).
    patterns: list[dict[str, Any]] = []
    for cause in sorted(
        (c for c in FAILURE_CAUSES if cause_counts[c]), key=lambda c: (-cause_counts[c], FAILURE_CAUSES.index(c))
    ):
        patterns.append({
            **advice(cause, limits, (f.channel for f in failures if causes[f.conv_id] is cause)),
            "conversations": cause_counts[cause],
            "share": _pct(cause_counts[cause], len(failures)),
        })
    ordered = sorted(
        facts,
        key=lambda f: (f.last_seen_at.timestamp() if f.last_seen_at else float("-inf"), f.conv_id),
        reverse=True,
    )
    confirmed = sum(1 for f in facts if causes[f.conv_id] is Cause.CONFIRMED)
    booking = [f for f in facts if f.books]
    purposes = Counter(f.purpose for f in facts)
    return {
        **_window_info(window, until),
        "source": source,
        "summary": {
            "conversations": len(facts),
            "confirmed": confirmed,
            "not_confirmed": len(facts) - confirmed,
            "failures": len(failures),
            "cancelled": sum(1 for c in causes.values() if c is Cause.CANCELLED),
            "in_progress": sum(1 for c in causes.values() if c is Cause.IN_PROGRESS),
            "booking_sessions": len(booking),
            "cancellations": purposes[Purpose.CANCEL.value],
            "information_calls": purposes[Purpose.INFORMATION.value],
            "conversion_rate": _pct(sum(1 for f in booking if causes[f.conv_id] is Cause.CONFIRMED), len(booking)),
            "conversion_rate_all_sessions": _pct(confirmed, len(facts)),
            "synthetic": synthetic,
        },
        "final_states": dict(final_states.most_common()),
        "causes": {
            c.value: cause_counts[c]
            for c in sorted(cause_counts, key=lambda c: (-cause_counts[c], c.value))
        },
        "patterns": patterns,
        "dominant": patterns[0] if patterns else None,
        "targets": targets(facts),
        "conversations": [_row(f, causes[f.conv_id]) for f in ordered[: max(limit, 0)]],
    }
