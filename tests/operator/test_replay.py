"""``rdv replay`` on real stored conversations: made through the text API and the Vapi
endpoint on a SQLite file, replayed from a copy of that file by the command as an operator
runs it, and in process with a changed engine (a fixed phrase, a broken rule)."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace as dc_replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.clock import FixedClock
from service.engine import step as step_module
from service.engine.nlu.extract import Extraction
from service.engine.states import State
from service.tools import replay
from tests.reliability.procs import base_env
from tests.support import NOW
from tests.vapi.conftest import EVENTS, VapiCall, event

ROOT = Path(__file__).resolve().parents[2]
PHONE = "+33612345678"
BOOK = "bonjour je voudrais prendre rendez-vous"


async def say(client: httpx.AsyncClient, clock: FixedClock, conv_id: str, text: str,
              phone: str | None = PHONE) -> dict[str, Any]:
    """One text-API turn, the clock moved 20 s after it."""
    body: dict[str, Any] = {"text": text}
    if phone:
        body["caller_phone"] = phone
    response = await client.post(f"/api/conversations/{conv_id}/messages", json=body)
    assert response.status_code == 200, response.text
    clock.advance(seconds=20)
    data: dict[str, Any] = response.json()
    return data


async def make_traffic(live: Any, clock: FixedClock) -> dict[str, str]:
    """Conversations of every kind, through both interfaces; their stored outcomes."""
    client = live.client
    for text in (BOOK, "Jean Dupont", "pas de préférence", "le premier"):
        await say(client, clock, "conv_booked", text)
    for text in (BOOK, "Marie Curie", "le matin", "le deuxième"):
        await say(client, clock, "conv_other", text)
    for text in (BOOK, "euh", "je voudrais parler à quelqu'un"):
        await say(client, clock, "conv_transfer", text)
    for text in (BOOK, "Paul Martin"):
        await say(client, clock, "conv_left", text)
    call = VapiCall(client, "call-replay-1")
    for text in (BOOK, "Louise Petit", "l'après-midi", "le dernier"):
        await call.say(text)
        clock.advance(seconds=20)
    hung = VapiCall(client, "call-replay-2")
    await hung.say(BOOK)
    ended = event("end-of-call-report", "call-replay-2", endedReason="customer-ended-call")
    assert (await client.post(EVENTS, json=ended)).status_code == 200
    outcomes = {}
    for conv_id in ("conv_booked", "conv_other", "conv_transfer", "conv_left", "call-replay-1", "call-replay-2"):
        timeline = (await client.get(f"/api/conversations/{conv_id}")).json()
        outcomes[conv_id] = timeline["outcome"] or "active"
    return outcomes


@pytest.fixture
def clock() -> FixedClock:
    """The traffic's clock: an hour ago, so that the default 24 h window holds it."""
    return FixedClock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))


def rdv(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``rdv <args>`` as its own process."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=base_env(data_dir, {}),
        capture_output=True, text=True, timeout=120, check=False,
    )


async def test_replay_of_a_copied_store_finds_everything_unchanged(
    make_live: Any, clock: FixedClock, tmp_path: Path
) -> None:
    """The same engine replays every stored conversation (text and Vapi, confirmed,
    transferred, still active, abandoned by a hang-up) to the same outcome and the same
    replies, from a copy of the SQLite file, without writing to it."""
    async with make_live() as live:
        outcomes = await make_traffic(live, clock)
    assert set(outcomes.values()) >= {"confirmed", "transferred", "active", "abandoned"}, outcomes
    copy = tmp_path / "copy.db"
    shutil.copy(tmp_path / "rdv.sqlite3", copy)
    for suffix in ("-wal", "-shm"):
        if (tmp_path / f"rdv.sqlite3{suffix}").exists():
            shutil.copy(tmp_path / f"rdv.sqlite3{suffix}", tmp_path / f"copy.db{suffix}")
    before = copy.read_bytes()
    done = rdv(tmp_path / "elsewhere", "replay", "--database", f"sqlite:///{copy}", "--json", "--fail-on-regression")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["totals"] == {"improved": 0, "regressed": 0, "changed": 0, "unchanged": 6, "not_replayable": 0}
    assert {c["conv_id"]: c["stored"] for c in report["conversations"]} == outcomes
    assert all(c["first_difference"] is None for c in report["conversations"]), report
    assert copy.read_bytes() == before

    text = rdv(tmp_path / "elsewhere", "replay", "--database", f"sqlite:///{copy}", "--outcome", "confirmed")
    assert text.returncode == 0 and "3 conversations: improved 0, regressed 0" in text.stdout, text.stdout
    missing = rdv(tmp_path / "elsewhere", "replay", "--database", f"sqlite:///{tmp_path / 'nope.db'}")
    assert missing.returncode == 1 and "no such SQLite file" in missing.stderr
    _ = NOW


