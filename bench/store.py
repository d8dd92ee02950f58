"""The store's CPU per turn: a SQLite store on a temporary file, in process.

Turns are decided beforehand by the engine (the callers of :mod:`bench.replay`, each turn with
a request key, Vapi calls with a call id), then saved as the turn loop saves them: the stored
turn looked up by its key, the conversation loaded, its events encoded, and the turn saved
(with its booking, if any) until the COMMIT of its group. ``--concurrency`` callers run at
once, each through whole conversations, so that a group holds several turns as under load.
The figure is the process's CPU time (every thread: the checkpoints too) divided by the
turns, the best of ``--rounds`` rounds after one to warm up, each on a new file.

``python -m bench.store [--calls N] [--rounds N] [--concurrency N]`` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.replay import CHOICES, NAMES, PREFERENCES, SCRIPTS, scripted_turn
from service.config import load_practice, load_settings
from service.engine.events import Event
from service.engine.model import Conversation
from service.engine.states import Channel
from service.storage.base import BookingWrite, TurnRecord
from service.storage.codec import event_records
from service.storage.sqlite import SqliteStore

CALLS = 1500
ROUNDS = 5
CONCURRENCY = 8


@dataclass(frozen=True, slots=True)
class Turn:
    """One decided caller turn, as the turn loop hands it to the store."""

    conv: Conversation
    record: TurnRecord
    events: list[Event]
    booking: BookingWrite | None
    meta: dict[str, Any]


def decide(calls: int) -> list[list[Turn]]:
    """The turns of ``calls`` scripted calls, per conversation, all moments in UTC."""
    settings = load_settings({})
    practice = load_practice(settings.practice_file)
    first = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    taken: set[datetime] = set()
    conversations: list[list[Turn]] = []
    for index in range(calls):
        script = SCRIPTS[index % len(SCRIPTS)]
        fill = {"name": NAMES[index % len(NAMES)], "pref": PREFERENCES[index % len(PREFERENCES)],
                "choice": CHOICES[index % len(CHOICES)]}
        conv_id = f"bench-{uuid.uuid4().hex}"
        channel = Channel.VOICE if index % 3 else Channel.TEXT
        limits = settings.limits[channel]
        at = first + timedelta(minutes=7 * index)
        conv = Conversation.new(conv_id, channel, at, caller_phone=f"+336{index:08d}",
                                vapi_call_id=uuid.uuid4().hex if channel is Channel.VOICE else None)
        turns: list[Turn] = []
        for n, text in enumerate(line.format(**fill) for line in script):
            before = conv.state
            decisions, booking = scripted_turn(conv, text, at, limits, practice, taken)
            conv = decisions[-1].conversation
            record = TurnRecord(
                conv_id, conv.turn_count, f"{conv_id}-{n}", text, " ".join(d.reply for d in decisions if d.reply),
                before.value, conv.state.value, at, trace_id=uuid.uuid4().hex,
            )
            meta = {"trace_id": record.trace_id, "state_span": uuid.uuid4().hex[:16], "state": conv.state.value,
                    "state_since": conv.state_entered_at.isoformat()}
            turns.append(Turn(conv, record, [e for d in decisions for e in d.events], booking, meta))
            if booking is not None:
                taken.add(booking.slot.start.astimezone(UTC))
            at += timedelta(seconds=15)
        conversations.append(turns)
    return conversations


async def _save_all(path: Path, lanes: list[list[Turn]]) -> float:
    """Save every lane's turns (the lanes at once); the CPU seconds spent."""
    store = SqliteStore(path)
    await store.open()

    async def caller(turns: list[Turn]) -> None:
        for t in turns:
            conv_id = t.conv.conv_id
            key = t.record.request_key
            assert key is not None
            if await store.find_turn(conv_id, key) is not None:
                raise RuntimeError(f"turn {key} already stored")
            stored = await store.load(conv_id)
            version = None if stored is None else stored.version
            records = event_records(conv_id, t.events, t.record.at)
            await store.save_turn(t.conv, version, t.meta, t.record, records, booking=t.booking)

    try:
        started = time.process_time()
        await asyncio.gather(*(caller(lane) for lane in lanes))
        return time.process_time() - started
    finally:
        await store.close()


def measure(calls: int = CALLS, rounds: int = ROUNDS, concurrency: int = CONCURRENCY) -> dict[str, Any]:
    """Decide the turns, then time saving them ``rounds`` times (after one warm-up round)."""
    conversations = decide(calls)
    lanes: list[list[Turn]] = [[] for _ in range(concurrency)]
    for i, turns in enumerate(conversations):
        lanes[i % concurrency].extend(turns)
    count = sum(len(lane) for lane in lanes)
    spent: list[float] = []
    for _ in range(rounds + 1):
        with tempfile.TemporaryDirectory(prefix="rdv-bench-store-") as tmp:
            spent.append(asyncio.run(_save_all(Path(tmp) / "store.sqlite3", lanes)))
    return {
        "store_turns": count,
        "store_events_per_turn": round(sum(len(t.events) for c in conversations for t in c) / count, 2),
        "store_bookings": sum(1 for c in conversations for t in c if t.booking is not None),
        "store_concurrency": concurrency,
        "store_cpu_us_per_turn": round(min(spent[1:]) / count * 1e6, 1),
        "store_cpu_us_per_turn_rounds": [round(s / count * 1e6, 1) for s in spent[1:]],
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.store``: the store's CPU per turn as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=CALLS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.calls, args.rounds, args.concurrency), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
