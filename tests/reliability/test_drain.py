"""SIGTERM drains: readiness fails first, liveness and turns keep answering, in-flight turns
finish with 200, then the process exits by itself."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable

import httpx
import pytest

from tests.reliability.procs import Replica
from tests.reliability.test_request_bodies import read_response

DRAIN = 2.0


async def slow_turn(
    replica: Replica, conv_id: str, seconds: float, started: asyncio.Event,
) -> tuple[int, dict[str, object]]:
    """One text turn whose body takes ``seconds`` to arrive: in flight the whole time
    (``started`` is set once its head is sent)."""
    body = json.dumps({"text": "bonjour je voudrais prendre rendez-vous"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", replica.port)
    writer.write(
        (
            f"POST /api/conversations/{conv_id}/messages HTTP/1.1\r\nHost: rdv\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    started.set()
    pause = seconds / len(body)
    for i in range(len(body)):
        writer.write(body[i:i + 1])
        await writer.drain()
        await asyncio.sleep(pause)
    status, raw = await read_response(reader, 10)
    writer.close()
    return status, json.loads(raw)


@pytest.mark.slow
async def test_sigterm_drains_then_exits(spawn: Callable[..., Replica]) -> None:
    """/readyz turns 503 at once while /healthz and new turns still answer; the turn in flight
    across the whole drain ends 200; then the process exits 0 without another signal."""
    replica = spawn(drain_seconds=DRAIN)
    started = asyncio.Event()
    in_flight = asyncio.create_task(slow_turn(replica, "conv_inflight", DRAIN + 1.5, started))
    await asyncio.wait_for(started.wait(), 10)
    replica.signal(signal.SIGTERM)
    async with httpx.AsyncClient(base_url=replica.url, timeout=5) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and "error" in ready.json()
        assert (await client.get("/healthz")).status_code == 200
        during = await asyncio.gather(*(
            client.post(f"/api/conversations/conv_drain_{i}/messages", json={"text": "bonjour"})
            for i in range(5)
        ))
        # Answered at all: the server still accepts during the drain (it stops after it).
        assert [r.status_code for r in during] == [200] * 5
    # Its body ends after the drain: the turn in flight across it is answered.
    status, answer = await in_flight
    assert status == 200, answer
    assert answer["state"] == "QUALIF_NAME"
    code = await asyncio.to_thread(replica.wait, 15)
    assert code == 0, replica.log()
