"""Console test helpers: logging in like a browser does, and conversations made the real way
(the Vapi endpoint for one scripted call, ``rdv simulate``'s callers for a week of traffic)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from service.clock import FixedClock
from service.tools.callers import parse_mix
from service.tools.simulate import SimConfig, simulate
from tests.vapi.conftest import EVENTS, VapiCall, call_object

TOKEN = "console-test-token"
TRACE_UI = "http://127.0.0.1:9/jaeger"  # never fetched by these tests: only written in links
BOOK = "bonjour je voudrais prendre rendez-vous"
CALL_ID = "call-console-1"
PHONE = "+33612345678"
# Every kind of caller the simulator knows, in mixes that vary from one hour to the next, so
# that every part of the console has something and the chart moves.
MIXES = (
    "cooperative=3,hesitant=1,interrupts=1",
    "cooperative=1,rejects=1,bad_phone=1,hangs_up=3",
    "cooperative=2,faq=1,hangs_up=1,racer=2",
    "hesitant=1,interrupts=1,bad_phone=1",
)
HOURS = (9, 11, 14, 17)  # practice-local hours of the simulated batches


def console_env(**extra: str) -> dict[str, str]:
    """Settings of an app with the console on."""
    return {"RDV_OPERATOR_TOKEN": TOKEN, "RDV_TRACE_UI_URL": TRACE_UI, **extra}


def form_value(html: str, name: str) -> str:
    """The value of the hidden input ``name`` in a page."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match is not None, f"no {name} field in:\n{html[:2000]}"
    return match.group(1)


async def login(client: httpx.AsyncClient, token: str = TOKEN, next_url: str = "/console/") -> httpx.Response:
    """Fill in and post the login form (its nonce cookie kept by the client)."""
    page = await client.get(f"/console/login?next={next_url}")
    assert page.status_code == 200, page.text
    return await client.post("/console/login", data={
        "token": token, "nonce": form_value(page.text, "nonce"), "next": next_url,
    })


async def scripted_call(client: httpx.AsyncClient, call_id: str = CALL_ID) -> VapiCall:
    """One Vapi call: a filler, the name, a preference, the slot list cut by a barge-in
    choosing the second slot (booked), then Vapi's end-of-call report."""
    call = VapiCall(client, call_id, number=PHONE)
    await call.say(BOOK)
    await call.say("euh")
    await call.say("Jean Dupont")
    slots = await call.say("pas de préférence")
    call.cut_last_reply(len(slots.text) // 2)
    answer = await call.say("le deuxième")
    assert answer.text.startswith("C'est noté"), answer.text
    report = {"message": {
        "type": "end-of-call-report", "endedReason": "assistant-ended-call", "call": call_object(call_id, PHONE),
        "startedAt": "2026-03-03T08:00:00Z", "endedAt": "2026-03-03T08:01:35Z", "cost": 0.07,
        "analysis": {"summary": "Rendez-vous pris."},
        "artifact": {"messages": [{"role": "user", "message": "le deuxième"}]},
    }}
    response = await client.post(EVENTS, json=report)
    assert response.status_code == 200, response.text
    return call


async def week_of_calls(client: httpx.AsyncClient, clock: FixedClock, now: datetime, tz: ZoneInfo) -> int:
    """Simulated callers of every kind over the Vapi interface, in batches at a few hours of
    each of the last seven days (the clock set to each in turn; none in the future), so that
    charts and lists have history. Returns how many calls were made."""
    made = 0
    today = now.astimezone(tz).date()
    for day in range(6, -1, -1):
        for batch, hour in enumerate(HOURS):
            at = datetime.combine(today - timedelta(days=day), time(hour), tzinfo=tz)
            if at >= now:
                continue
            clock.current = at
            mix = MIXES[(day + batch) % len(MIXES)]
            calls = 2 + (day * 3 + batch) % 3
            config = SimConfig(
                url="http://rdv.test", calls=calls, concurrency=3, mix=parse_mix(mix), seed=day * 10 + batch,
                transport="vapi", timeout=60.0, run_id=f"d{day}h{hour}", channel="voice",
                synthetic=False, keep_bookings=True,  # the week stands for real callers
            )
            await simulate(config, client)
            made += calls
    clock.current = now
    return made


@pytest.fixture
def real_now() -> datetime:
    """The machine's time: the console's periods are relative to it."""
    return datetime.now(UTC)


@pytest.fixture
def console_live(make_live: Callable[..., Any], real_now: datetime) -> Callable[..., Any]:
    """``async with console_live() as (live, clock)``: an app with the console on, a clock
    set to now, and a logged-in client."""
    import contextlib

    @contextlib.asynccontextmanager
    async def factory(**env: str) -> Any:
        clock = FixedClock(real_now)
        async with make_live(console_env(**env), clock=clock) as live:
            response = await login(live.client)
            assert response.status_code == 303, response.text
            yield live, clock

    return factory

