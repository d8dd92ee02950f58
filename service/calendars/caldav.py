"""The practice's CalDAV calendar: busy times from a cache kept by change tag, appointments
written with a conditional request and re-checked live around it.

Cost per turn: proposals ask the server only for the collection's change tag (``getctag``, else
``sync-token``: one small PROPFIND, shared by concurrent turns); when it moved, the events of the
window are listed by etag and only new or changed ones are fetched. A booking checks the slot
live, creates the event with ``If-None-Match: *`` under a UID derived from the practice and the
slot (two replicas cannot both create it), then checks again: an overlapping event someone else
wrote meanwhile wins, and rdv deletes its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from urllib.parse import urljoin

import httpx

from service.calendars.base import (
    Appointment,
    CalendarBusyError,
    CalendarError,
    CalendarInfo,
    OwnEvent,
    Written,
)
from service.calendars.dav import (
    CALDAV,
    CS,
    DAV,
    ICS_TYPE,
    DavClient,
    etag_of,
    multiget_body,
    path_of,
    query_body,
    sync_body,
    sync_changes,
)
from service.calendars.feed import IcsFeed
from service.calendars.ical import (
    EventFacts,
    Interval,
    appointment_ics,
    event_uid,
    facts,
    overlapping,
    own,
    taken_starts,
)
from service.engine.model import Slot
from service.engine.practice import CalendarSource, Practice
from telemetry.client import ClientCalls

MULTIGET_CHUNK = 100
# Servers compare floating times (no zone) as if they were UTC: ask for this much more on both
# sides, then keep what overlaps once read in the practice's zone.
FLOATING_MARGIN = timedelta(hours=14)


@dataclass(frozen=True, slots=True)
class _Entry:
    """One cached calendar resource: its etag, text and what it blocks in the cached window."""

    etag: str | None
    ics: str
    facts: EventFacts


class CaldavCalendar:
    """A CalDAV collection found by path or display name, plus an optional read-only feed."""

    external = True
    kind = "caldav"

    def __init__(
        self,
        source: CalendarSource,
        password: str | None,
        practice: Practice,
        timeout: float,
        calls: ClientCalls | None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        assert source.url is not None and source.calendar is not None
        self.source = source
        self.practice = practice
        self.tz = practice.timezone
        self.dav = DavClient(source.username, password, timeout, calls, transport)
        self.feed = IcsFeed(source.busy_ics_url, self.dav, practice) if source.busy_ics_url else None
        self.collection: str | None = None
        self.display_name: str | None = None
        self._tag: str | None = None
        self._sync: str | None = None
        self._window: tuple[datetime, datetime] | None = None
        self._entries: dict[str, _Entry] = {}
        self._version = 0
        self._taken: tuple[tuple[int, datetime, datetime, object], frozenset[datetime]] | None = None
        self._inflight: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ discovery
    async def open(self) -> None:
        """Find the collection and read its change tag."""
        await self._collection()

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._inflight is not None:
            self._inflight.cancel()
        await self.dav.close()

    async def ping(self) -> None:
        """One PROPFIND of the change tag."""
        await self._tags()

    async def _collection(self) -> str:
        if self.collection is None:
            self.collection, self.display_name = await self._discover()
        return self.collection

    async def _discover(self) -> tuple[str, str]:
        """The collection URL: ``calendar`` as a URL or path, else the display name (or last
        path segment) of a calendar in the user's calendar home."""
        assert self.source.url is not None and self.source.calendar is not None
        wanted = self.source.calendar
        if wanted.startswith(("http://", "https://", "/")):
            url = urljoin(self.source.url, wanted).rstrip("/") + "/"
            found = await self.dav.propfind("discover", url, "0", (DAV, "resourcetype"), (DAV, "displayname"))
            if not found or not found[0].is_calendar():
                raise CalendarError(f"{wanted!r} is not a calendar collection on {self.source.url}")
            return found[0].href, found[0].text(DAV, "displayname") or wanted
        base = self.source.url.rstrip("/") + "/"
        principal = await self._one_href(base, (DAV, "current-user-principal"))
        home = await self._one_href(principal, (CALDAV, "calendar-home-set"))
        listed = await self.dav.propfind("discover", home, "1", (DAV, "resourcetype"), (DAV, "displayname"))
        calendars = [r for r in listed if r.is_calendar()]
        key = wanted.casefold()
        matches = [r for r in calendars if (r.text(DAV, "displayname") or "").casefold() == key]
        matches = matches or [r for r in calendars if r.href.rstrip("/").rsplit("/", 1)[-1].casefold() == key]
        if len(matches) != 1:
            names = ", ".join(sorted(repr(r.text(DAV, "displayname") or path_of(r.href)) for r in calendars))
            what = "several calendars are" if matches else "no calendar is"
            raise CalendarError(f"{what} named {wanted!r} (found: {names or 'none'})")
        return matches[0].href.rstrip("/") + "/", matches[0].text(DAV, "displayname") or wanted

    async def _one_href(self, url: str, prop: tuple[str, str]) -> str:
        found = await self.dav.propfind("discover", url, "0", prop)
        href = found[0].child_href(*prop) if found else None
        if href is None:
            raise CalendarError(f"{url} does not tell its {prop[1]} (is url the server's CalDAV address?)")
        return urljoin(url, href)

    # ------------------------------------------------------------------ cache
    def _day_window(self, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        """``[start, end)`` widened to whole days of the practice's zone (what is cached)."""
        first = datetime.combine(start.astimezone(self.tz).date(), time(0, 0), self.tz)
        last = datetime.combine(end.astimezone(self.tz).date() + timedelta(days=1), time(0, 0), self.tz)
        return first, last

    def _covers(self, window: tuple[datetime, datetime]) -> bool:
        return self._window is not None and self._window[0] <= window[0] and window[1] <= self._window[1]

    async def _tags(self) -> tuple[str | None, str | None]:
        """(change tag, sync token) of the collection: one PROPFIND, Depth 0."""
        collection = await self._collection()
        found = await self.dav.propfind("ctag", collection, "0", (CS, "getctag"), (DAV, "sync-token"))
        if not found:
            return None, None
        token = found[0].text(DAV, "sync-token")
        return found[0].text(CS, "getctag") or token, token

    async def _sync_changes(self, collection: str) -> bool:
        """Apply what changed since the last sync token (RFC 6578); False when the server
        refuses the token (then the window is listed again)."""
        assert self._sync is not None and self._window is not None
        response = await self.dav.send(
            "sync", "REPORT", collection, body=sync_body(self._sync),
            headers={"Content-Type": "application/xml; charset=utf-8", "Depth": "1"},
            accept=(207,), conflict=(400, 403, 409, 412),
        )
        if response.status_code != 207:
            return False
        changes = sync_changes(collection, response.content)
        own = collection.rstrip("/")
        stale = [h for h, e in changes.changed.items()
                 if h.rstrip("/") != own and (e is None or h not in self._entries or self._entries[h].etag != e)]
        fresh = await self._fetch(collection, stale, self._window)
        entries = {h: e for h, e in self._entries.items() if h not in changes.removed}
        entries.update(fresh)
        self._entries = entries
        self._sync = changes.token or self._sync
        return True

    async def _refresh(self, window: tuple[datetime, datetime]) -> None:
        """Bring the cache up to date for ``window``; concurrent callers share one refresh."""
        while self._inflight is not None and not self._inflight.done():
            await asyncio.shield(self._inflight)
            if self._covers(window) and self._tag is not None:
                return
        self._inflight = asyncio.ensure_future(self._refresh_now(window))
        try:
            await asyncio.shield(self._inflight)
        finally:
            if self._inflight is not None and self._inflight.done():
                self._inflight = None

    async def _refresh_now(self, window: tuple[datetime, datetime]) -> None:
        tag, token = await self._tags()
        if tag is not None and tag == self._tag and self._covers(window):
            return
        # Only what changed since the last read (new, changed and removed events), when the
        # server keeps sync tokens; else the window is listed again by etag.
        if self._sync is not None and self._covers(window) and await self._sync_changes(await self._collection()):
            self._tag = tag
            self._version += 1
            return
        if self._covers(window):
            assert self._window is not None
            window = self._window
        elif self._window is not None and self._window[0] <= window[0] <= self._window[0] + timedelta(days=2):
            # The days move on: keep the cached start so the window grows instead of flapping.
            window = (self._window[0], window[1])
        collection = await self._collection()
        listed = await self.dav.report(
            "list", collection, query_body(window[0] - FLOATING_MARGIN, window[1] + FLOATING_MARGIN, data=False)
        )
        etags = {r.href: r.text(DAV, "getetag") for r in listed if r.href.rstrip("/") != collection.rstrip("/")}
        stale = [h for h, e in etags.items() if e is None or h not in self._entries or self._entries[h].etag != e]
        fresh = await self._fetch(collection, stale, window)
        rebuilt: dict[str, _Entry] = {}
        moved = window != self._window
        for href, etag in etags.items():
            if href in fresh:
                rebuilt[href] = fresh[href]
            elif href in self._entries:
                old = self._entries[href]
                rebuilt[href] = _Entry(etag, old.ics, facts(old.ics, self.tz, *window)) if moved else old
        self._entries, self._tag, self._window, self._sync = rebuilt, tag, window, token
        self._version += 1

    async def _fetch(self, collection: str, hrefs: list[str], window: tuple[datetime, datetime]) -> dict[str, _Entry]:
        """The new or changed resources, by calendar-multiget, parsed for ``window``."""
        out: dict[str, _Entry] = {}
        for i in range(0, len(hrefs), MULTIGET_CHUNK):
            chunk = [path_of(h) for h in hrefs[i : i + MULTIGET_CHUNK]]
            for resource in await self.dav.report("fetch", collection, multiget_body(chunk)):
                text = resource.text(CALDAV, "calendar-data")
                if text is not None:
                    out[resource.href] = _Entry(resource.text(DAV, "getetag"), text, facts(text, self.tz, *window))
        return out

    async def taken(self, start: datetime, end: datetime) -> frozenset[datetime]:
        """Slot starts overlapped by a busy time, from the cache (change tag checked)."""
        window = self._day_window(start, end)
        await self._refresh(window)
        feed: tuple[Interval, ...] = ()
        feed_tag: object = None
        if self.feed is not None:
            feed = await self.feed.busy(*window)
            feed_tag = self.feed.etag
        key = (self._version, start, end, feed_tag)
        if self._taken is not None and self._taken[0] == key:
            return self._taken[1]
        busy = [i for e in self._entries.values() for i in e.facts.busy]
        result = taken_starts(self.practice, [*busy, *feed], start, end)
        self._taken = (key, result)
        return result

    def _invalidate(self) -> None:
        """Our own write moved the change tag: the next read lists again."""
        self._tag = None

    # ------------------------------------------------------------------ writes
    async def _slot_busy(self, slot: Slot, exclude_uid: str | None) -> bool:
        """Live: does an event (other than ``exclude_uid``) or the feed overlap the slot?"""
        collection = await self._collection()
        found = await self.dav.report(
            "check", collection, query_body(slot.start - FLOATING_MARGIN, slot.end + FLOATING_MARGIN, data=True)
        )
        for resource in found:
            text = resource.text(CALDAV, "calendar-data")
            if text is None:
                continue
            event = facts(text, self.tz, slot.start, slot.end)
            if event.uid != exclude_uid and overlapping(event.busy, slot.start, slot.end):
                return True
        if self.feed is not None:
            return overlapping(await self.feed.busy(slot.start, slot.end), slot.start, slot.end)
        return False

    async def book(self, appointment: Appointment) -> Written:
        """Check, create with ``If-None-Match: *``, check again (someone else's event wins)."""
        collection = await self._collection()
        uid = event_uid(self.practice, appointment.slot.start)
        href = f"{collection}{uid}.ics"
        if await self._slot_busy(appointment.slot, None):
            raise CalendarBusyError("the slot is busy in the calendar")
        response = await self.dav.send(
            "create", "PUT", href, body=appointment_ics(self.practice, appointment),
            headers={"If-None-Match": "*", "Content-Type": ICS_TYPE}, accept=(200, 201, 204), conflict=(409, 412),
        )
        if response.status_code in (409, 412):
            raise CalendarBusyError("another booking created this slot's event first")
        self._invalidate()
        written = Written(href, etag_of(response))
        try:
            lost = await self._slot_busy(appointment.slot, uid)
        except CalendarError as exc:
            await self._undo_or_say(written, exc)
            raise
        if lost:
            await self._undo_or_say(written, None)
            raise CalendarBusyError("an event written meanwhile overlaps the slot")
        return written

    async def _undo_or_say(self, written: Written, cause: CalendarError | None) -> None:
        """Delete the event just created; when the calendar no longer answers, say that it is
        left for the consistency check (which deletes it once no booking holds it)."""
        try:
            await self.undo(written)
        except CalendarError as exc:
            raise CalendarError(
                f"{cause or 'the slot was taken meanwhile'}; rdv's event {path_of(written.href)} could not be "
                f"deleted ({exc}) and is left for the consistency check"
            ) from exc

    async def remove(self, booking_id: str, slot: Slot) -> Written | None:
        """Delete this booking's event (checked to be rdv's, for this booking)."""
        collection = await self._collection()
        href = f"{collection}{event_uid(self.practice, slot.start)}.ics"
        found = await self.dav.send("get", "GET", href, accept=(200, 404))
        if found.status_code == 404:
            return None
        text = found.text
        event = facts(text, self.tz, slot.start, slot.end)
        if event.booking_id != booking_id or not own(event):
            return None
        etag = etag_of(found)
        await self._delete(href, etag)
        return Written(href, etag, text)

    async def _delete(self, href: str, etag: str | None) -> None:
        headers = {"If-Match": etag} if etag else None
        response = await self.dav.send("delete", "DELETE", href, headers=headers, accept=(200, 204, 404),
                                       conflict=(412,))
        self._invalidate()
        if response.status_code == 412:
            raise CalendarError("the event changed in the calendar while rdv removed it")

    async def undo(self, written: Written) -> None:
        """Delete an event created; put back an event removed."""
        if not written.href:
            return
        if written.ics is None:
            await self._delete(written.href, written.etag)
            return
        response = await self.dav.send(
            "create", "PUT", written.href, body=written.ics,
            headers={"If-None-Match": "*", "Content-Type": ICS_TYPE}, accept=(200, 201, 204), conflict=(409, 412),
        )
        self._invalidate()
        if response.status_code in (409, 412):
            raise CalendarError("the removed event could not be put back: its slot's event exists again")

    # ------------------------------------------------------------------ reading
    async def own_events(self, start: datetime, end: datetime) -> tuple[OwnEvent, ...]:
        """rdv's events starting in ``[start, end)``, from the refreshed cache."""
        await self.taken(start, end)
        out = []
        for href, entry in self._entries.items():
            event = entry.facts
            if not own(event) or not event.busy:
                continue
            first = event.busy[0].start
            if start <= first < end:
                assert event.booking_id is not None
                out.append(OwnEvent(href, event.booking_id, event.conv_id, first, event.created))
        return tuple(sorted(out, key=lambda e: e.start))

    async def delete(self, href: str) -> None:
        """Delete one of rdv's events (the repair of an event no booking holds)."""
        entry = self._entries.get(href)
        await self._delete(href, entry.etag if entry else None)

    async def describe(self, start: datetime, end: datetime) -> CalendarInfo:
        """The collection's name and how many events it has in ``[start, end)``."""
        collection = await self._collection()
        listed = await self.dav.report("list", collection, query_body(start, end, data=False))
        count = sum(1 for r in listed if r.href.rstrip("/") != collection.rstrip("/"))
        return CalendarInfo("caldav", self.display_name or collection, collection, count)
