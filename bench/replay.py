"""Replay speed: ``rdv replay`` over a store of 10,000 real engine conversations.

The store is built once, in a temporary SQLite file: every caller turn of scripted callers
(bookings, transfers, menus, misses, hang-ups, practical questions), spread over two months of
a busy practice, decided by the engine and saved through the store as the turn loop saves it
(conversation, turn, events and booking in one transaction). Building is bounded
(``BUILD_SECONDS``): on a slow machine fewer conversations are replayed, and the figure says how
many. Then the replay reads them back and replays every turn, in process, as ``rdv replay`` does.

``python -m bench.replay [--conversations N]`` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from service.config import load_practice, load_settings
from service.engine.model import (
    Book,
    BookingDone,
    BookingsFound,
    CallerSaid,
    Conversation,
    Decision,
    FindBookings,
    Limits,
    TurnInput,
)
from service.engine.practice import Practice
from service.engine.states import BookingResult, Channel
from service.engine.step import step
from service.storage.base import BookingWrite, TurnRecord
from service.storage.codec import event_records
from service.storage.sqlite import SqliteStore
from service.tools.replay import replay_all, totals

CONVERSATIONS = 10_000
BUILD_SECONDS = 60.0
DAYS = 60
BUSY_DAY_CALLS = 300  # a busy practice's day of calls
BOOK = "bonjour je voudrais prendre rendez-vous"
NAMES = ("Jean Dupont", "Marie Curie", "Louise Petit", "Paul Martin", "Inès Brossard", "Hugo Lefèvre")
PREFERENCES = ("le matin", "l'après-midi", "pas de préférence", "jeudi matin", "plutôt en fin de semaine")
CHOICES = ("le premier", "le deuxième", "le dernier", "celui de 14h", "oui le troisième")
SCRIPTS: tuple[tuple[str, ...], ...] = (
    (BOOK, "{name}", "{pref}", "{choice}"),
    (BOOK, "je voudrais parler à quelqu'un"),
    ("blabla", "tralala", "4"),
    (BOOK, "{name}"),
    ("c'est où votre cabinet", "et vous êtes ouverts le samedi ?"),
    (BOOK, "euh", "je sais pas", "{name}", "{pref}"),
    ("je voudrais annuler mon rendez-vous",),
    (BOOK, "{name}", "bof", "aucun ne me va"),
)


def _perform(
    decision: Decision, conv_id: str, at: datetime, taken: set[datetime]
) -> tuple[TurnInput, BookingWrite | None]:
    """The store's answer to an action, from the calendar kept in memory while building."""
    action = decision.action
    if isinstance(action, Book):
        start = action.slot.start.astimezone(UTC)
        if start in taken:
            return BookingDone(BookingResult.SLOT_TAKEN), None
        write = BookingWrite(uuid.uuid4().hex, action.slot, conv_id, action.name, action.phone, at, action.replaces)
        return BookingDone(BookingResult.SUCCESS, write.booking_id), write
    if isinstance(action, FindBookings):
        return BookingsFound(()), None
    raise RuntimeError(f"the bench builder cannot perform {type(action).__name__}")


def scripted_turn(
    conv: Conversation, text: str, at: datetime, limits: Limits, practice: Practice, taken: set[datetime],
) -> tuple[list[Decision], BookingWrite | None]:
    """One caller turn through the engine, each action performed on the calendar kept in
    memory: the turn's decisions and the booking it wrote, if any."""
    decision = step(conv, CallerSaid(text), at, limits, practice, frozenset(taken))
    decisions, booking = [decision], None
    while decision.action is not None:
        result, write = _perform(decision, conv.conv_id, at, taken)
        booking = write or booking
        decision = step(decision.conversation, result, at, limits, practice, frozenset(taken))
        decisions.append(decision)
    return decisions, booking


async def _save_call(
    store: SqliteStore, index: int, at: datetime, practice: Practice, limits: Limits, taken: set[datetime],
) -> int:
    """One scripted call through the engine, every turn saved; returns its turns."""
    script = SCRIPTS[index % len(SCRIPTS)]
    fill = {"name": NAMES[index % len(NAMES)], "pref": PREFERENCES[index % len(PREFERENCES)],
            "choice": CHOICES[index % len(CHOICES)]}
    conv_id = f"bench-{index:05d}"
    channel = Channel.VOICE if index % 3 else Channel.TEXT
    conv = Conversation.new(conv_id, channel, at, caller_phone=f"+336{index:08d}")
    version: int | None = None
    for text in (line.format(**fill) for line in script):
        before = conv.state
        decisions, booking = scripted_turn(conv, text, at, limits, practice, taken)
        conv = decisions[-1].conversation
        events = [e for d in decisions for e in d.events]
        record = TurnRecord(conv_id, conv.turn_count, None, text, " ".join(d.reply for d in decisions if d.reply),
                            before.value, conv.state.value, at)
        version = await store.save_turn(conv, version, {}, record, event_records(conv_id, events, at), booking=booking)
        if booking is not None:
            taken.add(booking.slot.start.astimezone(UTC))
        at += timedelta(seconds=15)
    return len(script)


async def build(path: Path, count: int, practice: Practice, limits: Mapping[Channel, Limits],
                seconds: float = BUILD_SECONDS) -> tuple[int, int, float, datetime, datetime]:
    """Save up to ``count`` conversations within ``seconds``: (conversations, turns, seconds
    spent, first and last moment)."""
    store = SqliteStore(path)
    await store.open()
    first = datetime(2026, 1, 5, 7, 0, tzinfo=practice.timezone)
    spacing = timedelta(days=DAYS) / count
    started = time.perf_counter()
    taken: set[datetime] = set()
    made = turns = 0
    try:
        for i in range(count):
            if time.perf_counter() - started > seconds:
                break
            at = first + spacing * i
            turns += await _save_call(store, i, at, practice, limits[Channel.VOICE if i % 3 else Channel.TEXT], taken)
            made += 1
    finally:
        await store.close()
    return made, turns, time.perf_counter() - started, first, first + spacing * made + timedelta(hours=1)


async def _source(path: Path, since: datetime, until: datetime) -> Any:
    store = SqliteStore(path)
    await store.open()
    try:
        return await store.replay_source(since, until)
    finally:
        await store.close()


def measure(count: int = CONVERSATIONS, workdir: Path | None = None) -> dict[str, Any]:
    """Build the store, then time reading it back and replaying every conversation."""
    settings = load_settings({})
    practice = load_practice(settings.practice_file)
    with tempfile.TemporaryDirectory(prefix="rdv-bench-replay-", dir=workdir) as tmp:
        path = Path(tmp) / "replay.sqlite3"
        made, turns, build_s, since, until = asyncio.run(build(path, count, practice, settings.limits))
        started = time.perf_counter()
        source = asyncio.run(_source(path, since - timedelta(days=1), until))
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        results = replay_all(source, practice, settings.limits)
        replay_s = time.perf_counter() - started
    per_second = made / (read_s + replay_s)
    counts = totals(results)
    return {
        "replay_conversations": made,
        "replay_turns": turns,
        "replay_build_seconds": round(build_s, 1),
        "replay_read_seconds": round(read_s, 2),
        "replay_seconds": round(replay_s, 2),
        "replay_conversations_per_second": round(per_second),
        "replay_busy_day_seconds": round(BUSY_DAY_CALLS / per_second, 2),
        "replay_unchanged_share": round(counts["unchanged"] / max(made, 1), 4),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.replay``: the replay figures as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=CONVERSATIONS)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.conversations), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
