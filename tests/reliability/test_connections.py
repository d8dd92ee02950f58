"""Idle and slow clients cannot hold connections: against a real ``rdv serve``, hundreds of
idle sockets (never used, or kept alive after a request) are closed after the keep-alive
timeout, a head sent a header at a time gets 408 after the head deadline, an oversized head
431, concurrency above the limit a 503, and the server answers throughout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from tests.reliability.procs import Replica

IDLE_SOCKETS = 300
KEEP_ALIVE = 1
HEAD_TIMEOUT = 2.0
LIMITS = {"RDV_KEEP_ALIVE_SECONDS": str(KEEP_ALIVE), "RDV_HEADER_TIMEOUT_SECONDS": str(HEAD_TIMEOUT)}

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closes the connection (EOF) within ``within`` seconds; whatever
    it wrote before closing is read and dropped."""
    deadline = time.monotonic() + within
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), max(0.01, deadline - time.monotonic()))
            if not chunk:
                return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def close_all(writers: list[asyncio.StreamWriter]) -> None:
    """Close every client socket and wait until each transport is gone (no ResourceWarning)."""
    for writer in writers:
        writer.close()
    await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)


async def status_line(reader: asyncio.StreamReader, within: float) -> str:
    """The first line of the server's answer."""
    return (await asyncio.wait_for(reader.readline(), within)).decode("latin-1").strip()


async def kept_alive(port: int) -> Stream:
    """A connection that made one complete request and then stays silent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: rdv\r\n\r\n")
    await writer.drain()
    assert (await status_line(reader, 5)).startswith("HTTP/1.1 200")
    await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 5)
    return reader, writer


async def drip_headers(writer: asyncio.StreamWriter, stop: asyncio.Event) -> None:
    """A slowloris client: one more header line every 0.3 s, never the blank line."""
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: rdv\r\n")
    index = 0
    while not stop.is_set():
        await asyncio.sleep(0.3)
        index += 1
        try:
            writer.write(f"X-Slow-{index}: {'a' * 10}\r\n".encode())
            await writer.drain()
        except ConnectionError:
            return


@pytest.mark.slow
async def test_idle_and_slow_header_connections_are_closed(spawn: Callable[..., Replica]) -> None:
    """Never-used and kept-alive idle sockets close after the keep-alive timeout; a head
    trickled header by header gets 408 after the head deadline; an oversized head gets 431;
    the server answers every ordinary request meanwhile."""
    replica = spawn(LIMITS)
    silent = [await asyncio.open_connection("127.0.0.1", replica.port) for _ in range(IDLE_SOCKETS)]
    used = [await kept_alive(replica.port) for _ in range(20)]
    slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", replica.port)
    stop = asyncio.Event()
    dripping = asyncio.create_task(drip_headers(slow_writer, stop))
    big_reader, big_writer = await asyncio.open_connection("127.0.0.1", replica.port)
    big_writer.write(b"GET /healthz HTTP/1.1\r\nHost: rdv\r\nX-Big: " + b"a" * 40_000)
    await big_writer.drain()
    try:
        async with httpx.AsyncClient(base_url=replica.url, timeout=5) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await status_line(big_reader, 5)).startswith("HTTP/1.1 431")
            idle_closed = await asyncio.gather(
                *(closed_by_server(reader, KEEP_ALIVE + 2) for reader, _ in [*silent, *used])
            )
            assert all(idle_closed), f"{idle_closed.count(False)} idle sockets still open"
            # A 408 (not a silent keep-alive close): the head deadline, although a header
            # line arrives every 0.3 s.
            assert (await status_line(slow_reader, HEAD_TIMEOUT + 2)).startswith("HTTP/1.1 408")
            assert await closed_by_server(slow_reader, 2)
            assert (await client.get("/healthz")).status_code == 200
    finally:
        stop.set()
        await dripping
        await close_all([w for _, w in [*silent, *used, (slow_reader, slow_writer), (big_reader, big_writer)]])


@pytest.mark.slow
async def test_connections_above_the_limit_get_503_until_idle_ones_close(spawn: Callable[..., Replica]) -> None:
    """With RDV_MAX_CONNECTIONS idle sockets open, a request is refused with 503; once the
    keep-alive timeout has closed them, requests are served again."""
    replica = spawn({**LIMITS, "RDV_MAX_CONNECTIONS": "20"})
    idle = [await asyncio.open_connection("127.0.0.1", replica.port) for _ in range(25)]
    try:
        async with httpx.AsyncClient(base_url=replica.url, timeout=5) as client:
            assert (await client.get("/healthz")).status_code == 503
            await asyncio.gather(*(closed_by_server(reader, KEEP_ALIVE + 2) for reader, _ in idle))
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await close_all([w for _, w in idle])


async def answer_then_eof(reader: asyncio.StreamReader, within: float) -> bytes:
    """Everything the server sends until it closes the connection (a reset fails the read)."""
    received = b""
    deadline = time.monotonic() + within
    while chunk := await asyncio.wait_for(reader.read(65536), max(0.01, deadline - time.monotonic())):
        received += chunk
    return received


@pytest.mark.slow
async def test_a_refused_head_is_read_whole_by_a_client_still_sending(spawn: Callable[..., Replica]) -> None:
    """A client refused (431, 408) while it is still sending reads the whole answer, then the
    end of the connection: the server stops sending, drains what keeps arriving and closes
    once the client does (closing a socket with bytes unread would send a reset, which
    drops the answer the client had not read yet)."""
    replica = spawn(LIMITS)
    for head, status, line, seconds in (
        (b"GET /healthz HTTP/1.1\r\nHost: rdv\r\nX-Big: " + b"a" * 40_000, b"431", b"b" * 2000, 0.5),
        (b"GET /healthz HTTP/1.1\r\nHost: rdv\r\n", b"408", b"b" * 20, HEAD_TIMEOUT + 0.5),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", replica.port)
        try:
            writer.write(head)
            await writer.drain()
            # The client does not read yet and keeps sending after the server answered.
            ends = time.monotonic() + seconds
            while time.monotonic() < ends:
                await asyncio.sleep(0.1)
                writer.write(b"X-More: " + line + b"\r\n")
                await writer.drain()
            writer.write_eof()
            answer = await answer_then_eof(reader, 5)
            assert answer.startswith(b"HTTP/1.1 " + status), answer[:80]
            assert answer.endswith(b'"}'), answer[-80:]
        finally:
            await close_all([writer])
