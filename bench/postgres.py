"""PostgreSQL figures of ``make bench``: round trips per turn, counted on the wire.

A round trip is one write of the client to the server's socket: asyncpg sends each request
(a Parse/Describe, a Bind/Execute, a simple query, a reset) as one write ending in Sync and
waits for the answer before the next, so counting writes counts round trips, whatever path
made them (prepares, transactions, pool resets included). Two ways:

- for the ``rdv serve`` replicas of the bench, the kernel's count of data segments each of
  their sockets to PostgreSQL sent (``ss -tin``: ``data_segs_out``; TCP_NODELAY and messages
  far below the loopback MSS make it one segment per write), over the measured run;
- in this process (``measure``), every write of the store's connections per turn number of
  the scripted booking conversation, with the sequential turn latency.

``python -m bench.postgres [--conversations N]`` prints the scripted figures as JSON;
``--servers`` also runs the server phases alone (one SQLite server, then the bench's
PostgreSQL phase: one replica, two replicas, the fixed rate over both), for A/B comparisons.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg  # type: ignore[import-untyped]
import httpx

from bench.procs import process_tree

HERE = Path(__file__).resolve().parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"

# The booking conversation of bench/turns.lua: greeting with the intent, name, preference
# (the calendar is searched), choice (the slot is booked).
SCRIPT = (
    "bonjour je voudrais prendre rendez-vous",
    "Jean Dupont",
    "le {day} l'après-midi",
    "le premier",
)


def script_bodies(n: int) -> list[dict[str, Any]]:
    """The text API bodies of the ``n``-th scripted conversation: its preference names a day
    of its own (spread over the month), its first turn gives the caller's number."""
    bodies: list[dict[str, Any]] = [{"text": text.format(day=(n * 11) % 28 + 1)} for text in SCRIPT]
    bodies[0]["caller_phone"] = "+33612345678"
    return bodies


@contextlib.asynccontextmanager
async def text_api(data_dir: str, *, store: Any = None, span_exporter: Any = None,
                   ) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the text API of an app in this process (the bench practice, data in
    ``data_dir`` unless ``store`` is given): all telemetry on with its spans given to
    ``span_exporter``, else telemetry off."""
    from service.config import load_settings
    from service.http.app import create_app
    from telemetry import Telemetry

    traced = span_exporter is not None
    env = {"RDV_DATA_DIR": data_dir, "RDV_PRACTICE_FILE": str(HERE / "practice.toml"),
           "RDV_TELEMETRY": "true" if traced else "false"}
    settings = load_settings(env)
    telemetry = Telemetry.create(
        log_format=settings.log_format, log_pii=False, trace_secret=b"bench", version="bench",
        enabled=traced, span_exporter=span_exporter, log_stream=io.StringIO(),
    )
    app = create_app(settings, store=store, telemetry=telemetry, reaper=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rdv.bench") as client:
            yield client


_SOCKET = re.compile(r"pid=(\d+),")
_SEGMENTS = re.compile(r"\bdata_segs_out:(\d+)")


def segments_to_postgres(pids: list[int], port: int = 5432) -> int | None:
    """Data segments sent so far to PostgreSQL (``port``) by the sockets of ``pids`` and
    their children (None when ``ss`` cannot tell)."""
    wanted = {p for pid in pids for p in process_tree(pid)}
    try:
        out = subprocess.run(["ss", "-tinpH", f"dport = :{port}"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    total, owner = 0, False
    for line in out.splitlines():
        if not line.startswith(("\t", " ")):
            owner = any(int(p) in wanted for p in _SOCKET.findall(line))
            continue
        found = _SEGMENTS.search(line)
        if owner and found:
            total += int(found.group(1))
    return total


def round_trips_per_turn(before: int | None, after: int | None, turns: int) -> float | None:
    """Round trips per turn between two :func:`segments_to_postgres` readings."""
    if before is None or after is None or not turns:
        return None
    return round((after - before) / turns, 2)


class Writes:
    """How many requests the counted connections sent (round trips)."""

    def __init__(self) -> None:
        self.count = 0


def counting_connection(writes: Writes) -> type[asyncpg.Connection]:
    """An asyncpg connection class counting every write to the server into ``writes``."""

    class CountingConnection(asyncpg.Connection):  # type: ignore[misc]
        def __init__(self, protocol: Any, transport: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(protocol, transport, *args, **kwargs)
            write = transport.write

            def counted(data: Any) -> None:
                writes.count += 1
                write(data)

            # The protocol writes through this transport object: an instance attribute
            # shadows the method for every request of this connection.
            transport.write = counted

    return CountingConnection


def bench_url(base: str, schema: str) -> str:
    """``base`` with every connection's search_path on ``schema``."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


