"""Development set: every utterance is its own test, and the set itself keeps its promised size."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.nlu.nlu_data import (
    TASKS,
    agrees,
    case_id,
    dev_files,
    dev_records,
    direct,
    heldout_records,
    key,
    shape_problems,
)

DEV = dev_records()
# The documented allowance: utterances the NLU answers wrong today, each with why. They are
# strict expected failures, so one that starts passing must leave this table.
KNOWN_MISSES: dict[tuple[str, str], str] = {}


def _case(record: dict[str, Any]) -> Any:
    why = KNOWN_MISSES.get((record["task"], record["text"]))
    marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
    return pytest.param(record, id=case_id(record), marks=marks)


def test_dev_set_is_large_and_covers_every_task() -> None:
    """At least 300 utterances, at least 40 per task, intent the largest per-field task, and
    at least 200 whole turns."""
    counts = Counter(r["task"] for r in DEV)
    assert len(DEV) >= 300, counts
    assert all(counts[task] >= 40 for task in TASKS), counts
    assert all(counts["intent"] > counts[task] for task in TASKS if task not in ("intent", "turn")), counts
    assert counts["turn"] >= 200, counts
    assert len(dev_files()) >= 1


def test_dev_records_fit_the_contract_and_do_not_repeat() -> None:
    """Every expected value has its task's shape; no question twice; none shared with the held-out set."""
    problems = [f"{r['_where']}: {p}" for r in DEV for p in shape_problems(r)]
    assert problems == []
    keys = Counter(key(r) for r in DEV)
    assert [k for k, n in keys.items() if n > 1] == []
    assert set(keys) & {key(r) for r in heldout_records()} == set()


def test_known_misses_are_few() -> None:
    """The allowance stays small: at most 1 % of the whole turns."""
    turns = sum(1 for r in DEV if r["task"] == "turn")
    assert len(KNOWN_MISSES) <= turns // 100


@pytest.mark.parametrize("record", [_case(r) for r in DEV])
def test_dev_utterance(record: dict[str, Any]) -> None:
    """The NLU answers this utterance as the dev set expects."""
    got = direct(record)
    assert agrees(record, got), (record["expected"], got)
