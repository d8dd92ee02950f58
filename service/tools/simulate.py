"""``rdv simulate``: synthetic callers through a running service's Vapi interface (or text API).

For demos and load: ``--calls`` calls of the ``--mix`` kinds, at most ``--concurrency`` at
once, within ``--timeout`` seconds in all; ``--rate`` starts calls at a fixed rate instead of
as soon as a place is free, and ``--duration`` stops starting calls after that many seconds.
Every call ends with Vapi's end-of-call report. The calls are test traffic (ids
``synthetic-…``), kept out of the service's business numbers. At the end, the appointments the
run booked are cancelled the way a caller cancels (``--keep-bookings`` keeps them); before
starting, the service's calendar is read (``GET /api/stats/bookings``, operator token if set)
and the run stops starting calls once its bookings would take the calendar past
``--max-calendar-share`` (0.5 by default; a calendar already past it is refused).
Progress goes to stderr; a summary (outcomes, bookings, errors, turn latency p50/p99) to
stdout, as a table or ``--json``. Requests go only to ``--url``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import secrets
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from service.tools.callers import DEFAULT_MIX, Behaviour, Caller, allocate, parse_mix
from service.tools.dialogue import Stage, booked_label
from service.tools.transport import (
    TRANSPORTS,
    CallSession,
    ToolError,
    Transport,
    check_url,
    make_transport,
    secret_of,
)
from telemetry import names

OUTCOMES = ("confirmed", "transferred", "cancelled", "menu", "hung_up", "stuck", "error", "timeout")
DEFAULT_CALLS = 20
MAX_CALLS = 100_000
DEFAULT_MAX_CALENDAR_SHARE = 0.5
RACE_WAIT_SECONDS = 10.0
CLEANUP_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 20.0  # Vapi's own limit for a custom-LLM answer to start
ENDED_REASON = {
    "confirmed": "assistant-ended-call",
    "cancelled": "assistant-ended-call",
    "transferred": "assistant-forwarded-call",
    "error": "pipeline-error-custom-llm-llm-failed",
    "timeout": "exceeded-max-duration",
}


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One simulation run."""

    url: str
    calls: int
    concurrency: int
    mix: Mapping[Behaviour, int]
    seed: int = 1
    transport: str = "vapi"
    timeout: float = 120.0
    llm_key: str | None = None
    secret: str | None = None
    channel: str = "voice"
    run_id: str = ""
    max_turns: int = 40
    # Test traffic by default (ids ``synthetic-…``): kept out of every business number.
    synthetic: bool = True
    rate: float | None = None  # calls started per second (None: as soon as a place is free)
    duration: float | None = None  # seconds during which calls are started (None: all --calls)
    keep_bookings: bool = False  # False: cancel what the run booked, at the end
    max_calendar_share: float | None = None  # None: the calendar is not read (embedding, tests)
    token: str | None = None  # operator token, to read the calendar


@dataclass(frozen=True, slots=True)
class CallPlan:
    """Who calls, under which call id, from which number."""

    index: int
    call_id: str
    behaviour: Behaviour
    phone: str
    seed: int


@dataclass
class CallResult:
    """What one simulated call gave, as the caller perceived it."""

    call_id: str
    behaviour: Behaviour
    outcome: str = "timeout"
    turns: int = 0
    latencies: list[float] = field(default_factory=list)
    error: str | None = None
    booked: str | None = None


