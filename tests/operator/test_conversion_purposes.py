"""Conversion is computed over the conversations that came to book or move: cancellations and
information calls are reported apart, the manual's all-sessions rate stays as a second figure,
and the stats, the dashboard's query and the alerts' recording rule give the same number."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from telemetry import alerts as a
from telemetry import dashboards as d
from telemetry import names as n
from tests.conftest import Live
from tests.observability.conftest import ROOT, run, tool
from tests.operator.conftest import confirmed_call, to_slots

CANCEL = "bonjour, je voudrais annuler mon rendez-vous"


async def _traffic(live: Live) -> tuple[dict[str, Any], str]:
    """Two bookings, one failed booking, two cancellations, two information calls."""
    phones = ["+33620000001", "+33620000002"]
    for i, phone in enumerate(phones):
        await confirmed_call(live, f"conv_book{i}", phone)
    await to_slots(live, "conv_lost", caller_phone="+33620000003")
    assert (await live.say("conv_lost", "je veux parler à quelqu'un"))["state"] == "TRANSFERRED"
    for i, phone in enumerate(phones):
        await live.say(f"conv_cancel{i}", CANCEL, caller_phone=phone)
        answer = await live.say(f"conv_cancel{i}", "oui", caller_phone=phone)
        assert answer["state"] == "CANCELLED", answer
    for i in range(2):
        answer = await live.say(f"conv_info{i}", "bonjour, c'est où le cabinet ?", caller_phone="+33620000009")
        assert answer["state"] == "START", answer
        await live.services.turns.end_call(f"conv_info{i}", "customer-ended-call")
    stats = (await live.client.get("/api/stats/bookings")).json()
    return stats, (await live.client.get("/metrics")).text


def test_conversion_counts_booking_conversations_only(make_live: Any, tmp_path: Path) -> None:
    """2 of 3 booking conversations confirmed (66.67 %), the manual's 2 of 7 kept apart, and the
    dashboard's and the recording rule's conversion over the app's own counts agree."""

    async def drive() -> tuple[dict[str, Any], str]:
        async with make_live() as live:
            return await _traffic(live)

    stats, body = asyncio.run(drive())
    assert stats["conversion_rate"] == 66.67 and stats["booking_sessions"] == 3
    assert stats["conversion_rate_all_sessions"] == round(100 * 2 / 7, 2) and stats["total_sessions"] == 7
    assert (stats["cancellations"], stats["information_calls"]) == (2, 2)
    assert stats["purposes"] == {"book": 3, "move": 0, "cancel": 2, "information": 2, "undeclared": 0}
    rate = next(t for t in stats["targets"] if t["key"] == "confirmation_rate")
    assert (rate["count"], rate["of"]) == (2, 3)

    ended = {
        (s.labels["outcome"], s.labels["purpose"]): s.value
        for f in text_string_to_metric_families(body) for s in f.samples
        if s.name == n.CONVERSATIONS_ENDED.name and s.value
    }
    assert ended == {("confirmed", "book"): 2, ("transferred", "book"): 1, ("cancelled", "cancel"): 2,
                     ("abandoned", "information"): 2}

    series = [
        {"series": f'{n.CONVERSATIONS_ENDED.name}{{channel="text",outcome="{o}",purpose="{p}",'
                   'instance="rdv:8000",job="rdv"}',
         "values": f"0x10 {v:g}x120"}
        for (o, p), v in ended.items()
    ]
    unit = {
        "rule_files": [str(ROOT / a.RULES_FILE)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {"expr": d.expand(d.conversion(d.RANGE), range_="1h"), "eval_time": "1h",
                 "exp_samples": [{"labels": "{}", "value": 2 / 3}]},
                {"expr": d.expand(d.conversion_all_sessions(d.RANGE), range_="1h"), "eval_time": "1h",
                 "exp_samples": [{"labels": "{}", "value": 2 / 7}]},
                {"expr": f'{a.record_name("conversion", "ratio")}{{window="1h"}}', "eval_time": "1h",
                 "exp_samples": [{"labels": f'{a.record_name("conversion", "ratio")}{{channel="text",window="1h"}}',
                                  "value": 2 / 3}]},
            ],
        }],
    }
    path = tmp_path / "conversion_test.yml"
    path.write_text(yaml.safe_dump(unit), "utf-8")
    result = run(tool("promtool"), "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
