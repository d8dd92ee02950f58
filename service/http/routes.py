"""Thin routes: the text conversation API, timelines, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.engine.states import Channel
from service.http import textapi
from service.http.common import (
    ApiError,
    Services,
    error,
    operator_access,
    parse_json,
    raw_body,
    services,
)
from service.http.masking import masked_timeline
from service.http.operator import traced
from service.http.turns import ForeignConversationError, TurnRequest
from service.phones import caller_id
from service.storage.base import StoreError
from service.storage.guarded import StoreUnavailableError

CONV_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
MAX_TEXT_CHARS = 2000
REQUEST_KEY = re.compile(r"[ -~]{1,200}")
PHONE_CHARS = re.compile(r"[0-9+ ().-]{0,32}")
TEXT_ROUTE = "/api/conversations/{conv_id}/messages"


def conv_id_of(request: Request) -> str:
    """The path's conversation id, validated."""
    return checked_conv_id(str(request.path_params["conv_id"]))


def checked_conv_id(conv_id: str) -> str:
    """``conv_id`` when it is a valid conversation id, else ApiError 400."""
    if not CONV_ID.fullmatch(conv_id):
        raise ApiError(400, "conv_id must be 1 to 128 characters among A-Z a-z 0-9 _ -")
    return conv_id


def parse_message(body: Any) -> tuple[str, Channel, str | None, str | None]:
    """(text, channel, caller phone, request key) of a text-API message, or ApiError 400/422."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object like {\"text\": \"bonjour\"}")
    if "text" not in body:
        raise ApiError(422, "field 'text' is required")
    text = body["text"]
    if not isinstance(text, str):
        raise ApiError(422, "field 'text' must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise ApiError(422, f"field 'text' is longer than {MAX_TEXT_CHARS} characters")
    raw_channel = body.get("channel", "text")
    if raw_channel not in ("text", "voice"):
        raise ApiError(422, "field 'channel' must be 'text' or 'voice'")
    phone_raw = body.get("caller_phone")
    phone: str | None = None
    if phone_raw is not None:
        if not isinstance(phone_raw, str):
            raise ApiError(422, "field 'caller_phone' must be a string")
        if not PHONE_CHARS.fullmatch(phone_raw):
            raise ApiError(422, "field 'caller_phone' must be at most 32 digits, spaces and + ( ) . -")
        phone = caller_id(phone_raw)
        if phone is None and phone_raw.strip():
            raise ApiError(422, "field 'caller_phone' is not a valid phone number")
    key = body.get("request_id")
    if key is not None and (not isinstance(key, str) or not REQUEST_KEY.fullmatch(key)):
        raise ApiError(422, "field 'request_id' must be 1 to 200 printable ASCII characters")
    return text, Channel(raw_channel), phone, key


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, held to ``request_id``'s rule, or ApiError 400."""
    return checked_idempotency_key(request.headers.get("idempotency-key"))


def checked_idempotency_key(key: str | None) -> str | None:
    """An ``Idempotency-Key`` header's value (None without one), held to ``request_id``'s
    rule, or ApiError 400."""
    if key is not None and not REQUEST_KEY.fullmatch(key):
        raise ApiError(400, "header 'Idempotency-Key' must be 1 to 200 printable ASCII characters")
    return key


async def new_conversation(request: Request) -> Response:
    """``POST /api/conversations``: a new, unguessable, server-issued conversation id (201)."""
    svc = services(request)
    textapi.client_of(request, svc.settings)
    return JSONResponse({"conv_id": textapi.issue_id(svc.settings)}, status_code=201)


async def post_message(request: Request) -> Response:
    """``POST /api/conversations/{conv_id}/messages``: one caller turn on the text API."""
    headers = request.headers
    answer = await text_turn(
        services(request), str(request.path_params["conv_id"]), headers.get("authorization"),
        headers.get("idempotency-key"), functools.partial(raw_body, request),
    )
    return Response(answer, media_type="application/json")


