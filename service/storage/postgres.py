"""The PostgreSQL store, for deployments where several replicas share one database.

An asyncpg pool serves every call. Conversations use optimistic concurrency (a ``version``
column); booking is a conditional insert guarded by a partial unique index on active slots,
so of many replicas racing for one slot exactly one wins. Migrations run under a
transaction-scoped advisory lock and the reaper lease is a row, so both are safe across
processes. Driver and network failures become :class:`StoreError` (the HTTP layer answers
503); the pool replaces a broken connection on the next acquire, so the service recovers by
itself once the server is back.

A turn costs two round trips:

- **One read.** ``load`` (or ``find_turn``, for a turn with a request key, which loads the
  conversation in the same statement) also reads the bookings generation, the slots held
  for other callers still choosing, and — when the generation moved since this process last
  read them — the taken slots of the window the turn loop asked for last: only the slots
  booked or freed since the generation it holds (``booking_changes``, schema step 8), or
  the whole set when it holds none, another window, or one older than the changes kept. The
  ``taken_slots`` and ``held_slots`` calls that follow in the same task (the same turn)
  are answered from that read, once each and within the store timeout; any other call
  reads the database.
- **One write.** ``save_turn`` is a single statement: the version-checked conversation
  write, the turn, its events and its booking or cancellations, in one implicit
  transaction. A failed check aborts the statement (nothing is written) through
  ``rdv_conflict``, whose message says which check failed.

No session state is used (no ``SET`` but ``SET LOCAL``, no ``LISTEN``, cursor or session
advisory lock; the one server setting the store asks for is sent when the connection
opens, see SERVER_SETTINGS), so a connection needs no reset between calls: the store keeps
the connections it borrowed from the asyncpg pool and hands them from call to call itself
(:class:`_Lane`), without the pool's per-release work (a task, a timeout scope and an
inactivity timer each time); the pool still opens, replaces and closes them. Turn-path
calls bound themselves by the store timeout (``enforces_timeout``), without a task per
call: the driver's own timer bounds each query (``asyncio.timeout`` only the rare wait for
a free connection); a call that times out leaves its connection to the pool to finish
cancelling in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

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
)
from service.storage.migrations import POSTGRES_STEPS
from service.storage.sql import (
    CANCEL_BOOKING,
    DUPLICATE_TURN,
    INSERT_BOOKING,
    INSERT_TURN,
    TURN_COLUMNS,
    Conflict,
    Dialect,
    conflict,
    insert_conversation,
    placeholders,
    render,
    update_conversation,
)

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
# The SQLSTATE rdv_conflict() raises (schema step 6).
CONFLICT_SQLSTATE = "RDV01"
# The server settings every connection of the store starts with (startup parameters: fixed
# for the connection's life, so no reset is needed between calls), unless the URL sets them.
# - plan_cache_mode: each statement is planned once per connection, for any parameters. By
#   default the server plans a prepared statement for its parameters five times, then goes
#   on planning it on every call unless its generic plan looks no dearer than those plans:
#   the turn's read looked dearer as soon as ``booking_changes`` held a few thousand rows
#   (and when its first parameters were NULL, folding most of it away), and was planned
#   anew on every turn, about four times the server's work for that read. Reads off the
#   turn path whose best plan depends on their parameters set it back (PLAN_PER_CALL).
SERVER_SETTINGS = {"plan_cache_mode": "force_generic_plan"}
# Set in the transaction of a read off the turn path whose best plan depends on its
# parameters (an open time range over tables that only grow): the purge and the operator's
# reads are planned for their parameters, as the server does by default (a generic plan
# read every event to find an hour's, and the purge scanned every event to find a day's).
PLAN_PER_CALL = "SET LOCAL plan_cache_mode = auto"
# Held slots are read with the conversation from this much before the last hold window
# asked for, so that a turn that started a little earlier still finds all of its window.
HELD_MARGIN = timedelta(seconds=30)

# Tables that turns keep rewriting (a conversation row per turn, bookings cancelled and the
# bookings generation bumped) or appending to: without autovacuum, what they leave behind is
# never reclaimed, and every turn's reads and index writes slow down as it piles up (measured
# on a server with autovacuum off: the database's CPU per turn grew by a fifth to a third over
# four bench runs of some 8,000 turns each).
BUSY_TABLES = ("conversations", "turns", "events", "bookings", "bookings_generation", "booking_changes")
# The server's settings, and which busy tables turn autovacuum off in their storage options
# (read with the server's own boolean parsing: ``off``, ``fa``, ``0``… all count).
_AUTOVACUUM = (
    "SELECT current_setting('autovacuum')::bool AS server_on, current_setting('track_counts')::bool AS counts_on, "
    "coalesce(array_agg(c.relname::text ORDER BY c.relname) FILTER (WHERE EXISTS ("
    "  SELECT FROM pg_options_to_table(c.reloptions) AS o"
    "  WHERE o.option_name = 'autovacuum_enabled' AND NOT o.option_value::bool"
    ")), '{}') AS tables_off "
    "FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relname = ANY($1::text[])"
)


@dataclass(frozen=True)
class Autovacuum:
    """What the server says of autovacuum for rdv's tables."""

    server_on: bool
    counts_on: bool
    tables_off: tuple[str, ...]  # busy tables whose options turn it off, by name

    def warnings(self) -> list[str]:
        """The operator's warnings: autovacuum off for the server, statistics not collected
        (autovacuum needs them), or autovacuum off for some busy tables."""
        advice = "rdv's tables keep dead row versions and turns get slower as they pile up"
        if not self.server_on:
            return [f"PostgreSQL autovacuum is off on this server: {advice}; turn it on "
                    "(autovacuum = on), or run VACUUM ANALYZE on rdv's tables at least daily"]
        if not self.counts_on:
            return [f"PostgreSQL track_counts is off, so autovacuum never runs: {advice}; turn it on "
                    "(track_counts = on)"]
        if self.tables_off:
            return [f"PostgreSQL autovacuum is off for the tables {', '.join(self.tables_off)} "
                    f"(autovacuum_enabled = false): {advice}; reset it (ALTER TABLE … RESET (autovacuum_enabled))"]
        return []


