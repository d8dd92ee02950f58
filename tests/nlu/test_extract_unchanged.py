"""Understanding gives, field by field, the answers recorded in ``golden/extract.jsonl.gz``.

The recording (``tests/nlu/extract_golden.py``, see there when to regenerate it) holds every
utterance the tests know, each read in several dialogue states, and the per-task answers. A
change meant only to make understanding faster must keep every one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from service.engine.nlu.extract import extract
from service.engine.nlu.normalize import analyse
from service.engine.nlu.tokens import tokenize
from tests.nlu.extract_golden import GOLDEN, context_of, extraction_fields, load, record

CASES = load()
CHUNKS = 20  # test ids by slice: a failure names the cases, the run stays short


def differences(expected: Mapping[str, Any], found: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Each field whose value differs: (recorded, found); a field left out is at its default."""
    return {k: (expected.get(k), found.get(k)) for k in sorted(set(expected) | set(found))
            if expected.get(k) != found.get(k)}


def test_the_recording_covers_the_data() -> None:
    """Thousands of cases, in every recorded state, with the per-task answers."""
    assert GOLDEN.exists()
    assert len(CASES) > 10_000
    states = {case["context"]["state"] for case in CASES}
    assert {"START", "QUALIF_NAME", "WAIT_CONFIRM", "CANCEL_IDENTIFY", "MODIFY_CONFIRM"} <= states
    assert sum("tasks" in case for case in CASES) > 2_000
    assert sum(bool(case["extraction"]) for case in CASES) > len(CASES) // 2


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_extraction_is_unchanged(chunk: int) -> None:
    """Each case's extraction and per-task answers, computed cold, are the recorded ones."""
    changed = []
    for case in CASES[chunk::CHUNKS]:
        tokenize.cache_clear()
        analyse.cache_clear()
        found = record(case["text"], case["context"])
        fields = differences(case["extraction"], found["extraction"])
        fields.update({f"tasks.{k}": v for k, v in differences(case.get("tasks", {}), found.get("tasks", {})).items()})
        if fields:
            changed.append((case["text"], case["context"]["state"], fields))
    assert changed == []


def test_a_changed_field_is_reported() -> None:
    """The comparison sees a field that differs, one that appears and one that goes."""
    case = next(c for c in CASES if c["context"]["state"] == "START" and "intent" in c["extraction"]
                and "name" in c["extraction"])
    found = extraction_fields(extract(case["text"], context_of("START", case["context"]["now"])))
    assert differences(case["extraction"], found) == {}
    assert set(differences(case["extraction"], {**found, "intent": "cancel"})) == {"intent"}
    assert set(differences(case["extraction"], {**found, "phone": "+33612345678"})) == {"phone"}
    assert set(differences(case["extraction"], {k: v for k, v in found.items() if k != "name"})) == {"name"}
