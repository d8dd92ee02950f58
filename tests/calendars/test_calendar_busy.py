"""Busy times from a real CalDAV calendar block exactly the slots they overlap."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from service.calendars import open_calendar
from service.config import load_settings
from tests.calendars.conftest import PASSWORD, PASSWORD_ENV, Radicale, at, events_of, practice_for

ENV = {PASSWORD_ENV: PASSWORD}

RECURRING = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//secretariat//agenda//FR
BEGIN:VEVENT
UID:staff-meeting
DTSTAMP:20260301T080000Z
DTSTART;TZID=Europe/Paris:20260309T090000
DTEND;TZID=Europe/Paris:20260309T093000
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4
EXDATE;TZID=Europe/Paris:20260316T090000
SUMMARY:Réunion d'équipe
END:VEVENT
BEGIN:VEVENT
UID:staff-meeting
DTSTAMP:20260301T080000Z
RECURRENCE-ID;TZID=Europe/Paris:20260323T090000
DTSTART;TZID=Europe/Paris:20260323T110000
DTEND;TZID=Europe/Paris:20260323T113000
SUMMARY:Réunion d'équipe (décalée)
END:VEVENT
END:VCALENDAR
"""

FLOATING = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//secretariat//agenda//FR
BEGIN:VEVENT
UID:floating-visit
DTSTAMP:20260301T080000Z
DTSTART:20260304T083000
DTEND:20260304T090000
SUMMARY:Visite à domicile
END:VEVENT
END:VCALENDAR
"""


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    """A Paris time in March 2026, as the UTC slot start the engine compares."""
    return at(day, hour, minute).astimezone(UTC)


async def test_busy_events_block_the_slots_they_overlap(tmp_path: Path, radicale: Radicale, agenda: Any) -> None:
    """An opaque event blocks its slots, a transparent one does not; an all-day event blocks its
    day; a weekly event blocks each occurrence but the excluded one, and its moved occurrence
    blocks where it moved to; a floating time is read in the practice's zone; an event that
    covers part of a slot blocks the whole slot."""
    agenda.save_event(dtstart=at(5, 10), dtend=at(5, 11), summary="Dr absent", uid="absent")
    agenda.save_event(dtstart=at(5, 14), dtend=at(5, 15), summary="Rappel", uid="reminder", transp="TRANSPARENT")
    agenda.save_event(dtstart=date(2026, 3, 6), dtend=date(2026, 3, 7), summary="Congrès", uid="congress")
    agenda.save_event(dtstart=at(10, 15, 10), dtend=at(10, 15, 20), summary="Appel labo", uid="lab")
    agenda.save_event(RECURRING)
    agenda.save_event(FLOATING)
    _, practice = practice_for(tmp_path, radicale, agenda, horizon=30)
    calendar = open_calendar(practice, load_settings({}), None, env=ENV)
    await calendar.open()
    try:
        start = at(3, 0)
        taken = await calendar.taken(start, start + timedelta(days=28))
    finally:
        await calendar.close()

    assert {utc(5, 10), utc(5, 10, 30)} <= taken
    assert utc(5, 9, 30) not in taken and utc(5, 11) not in taken
    assert utc(5, 14) not in taken and utc(5, 14, 30) not in taken
    friday = {t for t in taken if t.astimezone(practice.timezone).date() == date(2026, 3, 6)}
    assert len(friday) == 7 + 6  # 08:30–12:00 and 14:00–17:00: every slot of the day
    assert utc(10, 15) in taken and utc(10, 14, 30) not in taken and utc(10, 15, 30) not in taken
    assert utc(9, 9) in taken and utc(16, 9) not in taken
    assert utc(23, 11) in taken and utc(23, 9) not in taken and utc(30, 9) in taken
    assert utc(4, 8, 30) in taken and utc(4, 9) not in taken
    expected = {utc(5, 10), utc(5, 10, 30), utc(10, 15), utc(9, 9), utc(23, 11), utc(30, 9), utc(4, 8, 30)}
    assert taken == expected | friday


async def test_a_second_read_asks_only_for_the_change_tag(
    tmp_path: Path, radicale: Radicale, agenda: Any, captured: Any
) -> None:
    """Proposals read busy times from the cache: an unchanged calendar costs one PROPFIND of its
    change tag; an event added by another client is seen on the next read, found by the sync
    token (not by listing the window again) and fetched alone."""
    agenda.save_event(dtstart=at(5, 10), dtend=at(5, 11), summary="Dr absent", uid="absent")
    _, practice = practice_for(tmp_path, radicale, agenda)
    tel = captured()
    calendar = open_calendar(practice, load_settings({}), tel.telemetry, env=ENV)
    start = at(3, 0)
    try:
        first = await calendar.taken(start, start + timedelta(days=14))
        before = {op: tel.sample("rdv_calendar_requests_total", operation=op, result="ok")
                  for op in ("ctag", "list", "fetch")}
        again = await calendar.taken(start, start + timedelta(days=14))
        after = {op: tel.sample("rdv_calendar_requests_total", operation=op, result="ok")
                 for op in ("ctag", "list", "fetch")}
        assert again == first
        assert after == {**before, "ctag": before["ctag"] + 1}
        agenda.save_event(dtstart=at(12, 15), dtend=at(12, 15, 30), summary="Livraison", uid="delivery")
        third = await calendar.taken(start, start + timedelta(days=14))
    finally:
        await calendar.close()
    assert third == first | {utc(12, 15)}
    assert tel.sample("rdv_calendar_requests_total", operation="fetch", result="ok") == after["fetch"] + 1
    assert tel.sample("rdv_calendar_requests_total", operation="sync", result="ok") == 1
    assert tel.sample("rdv_calendar_requests_total", operation="list", result="ok") == after["list"]


async def test_a_read_only_feed_blocks_slots_and_is_rechecked_before_booking(
    make_live: Any, tmp_path: Path, radicale: Radicale, agenda: Any
) -> None:
    """``kind = "builtin"`` with ``busy_ics_url`` (agenda software that only publishes a feed; here
    Radicale's export of the calendar): its events block slots, a booking re-checks the feed
    live and loses the race to an event published meanwhile, and nothing is written to it."""
    agenda.save_event(dtstart=at(3, 11), dtend=at(3, 12), summary="Dr absent", uid="absent")
    path = tmp_path / "practice-feed.toml"
    text = (Path(__file__).parents[2] / "service" / "practice.example.toml").read_text("utf-8")
    path.write_text(text + f'\n[calendar]\nbusy_ics_url = "{agenda.url}"\n', "utf-8")
    async with make_live({"RDV_PRACTICE_FILE": str(path), "RDV_SLOT_HOLD_SECONDS": "0"}) as live:
        for text in ("bonjour je voudrais prendre rendez-vous", "Jean Dupont", "pas de préférence"):
            await live.say("conv_feed", text, caller_phone="+33612345678")
        proposed = (await live.services.store.load("conv_feed")).conversation.context.proposed
        assert not {utc(3, 11), utc(3, 11, 30)} & {s.start.astimezone(UTC) for s in proposed}
        agenda.save_event(dtstart=proposed[0].start, dtend=proposed[0].end, summary="Guichet", uid="desk")
        lost = await live.say("conv_feed", "le premier", caller_phone="+33612345678")
        assert lost["state"] == "WAIT_CONFIRM"
        assert (await live.say("conv_feed", "le premier", caller_phone="+33612345678"))["state"] == "CONFIRMED"
        ready = (await live.client.get("/readyz")).json()
    assert ready["calendar"] == {"kind": "builtin", "status": "ok"}
    assert sorted(str(e["UID"]) for e in events_of(agenda)) == ["absent", "desk"]