# Where the turn's read puts the conversation's version (after COLUMNS) and meta (next).
_VERSION = len(COLUMNS)

# -- the turn's read ------------------------------------------------------------------------
# Parameters: conversation id, start of the held slots to read (NULL: none), the bookings
# generation this process holds taken slots for (NULL: none), the taken slots' window
# (NULL: none)[, the turn's request key]. One row, whether the conversation exists or not.
_HELD_AND_TAKEN = (
    "LEFT JOIN LATERAL ("
    "  SELECT array_agg(p.start) AS rdv_held_starts, array_agg(o.last_seen_at) AS rdv_held_seen"
    "  FROM conversations AS o CROSS JOIN unnest(o.proposed) AS p(start)"
    "  WHERE $2::timestamptz IS NOT NULL AND o.outcome IS NULL AND o.state = 'WAIT_CONFIRM'"
    "  AND o.last_seen_at >= $2::timestamptz AND o.conv_id <> $1"
    ") AS h ON true"
)
_TAKEN_IN_WINDOW = (
    "ARRAY(SELECT b.slot_start FROM bookings AS b WHERE b.cancelled_at IS NULL "
    "AND b.slot_start >= {start} AND b.slot_start < {end})"
)
# The process's taken slots were read at generation $3: the changes since then are complete
# from ``kept_from`` on (schema step 8), so they come instead of the whole set.
_CHANGES_COMPLETE = "$3::bigint >= g.kept_from AND $3::bigint < g.n"
_CHANGES_IN_WINDOW = (
    "ARRAY(SELECT k.{column} FROM booking_changes AS k WHERE k.gen > $3::bigint "
    "AND k.slot_start >= $4::timestamptz AND k.slot_start < $5::timestamptz ORDER BY k.gen, k.slot_start, k.active)"
)
_LOAD = (
    f"SELECT {', '.join(f'c.{c}' for c in COLUMNS)}, c.version, c.meta, "
    "g.n AS rdv_generation, h.rdv_held_starts, h.rdv_held_seen, "
    "CASE WHEN $3::bigint IS DISTINCT FROM g.n AND $4::timestamptz IS NOT NULL "
    f"AND NOT ({_CHANGES_COMPLETE}) THEN "
    + _TAKEN_IN_WINDOW.format(start="$4::timestamptz", end="$5::timestamptz")
    + " END AS rdv_taken, "
    f"CASE WHEN $4::timestamptz IS NOT NULL AND {_CHANGES_COMPLETE} THEN "
    + _CHANGES_IN_WINDOW.format(column="slot_start") + " END AS rdv_changed_starts, "
    f"CASE WHEN $4::timestamptz IS NOT NULL AND {_CHANGES_COMPLETE} THEN "
    + _CHANGES_IN_WINDOW.format(column="active") + " END AS rdv_changed_active "
    "{turn_columns}"
    "FROM bookings_generation AS g LEFT JOIN conversations AS c ON c.conv_id = $1 "
    "{turn_join}" + _HELD_AND_TAKEN
)
_LOAD_CONVERSATION = _LOAD.format(turn_columns="", turn_join="")
_LOAD_WITH_TURN = _LOAD.format(
    turn_columns="".join(f", t.{c} AS t_{c}" for c in TURN_COLUMNS) + " ",
    turn_join="LEFT JOIN turns AS t ON t.conv_id = $1 AND t.request_key = $6 ",
)
_TAKEN = (
    "SELECT g.n AS rdv_generation, "
    + _TAKEN_IN_WINDOW.format(start="$1", end="$2")
    + " AS rdv_taken FROM bookings_generation AS g"
)
_HELD = (
    "SELECT p.start FROM conversations AS c CROSS JOIN unnest(c.proposed) AS p(start) "
    "WHERE c.outcome IS NULL AND c.state = 'WAIT_CONFIRM' AND c.last_seen_at >= $1 AND c.conv_id <> $2"
)

