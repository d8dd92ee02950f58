"""Two real ``rdv serve`` replicas on PostgreSQL booking into one CalDAV calendar."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.calendars.conftest import PASSWORD, PASSWORD_ENV, Radicale, events_of, practice_file
from tests.reliability.callers import BOOK, CONFIRMED_MARK, PHONE, fleet, opened_store
from tests.reliability.conftest import fresh_schema, replicas
from tests.reliability.procs import Replica, metric_sum

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CALLERS = 20


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    """Start ``rdv serve`` replicas for one test."""
    with replicas(tmp_path) as factory:
        yield factory


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL on a fresh schema for one test."""
    with fresh_schema() as url:
        yield url


async def test_twenty_callers_two_replicas_one_event(
    spawn: Callable[..., Replica], postgres_url: str, tmp_path: Path, radicale: Radicale, agenda: Any
) -> None:
    """20 callers offered the same slots say "le premier" at once on two replicas: one is
    confirmed, 19 are told the slot was taken and offered others; the calendar holds exactly
    one event, the one of the one booking row."""
    path = practice_file(tmp_path, radicale.url, str(agenda.get_display_name()))
    env = {"RDV_DATABASE_URL": postgres_url, "RDV_PRACTICE_FILE": str(path), PASSWORD_ENV: PASSWORD,
           "RDV_SLOT_HOLD_SECONDS": "0", "SESSION_TTL_MINUTES": "15"}
    pair = [spawn(env, name="a"), spawn(env, name="b")]
    ids = [f"conv_cal_race_{i:02d}" for i in range(CALLERS)]
    async with fleet([r.url for r in pair], timeout=60) as calls:

        async def to_slots(i: int) -> str:
            for text in (BOOK, "Jean Dupont", "le matin"):
                answer = await calls.say(i, ids[i], text, caller_phone=PHONE)
            assert answer["state"] == "WAIT_CONFIRM", answer
            return str(answer["reply"])

        proposals = await asyncio.gather(*(to_slots(i) for i in range(CALLERS)))
        assert len(set(proposals)) == 1, "the callers were not offered the same slots"
        answers = await asyncio.gather(*(calls.say(i, ids[i], "le premier", caller_phone=PHONE)
                                         for i in range(CALLERS)))
    winners = [a for a in answers if a["state"] == "CONFIRMED"]
    assert len(winners) == 1 and CONFIRMED_MARK in winners[0]["reply"], [a["state"] for a in answers]
    assert all(a["state"] == "WAIT_CONFIRM" and CONFIRMED_MARK not in a["reply"] for a in answers if a not in winners)

    async with opened_store(postgres_url, tmp_path / "data") as store:
        timelines = await asyncio.gather(*(store.timeline(c) for c in ids))
    booked = [b for t in timelines for b in t["bookings"] if b["cancelled_at"] is None]
    assert len(booked) == 1 and booked[0]["conv_id"] == winners[0]["conv_id"]
    events = [e for e in events_of(agenda) if str(e["UID"]).startswith("rdv-")]
    assert len(events) == 1 and str(events[0]["X-RDV-BOOKING-ID"]) == booked[0]["id"]
    taken = sum(metric_sum(r.metrics(), "rdv_booking_attempts_total", result="slot_taken") for r in pair)
    assert taken == CALLERS - 1
