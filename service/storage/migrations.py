"""Versioned schema steps; each store applies the ones its ``schema_version`` lacks, in order.

Never edit a released step: add a new one. The schema is written once, with type markers
rendered per dialect (:mod:`service.storage.sql`): SQLite keeps datetimes as UTC ISO text and
booleans as integers, PostgreSQL uses ``timestamptz`` and ``boolean``; JSON stays text on
both, byte for byte what the codec wrote, so both backends answer identically (and a
``::jsonb`` cast serves operators who query it). A statement of one dialect only is wrapped
in :class:`Only`. SQLite applies the steps under ``BEGIN IMMEDIATE`` and PostgreSQL under an
advisory lock, so two replicas starting at once migrate exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.storage.sql import Dialect, render


@dataclass(frozen=True, slots=True)
class Only:
    """A statement for one dialect (the other one skips it)."""

    dialect: Dialect
    sql: str


Statement = str | Only
# The most events one row of ``event_batches`` holds (SQLite, schema step 10): the ``events``
# view numbers a batch's events from its id times this.
EVENTS_PER_BATCH = 1024
# The characters of a UTC moment's text (``2026-12-01T14``) that name its hour in
# ``event_hours`` (SQLite, schema step 13).
EVENT_HOUR_CHARS = 13

STEPS: tuple[tuple[Statement, ...], ...] = (
    (
        """CREATE TABLE conversations (
            conv_id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            state TEXT NOT NULL,
            turn_count INTEGER NOT NULL,
            created_at {ts} NOT NULL,
            last_seen_at {ts} NOT NULL,
            state_entered_at {ts} NOT NULL,
            outcome TEXT,
            vapi_call_id TEXT,
            caller_phone TEXT,
            epoch INTEGER NOT NULL DEFAULT 0,
            context TEXT NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}',
            version INTEGER NOT NULL,
            ended_reason TEXT
        )""",
        "CREATE INDEX conversations_last_seen ON conversations (last_seen_at)",
        "CREATE INDEX conversations_idle ON conversations (channel, last_seen_at) WHERE outcome IS NULL",
        "CREATE INDEX conversations_call ON conversations (vapi_call_id)",
        """CREATE TABLE turns (
            id {serial},
            conv_id TEXT NOT NULL,
            turn INTEGER NOT NULL,
            request_key TEXT,
            text TEXT NOT NULL,
            reply TEXT NOT NULL,
            state_before TEXT NOT NULL,
            state_after TEXT NOT NULL,
            at {ts} NOT NULL,
            interrupted {bool} NOT NULL DEFAULT {false},
            directive TEXT,
            trace_id TEXT
        )""",
        "CREATE INDEX turns_conv ON turns (conv_id, id)",
        "CREATE UNIQUE INDEX turns_request_key ON turns (conv_id, request_key) WHERE request_key IS NOT NULL",
        """CREATE TABLE events (
            id {serial},
            conv_id TEXT NOT NULL,
            at {ts} NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
        "CREATE INDEX events_conv ON events (conv_id, id)",
        "CREATE INDEX events_kind_at ON events (kind, at)",
        """CREATE TABLE bookings (
            id TEXT PRIMARY KEY,
            slot_start {ts} NOT NULL,
            slot_end {ts} NOT NULL,
            conv_id TEXT NOT NULL,
            name TEXT NOT NULL,
            phone TEXT,
            created_at {ts} NOT NULL,
            cancelled_at {ts}
        )""",
        "CREATE UNIQUE INDEX bookings_active_slot ON bookings (slot_start) WHERE cancelled_at IS NULL",
        "CREATE INDEX bookings_phone ON bookings (phone, slot_start)",
        Only(Dialect.POSTGRES, "CREATE INDEX bookings_conv ON bookings (conv_id, created_at)"),
        """CREATE TABLE call_reports (
            conv_id TEXT PRIMARY KEY,
            report TEXT NOT NULL,
            at {ts} NOT NULL
        )""",
        """CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            until {ts} NOT NULL
        )""",
    ),
    # 2: callers still choosing among proposed slots (slot holds).
    (
        "CREATE INDEX conversations_choosing ON conversations (last_seen_at) "
        "WHERE outcome IS NULL AND state = 'WAIT_CONFIRM'",
    ),
    # 3: Vapi signatures already accepted (replays refused, shared by replicas), and the row
    # readiness probes write.
    (
        "CREATE TABLE seen_signatures (key TEXT PRIMARY KEY, seen_at {ts} NOT NULL)",
        "CREATE INDEX seen_signatures_at ON seen_signatures (seen_at)",
        "CREATE TABLE readiness (instance TEXT PRIMARY KEY, at {ts} NOT NULL)",
    ),
    # 4: test traffic (rdv probe, rdv simulate), kept out of business numbers.
    (
        "ALTER TABLE conversations ADD COLUMN synthetic {bool} NOT NULL DEFAULT {false}",
    ),
    # 5: anonymous daily counts of conversations purged after RDV_RETENTION_DAYS.
    (
        """CREATE TABLE daily_counts (
            day {date} NOT NULL,
            channel TEXT NOT NULL,
            outcome TEXT NOT NULL,
            synthetic {bool} NOT NULL,
            conversations INTEGER NOT NULL,
            PRIMARY KEY (day, channel, outcome, synthetic)
        )""",
    ),
    # 6 (PostgreSQL): a turn in two round trips.
    # - The proposed slot starts in a column of their own, so the slots held for callers still
    #   choosing are read without parsing every choosing conversation's JSON context.
    # - A generation of the bookings table, bumped in the transaction of every statement
    #   that changes it: a replica keeps the taken slots it read and reads them again only
    #   when the generation (read with the conversation, in the same round trip) moved.
    # - rdv_conflict(reason) aborts a turn's one-statement save with SQLSTATE RDV01 and the
    #   reason, so that nothing of the turn is written and the store knows why.
    (
        Only(Dialect.POSTGRES, "ALTER TABLE conversations ADD COLUMN proposed TIMESTAMPTZ[]"),
        Only(
            Dialect.POSTGRES,
            "UPDATE conversations SET proposed = ARRAY("
            "SELECT (p ->> 'start')::timestamptz FROM jsonb_array_elements(context::jsonb -> 'proposed') AS p) "
            "WHERE outcome IS NULL AND state = 'WAIT_CONFIRM'",
        ),
        Only(Dialect.POSTGRES, "CREATE TABLE bookings_generation (n BIGINT NOT NULL)"),
        Only(Dialect.POSTGRES, "INSERT INTO bookings_generation (n) VALUES (0)"),
        Only(
            Dialect.POSTGRES,
            """CREATE FUNCTION rdv_bookings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE bookings_generation SET n = n + 1;
                RETURN NULL;
            END $$""",
        ),
        Only(
            Dialect.POSTGRES,
            "CREATE TRIGGER bookings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON bookings "
            "FOR EACH STATEMENT EXECUTE FUNCTION rdv_bookings_changed()",
        ),
        Only(
            Dialect.POSTGRES,
            """CREATE FUNCTION rdv_conflict(reason TEXT) RETURNS INTEGER LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION USING ERRCODE = 'RDV01', MESSAGE = reason;
            END $$""",
        ),
    ),
    # 7 (SQLite): fewer pages written per turn. Events were indexed by (kind, at), so a turn's
    # few events landed on as many index pages; the stats read them by time, which an index
    # on ``at`` alone serves, its new entries all on its last page.
    (
        Only(Dialect.SQLITE, "DROP INDEX events_kind_at"),
        Only(Dialect.SQLITE, "CREATE INDEX events_at ON events (at)"),
    ),
    # 8 (PostgreSQL): taken slots followed by their changes. Each statement that books or
    # cancels records the slots it wrote (active or not) under the generation it bumped, so
    # that a replica whose taken slots are a few generations old reads those few changes
    # instead of every active booking again. The generation is bumped at the end of the
    # statement, under the lock of its one row, so changes are numbered in commit order (as
    # the generation already was). Deleting bookings (the purge) records nothing: it starts
    # the changes over (``kept_from``), and every replica reads its taken slots whole once.
    (
        Only(
            Dialect.POSTGRES,
            "CREATE TABLE booking_changes (gen BIGINT NOT NULL, slot_start TIMESTAMPTZ NOT NULL, "
            "active BOOLEAN NOT NULL)",
        ),
        Only(Dialect.POSTGRES, "CREATE INDEX booking_changes_gen ON booking_changes (gen)"),
        Only(Dialect.POSTGRES, "ALTER TABLE bookings_generation ADD COLUMN kept_from BIGINT NOT NULL DEFAULT 0"),
        Only(Dialect.POSTGRES, "UPDATE bookings_generation SET kept_from = n"),
        Only(Dialect.POSTGRES, "DROP TRIGGER bookings_changed ON bookings"),
        Only(
            Dialect.POSTGRES,
            """CREATE FUNCTION rdv_bookings_written() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE
                g BIGINT;
            BEGIN
                UPDATE bookings_generation SET n = n + 1 RETURNING n INTO g;
                INSERT INTO booking_changes (gen, slot_start, active)
                SELECT g, w.slot_start, w.cancelled_at IS NULL FROM written AS w;
                RETURN NULL;
            END $$""",
        ),
        Only(
            Dialect.POSTGRES,
            """CREATE OR REPLACE FUNCTION rdv_bookings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE bookings_generation SET n = n + 1, kept_from = n + 1;
                DELETE FROM booking_changes;
                RETURN NULL;
            END $$""",
        ),
        Only(
            Dialect.POSTGRES,
            "CREATE TRIGGER bookings_inserted AFTER INSERT ON bookings REFERENCING NEW TABLE AS written "
            "FOR EACH STATEMENT EXECUTE FUNCTION rdv_bookings_written()",
        ),
        Only(
            Dialect.POSTGRES,
            "CREATE TRIGGER bookings_updated AFTER UPDATE ON bookings REFERENCING NEW TABLE AS written "
            "FOR EACH STATEMENT EXECUTE FUNCTION rdv_bookings_written()",
        ),
        Only(
            Dialect.POSTGRES,
            "CREATE TRIGGER bookings_changed AFTER DELETE OR TRUNCATE ON bookings "
            "FOR EACH STATEMENT EXECUTE FUNCTION rdv_bookings_changed()",
        ),
    ),
    # 9 (SQLite): fewer index pages written per turn. A turn's row went into two indexes led
    # by its conversation, (conv_id, id) and (conv_id, request_key), each entry on a page of its
    # own: one unique index on (conv_id, request_key) serves both the request keys (SQLite
    # keeps NULL keys distinct, so turns without one never conflict) and the reads of a
    # conversation's turns, which sort their few rows by id. Text conversations have no Vapi
    # call id: the index of call ids leaves them out (a lookup by call id never needs them).
    (
        Only(Dialect.SQLITE, "DROP INDEX IF EXISTS turns_conv"),
        Only(Dialect.SQLITE, "DROP INDEX IF EXISTS turns_request_key"),
        Only(Dialect.SQLITE, "CREATE UNIQUE INDEX IF NOT EXISTS turns_conv_key ON turns (conv_id, request_key)"),
        Only(Dialect.SQLITE, "DROP INDEX IF EXISTS conversations_call"),
        Only(
            Dialect.SQLITE,
            "CREATE INDEX IF NOT EXISTS conversations_call ON conversations (vapi_call_id) "
            "WHERE vapi_call_id IS NOT NULL",
        ),
    ),
    # 10 (SQLite): a turn's events in one row. Each event was a row of its own, with an entry
    # in each of the two events indexes: a turn's events are now one row of ``event_batches``
    # (``count`` events; their data as a JSON array, in order; their kinds as a JSON array, or
    # the one kind as it is when the batch holds one event), and ``events`` a view that reads
    # them back one event a row, as the table had them: the same columns, ids in the same
    # order (a batch's id times EVENTS_PER_BATCH, plus the event's place in it), each event's
    # data the JSON text it was written as. SQLite's JSON functions end a text at an escaped
    # NUL: a kind holding one is written in a batch of its own. The events stored so far
    # become batches of one, under their ids.
    (
        Only(
            Dialect.SQLITE,
            "CREATE TABLE event_batches (id INTEGER PRIMARY KEY, conv_id TEXT NOT NULL, at TEXT NOT NULL, "
            "count INTEGER NOT NULL, kinds TEXT NOT NULL, data TEXT NOT NULL)",
        ),
        Only(
            Dialect.SQLITE,
            "INSERT INTO event_batches (id, conv_id, at, count, kinds, data) "
            "SELECT id, conv_id, at, 1, kind, '[' || data || ']' FROM events ORDER BY id",
        ),
        Only(Dialect.SQLITE, "DROP TABLE events"),
        Only(Dialect.SQLITE, "CREATE INDEX event_batches_conv ON event_batches (conv_id, id)"),
        Only(Dialect.SQLITE, "CREATE INDEX event_batches_at ON event_batches (at)"),
        Only(
            Dialect.SQLITE,
            "CREATE VIEW events (id, conv_id, at, kind, data) AS "
            f"SELECT b.id * {EVENTS_PER_BATCH} + e.key, b.conv_id, b.at, "
            "CASE WHEN b.count = 1 THEN b.kinds ELSE json_extract(b.kinds, '$[' || e.key || ']') END, e.value "
            "FROM event_batches AS b, json_each(b.data) AS e",
        ),
    ),
    # 11 (SQLite): taken slots followed by their changes. Every booking written, cancelled (or
    # released) and deleted records its slot start in ``booking_changes``, numbered in commit
    # order: a connection whose taken slots are a few changes old reads those slots again
    # instead of every active booking (another worker's commits no longer throw them away).
    # The purge keeps the last changes only; a connection further behind reads them whole.
    (
        Only(
            Dialect.SQLITE,
            "CREATE TABLE booking_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, slot_start TEXT NOT NULL)",
        ),
        Only(
            Dialect.SQLITE,
            "CREATE TRIGGER booking_inserted AFTER INSERT ON bookings "
            "BEGIN INSERT INTO booking_changes (slot_start) VALUES (new.slot_start); END",
        ),
        Only(
            Dialect.SQLITE,
            "CREATE TRIGGER booking_updated AFTER UPDATE OF slot_start, cancelled_at ON bookings "
            "WHEN old.slot_start IS NOT new.slot_start OR old.cancelled_at IS NOT new.cancelled_at "
            "BEGIN INSERT INTO booking_changes (slot_start) VALUES (old.slot_start); "
            "INSERT INTO booking_changes (slot_start) SELECT new.slot_start "
            "WHERE new.slot_start IS NOT old.slot_start; "
            "END",
        ),
        Only(
            Dialect.SQLITE,
            "CREATE TRIGGER booking_deleted AFTER DELETE ON bookings "
            "BEGIN INSERT INTO booking_changes (slot_start) VALUES (old.slot_start); END",
        ),
    ),
    # 12 (PostgreSQL): a change says whether its slot is taken once the statement is done, not
    # whether the row written is active. A cancelled booking's row rewritten (a caller
    # forgotten) while another booking holds its slot said the slot was free, and replicas
    # dropped it from their taken slots (the unique index still refused a second booking).
    (
        Only(
            Dialect.POSTGRES,
            """CREATE OR REPLACE FUNCTION rdv_bookings_written() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE
                g BIGINT;
            BEGIN
                UPDATE bookings_generation SET n = n + 1 RETURNING n INTO g;
                INSERT INTO booking_changes (gen, slot_start, active)
                SELECT g, w.slot_start, EXISTS (
                    SELECT 1 FROM bookings AS b WHERE b.slot_start = w.slot_start AND b.cancelled_at IS NULL
                ) FROM (SELECT DISTINCT slot_start FROM written) AS w;
                RETURN NULL;
            END $$""",
        ),
    ),
    # 13 (SQLite): events found by time without an index on it. The index on
    # ``event_batches.at`` cost every turn's save about 4 % of its CPU (one more B-tree written
    # per turn), for a read the operators' statistics make now and then. Batch ids grow in
    # the order rows are written, and a batch's moment is within seconds of its writing:
    # ``event_hours`` keeps, for each UTC hour (the first 13 characters of the moment's text),
    # the smallest id of a batch of that hour, written by a save when its connection had not
    # marked the hour yet (the smallest of every connection's marks is kept). Every batch at
    # or after a moment has an id at or above the smallest mark of the hours from that one's
    # on: the read starts there, on the table's own order. Marks hold no personal data and are
    # kept (one row an hour): a mark dropped while batches of its hour remain would hide them.
    (
        Only(
            Dialect.SQLITE,
            "CREATE TABLE event_hours (hour TEXT PRIMARY KEY, first_id INTEGER NOT NULL) WITHOUT ROWID",
        ),
        Only(
            Dialect.SQLITE,
            f"INSERT INTO event_hours (hour, first_id) SELECT substr(at, 1, {EVENT_HOUR_CHARS}), min(id) "
            "FROM event_batches GROUP BY 1",
        ),
        Only(Dialect.SQLITE, "DROP INDEX event_batches_at"),
    ),
)


def steps(dialect: Dialect) -> tuple[tuple[str, ...], ...]:
    """The schema steps in ``dialect`` (a step with nothing for it is kept, empty, so that
    the versions of both dialects count the same steps)."""
    return tuple(
        tuple(
            render(s.sql if isinstance(s, Only) else s, dialect)
            for s in step
            if not isinstance(s, Only) or s.dialect is dialect
        )
        for step in STEPS
    )


SQLITE_STEPS = steps(Dialect.SQLITE)
POSTGRES_STEPS = steps(Dialect.POSTGRES)
