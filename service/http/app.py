"""The application factory and its lifespan: no globals, nothing done at import."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from service import __version__
from service.calendars import Calendar, CalendarError, open_calendar
from service.calendars.consistency import check as check_calendar
from service.clock import Clock, SystemClock
from service.config import Settings, load_practice
from service.console.routes import console_routes
from service.engine import nlu
from service.engine.nlu.memo import forget_all as forget_memos
from service.engine.practice import Practice
from service.http import openapi, routes
from service.http.common import EXCEPTION_HANDLERS, Services
from service.http.front import Served, TurnFront, trusted_proxies
from service.http.turns import Turns
from service.storage import open_store
from service.storage.base import Backend
from telemetry import Telemetry, names


def extra_routes() -> list[BaseRoute]:
    """Routes of the adapters and operator answers, each module owning its own."""
    found: list[BaseRoute] = []
    for module in ("service.vapi.routes", "service.http.operator", "service.http.understanding"):
        try:
            mod = __import__(module, fromlist=["ROUTES"])
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        found.extend(mod.ROUTES)
    return found


# What callers said (words, names, numbers) is memoized by the understanding and the number
# parser, for speed: the memos are emptied at least this often (checked at each reaper pass),
# so a running server keeps nothing of a caller in memory much longer, whether or not they
# asked to be forgotten (`rdv forget`, from another process, cannot reach this one's memory).
MEMO_SECONDS = 600.0


async def _reaper(svc: Services) -> None:
    memos_since = svc.clock.now()
    while True:
        await asyncio.sleep(svc.settings.reaper_interval_seconds)
        with contextlib.suppress(Exception):
            await svc.turns.reap(svc.instance)
        if svc.turns.calendar.external:
            await calendar_consistency(svc)
        memos_since = _memos_emptied(svc, memos_since)


def _memos_emptied(svc: Services, since: datetime) -> datetime:
    """Empty the memos when they are :data:`MEMO_SECONDS` old; when they were last emptied."""
    now = svc.clock.now()
    if (now - since).total_seconds() < MEMO_SECONDS:
        return since
    forget_memos()
    return now


async def calendar_consistency(svc: Services) -> None:
    """Compare the external calendar with the bookings: delete rdv's events that no booking
    holds (left by a turn whose compensation could not reach the calendar), report bookings
    without their event."""
    turns = svc.turns
    try:
        found = await asyncio.wait_for(
            check_calendar(turns.calendar, svc.store, svc.practice, svc.clock.now(), repair=True),
            svc.settings.calendar_timeout_seconds * 4 + svc.settings.store_timeout_seconds,
        )
    except (CalendarError, TimeoutError) as exc:
        svc.telemetry.log_event(names.LOG_CALENDAR_UNAVAILABLE, error=str(exc) or type(exc).__name__)
        return
    if found.repaired:
        svc.telemetry.log_event(
            names.LOG_CALENDAR_REPAIRED, deleted=found.repaired,
            conv_ids=",".join(sorted({e.conv_id or "-" for e in found.orphans})[:20]),
        )
    if found.missing:
        svc.telemetry.log_event(
            names.LOG_CALENDAR_MISMATCH, bookings_without_event=len(found.missing),
            slots=",".join(s.isoformat() for s in found.missing[:20]),
            action="the appointment was deleted in the agenda or booked before the calendar was connected",
        )


# Turn routes and Vapi server messages make their own server span inside the conversation's
# trace (the trace id is derived from the conversation, which the generic middleware cannot
# know); health and metrics scrapes make none. These paths do not go through OpenTelemetry's middleware at all.
UNTRACED_PATHS = re.compile(
    r"/metrics|/healthz|/readyz|/api/conversations/[^/]+/messages|/vapi/chat/completions|/vapi/events"
)


class OtherRoutesTraced:
    """ASGI middleware: OpenTelemetry's ASGI middleware (without receive/send spans) for every
    route but the untraced ones, which go straight to the app."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        self.app = app
        self.traced = OpenTelemetryMiddleware(app, tracer_provider=telemetry.provider,
                                              exclude_spans=["receive", "send"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Trace the request unless its path is one of :data:`UNTRACED_PATHS`."""
        if scope["type"] != "http" or UNTRACED_PATHS.fullmatch(scope["path"]):
            await self.app(scope, receive, send)
        else:
            await self.traced(scope, receive, send)


def request_spans(telemetry: Telemetry) -> list[Middleware]:
    """OpenTelemetry's ASGI middleware for the other routes."""
    if not telemetry.tracing:
        return []
    return [Middleware(OtherRoutesTraced, telemetry=telemetry)]


class RdvApp(Starlette):
    """The Starlette app, whose caller-turn routes a :class:`TurnFront` answers before the
    middleware stack and the router (:mod:`service.http.front`)."""

    turn_front: TurnFront | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a caller turn through the front (no body-read deadline: :class:`Served`
        gives it one), anything else through Starlette."""
        front = self.turn_front
        if front is not None:
            handler = front.route(scope)
            if handler is not None:
                await handler(scope, receive, send, None)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    practice: Practice | None = None,
    store: Backend | None = None,
    telemetry: Telemetry | None = None,
    clock: Clock | None = None,
    reaper: bool = True,
    routes_extra: Sequence[BaseRoute] = (),
    calendar: Calendar | None = None,
) -> RdvApp:
    """Build the ASGI app; the store is opened (and migrated) in the lifespan."""
    practice = practice or load_practice(settings.practice_file)
    store = store or open_store(settings.database_url, settings.data_dir, timeout=settings.store_timeout_seconds)
    telemetry = telemetry or Telemetry.create(
        log_format=settings.log_format,
        log_pii=settings.log_pii,
        trace_secret=settings.trace_secret.encode("utf-8"),
        version=__version__,
        enabled=settings.telemetry,
        traces_exporter=settings.traces_exporter,
        span_batch=(settings.span_batch_size, settings.span_batch_delay_ms),
        multiprocess=settings.metrics_multiproc_dir is not None,
    )
    clock = clock or SystemClock()
    calendar = calendar or open_calendar(practice, settings, telemetry)
    svc = Services(
        settings=settings,
        practice=practice,
        store=store,
        telemetry=telemetry,
        turns=Turns(store, telemetry, practice, settings, clock, calendar),
        clock=clock,
        instance=f"{socket.gethostname()}:{os.getpid()}:{id(store):x}",
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        nlu.warm()
        telemetry.start()
        await store.open()
        for warning in [*settings.warnings, *await store.warnings()]:
            telemetry.log_event(names.LOG_CONFIG_WARNING, message=warning)
        orphans = await store.unconfirmed_bookings()
        if orphans:
            # Left by a crash of an older version: slots booked that no caller heard confirmed.
            telemetry.log_event(
                names.LOG_UNCONFIRMED_BOOKINGS, count=len(orphans),
                conv_ids=",".join(sorted({o.conv_id for o in orphans})[:20]),
                action="run `rdv repair-bookings` to free them",
            )
        if calendar.external:
            try:
                await calendar.open()
            except CalendarError as exc:
                # Serve anyway: callers are told and transferred until the calendar answers.
                telemetry.log_event(names.LOG_CALENDAR_UNAVAILABLE, error=str(exc))
            else:
                await calendar_consistency(svc)
        task = asyncio.create_task(_reaper(svc)) if reaper else None
        svc.ready = True
        try:
            yield {}
        finally:
            svc.ready = False
            svc.draining = True
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await calendar.close()
            await store.close()
            telemetry.shutdown()

    app = RdvApp(
        routes=[*routes.ROUTES, *openapi.ROUTES, *extra_routes(), *console_routes(settings), *routes_extra],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
        middleware=request_spans(telemetry),
    )
    app.state.services = svc
    app.turn_front = TurnFront(svc, app.routes)
    return app


def app_from_env() -> ASGIApp:
    """The app built from the environment: the factory each uvicorn worker process calls
    (served as the one-process server serves it, uvicorn's proxy headers left to :class:`Served`)."""
    from service.config import load_settings

    return Served(create_app(load_settings()), trusted_hosts=trusted_proxies())
