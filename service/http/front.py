"""The caller-turn routes served before Starlette's stack.

A caller turn (``POST /api/conversations/{conv_id}/messages`` on the text API, ``POST
/vapi/chat/completions`` from Vapi) is the request rdv serves most. Through Starlette it
crosses the error middleware, the exception middleware, the router's regex matching and the
endpoint wrappers, each a coroutine frame resumed at every await of the turn and a few
objects per request; through the served stack also the body-read deadline's ``receive``
wrapper and uvicorn's proxy-headers middleware. :class:`TurnFront` answers these two routes
directly with the same functions as their Starlette endpoints
(:func:`service.http.routes.text_turn`, :func:`service.vapi.routes.chat_turn`) and the same
answers: status codes, headers and JSON bodies of errors (the app's exception handlers'),
the 500 of an unexpected error (Starlette's, the error raised on for the server to log),
the body-read deadline (408) and size limits (413). Neither route reads the client address
or scheme, the only things the proxy headers change; neither is traced by the ASGI
middleware (each makes its own span in the conversation's trace, see
:data:`service.http.app.UNTRACED_PATHS`). Every other request, and any turn path the front
does not recognise exactly, goes through the full stack.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE, RequestResponseCycle

from service import heap
from service.http.common import (
    BODY_READ_SECONDS,
    RETRY_AFTER_SECONDS,
    STORE_UNAVAILABLE,
    ApiError,
    BodyReadDeadline,
    Services,
    check_declared_length,
    too_large,
    too_late,
)
from service.http.routes import post_message, text_turn
from service.storage.guarded import StoreUnavailableError
from service.vapi.routes import CHAT_ROUTE, SSE_HEADERS, SSE_TYPE, chat_completions, chat_turn

TEXT_PREFIX = "/api/conversations/"
TEXT_SUFFIX = "/messages"
_JSON = (b"content-type", b"application/json")
_SSE = [
    *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in SSE_HEADERS.items())
]
_SSE_TYPE = (b"content-type", SSE_TYPE.encode("latin-1"))
_CLOSE = (b"connection", b"close")
_RETRY = (b"retry-after", str(RETRY_AFTER_SECONDS).encode("latin-1"))
_STORE_DOWN = orjson.dumps({"error": STORE_UNAVAILABLE})
# Starlette's ServerErrorMiddleware answer to an unexpected error.
_SERVER_ERROR = b"Internal Server Error"
_SERVER_ERROR_HEADERS = [
    (b"content-length", str(len(_SERVER_ERROR)).encode("latin-1")),
    (b"content-type", b"text/plain; charset=utf-8"),
]

Handler = Callable[[Scope, Receive, Send, "Deadlines | None"], Awaitable[None]]


class _Expiry:
    """The body-read deadline of one request: at ``at`` (loop time), the task still reading the
    body (None once the body is read) is cancelled."""

    __slots__ = ("at", "expired", "task")

    def __init__(self, task: asyncio.Task[Any] | None, at: float) -> None:
        self.task = task
        self.at = at
        self.expired = False


class Deadlines:
    """The body-read deadlines of one event loop, all kept by one timer.

    A timer per request costs more than the rest of the body read (uvloop: about 2 µs to arm
    and cancel). The deadlines all last ``seconds``, so they come due in the order they were
    set: they wait in a queue, and one timer is armed for the first one still running; a body
    read that completes only marks its deadline done. Each deadline still expires at its exact
    time, as with its own timer."""

    __slots__ = ("loop", "queue", "seconds", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.loop = loop
        self.seconds = seconds
        self.queue: deque[_Expiry] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> _Expiry:
        """The deadline of a body read starting now, in the current task."""
        expiry = _Expiry(asyncio.current_task(), self.loop.time() + self.seconds)
        self.queue.append(expiry)
        if self.timer is None:
            self.timer = self.loop.call_at(expiry.at, self._due)
        return expiry

    def _due(self) -> None:
        """Cancel the reads whose deadline passed; arm the timer for the next one running."""
        self.timer = None
        queue = self.queue
        now = self.loop.time()
        while queue:
            expiry = queue[0]
            if expiry.task is None:
                queue.popleft()
            elif expiry.at <= now:
                queue.popleft()
                expiry.expired = True
                expiry.task.cancel()
            else:
                self.timer = self.loop.call_at(expiry.at, self._due)
                return


class BodyReader:
    """Reads a request body straight from ASGI ``receive``, as :func:`service.http.common.raw_body`
    does through Starlette's request under :class:`service.http.common.BodyReadDeadline`:
    400/413 from the declared length first, 413 as soon as the bytes pass the limit, 408
    (connection closed) when the whole body has not arrived within ``deadlines.seconds`` of the
    first read (no deadline when ``deadlines`` is None), Starlette's ``ClientDisconnect`` when
    the client goes away."""

    __slots__ = ("deadlines", "declared", "receive")

    def __init__(self, receive: Receive, declared: bytes | None, deadlines: Deadlines | None) -> None:
        self.receive = receive
        self.declared = declared
        self.deadlines = deadlines

    async def __call__(self, limit: int) -> bytes:
        """The body's bytes, at most ``limit`` of them."""
        if self.declared is not None:
            check_declared_length(self.declared.decode("latin-1"), limit)
        receive = self.receive
        deadlines = self.deadlines
        expiry = deadlines.start() if deadlines is not None else None
        body = b""
        chunks: list[bytes] | None = None
        size = 0
        try:
            while True:
                try:
                    message = await receive()
                except asyncio.CancelledError:
                    if expiry is not None and deadlines is not None and expiry.expired \
                            and expiry.task is not None and expiry.task.uncancel() == 0:
                        raise too_late(deadlines.seconds) from None
                    raise
                if message["type"] == "http.request":
                    chunk = message.get("body", b"")
                    if chunk:
                        size += len(chunk)
                        if size > limit:
                            raise too_large(limit)
                        if not body:
                            body = chunk
                        else:
                            if chunks is None:
                                chunks = [body]
                            chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
                elif message["type"] == "http.disconnect":
                    raise ClientDisconnect()
        finally:
            if expiry is not None:
                expiry.task = None  # done: the timer passes it by
        return body if chunks is None else b"".join(chunks)


