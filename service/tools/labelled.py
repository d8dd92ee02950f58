"""``rdv understand --check FILE.jsonl``: how well the understanding answers a labelled file.

A labelled file is ``rdv understand``'s input with ``expected`` filled in (what ``rdv misses
--export`` writes, once a person has labelled it; the development set in ``tests/nlu/data``
has the same form). A per-field task is right when its answer equals ``expected``; a ``turn``
record names only the fields it checks (and of a preference or a target only the keys it
checks), each compared with the extraction. Records whose ``expected`` is still null are
counted as unlabelled, not judged.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

from service.engine.practice import Practice
from service.tools import understand as batch

# Fields whose expected value may name only some of its keys ("preference": {"days": [...]}).
PARTIAL: Final = frozenset({"preference", "target"})


def field_agrees(name: str, expected: Any, got: Any) -> bool:
    """One field of a ``turn`` answer against its expected value."""
    if name in PARTIAL and isinstance(expected, dict) and isinstance(got, dict):
        return all(got.get(k) == v for k, v in expected.items())
    return bool(expected == got)


def agrees(record: dict[str, Any], got: Any) -> bool:
    """True when an answer is what the record expects (a ``turn`` record names only the
    fields it checks, and of a preference or target only the keys it checks)."""
    expected = record["expected"]
    if record["task"] != "turn":
        return bool(got == expected)
    return isinstance(got, dict) and all(field_agrees(k, v, got.get(k)) for k, v in expected.items())


@dataclass
class Report:
    """Right and judged counts per task and per ``turn`` field, and what went wrong."""

    judged: Counter[str] = field(default_factory=Counter)
    right: Counter[str] = field(default_factory=Counter)
    fields_judged: Counter[str] = field(default_factory=Counter)
    fields_right: Counter[str] = field(default_factory=Counter)
    unlabelled: int = 0
    wrong: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Share of judged records answered right (1.0 when none was judged)."""
        total = sum(self.judged.values())
        return sum(self.right.values()) / total if total else 1.0

    def as_json(self) -> dict[str, Any]:
        """The report as plain JSON."""
        def rate(right: int, judged: int) -> dict[str, Any]:
            return {"right": right, "judged": judged, "accuracy": round(right / judged, 4) if judged else None}

        return {
            "accuracy": round(self.accuracy, 4),
            "judged": sum(self.judged.values()),
            "unlabelled": self.unlabelled,
            "tasks": {t: rate(self.right[t], n) for t, n in sorted(self.judged.items())},
            "turn_fields": {f: rate(self.fields_right[f], n) for f, n in sorted(self.fields_judged.items())},
            "wrong": self.wrong,
        }


def check(records: Iterable[tuple[str, Any]], practice: Practice | None) -> Report:
    """Answer every labelled record (``(where, record)``) and compare it with its ``expected``."""
    report = Report()
    for where, record in records:
        if not isinstance(record, dict) or record.get("expected") is None:
            report.unlabelled += 1
            continue
        task = str(record.get("task"))
        answer = batch.understand(record, practice)
        got = answer.get("predicted")
        report.judged[task] += 1
        ok = "error" not in answer and agrees(record, got)
        if task == "turn" and isinstance(record["expected"], dict):
            for name, value in record["expected"].items():
                report.fields_judged[name] += 1
                good = isinstance(got, dict) and field_agrees(name, value, got.get(name))
                report.fields_right[name] += good
        if ok:
            report.right[task] += 1
        else:
            report.wrong.append({"where": where, "task": task, "text": record.get("text"),
                                 "expected": record["expected"], "got": answer.get("error", got)})
    return report


def read(lines: TextIO, name: str) -> list[tuple[str, Any]]:
    """``(file:line, record)`` of every non-blank line; a line that is not JSON is an error."""
    out: list[tuple[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append((f"{name}:{number}", json.loads(line)))
        except ValueError as exc:
            raise ValueError(f"{name}:{number}: not JSON ({exc})") from None
    return out


def render(report: Report) -> str:
    """The report as text: accuracy per task and per turn field, then every wrong answer."""
    data = report.as_json()
    lines = [(f"accuracy {data['accuracy']:.1%} of {data['judged']} labelled records"
             f" ({data['unlabelled']} unlabelled, not judged)")]
    for title, rows in (("task", data["tasks"]), ("turn field", data["turn_fields"])):
        for key, row in rows.items():
            lines.append(f"  {title} {key:<14}{row['right']:>5}/{row['judged']:<5} {row['accuracy']:.1%}")
    for w in data["wrong"]:
        lines.append(f"WRONG {w['where']} [{w['task']}] « {w['text']} »: "
                     f"expected {json.dumps(w['expected'], ensure_ascii=False)}, "
                     f"got {json.dumps(w['got'], ensure_ascii=False)}")
    return "\n".join(lines)