# -- the turn's write ------------------------------------------------------------------------
_INSERT_CONVERSATION = insert_conversation("proposed") + " ON CONFLICT (conv_id) DO NOTHING RETURNING version"
_UPDATE_CONVERSATION = update_conversation("proposed") + " RETURNING version"
# Racing inserts on one slot wait on the unique index for the first to commit; all but one
# then do nothing (and their turn's statement aborts whole).
_BOOK = INSERT_BOOKING + " ON CONFLICT (slot_start) WHERE cancelled_at IS NULL DO NOTHING RETURNING id"
_CANCEL = CANCEL_BOOKING + " RETURNING id"
# One statement for all of a turn's events; WITH ORDINALITY keeps their order in the ids.
_INSERT_EVENTS = (
    "INSERT INTO events (conv_id, at, kind, data) "
    "SELECT e.conv_id, e.at, e.kind, e.data "
    "FROM unnest(?::text[], ?::timestamptz[], ?::text[], ?::text[]) "
    "WITH ORDINALITY AS e(conv_id, at, kind, data, n) ORDER BY e.n"
)


@functools.lru_cache(maxsize=128)
def _save_sql(dup: bool, new: bool, cancel: bool, replaced: bool, book: bool, turn: bool,
              events: bool) -> tuple[str, int]:
    """The one statement of a turn's save, for a save of this shape, and how many parameters
    it takes: every write in a CTE, then the checks in the order of :class:`Conflict`, the
    first that fails aborting it all. Parameters, in order: the duplicate check's (turn's
    conversation id and request key), the conversation's (COLUMNS, meta, proposed, then for
    an update the new version, the id and the version loaded), each cancellation's (when,
    booking id: the cancelled appointment, then the one a move replaces), the booking's, the
    turn's (TURN_COLUMNS), the events' (four arrays)."""
    count = 0

    def part(sql: str) -> str:
        nonlocal count
        text = render(sql, Dialect.POSTGRES, first=count + 1)
        count += placeholders(sql)
        return text

    ctes: list[str] = []
    checks: list[str] = []
    if dup:
        checks.append(f"WHEN EXISTS ({part(DUPLICATE_TURN)}) THEN rdv_conflict('{Conflict.DUPLICATE.value}')")
    ctes.append(f"w_conv AS ({part(_INSERT_CONVERSATION if new else _UPDATE_CONVERSATION)})")
    checks.append(f"WHEN NOT EXISTS (SELECT 1 FROM w_conv) THEN rdv_conflict('{Conflict.VERSION.value}')")
    gone = [Conflict.CANCEL] if cancel else []
    if replaced:
        gone.append(Conflict.REPLACED)
    for reason in gone:
        name = f"w_{reason.value}"
        ctes.append(f"{name} AS ({part(_CANCEL)})")
        checks.append(f"WHEN NOT EXISTS (SELECT 1 FROM {name}) THEN rdv_conflict('{reason.value}')")
    if book:
        ctes.append(f"w_book AS ({part(_BOOK)})")
        checks.append(f"WHEN NOT EXISTS (SELECT 1 FROM w_book) THEN rdv_conflict('{Conflict.SLOT.value}')")
    if turn:
        ctes.append(f"w_turn AS ({part(INSERT_TURN)})")
    if events:
        ctes.append(f"w_events AS ({part(_INSERT_EVENTS)})")
    return f"WITH {', '.join(ctes)} SELECT CASE {' '.join(checks)} ELSE (SELECT version FROM w_conv) END", count


