"""A read-only iCalendar feed of busy times (agenda software that only publishes one).

Fetched with a conditional GET (``If-None-Match`` with the last ETag, else
``If-Modified-Since``): an unchanged feed costs one small request and no parsing.
"""

from __future__ import annotations

from datetime import datetime

from service.calendars.base import (
    Appointment,
    BuiltinCalendar,
    CalendarBusyError,
    CalendarError,
    CalendarInfo,
    Written,
)
from service.calendars.dav import DavClient, etag_of
from service.calendars.ical import Interval, busy_of, overlapping, parse, taken_starts
from service.engine.practice import Practice


class IcsFeed:
    """One feed URL, its last ETag and parsed calendar."""

    def __init__(self, url: str, dav: DavClient, practice: Practice) -> None:
        self.url = url
        self.dav = dav
        self.tz = practice.timezone
        self.etag: str | None = None
        self.modified: str | None = None
        self._calendar: object | None = None
        self._busy: dict[tuple[datetime, datetime], tuple[Interval, ...]] = {}

    async def busy(self, start: datetime, end: datetime) -> tuple[Interval, ...]:
        """Busy intervals of the feed overlapping ``[start, end)`` (fetched again only when changed)."""
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        elif self.modified:
            headers["If-Modified-Since"] = self.modified
        response = await self.dav.send("feed", "GET", self.url, headers=headers, accept=(200, 304), redirects=True)
        if response.status_code == 200 or self._calendar is None:
            if response.status_code != 200:
                raise CalendarError("the busy feed answered 304 to a first request")
            self._calendar = parse(response.text)
            self.etag = etag_of(response)
            self.modified = response.headers.get("last-modified")
            self._busy.clear()
        key = (start, end)
        if key not in self._busy:
            if len(self._busy) > 64:
                self._busy.clear()
            self._busy[key] = busy_of(self._calendar, self.tz, start, end)  # type: ignore[arg-type]
        return self._busy[key]


class FeedCalendar(BuiltinCalendar):
    """rdv's own bookings plus the busy times of a read-only feed (``kind = "builtin"`` with
    ``busy_ics_url``): as in the built-in agenda, nothing is written outside rdv (it inherits
    ``remove``, ``undo``, ``own_events`` and ``delete``); a booking re-checks the feed live."""

    external = True
    kind = "builtin"

    def __init__(self, url: str, practice: Practice, dav: DavClient) -> None:
        self.practice = practice
        self.dav = dav
        self.feed = IcsFeed(url, dav, practice)

    async def open(self) -> None:
        """Nothing to discover."""

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self.dav.close()

    async def ping(self) -> None:
        """A conditional GET of the feed."""
        now = datetime.now(self.practice.timezone)
        await self.feed.busy(now, now)

    async def describe(self, start: datetime, end: datetime) -> CalendarInfo:
        """The feed and how many busy times it has in ``[start, end)``."""
        busy = await self.feed.busy(start, end)
        return CalendarInfo("builtin", "rdv bookings + busy feed", self.feed.url, len(busy))

    async def taken(self, start: datetime, end: datetime) -> frozenset[datetime]:
        """Slot starts the feed's busy times overlap."""
        return taken_starts(self.practice, await self.feed.busy(start, end), start, end)

    async def book(self, appointment: Appointment) -> Written:
        """Only a live check: the booking row is the appointment."""
        slot = appointment.slot
        if overlapping(await self.feed.busy(slot.start, slot.end), slot.start, slot.end):
            raise CalendarBusyError("the slot is busy in the practice's feed")
        return Written("", None)
