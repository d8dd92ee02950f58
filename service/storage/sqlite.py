"""The embedded default store: one SQLite file in WAL mode.

Turn-path calls (load, save, book, taken slots…) run inline on the event loop, each one a
whole transaction, so they never interleave: a local WAL commit costs about 100 µs, less
than handing the call to a thread and back (measured in ``make bench``: +50 % turns/s).
Operator reads that may scan many rows (timelines, stats, events) run on a worker thread
with their own read-only connection, so they never hold the loop; in WAL mode they see
only committed data. ``synchronous=NORMAL`` in
WAL mode makes a commit durable against a process crash (kill -9); only a power loss can
lose the last commits. Booking is atomic through a partial unique index on active slots.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from service.engine.model import BookingRef, Conversation, Slot
from service.engine.states import BookingResult
from service.storage.base import (
    BookingOutcome,
    ConcurrentTurnError,
    DuplicateTurnError,
    EventRecord,
    StoredConversation,
    StoreError,
    TurnRecord,
)
from service.storage.codec import (
    COLUMNS,
    conversation_from_row,
    conversation_to_row,
    timeline_dict,
    turn_from_row,
    utc_starts,
    utc_text,
)
from service.storage.migrations import SQLITE_STEPS

T = TypeVar("T")


class SqliteStore:
    """The Store protocol on a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rdv-sqlite-read")
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        # taken_slots cache: valid while no connection changed the file (PRAGMA data_version
        # moves on other connections' commits) and this one wrote no booking.
        self._booking_writes = 0
        self._taken_key: tuple[Any, ...] | None = None
        self._taken: frozenset[datetime] = frozenset()

    # -- plumbing -------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """A turn-path call, inline: one whole transaction, nothing interleaves."""
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from exc

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
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.row_factory = sqlite3.Row
        # Several workers opening a new file at once race to switch it to WAL; the loser
        # sees "database is locked" at once (the busy handler does not cover this switch).
        deadline = time.monotonic() + 30
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
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        self._conn = conn
        self._migrate()
        if str(self.path) != ":memory:":
            reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            reader.row_factory = sqlite3.Row
            reader.execute("PRAGMA query_only=ON")
            self._reader = reader

    def _migrate(self) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for version, statements in enumerate(SQLITE_STEPS, start=1):
                if version <= current:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def open(self) -> None:
        """Open the file (created if missing) and apply migrations."""
        await self._run(self._open)

    async def close(self) -> None:
        """Close the connection and stop the worker thread."""
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await asyncio.get_running_loop().run_in_executor(self._executor, reader.close)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        """Raise StoreError when the file cannot be read."""
        await self._run(lambda: self.conn.execute("SELECT 1").fetchone())

    # -- conversations and turns ------------------------------------------------------
    def _load(self, conv_id: str) -> StoredConversation | None:
        row = self.conn.execute("SELECT * FROM conversations WHERE conv_id = ?", (conv_id,)).fetchone()
        if row is None:
            return None
        data = dict(row)
        return StoredConversation(conversation_from_row(data), int(data["version"]), json.loads(data["meta"] or "{}"))

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
    ) -> int:
        conn = self.conn
        row = conversation_to_row(conv)
        meta_json = json.dumps(meta, separators=(",", ":"))
        conn.execute("BEGIN IMMEDIATE")
        try:
            if turn is not None and turn.request_key is not None:
                dup = conn.execute(
                    "SELECT 1 FROM turns WHERE conv_id = ? AND request_key = ?", (turn.conv_id, turn.request_key)
                ).fetchone()
                if dup is not None:
                    raise DuplicateTurnError(f"turn {turn.request_key!r} already stored")
            if expected is None:
                try:
                    conn.execute(
                        f"INSERT INTO conversations ({', '.join(COLUMNS)}, meta, version) "
                        f"VALUES ({', '.join('?' for _ in COLUMNS)}, ?, 1)",
                        (*[row[c] for c in COLUMNS], meta_json),
                    )
                except sqlite3.IntegrityError:
                    raise ConcurrentTurnError(f"conversation {conv.conv_id!r} already exists") from None
                version = 1
            else:
                version = expected + 1
                cur = conn.execute(
                    f"UPDATE conversations SET {', '.join(f'{c} = ?' for c in COLUMNS[1:])}, meta = ?, version = ? "
                    "WHERE conv_id = ? AND version = ?",
                    (*[row[c] for c in COLUMNS[1:]], meta_json, version, conv.conv_id, expected),
                )
                if cur.rowcount != 1:
                    raise ConcurrentTurnError(f"conversation {conv.conv_id!r} changed under this turn")
            if turn is not None:
                conn.execute(
                    "INSERT INTO turns (conv_id, turn, request_key, text, reply, state_before, state_after, at, "
                    "interrupted, directive, trace_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        turn.conv_id, turn.turn, turn.request_key, turn.text, turn.reply, turn.state_before,
                        turn.state_after, utc_text(turn.at), int(turn.interrupted), turn.directive, turn.trace_id,
                    ),
                )
            if events:
                conn.executemany(
                    "INSERT INTO events (conv_id, at, kind, data) VALUES (?, ?, ?, ?)",
                    [(e.conv_id, utc_text(e.at), e.kind, json.dumps(e.data, ensure_ascii=False)) for e in events],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return version

    async def save_turn(
        self,
        conversation: Conversation,
        expected_version: int | None,
        meta: dict[str, Any],
        turn: TurnRecord | None,
        events: list[EventRecord],
    ) -> int:
        """Upsert the conversation, append the turn and events in one durable transaction."""
        return await self._run(self._save_turn, conversation, expected_version, meta, turn, events)

    # -- bookings ----------------------------------------------------------------------
    async def taken_slots(self, start: datetime, end: datetime) -> frozenset[datetime]:
        """Start times of active bookings in ``[start, end)``."""

        def run() -> frozenset[datetime]:
            version = self.conn.execute("PRAGMA data_version").fetchone()[0]
            key = (version, self._booking_writes, start, end)
            if key == self._taken_key:
                return self._taken
            rows = self.conn.execute(
                "SELECT slot_start FROM bookings WHERE cancelled_at IS NULL AND slot_start >= ? AND slot_start < ?",
                (utc_text(start), utc_text(end)),
            ).fetchall()
            self._taken = frozenset(datetime.fromisoformat(r[0]) for r in rows)
            self._taken_key = key
            return self._taken

        return await self._run(run)

    async def held_slots(self, since: datetime, except_conv: str) -> frozenset[datetime]:
        """Starts of the slots proposed to other conversations still choosing."""

        def run() -> frozenset[datetime]:
            rows = self.conn.execute(
                "SELECT json_extract(p.value, '$.start') FROM conversations AS c, "
                "json_each(c.context, '$.proposed') AS p "
                "WHERE c.outcome IS NULL AND c.state = 'WAIT_CONFIRM' AND c.last_seen_at >= ? AND c.conv_id != ?",
                (utc_text(since), except_conv),
            ).fetchall()
            return utc_starts(r[0] for r in rows)

        return await self._run(run)

    def _book(self, slot: Slot, conv_id: str, name: str, phone: str | None, replaces: str | None) -> BookingOutcome:
        conn = self.conn
        booking_id = uuid.uuid4().hex
        now = utc_text(datetime.now().astimezone())
        self._booking_writes += 1
        cached = self._taken_key is not None and self._taken_key[1] == self._booking_writes - 1
        conn.execute("BEGIN IMMEDIATE")
        try:
            if replaces is not None:
                conn.execute(
                    "UPDATE bookings SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL", (now, replaces)
                )
            conn.execute(
                "INSERT INTO bookings (id, slot_start, slot_end, conv_id, name, phone, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (booking_id, utc_text(slot.start), utc_text(slot.end), conv_id, name, phone, now),
            )
            conn.execute("COMMIT")
        except sqlite3.IntegrityError:
            conn.execute("ROLLBACK")
            # A retried turn whose booking was committed before the turn failed: the slot is
            # this conversation's own, not taken by someone else.
            mine = conn.execute(
                "SELECT id FROM bookings WHERE slot_start = ? AND conv_id = ? AND cancelled_at IS NULL",
                (utc_text(slot.start), conv_id),
            ).fetchone()
            if mine is not None:
                return BookingOutcome(BookingResult.SUCCESS, str(mine[0]))
            return BookingOutcome(BookingResult.SLOT_TAKEN)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if cached and replaces is None and self._taken_key is not None:
            # Our own new booking: keep the cached answer valid by adding it (other
            # connections' commits still invalidate it through data_version).
            version, _, start, end = self._taken_key
            if start <= slot.start < end:
                self._taken = self._taken | {slot.start.astimezone(UTC)}
            self._taken_key = (version, self._booking_writes, start, end)
        return BookingOutcome(BookingResult.SUCCESS, booking_id)

    async def book(
        self, slot: Slot, conv_id: str, name: str, phone: str | None, replaces: str | None
    ) -> BookingOutcome:
        """Book atomically; ``replaces`` is cancelled in the same transaction."""
        return await self._run(self._book, slot, conv_id, name, phone, replaces)

    @staticmethod
    def _booking_ref(row: sqlite3.Row) -> BookingRef:
        start, end = datetime.fromisoformat(row["slot_start"]), datetime.fromisoformat(row["slot_end"])
        return BookingRef(row["id"], Slot(start, end), row["name"])

    async def find_bookings(self, phone: str, after: datetime) -> tuple[BookingRef, ...]:
        """Active future bookings made from this phone, by start."""

        def run() -> tuple[BookingRef, ...]:
            rows = self.conn.execute(
                "SELECT * FROM bookings WHERE cancelled_at IS NULL AND slot_start > ? AND phone = ? ORDER BY slot_start",
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

    async def cancel_booking(self, booking_id: str, at: datetime) -> bool:
        """Cancel an active booking; False when it was not active."""

        def run() -> bool:
            self._booking_writes += 1
            cur = self.conn.execute(
                "UPDATE bookings SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL", (utc_text(at), booking_id)
            )
            return cur.rowcount == 1

        return await self._run(run)

    # -- Vapi reports, reaper, operator reads -----------------------------------------
    async def save_call_report(self, conv_id: str, report: dict[str, Any], at: datetime) -> bool:
        """Store (or replace) Vapi's end-of-call report; True when it is the first one."""

        def run() -> bool:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                first = conn.execute("SELECT 1 FROM call_reports WHERE conv_id = ?", (conv_id,)).fetchone() is None
                conn.execute(
                    "INSERT INTO call_reports (conv_id, report, at) VALUES (?, ?, ?) "
                    "ON CONFLICT(conv_id) DO UPDATE SET report = excluded.report, at = excluded.at",
                    (conv_id, json.dumps(report, ensure_ascii=False), utc_text(at)),
                )
                reason = report.get("endedReason")
                if isinstance(reason, str):
                    conn.execute("UPDATE conversations SET ended_reason = ? WHERE conv_id = ?", (reason, conv_id))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return first

        return await self._run(run)

    async def active_counts(self) -> dict[str, int]:
        """How many conversations have no outcome yet, per channel."""

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT channel, count(*) FROM conversations WHERE outcome IS NULL GROUP BY channel"
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
                StoredConversation(conversation_from_row(dict(r)), int(r["version"]), json.loads(r["meta"] or "{}"))
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

    async def timeline(self, conv_id: str) -> dict[str, Any] | None:
        """Turns, events, bookings and call report of one conversation, in order."""

        def run(conn: sqlite3.Connection) -> dict[str, Any] | None:
            conn.execute("BEGIN")  # one snapshot for all five reads
            try:
                return snapshot(conn)
            finally:
                conn.execute("COMMIT")

        def snapshot(conn: sqlite3.Connection) -> dict[str, Any] | None:
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
                [EventRecord(e["conv_id"], datetime.fromisoformat(e["at"]), e["kind"], json.loads(e["data"])) for e in events],
                [dict(b) for b in bookings],
                None if report is None else json.loads(report["report"]),
            )

        return await self._read(run)

    async def conversations_seen_since(self, since: datetime) -> list[dict[str, Any]]:
        """Summary rows of conversations last seen at or after ``since``."""

        def run(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(
                "SELECT conv_id, channel, state, outcome, turn_count, created_at, last_seen_at, ended_reason "
                "FROM conversations WHERE last_seen_at >= ?",
                (utc_text(since),),
            ).fetchall()
            out = []
            for r in rows:
                d = dict(r)
                d["created_at"] = datetime.fromisoformat(d["created_at"])
                d["last_seen_at"] = datetime.fromisoformat(d["last_seen_at"])
                out.append(d)
            return out

        return await self._read(run)

    async def events_since(self, since: datetime, kinds: tuple[str, ...]) -> list[EventRecord]:
        """Events of these kinds at or after ``since``, oldest first."""

        def run(conn: sqlite3.Connection) -> list[EventRecord]:
            if not kinds:
                return []
            rows = conn.execute(
                f"SELECT * FROM events WHERE at >= ? AND kind IN ({', '.join('?' for _ in kinds)}) ORDER BY id",
                (utc_text(since), *kinds),
            ).fetchall()
            return [EventRecord(r["conv_id"], datetime.fromisoformat(r["at"]), r["kind"], json.loads(r["data"])) for r in rows]

        return await self._read(run)

    async def try_lock(self, name: str, holder: str, until: datetime, now: datetime) -> bool:
        """Take or renew a named lease; False if another holder has it."""

        def run() -> bool:
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(
                    "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until = excluded.until "
                    "WHERE leases.until < ? OR leases.holder = excluded.holder",
                    (name, holder, utc_text(until), utc_text(now)),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return cur.rowcount == 1

        return await self._run(run)
