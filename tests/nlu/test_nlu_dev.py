"""Development set: every utterance is its own test, and the set itself keeps its promised size."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.nlu.nlu_data import (
    TASKS,
    case_id,
    dev_files,
    dev_records,
    direct,
    heldout_records,
    key,
    shape_problems,
)

DEV = dev_records()


def test_dev_set_is_large_and_covers_every_task() -> None:
    """At least 300 utterances, at least 40 per task, intent the largest."""
    counts = Counter(r["task"] for r in DEV)
    assert len(DEV) >= 300, counts
    assert all(counts[task] >= 40 for task in TASKS), counts
    assert all(counts["intent"] > counts[task] for task in TASKS if task != "intent"), counts
    assert len(dev_files()) >= 1


def test_dev_records_fit_the_contract_and_do_not_repeat() -> None:
    """Every expected value has its task's shape; no question twice; none shared with the held-out set."""
    problems = [f"{r['_where']}: {p}" for r in DEV for p in shape_problems(r)]
    assert problems == []
    keys = Counter(key(r) for r in DEV)
    assert [k for k, n in keys.items() if n > 1] == []
    assert set(keys) & {key(r) for r in heldout_records()} == set()


@pytest.mark.parametrize("record", DEV, ids=[case_id(r) for r in DEV])
def test_dev_utterance(record: dict[str, Any]) -> None:
    """The NLU answers this utterance as the dev set expects."""
    assert direct(record) == record["expected"]
