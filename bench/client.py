"""A lean HTTP/1.1 client on raw asyncio streams, for what wrk cannot do.

wrk measures saturation throughput; it cannot offer a fixed rate (its latency at saturation
is queueing, not service time) nor time the first byte of a stream. This client can, and it
is cheap enough not to be the bottleneck at the rates used (~500 requests/s costs it a few
percent of one core, against ~100 µs per request for httpx).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

CHOICES = ("le premier", "le deuxième", "le troisième")
PERIODS = ("le matin", "l'après-midi")
# What a caller answers in each state (see turns.lua); the preference and the choice vary.
BY_STATE = {"QUALIF_NAME": "Jean Dupont", "CANCEL_CONFIRM": "oui", "MODIFY_CONFIRM": "non"}
MAX_TURNS = 12  # a conversation still open after this many turns is given up (counted)


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


def phone_number(n: int) -> str:
    """The ``n``-th of 20 million valid French mobile numbers (+33 61 00 00 00 00 onwards)."""
    return f"+336{10_000_000 + n % 20_000_000:08d}"


@dataclass
class Conversations:
    """Patients who book and then cancel (see turns.lua), each conversation followed to its
    end, each turn sent only after the previous one's answer; every patient has a number of
    its own (``base`` keeps two clients' numbers apart)."""

    prefix: str
    base: int = 0
    keep: bool = False  # True: patients keep their appointment (to fill the calendar first)
    ready: deque[tuple[str, dict[str, str]]] = field(default_factory=deque)
    started: int = 0
    asks: int = 0
    phones: dict[str, tuple[str, str]] = field(default_factory=dict)
    ended: int = 0
    given_up: int = 0
    confirmed: int = 0
    cancelled: int = 0
    refused: int = 0
    sent: int = 0
    unsent: int = 0

    def next_turn(self) -> tuple[str, bytes]:
        """The path and body of the next turn to send (a new patient when none is ready)."""
        self.sent += 1
        if self.ready:
            conv, body = self.ready.popleft()
        else:
            self.started += 1
            phone = phone_number(self.base + self.started)
            conv = f"{self.prefix}{self.started}"
            self.phones[conv] = (phone, "book")
            body = {"text": "bonjour je voudrais prendre rendez-vous", "caller_phone": phone}
        return f"/api/conversations/{conv}/messages", json.dumps(body).encode()

    def answered(self, status: int, payload: bytes) -> None:
        """Queue the conversation's next turn after its answer, from the state it names."""
        try:
            data = json.loads(payload) if status == 200 else {}
        except ValueError:
            data = {}
        conv = data.get("conv_id")
        if conv not in self.phones:
            self.refused += 1
            return
        phone, kind = self.phones[conv]
        state = data["state"]
        if data["ended"]:
            self.ended += 1
            del self.phones[conv]
            if state == "CONFIRMED" and kind == "book":
                self.confirmed += 1
                if self.keep:
                    return
                self.phones[conv + "c"] = (phone, "cancel")
                self.ready.append((conv + "c", {"text": "bonjour je voudrais annuler mon rendez-vous",
                                                "caller_phone": phone}))
            elif state == "CANCELLED":
                self.cancelled += 1
            return
        if data["turn"] >= MAX_TURNS:
            self.given_up += 1
            del self.phones[conv]
            return
        if state == "QUALIF_PREF":
            self.asks += 1
            text = f"le {(self.asks * 11) % 28 + 1} {PERIODS[self.asks % 2]}"
        elif state == "WAIT_CONFIRM":
            text = CHOICES[(self.started + data["turn"]) % 3]
        else:
            text = BY_STATE.get(state, "je voudrais prendre rendez-vous")
        self.ready.append((conv, {"text": text}))

    def counts(self) -> dict[str, int]:
        """Conversations ended, given up, confirmed, cancelled, and answers refused."""
        return {"ended": self.ended, "given_up": self.given_up, "confirmed": self.confirmed,
                "cancelled": self.cancelled, "refused": self.refused, "open": len(self.phones),
                "unsent": self.unsent}


class Requests(Protocol):
    """What an open-loop run sends: the next request, then what came back (``unsent``:
    requests given up without being sent)."""

    unsent: int

    def next_turn(self) -> tuple[str, bytes]: ...

    def answered(self, status: int, payload: bytes) -> None: ...


@dataclass
class Echoes:
    """The same small JSON body, over and over, to the bare echo endpoint (``bench.echo``)."""

    body: bytes = json.dumps({"text": "bonjour je voudrais prendre rendez-vous"}).encode()
    sent: int = 0
    unsent: int = 0
    failed: int = 0

    def next_turn(self) -> tuple[str, bytes]:
        """``/echo`` and the body."""
        self.sent += 1
        return "/echo", self.body

    def answered(self, status: int, payload: bytes) -> None:
        """Count an answer that is not the body's JSON echoed."""
        try:
            same = status == 200 and json.loads(payload) == json.loads(self.body)
        except ValueError:
            same = False
        if not same:
            self.failed += 1


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Within the block, this process's garbage collector never runs: what it holds is
    collected once and frozen first. A collection in the client stops every request in flight
    at once (seen: 40-60 ms over a heap of a few hundred thousand objects, at the start of a
    phase) and would be counted as the server's latency. A phase is bounded, and so is what
    its reference cycles leave until the end of the block."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()


async def open_loop(ports: int | list[int], rate: float, seconds: float, connections: int, requests: Requests,
                    grace: float = 10.0) -> list[float]:
    """Offer ``rate`` requests/s for ``seconds`` (open loop), spread over the servers on
    ``ports`` (connections dealt round-robin); latencies in seconds.

    Each latency counts from the moment the request was due, so waiting for a free
    connection counts too (no coordinated omission). Requests still waiting for a connection
    ``grace`` seconds after the last one was due are counted with their wait and not sent.
    This process's garbage collector is paused meanwhile (:func:`collector_paused`).
    """
    ports = [ports] if isinstance(ports, int) else ports
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for i in range(connections):
        pool.put_nowait(await Connection.open(ports[i % len(ports)]))
    latencies: list[float] = []
    give_up = 0.0  # set when the first request is due

    async def one(due: float) -> None:
        conn = await pool.get()
        try:
            now = time.perf_counter()
            if now > give_up:
                # A server that cannot keep up: the requests still waiting are counted with
                # the wait they had (a lower bound), not sent, so the phase stays bounded.
                latencies.append(now - due)
                requests.unsent += 1
                return
            path, body = requests.next_turn()
            status, payload = await conn.post(path, body)
            latencies.append(time.perf_counter() - due)
            requests.answered(status, payload)
        finally:
            pool.put_nowait(conn)

    with collector_paused():
        start = time.perf_counter()
        give_up = start + seconds + grace
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


async def fixed_rate(
    ports: int | list[int], rate: float, seconds: float, connections: int, prefix: str, base: int = 0,
    grace: float = 10.0,
) -> tuple[list[float], Conversations]:
    """Patients' turns at ``rate`` turns/s for ``seconds`` (:func:`open_loop`), then the
    conversations still open are finished; latencies in seconds, and the conversations."""
    ports = [ports] if isinstance(ports, int) else ports
    convs = Conversations(prefix, base)
    latencies = await open_loop(ports, rate, seconds, connections, convs, grace)
    await finish(ports[0], convs)
    return latencies, convs


async def closed_loop(port: int, count: int, connections: int, prefix: str, first_turn_only: bool,
                      base: int = 0, keep: bool = False) -> Conversations:
    """Send ``count`` turns as fast as the server answers, on ``connections`` connections,
    then finish the conversations still open (``first_turn_only``: every turn opens a new
    conversation, left at its first question)."""
    convs = Conversations(prefix, base, keep)
    remaining = count
    in_flight = 0

    async def worker() -> None:
        nonlocal remaining, in_flight
        conn = await Connection.open(port)
        try:
            while remaining > 0 or convs.ready or in_flight:
                if remaining <= 0 and not convs.ready:
                    await asyncio.sleep(0.001)  # another worker's answer may queue a turn
                    continue
                remaining -= 1
                in_flight += 1
                try:
                    path, body = convs.next_turn()
                    status, payload = await conn.post(path, body)
                    if not first_turn_only:
                        convs.answered(status, payload)
                finally:
                    in_flight -= 1
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return convs


async def finish(port: int, convs: Conversations, connections: int = 8) -> None:
    """Play the conversations ``convs`` left open to their end (unmeasured), so none keeps
    proposals held into the next phase."""
    in_flight = 0

    async def worker() -> None:
        nonlocal in_flight
        conn = await Connection.open(port)
        try:
            while convs.ready or in_flight:
                if not convs.ready:
                    await asyncio.sleep(0.001)
                    continue
                in_flight += 1
                try:
                    path, body = convs.next_turn()
                    status, payload = await conn.post(path, body)
                    convs.answered(status, payload)
                finally:
                    in_flight -= 1
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
