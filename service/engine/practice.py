"""The practice as the engine sees it: hours, slot rules, FAQ answers (already validated)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from zoneinfo import ZoneInfo

FAQ_TOPICS: tuple[str, ...] = ("address", "hours", "price", "parking", "access")


@dataclass(frozen=True, slots=True)
class OpeningSpan:
    """One opening interval of a weekday, e.g. 08:30–12:00."""

    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Practice:
    """Everything about the practice that decides slots and answers."""

    name: str
    address: str
    transfer_number: str
    timezone: ZoneInfo
    slot_minutes: int
    min_lead_minutes: int
    horizon_days: int
    # Monday = 0 … Sunday = 6; a missing weekday is closed.
    hours: Mapping[int, tuple[OpeningSpan, ...]]
    closed_dates: frozenset[date] = frozenset()
    faq: Mapping[str, str] = field(default_factory=dict)
    public_holidays: bool = True
    # [security] cancel_from_other_number: a caller who is not on the number that booked may
    # cancel when they state the patient's full name and the appointment's day and time,
    # matched exactly. Off by default: only the verified caller id finds appointments.
    cancel_from_other_number: bool = False