@dataclass(slots=True)
class _Read:
    """What a task's last conversation read brought besides the conversation: the bookings
    generation it saw, the held slots (start, holder last seen) from ``held_since``, and the
    conversation itself while ``load`` has not taken it (after ``find_turn``)."""

    conv_id: str
    at: float
    generation: int
    held_since: datetime | None
    held_starts: list[datetime]
    held_seen: list[datetime]
    pending: StoredConversation | None
    has_pending: bool
    taken: _Taken | None = None
    taken_used: bool = False
    held_used: bool = False


@dataclass(frozen=True, slots=True)
class _Taken:
    """Taken slots of one window as of one bookings generation."""

    generation: int
    start: datetime
    end: datetime
    slots: frozenset[datetime]


def _open(conn: asyncpg.Connection) -> bool:
    """False for a connection closed since it was last used."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        # Closed under the pool's proxy: the pool has taken it back already.
        return False


def _usable(conn: asyncpg.Connection) -> bool:
    """True for an open connection outside a transaction, fit for the next call."""
    try:
        return not conn.is_closed() and not conn.is_in_transaction()
    except asyncpg.InterfaceError:
        return False


class _Lane:
    """The store's connections between calls: borrowed from the asyncpg pool (which opens
    them, runs ``init``, replaces a broken one and closes them all) and kept here while
    idle, so that a call takes one and gives it back without the pool's per-release work
    (a task for ``asyncio.shield``, a timeout scope, an inactivity timer, a proxy).

    At most ``size`` connections are borrowed at once; a call that finds none idle and the
    limit reached waits for the next one given back. A connection whose call failed in the
    driver or on the network, was cancelled (a query the driver is still cancelling), or
    is left in a transaction goes back to the pool, which resets, waits for or replaces it."""

    def __init__(self, pool: asyncpg.Pool, size: int) -> None:
        self.pool = pool
        self.size = size
        self.idle: list[asyncpg.Connection] = []
        self.borrowed = 0
        self.waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        # Connections going back to the pool in the background (after a cancelled call).
        self.returning: set[asyncio.Task[None]] = set()

    def ready(self) -> asyncpg.Connection | None:
        """An idle connection, or None."""
        idle = self.idle
        while idle:
            conn = idle.pop()
            if _open(conn):
                return conn
            self.drop(conn)
        return None

    async def take(self) -> asyncpg.Connection:
        """An idle connection, a new one from the pool, or the next one given back."""
        while True:
            conn = self.ready()
            if conn is not None:
                return conn
            if self.borrowed < self.size:
                self.borrowed += 1
                try:
                    return await self.pool.acquire()
                except BaseException:
                    self.borrowed -= 1
                    self.wake(None)
                    raise
            waiter: asyncio.Future[asyncpg.Connection | None] = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                conn = await waiter
            except BaseException:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self.give(waiter.result())  # given just before this call was cancelled
                raise
            if conn is not None:
                return conn
            # A connection went back to the pool: there is room to borrow again.

    def give(self, conn: asyncpg.Connection) -> None:
        """Keep a connection whose call ended normally (or with an error the server sent)."""
        if not _usable(conn):
            self.drop(conn)
        elif not self.wake(conn):
            self.idle.append(conn)

    def drop(self, conn: asyncpg.Connection) -> None:
        """Give a connection back to the pool in the background (a cancelled call's query is
        being cancelled: the pool waits for that; a broken one is replaced)."""
        self.borrowed -= 1
        task = asyncio.get_running_loop().create_task(self._back(conn))
        self.returning.add(task)
        task.add_done_callback(self.returning.discard)

    async def _back(self, conn: asyncpg.Connection) -> None:
        try:
            with contextlib.suppress(*DRIVER_ERRORS, asyncio.CancelledError):
                await self.pool.release(conn)
        finally:
            self.wake(None)

    def wake(self, conn: asyncpg.Connection | None) -> bool:
        """Hand ``conn`` (None: room to borrow) to the first call still waiting; False if none."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def close(self) -> None:
        """Give the idle connections back to the pool (before it closes)."""
        idle, self.idle = self.idle, []
        for conn in idle:
            self.borrowed -= 1
            await self._back(conn)


def pg_text(value: str) -> str:
    """Text as PostgreSQL can hold it: the server refuses U+0000, so it is stored as U+FFFD
    (SQLite keeps it; a caller typing a NUL must get an answer, not a 503 on every retry)."""
    return value.replace("\x00", "\ufffd")