async def text_turn(
    svc: Services,
    conv_id: str,
    authorization: str | None,
    idempotency: str | None,
    body: Callable[[int], Awaitable[bytes]],
) -> bytes:
    """One caller turn on the text API, from the path's ``conv_id``, the ``Authorization`` and
    ``Idempotency-Key`` headers' values (None when absent) and ``body(limit)``, which reads the
    request body: the JSON answer's bytes, or ApiError (checked in this order: the client, the
    id, the key, the body, its fields)."""
    client = textapi.client_from(authorization, svc.settings)
    conv_id = checked_conv_id(conv_id)
    textapi.check_id(client, svc.settings, conv_id)
    header_key = checked_idempotency_key(idempotency)
    text, channel, phone, key = parse_message(parse_json(await body(svc.settings.max_body_bytes)))
    key = key or header_key
    try:  # checked by the turn loop on every turn: a Vapi call's conversation is never the text API's
        result = await svc.turns.handle(
            TurnRequest(
                conv_id=conv_id, text=text, channel=channel, route=TEXT_ROUTE,
                caller_phone=phone if client.phone_verified else None, request_key=key,
            )
        )
    except ForeignConversationError:
        raise textapi.not_a_text_conversation(conv_id) from None
    return orjson.dumps(
        {
            "conv_id": result.conv_id,
            "turn": result.turn,
            "state": result.state.value,
            "reply": result.reply,
            "ended": result.ended,
            "action": result.directive,
            "trace_id": result.trace_id,
        }
    )


async def get_conversation(request: Request) -> Response:
    """``GET /api/conversations/{conv_id}``: the timeline of one conversation; without the
    operator token (and unless ``RDV_LOG_PII=true``) names, free text and numbers masked."""
    svc = services(request)
    unmasked = operator_access(request) or svc.settings.log_pii
    conv_id = conv_id_of(request)
    timeline = await svc.guarded.timeline(conv_id)
    stored = await svc.guarded.load(conv_id)
    if timeline is None or stored is None:
        return error(404, f"no conversation {conv_id!r}")
    answer = traced(svc, timeline, stored.conversation)
    return JSONResponse(answer if unmasked else masked_timeline(stored.conversation, answer))


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: started, not draining, and the store commits a write (the way turns write)
    within ``RDV_READY_TIMEOUT_SECONDS``; else 503 with the reason. ``SELECT 1`` would answer
    under a lock held by another writer or on a full disk, when no turn can be saved."""
    svc = services(request)
    if svc.draining or not svc.ready:
        return error(503, "not ready" if not svc.draining else "draining")
    deadline = svc.settings.ready_timeout_seconds
    try:
        await asyncio.wait_for(svc.store.probe_write(svc.instance, svc.clock.now(), deadline), deadline)
    except TimeoutError:
        return error(503, f"store did not commit a write within {deadline:g} s (locked or overloaded)")
    except StoreError as exc:
        return error(503, f"store cannot take a write: {exc}")
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported as such
        return error(503, f"store cannot take a write: {type(exc).__name__}")
    return JSONResponse({"status": "ready", "calendar": await calendar_status(svc.turns.calendar)})


async def calendar_status(calendar: Any) -> dict[str, str]:
    """The calendar's kind and whether it answers. Reported, not a reason to be unready: a
    replica taken out of rotation would drop calls that it can still apologise for and transfer."""
    if not calendar.external:
        return {"kind": calendar.kind, "status": "ok"}
    try:
        await calendar.ping()
    except Exception as exc:  # noqa: BLE001 - any failure is reported as unreachable
        return {"kind": calendar.kind, "status": "unreachable", "error": str(exc)[:200]}
    return {"kind": calendar.kind, "status": "ok"}


# The lease of the replica that reports the store-wide active-conversations count: longer than
# a scrape interval, so the replica holding it keeps it while it is scraped.
ACTIVE_COUNT_LEASE_NAME = "active-count"
ACTIVE_COUNT_LEASE = timedelta(minutes=2)


async def active_counts(svc: Services) -> dict[str, int]:
    """Active conversations per channel as the store counts them, for the one replica holding
    the count's lease ({} for the others): summed over replicas, the ``rdv_active_conversations``
    gauge counts each conversation once."""
    now = svc.clock.now()
    lease = svc.store.try_lock(ACTIVE_COUNT_LEASE_NAME, svc.instance, now + ACTIVE_COUNT_LEASE, now)
    if not await svc.guarded.call(lease):
        return {}
    return await svc.guarded.active_counts()


async def metrics(request: Request) -> Response:
    """Prometheus exposition (OpenMetrics with exemplars when asked for); the active
    conversations gauge is counted in the store at each scrape, by one replica at a time."""
    svc = services(request)
    with contextlib.suppress(StoreUnavailableError):
        svc.telemetry.set_active(await active_counts(svc))
    body, content_type = svc.telemetry.metrics_response(request.headers.get("accept"))
    return Response(body, media_type=content_type)


ROUTES = [
    Route("/api/conversations", new_conversation, methods=["POST"]),
    Route(TEXT_ROUTE, post_message, methods=["POST"]),
    Route("/api/conversations/{conv_id}", get_conversation, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
