"""Booking into a real CalDAV calendar through the text API: the event another client reads,
cancel and move, the race with the secretary's agenda, and the compensating delete."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import icalendar
import pytest

from service.engine.states import State
from tests.calendars.conftest import PASSWORD, PASSWORD_ENV, Radicale, events_of, practice_for
from tests.reliability.conftest import FaultyStore
from tests.telemetry.conftest import Captured

BOOK = "bonjour je voudrais prendre rendez-vous"
PHONE = "+33612345678"


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


@contextlib.asynccontextmanager
async def live_on(make_live: Any, tmp_path: Path, radicale: Radicale, agenda: Any, **kwargs: Any) -> AsyncIterator[Any]:
    """A live app whose practice books into ``agenda``."""
    path, _ = practice_for(tmp_path, radicale, agenda)
    async with make_live({"RDV_PRACTICE_FILE": str(path), "RDV_SLOT_HOLD_SECONDS": "0"}, **kwargs) as live:
        yield live


async def to_slots(live: Any, conv_id: str, name: str = "Jean Dupont", phone: str = PHONE) -> tuple[Any, ...]:
    """Drive a conversation to the proposed slots; the slots proposed."""
    for text in (BOOK, name, "pas de préférence"):
        answer = await live.say(conv_id, text, caller_phone=phone)
    assert answer["state"] == State.WAIT_CONFIRM.value, answer
    stored = await live.services.store.load(conv_id)
    return tuple(stored.conversation.context.proposed)


def rdv_events(agenda: Any) -> list[Any]:
    """The calendar's events that rdv wrote."""
    return [e for e in events_of(agenda) if str(e.get("UID", "")).startswith("rdv-")]


async def active_bookings(live: Any, conv_id: str) -> list[dict[str, Any]]:
    """The conversation's bookings that are not cancelled."""
    timeline = await live.services.store.timeline(conv_id)
    return [b for b in timeline["bookings"] if b["cancelled_at"] is None]


async def test_booking_is_an_event_another_client_reads(
    make_live: Any, tmp_path: Path, radicale: Radicale, agenda: Any
) -> None:
    """A confirmed booking is one event in the practice's calendar: at the slot, the patient's
    name in the summary, the caller's number and the conversation id in the description, rdv's
    booking id in an X- property and a UID derived from the practice and the slot."""
    async with live_on(make_live, tmp_path, radicale, agenda) as live:
        slots = await to_slots(live, "conv_cal_book")
        done = await live.say("conv_cal_book", "le premier", caller_phone=PHONE)
        assert done["state"] == "CONFIRMED" and "C'est noté" in done["reply"]
        [booking] = await active_bookings(live, "conv_cal_book")
    [event] = rdv_events(agenda)
    assert event["DTSTART"].dt == slots[0].start and event["DTEND"].dt == slots[0].end
    assert str(event["SUMMARY"]) == "Jean Dupont (rdv)"
    assert PHONE in str(event["DESCRIPTION"]) and "conv_cal_book" in str(event["DESCRIPTION"])
    assert str(event["X-RDV-BOOKING-ID"]) == booking["id"]
    assert str(event.get("TRANSP", "OPAQUE")) == "OPAQUE"


async def test_cancel_removes_the_event_and_move_leaves_one(
    make_live: Any, tmp_path: Path, radicale: Radicale, agenda: Any
) -> None:
    """Moving an appointment creates the new event and removes the old one (never both);
    cancelling removes the event; the secretary's own events are never touched."""
    agenda.save_event(dtstart=datetime(2026, 3, 20, 10, tzinfo=UTC), dtend=datetime(2026, 3, 20, 11, tzinfo=UTC),
                      summary="Formation", uid="training")
    async with live_on(make_live, tmp_path, radicale, agenda) as live:
        slots = await to_slots(live, "conv_orig")
        assert (await live.say("conv_orig", "le premier", caller_phone=PHONE))["state"] == "CONFIRMED"
        assert [e["DTSTART"].dt for e in rdv_events(agenda)] == [slots[0].start]

        for text, state in (("je voudrais déplacer mon rendez-vous", "MODIFY_CONFIRM"), ("oui", "QUALIF_PREF"),
                            ("plutôt l'après-midi", "WAIT_CONFIRM")):
            assert (await live.say("conv_move", text, caller_phone=PHONE))["state"] == state
        new = (await live.services.store.load("conv_move")).conversation.context.proposed[0]
        assert (await live.say("conv_move", "le premier", caller_phone=PHONE))["state"] == "CONFIRMED"
        assert [e["DTSTART"].dt for e in rdv_events(agenda)] == [new.start]

        assert (await live.say("conv_cancel", "je voudrais annuler mon rendez-vous",
                               caller_phone=PHONE))["state"] == "CANCEL_CONFIRM"
        assert (await live.say("conv_cancel", "oui", caller_phone=PHONE))["state"] == "CANCELLED"
    assert rdv_events(agenda) == []
    assert [str(e["UID"]) for e in events_of(agenda)] == ["training"]


