"""The seed's log lines, byte for byte, and its grep recipes run unchanged with a real shell."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.telemetry.conftest import BOOK, PHONE, Captured, book


def sh(recipe: str, log: Path) -> str:
    """Run one of the seed's recipes on ``log`` (``railway logs …`` becomes ``cat log``)."""
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; cat {log} | {recipe} || true"],
        capture_output=True, text=True, check=True, timeout=20,
    )
    return done.stdout


async def drive_day(live: Any) -> dict[str, str]:
    """A small day of calls with known outcomes; returns conv id → expected outcome."""
    expected = {}
    for i in range(3):
        assert (await book(live, f"conv_ok{i}"))["state"] == "CONFIRMED"
        expected[f"conv_ok{i}"] = "confirmed"
    await live.say("conv_human", BOOK, caller_phone=PHONE)
    assert (await live.say("conv_human", "je voudrais parler à quelqu'un"))["state"] == "TRANSFERRED"
    expected["conv_human"] = "transferred"
    await live.say("conv_left", BOOK, caller_phone=PHONE)
    await live.say("conv_left", "Jean Dupont", caller_phone=PHONE)
    expected["conv_left"] = "open"
    return expected


async def test_seed_recipes_count_right(make_live: Any, captured: Any, tmp_path: Path) -> None:
    """Sections 1, 5.3 and 5.6 of the manual: sessions, confirmations, transfers, last state."""
    cap: Captured = captured()
    async with make_live(telemetry=cap.telemetry) as live:
        expected = await drive_day(live)
    log = tmp_path / "rdv.log"
    log.write_text(cap.logs.getvalue())

    confirmed = sum(1 for v in expected.values() if v == "confirmed")
    assert sh('grep "\\[RDV_CONFIRMED\\]" | wc -l', log).strip() == str(confirmed)
    assert sh('grep "\\[FLOW\\]" | grep "state=START" | wc -l', log).strip() == str(len(expected))
    sessions = sh('grep "\\[FLOW\\]" | grep "state=START" | cut -d\',\' -f1', log).split("\n")
    assert sorted(s for s in sessions if s) == sorted(f"[FLOW] {c}" for c in expected)
    transfers = sh('grep "\\[STATE_CHANGE\\].*TRANSFERRED" | grep -v "CONFIRMED"', log).strip().splitlines()
    assert transfers == ["[STATE_CHANGE] conv_human: QUALIF_NAME → TRANSFERRED"]
    last = sh('grep "conv_left" | grep "\\[STATE_CHANGE\\]" | tail -1', log).strip()
    assert last == "[STATE_CHANGE] conv_left: QUALIF_NAME → QUALIF_PREF"
    assert sh('grep "conv_ok1" | grep "\\[RDV_CONFIRMED\\]"', log).startswith("[RDV_CONFIRMED] conv_ok1, slot=")
    flow = sh('grep -E "\\[FLOW\\]|\\[STATE_CHANGE\\]|\\[BOOKING_|\\[RDV_CONFIRMED\\]"', log).splitlines()
    assert "[BOOKING_ATTEMPT] conv_ok0, slot_idx=1" in flow
    assert "[BOOKING_RESULT] conv_ok0, success=True" in flow
    assert flow[:3] == [
        "[FLOW] conv_ok0, state=START, turn=0",
        "[STATE_CHANGE] conv_ok0: START → QUALIF_NAME",
        "[FLOW] conv_ok0, state=QUALIF_NAME, turn=1",
    ]


async def test_slot_message_and_race_recipes(make_live: Any, captured: Any, tmp_path: Path) -> None:
    """5.4 and 5.6: ``[SLOTS_SENT]`` lengths, long messages, ``success=False`` of a lost race."""
    cap: Captured = captured()
    async with make_live({"RDV_SLOT_HOLD_SECONDS": "0"}, telemetry=cap.telemetry) as live:
        for conv in ("conv_a", "conv_b"):
            for text in (BOOK, "Jean Dupont", "pas de préférence"):
                await live.say(conv, text, caller_phone=PHONE)
        assert (await live.say("conv_a", "le premier", caller_phone=PHONE))["state"] == "CONFIRMED"
        raced = await live.say("conv_b", "le premier", caller_phone=PHONE)
        assert raced["state"] == "WAIT_CONFIRM"
    log = tmp_path / "rdv.log"
    log.write_text(cap.logs.getvalue())

    sent = sh('grep "\\[SLOTS_SENT\\]"', log).splitlines()
    assert len(sent) == 3  # two proposals, then new slots after the lost race
    pattern = re.compile(r'^\[SLOTS_SENT\] (conv_[ab]), channel=text, length=(\d+), msg="(.*)"$')
    for line in sent:
        match = pattern.match(line)
        assert match, line
        assert len(match.group(3)) <= 200 + match.group(3).count('\\"')
    failed = sh('grep "\\[BOOKING_RESULT\\]" | grep "success=False"', log).strip().splitlines()
    assert failed == ["[BOOKING_RESULT] conv_b, success=False"]
    assert sh('grep "\\[BOOKING_RESULT\\].*success=False"', log).strip() == failed[0]
    assert sh('grep "\\[BOOKING_RETRY\\]"', log).startswith("[BOOKING_RETRY] conv_b, retry=1, preference=")
    lengths = [int(pattern.match(line).group(2)) for line in sent]  # type: ignore[union-attr]
    long_ones = sh('grep "\\[SLOTS_SENT\\]" | grep "length=[4-9][0-9][0-9]"', log).splitlines()
    assert len(long_ones) == sum(1 for n in lengths if 400 <= n <= 999)


