"""``kill -9`` of a replica in the middle of load loses nothing that was announced, books no
slot twice and leaves every conversation in a valid state; the restarted replica carries on."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.callers import (
    BOOK,
    CONFIRMED_MARK,
    PHONE,
    Fleet,
    check_consistency,
    fleet,
    opened_store,
    view,
)
from tests.reliability.procs import Replica, metric_sum

PREFERENCES = ("le matin", "l'après-midi", "pas de préférence")
CHOICES = ("le premier", "le deuxième", "le troisième")
RETRY_FOR_SECONDS = 40.0


class Load:
    """Synthetic callers booking through the text API; a turn that fails on the wire is
    retried with the same request id (on the next replica), as a client library would."""

    def __init__(self, calls: Fleet, conversations: int, concurrency: int, seed: int) -> None:
        self.calls = calls
        self.rng = random.Random(seed)
        self.plans = [
            (f"conv_load_{i:03d}", [BOOK, "Jean Dupont", self.rng.choice(PREFERENCES), self.rng.choice(CHOICES)])
            for i in range(conversations)
        ]
        self.gate = asyncio.Semaphore(concurrency)
        self.confirmed: dict[str, str] = {}
        self.turns_done = 0
        self.wire_errors = 0
        self.statuses: list[int] = []

    async def turn(self, i: int, conv_id: str, n: int, text: str) -> dict[str, Any]:
        deadline = time.monotonic() + RETRY_FOR_SECONDS
        attempt = 0
        while True:
            try:
                response = await self.calls.post(i + attempt, conv_id, text, caller_phone=PHONE,
                                                 request_id=f"{conv_id}-{n}")
            except httpx.TransportError:
                self.wire_errors += 1
                if time.monotonic() > deadline:
                    raise
                attempt += 1
                await asyncio.sleep(0.2)
                continue
            self.statuses.append(response.status_code)
            if response.status_code == 503 and time.monotonic() < deadline:
                attempt += 1
                await asyncio.sleep(0.2)
                continue
            assert response.status_code == 200, (conv_id, text, response.status_code, response.text)
            self.turns_done += 1
            data: dict[str, Any] = response.json()
            return data

    async def conversation(self, i: int) -> None:
        conv_id, texts = self.plans[i]
        async with self.gate:
            for n, text in enumerate(texts, start=1):
                answer = await self.turn(i, conv_id, n, text)
                if CONFIRMED_MARK in answer["reply"]:
                    self.confirmed[conv_id] = answer["reply"]
                if answer["ended"]:
                    return

    async def run(self) -> None:
        await asyncio.gather(*(self.conversation(i) for i in range(len(self.plans))))


async def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll ``predicate`` until true (AssertionError after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def crash_under_load(replicas: list[Replica], victim: Replica, conversations: int) -> Load:
    """Run the load over ``replicas``, kill -9 ``victim`` a third of the way in, restart it."""
    async with fleet([r.url for r in replicas], timeout=20) as calls:
        load = Load(calls, conversations, concurrency=10, seed=11)
        running = asyncio.create_task(load.run())
        # The whole load takes a few seconds; these bounds only stop a broken run early.
        await wait_until(lambda: load.turns_done >= conversations, 15)
        await asyncio.to_thread(victim.kill)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(victim.start)
        await asyncio.wait_for(running, 30)
        assert load.confirmed, "no caller got an appointment: the load did not exercise booking"
        answer = await calls.say(replicas.index(victim), "conv_after_restart", BOOK)
        assert answer["state"] == "QUALIF_NAME"
    return load


def assert_metrics_continue(replica: Replica) -> None:
    """The restarted replica's /metrics answers and counts the turns it served since."""
    exposition = replica.metrics()
    assert metric_sum(exposition, "rdv_conversations_started_total") >= 1
    assert metric_sum(exposition, "rdv_turn_duration_seconds_count") >= 1


@pytest.mark.slow
async def test_kill_9_under_load_single_replica_sqlite(spawn: Callable[..., Replica], tmp_path: Path) -> None:
    """One replica on its SQLite file, killed with SIGKILL mid-load and restarted: every
    announced appointment has its row, no slot twice, all states valid, service resumes."""
    replica = spawn()
    load = await crash_under_load([replica], replica, conversations=40)
    assert load.wire_errors > 0, "the kill did not interrupt any turn"
    async with opened_store(None, tmp_path / "data") as store:
        check_consistency(await view(store), load.confirmed)
    assert_metrics_continue(replica)


@pytest.mark.slow
@pytest.mark.postgres
async def test_kill_9_one_of_two_replicas_postgres(spawn: Callable[..., Replica], postgres_url: str,
                                                   tmp_path: Path) -> None:
    """Two replicas on PostgreSQL, one killed mid-load: its callers retry on the other with
    the same request ids; nothing announced is lost, nothing booked twice, all states valid."""
    env = {"RDV_DATABASE_URL": postgres_url}
    first, second = spawn(env, name="a"), spawn(env, name="b")
    load = await crash_under_load([first, second], first, conversations=40)
    async with opened_store(postgres_url, tmp_path / "data") as store:
        check_consistency(await view(store), load.confirmed)
    assert_metrics_continue(first)
