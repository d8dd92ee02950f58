"""Operator answers over HTTP: booking stats and the automated diagnosis checklist.

Thin routes: parse the window, read the store (through the turn loop's guard, so a slow or
down store is a 503 with Retry-After), hand the rows to :mod:`service.stats`, serialise.
Both are protected by the operator token when one is configured.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service import stats
from service.engine import calendar
from service.engine.model import Conversation, Preference
from service.http.common import ApiError, Services, operator_access, services
from service.storage.base import Timeline, TracedTimeline

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


# The windows the HTTP answers take, exactly (the OpenAPI document states this pattern):
# 1 to 44640 minutes, 1 to 744 hours or 1 to 31 days, digits without a leading zero.
WINDOW_PATTERN = (
    r"^(?:(?:[1-9][0-9]{0,3}|[1-3][0-9]{4}|4[0-3][0-9]{3}|44[0-5][0-9]{2}|446[0-3][0-9]|44640)m"
    r"|(?:[1-9][0-9]?|[1-6][0-9]{2}|7[0-3][0-9]|74[0-4])h"
    r"|(?:[1-9]|[12][0-9]|3[01])d)$"
)
_WINDOW = re.compile(WINDOW_PATTERN)
_LIMIT = re.compile(r"[0-9]{1,4}")


def window_of(request: Request) -> stats.Window:
    """The ``?window=`` of the request (default 24h), or ApiError 422 naming the rule."""
    raw = request.query_params.get("window")
    if raw is not None and not _WINDOW.fullmatch(raw):
        raise ApiError(
            422, f"window {raw!r} must be a duration like 1h, 24h or 7d (minutes m, hours h or days d), "
            "longer than zero and at most 31 days",
        )
    try:
        return stats.parse_window(raw)
    except stats.StatsError as exc:
        raise ApiError(422, str(exc)) from None


def limit_of(request: Request) -> int:
    """The ``?limit=`` of conversations listed (default 100, 0 to 1000), or ApiError 422."""
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not _LIMIT.fullmatch(raw) or int(raw) > MAX_LIMIT:
        raise ApiError(422, f"limit {raw!r} must be a whole number between 0 and {MAX_LIMIT}")
    return int(raw)


def traced(svc: Services, timeline: Timeline, conv: Conversation) -> TracedTimeline:
    """``timeline`` of ``conv`` with its trace id and, when ``RDV_TRACE_UI_URL`` is set, the
    trace link (``GET /api/conversations/{conv_id}`` and the console's conversation page)."""
    trace_id = svc.telemetry.trace_id_hex(conv.conv_id, conv.epoch)
    ui = svc.settings.trace_ui_url
    answer: TracedTimeline = {**timeline, "trace_id": trace_id,
                              "trace_url": f"{(ui or '').rstrip('/')}/trace/{trace_id}"}
    if not ui:
        del answer["trace_url"]
    return answer


async def window_facts(svc: Services, since: datetime) -> list[stats.CallFacts]:
    """The facts of conversations last seen since ``since``, read through the store guard."""
    rows = await svc.scans.conversations_seen_since(since)
    events: list[Any] = []
    if rows:
        events = await svc.scans.events_since(stats.events_since(rows, since), stats.EVENT_KINDS)
    return stats.facts_from_store(rows, events)


async def calendar_fill(svc: Services, now: datetime) -> dict[str, Any]:
    """The bookable slots from now to the horizon and how many are booked (what ``rdv simulate``
    reads before filling any of it)."""
    practice = svc.practice
    end = now + timedelta(days=practice.horizon_days + 1)
    taken = await svc.scans.taken_slots(now, end)
    slots = [s.start for s in calendar.candidates(practice, Preference(), now, frozenset())]
    booked = sum(1 for start in slots if start in taken)
    return {"slots": len(slots), "booked": booked, "booked_share": round(booked / len(slots), 4) if slots else 0.0}


async def stats_bookings(request: Request) -> Response:
    """``GET /api/stats/bookings?window=24h``: the seed's §5.5 numbers and §5.7 targets, and how
    full the calendar is."""
    svc = services(request)
    operator_access(request)
    window = window_of(request)
    until = svc.clock.now()
    facts = await window_facts(svc, window.since(until))
    return JSONResponse({**stats.bookings(facts, window, until), "calendar": await calendar_fill(svc, until)})


async def diagnose(request: Request) -> Response:
    """``GET /api/diagnose?window=24h&limit=100``: the diagnosis checklist as JSON."""
    svc = services(request)
    operator_access(request)
    window = window_of(request)
    limit = limit_of(request)
    until = svc.clock.now()
    facts = await window_facts(svc, window.since(until))
    report = stats.diagnose(facts, window, until, source="store", limits=svc.settings.limits, limit=limit)
    return JSONResponse(report)


ROUTES = [
    Route("/api/stats/bookings", stats_bookings, methods=["GET"]),
    Route("/api/diagnose", diagnose, methods=["GET"]),
]
