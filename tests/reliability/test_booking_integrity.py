"""A booking exists only if its caller heard it confirmed.

Overlapping turns of one conversation with different texts ("le premier" / "le deuxième",
or a Vapi request re-sent with a self-corrected last message while the first is running)
on SQLite with two workers and on two PostgreSQL replicas, through the text API and the
Vapi endpoint: at most one active booking per conversation, and it is the one a reply read
back. A replica killed with SIGKILL while callers that do not retry (as Vapi behaves) are
booking leaves no booking that no caller heard. A locked table and a bad input at the slot
step leave nothing booked. Bounded: loopback only, a few dozen conversations.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from service.engine import labels
from service.engine.states import State
from tests.reliability.callers import BOOK, CONFIRMED_MARK, PHONE, Fleet, fleet, opened_store
from tests.reliability.procs import Replica
from tests.support import PARIS
from tests.vapi.conftest import VapiCall, parse_sse

pytestmark = [pytest.mark.slow]

# Slot holds off: conversations are offered the same slots and race for them too.
ENV = {"RDV_SLOT_HOLD_SECONDS": "0", "SESSION_TTL_MINUTES": "15"}
ROUNDS = 12
# How long Vapi waits for a custom-LLM answer before dropping the call.
VAPI_TIMEOUT_SECONDS = 20.0
CHOICES = ("le premier", "le deuxième")


async def active_bookings(store: Any, conv_id: str) -> list[dict[str, Any]]:
    """The conversation's bookings that are not cancelled."""
    timeline = await store.timeline(conv_id)
    assert timeline is not None, conv_id
    return [b for b in timeline["bookings"] if b["cancelled_at"] is None]


def read_back(booking: dict[str, Any]) -> str:
    """How the confirmation names a booking's slot ("jeudi 5 mars à 14h")."""
    start = datetime.fromisoformat(booking["slot_start"]).astimezone(PARIS)
    return labels.full_label(start)


async def check_told(store: Any, conv_id: str, replies: list[str]) -> None:
    """At most one active booking, and if there is one, a reply read it back (and no reply
    read back another slot)."""
    active = await active_bookings(store, conv_id)
    assert len(active) <= 1, (conv_id, active)
    confirmations = [r for r in replies if CONFIRMED_MARK in r]
    assert len(confirmations) <= 1, (conv_id, replies)
    if active:
        assert confirmations and read_back(active[0]) in confirmations[0], (conv_id, active, replies)
    else:
        assert not confirmations, (conv_id, replies)
    assert await store.unconfirmed_bookings() == []