@contextlib.asynccontextmanager
async def _connected(base: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(base, timeout=3)
    try:
        yield conn
    finally:
        await conn.close()


async def admin(base: str, sql: str) -> None:
    """Run ``sql`` (statements separated by ``;``) on a connection of its own to ``base``."""
    async with _connected(base) as conn:
        await conn.execute(sql)


async def rows(base: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """The rows of ``sql`` with ``args``, on a connection of its own to ``base``."""
    async with _connected(base) as conn:
        return list(await conn.fetch(sql, *args))


@contextlib.asynccontextmanager
async def fresh_schema(base: str) -> AsyncIterator[str]:
    """A URL on a new, empty schema of ``base`` (dropped afterwards)."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    await admin(base, f"CREATE SCHEMA {schema}")
    try:
        yield bench_url(base, schema)
    finally:
        await admin(base, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _store(url: str, writes: Writes, timeout: float) -> Any:
    """The PostgreSQL store with counted connections."""
    from service.storage import postgres

    return postgres.PostgresStore(url, connection_class=counting_connection(writes), timeout=timeout)


async def measure(base: str = DEFAULT_URL, conversations: int = 30, warmup: int = 3) -> dict[str, Any]:
    """Play ``conversations`` scripted booking conversations one turn at a time through the
    text API on a fresh schema; round trips and wall/CPU time per turn number."""
    from service.config import Settings

    writes = Writes()
    async with fresh_schema(base) as url:
        store = _store(url, writes, Settings.store_timeout_seconds)
        trips: list[list[int]] = [[] for _ in SCRIPT]
        wall: list[list[float]] = [[] for _ in SCRIPT]
        cpu: list[list[float]] = [[] for _ in SCRIPT]
        async with text_api("/tmp", store=store) as client:
            for n in range(warmup + conversations):
                conv = f"pg{n}_{uuid.uuid4().hex[:6]}"
                for i, body in enumerate(script_bodies(n)):
                    before, t0, c0 = writes.count, time.perf_counter(), time.process_time()
                    answer = await client.post(f"/api/conversations/{conv}/messages", json=body)
                    c1, t1 = time.process_time(), time.perf_counter()
                    if answer.status_code != 200:
                        raise RuntimeError(f"turn {i + 1}: {answer.status_code} {answer.text}")
                    if n >= warmup:
                        trips[i].append(writes.count - before)
                        wall[i].append((t1 - t0) * 1000)
                        cpu[i].append((c1 - c0) * 1e6)
    per_turn = [statistics.mean(t) for t in trips]
    return {
        "postgres_scripted_round_trips_by_turn": [round(float(v), 2) for v in per_turn],
        "postgres_scripted_round_trips_per_turn": round(float(statistics.mean(per_turn)), 2),
        "postgres_sequential_turn_ms": round(statistics.mean([statistics.mean(w) for w in wall]), 3),
        "postgres_sequential_turn_ms_by_turn": [round(statistics.median(w), 3) for w in wall],
        # The whole turn in this one process: HTTP client, app and store.
        "postgres_sequential_cpu_us_per_turn": round(statistics.mean([statistics.mean(c) for c in cpu]), 1),
    }


def servers(seconds: int, rate: float, fill: float) -> dict[str, Any]:
    """The bench's PostgreSQL phase, nothing else, with the SQLite server (telemetry on) its
    one replica is compared with."""
    import tempfile

    from bench import __main__ as bench

    work = Path(tempfile.mkdtemp(prefix="rdv-bench-pg-"))
    # Pinned as ``python -m bench`` pins them (the SQLite server and the one-replica run).
    bench.PINNED = bench.pin_cores(True)
    res: dict[str, Any] = {"seconds": seconds, "prefill_share": fill, "pinned_cores": bench.PINNED}
    sink_port = bench.free_port()
    with bench.process([sys.executable, "-m", "bench.sink", str(sink_port)], dict(os.environ), None,
                       work / "sink.log"):
        port = bench.free_port()
        with bench.serve(sys.executable, port, bench.rdv_env(work / "data-on", True, sink_port),
                         work / "rdv-on.log") as proc:
            bench.prefill(port, fill, "on")
            sqlite = bench.Contender("postgres_sqlite", proc.pid, f"http://127.0.0.1:{port}")
            bench.postgres_phase(res, sys.executable, work, sink_port, seconds, rate, fill, sqlite)
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.postgres", description=__doc__)
    parser.add_argument("--url", default=os.environ.get("RDV_BENCH_POSTGRES_URL", DEFAULT_URL))
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument("--servers", action="store_true", help="run the server phases too")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--prefill", type=float, default=0.1)
    args = parser.parse_args(argv)
    if args.servers:
        print(json.dumps(servers(args.seconds, args.rate, args.prefill), indent=2))
    else:
        print(json.dumps(asyncio.run(measure(args.url, args.conversations)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
