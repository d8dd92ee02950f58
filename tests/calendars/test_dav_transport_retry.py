"""A calendar request that fails on the transport: a read is sent once more on a new
connection, a write is not (the server may have done it)."""

from __future__ import annotations

import httpx
import pytest

from service.calendars.base import CalendarError
from service.calendars.dav import DavClient
from tests.calendars.conftest import Radicale


class DropsFirst(httpx.AsyncBaseTransport):
    """Forwards to the real server, except the first request of each method in ``methods``,
    which fails as a connection the server closed fails."""

    def __init__(self, *methods: str) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.armed = set(methods)
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Fail the first request of an armed method, forward the others."""
        self.sent.append(request.method)
        if request.method in self.armed:
            self.armed.discard(request.method)
            raise httpx.ReadError("connection closed by the server", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the real transport."""
        await self.inner.aclose()


async def test_a_read_failed_on_the_transport_is_sent_once_more(radicale: Radicale) -> None:
    transport = DropsFirst("PROPFIND")
    dav = DavClient(None, None, 5.0, None, transport=transport)
    try:
        response = await dav.send("discover", "PROPFIND", radicale.url, headers={"Depth": "0"})
    finally:
        await dav.close()
    assert response.status_code == 207
    assert transport.sent == ["PROPFIND", "PROPFIND"]


async def test_a_write_failed_on_the_transport_is_not_sent_again(radicale: Radicale) -> None:
    transport = DropsFirst("PUT")
    dav = DavClient(None, None, 5.0, None, transport=transport)
    try:
        with pytest.raises(CalendarError, match="unreachable: ReadError"):
            await dav.send("book", "PUT", radicale.url + "nobody/nothing.ics", body="BEGIN:VCALENDAR")
    finally:
        await dav.close()
    assert transport.sent == ["PUT"]


async def test_a_read_failing_twice_is_the_calendar_unreachable(radicale: Radicale) -> None:
    transport = DropsFirst("REPORT")
    transport.inner = DropsFirst("REPORT")  # the retry fails too
    dav = DavClient(None, None, 5.0, None, transport=transport)
    try:
        with pytest.raises(CalendarError, match="unreachable: ReadError"):
            await dav.send("taken", "REPORT", radicale.url, headers={"Depth": "1"})
    finally:
        await dav.close()
    assert transport.sent == ["REPORT", "REPORT"]
