"""Whole calls scripted through the text API (real HTTP into the ASGI app, a real SQLite
file): what each class of dialogue test drives and checks."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from typing import Any

from service.storage import SQLITE_FILE
from tests.conftest import Live
from tests.support import PARIS

PHONE = "+33612345678"
OTHER_PHONE = "+33698765432"
# States that ask for one piece of information: once answered, never asked again.
QUESTIONS = ("QUALIF_NAME", "QUALIF_PREF", "QUALIF_PHONE")


def anything(moment: datetime) -> bool:
    """Any slot is fine."""
    return True


@dataclass(frozen=True)
class Script:
    """One scripted call: what the caller says, and what must hold at the end.

    ``fits`` must hold for the booked slot's local start; ``name`` is the name the booking
    carries and the read-back says (``for_someone_else``: "pour …", else "au nom de …");
    ``never`` are states the call must not visit (what was given early is not asked).
    """

    id: str
    turns: tuple[str, ...]
    name: str | None = "Jean Dupont"
    fits: Callable[[datetime], bool] = anything
    final: str = "CONFIRMED"
    never: frozenset[str] = frozenset()
    someone_else: bool = False
    phone: str | None = PHONE
    slots_in: int | None = None  # turns until slots are proposed (1 = the opening)
    last_proposal_fits: bool = True  # every slot of the last proposal honours ``fits``
    says: str | None = None  # a sentence some reply of the call must contain


@dataclass
class Call:
    """The answers of one call, and its stored timeline."""

    conv_id: str
    answers: list[dict[str, Any]] = field(default_factory=list)
    timeline: dict[str, Any] = field(default_factory=dict)
    bookings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Any]:
        """The last answer."""
        return self.answers[-1]

    def events(self, kind: str) -> list[dict[str, Any]]:
        """The stored events of ``kind``, data only."""
        return [e["data"] for e in self.timeline["events"] if e["kind"] == kind]

    @property
    def path(self) -> list[str]:
        """Every state entered, in order, from START."""
        return ["START", *(e["to_state"] for e in self.events("StateChanged"))]

    def active_bookings(self) -> list[dict[str, Any]]:
        """This conversation's bookings that are not cancelled, as stored (name and phone in
        clear: the timeline may mask them)."""
        return [b for b in self.bookings if b["cancelled_at"] is None]

    def booked_start(self) -> datetime:
        """The local start of the one appointment this call booked."""
        (booking,) = self.active_bookings()
        return datetime.fromisoformat(booking["slot_start"]).astimezone(PARIS)

    def proposed(self) -> list[datetime]:
        """Every slot proposed during the call, local."""
        return [datetime.fromisoformat(s).astimezone(PARIS) for e in self.events("SlotsSent") for s in e["slot_starts"]]


async def drive(live: Live, conv_id: str, turns: tuple[str, ...] | list[str], **extra: Any) -> Call:
    """Say every turn in order; return the answers and the stored timeline."""
    call = Call(conv_id)
    for text in turns:
        call.answers.append(await live.say(conv_id, text, **extra))
    response = await live.client.get(f"/api/conversations/{conv_id}")
    assert response.status_code == 200, response.text
    call.timeline = response.json()
    call.bookings = stored_bookings(live, conv_id)
    return call


def stored_bookings(live: Live, conv_id: str) -> list[dict[str, Any]]:
    """The bookings a conversation made, read from the SQLite file with the standard library."""
    conn = sqlite3.connect(live.services.settings.data_dir / SQLITE_FILE)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT * FROM bookings WHERE conv_id = ? ORDER BY slot_start", (conv_id,)).fetchall()
        return [dict(r) for r in rows]
    finally:
        conn.close()


def asked_twice(path: list[str]) -> list[str]:
    """The questions asked again after the caller had answered them (left the state)."""
    again: list[str] = []
    for question in QUESTIONS:
        left = False
        for previous, state in pairwise(path):
            if previous == question and state != question:
                left = True
            elif state == question and left:
                again.append(question)
    return again


async def run_script(live: Live, script: Script) -> Call:
    """Drive ``script`` and check everything it promises."""
    extra: dict[str, Any] = {"caller_phone": script.phone} if script.phone else {}
    call = await drive(live, f"conv_{script.id}", script.turns, **extra)
    assert call.final["state"] == script.final, (script.id, call.answers)
    assert not asked_twice(call.path), (script.id, call.path)
    assert not set(call.path) & script.never, (script.id, call.path)
    if script.slots_in is not None:
        first = next(i for i, a in enumerate(call.answers, 1) if a["state"] == "WAIT_CONFIRM")
        assert first == script.slots_in, (script.id, call.answers)
    if script.says is not None:
        assert any(script.says in a["reply"] for a in call.answers), (script.id, call.answers)
    if script.last_proposal_fits and call.events("SlotsSent"):
        last = [datetime.fromisoformat(s).astimezone(PARIS) for s in call.events("SlotsSent")[-1]["slot_starts"]]
        assert all(script.fits(m) for m in last), (script.id, last)
    if script.final == "CONFIRMED":
        start = call.booked_start()
        assert script.fits(start), (script.id, start, call.answers)
        (booking,) = call.active_bookings()
        assert booking["name"] == script.name, (script.id, booking)
        who = f"pour {script.name}" if script.someone_else else "au nom d"
        reply = call.final["reply"]
        assert "C'est noté" in reply and who in reply and str(script.name) in reply, (script.id, reply)
    return call
