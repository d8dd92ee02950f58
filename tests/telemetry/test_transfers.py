"""Every transfer carries its reason: the ``[TRANSFER]`` line and ``rdv_transfers_total{reason}``."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from telemetry import names as n

BOOK = "bonjour je voudrais prendre rendez-vous"
PHONE = "+33612345678"

CASES = [
    ("caller_asked", [BOOK, "je voudrais parler à quelqu'un"], "QUALIF_NAME"),
    ("recovery_limit", [BOOK, "Jean Dupont", "pas de préférence", "bleu ciel", "bleu ciel", "bleu ciel"],
     "WAIT_CONFIRM"),
]


@pytest.mark.parametrize(("reason", "turns", "state"), CASES, ids=[c[0] for c in CASES])
async def test_a_transfer_logs_and_counts_its_reason(make_live: Any, reason: str, turns: list[str], state: str) -> None:
    """The call ends TRANSFERRED, one ``[TRANSFER]`` line names the reason and the state it left,
    and only that reason's counter moves."""
    async with make_live() as live:
        for text in turns:
            answer = await live.say("conv_t", text, caller_phone=PHONE)
        assert answer["state"] == "TRANSFERRED", answer
        body = (await live.client.get("/metrics")).text
        logs = live.logs.getvalue()
    assert f"[TRANSFER] conv_t, reason={reason}, state={state}" in logs.splitlines()
    assert "[NO_SLOT]" not in logs
    counts = {
        s.labels[n.L_REASON]: s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if s.name == n.TRANSFERS.name and s.labels[n.L_CHANNEL] == "text"
    }
    assert set(counts) == set(n.TRANSFER_REASONS), "every reason starts at 0"
    assert {r: v for r, v in counts.items() if v} == {reason: 1.0}
