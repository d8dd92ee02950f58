"""``rdv simulate`` leaves a deployment as it found it: it cancels what it booked, never takes
more than its share of the calendar, and runs for a rate and a duration."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service.tools.callers import parse_mix
from service.tools.simulate import SimConfig, simulate
from service.tools.transport import ToolError
from tests.conftest import Live
from tests.reliability.procs import Replica, base_env

ROOT = Path(__file__).resolve().parents[2]
BOOK = "bonjour je voudrais prendre rendez-vous"
# Four half-hour slots over the test clock's Tuesday and Wednesday, nothing else in the horizon.
FOUR_SLOTS = """
[practice]
name = "Petit cabinet"
address = "1 rue du Test, Lyon"
transfer_number = "+33478000000"
timezone = "Europe/Paris"
slot_minutes = 30
min_lead_minutes = 60
horizon_days = 2

[hours]
tuesday = ["14:00-15:00"]
wednesday = ["10:00-11:00"]
"""


def _config(**changes: Any) -> SimConfig:
    base: dict[str, Any] = {
        "url": "http://rdv.test", "calls": 6, "concurrency": 1, "mix": parse_mix("cooperative=1"),
        "transport": "text", "timeout": 60.0, "run_id": "cap", "max_calendar_share": 0.5,
    }
    return SimConfig(**{**base, **changes})


async def _calendar(live: Live) -> dict[str, Any]:
    answer: dict[str, Any] = (await live.client.get("/api/stats/bookings")).json()["calendar"]
    return answer


def test_simulate_stops_at_its_calendar_share_and_cancels_its_bookings(make_live: Any, tmp_path: Path) -> None:
    """Half of four slots: two calls book, the run stops starting calls, cancels both at the end
    and the calendar is empty again; once real callers hold half of it, a run is refused."""
    practice = tmp_path / "practice.toml"
    practice.write_text(FOUR_SLOTS, "utf-8")

    async def drive() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
        async with make_live({"RDV_PRACTICE_FILE": str(practice)}) as live:
            assert await _calendar(live) == {"slots": 4, "booked": 0, "booked_share": 0.0}
            summary = await simulate(_config(), live.client)
            after = await _calendar(live)
            for i in range(2):
                for text in (BOOK, "Jean Dupont", "pas de préférence", "le premier"):
                    answer = await live.say(f"conv_real{i}", text, caller_phone=f"+3362000000{i}")
                assert answer["state"] == "CONFIRMED", answer
            full = await _calendar(live)
            with pytest.raises(ToolError) as refused:
                await simulate(_config(run_id="refused"), live.client)
            return summary, after, full, str(refused.value)

    summary, after, full, refused = asyncio.run(drive())
    assert summary["bookings"] == 2 and summary["calls"] == 2 and summary["stopped_by"] == "calendar_share"
    assert summary["bookings_cancelled"] == 2 and summary["bookings_kept"] == 0
    assert after == {"slots": 4, "booked": 0, "booked_share": 0.0}
    assert full["booked"] == 2
    assert "already 2 of 4 slots booked" in refused and "--max-calendar-share" in refused


def test_simulate_runs_at_a_rate_for_a_duration_against_rdv_serve(tmp_path: Path) -> None:
    """``rdv simulate --rate 10 --duration 1`` as its own process against ``rdv serve``: about
    ten calls start, then no more; the bookings are cancelled and the summary says why it stopped."""
    replica = Replica("rdv", tmp_path, {"RDV_OPERATOR_TOKEN": "tok"})
    replica.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "service.cli", "simulate", "--url", replica.url, "--transport", "text",
             "--rate", "10", "--duration", "1", "--concurrency", "4", "--mix", "cooperative=1",
             "--token", "tok", "--json"],
            cwd=ROOT, env=base_env(tmp_path / "cli", {}), capture_output=True, text=True, timeout=60, check=False,
        )
    finally:
        replica.stop()
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert 8 <= summary["calls"] <= 12 and summary["stopped_by"] == "duration", summary
    assert summary["bookings"] >= 8 and summary["bookings_cancelled"] == summary["bookings"]
    assert summary["duration_seconds"] >= 1, "the run lasts the duration asked for"
