"""Two real ``rdv serve`` replicas on one PostgreSQL database behave as one service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.callers import BOOK, CONFIRMED_MARK, PHONE, fleet, opened_store
from tests.reliability.conftest import fresh_schema, replicas
from tests.reliability.procs import Replica, metric_sum

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Slot holds off: the callers must be offered the same slots to race for them.
ENV = {"RDV_REAPER_INTERVAL_SECONDS": "1", "SESSION_TTL_MINUTES": "15", "RDV_SLOT_HOLD_SECONDS": "0"}


class Pair:
    """Two replicas sharing one database, and the URL of that database."""

    def __init__(self, first: Replica, second: Replica, database_url: str, data_dir: Path) -> None:
        self.replicas = (first, second)
        self.urls = [first.url, second.url]
        self.database_url = database_url
        self.data_dir = data_dir

    def metric(self, name: str, **labels: Any) -> float:
        """``name`` summed over both replicas' /metrics."""
        return sum(metric_sum(r.metrics(), name, **labels) for r in self.replicas)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two replicas on a fresh PostgreSQL schema, reaping every second, for this module."""
    tmp = tmp_path_factory.mktemp("pair")
    with fresh_schema() as url, replicas(tmp) as spawn:
        env = {**ENV, "RDV_DATABASE_URL": url}
        yield Pair(spawn(env, name="a"), spawn(env, name="b"), url, tmp)


# A conversation through many states without booking, so two runs propose the same slots.
SCRIPT = [
    BOOK,
    "Jean Dupont",
    "pas de préférence",
    "c'est où le cabinet ?",
    "euh",
    "aucun ne me va",
    "je voudrais parler à quelqu'un",
]


async def test_alternating_replicas_behave_as_one(pair: Pair) -> None:
    """Turns alternating between replicas give exactly the states and replies of a single
    replica, and a booking made across both replicas is seen the same from either."""
    async with fleet(pair.urls) as calls:
        single, alternating = [], []
        for i, text in enumerate(SCRIPT):
            one, both = await asyncio.gather(
                calls.say(0, "conv_single", text, caller_phone=PHONE),
                calls.say(i, "conv_alternating", text, caller_phone=PHONE),
            )
            keep = ("turn", "state", "reply", "ended", "action")
            single.append({k: one.get(k) for k in keep})
            alternating.append({k: both.get(k) for k in keep})
        assert alternating == single
        assert "WAIT_CONFIRM" in {a["state"] for a in single}

        for i, text in enumerate([BOOK, "Marie Curie", "l'après-midi", "le premier"]):
            answer = await calls.say(i + 1, "conv_alt_book", text, caller_phone=PHONE)
        assert answer["state"] == "CONFIRMED" and CONFIRMED_MARK in answer["reply"]
        seen = [(await calls.get(i, "/api/conversations/conv_alt_book")).json() for i in (0, 1)]
        assert seen[0] == seen[1]
        assert len(seen[0]["bookings"]) == 1
        assert len(seen[0]["turns"]) == 4


async def test_hundred_callers_race_for_one_slot(pair: Pair) -> None:
    """100 callers offered the same three slots say "le premier" at once on both replicas:
    exactly one gets it, 99 are told it was taken and offered others; one booking row."""
    n = 100
    ids = [f"conv_race_{i:03d}" for i in range(n)]
    gate = asyncio.Semaphore(20)
    before = pair.metric("rdv_booking_attempts_total", result="success")
    taken_before = pair.metric("rdv_booking_attempts_total", result="slot_taken")

    async with fleet(pair.urls, timeout=60) as calls:

        async def to_slots(i: int) -> str:
            async with gate:
                for text in (BOOK, "Jean Dupont", "le matin"):
                    answer = await calls.say(i, ids[i], text, caller_phone=PHONE)
                assert answer["state"] == "WAIT_CONFIRM", answer
                return str(answer["reply"])

        proposals = await asyncio.gather(*(to_slots(i) for i in range(n)))
        assert len(set(proposals)) == 1, "the callers were not offered the same slots"

        responses = await asyncio.gather(*(calls.post(i, ids[i], "le premier", caller_phone=PHONE) for i in range(n)))
        assert [r.status_code for r in responses] == [200] * n, {r.status_code: r.text for r in responses}
        answers = [r.json() for r in responses]
        winners = [a for a in answers if a["state"] == "CONFIRMED"]
        assert len(winners) == 1, [a["state"] for a in answers]
        assert CONFIRMED_MARK in winners[0]["reply"]
        losers = [a for a in answers if a["state"] != "CONFIRMED"]
        assert all(a["state"] == "WAIT_CONFIRM" and CONFIRMED_MARK not in a["reply"] for a in losers)

    async with opened_store(pair.database_url, pair.data_dir) as store:
        timelines = await asyncio.gather(*(store.timeline(c) for c in ids))
    booked = [b for t in timelines for b in t["bookings"]]
    assert len(booked) == 1 and booked[0]["conv_id"] == winners[0]["conv_id"]
    assert pair.metric("rdv_booking_attempts_total", result="success") - before == 1
    assert pair.metric("rdv_booking_attempts_total", result="slot_taken") - taken_before == n - 1


async def test_retried_turn_on_other_replica_is_replayed(pair: Pair) -> None:
    """A booking turn sent with a request id to one replica and retried on the other (also
    both at once) returns the stored reply and books once."""
    async with fleet(pair.urls) as calls:
        for conv in ("conv_retry_seq", "conv_retry_par"):
            for text in (BOOK, "Paul Durand", "l'après-midi"):
                await calls.say(0, conv, text, caller_phone=PHONE)
        first = await calls.say(0, "conv_retry_seq", "le deuxième", caller_phone=PHONE, request_id="turn-4")
        again = await calls.say(1, "conv_retry_seq", "le deuxième", caller_phone=PHONE, request_id="turn-4")
        assert first["state"] == "CONFIRMED" and CONFIRMED_MARK in first["reply"]
        assert {k: again[k] for k in ("turn", "state", "reply")} == {k: first[k] for k in ("turn", "state", "reply")}

        both = await asyncio.gather(*(
            calls.say(i, "conv_retry_par", "le troisième", caller_phone=PHONE, request_id="turn-4")
            for i in (0, 1)
        ))
        assert both[0]["reply"] == both[1]["reply"] and both[0]["turn"] == both[1]["turn"] == 4
        for conv in ("conv_retry_seq", "conv_retry_par"):
            timeline = (await calls.get(1, f"/api/conversations/{conv}")).json()
            assert len(timeline["bookings"]) == 1, timeline["bookings"]
            assert len(timeline["turns"]) == 4


async def backdate(database_url: str, conv_ids: list[str], minutes: int) -> None:
    """Move the conversations' ``last_seen_at`` into the past, as if the callers went silent."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        status = await conn.execute(
            "UPDATE conversations SET last_seen_at = last_seen_at - make_interval(mins => $2) "
            "WHERE conv_id = ANY($1::text[])",
            conv_ids, minutes,
        )
    finally:
        await conn.close()
    assert status == f"UPDATE {len(conv_ids)}", status


