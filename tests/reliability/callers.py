"""Text-API callers spread over several replicas, and checks of what the store holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from service.engine.states import TERMINAL, TERMINAL_OUTCOME, Outcome, State

BOOK = "bonjour je voudrais prendre rendez-vous"
PHONE = "+33612345678"
CONFIRMED_MARK = "C'est noté"


class Fleet:
    """One HTTP client per replica URL; ``say(i, ...)`` sends to replica ``i % n``."""

    def __init__(self, urls: Sequence[str], timeout: float = 30.0) -> None:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        self.clients = [httpx.AsyncClient(base_url=u, timeout=timeout, limits=limits) for u in urls]

    async def post(self, i: int, conv_id: str, text: str, **extra: Any) -> httpx.Response:
        """POST one turn to replica ``i % n`` and return the raw response."""
        client = self.clients[i % len(self.clients)]
        return await client.post(f"/api/conversations/{conv_id}/messages", json={"text": text, **extra})

    async def say(self, i: int, conv_id: str, text: str, **extra: Any) -> dict[str, Any]:
        """POST one turn and return its JSON answer (asserting 200)."""
        response = await self.post(i, conv_id, text, **extra)
        assert response.status_code == 200, (conv_id, text, response.status_code, response.text)
        data: dict[str, Any] = response.json()
        return data

    async def get(self, i: int, path: str) -> httpx.Response:
        """GET ``path`` on replica ``i % n``."""
        return await self.clients[i % len(self.clients)].get(path)

    async def aclose(self) -> None:
        """Close every client."""
        for client in self.clients:
            await client.aclose()


@asynccontextmanager
async def fleet(urls: Sequence[str], timeout: float = 30.0) -> AsyncIterator[Fleet]:
    """A :class:`Fleet` closed on exit."""
    clients = Fleet(urls, timeout)
    try:
        yield clients
    finally:
        await clients.aclose()


@asynccontextmanager
async def opened_store(database_url: str | None, data_dir: Path) -> AsyncIterator[Any]:
    """The service's own store implementation, opened on the same database as the replicas."""
    from service.storage import open_store

    store = open_store(database_url, data_dir)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@dataclass
class StoreView:
    """Every conversation and active booking the store holds, through its interface."""

    conversations: list[dict[str, Any]] = field(default_factory=list)
    timelines: dict[str, dict[str, Any]] = field(default_factory=dict)

    def active_bookings(self) -> list[dict[str, Any]]:
        """Bookings not cancelled, over all conversations."""
        return [
            b for t in self.timelines.values() for b in t.get("bookings", [])
            if not b.get("cancelled_at") and b.get("status", "active") == "active"
        ]


async def view(store: Any) -> StoreView:
    """Load every conversation seen in the last week and its timeline."""
    rows = await store.conversations_seen_since(datetime.now(UTC) - timedelta(days=7))
    out = StoreView(conversations=list(rows))
    timelines = await asyncio.gather(*(store.timeline(r["conv_id"]) for r in rows))
    for row, timeline in zip(rows, timelines, strict=True):
        assert timeline is not None, row
        out.timelines[row["conv_id"]] = timeline
    return out


def slot_of(booking: dict[str, Any]) -> str:
    """The start of a booking's slot as stored."""
    for key in ("slot_start", "start", "starts_at"):
        if key in booking:
            return str(booking[key])
    raise AssertionError(f"no slot start in booking {booking}")


def check_consistency(store_view: StoreView, confirmed_replies: dict[str, str]) -> None:
    """No confirmed reply without its booking, no slot twice, every state and outcome valid."""
    bookings = store_view.active_bookings()
    slots = [slot_of(b) for b in bookings]
    assert len(slots) == len(set(slots)), f"a slot is booked twice: {sorted(slots)}"
    booked_convs = {str(b.get("conv_id")) for b in bookings}
    for conv_id, reply in confirmed_replies.items():
        assert conv_id in booked_convs, f"{conv_id} was told {reply!r} but has no booking"
    for row in store_view.conversations:
        state = State(row["state"])
        outcome = Outcome(row["outcome"]) if row.get("outcome") else None
        if state in TERMINAL:
            assert outcome is TERMINAL_OUTCOME[state], row
        if outcome in TERMINAL_OUTCOME.values():
            assert state in TERMINAL and TERMINAL_OUTCOME[state] is outcome, row
        if state is State.CONFIRMED:
            assert row["conv_id"] in booked_convs, f"{row['conv_id']} CONFIRMED without a booking"
