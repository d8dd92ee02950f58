"""Constants shared by the test modules."""

from __future__ import annotations

import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any
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


def wait_ready(base_url: str, proc: subprocess.Popen[Any], seconds: float = 30) -> None:
    """Poll ``/readyz`` until it answers 200; fail when ``proc`` exits first or ``seconds`` pass."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and proc.poll() is None, f"{base_url} did not become ready"
        time.sleep(0.1)


STORE_TABLES = ("conversations", "turns", "events", "bookings", "call_reports")


def row_counts(path: Path) -> dict[str, int]:
    """Rows per table of the SQLite store file at ``path`` (read through its own connection)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in STORE_TABLES}
    finally:
        conn.close()
