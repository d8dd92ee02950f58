"""What every route shares: the services container, JSON errors, body parsing, auth."""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.clock import Clock
from service.config import Settings
from service.engine.model import RdvError
from service.engine.practice import Practice
from service.http.turns import Turns
from service.storage.base import Backend
from service.storage.guarded import GuardedStore, StoreUnavailableError
from telemetry import Telemetry

RETRY_AFTER_SECONDS = 5
STORE_UNAVAILABLE = "the service's store is unavailable, please retry shortly"
# A JSON body of at most RDV_MAX_BODY_BYTES arrives in milliseconds from Vapi or a chat
# widget; a client still sending after this long is stuck or hostile (slowloris).
BODY_READ_SECONDS = 5.0


class ApiError(RdvError):
    """A request the service refuses, with the HTTP status and a clear message."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        # True when the rest of the request is left unread: the connection must not be reused.
        self.close = close


@dataclass
class Services:
    """The running service's parts, built once in the lifespan and shared by routes."""

    settings: Settings
    practice: Practice
    store: Backend
    telemetry: Telemetry
    turns: Turns
    clock: Clock
    instance: str
    ready: bool = False
    draining: bool = False
    # The store as routes read it: every call answers within RDV_STORE_TIMEOUT_SECONDS (``scans``:
    # operator scans' longer deadline) or raises StoreUnavailableError (a 503).
    guarded: GuardedStore = field(init=False)
    scans: GuardedStore = field(init=False)

    def __post_init__(self) -> None:
        self.guarded = GuardedStore(self.store, self.settings.store_timeout_seconds, self.telemetry.store_unavailable)
        self.scans = self.guarded.scans()


def services(request: Request) -> Services:
    """The services of the app serving ``request``."""
    found: Services = request.app.state.services
    return found


class FastJSONResponse(JSONResponse):
    """A JSON answer encoded by orjson (compact UTF-8, as Starlette's own)."""

    def render(self, content: Any) -> bytes:
        """``content`` as JSON bytes."""
        return orjson.dumps(content)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """``{"error": message}`` with ``status``."""
    return FastJSONResponse({"error": message}, status_code=status, headers=headers)


async def api_error(request: Request, exc: Exception) -> Response:
    """Exception handler: an :class:`ApiError` becomes its JSON answer."""
    assert isinstance(exc, ApiError)
    return error(exc.status, exc.message, {"Connection": "close"} if exc.close else None)


async def store_unavailable(request: Request, exc: Exception) -> Response:
    """Exception handler: the store is down or slow → 503 with Retry-After."""
    return error(503, STORE_UNAVAILABLE, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def too_large(limit: int) -> ApiError:
    """The 413 of a body over ``limit`` bytes (the rest is left unread: the connection closes)."""
    return ApiError(413, f"request body larger than {limit} bytes", close=True)


def check_declared_length(declared: str | None, limit: int) -> None:
    """400 for a Content-Length that is not a number, 413 for one over ``limit``."""
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large(limit)
        except ValueError:
            raise ApiError(400, "invalid Content-Length header") from None


async def raw_body(request: Request, limit: int) -> bytes:
    """The request body's bytes (kept in ``request.state.raw_body``), or 413 when too large."""
    check_declared_length(request.headers.get("content-length"), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    request.state.raw_body = raw
    return raw


# Vapi's deepest payloads (assistant → model → tools → JSON-schema parameters) nest about
# fifteen levels; a body nested deeper is hostile, and Python's parser would hit its
# recursion limit (a 500) near a thousand.
MAX_JSON_DEPTH = 64
# A lone UTF-16 surrogate can only come from a \uD800-\uDFFF escape (raw UTF-8 cannot hold
# one and is refused as undecodable); such a string cannot be stored, logged or answered.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _finite(text: str) -> float:
    """A JSON number as a float; ``1e999`` (infinite) is refused like NaN."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]!r} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def check_json(value: Any, raw: bytes) -> None:
    """:class:`ApiError` 400 when a parsed body nests deeper than :data:`MAX_JSON_DEPTH` or
    holds a lone surrogate in any string (keys included). Walked once, without recursion,
    and only when the raw bytes say it may be needed."""
    deep = raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH
    escaped = _SURROGATE_ESCAPE.search(raw) is not None
    if not deep and not escaped:
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if escaped and _SURROGATE.search(item):
                raise ApiError(400, "request body holds a lone UTF-16 surrogate (\\uD800-\\uDFFF) in a string")
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ApiError(400, f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def parse_json(raw: bytes) -> Any:
    """``raw`` parsed as JSON, or :class:`ApiError` 400 with what is wrong (not JSON, NaN or
    an infinite number, nested too deep, a lone surrogate in a string).

    orjson parses; what it refuses (not JSON, NaN, an infinite number, a lone surrogate) is
    parsed again by Python's parser, whose refusals and messages are the API's."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    else:
        check_json(value, raw)
        return value
    if not raw.strip():
        raise ApiError(400, "request body is empty; expected a JSON object")
    try:
        value = json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise ApiError(400, f"request body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    check_json(value, raw)
    return value


def too_late(seconds: float) -> ApiError:
    """The 408 of a body not received ``seconds`` after its first read (the connection closes)."""
    return ApiError(408, f"request body not received within {seconds:g} seconds", close=True)


class BodyReadDeadline:
    """ASGI middleware: the whole request body must arrive within ``seconds`` of the first
    read, else the route fails with 408 and the connection is closed.

    uvicorn has no body timeout: a client that sends headers and then trickles the body one
    byte at a time would otherwise hold its connection and request task forever.
    """

    def __init__(self, app: ASGIApp, seconds: float = BODY_READ_SECONDS) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a ``receive`` that enforces the deadline on the body: one
        timer per request, armed at the first read and disarmed when the body is complete."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
        body_done = False
        expired = False
        reader: asyncio.Task[Any] | None = None  # the task while it waits for a body chunk

        def expire() -> None:
            nonlocal expired
            expired = True
            if reader is not None:
                reader.cancel()

        async def timed_receive() -> Message:
            nonlocal timer, body_done, reader
            if body_done:
                # Waiting for a disconnect while streaming a reply is not a body read.
                return await receive()
            if expired:
                raise too_late(self.seconds)
            if timer is None:
                timer = loop.call_at(loop.time() + self.seconds, expire)
            reader = asyncio.current_task()
            try:
                message = await receive()
            except asyncio.CancelledError:
                if expired and reader is not None and reader.uncancel() == 0:
                    raise too_late(self.seconds) from None
                raise
            finally:
                reader = None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
                timer.cancel()
            return message

        try:
            await self.app(scope, timed_receive, send)
        finally:
            if timer is not None:
                timer.cancel()


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, if any."""
    return bearer_of(request.headers.get("authorization"))


def bearer_of(header: str | None) -> str | None:
    """The token of an ``Authorization`` header's value ``Bearer …``, if it is one."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented secret with the configured one."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def operator_access(request: Request) -> bool:
    """True when the request may see unmasked data; raises 401 when a token is required."""
    token = services(request).settings.operator_token
    if token is None:
        return False
    if not same_secret(bearer_token(request), token):
        raise ApiError(401, "operator token required: send Authorization: Bearer <RDV_OPERATOR_TOKEN>")
    return True


EXCEPTION_HANDLERS = {ApiError: api_error, StoreUnavailableError: store_unavailable}
