"""A full calendar is named everywhere: the log line, the transfer reason, ``rdv diagnose``, the
dashboard's transfer query and the no-slot alert (evaluated by promtool on the app's own counts)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from telemetry import alerts as a
from telemetry import dashboards as d
from telemetry import names as n
from tests.conftest import Live
from tests.observability.conftest import ROOT, run, tool

BOOK = "bonjour je voudrais prendre rendez-vous"
# Two half-hour slots on the test clock's Tuesday, none on any other day of the horizon.
TINY_PRACTICE = """
[practice]
name = "Cabinet complet"
address = "1 rue du Test, Lyon"
transfer_number = "+33478000000"
timezone = "Europe/Paris"
slot_minutes = 30
min_lead_minutes = 60
horizon_days = 1

[hours]
tuesday = ["14:00-15:00"]
"""
BOOKED = 2
NO_SLOT_CALLERS = 20


async def _call(live: Live, conv_id: str, phone: str, *turns: str) -> dict[str, Any]:
    answer: dict[str, Any] = {}
    for text in (BOOK, *turns):
        answer = await live.say(conv_id, text, caller_phone=phone)
    return answer


def _samples(body: str, metric: n.Metric) -> dict[tuple[tuple[str, str], ...], float]:
    """The non-zero samples of ``metric`` in a ``/metrics`` body, by label set."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == metric.name and sample.value:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def _series(samples: dict[tuple[tuple[str, str], ...], float], metric: n.Metric) -> list[dict[str, str]]:
    """promtool input series: 0 for ten minutes, then the app's count, held for seven hours."""
    series = []
    for labels, value in samples.items():
        matchers = ",".join(f'{k}="{v}"' for k, v in (*labels, ("instance", "rdv:8000"), ("job", "rdv")))
        series.append({"series": f"{metric.name}{{{matchers}}}", "values": f"0x10 {value:g}x420"})
    return series


async def _fill_the_calendar(make_live: Any, env: dict[str, str]) -> tuple[str, str, str]:
    """Two callers book the only two slots, then twenty ask for the afternoon: the app's
    ``/metrics`` body, its clock's time and its log output."""
    async with make_live(env) as live:
        for i in range(BOOKED):
            answer = await _call(live, f"conv_ok{i}", f"+3362000000{i}", "Jean Dupont", "pas de préférence",
                                 "le premier")
            assert answer["state"] == "CONFIRMED", answer
        for i in range(NO_SLOT_CALLERS):
            answer = await _call(live, f"conv_full{i}", f"+336300000{i:02d}", "Jean Dupont", "l'après-midi")
            assert answer["state"] == "TRANSFERRED", answer
        body = (await live.client.get("/metrics")).text
        until = live.services.clock.now().isoformat()
        logs = live.logs.getvalue()

    return body, until, logs


