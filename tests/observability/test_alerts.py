"""Alert rules, their promtool unit tests, runbooks and the Alertmanager routing."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

import service.config
from telemetry import alerts as a
from telemetry import dashboards as d
from telemetry import generate as g
from telemetry import names as n
from tests.observability.conftest import (
    ROOT,
    TOOL_TIMEOUT_SECONDS,
    load_yaml,
    run,
    series_names,
    tool,
)

RULES = ROOT / a.RULES_FILE
ALERTMANAGER = ROOT / a.ALERTMANAGER_FILE
UNIT_TESTS = sorted((ROOT / "alerts" / "tests").glob("*.yml"))
SHORT = a.RuleParams(page_window="30s", page_short_window="15s", warning_window="30s",
                     page_for="0s", warning_for="5s", min_conversations_page=3)
NO_GUARDS = replace(a.RuleParams(), z=0.0, min_conversations_page=0, min_conversations_warning=0,
                    min_booking_attempts=0, min_phone_requests=0, min_slot_messages=0,
                    min_calendar_requests=0)


def alert_rules(text: str) -> dict[str, dict[str, Any]]:
    """The alerting rules of a rules file, by name."""
    groups = yaml.safe_load(text)["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def start_promtool_tests(rules_text: str, workdir: Path, names: set[str]) -> subprocess.Popen[str]:
    """Start ``promtool test rules`` of the committed unit tests called ``names``, on ``rules_text``."""
    (workdir / "tests").mkdir(parents=True)
    (workdir / "rdv.rules.yml").write_text(rules_text, "utf-8")
    copies = []
    for path in UNIT_TESTS:
        suite = load_yaml(path)
        suite["tests"] = [t for t in suite["tests"] if t["name"] in names]
        if suite["tests"]:
            copies.append(workdir / "tests" / path.name)
            copies[-1].write_text(yaml.safe_dump(suite), "utf-8")
    return subprocess.Popen(
        [tool("promtool"), "test", "rules", *map(str, copies)], cwd=workdir,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def finish(procs: dict[str, subprocess.Popen[str]]) -> dict[str, tuple[int, str]]:
    """Wait for every process (all of them, before any assertion); exit code and output of each."""
    done = {}
    for label, proc in procs.items():
        try:
            output, _ = proc.communicate(timeout=TOOL_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        done[label] = (proc.returncode, output)
    return done


# --------------------------------------------------------------------------- generated files
def test_committed_files_are_the_generated_ones() -> None:
    """``alerts/rdv.rules.yml`` and ``alerts/alertmanager.yml`` equal the generator's output."""
    assert RULES.read_text("utf-8") == g.render_rules(), "run: python -m telemetry.generate"
    assert ALERTMANAGER.read_text("utf-8") == g.render_alertmanager(), "run: python -m telemetry.generate"


@pytest.mark.parametrize("params", [a.RuleParams(), SHORT, NO_GUARDS], ids=["default", "short", "no-guards"])
def test_yaml_output_reads_back_as_the_data(params: a.RuleParams) -> None:
    """The dependency-free YAML writer round-trips the rules and the Alertmanager configuration."""
    assert yaml.safe_load(g.render_rules(params)) == a.rule_groups(params)
    am = a.AlertmanagerParams(pager_url="http://127.0.0.1:1/p?x='1'", group_wait="1s")
    assert yaml.safe_load(g.render_alertmanager(am)) == a.alertmanager_config(am)


def test_generator_check_mode(tmp_path: Path) -> None:
    """``--check`` fails on stale files and passes once they are written."""
    assert a.main(["--root", str(tmp_path), "--check"]) == 1
    assert a.main(["--root", str(tmp_path)]) == 0
    assert a.main(["--root", str(tmp_path), "--check"]) == 0


