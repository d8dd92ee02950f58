"""The custom-LLM endpoint as Vapi drives it: whole calls over SSE, caller id, transfer and
end of call as tool calls, retries, barge-in, authentication and a store outage."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from tests.reliability.conftest import FaultyStore
from tests.telemetry.conftest import Captured
from tests.vapi.conftest import CHAT, EVENTS, PHONE, VapiCall, event, parse_sse

BOOK = "bonjour je voudrais prendre rendez-vous"
SPOKEN_PHONE = "zéro six douze trente quatre cinquante six soixante dix huit"


async def to_slots(call: VapiCall) -> str:
    """Drive a call up to the slot proposal; returns the slot message."""
    await call.say(BOOK)
    await call.say("Jean Dupont")
    answer = await call.say("pas de préférence")
    assert "Lequel vous convient" in answer.text
    return answer.text


def instant(text: str) -> datetime:
    """An ISO instant, whatever its spelling of UTC."""
    return datetime.fromisoformat(text)


async def timeline(live: Any, conv_id: str) -> dict[str, Any]:
    """The stored timeline of a conversation."""
    response = await live.client.get(f"/api/conversations/{conv_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


async def test_whole_booking_call_streams_openai_chunks_and_ends_the_call(make_live: Any) -> None:
    """A caller books in four turns; every answer is a well-formed SSE stream and the last
    one says goodbye then asks Vapi to hang up with ``endCall``."""
    async with make_live() as live:
        call = VapiCall(live.client, "call-book-1")
        first = await call.say(BOOK)
        assert first.content_type.startswith("text/event-stream")
        assert first.done and first.finish_reason == "stop" and first.tool() is None
        assert first.chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        assert "nom" in first.text
        await call.say("Jean Dupont")
        await call.say("pas de préférence")
        last = await call.say("le premier")
        assert last.text.startswith("C'est noté") and "Jean Dupont" in last.text
        assert last.tool() == ("endCall", {}) and last.finish_reason == "tool_calls"
        # The caller id was valid: no question about the phone number.
        assert not any("numéro" in (m.get("content") or "") for m in call.messages if m["role"] == "assistant")
        stored = await timeline(live, "call-book-1")
        assert stored["state"] == "CONFIRMED" and stored["outcome"] == "confirmed"
        assert stored["channel"] == "voice" and stored["vapi_call_id"] == "call-book-1"
        assert [b["cancelled_at"] for b in stored["bookings"]] == [None]
        assert len(stored["turns"]) == 4


async def test_non_streamed_request_gets_one_chat_completion(make_live: Any) -> None:
    """``stream: false`` → one ``chat.completion`` object with the message and tool call."""
    async with make_live() as live:
        call = VapiCall(live.client, "call-nostream")
        await to_slots(call)
        call.messages.append({"role": "user", "content": "le deuxième"})
        response = await call.post(stream=False)
        assert response.status_code == 200
        body = response.json()
        assert body["object"] == "chat.completion"
        message = body["choices"][0]["message"]
        assert message["content"].startswith("C'est noté")
        assert message["tool_calls"][0]["function"]["name"] == "endCall"
        assert body["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("number", [None, "anonymous", "", "+33 1"])
async def test_withheld_caller_id_asks_for_the_phone_number(make_live: Any, number: str | None) -> None:
    """No usable caller id: after the slot choice the assistant asks for a number, and the
    spoken number is the one stored with the booking."""
    async with make_live({"RDV_LOG_PII": "true"}) as live:
        call = VapiCall(live.client, "call-withheld", number=number)
        await to_slots(call)
        asked = await call.say("le premier")
        assert "numéro" in asked.text and asked.tool() is None
        done = await call.say(SPOKEN_PHONE)
        assert done.text.startswith("C'est noté") and done.tool() == ("endCall", {})
        headers = {"authorization": "Bearer unused"}
        stored = (await live.client.get("/api/conversations/call-withheld", headers=headers)).json()
        states = [t["state_after"] for t in stored["turns"]]
        assert "QUALIF_PHONE" in states
        assert stored["bookings"][0]["phone"] in (PHONE, "+336******78")


async def test_transfer_after_recovery_limit_is_a_transfer_call_to_the_practice(make_live: Any) -> None:
    """The name is not understood twice: the assistant hands over with ``transferCall`` to
    the practice's number, after saying so."""
    async with make_live() as live:
        call = VapiCall(live.client, "call-transfer")
        await call.say(BOOK)
        await call.say("je sais pas")
        answer = await call.say("non")
        assert "secrétariat" in answer.text
        tool = answer.tool()
        assert tool is not None and tool[0] == "transferCall"
        assert tool[1] == {"destination": live.services.practice.transfer_number}
        assert answer.finish_reason == "tool_calls" and answer.done
        assert (await timeline(live, "call-transfer"))["outcome"] == "transferred"


