"""PostgreSQL round trips: a turn reads once and writes once, and what the store answers from
that one read (taken and held slots) is what the database holds.

Round trips are counted on the wire: every write the client makes to the server's socket
(``bench.postgres.counting_connection``), prepares, transactions and pool resets included.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from bench.postgres import Writes, counting_connection, script_bodies
from service.engine.states import State
from service.storage.base import BookingWrite
from service.storage.migrations import POSTGRES_STEPS
from service.storage.postgres import _LOAD_CONVERSATION, PostgresStore
from tests.storage.test_contract import (
    Backend,
    at,
    conversation,
    create,
    events,
    slot,
    turn,
)

pytestmark = pytest.mark.postgres
HERE = Path(__file__).resolve().parent
PRACTICE = HERE.parent.parent / "bench" / "practice.toml"


async def counted(backend: Backend) -> tuple[PostgresStore, Writes]:
    """An opened store on ``backend`` whose round trips are counted."""
    assert backend.database_url is not None
    writes = Writes()
    store = PostgresStore(backend.database_url, connection_class=counting_connection(writes))
    backend.stores.append(store)
    await store.open()
    return store, writes


async def test_a_booking_conversation_costs_two_round_trips_per_turn(postgres: Backend, tmp_path: Path) -> None:
    """Greeting, name, preference (the calendar is searched, other callers' holds read) and
    choice (the slot is booked): each turn is one read and one write, once the statements
    are prepared; the conversation ends booked."""
    from service.config import load_settings
    from service.http.app import create_app

    store, writes = await counted(postgres)
    settings = load_settings({"RDV_DATA_DIR": str(tmp_path), "RDV_PRACTICE_FILE": str(PRACTICE)})
    app = create_app(settings, store=store, reaper=False)
    per_turn: list[list[int]] = []
    states: list[str] = []
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://rdv.test")
    async with app.router.lifespan_context(app), client:
        for n in range(3):  # the first conversation prepares the statements
            conv = f"rt{n}_{uuid.uuid4().hex[:6]}"
            trips: list[int] = []
            for body in script_bodies(n):
                before = writes.count
                answer = await client.post(f"/api/conversations/{conv}/messages", json=body)
                assert answer.status_code == 200, answer.text
                trips.append(writes.count - before)
                states.append(answer.json()["state"])
            per_turn.append(trips)
        assert len(await store.find_bookings("+33612345678", at(-60 * 24 * 365))) == 3
    assert states[-4:] == [State.QUALIF_NAME.value, State.QUALIF_PREF.value, State.WAIT_CONFIRM.value,
                           State.CONFIRMED.value]
    assert per_turn[1:] == [[2, 2, 2, 2], [2, 2, 2, 2]], per_turn


async def test_a_keyed_turn_reads_its_key_and_conversation_in_one_round_trip(postgres: Backend) -> None:
    """``find_turn`` then ``load`` (a Vapi turn with a request key) is one round trip; the
    loaded conversation is the stored one, and a second load reads the database again."""
    store, writes = await counted(postgres)
    await create(store, conversation())
    trips = []
    for _ in range(2):  # prepared on the first pass
        before = writes.count
        assert await store.find_turn("conv_1", "absent") is None
        stored = await store.load("conv_1")
        trips.append(writes.count - before)
    assert trips[1] == 1
    assert stored is not None and stored.conversation == conversation() and stored.version == 1
    found = await store.find_turn("conv_1", "req-1")
    assert found == turn()
    other, _ = await counted(postgres)
    await other.save_turn(conversation(turn_count=4), 1, {}, None, [])
    assert (await store.load("conv_1")).version == 1  # type: ignore[union-attr]  # from find_turn's read
    again = await store.load("conv_1")
    assert again is not None and again.version == 2


async def plans_of(store: PostgresStore, statement: str) -> list[tuple[int, int]]:
    """(generic, custom) plans the store's connection made for ``statement``."""
    async with store._connection() as conn:
        rows = await conn.fetch(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", statement
        )
    return [(int(r["generic_plans"]), int(r["custom_plans"])) for r in rows]


async def test_the_turn_read_is_planned_once_per_connection(postgres: Backend) -> None:
    """The turn's read is planned once per connection, for any parameters: first run with
    those of a process that has read nothing yet (no held or taken slots), then with a
    window and a generation once many bookings changed (the server's default kept
    planning it anew on every call in both cases)."""
    store, writes = await counted(postgres)
    await create(store, conversation())
    for _ in range(6):
        before = writes.count
        stored = await store.load("conv_1")
        assert stored is not None and stored.conversation == conversation()
    assert writes.count - before == 1  # one connection: the plans below are all of the calls
    assert await plans_of(store, _LOAD_CONVERSATION) == [(6, 0)]
    assert postgres.database_url is not None
    conn = await asyncpg.connect(postgres.database_url)
    try:
        await conn.execute(
            "INSERT INTO booking_changes (gen, slot_start, active) "
            "SELECT g, now() + g * interval '1 minute', g % 2 = 0 FROM generate_series(1, 3000) AS g"
        )
        await conn.execute("UPDATE bookings_generation SET n = 3000, kept_from = 0")
        await conn.execute("ANALYZE booking_changes")
    finally:
        await conn.close()
    start, end = at(-60), at(60 * 24 * 10)
    assert await store.taken_slots(start, end) == frozenset()
    for _ in range(6):
        await store.load("conv_1")
        await store.taken_slots(start, end)
    assert await plans_of(store, _LOAD_CONVERSATION) == [(12, 0)]


async def test_reads_by_time_off_the_turn_path_are_planned_for_their_parameters(postgres: Backend) -> None:
    """The operator's reads by time are planned for their parameters (a generic plan reads
    every event to find an hour's), and the turn's read after them still is not."""
    store, _ = await counted(postgres)
    await create(store, conversation())
    await store.load("conv_1")
    assert await store.events_since(at(-60), ("TurnReceived",)) == []
    assert await plans_of(store, "SELECT * FROM events WHERE at >= $1 AND kind = ANY($2::text[]) ORDER BY id") \
        == [(0, 1)]
    await store.load("conv_1")
    assert await plans_of(store, _LOAD_CONVERSATION) == [(2, 0)]


async def test_a_plan_cache_mode_in_the_url_is_kept(postgres: Backend) -> None:
    """An operator's plan_cache_mode in the URL's query wins over the store's own, for
    every call."""
    assert postgres.database_url is not None
    for url, mode in ((postgres.database_url, "force_generic_plan"),
                      (f"{postgres.database_url}&plan_cache_mode=force_custom_plan", "force_custom_plan")):
        store = PostgresStore(url)
        postgres.stores.append(store)
        await store.open()
        async with store._connection() as conn:
            assert await conn.fetchval("SHOW plan_cache_mode") == mode
    await create(store, conversation())
    await store.events_since(at(-60), ("TurnReceived",))
    await store.load("conv_1")
    assert await plans_of(store, _LOAD_CONVERSATION) == [(0, 1)]


async def test_taken_slots_from_the_read_follow_other_replicas_bookings(postgres: Backend) -> None:
    """Taken slots answered from the conversation read (no round trip of their own) include
    a booking another replica made since the last read, and a cancellation frees its slot."""
    store, writes = await counted(postgres)
    other, _ = await counted(postgres)
    start, end = at(-60), at(60 * 24 * 10)
    await create(store, conversation("conv_a"))
    await create(other, conversation("conv_b"))
    assert await store.taken_slots(start, end) == frozenset()
    await store.load("conv_a")  # prepared
    booking = BookingWrite(uuid.uuid4().hex, slot(2, 10), "conv_b", "Léa", None, at(5))
    stored_b = await other.load("conv_b")
    assert stored_b is not None
    await other.save_turn(stored_b.conversation, stored_b.version, {}, None, events("conv_b"), booking=booking)
    before = writes.count
    await store.load("conv_a")
    assert await store.taken_slots(start, end) == {slot(2, 10).start}
    assert writes.count - before == 1
    # Nothing moved: the next read answers from what the process holds.
    before = writes.count
    await store.load("conv_a")
    assert await store.taken_slots(start, end) == {slot(2, 10).start}
    assert writes.count - before == 1
    released = await other.release_bookings([booking.booking_id], at(6))
    assert released == 1
    await store.load("conv_a")
    assert await store.taken_slots(start, end) == frozenset()
    # Without a read just before, taken slots are read on their own.
    before = writes.count
    assert await store.taken_slots(start, end) == frozenset()
    assert writes.count - before == 1


async def test_taken_slots_follow_other_replicas_by_their_changes_alone(postgres: Backend) -> None:
    """Once a replica holds the taken slots, a read brings only the slots booked or freed
    since (the process's set is updated from them, not read whole), and what it then answers
    is what the database holds: bookings, a cancellation, a slot booked and freed again. A
    purge of old bookings starts the changes over: the next read brings the whole set."""
    store, writes = await counted(postgres)
    other, _ = await counted(postgres)
    start, end = at(-60 * 24 * 3), at(60 * 24 * 10)
    await create(store, conversation("conv_a"))
    await create(other, conversation("conv_b"))

    async def book(day: int, hour: int) -> str:
        stored = await other.load("conv_b")
        assert stored is not None
        booking = BookingWrite(uuid.uuid4().hex, slot(day, hour), "conv_b", "Léa", None, at(5))
        await other.save_turn(stored.conversation, stored.version, {}, None, [], booking=booking)
        return booking.booking_id

    async def truth() -> frozenset[Any]:
        fresh, _ = await counted(postgres)
        return await fresh.taken_slots(start, end)

    ids = {(day, hour): await book(day, hour) for day in (-2, 1, 2) for hour in (9, 10, 11)}
    await store.load("conv_a")
    assert await store.taken_slots(start, end) == await truth()  # read whole: the first time
    await store.load("conv_a")  # prepared
    moved = {await book(3, 9), await book(3, 10)}
    assert await other.release_bookings([ids[(1, 9)], *moved - {min(moved)}], at(6)) == 2
    before = writes.count
    await store.load("conv_a")
    taken = await store.taken_slots(start, end)
    assert writes.count - before == 1
    assert taken == await truth()
    assert slot(3, 9).start in taken or slot(3, 10).start in taken
    assert slot(1, 9).start not in taken
    changed = getattr(taken, "changed", None)  # the process's set, moved by the changes alone
    assert changed == {slot(1, 9).start, slot(3, 9).start, slot(3, 10).start}
    assert await other.purge_before(at(-60 * 24)) >= 0  # the bookings of two days ago go
    before = writes.count
    await store.load("conv_a")
    taken = await store.taken_slots(start, end)
    assert writes.count - before == 1
    assert taken == await truth()
    assert slot(-2, 9).start not in taken
    assert getattr(taken, "changed", None) is None  # read whole after the purge


async def test_a_cancelled_booking_rewritten_keeps_its_slot_taken_by_another(postgres: Backend) -> None:
    """A caller forgotten rewrites their cancelled booking's row while another caller's
    booking holds the same slot: the replicas following the changes still hold it taken."""
    store, _ = await counted(postgres)
    other, _ = await counted(postgres)
    start, end = at(-60), at(60 * 24 * 10)
    await create(store, conversation("conv_a"))
    for conv_id in ("conv_b", "conv_c"):
        await create(other, conversation(conv_id))

    async def book(conv_id: str, phone: str) -> str:
        stored = await other.load(conv_id)
        assert stored is not None
        booking = BookingWrite(uuid.uuid4().hex, slot(2, 10), conv_id, "Léa", phone, at(5))
        await other.save_turn(stored.conversation, stored.version, {}, None, [], booking=booking)
        return booking.booking_id

    await store.load("conv_a")
    assert await store.taken_slots(start, end) == frozenset()
    await store.load("conv_a")  # prepared: later reads bring the changes alone
    first = await book("conv_b", "+33611112222")
    assert await other.release_bookings([first], at(6)) == 1
    await book("conv_c", "+33633334444")
    await store.load("conv_a")
    assert await store.taken_slots(start, end) == {slot(2, 10).start}
    assert await other.forget_caller("+33611112222") == (0, 1)
    await store.load("conv_a")
    taken = await store.taken_slots(start, end)
    assert getattr(taken, "changed", None) is not None, "followed by the changes, not read whole"
    assert taken == {slot(2, 10).start}


async def test_held_slots_from_the_read_are_other_callers_proposals_since_the_window(postgres: Backend) -> None:
    """Held slots answered from the conversation read are the proposals of other callers
    still choosing and seen within the window asked for: not the caller's own, not an ended
    conversation's, not a caller's seen before the window."""
    store, writes = await counted(postgres)
    def choosing(conv_id: str, seen: float, *proposed: Any, state: State = State.WAIT_CONFIRM) -> Any:
        base = conversation(conv_id, last_seen_at=at(seen), state=state)
        return dataclasses.replace(base, context=dataclasses.replace(base.context, proposed=proposed))

    for conv in (
        choosing("conv_me", 10, slot(3, 11)),
        choosing("conv_other", 10, slot(3, 9), slot(3, 10)),
        choosing("conv_stale", -30, slot(4, 9)),
        choosing("conv_done", 10, slot(5, 9), state=State.CONFIRMED),
    ):
        await store.save_turn(conv, None, {}, turn(conv.conv_id), [])
    since = at(0)
    # The first hold window of the process is read on its own; later ones come with the read.
    assert await store.held_slots(since, "conv_me") == {slot(3, 9).start, slot(3, 10).start}
    await store.load("conv_me")  # prepared
    before = writes.count
    await store.load("conv_me")
    assert await store.held_slots(since + timedelta(seconds=1), "conv_me") == {slot(3, 9).start, slot(3, 10).start}
    assert writes.count - before == 1
    # The other caller booked: their holds are gone.
    stored = await store.load("conv_other")
    assert stored is not None
    await store.save_turn(dataclasses.replace(stored.conversation, state=State.CONFIRMED), stored.version, {}, None, [])
    await store.load("conv_me")
    assert await store.held_slots(since + timedelta(seconds=2), "conv_me") == frozenset()


async def test_a_database_of_the_previous_schema_migrates(postgres: Backend) -> None:
    """A schema left by the previous version (steps 1–5) with a caller choosing and a
    booking: the new store migrates it, holds the caller's proposals and sees the booking."""
    assert postgres.database_url is not None
    conn = await asyncpg.connect(postgres.database_url)
    try:
        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, statements in enumerate(POSTGRES_STEPS[:5], start=1):
            for statement in statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
    finally:
        await conn.close()
    old = await postgres.opened()
    # Written by the previous code path: no proposed column yet, so drop what step 6 adds.
    await create(old, conversation("conv_old", last_seen_at=at(10)))
    await old.close()
    conn = await asyncpg.connect(postgres.database_url)
    try:
        async with conn.transaction():
            await conn.execute("DELETE FROM schema_version WHERE version >= 6")
            # Step 8 undone, then step 6.
            await conn.execute("DROP TRIGGER bookings_inserted ON bookings")
            await conn.execute("DROP TRIGGER bookings_updated ON bookings")
            await conn.execute("DROP FUNCTION rdv_bookings_written()")
            await conn.execute("DROP TABLE booking_changes")
            await conn.execute("DROP TRIGGER bookings_changed ON bookings")
            await conn.execute("DROP FUNCTION rdv_bookings_changed(), rdv_conflict(TEXT)")
            await conn.execute("DROP TABLE bookings_generation")
            await conn.execute("ALTER TABLE conversations DROP COLUMN proposed")
            await conn.execute(
                "INSERT INTO bookings (id, slot_start, slot_end, conv_id, name, phone, created_at) "
                "VALUES ('b-old', $1, $2, 'conv_old', 'Ana', NULL, $3)",
                slot(6, 9).start, slot(6, 9).end, at(1),
            )
    finally:
        await conn.close()
    store = await postgres.opened()
    assert await postgres.schema_versions() == list(range(1, len(POSTGRES_STEPS) + 1))
    assert await store.held_slots(at(0), "conv_new") == {s.start for s in conversation().context.proposed}
    assert await store.taken_slots(at(-60), at(60 * 24 * 10)) == {slot(6, 9).start}
    stored = await store.load("conv_old")
    assert stored is not None and stored.conversation == conversation("conv_old", last_seen_at=at(10))


async def test_a_read_at_the_version_this_store_saved_is_not_decoded_again(postgres: Backend) -> None:
    """The read still goes to the database (one round trip: another replica may have saved
    since); when it finds the version this store saved, the conversation is the one saved
    (its own moments in UTC, as a row reads); at another replica's version, the row."""
    store, writes = await counted(postgres)
    other, _ = await counted(postgres)
    saved = conversation("conv_k")
    await create(store, saved, {"span": "a"})
    first = await store.load("conv_k")
    assert first is not None and first.version == 1 and first.meta == {"span": "a"}
    assert first.conversation == saved and first.conversation.context is saved.context
    assert first.conversation.last_seen_at.utcoffset() == timedelta(0)
    first.meta["span"] = "changed by its caller"
    before = writes.count
    again = await store.load("conv_k")
    assert writes.count - before == 1  # prepared: one round trip, as every turn's read
    assert again is not None and again.meta == {"span": "a"} and again.conversation.context is saved.context

    theirs = dataclasses.replace(saved, turn_count=7)
    assert await other.save_turn(theirs, 1, {"span": "b"}, None, []) == 2
    read = await store.load("conv_k")
    assert read is not None and read.version == 2 and read.meta == {"span": "b"}
    assert read.conversation == theirs and read.conversation.context is not saved.context
