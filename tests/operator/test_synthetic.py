"""Test traffic (``rdv simulate``, ``rdv probe``) is stored as such and kept out of every
business number: conversion, stats, where calls stop, the alerts' series; it has its own."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from service import stats
from service.config import build_limits
from telemetry import names as n
from tests.operator.conftest import confirmed_call, db_rows, run_simulation


def _counts(body: str, metric: n.Metric) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for f in text_string_to_metric_families(body) for s in f.samples
        if s.name == metric.name and s.value
    }


def test_simulated_calls_count_apart(make_live: Any, tmp_path: Path) -> None:
    """Six simulated callers (three hang up early) and one real booking: the business series,
    the stats, the diagnosis and the log-file diagnosis see one conversation; the simulated
    ones are flagged in the store and counted in rdv_synthetic_conversations_total."""

    async def drive() -> tuple[dict[str, Any], dict[str, Any], str, str]:
        async with make_live() as live:
            summary = await run_simulation(live, "cooperative=3,hangs_up=3", 6, synthetic=True, transport="vapi")
            assert summary["calls"] == 6 and summary["errors"] == 0, summary
            await confirmed_call(live, "conv_real")
            booked = (await live.client.get("/api/stats/bookings")).json()
            diagnosis = (await live.client.get("/api/diagnose")).json()
            return booked, diagnosis, (await live.client.get("/metrics")).text, live.logs.getvalue()

    booked, diagnosis, body, logs = asyncio.run(drive())
    assert booked["total_sessions"] == 1 and booked["synthetic_sessions"] == 6
    assert booked["conversion_rate"] == 100.0 and booked["abandoned_by_state"] == {}
    assert diagnosis["summary"]["conversations"] == 1 and diagnosis["summary"]["synthetic"] == 6
    ended = _counts(body, n.CONVERSATIONS_ENDED)
    assert sum(ended.values()) == 1
    assert _counts(body, n.CONVERSATIONS_STOPPED) == {}
    synthetic = _counts(body, n.SYNTHETIC_CONVERSATIONS)
    assert sum(synthetic.values()) == 6
    assert {dict(k)["outcome"] for k in synthetic} == {"confirmed", "abandoned"}
    assert sum(_counts(body, n.CONVERSATIONS_STARTED).values()) == 1
    assert sum(_counts(body, n.BOOKING_ATTEMPTS).values()) == 1
    flags = dict(db_rows(tmp_path, "SELECT conv_id, synthetic FROM conversations"))
    assert flags.pop("conv_real") == 0 and len(flags) == 6
    assert all(conv.startswith(n.SYNTHETIC_PREFIX) and flag == 1 for conv, flag in flags.items())
    from_logs = stats.diagnose(stats.facts_from_log(logs.splitlines()), None, None, source="logs",
                               limits=build_limits({}))
    assert from_logs["summary"]["conversations"] == 1 and from_logs["summary"]["synthetic"] == 6