class RaceGate:
    """Lets two racing callers say their choice at the same moment (or go alone if the
    partner never gets there)."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.go = asyncio.Event()

    async def meet(self) -> None:
        """Wait for the partner (bounded)."""
        self.arrived += 1
        if self.arrived >= self.parties:
            self.go.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.go.wait(), RACE_WAIT_SECONDS)

    def leave(self) -> None:
        """This caller will not come: do not keep the partner waiting."""
        self.go.set()


def plans(config: SimConfig) -> list[CallPlan]:
    """The calls of a run, reproducible from ``seed`` (call ids unique per ``run_id``)."""
    rng = random.Random(config.seed)
    kinds = allocate(config.mix, config.calls, rng)
    base = rng.randrange(10**7)
    return [
        CallPlan(
            index=i,
            call_id=f"{names.SYNTHETIC_PREFIX if config.synthetic else ''}sim-{config.run_id}-{i:05d}",
            behaviour=kind,
            # Distinct valid French mobile numbers: +33 6 1x xx xx xx.
            phone=f"+3361{(base + i * 7919) % 10**7:07d}",
            seed=rng.randrange(2**32),
        )
        for i, kind in enumerate(kinds)
    ]


def jobs(all_plans: Sequence[CallPlan]) -> list[list[CallPlan]]:
    """Calls grouped into scheduling units: racers two by two, everyone else alone."""
    racers = [p for p in all_plans if p.behaviour is Behaviour.RACER]
    out = [[p] for p in all_plans if p.behaviour is not Behaviour.RACER]
    out.extend(racers[i:i + 2] for i in range(0, len(racers), 2))
    return sorted(out, key=lambda job: job[0].index)


async def run_call(
    plan: CallPlan,
    transport: Transport,
    config: SimConfig,
    gate: RaceGate | None,
    result: CallResult,
    open_sessions: dict[str, CallSession],
) -> None:
    """Play one call to its end and fill ``result``; always ends the call on the service."""
    caller = Caller.create(plan.behaviour, random.Random(plan.seed), plan.phone)
    session = transport.session(plan.call_id, caller.caller_id)
    open_sessions[plan.call_id] = session
    move = caller.opening()
    last = Stage.START
    met = False
    try:
        while True:
            if move.text is None:
                result.outcome = "menu" if last is Stage.MENU else "hung_up"
                break
            if result.turns >= config.max_turns:
                result.outcome = "stuck"
                break
            if move.race and gate is not None:
                met = True
                await gate.meet()
            reply = await session.say(move.text, interrupted=move.interrupted)
            result.turns += 1
            result.latencies.append(reply.seconds)
            last = reply.stage
            if reply.stage is Stage.CONFIRMED:
                result.outcome = "confirmed"
                result.booked = booked_label(reply.text)
                break
            if reply.stage is Stage.TRANSFERRED:
                result.outcome = "transferred"
                break
            if reply.stage is Stage.CANCELLED:
                result.outcome = "cancelled"
                break
            if reply.ended:
                result.outcome = "hung_up"
                break
            move = caller.next(reply.stage)
    except (ToolError, httpx.HTTPError, ValueError) as exc:
        result.outcome = "error"
        result.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    finally:
        if gate is not None and not met:
            gate.leave()
    try:
        await session.end(ENDED_REASON.get(result.outcome, "customer-ended-call"))
    except (ToolError, httpx.HTTPError) as exc:
        result.error = result.error or f"end of call: {exc}"
    open_sessions.pop(plan.call_id, None)


class Progress:
    """A one-line progress bar on stderr (a line per tenth when not a terminal)."""

    WIDTH = 30

    def __init__(self, stream: TextIO | None, total: int) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.tty = bool(stream is not None and stream.isatty())
        self.step = max(1, total // 10)

    def update(self, result: CallResult) -> None:
        """One more call finished."""
        self.done += 1
        self.counts[result.outcome] += 1
        if self.stream is None:
            return
        if not self.tty and self.done % self.step and self.done != self.total:
            return
        filled = self.WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        line = (
            f"simulate [{bar}] {self.done}/{self.total}  confirmed {self.counts['confirmed']}"
            f"  transferred {self.counts['transferred']}  errors {self.counts['error']}"
        )
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.stream is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarise(config: SimConfig, results: Sequence[CallResult], seconds: float) -> dict[str, Any]:
    """The run's summary: outcomes, bookings, errors, latency, and outcomes per caller kind."""
    outcomes = Counter(r.outcome for r in results)
    latencies = [x for r in results for x in r.latencies]
    by_kind: dict[str, dict[str, int]] = {}
    for r in results:
        row = by_kind.setdefault(r.behaviour.value, {"calls": 0, **{o: 0 for o in OUTCOMES}})
        row["calls"] += 1
        row[r.outcome] += 1
    errors = [r for r in results if r.error]
    return {
        "url": config.url,
        "transport": config.transport,
        "run_id": config.run_id,
        "seed": config.seed,
        "calls": len(results),
        "concurrency": config.concurrency,
        "duration_seconds": round(seconds, 3),
        "outcomes": {o: outcomes[o] for o in OUTCOMES},
        "bookings": outcomes["confirmed"],
        "booked_slots": sorted(r.booked for r in results if r.booked),
        "errors": len(errors),
        "error_samples": sorted({r.error for r in errors if r.error})[:5],
        "turns": sum(r.turns for r in results),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.50) * 1000, 2),
            "p99": round(percentile(latencies, 0.99) * 1000, 2),
            "max": round(max(latencies, default=0.0) * 1000, 2),
        },
        "by_behaviour": dict(sorted(by_kind.items())),
    }


