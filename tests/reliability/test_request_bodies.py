"""Oversized bodies are refused with 413, and a client trickling its body cannot hold a
connection forever (408, connection closed)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from service.http.common import BODY_READ_SECONDS
from tests.reliability.procs import Replica

LIMIT = 2048
BODY_PATHS = ["/api/conversations/conv_big/messages", "/vapi/chat/completions", "/vapi/events"]


def existing(app: Any, paths: list[str]) -> list[str]:
    """The paths among ``paths`` that the app routes."""
    routed = {getattr(r, "path", None) for r in app.routes}
    return [p for p in paths if p in routed]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_oversized_body_is_413_with_json_error(make_live: Any, chunked: bool) -> None:
    """A body over RDV_MAX_BODY_BYTES, declared or streamed without a length, gets a clear 413."""
    big = json.dumps({"text": "a" * (LIMIT * 2)}).encode()

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 512):
            yield big[start:start + 512]

    async with make_live({"RDV_MAX_BODY_BYTES": str(LIMIT)}) as live:
        for path in existing(live.app, BODY_PATHS):
            content: Any = stream() if chunked else big
            response = await live.client.post(
                path, content=content, headers={"content-type": "application/json"}
            )
            assert response.status_code == 413, (path, response.status_code, response.text)
            assert str(LIMIT) in response.json()["error"]
        timeline = await live.client.get("/api/conversations/conv_big")
        assert timeline.status_code == 404


async def read_response(reader: asyncio.StreamReader, timeout: float) -> tuple[int, bytes]:
    """Status code and body of one HTTP/1.1 response with a Content-Length."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length")
    body = await asyncio.wait_for(reader.readexactly(length), timeout)
    return status, body


async def trickle(replica: Replica, headers: str, drip: bytes) -> tuple[int, bytes, bool]:
    """Send ``headers`` then one ``drip`` every 0.3 s; (status, body, closed after)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", replica.port)
    writer.write(headers.encode("latin-1"))
    await writer.drain()

    async def drip_forever() -> None:
        while True:
            await asyncio.sleep(0.3)
            writer.write(drip)
            await writer.drain()

    dripping = asyncio.create_task(drip_forever())
    try:
        status, body = await read_response(reader, BODY_READ_SECONDS + 5)
        dripping.cancel()
        try:
            closed = await asyncio.wait_for(reader.read(), 3) == b""
        except (TimeoutError, ConnectionError):
            closed = False
        return status, body, closed
    finally:
        dripping.cancel()
        writer.close()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
async def test_trickled_body_times_out_with_408(spawn: Callable[..., Replica], workers: int) -> None:
    """Headers then a body dripping a byte at a time: 408 with a JSON error after the body
    deadline and the connection closed, while other clients are served meanwhile (one
    process or several workers)."""
    replica = spawn({"RDV_MAX_BODY_BYTES": str(LIMIT)}, workers=workers)
    path = "/api/conversations/conv_slow/messages"
    with_length = (
        f"POST {path} HTTP/1.1\r\nHost: rdv\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{\"text\": \""
    )
    chunked = (
        f"POST {path} HTTP/1.1\r\nHost: rdv\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    slow = [
        asyncio.create_task(trickle(replica, with_length, b"a")),
        asyncio.create_task(trickle(replica, chunked, b"1\r\na\r\n")),
    ]
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=replica.url, timeout=5) as client:
        served = await client.post("/api/conversations/conv_fast/messages", json={"text": "bonjour"})
        assert served.status_code == 200
    # Served before either slow body was cut off: no early 408, no client held up.
    assert not any(task.done() for task in slow)
    for status, body, closed in await asyncio.gather(*slow):
        assert status == 408, body
        assert "error" in json.loads(body)
        assert closed
    assert replica.alive()
