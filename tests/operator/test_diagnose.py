"""The diagnosis names the right dominant failure pattern for each simulated incident, the
same from the store (``/api/diagnose``, ``rdv diagnose --store``) and from the service's own
log file (``rdv diagnose --logs``), and from an older engine's log of the seed's format."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from service import cli
from service.config import build_limits
from tests.conftest import Live
from tests.operator.conftest import (
    BOOK,
    PHONE,
    apply_suggestion,
    confirmed_call,
    run_simulation,
    to_slots,
)


async def _background(live: Live) -> None:
    """Two calls that book, so the incident is not the only thing in the window."""
    for i in range(2):
        await confirmed_call(live, f"conv_ok{i}", f"+3362000000{i}")


async def _choice_not_understood(live: Live, conv_id: str) -> None:
    """A caller whose slot choice is never understood: recovery limit, then transfer."""
    await to_slots(live, conv_id, caller_phone=PHONE)
    for _ in range(3):
        answer = await live.say(conv_id, "bleu ciel", caller_phone=PHONE)
    assert answer["state"] == "TRANSFERRED"


async def races(live: Live) -> None:
    """Pairs of callers choosing the same first slot at once, with no re-proposal allowed."""
    summary = await run_simulation(live, "racer=6", 6, concurrency=3)
    assert summary["outcomes"]["transferred"] >= 3, summary
    await _choice_not_understood(live, "conv_other")


async def phone_failures(live: Live) -> None:
    """Callers with a withheld number who cannot give a usable one."""
    summary = await run_simulation(live, "bad_phone=3", 3)
    assert summary["outcomes"]["transferred"] == 3, summary
    await _choice_not_understood(live, "conv_other")


async def _faq_then_gone(live: Live, conv_id: str) -> None:
    """A caller who asks where the practice is while choosing a slot, then hangs up."""
    await to_slots(live, conv_id, caller_phone=PHONE)
    answer = await live.say(conv_id, "au fait c'est où le cabinet ?", caller_phone=PHONE)
    assert answer["state"] == "WAIT_CONFIRM"
    await live.services.turns.end_call(conv_id, "customer-ended-call")


async def loops(live: Live) -> None:
    """Callers who only hesitate until the anti-loop guard (5 turns here) offers the menu."""
    for i in range(3):
        await live.say(f"conv_loop{i}", BOOK)
        for _ in range(5):
            answer = await live.say(f"conv_loop{i}", "euh")
        assert answer["state"] == "INTENT_ROUTER", answer
    await _faq_then_gone(live, "conv_other")  # short enough to stay under the anti-loop


async def expiries(live: Live) -> None:
    """Callers who go silent at the slot choice until their session expires."""
    for i in range(3):
        await to_slots(live, f"conv_idle{i}", caller_phone=PHONE)
    await _choice_not_understood(live, "conv_other")
    live.services.clock.advance(minutes=16)
    assert await live.services.turns.reap("test") == 3


async def recoveries(live: Live) -> None:
    """Callers whose slot choice is never understood; one phone failure besides."""
    for i in range(3):
        await _choice_not_understood(live, f"conv_choice{i}")
    await run_simulation(live, "bad_phone=1", 1)


async def faq_then_gone(live: Live) -> None:
    """Callers who ask where the practice is while choosing, then hang up."""
    for i in range(3):
        await _faq_then_gone(live, f"conv_faq{i}")
    await _choice_not_understood(live, "conv_other")


@dataclass(frozen=True)
class Incident:
    """A simulated production incident and what the diagnosis must say about it."""

    name: str
    drive: Callable[[Live], Awaitable[None]]
    pattern: str
    constant: str | None
    env: dict[str, str]


INCIDENTS = [
    Incident("races", races, "slot_taken", "BOOKING_RETRY_MAX",
             {"BOOKING_RETRY_MAX": "0", "RDV_SLOT_HOLD_SECONDS": "0"}),
    Incident("phones", phone_failures, "phone_recovery", "RECOVERY_LIMITS", {}),
    Incident("loops", loops, "anti_loop", "MAX_TURNS_ANTI_LOOP", {"MAX_TURNS_ANTI_LOOP": "5"}),
    Incident("expiries", expiries, "session_expired", "SESSION_TTL_MINUTES", {}),
    Incident("recoveries", recoveries, "recovery_limit", "RECOVERY_LIMITS", {}),
    Incident("faq", faq_then_gone, "faq_wait_confirm", None, {}),
]


def run_cli(capsys: Any, *args: str) -> tuple[int, str]:
    """``rdv <args>`` in this process; its exit code and standard output."""
    code = cli.main(list(args))
    return code, capsys.readouterr().out


@pytest.mark.parametrize("incident", INCIDENTS, ids=[i.name for i in INCIDENTS])
async def test_dominant_pattern_from_store_and_from_logs(
    make_live: Any, tmp_path: Path, capsys: Any, monkeypatch: Any, incident: Incident
) -> None:
    """The store and the service's log file name the incident's pattern, its constant, and
    the same cause for every conversation."""
    async with make_live(incident.env) as live:
        await _background(live)
        await incident.drive(live)
        answer = await live.client.get("/api/diagnose?limit=1000")
        until = live.services.clock.now().isoformat()
        log = tmp_path / "rdv.log"
        log.write_text(live.logs.getvalue(), encoding="utf-8")
    assert answer.status_code == 200, answer.text
    store = answer.json()
    dominant = store["dominant"]
    assert dominant is not None and dominant["pattern"] == incident.pattern, store["causes"]
    assert dominant["constant"] == incident.constant
    if incident.constant is not None:
        # Built from the service's settings (the incident's), and never the value in force.
        after = build_limits(apply_suggestion(incident.env, dominant["suggestion"]))
        assert after != build_limits(incident.env), dominant["suggestion"]
        for var, value in incident.env.items():
            if var == incident.constant:
                assert f"from {value} to" in dominant["suggestion"], dominant
    assert dominant["conversations"] >= 3 and store["causes"][incident.pattern] == dominant["conversations"]
    assert len(store["causes"]) >= 2, "a second, smaller cause is in the window"
    assert store["summary"]["confirmed"] >= 2

    code, out = await asyncio.to_thread(run_cli, capsys, "diagnose", "--logs", str(log), "--json", "--limit", "1000")
    assert code == 0
    logged = json.loads(out)
    assert logged["dominant"]["pattern"] == incident.pattern
    by_conv = {c["conv_id"]: (c["cause"], c["final_state"], c["turns"]) for c in logged["conversations"]}
    assert by_conv == {c["conv_id"]: (c["cause"], c["final_state"], c["turns"]) for c in store["conversations"]}
    assert logged["final_states"] == store["final_states"]

    monkeypatch.setenv("RDV_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RDV_DATABASE_URL", raising=False)
    code, out = await asyncio.to_thread(run_cli, capsys, "diagnose", "--store", "--until", until)
    assert code == 0
    assert f"Dominant failure pattern: {incident.pattern}" in out
    assert (incident.constant or "practice file [faq]") in out


async def test_json_logs_give_the_same_diagnosis(make_live: Any, tmp_path: Path, capsys: Any) -> None:
    """In JSON log mode the same lines (message field) give the same causes."""
    async with make_live({"RDV_LOG_FORMAT": "json"}) as live:
        await _background(live)
        await phone_failures(live)
        store = (await live.client.get("/api/diagnose")).json()
        log = tmp_path / "rdv.json.log"
        log.write_text(live.logs.getvalue(), encoding="utf-8")
    assert log.read_text().lstrip().startswith("{")
    code, out = await asyncio.to_thread(run_cli, capsys, "diagnose", "--logs", str(log), "--json")
    logged = json.loads(out)
    assert code == 0 and logged["causes"] == store["causes"] == {"phone_recovery": 3, "recovery_limit": 1}


OLD_ENGINE_LOG = """\
2026-02-07T10:00:01Z [FLOW] conv_a1, state=START, turn=0
2026-02-07T10:00:01Z [STATE_CHANGE] conv_a1: START → QUALIF_NAME
2026-02-07T10:00:09Z [FLOW] conv_a1, state=QUALIF_NAME, turn=1
2026-02-07T10:00:09Z [STATE_CHANGE] conv_a1: QUALIF_NAME → QUALIF_PREF
2026-02-07T10:00:15Z [FLOW] conv_a1, state=QUALIF_PREF, turn=2
2026-02-07T10:00:15Z [STATE_CHANGE] conv_a1: QUALIF_PREF → WAIT_CONFIRM
2026-02-07T10:00:15Z [SLOTS_SENT] conv_a1, channel=voice, length=287, msg="Très bien. J'ai trois créneaux..."
2026-02-07T10:00:30Z [FLOW] conv_a1, state=WAIT_CONFIRM, turn=3
2026-02-07T10:00:30Z [BOOKING_ATTEMPT] conv_a1, slot_idx=1
2026-02-07T10:00:30Z [BOOKING_RESULT] conv_a1, success=True
2026-02-07T10:00:30Z [RDV_CONFIRMED] conv_a1, slot=vendredi 7 février 14h, name=Jean Dupont
2026-02-07T11:00:01Z [FLOW] conv_b2, state=START, turn=0
2026-02-07T11:00:01Z [STATE_CHANGE] conv_b2: START → QUALIF_NAME
2026-02-07T11:00:07Z [FLOW] conv_b2, state=QUALIF_NAME, turn=1
2026-02-07T11:00:07Z [STATE_CHANGE] conv_b2: QUALIF_NAME → QUALIF_PREF
2026-02-07T11:00:12Z [FLOW] conv_b2, state=QUALIF_PREF, turn=2
2026-02-07T11:00:12Z [STATE_CHANGE] conv_b2: QUALIF_PREF → WAIT_CONFIRM
2026-02-07T11:00:12Z [SLOTS_SENT] conv_b2, channel=voice, length=412, msg="Très bien. J'ai trois créneaux : Vendredi 07/02 - 14:00, Vendredi 07/02 - 15:30, Samedi 08/02 - 09:00..."
2026-02-07T11:00:20Z [FLOW] conv_b2, state=WAIT_CONFIRM, turn=3
2026-02-07T11:00:20Z [INTERRUPTION] conv_b2, slot_idx=2
2026-02-07T12:00:01Z [FLOW] conv_c3, state=START, turn=0
2026-02-07T12:00:01Z [STATE_CHANGE] conv_c3: START → QUALIF_NAME
2026-02-07T12:00:05Z [FLOW] conv_c3, state=QUALIF_NAME, turn=1
2026-02-07T12:00:05Z [STATE_CHANGE] conv_c3: QUALIF_NAME → QUALIF_PREF
2026-02-07T12:00:10Z [FLOW] conv_c3, state=QUALIF_PREF, turn=2
2026-02-07T12:00:10Z [STATE_CHANGE] conv_c3: QUALIF_PREF → WAIT_CONFIRM
2026-02-07T12:00:10Z [SLOTS_SENT] len=398 conv_id=conv_c3
2026-02-07T13:00:01Z [FLOW] conv_d4, state=START, turn=0
2026-02-07T13:00:01Z [STATE_CHANGE] conv_d4: START → QUALIF_NAME
2026-02-07T13:00:04Z [FLOW] conv_d4, state=QUALIF_NAME, turn=1
2026-02-07T13:00:04Z [STATE_CHANGE] conv_d4: QUALIF_NAME → QUALIF_PREF
2026-02-07T13:00:09Z [FLOW] conv_d4, state=QUALIF_PREF, turn=2
2026-02-07T13:00:09Z [STATE_CHANGE] conv_d4: QUALIF_PREF → WAIT_CONFIRM
2026-02-07T13:00:09Z [SLOTS_SENT] conv_d4, channel=voice, length=455, msg="Très bien. J'ai trois créneaux..."
2026-02-07T13:00:15Z [FLOW] conv_d4, state=WAIT_CONFIRM, turn=3
2026-02-07T13:00:15Z [BOOKING_ATTEMPT] conv_d4, slot_idx=1
2026-02-07T13:00:15Z [BOOKING_RESULT] conv_d4, success=False
2026-02-07T13:00:15Z [BOOKING_RETRY] conv_d4, retry=1, preference=afternoon
2026-02-07T13:00:15Z [SLOTS_SENT] conv_d4, channel=voice, length=430, msg="Ce créneau vient d'être pris..."
2026-02-07T14:00:01Z [FLOW] conv_e5, state=START, turn=0
2026-02-07T14:00:01Z [STATE_CHANGE] conv_e5: START → QUALIF_NAME
2026-02-07T14:00:09Z [FLOW] conv_e5, state=QUALIF_NAME, turn=1
2026-02-07T14:00:09Z [STATE_CHANGE] conv_e5: QUALIF_NAME → QUALIF_PREF
2026-02-07T14:00:12Z [FLOW] conv_e5, state=QUALIF_PREF, turn=2
2026-02-07T14:00:12Z [STATE_CHANGE] conv_e5: QUALIF_PREF → WAIT_CONFIRM
2026-02-07T14:00:12Z [SLOTS_SENT] conv_e5, channel=voice, length=420, msg="Très bien..."
2026-02-07T14:00:20Z [FLOW] conv_e5, state=WAIT_CONFIRM, turn=3
2026-02-07T14:00:20Z [STATE_CHANGE] conv_e5: WAIT_CONFIRM → TRANSFERRED
"""  # noqa: E501 - a log line of the old engine, kept whole


async def test_old_engine_log_names_long_slot_messages(tmp_path: Path, capsys: Any) -> None:
    """An older engine's seed-format log (no end lines, ``len=`` spelling, platform timestamps):
    long slot lists interrupted or abandoned dominate; the window keeps only recent lines."""
    log = tmp_path / "railway.log"
    log.write_text(OLD_ENGINE_LOG, encoding="utf-8")
    code, out = await asyncio.to_thread(run_cli, capsys, "diagnose", "--logs", str(log), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["dominant"]["pattern"] == "long_slot_message"
    assert report["dominant"]["constant"] == "SLOTS_MESSAGE_MAX_CHARS"
    causes = {c["conv_id"]: c["cause"] for c in report["conversations"]}
    assert causes == {
        "conv_a1": "confirmed", "conv_b2": "long_slot_message", "conv_c3": "long_slot_message",
        "conv_d4": "slot_taken", "conv_e5": "long_slot_message",
    }
    assert report["final_states"] == {"WAIT_CONFIRM": 3, "TRANSFERRED": 1}
    long_share = next(t for t in report["targets"] if t["key"] == "long_slot_message_rate")
    assert (long_share["count"], long_share["of"], long_share["meets"]) == (5, 6, False)
    turns = {c["conv_id"]: c["turns"] for c in report["conversations"]}
    assert turns["conv_a1"] == 4 and turns["conv_c3"] == 3

    code, out = await asyncio.to_thread(
        run_cli, capsys, "diagnose", "--logs", str(log), "--window", "90m", "--until", "2026-02-07T14:30:00Z",
    )
    assert code == 0
    assert "Conversations 2 ·" in out and "conv_a1" not in out and "conv_e5" in out


async def test_human_output_names_the_action(make_live: Any, tmp_path: Path, capsys: Any) -> None:
    """The default output is a readable table with the dominant pattern, action and constant."""
    async with make_live({"BOOKING_RETRY_MAX": "0", "RDV_SLOT_HOLD_SECONDS": "0"}) as live:
        await races(live)
        log = tmp_path / "rdv.log"
        log.write_text(live.logs.getvalue(), encoding="utf-8")
    code, out = await asyncio.to_thread(run_cli, capsys, "diagnose", "--logs", str(log))
    assert code == 0
    assert "Targets (seed §5.7)" in out and "MISSED" in out
    assert "Dominant failure pattern: slot_taken" in out
    assert "Constant: BOOKING_RETRY_MAX" in out
    assert "Final state of non-confirmed conversations" in out


def test_diagnose_refuses_what_it_cannot_read(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    """A missing store or log file, or a bad window, is a clear error (exit 1), not a trace."""
    monkeypatch.setenv("RDV_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.delenv("RDV_DATABASE_URL", raising=False)
    assert cli.main(["diagnose", "--store"]) == 1
    assert "no SQLite store" in capsys.readouterr().err
    assert cli.main(["diagnose", "--logs", str(tmp_path / "missing.log")]) == 1
    assert "missing.log" in capsys.readouterr().err
    assert cli.main(["diagnose", "--logs", "-", "--window", "forever"]) == 1
    assert "1h, 24h or 7d" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists(), "diagnosing creates no store"