def _headers(scope: Scope) -> tuple[bytes | None, bytes | None, bytes | None]:
    """The first Content-Length, Authorization and Idempotency-Key headers' raw values."""
    length = authorization = key = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            if length is None:
                length = value
        elif name == b"authorization":
            if authorization is None:
                authorization = value
        elif name == b"idempotency-key" and key is None:
            key = value
    return length, authorization, key


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# uvicorn's own ``send`` of a request (httptools), which :class:`Answer` writes for in one go.
_CYCLE_SEND = RequestResponseCycle.send
# Headers :class:`Answer` leaves to uvicorn's ``send``: the ones that change how it frames
# the answer or the connection.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection"})


def _header_block(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """``headers`` as uvicorn's ``send`` writes them (``name: value`` lines, names lowered),
    or None when one of them is a framing header or is refused by uvicorn."""
    lines = []
    for name, value in headers:
        if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value) or name.lower() in _FRAMING:
            return None
        lines.append(name.lower() + b": " + value + b"\r\n")
    return b"".join(lines)


class _ServerHeaders:
    """uvicorn's default headers (``date``, ``server``) as written: the list changes once a
    second (the date); its lines are made once per list."""

    __slots__ = ("block", "headers")

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] | None = None
        self.block: bytes | None = None

    def of(self, headers: list[tuple[bytes, bytes]]) -> bytes | None:
        if headers is not self.headers:
            self.block = _header_block(headers)
            self.headers = headers
        return self.block


_SERVER_HEADERS = _ServerHeaders()
_OK = STATUS_LINE[200]


