"""``rdv probe URL``: one complete test call against a deployment, for synthetic monitoring.

The probe books an appointment the way a caller does (greeting, name, preference, first
slot), hangs up, then calls again from the same number to cancel it, so it leaves nothing
behind. Exit code 0 when every step passed; 1 with ``step=<name> failed: <why>`` on stderr
otherwise. ``--prometheus`` prints the result as Prometheus text (for a textfile collector
or a pushgateway).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from service.tools.callers import spoken_number
from service.tools.dialogue import Stage, booked_label, held_label
from service.tools.transport import (
    TRANSPORTS,
    CallSession,
    Reply,
    ToolError,
    Transport,
    check_url,
    make_transport,
    secret_of,
)
from telemetry import names

PROBE_NAME = "Jean Sonde"
BOOK_TEXT = "Bonjour, je voudrais prendre rendez-vous."
PREFERENCE_TEXT = "pas de préférence"
CHOICE_TEXT = "le premier"
CANCEL_TEXT = "Bonjour, je voudrais annuler mon rendez-vous."
YES_TEXT = "oui"
STEPS = ("greeting", "name", "slots_offered", "booked", "call_ended", "cancel_found", "cancelled")
# Probe metrics: exposed by the probe process itself, never by the service.
METRIC_SUCCESS = names.PROBE_SUCCESS.name
METRIC_DURATION = names.PROBE_DURATION.name
ALL_STEPS = "all"


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of the probe."""

    step: str
    ok: bool
    seconds: float
    detail: str = ""


class StepFailed(ToolError):
    """A probe step did not get the answer a caller needs."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"step={step} failed: {detail}")
        self.step = step
        self.detail = detail


@dataclass
class ProbeRun:
    """The steps done so far, the step in progress and the calls still open."""

    steps: list[StepResult] = field(default_factory=list)
    current: str = STEPS[0]
    started: float = 0.0
    booked: str | None = None
    completed: bool = False
    open_calls: list[CallSession] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every step ran and passed."""
        return self.completed and all(s.ok for s in self.steps)

    @property
    def failure(self) -> StepResult | None:
        """The failed step, if any."""
        return next((s for s in self.steps if not s.ok), None)


def _quote(reply: Reply) -> str:
    text = " ".join(reply.text.split())
    return f"{text[:160]!r}" if text else "(no text)"


async def _step(run: ProbeRun, step: str, action: Callable[[], Awaitable[str]]) -> None:
    """Run one step, timing it; a failure is recorded and re-raised as StepFailed."""
    run.current = step
    started = time.perf_counter()
    try:
        detail = await action()
    except StepFailed as exc:
        run.steps.append(StepResult(step, False, time.perf_counter() - started, exc.detail))
        raise
    except (ToolError, httpx.HTTPError, ValueError) as exc:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        run.steps.append(StepResult(step, False, time.perf_counter() - started, detail))
        raise StepFailed(step, detail) from exc
    run.steps.append(StepResult(step, True, time.perf_counter() - started, detail))


def _expect(step: str, reply: Reply, stage: Stage, what: str) -> None:
    if reply.stage is not stage:
        heard = f"the assistant transferred the call: {_quote(reply)}" if reply.stage is Stage.TRANSFERRED else (
            f"heard {reply.stage.value}: {_quote(reply)}"
        )
        raise StepFailed(step, f"{what} ({heard})")


async def probe(
    transport: Transport,
    *,
    phone: str,
    run_id: str,
    timeout: float,
) -> ProbeRun:
    """Book then cancel one appointment through ``transport``; the steps and their results."""
    run = ProbeRun(started=time.perf_counter())
    book = transport.session(f"{names.SYNTHETIC_PREFIX}probe-{run_id}-book", phone)
    run.open_calls.append(book)

    async def greeting() -> str:
        reply = await book.say(BOOK_TEXT)
        _expect("greeting", reply, Stage.NAME, "the assistant did not ask for a name")
        return ""

    async def name() -> str:
        reply = await book.say(PROBE_NAME)
        _expect("name", reply, Stage.PREFERENCE, "the assistant did not ask for a preference")
        return ""

    async def slots_offered() -> str:
        reply = await book.say(PREFERENCE_TEXT)
        _expect("slots_offered", reply, Stage.SLOTS, "no slot proposed")
        return f"{len(reply.text)} characters"

    async def booked() -> str:
        reply = await book.say(CHOICE_TEXT)
        if reply.stage is Stage.PHONE:  # caller id not seen by the service: give the number
            reply = await book.say(spoken_number(phone))
        _expect("booked", reply, Stage.CONFIRMED, "the first slot was not confirmed")
        run.booked = booked_label(reply.text)
        if run.booked is None:
            raise StepFailed("booked", f"no date read back in the confirmation ({_quote(reply)})")
        return run.booked

    async def call_ended() -> str:
        await book.end("assistant-ended-call")
        run.open_calls.remove(book)
        return ""

    cancel = transport.session(f"{names.SYNTHETIC_PREFIX}probe-{run_id}-cancel", phone)

    async def cancel_found() -> str:
        run.open_calls.append(cancel)
        reply = await cancel.say(CANCEL_TEXT)
        _expect("cancel_found", reply, Stage.CANCEL_CONFIRM, "the appointment was not found to cancel")
        held = held_label(reply.text)
        if held != run.booked:
            raise StepFailed(
                "cancel_found", f"the assistant offered to cancel {held!r}, not the slot booked ({run.booked!r})"
            )
        return held or ""

    async def cancelled() -> str:
        reply = await cancel.say(YES_TEXT)
        _expect("cancelled", reply, Stage.CANCELLED, "the cancellation was not confirmed")
        run.booked = None
        await cancel.end("assistant-ended-call")
        run.open_calls.remove(cancel)
        return ""

    actions: Sequence[tuple[str, Callable[[], Awaitable[str]]]] = (
        ("greeting", greeting), ("name", name), ("slots_offered", slots_offered), ("booked", booked),
        ("call_ended", call_ended), ("cancel_found", cancel_found), ("cancelled", cancelled),
    )

    async def all_steps() -> None:
        for step, action in actions:
            if step == "call_ended" and transport.name != "vapi":
                continue  # the text API has no end of call
            await _step(run, step, action)
        run.completed = True

    try:
        await asyncio.wait_for(all_steps(), timeout)
    except StepFailed:
        pass
    except TimeoutError:
        run.steps.append(StepResult(run.current, False, 0.0, f"no answer within {timeout:g} s"))
    finally:
        for session in list(run.open_calls):
            with contextlib.suppress(ToolError, httpx.HTTPError, TimeoutError):
                await asyncio.wait_for(session.end("customer-ended-call"), 5)
    return run


