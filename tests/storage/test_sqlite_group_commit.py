"""SQLite group commit and turn-path caches, on real files: the turns saved in one pass of the
event loop share one transaction; a turn's save returns only once that transaction is
committed; a failing turn rolls back alone (the group's first turn with the transaction, a
booking or cancelling one with its savepoint, any other one before its first write); an error
of SQLite itself rolls back the whole group; what a queued turn wrote
(proposals, bookings) is seen at once by the turns that follow on this connection; the
caches follow other connections' commits."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.engine.calendar import TakenSlots
from service.engine.model import Conversation, Slot
from service.engine.states import Outcome, State
from service.storage import SQLITE_FILE
from service.storage import sqlite as sqlite_module
from service.storage.base import (
    BookingWrite,
    CancelWrite,
    ConcurrentTurnError,
    DuplicateTurnError,
    SlotTakenError,
    StoreError,
    TurnRecord,
)
from service.storage.codec import conversation_values, utc_text
from service.storage.migrations import SQLITE_STEPS
from service.storage.sql import INSERT_TURN
from service.storage.sqlite import INSERT_CONVERSATION, SqliteStore
from tests.storage.test_contract import at, conversation, events, slot, turn
from tests.support import NOW

WINDOW = (NOW - timedelta(days=1), NOW + timedelta(days=30))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An opened store on a fresh file."""
    found = SqliteStore(tmp_path / SQLITE_FILE)
    await found.open()
    yield found
    await found.close()


def committed(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    """What another connection reads: only committed rows."""
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql, args))


def booking(conv_id: str, wanted: Slot, booking_id: str | None = None) -> BookingWrite:
    return BookingWrite(booking_id or f"b-{conv_id}", wanted, conv_id, "Élodie Durand", "+33612345678", at(1))


async def test_a_save_returns_after_the_commit_that_holds_it(store: SqliteStore) -> None:
    """While the group is open, another connection does not see the turn; once its save
    returned, it does."""
    save = asyncio.ensure_future(store.save_turn(conversation("c1"), None, {}, turn("c1"), events("c1")))
    await asyncio.sleep(0)  # the save ran up to its wait for the COMMIT
    assert not save.done()
    assert committed(store.path, "SELECT count(*) FROM conversations") == [(0,)]
    assert await save == 1
    assert committed(store.path, "SELECT conv_id FROM conversations") == [("c1",)]
    assert committed(store.path, "SELECT count(*) FROM events") == [(2,)]


async def test_turns_of_one_pass_share_one_transaction_and_fail_alone(store: SqliteStore) -> None:
    """Four turns saved in one pass: the one with a stale version and the one whose slot the
    first took fail at once (their savepoints rolled back, their bookings too); the two others
    commit, with their bookings and turns."""
    for conv_id in ("c1", "c2", "c3", "c4"):
        await store.save_turn(conversation(conv_id), None, {}, turn(conv_id), [])
    wanted, other = slot(3, 10), slot(3, 11)
    results = await asyncio.gather(
        store.save_turn(conversation("c1", turn_count=5), 1, {}, turn("c1", 2, "k2"), [],
                        booking=booking("c1", wanted)),
        store.save_turn(conversation("c2", turn_count=5), 7, {}, turn("c2", 2, "k2"), [], booking=booking("c2", other)),
        store.save_turn(conversation("c3", turn_count=5), 1, {}, turn("c3", 2, "k2"), [],
                        booking=booking("c3", wanted)),
        store.save_turn(conversation("c4", turn_count=5), 1, {}, turn("c4", 2, "k2"), events("c4")),
        return_exceptions=True,
    )
    assert results[0] == 2 and results[3] == 2
    assert isinstance(results[1], ConcurrentTurnError)
    assert isinstance(results[2], SlotTakenError)
    assert committed(store.path, "SELECT conv_id FROM bookings ORDER BY 1") == [("c1",)]
    assert committed(store.path, "SELECT conv_id, version FROM conversations ORDER BY 1") == [
        ("c1", 2), ("c2", 1), ("c3", 1), ("c4", 2),
    ]
    assert committed(store.path, "SELECT conv_id FROM turns WHERE turn = 2 ORDER BY 1") == [("c1",), ("c4",)]


