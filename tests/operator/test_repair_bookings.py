"""Bookings no caller heard confirmed (left by a crash of an older version, which booked and
saved the turn in two transactions) are reported at start-up and freed by
``rdv repair-bookings``; confirmed bookings are never touched."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from service.engine.model import Conversation, Slot
from service.engine.states import Channel
from service.storage import open_store
from service.storage.base import BookingWrite, EventRecord
from tests.reliability.procs import base_env
from tests.support import NOW

ROOT = Path(__file__).resolve().parents[2]


def rdv(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``rdv <args>`` as its own process on the SQLite file in ``data_dir``."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], cwd=ROOT, env=base_env(data_dir, {}),
        capture_output=True, text=True, timeout=60, check=False,
    )


async def seed(data_dir: Path) -> None:
    """One confirmed booking and one the old two-transaction path left without its turn."""
    store = open_store(None, data_dir)
    await store.open()
    try:
        for n, (conv_id, confirmed) in enumerate((("conv_told", True), ("conv_crashed", False))):
            start = NOW + timedelta(days=2, hours=n)
            slot = Slot(start, start + timedelta(minutes=30))
            events = [EventRecord(conv_id, NOW, "AppointmentConfirmed",
                                  {"slot_label": "", "name": "Jean Dupont", "slot_start": start.isoformat()})]
            await store.save_turn(
                Conversation.new(conv_id, Channel.TEXT, NOW), None, {}, None, events if confirmed else [],
                booking=BookingWrite(f"booking-{conv_id}", slot, conv_id, "Jean Dupont", "+33612345678", NOW),
            )
    finally:
        await store.close()


async def active(data_dir: Path) -> list[str]:
    """Ids of the active bookings, through the store."""
    store = open_store(None, data_dir)
    await store.open()
    try:
        out = []
        for conv_id in ("conv_told", "conv_crashed"):
            timeline = await store.timeline(conv_id)
            assert timeline is not None
            out += [b["id"] for b in timeline["bookings"] if b["cancelled_at"] is None]
        return out
    finally:
        await store.close()


async def test_start_up_reports_and_repair_frees_unconfirmed_bookings(tmp_path: Path, make_live: Any) -> None:
    """The service logs the unconfirmed booking when it starts; ``--dry-run`` lists it and
    exits 1; the repair frees it and only it; a second dry run finds nothing."""
    await seed(tmp_path)
    async with make_live() as live:
        pass
    lines = [line for line in live.logs.getvalue().splitlines() if "unconfirmed_bookings" in line]
    assert len(lines) == 1 and "count=1" in lines[0] and "conv_crashed" in lines[0], live.logs.getvalue()

    listed = rdv(tmp_path, "repair-bookings", "--dry-run")
    assert listed.returncode == 1, listed.stderr
    assert "booking-conv_crashed" in listed.stdout and "booking-conv_told" not in listed.stdout
    assert sorted(await active(tmp_path)) == ["booking-conv_crashed", "booking-conv_told"]

    repaired = rdv(tmp_path, "repair-bookings")
    assert repaired.returncode == 0 and "freed 1" in repaired.stderr, repaired.stderr
    assert await active(tmp_path) == ["booking-conv_told"]
    again = rdv(tmp_path, "repair-bookings", "--dry-run")
    assert again.returncode == 0 and again.stdout == "", (again.stdout, again.stderr)