async def test_a_repeated_request_replays_the_reply_and_books_once(make_live: Any) -> None:
    """Vapi asks again for the same user turn: same words, state not advanced, one booking."""
    async with make_live() as live:
        call = VapiCall(live.client, "call-retry")
        await to_slots(call)
        call.messages.append({"role": "user", "content": "le premier"})
        first = parse_sse(await call.post())
        again = parse_sse(await call.post())
        assert again.text == first.text and again.tool() == first.tool() == ("endCall", {})
        stored = await timeline(live, "call-retry")
        assert len(stored["turns"]) == 4
        assert len(stored["bookings"]) == 1
        attempts = [e for e in stored["events"] if e["kind"] == "BookingAttempted"]
        assert len(attempts) == 1


async def test_same_words_later_in_the_call_are_a_new_turn(make_live: Any) -> None:
    """Only the same user message *position* is a retry: saying "non" twice is two turns."""
    async with make_live() as live:
        call = VapiCall(live.client, "call-twice")
        await call.say("non")
        await call.say("non")
        assert len((await timeline(live, "call-twice"))["turns"]) == 2


async def test_barge_in_on_the_slot_list_books_the_chosen_slot(make_live: Any) -> None:
    """The caller says "le deuxième" while the list is being read: Vapi's history keeps only
    the spoken part; the choice is booked and counted as a positive interruption."""
    cap = Captured()
    async with make_live(telemetry=cap.telemetry) as live:
        call = VapiCall(live.client, "call-barge")
        slots = await to_slots(call)
        heard = call.cut_last_reply(len(slots) // 2)
        assert slots.startswith(heard) and heard != slots
        answer = await call.say("le deuxième")
        assert answer.text.startswith("C'est noté")
        stored = await timeline(live, "call-barge")
        proposed = [e for e in stored["events"] if e["kind"] == "SlotsSent"][-1]["data"]["slot_starts"]
        assert instant(stored["bookings"][0]["slot_start"]) == instant(proposed[1])
        assert stored["turns"][-1]["interrupted"] is True
        assert cap.sample("rdv_interruptions_total", channel="voice") == 1
        assert any(line.startswith("[INTERRUPTION] call-barge") for line in cap.lines())


async def test_whole_slot_list_heard_is_not_an_interruption(make_live: Any) -> None:
    """The list was heard to the end: choosing is not a barge-in."""
    cap = Captured()
    async with make_live(telemetry=cap.telemetry) as live:
        call = VapiCall(live.client, "call-heard")
        await to_slots(call)
        await call.say("le deuxième")
        assert cap.sample("rdv_interruptions_total", channel="voice") == 0
        assert (await timeline(live, "call-heard"))["turns"][-1]["interrupted"] is False


async def test_user_interrupted_event_marks_the_next_turn(make_live: Any) -> None:
    """Vapi's ``user-interrupted`` server message alone also marks the next turn."""
    cap = Captured()
    async with make_live(telemetry=cap.telemetry) as live:
        call = VapiCall(live.client, "call-event-barge")
        await to_slots(call)
        response = await live.client.post(EVENTS, json=event("user-interrupted", "call-event-barge"))
        assert response.status_code == 200 and response.json() == {}
        await call.say("le troisième")
        assert cap.sample("rdv_interruptions_total", channel="voice") == 1


async def test_interruption_mark_is_shared_by_replicas(make_live: Any) -> None:
    """``user-interrupted`` handled by one replica marks the turn that lands on another (the
    mark lives with the conversation in the store)."""
    cap = Captured()
    async with make_live() as first, make_live(telemetry=cap.telemetry) as second:
        call = VapiCall(first.client, "call-replicas")
        await to_slots(call)
        assert (await first.client.post(EVENTS, json=event("user-interrupted", "call-replicas"))).status_code == 200
        call.client = second.client
        answer = await call.say("le troisième")
        assert answer.text.startswith("C'est noté")
        assert cap.sample("rdv_interruptions_total", channel="voice") == 1


async def test_stale_marks_and_ordinary_speech_updates_are_not_interruptions(make_live: Any, clock: Any) -> None:
    """A mark older than 30 s is ignored, and ``speech-update`` (sent at every ordinary turn)
    marks nothing."""
    cap = Captured()
    async with make_live(telemetry=cap.telemetry) as live:
        stale = VapiCall(live.client, "call-stale")
        await to_slots(stale)
        await live.client.post(EVENTS, json=event("user-interrupted", "call-stale"))
        clock.advance(seconds=45)
        await stale.say("le troisième")
        plain = VapiCall(live.client, "call-speech")
        await to_slots(plain)
        update = event("speech-update", "call-speech", role="user", status="started", turn=4)
        assert (await live.client.post(EVENTS, json=update)).json() == {}
        await plain.say("le premier")
        assert cap.sample("rdv_interruptions_total", channel="voice") == 0
        assert cap.sample("rdv_booking_attempts_total", channel="voice", result="success") == 2


async def test_no_caller_words_yet_gets_a_greeting_and_stores_nothing(make_live: Any) -> None:
    """Asked to speak first, the endpoint greets without creating a conversation."""
    async with make_live() as live:
        body = VapiCall(live.client, "call-greet").payload()
        body["messages"] = body["messages"][:1]
        answer = parse_sse(await live.client.post(CHAT, json=body))
        assert answer.status == 200 and "Bonjour" in answer.text and answer.done
        assert (await live.client.get("/api/conversations/call-greet")).status_code == 404


async def test_a_late_turn_after_the_call_ended_does_not_restart_it(make_live: Any) -> None:
    """Vapi said the call ended (status-update); a request still in flight gets a goodbye
    and ``endCall``, and the conversation stays closed."""
    async with make_live() as live:
        call = VapiCall(live.client, "call-late")
        await call.say(BOOK)
        ended = event("status-update", "call-late", status="ended", endedReason="customer-ended-call")
        assert (await live.client.post(EVENTS, json=ended)).status_code == 200
        late = await call.say("Jean Dupont")
        assert late.tool() == ("endCall", {})
        stored = await timeline(live, "call-late")
        assert stored["outcome"] == "abandoned" and stored["state"] == "QUALIF_NAME"
        assert len(stored["turns"]) == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"authorization": "Bearer wrong"}, 401), ({"authorization": "Basic abc"}, 401),
     ({"authorization": "Bearer llm-key-1"}, 200)],
)
async def test_custom_llm_credential(make_live: Any, headers: dict[str, str], status: int) -> None:
    """With a credential configured, only ``Authorization: Bearer <key>`` is served; a
    refused request stores nothing."""
    async with make_live({"RDV_VAPI_LLM_KEY": "llm-key-1"}) as live:
        call = VapiCall(live.client, "call-auth", headers=headers)
        call.messages.append({"role": "user", "content": BOOK})
        response = await call.post()
        assert response.status_code == status, response.text
        found = (await live.client.get("/api/conversations/call-auth")).status_code
        assert found == (200 if status == 200 else 404)
        if status == 401:
            assert "RDV_VAPI_LLM_KEY" in response.json()["error"]