class Answer:
    """A 200 answer with a Content-Length and fixed other headers (``before`` and ``after`` it).

    Sent through uvicorn's ``send`` it takes two messages, each parsed again (headers checked
    and lowered one by one), and two socket writes, the head's and the body's. Given uvicorn's
    own ``send`` of a request whose answer has not begun, :meth:`send` writes the same bytes
    (status line, uvicorn's default headers, these, ``connection: close`` when the connection
    is not kept alive, the body) in one write and leaves the request in the state uvicorn's
    two messages leave it; any other ``send`` gets the two ASGI messages."""

    __slots__ = ("after", "before", "middle", "tail")

    def __init__(self, before: list[tuple[bytes, bytes]], after: list[tuple[bytes, bytes]]) -> None:
        self.before = before
        self.after = after
        middle, tail = _header_block(before), _header_block(after)
        assert middle is not None and tail is not None, "fixed headers uvicorn writes as given"
        self.middle = middle
        self.tail = tail

    async def send(self, send: Send, body: bytes) -> None:
        """Answer ``body``."""
        if getattr(send, "__func__", None) is _CYCLE_SEND:
            cycle: RequestResponseCycle = send.__self__  # type: ignore[attr-defined]
            if not (cycle.response_started or cycle.disconnected or cycle.flow.write_paused or cycle.access_log):
                server = _SERVER_HEADERS.of(cycle.default_headers)
                if server is not None:
                    keep = cycle.keep_alive
                    cycle.response_started = True
                    cycle.waiting_for_100_continue = False
                    cycle.chunked_encoding = False
                    cycle.expected_content_length = 0
                    cycle.transport.write(b"".join((
                        _OK, server, self.middle, b"content-length: %d\r\n" % len(body), self.tail,
                        b"\r\n" if keep else b"connection: close\r\n\r\n", body,
                    )))
                    cycle.response_complete = True
                    cycle.message_event.set()
                    if not keep:
                        cycle.transport.close()
                    cycle.on_response()
                    return
        headers = [*self.before, (b"content-length", str(len(body)).encode("latin-1")), *self.after]
        await _respond(send, 200, headers, body)


def _refusal(exc: Exception) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
    """The app's exception handlers' answer to ``exc`` (status, headers, body), or None for an
    error they do not handle."""
    if isinstance(exc, ApiError):
        body = _error_body(exc.message)
        length = (b"content-length", str(len(body)).encode("latin-1"))
        return exc.status, ([_CLOSE, length, _JSON] if exc.close else [length, _JSON]), body
    if isinstance(exc, StoreUnavailableError):
        length = (b"content-length", str(len(_STORE_DOWN)).encode("latin-1"))
        return 503, [_RETRY, length, _JSON], _STORE_DOWN
    return None


def _error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})


_JSON_ANSWER = Answer([], [_JSON])
_SSE_ANSWER = Answer(_SSE, [_SSE_TYPE])


