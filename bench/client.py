"""A lean HTTP/1.1 client on raw asyncio streams, for what wrk cannot do.

wrk measures saturation throughput; it cannot offer a fixed rate (its latency at saturation
is queueing, not service time) nor time the first byte of a stream. This client can, and it
is cheap enough not to be the bottleneck at the rates used (~500 requests/s costs it a few
percent of one core, against ~100 µs per request for httpx).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field

TEXTS = (
    {"text": "bonjour je voudrais prendre rendez-vous", "caller_phone": "+33612345678"},
    {"text": "Jean Dupont"},
    {"text": "pas de préférence"},
    {"text": "le premier"},
)
CHOICES = ("le premier", "le deuxième", "le troisième")
PERIODS = ("le matin", "l'après-midi")


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        """Connect to 127.0.0.1:``port``."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST and read the whole (Content-Length) answer."""
        self.writer.write(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        payload = await self.reader.readexactly(length)
        return status, payload

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()


@dataclass
class Conversations:
    """Complete booking conversations, each turn sent only after the previous one's answer."""

    prefix: str
    ready: deque[tuple[str, int]] = field(default_factory=deque)
    started: int = 0

    def next_turn(self) -> tuple[str, bytes]:
        """The path and body of the next turn to send (a new conversation when none is ready)."""
        if self.ready:
            conv, step = self.ready.popleft()
        else:
            self.started += 1
            conv, step = f"{self.prefix}{self.started}", 0
        body = dict(TEXTS[step])
        if step == 2:  # different days, as a practice's callers ask (see turns.lua)
            n = hash(conv)
            period = PERIODS[n % 2]
            body["text"] = f"le {(n * 7) % 28 + 1} {period}"
        if step == 3:
            body["text"] = CHOICES[hash(conv) % 3]
        return f"/api/conversations/{conv}/messages", json.dumps(body).encode()

    def answered(self, payload: bytes) -> None:
        """Queue the conversation's next turn after its answer."""
        data = json.loads(payload)
        if data.get("turn", 99) < 4:
            self.ready.append((data["conv_id"], data["turn"]))


async def fixed_rate(port: int, rate: float, seconds: float, connections: int, prefix: str) -> list[float]:
    """Offer ``rate`` turns/s for ``seconds`` (open loop); latencies in seconds.

    Each latency counts from the moment the request was due, so waiting for a free
    connection counts too (no coordinated omission).
    """
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(port))
    convs = Conversations(prefix)
    latencies: list[float] = []

    async def one(due: float) -> None:
        conn = await pool.get()
        try:
            path, body = convs.next_turn()
            status, payload = await conn.post(path, body)
            latencies.append(time.perf_counter() - due)
            if status == 200:
                convs.answered(payload)
        finally:
            pool.put_nowait(conn)

    start = time.perf_counter()
    tasks = []
    total = int(rate * seconds)
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait().close()
    return latencies


async def closed_loop(port: int, count: int, connections: int, prefix: str, first_turn_only: bool) -> None:
    """Send ``count`` turns as fast as the server answers, on ``connections`` connections."""
    convs = Conversations(prefix)
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        conn = await Connection.open(port)
        try:
            while remaining > 0:
                remaining -= 1
                path, body = convs.next_turn()
                status, payload = await conn.post(path, body)
                if status == 200 and not first_turn_only:
                    convs.answered(payload)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))


async def first_sse_byte(port: int, calls: int) -> list[float] | None:
    """Seconds from sending a streamed custom-LLM request to the first ``data:`` byte.

    ``None`` when the service has no Vapi endpoint.
    """
    out: list[float] = []
    for i in range(calls):
        body = json.dumps({
            "model": "rdv",
            "stream": True,
            "call": {"id": f"bench-call-{i}", "customer": {"number": "+33612345678"}},
            "messages": [
                {"role": "assistant", "content": "Bonjour, cabinet du docteur Martin, que puis-je pour vous ?"},
                {"role": "user", "content": "bonjour je voudrais prendre rendez-vous"},
            ],
        }).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sent = time.perf_counter()
        writer.write(
            b"POST /vapi/chat/completions HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if int(head.split(b" ", 2)[1]) != 200:
            writer.close()
            return None
        seen = b""
        while b"data:" not in seen:
            chunk = await reader.read(4096)
            if not chunk:
                break
            seen += chunk
        out.append(time.perf_counter() - sent)
        await reader.read()
        writer.close()
    return out