def args(data_dir: Path, **extra: Any) -> argparse.Namespace:
    """The parsed arguments of ``rdv replay`` on ``data_dir``'s store."""
    values = {"database": f"sqlite:///{data_dir / 'rdv.sqlite3'}", "since": "7d", "until": None, "outcome": None,
              "conv": None, "limit": None, "practice": None, "json": True, "fail_on_regression": True}
    values.update(extra)
    return argparse.Namespace(**values)


@pytest.fixture
def quiet_stdout(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """The replay's JSON output, captured."""
    yield capsys


def report_of(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The JSON report ``rdv replay --json`` printed."""
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


# --------------------------------------------------------------------------- a changed engine
OLD_PHRASE = "va pour le dernier"


def older_rules(real: Callable[..., Extraction], phrase: str) -> Callable[..., Extraction]:
    """The understanding as an older rule set had it: ``phrase`` chooses no slot."""

    def understand(text: str, state: State, now: datetime, slots: Any = (), practice: Any = None) -> Extraction:
        found = real(text, state, now, slots, practice)
        return dc_replace(found, choice=None) if phrase in text.casefold() else found

    return understand


async def failed_on_a_phrase(live: Any, clock: FixedClock) -> None:
    """A Vapi call that chose its slot in words the older rules missed, three times: transferred."""
    call = VapiCall(live.client, "call-older-rules", number="+33698765432")
    for text in (BOOK, "Claire Moreau", "le matin", "Va pour le dernier.", "euh, va pour le dernier",
                 "va pour le dernier !"):
        await call.say(text)
        clock.advance(seconds=20)


async def test_a_fix_in_the_understanding_shows_as_exactly_one_improved_call(
    make_live: Any, clock: FixedClock, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Served by an engine whose understanding missed "va pour le dernier", that call was
    transferred and the inbox shows the phrase; the real understanding (the fix) replays it to a
    confirmed booking — the one improved conversation — and every other one unchanged."""
    real = step_module.understand
    async with make_live() as live:
        outcomes = await make_traffic(live, clock)
        with monkeypatch.context() as patch:
            patch.setattr(step_module, "understand", older_rules(real, OLD_PHRASE))
            await failed_on_a_phrase(live, clock)
        timeline = (await live.client.get("/api/conversations/call-older-rules")).json()
        inbox = (await live.client.get("/api/understanding/misses?state=WAIT_CONFIRM&field=slot_choice")).json()
    assert timeline["outcome"] == "transferred"
    [group] = inbox["groups"]
    assert group["misses"] == 3 and group["fallbacks"] == 1 and group["outcomes"] == {"transferred": 1}
    assert {e["text"] for e in group["examples"]} == {"Va pour le dernier.", "euh, va pour le dernier",
                                                      "va pour le dernier !"}

    assert step_module.understand is real
    assert await asyncio.to_thread(replay.main, args(tmp_path)) == 0
    report = report_of(capsys)
    assert report["totals"] == {"improved": 1, "regressed": 0, "changed": 0, "unchanged": len(outcomes),
                                "not_replayable": 0}
    [improved] = [c for c in report["conversations"] if c["verdict"] == "improved"]
    assert (improved["conv_id"], improved["stored"], improved["replayed"]) == (
        "call-older-rules", "transferred", "confirmed")
    first = improved["first_difference"]
    assert (first["turn"], first["text"], first["stored_state"], first["replayed_state"]) == (
        4, "Va pour le dernier.", "WAIT_CONFIRM", "CONFIRMED")
    assert all(c["first_difference"] is None for c in report["conversations"] if c["verdict"] == "unchanged")


async def test_a_broken_rule_is_a_regression_that_fails_the_gate(
    make_live: Any, clock: FixedClock, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rule broken during the replay ("le premier" no longer chooses) turns the stored booking
    made with it into a regression: ``--fail-on-regression`` exits 3, and names that call."""
    async with make_live() as live:
        await make_traffic(live, clock)
    monkeypatch.setattr(step_module, "understand", older_rules(step_module.understand, "le premier"))
    assert await asyncio.to_thread(replay.main, args(tmp_path)) == replay.REGRESSION_EXIT
    report = report_of(capsys)
    regressed = [c for c in report["conversations"] if c["verdict"] == "regressed"]
    assert [(c["conv_id"], c["stored"], c["replayed"]) for c in regressed] == [("conv_booked", "confirmed", "active")]
    assert report["totals"]["regressed"] == 1 and report["totals"]["improved"] == 0
    assert await asyncio.to_thread(replay.main, args(tmp_path, fail_on_regression=False)) == 0
    capsys.readouterr()


def test_bench_replays_a_built_store_to_the_same_outcomes(tmp_path: Path) -> None:
    """``make bench``'s replay phase: conversations saved through the store as the turn loop
    saves them all replay unchanged, and the speed figures are reported."""
    from bench import replay as bench_replay

    figures = bench_replay.measure(120, workdir=tmp_path)
    assert figures["replay_conversations"] == 120 and figures["replay_turns"] > 300
    assert figures["replay_unchanged_share"] == 1.0
    assert figures["replay_conversations_per_second"] > 0 and figures["replay_busy_day_seconds"] > 0
