"""Readiness means "a turn could be saved now": under an exclusive lock that another process
holds on the SQLite file, ``/readyz`` of a real ``rdv serve`` is 503 within its deadline while
``/healthz`` stays fast, and it is ready again once the lock is released."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.reliability.procs import Replica

# Long enough that /healthz, asked meanwhile, answers first even on a loaded machine.
DEADLINE = 3.0
# The lock holder: takes SQLite's write lock (EXCLUSIVE) and keeps it until stdin closes.
HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT INTO readiness (instance, at) VALUES ('lock-holder', 'now') "
             "ON CONFLICT(instance) DO UPDATE SET at = excluded.at")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Another process holding the write lock of the SQLite file at ``path``."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(10)
        holder.stdout.close()


def get(url: str) -> tuple[int, str]:
    """(status, body) of one GET."""
    response = httpx.get(url, timeout=30)
    return response.status_code, response.text


@pytest.mark.slow
def test_readyz_fails_under_a_write_lock_and_healthz_stays_fast(spawn: Callable[..., Replica], tmp_path: Path) -> None:
    """With another process holding the file's write lock: /readyz answers 503 naming the
    cause within its deadline, /healthz answers 200 at once meanwhile; both recover."""
    replica = spawn({"RDV_READY_TIMEOUT_SECONDS": str(DEADLINE)})
    assert get(f"{replica.url}/readyz")[0] == 200
    with exclusive_lock(tmp_path / "data" / "rdv.sqlite3"), ThreadPoolExecutor(2) as pool:
        ready = pool.submit(get, f"{replica.url}/readyz")
        time.sleep(0.2)  # the readiness probe is now waiting for the lock
        health = get(f"{replica.url}/healthz")
        health_first = not ready.done()
        # Answered while the lock is still held: the probe's own deadline, not the lock's end.
        status, body = ready.result()
    assert status == 503, body
    assert "write" in body, body
    assert health[0] == 200 and health_first, "/healthz waited for the store"
    assert get(f"{replica.url}/readyz")[0] == 200