def test_a_full_calendar_is_named_by_logs_diagnose_dashboard_and_alert(make_live: Any, tmp_path: Path) -> None:
    """Two callers fill the calendar, twenty find nothing: each of those leaves ``[NO_SLOT]``,
    ``rdv diagnose`` (a process on the SQLite file) ranks no_slot first, the dashboard's
    transfers-by-reason query tops on no_slot, and the no-slot alert fires in promtool."""
    practice = tmp_path / "practice.toml"
    practice.write_text(TINY_PRACTICE, "utf-8")
    env = {"RDV_PRACTICE_FILE": str(practice)}
    body, until, logs = asyncio.run(_fill_the_calendar(make_live, env))

    # The log line, in the manual's format.
    assert "[NO_SLOT] conv_full0, preference=afternoon, state=QUALIF_PREF" in logs.splitlines()
    assert logs.count("[NO_SLOT] ") == NO_SLOT_CALLERS
    transfers = _samples(body, n.TRANSFERS)
    assert transfers == {(("channel", "text"), ("reason", "no_slot")): NO_SLOT_CALLERS}

    # rdv diagnose, as its own process, on the service's SQLite file.
    cli_env = {"PATH": "/usr/bin:/bin", "RDV_DATA_DIR": str(tmp_path), **env}
    proc = subprocess.run(
        [sys.executable, "-m", "service.cli", "diagnose", "--store", "--until", until, "--json"],
        cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["dominant"]["pattern"] == "no_slot" and report["dominant"]["in_manual"] is False
    assert report["causes"] == {"no_slot": NO_SLOT_CALLERS}
    assert report["dominant"]["share"] == 100.0
    human = subprocess.run(
        [sys.executable, "-m", "service.cli", "diagnose", "--store", "--until", until],
        cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=60, check=False,
    ).stdout
    assert "Dominant failure pattern: no_slot — no free slot matched" in human
    log_file = tmp_path / "rdv.log"
    log_file.write_text(logs, "utf-8")
    from_logs = subprocess.run(
        [sys.executable, "-m", "service.cli", "diagnose", "--logs", str(log_file), "--json"],
        cwd=ROOT, env=cli_env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert json.loads(from_logs.stdout)["causes"] == report["causes"], from_logs.stderr
    # The README's recipes, with a real shell on this log.
    for recipe in ('grep -F "[NO_SLOT]" rdv.log', 'grep -F "[TRANSFER]" rdv.log | grep -F "reason=no_slot"'):
        found = subprocess.run(["sh", "-c", recipe], cwd=tmp_path, capture_output=True, text=True, check=False)
        assert len(found.stdout.splitlines()) == NO_SLOT_CALLERS, recipe
    readme = (ROOT / "README.md").read_text("utf-8")
    railway = [line for line in readme.splitlines() if line.startswith("railway logs ")]
    assert len(railway) >= 8
    for line in railway:
        recipe = "cat rdv.log |" + line.split("|", 1)[1]
        found = subprocess.run(["sh", "-c", recipe], cwd=tmp_path, capture_output=True, text=True, check=False)
        assert found.returncode in (0, 1) and not found.stderr, (line, found.stderr)
        if "[NO_SLOT]" in line:
            assert len(found.stdout.splitlines()) == NO_SLOT_CALLERS

    # The dashboard's query and the alert, evaluated by promtool on the app's counts.
    panel = next(p for p in d.dashboard()["panels"] if p["title"] == "Transfers by reason over the range")
    query = d.expand(panel["targets"][0]["expr"], range_="1h")
    check_rules = tmp_path / "dashboard.rules.yml"
    check_rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"alert": "DashboardTopTransferReason", "expr": f"topk(1, {query}) > 0"},
    ]}]}), "utf-8")
    spec = next(s for s in a.ALERT_SPECS if s.ratio == "no_slot")
    share = NO_SLOT_CALLERS / (NO_SLOT_CALLERS + BOOKED)
    description = (
        spec.description.replace("{{ $value | humanizePercentage }}", f"{share * 100:.4g}%")
        .replace("{{ $labels.channel }}", "text").replace("{{ $labels.window }}", "6h")
    )
    unit = {
        "rule_files": [str(ROOT / a.RULES_FILE), str(check_rules)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": _series(transfers, n.TRANSFERS)
            + _series(_samples(body, n.CONVERSATIONS_ENDED), n.CONVERSATIONS_ENDED),
            "alert_rule_test": [
                {"eval_time": "1h", "alertname": "DashboardTopTransferReason",
                 "exp_alerts": [{"exp_labels": {"reason": "no_slot"}}]},
                {"eval_time": "1h", "alertname": spec.name, "exp_alerts": [{
                    "exp_labels": {"severity": spec.severity, "channel": "text", "window": "6h"},
                    "exp_annotations": {
                        "summary": spec.summary.replace("{{ $labels.channel }}", "text"),
                        "description": description,
                        "runbook_url": a.runbook_path(spec.name).as_posix(),
                    },
                }]},
            ],
        }],
    }
    unit_file = tmp_path / "no_slot_test.yml"
    unit_file.write_text(yaml.safe_dump(unit), "utf-8")
    result = run(tool("promtool"), "test", "rules", str(unit_file))
    assert result.returncode == 0, result.stdout + result.stderr
