"""A real Radicale CalDAV server on 127.0.0.1 for the calendar tests, a fresh calendar per
test (made, and read back, with the ``caldav`` client library), and practice files using it."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import caldav
import httpx
import pytest

from service.config import load_practice
from service.engine.practice import Practice
from tests.support import free_port

START_SECONDS = 20.0
USER = "secretariat"
PASSWORD = "not-checked-by-radicale"
PASSWORD_ENV = "RDV_CALDAV_PASSWORD"


class Radicale:
    """One ``python -m radicale`` process on a free loopback port; restartable on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen[bytes] | None = None
        self._client: caldav.DAVClient | None = None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        log = (self.root / "radicale.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "radicale", f"--storage-filesystem-folder={self.root / 'collections'}",
             "--auth-type=none", f"--server-hosts=127.0.0.1:{self.port}", "--logging-level=warning"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"radicale exited: {(self.root / 'radicale.log').read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(self.url, timeout=1.0)
                return
            time.sleep(0.1)
        raise AssertionError("radicale did not start")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and close the test's own client."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def client(self) -> caldav.DAVClient:
        """Another CalDAV client (the secretary's agenda), from the caldav library; one per
        server, closed when the server stops."""
        if self._client is None:
            self._client = caldav.DAVClient(url=self.url, username=USER, password=PASSWORD)
        return self._client

    def new_calendar(self, name: str | None = None) -> Any:
        """A fresh calendar in the user's home, made with the caldav library."""
        principal = self.client().principal()
        return principal.make_calendar(name=name or f"Cabinet {uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Radicale]:
    """One Radicale server for the whole session (each test makes its own calendar)."""
    server = Radicale(tmp_path_factory.mktemp("radicale"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def agenda(radicale: Radicale) -> Any:
    """A fresh, empty calendar of the practice on the session's server."""
    return radicale.new_calendar()


PRACTICE_TOML = """
[practice]
name = "{name}"
address = "12 rue de la République, 69002 Lyon"
transfer_number = "+33478000000"
timezone = "Europe/Paris"
slot_minutes = 30
min_lead_minutes = 120
horizon_days = {horizon}

[hours]
monday = ["08:30-12:00", "14:00-18:30"]
tuesday = ["08:30-12:00", "14:00-18:30"]
wednesday = ["08:30-12:00"]
thursday = ["08:30-12:00", "14:00-18:30"]
friday = ["08:30-12:00", "14:00-17:00"]
saturday = ["09:00-12:00"]

[calendar]
kind = "caldav"
url = "{url}"
calendar = "{calendar}"
username = "{user}"
password_env = "{password_env}"
"""


def practice_file(tmp_path: Path, url: str, calendar: str, *, horizon: int = 14, name: str | None = None) -> Path:
    """A practice TOML whose ``[calendar]`` is ``calendar`` (display name or path) at ``url``."""
    path = tmp_path / f"practice-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(PRACTICE_TOML.format(
        name=name or f"Cabinet {uuid.uuid4().hex[:6]}", url=url, calendar=calendar, user=USER,
        password_env=PASSWORD_ENV, horizon=horizon,
    ), "utf-8")
    return path


def practice_for(tmp_path: Path, radicale: Radicale, agenda: Any, **kwargs: Any) -> tuple[Path, Practice]:
    """The practice file connected to ``agenda`` by its display name, and the parsed practice."""
    path = practice_file(tmp_path, radicale.url, str(agenda.get_display_name()), **kwargs)
    return path, load_practice(path)


def events_of(agenda: Any) -> list[Any]:
    """Every VEVENT the calendar holds, read with the caldav library (icalendar components)."""
    return [c for event in agenda.events() for c in event.icalendar_instance.walk("VEVENT")]


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in March 2026, Paris (the tests' fixed clock is Tuesday 3 March, 09:00)."""
    from tests.support import PARIS

    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def captured() -> Any:
    """Factory of captured telemetry (logs, spans, a fresh metric registry)."""
    from tests.telemetry.conftest import Captured

    return Captured


@pytest.fixture
async def faulty_store(tmp_path: Path) -> Any:
    """A fault injector around a real SQLite store in ``tmp_path``."""
    from service.storage import open_store
    from tests.reliability.conftest import FaultyStore

    return FaultyStore(open_store(None, tmp_path))
