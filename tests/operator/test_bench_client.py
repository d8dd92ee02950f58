"""The bench's open-loop client against the bare echo it reads rdv's latency against: every
request offered is sent once, answered and timed, and a wrong answer is counted."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import client
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def echo_port() -> Iterator[int]:
    """``bench.echo`` served by uvicorn on a free port, as the bench serves it."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bench.echo:app", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the echo did not start"
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_every_request_offered_is_answered_with_its_body_and_timed(echo_port: int) -> None:
    echoes = client.Echoes()
    latencies = asyncio.run(client.open_loop([echo_port], 100, 1.0, 4, echoes))
    assert len(latencies) == echoes.sent == 100
    assert echoes.failed == 0 and echoes.unsent == 0
    assert all(0 < latency < 10 for latency in latencies)


def test_an_answer_that_is_not_the_body_is_counted(echo_port: int) -> None:
    echoes = client.Echoes()
    echoes.answered(200, b'{"text": "bonjour"}')
    echoes.answered(200, echoes.body[:-1])
    echoes.answered(500, echoes.body)
    echoes.answered(200, echoes.body)
    assert echoes.failed == 3
    asyncio.run(client.open_loop([echo_port], 50, 0.2, 2, echoes))
    assert echoes.failed == 3 and echoes.sent == 10
