"""/metrics: the contract's names, bounded labels, exemplars, promtool-clean, multi-worker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import revision
from telemetry import names as n
from tests.support import free_port, wait_ready
from tests.telemetry.conftest import BOOK, PHONE, Captured, book


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` on an exposition."""
    return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30,
                          check=False)


async def test_exposition_passes_promtool_and_matches_contract(make_live: Any, captured: Any) -> None:
    """Every contract metric is exposed (zeros before any call), promtool finds nothing to say."""
    cap: Captured = captured()
    async with make_live(telemetry=cap.telemetry) as live:
        before = (await live.client.get("/metrics")).text
        await book(live, "conv_m1")
        await live.say("conv_m2", BOOK, caller_phone=PHONE)
        await live.say("conv_m2", "je voudrais parler à quelqu'un")
        response = await live.client.get("/metrics")
    assert response.status_code == 200
    checked = promtool_check(response.text)
    assert checked.returncode == 0 and checked.stdout.strip() == "" and checked.stderr.strip() == "", checked
    families = {f.name: f for f in text_string_to_metric_families(before)}
    for metric in n.METRICS:
        base = metric.name.removesuffix("_total")
        assert base in families, metric.name
    zeros = [s for s in families["rdv_conversations_ended"].samples if s.name == "rdv_conversations_ended_total"]
    assert {(s.labels["channel"], s.labels["outcome"], s.labels["purpose"]) for s in zeros} == {
        (c, o, p) for c in n.CHANNELS for o in n.OUTCOMES for p in n.PURPOSES
    }
    assert all(s.value == 0 for s in zeros)
    assert "_created" not in response.text
    assert cap.sample("rdv_conversations_started_total", channel="text") == 2
    assert cap.sample("rdv_conversations_ended_total", channel="text", outcome="confirmed") == 1
    assert cap.sample("rdv_conversations_ended_total", channel="text", outcome="transferred") == 1
    assert cap.sample("rdv_booking_attempts_total", channel="text", result="success") == 1
    assert cap.sample("rdv_state_transitions_total", channel="text", from_state="WAIT_CONFIRM",
                      to_state="CONFIRMED") == 1
    assert cap.sample("rdv_slots_message_length_characters_count", channel="text") == 1
    assert cap.sample("rdv_turn_duration_seconds_count", channel="text") == 6
    assert cap.sample("rdv_conversation_turns_count", channel="text", outcome="confirmed") == 1
    assert cap.sample("rdv_conversation_turns_sum", channel="text", outcome="confirmed") == 4


async def test_active_conversations_are_counted_in_the_store_at_each_scrape(make_live: Any, captured: Any) -> None:
    """The gauge is the store's count of conversations without an outcome, per channel."""
    cap: Captured = captured()
    async with make_live(telemetry=cap.telemetry) as live:
        await live.client.get("/metrics")
        assert cap.sample("rdv_active_conversations", channel="text") == 0
        await live.say("conv_a1", BOOK, caller_phone=PHONE)
        await live.say("conv_a2", BOOK, caller_phone=PHONE, channel="voice")
        await book(live, "conv_a3")
        await live.client.get("/metrics")
        assert cap.sample("rdv_active_conversations", channel="text") == 1
        assert cap.sample("rdv_active_conversations", channel="voice") == 1
        await live.say("conv_a1", "je voudrais parler à quelqu'un")
        text = (await live.client.get("/metrics")).text
        assert 'rdv_active_conversations{channel="text"} 0.0' in text


async def test_labels_stay_bounded(make_live: Any, captured: Any) -> None:
    """No label value is a conversation id, a phone number, a name or free text."""
    cap: Captured = captured()
    async with make_live(telemetry=cap.telemetry) as live:
        await book(live, "conv_secret_id_42")
        await live.say("conv_faq", BOOK, caller_phone=PHONE)
        await live.say("conv_faq", "c'est où votre cabinet")
        body = (await live.client.get("/metrics")).text
    allowed = set(n.CHANNELS) | set(n.OUTCOMES) | set(n.STATES) | set(n.RESULTS) | set(n.FIELDS)
    allowed |= set(n.INTENTS) | set(n.ENDED_REASON_CATEGORIES) | set(n.MISS_FIELDS) | set(n.MISS_REASONS) | {"test"}
    allowed |= set(n.TRANSFER_REASONS) | set(n.PURPOSES) | set(n.CODES) | {revision.engine_revision()}
    allowed |= set(n.CALENDAR_OPERATIONS) | set(n.CALENDAR_RESULTS)
    for family in text_string_to_metric_families(body):
        if not family.name.startswith(n.PREFIX):
            continue
        for sample in family.samples:
            values = {v for k, v in sample.labels.items() if k != "le"}
            assert values <= allowed, (sample.name, values - allowed)
    assert "conv_secret_id_42" not in body and "612345678" not in body and "Dupont" not in body


async def test_openmetrics_carries_trace_exemplars(make_live: Any, captured: Any) -> None:
    """Asked for OpenMetrics, histograms carry the conversation's trace id as an exemplar."""
    cap: Captured = captured()
    async with make_live(telemetry=cap.telemetry) as live:
        await book(live, "conv_ex")
        response = await live.client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    trace_id = cap.telemetry.trace_id_hex("conv_ex")
    lines = [line for line in response.text.splitlines() if line.startswith("rdv_turn_duration_seconds_bucket")]
    assert any(f'# {{trace_id="{trace_id}"}}' in line for line in lines), lines
    slots = [line for line in response.text.splitlines()
             if line.startswith("rdv_slots_message_length_characters_bucket")]
    assert any(trace_id in line for line in slots)
    assert response.text.rstrip().endswith("# EOF")


@pytest.mark.slow
def test_two_workers_aggregate_counts(tmp_path: Path) -> None:
    """``rdv serve --workers 2``: turns land on both processes, /metrics counts them all once."""
    port = free_port()
    env = {**os.environ, "RDV_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, proc)
        for i in range(30):
            with httpx.Client(base_url=base, timeout=10) as client:  # new connection: either worker
                r = client.post(f"/api/conversations/conv_w{i}/messages", json={"text": BOOK})
                assert r.status_code == 200
        body = httpx.get(f"{base}/metrics", timeout=10).text
        checked = promtool_check(body)
        assert checked.returncode == 0, checked
        started = re.search(r'^rdv_conversations_started_total\{channel="text"\} (\S+)$', body, re.MULTILINE)
        assert started and float(started.group(1)) == 30
        build_info = r'^rdv_build_info\{(?=[^}]*version="[^"]+")(?=[^}]*engine_revision="[0-9a-f]{12}")[^}]*\} 1\.0$'
        assert re.search(build_info, body, re.MULTILINE)
        files = list((tmp_path / "data" / "prometheus-multiproc").glob("counter_*.db"))
        pids = {f.stem.split("_")[-1] for f in files}
        assert len(pids) == 2, files
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()
