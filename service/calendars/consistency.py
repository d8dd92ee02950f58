"""No booking row without its event, no event without its booking row.

A turn writes the event before it saves the booking and deletes it again when the save fails;
when even that delete cannot be made (the calendar went away mid-turn) an event of rdv's is
left that no active booking holds. This check finds such events (older than a grace period, so
that a turn still in flight on another replica is not undone under its feet) and deletes them;
active bookings whose event is missing (deleted by hand in the agenda, or booked before the
calendar was connected) are reported, never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from service.calendars.base import Calendar, OwnEvent
from service.engine.practice import Practice
from service.storage.base import Store

# Longer than any turn can take (its store and calendar calls are all bounded).
GRACE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class CalendarCheck:
    """What the check found and how many orphan events it deleted."""

    orphans: tuple[OwnEvent, ...] = ()
    missing: tuple[datetime, ...] = ()
    repaired: int = 0

    @property
    def clean(self) -> bool:
        """True when the calendar and the bookings agree."""
        return not self.orphans and not self.missing


async def check(
    calendar: Calendar, store: Store, practice: Practice, now: datetime, *, repair: bool,
    grace: timedelta = GRACE,
) -> CalendarCheck:
    """Compare rdv's events with the active bookings from ``now`` to the horizon."""
    if not calendar.external:
        return CalendarCheck()
    start, end = now, now + timedelta(days=practice.horizon_days + 1)
    events = await calendar.own_events(start, end)
    booked = {s.astimezone(UTC) for s in await store.taken_slots(start, end)}
    orphans = []
    for event in events:
        if event.start.astimezone(UTC) in booked or (event.created is not None and event.created > now - grace):
            continue
        if not await store.booking_active(event.booking_id):
            orphans.append(event)
    with_event = {e.start.astimezone(UTC) for e in events}
    missing = tuple(sorted(s for s in booked if s not in with_event)) if calendar.kind == "caldav" else ()
    repaired = 0
    if repair:
        for event in orphans:
            await calendar.delete(event.href)
            repaired += 1
    return CalendarCheck(tuple(orphans), missing, repaired)