async def test_turns_without_a_savepoint_fail_alone(store: SqliteStore) -> None:
    """Turns of one pass that neither book nor cancel: the first one fails (a stale version)
    and rolls its transaction back; of the others, a duplicate and a stale version write
    nothing, and the two others commit with their turns and events."""
    for conv_id in ("c1", "c2", "c3", "c4", "c5"):
        await store.save_turn(conversation(conv_id), None, {}, turn(conv_id), [])
    results = await asyncio.gather(
        store.save_turn(conversation("c1", turn_count=5), 7, {}, turn("c1", 2, "k2"), events("c1", 2)),
        store.save_turn(conversation("c2", turn_count=5), 1, {"m": 2}, turn("c2", 2, "k2"), events("c2", 2)),
        store.save_turn(conversation("c3", turn_count=5), 1, {}, turn("c3", 2), events("c3", 2)),  # req-1 again
        store.save_turn(conversation("c4", turn_count=5), 3, {}, turn("c4", 2, "k2"), events("c4", 2)),
        store.save_turn(conversation("c5", turn_count=5), 1, {}, turn("c5", 2, "k2"), events("c5", 2, "A", "B", "C")),
        return_exceptions=True,
    )
    assert isinstance(results[0], ConcurrentTurnError)
    assert results[1] == 2
    assert isinstance(results[2], DuplicateTurnError)
    assert isinstance(results[3], ConcurrentTurnError)
    assert results[4] == 2
    assert committed(store.path, "SELECT conv_id, version, turn_count, meta FROM conversations ORDER BY 1") == [
        ("c1", 1, 3, "{}"), ("c2", 2, 5, '{"m":2}'), ("c3", 1, 3, "{}"), ("c4", 1, 3, "{}"), ("c5", 2, 5, "{}"),
    ]
    assert committed(store.path, "SELECT conv_id FROM turns WHERE turn = 2 ORDER BY id") == [("c2",), ("c5",)]
    assert committed(store.path, "SELECT conv_id, kind FROM events ORDER BY id") == [
        ("c2", "StateEntered"), ("c2", "SlotsProposed"), ("c5", "A"), ("c5", "B"), ("c5", "C"),
    ]


async def test_the_turn_that_began_the_group_rolls_it_back_alone(store: SqliteStore) -> None:
    """The first turn of a pass loses its slot after its conversation was written: the
    transaction it began is rolled back (nothing of it stays), and the turn saved next in the
    same pass commits in a group of its own."""
    wanted = slot(3, 10)
    for conv_id in ("c1", "c2", "c3"):
        await store.save_turn(conversation(conv_id), None, {}, turn(conv_id), [])
    await store.save_turn(conversation("c3", turn_count=5), 1, {}, turn("c3", 2, "k2"), [],
                          booking=booking("c3", wanted))
    results = await asyncio.gather(
        store.save_turn(conversation("c1", turn_count=5), 1, {}, turn("c1", 2, "k2"), events("c1", 2),
                        booking=booking("c1", wanted)),
        store.save_turn(conversation("c2", turn_count=5), 1, {}, turn("c2", 2, "k2"), events("c2", 2)),
        return_exceptions=True,
    )
    assert isinstance(results[0], SlotTakenError) and results[1] == 2
    assert committed(store.path, "SELECT conv_id, version FROM conversations ORDER BY 1") == [
        ("c1", 1), ("c2", 2), ("c3", 2),
    ]
    assert committed(store.path, "SELECT conv_id FROM turns WHERE turn = 2 ORDER BY 1") == [("c2",), ("c3",)]
    assert committed(store.path, "SELECT DISTINCT conv_id FROM events") == [("c2",)]
    assert committed(store.path, "SELECT conv_id FROM bookings") == [("c3",)]


async def test_an_error_of_sqlite_after_a_turn_wrote_rolls_back_its_group(store: SqliteStore) -> None:
    """A turn without a savepoint fails in SQLite itself after its conversation was written
    (a trigger refuses its event): the whole group is rolled back, every turn of it hears the
    failure, and nothing of the group is committed."""
    for conv_id in ("c1", "c2"):
        await store.save_turn(conversation(conv_id), None, {}, turn(conv_id), [])
    store.conn.execute(
        "CREATE TEMP TRIGGER refuse BEFORE INSERT ON event_batches WHEN instr(new.kinds, 'Refused') "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    results = await asyncio.gather(
        store.save_turn(conversation("c1", turn_count=5), 1, {}, turn("c1", 2, "k2"), events("c1", 2)),
        store.save_turn(conversation("c2", turn_count=5), 1, {}, turn("c2", 2, "k2"), events("c2", 2, "Refused")),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreError) for r in results), results
    assert committed(store.path, "SELECT conv_id, version FROM conversations ORDER BY 1") == [("c1", 1), ("c2", 1)]
    assert committed(store.path, "SELECT count(*) FROM turns WHERE turn = 2") == [(0,)]
    assert committed(store.path, "SELECT count(*) FROM events") == [(0,)]
    store.conn.execute("DROP TRIGGER refuse")
    assert await store.save_turn(conversation("c2", turn_count=5), 1, {}, turn("c2", 2, "k2"), events("c2", 2)) == 2


