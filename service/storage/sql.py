"""SQL text shared by the SQLite and PostgreSQL stores, and the checks a turn's save makes.

Statements are written once with ``?`` placeholders and type markers (``{ts}``, ``{bool}``…)
and rendered per dialect: SQLite keeps ``?``, PostgreSQL numbers them ``$n`` (from any
first number, so that a statement can be embedded in a larger one). The save of a turn
fails for the same reasons on both stores, checked in the same order (a duplicate turn, then
the conversation's version, then the appointments it cancels, then the slot it books):
:func:`conflict` turns the first failed check into the store error the turn loop expects.
"""

from __future__ import annotations

import enum
import functools
import re

from service.storage.base import (
    BookingGoneError,
    ConcurrentTurnError,
    DuplicateTurnError,
    SlotTakenError,
    StoreError,
)
from service.storage.codec import COLUMNS


class Dialect(enum.Enum):
    """The two SQL dialects the stores speak."""

    SQLITE = "sqlite"
    POSTGRES = "postgres"


# Column types and literals that differ between the dialects (SQLite keeps datetimes as UTC
# ISO text, which sorts in time order, and booleans as 0/1).
_MARKERS: dict[str, tuple[str, str]] = {
    "ts": ("TEXT", "TIMESTAMPTZ"),
    "date": ("TEXT", "DATE"),
    "bool": ("INTEGER", "BOOLEAN"),
    "false": ("0", "FALSE"),
    "serial": ("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
}
_MARKER = re.compile(r"\{(" + "|".join(_MARKERS) + r")\}")
# A ``?`` outside quoted text; quoted text is matched first and kept as it is.
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\?")


@functools.lru_cache(maxsize=512)
def render(sql: str, dialect: Dialect, first: int = 1) -> str:
    """``sql`` in ``dialect``: type markers replaced, and for PostgreSQL the ``?``
    placeholders numbered ``$first``, ``$first+1``… in order."""
    column = 0 if dialect is Dialect.SQLITE else 1
    text = _MARKER.sub(lambda m: _MARKERS[m.group(1)][column], sql)
    if dialect is Dialect.SQLITE:
        return text
    number = first - 1

    def numbered(match: re.Match[str]) -> str:
        nonlocal number
        if match.group(0) != "?":
            return match.group(0)
        number += 1
        return f"${number}"

    return _PLACEHOLDER.sub(numbered, text)


@functools.lru_cache(maxsize=512)
def placeholders(sql: str) -> int:
    """How many ``?`` placeholders ``sql`` has (outside quoted text)."""
    return sum(1 for m in _PLACEHOLDER.finditer(sql) if m.group(0) == "?")


# -- the statements of a turn's save ------------------------------------------------------------
# Parameters: the turn's conversation id and request key.
DUPLICATE_TURN = "SELECT 1 FROM turns WHERE conv_id = ? AND request_key = ?"
# Parameters: COLUMNS, then meta (JSON), then one per extra column; version 1.
def insert_conversation(*extra: str) -> str:
    """The insert of a new conversation (version 1), with a dialect's ``extra`` columns."""
    columns = (*COLUMNS, "meta", *extra)
    return (
        f"INSERT INTO conversations ({', '.join(columns)}, version) "
        f"VALUES ({', '.join('?' for _ in columns)}, 1)"
    )


# Parameters: COLUMNS but conv_id, meta, one per extra column, the new version; then
# (VERSION_CHECK) the conversation id and the version the turn loaded.
VERSION_CHECK = "conv_id = ? AND version = ?"


def update_conversation(*extra: str, kept: tuple[str, ...] = ()) -> str:
    """The version-checked update of a conversation, with a dialect's ``extra`` columns:
    it changes one row exactly when nobody saved the conversation since it was loaded.
    The ``kept`` columns are not set but compared (parameters after VERSION_CHECK's): the
    row changes only when they already hold the values given, and their indexes are left
    untouched."""
    sets = ", ".join(f"{c} = ?" for c in (*COLUMNS[1:], "meta", *extra, "version") if c not in kept)
    return f"UPDATE conversations SET {sets} WHERE {VERSION_CHECK}" + "".join(f" AND {c} IS ?" for c in kept)


TURN_COLUMNS = (
    "conv_id", "turn", "request_key", "text", "reply", "state_before", "state_after", "at",
    "interrupted", "directive", "trace_id",
)
INSERT_TURN = f"INSERT INTO turns ({', '.join(TURN_COLUMNS)}) VALUES ({', '.join('?' for _ in TURN_COLUMNS)})"
INSERT_EVENT = "INSERT INTO events (conv_id, at, kind, data) VALUES (?, ?, ?, ?)"
# Parameters: when, booking id. Affects one row exactly when the appointment is still active.
CANCEL_BOOKING = "UPDATE bookings SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL"
# Parameters: id, slot start and end, conversation id, name, phone, when. The partial unique
# index on active slot starts refuses a second active booking of one slot.
INSERT_BOOKING = (
    "INSERT INTO bookings (id, slot_start, slot_end, conv_id, name, phone, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class Conflict(enum.Enum):
    """Why a turn's save wrote nothing, in the order the checks are made."""

    DUPLICATE = "duplicate"  # a turn with this request key is stored
    VERSION = "version"  # the conversation changed (or, for a new one, exists)
    CANCEL = "cancel"  # the appointment the turn cancels is no longer active
    REPLACED = "replaced"  # the appointment a move replaces is no longer active
    SLOT = "slot"  # the slot the turn books is taken


def conflict(
    found: Conflict,
    *,
    conv_id: str,
    new: bool,
    request_key: str | None = None,
    booking_id: str | None = None,
    slot_start: str | None = None,
) -> StoreError:
    """The store error for ``found`` (``new``: the turn created the conversation;
    ``booking_id``: the appointment cancelled or replaced; ``slot_start``: ISO start of the
    booked slot)."""
    if found is Conflict.DUPLICATE:
        return DuplicateTurnError(f"turn {request_key!r} already stored")
    if found is Conflict.VERSION:
        if new:
            return ConcurrentTurnError(f"conversation {conv_id!r} already exists")
        return ConcurrentTurnError(f"conversation {conv_id!r} changed under this turn")
    if found in (Conflict.CANCEL, Conflict.REPLACED):
        return BookingGoneError(f"booking {booking_id!r} is no longer active")
    return SlotTakenError(f"slot {slot_start} is taken")
