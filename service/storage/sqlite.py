"""The embedded default store: one SQLite file in WAL mode.

Turn-path calls (load, save, taken slots…) run inline on the event loop, so they never
interleave: a local WAL commit costs about 100 µs, less than handing the call to a thread
and back (measured in ``make bench``: +50 % turns/s). Inline calls never wait for a lock
(``busy_timeout=0``): when another connection or process holds the file, the call moves to
the writer thread, which waits for the lock for at most the store timeout while the event
loop serves other requests; past it the call fails with :class:`StoreError` (the caller
hears the apology). Calls queue behind a call on that thread, so they keep their order.

Group commit: the turns saved during one pass of the event loop share one transaction,
committed once at the start of the next pass; each turn's save returns (and its reply leaves)
only after that COMMIT. A turn whose checks fail (a version moved, a slot taken) writes
nothing and hears it at once; the others are not touched: the turn that began the group rolls
the transaction back, a later one that books or cancels rolls back a savepoint of its own,
and any other turn finds its conflicts (a duplicate, the version) with its first two writes
and deletes the one row it wrote, so it needs no savepoint (which would copy every page the
turn writes). Written rows are
visible to this connection as soon as they are queued, so a turn decided in the same pass
sees the slots another one just proposed or booked. Any other write commits the open group
first. WAL checkpoints run on a thread with a connection of their own
(``wal_autocheckpoint=0`` on the turn connection), never on the event loop; when the WAL
must be started over, the loop holds the turns' saves for those milliseconds instead of
finding the file locked (:class:`_Checkpoints`).

Caches: the taken slots and the slots held for callers still choosing (proposed to them)
are kept in memory and updated by this connection's own writes. When another connection or
process commits (``PRAGMA data_version`` moves; read once per event-loop pass), the taken
slots catch up with the bookings it changed (``booking_changes``, recorded by triggers) and
the held slots are read again. The conversations this connection's turns saved last are kept
too, as saved: the next turn of one loads it from there instead of reading and decoding its
row (measured with ``python -m bench.ab``: 7 % less CPU per turn in the serving process). A
commit of another connection drops them all; a save that finds the version moved drops its
conversation, so the turn, decided again, reads the row. Any other write of this connection
drops every cache, except a lease or a Vapi signature, which none of them reads.
Operator reads that may scan many rows (timelines, stats, events) run on a worker thread
with their own read-only connection, so they never hold the loop; in WAL mode they see
only committed data. ``synchronous=NORMAL`` in
WAL mode makes a commit durable against a process crash (kill -9); only a power loss can
lose the last commits. Booking is atomic through a partial unique index on active slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson

from service.engine.calendar import TakenSlots
from service.engine.model import BookingRef, Conversation, Slot
from service.engine.states import State
from service.storage.base import (
    BookingWrite,
    CancelWrite,
    ConversationSummary,
    EventRecord,
    ReplaySource,
    StoredConversation,
    StoreError,
    Timeline,
    TurnRecord,
    UnconfirmedBooking,
)
from service.storage.codec import (
    COLUMNS,
    FORGOTTEN,
    FORGOTTEN_CONTEXT,
    FORGOTTEN_EVENT,
    NAMED_EVENTS,
    KeptConversations,
    booking_row,
    conversation_from_row,
    conversation_from_values,
    conversation_summary,
    conversation_values,
    event_json,
    meta_from_json,
    meta_json,
    timeline_dict,
    turn_from_row,
    unconfirmed,
    utc_text,
)
from service.storage.migrations import EVENT_HOUR_CHARS, EVENTS_PER_BATCH, SQLITE_STEPS
from service.storage.sql import (
    CANCEL_BOOKING,
    INSERT_BOOKING,
    INSERT_TURN,
    Conflict,
    conflict,
    insert_conversation,
    update_conversation,
)

T = TypeVar("T")
INSERT_CONVERSATION = insert_conversation()
UPDATE_CONVERSATION = update_conversation()
# A conversation keeps the Vapi call id it started with: its turns update it without setting
# the call id (its index untouched), in the same statement checking that it is unchanged.
UPDATE_KEEPING_CALL_ID = update_conversation(kept=("vapi_call_id",))
# A save's events, a row per run of one conversation's events of one moment (schema step 10).
INSERT_EVENT_BATCH = "INSERT INTO event_batches (conv_id, at, count, kinds, data) VALUES (?, ?, ?, ?, ?)"
# The first batch of an hour a connection writes marks it (schema step 13); the smallest
# mark of every connection is kept.
MARK_EVENT_HOUR = (
    "INSERT INTO event_hours (hour, first_id) VALUES (?, ?) "
    "ON CONFLICT (hour) DO UPDATE SET first_id = min(first_id, excluded.first_id)"
)
# The events at or after a moment: from the smallest mark of the hours from that moment's
# on, in the table's order (the ``events`` view's columns, the id as the view numbers it).
FIRST_EVENT_BATCH = "SELECT min(first_id) FROM event_hours WHERE hour >= ?"
EVENTS_FROM = (
    f"SELECT b.id * {EVENTS_PER_BATCH} + e.key AS id, b.conv_id AS conv_id, b.at AS at, "
    "CASE WHEN b.count = 1 THEN b.kinds ELSE json_extract(b.kinds, '$[' || e.key || ']') END AS kind, "
    "e.value AS data FROM event_batches AS b, json_each(b.data) AS e WHERE b.id >= ? AND b.at >= ?"
)
_CALL_ID = COLUMNS.index("vapi_call_id")
# A conversation's columns in COLUMNS order, then its version and meta.
LOAD_CONVERSATION = f"SELECT {', '.join(COLUMNS)}, version, meta FROM conversations WHERE conv_id = ?"
_VERSION, _META = len(COLUMNS), len(COLUMNS) + 1
_LAST_SEEN, _CONTEXT = COLUMNS.index("last_seen_at"), COLUMNS.index("context")
READINESS_KEEP = timedelta(days=1)
# Opening waits this long for a lock (several workers migrating one new file at once).
OPEN_BUSY_SECONDS = 30.0
# The checkpoint thread copies the WAL into the database after this many commits (or each
# second when there were some), and the WAL file is cut back to this size after it restarts.
CHECKPOINT_COMMITS = 200
CHECKPOINT_SECONDS = 1.0
WAL_SIZE_LIMIT = 32 * 1024 * 1024
# A passive checkpoint cannot catch up with a writer that never pauses, and the WAL restarts
# from its beginning only once every frame is copied: past this many frames the checkpoint
# thread waits (at most RESTART_WAIT_MS) for a moment between two commits to finish the copy.
# Once it holds the write lock it also waits for the readers of the old frames, and turns wait
# for it meanwhile: a short wait bounds that pause (measured under load: 200 ms held the
# writers for 200 ms at each failed restart); a restart that could not finish is tried again
# at the next checkpoint.
WAL_RESTART_FRAMES = 4096
RESTART_WAIT_MS = 20
# Before a RESTART checkpoint, the event loop is asked to hold the turns' saves (its open group
# committed first) until the WAL has started over, and the checkpoint thread waits this long
# for it to say so: a save then waits a few milliseconds on the loop, instead of finding the
# file locked and sending every store call through the writer thread until it is free.
HOLD_WAIT_SECONDS = 0.1
# The bookings changed after a given one (schema step 11), and the active ones of some starts.
BOOKING_CHANGES = "SELECT seq, slot_start FROM booking_changes WHERE seq > ? ORDER BY seq"
LAST_BOOKING_CHANGE = "SELECT coalesce(max(seq), 0) FROM booking_changes"
ACTIVE_STARTS = "SELECT slot_start FROM bookings WHERE cancelled_at IS NULL AND slot_start IN"
# The purge keeps this many of the last booking changes.
BOOKING_CHANGES_KEPT = 10_000
# The conversations still choosing seen at or after a moment: their last seen and context as
# stored, to tell which ones changed since their proposals were read (HOLDS, a few at once).
CHOOSING = (
    "SELECT conv_id, last_seen_at, context FROM conversations "
    "WHERE outcome IS NULL AND state = 'WAIT_CONFIRM' AND last_seen_at >= ?"
)
HOLDS_READ_AT_ONCE = 500
# A conversation still choosing: last seen (UTC), the UTC starts proposed to it, and its row's
# last seen and context as stored.
Hold = tuple[datetime, frozenset[datetime], tuple[str, str]]
HOLDS = (
    "SELECT c.conv_id, c.last_seen_at, json_extract(p.value, '$.start') FROM conversations AS c, "
    "json_each(c.context, '$.proposed') AS p "
    "WHERE c.outcome IS NULL AND c.state = 'WAIT_CONFIRM' AND c.last_seen_at >= ?"
)


def _event_batches(events: list[EventRecord]) -> list[tuple[str, str, int, str, str]]:
    """The ``event_batches`` rows of a save's events (schema step 10): one row for the events
    that follow each other with one conversation and one moment (a turn's events), at most
    EVENTS_PER_BATCH of them; their data as a JSON array, their kinds as one too (the kind as
    it is for a batch of one). A kind holding a NUL is a batch of its own."""
    rows: list[tuple[str, str, int, str, str]] = []
    start, count = 0, len(events)
    while start < count:
        first = events[start]
        end = start + 1
        if "\x00" not in first.kind:
            while (end < count and end - start < EVENTS_PER_BATCH and events[end].conv_id == first.conv_id
                   and events[end].at == first.at and "\x00" not in events[end].kind):
                end += 1
        if end - start == 1:
            rows.append((first.conv_id, utc_text(first.at), 1, first.kind, f"[{event_json(first)}]"))
        else:
            batch = events[start:end]
            rows.append((
                first.conv_id, utc_text(first.at), end - start, orjson.dumps([e.kind for e in batch]).decode(),
                "[" + ",".join([event_json(e) for e in batch]) + "]",
            ))
        start = end
    return rows


def _forget_named_events(conn: sqlite3.Connection, conv_ids: list[str]) -> None:
    """The data of these conversations' events that carry a name (NAMED_EVENTS) becomes
    ``{}`` in their batches; the other events of a batch keep their data."""
    marks = ", ".join("?" for _ in conv_ids)
    rows = conn.execute(
        f"SELECT id, count, kinds, data FROM event_batches WHERE conv_id IN ({marks})", conv_ids
    ).fetchall()
    for batch_id, count, kinds, data in rows:
        names = [kinds] if count == 1 else orjson.loads(kinds)
        if not any(kind in NAMED_EVENTS for kind in names):
            continue
        items = [str(r[0]) for r in conn.execute("SELECT value FROM json_each(?) ORDER BY key", (data,))]
        forgotten = [FORGOTTEN_EVENT if kind in NAMED_EVENTS else item for kind, item in zip(names, items, strict=True)]
        conn.execute("UPDATE event_batches SET data = ? WHERE id = ?", ("[" + ",".join(forgotten) + "]", batch_id))


def _busy(exc: sqlite3.Error) -> bool:
    """True when ``exc`` says another connection holds the lock (SQLITE_BUSY / LOCKED)."""
    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class SqliteStore:
    """The Store and OperatorReads protocols on a SQLite file."""

    # The store bounds every call by its own timeout (inline calls never wait for a lock),
    # so the turn loop adds no timer of its own.
    enforces_timeout = True

    def __init__(self, path: Path, *, timeout: float = 2.0) -> None:
        self.path = path
        self.timeout = timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rdv-sqlite-read")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rdv-sqlite-write")
        self._queued = 0  # calls handed to the writer thread and not finished yet
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The open group transaction: the savepoint-saved turns waiting for its COMMIT.
        self._group: list[asyncio.Future[None]] | None = None
        self._checkpoints: _Checkpoints | None = None
        # Caches, valid while no other connection committed (PRAGMA data_version).
        self._data_version: int | None = None
        self._followed = False  # data_version read in this event-loop pass
        self._taken_window: tuple[datetime, datetime] | None = None
        self._taken: frozenset[datetime] = frozenset()
        self._taken_texts = ("", "")  # the window as UTC text
        self._changes_seen = 0  # the last booking change the taken slots hold
        # Conversations still choosing: conv_id -> (last seen, UTC starts proposed to them),
        # every one seen at or after ``_holds_since``, with its row's last seen and context
        # as stored (what they were read from); None when not loaded. ``_holds_stale``: another
        # connection committed since they were read.
        self._holds: dict[str, Hold] | None = None
        self._holds_since: datetime | None = None
        self._holds_stale = False
        # The conversations this connection's turns saved last: a turn of one of them loads
        # it from here instead of reading and decoding its row.
        self._convs = KeptConversations()
        self._waiter: asyncio.Future[None] | None = None  # the last grouped turn's, for save_turn
        # Set while the checkpoint thread starts the WAL over: turns' saves wait for it.
        self._writes_held: asyncio.Future[None] | None = None
        self._freed: list[datetime] = []  # slot starts the turn being saved cancelled
        # The hours this connection marked in ``event_hours`` (committed, or in the open
        # group), with the id it marked each one with: forgotten when a transaction that may
        # hold a mark rolls back.
        self._marked_hours: dict[str, int] = {}

    # -- plumbing -------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """A turn-path call: inline (one whole transaction, nothing interleaves) while the
        file is free; on the writer thread, bounded by the store timeout, when it is locked."""
        if self._queued == 0:
            try:
                return fn(*args)
            except sqlite3.Error as exc:
                if not _busy(exc):
                    raise StoreError(f"sqlite: {exc}") from exc
        return await self._off_loop(fn, *args)

    async def _off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the writer thread, waiting for a lock at most the store timeout (the
        open group is committed first: the thread never shares its transaction)."""
        self._commit_group()
        conn = self.conn
        wait_ms = max(1, int(self.timeout * 1000))

        def call() -> T:
            conn.execute(f"PRAGMA busy_timeout={wait_ms}")
            try:
                return fn(*args)
            finally:
                conn.execute("PRAGMA busy_timeout=0")

        def finished(done: asyncio.Future[T]) -> None:
            self._queued -= 1
            if not done.cancelled():
                done.exception()  # retrieved: a call its caller stopped waiting for fails silently

        self._queued += 1
        future = asyncio.get_running_loop().run_in_executor(self._writer, call)
        future.add_done_callback(finished)
        try:
            # shield: on timeout the thread finishes by itself (its busy wait is bounded by the
            # same timeout); the caller stops waiting now.
            return await asyncio.wait_for(asyncio.shield(future), self.timeout)
        except TimeoutError:
            raise StoreError(f"sqlite: the database stayed locked for {self.timeout:g} s") from None
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from exc

    @contextlib.contextmanager
    def _transaction(
        self, conn: sqlite3.Connection | None = None, begin: str = "BEGIN IMMEDIATE", *, turn: bool = False,
        cached_tables: bool = True,
    ) -> Iterator[sqlite3.Connection]:
        """``begin`` … ``COMMIT`` on ``conn`` (the store's own connection by default, after
        committing its open group; a plain ``BEGIN`` is a read snapshot), rolled back on any
        error (a failed BEGIN has nothing to roll back). A write other than a ``turn``'s save
        may change what the caches hold: they are dropped, unless it writes none of the
        tables they are read from (``cached_tables=False``: leases, seen signatures)."""
        own = conn is None or conn is self._conn
        if conn is None:
            conn = self.conn
        if own:
            self._commit_group()
            if begin != "BEGIN" and not turn and cached_tables:
                self._forget()
        conn.execute(begin)
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if own and self._checkpoints is not None:
            self._checkpoints.committed()

    # -- group commit ---------------------------------------------------------------------
    def _grouping(self) -> bool:
        """True on the event loop the store was opened on (not on the writer thread)."""
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _begin_turn(self, checked: bool) -> tuple[sqlite3.Connection, bool, bool]:
        """Begin a turn's save on the event loop, as a part of the open group transaction
        (begun, and its COMMIT scheduled for the next pass, when none is open): the
        connection, whether the turn began the group, and whether it has a savepoint. A
        failed save leaves the other turns of the group as they were (:meth:`_undo_turn`):
        the turn that began the group rolls it back; a later one rolls back its savepoint,
        or has none when ``checked`` (the save finds every conflict with its first two
        writes, and deletes the turn's row when the second one finds the version moved; a
        savepoint would copy every page the turn writes). An error of SQLite itself, or a
        failure of a checked save after its checks, rolls back the whole group. (On the
        writer thread, a save is a transaction of its own.)"""
        conn = self.conn
        first = self._group is None
        savepoint = not first and not checked
        if first:
            conn.execute("BEGIN IMMEDIATE")  # another process writing: busy, nothing begun
            self._group = []
            assert self._loop is not None
            self._loop.call_soon(self._commit_group)
        elif savepoint:
            conn.execute("SAVEPOINT turn")
        return conn, first, savepoint

    def _end_turn(self, conn: sqlite3.Connection, savepoint: bool) -> None:
        """A turn's save is queued in the group: its waiter, released by the group's COMMIT,
        is left in ``_waiter``."""
        if savepoint:
            conn.execute("RELEASE turn")
        assert self._group is not None and self._loop is not None
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._group.append(waiter)
        self._waiter = waiter

    def _undo_turn(self, conn: sqlite3.Connection, exc: BaseException, *, first: bool, savepoint: bool) -> None:
        """Undo a failed turn's save (see :meth:`_begin_turn`)."""
        if isinstance(exc, sqlite3.Error) or not conn.in_transaction:
            self._abort_group(exc)
            return
        try:
            if first:  # the group holds this turn only
                conn.execute("ROLLBACK")
                self._group = None
            elif savepoint:
                conn.execute("ROLLBACK TO turn")
                conn.execute("RELEASE turn")
            elif not isinstance(exc, StoreError):  # not a conflict: it may have written
                self._abort_group(exc)
        except sqlite3.Error as inner:
            self._abort_group(inner)

    def _commit_group(self) -> None:
        """COMMIT the open group and release its turns (each hears a failed COMMIT)."""
        group, self._group = self._group, None
        if group is None:
            return
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._group = group
            self._abort_group(exc)
            return
        for waiter in group:
            if not waiter.done():
                waiter.set_result(None)
        if self._checkpoints is not None:
            self._checkpoints.committed()

    def _abort_group(self, exc: BaseException) -> None:
        """Roll the open group back: every turn in it fails, and the caches (which held its
        writes) are dropped."""
        group, self._group = self._group, None
        conn = self.conn
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        self._forget()
        for waiter in group or ():
            if not waiter.done():
                waiter.set_exception(StoreError(f"sqlite: the turn's transaction failed: {exc}"))

    def _hold_writes(self, held: threading.Event) -> None:
        """On the event loop, asked by the checkpoint thread before it starts the WAL over:
        the open group is committed and turns' saves wait until :meth:`_release_writes`, so
        the thread takes the write lock at once and no turn finds the file locked; ``held``
        tells the thread."""
        self._commit_group()
        if self._writes_held is None:
            assert self._loop is not None
            self._writes_held = self._loop.create_future()
        held.set()

    def _release_writes(self) -> None:
        """On the event loop: the WAL started over (or could not), saves go on."""
        held, self._writes_held = self._writes_held, None
        if held is not None and not held.done():
            held.set_result(None)

    # -- caches ---------------------------------------------------------------------------
    def _follow(self) -> None:
        """Drop the caches when another connection committed since the last look (``PRAGMA
        data_version``); one look per event-loop pass serves every turn of it."""
        if self._followed:
            return
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            self._catch_up()
            self._holds_stale = True
        if self._grouping():
            assert self._loop is not None
            self._followed = True
            self._loop.call_soon(self._unfollow)

    def _unfollow(self) -> None:
        self._followed = False

    def _catch_up(self) -> None:
        """Another connection committed: the saved conversations are dropped (it may have
        saved any of them), and the taken slots brought up to date with the bookings changed
        since they were read (``booking_changes``, schema step 11): the changed starts of the
        window are read again. When the changes since then are not all kept (the purge trims
        them), the taken slots are dropped, read whole at the next turn."""
        self._convs.clear()
        if self._taken_window is None:
            return
        rows = self.conn.execute(BOOKING_CHANGES, (self._changes_seen,)).fetchall()
        if not rows:
            return
        if rows[0][0] != self._changes_seen + 1:
            self._taken_window = None
            return
        self._changes_seen = rows[-1][0]
        low, high = self._taken_texts
        changed = {r[1] for r in rows if low <= r[1] < high}
        if not changed:
            return
        active = {r[0] for r in self.conn.execute(
            f"{ACTIVE_STARTS} ({', '.join('?' for _ in changed)})", tuple(changed))}
        taken = self._taken
        added = [s for s in map(datetime.fromisoformat, active) if s not in taken]
        freed = [s for s in map(datetime.fromisoformat, changed - active) if s in taken]
        if added or freed:
            self._taken = TakenSlots.after(taken, added, freed)

    def _lost(self, start: datetime) -> None:
        """A booking lost its slot to another one. When another connection committed since
        the caches were last checked, the taken slots catch up with every booking it changed
        (a group holds several turns); the slot joins them in any case (the winner may be a
        turn of this connection), and they are kept: the turn is decided again on them at
        once, without reading them all back. Held slots are read again."""
        self._holds_stale = True
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._data_version = version
            self._catch_up()
        window = self._taken_window
        if window is not None and window[0] <= start < window[1]:
            lost = start.astimezone(UTC)
            if lost not in self._taken:
                self._taken = TakenSlots.after(self._taken, [lost])

    def _forget(self) -> None:
        self._taken_window = None
        self._holds = None
        self._convs.clear()
        self._marked_hours.clear()

    def _written(
        self, conv: Conversation, values: tuple[Any, ...], booking: BookingWrite | None, cancel: CancelWrite | None
    ) -> None:
        """After this connection wrote a turn (queued in the group, or committed): the caches
        follow. Its own new booking joins the taken slots, the slot it cancelled (or moved
        from) leaves them; the conversation's proposals are held while it is still choosing
        (``values``: its columns as written)."""
        if (booking is not None or cancel is not None) and self._taken_window is not None:
            start, end = self._taken_window
            added = ([booking.slot.start.astimezone(UTC)]
                     if booking is not None and start <= booking.slot.start < end else [])
            self._taken = TakenSlots.after(self._taken, added, self._freed)
        holds = self._holds
        if holds is not None:
            if conv.outcome is None and conv.state is State.WAIT_CONFIRM and conv.context.proposed:
                holds[conv.conv_id] = (
                    conv.last_seen_at.astimezone(UTC),
                    frozenset(s.start.astimezone(UTC) for s in conv.context.proposed),
                    (values[_LAST_SEEN], values[_CONTEXT]),
                )
            else:
                holds.pop(conv.conv_id, None)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """An operator read that may scan many rows: on the reader thread and connection."""
        if self._reader is None:  # in-memory database: one connection only
            return await self._run(fn, self.conn)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, self._reader)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from exc

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the SQLite store is not open")
        return self._conn

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=OPEN_BUSY_SECONDS)
        conn.row_factory = sqlite3.Row
        # Several workers opening a new file at once race to switch it to WAL; the loser
        # sees "database is locked" at once (the busy handler does not cover this switch).
        deadline = time.monotonic() + OPEN_BUSY_SECONDS
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    conn.close()
                    raise
                time.sleep(0.02)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={int(OPEN_BUSY_SECONDS * 1000)}")
        conn.execute("PRAGMA foreign_keys=ON")
        # A booking or cancelling turn of a group writes inside a savepoint, whose journal holds
        # every page the turn changes (fifteen and more in a file of some size): past 64 KiB,
        # SQLite moves it to a temporary file, created, written and deleted in each group where
        # that happens (about 5 % of a turn's CPU under load). In memory it is one turn's pages
        # at most, emptied at each RELEASE.
        conn.execute("PRAGMA temp_store=MEMORY")
        self._conn = conn
        self._migrate()
        conn.execute("PRAGMA busy_timeout=0")  # from now on the event loop never waits for a lock
        if str(self.path) != ":memory:":
            reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            reader.row_factory = sqlite3.Row
            reader.execute("PRAGMA query_only=ON")
            self._reader = reader
            # Checkpoints (two fsyncs each) on a thread of their own, never in a commit.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            assert self._loop is not None
            self._checkpoints = _Checkpoints(self.path, self._loop, self._hold_writes, self._release_writes)

    def _migrate(self) -> None:
        with self._transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for version, statements in enumerate(SQLITE_STEPS, start=1):
                if version <= current:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    async def open(self) -> None:
        """Open the file (created if missing) and apply migrations."""
        self._loop = asyncio.get_running_loop()
        await self._run(self._open)
        # What other connections committed before now is not in any cache: the first look
        # compares with this.
        self._data_version = (await self._run(lambda: self.conn.execute("PRAGMA data_version").fetchone()))[0]

    async def close(self) -> None:
        """Commit the open group, close the connections and stop the worker threads."""
        self._commit_group()
        if self._checkpoints is not None:
            checkpoints, self._checkpoints = self._checkpoints, None
            await asyncio.get_running_loop().run_in_executor(None, checkpoints.stop)
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await asyncio.get_running_loop().run_in_executor(self._executor, reader.close)
        self._writer.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        """Raise StoreError when the file cannot be read."""
        await self._run(lambda: self.conn.execute("SELECT 1").fetchone())

    async def purge_before(self, cutoff: datetime) -> int:
        """Purge what is older than ``cutoff``, keeping anonymous counts (see :class:`Store`)."""
        limit = utc_text(cutoff)

        def run() -> int:
            with self._transaction() as conn:
                old = "SELECT conv_id FROM conversations WHERE outcome IS NOT NULL AND last_seen_at < ?"
                conn.execute(
                    "INSERT INTO daily_counts (day, channel, outcome, synthetic, conversations) "
                    "SELECT substr(last_seen_at, 1, 10), channel, outcome, synthetic, count(*) FROM conversations "
                    "WHERE outcome IS NOT NULL AND last_seen_at < ? GROUP BY 1, 2, 3, 4 "
                    "ON CONFLICT (day, channel, outcome, synthetic) DO UPDATE "
                    "SET conversations = conversations + excluded.conversations",
                    (limit,),
                )
                for table in ("turns", "event_batches", "call_reports"):
                    conn.execute(f"DELETE FROM {table} WHERE conv_id IN ({old})", (limit,))
                conn.execute("DELETE FROM bookings WHERE slot_end < ?", (limit,))
                conn.execute(
                    "DELETE FROM booking_changes WHERE seq <= (SELECT max(seq) FROM booking_changes) - ?",
                    (BOOKING_CHANGES_KEPT,),
                )
                return int(conn.execute(
                    "DELETE FROM conversations WHERE outcome IS NOT NULL AND last_seen_at < ?", (limit,)
                ).rowcount)

        return await self._run(run)

    async def daily_counts(self) -> list[tuple[str, str, str, bool, int]]:
        """The anonymous counts of purged conversations, oldest day first."""

        def run(conn: sqlite3.Connection) -> list[tuple[str, str, str, bool, int]]:
            rows = conn.execute(
                "SELECT day, channel, outcome, synthetic, conversations FROM daily_counts ORDER BY 1, 2, 3, 4"
            ).fetchall()
            return [(str(r[0]), str(r[1]), str(r[2]), bool(r[3]), int(r[4])) for r in rows]

        return await self._read(run)

    async def forget_caller(self, phone: str) -> tuple[int, int]:
        """Erase a caller's personal data (see :class:`Store`); (conversations, bookings)."""
        like = f'%"phone":{json.dumps(phone, ensure_ascii=False)}%'

        def run() -> tuple[int, int]:
            with self._transaction() as conn:
                ids = [r[0] for r in conn.execute(
                    "SELECT conv_id FROM conversations WHERE caller_phone = ? OR context LIKE ?", (phone, like)
                )]
                marks = ", ".join("?" for _ in ids)
                if ids:
                    conn.execute("UPDATE conversations SET caller_phone = NULL, context = ?, version = version + 1 "
                                 f"WHERE conv_id IN ({marks})", (FORGOTTEN_CONTEXT, *ids))
                    conn.execute(f"UPDATE turns SET text = ?, reply = ? WHERE conv_id IN ({marks})",
                                 (FORGOTTEN, FORGOTTEN, *ids))
                    _forget_named_events(conn, ids)
                    conn.execute(f"DELETE FROM call_reports WHERE conv_id IN ({marks})", ids)
                booked = conn.execute(
                    "UPDATE bookings SET name = ?, phone = NULL WHERE phone = ?"
                    f"{f' OR conv_id IN ({marks})' if ids else ''}",
                    (FORGOTTEN, phone, *ids),
                ).rowcount
                return len(ids), booked

        return await self._run(run)

    async def warnings(self) -> list[str]:
        """None: the store sets every pragma it relies on itself when it opens the file."""
        return []

    async def schema_version(self) -> int:
        """The last schema step applied."""
        row = await self._run(lambda: self.conn.execute("SELECT MAX(version) FROM schema_version").fetchone())
        return int(row[0] or 0)

    # -- conversations and turns ------------------------------------------------------
    def _load(self, conv_id: str) -> StoredConversation | None:
        self._follow()
        kept = self._convs.get(conv_id)
        if kept is not None:
            return kept
        row = self.conn.execute(LOAD_CONVERSATION, (conv_id,)).fetchone()
        if row is None:
            return None
        return StoredConversation(conversation_from_values(row), int(row[_VERSION]), meta_from_json(row[_META]))

    async def load(self, conv_id: str) -> StoredConversation | None:
        """The conversation with this id, or None."""
        return await self._run(self._load, conv_id)

    def _find_turn(self, conv_id: str, request_key: str) -> TurnRecord | None:
        row = self.conn.execute(
            "SELECT * FROM turns WHERE conv_id = ? AND request_key = ?", (conv_id, request_key)
        ).fetchone()
        return None if row is None else turn_from_row(dict(row))

    async def find_turn(self, conv_id: str, request_key: str) -> TurnRecord | None:
        """The stored turn with this request key, or None."""
        return await self._run(self._find_turn, conv_id, request_key)

    def _save_turn(
        self,
        conv: Conversation,
        expected: int | None,
        meta: dict[str, Any],
        turn: TurnRecord | None,
        events: list[EventRecord],
        booking: BookingWrite | None,
        cancel: CancelWrite | None,
    ) -> int:
        # Every value is made before the first write: what fails after it is SQLite's own.
        values = conversation_values(conv)
        meta_text = meta_json(meta)
        turn_row = None if turn is None else (
            turn.conv_id, turn.turn, turn.request_key, turn.text, turn.reply, turn.state_before, turn.state_after,
            utc_text(turn.at), int(turn.interrupted), turn.directive, turn.trace_id,
        )
        event_rows = _event_batches(events)
        self._freed.clear()
        # Without a booking or a cancellation, the conflicts (a duplicate, then the version)
        # are all found by the first two writes (the turn's, then the conversation's, which
        # writes nothing when the version moved): the save needs no savepoint.
        args = (conv, expected, values, meta_text, turn, turn_row, event_rows, booking, cancel)
        try:
            if not self._grouping():
                with self._transaction(turn=True) as conn:
                    version = self._write_turn(conn, *args)
            else:
                conn, first, savepoint = self._begin_turn(checked=booking is None and cancel is None)
                try:
                    version = self._write_turn(conn, *args)
                except BaseException as exc:
                    self._undo_turn(conn, exc, first=first, savepoint=savepoint)
                    raise
                self._end_turn(conn, savepoint)
        except BaseException:
            self._marked_hours.clear()  # the hours it marked may be rolled back
            raise
        self._written(conv, values, booking, cancel)
        self._convs.keep(conv, version, meta_text)
        return version

    def _write_turn(
        self,
        conn: sqlite3.Connection,
        conv: Conversation,
        expected: int | None,
        values: tuple[Any, ...],
        meta_text: str,
        turn: TurnRecord | None,
        turn_row: tuple[Any, ...] | None,
        event_rows: list[tuple[str, str, int, str, str]],
        booking: BookingWrite | None,
        cancel: CancelWrite | None,
    ) -> int:
        """The statements of a turn's save, in its transaction; the new version. The turn's
        row is written first: the unique index of request keys finds a duplicate there, before
        anything else is written (a failed statement writes nothing); when the version check
        fails next, that row is deleted again, so that a conflict leaves nothing behind."""
        turn_id = None
        if turn_row is not None:
            try:
                turn_id = conn.execute(INSERT_TURN, turn_row).lastrowid
            except sqlite3.IntegrityError:
                assert turn is not None
                raise conflict(Conflict.DUPLICATE, conv_id=conv.conv_id, new=expected is None,
                               request_key=turn.request_key) from None
        if expected is None:
            try:
                conn.execute(INSERT_CONVERSATION, (*values, meta_text))
            except sqlite3.IntegrityError:
                self._unwrite_turn(conn, turn_id)
                self._convs.drop(conv.conv_id)
                raise conflict(Conflict.VERSION, conv_id=conv.conv_id, new=True) from None
            version = 1
        else:
            version = expected + 1
            kept = values[_CALL_ID]
            changed = (*values[1:_CALL_ID], *values[_CALL_ID + 1:], meta_text, version, conv.conv_id, expected)
            cur = conn.execute(UPDATE_KEEPING_CALL_ID, (*changed, kept))
            if cur.rowcount != 1:  # the call id changed, or the version moved
                cur = conn.execute(UPDATE_CONVERSATION, (*values[1:], meta_text, version, conv.conv_id, expected))
                if cur.rowcount != 1:
                    self._unwrite_turn(conn, turn_id)
                    self._convs.drop(conv.conv_id)  # saved by another: read it again
                    raise conflict(Conflict.VERSION, conv_id=conv.conv_id, new=False)
        if cancel is not None:
            self._cancel(conn, cancel.booking_id, cancel.at)
        if booking is not None:
            self._insert_booking(conn, booking)
        marked = self._marked_hours
        for row in event_rows:
            batch_id: int = conn.execute(INSERT_EVENT_BATCH, row).lastrowid  # type: ignore[assignment]
            hour = row[1][:EVENT_HOUR_CHARS]
            mark = marked.get(hour)
            # (An id below the mark: the newest batches were deleted and their ids reused.)
            if mark is None or batch_id < mark:
                conn.execute(MARK_EVENT_HOUR, (hour, batch_id))
                marked[hour] = batch_id
        return version

    @staticmethod
    def _unwrite_turn(conn: sqlite3.Connection, turn_id: int | None) -> None:
        """Delete the turn row a save wrote before its version check failed."""
        if turn_id is not None:
            conn.execute("DELETE FROM turns WHERE id = ?", (turn_id,))

    def _cancel(self, conn: sqlite3.Connection, booking_id: str, at: datetime) -> None:
        cur = conn.execute(CANCEL_BOOKING, (utc_text(at), booking_id))
        if cur.rowcount != 1:
            raise conflict(Conflict.CANCEL, conv_id="", new=False, booking_id=booking_id)
        freed = conn.execute("SELECT slot_start FROM bookings WHERE id = ?", (booking_id,)).fetchone()
        self._freed.append(datetime.fromisoformat(freed[0]))

    def _insert_booking(self, conn: sqlite3.Connection, booking: BookingWrite) -> None:
        if booking.replaces is not None:
            self._cancel(conn, booking.replaces, booking.at)
        try:
            conn.execute(
                INSERT_BOOKING,
                (
                    booking.booking_id, utc_text(booking.slot.start), utc_text(booking.slot.end), booking.conv_id,
                    booking.name, booking.phone, utc_text(booking.at),
                ),
            )
        except sqlite3.IntegrityError:
            self._lost(booking.slot.start)
            raise conflict(Conflict.SLOT, conv_id=booking.conv_id, new=False,
                           slot_start=booking.slot.start.isoformat()) from None

    async def save_turn(
        self,
        conversation: Conversation,
        expected_version: int | None,
        meta: dict[str, Any],
        turn: TurnRecord | None,
        events: list[EventRecord],
        *,
        booking: BookingWrite | None = None,
        cancel: CancelWrite | None = None,
    ) -> int:
        """Upsert the conversation, append the turn and events and write the turn's booking
        or cancellation, in one durable transaction: returns once the group holding it is
        committed (saves wait while the WAL starts over, :meth:`_hold_writes`)."""
        while (held := self._writes_held) is not None:
            await held
        version = await self._run(self._save_turn, conversation, expected_version, meta, turn, events, booking, cancel)
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            await waiter
        return version

    # -- bookings ----------------------------------------------------------------------
    async def taken_slots(self, start: datetime, end: datetime) -> frozenset[datetime]:
        """Start times of active bookings in ``[start, end)``."""

        def run() -> frozenset[datetime]:
            self._follow()
            if self._taken_window == (start, end):
                return self._taken
            # The changes first: one committed between the two reads is read again later.
            seen = self.conn.execute(LAST_BOOKING_CHANGE).fetchone()[0]
            texts = (utc_text(start), utc_text(end))
            rows = self.conn.execute(
                "SELECT slot_start FROM bookings WHERE cancelled_at IS NULL AND slot_start >= ? AND slot_start < ?",
                texts,
            ).fetchall()
            self._taken = frozenset(datetime.fromisoformat(r[0]) for r in rows)
            self._taken_window, self._taken_texts, self._changes_seen = (start, end), texts, seen
            return self._taken

        return await self._run(run)

    async def held_slots(self, since: datetime, except_conv: str) -> frozenset[datetime]:
        """Starts of the slots proposed to other conversations still choosing."""

        def run() -> frozenset[datetime]:
            self._follow()
            holds = self._holds
            if holds is None or self._holds_since is None or since < self._holds_since:
                holds = self._load_holds(since)
            elif self._holds_stale:
                self._refresh_holds(holds, self._holds_since)
            held: set[datetime] = set()
            stale = []
            for conv_id, (seen, starts, _) in holds.items():
                if seen < since:
                    stale.append(conv_id)
                elif conv_id != except_conv:
                    held.update(starts)
            if stale:
                for conv_id in stale:
                    del holds[conv_id]
                self._holds_since = since
            return frozenset(held)

        return await self._run(run)

    def _load_holds(self, since: datetime) -> dict[str, Hold]:
        holds: dict[str, Hold] = {}
        self._refresh_holds(holds, since)
        self._holds, self._holds_since = holds, since
        return holds

    def _refresh_holds(self, holds: dict[str, Hold], since: datetime) -> None:
        """Bring ``holds`` (the conversations still choosing seen at or after ``since``) up to
        date with the stored rows: the proposals of a conversation whose last seen or context
        changed (or that is new) are read again, a conversation no longer choosing is left
        out; the others are kept as they are (the same row holds the same proposals)."""
        since_text = utc_text(since)
        rows = {r[0]: (r[1], r[2]) for r in self.conn.execute(CHOOSING, (since_text,))}
        for conv_id in [c for c in holds if c not in rows]:
            del holds[conv_id]
        changed = [c for c, row in rows.items() if c not in holds or holds[c][2] != row]
        for first in range(0, len(changed), HOLDS_READ_AT_ONCE):
            some = changed[first:first + HOLDS_READ_AT_ONCE]
            starts: dict[str, set[datetime]] = {}
            seen: dict[str, datetime] = {}
            for conv_id, last_seen, start in self.conn.execute(
                f"{HOLDS} AND c.conv_id IN ({', '.join('?' for _ in some)})", (since_text, *some)
            ):
                if start:
                    starts.setdefault(conv_id, set()).add(datetime.fromisoformat(start).astimezone(UTC))
                    seen[conv_id] = datetime.fromisoformat(last_seen)
            for conv_id in some:
                found = starts.get(conv_id)
                if found:
                    holds[conv_id] = (seen[conv_id], frozenset(found), rows[conv_id])
                else:
                    holds.pop(conv_id, None)
        self._holds_stale = False

    @staticmethod
    def _booking_ref(row: sqlite3.Row) -> BookingRef:
        start, end = datetime.fromisoformat(row["slot_start"]), datetime.fromisoformat(row["slot_end"])
        return BookingRef(row["id"], Slot(start, end), row["name"])

    async def find_bookings(self, phone: str, after: datetime) -> tuple[BookingRef, ...]:
        """Active future bookings made from this phone, by start."""

        def run() -> tuple[BookingRef, ...]:
            rows = self.conn.execute(
                "SELECT * FROM bookings WHERE cancelled_at IS NULL AND slot_start > ? AND phone = ? "
                "ORDER BY slot_start",
                (utc_text(after), phone),
            ).fetchall()
            return tuple(self._booking_ref(r) for r in rows)

        return await self._run(run)

    async def booking_at(self, start: datetime) -> BookingRef | None:
        """The active booking starting at ``start``, or None."""

        def run() -> BookingRef | None:
            row = self.conn.execute(
                "SELECT * FROM bookings WHERE cancelled_at IS NULL AND slot_start = ?", (utc_text(start),)
            ).fetchone()
            return None if row is None else self._booking_ref(row)

        return await self._run(run)

    async def booking_active(self, booking_id: str) -> bool:
        """True while this appointment is booked and not cancelled."""

        def run() -> bool:
            row = self.conn.execute(
                "SELECT 1 FROM bookings WHERE id = ? AND cancelled_at IS NULL", (booking_id,)
            ).fetchone()
            return row is not None

        return await self._run(run)

    async def unconfirmed_bookings(self) -> list[UnconfirmedBooking]:
        """Active bookings that no ``AppointmentConfirmed`` event of their conversation names."""

        def run(conn: sqlite3.Connection) -> list[UnconfirmedBooking]:
            rows = conn.execute(
                "SELECT b.id, b.conv_id, b.slot_start, b.created_at, "
                "(SELECT group_concat(json_extract(e.data, '$.slot_start'), '|') FROM events AS e "
                " WHERE e.conv_id = b.conv_id AND e.kind = 'AppointmentConfirmed') AS confirmed "
                "FROM bookings AS b WHERE b.cancelled_at IS NULL ORDER BY b.slot_start"
            ).fetchall()
            return unconfirmed(
                (str(r[0]), str(r[1]), datetime.fromisoformat(r[2]), datetime.fromisoformat(r[3]),
                 (r[4] or "").split("|"))
                for r in rows
            )

        return await self._read(run)

    async def release_bookings(self, booking_ids: list[str], at: datetime) -> int:
        """Cancel these active bookings; how many were."""

        def run() -> int:
            released = 0
            with self._transaction() as conn:
                for booking_id in booking_ids:
                    cur = conn.execute(
                        "UPDATE bookings SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL",
                        (utc_text(at), booking_id),
                    )
                    released += cur.rowcount
            return released

        return await self._run(run)

    # -- Vapi reports, reaper, operator reads -----------------------------------------
    async def save_call_report(self, conv_id: str, report: dict[str, Any], at: datetime) -> bool:
        """Store (or replace) Vapi's end-of-call report; True when it is the first one."""

        def run() -> bool:
            with self._transaction() as conn:
                first = conn.execute("SELECT 1 FROM call_reports WHERE conv_id = ?", (conv_id,)).fetchone() is None
                conn.execute(
                    "INSERT INTO call_reports (conv_id, report, at) VALUES (?, ?, ?) "
                    "ON CONFLICT(conv_id) DO UPDATE SET report = excluded.report, at = excluded.at",
                    (conv_id, json.dumps(report, ensure_ascii=False), utc_text(at)),
                )
                reason = report.get("endedReason")
                if isinstance(reason, str):
                    conn.execute("UPDATE conversations SET ended_reason = ? WHERE conv_id = ?", (reason, conv_id))
            return first

        return await self._run(run)

    async def active_counts(self) -> dict[str, int]:
        """How many conversations have no outcome yet, per channel."""

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT channel, count(*) FROM conversations WHERE outcome IS NULL AND synthetic = 0 GROUP BY channel"
            ).fetchall()
            return {str(r[0]): int(r[1]) for r in rows}

        return await self._read(run)

    async def idle_conversations(self, idle_before: datetime, channel: str) -> list[StoredConversation]:
        """Not-ended conversations of ``channel`` last seen before ``idle_before``."""

        def run() -> list[StoredConversation]:
            rows = self.conn.execute(
                "SELECT * FROM conversations WHERE outcome IS NULL AND channel = ? AND last_seen_at < ? "
                "AND turn_count > 0 ORDER BY last_seen_at LIMIT 500",
                (channel, utc_text(idle_before)),
            ).fetchall()
            return [
                StoredConversation(conversation_from_row(dict(r)), int(r["version"]), meta_from_json(r["meta"]))
                for r in rows
            ]

        return await self._run(run)

    async def conversation_ids_by_call(self, vapi_call_id: str) -> str | None:
        """The conversation id of a Vapi call id, or None."""

        def run() -> str | None:
            row = self.conn.execute(
                "SELECT conv_id FROM conversations WHERE vapi_call_id = ? LIMIT 1", (vapi_call_id,)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(run)

    async def timeline(self, conv_id: str) -> Timeline | None:
        """Turns, events, bookings and call report of one conversation, in order."""

        def run(conn: sqlite3.Connection) -> Timeline | None:
            with self._transaction(conn, "BEGIN"):  # one snapshot for all five reads
                return snapshot(conn)

        def snapshot(conn: sqlite3.Connection) -> Timeline | None:
            row = conn.execute("SELECT * FROM conversations WHERE conv_id = ?", (conv_id,)).fetchone()
            if row is None:
                return None
            turns = [turn_from_row(dict(r)) for r in conn.execute(
                "SELECT * FROM turns WHERE conv_id = ? ORDER BY id", (conv_id,)).fetchall()]
            events = conn.execute("SELECT * FROM events WHERE conv_id = ? ORDER BY id", (conv_id,)).fetchall()
            bookings = conn.execute(
                "SELECT * FROM bookings WHERE conv_id = ? ORDER BY created_at", (conv_id,)).fetchall()
            report = conn.execute("SELECT report, at FROM call_reports WHERE conv_id = ?", (conv_id,)).fetchone()
            return timeline_dict(
                dict(row), turns,
                [EventRecord(e["conv_id"], datetime.fromisoformat(e["at"]), e["kind"],
                             json.loads(e["data"])) for e in events],
                [dict(b) for b in bookings],
                None if report is None else json.loads(report["report"]),
            )

        return await self._read(run)

    async def conversations_seen_since(self, since: datetime) -> list[ConversationSummary]:
        """Summaries of conversations last seen at or after ``since``."""

        def run(conn: sqlite3.Connection) -> list[ConversationSummary]:
            rows = conn.execute(
                "SELECT conv_id, channel, state, outcome, turn_count, created_at, last_seen_at, ended_reason, "
                "synthetic FROM conversations WHERE last_seen_at >= ?",
                (utc_text(since),),
            ).fetchall()
            return [conversation_summary(r) for r in rows]

        return await self._read(run)

    async def events_since(self, since: datetime, kinds: tuple[str, ...]) -> list[EventRecord]:
        """Events of these kinds at or after ``since``, oldest first."""

        def run(conn: sqlite3.Connection) -> list[EventRecord]:
            if not kinds:
                return []
            since_text = utc_text(since)
            with self._transaction(conn, "BEGIN"):  # the marks and the batches of one snapshot
                first = conn.execute(FIRST_EVENT_BATCH, (since_text[:EVENT_HOUR_CHARS],)).fetchone()[0]
                if first is None:
                    return []
                rows = conn.execute(
                    f"SELECT * FROM ({EVENTS_FROM}) WHERE kind IN ({', '.join('?' for _ in kinds)}) ORDER BY id",
                    (first, since_text, *kinds),
                ).fetchall()
            return [EventRecord(r["conv_id"], datetime.fromisoformat(r["at"]), r["kind"],
                                json.loads(r["data"])) for r in rows]

        return await self._read(run)

    async def replay_source(self, since: datetime, until: datetime, conv_id: str | None = None) -> ReplaySource:
        """Conversations of the window, their turns and the bookings around it, one snapshot."""

        def run(conn: sqlite3.Connection) -> ReplaySource:
            args: tuple[str, ...]
            if conv_id is not None:
                where, args = "conv_id = ?", (conv_id,)
            else:
                where, args = "last_seen_at >= ? AND last_seen_at < ?", (utc_text(since), utc_text(until))
            with self._transaction(conn, "BEGIN"):  # one snapshot
                rows = [dict(r) for r in conn.execute(f"SELECT * FROM conversations WHERE {where}", args).fetchall()]
                turns = conn.execute(
                    f"SELECT * FROM turns WHERE conv_id IN (SELECT conv_id FROM conversations WHERE {where}) "
                    "ORDER BY conv_id, id",
                    args,
                ).fetchall()
                first = min((r["created_at"] for r in rows), default=utc_text(since))
                bookings = conn.execute(
                    "SELECT * FROM bookings WHERE slot_start >= ?",
                    (utc_text(datetime.fromisoformat(first) - timedelta(days=1)),),
                ).fetchall()
            return ReplaySource(
                [conversation_from_row(r) for r in rows],
                {r["conv_id"]: r["ended_reason"] for r in rows},
                [turn_from_row(dict(t)) for t in turns],
                [booking_row(dict(b)) for b in bookings],
            )

        return await self._read(run)

    async def try_lock(self, name: str, holder: str, until: datetime, now: datetime) -> bool:
        """Take or renew a named lease; False if another holder has it."""

        def run() -> bool:
            with self._transaction(cached_tables=False) as conn:
                cur = conn.execute(
                    "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until = excluded.until "
                    "WHERE leases.until < ? OR leases.holder = excluded.holder",
                    (name, holder, utc_text(until), utc_text(now)),
                )
            return cur.rowcount == 1

        return await self._run(run)

    # -- replay protection and readiness ------------------------------------------------
    async def remember_signature(self, key: str, now: datetime, forget_before: datetime) -> bool:
        """Record an accepted signature; False when already recorded (a replay)."""

        def run() -> bool:
            with self._transaction(cached_tables=False) as conn:
                conn.execute("DELETE FROM seen_signatures WHERE seen_at < ?", (utc_text(forget_before),))
                cur = conn.execute(
                    "INSERT INTO seen_signatures (key, seen_at) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                    (key, utc_text(now)),
                )
            return cur.rowcount == 1

        return await self._run(run)

    async def probe_write(self, instance: str, now: datetime, deadline: float) -> None:
        """Upsert this instance's readiness row and commit, on a connection of its own and a
        worker thread, waiting at most ``deadline`` for another writer's lock."""
        upsert = (
            "INSERT INTO readiness (instance, at) VALUES (?, ?) "
            "ON CONFLICT(instance) DO UPDATE SET at = excluded.at"
        )
        # Each process start is a new instance: rows of instances gone for a day are dropped.
        purge = "DELETE FROM readiness WHERE at < ?"
        stale = utc_text(now - READINESS_KEEP)
        if self._reader is None:  # in-memory database: its one connection, nobody else to lock it
            await self._run(lambda: self.conn.execute(upsert, (instance, utc_text(now))))
            return

        def run() -> None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=deadline, check_same_thread=False)
            try:
                conn.execute("PRAGMA synchronous=NORMAL")
                # A commit appends to the WAL: a full disk or a read-only file fails here,
                # where a rolled-back write would never touch the disk.
                with self._transaction(conn):
                    conn.execute(upsert, (instance, utc_text(now)))
                    conn.execute(purge, (stale,))
            finally:
                conn.close()

        try:
            await asyncio.to_thread(run)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from exc


