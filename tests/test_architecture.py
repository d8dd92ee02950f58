"""The architecture is enforced: a pure engine, names declared once, errors under RdvError.

ruff, mypy --strict and the import contracts run in ``make lint`` (before ``make test``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]
ENGINE = ROOT / "service" / "engine"


def test_service_log_lines_are_named_in_the_contract() -> None:
    """Every ``log_event`` names its line with a telemetry.names constant, never a literal."""
    offenders = []
    for path in (ROOT / "service").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "log_event" and node.args and isinstance(node.args[0], ast.Constant)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_engine_never_reads_the_clock_or_randomness() -> None:
    """No ``now()``, ``today()``, ``time()`` or ``random`` call anywhere in the engine."""
    offenders = []
    for path in ENGINE.rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                on_time_module = isinstance(node.func.value, ast.Name) and node.func.value.id == "time"
                if node.func.attr in ("now", "today", "utcnow") or on_time_module:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.attr}()")
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n == "random" or n.startswith("random.") for n in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports random")
    assert offenders == []


def test_every_raised_error_subclasses_rdv_error() -> None:
    """``raise Exception(...)``/``RuntimeError`` are not used: errors subclass RdvError."""
    offenders = []
    for path in list((ROOT / "service").rglob("*.py")) + list((ROOT / "telemetry").rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                func = node.exc.func
                if isinstance(func, ast.Name) and func.id in ("Exception", "RuntimeError"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
