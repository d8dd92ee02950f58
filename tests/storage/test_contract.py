"""One contract for every store: in-memory SQLite, a SQLite file and PostgreSQL answer the
same calls the same way, on real databases.

PostgreSQL is ``RDV_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``);
each test gets a fresh schema, dropped afterwards. When the server is unreachable its cases
are skipped with the reason, except with ``CI=true`` where they fail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import os
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import asyncpg  # type: ignore[import-untyped]
import pytest

from service.engine.model import BookingRef, Context, Conversation, Preference, Slot
from service.engine.states import BookingResult, Channel, Outcome, State
from service.storage import SQLITE_FILE, open_store
from service.storage.base import (
    BookingGoneError,
    BookingWrite,
    CancelWrite,
    ConcurrentTurnError,
    DuplicateTurnError,
    EventRecord,
    SlotTakenError,
    Store,
    StoreError,
    TurnRecord,
)
from service.storage.migrations import POSTGRES_STEPS, SQLITE_STEPS
from tests.support import NOW

POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
KINDS = ("memory", "sqlite", "postgres")
UTC_TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


# -- backends ------------------------------------------------------------------------------
def postgres_base_url() -> str:
    """The PostgreSQL server the tests may use."""
    return os.environ.get("RDV_TEST_POSTGRES_URL", "").strip() or POSTGRES_DEFAULT


def postgres_unreachable(reason: str) -> NoReturn:
    """Skip with a visible reason, except on CI where a missing PostgreSQL is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL required on CI: {reason}")
    pytest.skip(f"PostgreSQL unreachable: {reason}")


