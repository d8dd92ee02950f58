"""The WebDAV/CalDAV requests rdv makes, on httpx, each bounded in time, traced and counted.

Only what rdv needs: PROPFIND (discovery, change tag), REPORT (calendar-query over a time range,
calendar-multiget), GET, conditional PUT and DELETE. Failures become :class:`CalendarError`
with the result the metrics count (``timeout``, ``unreachable``, ``error``).
"""

from __future__ import annotations

import asyncio
import contextlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from service.calendars.base import CalendarError
from telemetry import names as n
from telemetry.client import CallRecord, ClientCalls

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CS = "http://calendarserver.org/ns/"
XML_HEADERS = {"Content-Type": "application/xml; charset=utf-8"}
ICS_TYPE = "text/calendar; charset=utf-8"
USER_AGENT = "rdv-calendar/1"
# Methods that change nothing on the server: one failed on the transport is sent once more.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND", "REPORT"})


def q(ns: str, name: str) -> str:
    """An ElementTree qualified name."""
    return f"{{{ns}}}{name}"


@dataclass(frozen=True, slots=True)
class Resource:
    """One ``<response>`` of a multistatus: its absolute URL and its found properties."""

    href: str
    props: dict[str, ET.Element] = field(default_factory=dict)

    def text(self, ns: str, name: str) -> str | None:
        """The text of a found property, or None."""
        found = self.props.get(q(ns, name))
        return None if found is None or found.text is None else found.text.strip()

    def child_href(self, ns: str, name: str) -> str | None:
        """The ``<href>`` inside a found property (principal, calendar home)."""
        found = self.props.get(q(ns, name))
        if found is None:
            return None
        href = found.find(q(DAV, "href"))
        return None if href is None or not href.text else href.text.strip()

    def is_calendar(self) -> bool:
        """True when the resource type says calendar collection."""
        kind = self.props.get(q(DAV, "resourcetype"))
        return kind is not None and kind.find(q(CALDAV, "calendar")) is not None


def utc_stamp(at: datetime) -> str:
    """A CalDAV time-range bound (UTC, basic format)."""
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def propfind_body(*props: tuple[str, str]) -> str:
    """A PROPFIND asking for ``props`` (namespace, name)."""
    inner = "".join(f'<x:{name} xmlns:x="{ns}"/>' for ns, name in props)
    return f'<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop>{inner}</d:prop></d:propfind>'


def query_body(start: datetime, end: datetime, *, data: bool) -> str:
    """A calendar-query of the VEVENTs overlapping ``[start, end)`` (etags, and data if asked)."""
    wanted = "<d:getetag/>" + ("<c:calendar-data/>" if data else "")
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<c:calendar-query xmlns:d="DAV:" xmlns:c="{CALDAV}"><d:prop>{wanted}</d:prop>'
        '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT">'
        f'<c:time-range start="{utc_stamp(start)}" end="{utc_stamp(end)}"/>'
        "</c:comp-filter></c:comp-filter></c:filter></c:calendar-query>"
    )


def multiget_body(paths: Sequence[str]) -> str:
    """A calendar-multiget of these resources' etags and data."""
    hrefs = "".join(f"<d:href>{_escape(p)}</d:href>" for p in paths)
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<c:calendar-multiget xmlns:d="DAV:" xmlns:c="{CALDAV}">'
        f"<d:prop><d:getetag/><c:calendar-data/></d:prop>{hrefs}</c:calendar-multiget>"
    )


def sync_body(token: str) -> str:
    """A sync-collection REPORT (RFC 6578): what changed since ``token``, with etags."""
    return (
        '<?xml version="1.0" encoding="utf-8"?><d:sync-collection xmlns:d="DAV:">'
        f"<d:sync-token>{_escape(token)}</d:sync-token><d:sync-level>1</d:sync-level>"
        "<d:prop><d:getetag/></d:prop></d:sync-collection>"
    )


@dataclass(frozen=True, slots=True)
class Changes:
    """A sync-collection answer: changed resources with their etags, removed ones, new token."""

    changed: dict[str, str | None]
    removed: frozenset[str]
    token: str | None


