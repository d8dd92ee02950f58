"""SQLite's events, a turn's in one row (schema step 10): the ``events`` view reads them back
one event a row, as the table held them (ids in order, kinds, each event's data the JSON text
written); files of the previous schema keep their events; the readers (timeline, stats,
unconfirmed bookings), ``rdv forget`` and the purge see the same events as before."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from service.engine.model import Conversation
from service.engine.states import Outcome
from service.storage import SQLITE_FILE
from service.storage.base import BookingWrite, EventRecord
from service.storage.codec import FORGOTTEN, utc_text
from service.storage.migrations import EVENTS_PER_BATCH, SQLITE_STEPS
from service.storage.sqlite import SqliteStore
from tests.storage.test_contract import at, conversation, slot, turn
from tests.storage.test_sqlite_group_commit import committed, file_of_steps, write_conversation

# Data as the codec writes it (orjson, compact) and as Python's encoder writes what orjson
# refuses (spaces after separators): both are read back as written.
TRICKY = {"texte": "été \"cité\" \\ \n\t\u0000 \U0001f600", "n": 2.5, "big": 10**20, "list": [1, None, True],
          "nested": {"a": {"b": []}}}


def record(conv_id: str, minutes: float, kind: str, data: dict[str, object], encoded: str | None = None) -> EventRecord:
    return EventRecord(conv_id, at(minutes), kind, data, encoded)


def other_caller(conv_id: str, **changes: object) -> Conversation:
    """A conversation of another caller (+33699999999)."""
    conv = conversation(conv_id, **changes)
    return replace(conv, caller_phone="+33699999999", context=replace(conv.context, phone="+33699999999"))


def compact(event: EventRecord) -> str:
    """An event's data as the events view reads it: the text written, spaces between tokens left out."""
    return event.encoded or json.dumps(event.data, ensure_ascii=False, separators=(",", ":"))


def turn_events(conv_id: str, minutes: float) -> list[EventRecord]:
    """A turn's events: compact text, Python's text, a NUL in a kind, an event that names."""
    start = slot(1, 14).start.isoformat()
    return [
        record(conv_id, minutes, "StateEntered", {"state": "QUALIF"}, '{"state":"QUALIF"}'),
        record(conv_id, minutes, "Tricky", TRICKY),
        record(conv_id, minutes, "Odd\x00kind", {"n": 1}, '{"n":1}'),
        record(conv_id, minutes, "AppointmentConfirmed", {"slot_start": start, "name": "Élodie Durand"},
               json.dumps({"slot_start": start, "name": "Élodie Durand"}, ensure_ascii=False, separators=(",", ":"))),
        record(conv_id, minutes, "StateEntered", {"state": "DONE"}, '{"state":"DONE"}'),
    ]


async def test_a_turns_events_are_one_row_read_back_one_event_a_row(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / SQLITE_FILE)
    await store.open()
    written = turn_events("c1", 1)
    try:
        await store.save_turn(conversation("c1"), None, {}, turn("c1"), written)
        await store.save_turn(conversation("c2"), None, {}, turn("c2"), [record("c2", 2, "Alone", {"x": 1})])
        await store.save_turn(conversation("c1", turn_count=4), 1, {}, turn("c1", 2, "k2"),
                              [record("c1", 3, "StateEntered", {"state": "X"})])
        timeline = await store.timeline("c1")
        stats = await store.events_since(at(0), ("StateEntered", "Tricky", "Odd\x00kind", "Alone"))
    finally:
        await store.close()
    # The NUL kind is a batch of its own, between the turn's others.
    assert committed(store.path, "SELECT conv_id, count FROM event_batches ORDER BY id") == [
        ("c1", 2), ("c1", 1), ("c1", 2), ("c2", 1), ("c1", 1)]
    rows = committed(store.path, "SELECT id, conv_id, at, kind, data FROM events ORDER BY id")
    assert [(r[1], r[2], r[3], r[4]) for r in rows] == [
        *[("c1", utc_text(at(1)), e.kind, compact(e)) for e in written],
        ("c2", utc_text(at(2)), "Alone", '{"x":1}'),
        ("c1", utc_text(at(3)), "StateEntered", '{"state":"X"}'),
    ]
    assert [json.loads(r[4]) for r in rows[:5]] == [e.data for e in written]
    assert rows[0][0] == EVENTS_PER_BATCH and rows[1][0] == EVENTS_PER_BATCH + 1
    assert timeline is not None
    assert [(e["kind"], e["data"]) for e in timeline["events"]] == [
        *[(e.kind, e.data) for e in written], ("StateEntered", {"state": "X"})]
    assert [(e.conv_id, e.kind, e.data) for e in stats] == [
        ("c1", "StateEntered", {"state": "QUALIF"}), ("c1", "Tricky", TRICKY), ("c1", "Odd\x00kind", {"n": 1}),
        ("c1", "StateEntered", {"state": "DONE"}), ("c2", "Alone", {"x": 1}), ("c1", "StateEntered", {"state": "X"})]


