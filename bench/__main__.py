"""``python -m bench``: one run, loopback only, bounded; prints a table, writes bench/results.json.

Load generator: ``wrk`` (Debian) for saturation throughput — a C event loop that needs a
fraction of a core for tens of thousands of requests per second, so the server, not the
client, is what is measured; its Lua hooks drive complete conversations. A lean
raw-asyncio client (bench/client.py) for what wrk cannot do: a fixed offered rate and the
time to the first SSE byte.

A steady state: every patient books and then cancels, each conversation followed to its end
(a lost race is answered again, never abandoned with proposals held), so the calendar frees
what it books; it is filled to ``--prefill`` of its slots before any measured phase, and the
fill at the start and the end of the main phase is reported.

The phases with one server, the one-replica PostgreSQL run included, pin it to one core and its
load and span exporter to another (PostgreSQL's own server, external, is never pinned); the
phases with several server processes share the machine (see ``PINNED``).

The servers a ratio compares (the echo, rdv with telemetry on and off; the one-replica
PostgreSQL run and that SQLite server) run at once and are loaded in turn, a slice each, a few
rounds (see ``interleaved``), so that a shared machine's drifting speed falls on all of them.

Beside each rate, the CPU time the server spent per turn (``*_cpu_us_per_turn``), read from
``/proc`` (utime + stime of the server and every process it started, before and after the
phase, divided by the turns it answered): on a shared machine, a rate varies with the
neighbours' load, the CPU a turn costs much less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from bench import client
from bench import postgres as bench_postgres
from bench import replay as bench_replay
from bench.procs import StealMeter, children, named_cpu_seconds, process_cpu_seconds, process_tree
from telemetry.names import CALENDAR_OPERATIONS, SPANS_DROPPED

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
# The servers a ratio compares are loaded in turn, this many slices each (see interleaved).
INTERLEAVED_SLICES = 4

TARGETS: dict[str, tuple[str, Callable[[float], bool]]] = {
    "turn_vs_baseline_ratio": ("≥ 0.15", lambda v: v >= 0.15),
    "turn_vs_baseline_cpu_ratio": ("≥ 0.15", lambda v: v >= 0.15),
    "telemetry_overhead_cpu_ratio": ("≤ 1.20", lambda v: v <= 1.20),
    "fixed_rate_p99_ms": ("< 5", lambda v: v < 5),
    "fixed_rate_high_p99_ms": ("< 10", lambda v: v < 10),
    "postgres_round_trips_per_turn": ("≤ 3", lambda v: v <= 3),
    "postgres_one_replica_vs_sqlite_ratio": ("≥ 0.80", lambda v: v >= 0.80),
    "postgres_fixed_rate_p99_ms": ("< 20", lambda v: v < 20),
    "sse_first_byte_p50_ms": ("< 5", lambda v: v < 5),
    "understanding_us_per_utterance": ("< 1000", lambda v: v < 1000),
    "extraction_us_per_turn": ("< 1000", lambda v: v < 1000),
    "rss_mb_after_10k_conversations": ("< 150", lambda v: v < 150),
    "replay_busy_day_seconds": ("< 10", lambda v: v < 10),
}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Poll ``url`` until it answers 200 (or the process dies)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code in (200, 405):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds}s")


# The single-server phases (and the one-replica PostgreSQL run, compared with the SQLite one)
# run as the profile was taken: the server on one core, the load generator (wrk, the
# fixed-rate client) and the server's span exporter on the other, so that neither takes the
# server's core (nor its caches) while it serves. ``--no-pin``, or a machine with one core,
# leaves every process where the system puts it.
PINNED: tuple[int, int] | None = None


def pin_cores(enabled: bool) -> tuple[int, int] | None:
    """(server core, load core) when pinning is on and this process may use two cores."""
    cores = sorted(os.sched_getaffinity(0))
    return (cores[0], cores[1]) if enabled and len(cores) >= 2 else None


def _on_core(core: int | None) -> Any:
    """A ``preexec_fn`` that puts the new process on ``core`` (None: no pinning)."""
    if core is None:
        return None
    return lambda: os.sched_setaffinity(0, {core})


def server_core() -> int | None:
    """The core of the server under test (None: not pinned)."""
    return PINNED[0] if PINNED else None


def load_core() -> int | None:
    """The core of the load generators and of the server's span exporter (None: not pinned)."""
    return PINNED[1] if PINNED else None


def pin_exporter(pid: int) -> None:
    """Move the span exporter started by server ``pid`` (every thread of it) to the load core."""
    core = load_core()
    if core is None:
        return
    for child in process_tree(pid):
        try:
            if b"telemetry.sidecar" not in Path(f"/proc/{child}/cmdline").read_bytes():
                continue
            for task in os.listdir(f"/proc/{child}/task"):
                os.sched_setaffinity(int(task), {core})
        except OSError:
            continue


@contextmanager
def on_load_core() -> Iterator[None]:
    """Within the block, this process (the fixed-rate client) runs on the load core."""
    core = load_core()
    if core is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def process(cmd: list[str], env: dict[str, str], ready_url: str | None, log: Path,
            core: int | None = None, cwd: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server process (on ``core``, and every process it starts with it; in ``cwd``),
    wait until it answers, and stop it (whole group) afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_on_core(core), cwd=cwd)
        try:
            if ready_url:
                wait_ready(ready_url, proc)
            yield proc
        finally:
            with _suppress():
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                with _suppress():
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@contextmanager
def _suppress() -> Iterator[None]:
    with contextlib.suppress(ProcessLookupError):
        yield


# Each run's patients get conversation ids and phone numbers of their own (turns.lua's
# PREFIX and BASE): a phase's warm-up and its measured runs never meet the same patient.
# Numbers are +33 61 or 62 and 7 digits (valid French mobiles; client.phone): runs take
# blocks of 100,000 below 15,000,000 (one wrk thread's range: every run has one), the
# unmeasured fill and warm-up clients the numbers above.
_RUNS = iter(range(1, 1_000_000))
PATIENT_BLOCK = 100_000