async def text_race(calls: Fleet, conv_id: str) -> list[str]:
    """Drive one text conversation to the slots, then send two different choices at once,
    one to each worker or replica."""
    for text in (BOOK, "Jean Dupont", "pas de préférence"):
        answer = await calls.say(0, conv_id, text, caller_phone=PHONE)
    assert answer["state"] == State.WAIT_CONFIRM.value, answer
    responses = await asyncio.gather(*(calls.post(i, conv_id, text, caller_phone=PHONE)
                                       for i, text in enumerate(CHOICES)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return [r.json()["reply"] for r in responses]


async def vapi_race(clients: list[httpx.AsyncClient], call_id: str) -> list[str]:
    """One Vapi call to the slots, then the same history re-sent with a corrected last
    message while the first request runs (to the other worker or replica)."""
    call = VapiCall(clients[0], call_id)
    for text in (BOOK, "Jean Dupont", "pas de préférence"):
        await call.say(text)
    payloads = []
    for text in CHOICES:
        body = call.payload()
        body["messages"] = [*body["messages"], {"role": "user", "content": text}]
        payloads.append(body)
    responses = await asyncio.gather(
        *(clients[i % len(clients)].post("/vapi/chat/completions", json=p) for i, p in enumerate(payloads))
    )
    answers = [parse_sse(r) for r in responses]
    assert all(a.status == 200 for a in answers), [a.raw for a in answers]
    return [a.text for a in answers]


async def run_races(urls: list[str], database_url: str | None, data_dir: Path) -> None:
    """``ROUNDS`` text races and ``ROUNDS`` Vapi races; check every conversation."""
    async with fleet(urls) as calls:
        text_replies = await asyncio.gather(*(text_race(calls, f"conv_race_{i}") for i in range(ROUNDS)))
        vapi_replies = await asyncio.gather(*(vapi_race(calls.clients, f"call-race-{i}") for i in range(ROUNDS)))
    async with opened_store(database_url, data_dir) as store:
        for i, replies in enumerate(text_replies):
            await check_told(store, f"conv_race_{i}", replies)
        for i, replies in enumerate(vapi_replies):
            conv_id = await store.conversation_ids_by_call(f"call-race-{i}")
            assert conv_id is not None
            await check_told(store, conv_id, replies)
        booked = [await active_bookings(store, f"conv_race_{i}") for i in range(ROUNDS)]
        assert sum(len(b) for b in booked) >= 1, "no race booked anything: the test exercised nothing"


async def test_overlapping_turns_sqlite_two_workers(spawn: Callable[..., Replica], tmp_path: Path) -> None:
    """SQLite served by two worker processes: overlapping different choices book once."""
    (tmp_path / "prom").mkdir()
    server = spawn({**ENV, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}, workers=2)
    await run_races([server.url, server.url], None, tmp_path / "data")


async def test_overlapping_turns_sqlite_one_worker(spawn: Callable[..., Replica], tmp_path: Path) -> None:
    """SQLite with one worker: the same races (the turns interleave at every await)."""
    server = spawn(ENV)
    await run_races([server.url, server.url], None, tmp_path / "data")


@pytest.mark.postgres
async def test_overlapping_turns_two_postgres_replicas(
    spawn: Callable[..., Replica], postgres_url: str, tmp_path: Path
) -> None:
    """Two replicas on one PostgreSQL database: overlapping different choices book once."""
    env = {**ENV, "RDV_DATABASE_URL": postgres_url}
    first, second = spawn(env, name="a"), spawn(env, name="b")
    await run_races([first.url, second.url], postgres_url, tmp_path / "data")


@pytest.mark.postgres
async def test_kill_9_with_callers_that_do_not_retry(
    spawn: Callable[..., Replica], postgres_url: str, tmp_path: Path
) -> None:
    """Two replicas on PostgreSQL; one is killed with SIGKILL twice while 40 callers that
    never retry a failed turn (as Vapi behaves) are choosing slots. Afterwards every active
    booking was read back to its caller: none is unconfirmed, none is held by a caller who
    was not told, and no caller was told of a booking that is not there."""
    env = {**ENV, "RDV_DATABASE_URL": postgres_url}
    first, second = spawn(env, name="a"), spawn(env, name="b")
    rng = random.Random(7)
    told: dict[str, list[str]] = {}
    broken = 0

    async def caller(calls: Fleet, i: int) -> None:
        nonlocal broken
        conv_id = f"conv_kill_{i:02d}"
        replies: list[str] = []
        told[conv_id] = replies
        for text in (BOOK, "Jean Dupont", rng.choice(("le matin", "l'après-midi")), rng.choice(CHOICES)):
            await asyncio.sleep(rng.random() * 0.05)
            try:
                response = await calls.post(i, conv_id, text, caller_phone=PHONE)
            except httpx.TransportError:
                broken += 1
                return
            if response.status_code != 200:
                return
            replies.append(response.json()["reply"])

    async with fleet([first.url, second.url], timeout=20) as calls:
        for wave in range(2):
            running = asyncio.gather(*(caller(calls, wave * 20 + i) for i in range(20)))
            await asyncio.sleep(0.3 + 0.2 * wave)
            await asyncio.to_thread(first.kill)
            await running
            await asyncio.to_thread(first.start)
    assert broken > 0, "the kills interrupted no turn"
    async with opened_store(postgres_url, tmp_path / "data") as store:
        assert await store.unconfirmed_bookings() == []
        for conv_id, replies in told.items():
            stored = await store.load(conv_id)
            if stored is None:
                continue
            active = await active_bookings(store, conv_id)
            assert len(active) <= 1, active
            if active:
                # Booked and saved in one transaction: the conversation says CONFIRMED.
                assert stored.conversation.state is State.CONFIRMED, (conv_id, stored.conversation.state)
            if any(CONFIRMED_MARK in r for r in replies):
                assert active, (conv_id, replies)


@pytest.mark.postgres
async def test_locked_bookings_table_books_nothing(
    spawn: Callable[..., Replica], postgres_url: str, tmp_path: Path
) -> None:
    """With the bookings table locked, the booking turn gives up after the store timeout
    (the caller hears the apology) and, once the lock is gone, no booking is left behind."""
    server = spawn({**ENV, "RDV_DATABASE_URL": postgres_url, "RDV_STORE_TIMEOUT_SECONDS": "1"})
    async with fleet([server.url]) as calls:
        for text in (BOOK, "Jean Dupont", "pas de préférence"):
            await calls.say(0, "conv_locked", text, caller_phone=PHONE)
        admin = await asyncpg.connect(postgres_url)
        try:
            async with admin.transaction():
                await admin.execute("LOCK TABLE bookings IN ACCESS EXCLUSIVE MODE")
                response = await calls.post(0, "conv_locked", "le premier", caller_phone=PHONE)
                assert response.status_code == 503, response.text
        finally:
            await admin.close()
    async with opened_store(postgres_url, tmp_path / "data") as store:
        assert await active_bookings(store, "conv_locked") == []
        stored = await store.load("conv_locked")
        assert stored is not None and stored.conversation.state is State.WAIT_CONFIRM


async def test_bad_input_at_the_slot_step_books_nothing(spawn: Callable[..., Replica], tmp_path: Path) -> None:
    """A lone surrogate in the text at the slot step is refused with a 4xx and books nothing;
    the caller's next, valid choice books once."""
    server = spawn(ENV)
    async with fleet([server.url]) as calls:
        for text in (BOOK, "Jean Dupont", "pas de préférence"):
            await calls.say(0, "conv_bad", text, caller_phone=PHONE)
        raw = '{"text": "le premier \\ud800", "caller_phone": "+33612345678"}'
        response = await calls.clients[0].post(
            "/api/conversations/conv_bad/messages", content=raw.encode(), headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        answer = await calls.say(0, "conv_bad", "le premier", caller_phone=PHONE)
    assert answer["state"] == State.CONFIRMED.value
    async with opened_store(None, tmp_path / "data") as store:
        assert len(await active_bookings(store, "conv_bad")) == 1


def hold_exclusive_lock(path: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Another process that takes the SQLite file's write lock and holds it (``BEGIN
    EXCLUSIVE``); returns once the lock is held."""
    code = (
        "import sqlite3, sys, time\n"
        f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        f"time.sleep({seconds})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"locked"
    return proc


async def test_sqlite_lock_held_by_another_process_does_not_stall_the_server(
    spawn: Callable[..., Replica], tmp_path: Path
) -> None:
    """Another process holds the SQLite write lock: a Vapi turn answers with the spoken
    apology and a transfer within the store timeout (not SQLite's busy wait), and /healthz
    answers while that turn is still waiting: the event loop is never blocked."""
    server = spawn({**ENV, "RDV_STORE_TIMEOUT_SECONDS": "2"})
    # The client waits as long as Vapi does (20 s); the lock is held far longer than that.
    async with httpx.AsyncClient(base_url=server.url, timeout=VAPI_TIMEOUT_SECONDS) as client:
        call = VapiCall(client, "call-locked")
        await call.say(BOOK)
        locker = hold_exclusive_lock(tmp_path / "data" / "rdv.sqlite3", 120)
        try:
            call.messages.append({"role": "user", "content": "Jean Dupont"})
            turn = asyncio.create_task(client.post("/vapi/chat/completions", json=call.payload()))
            await asyncio.sleep(0.2)
            health = await client.get("/healthz")
            assert health.status_code == 200 and not turn.done()
            answer = parse_sse(await turn)
            # Answered while the lock is still held: the store deadline ended the wait, not the lock.
            assert locker.poll() is None
        finally:
            locker.kill()
            locker.wait()
            assert locker.stdout is not None
            locker.stdout.close()
    assert answer.status == 200, answer.raw
    assert answer.tool() is not None and answer.tool()[0] == "transferCall", answer.raw  # type: ignore[index]


BLACK_HOLE = """
import asyncio, signal, sys

swallow = False

def start_swallowing(*_):
    global swallow
    swallow = True

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            if not swallow:
                writer.write(data)
                await writer.drain()
    except ConnectionError:
        pass

async def serve(reader, writer):
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(sys.argv[1]))
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

async def main():
    signal.signal(signal.SIGUSR1, start_swallowing)
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.sleep(120)  # bounded: the test kills it long before

asyncio.run(main())
"""


class BlackHole:
    """A TCP proxy to PostgreSQL, in a process of its own on 127.0.0.1, that starts
    swallowing every byte on SIGUSR1 (a network black hole: connections stay open, nothing
    comes back)."""

    def __init__(self, target_port: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", BLACK_HOLE, str(target_port)], stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def swallow(self) -> None:
        self.proc.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.mark.postgres
async def test_postgres_black_hole_answers_within_the_store_timeout(
    spawn: Callable[..., Replica], postgres_url: str, tmp_path: Path
) -> None:
    """PostgreSQL behind a link that starts swallowing every packet: the next turn answers
    503 before a client that waits as long as Vapi gives up, although the driver's own
    cancellation of the query never completes."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(postgres_url)
    hole = BlackHole(parts.port or 5432)
    try:
        via = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{hole.port}"))
        server = spawn({**ENV, "RDV_DATABASE_URL": via, "RDV_STORE_TIMEOUT_SECONDS": "1"})
        async with fleet([server.url], timeout=VAPI_TIMEOUT_SECONDS) as calls:
            await calls.say(0, "conv_hole", BOOK, caller_phone=PHONE)
            hole.swallow()
            await asyncio.sleep(0.1)
            response = await calls.post(0, "conv_hole", "Jean Dupont", caller_phone=PHONE)
        assert response.status_code == 503, response.text
    finally:
        hole.stop()