async def postgres_admin(sql: str) -> None:
    """Run ``sql`` on the test server's default schema."""
    conn = await asyncio.wait_for(asyncpg.connect(postgres_base_url()), 5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (probed once per session), or None when it can."""
    try:
        asyncio.run(postgres_admin("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - refused, timed out, auth, missing database
        return f"{postgres_base_url()}: {type(exc).__name__}: {exc}"
    return None


@dataclasses.dataclass
class Backend:
    """One database under test; ``make()`` gives another store on the same database."""

    kind: str
    database_url: str | None
    data_dir: Path
    stores: list[Store] = dataclasses.field(default_factory=list)

    @property
    def shared(self) -> bool:
        """True when a second store instance sees the same data (not for ``memory:``)."""
        return self.kind != "memory"

    def make(self) -> Store:
        """A new, not yet opened store on this database (closed at teardown)."""
        store = open_store(self.database_url, self.data_dir)
        self.stores.append(store)
        return store

    async def opened(self) -> Store:
        """A new store on this database, opened (and so migrated)."""
        store = self.make()
        await store.open()
        return store

    async def schema_versions(self) -> list[int]:
        """The rows of ``schema_version``, read straight from the database."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.data_dir / SQLITE_FILE) as conn:
                return [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
            assert self.database_url is not None
        conn = await asyncpg.connect(self.database_url)
        try:
            return [r[0] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY version")]
        finally:
            await conn.close()


@asynccontextmanager
async def backend_of(kind: str, tmp_path: Path, problem: str | None) -> AsyncIterator[Backend]:
    """A fresh database of ``kind``: in memory, a SQLite file, or a new PostgreSQL schema."""
    data_dir = tmp_path / kind
    schema = None
    if kind == "memory":
        backend = Backend(kind, "memory:", data_dir)
    elif kind == "sqlite":
        backend = Backend(kind, None, data_dir)
    else:
        if problem is not None:
            postgres_unreachable(problem)
        schema = f"contract_{uuid.uuid4().hex[:12]}"
        await postgres_admin(f"CREATE SCHEMA {schema}")
        base = postgres_base_url()
        sep = "&" if "?" in base else "?"
        backend = Backend(kind, f"{base}{sep}options={quote(f'-csearch_path={schema}', safe='')}", data_dir)
    try:
        yield backend
    finally:
        for store in backend.stores:
            await store.close()
        if schema is not None:
            await postgres_admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path,
                  postgres_problem: str | None) -> AsyncIterator[Backend]:
    """Each backend in turn, on a fresh database."""
    async with backend_of(request.param, tmp_path, postgres_problem) as found:
        yield found


@pytest.fixture
async def store(backend: Backend) -> Store:
    """An opened store on the test's fresh database."""
    return await backend.opened()


# -- sample data -----------------------------------------------------------------------------
def at(minutes: float) -> datetime:
    """``NOW`` (Paris time) plus ``minutes``, with microseconds to check their round trip."""
    return NOW + timedelta(minutes=minutes, microseconds=123456)


def slot(day: int, hour: int, minute: int = 0) -> Slot:
    """A 30-minute slot ``day`` days after ``NOW``, Paris time."""
    start = (NOW + timedelta(days=day)).replace(hour=hour, minute=minute)
    return Slot(start, start + timedelta(minutes=30))


def conversation(conv_id: str = "conv_1", **changes: Any) -> Conversation:
    """A conversation with a context that uses every field the codec knows."""
    ctx = Context(
        first_name="Élodie",
        last_name="Durand",
        phone="+33612345678",
        preference=Preference("afternoon", NOW.date() + timedelta(days=1), NOW.time().replace(hour=14), None),
        proposed=(slot(1, 14), slot(1, 15), slot(2, 16, 30)),
        excluded=(NOW + timedelta(days=3),),
        chosen=1,
        fails={"name": 1},
        booking_retries=1,
        booked=BookingRef("ctx-booking", slot(1, 15), "Élodie Durand"),
        found=(BookingRef("old-booking", slot(5, 9), "Élodie Durand"),),
        modifying=None,
        slots_message="trois créneaux",
    )
    base = Conversation(
        conv_id=conv_id,
        channel=Channel.TEXT,
        state=State.WAIT_CONFIRM,
        turn_count=3,
        created_at=at(0),
        last_seen_at=at(3),
        state_entered_at=at(2),
        context=ctx,
        caller_phone="+33612345678",
        epoch=2,
    )
    return dataclasses.replace(base, **changes)


def turn(conv_id: str = "conv_1", n: int = 1, key: str | None = "req-1", **changes: Any) -> TurnRecord:
    """A caller turn record."""
    record = TurnRecord(
        conv_id=conv_id, turn=n, request_key=key, text=f"phrase {n} é", reply=f"réponse {n}",
        state_before="QUALIF_PREF", state_after="WAIT_CONFIRM", at=at(n), interrupted=n % 2 == 0,
        directive=None if n % 2 else "end_call", trace_id=f"trace-{n}",
    )
    return dataclasses.replace(record, **changes)


def events(conv_id: str = "conv_1", minutes: float = 1, *kinds: str) -> list[EventRecord]:
    """Events of these kinds (``StateEntered``, ``SlotsProposed`` by default) with nested data."""
    kinds = kinds or ("StateEntered", "SlotsProposed")
    return [
        EventRecord(conv_id, at(minutes), kind, {"n": i, "texte": "été", "nested": {"a": [1, 2.5, None]}})
        for i, kind in enumerate(kinds)
    ]


async def create(store: Store, conv: Conversation, meta: dict[str, Any] | None = None) -> int:
    """Save a new conversation with one turn and two events."""
    return await store.save_turn(conv, None, meta or {}, turn(conv.conv_id), events(conv.conv_id))


@dataclasses.dataclass(frozen=True)
class Booked:
    """What a booking turn gave: SUCCESS with the new booking's id, or SLOT_TAKEN."""

    result: BookingResult
    booking_id: str | None = None


def confirmed(conv_id: str, wanted: Slot, name: str) -> EventRecord:
    """The event a turn that books stores with its booking: the read-back to the caller."""
    return EventRecord(conv_id, at(1), "AppointmentConfirmed",
                       {"slot_label": "x", "name": name, "slot_start": wanted.start.isoformat()})


async def book(
    store: Store, wanted: Slot, conv_id: str, name: str, phone: str | None, replaces: str | None = None
) -> Booked:
    """Book ``wanted`` the only way a booking is written: with a saved turn of ``conv_id``."""
    stored = await store.load(conv_id)
    conv = conversation(conv_id) if stored is None else stored.conversation
    # Each turn of a conversation a minute after the one before: bookings keep their order.
    write = BookingWrite(uuid.uuid4().hex, wanted, conv_id, name, phone, at(1 + (stored.version if stored else 0)),
                         replaces)
    try:
        await store.save_turn(conv, None if stored is None else stored.version, {}, None,
                              [confirmed(conv_id, wanted, name)], booking=write)
    except SlotTakenError:
        return Booked(BookingResult.SLOT_TAKEN)
    return Booked(BookingResult.SUCCESS, write.booking_id)


async def cancel(store: Store, booking_id: str, when: datetime) -> bool:
    """Cancel through a saved turn (of one "canceller" conversation); False when it was not active."""
    stored = await store.load("canceller")
    conv = conversation("canceller") if stored is None else stored.conversation
    try:
        await store.save_turn(conv, None if stored is None else stored.version, {}, None, [],
                              cancel=CancelWrite(booking_id, when))
    except BookingGoneError:
        return False
    return True


def assert_utc(moment: datetime) -> None:
    """A datetime as every store returns it: tz-aware, in UTC."""
    assert isinstance(moment, datetime) and moment.utcoffset() == timedelta(0), moment


# -- conversations and turns -------------------------------------------------------------------
async def test_new_conversation_round_trips(store: Store) -> None:
    """A saved conversation loads back equal (context included), version 1, meta as saved."""
    conv = conversation()
    meta = {"trace_id": "abc", "spans": {"WAIT_CONFIRM": "0123"}, "n": 3}
    assert await create(store, conv, meta) == 1
    loaded = await store.load("conv_1")
    assert loaded is not None
    assert loaded.conversation == conv
    assert loaded.version == 1 and loaded.meta == meta
    for moment in (loaded.conversation.created_at, loaded.conversation.last_seen_at,
                   loaded.conversation.state_entered_at):
        assert_utc(moment)
    assert loaded.conversation.created_at.microsecond == 123456
    assert await store.load("conv_unknown") is None


async def test_update_bumps_the_version(store: Store) -> None:
    """Saving with the loaded version writes the new state and returns version + 1."""
    await create(store, conversation())
    changed = conversation(state=State.CONFIRMED, outcome=Outcome.CONFIRMED, turn_count=4, last_seen_at=at(9))
    assert await store.save_turn(changed, 1, {"k": "v"}, turn(n=2, key="req-2"), []) == 2
    loaded = await store.load("conv_1")
    assert loaded is not None
    assert loaded.conversation == changed and loaded.version == 2 and loaded.meta == {"k": "v"}


async def test_version_conflict_writes_nothing(store: Store) -> None:
    """A stale version, or inserting an existing conversation, raises ConcurrentTurnError and
    leaves the conversation, turns and events untouched."""
    await create(store, conversation())
    await store.save_turn(conversation(turn_count=4), 1, {}, turn(n=2, key="req-2"), [])
    with pytest.raises(ConcurrentTurnError):
        await store.save_turn(conversation(turn_count=9), 1, {}, turn(n=3, key="req-3"), events(minutes=3))
    with pytest.raises(ConcurrentTurnError):
        await store.save_turn(conversation(turn_count=9), None, {}, turn(n=3, key="req-3b"), events(minutes=3))
    loaded = await store.load("conv_1")
    assert loaded is not None and loaded.version == 2 and loaded.conversation.turn_count == 4
    timeline = await store.timeline("conv_1")
    assert timeline is not None
    assert [t["turn"] for t in timeline["turns"]] == [1, 2] and len(timeline["events"]) == 2


async def test_concurrent_saves_have_one_winner(backend: Backend, store: Store) -> None:
    """Of ten saves racing from the same loaded version (over two store instances when the
    backend allows), exactly one wins."""
    await create(store, conversation())
    other = await backend.opened() if backend.shared else store
    results = await asyncio.gather(
        *(
            (store if i % 2 else other).save_turn(conversation(turn_count=10 + i), 1, {}, turn(n=2, key=f"race-{i}"),
                                                  [])
            for i in range(10)
        ),
        return_exceptions=True,
    )
    assert [r for r in results if not isinstance(r, BaseException)] == [2], results
    assert all(isinstance(r, ConcurrentTurnError) for r in results if isinstance(r, BaseException)), results
    timeline = await store.timeline("conv_1")
    assert timeline is not None and len(timeline["turns"]) == 2


async def test_duplicate_request_key_is_refused(store: Store) -> None:
    """A second turn with the same request key raises DuplicateTurnError and writes nothing;
    the same key in another conversation is a different turn."""
    await create(store, conversation())
    with pytest.raises(DuplicateTurnError):
        await store.save_turn(conversation(turn_count=4), 1, {"x": 1}, turn(n=2, key="req-1"), events(minutes=2))
    loaded = await store.load("conv_1")
    assert loaded is not None and loaded.version == 1 and loaded.meta == {}
    timeline = await store.timeline("conv_1")
    assert timeline is not None and len(timeline["turns"]) == 1 and len(timeline["events"]) == 2
    assert await create(store, conversation("conv_2")) == 1
    # Turns without a key never collide.
    assert await store.save_turn(conversation(turn_count=4), 1, {}, turn(n=2, key=None), []) == 2
    assert await store.save_turn(conversation(turn_count=5), 2, {}, turn(n=3, key=None), []) == 3


async def test_find_turn(store: Store) -> None:
    """The stored turn comes back by request key, equal to what was saved, time in UTC."""
    await create(store, conversation())
    await store.save_turn(conversation(turn_count=4), 1, {}, turn(n=2, key="req-2"), [])
    found = await store.find_turn("conv_1", "req-2")
    assert found == turn(n=2, key="req-2")
    assert found is not None and found.interrupted is True and found.directive == "end_call"
    assert_utc(found.at)
    assert await store.find_turn("conv_1", "req-9") is None
    assert await store.find_turn("conv_2", "req-2") is None


async def test_a_duplicate_is_found_before_a_stale_version(store: Store) -> None:
    """A turn whose request key is stored and whose version is stale hears the duplicate (the
    checks' order), and writes nothing."""
    await create(store, conversation())
    await store.save_turn(conversation(turn_count=4), 1, {}, turn(n=2, key="req-2"), [])
    with pytest.raises(DuplicateTurnError):
        await store.save_turn(conversation(turn_count=9), 1, {}, turn(n=3, key="req-2"), events(minutes=3))
    loaded = await store.load("conv_1")
    assert loaded is not None and loaded.version == 2 and loaded.conversation.turn_count == 4
    timeline = await store.timeline("conv_1")
    assert timeline is not None and len(timeline["turns"]) == 2 and len(timeline["events"]) == 2


async def test_a_new_call_id_is_saved(store: Store) -> None:
    """A save that changes the conversation's Vapi call id stores it (the call is found by its
    new id only); a stale version is refused whether the call id changed or not."""
    await create(store, conversation(vapi_call_id="call-1"))
    assert await store.save_turn(conversation(turn_count=4, vapi_call_id="call-1"), 1, {}, turn(n=2, key="k2"), []) == 2
    assert await store.save_turn(conversation(turn_count=5, vapi_call_id="call-2"), 2, {}, turn(n=3, key="k3"), []) == 3
    for stale in ("call-2", "call-3"):
        with pytest.raises(ConcurrentTurnError):
            await store.save_turn(conversation(turn_count=9, vapi_call_id=stale), 2, {}, turn(n=4, key="k4"), [])
    loaded = await store.load("conv_1")
    assert loaded is not None and loaded.version == 3
    assert loaded.conversation == conversation(turn_count=5, vapi_call_id="call-2")
    assert await store.conversation_ids_by_call("call-2") == "conv_1"
    assert await store.conversation_ids_by_call("call-1") is None
    assert await store.conversation_ids_by_call("call-3") is None


async def test_control_characters_in_free_text_are_stored(backend: Backend, store: Store) -> None:
    """Whatever a caller or Vapi sends is stored and found again, NUL included (PostgreSQL
    cannot hold U+0000 in text, so there it reads back as U+FFFD)."""
    raw = "bon\x00jour\x01\x1f\x7f"
    expected = raw.replace("\x00", "\ufffd") if backend.kind == "postgres" else raw
    conv = conversation(caller_phone="+33\x00612", vapi_call_id="call\x00x")
    record = turn(text=raw, reply=raw, key="req\x00nul")
    await store.save_turn(conv, None, {"raw": raw}, record, events("conv_1", 1, "Kind\x00"))
    found = await store.find_turn("conv_1", "req\x00nul")
    assert found is not None and found.text == expected and found.reply == expected
    loaded = await store.load("conv_1")
    assert loaded is not None and loaded.meta == {"raw": raw}
    assert loaded.conversation.vapi_call_id == "call\x00x".replace("\x00", expected[3])
    assert await store.conversation_ids_by_call("call\x00x") == "conv_1"
    assert [e.kind for e in await store.events_since(at(0), ("Kind\x00",))] == ["Kind\x00".replace("\x00", expected[3])]
    await store.save_call_report("conv_1", {"endedReason": raw}, at(2))
    timeline = await store.timeline("conv_1")
    assert timeline is not None and timeline["ended_reason"] == expected
    assert timeline["call_report"] == {"endedReason": raw}
    booked = await book(store, slot(1, 9), "conv_1", raw, "+33\x00612", None)
    assert booked.result is BookingResult.SUCCESS
    assert [r.name for r in await store.find_bookings("+33\x00612", NOW)] == [expected]


async def test_save_without_turn_appends_events_only(store: Store) -> None:
    """An expiry or call end saves the conversation and its events without a turn."""
    await create(store, conversation())
    ended = conversation(state=State.WAIT_CONFIRM, outcome=Outcome.EXPIRED)
    assert await store.save_turn(ended, 1, {}, None, events("conv_1", 5, "ConversationEnded")) == 2
    timeline = await store.timeline("conv_1")
    assert timeline is not None
    assert len(timeline["turns"]) == 1 and [e["kind"] for e in timeline["events"]][-1] == "ConversationEnded"


# -- bookings ------------------------------------------------------------------------------------
async def test_fifty_concurrent_bookings_of_one_slot_give_one_success(backend: Backend, store: Store) -> None:
    """50 callers booking the same slot at once (over two store instances when the backend
    allows): exactly one SUCCESS, 49 SLOT_TAKEN, one active booking."""
    other = await backend.opened() if backend.shared else store
    wanted = slot(1, 10)
    outcomes = await asyncio.gather(
        *(book(store if i % 2 else other, wanted, f"conv_{i}", f"Caller {i}", None, None) for i in range(50))
    )
    results = [o.result for o in outcomes]
    assert results.count(BookingResult.SUCCESS) == 1 and results.count(BookingResult.SLOT_TAKEN) == 49
    winner = next(o for o in outcomes if o.result is BookingResult.SUCCESS)
    assert winner.booking_id and all(o.booking_id is None for o in outcomes if o is not winner)
    assert await store.taken_slots(NOW, NOW + timedelta(days=7)) == frozenset({wanted.start})


async def test_a_booking_is_written_with_its_turn_or_not_at_all(store: Store) -> None:
    """The booking is part of the turn's transaction: a lost slot writes neither the turn nor
    its events, and a turn that loses its version check takes its booking down with it."""
    await create(store, conversation("conv_1"))
    await create(store, conversation("conv_2"))
    mine = await book(store, slot(1, 10), "conv_1", "Jean Dupont", "+33612345678")
    assert mine.result is BookingResult.SUCCESS
    with pytest.raises(SlotTakenError):
        await store.save_turn(
            conversation("conv_2", turn_count=9), 1, {"lost": True}, turn("conv_2", n=2, key="lost"),
            [confirmed("conv_2", slot(1, 10), "Marie Curie")],
            booking=BookingWrite("lost-booking", slot(1, 10), "conv_2", "Marie Curie", None, at(2)),
        )
    stored = await store.load("conv_2")
    assert stored is not None and stored.version == 1 and stored.meta == {} and stored.conversation.turn_count == 3
    assert await store.find_turn("conv_2", "lost") is None
    # Two overlapping turns of conv_2 both loaded version 1: the second loses its version
    # check, and the slot it booked stays free.
    await store.save_turn(conversation("conv_2", turn_count=4), 1, {}, turn("conv_2", n=2, key="first"), [])
    with pytest.raises(ConcurrentTurnError):
        await store.save_turn(
            conversation("conv_2", turn_count=4), 1, {}, turn("conv_2", n=2, key="second"), [],
            booking=BookingWrite("late-booking", slot(1, 11), "conv_2", "Marie Curie", None, at(2)),
        )
    assert await store.taken_slots(NOW, NOW + timedelta(days=7)) == {slot(1, 10).start}
    assert not await store.booking_active("late-booking") and await store.booking_active(str(mine.booking_id))
    assert await store.unconfirmed_bookings() == []


async def test_unconfirmed_bookings_are_reported_and_released(backend: Backend, store: Store) -> None:
    """A booking no stored read-back names (left by an older version's crash) is reported,
    and released on request; confirmed and cancelled ones are not."""
    kept = await book(store, slot(1, 9), "conv_1", "Jean Dupont", "+33612345678")
    await create(store, conversation("conv_2"))
    await store.save_turn(
        conversation("conv_2", turn_count=4), 1, {}, None, [confirmed("conv_2", slot(3, 9), "Autre")],
        booking=BookingWrite("orphan", slot(2, 9), "conv_2", "Marie Curie", None, at(2)),
    )
    found = await store.unconfirmed_bookings()
    assert [(o.booking_id, o.conv_id, o.slot_start) for o in found] == [("orphan", "conv_2", slot(2, 9).start)]
    assert_utc(found[0].slot_start)
    assert await store.release_bookings(["orphan", str(kept.booking_id) + "-unknown"], at(5)) == 1
    assert await store.unconfirmed_bookings() == []
    assert await store.taken_slots(NOW, NOW + timedelta(days=7)) == {slot(1, 9).start}


async def test_replaces_is_cancelled_with_the_new_booking_only(store: Store) -> None:
    """A booking that replaces another cancels it in the same transaction; when the new slot
    is taken, the old booking stays active."""
    old = await book(store, slot(1, 10), "conv_1", "Jean Dupont", "+33612345678", None)
    await book(store, slot(1, 11), "conv_2", "Marie Curie", None, None)
    lost = await book(store, slot(1, 11), "conv_1", "Jean Dupont", "+33612345678", old.booking_id)
    assert lost.result is BookingResult.SLOT_TAKEN
    assert await store.taken_slots(NOW, NOW + timedelta(days=7)) == {slot(1, 10).start, slot(1, 11).start}
    moved = await book(store, slot(2, 9), "conv_1", "Jean Dupont", "+33612345678", old.booking_id)
    assert moved.result is BookingResult.SUCCESS and moved.booking_id != old.booking_id
    assert await store.taken_slots(NOW, NOW + timedelta(days=7)) == {slot(1, 11).start, slot(2, 9).start}
    found = await store.find_bookings("+33612345678", NOW)
    assert found == (BookingRef(str(moved.booking_id), slot(2, 9), "Jean Dupont"),)
    # The freed slot can be booked by someone else.
    assert (await book(store, slot(1, 10), "conv_3", "Paul", None, None)).result is BookingResult.SUCCESS


async def test_taken_slots_is_half_open_and_active_only(store: Store) -> None:
    """``taken_slots`` covers ``[start, end)`` and ignores cancelled bookings; times in UTC."""
    for i, s in enumerate((slot(1, 9), slot(1, 10), slot(1, 11))):
        await book(store, s, f"conv_{i}", "X", None, None)
    cancelled = await book(store, slot(1, 12), "conv_9", "X", None, None)
    assert await cancel(store, str(cancelled.booking_id), at(5))
    taken = await store.taken_slots(slot(1, 10).start, slot(1, 11).start)
    assert taken == {slot(1, 10).start}
    for moment in await store.taken_slots(NOW, NOW + timedelta(days=3)):
        assert_utc(moment)


async def test_taken_slots_follow_every_booking_change(backend: Backend, store: Store) -> None:
    """Asking the same window again sees each booking and cancellation at once, whether this
    store or another instance on the same database made it (a store may cache the answer,
    never serve a stale one)."""
    other = await backend.opened() if backend.shared else store
    window = (NOW, NOW + timedelta(days=7))
    assert await store.taken_slots(*window) == frozenset()
    mine = await book(store, slot(1, 9), "conv_1", "X", None, None)
    assert await store.taken_slots(*window) == {slot(1, 9).start}
    await book(other, slot(1, 10), "conv_2", "Y", None, None)
    assert await store.taken_slots(*window) == {slot(1, 9).start, slot(1, 10).start}
    assert await cancel(other, str(mine.booking_id), at(1))
    assert await store.taken_slots(*window) == {slot(1, 10).start}
    await book(store, slot(2, 9), "conv_3", "Z", None, None)
    taken = await store.taken_slots(*window)
    assert taken == {slot(1, 10).start, slot(2, 9).start}
    for moment in taken:
        assert_utc(moment)


async def test_find_bookings_by_phone_only(store: Store) -> None:
    """Active bookings after ``after`` made from the phone, by start, with the patient's name;
    a name never finds anything (there is no name lookup at all)."""
    late = await book(store, slot(3, 9), "conv_1", "Jean Dupont", "+33611111111", None)
    early = await book(store, slot(2, 9), "conv_2", "Inès Dupont", "+33611111111", None)
    await book(store, slot(1, 9), "conv_3", "Jean Dupont", "+33611111111", None)
    await book(store, slot(4, 9), "conv_4", "Marie Curie", None, None)
    gone = await book(store, slot(5, 9), "conv_5", "Marie Curie", "+33622222222", None)
    await cancel(store, str(gone.booking_id), at(1))
    after = slot(1, 9).start
    by_phone = await store.find_bookings("+33611111111", after)
    assert by_phone == (
        BookingRef(str(early.booking_id), slot(2, 9), "Inès Dupont"),
        BookingRef(str(late.booking_id), slot(3, 9), "Jean Dupont"),
    )
    for ref in by_phone:
        assert_utc(ref.slot.start)
        assert_utc(ref.slot.end)
    assert await store.find_bookings("+33699999999", after) == ()
    assert await store.find_bookings("+33622222222", after) == ()


async def test_booking_at_finds_the_active_booking_of_one_start(store: Store) -> None:
    """``booking_at`` answers the active booking starting exactly there (name included), or None."""
    mine = await book(store, slot(2, 10), "conv_1", "Inès Brossard", None, None)
    gone = await book(store, slot(2, 11), "conv_2", "Paul Brossard", "+33611111111", None)
    await cancel(store, str(gone.booking_id), at(1))
    found = await store.booking_at(slot(2, 10).start)
    assert found == BookingRef(str(mine.booking_id), slot(2, 10), "Inès Brossard")
    assert found is not None
    assert_utc(found.slot.start)
    assert await store.booking_at(slot(2, 11).start) is None
    assert await store.booking_at(slot(2, 10).start + timedelta(minutes=30)) is None


async def test_cancel_booking(store: Store) -> None:
    """Cancelling is True once, then False; an unknown id is False; the slot is free again."""
    booked = await book(store, slot(1, 10), "conv_1", "Jean", None, None)
    assert await cancel(store, str(booked.booking_id), at(2)) is True
    assert await cancel(store, str(booked.booking_id), at(3)) is False
    assert await cancel(store, "no-such-booking", at(3)) is False
    assert (await book(store, slot(1, 10), "conv_2", "Marie", None, None)).result is BookingResult.SUCCESS


# -- reports, reaper and operator reads ----------------------------------------------------------
async def test_call_report_is_stored_and_replaced(store: Store) -> None:
    """The end-of-call report shows in the timeline; a second one replaces it and its
    ``endedReason`` becomes the conversation's. Only the first save says it is the first, so a
    resent report is counted once."""
    await create(store, conversation(vapi_call_id="call-1"))
    assert await store.save_call_report("conv_1", {"endedReason": "customer-ended-call", "cost": 0.12}, at(5)) is True
    assert await store.save_call_report("conv_1", {"endedReason": "assistant-ended-call", "résumé": "été"},
                                        at(6)) is False
    timeline = await store.timeline("conv_1")
    assert timeline is not None
    assert timeline["call_report"] == {"endedReason": "assistant-ended-call", "résumé": "été"}
    assert timeline["ended_reason"] == "assistant-ended-call"
    rows = await store.conversations_seen_since(at(0))
    assert [r["ended_reason"] for r in rows] == ["assistant-ended-call"]
    # A report without a reason keeps the one recorded.
    assert await store.save_call_report("conv_1", {"cost": 1}, at(7)) is False
    timeline = await store.timeline("conv_1")
    assert timeline is not None and timeline["ended_reason"] == "assistant-ended-call"


async def test_idle_conversations(store: Store) -> None:
    """Only not-ended conversations of the channel, with turns, last seen before the limit,
    oldest first."""
    cases = {
        "idle_old": conversation("idle_old", channel=Channel.VOICE, last_seen_at=at(-60)),
        "idle_new": conversation("idle_new", channel=Channel.VOICE, last_seen_at=at(-30)),
        "recent": conversation("recent", channel=Channel.VOICE, last_seen_at=at(0)),
        "ended": conversation("ended", channel=Channel.VOICE, last_seen_at=at(-60), outcome=Outcome.CONFIRMED,
                              state=State.CONFIRMED),
        "no_turn": conversation("no_turn", channel=Channel.VOICE, last_seen_at=at(-60), turn_count=0),
        "text": conversation("text", channel=Channel.TEXT, last_seen_at=at(-60)),
    }
    for conv in cases.values():
        await create(store, conv, {"id": conv.conv_id})
    idle = await store.idle_conversations(at(-10), "voice")
    assert [s.conversation.conv_id for s in idle] == ["idle_old", "idle_new"]
    assert idle[0].conversation == cases["idle_old"] and idle[0].version == 1 and idle[0].meta == {"id": "idle_old"}
    assert [s.conversation.conv_id for s in await store.idle_conversations(at(-10), "text")] == ["text"]


async def test_active_counts_per_channel(store: Store) -> None:
    """Conversations without an outcome, counted per channel; an empty store counts none."""
    assert await store.active_counts() == {}
    for conv in (
        conversation("v1", channel=Channel.VOICE), conversation("v2", channel=Channel.VOICE),
        conversation("t1"), conversation("done", outcome=Outcome.CONFIRMED, state=State.CONFIRMED),
    ):
        await create(store, conv)
    assert await store.active_counts() == {"voice": 2, "text": 1}


async def test_held_slots_are_those_of_other_callers_still_choosing(store: Store) -> None:
    """Slots proposed to conversations in WAIT_CONFIRM, without outcome, seen since the limit,
    other than the asking one; in UTC."""
    proposed = {s.start for s in conversation().context.proposed}
    for conv in (
        conversation("choosing"),
        conversation("asking"),
        conversation("old", last_seen_at=at(-30)),
        conversation("ended", outcome=Outcome.EXPIRED),
        conversation("naming", state=State.QUALIF_NAME),
    ):
        await create(store, conv)
    held = await store.held_slots(at(-10), "asking")
    assert held == proposed
    for moment in held:
        assert_utc(moment)
    assert await store.held_slots(at(-10), "choosing") == proposed  # "asking" holds the same ones
    assert await store.held_slots(at(10), "asking") == frozenset()


async def test_conversation_ids_by_call(store: Store) -> None:
    """A Vapi call id maps to its conversation id; an unknown one to None."""
    await create(store, conversation("conv_v", channel=Channel.VOICE, vapi_call_id="call-123"))
    await create(store, conversation("conv_t"))
    assert await store.conversation_ids_by_call("call-123") == "conv_v"
    assert await store.conversation_ids_by_call("call-999") is None


async def test_timeline_lists_everything_in_order(store: Store) -> None:
    """Turns, events and bookings of one conversation, in the order they were written."""
    await create(store, conversation())
    await store.save_turn(conversation(turn_count=4), 1, {}, turn(n=2, key="req-2"), events("conv_1", 2, "A", "B", "C"))
    await create(store, conversation("conv_other"))
    first = await book(store, slot(1, 9), "conv_1", "Élodie Durand", "+33612345678", None)
    await book(store, slot(1, 10), "conv_1", "Élodie Durand", "+33612345678", first.booking_id)
    timeline = await store.timeline("conv_1")
    assert timeline is not None
    assert [t["turn"] for t in timeline["turns"]] == [1, 2]
    assert [e["kind"] for e in timeline["events"]] == [
        "StateEntered", "SlotsProposed", "A", "B", "C", "AppointmentConfirmed", "AppointmentConfirmed",
    ]
    assert timeline["events"][0]["data"] == {"n": 0, "texte": "été", "nested": {"a": [1, 2.5, None]}}
    assert [b["slot_start"] for b in timeline["bookings"]] == [
        "2026-03-04T08:00:00.000000+00:00", "2026-03-04T09:00:00.000000+00:00",
    ]
    assert timeline["bookings"][0]["cancelled_at"] is not None and timeline["bookings"][1]["cancelled_at"] is None
    assert timeline["call_report"] is None
    assert await store.timeline("conv_unknown") is None


async def test_conversations_seen_since(store: Store) -> None:
    """Summary rows of conversations last seen at or after the limit, datetimes in UTC."""
    await create(store, conversation("old", last_seen_at=at(-60)))
    await create(store, conversation("edge", last_seen_at=at(-10)))
    await create(store, conversation("new", last_seen_at=at(5), outcome=Outcome.CONFIRMED, state=State.CONFIRMED))
    rows = sorted(await store.conversations_seen_since(at(-10)), key=lambda r: r["conv_id"])
    assert [r["conv_id"] for r in rows] == ["edge", "new"]
    assert set(rows[0]) == {
        "conv_id", "channel", "state", "outcome", "turn_count", "created_at", "last_seen_at", "ended_reason",
        "synthetic",
    }
    assert rows[1] == {
        "conv_id": "new", "channel": "text", "state": "CONFIRMED", "outcome": "confirmed", "turn_count": 3,
        "created_at": at(0), "last_seen_at": at(5), "ended_reason": None, "synthetic": False,
    }
    assert_utc(rows[1]["created_at"])
    assert_utc(rows[1]["last_seen_at"])


async def test_events_since(store: Store) -> None:
    """Events of the asked kinds at or after the limit, oldest first."""
    await store.save_turn(conversation(), None, {}, None, events("conv_1", -5, "BookingAttempted"))
    await store.save_turn(conversation("conv_2"), None, {}, None, events("conv_2", 1, "BookingAttempted", "Other"))
    await store.save_turn(conversation("conv_3"), None, {}, None,
                          events("conv_3", 2, "StateEntered", "BookingAttempted"))
    found = await store.events_since(at(1), ("BookingAttempted", "StateEntered"))
    assert [(e.conv_id, e.kind) for e in found] == [
        ("conv_2", "BookingAttempted"), ("conv_3", "StateEntered"), ("conv_3", "BookingAttempted"),
    ]
    assert found[0] == EventRecord("conv_2", at(1), "BookingAttempted",
                                   {"n": 0, "texte": "été", "nested": {"a": [1, 2.5, None]}})
    assert_utc(found[0].at)
    assert await store.events_since(at(1), ()) == []


async def test_try_lock_is_exclusive_until_it_expires(backend: Backend, store: Store) -> None:
    """One holder at a time; the holder renews; an expired lease goes to the next taker; of
    twenty racing takers (over two stores when possible) exactly one wins."""
    t0 = NOW
    assert await store.try_lock("reaper", "a", t0 + timedelta(seconds=10), t0)
    assert not await store.try_lock("reaper", "b", t0 + timedelta(seconds=15), t0 + timedelta(seconds=5))
    assert await store.try_lock("reaper", "a", t0 + timedelta(seconds=20), t0 + timedelta(seconds=5))
    assert not await store.try_lock("reaper", "b", t0 + timedelta(seconds=25), t0 + timedelta(seconds=15))
    assert await store.try_lock("reaper", "b", t0 + timedelta(seconds=31), t0 + timedelta(seconds=21))
    assert not await store.try_lock("reaper", "a", t0 + timedelta(seconds=32), t0 + timedelta(seconds=22))
    assert await store.try_lock("other", "a", t0 + timedelta(seconds=10), t0), "leases are per name"
    other = await backend.opened() if backend.shared else store
    won = await asyncio.gather(
        *((store if i % 2 else other).try_lock("race", f"h{i}", t0 + timedelta(seconds=10), t0) for i in range(20))
    )
    assert won.count(True) == 1


async def test_synthetic_flag_is_stored_and_kept_out_of_active_counts(store: Store) -> None:
    """A test conversation keeps its flag across a save and a load, shows in the summary rows
    with it, and is not counted among the active conversations."""
    await create(store, conversation("synthetic-probe-1", synthetic=True))
    await create(store, conversation("conv_real"))
    loaded = await store.load("synthetic-probe-1")
    assert loaded is not None and loaded.conversation.synthetic is True
    rows = {r["conv_id"]: r["synthetic"] for r in await store.conversations_seen_since(at(-60))}
    assert rows == {"synthetic-probe-1": True, "conv_real": False}
    assert await store.active_counts() == {"text": 1}


# -- migrations and failures -------------------------------------------------------------------------
async def test_migrations_are_idempotent(backend: Backend, store: Store) -> None:
    """Opening the same database again (a restart, ``rdv migrate``) keeps the data and
    applies no step twice."""
    if not backend.shared:
        pytest.skip("an in-memory database does not outlive its store")
    await create(store, conversation())
    again = await backend.opened()
    await again.open()
    loaded = await again.load("conv_1")
    assert loaded is not None and loaded.conversation == conversation()
    steps = SQLITE_STEPS if backend.kind == "sqlite" else POSTGRES_STEPS
    assert await backend.schema_versions() == list(range(1, len(steps) + 1))


async def test_store_not_open_raises_store_error(backend: Backend) -> None:
    """Using a store before ``open()`` is a StoreError, not a crash of another kind."""
    unopened = backend.make()
    with pytest.raises(StoreError):
        await unopened.load("conv_1")


async def test_unreachable_postgres_raises_store_error() -> None:
    """A refused connection is a StoreError naming the server (the HTTP layer answers 503)."""
    from tests.support import free_port

    store = open_store(f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/test", Path("."))
    with pytest.raises(StoreError, match=r"127\.0\.0\.1") as raised:
        await store.open()
    assert "s3cret" not in str(raised.value)
    with pytest.raises(StoreError):
        await store.ping()
    await store.close()


@pytest.fixture
async def postgres(tmp_path: Path, postgres_problem: str | None) -> AsyncIterator[Backend]:
    """A fresh PostgreSQL schema (for the tests of PostgreSQL's own failure modes)."""
    async with backend_of("postgres", tmp_path, postgres_problem) as found:
        yield found


@pytest.mark.postgres
async def test_concurrent_first_opens_migrate_once(postgres: Backend) -> None:
    """Two stores opening a fresh PostgreSQL schema at the same moment (two replicas
    starting) both succeed, the schema is created once and both see the same data."""
    first, second = postgres.make(), postgres.make()
    await asyncio.gather(first.open(), second.open())
    assert await postgres.schema_versions() == list(range(1, len(POSTGRES_STEPS) + 1))
    assert await first.save_turn(conversation(), None, {}, None, []) == 1
    stored = await second.load("conv_1")
    assert stored is not None and stored.version == 1


async def test_sqlite_first_opens_at_once_all_succeed(tmp_path: Path) -> None:
    """Workers opening a new SQLite file at the same moment (``rdv serve --workers``) all
    succeed: the switch to WAL is retried while another opener holds the file."""
    from service.storage.sqlite import SqliteStore

    for attempt in range(20):
        path = tmp_path / f"race{attempt}.sqlite3"
        stores = [SqliteStore(path) for _ in range(3)]
        try:
            await asyncio.gather(*(s.open() for s in stores))
            assert await stores[0].save_turn(conversation(), None, {}, None, []) == 1
            assert (await stores[2].load("conv_1")) is not None
        finally:
            for s in stores:
                await s.close()


@pytest.mark.postgres
async def test_postgres_timeouts_and_server_errors_are_store_errors(postgres: Backend) -> None:
    """A query blocked past the command timeout and an error raised by the server are
    StoreErrors; the store keeps working once the cause is gone."""
    from service.storage.postgres import PostgresStore

    assert postgres.database_url is not None
    store = PostgresStore(postgres.database_url, command_timeout=0.5)
    postgres.stores.append(store)
    await store.open()
    await create(store, conversation())
    admin = await asyncpg.connect(postgres.database_url)
    try:
        async with admin.transaction():
            await admin.execute("LOCK TABLE conversations IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StoreError, match="TimeoutError"):
                await store.load("conv_1")
        assert await store.load("conv_1") is not None
        await admin.execute("ALTER TABLE turns RENAME TO turns_elsewhere")
        with pytest.raises(StoreError, match="UndefinedTable"):
            await store.find_turn("conv_1", "req-1")
    finally:
        await admin.close()


# -- every backend answers alike -------------------------------------------------------------------
def shape(value: Any, ids: dict[str, str]) -> Any:
    """``value`` as nested plain data that keeps types: datetimes with their offset, enums
    with their class, dataclasses with their name; booking ids replaced by ``ids``."""
    if isinstance(value, datetime):
        assert value.tzinfo is not None, value
        return ("datetime", value.isoformat())
    if isinstance(value, enum.Enum):
        return (type(value).__name__, value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, {f.name: shape(getattr(value, f.name), ids) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return {k: shape(v, ids) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return (type(value).__name__, [shape(v, ids) for v in value])
    if isinstance(value, frozenset | set):
        return ("set", sorted(repr(shape(v, ids)) for v in value))
    if isinstance(value, str):
        return ids.get(value, value)
    return (type(value).__name__, value)


async def every_answer(store: Store) -> Any:
    """One scenario through every method of the protocol; all the answers, shaped."""
    ids: dict[str, str] = {}
    first = conversation("conv_a")
    await store.save_turn(first, None, {"trace": "t"}, turn("conv_a"), events("conv_a"))
    await store.save_turn(conversation("conv_a", turn_count=4), 1, {"trace": "u"}, turn("conv_a", 2, "req-2"),
                          events("conv_a", 2, "A", "B"))
    voice = conversation("conv_b", channel=Channel.VOICE, vapi_call_id="call-b", last_seen_at=at(-90))
    await store.save_turn(voice, None, {}, turn("conv_b"), events("conv_b", -90, "BookingAttempted"))
    outcomes = [
        await book(store, slot(1, 9), "conv_a", "Élodie Durand", "+33612345678", None),
        await book(store, slot(1, 9), "conv_b", "Marie Curie", None, None),
    ]
    outcomes.append(await book(store, slot(2, 9), "conv_a", "Élodie Durand", "+33612345678", outcomes[0].booking_id))
    outcomes.append(await book(store, slot(3, 9), "conv_b", "Marie Curie", None, None))
    for i, outcome in enumerate(outcomes):
        if outcome.booking_id is not None:
            ids.setdefault(outcome.booking_id, f"booking-{i}")
    cancelled = await cancel(store, str(outcomes[3].booking_id), at(30))
    await store.save_call_report("conv_b", {"endedReason": "silence-timed-out", "cost": 0.5}, at(31))
    timelines = [await store.timeline(c) for c in ("conv_a", "conv_b")]
    for timeline in timelines:
        assert timeline is not None
        for booking in timeline["bookings"]:
            assert UTC_TEXT.match(booking["created_at"]), booking
            booking["created_at"] = "<now>"
            if booking["cancelled_at"] is not None:
                assert UTC_TEXT.match(booking["cancelled_at"]), booking
                if booking["conv_id"] == "conv_a":
                    booking["cancelled_at"] = "<now>"
    answers = {
        "outcomes": outcomes,
        "cancelled": cancelled,
        "load": [await store.load(c) for c in ("conv_a", "conv_b", "conv_c")],
        "find_turn": [await store.find_turn("conv_a", k) for k in ("req-1", "req-2", "req-3")],
        "taken": await store.taken_slots(NOW, NOW + timedelta(days=7)),
        "by_phone": await store.find_bookings("+33612345678", NOW),
        "at_slot": [await store.booking_at(s.start) for s in (slot(1, 10), slot(1, 11), slot(2, 9))],
        "idle": await store.idle_conversations(at(-10), "voice"),
        "by_call": await store.conversation_ids_by_call("call-b"),
        "timelines": timelines,
        "seen": sorted(await store.conversations_seen_since(at(-120)), key=lambda r: r["conv_id"]),
        "events": await store.events_since(at(-100), ("BookingAttempted", "A", "StateEntered")),
        "lock": [await store.try_lock("reaper", h, at(1), at(0)) for h in ("x", "y", "x")],
    }
    return shape(answers, ids)


async def test_every_backend_answers_alike(tmp_path: Path, postgres_problem: str | None) -> None:
    """The same calls give the same answers, field by field and type by type, on memory,
    SQLite and PostgreSQL (booking ids and wall-clock booking times aside)."""
    answers: dict[str, Any] = {}
    for kind in KINDS:
        async with backend_of(kind, tmp_path, postgres_problem) as backend:
            answers[kind] = await every_answer(await backend.opened())
    assert answers["sqlite"] == answers["memory"]
    assert answers["postgres"] == answers["sqlite"]


async def test_an_older_sqlite_file_gains_the_synthetic_flag(tmp_path: Path) -> None:
    """A file written before test traffic was flagged is migrated in place: its conversations
    read back as real traffic and new ones can be flagged."""
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, statements in enumerate(SQLITE_STEPS[:2], start=1):
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        conn.execute(
            "INSERT INTO conversations (conv_id, channel, state, turn_count, created_at, last_seen_at, "
            "state_entered_at, epoch, context, meta, version) VALUES ('conv_old', 'text', 'START', 0, ?, ?, ?, 0, "
            "'{}', '{}', 1)",
            (at(0).isoformat(), at(0).isoformat(), at(0).isoformat()),
        )
    store = open_store(f"sqlite:///{path}", tmp_path)
    await store.open()
    try:
        old = await store.load("conv_old")
        assert old is not None and old.conversation.synthetic is False
        await create(store, conversation("synthetic-sim-1", synthetic=True))
        new = await store.load("synthetic-sim-1")
        assert new is not None and new.conversation.synthetic is True
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, len(SQLITE_STEPS) + 1))


async def test_forget_erases_one_callers_personal_data_and_keeps_the_counts(store: Store) -> None:
    """The caller's conversations lose their number, names, words and Vapi report, their booking
    its name and number (the slot stays taken); another caller's data and every count stay."""
    mine, other = "+33612345678", "+33699999999"
    await create(store, conversation("conv_mine", caller_phone=mine))
    await create(store, conversation("conv_gave_it", caller_phone=None))  # the number dictated (context)
    await create(store, conversation("conv_other", caller_phone=other,
                                     context=dataclasses.replace(conversation().context, phone=other)))
    assert (await book(store, slot(3, 10), "conv_mine", "Élodie Durand", mine)).result is BookingResult.SUCCESS
    assert (await book(store, slot(3, 11), "conv_other", "Marc Petit", other)).result is BookingResult.SUCCESS
    await store.save_call_report("conv_mine", {"endedReason": "customer-ended-call", "transcript": "Élodie"}, at(5))
    before = sorted((r["conv_id"], r["state"]) for r in await store.conversations_seen_since(at(-60)))

    assert await store.forget_caller(mine) == (2, 1)

    for conv_id in ("conv_mine", "conv_gave_it"):
        loaded = await store.load(conv_id)
        assert loaded is not None
        kept = loaded.conversation
        assert kept.caller_phone is None and kept.context.phone is None and kept.context.full_name == ""
        assert kept.state is State.WAIT_CONFIRM
        timeline = await store.timeline(conv_id)
        assert timeline is not None
        assert "Élodie" not in json.dumps(timeline, ensure_ascii=False, default=str)
        assert mine not in json.dumps(timeline, ensure_ascii=False, default=str)
    assert await store.taken_slots(at(-60), at(60 * 24 * 7)) == frozenset({slot(3, 10).start, slot(3, 11).start})
    other_conv = await store.load("conv_other")
    assert other_conv is not None and other_conv.conversation.caller_phone == other
    assert [b.name for b in await store.find_bookings(other, at(-60))] == ["Marc Petit"]
    assert await store.find_bookings(mine, at(-60)) == ()
    assert sorted((r["conv_id"], r["state"]) for r in await store.conversations_seen_since(at(-60))) == before


async def test_forget_wins_over_a_turn_decided_before_it(store: Store) -> None:
    """A turn loaded before the caller was forgotten and saved after cannot write the caller's
    number and names back: the forget moves the conversation's version, so that save is a
    conflict (the turn is decided again on the forgotten conversation)."""
    mine = "+33612345678"
    await create(store, conversation("conv_mine", caller_phone=mine))
    loaded = await store.load("conv_mine")
    assert loaded is not None

    assert await store.forget_caller(mine) == (1, 0)

    with pytest.raises(ConcurrentTurnError):
        await store.save_turn(loaded.conversation, loaded.version, dict(loaded.meta), turn("conv_mine", n=2, key="k2"),
                              events("conv_mine"))
    kept = await store.load("conv_mine")
    assert kept is not None and kept.version == loaded.version + 1
    assert kept.conversation.caller_phone is None and kept.conversation.context.full_name == ""
    timeline = await store.timeline("conv_mine")
    assert timeline is not None and [t["turn"] for t in timeline["turns"]] == [1]
    # The turn decided again on what is stored now is saved.
    await store.save_turn(kept.conversation, kept.version, dict(kept.meta), turn("conv_mine", n=2, key="k2"), [])


async def test_purge_keeps_anonymous_daily_counts(store: Store) -> None:
    """Ended conversations last seen before the cutoff go, with their turns, events, reports and
    past bookings; each is first added to the anonymous daily counts; recent or open ones stay."""
    await create(store, conversation("conv_old", outcome=Outcome.CONFIRMED, state=State.CONFIRMED,
                                     last_seen_at=at(-60 * 24 * 100)))
    await create(store, conversation("conv_old2", outcome=Outcome.CONFIRMED, state=State.CONFIRMED,
                                     last_seen_at=at(-60 * 24 * 100)))
    await create(store, conversation("synthetic-old", outcome=Outcome.ABANDONED, synthetic=True,
                                     last_seen_at=at(-60 * 24 * 100)))
    await create(store, conversation("conv_open", last_seen_at=at(-60 * 24 * 100)))
    await create(store, conversation("conv_new", outcome=Outcome.CONFIRMED, state=State.CONFIRMED))
    await store.save_call_report("conv_old", {"endedReason": "customer-ended-call"}, at(-60 * 24 * 100))
    assert (await book(store, slot(-99, 10), "conv_old", "Élodie Durand",
                       "+33612345678")).result is BookingResult.SUCCESS
    assert (await book(store, slot(3, 10), "conv_new", "Marc Petit", "+33699999999")).result is BookingResult.SUCCESS

    assert await store.purge_before(at(-60 * 24 * 90)) == 3

    assert await store.load("conv_old") is None and await store.timeline("conv_old") is None
    assert await store.load("conv_open") is not None and await store.load("conv_new") is not None
    day = at(-60 * 24 * 100).astimezone(UTC).date().isoformat()
    assert await store.daily_counts() == [(day, "text", "abandoned", True, 1), (day, "text", "confirmed", False, 2)]
    assert await store.taken_slots(at(-60 * 24 * 120), at(60 * 24 * 7)) == frozenset({slot(3, 10).start})
    assert await store.purge_before(at(-60 * 24 * 90)) == 0
    assert len(await store.daily_counts()) == 2