async def test_store_outage_apologises_and_transfers(make_live: Any, faulty_store: FaultyStore) -> None:
    """The store does not answer: Vapi gets a spoken apology and a transfer, not an error
    status that would end the call; the transfer is counted with reason store_unavailable."""
    async with make_live({"RDV_STORE_TIMEOUT_SECONDS": "0.2"}, store=faulty_store) as live:
        call = VapiCall(live.client, "call-outage")
        await call.say(BOOK)
        faulty_store.mode = "raise"
        answer = await call.say("Jean Dupont")
        assert answer.status == 200 and answer.done
        assert "souci technique" in answer.text
        assert answer.tool() == ("transferCall", {"destination": live.services.practice.transfer_number})
        faulty_store.mode = "ok"
        metrics = (await live.client.get("/metrics")).text
    assert 'rdv_transfers_total{channel="voice",reason="store_unavailable"} 1.0' in metrics.splitlines()
    assert "rdv_store_unavailable_total 1.0" in metrics.splitlines()
    assert 'rdv_turn_responses_total{channel="voice",code="2xx"} 1.0' in metrics.splitlines()


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "empty"),
        (b"{not json", 400, "JSON"),
        (b"[]", 400, "object"),
        (json.dumps({"messages": [], "call": {"id": "c1"}}).encode(), 422, "messages"),
        (json.dumps({"messages": [{"role": "user", "content": "oui"}]}).encode(), 422, "call"),
        (json.dumps({"messages": [{"role": "user", "content": "oui"}], "call": {"id": "../x"}}).encode(), 422,
         "call.id"),
        (json.dumps({"messages": [{"role": "user", "content": 3}], "call": {"id": "c1"}}).encode(), 422, "content"),
        (json.dumps({"messages": [{"role": "robot", "content": "x"}], "call": {"id": "c1"}}).encode(), 422, "role"),
        (json.dumps({"messages": [{"role": "user", "content": "x"}], "call": {"id": "c1"}, "stream": "yes"}).encode(),
         422, "stream"),
    ],
)
async def test_malformed_requests_are_clear_4xx(make_live: Any, body: bytes, status: int, words: str) -> None:
    """A broken request names what is wrong and creates nothing."""
    async with make_live() as live:
        response = await live.client.post(CHAT, content=body, headers={"content-type": "application/json"})
        assert response.status_code == status, response.text
        assert words in response.json()["error"]
        assert (await live.client.get("/api/conversations/c1")).status_code == 404


async def test_content_parts_and_older_call_id_field_are_accepted(make_live: Any) -> None:
    """OpenAI content parts and the older ``call.callId`` both work."""
    async with make_live() as live:
        body = {
            "messages": [{"role": "user", "content": [{"type": "text", "text": "je voudrais"},
                                                      {"type": "text", "text": "un rendez-vous"}]}],
            "call": {"callId": "call-old"},
            "stream": True,
        }
        answer = parse_sse(await live.client.post(CHAT, json=body))
        assert answer.status == 200 and "nom" in answer.text