def patients_base(run_no: int) -> int:
    """The first phone number (8 digits after +336) of a run's patients."""
    return (run_no % (15_000_000 // PATIENT_BLOCK)) * PATIENT_BLOCK


def wrk_cmd(url: str, script: Path, seconds: int, connections: int, prefix: str | None = None) -> list[str]:
    """The wrk command line, one thread (``prefix`` names the conversations of turns.lua;
    each run gets its own range of patients' numbers)."""
    run_no = next(_RUNS)
    return ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url, "--",
            prefix or f"b{run_no}_", str(patients_base(run_no))]


@dataclass
class WrkRun:
    """What one wrk run printed: its rate, its requests, and turns.lua's conversation counts."""

    rate: float
    requests: int
    non_2xx: int
    conversations: dict[str, int]


def wrk_result(stdout: str, stderr: str = "") -> WrkRun:
    """Parse wrk's summary (and turns.lua's ``conversations:`` line)."""
    match = re.search(r"Requests/sec:\s+([\d.]+)", stdout)
    requests = re.search(r"(\d+) requests in", stdout)
    if not match or not requests:
        raise RuntimeError(f"wrk printed no rate:\n{stdout}\n{stderr}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", stdout)
    if errors:
        print(f"  note: {errors.group(1)} non-2xx answers", file=sys.stderr)
    convs = re.search(r"conversations: (.*)", stdout)
    counts: dict[str, int] = {}
    if convs:
        words = convs.group(1).split()
        counts = {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}
    return WrkRun(float(match.group(1)), int(requests.group(1)), int(errors.group(1)) if errors else 0, counts)


def wrk(url: str, script: Path, seconds: int, connections: int) -> WrkRun:
    """What wrk measured (wrk on the load core when pinned)."""
    done = subprocess.run(
        wrk_cmd(url, script, seconds, connections),
        capture_output=True, text=True, timeout=seconds + 30, check=True, preexec_fn=_on_core(load_core()),
    )
    return wrk_result(done.stdout, done.stderr)


def wrk_each(urls: list[str], script: Path, seconds: int, connections: int, core: int | None = None) -> list[WrkRun]:
    """One wrk per URL, run at the same time (all on ``core``, None: not pinned): what each measured."""
    procs = [
        subprocess.Popen(
            wrk_cmd(url, script, seconds, connections),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_on_core(core),
        )
        for url in urls
    ]
    runs = []
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 30)
        runs.append(wrk_result(out, err))
    return runs


def wrk_together(urls: list[str], script: Path, seconds: int, connections: int) -> WrkRun:
    """One wrk per URL, run at the same time: total rate and requests."""
    runs = wrk_each(urls, script, seconds, connections)
    counts: dict[str, int] = {}
    for one in runs:
        for key, value in one.conversations.items():
            counts[key] = counts.get(key, 0) + value
    return WrkRun(sum(r.rate for r in runs), sum(r.requests for r in runs), sum(r.non_2xx for r in runs), counts)


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """CPU seconds (user + system) spent by ``pid`` and every process below it, including
    children already reaped (``tree=False``: by ``pid`` alone)."""
    return sum(process_cpu_seconds(one) or 0.0 for one in (process_tree(pid) if tree else [pid]))


class CpuMeter:
    """CPU seconds of a server (its whole process tree, or the serving process alone)
    between its creation and ``per_turn``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.before = cpu_seconds(pid)
        self.before_alone = cpu_seconds(pid, tree=False)

    def spent(self) -> tuple[float, float]:
        """CPU seconds since the meter started: the whole tree (the server and the processes
        it started, such as its span exporter), and the serving process alone."""
        return cpu_seconds(self.pid) - self.before, cpu_seconds(self.pid, tree=False) - self.before_alone

    def per_turn(self, turns: int) -> float | None:
        """µs of CPU per turn since the meter started, of the whole tree."""
        return round(self.spent()[0] / turns * 1e6, 1) if turns else None

    def per_turn_alone(self, turns: int) -> float | None:
        """µs of CPU per turn of the serving process alone."""
        return round(self.spent()[1] / turns * 1e6, 1) if turns else None


def rss_mb(pid: int) -> float:
    """Resident memory of one process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def understanding_us() -> float:
    """Mean time, in µs, to understand one utterance (intent, name, preference, yes/no, filler)."""
    from service.engine import nlu

    utterances = [
        "bonjour je voudrais prendre rendez-vous s'il vous plaît", "euh", "c'est jean dupont",
        "plutôt mardi prochain en fin de matinée", "le deuxième", "oui c'est ça",
        "non ça ne m'arrange pas", "zéro six douze trente-quatre cinquante-six soixante-dix-huit",
        "je voudrais pas annuler je voudrais déplacer", "c'est où votre cabinet",
        "après dix-sept heures si possible", "je m'appelle marie-claire n'diaye",
        "quatre vingt dix", "pas de préférence", "oui mais plutôt le deuxième",
    ]
    now = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    nlu.warm()
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        for text in utterances:
            nlu.is_filler(text)
            nlu.intent(text)
            nlu.name(text)
            nlu.preference(text, now)
            nlu.yes_no(text)
    return (time.perf_counter() - start) / (rounds * len(utterances)) * 1e6


def extraction_us() -> float:
    """Mean time, in µs, of the one extraction pass (``extract``) over the development set's
    whole turns, each understood cold (the per-utterance caches emptied before each turn, as
    a new caller turn finds them)."""
    import json

    from service.config import load_practice
    from service.engine import nlu
    from service.engine.nlu.choice import SlotRef
    from service.engine.nlu.extract import ExtractContext, extract
    from service.engine.nlu.normalize import analyse
    from service.engine.nlu.tokens import tokenize

    practice = load_practice(None)
    turns = []
    for line in (HERE.parent / "tests" / "nlu" / "data" / "turn.jsonl").read_text("utf-8").splitlines():
        record = json.loads(line)
        context = record["context"]
        slots = tuple(SlotRef(datetime.fromisoformat(s["start"]), s["label"]) for s in context.get("slots", ()))
        turns.append((record["text"], ExtractContext(context["state"], datetime.fromisoformat(context["now"]),
                                                     slots, practice)))
    nlu.warm()
    rounds = 20
    spent = 0.0
    for _ in range(rounds):
        for text, context in turns:
            tokenize.cache_clear()
            analyse.cache_clear()
            start = time.perf_counter()
            extract(text, context)
            spent += time.perf_counter() - start
    return spent / (rounds * len(turns)) * 1e6


