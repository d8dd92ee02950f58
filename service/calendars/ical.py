"""iCalendar in and out: busy intervals of an agenda's events, and the event of one appointment.

Busy: an opaque event blocks its interval (``TRANSP:TRANSPARENT`` and cancelled ones do not),
an all-day event blocks its days in the practice's time zone, a floating time is read in that
zone, and a recurring event is expanded with its exceptions (``EXDATE``, moved or cancelled
occurrences) by recurring-ical-events.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from service.calendars.base import Appointment, CalendarError
from service.engine.calendar import day_starts
from service.engine.practice import Practice

PRODID = "-//rdv//rendez-vous par telephone//FR"
UID_PREFIX = "rdv-"
X_BOOKING = "X-RDV-BOOKING-ID"
X_CONVERSATION = "X-RDV-CONVERSATION-ID"
# What the practice reads in its agenda (the event is the appointment a caller booked by phone).
SUMMARY = "{name} (rdv)"
DESCRIPTION = (
    "Rendez-vous pris par l'assistant téléphonique rdv.\n"
    "Téléphone : {phone}\n"
    "Conversation rdv : {conv_id}"
)
NO_PHONE = "non communiqué"


@dataclass(frozen=True, slots=True)
class Interval:
    """A busy time, in UTC, end exclusive."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What rdv keeps of one calendar resource: its UID, rdv's marks, its busy intervals."""

    uid: str | None
    booking_id: str | None
    conv_id: str | None
    created: datetime | None
    busy: tuple[Interval, ...]


def event_uid(practice: Practice, start: datetime) -> str:
    """The stable UID of rdv's appointment at ``start``: two replicas booking the same slot
    write the same resource, and the server lets only the first create it."""
    key = f"{practice.name}|{start.astimezone(UTC).isoformat()}"
    return UID_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:32]


def appointment_ics(practice: Practice, appointment: Appointment) -> str:
    """The VCALENDAR of one appointment: summary with the patient's name, description with the
    caller's number and the conversation id, rdv's booking id in an X- property."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    event = icalendar.Event()
    at = appointment.at.astimezone(UTC)
    event.add("uid", event_uid(practice, appointment.slot.start))
    event.add("dtstamp", at)
    event.add("created", at)
    event.add("dtstart", appointment.slot.start.astimezone(UTC))
    event.add("dtend", appointment.slot.end.astimezone(UTC))
    event.add("summary", SUMMARY.format(name=appointment.name))
    event.add("description", DESCRIPTION.format(phone=appointment.phone or NO_PHONE, conv_id=appointment.conv_id))
    event.add("transp", "OPAQUE")
    event.add("status", "CONFIRMED")
    event.add("categories", ["rdv"])
    event.add(X_BOOKING, appointment.booking_id)
    event.add(X_CONVERSATION, appointment.conv_id)
    cal.add_component(event)
    return str(cal.to_ical().decode("utf-8"))


def parse(text: str) -> icalendar.Calendar:
    """A VCALENDAR, or :class:`CalendarError` naming what is wrong."""
    try:
        return icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError) as exc:
        raise CalendarError(f"the calendar sent invalid iCalendar data: {exc}") from None


def _moment(value: Any, tz: ZoneInfo) -> datetime:
    """A DTSTART/DTEND value as an aware UTC datetime (a date is its midnight in ``tz``)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=tz)
        return aware.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0, 0), tz).astimezone(UTC)
    raise CalendarError(f"the calendar sent a date-time of unknown type {type(value).__name__}")


def _blocks(component: Any) -> bool:
    transp = str(component.get("TRANSP", "OPAQUE")).upper()
    status = str(component.get("STATUS", "CONFIRMED")).upper()
    return transp != "TRANSPARENT" and status != "CANCELLED"


