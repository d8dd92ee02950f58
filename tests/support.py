"""Constants shared by the test modules."""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
# A Tuesday morning in term time: the practice is open, no holiday nearby.
NOW = datetime(2026, 3, 3, 9, 0, tzinfo=PARIS)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


STORE_TABLES = ("conversations", "turns", "events", "bookings", "call_reports")


def row_counts(path: Path) -> dict[str, int]:
    """Rows per table of the SQLite store file at ``path`` (read through its own connection)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in STORE_TABLES}
    finally:
        conn.close()
