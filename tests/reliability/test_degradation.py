"""A store that is down or slow degrades the service gracefully, and recovery is automatic.

The store is the real SQLite store behind :class:`FaultyStore`, a switch that makes its calls
hang or fail: only the fault is injected, everything else is the service under test.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.reliability.conftest import FaultyStore

BOOK = "bonjour je voudrais prendre rendez-vous"
PHONE = "+33612345678"
TIMEOUT = 0.3
ENV = {"RDV_STORE_TIMEOUT_SECONDS": str(TIMEOUT)}


async def turn(live: Any, conv_id: str, text: str, **extra: Any) -> Any:
    """POST one text turn and return the raw response."""
    return await live.client.post(f"/api/conversations/{conv_id}/messages", json={"text": text, **extra})


@pytest.mark.parametrize("mode", ["raise", "hang"])
async def test_store_outage_gives_503_then_recovers(make_live: Any, faulty_store: FaultyStore, mode: str) -> None:
    """Store down or slow: /readyz 503, text turns 503 + Retry-After + JSON error in bounded time;
    back up: ready again and the conversation continues where it was (the failed turn did nothing)."""
    async with make_live(ENV, store=faulty_store) as live:
        assert (await turn(live, "conv_outage", BOOK)).json()["state"] == "QUALIF_NAME"
        faulty_store.mode = mode

        ready = await live.client.get("/readyz")
        assert ready.status_code == 503 and "error" in ready.json()
        assert (await live.client.get("/healthz")).status_code == 200

        # "hang" never answers (an hour): an answer at all is the turn's own deadline at work.
        refused = await asyncio.wait_for(turn(live, "conv_outage", "Jean Dupont"), 60)
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) > 0
        assert refused.headers["content-type"].startswith("application/json")
        assert isinstance(refused.json()["error"], str) and refused.json()["error"]

        faulty_store.mode = "ok"
        assert (await live.client.get("/readyz")).status_code == 200
        answer = await turn(live, "conv_outage", "Jean Dupont")
        assert answer.status_code == 200
        assert answer.json()["state"] == "QUALIF_PREF"
        assert answer.json()["turn"] == 2


@pytest.mark.parametrize("mode", ["raise", "hang"])
async def test_store_outage_on_other_routes_is_a_clean_503(
    make_live: Any, faulty_store: FaultyStore, mode: str
) -> None:
    """Timelines and stats answer 503 with a JSON error, never a 500, while the store is out."""
    async with make_live(ENV, store=faulty_store) as live:
        await turn(live, "conv_other", BOOK)
        faulty_store.mode = mode
        paths = ["/api/conversations/conv_other"]
        if any(getattr(r, "path", "") == "/api/stats/bookings" for r in live.app.routes):
            paths.append("/api/stats/bookings")
        for path in paths:
            response = await live.client.get(path)
            assert response.status_code == 503, (path, response.status_code, response.text)
            assert "error" in response.json()
            assert "retry-after" in response.headers


async def test_failure_after_booking_does_not_lose_the_appointment(
    make_live: Any, faulty_store: FaultyStore
) -> None:
    """The store fails when the booking turn is saved: the caller is told nothing is booked
    (503) and nothing is (the booking is written with the turn or not at all); the retried
    turn books once and confirms."""
    async with make_live(ENV, store=faulty_store) as live:
        for text in (BOOK, "Jean Dupont", "pas de préférence"):
            assert (await turn(live, "conv_half", text, caller_phone=PHONE)).status_code == 200
        faulty_store.fail_on = "save_turn"
        refused = await turn(live, "conv_half", "le premier", caller_phone=PHONE, request_id="k-1")
        assert refused.status_code == 503
        timeline = (await live.client.get("/api/conversations/conv_half")).json()
        assert timeline["bookings"] == [] and timeline["state"] == "WAIT_CONFIRM"
        faulty_store.fail_on = None

        retried = await turn(live, "conv_half", "le premier", caller_phone=PHONE, request_id="k-1")
        assert retried.status_code == 200, retried.text
        answer = retried.json()
        assert answer["state"] == "CONFIRMED", answer
        assert "C'est noté" in answer["reply"]
        timeline = (await live.client.get("/api/conversations/conv_half")).json()
        active = [b for b in timeline["bookings"] if not b.get("cancelled_at")]
        assert len(active) == 1, timeline["bookings"]
