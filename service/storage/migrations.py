"""Versioned schema steps; each store applies the ones its ``schema_version`` lacks, in order.

Never edit a released step: add a new one. SQLite applies them under ``BEGIN IMMEDIATE`` and
PostgreSQL under an advisory lock, so two replicas starting at once migrate exactly once.
"""

from __future__ import annotations

SQLITE_STEPS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE conversations (
            conv_id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            state TEXT NOT NULL,
            turn_count INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            state_entered_at TEXT NOT NULL,
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
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conv_id TEXT NOT NULL,
            turn INTEGER NOT NULL,
            request_key TEXT,
            text TEXT NOT NULL,
            reply TEXT NOT NULL,
            state_before TEXT NOT NULL,
            state_after TEXT NOT NULL,
            at TEXT NOT NULL,
            interrupted INTEGER NOT NULL DEFAULT 0,
            directive TEXT,
            trace_id TEXT
        )""",
        "CREATE INDEX turns_conv ON turns (conv_id, id)",
        "CREATE UNIQUE INDEX turns_request_key ON turns (conv_id, request_key) WHERE request_key IS NOT NULL",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conv_id TEXT NOT NULL,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
        "CREATE INDEX events_conv ON events (conv_id, id)",
        "CREATE INDEX events_kind_at ON events (kind, at)",
        """CREATE TABLE bookings (
            id TEXT PRIMARY KEY,
            slot_start TEXT NOT NULL,
            slot_end TEXT NOT NULL,
            conv_id TEXT NOT NULL,
            name TEXT NOT NULL,
            phone TEXT,
            created_at TEXT NOT NULL,
            cancelled_at TEXT
        )""",
        "CREATE UNIQUE INDEX bookings_active_slot ON bookings (slot_start) WHERE cancelled_at IS NULL",
        "CREATE INDEX bookings_phone ON bookings (phone, slot_start)",
        """CREATE TABLE call_reports (
            conv_id TEXT PRIMARY KEY,
            report TEXT NOT NULL,
            at TEXT NOT NULL
        )""",
        """CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            until TEXT NOT NULL
        )""",
    ),
    # 2: callers still choosing among proposed slots (slot holds).
    (
        "CREATE INDEX conversations_choosing ON conversations (last_seen_at) WHERE outcome IS NULL AND state = 'WAIT_CONFIRM'",
    ),
    # 3: Vapi signatures already accepted (replays refused, shared by replicas), and the row
    # readiness probes write.
    (
        "CREATE TABLE seen_signatures (key TEXT PRIMARY KEY, seen_at TEXT NOT NULL)",
        "CREATE INDEX seen_signatures_at ON seen_signatures (seen_at)",
        "CREATE TABLE readiness (instance TEXT PRIMARY KEY, at TEXT NOT NULL)",
    ),
    # 4: test traffic (rdv probe, rdv simulate), kept out of business numbers.
    (
        "ALTER TABLE conversations ADD COLUMN synthetic INTEGER NOT NULL DEFAULT 0",
    ),
    # 5: anonymous daily counts of conversations purged after RDV_RETENTION_DAYS.
    (
        """CREATE TABLE daily_counts (
            day TEXT NOT NULL,
            channel TEXT NOT NULL,
            outcome TEXT NOT NULL,
            synthetic INTEGER NOT NULL,
            conversations INTEGER NOT NULL,
            PRIMARY KEY (day, channel, outcome, synthetic)
        )""",
    ),
)

# PostgreSQL: the same tables and indexes as SQLite, with native types. Datetimes are
# ``timestamptz``; JSON stays text, byte for byte what the codec wrote, so both backends
# answer identically (and a ``::jsonb`` cast serves operators who query it).
POSTGRES_STEPS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE conversations (
            conv_id TEXT PRIMARY KEY,
            channel TEXT NOT NULL,
            state TEXT NOT NULL,
            turn_count INTEGER NOT NULL,
            created_at TIMESTAMPTZ NOT NULL,
            last_seen_at TIMESTAMPTZ NOT NULL,
            state_entered_at TIMESTAMPTZ NOT NULL,
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
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            conv_id TEXT NOT NULL,
            turn INTEGER NOT NULL,
            request_key TEXT,
            text TEXT NOT NULL,
            reply TEXT NOT NULL,
            state_before TEXT NOT NULL,
            state_after TEXT NOT NULL,
            at TIMESTAMPTZ NOT NULL,
            interrupted BOOLEAN NOT NULL DEFAULT FALSE,
            directive TEXT,
            trace_id TEXT
        )""",
        "CREATE INDEX turns_conv ON turns (conv_id, id)",
        "CREATE UNIQUE INDEX turns_request_key ON turns (conv_id, request_key) WHERE request_key IS NOT NULL",
        """CREATE TABLE events (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            conv_id TEXT NOT NULL,
            at TIMESTAMPTZ NOT NULL,
            kind TEXT NOT NULL,
            data TEXT NOT NULL
        )""",
        "CREATE INDEX events_conv ON events (conv_id, id)",
        "CREATE INDEX events_kind_at ON events (kind, at)",
        """CREATE TABLE bookings (
            id TEXT PRIMARY KEY,
            slot_start TIMESTAMPTZ NOT NULL,
            slot_end TIMESTAMPTZ NOT NULL,
            conv_id TEXT NOT NULL,
            name TEXT NOT NULL,
            phone TEXT,
            created_at TIMESTAMPTZ NOT NULL,
            cancelled_at TIMESTAMPTZ
        )""",
        "CREATE UNIQUE INDEX bookings_active_slot ON bookings (slot_start) WHERE cancelled_at IS NULL",
        "CREATE INDEX bookings_phone ON bookings (phone, slot_start)",
        "CREATE INDEX bookings_conv ON bookings (conv_id, created_at)",
        """CREATE TABLE call_reports (
            conv_id TEXT PRIMARY KEY,
            report TEXT NOT NULL,
            at TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            until TIMESTAMPTZ NOT NULL
        )""",
    ),
    # 2: callers still choosing among proposed slots (slot holds).
    (
        "CREATE INDEX conversations_choosing ON conversations (last_seen_at) WHERE outcome IS NULL AND state = 'WAIT_CONFIRM'",
    ),
    # 3: Vapi signatures already accepted, and the row readiness probes write.
    (
        "CREATE TABLE seen_signatures (key TEXT PRIMARY KEY, seen_at TIMESTAMPTZ NOT NULL)",
        "CREATE INDEX seen_signatures_at ON seen_signatures (seen_at)",
        "CREATE TABLE readiness (instance TEXT PRIMARY KEY, at TIMESTAMPTZ NOT NULL)",
    ),
    # 4: test traffic (rdv probe, rdv simulate), kept out of business numbers.
    (
        "ALTER TABLE conversations ADD COLUMN synthetic BOOLEAN NOT NULL DEFAULT FALSE",
    ),
    # 5: anonymous daily counts of conversations purged after RDV_RETENTION_DAYS.
    (
        """CREATE TABLE daily_counts (
            day DATE NOT NULL,
            channel TEXT NOT NULL,
            outcome TEXT NOT NULL,
            synthetic BOOLEAN NOT NULL,
            conversations INTEGER NOT NULL,
            PRIMARY KEY (day, channel, outcome, synthetic)
        )""",
    ),
)
