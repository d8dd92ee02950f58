"""What the command line and the HTTP root tell an operator: help for every option with its
default, the understanding tasks, the source a diagnosis read, where the documentation is."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from service import cli
from service.tools.understand import TASKS
from tests.reliability.procs import base_env

ROOT = Path(__file__).resolve().parents[2]


def rdv(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``rdv <args>`` as its own process."""
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_command_and_option_has_help_with_its_default() -> None:
    """Each sub-command has a help line; each option has help, naming its default when it has one."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helped = {c.dest for c in sub._choices_actions}
    missing: list[str] = []
    for name, command in _commands().items():
        if name not in helped:
            missing.append(name)
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = (action.help or "").lower()
            if not text:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
            elif (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                  and "default" not in text):
                missing.append(f"{name} {action.option_strings[0]} (default {action.default!r} not said)")
    assert missing == []


def test_understand_help_lists_the_tasks_and_context_keys(tmp_path: Path) -> None:
    """``rdv understand --help`` names every task and the context keys."""
    done = rdv(base_env(tmp_path, {}), "understand", "--help")
    assert done.returncode == 0
    for word in (*TASKS, "state", "now", "slots"):
        assert word in done.stdout, word


def test_diagnose_names_its_source_and_warns_on_a_file_without_rdv_lines(tmp_path: Path) -> None:
    """A log file of something else: a warning, and the report says which file it read; the
    store's report names the database file."""
    other = tmp_path / "nginx.log"
    other.write_text('127.0.0.1 - - "GET / HTTP/1.1" 200\n', "utf-8")
    env = base_env(tmp_path / "data", {})
    done = rdv(env, "diagnose", "--logs", str(other))
    assert done.returncode == 0
    assert f"warning: {other} holds no rdv log line" in done.stderr
    assert f"rdv diagnose — logs {other}" in done.stdout
    assert rdv(env, "migrate").returncode == 0
    store = rdv(env, "diagnose", "--store")
    assert store.returncode == 0, store.stderr
    assert f"store SQLite {(tmp_path / 'data' / 'rdv.sqlite3').resolve()}" in store.stdout


def test_root_points_to_the_docs_and_openapi_declares_the_operator_token(make_live: Any) -> None:
    """``GET /`` names /openapi.json; the operator routes declare the bearer operator token."""

    async def drive() -> tuple[dict[str, Any], dict[str, Any]]:
        async with make_live() as live:
            return (await live.client.get("/")).json(), (await live.client.get("/openapi.json")).json()

    root, doc = asyncio.run(drive())
    assert root["openapi"] == "/openapi.json" and root["service"] == "rdv"
    scheme = doc["components"]["securitySchemes"]["operatorToken"]
    assert scheme["scheme"] == "bearer" and "RDV_OPERATOR_TOKEN" in scheme["description"]
    for path in ("/api/stats/bookings", "/api/diagnose", "/api/conversations/{conv_id}"):
        assert {"operatorToken": []} in doc["paths"][path]["get"]["security"], path
