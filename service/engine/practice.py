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
class CalendarSource:
    """Where the practice's agenda lives (its ``[calendar]`` table): rdv's own bookings
    (``builtin``) or a CalDAV calendar the secretary also uses. The engine never reads it;
    the password is named here (``password_env``), never held."""

    kind: str = "builtin"
    url: str | None = None
    calendar: str | None = None
    username: str | None = None
    password_env: str | None = None
    busy_ics_url: str | None = None

    @property
    def external(self) -> bool:
        """True when busy times and appointments live outside rdv's store."""
        return self.kind != "builtin" or self.busy_ics_url is not None


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
    calendar: CalendarSource = CalendarSource()
    # [security] cancel_from_other_number: a caller who is not on the number that booked may
    # cancel when they state the patient's full name and the appointment's day and time,
    # matched exactly. Off by default: only the verified caller id finds appointments.
    cancel_from_other_number: bool = False
