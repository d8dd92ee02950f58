"""The PostgreSQL store, for deployments where several replicas share one database.

An asyncpg pool serves every call; each write is one transaction. Conversations use
optimistic concurrency (a ``version`` column); booking is a conditional insert guarded by a
partial unique index on active slots, so of many replicas racing for one slot exactly one
wins. Migrations run under a transaction-scoped advisory lock and the reaper lease is a
row, so both are safe across processes. Driver and network failures become
:class:`StoreError` (the HTTP layer answers 503); the pool replaces a broken connection on
the next acquire, so the service recovers by itself once the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

from service.engine.model import BookingRef, Conversation, Slot
from service.storage.base import (
    BookingGoneError,
    BookingWrite,
    CancelWrite,
    ConcurrentTurnError,
    ConversationSummary,
    DuplicateTurnError,
    EventRecord,
    ReplaySource,
    SlotTakenError,
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
    NAMED_EVENTS,
    booking_row,
    conversation_from_row,
    conversation_summary,
    conversation_to_row,
    timeline_dict,
    turn_from_row,
    unconfirmed,
    utc_starts,
)
from service.storage.migrations import POSTGRES_STEPS

# Everything the driver or the network may raise when the server is down, restarting,
# slow or refusing; each becomes a StoreError.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
# Opening also refuses a malformed URL (bad port, unknown parameter value) with ValueError.
OPEN_ERRORS: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, ValueError)

# First key of the two-key advisory lock that serialises migrations ("rdv"); the second
# key is the schema's hash, so stores in different schemas of one database do not wait.
MIGRATION_LOCK_KEY = 0x726476
CLOSE_TIMEOUT_SECONDS = 10.0
READINESS_KEEP = timedelta(days=1)
DATETIME_COLUMNS = frozenset({"created_at", "last_seen_at", "state_entered_at"})

_INSERT_CONVERSATION = (
    f"INSERT INTO conversations ({', '.join(COLUMNS)}, meta, version) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 2))}, 1) "
    "ON CONFLICT (conv_id) DO NOTHING RETURNING version"
)
_UPDATE_CONVERSATION = (
    f"UPDATE conversations SET {', '.join(f'{c} = ${i}' for i, c in enumerate(COLUMNS[1:], start=2))}, "
    f"meta = ${len(COLUMNS) + 1}, version = ${len(COLUMNS) + 2} "
    f"WHERE conv_id = $1 AND version = ${len(COLUMNS) + 3} RETURNING version"
)
_INSERT_TURN = (
    "INSERT INTO turns (conv_id, turn, request_key, text, reply, state_before, state_after, at, "
    "interrupted, directive, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
)
# One statement for all of a turn's events; WITH ORDINALITY keeps their order in the ids.
_INSERT_EVENTS = (
    "INSERT INTO events (conv_id, at, kind, data) "
    "SELECT e.conv_id, e.at, e.kind, e.data "
    "FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[]) "
    "WITH ORDINALITY AS e(conv_id, at, kind, data, n) ORDER BY e.n"
)


_CANCEL = "UPDATE bookings SET cancelled_at = $1 WHERE id = $2 AND cancelled_at IS NULL"
# Racing inserts on one slot wait on the unique index for the first to commit; all but one
# then do nothing (and their turn's transaction rolls back whole).
_INSERT_BOOKING = (
    "INSERT INTO bookings (id, slot_start, slot_end, conv_id, name, phone, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7) "
    "ON CONFLICT (slot_start) WHERE cancelled_at IS NULL DO NOTHING RETURNING id"
)


def pg_text(value: str) -> str:
    """Text as PostgreSQL can hold it: the server refuses U+0000, so it is stored as U+FFFD
    (SQLite keeps it; a caller typing a NUL must get an answer, not a 503 on every retry)."""
    return value.replace("\x00", "\ufffd")


async def _setup_connection(conn: asyncpg.Connection) -> None:
    """Every new pooled connection (reconnects included) encodes text parameters with
    :func:`pg_text`; arrays of text do not go through this codec and are cleaned by hand."""
    await conn.set_type_codec("text", schema="pg_catalog", encoder=pg_text, decoder=str, format="text")


def _utc(moment: datetime) -> datetime:
    """A datetime as UTC, the way :func:`service.storage.codec.utc_text` reads it."""
    return moment.astimezone(UTC)


def redacted(url: str) -> str:
    """``url`` with its password masked, for error messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _stored(row: asyncpg.Record) -> StoredConversation:
    data = dict(row)
    return StoredConversation(conversation_from_row(data), int(data["version"]), json.loads(data["meta"] or "{}"))


