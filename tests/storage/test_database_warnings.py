"""What the store tells the operator about the database's own configuration: PostgreSQL
without autovacuum (for the server or for rdv's busy tables) lets dead row versions pile up
and turns slow down; SQLite sets everything it relies on itself. On real databases: the
PostgreSQL cases read the server's settings and change table options in a fresh schema."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from service.storage.postgres import BUSY_TABLES, Autovacuum, PostgresStore
from tests.reliability.procs import base_env
from tests.storage.test_contract import Backend, backend_of


@pytest.fixture
async def pg(tmp_path: Path, postgres_problem: str | None) -> AsyncIterator[Backend]:
    """A fresh PostgreSQL schema."""
    async with backend_of("postgres", tmp_path, postgres_problem) as found:
        yield found


async def _fetch(backend: Backend, sql: str) -> list[asyncpg.Record]:
    assert backend.database_url is not None
    conn = await asyncpg.connect(backend.database_url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def _server(backend: Backend) -> tuple[bool, bool]:
    """The server's ``autovacuum`` and ``track_counts``, read apart from the store."""
    row = (await _fetch(backend, "SELECT current_setting('autovacuum') AS a, current_setting('track_counts') AS t"))[0]
    return row["a"] == "on", row["t"] == "on"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_sqlite_store_has_nothing_to_say(kind: str, tmp_path: Path) -> None:
    async with backend_of(kind, tmp_path, None) as backend:
        store = await backend.opened()
        assert await store.warnings() == []


@pytest.mark.postgres
async def test_postgres_names_autovacuum_off_for_the_server_or_for_busy_tables(pg: Backend) -> None:
    backend = pg
    store = await backend.opened()
    autovacuum, counts = await _server(backend)
    if not autovacuum:
        # This server runs without autovacuum: that is the one thing to say, table options aside.
        (warning,) = await store.warnings()
        assert "autovacuum is off on this server" in warning
        assert "VACUUM ANALYZE" in warning
        return
    if not counts:
        (warning,) = await store.warnings()
        assert "track_counts is off" in warning
        return
    assert await store.warnings() == []
    await _fetch(backend, "ALTER TABLE bookings SET (autovacuum_enabled = off); "
                          "ALTER TABLE conversations SET (autovacuum_enabled = false, fillfactor = 90)")
    (warning,) = await store.warnings()
    assert "tables bookings, conversations (autovacuum_enabled = false)" in warning
    await _fetch(backend, "ALTER TABLE bookings RESET (autovacuum_enabled); "
                          "ALTER TABLE conversations RESET (autovacuum_enabled)")
    assert await store.warnings() == []


@pytest.mark.postgres
async def test_every_spelling_of_false_the_server_keeps_is_read_as_off(pg: Backend) -> None:
    """Table options as the server stores them (as written), read by the store whatever the
    server's own autovacuum."""
    store = await pg.opened()
    assert isinstance(store, PostgresStore)
    assert (await store.autovacuum()).tables_off == ()  # no options at all
    off = {"conversations": "off", "turns": "false", "events": "0", "bookings": "no", "booking_changes": "fa"}
    on = {"bookings_generation": "on"}
    for table, value in {**off, **on}.items():
        await _fetch(pg, f"ALTER TABLE {table} SET (autovacuum_enabled = {value}, fillfactor = 95)")
    tables_off = (await store.autovacuum()).tables_off
    assert tables_off == tuple(sorted(off))
    (warning,) = Autovacuum(True, True, tables_off).warnings()
    assert f"tables {', '.join(sorted(off))} (" in warning
    assert "bookings_generation" not in warning
    for table in BUSY_TABLES:
        await _fetch(pg, f"ALTER TABLE {table} RESET (autovacuum_enabled)")
    tables_off = (await store.autovacuum()).tables_off  # fillfactor=95 stays
    assert tables_off == ()
    assert Autovacuum(True, True, tables_off).warnings() == []


@pytest.mark.postgres
async def test_check_config_prints_the_warning_and_still_passes(pg: Backend, tmp_path: Path) -> None:
    """``rdv check-config`` on PostgreSQL: valid (exit 0), and the database's warning on
    stderr when there is one, as ``rdv serve`` logs it (``config_warning``)."""
    assert pg.database_url is not None
    autovacuum, counts = await _server(pg)
    env = base_env(tmp_path / "data", {"RDV_DATABASE_URL": pg.database_url})
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "service.cli", "check-config"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "configuration valid" in done.stdout
    warned = [line for line in done.stderr.splitlines() if line.startswith("warning: PostgreSQL")]
    assert len(warned) == (0 if autovacuum and counts else 1), done.stderr