async def test_event_written_between_proposal_and_confirmation_wins(
    make_live: Any, tmp_path: Path, radicale: Radicale, agenda: Any
) -> None:
    """The secretary books the proposed slot in her agenda while the caller listens: "le premier"
    loses the race exactly as the manual says ([BOOKING_RESULT] success=False, [BOOKING_RETRY],
    book_slot span with error.type=slot_taken), the caller gets new slots without that one, and
    picking one books it next to the secretary's event."""
    tel = Captured()
    async with live_on(make_live, tmp_path, radicale, agenda, telemetry=tel.telemetry) as live:
        slots = await to_slots(live, "conv_race")
        # Written as the practice's agenda software often does: a floating local time.
        agenda.save_event(dtstart=slots[0].start, dtend=slots[0].end, summary="Mme Leroy (au guichet)", uid="desk")
        lost = await live.say("conv_race", "le premier", caller_phone=PHONE)
        assert lost["state"] == "WAIT_CONFIRM" and "C'est noté" not in lost["reply"]
        reproposed = (await live.services.store.load("conv_race")).conversation.context.proposed
        assert slots[0].start not in {s.start for s in reproposed}
        assert await active_bookings(live, "conv_race") == []
        assert rdv_events(agenda) == []
        won = await live.say("conv_race", "le premier", caller_phone=PHONE)
        assert won["state"] == "CONFIRMED"
    lines = tel.lines()
    assert any(line.startswith("[BOOKING_RESULT] conv_race, success=False") for line in lines), lines
    assert any(line.startswith("[BOOKING_RETRY] conv_race, retry=1") for line in lines)
    books = [s for s in tel.exporter.get_finished_spans() if s.name == "book_slot"]
    assert [s.attributes.get("error.type") for s in books] == ["slot_taken", None]
    assert "desk" in {str(e["UID"]) for e in events_of(agenda)}
    assert [e["DTSTART"].dt for e in rdv_events(agenda)] == [reproposed[0].start]
    assert tel.sample("rdv_booking_attempts_total", channel="text", result="slot_taken") == 1


async def test_calendar_requests_are_client_spans_under_the_state(
    make_live: Any, tmp_path: Path, radicale: Radicale, agenda: Any
) -> None:
    """Each calendar request is an HTTP client span whose parent is the span of the state that
    made it (the booking's under WAIT_CONFIRM), with no patient data in its attributes."""
    tel = Captured()
    async with live_on(make_live, tmp_path, radicale, agenda, telemetry=tel.telemetry) as live:
        await to_slots(live, "conv_spans", name="Zoé Kowalski")
        await live.say("conv_spans", "le premier", caller_phone=PHONE)
        await live.say("conv_spans", "merci au revoir", caller_phone=PHONE)
    spans = tel.exporter.get_finished_spans()
    states = {s.context.span_id: s.name for s in spans if s.name.startswith("state ")}
    client = [s for s in spans if s.kind.name == "CLIENT"]
    assert {s.name for s in client} >= {"PROPFIND", "REPORT", "PUT"}
    put = next(s for s in client if s.name == "PUT")
    assert states[put.parent.span_id] == "state WAIT_CONFIRM"
    assert put.attributes["http.request.method"] == "PUT" and put.attributes["http.response.status_code"] == 201
    assert put.attributes["server.address"] == "127.0.0.1" and put.attributes["rdv.calendar.operation"] == "create"
    in_call = [s for s in client if s.context.trace_id == put.context.trace_id]
    assert all(s.parent is not None and s.parent.span_id in states for s in in_call)
    assert "state QUALIF_PREF" in {states[s.parent.span_id] for s in in_call if s.name == "PROPFIND"}
    for span in client:
        text = " ".join(str(v) for v in span.attributes.values())
        assert "Kowalski" not in text and "612345678" not in text and "conv_spans" not in text
    assert tel.sample("rdv_calendar_requests_total", operation="create", result="ok") == 1
    assert tel.sample("rdv_calendar_request_duration_seconds_count", operation="create") == 1