async def test_forget_and_purge_reach_the_events_of_a_batch(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / SQLITE_FILE)
    await store.open()
    written = turn_events("c1", 1)
    try:
        await store.save_turn(conversation("c1"), None, {}, turn("c1"), written)
        await store.save_turn(other_caller("c2"), None, {}, turn("c2"),
                              turn_events("c2", 1))
        assert await store.forget_caller("+33612345678") == (1, 0)
        rows = committed(store.path, "SELECT kind, data FROM events WHERE conv_id = 'c1' ORDER BY id")
        assert rows == [(e.kind, "{}" if e.kind == "AppointmentConfirmed" else compact(e)) for e in written]
        other = committed(store.path, "SELECT count(*) FROM events WHERE conv_id = 'c2' AND data = '{}'")
        assert other == [(0,)]
        timeline = await store.timeline("c1")
        assert timeline is not None and timeline["turns"][0]["text"] == FORGOTTEN
        ended = conversation("c1", outcome=Outcome.CONFIRMED, last_seen_at=at(3))
        await store.save_turn(ended, 2, {}, None, [])  # the forget moved the version
        assert await store.purge_before(at(10)) == 1
    finally:
        await store.close()
    assert committed(store.path, "SELECT DISTINCT conv_id FROM event_batches") == [("c2",)]
    assert committed(store.path, "SELECT count(*) FROM events") == [(5,)]


async def test_a_file_of_the_previous_schema_keeps_its_events(tmp_path: Path) -> None:
    """Events stored one a row (step 9's file) become batches of one under their ids: read back
    as written, found by the stats, the timeline and the unconfirmed bookings, forgotten and
    purged; the events written after them come after them."""
    path = tmp_path / SQLITE_FILE
    old = [
        ("c1", "StateEntered", '{"state": "QUALIF", "texte": "été"}'),
        ("c1", "AppointmentConfirmed", json.dumps({"slot_start": slot(1, 14).start.isoformat(), "name": "É"})),
        ("c2", "Odd\x00kind", '{"n":1}'),
        ("c1", "StateEntered", '{"state":"DONE"}'),
    ]
    with contextlib.closing(file_of_steps(path, 9)) as conn:
        write_conversation(conn, conversation("c1"), turn("c1"))
        write_conversation(conn, other_caller("c2"), turn("c2"))
        for conv_id, kind, data in old:
            conn.execute("INSERT INTO events (conv_id, at, kind, data) VALUES (?, ?, ?, ?)",
                         (conv_id, utc_text(at(1)), kind, data))
        conn.execute("DELETE FROM events WHERE data = '{\"n\":1}'")  # ids need not follow each other
        conn.execute("INSERT INTO events (conv_id, at, kind, data) VALUES (?, ?, ?, ?)",
                     ("c2", utc_text(at(1)), "Odd\x00kind", '{"n":1}'))
        for n, start in enumerate((slot(1, 14), slot(1, 15))):
            conn.execute(
                "INSERT INTO bookings (id, slot_start, slot_end, conv_id, name, phone, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (f"b{n}", utc_text(start.start), utc_text(start.end), "c1", "É", "+33612345678", utc_text(at(1))),
            )
    ids_before = [1, 2, 4, 5]
    store = SqliteStore(path)
    await store.open()
    try:
        rows = committed(path, "SELECT id, conv_id, kind, data FROM events ORDER BY id")
        assert rows == [(i * EVENTS_PER_BATCH, c, k, d.replace(": ", ":").replace(", ", ","))
                        for i, (c, k, d) in zip(ids_before, [old[0], old[1], old[3], old[2]], strict=True)]
        unconfirmed = await store.unconfirmed_bookings()
        assert [b.booking_id for b in unconfirmed] == ["b1"]
        stats = await store.events_since(at(0), ("StateEntered", "Odd\x00kind"))
        assert [(e.conv_id, e.kind, e.data.get("state")) for e in stats] == [
            ("c1", "StateEntered", "QUALIF"), ("c1", "StateEntered", "DONE"), ("c2", "Odd\x00kind", None)]
        await store.save_turn(other_caller("c2", turn_count=4), 1, {}, turn("c2", 2, "k2"),
                              [record("c2", 5, "StateEntered", {"state": "NEW"}, '{"state":"NEW"}')])
        booked = BookingWrite("b2", slot(2, 9), "c2", "É", "+33699999999", at(5))
        await store.save_turn(other_caller("c2", turn_count=5), 2, {}, turn("c2", 3, "k3"), [], booking=booked)
        assert await store.forget_caller("+33612345678") == (1, 2)
        timeline = await store.timeline("c1")
        assert timeline is not None and [(e["kind"], e["data"]) for e in timeline["events"]] == [
            ("StateEntered", {"state": "QUALIF", "texte": "été"}), ("AppointmentConfirmed", {}),
            ("StateEntered", {"state": "DONE"})]
        other = await store.timeline("c2")
        assert other is not None and [e["kind"] for e in other["events"]] == ["Odd\x00kind", "StateEntered"]
        last = committed(path, "SELECT id FROM events ORDER BY id DESC LIMIT 1")
        assert last == [(6 * EVENTS_PER_BATCH,)]
        await store.save_turn(conversation("c1", outcome=Outcome.CONFIRMED), 2, {}, None, [])  # moved by the forget
        assert await store.purge_before(at(0) + timedelta(days=1)) == 1
    finally:
        await store.close()
    assert committed(path, "SELECT DISTINCT conv_id FROM events") == [("c2",)]
    assert committed(path, "SELECT max(version) FROM schema_version") == [(len(SQLITE_STEPS),)]
