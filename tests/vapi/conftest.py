"""A Vapi client for the tests: payloads built with Vapi's own server SDK models, the SSE
answer parsed the way a streaming OpenAI client reads it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from vapi.types import Call, CreateCustomerDto, OpenAiMessage

from tests.reliability.conftest import FaultyStore

CHAT = "/vapi/chat/completions"
EVENTS = "/vapi/events"
PHONE = "+33612345678"
SYSTEM = "Tu es l'assistante vocale du cabinet."
FIRST_MESSAGE = "Bonjour, cabinet du docteur Martin, que puis-je pour vous ?"


def sdk(model: Any) -> dict[str, Any]:
    """A Vapi SDK model as the JSON Vapi puts on the wire (camelCase, no nulls)."""
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def call_object(call_id: str, number: str | None = PHONE) -> dict[str, Any]:
    """The ``call`` object of a request, from the SDK's ``Call`` model."""
    customer = CreateCustomerDto(number=number) if number is not None else None
    return sdk(
        Call(
            id=call_id, org_id="org-1", created_at="2026-03-03T08:00:00Z", updated_at="2026-03-03T08:00:00Z",
            type="inboundPhoneCall", customer=customer,
        )
    )


@dataclass
class Answer:
    """One parsed custom-LLM answer."""

    status: int
    content_type: str
    chunks: list[dict[str, Any]]
    done: bool
    text: str
    tool_calls: list[dict[str, Any]]
    finish_reason: str | None
    raw: str

    def tool(self) -> tuple[str, dict[str, Any]] | None:
        """(name, decoded arguments) of the tool call, if any."""
        if not self.tool_calls:
            return None
        function = self.tool_calls[0]["function"]
        return function["name"], json.loads(function["arguments"])


def parse_sse(response: httpx.Response) -> Answer:
    """Read an SSE answer event by event, accumulating deltas as an OpenAI client does."""
    chunks: list[dict[str, Any]] = []
    done = False
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[len("data: "):]
        if data == "[DONE]":
            done = True
            continue
        assert not done, "a chunk after [DONE]"
        chunks.append(json.loads(data))
    text, calls, finish = "", [], None
    for chunk in chunks:
        assert chunk["object"] == "chat.completion.chunk"
        assert isinstance(chunk["choices"], list) and chunk["choices"], chunk
        choice = chunk["choices"][0]
        delta = choice["delta"]
        text += delta.get("content") or ""
        calls.extend(delta.get("tool_calls") or [])
        finish = choice["finish_reason"] or finish
    return Answer(
        response.status_code, response.headers.get("content-type", ""), chunks, done, text, calls, finish,
        response.text,
    )


@dataclass
class VapiCall:
    """One phone call as Vapi drives it: the whole history re-sent at every turn."""

    client: httpx.AsyncClient
    call_id: str
    number: str | None = PHONE
    headers: dict[str, str] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.messages = [
            sdk(OpenAiMessage(role="system", content=SYSTEM)),
            sdk(OpenAiMessage(role="assistant", content=FIRST_MESSAGE)),
        ]

    def payload(self, stream: bool = True) -> dict[str, Any]:
        """The request body Vapi would send now."""
        call = call_object(self.call_id, self.number)
        body: dict[str, Any] = {
            "model": "rdv-fr-1", "messages": self.messages, "temperature": 0.3, "max_tokens": 250,
            "stream": stream, "call": call, "metadata": {"tenant": "cabinet-martin"},
        }
        if "customer" in call:
            body["customer"] = call["customer"]
        return body

    async def post(self, stream: bool = True) -> httpx.Response:
        """Send the current history without changing it (a retry)."""
        return await self.client.post(CHAT, json=self.payload(stream), headers=self.headers)

    async def say(self, text: str, heard: str | None = None) -> Answer:
        """The caller says ``text``; the reply joins the history (``heard`` of it when the
        caller cut it short, as Vapi keeps only what was spoken)."""
        self.messages.append(sdk(OpenAiMessage(role="user", content=text)))
        answer = parse_sse(await self.post())
        assert answer.status == 200, answer.raw
        self.messages.append(sdk(OpenAiMessage(role="assistant", content=answer.text)))
        return answer

    def cut_last_reply(self, keep: int) -> str:
        """Replace the last assistant message by its first ``keep`` characters (barge-in)."""
        last = self.messages[-1]
        assert last["role"] == "assistant"
        last["content"] = last["content"][:keep]
        return str(last["content"])


def event(kind: str, call_id: str, **fields: Any) -> dict[str, Any]:
    """A server message envelope as Vapi posts it."""
    return {"message": {"type": kind, "timestamp": 1772524800000, "call": call_object(call_id), **fields}}


@pytest.fixture
async def faulty_store(tmp_path: Any) -> AsyncIterator[FaultyStore]:
    """A fault injector around a real SQLite store in ``tmp_path``."""
    from service.storage import open_store

    yield FaultyStore(open_store(None, tmp_path))
