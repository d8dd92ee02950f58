"""The practice's agenda as the turn loop sees it: busy times, appointments written and removed.

``builtin`` is rdv's own bookings table and nothing else (today's behaviour, no I/O here). An
external calendar (CalDAV, optionally a read-only iCalendar feed) adds busy times to the slots
the engine sees as taken and holds one event per appointment rdv books. Every write here is
undone by its compensation when the turn that made it is not saved: an appointment exists in
the agenda if and only if its caller heard it confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from service.engine.model import RdvError, Slot


class CalendarError(RdvError):
    """The calendar did not answer in time, could not be reached, or answered an error."""


class CalendarBusyError(CalendarError):
    """The slot is taken in the calendar (an event overlaps it, or another rdv wrote it first):
    nothing of ours is left there; the booking lost its race."""


@dataclass(frozen=True, slots=True)
class Appointment:
    """What rdv writes into the agenda for one booking."""

    booking_id: str
    slot: Slot
    conv_id: str
    name: str
    phone: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Written:
    """An event rdv created (``ics`` None) or removed (``ics`` its former content), kept so
    that the write can be undone when the turn is not saved."""

    href: str
    etag: str | None
    ics: str | None = None


@dataclass(frozen=True, slots=True)
class OwnEvent:
    """An event rdv created, as found in the calendar (for the start-up consistency check)."""

    href: str
    booking_id: str
    conv_id: str | None
    start: datetime
    created: datetime | None


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    """What ``rdv check-config`` and ``/readyz`` report about the calendar."""

    kind: str
    name: str
    url: str | None = None
    events: int | None = None


class Calendar(Protocol):
    """The practice's agenda. Datetimes are tz-aware; busy starts are UTC slot starts."""

    @property
    def external(self) -> bool:
        """True when busy times and appointments live outside rdv's store (calls are made)."""

    @property
    def kind(self) -> str:
        """``builtin`` or ``caldav``."""

    async def open(self) -> None:
        """Find the calendar (discovery) and check that it answers."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> None:
        """Raise :class:`CalendarError` when the calendar does not answer (a cheap request)."""

    async def describe(self, start: datetime, end: datetime) -> CalendarInfo:
        """The calendar's name and how many events it holds in ``[start, end)`` (live)."""

    async def taken(self, start: datetime, end: datetime) -> frozenset[datetime]:
        """UTC starts of the practice's slots in ``[start, end)`` that a busy time overlaps
        (from the cache, refreshed when the calendar's change tag moved)."""

    async def book(self, appointment: Appointment) -> Written:
        """Create the appointment's event, re-checking the slot live before and after; raises
        :class:`CalendarBusyError` (nothing of ours left) when the slot is taken."""

    async def remove(self, booking_id: str, slot: Slot) -> Written | None:
        """Delete the event rdv created for this booking (None when there is none)."""

    async def undo(self, written: Written) -> None:
        """Compensate one write: delete an event created, re-create an event removed."""

    async def own_events(self, start: datetime, end: datetime) -> tuple[OwnEvent, ...]:
        """Events rdv created starting in ``[start, end)`` (live)."""

    async def delete(self, href: str) -> None:
        """Delete one event rdv created (the repair of an event no booking holds)."""


class BuiltinCalendar:
    """rdv's bookings table is the agenda: no busy time besides it, nothing to write."""

    external = False
    kind = "builtin"

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def ping(self) -> None:
        """Always answers."""

    async def describe(self, start: datetime, end: datetime) -> CalendarInfo:
        """The built-in agenda."""
        return CalendarInfo("builtin", "rdv bookings")

    async def taken(self, start: datetime, end: datetime) -> frozenset[datetime]:
        """No busy time besides the bookings the store reports."""
        return frozenset()

    async def book(self, appointment: Appointment) -> Written:
        """The booking row is the appointment."""
        return Written("", None)

    async def remove(self, booking_id: str, slot: Slot) -> Written | None:
        """Nothing to remove."""
        return None

    async def undo(self, written: Written) -> None:
        """Nothing to undo."""

    async def own_events(self, start: datetime, end: datetime) -> tuple[OwnEvent, ...]:
        """No event."""
        return ()

    async def delete(self, href: str) -> None:
        """Nothing to delete."""
