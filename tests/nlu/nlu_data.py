"""The NLU evaluation data: JSON lines in the ``rdv understand`` input format plus ``expected``.

``direct`` answers a record by calling the public ``service.engine.nlu`` functions itself
(not through ``batch``), so comparing it with the CLI checks the CLI end to end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from service.config import load_practice, load_settings
from service.engine import nlu
from service.engine.nlu.extract import ExtractContext, extract
from service.tools import labelled
from service.tools.understand import extraction_json

DATA = Path(__file__).parent / "data"
# The practice ``rdv understand`` reads by default (its hours decide "outside_hours").
PRACTICE = load_practice(load_settings({}).practice_file)
HELDOUT = DATA / "heldout.jsonl"
TASKS = ("intent", "name", "preference", "slot_choice", "yes_no", "phone", "filler", "turn")
# The fields of a ``turn`` answer (``rdv understand``'s JSON of an Extraction).
TURN_FIELDS = frozenset({"intent", "yes_no", "filler", "name", "name_issue", "patient", "relation", "preference",
                         "outside_hours", "phone", "choice", "target", "corrected", "spans"})
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CLOCK = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")


def read(path: Path) -> list[dict[str, Any]]:
    """Every record of one JSON lines file, with its file name and line number added."""
    records = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if line.strip():
            record = json.loads(line)
            record["_where"] = f"{path.name}:{number}"
            records.append(record)
    return records


def dev_files() -> list[Path]:
    """The development set: every data file but the held-out one."""
    return sorted(p for p in DATA.glob("*.jsonl") if p != HELDOUT)


def dev_records() -> list[dict[str, Any]]:
    """All development records, file by file."""
    return [r for path in dev_files() for r in read(path)]


def heldout_records() -> list[dict[str, Any]]:
    """The held-out records (never tuned on)."""
    return read(HELDOUT)


def case_id(record: dict[str, Any]) -> str:
    """A readable, unique test id: where the record lives, its task and its text."""
    return f"{record['_where']}:{record['task']}:{record['text']!r}"


def key(record: dict[str, Any]) -> tuple[str, str, str]:
    """What makes two records the same question."""
    return record["task"], record["text"], json.dumps(record.get("context") or {}, sort_keys=True)


def as_input(record: dict[str, Any]) -> dict[str, Any]:
    """The record as ``rdv understand`` reads it (the evaluation fields stripped)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _slots(context: dict[str, Any]) -> list[nlu.SlotRef]:
    return [nlu.SlotRef(datetime.fromisoformat(s["start"]), s.get("label", "")) for s in context["slots"]]


def direct(record: dict[str, Any]) -> Any:
    """The JSON-shaped answer of the public NLU functions for one record."""
    task, text, context = record["task"], record["text"], record.get("context") or {}
    if task == "intent":
        return nlu.intent(text)
    if task == "name":
        found = nlu.name(text)
        return None if found is None else {"first": found.first, "last": found.last}
    if task == "preference":
        pref = nlu.preference(text, datetime.fromisoformat(context["now"]))
        if pref is None:
            return None
        return {
            "period": pref.period,
            "day": pref.day.isoformat() if pref.day else None,
            "after": f"{pref.after:%H:%M}" if pref.after else None,
            "before": f"{pref.before:%H:%M}" if pref.before else None,
        }
    if task == "slot_choice":
        return nlu.slot_choice(text, _slots(context))
    if task == "yes_no":
        return nlu.yes_no(text)
    if task == "phone":
        return nlu.phone(text)
    if task == "filler":
        return nlu.is_filler(text)
    if task == "turn":
        return extraction_json(extract(text, ExtractContext(
            context.get("state", "START"), datetime.fromisoformat(context["now"]),
            tuple(_slots(context)) if context.get("slots") else (), PRACTICE)))
    raise ValueError(f"unknown task {task!r}")


# How a record's answer is judged lives in the service, shared with `rdv understand --check`.
agrees = labelled.agrees


def shape_problems(record: dict[str, Any]) -> Iterator[str]:
    """Why a record's expected value does not fit its task's contract (nothing when it does)."""
    task, expected, context = record.get("task"), record.get("expected"), record.get("context")
    if set(record) - {"_where"} != {"task", "text", "context", "expected"}:
        yield f"keys {sorted(record)}"
    if task not in TASKS:
        yield f"task {task!r}"
    if not isinstance(record.get("text"), str) or not isinstance(context, dict):
        yield "text must be a string and context an object"
        return
    if task == "intent" and expected not in nlu.INTENTS:
        yield f"intent {expected!r}"
    elif task == "name" and expected is not None:
        if not (isinstance(expected, dict) and set(expected) == {"first", "last"} and isinstance(expected["last"], str)
                and (expected["first"] is None or isinstance(expected["first"], str))):
            yield f"name {expected!r}"
    elif task == "preference":
        if not isinstance(context.get("now"), str) or datetime.fromisoformat(context["now"]).tzinfo is None:
            yield "preference needs context.now with an offset"
        if expected is not None:
            ok = (isinstance(expected, dict) and set(expected) == {"period", "day", "after", "before"}
                  and expected["period"] in ("morning", "afternoon", "any")
                  and (expected["day"] is None or bool(re.match(r"^\d{4}-\d\d-\d\d$", expected["day"])))
                  and all(expected[k] is None or bool(CLOCK.match(expected[k])) for k in ("after", "before")))
            if not ok:
                yield f"preference {expected!r}"
    elif task == "slot_choice":
        slots = context.get("slots")
        if not isinstance(slots, list) or not slots:
            yield "slot_choice needs context.slots"
        elif not (expected is None or expected == "none"
                  or (isinstance(expected, int) and not isinstance(expected, bool) and 0 <= expected < len(slots))):
            yield f"slot_choice {expected!r}"
    elif task == "yes_no" and expected not in ("yes", "no", None):
        yield f"yes_no {expected!r}"
    elif task == "phone" and not (expected is None or (isinstance(expected, str) and E164.match(expected))):
        yield f"phone {expected!r}"
    elif task == "filler" and not isinstance(expected, bool):
        yield f"filler {expected!r}"
    elif task == "turn":
        if not isinstance(context.get("now"), str) or not isinstance(context.get("state"), str):
            yield "turn needs context.state and context.now"
        if not isinstance(expected, dict) or not expected or set(expected) - TURN_FIELDS:
            yield f"turn {expected!r}"
