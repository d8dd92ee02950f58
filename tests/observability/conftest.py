"""Shared helpers of the observability tests: the repository, the Prometheus tools, PromQL names."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOL_TIMEOUT_SECONDS = 60

# Debian package of each binary (`make test-deps` installs them).
PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "amtool": "prometheus-alertmanager",
    "prometheus-alertmanager": "prometheus-alertmanager",
}

# Series Prometheus itself creates, which rules and dashboards may query.
PROMETHEUS_BUILTINS = frozenset({"ALERTS", "ALERTS_FOR_STATE", "up"})

_PROMQL_WORDS = frozenset({
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "inf", "nan", "atan2",
})


def tool(name: str) -> str:
    """Absolute path of a Prometheus binary, or skip the test saying how to install it."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed (Debian package {PACKAGES[name]}; `make test-deps` installs it)")
    return found


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run a tool with a bounded time; its completed process (never raises on exit codes)."""
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, check=False
    )


def load_yaml(path: Path) -> Any:
    """A YAML file of the repository, parsed."""
    return yaml.safe_load(path.read_text("utf-8"))


def series_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords and label names excluded)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _PROMQL_WORDS:
            continue
        names.add(word)
    return names


def rules_file(path: Path, exprs: dict[str, str]) -> Path:
    """Write ``exprs`` as recording rules (one per expression) so that promtool can parse them."""
    rules = [{"record": f"dashboard:query_{i}:check", "expr": expr} for i, expr in enumerate(exprs.values())]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}), "utf-8")
    return path