def _event(row: asyncpg.Record) -> EventRecord:
    return EventRecord(row["conv_id"], row["at"], row["kind"], json.loads(row["data"]))


def _conversation_params(conv: Conversation, meta: dict[str, Any]) -> list[Any]:
    """The conversation's column values in COLUMNS order, then its meta as JSON."""
    row = conversation_to_row(conv)
    values = [_utc(getattr(conv, c)) if c in DATETIME_COLUMNS else row[c] for c in COLUMNS]
    return [*values, json.dumps(meta, separators=(",", ":"))]


class PostgresStore:
    """The Store protocol on a PostgreSQL database (``postgresql://`` URL)."""

    # Network calls: the turn loop bounds each one by the store timeout.
    enforces_timeout = False

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None

    # -- plumbing -------------------------------------------------------------------
    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(f"postgresql {redacted(self.url)}: {type(exc).__name__}: {exc}")

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; driver and network failures become StoreError."""
        pool = self._pool
        if pool is None:
            raise StoreError("the PostgreSQL store is not open")
        try:
            async with pool.acquire(timeout=self.command_timeout) as conn:
                yield conn
        except StoreError:
            raise
        except DRIVER_ERRORS as exc:
            raise self._error(exc) from exc

    async def open(self) -> None:
        """Create the connection pool and apply pending migrations under an advisory lock."""
        if self._pool is None:
            try:
                self._pool = await asyncpg.create_pool(
                    self.url,
                    min_size=self.min_size,
                    max_size=self.max_size,
                    timeout=self.connect_timeout,
                    command_timeout=self.command_timeout,
                    init=_setup_connection,
                )
            except OPEN_ERRORS as exc:
                raise StoreError(
                    f"cannot connect to PostgreSQL at {redacted(self.url)}: {type(exc).__name__}: {exc}"
                ) from exc
        try:
            async with self._connection() as conn:
                await self._migrate(conn)
        except BaseException:
            await self.close()
            raise

    @staticmethod
    async def _migrate(conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            # Held until commit: a second replica starting now waits, then finds nothing to do.
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))",
                MIGRATION_LOCK_KEY,
            )
            if await conn.fetchval("SELECT to_regclass('schema_version')") is None:
                await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
            for version, statements in enumerate(POSTGRES_STEPS, start=1):
                if version <= current:
                    continue
                for statement in statements:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)

    async def close(self) -> None:
        """Close the pool (connections still busy after a grace period are terminated)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_SECONDS)
        except DRIVER_ERRORS:
            pool.terminate()

    async def ping(self) -> None:
        """Raise StoreError when the server cannot answer."""
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1")

    async def purge_before(self, cutoff: datetime) -> int:
        """Purge what is older than ``cutoff``, keeping anonymous counts (see :class:`Store`)."""
        limit = _utc(cutoff)
        old = "SELECT conv_id FROM conversations WHERE outcome IS NOT NULL AND last_seen_at < $1"
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO daily_counts (day, channel, outcome, synthetic, conversations) "
                "SELECT (last_seen_at AT TIME ZONE 'UTC')::date, channel, outcome, synthetic, count(*) "
                "FROM conversations WHERE outcome IS NOT NULL AND last_seen_at < $1 GROUP BY 1, 2, 3, 4 "
                "ON CONFLICT (day, channel, outcome, synthetic) DO UPDATE "
                "SET conversations = daily_counts.conversations + excluded.conversations",
                limit,
            )
            for table in ("turns", "events", "call_reports"):
                await conn.execute(f"DELETE FROM {table} WHERE conv_id IN ({old})", limit)
            await conn.execute("DELETE FROM bookings WHERE slot_end < $1", limit)
            status = await conn.execute(
                "DELETE FROM conversations WHERE outcome IS NOT NULL AND last_seen_at < $1", limit
            )
        return int(status.split()[-1])

    async def daily_counts(self) -> list[tuple[str, str, str, bool, int]]:
        """The anonymous counts of purged conversations, oldest day first."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT day, channel, outcome, synthetic, conversations FROM daily_counts ORDER BY 1, 2, 3, 4"
            )
        return [(r["day"].isoformat(), r["channel"], r["outcome"], bool(r["synthetic"]), int(r["conversations"]))
                for r in rows]

    async def forget_caller(self, phone: str) -> tuple[int, int]:
        """Erase a caller's personal data (see :class:`Store`); (conversations, bookings)."""
        like = f'%"phone":{json.dumps(phone, ensure_ascii=False)}%'
        async with self._connection() as conn, conn.transaction():
            ids = [r["conv_id"] for r in await conn.fetch(
                "SELECT conv_id FROM conversations WHERE caller_phone = $1 OR context LIKE $2", phone, like
            )]
            if ids:
                await conn.execute("UPDATE conversations SET caller_phone = NULL, context = $1 WHERE conv_id = ANY($2::text[])",
                                   FORGOTTEN_CONTEXT, ids)
                await conn.execute("UPDATE turns SET text = $1, reply = $1 WHERE conv_id = ANY($2::text[])", FORGOTTEN, ids)
                await conn.execute("UPDATE events SET data = '{}' WHERE kind = ANY($1::text[]) AND conv_id = ANY($2::text[])",
                                   list(NAMED_EVENTS), ids)
                await conn.execute("DELETE FROM call_reports WHERE conv_id = ANY($1::text[])", ids)
            status = await conn.execute(
                "UPDATE bookings SET name = $1, phone = NULL WHERE phone = $2 OR conv_id = ANY($3::text[])",
                FORGOTTEN, phone, ids,
            )
        return len(ids), int(status.split()[-1])

    async def schema_version(self) -> int:
        """The last schema step applied."""
        async with self._connection() as conn:
            return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))

    # -- conversations and turns ------------------------------------------------------
    async def load(self, conv_id: str) -> StoredConversation | None:
        """The conversation with this id, or None."""
        async with self._connection() as conn:
            row = await conn.fetchrow("SELECT * FROM conversations WHERE conv_id = $1", conv_id)
        return None if row is None else _stored(row)

    async def find_turn(self, conv_id: str, request_key: str) -> TurnRecord | None:
        """The stored turn with this request key, or None."""
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM turns WHERE conv_id = $1 AND request_key = $2", conv_id, request_key
            )
        return None if row is None else turn_from_row(dict(row))

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
        or cancellation, in one durable transaction."""
        conv = conversation
        params = _conversation_params(conv, meta)
        async with self._connection() as conn, conn.transaction():
            if turn is not None and turn.request_key is not None:
                dup = await conn.fetchval(
                    "SELECT 1 FROM turns WHERE conv_id = $1 AND request_key = $2", turn.conv_id, turn.request_key
                )
                if dup is not None:
                    raise DuplicateTurnError(f"turn {turn.request_key!r} already stored")
            if expected_version is None:
                # A concurrent insert of the same id waits for the other's commit, then does nothing.
                version = await conn.fetchval(_INSERT_CONVERSATION, *params)
                if version is None:
                    raise ConcurrentTurnError(f"conversation {conv.conv_id!r} already exists")
            else:
                version = await conn.fetchval(
                    _UPDATE_CONVERSATION, *params, expected_version + 1, expected_version
                )
                if version is None:
                    raise ConcurrentTurnError(f"conversation {conv.conv_id!r} changed under this turn")
            if cancel is not None:
                await self._cancel(conn, cancel.booking_id, cancel.at)
            if booking is not None:
                if booking.replaces is not None:
                    await self._cancel(conn, booking.replaces, booking.at)
                inserted = await conn.fetchval(
                    _INSERT_BOOKING,
                    booking.booking_id, _utc(booking.slot.start), _utc(booking.slot.end), booking.conv_id,
                    booking.name, booking.phone, _utc(booking.at),
                )
                if inserted is None:
                    raise SlotTakenError(f"slot {booking.slot.start.isoformat()} is taken")
            if turn is not None:
                try:
                    await conn.execute(
                        _INSERT_TURN,
                        turn.conv_id, turn.turn, turn.request_key, turn.text, turn.reply, turn.state_before,
                        turn.state_after, _utc(turn.at), turn.interrupted, turn.directive, turn.trace_id,
                    )
                except asyncpg.UniqueViolationError:
                    raise DuplicateTurnError(f"turn {turn.request_key!r} already stored") from None
            if events:
                await conn.execute(
                    _INSERT_EVENTS,
                    [pg_text(e.conv_id) for e in events],
                    [_utc(e.at) for e in events],
                    [pg_text(e.kind) for e in events],
                    [json.dumps(e.data, ensure_ascii=False) for e in events],
                )
        return int(version)

    # -- bookings ----------------------------------------------------------------------
    async def taken_slots(self, start: datetime, end: datetime) -> frozenset[datetime]:
        """Start times of active bookings in ``[start, end)``."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT slot_start FROM bookings WHERE cancelled_at IS NULL AND slot_start >= $1 AND slot_start < $2",
                _utc(start), _utc(end),
            )
        return frozenset(r["slot_start"] for r in rows)

    async def held_slots(self, since: datetime, except_conv: str) -> frozenset[datetime]:
        """Starts of the slots proposed to other conversations still choosing."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT jsonb_array_elements(context::jsonb -> 'proposed') ->> 'start' AS start "
                "FROM conversations WHERE outcome IS NULL AND state = 'WAIT_CONFIRM' "
                "AND last_seen_at >= $1 AND conv_id != $2",
                _utc(since), except_conv,
            )
        return utc_starts(r["start"] for r in rows)

    async def find_bookings(self, phone: str, after: datetime) -> tuple[BookingRef, ...]:
        """Active future bookings made from this phone, by start."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT * FROM bookings WHERE cancelled_at IS NULL AND slot_start > $1 AND phone = $2 ORDER BY slot_start",
                _utc(after), phone,
            )
        return tuple(BookingRef(r["id"], Slot(r["slot_start"], r["slot_end"]), r["name"]) for r in rows)

    async def booking_at(self, start: datetime) -> BookingRef | None:
        """The active booking starting at ``start``, or None."""
        async with self._connection() as conn:
            r = await conn.fetchrow(
                "SELECT * FROM bookings WHERE cancelled_at IS NULL AND slot_start = $1", _utc(start)
            )
        return None if r is None else BookingRef(r["id"], Slot(r["slot_start"], r["slot_end"]), r["name"])

    @staticmethod
    async def _cancel(conn: asyncpg.Connection, booking_id: str, at: datetime) -> None:
        if await conn.execute(_CANCEL, _utc(at), booking_id) != "UPDATE 1":
            raise BookingGoneError(f"booking {booking_id!r} is no longer active")

    async def booking_active(self, booking_id: str) -> bool:
        """True while this appointment is booked and not cancelled."""
        async with self._connection() as conn:
            found = await conn.fetchval("SELECT 1 FROM bookings WHERE id = $1 AND cancelled_at IS NULL", booking_id)
        return found is not None

    async def unconfirmed_bookings(self) -> list[UnconfirmedBooking]:
        """Active bookings that no ``AppointmentConfirmed`` event of their conversation names."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT b.id, b.conv_id, b.slot_start, b.created_at, "
                "array(SELECT e.data::jsonb ->> 'slot_start' FROM events AS e "
                "      WHERE e.conv_id = b.conv_id AND e.kind = 'AppointmentConfirmed') AS confirmed "
                "FROM bookings AS b WHERE b.cancelled_at IS NULL ORDER BY b.slot_start"
            )
        return unconfirmed(
            (str(r["id"]), str(r["conv_id"]), r["slot_start"], r["created_at"], list(r["confirmed"])) for r in rows
        )

    async def release_bookings(self, booking_ids: list[str], at: datetime) -> int:
        """Cancel these active bookings; how many were."""
        async with self._connection() as conn:
            status = await conn.execute(
                "UPDATE bookings SET cancelled_at = $1 WHERE id = ANY($2::text[]) AND cancelled_at IS NULL",
                _utc(at), booking_ids,
            )
        return int(status.split()[-1])

    # -- Vapi reports, reaper, operator reads -----------------------------------------
    async def save_call_report(self, conv_id: str, report: dict[str, Any], at: datetime) -> bool:
        """Store (or replace) Vapi's end-of-call report; True when it is the first one."""
        async with self._connection() as conn, conn.transaction():
            # xmax = 0 only on a row this statement inserted (not on one it updated).
            first = await conn.fetchval(
                "INSERT INTO call_reports (conv_id, report, at) VALUES ($1, $2, $3) "
                "ON CONFLICT (conv_id) DO UPDATE SET report = excluded.report, at = excluded.at "
                "RETURNING (xmax = 0)",
                conv_id, json.dumps(report, ensure_ascii=False), _utc(at),
            )
            reason = report.get("endedReason")
            if isinstance(reason, str):
                await conn.execute("UPDATE conversations SET ended_reason = $1 WHERE conv_id = $2", reason, conv_id)
        return bool(first)

    async def active_counts(self) -> dict[str, int]:
        """How many conversations have no outcome yet, per channel."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT channel, count(*) AS n FROM conversations WHERE outcome IS NULL AND NOT synthetic GROUP BY channel"
            )
        return {str(r["channel"]): int(r["n"]) for r in rows}

    async def idle_conversations(self, idle_before: datetime, channel: str) -> list[StoredConversation]:
        """Not-ended conversations of ``channel`` last seen before ``idle_before``."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT * FROM conversations WHERE outcome IS NULL AND channel = $1 AND last_seen_at < $2 "
                "AND turn_count > 0 ORDER BY last_seen_at LIMIT 500",
                channel, _utc(idle_before),
            )
        return [_stored(r) for r in rows]

    async def conversation_ids_by_call(self, vapi_call_id: str) -> str | None:
        """The conversation id of a Vapi call id, or None."""
        async with self._connection() as conn:
            found = await conn.fetchval(
                "SELECT conv_id FROM conversations WHERE vapi_call_id = $1 LIMIT 1", vapi_call_id
            )
        return None if found is None else str(found)

    async def timeline(self, conv_id: str) -> Timeline | None:
        """Turns, events, bookings and call report of one conversation, in order."""
        # One snapshot for all five reads, so a turn committed meanwhile is all in or all out.
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            row = await conn.fetchrow("SELECT * FROM conversations WHERE conv_id = $1", conv_id)
            if row is None:
                return None
            turns = await conn.fetch("SELECT * FROM turns WHERE conv_id = $1 ORDER BY id", conv_id)
            events = await conn.fetch("SELECT * FROM events WHERE conv_id = $1 ORDER BY id", conv_id)
            bookings = await conn.fetch(
                "SELECT * FROM bookings WHERE conv_id = $1 ORDER BY created_at, id", conv_id
            )
            report = await conn.fetchval("SELECT report FROM call_reports WHERE conv_id = $1", conv_id)
        return timeline_dict(
            dict(row),
            [turn_from_row(dict(t)) for t in turns],
            [_event(e) for e in events],
            [dict(b) for b in bookings],
            None if report is None else json.loads(report),
        )

    async def conversations_seen_since(self, since: datetime) -> list[ConversationSummary]:
        """Summaries of conversations last seen at or after ``since``."""
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT conv_id, channel, state, outcome, turn_count, created_at, last_seen_at, ended_reason, synthetic "
                "FROM conversations WHERE last_seen_at >= $1",
                _utc(since),
            )
        return [conversation_summary(r) for r in rows]

    async def events_since(self, since: datetime, kinds: tuple[str, ...]) -> list[EventRecord]:
        """Events of these kinds at or after ``since``, oldest first."""
        if not kinds:
            return []
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT * FROM events WHERE at >= $1 AND kind = ANY($2::text[]) ORDER BY id",
                _utc(since), [pg_text(k) for k in kinds],
            )
        return [_event(r) for r in rows]

    async def replay_source(self, since: datetime, until: datetime, conv_id: str | None = None) -> ReplaySource:
        """Conversations of the window, their turns and the bookings around it, one snapshot."""
        args: list[Any]
        if conv_id is not None:
            where, args = "conv_id = $1", [conv_id]
        else:
            where, args = "last_seen_at >= $1 AND last_seen_at < $2", [_utc(since), _utc(until)]
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = [dict(r) for r in await conn.fetch(f"SELECT * FROM conversations WHERE {where}", *args)]
            turns = await conn.fetch(
                f"SELECT * FROM turns WHERE conv_id IN (SELECT conv_id FROM conversations WHERE {where}) "
                "ORDER BY conv_id, id",
                *args,
            )
            first = min((r["created_at"] for r in rows), default=_utc(since))
            bookings = await conn.fetch("SELECT * FROM bookings WHERE slot_start >= $1", first - timedelta(days=1))
        return ReplaySource(
            [conversation_from_row(r) for r in rows],
            {r["conv_id"]: r["ended_reason"] for r in rows},
            [turn_from_row(dict(t)) for t in turns],
            [booking_row(dict(b)) for b in bookings],
        )

    async def try_lock(self, name: str, holder: str, until: datetime, now: datetime) -> bool:
        """Take or renew a named lease; False if another holder has it."""
        # Two replicas racing here serialise on the row lock; the loser re-checks the WHERE
        # against the winner's row and gets no row back.
        async with self._connection() as conn:
            taken = await conn.fetchval(
                "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until "
                "WHERE leases.until < $4 OR leases.holder = excluded.holder RETURNING holder",
                name, holder, _utc(until), _utc(now),
            )
        return taken is not None

    # -- replay protection and readiness ------------------------------------------------
    async def remember_signature(self, key: str, now: datetime, forget_before: datetime) -> bool:
        """Record an accepted signature; False when already recorded (a replay)."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM seen_signatures WHERE seen_at < $1", _utc(forget_before))
            inserted = await conn.fetchval(
                "INSERT INTO seen_signatures (key, seen_at) VALUES ($1, $2) "
                "ON CONFLICT (key) DO NOTHING RETURNING 1",
                key, _utc(now),
            )
        return inserted is not None

    async def probe_write(self, instance: str, now: datetime, deadline: float) -> None:
        """In one transaction bounded by ``deadline``: take the lock every turn write takes on
        the turn tables (so a table lock held elsewhere shows), then upsert this instance's
        readiness row and commit."""
        millis = max(1, int(deadline * 1000))
        try:
            async with self._connection() as conn, conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = {millis}")
                await conn.execute(f"SET LOCAL statement_timeout = {millis}")
                await conn.execute("LOCK TABLE conversations, turns, events, bookings IN ROW EXCLUSIVE MODE")
                await conn.execute(
                    "INSERT INTO readiness (instance, at) VALUES ($1, $2) "
                    "ON CONFLICT (instance) DO UPDATE SET at = excluded.at",
                    instance, _utc(now),
                )
                # Each process start is a new instance: rows of instances gone for a day go.
                await conn.execute("DELETE FROM readiness WHERE at < $1", _utc(now - READINESS_KEEP))
        except StoreError as exc:
            # The readiness answer is public: the reason without the server's address.
            cause = exc.__cause__ or exc
            raise StoreError(f"postgresql: {type(cause).__name__}: {cause}") from exc