async def _setup_connection(conn: asyncpg.Connection) -> None:
    """Every new pooled connection (reconnects included) encodes text parameters with
    :func:`pg_text`; arrays of text do not go through this codec and are cleaned by hand."""
    await conn.set_type_codec("text", schema="pg_catalog", encoder=pg_text, decoder=str, format="text")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset: nothing to send. The store keeps no session state, and asyncpg
    itself rolls back a transaction left open before this is called."""


def _server_settings(url: str) -> dict[str, str]:
    """SERVER_SETTINGS but those the URL's query sets (asyncpg sends the URL's own, and would
    let these override them)."""
    given = {key for key, _ in parse_qsl(urlsplit(url).query)}
    return {key: value for key, value in SERVER_SETTINGS.items() if key not in given}


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
    return StoredConversation(conversation_from_row(data), int(data["version"]), meta_from_json(data["meta"]))


def _loaded(row: asyncpg.Record) -> StoredConversation:
    """The conversation of a turn's read: COLUMNS, then version and meta, first in the row."""
    return StoredConversation(
        conversation_from_values(row), int(row[_VERSION]), meta_from_json(row[_VERSION + 1])
    )


def _event(row: asyncpg.Record) -> EventRecord:
    return EventRecord(row["conv_id"], row["at"], row["kind"], json.loads(row["data"]))


def _same(moment: datetime) -> datetime:
    """A datetime as the driver takes it (it converts to UTC itself)."""
    return moment


def _proposed(conv: Conversation) -> list[datetime] | None:
    """The slot starts held for ``conv`` (its proposals while it is choosing), or None."""
    if conv.outcome is not None or conv.state is not State.WAIT_CONFIRM or not conv.context.proposed:
        return None
    return [s.start for s in conv.context.proposed]