def understanding_long_us() -> float:
    """Mean time, in µs, to understand a 10,000-character utterance (every task; the input is
    cut to a bounded turn first)."""
    from service.engine import nlu

    text = "je voudrais prendre rendez-vous " * 400
    now = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    slots = [nlu.SlotRef(now.replace(day=5, hour=h), "") for h in (9, 11, 14)]
    rounds = 50
    start = time.perf_counter()
    for _ in range(rounds):
        nlu.is_filler(text)
        nlu.intent(text)
        nlu.name(text)
        nlu.preference(text, now)
        nlu.yes_no(text)
        nlu.phone(text)
        nlu.slot_choice(text, slots)
    return (time.perf_counter() - start) / rounds * 1e6


def span_encoding(conversations: int = 30) -> dict[str, float]:
    """The floor of the span exporter's CPU: the spans of the scripted booking conversation
    (``bench.postgres.SCRIPT``, on the text API of an app in this process, SQLite in a
    temporary directory, all telemetry on), then encoded as the exporter process encodes
    them, by the OpenTelemetry SDK's OTLP encoder (best of five rounds)."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()

    async def play(data_dir: str) -> int:
        turns = 0
        async with bench_postgres.text_api(data_dir, span_exporter=exporter) as http:
            for conv in range(conversations):
                for i, body in enumerate(bench_postgres.script_bodies(conv)):
                    answer = await http.post(f"/api/conversations/enc{conv}/messages", json=body)
                    if answer.status_code != 200:
                        raise RuntimeError(f"turn {i + 1}: {answer.status_code} {answer.text}")
                    turns += 1
        return turns

    with tempfile.TemporaryDirectory(prefix="rdv-bench-spans-") as data_dir:
        turns = asyncio.run(play(data_dir))
    spans = exporter.get_finished_spans()
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        encode_spans(spans).SerializeToString()
        best = min(best, time.process_time() - start)
    per_span = best / len(spans) * 1e6
    return {
        "span_records_per_turn": round(len(spans) / turns, 2),
        "span_encode_us_per_span": round(per_span, 1),
        "span_encode_us_per_turn": round(per_span * len(spans) / turns, 1),
    }


def floors(res: dict[str, Any], cores: int | None = None) -> dict[str, float]:
    """What the CPU ratios would read on this machine if telemetry cost nothing but the
    OpenTelemetry SDK's encoding of the spans (``span_encode_us_per_turn``, the least the
    exporter process can spend): telemetry on ÷ off at best, turn ÷ echo at best; and what
    telemetry costs the serving process itself per turn. Then the most one PostgreSQL replica
    could serve, over the SQLite server's rate, if the machine's ``cores`` (default: those this
    process may run on) did nothing but that replica's and its database's work at the CPU per
    turn measured (the load generator's own CPU left out: a generous bound). A target beyond
    its floor cannot be met by rdv's own code on this machine, whatever it does with the rest."""
    off, encode = res.get("telemetry_off_cpu_us_per_turn"), res.get("span_encode_us_per_turn")
    found: dict[str, float] = {}
    if off and encode is not None:
        found["telemetry_overhead_cpu_floor_ratio"] = round((off + encode) / off, 3)
        if res.get("baseline_cpu_us_per_request"):
            found["turn_vs_baseline_cpu_ceiling_ratio"] = round(res["baseline_cpu_us_per_request"] / (off + encode), 3)
    on_serving = res.get("telemetry_on_serving_cpu_us_per_turn")
    off_serving = res.get("telemetry_off_serving_cpu_us_per_turn")
    if on_serving and off_serving:
        found["telemetry_serving_cpu_us_per_turn"] = round(on_serving - off_serving, 1)
    replica = res.get("postgres_one_replica_cpu_us_per_turn")
    database = res.get("postgres_one_replica_database_cpu_us_per_turn")
    if replica and database and res.get("postgres_sqlite_turn_rps"):
        cores = cores or len(os.sched_getaffinity(0))
        most = cores * 1_000_000 / (replica + database)
        found["postgres_one_replica_vs_sqlite_ceiling_ratio"] = round(most / res["postgres_sqlite_turn_rps"], 3)
    return found


def rdv_env(data_dir: Path, telemetry: bool, sink_port: int | None) -> dict[str, str]:
    """The environment of a rdv server under test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RDV_", "OTEL_", "PROMETHEUS_"))}
    env.update({
        "RDV_DATA_DIR": str(data_dir),
        "RDV_PRACTICE_FILE": str(HERE / "practice.toml"),
        "RDV_TELEMETRY": "true" if telemetry else "false",
        "OTEL_TRACES_EXPORTER": "otlp" if (telemetry and sink_port) else "none",
    })
    if telemetry and sink_port:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
    return env


def calendar_fill(url: str) -> dict[str, Any]:
    """How full the server's calendar is (the operator's ``/api/stats/bookings``)."""
    found = httpx.get(f"{url}/api/stats/bookings", timeout=60).json()["calendar"]
    return {"slots": found["slots"], "booked": found["booked"], "share": found["booked_share"]}


def prefill(port: int, share: float, label: str) -> dict[str, Any]:
    """Book (and keep) appointments through the text API until ``share`` of the calendar's
    slots are taken; the fill reached."""
    url = f"http://127.0.0.1:{port}"
    fill = calendar_fill(url)
    rounds = 0
    while fill["share"] < share and rounds < 50:
        missing = int((share - fill["share"]) * fill["slots"]) + 1
        asyncio.run(client.closed_loop(port, missing * 4, 16, f"fill{label}{rounds}_", False,
                                       base=15_000_000 + rounds * 100_000, keep=True))
        fill = calendar_fill(url)
        rounds += 1
    return fill


@contextmanager
def serve(py: str, port: int, env: dict[str, str], log: Path, workers: int = 1,
          pinned: bool = True, source: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A rdv server on ``port`` (yields its process); one process serving alone is pinned to the
    server core, its span exporter to the load core (``pinned=False``: not pinned, as when
    several servers share the machine). ``source``: a directory holding another version's
    ``service`` and ``telemetry`` packages, run instead of this checkout's (``bench.ab``)."""
    cmd = [py, "-m", "service.cli", "serve", "--port", str(port)]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    if source is not None:
        # ``python -m`` looks in its working directory first, then PYTHONPATH, and the
        # span exporter the server starts inherits both.
        env = {**env, "PYTHONPATH": str(source)}
    alone = pinned and workers == 1
    with process(cmd, env, f"http://127.0.0.1:{port}/readyz", log, server_core() if alone else None,
                 cwd=source) as proc:
        if alone:
            pin_exporter(proc.pid)
        yield proc


