"""Vapi's wire format, read and written without I/O.

Requests are validated into small dataclasses (a bad field is an :class:`ApiError` naming
it); answers are rendered as the OpenAI chunks Vapi's custom-LLM client expects: every chunk
carries a ``choices`` array, the stream ends with ``data: [DONE]``, a transfer or hang-up is
a ``transferCall`` / ``endCall`` tool call after the spoken words. Field names follow Vapi's
server SDK (``vapi-server-sdk``); ``../shared/vapi-protocol.md`` is the reference.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from service.http.common import ApiError
from service.phones import caller_id

CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
MAX_TEXT_CHARS = 2000
ROLES = frozenset({"system", "user", "assistant", "tool", "function", "developer"})
MODEL_NAME = re.compile(r"[ -~]{1,100}")


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One custom-LLM request reduced to what the turn needs."""

    call_id: str
    text: str | None  # the last user message; None when the caller has not spoken yet
    user_index: int  # how many user messages the history holds
    heard: str | None  # the last assistant message before that user message
    caller_phone: str | None
    stream: bool
    model: str

    @property
    def request_key(self) -> str:
        """The turn's identity: call, position of the user message, and its words.

        Vapi re-sends the whole history; a repeated request for the same user message is
        the same turn and gets the stored reply.
        """
        digest = hashlib.sha1((self.text or "").encode("utf-8"), usedforsecurity=False).hexdigest()[:12]
        return f"vapi:{self.call_id}:{self.user_index}:{digest}"


def _text_of(content: Any, where: str) -> str | None:
    """A message's text: a string, null, or OpenAI content parts ``[{type: text, text}]``."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if not isinstance(part, dict):
                raise ApiError(422, f"{where}.content parts must be objects")
            if part.get("type") == "text":
                text = part.get("text")
                if not isinstance(text, str):
                    raise ApiError(422, f"{where}.content text parts need a string 'text'")
                parts.append(text)
        return " ".join(parts)
    raise ApiError(422, f"{where}.content must be a string, null or a list of parts")


def call_id_of(message: dict[str, Any], *, required: bool = True) -> str | None:
    """``call.id`` (or the older ``call.callId``), validated; None when absent and optional."""
    call = message.get("call")
    if call is None and not required:
        return None
    if not isinstance(call, dict):
        raise ApiError(422, "field 'call' must be an object with the Vapi call 'id'")
    raw = call.get("id", call.get("callId"))
    if not isinstance(raw, str) or not CALL_ID.fullmatch(raw):
        raise ApiError(422, "field 'call.id' must be 1 to 100 characters among A-Z a-z 0-9 _ -")
    return raw


def customer_number(body: dict[str, Any]) -> str | None:
    """The caller's E.164 number from ``customer.number`` or ``call.customer.number``;
    None when withheld, a placeholder or invalid (the conversation then asks for it)."""
    call = body.get("call")
    for holder in (body.get("customer"), call.get("customer") if isinstance(call, dict) else None):
        if isinstance(holder, dict):
            number = caller_id(holder.get("number"))
            if number is not None:
                return number
    return None


def parse_chat(body: Any) -> ChatTurn:
    """Validate a custom-LLM request; :class:`ApiError` 400/422 names what is wrong."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object (an OpenAI chat completion request)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(422, "field 'messages' must be a non-empty list")
    # One pass over the history (Vapi re-sends all of it at every turn): the last user
    # message, how many there are, and the last words spoken before that one.
    users = 0
    last_user: str | None = None
    spoken: str | None = None
    heard: str | None = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError(422, f"messages[{i}] must be an object")
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise ApiError(422, f"messages[{i}].role must be one of {', '.join(sorted(ROLES))}")
        content = message.get("content")
        said = content if content is None or isinstance(content, str) else _text_of(content, f"messages[{i}]")
        if role == "user":
            users += 1
            last_user = said
            heard = spoken
        elif role == "assistant" and said:
            spoken = said
    stream = body.get("stream", True)
    if not isinstance(stream, bool):
        raise ApiError(422, "field 'stream' must be a boolean")
    model = body.get("model", "rdv")
    if not isinstance(model, str) or not MODEL_NAME.fullmatch(model):
        model = "rdv"
    call_id = call_id_of(body)
    assert call_id is not None
    return ChatTurn(
        call_id=call_id,
        text=(last_user or "")[:MAX_TEXT_CHARS] if users else None,
        user_index=users,
        heard=heard,
        caller_phone=customer_number(body),
        stream=stream,
        model=model,
    )


