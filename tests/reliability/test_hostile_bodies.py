"""Hostile JSON bodies (nested thousands of levels deep, lone UTF-16 surrogates, NaN) get a
clear 4xx on every POST endpoint and leave the store exactly as it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import row_counts
from tests.vapi.conftest import CHAT, EVENTS, VapiCall, call_object

BOOK = "bonjour je voudrais prendre rendez-vous"
TEXT = "/api/conversations/conv_h/messages"
DEEP = "[" * 2000 + "]" * 2000
LONE = "\ud800"  # a high surrogate with no low one: not encodable as UTF-8


def wire(body: Any) -> bytes:
    """``body`` as JSON bytes, lone surrogates written as ``\\uXXXX`` escapes."""
    return json.dumps(body, ensure_ascii=True).encode("ascii")


def chat(text: str) -> dict[str, Any]:
    """A custom-LLM request of the call ``call-h`` whose caller says ``text``."""
    return {
        "model": "rdv", "stream": True, "call": call_object("call-h"),
        "messages": [{"role": "assistant", "content": "Bonjour"}, {"role": "user", "content": text}],
    }


def report(**fields: Any) -> dict[str, Any]:
    """An end-of-call report of the call ``call-h``."""
    return {"message": {"type": "end-of-call-report", "call": call_object("call-h"),
                        "endedReason": "customer-ended-call", **fields}}


HOSTILE: list[tuple[str, str, bytes]] = [
    ("text-deep-body", TEXT, DEEP.encode()),
    ("text-deep-field", TEXT, ('{"text": "bonjour", "extra": ' + DEEP + "}").encode()),
    ("chat-deep-body", CHAT, DEEP.encode()),
    ("chat-deep-metadata", CHAT, wire(chat("le premier"))[:-1] + b', "metadata": ' + DEEP.encode() + b"}"),
    ("events-deep-body", EVENTS, DEEP.encode()),
    ("events-deep-field", EVENTS, b'{"message": {"type": "hang", "x": ' + DEEP.encode() + b"}}"),
    ("text-surrogate", TEXT, wire({"text": "le premier " + LONE})),
    ("chat-surrogate", CHAT, wire(chat("le premier " + LONE))),
    ("chat-surrogate-key", CHAT, wire({**chat("le premier"), "metadata": {LONE: 1}})),
    ("events-type-surrogate", EVENTS, wire({"message": {"type": "hang" + LONE, "call": call_object("call-h")}})),
    ("events-reason-surrogate", EVENTS, wire(report(endedReason="customer-ended-call" + LONE))),
    ("events-status-surrogate", EVENTS, wire({"message": {
        "type": "status-update", "status": "ended", "call": call_object("call-h"),
        "endedReason": "customer-ended-call" + LONE}})),
    ("events-nan-cost", EVENTS, wire(report())[:-2] + b', "cost": NaN}}'),
    ("events-infinite-cost", EVENTS, wire(report())[:-2] + b', "cost": 1e999}}'),
]


async def rdv_samples(live: Any) -> list[str]:
    """Every ``rdv_`` sample line of ``/metrics``."""
    response = await live.client.get("/metrics")
    assert response.status_code == 200
    return [line for line in response.text.splitlines() if line.startswith("rdv_")]


@pytest.mark.parametrize(("path", "body"), [(p, b) for _, p, b in HOSTILE], ids=[i for i, _, _ in HOSTILE])
async def test_hostile_body_is_4xx_and_changes_nothing(
    make_live: Any, tmp_path: Path, path: str, body: bytes
) -> None:
    """A hostile body is refused with a 4xx and a clear message; no row of the store changes,
    both conversations' timelines still read the same, and no rdv metric moves."""
    async with make_live() as live:
        await live.say("conv_h", BOOK)
        call = VapiCall(live.client, "call-h")
        await call.say(BOOK)
        before = row_counts(tmp_path / "rdv.sqlite3")
        metrics = await rdv_samples(live)
        timelines = [(await live.client.get(f"/api/conversations/{c}")).json() for c in ("conv_h", "call-h")]
        response = await live.client.post(path, content=body, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        message = response.json()["error"]
        assert isinstance(message, str) and message
        assert row_counts(tmp_path / "rdv.sqlite3") == before
        assert await rdv_samples(live) == metrics
        for conv_id, earlier in zip(("conv_h", "call-h"), timelines, strict=True):
            later = await live.client.get(f"/api/conversations/{conv_id}")
            assert later.status_code == 200 and later.json() == earlier