def prometheus(run: ProbeRun) -> str:
    """The run as Prometheus text exposition: success and duration per step and in all."""
    total = time.perf_counter() - run.started
    lines = [
        f"# HELP {METRIC_SUCCESS} 1 when the probe step passed, 0 when it failed.",
        f"# TYPE {METRIC_SUCCESS} gauge",
    ]
    lines += [f'{METRIC_SUCCESS}{{step="{s.step}"}} {int(s.ok)}' for s in run.steps]
    lines.append(f'{METRIC_SUCCESS}{{step="{ALL_STEPS}"}} {int(run.ok)}')
    lines += [
        f"# HELP {METRIC_DURATION} Time the probe step took, in seconds.",
        f"# TYPE {METRIC_DURATION} gauge",
    ]
    lines += [f'{METRIC_DURATION}{{step="{s.step}"}} {s.seconds:.6f}' for s in run.steps]
    lines.append(f'{METRIC_DURATION}{{step="{ALL_STEPS}"}} {total:.6f}')
    return "\n".join(lines)


def render(run: ProbeRun) -> str:
    """The steps as a short table."""
    lines = [
        f"{'ok  ' if s.ok else 'FAIL'} {s.step:<14} {s.seconds * 1000:8.1f} ms  {s.detail}".rstrip()
        for s in run.steps
    ]
    if run.ok:
        lines.append("probe ok: booked and cancelled one appointment")
    return "\n".join(lines)


def register(subparsers: Any) -> None:
    """Add ``rdv probe`` to the command line."""
    p = subparsers.add_parser(
        "probe", help="one full test call (book, then cancel) against a deployment",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", help="base URL of the deployment, e.g. https://rdv.example.org")
    p.add_argument("--transport", choices=TRANSPORTS, default="vapi",
                   help="vapi (custom-LLM endpoint, default) or text (text API)")
    p.add_argument("--llm-key", default=None, help="custom-LLM bearer key (default $RDV_VAPI_LLM_KEY)")
    p.add_argument("--secret", default=None, help="X-Vapi-Secret of server messages (default $RDV_VAPI_SECRET)")
    p.add_argument("--phone", default=None, help="caller number of the probe (default: a random +33 6 1… number)")
    p.add_argument("--timeout", type=float, default=30.0, help="bound on the whole probe, in seconds (default 30)")
    p.add_argument("--prometheus", action="store_true", help="print Prometheus text instead of a table")
    p.set_defaults(func=main)


async def _run(args: argparse.Namespace) -> ProbeRun:
    url = check_url(args.url)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(min(20.0, args.timeout)), follow_redirects=False, trust_env=False
    ) as client:
        transport = make_transport(
            args.transport, client, url,
            llm_key=secret_of(args.llm_key, "RDV_VAPI_LLM_KEY"),
            secret=secret_of(args.secret, "RDV_VAPI_SECRET"),
        )
        phone = args.phone or f"+3361{secrets.randbelow(10**7):07d}"
        return await probe(transport, phone=phone, run_id=secrets.token_hex(4), timeout=args.timeout)


def main(args: argparse.Namespace) -> int:
    """Run ``rdv probe``; 0 on success, 1 with the failing step named."""
    if not 0 < args.timeout <= 600:
        raise ToolError(f"--timeout {args.timeout:g} must be above 0 and at most 600 seconds")
    run = asyncio.run(_run(args))
    print(prometheus(run) if args.prometheus else render(run))
    failure = run.failure
    if failure is not None:
        print(f"step={failure.step} failed: {failure.detail}", file=sys.stderr)
        if run.booked:
            print(f"warning: the probe's booking of {run.booked} is left in place", file=sys.stderr)
        return 1
    return 0
