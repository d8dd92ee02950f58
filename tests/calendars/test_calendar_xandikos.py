"""Cross-check against a second CalDAV server, Xandikos: discovery by display name, busy
times, the booking's event, the race with the secretary's agenda, and the cancellation."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import caldav
import httpx
import pytest

from tests.calendars.conftest import PASSWORD, PASSWORD_ENV, USER, events_of, practice_file
from tests.support import free_port

BOOK = "bonjour je voudrais prendre rendez-vous"
PHONE = "+33612345678"


@pytest.fixture(scope="module")
def xandikos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Xandikos server with its default calendar ("calendar"); its URL."""
    root = tmp_path_factory.mktemp("xandikos")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = (root / "xandikos.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "xandikos.web", "--defaults", "-d", str(root / "data"), "--state-dir",
         str(root / "state"), "-l", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, (root / "xandikos.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(url, timeout=1.0)
                break
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def test_xandikos_books_races_and_cancels(
    make_live: Any, tmp_path: Path, xandikos: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same service against Xandikos: its all-day event blocks the day, a booking is an
    event another client reads, the secretary's event on a proposed slot makes the booking lose
    the race, and a cancellation removes rdv's event only."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    with caldav.DAVClient(url=xandikos, username=USER, password=PASSWORD) as client:
        await _book_race_cancel(make_live, tmp_path, xandikos, client)


async def _book_race_cancel(make_live: Any, tmp_path: Path, xandikos: str, client: caldav.DAVClient) -> None:
    [agenda] = client.principal().calendars()
    agenda.save_event(dtstart=date(2026, 3, 3), dtend=date(2026, 3, 4), summary="Congrès", uid="congress")
    path = practice_file(tmp_path, xandikos, "calendar")
    async with make_live({"RDV_PRACTICE_FILE": str(path), "RDV_SLOT_HOLD_SECONDS": "0"}) as live:
        for text in (BOOK, "Jean Dupont", "pas de préférence"):
            await live.say("conv_x", text, caller_phone=PHONE)
        proposed = (await live.services.store.load("conv_x")).conversation.context.proposed
        assert all(s.start.date() > date(2026, 3, 3) for s in proposed)  # the congress day is blocked
        agenda.save_event(dtstart=proposed[0].start, dtend=proposed[0].end, summary="Guichet", uid="desk")
        lost = await live.say("conv_x", "le premier", caller_phone=PHONE)
        assert lost["state"] == "WAIT_CONFIRM"
        again = (await live.services.store.load("conv_x")).conversation.context.proposed
        assert (await live.say("conv_x", "le premier", caller_phone=PHONE))["state"] == "CONFIRMED"
        ours = [e for e in events_of(agenda) if str(e["UID"]).startswith("rdv-")]
        assert [e["DTSTART"].dt for e in ours] == [again[0].start] and "Jean Dupont" in str(ours[0]["SUMMARY"])
        assert (await live.say("conv_c", "je voudrais annuler mon rendez-vous",
                               caller_phone=PHONE))["state"] == "CANCEL_CONFIRM"
        assert (await live.say("conv_c", "oui", caller_phone=PHONE))["state"] == "CANCELLED"
    assert sorted(str(e["UID"]) for e in events_of(agenda)) == ["congress", "desk"]