CANCEL_TEXT = "Bonjour, je voudrais annuler mon rendez-vous."
YES_TEXT = "oui"


async def calendar_room(client: httpx.AsyncClient, config: SimConfig) -> int | None:
    """How many bookings the run may make before the calendar passes ``max_calendar_share``
    (None when not checked); a ToolError when it is already past it."""
    if config.max_calendar_share is None:
        return None
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else {}
    try:
        response = await client.get(f"{config.url}/api/stats/bookings", params={"window": "1h"}, headers=headers)
    except httpx.HTTPError as exc:
        raise ToolError(f"GET {config.url}/api/stats/bookings: {type(exc).__name__}: {exc}") from None
    if response.status_code == 401:
        raise ToolError("reading the calendar needs the operator token: pass --token or set RDV_OPERATOR_TOKEN")
    if response.status_code != 200 or "calendar" not in response.json():
        raise ToolError(f"GET {config.url}/api/stats/bookings → HTTP {response.status_code}: no calendar to check")
    calendar = response.json()["calendar"]
    slots, booked = int(calendar["slots"]), int(calendar["booked"])
    room = math.floor(config.max_calendar_share * slots) - booked
    if room <= 0:
        raise ToolError(
            f"the calendar is already {booked} of {slots} slots booked: rdv simulate fills at most "
            f"{config.max_calendar_share:.0%} of it (--max-calendar-share)"
        )
    return room


async def cancel_booking(transport: Transport, plan: CallPlan) -> bool:
    """Call back from the booking's number and cancel it, as a caller does; True when done."""
    session = transport.session(f"{plan.call_id}-cancel", plan.phone)
    try:
        reply = await session.say(CANCEL_TEXT)
        if reply.stage is Stage.CANCEL_CONFIRM:
            reply = await session.say(YES_TEXT)
        return reply.stage is Stage.CANCELLED
    except (ToolError, httpx.HTTPError, ValueError):
        return False
    finally:
        with contextlib.suppress(ToolError, httpx.HTTPError):
            await session.end(ENDED_REASON["cancelled"])


async def simulate(
    config: SimConfig,
    client: httpx.AsyncClient | None = None,
    progress: TextIO | None = None,
) -> dict[str, Any]:
    """Run the simulation and return its summary (``client`` for tests and embedding)."""
    own = client is None
    if client is None:
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(min(REQUEST_TIMEOUT_SECONDS, config.timeout)),
            limits=httpx.Limits(max_connections=config.concurrency * 2 + 4),
            follow_redirects=False,
            trust_env=False,  # only the URL given: no proxy from the environment
        )
    try:
        return await _simulate(config, client, progress)
    finally:
        if own:
            await client.aclose()


