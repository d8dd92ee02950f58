"""How synthetic callers reach a running service: as Vapi does, or through the text API.

``vapi`` (the default) speaks the custom-LLM protocol of ``vapi-protocol.md``: the whole
history in every ``POST /vapi/chat/completions``, an SSE answer of OpenAI chunks, and server
messages (``user-interrupted``, ``status-update``, ``end-of-call-report``) on
``POST /vapi/events``. ``text`` uses ``POST /api/conversations/{id}/messages``, which also
tells the engine's state. Requests go only to the base URL given.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from service.engine.model import RdvError
from service.tools.dialogue import Stage, infer_stage, stage_of_state

CHAT_PATH = "/vapi/chat/completions"
EVENTS_PATH = "/vapi/events"
TEXT_PATH = "/api/conversations/{conv_id}/messages"
TRANSPORTS = ("vapi", "text")
SYSTEM_PROMPT = "Tu es l'assistante vocale du cabinet. (rdv decides every reply.)"
FIRST_MESSAGE = "Bonjour, vous êtes bien au cabinet. Que puis-je faire pour vous ?"
# What a barge-in leaves of the reply in Vapi's history: the part actually spoken.
SPOKEN_SHARE = 0.4


class ToolError(RdvError):
    """A tool could not reach the service, or the service answered something unexpected."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One assistant turn as the caller perceives it."""

    text: str
    stage: Stage
    seconds: float
    state: str | None = None
    action: str | None = None  # "transfer", "end" or None
    ended: bool = False


class CallSession(Protocol):
    """One call in progress."""

    call_id: str

    async def say(self, text: str, *, interrupted: bool = False) -> Reply:
        """Send one caller utterance and return the assistant's answer."""

    async def end(self, reason: str) -> None:
        """Hang up: tell the service the call is over (Vapi's end-of-call report)."""


class Transport(Protocol):
    """Opens calls against one service."""

    name: str

    def session(self, call_id: str, phone: str | None) -> CallSession:
        """A new call from ``phone`` (None: caller id withheld)."""


def _refused(method: str, path: str, response: httpx.Response) -> ToolError:
    detail = response.text.strip().replace("\n", " ")[:200]
    hint = ""
    if response.status_code == 404 and path.startswith("/vapi/"):
        hint = " (is the Vapi adapter deployed? try --transport text)"
    return ToolError(f"{method} {path} → HTTP {response.status_code}: {detail}{hint}")


def read_sse(lines: Iterable[str]) -> tuple[str, list[str]]:
    """(text, tool function names) of a streamed chat completion; ToolError if malformed.

    Every ``data:`` event must be a chunk with a ``choices`` array (Vapi rejects others) and
    the stream must end with ``data: [DONE]``.
    """
    pieces: list[str] = []
    tools: list[str] = []
    done = False
    for raw in lines:
        line = raw.strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise ToolError(f"stream chunk is not JSON: {data[:80]!r} ({exc})") from None
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        if not isinstance(choices, list):
            raise ToolError(f"stream chunk without a choices array: {data[:80]!r}")
        for choice in choices:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            content = delta.get("content")
            if isinstance(content, str):
                pieces.append(content)
            for call in delta.get("tool_calls") or []:
                function = call.get("function") if isinstance(call, dict) else None
                name = function.get("name") if isinstance(function, dict) else None
                if isinstance(name, str) and name:
                    tools.append(name)
    if not done:
        raise ToolError("stream ended without data: [DONE]")
    return "".join(pieces), tools


def spoken_prefix(reply: str, share: float = SPOKEN_SHARE) -> str:
    """The start of ``reply`` a caller heard before barging in, cut at a word boundary."""
    cut = max(1, int(len(reply) * share))
    head = reply[:cut]
    space = head.rfind(" ")
    return head[:space] if space > 0 else head


# --------------------------------------------------------------------------- text API
class TextSession:
    """A conversation on the text API (``channel`` voice or text)."""

    def __init__(self, client: httpx.AsyncClient, url: str, call_id: str, phone: str | None, channel: str) -> None:
        self.client = client
        self.url = url
        self.call_id = call_id
        self.phone = phone
        self.channel = channel

    async def say(self, text: str, *, interrupted: bool = False) -> Reply:
        """One turn; the text API has no barge-in flag, so ``interrupted`` is not sent."""
        body: dict[str, Any] = {"text": text, "channel": self.channel}
        if self.phone:
            body["caller_phone"] = self.phone
        path = TEXT_PATH.format(conv_id=self.call_id)
        started = time.perf_counter()
        response = await self.client.post(self.url + path, json=body)
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise _refused("POST", path, response)
        data = response.json()
        reply = str(data.get("reply", ""))
        state = data.get("state")
        stage = stage_of_state(state) or infer_stage(reply)
        return Reply(reply, stage, seconds, state, data.get("action"), bool(data.get("ended")))

    async def end(self, reason: str) -> None:
        """Nothing to send: the text API has no end of call (the reaper expires idle chats)."""


class TextTransport:
    """Calls through ``POST /api/conversations/{id}/messages``."""

    name = "text"

    def __init__(self, client: httpx.AsyncClient, url: str, channel: str = "voice") -> None:
        self.client = client
        self.url = url.rstrip("/")
        self.channel = channel

    def session(self, call_id: str, phone: str | None) -> CallSession:
        """A new text conversation keyed by ``call_id``."""
        return TextSession(self.client, self.url, call_id, phone, self.channel)