def occurrence(component: Any, tz: ZoneInfo) -> Interval | None:
    """The busy interval of one (expanded) VEVENT, or None when it does not block."""
    if not _blocks(component) or "DTSTART" not in component:
        return None
    raw_start = component["DTSTART"].dt
    start = _moment(raw_start, tz)
    if "DTEND" in component:
        end = _moment(component["DTEND"].dt, tz)
    elif "DURATION" in component:
        end = start + component["DURATION"].dt
    elif not isinstance(raw_start, datetime):
        end = _moment(raw_start + timedelta(days=1), tz)  # an all-day event without end: one day
    else:
        end = start
    # A point in time still blocks the slot it falls in.
    return Interval(start, max(end, start + timedelta(seconds=1)))


def busy_of(cal: icalendar.Calendar, tz: ZoneInfo, start: datetime, end: datetime) -> tuple[Interval, ...]:
    """Busy intervals of every event of ``cal`` overlapping ``[start, end)``, recurrences expanded."""
    try:
        found = recurring_ical_events.of(cal, skip_bad_series=True).between(start, end)
    except (ValueError, TypeError, KeyError) as exc:
        raise CalendarError(f"the calendar sent an event rdv cannot expand: {exc}") from None
    out = [i for i in (occurrence(c, tz) for c in found) if i is not None and i.end > start and i.start < end]
    return tuple(sorted(out, key=lambda i: (i.start, i.end)))


def _text(component: Any, key: str) -> str | None:
    value = component.get(key)
    return None if value is None else str(value)


def facts(text: str, tz: ZoneInfo, start: datetime, end: datetime) -> EventFacts:
    """UID, rdv's marks and busy intervals in ``[start, end)`` of one calendar resource."""
    cal = parse(text)
    master: Any = next(iter(cal.walk("VEVENT")), None)
    created: datetime | None = None
    if master is not None and "CREATED" in master:
        created = _moment(master["CREATED"].dt, tz)
    elif master is not None and "DTSTAMP" in master:
        created = _moment(master["DTSTAMP"].dt, tz)
    return EventFacts(
        uid=_text(master, "UID") if master is not None else None,
        booking_id=_text(master, X_BOOKING) if master is not None else None,
        conv_id=_text(master, X_CONVERSATION) if master is not None else None,
        created=created,
        busy=busy_of(cal, tz, start, end),
    )


def own(entry: EventFacts) -> bool:
    """True for an event rdv created: its UID is rdv's and it carries a booking id."""
    return entry.booking_id is not None and (entry.uid or "").startswith(UID_PREFIX)


def _days(practice: Practice, start: datetime, end: datetime) -> Iterator[date]:
    day = start.astimezone(practice.timezone).date()
    last = end.astimezone(practice.timezone).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def taken_starts(practice: Practice, busy: Iterable[Interval], start: datetime, end: datetime) -> frozenset[datetime]:
    """UTC starts of the practice's slots in ``[start, end)`` that a busy interval overlaps."""
    intervals = sorted(busy, key=lambda i: i.start)
    if not intervals:
        return frozenset()
    starts = [i.start for i in intervals]
    # The longest interval bounds how far back an overlapping one can start.
    longest = max(i.end - i.start for i in intervals)
    length = timedelta(minutes=practice.slot_minutes)
    lo_utc, hi_utc = start.astimezone(UTC), end.astimezone(UTC)
    out: set[datetime] = set()
    for day in _days(practice, start, end):
        for utc, _ in day_starts(practice, day):
            if utc < lo_utc or utc >= hi_utc:
                continue
            slot_end = utc + length
            first = bisect.bisect_left(starts, utc - longest)
            last = bisect.bisect_left(starts, slot_end)
            if any(intervals[k].end > utc for k in range(first, last)):
                out.add(utc)
    return frozenset(out)


def overlapping(busy: Iterable[Interval], start: datetime, end: datetime) -> bool:
    """True when a busy interval overlaps ``[start, end)``."""
    return any(i.start < end and i.end > start for i in busy)