def test_deployment_receivers_come_from_the_environment_or_an_untracked_file(tmp_path: Path) -> None:
    """``--alertmanager-out`` writes an untracked configuration with the environment's URLs, a
    ``--receivers`` JSON file wins over them, amtool routes every kind of alert to its real
    receiver there, and the tracked configuration keeps its placeholders byte for byte."""
    override = tmp_path / "receivers.local.json"
    override.write_text(json.dumps({"chat_url": "https://chat.example/hook"}), "utf-8")
    env = {"RDV_ALERT_PAGER_URL": "https://pager.example/hook", "RDV_ALERT_CHAT_URL": "https://ignored.example",
           "RDV_ALERT_DEADMAN_URL": "https://deadman.example/ping"}
    out = tmp_path / "alertmanager.local.yml"
    done = subprocess.run(
        [sys.executable, "-m", "telemetry.alerts", "--root", str(ROOT), "--check", "--alertmanager-out", str(out),
         "--receivers", str(override)],
        cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    urls = {r["name"]: r["webhook_configs"][0]["url"] for r in load_yaml(out)["receivers"]}
    assert urls == {"pager": "https://pager.example/hook", "chat": "https://chat.example/hook",
                    "deadman": "https://deadman.example/ping"}
    assert ALERTMANAGER.read_text("utf-8") == g.render_alertmanager()
    assert "127.0.0.1:9095" in ALERTMANAGER.read_text("utf-8")
    assert run(tool("amtool"), "check-config", str(out)).returncode == 0
    for labels, receiver in ROUTES:
        routed = run(tool("amtool"), "config", "routes", "test", f"--config.file={out}",
                     f"--verify.receivers={receiver}", *labels)
        assert routed.returncode == 0 and routed.stdout.strip() == receiver, (labels, routed.stdout + routed.stderr)
    refused = a.main(["--root", str(ROOT), "--check", "--alertmanager-out", str(a.ALERTMANAGER_FILE)])
    assert refused == 2, "a tracked file is never rewritten with real receivers"
    missing = subprocess.run(
        [sys.executable, "-m", "telemetry.alerts", "--root", str(ROOT), "--check", "--alertmanager-out", str(out)],
        cwd=ROOT, env={k: v for k, v in os.environ.items() if not k.startswith("RDV_ALERT_")},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert missing.returncode == 2 and "RDV_ALERT_PAGER_URL" in missing.stderr


# --------------------------------------------------------------------------- promtool
@pytest.mark.parametrize("params", [a.RuleParams(), SHORT], ids=["production", "short-windows"])
def test_promtool_accepts_the_rules(params: a.RuleParams, tmp_path: Path) -> None:
    """``promtool check rules`` passes for the production and the end-to-end parameters."""
    path = tmp_path / "rules.yml"
    path.write_text(g.render_rules(params), "utf-8")
    checked = run(tool("promtool"), "check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_promtool_unit_tests_pass() -> None:
    """Every alert fires, stays silent under the traffic floor and resolves (alerts/tests)."""
    procs = {
        path.name: subprocess.Popen(
            [tool("promtool"), "test", "rules", str(path)], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for path in UNIT_TESTS
    }
    assert len(procs) >= 4
    for name, (code, output) in finish(procs).items():
        assert code == 0 and "SUCCESS" in output, (name, output)


MUTANTS: dict[str, tuple[a.RuleParams, list[str]]] = {
    "without-wilson": (
        replace(a.RuleParams(), z=0.0),
        ["the Wilson bound holds the page back on its own",
         "a share just over 5 % on little volume is not confident enough"],
    ),
    "without-volume-floor": (
        replace(NO_GUARDS, z=a.Z_ONE_SIDED_95),
        ["the volume floor holds the page back on its own", "the warning's volume floor holds it back",
         "a few lost races on a quiet day do not alert", "one anti-loop in a handful of calls does not alert",
         "few phone requests, or limits on other fields, do not alert",
         "a few long messages on a quiet day do not alert",
         "a few failed calendar requests on a quiet night do not page"],
    ),
    "without-both": (NO_GUARDS, ["three failed calls out of four at night do not page"]),
    "without-turn-floor": (replace(a.RuleParams(), min_turns_misses=0),
                           ["a jump on little traffic, or a few misses after a perfect week, do not alert"]),
}


def test_unit_tests_catch_a_missing_guard(tmp_path: Path) -> None:
    """Rules rendered without a guard fail the silent cases that rely on it (they pass with it)."""
    procs = {
        label: start_promtool_tests(g.render_rules(params), tmp_path / label, set(names))
        for label, (params, names) in MUTANTS.items()
    }
    for label, (code, output) in finish(procs).items():
        assert code != 0, label
        failed = set(re.findall(r"name: (.+),\n", output))
        assert failed == set(MUTANTS[label][1]), (label, output)


def _cases() -> list[tuple[str, str, list[tuple[int, bool]]]]:
    """(test name, alert, [(eval seconds, fired)]) of every alert check in the unit tests."""
    found: dict[tuple[str, str], list[tuple[int, bool]]] = {}
    units = {"s": 1, "m": 60, "h": 3600}
    for path in UNIT_TESTS:
        for test in load_yaml(path)["tests"]:
            for check in test["alert_rule_test"]:
                at = sum(int(v) * units[u] for v, u in re.findall(r"(\d+)([smh])", check["eval_time"]))
                key = (test["name"], check["alertname"])
                found.setdefault(key, []).append((at, bool(check["exp_alerts"])))
    return [(name, alert, sorted(evals)) for (name, alert), evals in found.items()]


@pytest.mark.parametrize("alert", [s.name for s in (*a.ALERT_SPECS, *a.SERVICE_ALERTS)])
def test_every_alert_has_firing_silent_and_resolving_cases(alert: str) -> None:
    """Each alert is tested firing, silent under its traffic floor, and resolving afterwards."""
    cases = [(name, evals) for name, who, evals in _cases() if who == alert]
    assert any(any(fired for _, fired in evals) for _, evals in cases), "no firing case"
    assert any(not any(fired for _, fired in evals) for _, evals in cases), "no silent case"
    def resolves(evals: list[tuple[int, bool]]) -> bool:
        return any(fired and any(t2 > t1 and not f2 for t2, f2 in evals) for t1, fired in evals)

    assert any(resolves(evals) for _, evals in cases), "no resolving case"


def test_not_understood_alert_compares_with_last_week_above_a_floor() -> None:
    """The not-understood share is judged against the same hour a week earlier (offset 7d) with
    the contract's growth factor, baseline floor and turn floor in both hours; tested firing,
    silent (little traffic, a perfect week, no week yet: one channel each) and resolving."""
    expr = alert_rules(RULES.read_text("utf-8"))[a.MISSES_ALERT]["expr"]
    assert f"> {n.MISS_SHARE_GROWTH} * clamp_min(" in expr and "offset 7d" in expr
    assert f"offset 7d, {n.MISS_SHARE_BASELINE_FLOOR})" in expr
    assert expr.count(f">= {n.MISS_MIN_TURNS}") == 2
    cases = [(name, evals) for name, who, evals in _cases() if who == a.MISSES_ALERT]
    assert any(any(f for _, f in evals) and not evals[-1][1] for _, evals in cases), "no firing-then-resolving case"
    assert any(not any(f for _, f in evals) for _, evals in cases), "no silent case"
    text = (ROOT / a.runbook_path(a.MISSES_ALERT)).read_text("utf-8")
    assert f"**{a.PANEL_MISS_SHARE}**" in text and "rdv misses" in text and "rdv replay" in text
    assert {"`RECOVERY_LIMITS", "`CONFIRM_RETRY_MAX", "`RDV_RECOVERY_FALLBACK"} <= {
        w for w in re.findall(r"`[A-Z_]+", text)} and {"RECOVERY_LIMITS", "CONFIRM_RETRY_MAX"} <= config_constants()


def test_the_watchdog_is_tested() -> None:
    """The always-firing watchdog has a unit test that expects it firing."""
    assert any(who == a.WATCHDOG and any(f for _, f in evals) for _, who, evals in _cases())


# --------------------------------------------------------------------------- rule contents
def test_the_seed_target_table_is_alerted_on_with_contract_thresholds() -> None:
    """Seven alerts (the seed's six and the calendar's page), each comparing its ratio and Wilson
    bound to the contract's threshold."""
    rules = alert_rules(RULES.read_text("utf-8"))
    expected = {
        "RdvConversionBelowTarget": ("<", n.CONVERSION_TARGET, "warning"),
        "RdvConversionBelowFloor": ("<", n.CONVERSION_FLOOR, "critical"),
        "RdvSlotTakenHigh": (">", n.SLOT_TAKEN_MAX, "warning"),
        "RdvAntiLoopHigh": (">", n.ANTI_LOOP_MAX, "warning"),
        "RdvPhoneRecoveryHigh": (">", n.PHONE_RECOVERY_MAX, "warning"),
        "RdvLongSlotMessages": (">", n.LONG_SLOT_MESSAGE_SHARE_MAX, "warning"),
        "RdvNoSlotTransfersHigh": (">", n.NO_SLOT_TRANSFER_SHARE_MAX, "warning"),
        "RdvCalendarFailing": (">", n.CALENDAR_FAILURE_MAX, "critical"),
    }
    assert set(rules) == {*expected, *(s.name for s in a.SERVICE_ALERTS), a.MISSES_ALERT, a.WATCHDOG}
    for name, (op, threshold, severity) in expected.items():
        rule = rules[name]
        bound = "wilson_upper" if op == "<" else "wilson_lower"
        assert re.search(rf":ratio\{{[^}}]*\}} {op} {threshold}\b", rule["expr"]), name
        assert re.search(rf":{bound}\{{[^}}]*\}} {op} {threshold}\b", rule["expr"]), name
        assert re.search(r":n\{[^}]*\} >= \d+", rule["expr"]), name
        assert rule["labels"]["severity"] == severity
        assert rule["for"] not in ("0s", "0m"), name


def test_every_alert_is_annotated_for_the_operator() -> None:
    """Summary, a description with the value as a percentage, and a runbook that exists."""
    for name, rule in alert_rules(RULES.read_text("utf-8")).items():
        notes = rule["annotations"]
        assert notes["summary"], name
        if name in {s.name for s in a.ALERT_SPECS}:
            assert "{{ $value | humanizePercentage }}" in notes["description"], name
        assert notes["runbook_url"] == a.runbook_path(name).as_posix()
        assert (ROOT / notes["runbook_url"]).is_file(), name


def test_rules_reference_only_contract_series() -> None:
    """Recording rules read contract series only; alerts read recording rules only."""
    groups = {g["name"]: g["rules"] for g in load_yaml(RULES)["groups"]}
    recorded = a.recording_rule_names()
    for rule in groups["rdv.ratios"]:
        assert rule["record"] in recorded
        assert series_names(rule["expr"]) <= n.all_series() | recorded, rule["record"]
    service = {s.name for s in a.SERVICE_ALERTS}
    for rule in groups["rdv.alerts"]:
        allowed = n.all_series() if rule["alert"] in service else recorded
        assert series_names(rule["expr"]) <= allowed, rule["alert"]
    for rule in groups["rdv.understanding"]:
        allowed = n.all_series() | recorded if "record" in rule else recorded
        assert series_names(rule["expr"]) <= allowed, rule


def test_long_message_alert_watches_voice_only() -> None:
    """Text channels show full labels: only spoken (voice) slot messages are judged."""
    expr = alert_rules(RULES.read_text("utf-8"))["RdvLongSlotMessages"]["expr"]
    assert expr.count('channel="voice"') == 3


# --------------------------------------------------------------------------- runbooks
def config_constants() -> set[str]:
    """The constants service/config.py reads: SPEC §1's table, RECOVERY_LIMITS, the fallback."""
    source = inspect.getsource(service.config)
    return set(service.config.CONSTANT_DEFAULTS) | {
        name
        for name in ("RECOVERY_LIMITS", "RDV_RECOVERY_FALLBACK", "RDV_SLOT_HOLD_SECONDS", "RDV_PRACTICE_FILE",
                     "RDV_CALENDAR_TIMEOUT_SECONDS")
        if f'"{name}' in source
    }


@pytest.mark.parametrize("spec", a.ALERT_SPECS, ids=lambda s: s.name)
def test_runbook_says_what_to_look_at_and_what_to_change(spec: a.AlertSpec) -> None:
    """Panel, ``rdv diagnose``, ``/api/stats/bookings`` and real constants are named."""
    text = (ROOT / a.runbook_path(spec.name)).read_text("utf-8")
    titles = {p["title"] for p in d.dashboard()["panels"]}
    assert spec.panel in titles and f"**{spec.panel}**" in text
    assert "rdv diagnose" in text and "/api/stats/bookings" in text
    assert spec.constants and set(spec.constants) <= config_constants()
    for constant in spec.constants:
        assert f"`{constant}" in text, constant


@pytest.mark.parametrize("alert", a.SERVICE_ALERTS, ids=lambda s: s.name)
def test_service_runbooks_say_what_to_look_at_and_what_to_change(alert: a.ServiceAlert) -> None:
    """Each service alert's runbook starts from its panel and names the settings to change."""
    text = (ROOT / a.runbook_path(alert.name)).read_text("utf-8")
    titles = {p["title"] for p in d.dashboard()["panels"]}
    assert alert.panel in titles and f"**{alert.panel}**" in text
    assert "## What to look at" in text and "## What to change" in text
    for constant in alert.constants:
        assert f"`{constant}" in text, constant


def test_runbooks_name_only_existing_panels() -> None:
    """Every bold phrase of a runbook is a panel title, the dashboard title, or plain emphasis."""
    titles = {p["title"] for p in d.dashboard()["panels"]} | {d.dashboard()["title"]}
    emphasis = {"Wilson upper bound", "voice", "Severity:", "Rule:"}
    for name in a.alert_names():
        text = (ROOT / a.runbook_path(name)).read_text("utf-8")
        unknown = set(re.findall(r"\*\*(.+?)\*\*", text)) - titles - emphasis
        assert unknown == set(), name


def test_no_runbook_without_an_alert() -> None:
    """The runbook folder holds exactly one file per alert."""
    files = {p.stem for p in (ROOT / a.RUNBOOK_DIR).glob("*.md")}
    assert files == set(a.alert_names())


# --------------------------------------------------------------------------- alertmanager
def test_alertmanager_configuration_is_valid() -> None:
    """``amtool check-config`` accepts the committed configuration."""
    checked = run(tool("amtool"), "check-config", str(ALERTMANAGER))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


ROUTES = [
    (["alertname=RdvConversionBelowFloor", "severity=critical", "channel=voice"], "pager"),
    (["alertname=RdvConversionBelowTarget", "severity=warning", "channel=voice"], "chat"),
    (["alertname=RdvSlotTakenHigh", "severity=warning", "channel=text"], "chat"),
    (["alertname=RdvNoSlotTransfersHigh", "severity=warning", "channel=voice"], "chat"),
    (["alertname=RdvDown", "severity=critical", "job=rdv"], "pager"),
    (["alertname=RdvServerErrorsHigh", "severity=critical"], "pager"),
    (["alertname=RdvStoreUnavailable", "severity=critical"], "pager"),
    (["alertname=RdvTurnLatencyHigh", "severity=warning"], "chat"),
    (["alertname=RdvVapiCustomLlmErrors", "severity=warning"], "chat"),
    (["alertname=RdvWatchdog", "severity=none"], "deadman"),
    (["alertname=SomethingElse", "severity=info"], "chat"),
]


def test_the_dead_mans_switch_is_delivered_every_five_minutes() -> None:
    """The watchdog's route resends as soon as 4m30s have passed, checked every 30 s: the
    dead man's switch hears from Alertmanager at least every 5 minutes."""
    route = next(r for r in load_yaml(ALERTMANAGER)["route"]["routes"] if r["receiver"] == "deadman")
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("0s", "30s", "4m30s")


@pytest.mark.parametrize(("labels", "receiver"), ROUTES)
def test_routes(labels: list[str], receiver: str) -> None:
    """critical pages, warning goes to chat, the watchdog to the dead man's switch."""
    done = run(tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}",
               f"--verify.receivers={receiver}", *labels)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == receiver


def test_routes_test_can_fail() -> None:
    """The routing check above is able to fail: a warning does not page."""
    done = run(tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}",
               "--verify.receivers=pager", "alertname=RdvConversionBelowTarget", "severity=warning")
    assert done.returncode != 0


def test_the_page_inhibits_the_warning_per_channel() -> None:
    """The floor alert mutes the target alert of the same channel only; notifications resolve."""
    config = load_yaml(ALERTMANAGER)
    assert config["inhibit_rules"] == [{
        "source_matchers": ['alertname="RdvConversionBelowFloor"'],
        "target_matchers": ['alertname="RdvConversionBelowTarget"'],
        "equal": ["channel"],
    }]
    assert config["route"]["group_by"] == ["alertname"]
    assert all(w["send_resolved"] for r in config["receivers"] for w in r["webhook_configs"])
