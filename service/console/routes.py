"""The console's routes under ``/console``: thin handlers that read, arrange and render.

Each page handler checks the operator's session (or redirects to the login form), reads
through :mod:`service.console.reads`, arranges with a pure module (:mod:`~.overview`,
:mod:`~.listing`, :mod:`~.transcript`, :mod:`~.misses`) and renders a Jinja2 template.
Every response carries a strict Content-Security-Policy (scripts and styles from the console's
own static files only), ``no-store`` for data, and ``same-origin`` referrers: conversation ids in URLs
do not leak to the trace UI.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlsplit

import jinja2
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import __version__
from service.config import ConfigError, Settings
from service.console import alerting, french, listing, misses, periods, reads, transcript
from service.console.overview import overview
from service.console.session import (
    COOKIE_PATH,
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Session,
    Sessions,
    same_csrf,
)
from service.http.common import ApiError, Services, bearer_token, raw_body, same_secret, services
from service.phones import mask

PREFIX: Final = "/console"
FORM_LIMIT: Final = 4096
FAILED_LOGIN_DELAY_SECONDS: Final = 0.5  # slows guessing, costs an honest typo half a second
POLL_SECONDS: Final = 5
SECURITY_HEADERS: Final = (
    (b"content-security-policy", (
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)


class ConsoleHeaders:
    """ASGI middleware: the security headers on every console response, ``no-store`` on all
    but the static assets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(f"{PREFIX}/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("service.console", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        stamp=french.stamp, clock=french.clock, day=french.day, percent=french.percent,
        outcome=french.outcome, field=french.field, channel=french.channel, mask_phone=mask,
        duration=french.duration,
    )
    return env


def safe_next(raw: str | None) -> str:
    """Where to go after logging in: a console path of this site, never another site."""
    target = (raw or "").strip()
    parts = urlsplit(target)
    if (
        not (target == PREFIX or target.startswith(f"{PREFIX}/")) or "\\" in target
        or parts.scheme or parts.netloc
    ):
        return f"{PREFIX}/"
    return target