async def test_failed_save_deletes_the_event(
    make_live: Any, tmp_path: Path, radicale: Radicale, agenda: Any, faulty_store: FaultyStore
) -> None:
    """The store fails when the booking turn is saved: the event created just before is deleted
    (compensation), the caller hears nothing booked; the retried turn books once, one event."""
    async with live_on(make_live, tmp_path, radicale, agenda, store=faulty_store) as live:
        await to_slots(live, "conv_half")
        faulty_store.fail_on = "save_turn"
        refused = await live.client.post("/api/conversations/conv_half/messages",
                                         json={"text": "le premier", "caller_phone": PHONE, "request_id": "k-1"})
        assert refused.status_code == 503
        assert rdv_events(agenda) == [] and await active_bookings(live, "conv_half") == []
        faulty_store.fail_on = None
        retried = await live.say("conv_half", "le premier", caller_phone=PHONE, request_id="k-1")
        assert retried["state"] == "CONFIRMED"
        assert len(rdv_events(agenda)) == 1 and len(await active_bookings(live, "conv_half")) == 1


class DeskWritesDuringPut(httpx.AsyncBaseTransport):
    """The real transport; when rdv sends its PUT, the secretary's agenda (another CalDAV
    client) writes an event on the same slot first: rdv's check before the PUT saw nothing."""

    def __init__(self, agenda: Any) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.agenda = agenda
        self.armed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Write the secretary's event (once, when armed) before forwarding rdv's PUT."""
        if self.armed and request.method == "PUT":
            self.armed = False
            event = icalendar.Calendar.from_ical(request.content)
            start = next(iter(event.walk("VEVENT")))["DTSTART"].dt
            self.agenda.save_event(dtstart=start, dtend=start + timedelta(minutes=15), summary="Urgence", uid="urgent")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the real transport."""
        await self.inner.aclose()


async def test_event_written_while_rdv_creates_its_own_wins(
    make_live: Any, tmp_path: Path, radicale: Radicale, agenda: Any
) -> None:
    """The secretary's event lands between rdv's check and its PUT: rdv's check after the PUT
    sees it, deletes its own event, and the caller loses the race and hears new slots; the
    agenda keeps only the secretary's event."""
    from service.calendars import open_calendar
    from service.config import load_practice, load_settings

    path, _ = practice_for(tmp_path, radicale, agenda)
    transport = DeskWritesDuringPut(agenda)
    tel = Captured()
    calendar = open_calendar(load_practice(path), load_settings({}), tel.telemetry,
                             env={PASSWORD_ENV: PASSWORD}, transport=transport)
    env = {"RDV_PRACTICE_FILE": str(path), "RDV_SLOT_HOLD_SECONDS": "0"}
    async with make_live(env, telemetry=tel.telemetry, calendar=calendar) as live:
        await to_slots(live, "conv_put_race")
        transport.armed = True
        lost = await live.say("conv_put_race", "le premier", caller_phone=PHONE)
        assert lost["state"] == "WAIT_CONFIRM" and "C'est noté" not in lost["reply"]
        assert await active_bookings(live, "conv_put_race") == []
    assert [str(e["UID"]) for e in events_of(agenda)] == ["urgent"]
    assert tel.sample("rdv_calendar_requests_total", operation="create", result="ok") == 1
    assert tel.sample("rdv_calendar_requests_total", operation="delete", result="ok") == 1
    assert any(line.startswith("[BOOKING_RESULT] conv_put_race, success=False") for line in tel.lines())
