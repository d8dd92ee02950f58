"""The operator tools as an operator runs them: ``rdv simulate``, ``rdv diagnose`` and
``rdv probe`` as processes against a real ``rdv serve`` on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.procs import Replica, base_env

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "service" / "practice.example.toml"
TOKEN = "operator-token"

pytestmark = pytest.mark.slow


def rdv(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``rdv <args>`` as its own process, without any RDV_ setting of this one."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=base_env(tmp_path / "cli", {}),
        capture_output=True, text=True, timeout=60, check=False,
    )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Replica]:
    """A running service with an operator token."""
    replica = Replica("rdv", tmp_path, {"RDV_OPERATOR_TOKEN": TOKEN})
    replica.start()
    try:
        yield replica
    finally:
        replica.stop()


def test_simulate_diagnose_and_probe_against_a_running_service(serve: Replica, tmp_path: Path) -> None:
    """Simulated calls are summarised; the service's diagnosis (token required) and the
    diagnosis of its log file agree on the dominant cause; the probe books and cancels."""
    sim = rdv(tmp_path, "simulate", "--url", serve.url, "--transport", "text", "--calls", "10",
              "--concurrency", "3", "--mix", "cooperative=6,bad_phone=4", "--seed", "3", "--json",
              "--count-as-real", "--keep-bookings", "--token", TOKEN)
    assert sim.returncode == 0, sim.stderr
    summary = json.loads(sim.stdout)
    assert summary["calls"] == 10 and summary["errors"] == 0
    assert summary["outcomes"]["transferred"] == 4 and summary["bookings"] == 6
    assert "simulate [" in sim.stderr and "10/10" in sim.stderr

    refused = rdv(tmp_path, "diagnose", "--url", serve.url)
    assert refused.returncode == 1 and "operator token" in refused.stderr
    remote = rdv(tmp_path, "diagnose", "--url", serve.url, "--token", TOKEN, "--json")
    assert remote.returncode == 0, remote.stderr
    report = json.loads(remote.stdout)
    assert report["dominant"]["pattern"] == "phone_recovery"
    assert report["dominant"]["constant"] == "RECOVERY_LIMITS"
    assert report["summary"] == {**report["summary"], "conversations": 10, "confirmed": 6, "failures": 4}

    logged = rdv(tmp_path, "diagnose", "--logs", str(serve.log_path), "--json")
    assert logged.returncode == 0, logged.stderr
    from_logs = json.loads(logged.stdout)
    assert from_logs["causes"] == report["causes"] == {"phone_recovery": 4}
    assert from_logs["final_states"] == report["final_states"]

    human = rdv(tmp_path, "diagnose", "--url", serve.url, "--token", TOKEN)
    assert "Dominant failure pattern: phone_recovery" in human.stdout

    probe = rdv(tmp_path, "probe", serve.url, "--transport", "text")
    assert probe.returncode == 0, probe.stdout + probe.stderr
    assert "probe ok" in probe.stdout and "cancelled" in probe.stdout
    metrics = rdv(tmp_path, "probe", serve.url, "--transport", "text", "--prometheus")
    assert metrics.returncode == 0, metrics.stderr
    assert 'rdv_probe_success{step="all"} 1' in metrics.stdout
    assert 'rdv_probe_success{step="booked"} 1' in metrics.stdout
    assert 'rdv_probe_duration_seconds{step="all"}' in metrics.stdout
    after = json.loads(rdv(tmp_path, "diagnose", "--url", serve.url, "--token", TOKEN, "--json").stdout)
    # The probes' conversations (a booking and its cancellation, twice) are test traffic: counted
    # apart, in nothing else.
    assert (after["summary"]["confirmed"], after["summary"]["cancelled"]) == (6, 0)
    assert after["summary"]["synthetic"] == 4 and after["summary"]["conversations"] == 10


def test_probe_names_the_failing_step_when_the_calendar_is_full(tmp_path: Path) -> None:
    """Against a practice with no free slot, the probe exits 1 naming ``slots_offered``."""
    full = tmp_path / "full.toml"
    text = EXAMPLE.read_text("utf-8")
    text = text.replace("min_lead_minutes = 120", "min_lead_minutes = 43200").replace("horizon_days = 30",
                                                                                      "horizon_days = 1")
    full.write_text(text, "utf-8")
    replica = Replica("full", tmp_path, {"RDV_PRACTICE_FILE": str(full)})
    replica.start()
    try:
        probe = rdv(tmp_path, "probe", replica.url, "--transport", "text", "--prometheus")
    finally:
        replica.stop()
    assert probe.returncode == 1
    assert "step=slots_offered failed: no slot proposed" in probe.stderr
    assert "transferred" in probe.stderr
    assert 'rdv_probe_success{step="name"} 1' in probe.stdout
    assert 'rdv_probe_success{step="slots_offered"} 0' in probe.stdout
    assert 'rdv_probe_success{step="all"} 0' in probe.stdout
    assert 'step="booked"' not in probe.stdout
