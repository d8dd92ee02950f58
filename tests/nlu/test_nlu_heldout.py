"""Held-out set: written before the NLU was tuned and never tuned on; measures generalisation."""

from __future__ import annotations

from collections import defaultdict

from tests.nlu.nlu_data import TASKS, direct, heldout_records, shape_problems

THRESHOLD = 0.97
HELDOUT = heldout_records()


def test_heldout_set_is_large_and_well_formed() -> None:
    """At least 80 utterances covering every task, each fitting its task's contract."""
    assert len(HELDOUT) >= 80
    assert {r["task"] for r in HELDOUT} == set(TASKS) - {"turn"}  # whole turns are a later set
    assert [p for r in HELDOUT for p in shape_problems(r)] == []


def test_heldout_accuracy_per_task() -> None:
    """Every task answers at least 97 % of its held-out utterances right (table printed)."""
    right: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    misses = []
    for record in HELDOUT:
        got = direct(record)
        total[record["task"]] += 1
        if got == record["expected"]:
            right[record["task"]] += 1
        else:
            misses.append(f"{record['_where']} {record['task']} {record['text']!r}: "
                          f"expected {record['expected']!r}, got {got!r}")
    lines = [f"{'task':<12} {'right':>5} {'total':>5} {'accuracy':>9}"]
    for task in [t for t in TASKS if total[t]]:
        lines.append(f"{task:<12} {right[task]:>5} {total[task]:>5} {right[task] / total[task]:>9.1%}")
    print("\n" + "\n".join(lines))
    failing = [t for t in TASKS if total[t] and right[t] / total[t] < THRESHOLD]
    assert failing == [], "\n".join([*lines, "misses:", *misses])