def measured_wrk(res: dict[str, Any], key: str, pid: int, url: str, seconds: int, connections: int) -> WrkRun:
    """A warm-up, then one measured wrk run: its rate as ``<key>_turn_rps`` and the CPU per
    turn of ``pid`` and every process below it (a supervisor and its workers) as
    ``<key>_cpu_us_per_turn``."""
    wrk(url, HERE / "turns.lua", 2, connections)
    meter = CpuMeter(pid)
    done = wrk(url, HERE / "turns.lua", seconds, connections)
    res[f"{key}_turn_rps"] = done.rate
    res[f"{key}_cpu_us_per_turn"] = meter.per_turn(done.requests)
    if done.non_2xx:
        res[f"{key}_non_2xx"] = done.non_2xx
    if done.conversations.get("given_up") or done.conversations.get("refused"):
        res[f"{key}_conversations"] = done.conversations
    return done


class EchoServer(NamedTuple):
    """The bare echo, still up after the main phase: its port and process."""

    port: int
    pid: int


@dataclass
class Contender:
    """One server of an interleaved measurement: results go under ``key`` (``<key>_rps``,
    ``<key>_cpu_us_per_request``… as :func:`interleaved` names them)."""

    key: str
    pid: int
    url: str
    script: Path = HERE / "turns.lua"
    database: bool = False  # also the local PostgreSQL server's CPU while this one is loaded
    requests: int = 0
    rates: list[float] = dataclasses.field(default_factory=list)
    cpu: float = 0.0
    cpu_alone: float = 0.0
    db_cpu: float | None = 0.0
    non_2xx: int = 0
    conversations: dict[str, int] = dataclasses.field(default_factory=dict)
    # Each slice's (requests answered, CPU seconds of the tree, of the serving process).
    slices: list[tuple[int, float, float]] = dataclasses.field(default_factory=list)

    def load(self, seconds: int, connections: int) -> None:
        """One wrk slice against this server, its CPU (and the database's) read around it."""
        meter = CpuMeter(self.pid)
        db = named_cpu_seconds("postgres") if self.database else None
        done = wrk(self.url, self.script, seconds, connections)
        tree, alone = meter.spent()
        after = named_cpu_seconds("postgres") if self.database else None
        self.add(done, tree, alone, None if db is None or after is None else after - db)

    def add(self, done: WrkRun, tree: float, alone: float, database: float | None = None) -> None:
        """Count one slice in: what wrk measured, the CPU seconds of the tree and of the
        serving process meanwhile (and of the database, when measured: None, unknown, makes
        the total unknown)."""
        if self.database:
            self.db_cpu = None if database is None or self.db_cpu is None else self.db_cpu + database
        self.cpu += tree
        self.cpu_alone += alone
        self.slices.append((done.requests, tree, alone))
        self.requests += done.requests
        self.rates.append(done.rate)
        self.non_2xx += done.non_2xx
        for name, count in done.conversations.items():
            self.conversations[name] = self.conversations.get(name, 0) + count

    def per_request(self, spent: float | None) -> float | None:
        """µs of ``spent`` CPU seconds per request answered."""
        return round(spent / self.requests * 1e6, 1) if spent is not None and self.requests else None

    @property
    def rate(self) -> float:
        """Requests per second over its slices (equal in length)."""
        return round(statistics.mean(self.rates), 2) if self.rates else 0.0