# --------------------------------------------------------------------------- answers
def tool_call(directive: str | None, transfer_number: str) -> dict[str, Any] | None:
    """The ``transferCall`` / ``endCall`` tool call that carries out ``directive``."""
    if directive == "transfer":
        name, arguments = "transferCall", {"destination": transfer_number}
    elif directive == "end":
        name, arguments = "endCall", {}
    else:
        return None
    return {
        "index": 0,
        "id": f"call_{name}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def _chunk(ident: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> bytes:
    payload = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(payload) + b"\n\n"  # compact UTF-8, keys in order: as json.dumps was


def sse_body(
    ident: str, model: str, reply: str, directive: str | None, transfer_number: str, now: datetime
) -> bytes:
    """The whole SSE answer: the words, then the tool call if any, the finish, ``[DONE]``."""
    created = int(now.timestamp())
    call = tool_call(directive, transfer_number)
    out = [_chunk(ident, created, model, {"role": "assistant", "content": reply}, None)]
    if call is not None:
        out.append(_chunk(ident, created, model, {"tool_calls": [call]}, None))
    out.append(_chunk(ident, created, model, {}, "tool_calls" if call is not None else "stop"))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def completion(
    ident: str, model: str, reply: str, directive: str | None, transfer_number: str, now: datetime
) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` answer (``stream: false``)."""
    call = tool_call(directive, transfer_number)
    message: dict[str, Any] = {"role": "assistant", "content": reply}
    if call is not None:
        message["tool_calls"] = [{k: v for k, v in call.items() if k != "index"}]
    return {
        "id": ident,
        "object": "chat.completion",
        "created": int(now.timestamp()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if call else "stop"}],
    }


# --------------------------------------------------------------------------- server messages
def parse_event(body: Any) -> dict[str, Any]:
    """The ``message`` of a server message envelope, with a string ``type``."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object like {\"message\": {\"type\": ...}}")
    message = body.get("message")
    if not isinstance(message, dict):
        raise ApiError(422, "field 'message' must be an object")
    kind = message.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > 100:
        raise ApiError(422, "field 'message.type' must be a non-empty string")
    return message


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any, limit: int = 20_000) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _last_messages(artifact: dict[str, Any], message: dict[str, Any], keep: int = 10) -> list[dict[str, Any]]:
    raw = artifact.get("messages", message.get("messages"))
    if not isinstance(raw, list):
        return []
    out: list[dict[str, Any]] = []
    for item in raw[-keep:]:
        if isinstance(item, dict):
            role, text = item.get("role"), item.get("message", item.get("content"))
            out.append({"role": _str(role, 40), "message": _str(text, 2000)})
    return out


def call_report(message: dict[str, Any]) -> dict[str, Any]:
    """What rdv keeps of an end-of-call report: reason, times, duration, cost, summary,
    transcript, recording and the last messages (new and older payload places both read)."""
    artifact = _object(message.get("artifact"))
    analysis = _object(message.get("analysis"))
    started, ended = _instant(message.get("startedAt")), _instant(message.get("endedAt"))
    duration = (ended - started).total_seconds() if started and ended and ended >= started else None
    cost = message.get("cost")
    report: dict[str, Any] = {
        "endedReason": _str(message.get("endedReason"), 200),
        "startedAt": started.isoformat() if started else None,
        "endedAt": ended.isoformat() if ended else None,
        "durationSeconds": duration,
        "cost": cost if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
        "summary": _str(analysis.get("summary")) or _str(message.get("summary")),
        "transcript": _str(artifact.get("transcript")) or _str(message.get("transcript")),
        "recordingUrl": _str(artifact.get("recordingUrl"), 2000) or _str(message.get("recordingUrl"), 2000),
        "messages": _last_messages(artifact, message),
    }
    return {k: v for k, v in report.items() if v not in (None, [])}


def tool_results(message: dict[str, Any]) -> dict[str, Any]:
    """The ``tool-calls`` answer: rdv declares no server-side tool, so each call gets an error
    Vapi reads back to the model (``arguments`` may be a JSON string or an object)."""
    calls = message.get("toolCallList")
    results: list[dict[str, Any]] = []
    if isinstance(calls, list):
        for call in calls:
            if not isinstance(call, dict):
                continue
            function = _object(call.get("function"))
            name = _str(function.get("name"), 100) or _str(call.get("name"), 100) or "unknown"
            results.append(
                {
                    "toolCallId": _str(call.get("id"), 200) or "",
                    "name": name,
                    "error": f"rdv does not run the tool {name!r}; the conversation is driven by the custom LLM",
                }
            )
    return {"results": results}
