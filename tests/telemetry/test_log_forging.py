"""Values a caller or Vapi controls cannot forge log lines: control characters (newlines,
carriage returns, other C0/C1, U+2028/U+2029) are escaped and the manual's tags are
neutralised inside values, so ``rdv diagnose --logs`` counts nothing forged, while normal
values keep the manual's lines byte for byte."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from service import cli
from telemetry import Telemetry
from telemetry import names as n
from tests.vapi.conftest import EVENTS, VapiCall, call_object

BOOK = "bonjour je voudrais prendre rendez-vous"
FORGED = "[RDV_CONFIRMED] conv_forged, slot=vendredi 7 février 14h, name=Jean Dupont"
BREAKS = ["\n", "\r\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x1e"]


def diagnose(log_path: Path) -> dict[str, Any]:
    """``rdv diagnose --logs FILE --json``, run as the command line runs it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["diagnose", "--logs", str(log_path), "--json", "--limit", "100"]) == 0
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def conv_ids(report: dict[str, Any]) -> set[str]:
    """Every conversation id the diagnosis mentions."""
    return {c["conv_id"] for c in report.get("conversations", [])}


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_forged_ended_reason_and_event_type_are_not_counted(
    make_live: Any, tmp_path: Path, log_format: str
) -> None:
    """An end-of-call report, a status update and an unknown event type carrying line breaks
    and manual-format lines write no line of their own; diagnose sees one call, unconfirmed."""
    async with make_live({"RDV_LOG_FORMAT": log_format}) as live:
        call = VapiCall(live.client, "call-forge")
        await call.say(BOOK)
        reason = "customer-ended-call" + "".join(b + FORGED.replace("conv_forged", f"conv_forged{i}")
                                                 for i, b in enumerate(BREAKS))
        for message in (
            {"type": "status-update", "status": "ended", "endedReason": reason},
            {"type": "end-of-call-report", "endedReason": reason},
            {"type": "x " + FORGED},
            {"type": "x\n" + FORGED.replace("conv_forged", "conv_forged_type")},
        ):
            response = await live.client.post(EVENTS, json={"message": {**message, "call": call_object("call-forge")}})
            assert response.status_code == 200, response.text
        logs = live.logs.getvalue()
    lines = logs.split("\n")
    assert not [line for line in lines if line.startswith(("[RDV_CONFIRMED]", '{"event": "[RDV_CONFIRMED]'))]
    for char in BREAKS[2:]:
        assert char not in logs, f"{char!r} reached the log"
    log_path = tmp_path / "rdv.log"
    log_path.write_text(logs, "utf-8")
    report = diagnose(log_path)
    assert conv_ids(report) == {"call-forge"}, conv_ids(report)
    assert report["summary"]["confirmed"] == 0 and report["summary"]["conversations"] == 1


def test_normal_values_render_byte_for_byte() -> None:
    """The manual's lines are unchanged for ordinary values (accents, quotes, arrows)."""
    stream = io.StringIO()
    telemetry = Telemetry.create(log_format="text", log_pii=True, trace_secret=b"s", version="t", log_stream=stream)
    telemetry.log.info(n.LOG_RDV_CONFIRMED, conv_id="conv_abc123", slot="vendredi 7 février 14h", name="Jean Dupont")
    telemetry.log.info(n.LOG_SLOTS_SENT, conv_id="conv_abc123", channel="voice", length=287,
                       msg="Très bien. J'ai trois créneaux : « vendredi 7 à 14h »…")
    telemetry.log.info(n.LOG_STATE_CHANGE, conv_id="conv_abc123", from_state="START", to_state="QUALIF_NAME")
    assert stream.getvalue().splitlines() == [
        "[RDV_CONFIRMED] conv_abc123, slot=vendredi 7 février 14h, name=Jean Dupont",
        ('[SLOTS_SENT] conv_abc123, channel=voice, length=287, msg="Très bien. J\'ai trois créneaux : '
         '« vendredi 7 à 14h »…"'),
        "[STATE_CHANGE] conv_abc123: START → QUALIF_NAME",
    ]


def test_every_tag_is_screened_by_the_fast_path() -> None:
    """Each manual tag holds "[" or "_", the characters that send a value to the tag search."""
    from telemetry.logs import TEMPLATES, escape_value

    for tag in TEMPLATES:
        assert "[" in tag or "_" in tag, tag
        assert tag not in escape_value(f"x {tag} y"), tag