async def _simulate(config: SimConfig, client: httpx.AsyncClient, progress: TextIO | None) -> dict[str, Any]:
    room = await calendar_room(client, config)
    transport = make_transport(
        config.transport, client, config.url,
        llm_key=config.llm_key, secret=config.secret, channel=config.channel,
    )
    all_plans = plans(config)
    results = {p.call_id: CallResult(p.call_id, p.behaviour) for p in all_plans}
    started_plans: list[CallPlan] = []
    open_sessions: dict[str, CallSession] = {}
    bar = Progress(progress, len(all_plans))
    limit = asyncio.Semaphore(config.concurrency)
    in_flight: list[int] = [0]
    stopped: list[str] = []

    async def job(group: list[CallPlan]) -> None:
        try:
            gate = RaceGate(len(group)) if len(group) > 1 else None
            await asyncio.gather(
                *(run_call(p, transport, config, gate, results[p.call_id], open_sessions) for p in group)
            )
            for p in group:
                bar.update(results[p.call_id])
        finally:
            in_flight[0] -= len(group)
            limit.release()

    started = time.perf_counter()
    tasks: list[asyncio.Task[None]] = []

    def booked() -> int:
        return sum(1 for p in started_plans if results[p.call_id].outcome == "confirmed")

    async def launch() -> None:
        for i, group in enumerate(jobs(all_plans)):
            if config.rate:
                delay = started + i / config.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await limit.acquire()
            if config.duration is not None and time.perf_counter() - started >= config.duration:
                limit.release()
                stopped.append("duration")
                return
            if room is not None and booked() + in_flight[0] + len(group) > room:
                limit.release()
                stopped.append("calendar_share")
                return
            in_flight[0] += len(group)
            started_plans.extend(group)
            tasks.append(asyncio.create_task(job(group)))

    timed_out = False
    try:
        launcher = asyncio.create_task(launch())
        done, _ = await asyncio.wait([launcher], timeout=config.timeout)
        if not done:
            timed_out = True  # calls never started count as timeouts
            launcher.cancel()
            await asyncio.gather(launcher, return_exceptions=True)
        remaining = max(0.0, config.timeout - (time.perf_counter() - started))
        pending: set[asyncio.Task[None]] = set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=remaining)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for call_id in open_sessions:
            results[call_id].outcome = "timeout"
        if open_sessions:
            # Calls cut by --timeout still get their end-of-call report, within a bound.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(
                        *(s.end(ENDED_REASON["timeout"]) for s in open_sessions.values()),
                        return_exceptions=True,
                    ),
                    min(CLEANUP_SECONDS, config.timeout),
                )
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise ToolError(f"simulation failed: {task.exception()!r}")
    finally:
        bar.close()
    seconds = time.perf_counter() - started
    to_cancel = [p for p in started_plans if results[p.call_id].outcome == "confirmed"]
    cancelled = 0
    if to_cancel and not config.keep_bookings:
        gate = asyncio.Semaphore(config.concurrency)

        async def cancel(plan: CallPlan) -> bool:
            async with gate:
                return await cancel_booking(transport, plan)

        cancelled = sum(await asyncio.gather(*(cancel(p) for p in to_cancel)))
    counted = all_plans if timed_out else started_plans
    summary = summarise(config, [results[p.call_id] for p in counted], seconds)
    summary["bookings_cancelled"] = cancelled
    summary["bookings_kept"] = len(to_cancel) - cancelled
    summary["stopped_by"] = stopped[0] if stopped else None
    return summary


def render(summary: Mapping[str, Any]) -> str:
    """The summary as a readable table."""
    lines = [
        (
            f"rdv simulate: {summary['calls']} calls via {summary['transport']} on {summary['url']} "
            f"in {summary['duration_seconds']:.1f} s (concurrency {summary['concurrency']}, "
            f"seed {summary['seed']}, run {summary['run_id']})"
        ),
        "",
        f"{'outcome':<14}{'calls':>7}",
    ]
    lines += [f"{o:<14}{c:>7}" for o, c in summary["outcomes"].items()]
    lat = summary["latency_ms"]
    lines += [
        "",
        f"{'bookings':<14}{summary['bookings']:>7}",
        f"{'cancelled':<14}{summary.get('bookings_cancelled', 0):>7}   (kept {summary.get('bookings_kept', 0)})",
        f"{'errors':<14}{summary['errors']:>7}",
        f"{'turns':<14}{summary['turns']:>7}",
        f"{'latency':<14}p50 {lat['p50']:.1f} ms   p99 {lat['p99']:.1f} ms   max {lat['max']:.1f} ms",
    ]
    if summary.get("stopped_by"):
        lines.append(f"stopped starting calls: {summary['stopped_by']}")
    for sample in summary["error_samples"]:
        lines.append(f"  error: {sample}")
    short = {"confirmed": "conf", "transferred": "transf", "cancelled": "cancel", "hung_up": "hangup"}
    header = f"{'caller kind':<14}{'calls':>6}" + "".join(f"{short.get(o, o):>8}" for o in OUTCOMES)
    lines += ["", header]
    for kind, row in summary["by_behaviour"].items():
        lines.append(f"{kind:<14}{row['calls']:>6}" + "".join(f"{row[o]:>8}" for o in OUTCOMES))
    return "\n".join(lines)


