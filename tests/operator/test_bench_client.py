"""The bench's open-loop client against the bare echo it reads rdv's latency against: every
request offered is sent once, answered and timed, and a wrong answer is counted."""

from __future__ import annotations

import asyncio
import gc
import shutil
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
def echo() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``bench.echo`` served by uvicorn on a free port, as the bench serves it: port, process."""
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
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def echo_port(echo: tuple[int, subprocess.Popen[bytes]]) -> int:
    """The port the echo listens on."""
    return echo[0]


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


class CyclingEchoes(client.Echoes):
    """Echoes whose every request leaves reference cycles behind, as a client's objects may,
    and notes how many collections had run when each request was made."""

    def __init__(self, collections: list[int]) -> None:
        self.collections = collections
        self.seen: list[int] = []

    def next_turn(self) -> tuple[str, bytes]:
        for _ in range(50):
            knot: list[object] = []
            knot.append(knot)
        self.seen.append(len(self.collections))
        return super().next_turn()


def test_the_client_never_collects_its_garbage_while_it_offers_a_rate(echo_port: int) -> None:
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    echoes = CyclingEchoes(collections)
    gc.callbacks.append(count)
    try:
        latencies = asyncio.run(client.open_loop([echo_port], 200, 1.0, 4, echoes))
    finally:
        gc.callbacks.remove(count)
    assert len(latencies) == 200 and echoes.failed == 0
    # 10,000 cycles left while the requests were made would have set the collector off many
    # times; none ran between the first request and the last.
    assert echoes.seen[0] == echoes.seen[-1]
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_the_echo_at_a_fixed_rate_gives_its_latency_and_its_cpu_per_request(
    echo: tuple[int, subprocess.Popen[bytes]],
) -> None:
    from bench import __main__ as bench

    port, proc = echo
    res: dict[str, float | None] = {}
    bench.echo_fixed_rate(res, "echo", bench.EchoServer(port, proc.pid), 200, 1)
    assert set(res) == {"echo_p50_ms", "echo_p99_ms", "echo_cpu_steal_share", "echo_cpu_us_per_request"}
    assert 0 < res["echo_p50_ms"] <= res["echo_p99_ms"]
    # 200 requests cost the echo some CPU, and less than a whole second of it.
    assert 0 < res["echo_cpu_us_per_request"] < 5_000


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is installed by make test-deps")
def test_servers_compared_are_loaded_in_turn_and_their_slices_added_up(
    echo: tuple[int, subprocess.Popen[bytes]],
) -> None:
    """Two contenders on the same echo, two rounds of one-second slices: each gets both of
    its slices, the second round in the reverse order, their rates and each slice's figures
    kept and their requests and CPU added up."""
    from bench import __main__ as bench

    order: list[str] = []

    class Logged(bench.Contender):
        def load(self, seconds: int, connections: int) -> None:
            order.append(self.key)
            super().load(seconds, connections)

    port, proc = echo
    url = f"http://127.0.0.1:{port}/echo"
    a = Logged("a", proc.pid, url, bench.HERE / "echo.lua")
    b = Logged("b", proc.pid, url, bench.HERE / "echo.lua")
    bench.interleaved([a, b], 2, 2, slices=2)
    assert order == ["a", "b", "b", "a"]
    for one in (a, b):
        assert len(one.rates) == 2 and all(rate > 0 for rate in one.rates)
        assert one.requests > sum(one.rates) / 2 and one.non_2xx == 0
        assert one.cpu > 0 and one.per_request(one.cpu) == round(one.cpu / one.requests * 1e6, 1)
        assert len(one.slices) == 2 and sum(s[0] for s in one.slices) == one.requests
        assert sum(s[1] for s in one.slices) == pytest.approx(one.cpu)
        assert sum(s[2] for s in one.slices) == pytest.approx(one.cpu_alone)
    assert bench.slice_seconds(8) == 2 and bench.slice_seconds(3) == 1