class _Checkpoints:
    """WAL checkpoints on a thread with a connection of its own: after CHECKPOINT_COMMITS
    commits, or each CHECKPOINT_SECONDS when there were some. PASSIVE: it never waits for
    nor blocks a writer or a reader (what it cannot copy now, a later one copies).

    Under a writer that never pauses, the WAL never starts over by itself: SQLite restarts
    it at the beginning of a write only when a checkpoint has copied every frame, and
    commits keep arriving while one copies. When the WAL holds more than WAL_RESTART_FRAMES
    frames, a RESTART checkpoint takes the write lock to finish, so that it starts over. The
    event loop is asked first to hold the turns' saves (``hold``, given a threading.Event it
    sets once they are held; ``release`` lets them go, run on the loop afterwards in any
    case): a save waits those milliseconds, instead of finding the file locked and sending
    every store call through the writer thread, queued behind it, until the lock is free
    (measured at 500 turns/s: most turns slower than the 99th percentile were those). When
    the loop does not answer within HOLD_WAIT_SECONDS, the checkpoint takes the lock between
    two commits, as with another process writing."""

    def __init__(
        self,
        path: Path,
        loop: asyncio.AbstractEventLoop,
        hold: Callable[[threading.Event], None],
        release: Callable[[], None],
    ) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0)
        self._loop = loop
        self._hold = hold
        self._release = release
        self._commits = 0
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="rdv-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """Count one commit (called by the writing connection)."""
        self._commits += 1
        if self._commits >= CHECKPOINT_COMMITS:
            self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(CHECKPOINT_SECONDS)
            self._wake.clear()
            if self._commits or self._stopping:
                self._commits = 0
                with contextlib.suppress(sqlite3.Error):
                    _, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames > WAL_RESTART_FRAMES:
                        self._restart()
        self._conn.close()

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> bool:
        """Run ``fn(*args)`` on the store's event loop; False when it is closed."""
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed
            return False
        return True

    def _restart(self) -> None:
        """Copy what is left and start the WAL over, the turns' saves held meanwhile."""
        held = threading.Event()
        asked = self._on_loop(self._hold, held)
        try:
            if asked:
                held.wait(HOLD_WAIT_SECONDS)
            self._conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            try:
                self._conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            finally:
                self._conn.execute("PRAGMA busy_timeout=0")
        finally:
            if asked:
                self._on_loop(self._release)

    def stop(self) -> None:
        """A last checkpoint, then the thread ends (its connection closed)."""
        self._stopping = True
        self._wake.set()
        self._thread.join()
