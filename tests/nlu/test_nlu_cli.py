"""The real ``rdv understand`` command, as a subprocess, agrees with direct calls line by line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.nlu.nlu_data import HELDOUT, as_input, dev_files, direct, read

RDV = Path(sys.executable).with_name("rdv")
ROOT = Path(__file__).parents[2]


def understand(lines: list[str]) -> list[dict[str, Any]]:
    """Feed JSON lines to ``rdv understand`` and parse its answer lines."""
    proc = subprocess.run(
        [str(RDV), "understand"], input="\n".join(lines) + "\n", capture_output=True, text=True,
        cwd=ROOT, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_cli_batch_matches_direct_calls_over_every_data_file() -> None:
    """One answer per input line, in order, equal to ``{"predicted": direct call}``."""
    records = [r for path in [*dev_files(), HELDOUT] for r in read(path)]
    # The data files are fed as they are: the extra "expected" key must be ignored.
    answers = understand([json.dumps(as_input(r), ensure_ascii=False) for r in records])
    assert len(answers) == len(records)
    mismatches = [
        (r["_where"], r["text"], a, direct(r))
        for r, a in zip(records, answers, strict=True) if a != {"predicted": direct(r)}
    ]
    assert mismatches == []


def test_cli_reports_bad_lines_and_goes_on() -> None:
    """A bad line gets an error answer; the lines after it are still answered."""
    answers = understand([
        "not json",
        json.dumps({"task": "weather", "text": "oui"}),
        json.dumps({"task": "preference", "text": "demain"}),
        json.dumps({"task": "slot_choice", "text": "le premier", "context": {"slots": []}}),
        "",
        json.dumps({"task": "yes_no", "text": "ouais"}),
    ])
    assert [sorted(a) for a in answers] == [["error"], ["error"], ["error"], ["error"], ["predicted"]]
    assert answers[-1] == {"predicted": "yes"}
