"""Vapi's server messages: end-of-call correlation, call ends, answers Vapi waits for, and
the three authentication modes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from vapi.types import (
    Analysis,
    Artifact,
    BotMessage,
    Call,
    ServerMessageEndOfCallReport,
    ServerMessageToolCalls,
    ToolCall,
    ToolCallFunction,
    UserMessage,
)

from tests.support import NOW
from tests.telemetry.conftest import Captured
from tests.vapi.conftest import EVENTS, VapiCall, call_object, event, sdk

BOOK = "bonjour je voudrais prendre rendez-vous"


def report(call_id: str, reason: str = "customer-ended-call") -> dict[str, Any]:
    """An end-of-call report built with the SDK's model."""
    message = ServerMessageEndOfCallReport(
        type="end-of-call-report",
        ended_reason=reason,
        call=Call.model_validate(call_object(call_id)),
        started_at="2026-03-03T08:00:00Z",
        ended_at="2026-03-03T08:02:05Z",
        cost=0.13,
        analysis=Analysis(summary="L'appelant a raccroché pendant la proposition des créneaux."),
        artifact=Artifact(
            transcript="AI: Bonjour\nUser: je voudrais un rendez-vous",
            messages=[
                BotMessage(role="bot", message="Bonjour", time=1772524800000, end_time=1772524801500,
                           seconds_from_start=0.4),
                UserMessage(role="user", message="je voudrais", time=1772524803000, end_time=1772524804000,
                            seconds_from_start=3.0),
            ],
            recording_url="https://storage.vapi.ai/rec.wav",
        ),
    )
    return {"message": sdk(message)}


async def call_in_wait_confirm(live: Any, call_id: str) -> VapiCall:
    """A call that stopped while slots were proposed."""
    call = VapiCall(live.client, call_id)
    await call.say(BOOK)
    await call.say("Jean Dupont")
    await call.say("pas de préférence")
    return call


async def test_report_for_a_call_abandoned_in_wait_confirm(make_live: Any) -> None:
    """The caller hung up during the slot list: the report closes the conversation as
    ``abandoned`` in WAIT_CONFIRM with Vapi's reason, is shown in the timeline (unmasked with
    RDV_LOG_PII=true), and is counted once by category even when Vapi sends it twice."""
    cap = Captured()
    async with make_live({"RDV_LOG_PII": "true"}, telemetry=cap.telemetry) as live:
        await call_in_wait_confirm(live, "call-gone")
        for _ in range(2):
            response = await live.client.post(EVENTS, json=report("call-gone"))
            assert response.status_code == 200 and response.json() == {}
        stored = (await live.client.get("/api/conversations/call-gone")).json()
        assert stored["outcome"] == "abandoned" and stored["state"] == "WAIT_CONFIRM"
        assert stored["ended_reason"] == "customer-ended-call"
        kept = stored["call_report"]
        assert kept["durationSeconds"] == 125.0 and kept["cost"] == 0.13
        assert kept["summary"].startswith("L'appelant a raccroché")
        assert kept["recordingUrl"] == "https://storage.vapi.ai/rec.wav"
        assert kept["messages"][-1] == {"role": "user", "message": "je voudrais"}
        assert cap.sample("rdv_vapi_ended_reasons_total", category="caller_hung_up") == 1
        assert cap.sample("rdv_conversations_ended_total", channel="voice", outcome="abandoned") == 1
        assert cap.sample(
            "rdv_conversations_stopped_total", channel="voice", outcome="abandoned", state="WAIT_CONFIRM"
        ) == 1
        assert cap.sample(
            "rdv_conversations_stopped_total", channel="voice", outcome="abandoned", state="QUALIF_NAME"
        ) == 0
        ended = [line for line in cap.lines() if line.startswith("conversation_ended call-gone")]
        assert len(ended) == 1 and "state=WAIT_CONFIRM" in ended[0] and "reason=customer-ended-call" in ended[0]


async def test_report_after_a_booking_keeps_the_outcome(make_live: Any) -> None:
    """A confirmed call's report is stored; the outcome stays ``confirmed``."""
    cap = Captured()
    async with make_live(telemetry=cap.telemetry) as live:
        call = await call_in_wait_confirm(live, "call-ok")
        await call.say("le premier")
        await live.client.post(EVENTS, json=report("call-ok", "assistant-ended-call"))
        stored = (await live.client.get("/api/conversations/call-ok")).json()
        assert stored["outcome"] == "confirmed" and stored["ended_reason"] == "assistant-ended-call"
        assert cap.sample("rdv_vapi_ended_reasons_total", category="assistant_ended") == 1
        assert cap.sample("rdv_conversations_ended_total", channel="voice", outcome="abandoned") == 0


async def test_status_update_ended_then_report_is_consistent(make_live: Any) -> None:
    """Status ``ended`` closes the call; the later report adds its details without a second
    end; a second ``ended`` changes nothing."""
    cap = Captured()
    async with make_live(telemetry=cap.telemetry) as live:
        await call_in_wait_confirm(live, "call-two")
        ended = event("status-update", "call-two", status="ended", endedReason="silence-timed-out")
        for _ in range(2):
            assert (await live.client.post(EVENTS, json=ended)).status_code == 200
        await live.client.post(EVENTS, json=report("call-two", "silence-timed-out"))
        stored = (await live.client.get("/api/conversations/call-two")).json()
        assert stored["outcome"] == "abandoned" and stored["call_report"]["endedReason"] == "silence-timed-out"
        assert cap.sample("rdv_conversations_ended_total", channel="voice", outcome="abandoned") == 1
        assert cap.sample("rdv_vapi_ended_reasons_total", category="timeout") == 1