def sync_changes(base: str, body: bytes) -> Changes:
    """The changes of a sync-collection multistatus (a response whose own status is 404 is a
    removed resource)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise CalendarError(f"the calendar sent invalid XML: {exc}") from None
    changed: dict[str, str | None] = {}
    removed: set[str] = set()
    for response in root.iter(q(DAV, "response")):
        href = response.find(q(DAV, "href"))
        if href is None or not href.text:
            continue
        url = urljoin(base, href.text.strip())
        status = response.find(q(DAV, "status"))
        if status is not None and status.text and " 404 " in f"{status.text} ":
            removed.add(url)
            continue
        etag = response.find(f"{q(DAV, 'propstat')}/{q(DAV, 'prop')}/{q(DAV, 'getetag')}")
        changed[url] = etag.text.strip() if etag is not None and etag.text else None
    token = root.find(q(DAV, "sync-token"))
    return Changes(changed, frozenset(removed), token.text.strip() if token is not None and token.text else None)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def multistatus(base: str, body: bytes) -> list[Resource]:
    """The responses of a 207 body, hrefs made absolute against ``base``; only properties
    found (``200`` propstat) are kept."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise CalendarError(f"the calendar sent invalid XML: {exc}") from None
    out = []
    for response in root.iter(q(DAV, "response")):
        href = response.find(q(DAV, "href"))
        if href is None or not href.text:
            continue
        props: dict[str, ET.Element] = {}
        for propstat in response.iter(q(DAV, "propstat")):
            status = propstat.find(q(DAV, "status"))
            if status is not None and status.text and " 200 " not in f"{status.text} ":
                continue
            prop = propstat.find(q(DAV, "prop"))
            if prop is not None:
                props.update({child.tag: child for child in prop})
        out.append(Resource(urljoin(base, href.text.strip()), props))
    return out


def path_of(url: str) -> str:
    """The path of an absolute URL (what multiget names)."""
    return urlsplit(url).path


class DavClient:
    """HTTP to one CalDAV server: basic auth, one timeout per request, a span and metrics each."""

    def __init__(
        self,
        username: str | None,
        password: str | None,
        timeout: float,
        calls: ClientCalls | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        auth = httpx.BasicAuth(username, password or "") if username else None
        self.timeout = timeout
        self.calls = calls
        self.http = httpx.AsyncClient(
            auth=auth, timeout=httpx.Timeout(timeout), transport=transport,
            headers={"User-Agent": USER_AGENT}, follow_redirects=False,
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    @contextlib.contextmanager
    def _record(self, operation: str, method: str, url: str) -> Iterator[CallRecord]:
        if self.calls is None:
            yield CallRecord()
            return
        with self.calls.request(operation, method, url) as record:
            yield record

    async def send(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        accept: tuple[int, ...] = (200, 201, 204, 207),
        conflict: tuple[int, ...] = (),
        redirects: bool = False,
    ) -> httpx.Response:
        """One request; a status in ``conflict`` is returned (counted ``conflict``), one outside
        ``accept`` raises :class:`CalendarError` (counted ``error``)."""
        content = body.encode("utf-8") if body is not None else None
        with self._record(operation, method, url) as record:
            try:
                async with asyncio.timeout(self.timeout):
                    try:
                        response = await self.http.request(
                            method, url, content=content, headers=headers, follow_redirects=redirects,
                        )
                    except httpx.TimeoutException:
                        raise
                    except httpx.TransportError:
                        # A read (nothing changes on the server) is sent once more, on a new
                        # connection: a kept-alive connection the server closed just then, or
                        # a connection it dropped under a burst, fails on the transport alone.
                        if method not in SAFE_METHODS:
                            raise
                        response = await self.http.request(
                            method, url, content=content, headers=headers, follow_redirects=redirects,
                        )
            except (TimeoutError, httpx.TimeoutException):
                record.result = "timeout"
                raise CalendarError(
                    f"the calendar did not answer {method} within {self.timeout:g} s "
                    "(RDV_CALENDAR_TIMEOUT_SECONDS)"
                ) from None
            except httpx.TransportError as exc:
                record.result = "unreachable"
                record.error_type = type(exc).__name__
                raise CalendarError(f"the calendar is unreachable: {type(exc).__name__}: {exc}") from None
            record.status = response.status_code
            if response.status_code in conflict:
                record.result = n.CALENDAR_CONFLICT
                return response
            if response.status_code not in accept:
                record.result = "error"
                raise CalendarError(_refusal(method, url, response.status_code))
            return response

    async def propfind(self, operation: str, url: str, depth: str, *props: tuple[str, str]) -> list[Resource]:
        """PROPFIND ``props`` at ``url`` (redirects followed: discovery often starts on one)."""
        response = await self.send(
            operation, "PROPFIND", url, body=propfind_body(*props),
            headers={**XML_HEADERS, "Depth": depth}, accept=(207,), redirects=True,
        )
        return multistatus(str(response.url), response.content)

    async def report(self, operation: str, url: str, body: str) -> list[Resource]:
        """A REPORT on the collection (Depth 1)."""
        response = await self.send(operation, "REPORT", url, body=body, headers={**XML_HEADERS, "Depth": "1"},
                                   accept=(207,))
        return multistatus(url, response.content)


def _refusal(method: str, url: str, status: int) -> str:
    if status in (401, 403):
        return (f"the calendar refused {method} {path_of(url)} (HTTP {status}): check the username and the "
                "password variable named by password_env (an app-specific password for iCloud or Fastmail)")
    return f"the calendar answered HTTP {status} to {method} {path_of(url)}"


def etag_of(response: httpx.Response) -> str | None:
    """The ETag header of a response, if any."""
    value: Any = response.headers.get("etag")
    return str(value) if value else None
