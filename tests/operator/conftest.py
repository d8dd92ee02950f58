"""Operator-answer helpers: independent counts read from the SQLite file, scripted callers,
and the simulator pointed at a live app."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from service.storage import SQLITE_FILE
from service.tools.callers import parse_mix
from service.tools.simulate import SimConfig, simulate
from tests.conftest import Live

BOOK = "bonjour je voudrais prendre rendez-vous"
PHONE = "+33612345678"


def db_rows(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of a query on the service's SQLite file, read with the standard library only."""
    conn = sqlite3.connect(data_dir / SQLITE_FILE)
    try:
        return list(conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def independent_counts(data_dir: Path) -> dict[str, Any]:
    """The seed's numbers counted straight from the tables, without :mod:`service.stats`."""
    convs = db_rows(data_dir, "SELECT conv_id, state, outcome, ended_reason FROM conversations")
    outcomes = Counter(o for _, _, o, _ in convs)
    menu_open = sum(1 for _, s, o, _ in convs if o is None and s == "INTENT_ROUTER")
    abandoned = outcomes["abandoned"] + outcomes["expired"]
    total = len(convs)
    events = db_rows(data_dir, "SELECT conv_id, kind, data FROM events")
    results = [json.loads(d)["result"] for _, k, d in events if k == "BookingResulted"]
    lengths = [json.loads(d)["length"] for _, k, d in events if k == "SlotsSent"]
    phone_limit = {c for c, k, d in events if k == "RecoveryLimitReached" and json.loads(d)["field"] == "phone"}
    asked_phone = {c for c, k, d in events if k == "StateChanged" and json.loads(d)["to_state"] == "QUALIF_PHONE"}
    anti_loop = {c for c, k, _ in events if k == "AntiLoopTriggered"}
    return {
        "total_sessions": total,
        "confirmed_bookings": outcomes["confirmed"],
        "transferred": outcomes["transferred"],
        "intent_router": outcomes["intent_router"] + menu_open,
        "abandoned": abandoned,
        "conversion_rate": round(100 * outcomes["confirmed"] / total, 2) if total else 0.0,
        "abandon_rate": round(100 * abandoned / total, 2) if total else 0.0,
        "abandoned_by_state": dict(Counter(s for _, s, o, _ in convs if o in ("abandoned", "expired"))),
        "ended_reasons": dict(Counter(r for *_, r in convs if r)),
        "slot_taken": (results.count("slot_taken"), len(results)),
        "long_slots": (sum(1 for x in lengths if x > 350), len(lengths)),
        "phone_recovery": (len(phone_limit), len(asked_phone | phone_limit)),
        "anti_loop": (len(anti_loop), total),
    }


async def run_simulation(live: Live, mix: str, calls: int, *, transport: str = "text", seed: int = 7,
                         concurrency: int = 4, run_id: str = "t", channel: str = "voice",
                         synthetic: bool = False) -> dict[str, Any]:
    """``rdv simulate``'s engine against the live app, over HTTP through its ASGI interface
    (counted as real traffic unless ``synthetic``, bookings kept: the incidents are what the
    answers must see)."""
    config = SimConfig(
        url="http://rdv.test", calls=calls, concurrency=concurrency, mix=parse_mix(mix),
        seed=seed, transport=transport, timeout=60.0, run_id=run_id, channel=channel, synthetic=synthetic,
        keep_bookings=True,
    )
    return await simulate(config, live.client)


async def to_slots(live: Live, conv_id: str, **extra: Any) -> dict[str, Any]:
    """Drive one conversation to the slot proposal."""
    await live.say(conv_id, BOOK, **extra)
    await live.say(conv_id, "Jean Dupont", **extra)
    answer = await live.say(conv_id, "pas de préférence", **extra)
    assert answer["state"] == "WAIT_CONFIRM", answer
    return answer


async def confirmed_call(live: Live, conv_id: str, phone: str = PHONE) -> None:
    """One call that books a slot (the second, to leave the first ones to the racers)."""
    await to_slots(live, conv_id, caller_phone=phone)
    assert (await live.say(conv_id, "le troisième", caller_phone=phone))["state"] == "CONFIRMED"


_CHANGE = re.compile(r"\b([A-Z_]+) from (\S+) to (\d+)")
_SETTING = re.compile(r"\b(RECOVERY_LIMITS_[A-Z]+)=([^\s;]+)")
_SET = re.compile(r"\bset ([A-Z_]+)=(\d+)")


def apply_suggestion(env: dict[str, str], suggestion: str) -> dict[str, str]:
    """``env`` as an operator leaves it after following a diagnosis' suggestion (each
    ``VAR from a to b``, ``set VAR=b`` and ``RECOVERY_LIMITS_X=…`` it names)."""
    changed = dict(env)
    for pattern in (_SETTING, _SET):
        changed.update(dict(pattern.findall(suggestion)))
    for var, _, value in _CHANGE.findall(suggestion):
        if not var.startswith("RECOVERY_LIMITS"):
            changed[var] = value
    return changed


def suggested_changes(suggestion: str) -> list[tuple[str, str, str]]:
    """(variable, from, to) of each ``VAR from a to b`` of a suggestion."""
    return [tuple(m) for m in _CHANGE.findall(suggestion)]  # type: ignore[misc]