async def test_events_for_unknown_calls_and_types_are_acknowledged(make_live: Any) -> None:
    """Unknown calls and message types get 200 ``{}`` and create nothing."""
    async with make_live() as live:
        for body in (report("call-never-seen"), event("status-update", "call-never-seen", status="ended"),
                     event("conversation-update", "call-never-seen", messages=[]),
                     event("some-future-type", "call-never-seen")):
            response = await live.client.post(EVENTS, json=body)
            assert (response.status_code, response.json()) == (200, {})
        assert (await live.client.get("/api/conversations/call-never-seen")).status_code == 404


async def test_transfer_destination_request_answers_the_practice_number(make_live: Any) -> None:
    """Vapi asks where to transfer: the practice's number, with a spoken message."""
    async with make_live() as live:
        response = await live.client.post(EVENTS, json=event("transfer-destination-request", "call-x"))
        destination = response.json()["destination"]
        assert destination["type"] == "number"
        assert destination["number"] == live.services.practice.transfer_number
        assert destination["message"]


@pytest.mark.parametrize("arguments", ['{"slot": 1}', {"slot": 1}])
async def test_tool_calls_get_results_in_vapi_format(make_live: Any, arguments: Any) -> None:
    """Every tool call gets a result entry with its id (an error: rdv runs no tool)."""
    message = sdk(
        ServerMessageToolCalls(
            type="tool-calls",
            tool_with_tool_call_list=[],
            tool_call_list=[ToolCall(id="call_Q2x7", type="function",
                                     function=ToolCallFunction(name="bookAppointment", arguments="{}"))],
        )
    )
    message["toolCallList"][0]["function"]["arguments"] = arguments
    async with make_live() as live:
        response = await live.client.post(EVENTS, json={"message": message})
        assert response.status_code == 200
        (result,) = response.json()["results"]
        assert result["toolCallId"] == "call_Q2x7" and result["name"] == "bookAppointment"
        assert "error" in result and "result" not in result


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'{"message": 3}', b'{"message": {}}', b'{"message": {"type": 7}}',
     b'{"message": {"type": "status-update", "call": {"id": "../../x"}}}'],
)
async def test_malformed_server_messages_are_4xx(make_live: Any, body: bytes) -> None:
    """A broken server message is a 4xx naming the problem, never a 500."""
    async with make_live() as live:
        response = await live.client.post(EVENTS, content=body, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500 and response.json()["error"]


def signed(body: bytes, secret: str, timestamp: str, encoding: str = "hex", algorithm: str = "sha256") -> str:
    """Vapi's HMAC signature of ``"{timestamp}.{body}"``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, getattr(hashlib, algorithm)).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def _now_ms() -> str:
    return str(int(NOW.timestamp() * 1000))


@pytest.mark.parametrize(
    ("mode", "make_headers", "status"),
    [
        ("secret", lambda body: {}, 401),
        ("secret", lambda body: {"x-vapi-secret": "nope"}, 401),
        ("secret", lambda body: {"authorization": "Bearer s3cret"}, 401),
        ("secret", lambda body: {"x-vapi-secret": "s3cret"}, 200),
        ("bearer", lambda body: {"x-vapi-secret": "s3cret"}, 401),
        ("bearer", lambda body: {"authorization": "Bearer s3cret"}, 200),
        ("hmac", lambda body: {"x-timestamp": (ts := _now_ms()), "x-signature": signed(body, "s3cret", ts)}, 200),
        ("hmac", lambda body: {"x-timestamp": (ts := _now_ms()),
                               "x-signature": signed(body, "s3cret", ts, "base64")}, 200),
        ("hmac", lambda body: {"x-timestamp": (ts := _now_ms()),
                               "x-signature": "sha256=" + signed(body, "s3cret", ts)}, 200),
        ("hmac", lambda body: {"x-timestamp": (ts := _now_ms()), "x-signature": signed(body, "wrong", ts)}, 401),
        ("hmac", lambda body: {"x-timestamp": (ts := _now_ms()),
                               "x-signature": signed(body + b" ", "s3cret", ts)}, 401),
        ("hmac", lambda body: {"x-timestamp": (ts := str(int(NOW.timestamp()) - 3600)),
                               "x-signature": signed(body, "s3cret", ts)}, 401),
        ("hmac", lambda body: {"x-signature": signed(body, "s3cret", "0")}, 401),
    ],
)
async def test_server_message_authentication(make_live: Any, mode: str, make_headers: Any, status: int) -> None:
    """Each mode accepts only its credential; a refused message changes nothing (the call
    stays open)."""
    async with make_live({"RDV_VAPI_SECRET": "s3cret", "RDV_VAPI_AUTH": mode}) as live:
        call = VapiCall(live.client, "call-auth")
        await call.say(BOOK)
        body = json.dumps(event("status-update", "call-auth", status="ended",
                                endedReason="customer-ended-call")).encode()
        headers = {"content-type": "application/json", **make_headers(body)}
        response = await live.client.post(EVENTS, content=body, headers=headers)
        assert response.status_code == status, response.text
        outcome = (await live.client.get("/api/conversations/call-auth")).json()["outcome"]
        assert outcome == ("abandoned" if status == 200 else None)
