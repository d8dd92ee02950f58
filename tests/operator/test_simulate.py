"""``rdv simulate`` through the real Vapi interface of a live app, and its time bound."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.tools.callers import parse_mix
from service.tools.simulate import SimConfig, render, simulate
from tests.operator.conftest import db_rows, run_simulation


async def test_vapi_callers_book_race_barge_in_and_end_every_call(make_live: Any, tmp_path: Path) -> None:
    """Fifteen callers over the custom-LLM endpoint: every call is stored under its call id
    with its end-of-call reason, barge-ins are seen as such, racers lose races, and the
    summary's bookings are the store's confirmed conversations."""
    pytest.importorskip("service.vapi.routes", reason="the Vapi adapter is not available")
    mix = "cooperative=4,interrupts=3,racer=4,hangs_up=2,faq=2"
    async with make_live({"RDV_SLOT_HOLD_SECONDS": "0"}) as live:  # holds off: racers must be offered the same slots
        summary = await run_simulation(live, mix, 15, transport="vapi", concurrency=5, run_id="v")
    assert summary["calls"] == 15 and sum(summary["outcomes"].values()) == 15
    assert summary["errors"] == 0 and summary["outcomes"]["timeout"] == 0
    assert summary["outcomes"]["hung_up"] == 2
    assert summary["latency_ms"]["p50"] > 0 and summary["latency_ms"]["p99"] >= summary["latency_ms"]["p50"]
    convs = db_rows(tmp_path, "SELECT conv_id, vapi_call_id, outcome, ended_reason FROM conversations")
    assert sorted(c for c, *_ in convs) == [f"sim-v-{i:05d}" for i in range(15)]
    assert all(call == conv for conv, call, *_ in convs)
    assert all(reason for *_, reason in convs), "every call ended with an end-of-call report"
    assert sum(1 for _, _, outcome, _ in convs if outcome == "confirmed") == summary["bookings"]
    kinds = [k for k, in db_rows(tmp_path, "SELECT kind FROM events")]
    assert kinds.count("Interrupted") == 3, "each interrupting caller's choice is a barge-in"
    rows = db_rows(tmp_path, "SELECT data FROM events WHERE kind = 'BookingResulted'")
    results = [json.loads(d)["result"] for d, in rows]
    assert results.count("slot_taken") >= 2, "each pair of racers loses one race"
    table = render(summary)
    assert "bookings" in table and "p99" in table and "racer" in table


async def test_run_is_bounded_by_its_timeout() -> None:
    """A service that never answers: the run stops at --timeout, every call counts as a
    timeout, and each started call still gets its end-of-call report."""
    reports: list[dict[str, Any]] = []
    never = asyncio.Event()

    async def never_answers(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/vapi/events":
            body = json.loads(request.content)
            if body["message"]["type"] == "end-of-call-report":
                reports.append(body["message"])
            return httpx.Response(200, json={})
        await never.wait()  # never set: only the run's own --timeout ends this call
        return httpx.Response(500)

    config = SimConfig(url="http://127.0.0.1:9", calls=6, concurrency=3, mix=parse_mix("cooperative=1"),
                       transport="vapi", timeout=0.5, run_id="slow")
    async with httpx.AsyncClient(transport=httpx.MockTransport(never_answers)) as client:
        # A guard against a hang only: without the run's timeout this would wait forever.
        summary = await asyncio.wait_for(simulate(config, client), 60)
    assert summary["outcomes"]["timeout"] == 6 and summary["bookings"] == 0
    assert len(reports) == 3, "the three calls in flight were ended"
    assert {r["endedReason"] for r in reports} == {"exceeded-max-duration"}
    assert all(r["call"]["id"].startswith("synthetic-sim-slow-") and r["artifact"]["transcript"] for r in reports)


async def test_service_errors_are_counted_not_raised(make_live: Any) -> None:
    """A refused request (here a text-API conversation id the service rejects) is an error
    in the summary, with its message."""
    async with make_live() as live:
        config = SimConfig(url="http://rdv.test", calls=2, concurrency=2, mix=parse_mix("cooperative=1"),
                           transport="text", timeout=10, run_id="bad.id")
        summary = await simulate(config, live.client)
    assert summary["outcomes"]["error"] == 2 and summary["errors"] == 2
    assert any("HTTP 400" in e for e in summary["error_samples"])