def slice_seconds(seconds: int, slices: int = INTERLEAVED_SLICES) -> int:
    """How long each slice of an interleaved measurement of ``seconds`` lasts (whole seconds:
    wrk takes no less)."""
    return max(1, seconds // slices)


def interleaved(contenders: list[Contender], seconds: int, connections: int, slices: int = INTERLEAVED_SLICES) -> None:
    """Each contender warmed up (2 s), then loaded in turn for :func:`slice_seconds` at a
    time, ``slices`` rounds: the servers compared by a ratio see the same machine, whose
    speed may drift by tens of percent within a minute on a shared host, instead of one
    minute each. Each server is alone under load during its slices (the others are idle).
    Every other round goes in the reverse order, so that none is always loaded first (right
    after a pause) or last."""
    for one in contenders:
        wrk(one.url, one.script, 2, connections)
    for round_no in range(slices):
        for one in contenders if round_no % 2 == 0 else contenders[::-1]:
            one.load(slice_seconds(seconds, slices), connections)


def interleaved_results(res: dict[str, Any], one: Contender) -> None:
    """``one``'s figures into ``res``: turns/s, CPU per turn of its tree and of its serving
    process (and of the local PostgreSQL server when measured), refusals."""
    res[f"{one.key}_turn_rps"] = one.rate
    res[f"{one.key}_cpu_us_per_turn"] = one.per_request(one.cpu)
    res[f"{one.key}_serving_cpu_us_per_turn"] = one.per_request(one.cpu_alone)
    if one.database:
        res[f"{one.key}_database_cpu_us_per_turn"] = one.per_request(one.db_cpu)
    if one.non_2xx:
        res[f"{one.key}_non_2xx"] = one.non_2xx
    if one.conversations.get("given_up") or one.conversations.get("refused"):
        res[f"{one.key}_conversations"] = one.conversations


def fixed_rate(res: dict[str, Any], key: str, pid: int | None, ports: list[int], rate: float, seconds: int,
               connections: int = 32) -> None:
    """``rate`` turns/s offered for ``seconds`` over ``ports``: p50/p99, CPU per turn, and the
    share of the machine's CPU time its host stole meanwhile."""
    meter = CpuMeter(pid) if pid else None
    steal = StealMeter()
    run_no = next(_RUNS)
    with on_load_core() if len(ports) == 1 else contextlib.nullcontext():
        latencies, convs = asyncio.run(client.fixed_rate(ports, rate, seconds, connections, f"{key}{run_no}_",
                                                         base=patients_base(run_no)))
    res[f"{key}_offered"] = rate
    res[f"{key}_turns"] = len(latencies)
    latency_figures(res, key, latencies, steal)
    if meter:
        res[f"{key}_cpu_us_per_turn"] = meter.per_turn(convs.sent)
        res[f"{key}_serving_cpu_us_per_turn"] = meter.per_turn_alone(convs.sent)
    counts = convs.counts()
    if counts["unsent"]:
        res[f"{key}_unsent"] = counts["unsent"]
    if counts["given_up"] or counts["refused"]:
        res[f"{key}_conversations"] = counts


def echo_fixed_rate(res: dict[str, Any], key: str, echo: EchoServer, rate: float, seconds: int) -> None:
    """``rate`` requests/s offered to the bare ``echo`` for ``seconds``, by the
    client that offers rdv its fixed rates: p50/p99, what this machine gives a handler that
    does nothing, and the share of its CPU time the host stole meanwhile; then the echo's CPU
    per request at that rate, which a server that waits for each request pays on this machine
    beyond its cost under saturation (its wakes from idle)."""
    echoes = client.Echoes()
    steal = StealMeter()
    meter = CpuMeter(echo.pid)
    with on_load_core():
        latencies = asyncio.run(client.open_loop([echo.port], rate, seconds, 32, echoes))
    if echoes.failed or echoes.unsent:
        raise RuntimeError(f"echo at {rate:.0f}/s: {echoes.failed} wrong answers, {echoes.unsent} not sent")
    latency_figures(res, key, latencies, steal)
    res[f"{key}_cpu_us_per_request"] = meter.per_turn(echoes.sent)


def latency_figures(res: dict[str, Any], key: str, latencies: list[float], steal: StealMeter) -> None:
    """A fixed-rate phase's p50 and p99 (``latencies`` in seconds), and the share of the
    machine's CPU time its host stole since ``steal`` started, as ``<key>_…``."""
    res[f"{key}_p50_ms"] = round(percentile(latencies, 0.50) * 1000, 3)
    res[f"{key}_p99_ms"] = round(percentile(latencies, 0.99) * 1000, 3)
    res[f"{key}_cpu_steal_share"] = steal.share()


def main_phase(res: dict[str, Any], servers: contextlib.ExitStack, py: str, work: Path, sink_port: int,
               seconds: int, fill: float) -> tuple[EchoServer, Contender]:
    """The bare echo, rdv with all telemetry on and rdv with telemetry off, each alone on the
    server core, loaded in turn (:func:`interleaved`): their rates, CPU per request and the
    ratios between them; the calendar's fill and the bookings' outcome on the telemetry-on
    server. The servers stay up in ``servers`` (the echo's port and the telemetry-on server
    are returned, for the echo's fixed rates and the PostgreSQL comparison)."""
    print(f"baseline: bare Starlette echo; rdv, telemetry on and off: calendar filled to {fill:.0%}, then "
          f"patients who book and cancel; in turn, {INTERLEAVED_SLICES} × {slice_seconds(seconds)}s each …",
          file=sys.stderr)
    echo_port = free_port()
    echo = servers.enter_context(process(
        [py, "-m", "uvicorn", "bench.echo:app", "--port", str(echo_port), "--loop", "uvloop",
         "--http", "httptools", "--log-level", "warning", "--no-access-log"],
        dict(os.environ), None, work / "echo.log", server_core(),
    ))
    rdv: dict[str, Contender] = {}
    fills: dict[str, Any] = {}
    for label, telemetry in (("on", True), ("off", False)):
        port = free_port()
        proc = servers.enter_context(serve(py, port, rdv_env(work / f"data-{label}", telemetry, sink_port),
                                           work / f"rdv-{label}.log"))
        fills[label] = prefill(port, fill, label)
        rdv[label] = Contender(f"telemetry_{label}", proc.pid, f"http://127.0.0.1:{port}")
    baseline = Contender("baseline", echo.pid, f"http://127.0.0.1:{echo_port}/echo", HERE / "echo.lua")
    interleaved([baseline, rdv["on"], rdv["off"]], seconds, 16)
    res["interleaved_slices"] = INTERLEAVED_SLICES
    res["baseline_rps"] = baseline.rate
    res["baseline_cpu_us_per_request"] = baseline.per_request(baseline.cpu)
    for label, one in rdv.items():
        interleaved_results(res, one)
        res[f"turn_rps_telemetry_{label}"] = res.pop(f"telemetry_{label}_turn_rps")
    url = rdv["on"].url
    end_fill = calendar_fill(url)
    res["calendar_slots"] = fills["on"]["slots"]
    res["calendar_fill_start"] = fills["on"]["share"]
    res["calendar_fill_end"] = end_fill["share"]
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    attempts = _sum(metrics, "rdv_booking_attempts_total")
    res["booking_success_share"] = round(
        _sum(metrics, 'rdv_booking_attempts_total{channel="text",result="success"}') / attempts, 3
    ) if attempts else None
    res["confirmed_conversations"] = _sum(metrics, 'rdv_conversations_ended_total{channel="text",outcome="confirmed",')
    # The span exporter's CPU counts only if it exported every span it was given.
    res["spans_dropped"] = spans_dropped(metrics)
    return EchoServer(echo_port, echo.pid), Contender("postgres_sqlite", rdv["on"].pid, rdv["on"].url)


def run(seconds: int, rate: float, soak_seconds: int = 300, calendar_rate: float = 50.0,
        high_rate: float = 800.0, fill: float = 0.1) -> dict[str, Any]:
    """Every measurement of the issue, in one run; returns the results."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: run `make bench` (it installs the Debian package)")
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="rdv-bench-"))
    res: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "seconds": seconds,
                           "prefill_share": fill, "pinned_cores": list(PINNED) if PINNED else None}
    steal = StealMeter()
    try:
        print("replay: a store of 10,000 conversations, built then replayed in process …", file=sys.stderr)
        res.update(bench_replay.measure(workdir=work))
        sink_port = free_port()
        with process([py, "-m", "bench.sink", str(sink_port)], dict(os.environ), None, work / "sink.log"), \
                contextlib.ExitStack() as compared:
            echo, sqlite_on = main_phase(res, compared, py, work, sink_port, seconds, fill)
            # The machine's own latency floor at the rates rdv's p99 targets are read at.
            for key, offered in (("baseline_fixed_rate", rate), ("baseline_fixed_rate_high", high_rate)):
                if offered > 0:
                    echo_fixed_rate(res, key, echo, offered, seconds)

            print(f"rdv: fixed rates {rate:.0f} and {high_rate:.0f} turns/s for {seconds}s each, then SSE and "
                  "memory …", file=sys.stderr)
            port = free_port()
            with serve(py, port, rdv_env(work / "data-rate", True, sink_port), work / "rdv-rate.log") as proc:
                prefill(port, fill, "rate")
                asyncio.run(client.closed_loop(port, 400, 8, "warm", False, base=18_000_000))
                fixed_rate(res, "fixed_rate", proc.pid, [port], rate, seconds)
                if high_rate > 0:
                    fixed_rate(res, "fixed_rate_high", proc.pid, [port], high_rate, seconds)
                sse = asyncio.run(client.first_sse_byte(port, 200))
                res["sse_first_byte_p50_ms"] = round(statistics.median(sse) * 1000, 3) if sse else None
                res["sse_first_byte_p99_ms"] = round(percentile(sse, 0.99) * 1000, 3) if sse else None
                asyncio.run(client.closed_loop(port, 10_000, 16, "m", True, base=19_000_000))
                res["rss_mb_after_10k_conversations"] = round(rss_mb(proc.pid), 1)
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                res["fixed_rate_spans_dropped"] = spans_dropped(metrics)

            print(f"rdv: 2 workers, booking turns, {seconds}s …", file=sys.stderr)
            port = free_port()
            with serve(py, port, rdv_env(work / "data-2w", True, sink_port), work / "rdv-2w.log", workers=2) as proc:
                measured_wrk(res, "two_workers", proc.pid, f"http://127.0.0.1:{port}", seconds, 16)
                workers = children(proc.pid)
                workers = [w for w in workers
                           if "multiprocessing" not in Path(f"/proc/{w}/cmdline").read_text()] or workers
                res["two_workers_rss_mb"] = [round(rss_mb(w), 1) for w in workers]

            postgres_phase(res, py, work, sink_port, seconds, rate, fill, sqlite_on)
            if calendar_rate > 0:
                calendar_phase(res, py, work, sink_port, seconds, calendar_rate)
            soak_phase(res, py, work, sink_port, soak_seconds)

        res["understanding_us_per_utterance"] = round(understanding_us(), 1)
        res["understanding_us_long_input"] = round(understanding_long_us(), 1)
        res["extraction_us_per_turn"] = round(extraction_us(), 1)
        res.update(span_encoding())
        res["turn_vs_baseline_ratio"] = round(res["turn_rps_telemetry_on"] / res["baseline_rps"], 3)
        if res.get("telemetry_on_cpu_us_per_turn") and res.get("baseline_cpu_us_per_request"):
            res["turn_vs_baseline_cpu_ratio"] = round(
                res["baseline_cpu_us_per_request"] / res["telemetry_on_cpu_us_per_turn"], 3
            )
        res["telemetry_overhead_ratio"] = round(res["turn_rps_telemetry_off"] / res["turn_rps_telemetry_on"], 3)
        if res.get("telemetry_on_cpu_us_per_turn") and res.get("telemetry_off_cpu_us_per_turn"):
            res["telemetry_overhead_cpu_ratio"] = round(
                res["telemetry_on_cpu_us_per_turn"] / res["telemetry_off_cpu_us_per_turn"], 3
            )
        if res.get("telemetry_on_serving_cpu_us_per_turn") and res.get("telemetry_off_serving_cpu_us_per_turn"):
            res["telemetry_overhead_serving_cpu_ratio"] = round(
                res["telemetry_on_serving_cpu_us_per_turn"] / res["telemetry_off_serving_cpu_us_per_turn"], 3
            )
            if res.get("telemetry_on_cpu_us_per_turn"):
                res["span_exporter_cpu_us_per_turn"] = round(
                    res["telemetry_on_cpu_us_per_turn"] - res["telemetry_on_serving_cpu_us_per_turn"], 1
                )
        res.update(floors(res))
        res["cpu_steal_share"] = steal.share()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res


CALENDAR_SECTION = """
[calendar]
kind = "caldav"
url = "{url}"
calendar = "Cabinet"
username = "bench"
password_env = "RDV_CALDAV_PASSWORD"
"""


def calendar_phase(res: dict[str, Any], py: str, work: Path, sink_port: int, seconds: int, rate: float) -> None:
    """The same booking turns against the built-in agenda and against a CalDAV calendar (a
    local Radicale, the test server), one after the other: throughput (wrk), latency at a fixed
    rate both can sustain, and calendar requests per booked conversation."""
    import importlib.util

    if importlib.util.find_spec("radicale") is None or importlib.util.find_spec("caldav") is None:
        print("  calendar phase skipped: radicale/caldav not installed (make test-deps)", file=sys.stderr)
        return
    cal_port = free_port()
    cal_url = f"http://127.0.0.1:{cal_port}/"
    with process(
        [py, "-m", "radicale", f"--storage-filesystem-folder={work / 'radicale'}", "--auth-type=none",
         f"--server-hosts=127.0.0.1:{cal_port}", "--logging-level=warning"],
        dict(os.environ), None, work / "radicale.log",
    ):
        import caldav

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(cal_url, timeout=1)
                break
            time.sleep(0.1)

        client_class: Any = caldav.DAVClient  # the library's own class, untyped here
        client_class(url=cal_url, username="bench", password="bench").principal().make_calendar(name="Cabinet")
        practice = work / "practice-caldav.toml"
        practice.write_text((HERE / "practice.toml").read_text("utf-8") + CALENDAR_SECTION.format(url=cal_url), "utf-8")
        for kind in ("builtin", "caldav"):
            print(f"rdv, {kind} calendar: booking turns {seconds}s, then {rate:.0f} turns/s …", file=sys.stderr)
            port = free_port()
            env = rdv_env(work / f"data-cal-{kind}", True, sink_port)
            if kind == "caldav":
                env.update({"RDV_PRACTICE_FILE": str(practice), "RDV_CALDAV_PASSWORD": "bench"})
            with process(
                [py, "-m", "service.cli", "serve", "--port", str(port)],
                env, f"http://127.0.0.1:{port}/readyz", work / f"rdv-cal-{kind}.log",
            ):
                url = f"http://127.0.0.1:{port}"
                wrk(url, HERE / "turns.lua", 2, 8)  # warm-up
                res[f"calendar_{kind}_turn_rps"] = wrk(url, HERE / "turns.lua", seconds, 8).rate
                run_no = next(_RUNS)
                latencies, _ = asyncio.run(client.fixed_rate(port, rate, seconds, 16, f"cal{kind}{run_no}_",
                                                             base=patients_base(run_no)))
                res[f"calendar_{kind}_p99_ms"] = round(percentile(latencies, 0.99) * 1000, 3)
                if kind == "caldav":
                    metrics = httpx.get(f"{url}/metrics", timeout=10).text
                    confirmed = _sum(metrics, 'rdv_conversations_ended_total{channel="text",outcome="confirmed"}')
                    requests = _sum(metrics, "rdv_calendar_requests_total")
                    failed = sum(_sum(metrics, f'rdv_calendar_requests_total{{operation="{op}",result="{r}"}}')
                                 for op in CALENDAR_OPERATIONS for r in ("error", "timeout", "unreachable"))
                    per_booked = round(requests / confirmed, 2) if confirmed else None
                    res["calendar_requests_per_booked_conversation"] = per_booked
                    res["calendar_failed_requests"] = failed
        res["calendar_fixed_rate"] = rate
        if res.get("calendar_builtin_turn_rps"):
            res["calendar_caldav_vs_builtin_ratio"] = round(
                res["calendar_caldav_turn_rps"] / res["calendar_builtin_turn_rps"], 3
            )


def soak_phase(res: dict[str, Any], py: str, work: Path, sink_port: int, soak_seconds: int) -> None:
    """``rdv simulate`` (every caller behaviour, over the Vapi interface) against one server
    for ``soak_seconds``; the server's RSS at the start and at the end."""
    if soak_seconds <= 0:
        return
    print(f"rdv: soak, rdv simulate for {soak_seconds}s …", file=sys.stderr)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(
        [py, "-m", "service.cli", "serve", "--port", str(port)],
        rdv_env(work / "data-soak", True, sink_port), f"{url}/readyz", work / "rdv-soak.log",
    ) as proc:
        # A throwaway store: the soak may fill the whole calendar and keep what it booked.
        simulate = [py, "-m", "service.cli", "simulate", "--url", url, "--json", "--max-calendar-share", "1",
                    "--keep-bookings"]
        subprocess.run([*simulate, "--calls", "40", "--concurrency", "4"], capture_output=True, timeout=120,
                       check=False)
        res["soak_rss_mb_start"] = round(rss_mb(proc.pid), 1)
        done = subprocess.run(
            [*simulate, "--calls", "100000", "--concurrency", "8", "--timeout", str(soak_seconds), "--seed", "7"],
            capture_output=True, text=True, timeout=soak_seconds + 120, check=False,
        )
        res["soak_rss_mb_end"] = round(rss_mb(proc.pid), 1)
        summary = json.loads(done.stdout)
        res["soak_seconds"] = soak_seconds
        res["soak_calls_finished"] = summary["calls"] - summary["outcomes"].get("timeout", 0)
        res["soak_confirmed"] = summary["bookings"]
        res["soak_errors"] = summary["errors"]
        res["soak_turn_p99_ms"] = summary["latency_ms"]["p99"]


def postgres_base() -> str:
    """The bench PostgreSQL (``RDV_BENCH_POSTGRES_URL``, default the local server)."""
    return os.environ.get("RDV_BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")


def postgres_is_local(url: str | None = None) -> bool:
    """Whether the PostgreSQL server of ``url`` (default: the bench's) runs on this machine (a
    loopback host, or a socket directory), so that its processes' CPU can be read here."""
    parts = urlsplit(url or postgres_base())
    host = parts.hostname or parse_qs(parts.query).get("host", [""])[0]
    return host in ("", "localhost", "127.0.0.1", "::1") or host.startswith("/")


def postgres_url() -> str | None:
    """A fresh schema on the bench PostgreSQL (``RDV_BENCH_POSTGRES_URL``, default the local
    server), as a URL every connection of which uses it; None when unreachable."""
    import asyncpg  # type: ignore[import-untyped]

    base = postgres_base()
    schema = f"rdv_bench_{os.getpid()}"
    try:
        asyncio.run(bench_postgres.admin(base, f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        print(f"  PostgreSQL phase skipped: {base} unreachable ({exc})", file=sys.stderr)
        return None
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


def postgres_setting(url: str, name: str) -> str | None:
    """The bench PostgreSQL's setting ``name`` (None when it cannot be read)."""
    import asyncpg

    try:
        found = asyncio.run(bench_postgres.rows(url, "SELECT current_setting($1)", name))
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    return str(found[0][0])


def drop_schema(url: str) -> None:
    """Drop the bench schema of ``url``."""
    schema = re.search(r"search_path%3D(\w+)", url)
    with suppress_all():
        asyncio.run(bench_postgres.admin(url.split("?")[0],
                                         f"DROP SCHEMA IF EXISTS {schema.group(1) if schema else 'none'} CASCADE"))


@contextmanager
def suppress_all() -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - clean-up of a bench schema must not hide results
        print(f"  note: {exc}", file=sys.stderr)


def unpin(pid: int) -> None:
    """Let the server ``pid`` and every process it started (every thread) run on any core
    this process may use."""
    cores = os.sched_getaffinity(0)
    for one in process_tree(pid):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{one}/task"):
                os.sched_setaffinity(int(task), cores)


def postgres_phase(res: dict[str, Any], py: str, work: Path, sink_port: int, seconds: int, rate: float,
                   fill: float, sqlite: Contender) -> None:
    """Two replicas on one PostgreSQL: one replica's throughput (to compare with SQLite's),
    both replicas' throughput (one wrk per replica), fixed-rate latency spread over both
    replicas, CPU per turn and round trips per turn.

    The one-replica run is measured as the SQLite run it is compared with, and in turn with
    it (:func:`interleaved`; ``sqlite``: the telemetry-on SQLite server, still up): that
    replica on the server core, wrk and its span exporter on the load core (the other
    replica, idle, and PostgreSQL's own server, an external system, are not pinned: the
    database's backends run where the system puts them, the server core included). Two replicas
    cannot both have a core to themselves: for the two-replica and fixed-rate runs the
    first replica is unpinned again, and both replicas, their load and PostgreSQL share
    the machine."""
    url = postgres_url()
    if url is None:
        res["postgres_two_replicas_turn_rps"] = None
        return
    try:
        print(f"rdv: 2 replicas on PostgreSQL: one, then both, booking turns {seconds}s each, then "
              f"{rate:.0f} turns/s over both …", file=sys.stderr)
        ports = [free_port(), free_port()]
        with contextlib.ExitStack() as stack:
            procs = []
            for i, port in enumerate(ports):
                env = rdv_env(work / f"data-pg{i}", True, sink_port)
                env["RDV_DATABASE_URL"] = url
                procs.append(stack.enter_context(serve(py, port, env, work / f"rdv-pg{i}.log", pinned=i == 0)))
            urls = [f"http://127.0.0.1:{p}" for p in ports]
            # Without autovacuum the figures drift down run after run (rdv warns at start-up).
            res["postgres_autovacuum"] = postgres_setting(url, "autovacuum")
            res["postgres_calendar_fill_start"] = prefill(ports[0], fill, "pg")["share"]
            one = Contender("postgres_one_replica", procs[0].pid, urls[0], database=postgres_is_local())
            interleaved([sqlite, one], seconds, 16)
            interleaved_results(res, sqlite)
            interleaved_results(res, one)
            res["postgres_one_replica_vs_sqlite_ratio"] = round(one.rate / sqlite.rate, 3) if sqlite.rate else None
            unpin(procs[0].pid)
            wrk_together(urls, HERE / "turns.lua", 2, 8)  # warm-up
            both_before = [CpuMeter(p.pid) for p in procs]
            segments = bench_postgres.segments_to_postgres([p.pid for p in procs])
            both = wrk_together(urls, HERE / "turns.lua", seconds, 8)
            res["postgres_round_trips_per_turn"] = bench_postgres.round_trips_per_turn(
                segments, bench_postgres.segments_to_postgres([p.pid for p in procs]), both.requests
            )
            res["postgres_two_replicas_turn_rps"] = both.rate
            spent = sum(m.spent()[0] for m in both_before)
            res["postgres_two_replicas_cpu_us_per_turn"] = (
                round(spent / both.requests * 1e6, 1) if both.requests else None
            )
            res["postgres_vs_sqlite_ratio"] = round(both.rate / sqlite.rate, 3) if sqlite.rate else None
            fixed_rate(res, "postgres_fixed_rate", None, ports, rate, seconds)
            res["postgres_calendar_fill_end"] = calendar_fill(urls[0])["share"]
        res.update(asyncio.run(bench_postgres.measure(postgres_base())))
    finally:
        drop_schema(url)


def _sum(metrics: str, prefix: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith(prefix):
            total += float(line.rsplit(" ", 1)[1])
    return total


def spans_dropped(metrics: str) -> float:
    """The spans a telemetry-on server's exporter did not export, read from its ``/metrics``."""
    return _sum(metrics, f"{SPANS_DROPPED.name} ")


# The figure that bounds a target's figure on the machine of the run (:func:`floors`): when the
# bound itself misses the target, the figure cannot meet it there whatever rdv does.
BOUNDS = {
    "telemetry_overhead_cpu_ratio": "telemetry_overhead_cpu_floor_ratio",
    "turn_vs_baseline_cpu_ratio": "turn_vs_baseline_cpu_ceiling_ratio",
    "postgres_one_replica_vs_sqlite_ratio": "postgres_one_replica_vs_sqlite_ceiling_ratio",
}


def verdict(res: dict[str, Any], key: str) -> str:
    """Whether ``res[key]`` meets its target: "ok", "MISSED", "MISSED, beyond bound" when its
    bound on this machine (:data:`BOUNDS`) misses the target too, or "" with no target."""
    value = res.get(key)
    _, check = TARGETS.get(key, ("", None))
    if check is None or value is None:
        return ""
    if check(value):
        return "ok"
    bound = res.get(BOUNDS.get(key, ""))
    return "MISSED, beyond bound" if bound is not None and not check(bound) else "MISSED"


def table(res: dict[str, Any]) -> str:
    """The human summary: every figure, with its target and whether it is met."""
    rows = [(key, str(value), TARGETS.get(key, ("", None))[0], verdict(res, key)) for key, value in res.items()]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{k:<{width}}  {v:>16}  {t:>8}  {c}" for k, v, t, c in rows)


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="duration of each measured phase")
    parser.add_argument("--rate", type=float, default=500.0, help="offered turns/s for the latency phase")
    parser.add_argument("--high-rate", type=float, default=800.0,
                        help="offered turns/s for the second latency phase (0: skip it)")
    parser.add_argument("--prefill", type=float, default=0.1,
                        help="share of the calendar's slots booked (and kept) before the measured phases")
    parser.add_argument("--soak-seconds", type=int, default=300, help="length of the rdv simulate soak (0: none)")
    parser.add_argument("--no-pin", action="store_true",
                        help="leave the server and the load generators unpinned (else server on one core, "
                             "load and span exporter on another)")
    parser.add_argument("--calendar-rate", type=float, default=50.0,
                        help="offered turns/s of the built-in vs CalDAV calendar phase (0: skip it)")
    args = parser.parse_args(argv)
    global PINNED
    PINNED = pin_cores(not args.no_pin)
    res = run(args.seconds, args.rate, args.soak_seconds, args.calendar_rate, args.high_rate, args.prefill)
    RESULTS.write_text(json.dumps(res, indent=2) + "\n")
    print(table(res))
    print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
