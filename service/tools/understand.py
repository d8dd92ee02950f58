"""``rdv understand``: JSON lines in, one JSON line out per input, for operators and evaluations.

Tasks: the first wave's per-field tasks (intent, name, preference, slot_choice, yes_no,
phone, filler) and ``turn``, the whole extraction of one caller turn (``context.state``,
``context.now``, ``context.slots``): every field found, dates ISO, times HH:MM, spans as
``[start, end]``. Date-times without a UTC offset are read in the practice's time zone
(Europe/Paris when no practice is given).
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from service.engine import nlu
from service.engine.model import Preference, Window
from service.engine.nlu.extract import BookingHint, ExtractContext, Extraction, PersonName, extract
from service.engine.practice import Practice

TASKS = ("intent", "name", "preference", "slot_choice", "yes_no", "phone", "filler", "turn")
DEFAULT_ZONE = ZoneInfo("Europe/Paris")


def _moment(raw: str, zone: ZoneInfo) -> datetime:
    moment = datetime.fromisoformat(raw)
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _slots(context: dict[str, Any], zone: ZoneInfo = DEFAULT_ZONE, required: bool = True) -> list[nlu.SlotRef]:
    raw = context.get("slots")
    if raw is None and not required:
        return []
    if not isinstance(raw, list) or (required and not raw):
        raise ValueError("slot_choice needs context.slots: a list of {\"start\": ISO, \"label\": ...}")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("start"), str):
            raise ValueError("each context.slots item needs a \"start\" ISO date-time")  # noqa: TRY004 - a bad input line
        out.append(nlu.SlotRef(_moment(item["start"], zone).astimezone(zone), str(item.get("label", ""))))
    return out


def _now(context: dict[str, Any], zone: ZoneInfo = DEFAULT_ZONE) -> datetime:
    raw = context.get("now")
    if not isinstance(raw, str):
        raise ValueError("preference needs context.now: an ISO date-time")  # noqa: TRY004 - a bad input line
    return _moment(raw, zone)


def _hm(moment: time | None) -> str | None:
    return None if moment is None else moment.strftime("%H:%M")


def _day(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _person(person: PersonName | None) -> dict[str, str | None] | None:
    return None if person is None else {"first": person.first, "last": person.last}


def _windows(windows: tuple[Window, ...]) -> list[list[str | None]]:
    return [[_hm(w.start), _hm(w.end)] for w in windows]


def preference_json(pref: Preference | None) -> dict[str, Any] | None:
    """A preference with every constraint, as JSON."""
    if pref is None:
        return None
    return {
        "period": pref.period, "day": _day(pref.day), "after": _hm(pref.after), "before": _hm(pref.before),
        "days": [d.isoformat() for d in pref.days], "weekdays": list(pref.weekdays),
        "not_days": [d.isoformat() for d in pref.not_days], "not_weekdays": list(pref.not_weekdays),
        "windows": _windows(pref.windows), "not_windows": _windows(pref.not_windows),
        "from_day": _day(pref.from_day), "until_day": _day(pref.until_day), "asap": pref.asap,
    }


def _target(hint: BookingHint | None) -> dict[str, Any] | None:
    if hint is None:
        return None
    return {"day": _day(hint.day), "weekday": hint.weekday, "day_of_month": hint.day_of_month, "at": _hm(hint.at),
            "relation": hint.relation, "patient": _person(hint.patient)}


def extraction_json(found: Extraction) -> dict[str, Any]:
    """Every field of an extraction as JSON (dates ISO, times HH:MM, spans ``[start, end]``)."""
    return {
        "intent": found.intent, "yes_no": found.yes_no, "filler": found.filler, "name": _person(found.name),
        "name_issue": found.name_issue, "patient": _person(found.patient), "relation": found.relation,
        "preference": preference_json(found.preference), "outside_hours": found.outside_hours,
        "phone": found.phone, "choice": found.choice, "target": _target(found.target), "corrected": found.corrected,
        "spans": {k: [v.start, v.end] for k, v in found.spans.items()},
    }


def turn(text: str, context: dict[str, Any], practice: Practice | None = None) -> dict[str, Any]:
    """The ``turn`` task: the whole extraction of one caller turn."""
    zone = practice.timezone if practice is not None else DEFAULT_ZONE
    state = context.get("state", "START")
    if not isinstance(state, str):
        raise ValueError("context.state must be a string (the state the assistant is in)")  # noqa: TRY004
    now = _now(context, zone).astimezone(zone)
    slots = tuple(_slots(context, zone, required=False))
    return extraction_json(extract(text, ExtractContext(state, now, slots, practice)))


def understand(record: Any, practice: Practice | None = None) -> dict[str, Any]:
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
        if task == "turn":
            return {"predicted": turn(text, context, practice)}
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


def run(stdin: TextIO, stdout: TextIO, practice: Practice | None = None) -> int:
    """Read JSON lines from ``stdin``, write one JSON answer line each to ``stdout``."""
    for line in stdin:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            answer: dict[str, Any] = {"error": f"invalid JSON: {exc}"}
        else:
            answer = understand(record, practice)
        stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        stdout.flush()
    return 0