# --------------------------------------------------------------------------- Vapi
def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class VapiSession:
    """A phone call as Vapi runs it: full history each turn, server messages on the side."""

    def __init__(self, transport: VapiTransport, call_id: str, phone: str | None) -> None:
        self.t = transport
        self.call_id = call_id
        self.phone = phone
        self.started = datetime.now(UTC)
        self.messages: list[dict[str, str]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "assistant", "content": FIRST_MESSAGE},
        ]
        self.ended = False

    def _customer(self) -> dict[str, str]:
        # A withheld caller id comes without a number.
        return {"number": self.phone} if self.phone else {}

    def _call(self) -> dict[str, Any]:
        return {"id": self.call_id, "type": "inboundPhoneCall", "customer": self._customer()}

    async def _event(self, message: dict[str, Any]) -> None:
        body = {"message": {"timestamp": int(time.time() * 1000), "call": self._call(),
                            "customer": self._customer(), **message}}
        response = await self.t.client.post(self.t.url + EVENTS_PATH, json=body, headers=self.t.event_headers())
        if response.status_code >= 300:
            raise _refused("POST", EVENTS_PATH, response)

    async def say(self, text: str, *, interrupted: bool = False) -> Reply:
        """One turn; a barge-in is announced (``user-interrupted``) and the history keeps only
        the spoken start of the cut reply, as Vapi does."""
        if interrupted and self.messages[-1]["role"] == "assistant":
            await self._event({"type": "user-interrupted"})
            last = self.messages[-1]
            self.messages[-1] = {"role": "assistant", "content": spoken_prefix(last["content"])}
        self.messages.append({"role": "user", "content": text})
        body = {
            "model": "rdv",
            "stream": True,
            "messages": list(self.messages),
            "call": self._call(),
            "customer": self._customer(),
        }
        started = time.perf_counter()
        async with self.t.client.stream(
            "POST", self.t.url + CHAT_PATH, json=body, headers=self.t.chat_headers()
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise _refused("POST", CHAT_PATH, response)
            lines = [line async for line in response.aiter_lines()]
        seconds = time.perf_counter() - started
        reply, tools = read_sse(lines)
        if reply:
            self.messages.append({"role": "assistant", "content": reply})
        if "transferCall" in tools:
            return Reply(reply, Stage.TRANSFERRED, seconds, action="transfer", ended=True)
        stage = infer_stage(reply)
        if "endCall" in tools:
            return Reply(reply, stage, seconds, action="end", ended=True)
        return Reply(reply, stage, seconds)

    def transcript(self) -> str:
        """The call as Vapi's report writes it ("AI: …" / "User: …")."""
        who = {"assistant": "AI", "user": "User"}
        return "\n".join(f"{who[m['role']]}: {m['content']}" for m in self.messages if m["role"] in who)

    async def end(self, reason: str) -> None:
        """``status-update`` ended, then the ``end-of-call-report`` (sent once)."""
        if self.ended:
            return
        self.ended = True
        ended_at = datetime.now(UTC)
        await self._event({"type": "status-update", "status": "ended", "endedReason": reason})
        await self._event({
            "type": "end-of-call-report",
            "endedReason": reason,
            "startedAt": _iso(self.started),
            "endedAt": _iso(ended_at),
            "cost": 0,
            "artifact": {"messages": [], "transcript": self.transcript()},
        })


class VapiTransport:
    """Calls through the custom-LLM endpoint and the server-message endpoint."""

    name = "vapi"

    def __init__(
        self, client: httpx.AsyncClient, url: str, *, llm_key: str | None = None, secret: str | None = None
    ) -> None:
        self.client = client
        self.url = url.rstrip("/")
        self.llm_key = llm_key
        self.secret = secret

    def chat_headers(self) -> dict[str, str]:
        """``Authorization: Bearer <llm key>`` when a key is given."""
        return {"Authorization": f"Bearer {self.llm_key}"} if self.llm_key else {}

    def event_headers(self) -> dict[str, str]:
        """``X-Vapi-Secret`` when a secret is given."""
        return {"X-Vapi-Secret": self.secret} if self.secret else {}

    def session(self, call_id: str, phone: str | None) -> CallSession:
        """A new Vapi call with this call id."""
        return VapiSession(self, call_id, phone)


def make_transport(
    name: str,
    client: httpx.AsyncClient,
    url: str,
    *,
    llm_key: str | None = None,
    secret: str | None = None,
    channel: str = "voice",
) -> Transport:
    """The transport called ``name`` (``vapi`` or ``text``)."""
    if name == "vapi":
        return VapiTransport(client, url, llm_key=llm_key, secret=secret)
    if name == "text":
        return TextTransport(client, url, channel)
    raise ToolError(f"unknown transport {name!r} (expected vapi or text)")


def secret_of(value: str | None, variable: str) -> str | None:
    """A secret option's value, else the environment variable's; None when neither is set."""
    return value or os.environ.get(variable) or None


def add_source_options(parser: argparse.ArgumentParser, route: str) -> argparse._MutuallyExclusiveGroup:
    """``--url`` (ask a running service's ``route``) or ``--store`` (read the store directly): the
    group, for a tool's other sources."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--url", help=f"ask a running service ({route})")
    source.add_argument("--store", action="store_true",
                        help="read the store of RDV_DATABASE_URL / RDV_DATA_DIR directly (default)")
    return source


def check_url(url: str) -> str:
    """A base URL with an http(s) scheme and a host, without a trailing slash."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ToolError(f"{url!r} is not an http(s) URL like http://127.0.0.1:8000")
    return url.rstrip("/")