async def test_a_queued_proposal_is_held_for_the_next_caller_before_its_commit(store: SqliteStore) -> None:
    """A turn that proposed slots and waits for its COMMIT: a caller decided in the same pass
    already finds them held (and a booking queued there already taken)."""
    await store.save_turn(conversation("c2", state=State.QUALIF_PREF), None, {}, turn("c2"), [])
    choosing = conversation("c1", last_seen_at=NOW)
    wanted = slot(4, 9)
    seen: list[tuple[frozenset[datetime], frozenset[datetime], list[tuple[object, ...]]]] = []

    async def next_caller() -> None:
        held = await store.held_slots(NOW - timedelta(minutes=2), "c2")
        taken = await store.taken_slots(*WINDOW)
        seen.append((held, taken, committed(store.path, "SELECT count(*) FROM bookings")))

    await store.taken_slots(*WINDOW)
    await store.held_slots(NOW - timedelta(minutes=2), "c2")
    await asyncio.gather(
        store.save_turn(choosing, None, {}, turn("c1"), [], booking=booking("c1", wanted)), next_caller()
    )
    held, taken, on_disk = seen[0]
    assert on_disk == [(0,)], "read before the group committed"
    assert held == {s.start.astimezone(UTC) for s in choosing.context.proposed}
    assert wanted.start.astimezone(UTC) in taken
    # Its own proposals are never held against the caller they were made to.
    assert await store.held_slots(NOW - timedelta(minutes=2), "c1") == frozenset()


async def test_held_and_taken_follow_another_process(store: SqliteStore, tmp_path: Path) -> None:
    """Another store on the same file (another worker) proposes, books and cancels: this one's
    held and taken slots follow each of its commits; a caller who stops choosing (booked,
    ended) no longer holds anything."""
    other = SqliteStore(store.path)
    await other.open()
    try:
        since = NOW - timedelta(minutes=2)
        assert await store.held_slots(since, "x") == frozenset()
        assert await store.taken_slots(*WINDOW) == frozenset()
        await other.save_turn(conversation("c1", last_seen_at=NOW), None, {}, turn("c1"), [])
        await asyncio.sleep(0)  # a new pass: the store looks at data_version again
        proposed = {s.start.astimezone(UTC) for s in conversation().context.proposed}
        assert await store.held_slots(since, "x") == proposed
        wanted = slot(6, 10)
        await other.save_turn(
            conversation("c1", state=State.CONFIRMED, outcome=Outcome.CONFIRMED, turn_count=5, last_seen_at=NOW),
            1, {}, turn("c1", 2, "k2"), [], booking=booking("c1", wanted),
        )
        await asyncio.sleep(0)
        assert await store.held_slots(since, "x") == frozenset()
        assert await store.taken_slots(*WINDOW) == {wanted.start.astimezone(UTC)}
        await other.save_turn(
            conversation("c1", state=State.CONFIRMED, outcome=Outcome.CONFIRMED, turn_count=6, last_seen_at=NOW),
            2, {}, turn("c1", 3, "k3"), [], cancel=CancelWrite("b-c1", at(3)),
        )
        await asyncio.sleep(0)
        assert await store.taken_slots(*WINDOW) == frozenset()
        # A proposal older than the hold is not held.
        assert await store.held_slots(NOW + timedelta(minutes=1), "x") == frozenset()
    finally:
        await other.close()


async def test_own_bookings_cancellations_and_lost_races_keep_the_taken_cache(store: SqliteStore) -> None:
    """This store's own booking, cancellation, move and lost race change the taken slots it
    answers (read from its cache, never stale against what is committed)."""
    first, second, third = slot(2, 9), slot(2, 10), slot(2, 11)
    await store.save_turn(conversation("c1"), None, {}, turn("c1"), [])
    await store.save_turn(conversation("c2"), None, {}, turn("c2"), [])
    assert await store.taken_slots(*WINDOW) == frozenset()
    await store.save_turn(conversation("c1", turn_count=5), 1, {}, turn("c1", 2, "k2"), [],
                          booking=booking("c1", first))
    assert await store.taken_slots(*WINDOW) == {first.start.astimezone(UTC)}
    moved = replace(booking("c1", second, "b-c1-moved"), replaces="b-c1")
    await store.save_turn(conversation("c1", turn_count=6), 2, {}, turn("c1", 3, "k3"), [], booking=moved)
    assert await store.taken_slots(*WINDOW) == {second.start.astimezone(UTC)}
    # Another connection books the third slot; this store then loses the race for it.
    with sqlite3.connect(store.path) as conn:
        conn.execute(
            "INSERT INTO bookings (id, slot_start, slot_end, conv_id, name, phone, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            ("b-x", third.start.astimezone(UTC).isoformat(timespec="microseconds"),
             third.end.astimezone(UTC).isoformat(timespec="microseconds"), "x", "X", None,
             NOW.astimezone(UTC).isoformat(timespec="microseconds")),
        )
    with pytest.raises(SlotTakenError):
        await store.save_turn(conversation("c2", turn_count=5), 1, {}, turn("c2", 2, "k2"), [],
                              booking=booking("c2", third))
    assert await store.taken_slots(*WINDOW) == {second.start.astimezone(UTC), third.start.astimezone(UTC)}
    await store.save_turn(conversation("c1", turn_count=7), 3, {}, turn("c1", 4, "k4"), [],
                          cancel=CancelWrite("b-c1-moved", at(5)))
    assert await store.taken_slots(*WINDOW) == {third.start.astimezone(UTC)}
    committed_taken = committed(store.path, "SELECT slot_start FROM bookings WHERE cancelled_at IS NULL")
    assert {datetime.fromisoformat(str(r[0])) for r in committed_taken} == await store.taken_slots(*WINDOW)


