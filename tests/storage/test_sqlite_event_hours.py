"""SQLite finds events by time through the hours' marks (schema step 13), not an index on
``at``: whatever the order batches are written in (a turn's moment is taken before its save,
several connections write one file), rolled back or deleted, ``events_since`` returns what a
full scan of the ``events`` view returns, and reads from a mark on, not the whole table."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.storage import SQLITE_FILE
from service.storage.base import EventRecord, StoreError
from service.storage.codec import utc_text
from service.storage.migrations import EVENT_HOUR_CHARS
from service.storage.sqlite import EVENTS_FROM, SqliteStore
from tests.storage.test_contract import at, conversation, turn
from tests.storage.test_sqlite_group_commit import committed

KINDS = ("StateEntered", "SlotsProposed")


def event(conv_id: str, minutes: float, kind: str = "StateEntered") -> EventRecord:
    return EventRecord(conv_id, at(minutes), kind, {"minutes": minutes})


def scanned(path: Path, minutes: float) -> list[tuple[str, float]]:
    """The events at or after ``at(minutes)`` by a full scan of the ``events`` view, in order."""
    rows = committed(path, "SELECT conv_id, kind, data FROM events WHERE at >= ? ORDER BY id", utc_text(at(minutes)))
    return [(str(r[0]), float(str(r[2]).split(":")[1].rstrip("}"))) for r in rows if r[1] in KINDS]


async def found(store: SqliteStore, minutes: float) -> list[tuple[str, float]]:
    return [(e.conv_id, float(e.data["minutes"])) for e in await store.events_since(at(minutes), KINDS)]


async def save(store: SqliteStore, conv_id: str, *minutes: float) -> None:
    """A new conversation whose first turn's events are at these moments (one batch each)."""
    await store.save_turn(conversation(conv_id), None, {}, turn(conv_id), [event(conv_id, m) for m in minutes])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    writes=st.lists(st.lists(st.integers(-300, 300), min_size=1, max_size=3), min_size=1, max_size=12),
    asked=st.lists(st.integers(-360, 360), min_size=1, max_size=4),
)
def test_events_since_finds_what_a_full_scan_finds_in_any_writing_order(
    tmp_path_factory: object, writes: list[list[int]], asked: list[int]
) -> None:
    """Batches over ten hours written in any order, some turns of one pass (one group), some
    alone: every moment asked for gets exactly the events a full scan finds, in order."""
    path = tmp_path_factory.mktemp("hours") / SQLITE_FILE  # type: ignore[attr-defined]

    async def scenario() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            for n, minutes in enumerate(writes):
                if n % 3 == 2:  # this turn and the next share a group
                    await asyncio.gather(save(store, f"c{n}", *minutes), save(store, f"c{n}b", minutes[0] + 90))
                else:
                    await save(store, f"c{n}", *minutes)
            for minutes in asked:
                assert await found(store, minutes) == scanned(path, minutes)
        finally:
            await store.close()

    asyncio.run(scenario())


async def test_the_smallest_mark_of_two_connections_is_kept(tmp_path: Path) -> None:
    """A worker marks an hour with a batch written before another worker's first batch of that
    hour: the earlier id stays the mark, so the first worker's batch is found."""
    path = tmp_path / SQLITE_FILE
    one, two = SqliteStore(path), SqliteStore(path)
    await one.open()
    await two.open()
    try:
        await save(one, "a", -120)  # one has marked another hour only
        await save(two, "b", 10)  # two marks this hour with its batch
        await save(one, "c", 20)  # one marks it too, with a later batch
        hour = utc_text(at(10))[:EVENT_HOUR_CHARS]
        first_b = committed(path, "SELECT id FROM event_batches WHERE conv_id = 'b'")[0][0]
        assert committed(path, "SELECT first_id FROM event_hours WHERE hour = ?", hour) == [(first_b,)]
        assert await found(one, 0) == [("b", 10.0), ("c", 20.0)] == scanned(path, 0)
    finally:
        await one.close()
        await two.close()


async def test_a_group_rolled_back_takes_its_marks_with_it(tmp_path: Path) -> None:
    """A turn marks an hour in a group that SQLite then rolls back (another turn of the group
    fails in SQLite itself): the mark is gone with it, and the turn written again marks the
    hour again, so its events are found."""
    store = SqliteStore(tmp_path / SQLITE_FILE)
    await store.open()
    try:
        store.conn.execute(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON event_batches WHEN instr(new.kinds, 'Refused') "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
        refused = EventRecord("x", at(30), "Refused", {})
        results = await asyncio.gather(
            save(store, "a", 30),
            store.save_turn(conversation("x"), None, {}, turn("x"), [refused]),
            return_exceptions=True,
        )
        assert all(isinstance(r, StoreError) for r in results), results
        assert committed(store.path, "SELECT count(*) FROM event_hours") == [(0,)]
        await save(store, "a", 30)
        assert await found(store, 0) == [("a", 30.0)]
    finally:
        await store.close()


async def test_ids_given_again_after_the_newest_batches_are_deleted_are_marked(tmp_path: Path) -> None:
    """When the newest batches are deleted (by another connection), SQLite gives their ids
    again: a batch whose id is below its hour's mark marks the hour again."""
    store = SqliteStore(tmp_path / SQLITE_FILE)
    await store.open()
    try:
        await save(store, "a", -120, 10)  # ids 1 (two hours before) and 2 (this hour's mark)
        with sqlite3.connect(store.path) as other:
            other.execute("DELETE FROM event_batches")
        await save(store, "b", 20)  # id 1 again, in this hour
        assert committed(store.path, "SELECT id FROM event_batches") == [(1,)]
        assert await found(store, 0) == [("b", 20.0)]
    finally:
        await store.close()


async def test_events_since_reads_from_the_mark_on_the_tables_own_order(tmp_path: Path) -> None:
    """The read of the batches is a range of the table's ids, not a scan of the table."""
    store = SqliteStore(tmp_path / SQLITE_FILE)
    await store.open()
    try:
        await save(store, "a", 10)
        plan = " ".join(str(r[3]) for r in store.conn.execute(f"EXPLAIN QUERY PLAN {EVENTS_FROM}", (1, "x")))
    finally:
        await store.close()
    assert "INTEGER PRIMARY KEY (rowid>?)" in plan, plan