class TurnFront:
    """Dispatches the caller-turn routes registered among ``routes`` (see the module)."""

    def __init__(self, svc: Services, routes: list[BaseRoute]) -> None:
        self.svc = svc
        endpoints = {r.endpoint for r in routes if isinstance(r, Route) and r.methods and "POST" in r.methods}
        self.text_on = post_message in endpoints
        self.chat_on = chat_completions in endpoints

    def route(self, scope: Scope) -> Handler | None:
        """The handler of a caller-turn request, None for any other request."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        path: str = scope["path"]
        if path == CHAT_ROUTE:
            return self.chat if self.chat_on else None
        if (
            self.text_on and path.startswith(TEXT_PREFIX) and path.endswith(TEXT_SUFFIX)
            and len(path) > len(TEXT_PREFIX) + len(TEXT_SUFFIX) and "/" not in path[len(TEXT_PREFIX):-len(TEXT_SUFFIX)]
        ):
            return self.text
        return None

    async def text(self, scope: Scope, receive: Receive, send: Send, deadlines: Deadlines | None) -> None:
        """``POST /api/conversations/{conv_id}/messages``, as :func:`service.http.routes.post_message`."""
        started = False
        try:
            length, authorization, key = _headers(scope)
            path: str = scope["path"]
            answer = await text_turn(
                self.svc, path[len(TEXT_PREFIX):-len(TEXT_SUFFIX)], _text(authorization), _text(key),
                BodyReader(receive, length, deadlines),
            )
            started = True
            await _JSON_ANSWER.send(send, answer)
        except Exception as exc:  # noqa: BLE001 - answered as the app's handlers and Starlette do, then raised on
            await self._failed(exc, started, send)

    async def chat(self, scope: Scope, receive: Receive, send: Send, deadlines: Deadlines | None) -> None:
        """``POST /vapi/chat/completions``, as :func:`service.vapi.routes.chat_completions`."""
        started = False
        try:
            length, authorization, _ = _headers(scope)
            answer, streamed = await chat_turn(self.svc, _text(authorization), BodyReader(receive, length, deadlines))
            started = True
            await (_SSE_ANSWER if streamed else _JSON_ANSWER).send(send, answer)
        except Exception as exc:  # noqa: BLE001 - answered as the app's handlers and Starlette do, then raised on
            await self._failed(exc, started, send)

    @staticmethod
    async def _failed(exc: Exception, started: bool, send: Send) -> None:
        """Answer a refused request as the app's exception handlers do; any other error as
        Starlette does: a plain 500 (unless the answer had begun), and raised on."""
        refusal = None if started else _refusal(exc)
        if refusal is not None:
            await _respond(send, *refusal)
            return
        if not started:
            await _respond(send, 500, _SERVER_ERROR_HEADERS, _SERVER_ERROR)
        raise exc


# The collector's youngest generation is examined after this many more allocations than
# releases (Python's default: 700).
GC_YOUNG_THRESHOLD = 7000


def settle_heap() -> None:
    """What the app built to start (modules, the understanding's tables, the practice's
    calendar) is frozen out of the collector's scans, which otherwise walk it all at each
    full collection (some 40 ms, every few thousand turns), and the youngest generation is
    examined ten times less often: what a turn allocates is freed by reference counting when
    it ends, so each examination mostly walks the objects of the turns in flight
    (:func:`service.heap.settle`)."""
    heap.settle(GC_YOUNG_THRESHOLD)


def _settled_once_started(send: Send) -> Send:
    """``send`` of the lifespan, which settles the heap (:func:`settle_heap`) when the app
    says it has started."""

    async def forward(message: Any) -> None:
        if message["type"] == "lifespan.startup.complete":
            settle_heap()
        await send(message)

    return forward


def trusted_proxies() -> str:
    """The addresses whose X-Forwarded-For and X-Forwarded-Proto headers are believed: uvicorn's
    own default (``FORWARDED_ALLOW_IPS``, else the loopback addresses)."""
    return os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


class Served:
    """The app as uvicorn serves it: caller turns through :class:`TurnFront` with the body-read
    deadline, everything else through uvicorn's proxy-headers middleware (when proxies are
    trusted), :class:`service.http.common.BodyReadDeadline` and the app.

    uvicorn must then be configured with ``proxy_headers=False``: the proxy headers are
    handled here, for the requests that read them."""

    def __init__(
        self, app: ASGIApp, seconds: float = BODY_READ_SECONDS, trusted_hosts: list[str] | str | None = None
    ) -> None:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        self.app = app
        self.seconds = seconds
        self.deadlines: Deadlines | None = None  # of the loop serving
        self.front: TurnFront | None = getattr(app, "turn_front", None)
        rest: ASGIApp = BodyReadDeadline(app, seconds)
        if trusted_hosts is not None:
            rest = cast(ASGIApp, ProxyHeadersMiddleware(rest, trusted_hosts))  # type: ignore[arg-type]
        self.rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope."""
        if scope["type"] == "lifespan":
            await self.rest(scope, receive, _settled_once_started(send))
            return
        front = self.front
        if front is not None:
            handler = front.route(scope)
            if handler is not None:
                deadlines = self.deadlines
                if deadlines is None or deadlines.loop is not asyncio.get_running_loop():
                    deadlines = self.deadlines = Deadlines(asyncio.get_running_loop(), self.seconds)
                await handler(scope, receive, send, deadlines)
                return
        await self.rest(scope, receive, send)