class PostgresStore:
    """The Store and OperatorReads protocols on a PostgreSQL database (``postgresql://`` URL)."""

    # Turn-path calls bound themselves by ``timeout`` (no timer task in the turn loop).
    enforces_timeout = True

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 30.0,
        connection_class: type[asyncpg.Connection] | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.min_size = min_size
        self.max_size = max_size
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.connection_class = connection_class or asyncpg.Connection
        self._server_settings = _server_settings(url)
        # Whether the store's plan_cache_mode applies (the URL sets none): then the reads
        # planned for their parameters set it back; a URL's own holds for every call.
        self._generic_plans = "plan_cache_mode" in self._server_settings
        self._pool: asyncpg.Pool | None = None
        self._lane: _Lane | None = None
        # A turn-path query's deadline: the store timeout, or the command timeout if shorter.
        self._budget = timeout if command_timeout is None else min(timeout, command_timeout)
        # What the current task's last conversation read brought (per store instance).
        self._read: ContextVar[_Read | None] = ContextVar(f"rdv_postgres_read_{id(self):x}", default=None)
        self._taken: _Taken | None = None
        # The conversations this process's turns saved last: a read that finds one at the
        # version saved takes it from here instead of decoding the row.
        self._kept = KeptConversations()
        self._window: tuple[datetime, datetime] | None = None
        self._held_since: datetime | None = None

    # -- plumbing -------------------------------------------------------------------
    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(f"postgresql {redacted(self.url)}: {type(exc).__name__}: {exc}")

    async def _plan_per_call(self, conn: asyncpg.Connection) -> None:
        """In the transaction of a read planned for its parameters (see PLAN_PER_CALL)."""
        if self._generic_plans:
            await conn.execute(PLAN_PER_CALL)

    def _opened(self) -> _Lane:
        if self._lane is None:
            raise StoreError("the PostgreSQL store is not open")
        return self._lane

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for calls off the turn path (their callers bound them; the
        wait for a connection is bounded by ``command_timeout``); driver and network
        failures become StoreError."""
        lane = self._opened()
        try:
            async with asyncio.timeout(self.command_timeout):
                conn = await lane.take()
            try:
                yield conn
            except asyncpg.PostgresError:
                lane.give(conn)
                raise
            except BaseException:
                lane.drop(conn)
                raise
            lane.give(conn)
        except StoreError:
            raise
        except DRIVER_ERRORS as exc:
            raise self._error(exc) from exc

    async def _query(self, method: str, sql: str, *args: Any, server_errors: bool = False) -> Any:
        """``conn.<method>(sql, *args)`` on the turn path: on an idle connection (or the
        first one free) and answered within the store timeout (and the command timeout),
        the driver's own timer bounding the query. On the deadline the driver cancels the
        query and the connection goes back to the pool in the background (a server that no
        longer answers may take long to acknowledge the cancellation), so the caller never
        waits past the timeout. An error the server sends is raised as it is with
        ``server_errors``; every other failure becomes StoreError."""
        lane = self._opened()
        budget = self._budget
        try:
            conn = lane.ready()
            if conn is None:
                start = time.monotonic()
                async with asyncio.timeout(self.timeout):
                    conn = await lane.take()
                budget -= time.monotonic() - start
            try:
                result = await getattr(conn, method)(sql, *args, timeout=budget)
            except asyncpg.PostgresError:
                lane.give(conn)
                raise
            except BaseException:
                lane.drop(conn)
                raise
            # One statement in its own transaction, answered: the connection is fit for the
            # next call (a closed one is found when taken).
            if not lane.waiters or not lane.wake(conn):
                lane.idle.append(conn)
            return result
        except TimeoutError as exc:
            raise StoreError(
                f"postgresql {redacted(self.url)}: TimeoutError: no answer within {self.timeout:g} s"
            ) from exc
        except asyncpg.PostgresError as exc:
            if server_errors:
                raise
            raise self._error(exc) from exc
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
                    reset=_keep_session,
                    connection_class=self.connection_class,
                    server_settings=self._server_settings,
                )
            except OPEN_ERRORS as exc:
                raise StoreError(
                    f"cannot connect to PostgreSQL at {redacted(self.url)}: {type(exc).__name__}: {exc}"
                ) from exc
            self._lane = _Lane(self._pool, self.max_size)
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
        lane, self._lane = self._lane, None
        if pool is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                if lane is not None:
                    await lane.close()
                await pool.close()
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
            await self._plan_per_call(conn)
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
            await self._plan_per_call(conn)
            ids = [r["conv_id"] for r in await conn.fetch(
                "SELECT conv_id FROM conversations WHERE caller_phone = $1 OR context LIKE $2", phone, like
            )]
            if ids:
                await conn.execute("UPDATE conversations SET caller_phone = NULL, context = $1, proposed = NULL, "
                                   "version = version + 1 WHERE conv_id = ANY($2::text[])",
                                   FORGOTTEN_CONTEXT, ids)
                await conn.execute("UPDATE turns SET text = $1, reply = $1 WHERE conv_id = ANY($2::text[])",
                                   FORGOTTEN, ids)
                await conn.execute("UPDATE events SET data = '{}' "
                                   "WHERE kind = ANY($1::text[]) AND conv_id = ANY($2::text[])",
                                   list(NAMED_EVENTS), ids)
                await conn.execute("DELETE FROM call_reports WHERE conv_id = ANY($1::text[])", ids)
            status = await conn.execute(
                "UPDATE bookings SET name = $1, phone = NULL WHERE phone = $2 OR conv_id = ANY($3::text[])",
                FORGOTTEN, phone, ids,
            )
        return len(ids), int(status.split()[-1])

    async def autovacuum(self) -> Autovacuum:
        """Whether autovacuum runs for the tables every turn rewrites (their dead row versions
        and index entries are otherwise never reclaimed)."""
        async with self._connection() as conn:
            row = await conn.fetchrow(_AUTOVACUUM, list(BUSY_TABLES))
        return Autovacuum(row["server_on"], row["counts_on"], tuple(row["tables_off"]))

    async def warnings(self) -> list[str]:
        """What the server's configuration makes of rdv's tables (:class:`Autovacuum`)."""
        return (await self.autovacuum()).warnings()

    async def schema_version(self) -> int:
        """The last schema step applied."""
        async with self._connection() as conn:
            return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))

    # -- conversations and turns ------------------------------------------------------
    def _load_args(self, conv_id: str) -> tuple[list[Any], _Taken | None]:
        """The read's parameters, and the taken slots they say this process holds."""
        held_since = None if self._held_since is None else self._held_since - HELD_MARGIN
        taken = self._taken
        window = self._window
        if taken is not None and window != (taken.start, taken.end):
            taken = None  # another window: read whole
        return [
            conv_id, held_since, None if taken is None else taken.generation,
            None if window is None else window[0], None if window is None else window[1],
        ], taken

    def _remember(self, row: asyncpg.Record, conv_id: str, args: list[Any], base: _Taken | None, *,
                  pending: bool) -> StoredConversation | None:
        """Keep what a conversation read brought for the task's next calls; the conversation.

        The taken slots come whole, or as the changes since ``base`` (the set the read was
        asked against), or not at all when ``base`` is current."""
        generation = int(row["rdv_generation"])
        taken: _Taken | None = None
        if row["rdv_taken"] is not None:
            taken = _Taken(generation, args[3], args[4], frozenset(row["rdv_taken"]))
        elif row["rdv_changed_starts"] is not None and base is not None:
            final = dict(zip(row["rdv_changed_starts"], row["rdv_changed_active"], strict=True))
            slots = TakenSlots.after(base.slots, [s for s, on in final.items() if on],
                                     [s for s, on in final.items() if not on])
            taken = _Taken(generation, base.start, base.end, slots)
        elif base is not None and base.generation == generation:
            taken = base
        if taken is not None and (self._taken is None or self._taken.generation <= generation):
            self._taken = taken
        stored = None if row[0] is None else (self._kept.get(conv_id, int(row[_VERSION])) or _loaded(row))
        self._read.set(_Read(
            conv_id, time.monotonic(), generation, args[1], row["rdv_held_starts"] or [], row["rdv_held_seen"] or [],
            stored, pending, taken,
        ))
        return stored

    def _fresh(self) -> _Read | None:
        """The task's last conversation read while its answers may still be used."""
        read = self._read.get()
        if read is None or time.monotonic() - read.at > self.timeout:
            return None
        return read

    async def load(self, conv_id: str) -> StoredConversation | None:
        """The conversation with this id, or None (see the module's note on what else the
        same round trip reads)."""
        read = self._fresh()
        if read is not None and read.has_pending and read.conv_id == conv_id:
            read.has_pending = False
            return read.pending
        args, base = self._load_args(conv_id)
        row = await self._query("fetchrow", _LOAD_CONVERSATION, *args)
        return self._remember(row, conv_id, args, base, pending=False)

    async def find_turn(self, conv_id: str, request_key: str) -> TurnRecord | None:
        """The stored turn with this request key, or None; the conversation is read in the
        same round trip, for the ``load`` that follows."""
        args, base = self._load_args(conv_id)
        row = await self._query("fetchrow", _LOAD_WITH_TURN, *args, request_key)
        self._remember(row, conv_id, args, base, pending=True)
        if row["t_turn"] is None:
            return None
        return turn_from_row({c: row[f"t_{c}"] for c in TURN_COLUMNS})

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
        or cancellation, in one statement (one durable transaction)."""
        conv = conversation
        self._read.set(None)
        values, meta_text = conversation_values(conv, _same), meta_json(meta)
        sql, args = self._save_statement(conv, values, expected_version, meta_text, turn, events, booking, cancel)
        found: Conflict | None = None
        try:
            version = await self._query("fetchval", sql, *args, server_errors=True)
        except asyncpg.UniqueViolationError as exc:
            # A turn with the same key committed while this statement ran.
            if exc.constraint_name != "turns_request_key":
                raise self._error(exc) from exc
            found = Conflict.DUPLICATE
        except asyncpg.PostgresError as exc:
            if exc.sqlstate != CONFLICT_SQLSTATE:
                raise self._error(exc) from exc
            found = Conflict(exc.message)
        if found is not None:
            gone = cancel.booking_id if found is Conflict.CANCEL and cancel is not None else None
            if found is Conflict.REPLACED and booking is not None:
                gone = booking.replaces
            raise conflict(
                found, conv_id=conv.conv_id, new=expected_version is None,
                request_key=None if turn is None else turn.request_key, booking_id=gone,
                slot_start=None if booking is None else booking.slot.start.isoformat(),
            )
        if not any(isinstance(v, str) and "\x00" in v for v in values):
            # (A NUL in a text column is stored as U+FFFD, pg_text: the row is not what was saved.)
            self._kept.keep(conv, int(version), meta_text)
        return int(version)

    @staticmethod
    def _save_statement(
        conv: Conversation,
        values: tuple[Any, ...],
        expected: int | None,
        meta_text: str,
        turn: TurnRecord | None,
        events: list[EventRecord],
        booking: BookingWrite | None,
        cancel: CancelWrite | None,
    ) -> tuple[str, list[Any]]:
        """The one statement of a turn's save (:func:`_save_sql`, rendered once per shape)
        and its arguments, in the order of its placeholders (``values``: the conversation's
        columns, ``meta_text``: its meta as JSON). Datetimes go as they are: the driver sends
        them in UTC."""
        replaced = booking is not None and booking.replaces is not None
        dup = turn is not None and turn.request_key is not None
        sql, count = _save_sql(dup, expected is None, cancel is not None, replaced, booking is not None,
                               turn is not None, bool(events))
        args: list[Any] = [turn.conv_id, turn.request_key] if dup and turn is not None else []
        if expected is None:
            args += values
            args += (meta_text, _proposed(conv))
        else:
            args += values[1:]
            args += (meta_text, _proposed(conv), expected + 1, conv.conv_id, expected)
        if cancel is not None:
            args += (cancel.at, cancel.booking_id)
        if booking is not None:
            b = booking
            if replaced:
                args += (b.at, b.replaces)
            args += (b.booking_id, b.slot.start, b.slot.end, b.conv_id, b.name, b.phone, b.at)
        if turn is not None:
            t = turn
            args += (t.conv_id, t.turn, t.request_key, t.text, t.reply, t.state_before, t.state_after, t.at,
                     t.interrupted, t.directive, t.trace_id)
        if events:
            args += (
                [pg_text(e.conv_id) for e in events],
                [e.at for e in events],
                [pg_text(e.kind) for e in events],
                [event_json(e) for e in events],
            )
        if len(args) != count:
            raise ValueError(f"{len(args)} values for {count} placeholders in {sql!r}")
        return sql, args

    # -- bookings ----------------------------------------------------------------------
    async def taken_slots(self, start: datetime, end: datetime) -> frozenset[datetime]:
        """Start times of active bookings in ``[start, end)``: as of the task's conversation
        read just before when that read saw the generation these slots were read at."""
        start, end = _utc(start), _utc(end)
        self._window = (start, end)
        read = self._fresh()
        taken = None if read is None else read.taken
        if (
            read is not None and not read.taken_used and taken is not None
            and taken.generation == read.generation and taken.start == start and taken.end == end
        ):
            read.taken_used = True
            return taken.slots
        row = await self._query("fetchrow", _TAKEN, start, end)
        found = _Taken(int(row["rdv_generation"]), start, end, frozenset(row["rdv_taken"]))
        if self._taken is None or self._taken.generation <= found.generation:
            self._taken = found
        return found.slots

    async def held_slots(self, since: datetime, except_conv: str) -> frozenset[datetime]:
        """Starts of the slots proposed to other conversations still choosing: from the
        task's conversation read just before when it read them from ``since`` or earlier."""
        since = _utc(since)
        if self._held_since is None or since > self._held_since:
            self._held_since = since
        read = self._fresh()
        if (
            read is not None and not read.held_used and read.conv_id == except_conv
            and read.held_since is not None and read.held_since <= since
        ):
            read.held_used = True
            return frozenset([start for start, seen in zip(read.held_starts, read.held_seen, strict=True)
                              if seen >= since])
        rows = await self._query("fetch", _HELD, since, except_conv)
        return frozenset(r["start"] for r in rows)

    async def find_bookings(self, phone: str, after: datetime) -> tuple[BookingRef, ...]:
        """Active future bookings made from this phone, by start."""
        rows = await self._query(
            "fetch",
            "SELECT * FROM bookings WHERE cancelled_at IS NULL AND slot_start > $1 AND phone = $2 ORDER BY slot_start",
            _utc(after), phone,
        )
        return tuple(BookingRef(r["id"], Slot(r["slot_start"], r["slot_end"]), r["name"]) for r in rows)

    async def booking_at(self, start: datetime) -> BookingRef | None:
        """The active booking starting at ``start``, or None."""
        r = await self._query("fetchrow", "SELECT * FROM bookings WHERE cancelled_at IS NULL AND slot_start = $1",
                              _utc(start))
        return None if r is None else BookingRef(r["id"], Slot(r["slot_start"], r["slot_end"]), r["name"])

    async def booking_active(self, booking_id: str) -> bool:
        """True while this appointment is booked and not cancelled."""
        found = await self._query("fetchval", "SELECT 1 FROM bookings WHERE id = $1 AND cancelled_at IS NULL",
                                  booking_id)
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
        rows = await self._query(
            "fetch",
            "SELECT channel, count(*) AS n FROM conversations WHERE outcome IS NULL AND NOT synthetic GROUP BY channel",
        )
        return {str(r["channel"]): int(r["n"]) for r in rows}

    async def idle_conversations(self, idle_before: datetime, channel: str) -> list[StoredConversation]:
        """Not-ended conversations of ``channel`` last seen before ``idle_before``."""
        rows = await self._query(
            "fetch",
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
        async with self._connection() as conn, conn.transaction(readonly=True):
            await self._plan_per_call(conn)
            rows = await conn.fetch(
                "SELECT conv_id, channel, state, outcome, turn_count, created_at, last_seen_at, ended_reason, "
                "synthetic FROM conversations WHERE last_seen_at >= $1",
                _utc(since),
            )
        return [conversation_summary(r) for r in rows]

    async def events_since(self, since: datetime, kinds: tuple[str, ...]) -> list[EventRecord]:
        """Events of these kinds at or after ``since``, oldest first."""
        if not kinds:
            return []
        async with self._connection() as conn, conn.transaction(readonly=True):
            await self._plan_per_call(conn)
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
            await self._plan_per_call(conn)
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
        taken = await self._query(
            "fetchval",
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
