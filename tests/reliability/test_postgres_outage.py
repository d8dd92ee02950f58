"""A PostgreSQL restart or outage never gives a 500: turns answer 200 or a clean 503, and the
service recovers by itself once the server is back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.reliability.callers import BOOK, PHONE
from tests.reliability.conftest import kill_connections
from tests.support import free_port

pytestmark = pytest.mark.postgres

TEXTS = [BOOK, "Jean Dupont", "pas de préférence", "le premier"]
STATES = ["QUALIF_NAME", "QUALIF_PREF", "WAIT_CONFIRM", "CONFIRMED"]


def assert_clean_503(response: httpx.Response) -> None:
    """A store failure is a 503 with Retry-After and a JSON error, never a 500."""
    assert response.status_code == 503, (response.status_code, response.text)
    assert "retry-after" in response.headers and "error" in response.json()


async def test_connections_killed_by_the_server_recover(make_live: Any, postgres_url: str) -> None:
    """After the server kills the pool's connections, each next turn is 200 or 503 with
    Retry-After, readiness comes back, and the conversation continues to a booking."""
    async with make_live({"RDV_DATABASE_URL": postgres_url}) as live:
        answers: list[dict[str, Any]] = []
        killed = 0
        for round_ in range(12):
            if round_ % 3 == 0:
                killed += await kill_connections(postgres_url)
            n = len(answers)
            response = await live.client.post(
                "/api/conversations/conv_pg_restart/messages",
                json={"text": TEXTS[n], "caller_phone": PHONE, "request_id": f"turn-{n + 1}"},
            )
            if response.status_code != 200:
                assert_clean_503(response)
                await asyncio.sleep(0.1)
                continue
            answers.append(response.json())
            if len(answers) == len(TEXTS):
                break
        assert killed > 0, "no connection of the service was killed"
        assert [a["state"] for a in answers] == STATES
        ready = [(await live.client.get("/readyz")).status_code for _ in range(3)]
        assert ready[-1] == 200, ready


class Relay:
    """A TCP relay to the PostgreSQL server that can be cut (every connection dropped, new
    ones refused, as during an outage) and restored on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        """Accept connections and relay them to the server."""
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Stop listening and drop every relayed connection."""
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for writer in list(self.links):
            writer.transport.abort()
        self.links.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.links -= {writer, up_writer}


@contextlib.asynccontextmanager
async def relayed(database_url: str) -> AsyncIterator[tuple[Relay, str]]:
    """A running :class:`Relay` and ``database_url`` rewritten to go through it."""
    parts = urlsplit(database_url)
    relay = Relay(parts.hostname or "127.0.0.1", parts.port or 5432)
    await relay.start()
    user = f"{parts.username}@" if parts.username else ""
    try:
        yield relay, urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{relay.port}"))
    finally:
        if relay.server is not None and relay.server.is_serving():
            await relay.cut()


async def test_outage_answers_503_then_recovers(make_live: Any, postgres_url: str) -> None:
    """While the server is unreachable, turns and readiness answer 503 (never 500, never a
    hang); when it is back, the same conversation carries on without a restart."""
    async with relayed(postgres_url) as (relay, url), make_live({"RDV_DATABASE_URL": url}) as live:

        async def turn(n: int) -> httpx.Response:
            response: httpx.Response = await live.client.post(
                "/api/conversations/conv_pg_outage/messages",
                json={"text": TEXTS[n], "caller_phone": PHONE, "request_id": f"turn-{n + 1}"},
            )
            return response

        first = await turn(0)
        assert first.status_code == 200 and first.json()["state"] == STATES[0], first.text

        await relay.cut()
        for _ in range(3):
            assert_clean_503(await turn(1))
        assert (await live.client.get("/readyz")).status_code == 503

        await relay.start()
        answers = [first.json()]
        for n in range(1, len(TEXTS)):
            response = await turn(n)
            assert response.status_code == 200, (response.status_code, response.text)
            answers.append(response.json())
        assert [a["state"] for a in answers] == STATES
        assert (await live.client.get("/readyz")).status_code == 200
