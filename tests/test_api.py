"""The text API over real HTTP: bad input is a clear 4xx that changes nothing; health; timeline."""

from __future__ import annotations

from typing import Any

import pytest

PHONE = "+33612345678"
BOOK = "bonjour je voudrais prendre rendez-vous"

BAD_BODIES = [
    (b"{not json", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'{"texte": "bonjour"}', "application/json", 422),
    (b'{"text": 12}', "application/json", 422),
    (b'{"text": null}', "application/json", 422),
    (('{"text": "' + "a" * 2001 + '"}').encode(), "application/json", 422),
    (b'{"text": "bonjour", "channel": "fax"}', "application/json", 422),
    (b'{"text": "bonjour", "caller_phone": 33612345678}', "application/json", 422),
    (b'{"text": "bonjour", "caller_phone": "pas un numero"}', "application/json", 422),
    (b'{"text": "bonjour", "request_id": ""}', "application/json", 422),
    (b'{"text": "\xff\xfe bonjour"}', "application/json", 400),
]


@pytest.mark.parametrize(("body", "ctype", "status"), BAD_BODIES)
async def test_bad_body_is_4xx_and_stores_nothing(make_live: Any, body: bytes, ctype: str, status: int) -> None:
    """Each malformed message → its 4xx with an error text; the conversation is untouched."""
    async with make_live() as live:
        await live.say("conv_bad", BOOK, caller_phone=PHONE)
        before = (await live.client.get("/api/conversations/conv_bad")).json()
        response = await live.client.post(
            "/api/conversations/conv_bad/messages", content=body, headers={"content-type": ctype}
        )
        assert response.status_code == status, response.text
        assert isinstance(response.json()["error"], str) and response.json()["error"]
        after = (await live.client.get("/api/conversations/conv_bad")).json()
        assert after == before
        fresh = await live.client.post(
            "/api/conversations/conv_new/messages", content=body, headers={"content-type": ctype}
        )
        assert fresh.status_code == status
        assert (await live.client.get("/api/conversations/conv_new")).status_code == 404


@pytest.mark.parametrize("conv_id", ["a" * 129, "conv%20x", "conv.x", "conv@x"])
async def test_bad_conversation_id_is_400(make_live: Any, conv_id: str) -> None:
    """Ids outside ``[A-Za-z0-9_-]{1,128}`` are refused with a message naming the rule."""
    async with make_live() as live:
        response = await live.client.post(f"/api/conversations/{conv_id}/messages", json={"text": "bonjour"})
        assert response.status_code in (400, 404)
        if response.status_code == 400:
            assert "conv_id" in response.json()["error"]


async def test_request_id_replays_the_stored_answer(make_live: Any) -> None:
    """A retried turn with the same request id returns the first answer and does nothing twice."""
    async with make_live() as live:
        first = await live.say("conv_idem", BOOK, caller_phone=PHONE, request_id="t-1")
        again = await live.say("conv_idem", BOOK, caller_phone=PHONE, request_id="t-1")
        assert again["reply"] == first["reply"] and again["turn"] == first["turn"] == 1
        timeline = (await live.client.get("/api/conversations/conv_idem")).json()
        assert len(timeline["turns"]) == 1


async def test_health_readiness_and_openapi(make_live: Any) -> None:
    """Liveness, readiness (store reachable) and the OpenAPI document are served."""
    async with make_live() as live:
        assert (await live.client.get("/healthz")).status_code == 200
        assert (await live.client.get("/readyz")).status_code == 200
        spec = (await live.client.get("/openapi.json")).json()
        assert "/api/conversations/{conv_id}/messages" in spec["paths"]


async def test_timeline_masks_the_phone_and_names_the_trace(make_live: Any) -> None:
    """The timeline shows turns in order (masked without the operator token), the masked
    caller number and the trace id."""
    async with make_live() as live:
        answer = await live.say("conv_tl", BOOK, caller_phone=PHONE)
        await live.say("conv_tl", "Jean Dupont")
        timeline = (await live.client.get("/api/conversations/conv_tl")).json()
    assert [t["text"] for t in timeline["turns"]] == ["b****** j* v******* p****** r*****-v***", "J*** D*****"]
    assert timeline["state"] == "QUALIF_PREF"
    assert PHONE not in str(timeline) and timeline["caller_phone"].endswith("78")
    assert timeline["trace_id"] == answer["trace_id"]