def _same_origin(request: Request) -> bool:
    """False when the browser says the form came from another origin."""
    origin = request.headers.get("origin")
    if origin is None:  # older browsers send none on same-origin posts; SameSite and the nonce hold
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (login and logout forms are tiny)."""
    try:
        raw = await raw_body(request, FORM_LIMIT)
    except ApiError:
        return {}
    return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))


_PageHandler = Callable[["Console", Request, Session], Awaitable[Response]]


def _page(handler: _PageHandler) -> Callable[[Console, Request], Awaitable[Response]]:
    """A page for an operator with a session; without one, a redirect to the login form."""

    @functools.wraps(handler)
    async def page(console: Console, request: Request) -> Response:
        session = console.session(request)
        if session is None:
            return console.to_login(request)
        return await handler(console, request, session)

    return page


class Console:
    """The console's pages, bound to the signing key derived from the operator token."""

    def __init__(self, settings: Settings) -> None:
        if settings.operator_token is None:
            # load_settings refuses RDV_CONSOLE=true without a token; this guards other callers.
            raise ConfigError("the console needs RDV_OPERATOR_TOKEN")
        self.settings = settings
        self.sessions = Sessions(settings.operator_token)
        self.templates = Jinja2Templates(env=_environment())

    # ------------------------------------------------------------------ access
    def session(self, request: Request) -> Session | None:
        """The operator's session: the signed cookie, or the operator token as a bearer."""
        found = self.sessions.read(request.cookies.get(SESSION_COOKIE))
        if found is None and self.settings.operator_token is not None and same_secret(
            bearer_token(request), self.settings.operator_token
        ):
            return Session(csrf="")  # a script with the token: may read, has no forms
        return found

    def to_login(self, request: Request) -> Response:
        """303 to the login form, coming back here afterwards."""
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/login?next={quote(here, safe='')}", status_code=303)

    def _secure(self, request: Request) -> bool:
        return request.url.scheme == "https" or self.settings.production

    def render(self, request: Request, name: str, session: Session | None, status: int = 200,
               **context: Any) -> Response:
        """A page with the context every template uses."""
        svc = services(request)
        base = {
            "session": session, "practice": svc.practice.name, "tz": svc.practice.timezone.key,
            "version": __version__, "poll_seconds": POLL_SECONDS, "nav": name.removesuffix(".html"),
            "now": svc.clock.now().astimezone(svc.practice.timezone),
        }
        return self.templates.TemplateResponse(request, name, {**base, **context}, status_code=status)

    # ------------------------------------------------------------------ login
    async def login_page(self, request: Request) -> Response:
        """``GET /console/login``: the form (or straight on when already logged in)."""
        target = safe_next(request.query_params.get("next"))
        if self.sessions.read(request.cookies.get(SESSION_COOKIE)) is not None:
            return RedirectResponse(target, status_code=303)
        return self._login_form(request, target, None, 200)

    def _login_form(self, request: Request, target: str, error: str | None, status: int) -> Response:
        cookie, nonce = self.sessions.login_form()
        response = self.render(request, "login.html", None, status, nonce=nonce, next=target, error=error)
        response.set_cookie(LOGIN_COOKIE, cookie, max_age=LOGIN_FORM_SECONDS, path=COOKIE_PATH,
                            httponly=True, samesite="strict", secure=self._secure(request))
        return response

    async def login(self, request: Request) -> Response:
        """``POST /console/login``: check the form's nonce, then the token; set the session."""
        form = await _form(request)
        target = safe_next(form.get("next"))
        if not _same_origin(request) or not self.sessions.login_form_ok(
            request.cookies.get(LOGIN_COOKIE), form.get("nonce")
        ):
            return self._login_form(request, target, "Formulaire expiré ou venu d'ailleurs : recommencez.", 403)
        token = self.settings.operator_token
        if token is None or not same_secret(form.get("token", "").strip(), token):
            await asyncio.sleep(FAILED_LOGIN_DELAY_SECONDS)
            return self._login_form(request, target, "Jeton incorrect.", 401)
        cookie, _ = self.sessions.open()
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_SECONDS, path=COOKIE_PATH,
                            httponly=True, samesite="strict", secure=self._secure(request))
        response.delete_cookie(LOGIN_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    async def logout(self, request: Request) -> Response:
        """``POST /console/logout``: with the session's CSRF token, forget the session."""
        session = self.sessions.read(request.cookies.get(SESSION_COOKIE))
        form = await _form(request)
        if session is None or not _same_origin(request) or not same_csrf(session, form.get("csrf")):
            return PlainTextResponse("Formulaire refusé.", status_code=403)
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    # ------------------------------------------------------------------ pages
    @_page
    async def overview_page(self, request: Request, session: Session) -> Response:
        """``GET /console/?period=today|7d``: the stats, the target table, firing alerts."""
        svc = services(request)
        tz = svc.practice.timezone
        now = svc.clock.now()
        p = periods.period(request.query_params.get("period"), now, tz)
        facts = await reads.facts_between(svc, p.since)
        alerts = await alerting.firing(self.settings.alertmanager_url, tz)
        return self.render(request, "overview.html", session, view=overview(facts, p, tz), alerts=alerts,
                           periods=periods.LABELS, live_since=now.isoformat())

    @_page
    async def conversations_page(self, request: Request, session: Session) -> Response:
        """``GET /console/conversations``: the list, filtered; an exact id opens it."""
        svc = services(request)
        tz = svc.practice.timezone
        now = svc.clock.now()
        filters, errors = listing.parse_filters(request.query_params, now.astimezone(tz).date())
        if filters.q and await reads.exists(svc, filters.q):
            return RedirectResponse(f"{PREFIX}/conversations/{quote(filters.q)}", status_code=303)
        if filters.day:
            since, before = periods.midnight(filters.day, tz), periods.midnight(filters.day + timedelta(days=1), tz)
        else:
            since, before = periods.period(filters.period, now, tz).since, None
        facts = listing.newest_first(
            [f for f in await reads.facts_between(svc, since, before) if listing.matches(f, filters)]
        )
        phones: dict[str, str | None] = {}
        scanned_all = True
        if filters.phone:
            scanned_all = len(facts) <= listing.MAX_PHONE_SCAN
            phones = await reads.caller_phones(svc, [f.conv_id for f in facts[: listing.MAX_PHONE_SCAN]])
            facts = [f for f in facts if listing.phone_matches(phones.get(f.conv_id), filters.phone)]
        rows = [listing.row(f, tz, phones.get(f.conv_id)) for f in facts[: listing.MAX_ROWS]]
        return self.render(
            request, "conversations.html", session, 422 if errors else 200,
            filters=filters, errors=errors, rows=rows, total=len(facts), described=listing.describe(filters),
            outcome_choices=listing.OUTCOME_LABELS, state_choices=listing.STATE_CHOICES,
            channel_choices=french.CHANNELS, periods=periods.LABELS, max_rows=listing.MAX_ROWS,
            scanned_all=scanned_all, max_scan=listing.MAX_PHONE_SCAN, live_since=now.isoformat(),
        )

    @_page
    async def conversation_page(self, request: Request, session: Session) -> Response:
        """``GET /console/conversations/{conv_id}``: the transcript and what the engine did."""
        svc = services(request)
        conv_id = str(request.path_params["conv_id"])
        found = await reads.timeline(svc, conv_id) if listing.SEARCH.fullmatch(conv_id) else None
        if found is None:
            return self.render(request, "missing.html", session, 404, conv_id=conv_id)
        return self.render(request, "conversation.html", session,
                           conv=transcript.conversation(found, svc.practice.timezone))

    @_page
    async def misses_page(self, request: Request, session: Session) -> Response:
        """``GET /console/misses?period=today|7d``: the not-understood inbox."""
        svc = services(request)
        now = svc.clock.now()
        p = periods.period(request.query_params.get("period"), now, svc.practice.timezone)
        found, truncated = await self._misses(svc, p.since)
        lines = misses.understand_lines(found).count("\n")
        return self.render(request, "misses.html", session, period=p, periods=periods.LABELS,
                           groups=misses.groups(found), count=lines, truncated=truncated,
                           max_conversations=misses.MAX_CONVERSATIONS, live_since=now.isoformat())

    async def misses_export(self, request: Request) -> Response:
        """``GET /console/misses.jsonl?period=…``: the misses as ``rdv understand`` input."""
        if self.session(request) is None:
            return PlainTextResponse("operator session or token required", status_code=401)
        svc = services(request)
        p = periods.period(request.query_params.get("period"), svc.clock.now(), svc.practice.timezone)
        found, _ = await self._misses(svc, p.since)
        return Response(
            misses.understand_lines(found), media_type="application/x-ndjson; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="rdv-non-compris-{p.key}.jsonl"'},
        )

    async def _misses(self, svc: Services, since: datetime) -> tuple[list[misses.Miss], bool]:
        events = await reads.events_of(svc, since, misses.MISS_KINDS)
        ids = misses.recent_conversations(events)
        truncated = len({e.conv_id for e in events}) > len(ids)
        found: list[misses.Miss] = []
        for tl in await reads.timelines(svc, ids):
            found.extend(misses.misses_of(tl, svc.practice.timezone, since))
        return found, truncated

    async def live(self, request: Request) -> Response:
        """``GET /console/live.json``: ``?conv=ID`` → its stamp; ``?since=ISO`` → whether any
        conversation moved since then. The pages poll it to refresh while calls go on."""
        if self.session(request) is None:
            return JSONResponse({"error": "operator session or token required"}, status_code=401)
        svc = services(request)
        conv_id = request.query_params.get("conv")
        if conv_id is not None:
            found = await reads.timeline(svc, conv_id) if listing.SEARCH.fullmatch(conv_id) else None
            if found is None:
                return JSONResponse({"error": "unknown conversation"}, status_code=404)
            return JSONResponse({"stamp": transcript.stamp_of(found), "live": found.get("outcome") is None})
        try:
            since = datetime.fromisoformat(request.query_params.get("since", ""))
        except ValueError:
            return JSONResponse({"error": "since must be an ISO time with offset"}, status_code=422)
        if since.tzinfo is None:
            return JSONResponse({"error": "since must be an ISO time with offset"}, status_code=422)
        return JSONResponse({"changed": await reads.seen_since(svc, since) > 0, "live": await reads.live_count(svc)})

    # ------------------------------------------------------------------ routes
    def routes(self) -> list[BaseRoute]:
        """The console's routes, inside its own headers middleware."""
        static = StaticFiles(directory=Path(__file__).with_name("static"))
        inner = Router(routes=[
            Route("/", self.overview_page, methods=["GET"]),
            Route("/login", self.login_page, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/conversations", self.conversations_page, methods=["GET"]),
            Route("/conversations/{conv_id}", self.conversation_page, methods=["GET"]),
            Route("/misses", self.misses_page, methods=["GET"]),
            Route("/misses.jsonl", self.misses_export, methods=["GET"]),
            Route("/live.json", self.live, methods=["GET"]),
            Mount("/static", app=static, name="static"),
        ])
        return [Mount(PREFIX, app=ConsoleHeaders(inner))]


def console_routes(settings: Settings) -> list[BaseRoute]:
    """The console's routes when it is on (``RDV_CONSOLE``), none otherwise."""
    return Console(settings).routes() if settings.console else []
