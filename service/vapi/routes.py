"""The Vapi adapter: the custom-LLM endpoint (one caller turn per request, streamed back as
OpenAI chunks) and the server-message endpoint (call ended, end-of-call report, barge-in,
transfer destination, tools).

Routes stay thin: validate (:mod:`service.vapi.protocol`), authenticate (:mod:`service.vapi.auth`),
hand the turn to :class:`service.http.turns.Turns`, render the answer.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.engine import replies
from service.engine.states import Channel
from service.http.common import FastJSONResponse, Services, parse_json, raw_body, services
from service.http.turns import TurnRequest, TurnResult
from service.storage.guarded import StoreUnavailableError
from service.vapi import auth, protocol
from telemetry import names

CHAT_ROUTE = "/vapi/chat/completions"
EVENTS_ROUTE = "/vapi/events"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
QUIET_TYPES = frozenset({
    "conversation-update", "transcript", "model-output", "voice-input", "assistant-speech", "speech-update",
})


SSE_TYPE = "text/event-stream; charset=utf-8"


def _answer(
    svc: Services, turn: protocol.ChatTurn, reply: str, directive: str | None, number: int
) -> tuple[bytes, bool]:
    """The answer's bytes, and True when they are a server-sent event stream (else JSON)."""
    ident = f"chatcmpl-rdv-{turn.call_id}-{number}"
    now = svc.clock.now()
    transfer = svc.practice.transfer_number
    if turn.stream:
        return protocol.sse_body(ident, turn.model, reply, directive, transfer, now), True
    return orjson.dumps(protocol.completion(ident, turn.model, reply, directive, transfer, now)), False


def _greeting(svc: Services) -> str:
    return f"Bonjour, {svc.practice.name}, je vous écoute."


async def chat_completions(request: Request) -> Response:
    """``POST /vapi/chat/completions``: one caller turn, answered as Vapi's custom LLM."""
    body, streamed = await chat_turn(
        services(request), request.headers.get("authorization"), functools.partial(raw_body, request)
    )
    if streamed:
        return Response(body, media_type=SSE_TYPE, headers=SSE_HEADERS)
    return Response(body, media_type="application/json")


async def chat_turn(
    svc: Services, authorization: str | None, body: Callable[[int], Awaitable[bytes]]
) -> tuple[bytes, bool]:
    """One custom-LLM request, from the ``Authorization`` header's value (None when absent)
    and ``body(limit)``, which reads the request body: the answer's bytes and whether they are
    an event stream, or ApiError (the credential is checked before the body is read)."""
    auth.check_llm_authorization(authorization, svc.settings)
    turn = protocol.parse_chat(parse_json(await body(svc.settings.max_body_bytes)))
    if turn.text is None:
        # Asked to speak first (no caller words yet): greet, store nothing.
        return _answer(svc, turn, _greeting(svc), None, 0)
    try:
        result: TurnResult = await svc.turns.handle(
            TurnRequest(
                conv_id=turn.call_id,
                text=turn.text,
                channel=Channel.VOICE,
                route=CHAT_ROUTE,
                caller_phone=turn.caller_phone,
                vapi_call_id=turn.call_id,
                request_key=turn.request_key,
                heard=turn.heard,
                reopen=False,
            )
        )
    except StoreUnavailableError:
        # Vapi ends the call on an error status: apologise and hand over to a human instead.
        svc.telemetry.store_unavailable_transfer(turn.call_id)
        return _answer(svc, turn, replies.TRANSFER_ERROR, "transfer", 0)
    return _answer(svc, turn, result.reply, result.directive, result.turn)


# --------------------------------------------------------------------------- server messages
async def _ended(svc: Services, call_id: str | None, reason: str | None) -> dict[str, Any]:
    if call_id is not None:
        await svc.turns.end_call(call_id, reason)
    return {}


async def _report(svc: Services, message: dict[str, Any], call_id: str | None) -> dict[str, Any]:
    if call_id is None:
        return {}
    stored = await svc.guarded.load(call_id)
    if stored is None:
        return {}
    report = protocol.call_report(message)
    first = await svc.guarded.save_call_report(call_id, report, svc.clock.now())
    if first:
        svc.telemetry.vapi_ended_reason(stored.conversation, report.get("endedReason"))
    await svc.turns.end_call(call_id, report.get("endedReason"))
    return {}


def _transfer_destination(svc: Services) -> dict[str, Any]:
    return {
        "destination": {
            "type": "number",
            "number": svc.practice.transfer_number,
            "message": replies.TRANSFER[0],
        }
    }


async def _epoch(svc: Services, call_id: str | None) -> int:
    """The epoch of the call's conversation (0 when it has no turn yet: its first turn starts
    epoch 0), read only when spans are recorded."""
    if call_id is None or not svc.telemetry.tracing:
        return 0
    try:
        stored = await svc.guarded.load(call_id)
    except StoreUnavailableError:
        return 0
    return stored.conversation.epoch if stored is not None else 0


async def _act(svc: Services, message: dict[str, Any], call_id: str | None) -> dict[str, Any]:
    """Act on one valid server message; the answer Vapi reads."""
    kind: str = message["type"]
    answer: dict[str, Any] = {}
    if kind == "status-update":
        if message.get("status") == "ended":
            reason = message.get("endedReason")
            answer = await _ended(svc, call_id, reason if isinstance(reason, str) else None)
    elif kind == "end-of-call-report":
        answer = await _report(svc, message, call_id)
    elif kind == "user-interrupted":
        # The caller spoke over the assistant: the next turn is a barge-in. (speech-update
        # "user started" also comes at every ordinary turn, so it marks nothing.)
        if call_id is not None:
            await svc.turns.mark_barge_in(call_id)
    elif kind == "hang":
        svc.telemetry.log_event(names.LOG_VAPI_HANG, conv_id=call_id or "-")
    elif kind == "transfer-destination-request":
        answer = _transfer_destination(svc)
    elif kind == "tool-calls":
        answer = protocol.tool_results(message)
    elif kind == "assistant-request":
        answer = {"error": "Ce numéro n'est pas encore configuré. Merci de rappeler plus tard."}
    elif kind == "knowledge-base-request":
        answer = {"documents": []}
    elif kind not in QUIET_TYPES:
        svc.telemetry.log_event(names.LOG_VAPI_EVENT_IGNORED, type=kind[:100])
    return answer


async def events(request: Request) -> Response:
    """``POST /vapi/events``: Vapi's server messages, acted on and acknowledged.

    The request's span joins the call's trace (the generic ASGI middleware, which can only
    start a new trace, skips this route); a refused request (authentication, body) has none.
    """
    svc = services(request)
    raw = await raw_body(request, svc.settings.max_body_bytes)
    signature = auth.check_server_message(request, raw, svc.settings, svc.clock.now())
    message = protocol.parse_event(parse_json(raw))
    # Remembered only once the body is known to be valid: a refused body is not a replay.
    await auth.refuse_replay(svc, signature)
    call_id = protocol.call_id_of(message, required=False)
    with svc.telemetry.server_message_span(call_id, await _epoch(svc, call_id), message["type"]) as span:
        answer = await _act(svc, message, call_id)
        if span is not None:
            span.set_attribute(names.A_HTTP_STATUS, 200)
    return FastJSONResponse(answer)


ROUTES = [
    Route(CHAT_ROUTE, chat_completions, methods=["POST"]),
    Route(EVENTS_ROUTE, events, methods=["POST"]),
]
