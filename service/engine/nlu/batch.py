"""``rdv understand``: JSON lines in, one JSON line out per input, for operators and evaluations."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TextIO

from service.engine import nlu

TASKS = ("intent", "name", "preference", "slot_choice", "yes_no", "phone", "filler")


def _slots(context: dict[str, Any]) -> list[nlu.SlotRef]:
    raw = context.get("slots")
    if not isinstance(raw, list) or not raw:
        raise ValueError("slot_choice needs context.slots: a list of {\"start\": ISO, \"label\": ...}")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("start"), str):
            raise ValueError("each context.slots item needs a \"start\" ISO date-time")  # noqa: TRY004 - a bad input line
        start = datetime.fromisoformat(item["start"])
        if start.tzinfo is None:
            raise ValueError("context.slots start must carry a UTC offset")
        out.append(nlu.SlotRef(start, str(item.get("label", ""))))
    return out


def _now(context: dict[str, Any]) -> datetime:
    raw = context.get("now")
    if not isinstance(raw, str):
        raise ValueError("preference needs context.now: an ISO date-time with offset")  # noqa: TRY004 - a bad input line
    now = datetime.fromisoformat(raw)
    if now.tzinfo is None:
        raise ValueError("context.now must carry a UTC offset")
    return now


def understand(record: Any) -> dict[str, Any]:
    """``{"predicted": value}`` for one record, or ``{"error": message}`` for a bad one."""
    if not isinstance(record, dict):
        return {"error": "each line must be a JSON object"}
    task = record.get("task")
    text = record.get("text")
    context = record.get("context") or {}
    if task not in TASKS:
        return {"error": f"unknown task {task!r}; expected one of {', '.join(TASKS)}"}
    if not isinstance(text, str):
        return {"error": "field \"text\" must be a string"}
    if not isinstance(context, dict):
        return {"error": "field \"context\" must be an object"}
    try:
        if task == "intent":
            return {"predicted": nlu.intent(text)}
        if task == "name":
            found = nlu.name(text)
            return {"predicted": None if found is None else {"first": found.first, "last": found.last}}
        if task == "preference":
            pref = nlu.preference(text, _now(context))
            return {"predicted": None if pref is None else {
                "period": pref.period,
                "day": pref.day.isoformat() if pref.day else None,
                "after": pref.after.strftime("%H:%M") if pref.after else None,
                "before": pref.before.strftime("%H:%M") if pref.before else None,
            }}
        if task == "slot_choice":
            return {"predicted": nlu.slot_choice(text, _slots(context))}
        if task == "yes_no":
            return {"predicted": nlu.yes_no(text)}
        if task == "phone":
            return {"predicted": nlu.phone(text)}
        return {"predicted": nlu.is_filler(text)}
    except ValueError as exc:
        return {"error": str(exc)}


def run(stdin: TextIO, stdout: TextIO) -> int:
    """Read JSON lines from ``stdin``, write one JSON answer line each to ``stdout``."""
    for line in stdin:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            answer: dict[str, Any] = {"error": f"invalid JSON: {exc}"}
        else:
            answer = understand(record)
        stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0