async def test_another_write_commits_the_open_group_first(store: SqliteStore) -> None:
    """A write that is not a turn's save (a lease) while a group is open: the group commits
    first, its turn is released, and both are stored."""
    save = asyncio.ensure_future(store.save_turn(conversation("c1"), None, {}, turn("c1"), []))
    await asyncio.sleep(0)
    assert await store.try_lock("reaper", "me", NOW + timedelta(minutes=1), NOW)
    assert committed(store.path, "SELECT count(*) FROM conversations") == [(1,)]
    assert await save == 1
    assert committed(store.path, "SELECT holder FROM leases") == [("me",)]


def file_of_steps(path: Path, steps: int) -> sqlite3.Connection:
    """A new file with the first ``steps`` schema steps only, as an older version left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(SQLITE_STEPS[:steps], start=1):
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return conn


def write_conversation(conn: sqlite3.Connection, conv: Conversation, record: TurnRecord) -> None:
    """A conversation (version 1) and one of its turns, as the store writes them."""
    conn.execute(INSERT_CONVERSATION, (*conversation_values(conv), "{}"))
    conn.execute(INSERT_TURN, (
        record.conv_id, record.turn, record.request_key, record.text, record.reply, record.state_before,
        record.state_after, utc_text(record.at), int(record.interrupted), record.directive, record.trace_id,
    ))


async def test_a_file_of_the_previous_schema_moves_its_event_index(tmp_path: Path) -> None:
    """A file written with events indexed by (kind, at) migrates in place: no index on ``at``
    is left (the hours' marks of step 13 replace it), its events are still read by time and
    kind, and new ones are written."""
    path = tmp_path / SQLITE_FILE
    with contextlib.closing(file_of_steps(path, 6)) as conn:
        for kind in ("StateEntered", "SlotsProposed"):
            conn.execute("INSERT INTO events (conv_id, at, kind, data) VALUES (?, ?, ?, ?)",
                         ("c1", utc_text(at(1)), kind, '{"n":1}'))
    store = SqliteStore(path)
    await store.open()
    try:
        await store.save_turn(conversation("c2"), None, {}, turn("c2"), events("c2", 2, "SlotsProposed"))
        found = await store.events_since(at(0), ("SlotsProposed",))
        assert [(e.conv_id, e.kind) for e in found] == [("c1", "SlotsProposed"), ("c2", "SlotsProposed")]
    finally:
        await store.close()
    indexes = {r[0] for r in committed(path, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "event_batches_at" not in indexes and "events_kind_at" not in indexes
    assert committed(path, "SELECT hour FROM event_hours") == [(utc_text(at(0))[:13],)]
    assert committed(path, "SELECT max(version) FROM schema_version") == [(len(SQLITE_STEPS),)]


async def test_a_file_of_the_previous_schema_merges_its_turn_indexes(tmp_path: Path) -> None:
    """A file whose turns are indexed by (conv_id, id) and by request key, and whose call ids
    are all indexed, migrates in place (step 9): one unique index on (conv_id, request_key)
    replaces both, call ids are indexed when set; turns written before and after are found by
    their key and read in order, a duplicate key is still refused, turns without a key never
    conflict, and a conversation is still found by its call id."""
    path = tmp_path / SQLITE_FILE
    with contextlib.closing(file_of_steps(path, 8)) as conn:
        write_conversation(conn, conversation("c1", vapi_call_id="call-1"), turn("c1", 1, "k1"))
        write_conversation(conn, conversation("c2"), turn("c2", 1, "k1"))
    store = SqliteStore(path)
    await store.open()
    try:
        loaded = await store.load("c1")
        assert loaded is not None
        version = await store.save_turn(loaded.conversation, loaded.version, {}, turn("c1", 2, "k2"), [])
        version = await store.save_turn(loaded.conversation, version, {}, turn("c1", 3, None), [])
        version = await store.save_turn(loaded.conversation, version, {}, turn("c1", 4, None), [])
        with pytest.raises(DuplicateTurnError):
            await store.save_turn(loaded.conversation, version, {}, turn("c1", 5, "k1"), [])
        found = await store.find_turn("c1", "k1")
        assert found is not None and found.turn == 1
        assert await store.conversation_ids_by_call("call-1") == "c1"
        timeline = await store.timeline("c1")
        assert timeline is not None and [t["turn"] for t in timeline["turns"]] == [1, 2, 3, 4]
    finally:
        await store.close()
    indexes = {r[0]: r[1] for r in committed(
        path, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('turns', 'conversations')")}
    assert "turns_conv" not in indexes and "turns_request_key" not in indexes
    assert "UNIQUE" in indexes["turns_conv_key"]
    assert "WHERE vapi_call_id IS NOT NULL" in indexes["conversations_call"]
    assert committed(path, "SELECT max(version) FROM schema_version") == [(len(SQLITE_STEPS),)]


async def test_the_wal_starts_over_under_a_writer_that_never_pauses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Turns saved back to back: the checkpoint thread copies the WAL and has it start over
    (the file is cut back to its size limit) instead of letting it grow with every commit,
    several times, the saves held on the loop meanwhile: none finds the file locked and
    goes through the writer thread."""
    monkeypatch.setattr(sqlite_module, "WAL_RESTART_FRAMES", 100)
    monkeypatch.setattr(sqlite_module, "WAL_SIZE_LIMIT", 0)
    store = SqliteStore(tmp_path / SQLITE_FILE)
    through_thread: list[str] = []
    off_loop = store._off_loop

    async def counted(fn: Callable[..., Any], *args: Any) -> Any:
        through_thread.append(getattr(fn, "__name__", repr(fn)))
        return await off_loop(fn, *args)

    monkeypatch.setattr(store, "_off_loop", counted)
    await store.open()
    wal = Path(f"{store.path}-wal")
    try:
        largest, size, n, restarts = 0, 0, 0, 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and restarts < 3:
            n += 1
            await store.save_turn(conversation(f"c{n}"), None, {}, turn(f"c{n}"), events(f"c{n}"))
            size = wal.stat().st_size
            if size < largest:
                restarts += 1  # the WAL started over and was cut back
            largest = size
        assert restarts == 3, f"the WAL started over {restarts} times over {n} saves"
        assert through_thread == []
        assert committed(store.path, "SELECT count(*) FROM conversations") == [(n,)]
    finally:
        await store.close()


async def test_saves_wait_while_the_wal_starts_over(store: SqliteStore) -> None:
    """Once the checkpoint thread is told the saves are held, the open group is committed
    and a save waits, writing nothing, until they are let go."""
    first = asyncio.ensure_future(store.save_turn(conversation("c1"), None, {}, turn("c1"), events("c1")))
    await asyncio.sleep(0)  # c1 queued in a group
    held = threading.Event()
    store._hold_writes(held)
    assert held.is_set()
    assert committed(store.path, "SELECT conv_id FROM conversations") == [("c1",)]
    await first
    second = asyncio.ensure_future(store.save_turn(conversation("c2"), None, {}, turn("c2"), events("c2")))
    await asyncio.sleep(0.05)
    assert not second.done()
    assert committed(store.path, "SELECT conv_id FROM conversations") == [("c1",)]
    store._release_writes()
    assert await second == 1
    assert committed(store.path, "SELECT conv_id FROM conversations ORDER BY 1") == [("c1",), ("c2",)]


def booking_row(booking_id: str, wanted: Slot) -> tuple[str | None, ...]:
    """The bookings row for ``wanted``, as another process writes it."""
    return (booking_id, wanted.start.astimezone(UTC).isoformat(timespec="microseconds"),
            wanted.end.astimezone(UTC).isoformat(timespec="microseconds"), "x", "X", None,
            NOW.astimezone(UTC).isoformat(timespec="microseconds"))


async def test_a_lost_race_does_not_hide_what_else_the_winner_committed(store: SqliteStore) -> None:
    """Another process commits two bookings at once (one group), and this store then loses
    the race for one of them: the other one is taken in its answers too (the lost race must
    not mark the cache as up to date with that commit)."""
    contested, other = slot(3, 9), slot(3, 14)
    await store.save_turn(conversation("c1"), None, {}, turn("c1"), [])
    assert await store.taken_slots(*WINDOW) == frozenset()
    with sqlite3.connect(store.path) as conn:
        conn.executemany(
            "INSERT INTO bookings (id, slot_start, slot_end, conv_id, name, phone, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [booking_row("b-x", contested), booking_row("b-y", other)],
        )
    with pytest.raises(SlotTakenError):
        await store.save_turn(conversation("c1", turn_count=5), 1, {}, turn("c1", 2, "k2"), [],
                              booking=booking("c1", contested))
    for _ in range(2):  # in the retry's pass and in the next one
        assert await store.taken_slots(*WINDOW) == {contested.start.astimezone(UTC), other.start.astimezone(UTC)}
        await asyncio.sleep(0)


async def test_a_race_lost_to_a_turn_of_the_same_pass_keeps_the_taken_cache(store: SqliteStore) -> None:
    """Two turns of one pass book one slot: the second loses to a booking of this very
    connection, so the taken slots are kept and grown by it (a set made from the previous one,
    not read back), and the slot is taken in the answer of the retry's pass."""
    for conv_id in ("c1", "c2"):
        await store.save_turn(conversation(conv_id), None, {}, turn(conv_id), [])
    before = await store.taken_slots(*WINDOW)
    wanted = slot(4, 10)
    results = await asyncio.gather(
        store.save_turn(conversation("c1", turn_count=5), 1, {}, turn("c1", 2, "k2"), [],
                        booking=booking("c1", wanted)),
        store.save_turn(conversation("c2", turn_count=5), 1, {}, turn("c2", 2, "k2"), [],
                        booking=booking("c2", wanted)),
        return_exceptions=True,
    )
    assert results[0] == 2 and isinstance(results[1], SlotTakenError)
    after = await store.taken_slots(*WINDOW)
    assert after == {wanted.start.astimezone(UTC)}
    assert isinstance(after, TakenSlots) and after.changed == {wanted.start.astimezone(UTC)}
    assert before == frozenset()


async def test_a_call_given_up_on_fails_without_an_asyncio_report(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection keeps the file locked past the store timeout: the turn's save
    hears StoreError, and the writer thread's own failure, which nobody awaits any more,
    is not reported by asyncio as an exception never retrieved."""
    store.timeout = 0.05
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError):
            await store.save_turn(conversation("c1"), None, {}, turn("c1"), [])
        deadline = time.monotonic() + 10
        while store._queued and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert store._queued == 0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert await store.save_turn(conversation("c1"), None, {}, turn("c1"), []) == 1


async def test_taken_slots_follow_another_workers_bookings_by_their_changes(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another connection books, cancels, releases and purges: this store's taken slots catch
    up with the changed starts only (a set made from the previous one, so that the calendar's
    memo carries over), a change outside the window leaves them as they are, and when the
    purge has trimmed changes this store never read, they are read whole again."""
    first, second, third, fourth, far = slot(2, 9), slot(2, 10), slot(3, 11), slot(3, 12), slot(60, 9)
    with sqlite3.connect(store.path) as conn:
        conn.execute("INSERT INTO bookings (id, slot_start, slot_end, conv_id, name, phone, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", booking_row("b-1", first))
    before = await store.taken_slots(*WINDOW)
    assert before == {first.start.astimezone(UTC)}
    with sqlite3.connect(store.path) as conn:
        conn.executemany("INSERT INTO bookings (id, slot_start, slot_end, conv_id, name, phone, created_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", [booking_row("b-2", second), booking_row("b-far", far)])
        conn.execute("UPDATE bookings SET cancelled_at = ? WHERE id = 'b-1'", (utc_text(NOW),))
        conn.execute("UPDATE bookings SET name = 'Y' WHERE id = 'b-2'")  # not a change of its slot
    await asyncio.sleep(0)
    after = await store.taken_slots(*WINDOW)
    assert after == {second.start.astimezone(UTC)}
    assert isinstance(after, TakenSlots) and after.changed == {first.start.astimezone(UTC),
                                                                second.start.astimezone(UTC)}
    with sqlite3.connect(store.path) as conn:  # the slot booked again, its old booking deleted
        conn.execute("INSERT INTO bookings (id, slot_start, slot_end, conv_id, name, phone, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", booking_row("b-1bis", first))
        conn.execute("DELETE FROM bookings WHERE id = 'b-1'")
    await asyncio.sleep(0)
    assert await store.taken_slots(*WINDOW) == {first.start.astimezone(UTC), second.start.astimezone(UTC)}
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT count(*) FROM booking_changes").fetchone() == (6,)
    other = SqliteStore(store.path)
    await other.open()
    try:
        await other.save_turn(conversation("c1"), None, {}, turn("c1"), [], booking=booking("c1", third))
        await other.save_turn(conversation("c2"), None, {}, turn("c2"), [], booking=booking("c2", fourth))
        monkeypatch.setattr(sqlite_module, "BOOKING_CHANGES_KEPT", 1)
        assert await other.purge_before(NOW - timedelta(days=1)) == 0
    finally:
        await other.close()
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT seq FROM booking_changes").fetchall() == [(8,)]
    await asyncio.sleep(0)
    whole = await store.taken_slots(*WINDOW)
    assert whole == {s.start.astimezone(UTC) for s in (first, second, third, fourth)}
    assert not isinstance(whole, TakenSlots)  # read whole: the changes before were trimmed


async def test_a_file_of_the_previous_schema_records_its_booking_changes(tmp_path: Path) -> None:
    """A file of step 10 with bookings migrates in place (step 11): its bookings are read
    whole once, then another connection's changes are followed."""
    path = tmp_path / SQLITE_FILE
    with contextlib.closing(file_of_steps(path, 10)) as conn:
        conn.execute("INSERT INTO bookings (id, slot_start, slot_end, conv_id, name, phone, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", booking_row("b-1", slot(2, 9)))
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.taken_slots(*WINDOW) == {slot(2, 9).start.astimezone(UTC)}
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE bookings SET cancelled_at = ? WHERE id = 'b-1'", (utc_text(NOW),))
        await asyncio.sleep(0)
        after = await store.taken_slots(*WINDOW)
        assert after == frozenset() and isinstance(after, TakenSlots)
    finally:
        await store.close()
    assert committed(path, "SELECT max(version) FROM schema_version") == [(len(SQLITE_STEPS),)]


async def test_held_slots_follow_another_worker_reading_only_the_conversations_it_changed(
    store: SqliteStore,
) -> None:
    """Another store on the same file commits: this store reads again the proposals of the
    conversations whose row changed only (their last seen or context), drops those no longer
    choosing, and sees a caller forgotten by another process hold nothing any more."""
    other = SqliteStore(store.path)
    await other.open()
    read: list[str] = []
    try:
        since = NOW - timedelta(minutes=2)
        first = conversation("c1", last_seen_at=NOW)
        await other.save_turn(first, None, {}, turn("c1"), [])
        moved = replace(first.context, proposed=(slot(7, 9), slot(7, 10), slot(7, 11)))
        second = conversation("c2", last_seen_at=NOW, context=moved, caller_phone="+33700000000")
        await other.save_turn(second, None, {}, turn("c2"), [])
        await asyncio.sleep(0)
        proposed = {s.start.astimezone(UTC) for s in first.context.proposed}
        assert await store.held_slots(since, "x") == proposed | {s.start.astimezone(UTC) for s in moved.proposed}
        store.conn.set_trace_callback(read.append)
        again = replace(moved, proposed=(slot(8, 9),))
        await other.save_turn(replace(second, context=again), 1, {}, turn("c2", 2, "k2"), [])
        await asyncio.sleep(0)
        assert await store.held_slots(since, "x") == proposed | {slot(8, 9).start.astimezone(UTC)}
        proposals = [sql for sql in read if "json_each" in sql]
        assert len(proposals) == 1 and "'c2'" in proposals[0] and "'c1'" not in proposals[0]
        await other.save_turn(replace(first, state=State.CONFIRMED, outcome=Outcome.CONFIRMED), 1, {},
                              turn("c1", 2, "k2"), [])
        await asyncio.sleep(0)
        assert await store.held_slots(since, "x") == {slot(8, 9).start.astimezone(UTC)}
        assert await other.forget_caller("+33700000000") == (1, 0)
        await asyncio.sleep(0)
        assert await store.held_slots(since, "x") == frozenset()
    finally:
        store.conn.set_trace_callback(None)
        await other.close()


async def test_a_conversation_this_store_saved_is_loaded_as_saved_until_another_connection_writes(
    store: SqliteStore, tmp_path: Path,
) -> None:
    """The next turn of a conversation this store saved loads it without reading its row
    (the objects saved, its own moments in UTC as from a row), with a meta of its own;
    another worker's save of it is seen at its next pass."""
    saved = conversation("c1", turn_count=3)
    await store.save_turn(saved, None, {"state_span": "a" * 16}, turn("c1"), [])
    first = await store.load("c1")
    assert first is not None and first.conversation == saved and first.version == 1
    assert first.conversation.context is saved.context  # not read back and decoded
    assert first.conversation.last_seen_at.tzinfo is UTC  # its moments in UTC, as a row reads
    first.meta["state_span"] = "changed by its caller"
    second = await store.load("c1")
    assert second is not None and second.meta == {"state_span": "a" * 16}

    other = SqliteStore(store.path)
    await other.open()
    try:
        theirs = replace(saved, turn_count=4, caller_phone="+33698765432")
        await other.save_turn(theirs, 1, {"by": "other"}, turn("c1", 2, "k2"), [])
        await asyncio.sleep(0)  # a new pass: the store looks at data_version again
        again = await store.load("c1")
        assert again is not None and again.version == 2
        assert again.conversation.turn_count == 4 and again.conversation.caller_phone == "+33698765432"
        assert again.meta == {"by": "other"}
    finally:
        await other.close()


async def test_a_save_that_finds_the_version_moved_reads_the_conversation_again(store: SqliteStore) -> None:
    """Another connection commits between this store's look at data_version and the turn's
    save, in the same pass: the save fails on the version, and the load that follows (still
    in that pass) reads the row instead of what this store had saved."""
    await store.save_turn(conversation("c1"), None, {}, turn("c1"), [])
    await asyncio.sleep(0)
    loaded = await store.load("c1")  # looks at data_version: nothing new
    assert loaded is not None and loaded.version == 1
    with sqlite3.connect(store.path) as raw:
        raw.execute("UPDATE conversations SET version = 2, turn_count = 9 WHERE conv_id = 'c1'")
    with pytest.raises(ConcurrentTurnError):
        await store.save_turn(replace(loaded.conversation, turn_count=2), 1, {}, turn("c1", 2, "k2"), [])
    again = await store.load("c1")
    assert again is not None and again.version == 2 and again.conversation.turn_count == 9


async def test_a_forgotten_caller_is_not_loaded_back_from_what_the_store_saved(store: SqliteStore) -> None:
    """Erasing a caller's data drops what the store kept of their conversations: the next
    turn loads the erased row, not the number and name it saved."""
    await store.save_turn(conversation("c1", caller_phone="+33612345678"), None, {}, turn("c1"), [])
    assert await store.forget_caller("+33612345678") == (1, 0)
    loaded = await store.load("c1")
    assert loaded is not None and loaded.version == 2
    assert loaded.conversation.caller_phone is None
    assert loaded.conversation.context.phone is None and loaded.conversation.context.last_name is None


async def test_a_lease_or_a_signature_keeps_the_caches(store: SqliteStore) -> None:
    """Writing a lease or a Vapi signature (on every signed Vapi request) changes nothing the
    caches hold: the taken slots and the saved conversation stay, the open group is committed."""
    await store.save_turn(conversation("c1"), None, {}, turn("c1"), [])
    assert await store.taken_slots(*WINDOW) == frozenset()
    assert await store.try_lock("reaper", "me", NOW + timedelta(minutes=1), NOW)
    assert await store.remember_signature("sha256:abc", NOW, NOW - timedelta(minutes=10))
    assert store._taken_window == WINDOW
    assert "c1" in store._convs
    assert committed(store.path, "SELECT count(*) FROM conversations") == [(1,)]


def _temporary_files() -> list[str]:
    """The files SQLite made for itself (``etilqs_…``, deleted at once) this process holds open."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if "etilqs_" in target:
                found.append(target)
    return found


async def test_a_group_journals_its_savepoints_in_memory(store: SqliteStore) -> None:
    """A booking turn of a group writes inside a savepoint, whose journal holds every page the
    turn changes (about twenty in a file of some size, a page of each table and index it
    touches): past SQLite's 64 KiB, that journal stays in memory instead of going to a
    temporary file created, written and deleted in each group."""
    for n in range(60):  # tables and indexes of several pages each
        await asyncio.gather(*(
            store.save_turn(conversation(f"old{n}_{i}"), None, {}, turn(f"old{n}_{i}"), events(f"old{n}_{i}"),
                            booking=booking(f"old{n}_{i}", slot(1 + (n * 20 + i) // 10, 8 + i % 10)))
            for i in range(20)
        ))
    saved = [await store.load(f"old{n}_5") for n in range(0, 60, 6)]
    assert all(s is not None for s in saved)
    saves = [asyncio.create_task(store.save_turn(conversation("first"), None, {}, turn("first"), []))] + [
        asyncio.create_task(store.save_turn(
            replace(s.conversation, turn_count=s.conversation.turn_count + 1), s.version, {},
            turn(s.conversation.conv_id, 2, "k2"), events(s.conversation.conv_id, 2),
            booking=booking(s.conversation.conv_id, slot(200 + k, 9), f"again-{k}"),
        ))
        for k, s in enumerate(saved) if s is not None
    ]
    await asyncio.sleep(0)  # every save ran up to its wait for the group's COMMIT, not yet made
    assert not any(s.done() for s in saves)
    assert store.conn.in_transaction, "the group is still open"
    assert _temporary_files() == []
    await asyncio.gather(*saves)
    assert committed(store.path, "SELECT count(*) FROM bookings WHERE id LIKE 'again-%'") == [(10,)]