async def test_recovery_filler_override_and_anti_loop_lines(make_live: Any, captured: Any, tmp_path: Path) -> None:
    """The lower-case tags: filler_detected, recovery_limit_reached, intent_override, [ANTI_LOOP]."""
    cap: Captured = captured()
    async with make_live({"MAX_TURNS_ANTI_LOOP": "6"}, telemetry=cap.telemetry) as live:
        await live.say("conv_f", BOOK, caller_phone=PHONE)
        await live.say("conv_f", "euh")
        await live.say("conv_f", "je sais pas")
        await live.say("conv_f", "pourquoi")  # why the name is needed: said once, not counted
        await live.say("conv_f", "je sais pas")
        await live.say("conv_o", BOOK, caller_phone=PHONE)
        await live.say("conv_o", "je voudrais annuler mon rendez-vous")
        await live.say("conv_l", BOOK, caller_phone=PHONE)
        for _ in range(7):
            await live.say("conv_l", "euh")
    log = tmp_path / "rdv.log"
    log.write_text(cap.logs.getvalue())
    assert "filler_detected conv_f, state=QUALIF_NAME" in sh('grep "filler_detected"', log)
    assert sh('grep "recovery_limit_reached"', log).startswith(
        "recovery_limit_reached conv_f, field=name, attempts=2, to=TRANSFERRED"
    )
    assert "intent_override conv_o, state=QUALIF_NAME, intent=cancel" in sh('grep "intent_override"', log)
    assert sh('grep "\\[ANTI_LOOP\\]"', log).startswith("[ANTI_LOOP] conv_l, turn=7, max_turns=6")


async def test_session_expired_line(make_live: Any, captured: Any, clock: Any) -> None:
    """An idle conversation reaped past its TTL logs ``SESSION_EXPIRED`` with its state."""
    cap: Captured = captured()
    async with make_live(telemetry=cap.telemetry) as live:
        await live.say("conv_idle", BOOK, caller_phone=PHONE)
        clock.advance(minutes=31)
        assert await live.services.turns.reap("test") == 1
    lines = [line for line in cap.lines() if line.startswith("SESSION_EXPIRED")]
    assert lines == ["SESSION_EXPIRED conv_idle, state=QUALIF_NAME, idle_s=1860"]
    assert cap.sample("rdv_session_expiries_total", channel="text") == 1


async def test_json_mode_same_text_every_value_a_key(make_live: Any, captured: Any, tmp_path: Path) -> None:
    """RDV_LOG_FORMAT=json: the seed text in ``event``, each value its own key, trace and span ids."""
    text_cap: Captured = captured()
    json_cap: Captured = captured(log_format="json")
    for cap, data in ((text_cap, "text"), (json_cap, "json")):
        async with make_live({"RDV_DATA_DIR": str(tmp_path / data)}, telemetry=cap.telemetry) as live:
            await book(live, "conv_json")
    records = [json.loads(line) for line in json_cap.lines()]
    texts = [line for line in text_cap.lines() if not line.startswith("config_warning")]
    assert [r["event"] for r in records if r["tag"] != "config_warning"] == texts
    conv_records = [r for r in records if r.get("conv_id") == "conv_json"]
    trace_id = json_cap.telemetry.trace_id_hex("conv_json")
    assert conv_records and all(r["trace_id"] == trace_id for r in conv_records)
    assert all(re.fullmatch(r"[0-9a-f]{16}", r["span_id"]) for r in conv_records)
    sent = next(r for r in conv_records if r["tag"] == "[SLOTS_SENT]")
    assert isinstance(sent["length"], int) and sent["channel"] == "text"
    result = next(r for r in conv_records if r["tag"] == "[BOOKING_RESULT]")
    assert result["success"] is True


async def test_names_and_phones_masked_unless_turned_off(make_live: Any, captured: Any, tmp_path: Path) -> None:
    """By default the confirmed name is masked; RDV_LOG_PII=true shows it as the seed does."""
    masked: Captured = captured()
    async with make_live(telemetry=masked.telemetry) as live:
        await book(live, "conv_pii")
        await live.say("conv_ph", BOOK)
        await live.say("conv_ph", "je voudrais parler à quelqu'un au 06 12 34 56 78")
    text = masked.logs.getvalue()
    assert "Jean Dupont" not in text and "Dupont" not in text
    assert "name=J*** D***" in text
    assert "06 12 34 56 78" not in text and "0612345678" not in text
    clear: Captured = captured(log_pii=True)
    async with make_live({"RDV_DATA_DIR": str(tmp_path / "clear")}, telemetry=clear.telemetry) as live:
        await book(live, "conv_pii")
    assert re.search(r"\[RDV_CONFIRMED\] conv_pii, slot=.+, name=Jean Dupont$", clear.logs.getvalue(), re.MULTILINE)