async def reaper_lease(database_url: str) -> tuple[str, Any] | None:
    """The reaper's lease (holder, until): renewed at each reaping round."""
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow("SELECT holder, until FROM leases WHERE name = 'reaper'")
    finally:
        await conn.close()
    return None if row is None else (row["holder"], row["until"])


async def test_reaper_counts_each_expiry_once(pair: Pair) -> None:
    """Idle conversations are expired once across both reaping replicas: the expiry counters
    summed over both /metrics equal the number of idle conversations, and stay there."""
    idle = [f"conv_idle_{i}" for i in range(6)]
    fresh = "conv_still_talking"
    before = pair.metric("rdv_session_expiries_total")
    async with fleet(pair.urls) as calls:
        for i, conv in enumerate([*idle, fresh]):
            await calls.say(i, conv, BOOK)
        await backdate(pair.database_url, idle, 60)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and pair.metric("rdv_session_expiries_total") - before < len(idle):
            await asyncio.sleep(0.5)
        # A few more reaping rounds (each renews the lease), then the count has not moved.
        rounds: set[tuple[str, Any] | None] = set()
        deadline = time.monotonic() + 15
        while len(rounds - {None}) <= 3 and time.monotonic() < deadline:
            rounds.add(await reaper_lease(pair.database_url))
            await asyncio.sleep(0.2)
        assert len(rounds - {None}) > 3, "the reaper stopped running"
        assert pair.metric("rdv_session_expiries_total") - before == len(idle)
        async with opened_store(pair.database_url, pair.data_dir) as store:
            for conv in idle:
                stored = await store.load(conv)
                assert stored.conversation.outcome == "expired", stored
            assert (await store.load(fresh)).conversation.outcome is None
        answer = await calls.say(1, idle[0], "bonjour")
        assert answer["state"] in ("START", "QUALIF_NAME")