def _positive(kind: type[int | float], maximum: float) -> Any:
    def parse(raw: str) -> int | float:
        try:
            value = kind(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a number") from None
        if not 0 < value <= maximum:
            raise argparse.ArgumentTypeError(f"{raw!r} must be above 0 and at most {maximum:g}")
        return value

    return parse


def register(subparsers: Any) -> None:
    """Add ``rdv simulate`` to the command line."""
    p = subparsers.add_parser(
        "simulate", help="synthetic callers against a running service (Vapi interface by default)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--url", default="http://127.0.0.1:8000",
                   help="base URL of the running service (default http://127.0.0.1:8000)")
    p.add_argument("--calls", type=_positive(int, MAX_CALLS), default=None,
                   help=f"number of calls (default 20; with --duration, as many as fit, at most {MAX_CALLS})")
    p.add_argument("--concurrency", type=_positive(int, 1000), default=4, help="calls at once (default 4)")
    p.add_argument("--rate", type=_positive(float, 1000), default=None,
                   help="calls started per second (default: each as soon as fewer than --concurrency run)")
    p.add_argument("--duration", type=_positive(float, 86_400), default=None,
                   help="stop starting calls after this many seconds (default: run all --calls); "
                        "--timeout still bounds the whole run")
    p.add_argument("--keep-bookings", action="store_true",
                   help="keep the appointments the run booked (default: cancel them at the end)")
    p.add_argument("--max-calendar-share", type=_positive(float, 1), default=DEFAULT_MAX_CALENDAR_SHARE,
                   help="stop starting calls before the run's bookings take the calendar past this share "
                        f"(default {DEFAULT_MAX_CALENDAR_SHARE}; 1 allows a full calendar)")
    p.add_argument("--token", default=None, help="operator token to read the calendar (default $RDV_OPERATOR_TOKEN)")
    p.add_argument("--mix", default=DEFAULT_MIX,
                   help=f"caller kinds and weights (default {DEFAULT_MIX})")
    p.add_argument("--seed", type=int, default=1, help="random seed: same seed, same callers (default 1)")
    p.add_argument("--transport", choices=TRANSPORTS, default="vapi",
                   help="vapi (custom-LLM endpoint, default) or text (text API)")
    p.add_argument("--channel", choices=("voice", "text"), default="voice",
                   help="channel declared on the text API (default voice)")
    p.add_argument("--timeout", type=_positive(float, 86_400), default=120.0,
                   help="bound on the whole run, in seconds (default 120)")
    p.add_argument("--max-turns", type=_positive(int, 1000), default=40,
                   help="turns before a call counts as stuck (default 40)")
    p.add_argument("--llm-key", default=None, help="custom-LLM bearer key (default $RDV_VAPI_LLM_KEY)")
    p.add_argument("--secret", default=None, help="X-Vapi-Secret of server messages (default $RDV_VAPI_SECRET)")
    p.add_argument("--count-as-real", action="store_true",
                   help="count the calls as real traffic (ids without the synthetic- prefix), for incident "
                        "drills on a test deployment (default: test traffic, kept out of business numbers)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``rdv simulate``; 0 when every call ran without an error or a timeout."""
    calls = args.calls
    if calls is None:
        calls = min(MAX_CALLS, math.ceil(args.rate * args.duration) + 1) if args.duration and args.rate else (
            MAX_CALLS if args.duration else DEFAULT_CALLS
        )
    config = SimConfig(
        url=check_url(args.url),
        calls=calls,
        concurrency=args.concurrency,
        mix=parse_mix(args.mix),
        seed=args.seed,
        transport=args.transport,
        timeout=args.timeout,
        llm_key=secret_of(args.llm_key, "RDV_VAPI_LLM_KEY"),
        secret=secret_of(args.secret, "RDV_VAPI_SECRET"),
        channel=args.channel,
        run_id=secrets.token_hex(4),
        max_turns=args.max_turns,
        synthetic=not args.count_as_real,
        rate=args.rate,
        duration=args.duration,
        keep_bookings=args.keep_bookings,
        max_calendar_share=args.max_calendar_share,
        token=secret_of(args.token, "RDV_OPERATOR_TOKEN"),
    )
    summary = asyncio.run(simulate(config, progress=sys.stderr))
    print(json.dumps(summary, ensure_ascii=False, indent=2) if args.json else render(summary))
    failed = summary["errors"] or summary["outcomes"]["timeout"]
    return 1 if failed else 0
