"""Data lifecycle commands as an operator runs them: ``rdv migrate`` says what it touched,
``rdv backup`` copies a live SQLite store consistently, or says how to back up PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from service.storage.migrations import SQLITE_STEPS
from tests.reliability.procs import Replica, base_env

ROOT = Path(__file__).resolve().parents[2]
BOOK = "bonjour je voudrais prendre rendez-vous"


def rdv(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``rdv <args>`` as its own process."""
    return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_migrate_reports_the_database_and_its_schema_version(tmp_path: Path) -> None:
    """A fresh data directory: the file is created and named, with the last schema version."""
    data = tmp_path / "data"
    done = rdv(base_env(data, {}), "migrate")
    assert done.returncode == 0, done.stderr
    steps = len(SQLITE_STEPS)
    assert done.stdout.strip() == f"SQLite {(data / 'rdv.sqlite3').resolve()}: schema version {steps} of {steps}"


def test_backup_copies_a_store_in_use_and_refuses_to_overwrite(tmp_path: Path) -> None:
    """While ``rdv serve`` runs, ``rdv backup`` writes a consistent copy holding the booking just
    made; a second backup to the same file is refused unless --force; PostgreSQL gets pg_dump."""
    replica = Replica("rdv", tmp_path, {})
    replica.start()
    try:
        for text in (BOOK, "Jean Dupont", "pas de préférence", "le premier"):
            answer = httpx.post(f"{replica.url}/api/conversations/conv_saved/messages",
                                json={"text": text, "caller_phone": "+33612345678"}, timeout=10).json()
        assert answer["state"] == "CONFIRMED"
        dest = tmp_path / "backups" / "rdv.sqlite3"
        env = base_env(tmp_path / "data", {})
        done = rdv(env, "backup", str(dest))
        assert done.returncode == 0, done.stderr
        assert f"to {dest}" in done.stdout and f"schema version {len(SQLITE_STEPS)}" in done.stdout
        again = rdv(env, "backup", str(dest))
        assert again.returncode == 2 and "--force" in again.stderr
        assert rdv(env, "backup", str(dest), "--force").returncode == 0
    finally:
        replica.stop()
    with sqlite3.connect(dest) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT state FROM conversations WHERE conv_id = 'conv_saved'").fetchone() == ("CONFIRMED",)
        assert copy.execute("SELECT count(*) FROM bookings WHERE cancelled_at IS NULL").fetchone() == (1,)
    pg = rdv(base_env(tmp_path / "data", {"RDV_DATABASE_URL": "postgresql://rdv@db.internal/rdv"}), "backup", "x")
    assert pg.returncode == 1 and "pg_dump" in pg.stderr and not (ROOT / "x").exists()


def test_forget_erases_a_caller_from_a_served_store(tmp_path: Path) -> None:
    """``rdv forget "06 12 34 56 78"`` on the store of a running service: the booking keeps its
    slot but not the name or number, the transcript is gone, the stats count the same."""
    replica = Replica("rdv", tmp_path, {})
    replica.start()
    try:
        for text in (BOOK, "Jean Dupont", "pas de préférence", "le premier"):
            httpx.post(f"{replica.url}/api/conversations/conv_gone/messages",
                       json={"text": text, "caller_phone": "+33612345678"}, timeout=10)
        before = httpx.get(f"{replica.url}/api/stats/bookings", timeout=10).json()
        done = rdv(base_env(tmp_path / "data", {}), "forget", "06 12 34 56 78")
        after = httpx.get(f"{replica.url}/api/stats/bookings", timeout=10).json()
        timeline = httpx.get(f"{replica.url}/api/conversations/conv_gone", timeout=10).text
    finally:
        replica.stop()
    assert done.returncode == 0, done.stderr
    assert "forgot +33612345678: 1 conversation(s), 1 booking(s)" in done.stdout
    assert "Dupont" not in timeline and "+33612345678" not in timeline
    assert (after["total_sessions"], after["confirmed_bookings"]) == (before["total_sessions"],
                                                                      before["confirmed_bookings"])
    assert after["calendar"]["booked"] == before["calendar"]["booked"] == 1
    bad = rdv(base_env(tmp_path / "data", {}), "forget", "not a number")
    assert bad.returncode == 2 and "not a valid phone number" in bad.stderr


def test_the_reaper_purges_past_the_retention_and_rdv_purge_reports(make_live: Any, tmp_path: Path) -> None:
    """With RDV_RETENTION_DAYS=30, a booked call 31 days old is purged by the reaper (once an
    hour), its day's count kept; ``rdv purge`` on the file then finds nothing left to purge."""

    async def drive() -> tuple[int, Any, list[Any]]:
        async with make_live({"RDV_RETENTION_DAYS": "30"}) as live:
            for text in (BOOK, "Jean Dupont", "pas de préférence", "le premier"):
                answer = await live.say("conv_old", text, caller_phone="+33612345678")
            assert answer["state"] == "CONFIRMED"
            live.services.clock.advance(days=31)
            await live.services.turns.reap("test")
            gone = await live.services.store.load("conv_old")
            counts = await live.services.store.daily_counts()
            after = (await live.client.get("/api/stats/bookings?window=31d")).json()["total_sessions"]
            return after, gone, counts

    after, gone, counts = asyncio.run(drive())
    assert gone is None and after == 0
    assert [(c[1], c[2], c[4]) for c in counts] == [("text", "confirmed", 1)]
    done = rdv(base_env(tmp_path, {"RDV_RETENTION_DAYS": "30"}), "purge")
    assert done.returncode == 0, done.stderr
    assert "purged 0 conversation(s) older than 30 days" in done.stdout
