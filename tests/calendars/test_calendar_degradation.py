"""The calendar stopped mid-call: the caller hears the apology and is transferred, and nothing
is left half-written (no booking without its event, no event without its booking)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.calendars import open_calendar
from service.calendars.consistency import check
from service.config import load_practice, load_settings
from service.engine import replies
from tests.calendars.conftest import PASSWORD, PASSWORD_ENV, Radicale, events_of, practice_file
from tests.telemetry.conftest import Captured
from tests.vapi.conftest import VapiCall

ENV = {PASSWORD_ENV: PASSWORD}


@pytest.fixture
def own_radicale(tmp_path: Path) -> Iterator[Radicale]:
    """A Radicale server of this test alone (it is stopped and started again)."""
    server = Radicale(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class StopAfterPut(httpx.AsyncBaseTransport):
    """The real transport; the server is stopped as soon as it has created an event, so the
    check that follows (and the compensating delete) find it gone."""

    def __init__(self, server: Radicale) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.server = server
        self.armed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Forward; after an armed PUT that created an event, stop the server."""
        response = await self.inner.handle_async_request(request)
        if self.armed and request.method == "PUT" and response.status_code == 201:
            self.armed = False
            self.server.stop()
        return response

    async def aclose(self) -> None:
        """Close the real transport."""
        await self.inner.aclose()


@contextlib.asynccontextmanager
async def live_call(make_live: Any, tmp_path: Path, server: Radicale, transport: Any = None) -> AsyncIterator[Any]:
    """A live app booking into a fresh calendar of ``server`` (through ``transport``)."""
    agenda = server.new_calendar()
    path = practice_file(tmp_path, server.url, str(agenda.get_display_name()))
    settings = load_settings({PASSWORD_ENV: PASSWORD, "RDV_CALENDAR_TIMEOUT_SECONDS": "1"})
    tel = Captured()
    calendar = open_calendar(load_practice(path), settings, tel.telemetry, env=ENV, transport=transport)
    env = {"RDV_PRACTICE_FILE": str(path), "RDV_CALENDAR_TIMEOUT_SECONDS": "1"}
    async with make_live(env, telemetry=tel.telemetry, calendar=calendar) as live:
        live.agenda, live.tel = agenda, tel
        yield live


async def to_slots(live: Any, call_id: str) -> VapiCall:
    """A Vapi call driven to the proposed slots."""
    call = VapiCall(live.client, call_id)
    for text in ("bonjour je voudrais prendre rendez-vous", "Jean Dupont", "pas de préférence"):
        answer = await call.say(text)
    assert "1" in answer.text and answer.tool() is None, answer.text
    return call


def assert_apology_and_transfer(answer: Any) -> None:
    """The spoken apology, then Vapi's transferCall to the practice."""
    assert answer.status == 200 and answer.text == replies.TRANSFER_ERROR, answer.raw
    tool = answer.tool()
    assert tool is not None and tool[0] == "transferCall", answer.raw


async def test_calendar_down_between_turns(make_live: Any, tmp_path: Path, own_radicale: Radicale) -> None:
    """The calendar stops while the caller listens to the slots: "le premier" gets the apology
    and the transfer, /readyz says the calendar is unreachable, nothing is booked anywhere, and
    the next caller books normally once it is back."""
    async with live_call(make_live, tmp_path, own_radicale) as live:
        call = await to_slots(live, "call-cal-down")
        own_radicale.stop()
        assert_apology_and_transfer(await call.say("le premier"))
        ready = (await live.client.get("/readyz")).json()
        assert ready["calendar"]["status"] == "unreachable" and ready["status"] == "ready"
        assert (await live.services.store.timeline("call-cal-down"))["bookings"] == []
        assert any(line.startswith("calendar_unavailable") for line in live.tel.lines())
        assert live.tel.sample("rdv_calendar_requests_total", operation="ctag", result="unreachable") >= 1

        own_radicale.start()
        assert events_of(live.agenda) == []
        assert (await live.client.get("/readyz")).json()["calendar"]["status"] == "ok"
        again = await to_slots(live, "call-cal-back")
        assert "C'est noté" in (await again.say("le premier")).text
        assert len(events_of(live.agenda)) == 1


async def test_calendar_down_right_after_the_event_is_written(
    make_live: Any, tmp_path: Path, own_radicale: Radicale
) -> None:
    """The calendar stops just after rdv created the event: the check that follows and the
    compensating delete fail, the caller gets the apology and the transfer, no booking is
    stored; once the calendar is back, the consistency check deletes the event no booking holds."""
    transport = StopAfterPut(own_radicale)
    async with live_call(make_live, tmp_path, own_radicale, transport) as live:
        call = await to_slots(live, "call-cal-cut")
        transport.armed = True
        assert_apology_and_transfer(await call.say("le premier"))
        assert (await live.services.store.timeline("call-cal-cut"))["bookings"] == []

        own_radicale.start()
        assert len(events_of(live.agenda)) == 1  # left by the cut, not by a booking
        svc = live.services
        found = await check(svc.turns.calendar, svc.store, svc.practice, svc.clock.now(), repair=True,
                            grace=timedelta(0))
        assert found.repaired == 1 and found.missing == ()
        assert events_of(live.agenda) == []
        again = await check(svc.turns.calendar, svc.store, svc.practice, svc.clock.now(), repair=True,
                            grace=timedelta(0))
        assert again.clean
